// The polyring with failures, in the simulator: a shape (as StaticPolyring builds it) whose
// GUIDs are clusters of one or more peers, one sans-IO LivePeer (live-peer.ts) per peer, and a
// MemoryWorld's clock and event queue carrying their messages (objects, not bytes) with a fixed
// 10..50 ms latency per link. A crashed peer drops everything it gets, so a routed message that
// is not resent elsewhere is really lost. Each routed message is tracked end to end by its id.
import { WeftError } from '../../errors.js'
import { MemoryWorld } from '../../runtime/memory.js'
import type { SeededRandom } from '../../runtime/prng.js'
import { type Guid, formatGuid } from './guid.js'
import { PolyringTable } from './table.js'
import { ClusterDirectory } from './cluster.js'
import { HEARTBEAT_MISSES, HEARTBEAT_MS, LivePeer, type LiveMessage } from './live-peer.js'
import { StaticPolyring, linkLatency } from './sim.js'

/** Longest one-way link latency of the model (linkLatency: 10..50 ms). */
export const MAX_LINK_MS = 50
/** Most routed messages one simulated run tracks. */
export const MAX_TRACKED = 1_000_000

export interface LiveBuildOptions {
  /** Ring sizes per level, as StaticPolyring. */
  shape: number[]
  /** Peers per GUID at each level (default 1); [3] makes every centre GUID a cluster of 3. */
  clusters?: number[]
  random?: SeededRandom
  fill?: number
  seed?: string
  heartbeatMs?: number
  misses?: number
  ackTimeoutMs?: number
  maxAttempts?: number
}

export interface Promotion { peer: number; from: string; to: string; at: number }

export class LivePolyring {
  readonly world: MemoryWorld
  /** One table per cluster (GUID), replicated among its members (and the state its heir holds). */
  readonly tables: PolyringTable[]
  readonly directory: ClusterDirectory
  readonly peers: LivePeer[] = []
  readonly heartbeatMs: number
  readonly misses: number
  /** Messages carried, by kind. */
  readonly carried: Record<LiveMessage['kind'], number> = { ping: 0, pong: 0, route: 0, ack: 0, members: 0, handover: 0 }
  /** Per routed message id. */
  readonly dest: Guid[] = []
  readonly sentAt: number[] = []
  readonly deliveredTo: number[] = []
  /** The GUID the receiving peer held when it delivered (it may move up later). */
  readonly deliveredAs: (Guid | null)[] = []
  readonly deliveredAt: number[] = []
  readonly deliveries: number[] = []
  readonly resends: number[] = []
  readonly lost: (string | null)[] = []
  /** Failure detections: when each (detector, dead peer) pair fired, and the latest. */
  detections = 0
  lastDetectionAt = 0
  readonly promotions: Promotion[] = []

  constructor(o: LiveBuildOptions) {
    const shape = new StaticPolyring({ shape: o.shape, random: o.random, fill: o.fill })
    // Own copies of every table (a real node's), since leaves and takeovers write to them.
    this.tables = shape.tables.map((t) => PolyringTable.shared(t.self, t.parent, t.siblings.slice(), t.children.slice()))
    const sizes = this.tables.map((t) => o.clusters?.[t.depth - 1] ?? 1)
    this.directory = new ClusterDirectory(sizes)
    this.world = new MemoryWorld(o.seed ?? 'polyring-live')
    this.heartbeatMs = o.heartbeatMs ?? HEARTBEAT_MS
    this.misses = o.misses ?? HEARTBEAT_MISSES
    const hooks = {
      onDeliver: (peer: number, m: { id: number }) => {
        this.deliveries[m.id]++; this.deliveredTo[m.id] = peer; this.deliveredAs[m.id] = this.peers[peer].guid; this.deliveredAt[m.id] = this.world.now() },
      onResend: (_peer: number, id: number) => { this.resends[id]++ },
      onLost: (_peer: number, id: number, why: string) => { this.lost[id] ??= why },
      onDetect: () => { this.detections++; this.lastDetectionAt = this.world.now() },
      onPromote: (peer: number, from: number, to: number) => {
        this.promotions.push({ peer, from: formatGuid(this.tables[from].self), to: formatGuid(this.tables[to].self), at: this.world.now() })
      },
    }
    for (let p = 0; p < this.directory.peers; p++) {
      this.peers.push(new LivePeer({
        self: p, cluster: this.directory.clusterOf[p], directory: this.directory, tables: this.tables,
        runtime: this.world.runtime(p), send: (to, m) => this.transmit(p, to, m), hooks,
        heartbeatMs: this.heartbeatMs, misses: this.misses, ackTimeoutMs: o.ackTimeoutMs, maxAttempts: o.maxAttempts,
      }))
    }
    for (const p of this.peers) p.start()
  }

  /**
   * Longest time from a crash until every neighbour has dropped the dead peer: its last pong
   * may arrive up to one link latency after it died, silence must then exceed misses ×
   * interval, and checks run once an interval.
   */
  get failoverWindowMs(): number { return (this.misses + 1) * this.heartbeatMs + MAX_LINK_MS }

  guidOf(p: number): Guid { return this.peers[p].guid }
  isAlive(p: number): boolean { return this.peers[p].alive }
  livePeers(): number[] { return this.peers.flatMap((q, p) => (q.alive ? [p] : [])) }
  /** Live peers holding each cluster (GUID) now. */
  holders(): Map<number, number[]> {
    const out = new Map<number, number[]>()
    for (let p = 0; p < this.peers.length; p++) {
      const q = this.peers[p]
      if (!q.alive) continue
      const l = out.get(q.cluster)
      if (l) l.push(p); else out.set(q.cluster, [p])
    }
    return out
  }

  crash(p: number): void { this.peers[p].crash() }
  leave(p: number): void { this.peers[p].leave() }

  /** Routes a message from peer `from` to GUID `dest`; returns its id. */
  send(from: number, dest: Guid): number {
    const id = this.dest.length
    if (id >= MAX_TRACKED) throw new WeftError('ERR_TOO_LARGE', `over ${MAX_TRACKED} tracked messages`)
    this.dest.push(dest); this.sentAt.push(this.world.now()); this.deliveredTo.push(-1); this.deliveredAs.push(null); this.deliveredAt.push(-1)
    this.deliveries.push(0); this.resends.push(0); this.lost.push(null)
    this.peers[from].send(dest, Uint8Array.of(id & 0xff, (id >>> 8) & 0xff, (id >>> 16) & 0xff), id)
    return id
  }

  /** Runs the world for `ms` of virtual time (heartbeats never stop, so it never drains). */
  runFor(ms: number): void {
    let done = false
    this.world.schedule(ms, () => { done = true })
    while (!done && this.world.step()) { /* run */ }
  }

  private transmit(from: number, to: number, m: LiveMessage): void {
    this.carried[m.kind]++
    this.world.schedule(linkLatency(from, to), () => {
      const q = this.peers[to]
      if (q.alive) q.receive(from, m) // a crashed peer drops everything
    })
  }

  /** Sum of one stat over all peers. */
  total(key: keyof LivePeer['stats']): number {
    let n = 0
    for (const q of this.peers) n += q.stats[key]
    return n
  }
}
