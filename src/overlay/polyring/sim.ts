// The polyring in the simulator: a static shape of rings (no join protocol, sessions or
// datagrams yet), every peer with its real PolyringTable and a sans-IO PolyringPeer (peer.ts)
// whose messages (objects, not bytes) are carried on a MemoryWorld's virtual clock and event
// queue under a light link and sending model. `route`/`routeRandom` also walk the decision
// synchronously, for exact hop checks. Peers are handles 0..N-1 in breadth-first order: handle
// h's GUID is `guidOf(h)`, its table `tables[h]`.
import { WeftError } from '../../errors.js'
import { MemoryWorld } from '../../runtime/memory.js'
import type { SeededRandom } from '../../runtime/prng.js'
import { type Guid, MAX_DEPTH, encodedGuidLength, isInSubtree } from './guid.js'
import { DELIVER, NO_ROUTE, nextHop } from './route.js'
import { PolyringPeer, type PolyMessage } from './peer.js'
import { NONE, PolyringTable, MAX_RING } from './table.js'

/** Most peers one simulated polyring may hold. */
export const MAX_SIM_PEERS = 4_000_000

/** `10x10x10` → [10, 10, 10]: the centre ring's size, then each peer's number of children per level. */
export function parseShape(text: string): number[] {
  const parts = String(text).split('x')
  const shape = parts.map((p) => (/^[1-9][0-9]{0,6}$/.test(p) ? Number(p) : NaN))
  if (shape.length < 1 || shape.length > MAX_DEPTH || shape.some((n) => !(n >= 1 && n <= MAX_RING))) {
    throw new WeftError('ERR_BAD_ARGUMENT', `bad polyring shape ${JSON.stringify(text)}: expected ring sizes like 10x10x10 (1..${MAX_RING} each, at most ${MAX_DEPTH} levels)`)
  }
  return shape
}

export interface BuildOptions {
  /** Ring sizes per level: shape[0] centre peers, each peer at level l has shape[l+1] children. */
  shape: number[]
  /**
   * With a random source, each ring has a random size in ceil(shape[l] / 2)..shape[l] (and a
   * peer has no children at all one time in ten), and each slot is filled with probability
   * `fill` (gaps, as leaves leave them; a centre ring keeps at least one peer).
   */
  random?: SeededRandom
  fill?: number
}

export class StaticPolyring {
  readonly tables: PolyringTable[] = []
  /** Level of each handle (its GUID's length - 1). */
  readonly depth: number

  constructor(readonly options: BuildOptions) {
    const { shape, random } = options
    const fill = options.fill ?? 1
    if (shape.length < 1 || shape.length > MAX_DEPTH) throw new WeftError('ERR_BAD_ARGUMENT', `polyring shape depth ${shape.length} not in 1..${MAX_DEPTH}`)
    let total = 0, level = 1
    for (const s of shape) { level *= s; total += level }
    if (!random && total > MAX_SIM_PEERS) throw new WeftError('ERR_TOO_LARGE', `shape ${shape.join('x')} has ${total} peers, over ${MAX_SIM_PEERS}`)
    this.depth = shape.length
    // One ring: sized, with gaps when random; coordinates hold new handles.
    const ring = (max: number, atLeastOne: boolean): Int32Array => {
      const half = Math.ceil(max / 2)
      const size = !random ? max : !atLeastOne && random.float() < 0.1 ? 0 : half + Math.floor(random.float() * (max - half + 1))
      const r = new Int32Array(size).fill(NONE)
      let any = false
      for (let i = 0; i < size; i++) {
        // -3 marks a slot to be numbered when its ring's turn comes (breadth first).
        if (!random || random.float() < fill || (atLeastOne && !any && i === size - 1)) { r[i] = -3; any = true }
      }
      return r
    }
    const EMPTY = new Int32Array(0)
    // Breadth first: number each ring's members as they are made.
    const centre = ring(shape[0], true)
    const pending: { ring: Int32Array; parent: number; prefix: Guid }[] = [{ ring: centre, parent: NONE, prefix: new Uint32Array(0) }]
    for (let q = 0; q < pending.length; q++) {
      const { ring: r, parent, prefix } = pending[q]
      for (let i = 0; i < r.length; i++) {
        if (r[i] !== -3) continue
        if (this.tables.length >= MAX_SIM_PEERS) throw new WeftError('ERR_TOO_LARGE', `over ${MAX_SIM_PEERS} peers`)
        r[i] = this.tables.length
        const g = new Uint32Array(prefix.length + 1)
        g.set(prefix)
        g[prefix.length] = i
        this.tables.push(PolyringTable.shared(g, parent, r, EMPTY))
      }
      const lvl = prefix.length
      if (lvl + 1 < shape.length) {
        for (let i = 0; i < r.length; i++) {
          if (r[i] < 0) continue
          const t = this.tables[r[i]]
          const kids = ring(shape[lvl + 1], false)
          let n = 0
          for (let k = 0; k < kids.length; k++) if (kids[k] !== NONE) n++
          if (n === 0) continue
          t.children = kids
          ;(t as unknown as { nChildren: number }).nChildren = n
          pending.push({ ring: kids, parent: r[i], prefix: t.self })
        }
      }
    }
    // Sibling counts: each table was made before its ring was fully numbered.
    for (const t of this.tables) {
      let n = 0
      const s = t.siblings, own = t.ownCoord
      for (let i = 0; i < s.length; i++) if (s[i] !== NONE && i !== own) n++
      ;(t as unknown as { nSiblings: number }).nSiblings = n
    }
  }

  get peers(): number { return this.tables.length }
  guidOf(h: number): Guid { return this.tables[h].self }

  /** Bytes of typed-array contents per peer, counting each shared ring once. */
  arrayBytesPerPeer(): number {
    const seen = new Set<Int32Array>()
    let bytes = 0
    for (const t of this.tables) {
      bytes += t.self.byteLength
      for (const a of [t.siblings, t.children]) if (!seen.has(a)) { seen.add(a); bytes += a.byteLength }
    }
    return bytes / this.peers
  }

  /** Bytes per peer if every peer held its own copies (what a real node holds): 4 per sibling slot and child slot, 4 per coordinate. */
  ownArrayBytesPerPeer(): number {
    let bytes = 0
    for (const t of this.tables) bytes += t.self.byteLength + t.siblings.byteLength + t.children.byteLength
    return bytes / this.peers
  }

  /** A random live peer's handle. */
  randomPeer(random: SeededRandom): number { return Math.floor(random.float() * this.peers) }

  /** Routes a message hop by hop with each peer's own decision. */
  route(from: number, dest: Guid): { delivered: boolean; at: number; hops: number; path?: number[] } {
    let h = from, hops = 0
    for (;;) {
      const next = nextHop(this.tables[h], dest)
      if (next === DELIVER) return { delivered: true, at: h, hops }
      if (next === NO_ROUTE || next < 0) return { delivered: false, at: h, hops }
      h = next
      if (++hops > 2 * MAX_DEPTH) return { delivered: false, at: h, hops }
    }
  }

  /** `count` messages between random peers (destinations are peers' GUIDs). */
  routeRandom(count: number, random: SeededRandom): RouteStats {
    let delivered = 0, wrong = 0, maxHops = 0, sumHops = 0, overBound = 0
    for (let i = 0; i < count; i++) {
      const a = this.randomPeer(random), b = this.randomPeer(random)
      const dest = this.guidOf(b)
      const r = this.route(a, dest)
      if (!r.delivered) continue
      if (r.at !== b) { wrong++; continue }
      delivered++
      sumHops += r.hops
      if (r.hops > maxHops) maxHops = r.hops
      if (r.hops > 2 * Math.max(this.guidOf(a).length, dest.length)) overBound++
    }
    return { messages: count, delivered, wrong, overBound, maxHops, meanHops: delivered ? sumHops / delivered : 0 }
  }

  /**
   * The protocol: one PolyringPeer (peer.ts) per handle, made at first use, whose sends go through
   * `transmit`: a peer sends its copies one after another, each taking `sendMs` of its uplink,
   * and a link adds a fixed one-way latency of 10..50 ms (a hash of its two ends, so runs that
   * differ only in order see the same links), on a MemoryWorld's clock and event queue.
   */
  private net: {
    world: MemoryWorld; peers: PolyringPeer[]; busy: Float64Array; sendMs: number; sent: number
    onSend: ((from: number, to: number, m: PolyMessage) => void) | null
    onDeliver: ((at: number, m: PolyMessage) => void) | null
  } | null = null

  /** The peers and the simulated network under them (made once). */
  network(seed = 'polyring-sim') {
    if (this.net) return this.net
    const world = new MemoryWorld(seed)
    const n = this.peers
    const seen = n > 100_000 ? 4 : 64
    const net = { world, peers: new Array<PolyringPeer>(n), busy: new Float64Array(n), sendMs: 1, sent: 0, onSend: null, onDeliver: null } as NonNullable<StaticPolyring['net']>
    const transmit = (from: number, to: number, m: PolyMessage): void => {
      net.sent++
      net.onSend?.(from, to, m)
      const now = world.now()
      const depart = Math.max(net.busy[from], now) + net.sendMs
      net.busy[from] = depart
      world.schedule(depart + linkLatency(from, to) - now, () => net.peers[to].receive(from, m))
    }
    for (let h = 0; h < n; h++) {
      net.peers[h] = new PolyringPeer({ table: this.tables[h], seen, send: (to, m) => transmit(h, to, m), deliver: (m) => net.onDeliver?.(h, m) })
    }
    this.net = net
    return net
  }

  /** Runs the world until no event is left; returns the virtual ms it took. */
  private drain(): number {
    const world = this.net!.world, t0 = world.now()
    while (world.step()) { /* run */ }
    return world.now() - t0
  }

  /**
   * Broadcast by the seed's rules from `origin` (PolyringPeer.broadcast): the originator sends to
   * its parent, siblings and children; a peer that got it from a child sends to its parent and
   * siblings; from a sibling or its parent, to its children. `order` says whether the parent is
   * sent to before the siblings (`up-first`) or after them and the children (`sideways-first`).
   */
  broadcast(origin: number, options: BroadcastOptions = {}): BroadcastStats {
    const order = options.order ?? 'up-first'
    const net = this.network(options.seed)
    net.sendMs = options.sendMs ?? 1
    const n = this.peers
    const got = new Uint8Array(n)
    const at = new Float64Array(n)
    let maxHops = 0
    const t0 = net.world.now()
    net.busy.fill(0)
    for (const p of net.peers) p.order = order
    const dup0 = net.peers.reduce((s, p) => s + p.stats.duplicates, 0)
    const sent0 = net.sent
    net.onDeliver = (h, m) => {
      if (m.kind !== 'broadcast') return
      got[h]++
      at[h] = net.world.now() - t0
      if (m.hops > maxHops) maxHops = m.hops
    }
    got[origin] = 1
    net.peers[origin].broadcast(new Uint8Array(0), this.broadcasts++)
    const events = net.world.stats.events
    this.drain()
    net.onDeliver = null
    let reached = 0, last = 0, twice = 0
    for (let h = 0; h < n; h++) {
      if (!got[h]) continue
      reached++
      if (got[h] > 1) twice++
      if (at[h] > last) last = at[h]
    }
    const sorted = Float64Array.from(at).sort()
    const duplicates = twice + net.peers.reduce((s, p) => s + p.stats.duplicates, 0) - dup0
    return { order, peers: n, reached, sent: net.sent - sent0, duplicates, completionMs: last, medianMs: sorted[Math.floor(n / 2)], maxHops, events: net.world.stats.events - events }
  }
  private broadcasts = 0

  /**
   * Multicast from `origin` to `receivers` by the same walk (PolyringPeer.multicast): at each
   * peer every receiver is routed (the five cases), receivers with the same next hop travel in
   * one copy, and branches with no receivers get nothing. So a copy to a child or a sibling
   * carries only receivers in that peer's subtree, and a copy to the parent only the parent
   * itself or receivers outside the parent's subtree. `onCopy` sees every copy and `onDeliver`
   * every receiver reached (for tests).
   */
  multicast(origin: number, receivers: Guid[], watch: { onCopy?: (from: number, to: number, receivers: Guid[]) => void; onDeliver?: (at: number) => void } = {}): MulticastStats {
    const net = this.network()
    const reached = new Set<number>()
    const visited = new Uint8Array(this.peers)
    let copies = 0, bytes = 0, violations = 0, dupPeers = 0, peersVisited = 1
    const up = new Uint8Array(this.peers) // 1 where the copy a peer got came from a child
    visited[origin] = 1
    const noRoute0 = net.peers.reduce((s, p) => s + p.stats.noRoute, 0)
    net.onSend = (from, to, m) => {
      if (m.kind !== 'multicast') return
      copies++
      if (visited[to]) dupPeers++
      visited[to] = 1
      peersVisited++
      const toT = this.tables[to], fromT = this.tables[from]
      const goesUp = fromT.parent === to
      up[to] = goesUp ? 1 : 0
      // A copy that came down (from a parent or sibling) never goes back up or sideways.
      if (from !== origin && !up[from] && toT.self.length <= fromT.self.length) violations++
      for (const d of m.receivers) {
        bytes += encodedGuidLength(d)
        if (goesUp ? d.length !== toT.self.length && isInSubtree(d, toT.self) : !isInSubtree(d, toT.self)) violations++
      }
      watch.onCopy?.(from, to, m.receivers)
    }
    net.onDeliver = (h, m) => {
      if (m.kind !== 'multicast' || reached.has(h)) return
      reached.add(h)
      watch.onDeliver?.(h)
    }
    net.peers[origin].multicast(receivers, new Uint8Array(0))
    this.drain()
    net.onSend = null
    net.onDeliver = null
    const unroutable = net.peers.reduce((s, p) => s + p.stats.noRoute, 0) - noRoute0
    return { receivers: receivers.length, reached: reached.size, copies, receiverBytes: bytes, unroutable, violations, peersVisited, duplicatePeers: dupPeers }
  }

  /**
   * `count` routed messages between random peers through the protocol (PolyringPeer.send), all
   * in flight at once on the simulated network: each is checked to arrive at its destination.
   */
  sendRandom(count: number, random: SeededRandom): RouteStats & { virtualMs: number } {
    const net = this.network()
    const target = new Int32Array(count)
    let delivered = 0, wrong = 0, maxHops = 0, sumHops = 0, overBound = 0
    net.onDeliver = (h, m) => {
      if (m.kind !== 'route') return
      const i = m.data[0] | (m.data[1] << 8) | (m.data[2] << 16) | (m.data[3] << 24)
      if (target[i] !== h) { wrong++; return }
      delivered++
      sumHops += m.hops
      if (m.hops > maxHops) maxHops = m.hops
      if (m.hops > 2 * this.depth) overBound++
    }
    for (let i = 0; i < count; i++) {
      const a = this.randomPeer(random), b = this.randomPeer(random)
      target[i] = b
      net.peers[a].send(this.guidOf(b), Uint8Array.of(i & 0xff, (i >>> 8) & 0xff, (i >>> 16) & 0xff, i >>> 24))
    }
    const virtualMs = this.drain()
    net.onDeliver = null
    return { messages: count, delivered, wrong, overBound, maxHops, meanHops: delivered ? sumHops / delivered : 0, virtualMs }
  }
}

/** Fixed one-way latency of a link, 10..50 ms, from a hash of its ends (same both ways). */
export function linkLatency(a: number, b: number): number {
  const lo = a < b ? a : b, hi = a < b ? b : a
  let h = Math.imul(lo ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(hi + 0x632be5ab, 0xc2b2ae35)
  h ^= h >>> 15; h = Math.imul(h, 0x2c1b3c6d); h ^= h >>> 12
  return 10 + ((h >>> 0) % 4000) / 100
}

export interface RouteStats { messages: number; delivered: number; wrong: number; overBound: number; maxHops: number; meanHops: number }
export interface BroadcastOptions { order?: 'up-first' | 'sideways-first'; sendMs?: number; seed?: string }
export interface BroadcastStats {
  order: string; peers: number; reached: number; sent: number; duplicates: number
  completionMs: number; medianMs: number; maxHops: number; events: number
}
export interface MulticastStats {
  receivers: number; reached: number; copies: number; receiverBytes: number; unroutable: number
  violations: number; peersVisited: number; duplicatePeers: number
}
