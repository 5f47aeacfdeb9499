// Broadcast in the simulator: N nodes run the real rpc + HyParView + Plumtree code on one
// MemoryWorld, join one by one through random live nodes, and broadcast from random live nodes;
// every delivery is checked (each live node exactly once), then half the nodes crash at once and
// it is checked again after repair. bench/broadcast.ts and test/gossip-broadcast.test.ts drive it.
import { WeftError } from '../errors.js'
import { ContactPool } from '../overlay/contact-pool.js'
import { MemoryWorld } from '../runtime/memory.js'
import { SeededRandom } from '../runtime/prng.js'
import { Rpc } from '../rpc/rpc.js'
import { linkModel } from '../sim/latency.js'
import { PacketTransport } from '../transport/transport.js'
import { setAddressCacheSize } from '../wire/address.js'
import { BroadcastOp, MAX_PACKET } from '../wire/messages.js'
import { Gossip, gossipOptions, GLOBAL_CHANNEL, type Channel } from './gossip.js'
import type { HyParViewOptions } from './hyparview.js'
import { newGossipStats, type GossipStats } from './link.js'
import { broadcastId, type PlumtreeOptions } from './plumtree.js'

export interface BroadcastSimOptions {
  nodes: number
  seed: string
  latency: 'geo' | 'uniform'
  /** Nodes joining at once (at least; the network grows by up to a tenth of itself at a time). */
  joinConcurrency: number
  /** Virtual ms of upkeep (shuffles, keepalives) after the build. */
  warmupMs: number
  /** Broadcasts that shape the tree before measuring (their duplicates turn links lazy). */
  warmBroadcasts: number
  /** Broadcasts measured in steady state, and again after the failure and repair. */
  broadcasts: number
  /** Virtual ms given to each broadcast before the next (they do not overlap). */
  gapMs: number
  /** Share of nodes that crash at once. */
  fail: number
  /** Virtual ms between the crash and the first broadcast measured "after repair". */
  repairMs: number
  payloadBytes: number
  hyparview?: Partial<HyParViewOptions>
  plumtree?: Partial<PlumtreeOptions>
  onProgress?: (phase: string, done: number, total: number) => void
}

export const defaultBroadcastSimOptions: BroadcastSimOptions = {
  nodes: 1000, seed: '1', latency: 'geo', joinConcurrency: 16, warmupMs: 60_000, warmBroadcasts: 3, broadcasts: 10,
  gapMs: 10_000, fail: 0.5, repairMs: 60_000, payloadBytes: 100,
}

/** One broadcast, judged. */
export interface BroadcastOutcome {
  origin: number
  /** Live nodes when it was sent (the origin included), and how many delivered it (each at most once). */
  live: number
  delivered: number
  /** Deliveries of one message more than once at one node (must be 0). */
  duplicatesDelivered: number
  /** Tree depth: the largest round (hops from the origin) at which a node got it. */
  maxRound: number
  meanRound: number
  latencyMs: { p50: number; p95: number; max: number }
  /** Datagrams sent for this broadcast, by kind. */
  gossip: number
  ihave: number
  ihaveIds: number
  graft: number
  prune: number
  /** rounds[r]: deliveries at round r. */
  rounds: number[]
  /** Latency percentiles 0..100 (virtual ms). */
  cdf: number[]
}

export interface PhaseSummary {
  broadcasts: number
  /** Broadcasts that reached every live node. */
  complete: number
  minDeliveredShare: number
  duplicatesDelivered: number
  /** Per broadcast, divided by the live nodes N. */
  payloadPerN: number
  ihavePerN: number
  ihaveIdsPerN: number
  graftPerN: number
  prunePerN: number
  controlPerN: number
  maxRound: number
  meanRound: number
  latencyMs: { p50: number; p95: number; max: number }
  rounds: number[]
  latencyCdf: number[]
}

export interface BroadcastSimResult {
  nodes: number
  seed: string
  latency: string
  joinFailures: number
  build: { virtualMs: number; events: number }
  views: { activeMean: number; passiveMean: number; isolated: number }
  /** Upkeep per live node per virtual second (PING keepalives, SHUFFLE walks, NEIGHBOR). */
  upkeepPerNodePerSec: number
  warm: PhaseSummary
  steady: PhaseSummary
  /** Sent right after the crash, before repair (not required to reach everyone). */
  duringRepair: PhaseSummary
  afterRepair: PhaseSummary
  viewsAfterRepair: { activeMean: number; passiveMean: number; isolated: number }
  failed: number
  survivors: number
  options: Omit<BroadcastSimOptions, 'onProgress'>
}

const PORT = 4000

interface Snapshot { gossip: number; ihave: number; ihaveIds: number; graft: number; prune: number }
interface Tracked {
  origin: number; sentAt: number; live: number; got: Uint8Array; delivered: number; dup: number; rounds: number[]; latencies: number[]
  before: Snapshot; after: Snapshot | null
}
const keyOf = (id: Uint8Array): string => Buffer.from(id.buffer, id.byteOffset, id.length).toString('latin1')

export class BroadcastSim {
  readonly options: BroadcastSimOptions
  readonly world: MemoryWorld
  readonly stats: GossipStats = newGossipStats()
  readonly pool = new ContactPool(1024)
  private readonly links
  private readonly random: SeededRandom
  private readonly gossipOptions
  private channels: (Channel | null)[] = []
  private rpcs: (Rpc | null)[] = []
  private addresses: string[] = []
  /** Per node index: 1 when running and joined. */
  private live: Uint8Array
  private liveCount = 0
  private joinFailures = 0
  /** The broadcasts of the phase being measured, by id: delivery per node, rounds and times. */
  private tracked = new Map<string, Tracked>()

  constructor(options: Partial<BroadcastSimOptions> = {}) {
    const o = this.options = { ...defaultBroadcastSimOptions, ...options }
    if (!Number.isInteger(o.nodes) || o.nodes < 2 || o.nodes > 4_000_000) throw new WeftError('ERR_BAD_ARGUMENT', `--nodes must be a whole number from 2 to 4,000,000, got ${o.nodes}`)
    if (!(o.fail >= 0 && o.fail < 1)) throw new WeftError('ERR_BAD_ARGUMENT', `--fail must be at least 0 and below 1, got ${o.fail}`)
    this.links = linkModel(o.latency, 0)
    this.world = new MemoryWorld(o.seed, this.links)
    this.random = new SeededRandom(`${o.seed}:broadcast`)
    this.live = new Uint8Array(o.nodes)
    this.gossipOptions = gossipOptions({ hyparview: o.hyparview, plumtree: o.plumtree })
    setAddressCacheSize(2 * o.nodes)
  }

  private progress(phase: string, done: number, total: number): void { this.options.onProgress?.(phase, done, total) }

  /** Runs the world for `ms` of virtual time (protocol code here is callbacks only: no microtasks to drain). */
  runFor(ms: number): void {
    let stop = false
    this.world.schedule(ms, () => { stop = true })
    while (!stop && this.world.step()) { /* next event */ }
  }

  private spawn(): number {
    const o = this.options
    const i = this.channels.length
    const host = `${10 + Math.floor(i / 16_777_216)}.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`
    const ep = this.world.bindNow(host, PORT)
    this.links.place(ep.index, this.random)
    const runtime = this.world.runtime(i)
    const transport = new PacketTransport(ep, MAX_PACKET)
    const id = this.random.bytes(32)
    const rpc = new Rpc(runtime, transport, id, SIM_RPC)
    const gossip = new Gossip({ runtime, rpc, id, address: () => transport.address, send: (to, b) => transport.send(to, b), pool: this.pool, stats: this.stats, answerPings: true }, this.gossipOptions)
    const channel = gossip.open(GLOBAL_CHANNEL, (id, _payload, round) => this.delivered(i, id, round))
    this.channels.push(channel)
    this.rpcs.push(rpc)
    this.addresses.push(ep.address)
    return i
  }


  private delivered(i: number, id: Uint8Array, round: number): void {
    const c = this.tracked.get(keyOf(id))
    if (!c) return
    if (c.got[i]) { c.dup++; return }
    c.got[i] = 1
    c.delivered++
    c.rounds[round] = (c.rounds[round] ?? 0) + 1
    c.latencies.push(this.world.now() - c.sentAt)
  }

  private randomLive(): number {
    for (;;) {
      const i = this.random.u32() % this.channels.length
      if (this.live[i]) return i
    }
  }

  /** Builds the overlay by joins: node 0 alone, then each newcomer through a random joined node. */
  build(): void {
    const o = this.options
    this.spawn()
    this.live[0] = 1
    this.liveCount = 1
    let joined = 1, active = 0
    const start = this.world.stats.events
    const launch = (): void => {
      while (this.channels.length < o.nodes && active < Math.max(o.joinConcurrency, Math.floor(joined / 10))) {
        const i = this.spawn()
        active++
        const attempt = (tries: number): void => {
          this.channels[i]!.join([this.addresses[this.randomLive()]], (err) => {
            if (err && tries < 3) { attempt(tries + 1); return }
            if (err) this.joinFailures++
            active--
            this.live[i] = 1
            this.liveCount++
            if (++joined % 1000 === 0 || joined === o.nodes) this.progress('joining', joined, o.nodes)
            launch()
          })
        }
        attempt(1)
      }
    }
    launch()
    while (joined < o.nodes && this.world.step()) { /* joins run */ }
    if (joined < o.nodes) throw new WeftError('ERR_TIMEOUT', `only ${joined} of ${o.nodes} nodes joined`)
    this.buildStats = { virtualMs: Math.round(this.world.now()), events: this.world.stats.events - start }
  }

  private buildStats = { virtualMs: 0, events: 0 }

  /** Sends one message from a random live node and runs the world `gapMs`; judged at the end of its phase. */
  private broadcastOnce(): Tracked {
    const o = this.options
    const origin = this.randomLive()
    const payload = this.random.bytes(o.payloadBytes)
    const t: Tracked = { origin, sentAt: this.world.now(), live: this.liveCount, got: new Uint8Array(this.channels.length), delivered: 0, dup: 0, rounds: [], latencies: [], before: this.snapshot(), after: null }
    this.tracked.set(keyOf(broadcastId(payload)), t)
    this.channels[origin]!.broadcast(payload)
    this.runFor(o.gapMs)
    t.after = this.snapshot()
    return t
  }

  private judge(t: Tracked): BroadcastOutcome {
    const lat = t.latencies.sort((a, b) => a - b)
    const q = (p: number): number => lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : NaN
    const rounds = Array.from({ length: t.rounds.length }, (_, r) => t.rounds[r] ?? 0)
    const sum = rounds.reduce((s, n, r) => s + n * r, 0)
    const { before, after } = t
    return {
      origin: t.origin, live: t.live, delivered: t.delivered, duplicatesDelivered: t.dup,
      maxRound: rounds.length - 1, meanRound: t.delivered ? sum / t.delivered : NaN,
      latencyMs: { p50: q(0.5), p95: q(0.95), max: lat[lat.length - 1] ?? NaN },
      gossip: after!.gossip - before.gossip, ihave: after!.ihave - before.ihave, ihaveIds: after!.ihaveIds - before.ihaveIds,
      graft: after!.graft - before.graft, prune: after!.prune - before.prune, rounds,
      cdf: Array.from({ length: 101 }, (_, p) => Math.round(q(p / 100) * 10) / 10),
    }
  }

  private snapshot(): Snapshot {
    const s = this.stats
    return {
      gossip: s.broadcastOut[BroadcastOp.GOSSIP], ihave: s.broadcastOut[BroadcastOp.IHAVE], ihaveIds: s.ihaveIds,
      graft: s.broadcastOut[BroadcastOp.GRAFT], prune: s.broadcastOut[BroadcastOp.PRUNE],
    }
  }

  private upkeepCount(): number {
    const s = this.stats
    return s.keepalives + s.membershipOut.reduce((a, b) => a + b, 0)
  }

  /** Crashes this share of the live nodes at once, without a word (drawn by the seed). */
  failMany(share: number): number {
    const liveIdx: number[] = []
    for (let i = 0; i < this.channels.length; i++) if (this.live[i]) liveIdx.push(i)
    let failed = 0
    for (let left = Math.round(share * liveIdx.length), n = liveIdx.length; left > 0; left--, n--) {
      const at = this.random.u32() % n
      this.crash(liveIdx[at])
      liveIdx[at] = liveIdx[n - 1]
      failed++
    }
    return failed
  }

  private crash(i: number): void {
    this.channels[i]?.close()
    this.rpcs[i]?.close()
    this.world.unbind(this.addresses[i]) // datagrams to it go nowhere
    this.channels[i] = null
    this.rpcs[i] = null
    this.live[i] = 0
    this.liveCount--
  }

  views(): { activeMean: number; passiveMean: number; isolated: number } {
    let a = 0, p = 0, n = 0, isolated = 0
    for (const c of this.channels) {
      if (!c) continue
      n++
      a += c.membership.active.length
      p += c.membership.passive.length
      if (c.membership.active.length === 0) isolated++
    }
    return { activeMean: a / n, passiveMean: p / n, isolated }
  }

  private phase(name: string, count: number): { summary: PhaseSummary; outcomes: BroadcastOutcome[] } {
    const sent: Tracked[] = []
    for (let k = 0; k < count; k++) {
      sent.push(this.broadcastOnce())
      this.progress(name, k + 1, count)
    }
    this.tracked.clear() // late deliveries (after the phase) no longer count
    const outcomes = sent.map((t) => this.judge(t))
    return { summary: summarize(outcomes), outcomes }
  }

  /** The whole run: build, warm-up, steady broadcasts, crash, repair, broadcasts again. */
  run(): BroadcastSimResult {
    const o = this.options
    this.build()
    const upkeepStart = this.upkeepCount(), t0 = this.world.now()
    const step = Math.max(1000, o.warmupMs / 10)
    for (let t = 0; t < o.warmupMs; t += step) { this.runFor(Math.min(step, o.warmupMs - t)); this.progress('warm-up', Math.min(o.warmupMs, t + step), o.warmupMs) }
    const upkeepPerNodePerSec = (this.upkeepCount() - upkeepStart) / this.liveCount / ((this.world.now() - t0) / 1000 || 1)
    const views = this.views()
    const warm = this.phase('tree forming', o.warmBroadcasts).summary
    const steady = this.phase('steady state', o.broadcasts).summary
    const failed = this.failMany(o.fail)
    const duringRepair = this.phase('right after the crash', Math.min(3, o.broadcasts)).summary
    const waited = Math.min(3, o.broadcasts) * o.gapMs
    if (o.repairMs > waited) this.runFor(o.repairMs - waited)
    const viewsAfterRepair = this.views()
    const afterRepair = this.phase('after repair', o.broadcasts).summary
    const { onProgress: _, ...options } = o
    return {
      nodes: o.nodes, seed: o.seed, latency: o.latency, joinFailures: this.joinFailures, build: this.buildStats, views,
      upkeepPerNodePerSec, warm, steady, duringRepair, afterRepair, viewsAfterRepair, failed, survivors: this.liveCount, options,
    }
  }
}

/** Simulated nodes keep per-address rpc state for 64 peers (as the lookup simulator). */
const SIM_RPC = { addressTableSize: 64 }

export function summarize(outs: BroadcastOutcome[]): PhaseSummary {
  const n = outs.length
  const mean = (f: (o: BroadcastOutcome) => number): number => (n ? outs.reduce((s, o) => s + f(o), 0) / n : NaN)
  const rounds: number[] = []
  for (const o of outs) o.rounds.forEach((c, r) => { rounds[r] = (rounds[r] ?? 0) + c })
  const allRounds = Array.from({ length: rounds.length }, (_, r) => rounds[r] ?? 0)
  const total = allRounds.reduce((a, b) => a + b, 0)
  const meanRound = total ? allRounds.reduce((s, c, r) => s + c * r, 0) / total : NaN
  return {
    broadcasts: n,
    complete: outs.filter((o) => o.delivered === o.live && o.duplicatesDelivered === 0).length,
    minDeliveredShare: n ? Math.min(...outs.map((o) => o.delivered / o.live)) : NaN,
    duplicatesDelivered: outs.reduce((s, o) => s + o.duplicatesDelivered, 0),
    payloadPerN: mean((o) => o.gossip / o.live),
    ihavePerN: mean((o) => o.ihave / o.live),
    ihaveIdsPerN: mean((o) => o.ihaveIds / o.live),
    graftPerN: mean((o) => o.graft / o.live),
    prunePerN: mean((o) => o.prune / o.live),
    controlPerN: mean((o) => (o.ihave + o.graft + o.prune) / o.live),
    maxRound: Math.max(...outs.map((o) => o.maxRound)),
    meanRound,
    latencyMs: { p50: mean((o) => o.latencyMs.p50), p95: mean((o) => o.latencyMs.p95), max: Math.max(...outs.map((o) => o.latencyMs.max)) },
    rounds: allRounds,
    latencyCdf: Array.from({ length: 101 }, (_, p) => Math.round(mean((o) => o.cdf[p]) * 10) / 10),
  }
}
