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
  timeLookups,
  toFigures,
  withTimeout,
  type LookupFigures
} from '../lib/measure.js'
import { createRng } from '../lib/stats.js'

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

export async function benchWeft(nodes: number, lookups: number, seed: number, options: WeftBenchOptions = {}): Promise<LookupFigures> {
  // The library is loaded by the static imports above, before the RSS baseline.
  // Installing the counter now also guards the join traffic (loopback only).
  const counter = datagramCounter()
  const rng = createRng(seed)

  const baseline = await settledMemory()
  const t0 = performance.now()
  let net: Testnet | undefined
  try {
    // Every node binds 127.0.0.1 (the testnet default host); node 0 starts the network with no
    // bootstrap list, the others join through node 0 only.
    // Only `encrypt` differs between the two builds: same seed, same identities, same lookups.
    const node = options.encrypt === undefined ? {} : { encrypt: options.encrypt }
    net = await withTimeout(createTestnet({ nodes, seed: String(seed), host: '127.0.0.1', node }), SETUP_TIMEOUT_MS, 'weft testnet setup')
    const setupMs = performance.now() - t0
    const testnet = net
    if (!testnet.bootstrap.startsWith('127.0.0.1:')) throw new Error(`unexpected bootstrap ${testnet.bootstrap}`)
    const rss = await settledMemory()

    // Keep (target, result ids) to check exactness against the oracle after the timed phase.
    const results: { target: Uint8Array; ids: Uint8Array[] }[] = []
    const picks: { node: number; target: Uint8Array }[] = []
    const run = await timeLookups(lookups, PER_LOOKUP_TIMEOUT_MS, async (_i, signal) => {
      const pick = { node: rng.int(testnet.nodes.length), target: rng.bytes(32) }
      picks.push(pick)
      const node = testnet.nodes[pick.node]
      const target = pick.target
      const r = await node.lookup(target, { signal })
      results.push({ target, ids: r.closest.map((c) => c.id) })
      // The result may include the asking node itself: success needs one OTHER node.
      return r.closest.some((c) => !idEquals(c.id, node.id))
    })
    // The same lookups again: every session they need is open now (with encryption, the first
    // pass paid a handshake per new peer; this one pays only the per-datagram sealing).
    const repeat = () => timeLookups(lookups, PER_LOOKUP_TIMEOUT_MS, async (i, signal) => {
      const r = await testnet.nodes[picks[i].node].lookup(picks[i].target, { signal })
      return r.closest.some((c) => !idEquals(c.id, testnet.nodes[picks[i].node].id))
    })
    // Twice: the first pass taught the nodes new contacts, so the second still meets a few peers
    // for the first time (and pays their handshakes); the third opens none (checked: 0 at N=200).
    await repeat()
    const again = await repeat()
    assertLoopbackOnly(counter)

    let exact = 0
    for (const { target, ids } of results) {
      const want = testnet.oracle(target, K)
      if (ids.length === want.length && ids.every((id, j) => idEquals(id, want[j]))) exact++
    }
    const figures = toFigures(weftImplName(options), nodes, run, { baseline, withNodes: rss }, setupMs)
    // Extra, Weft-only: fraction of lookups that returned exactly the true k nearest.
    const warm = toFigures(weftImplName(options), nodes, again, { baseline, withNodes: rss }, setupMs)
    const sessionsUp = { p50Ms: warm.p50Ms, p95Ms: warm.p95Ms, lookupsPerSec: warm.lookupsPerSec ?? NaN, datagramsPerLookup: warm.datagramsPerLookup }
    return { ...figures, exact: lookups === 0 ? 0 : exact / lookups, sessionsUp }
  } finally {
    if (net) await withTimeout(net.close(), 60_000, 'weft testnet close')
  }
}
