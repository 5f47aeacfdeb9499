// Unstructured search in the simulator: N real UnstructuredPeers (src/gossip/unstructured.ts) on a
// seeded random graph, a rare item placed on r random replicas, and searches from random nodes
// that do not hold it. Messages are delivered in FIFO order (every link the same delay), so a
// flood spreads breadth first: a peer first hears a query along a shortest path, and the hops to
// the first hit are the hop latency. One search runs to quiescence before the next starts.
//
// Measured per search: whether a hit reached the origin (success), the messages sent (queries and
// hits), the hops to the first hit, and for flooding the peers reached and the most times any one
// peer processed the query (1: the seen-cache kept every peer from forwarding twice).
import { WeftError } from '../errors.js'
import { SeededRandom } from '../runtime/prng.js'
import { distancesFrom, neighboursOf, randomGraph, UNSTRUCTURED_LIMITS, UnstructuredPeer, type Graph, type HitMessage, type SearchMode, type UnstructuredMessage } from './unstructured.js'

export const UNSTRUCTURED_SIM_LIMITS = {
  nodes: 2_000_000,
  searches: 1_000_000,
  /** Messages one search may cause before it is cut off (counted as cut). */
  messagesPerSearch: 50_000_000,
} as const

export interface UnstructuredNetworkOptions {
  nodes: number
  seed: string
  /** Neighbours per peer (regular-ish: degree to degree + 2). 5: HyParView's active view at these sizes. */
  degree?: number
  seenCache?: number
}

export interface SearchConfig {
  mode: SearchMode
  ttl: number
  /** Walkers (walk only). */
  walkers?: number
  /** Replicas of the item: a count of peers. */
  replicas: number
  searches: number
  /** Seed label for this run's placement and origins (defaults to the config itself). */
  label?: string
  onProgress?: (done: number, total: number) => void
}

export interface Stat { mean: number; p50: number; p95: number; max: number }

export interface UnstructuredResult {
  method: string
  mode: SearchMode
  nodes: number
  degree: number
  seed: string
  ttl: number
  walkers: number
  replicas: number
  searches: number
  succeeded: number
  successRate: number
  /** Queries and hits sent per search, and their sum. */
  messagesPerSearch: number
  queryMessagesPerSearch: number
  hitMessagesPerSearch: number
  /** Hops from the origin to the first hit's holder (successful searches). */
  hops: Stat
  /** Flood: peers that processed the query; walk: distinct peers visited is not tracked (0). */
  reachedPerSearch: number
  /** Flood: the most times one peer processed one query, over all searches (1 when the seen-cache works). */
  maxProcessedPerPeer: number
  duplicatesPerSearch: number
  hitsDropped: number
  /** Searches cut off at UNSTRUCTURED_SIM_LIMITS.messagesPerSearch. */
  cut: number
}

export class UnstructuredNetwork {
  readonly graph: Graph
  readonly peers: UnstructuredPeer[]
  readonly nodes: number
  readonly seed: string
  readonly meanDegree: number
  private readonly random: SeededRandom
  // The FIFO of messages in flight: (to, from, message).
  private qTo: number[] = []
  private qFrom: number[] = []
  private qMsg: UnstructuredMessage[] = []
  private hits: HitMessage[] = []
  private lastProcessed: Int32Array
  private lastDuplicates: Int32Array
  private touched: Uint8Array
  private touchedList: number[] = []

  constructor(o: UnstructuredNetworkOptions) {
    if (!Number.isInteger(o.nodes) || o.nodes < 2 || o.nodes > UNSTRUCTURED_SIM_LIMITS.nodes) throw new WeftError('ERR_BAD_ARGUMENT', `--nodes must be a whole number from 2 to ${UNSTRUCTURED_SIM_LIMITS.nodes}, got ${o.nodes}`)
    this.nodes = o.nodes
    this.seed = o.seed
    this.random = new SeededRandom(`${o.seed}:unstructured`)
    this.graph = randomGraph(o.nodes, o.degree ?? 5, this.random.fork('graph'))
    this.meanDegree = this.graph.targets.length / o.nodes
    const env = {
      random: this.random.fork('peers'),
      send: (to: number, m: UnstructuredMessage): void => { throw new Error(`unbound send ${to} ${m.type}`) },
      onHit: (h: HitMessage): void => { this.hits.push(h) },
    }
    this.peers = new Array(o.nodes)
    for (let i = 0; i < o.nodes; i++) {
      const from = i
      this.peers[i] = new UnstructuredPeer(i, neighboursOf(this.graph, i), { random: env.random, onHit: env.onHit, send: (to, m) => { this.qTo.push(to); this.qFrom.push(from); this.qMsg.push(m) } }, { seenCache: o.seenCache })
    }
    this.lastProcessed = new Int32Array(o.nodes)
    this.lastDuplicates = new Int32Array(o.nodes)
    this.touched = new Uint8Array(o.nodes)
  }

  /** The largest hop distance from `samples` random peers (the diameter when samples >= nodes). */
  eccentricity(samples: number): number {
    const r = new SeededRandom(`${this.seed}:diameter`)
    let worst = 0
    for (let s = 0; s < Math.min(samples, this.nodes); s++) {
      const from = samples >= this.nodes ? s : r.u32() % this.nodes
      const d = distancesFrom(this.graph, from)
      for (let i = 0; i < d.length; i++) {
        if (d[i] < 0) return Infinity
        if (d[i] > worst) worst = d[i]
      }
    }
    return worst
  }

  /** Places a fresh key on `replicas` distinct random peers and runs the searches for it. */
  run(c: SearchConfig): UnstructuredResult {
    const walkers = c.mode === 'walk' ? (c.walkers ?? 1) : 1
    if (!Number.isInteger(c.replicas) || c.replicas < 1 || c.replicas >= this.nodes) throw new WeftError('ERR_BAD_ARGUMENT', `--replicas must be a whole number from 1 to ${this.nodes - 1}, got ${c.replicas}`)
    if (!Number.isInteger(c.searches) || c.searches < 1 || c.searches > UNSTRUCTURED_SIM_LIMITS.searches) throw new WeftError('ERR_BAD_ARGUMENT', `searches must be a whole number from 1 to ${UNSTRUCTURED_SIM_LIMITS.searches}, got ${c.searches}`)
    if (!Number.isInteger(c.ttl) || c.ttl < 1 || c.ttl > UNSTRUCTURED_LIMITS.maxTtl) throw new WeftError('ERR_BAD_ARGUMENT', `--ttl must be a whole number from 1 to ${UNSTRUCTURED_LIMITS.maxTtl}, got ${c.ttl}`)
    const label = c.label ?? `${c.mode}:${c.ttl}:${walkers}:${c.replicas}`
    const r = new SeededRandom(`${this.seed}:${label}`)
    // The item's key: distinct per run, so runs on one network do not see each other's replicas.
    const key = r.u32()
    const holders = new Set<number>()
    while (holders.size < c.replicas) holders.add(r.u32() % this.nodes)
    for (const h of holders) this.peers[h].store(key)

    let succeeded = 0, queries = 0, hitMsgs = 0, duplicates = 0, reached = 0, maxProcessed = 0, cut = 0
    const hops: number[] = []
    const droppedBefore = this.peers.reduce((s, p) => s + p.stats.hitsDropped, 0)
    for (let s = 0; s < c.searches; s++) {
      let origin = r.u32() % this.nodes
      while (holders.has(origin)) origin = r.u32() % this.nodes
      this.hits.length = 0
      const id = this.peers[origin].search(key, c.mode, c.ttl, walkers)
      let sent = 0
      for (let head = 0; head < this.qTo.length; head++) {
        if (++sent > UNSTRUCTURED_SIM_LIMITS.messagesPerSearch) { cut++; break }
        const to = this.qTo[head], m = this.qMsg[head]
        if (m.type === 'query') queries++; else hitMsgs++
        if (!this.touched[to]) { this.touched[to] = 1; this.touchedList.push(to) }
        this.peers[to].receive(this.qFrom[head], m)
      }
      this.qTo.length = 0; this.qFrom.length = 0; this.qMsg.length = 0
      const mine = this.hits.filter((h) => h.id === id && h.key === key)
      if (mine.length > 0) { succeeded++; hops.push(Math.min(...mine.map((h) => h.hops))) }
      for (const i of this.touchedList) {
        const st = this.peers[i].stats
        duplicates += st.duplicates - this.lastDuplicates[i]
        this.lastDuplicates[i] = st.duplicates
        const p = st.processed
        const d = p - this.lastProcessed[i]
        if (d > 0) reached++
        if (d > maxProcessed) maxProcessed = d
        this.lastProcessed[i] = p
        this.touched[i] = 0
      }
      this.touchedList.length = 0
      if ((s + 1) % 50 === 0 || s + 1 === c.searches) c.onProgress?.(s + 1, c.searches)
    }
    const hitsDropped = this.peers.reduce((s, p) => s + p.stats.hitsDropped, 0) - droppedBefore
    const n = c.searches
    const round = (x: number, d = 3): number => Math.round(x * 10 ** d) / 10 ** d
    return {
      method: c.mode === 'flood' ? `flood TTL ${c.ttl}` : `${walkers} walkers TTL ${c.ttl}`,
      mode: c.mode, nodes: this.nodes, degree: round(this.meanDegree, 3), seed: this.seed, ttl: c.ttl, walkers, replicas: c.replicas, searches: n,
      succeeded, successRate: round(succeeded / n, 6),
      messagesPerSearch: round((queries + hitMsgs) / n), queryMessagesPerSearch: round(queries / n), hitMessagesPerSearch: round(hitMsgs / n),
      hops: stat(hops),
      reachedPerSearch: c.mode === 'flood' ? round(reached / n) : 0,
      maxProcessedPerPeer: maxProcessed,
      duplicatesPerSearch: round(duplicates / n), hitsDropped, cut,
    }
  }
}

function stat(xs: number[]): Stat {
  if (xs.length === 0) return { mean: 0, p50: 0, p95: 0, max: 0 }
  const s = [...xs].sort((a, b) => a - b)
  const at = (p: number): number => s[Math.min(s.length - 1, Math.floor(p * s.length))]
  return { mean: Math.round((s.reduce((a, b) => a + b, 0) / s.length) * 1000) / 1000, p50: at(0.5), p95: at(0.95), max: s[s.length - 1] }
}
