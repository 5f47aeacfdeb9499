// Weft lookup figures: N real UDP nodes on 127.0.0.1 (src/node/testnet.ts), measured exactly
// like the peers: same datagram counter (Weft's UDP runtime uses node:dgram), same RSS method,
// same sequential lookups of random targets from random nodes drawn from the same seeded PRNG.
// Measured twice: `weft` (the default, every datagram sealed in a Noise session) and
// `weft-plaintext` (encrypt: false), to show what the sessions cost.
import { idEquals } from '../../src/identity/node-id.js'
import { createTestnet, type Testnet } from '../../src/node/testnet.js'
import {
  assertLoopbackOnly,
  datagramCounter,
  settledMemory,
  quiesce,
  timeLookupBlock,
  toFigures,
  withTimeout,
  type LookupFigures,
  type LookupRun
} from '../lib/measure.js'
import { createRng, median } from '../lib/stats.js'

const PER_LOOKUP_TIMEOUT_MS = 20_000
const SETUP_TIMEOUT_MS = 4 * 60_000
/** Size of a Kademlia result (Weft's default k), for the exactness check. */
const K = 20

export interface WeftBenchOptions {
  /** Seal every datagram in a Noise session (Weft's default: true). */
  encrypt?: boolean
}

/** The name a run is reported under: plaintext gets its own, so both can sit in one report. */
export const weftImplName = (o: WeftBenchOptions): string => (o.encrypt === false ? 'weft-plaintext' : 'weft')

/** One timed pass over the rig's lookups, with what the process spent on it. */
export interface WeftPass extends LookupRun {
  /** Process CPU (user + system) over the pass, ms. */
  cpuMs: number
  /** Noise handshakes started during the pass, over all nodes (0 without encryption). */
  handshakes: number
}

/**
 * A Weft loopback network and a fixed list of lookups (random nodes, random targets from the
 * seeded PRNG) that can be timed again and again: the first pass meets most peers for the first
 * time; later passes find the sessions they need open.
 */
export class WeftLookupRig {
  private readonly picks: { node: number; target: Uint8Array }[] = []
  private exactCount = 0
  private passes = 0

  private constructor(
    readonly name: string,
    private readonly net: Testnet,
    private readonly counter: ReturnType<typeof datagramCounter>,
    readonly memory: { baseline: NodeJS.MemoryUsage; withNodes: NodeJS.MemoryUsage },
    readonly setupMs: number,
    lookups: number,
    seed: number
  ) {
    const rng = createRng(seed)
    for (let i = 0; i < lookups; i++) this.picks.push({ node: rng.int(net.nodes.length), target: rng.bytes(32) })
  }

  static async start(nodes: number, lookups: number, seed: number, options: WeftBenchOptions = {}): Promise<WeftLookupRig> {
    // The library is loaded by the static imports above, before the RSS baseline.
    // Installing the counter now also guards the join traffic (loopback only).
    const counter = datagramCounter()
    const baseline = await settledMemory()
    const t0 = performance.now()
    // Every node binds 127.0.0.1 (the testnet default host); node 0 starts the network with no
    // bootstrap list, the others join through node 0 only.
    // Only `encrypt` differs between the two builds: same seed, same identities, same lookups.
    const node = options.encrypt === undefined ? {} : { encrypt: options.encrypt }
    const net = await withTimeout(createTestnet({ nodes, seed: String(seed), host: '127.0.0.1', node }), SETUP_TIMEOUT_MS, 'weft testnet setup')
    try {
      const setupMs = performance.now() - t0
      if (!net.bootstrap.startsWith('127.0.0.1:')) throw new Error(`unexpected bootstrap ${net.bootstrap}`)
      const withNodes = await settledMemory()
      return new WeftLookupRig(weftImplName(options), net, counter, { baseline, withNodes }, setupMs, lookups, seed)
    } catch (err) {
      await withTimeout(net.close(), 60_000, 'weft testnet close')
      throw err
    }
  }

  /** Runs every lookup once, one after another, once the network is quiet. The first pass also checks exactness. */
  async pass(): Promise<WeftPass> {
    await quiesce()
    return this.block(0, this.picks.length)
  }

  /** Lookups `from` to `from + count - 1`, at once (no wait for a quiet network). */
  async block(from: number, count: number): Promise<WeftPass> {
    const first = this.passes++ === 0
    const handshakesBefore = this.handshakes()
    const cpu = process.cpuUsage()
    const run = await timeLookupBlock(from, count, PER_LOOKUP_TIMEOUT_MS, async (i, signal) => {
      const { node: n, target } = this.picks[i]
      const node = this.net.nodes[n]
      const r = await node.lookup(target, { signal })
      if (first) {
        const want = this.net.oracle(target, K)
        if (r.closest.length === want.length && r.closest.every((c, j) => idEquals(c.id, want[j]))) this.exactCount++
      }
      // The result may include the asking node itself: success needs one OTHER node.
      return r.closest.some((c) => !idEquals(c.id, node.id))
    })
    const used = process.cpuUsage(cpu)
    assertLoopbackOnly(this.counter)
    return { ...run, cpuMs: (used.user + used.system) / 1000, handshakes: this.handshakes() - handshakesBefore }
  }

  get lookups(): number { return this.picks.length }

  /**
   * Figures of the first pass, with `sessionsUp` from the rounds given (each a pass, or the
   * blocks of one pass cut up): per round, its lookups' percentiles and lookups over its wall
   * time; then the median over rounds, so a round on a slower machine moves it less.
   */
  figures(firstContact: WeftPass, rounds: WeftPass[][]): LookupFigures {
    const figures = toFigures(this.name, this.net.nodes.length, firstContact, this.memory, this.setupMs)
    const n = firstContact.latenciesMs.length
    // Extra, Weft-only: fraction of lookups that returned exactly the true k nearest.
    const extra: Partial<LookupFigures> = { exact: n === 0 ? 0 : this.exactCount / n, cpuMsPerLookup: firstContact.cpuMs / n, handshakesPerLookup: firstContact.handshakes / n }
    if (rounds.length > 0) {
      const per = rounds.map((runs) => {
        const sum = (f: (r: WeftPass) => number): number => runs.reduce((a, r) => a + f(r), 0)
        const pooled: LookupRun = {
          latenciesMs: runs.flatMap((r) => r.latenciesMs), successes: sum((r) => r.successes),
          datagrams: sum((r) => r.datagrams), elapsedMs: sum((r) => r.elapsedMs)
        }
        const f = toFigures(this.name, this.net.nodes.length, pooled, this.memory, this.setupMs)
        return { ...f, cpuMsPerLookup: sum((r) => r.cpuMs) / f.lookups, handshakes: sum((r) => r.handshakes) }
      })
      const mid = (f: (r: (typeof per)[number]) => number): number => median(per.map(f))
      const lookups = per.reduce((a, r) => a + r.lookups, 0)
      extra.sessionsUp = {
        p50Ms: mid((r) => r.p50Ms), p95Ms: mid((r) => r.p95Ms), lookupsPerSec: mid((r) => r.lookupsPerSec ?? NaN),
        datagramsPerLookup: mid((r) => r.datagramsPerLookup), cpuMsPerLookup: mid((r) => r.cpuMsPerLookup),
        handshakesPerLookup: per.reduce((a, r) => a + r.handshakes, 0) / lookups, lookups, roundP50Ms: per.map((r) => r.p50Ms)
      }
    }
    return { ...figures, ...extra }
  }

  close(): Promise<void> {
    return withTimeout(this.net.close(), 60_000, 'weft testnet close')
  }

  private handshakes(): number {
    let n = 0
    for (const node of this.net.nodes) n += node.status().sessions?.handshakesStarted ?? 0
    return n
  }
}

/**
 * Weft alone in this process: the first-contact pass, a settling pass (new contacts learnt in the
 * first still open sessions), then `warmPasses` passes with the sessions up, one round each (`sessionsUp`).
 */
export async function benchWeft(nodes: number, lookups: number, seed: number, options: WeftBenchOptions = {}, warmPasses = 3): Promise<LookupFigures> {
  const rig = await WeftLookupRig.start(nodes, lookups, seed, options)
  try {
    const first = await rig.pass()
    await rig.pass()
    const warm: WeftPass[] = []
    for (let i = 0; i < warmPasses; i++) warm.push(await rig.pass())
    return rig.figures(first, warm.map((p) => [p]))
  } finally {
    await rig.close()
  }
}
