// Unstructured search, for comparison with the structured overlays: Gnutella-style flooding with a
// TTL, and k random walkers with a TTL, over a node's neighbour set (a random graph of a given
// degree, as HyParView's active views are). Sans-IO: a peer is given its neighbours, a random
// source and a `send(to, message)`, and is driven by `search()` and `receive()`.
//
//   flood   the origin sends QUERY(ttl) to every neighbour. A peer that has not seen the query id
//           remembers who sent it (a bounded seen-cache: id -> upstream), answers HIT to that
//           upstream if it holds the key, and passes QUERY(ttl - 1) to every neighbour but the
//           sender while ttl > 1. A duplicate is dropped. A HIT goes back along the reverse path,
//           each peer handing it to the upstream its cache names (Gnutella's QueryHit routing); a
//           peer whose cache has already forgotten the id drops it (counted).
//   walk    the origin sends k walkers, each to a random neighbour. A peer holding the key answers
//           HIT directly to the origin and ends that walker; otherwise, while ttl > 1, it passes the
//           walker to one random neighbour (not the one it came from, when it has another).
//           Walkers do not check back with the origin: each walks until it finds the key or its TTL
//           runs out (Lv et al. 2002, without checking).
//
// Addresses are small integers (the simulator's node indices). Messages are plain objects: this
// module runs in the simulator only, so it has no wire codec yet.
import { WeftError } from '../errors.js'
import type { Random } from '../runtime/runtime.js'

export const UNSTRUCTURED_LIMITS = {
  /** Hops a query may travel (a walker's steps). Gnutella's TTL is a byte; walks need longer. */
  maxTtl: 16_384,
  /** Walkers one search may send. */
  maxWalkers: 1_024,
  /** Entries a seen-cache may be given (it is searched newest first, so it stays small). */
  maxSeenCache: 4_096,
  /** Neighbours of one peer. */
  maxDegree: 1_024,
  /** Keys one peer stores. */
  maxStoreKeys: 65_536,
} as const

export const UNSTRUCTURED_DEFAULTS = {
  /** Query ids a peer remembers (and their upstreams, for hits going back). */
  seenCache: 64,
} as const

export type SearchMode = 'flood' | 'walk'

export interface QueryMessage {
  type: 'query'
  mode: SearchMode
  /** Query id (Gnutella's GUID), chosen by the origin. */
  id: number
  key: number
  origin: number
  /** Hops this message may still travel, counting the one that brought it. */
  ttl: number
  /** Hops travelled so far, counting the one that brought it. */
  hops: number
}

export interface HitMessage {
  type: 'hit'
  id: number
  key: number
  origin: number
  holder: number
  /** Hops from the origin to the holder (the query's path). */
  hops: number
}

export type UnstructuredMessage = QueryMessage | HitMessage

/** A bounded map from query id to the neighbour it came from: a ring, oldest forgotten first. */
export class SeenCache {
  readonly capacity: number
  private readonly ids: Uint32Array
  private readonly upstreams: Int32Array
  private next = 0
  private count = 0
  /** Ids forgotten to make room. */
  evicted = 0

  constructor(capacity: number = UNSTRUCTURED_DEFAULTS.seenCache) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > UNSTRUCTURED_LIMITS.maxSeenCache) {
      throw new WeftError('ERR_BAD_ARGUMENT', `seen-cache capacity must be a whole number from 1 to ${UNSTRUCTURED_LIMITS.maxSeenCache}, got ${capacity}`)
    }
    this.capacity = capacity
    this.ids = new Uint32Array(capacity)
    this.upstreams = new Int32Array(capacity)
  }

  get size(): number { return this.count }

  /** The upstream remembered for this id (-1: the origin itself), or undefined if not seen (or forgotten). */
  get(id: number): number | undefined {
    const c = this.capacity
    for (let n = 0, i = this.next; n < this.count; n++) {
      i = i === 0 ? c - 1 : i - 1
      if (this.ids[i] === id >>> 0) return this.upstreams[i]
    }
    return undefined
  }

  add(id: number, upstream: number): void {
    if (this.count === this.capacity) this.evicted++
    else this.count++
    this.ids[this.next] = id >>> 0
    this.upstreams[this.next] = upstream
    this.next = (this.next + 1) % this.capacity
  }
}

export interface UnstructuredEnv {
  send(to: number, message: UnstructuredMessage): void
  random: Random
  /** A hit for a search this peer started. */
  onHit?(hit: HitMessage): void
}

export interface UnstructuredPeerStats {
  /** Queries received, duplicates among them (flooding), and flooded queries processed (first receipt). */
  queries: number
  duplicates: number
  processed: number
  walkSteps: number
  hitsSent: number
  /** Hits that could not go back: the seen-cache had forgotten their id. */
  hitsDropped: number
}

export class UnstructuredPeer {
  readonly stats: UnstructuredPeerStats = { queries: 0, duplicates: 0, processed: 0, walkSteps: 0, hitsSent: 0, hitsDropped: 0 }
  private readonly seen: SeenCache
  private keys: Set<number> | null = null

  constructor(
    readonly address: number,
    private readonly neighbours: ArrayLike<number>,
    private readonly env: UnstructuredEnv,
    options: { seenCache?: number } = {},
  ) {
    if (neighbours.length > UNSTRUCTURED_LIMITS.maxDegree) throw new WeftError('ERR_BAD_ARGUMENT', `a peer may have at most ${UNSTRUCTURED_LIMITS.maxDegree} neighbours, got ${neighbours.length}`)
    this.seen = new SeenCache(options.seenCache ?? UNSTRUCTURED_DEFAULTS.seenCache)
  }

  get degree(): number { return this.neighbours.length }
  get seenSize(): number { return this.seen.size }
  get seenEvicted(): number { return this.seen.evicted }

  store(key: number): void {
    this.keys ??= new Set()
    if (this.keys.has(key)) return
    if (this.keys.size >= UNSTRUCTURED_LIMITS.maxStoreKeys) throw new WeftError('ERR_STORE_FULL', `a peer stores at most ${UNSTRUCTURED_LIMITS.maxStoreKeys} keys`)
    this.keys.add(key)
  }

  has(key: number): boolean { return this.keys !== null && this.keys.has(key) }

  /**
   * Starts a search from this peer and returns its query id. The local store is not consulted
   * (the caller knows it); hits arrive through `env.onHit`.
   */
  search(key: number, mode: SearchMode, ttl: number, walkers = 1): number {
    if (mode !== 'flood' && mode !== 'walk') throw new WeftError('ERR_BAD_ARGUMENT', `search mode must be flood or walk, got ${String(mode)}`)
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > UNSTRUCTURED_LIMITS.maxTtl) throw new WeftError('ERR_BAD_ARGUMENT', `ttl must be a whole number from 1 to ${UNSTRUCTURED_LIMITS.maxTtl}, got ${ttl}`)
    if (!Number.isInteger(walkers) || walkers < 1 || walkers > UNSTRUCTURED_LIMITS.maxWalkers) throw new WeftError('ERR_BAD_ARGUMENT', `walkers must be a whole number from 1 to ${UNSTRUCTURED_LIMITS.maxWalkers}, got ${walkers}`)
    const id = this.env.random.u32()
    const n = this.neighbours.length
    if (n === 0) return id
    const q: QueryMessage = { type: 'query', mode, id, key, origin: this.address, ttl, hops: 1 }
    if (mode === 'flood') {
      this.seen.add(id, -1)
      for (let i = 0; i < n; i++) this.env.send(this.neighbours[i], q)
    } else {
      for (let w = 0; w < walkers; w++) this.env.send(this.neighbours[this.env.random.u32() % n], q)
    }
    return id
  }

  receive(from: number, m: UnstructuredMessage): void {
    if (m.type === 'hit') return this.onHit(m)
    this.stats.queries++
    if (m.mode === 'flood') this.onFlood(from, m)
    else this.onWalk(from, m)
  }

  private onFlood(from: number, q: QueryMessage): void {
    if (this.seen.get(q.id) !== undefined) { this.stats.duplicates++; return }
    this.seen.add(q.id, from)
    this.stats.processed++
    if (this.has(q.key)) {
      this.stats.hitsSent++
      this.env.send(from, { type: 'hit', id: q.id, key: q.key, origin: q.origin, holder: this.address, hops: q.hops })
    }
    if (q.ttl <= 1) return
    const next: QueryMessage = { type: 'query', mode: q.mode, id: q.id, key: q.key, origin: q.origin, ttl: q.ttl - 1, hops: q.hops + 1 }
    for (let i = 0; i < this.neighbours.length; i++) {
      const to = this.neighbours[i]
      if (to !== from) this.env.send(to, next)
    }
  }

  private onWalk(from: number, q: QueryMessage): void {
    if (this.has(q.key)) {
      this.stats.hitsSent++
      this.env.send(q.origin, { type: 'hit', id: q.id, key: q.key, origin: q.origin, holder: this.address, hops: q.hops })
      return
    }
    if (q.ttl <= 1) return
    const n = this.neighbours.length
    if (n === 0) return
    let to = this.neighbours[this.env.random.u32() % n]
    if (to === from && n > 1) {
      // Not straight back: one of the others, uniformly.
      const j = this.env.random.u32() % (n - 1)
      to = this.neighbours[j]
      if (to === from) to = this.neighbours[n - 1]
    }
    this.stats.walkSteps++
    this.env.send(to, { type: 'query', mode: q.mode, id: q.id, key: q.key, origin: q.origin, ttl: q.ttl - 1, hops: q.hops + 1 })
  }

  private onHit(h: HitMessage): void {
    if (h.origin === this.address) { this.env.onHit?.(h); return }
    const up = this.seen.get(h.id)
    if (up === undefined || up < 0) { this.stats.hitsDropped++; return }
    this.env.send(up, h)
  }
}

/** Neighbour sets in compressed form: node i's neighbours are targets[offsets[i] .. offsets[i + 1]). */
export interface Graph {
  nodes: number
  offsets: Int32Array
  targets: Int32Array
}

export function neighboursOf(g: Graph, i: number): Int32Array {
  return g.targets.subarray(g.offsets[i], g.offsets[i + 1])
}

/**
 * A seeded random graph, regular-ish: each node in turn links to random others (that have room)
 * until it has `degree` neighbours; nobody gets more than degree + 2. Links are symmetric.
 */
export function randomGraph(nodes: number, degree: number, random: Random): Graph {
  if (!Number.isInteger(nodes) || nodes < 2) throw new WeftError('ERR_BAD_ARGUMENT', `a graph needs at least 2 nodes, got ${nodes}`)
  if (!Number.isInteger(degree) || degree < 1 || degree > Math.min(nodes - 1, UNSTRUCTURED_LIMITS.maxDegree - 2)) {
    throw new WeftError('ERR_BAD_ARGUMENT', `degree must be a whole number from 1 to ${Math.min(nodes - 1, UNSTRUCTURED_LIMITS.maxDegree - 2)}, got ${degree}`)
  }
  const cap = Math.min(degree + 2, nodes - 1)
  const adj = new Int32Array(nodes * cap)
  const deg = new Int32Array(nodes)
  const linked = (a: number, b: number): boolean => {
    for (let x = a * cap, e = x + deg[a]; x < e; x++) if (adj[x] === b) return true
    return false
  }
  for (let i = 0; i < nodes; i++) {
    // Bounded tries: near the end few nodes have room, and a node may end a little short.
    for (let tries = 0; deg[i] < degree && tries < 64 * degree; tries++) {
      const j = random.u32() % nodes
      if (j === i || deg[j] >= cap || linked(i, j)) continue
      adj[i * cap + deg[i]++] = j
      adj[j * cap + deg[j]++] = i
    }
  }
  const offsets = new Int32Array(nodes + 1)
  for (let i = 0; i < nodes; i++) offsets[i + 1] = offsets[i] + deg[i]
  const targets = new Int32Array(offsets[nodes])
  for (let i = 0; i < nodes; i++) targets.set(adj.subarray(i * cap, i * cap + deg[i]), offsets[i])
  return { nodes, offsets, targets }
}

/** Hop distances from one node (breadth first); -1 where it cannot reach. */
export function distancesFrom(g: Graph, from: number): Int32Array {
  const dist = new Int32Array(g.nodes).fill(-1)
  const queue = new Int32Array(g.nodes)
  let head = 0, tail = 0
  dist[from] = 0
  queue[tail++] = from
  while (head < tail) {
    const u = queue[head++]
    for (let x = g.offsets[u]; x < g.offsets[u + 1]; x++) {
      const v = g.targets[x]
      if (dist[v] < 0) { dist[v] = dist[u] + 1; queue[tail++] = v }
    }
  }
  return dist
}
