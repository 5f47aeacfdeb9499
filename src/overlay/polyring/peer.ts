// One polyring peer's message handling, sans-IO: it is given its table, a `send(to, message)`
// to a neighbour's handle and a `deliver(message)` for what is addressed to it; the layer below
// (the simulator today; sessions over the rpc/channel layer later) carries messages between
// handles. Routed messages, broadcast and multicast follow the seed's rules (docs/polyring.md).
// Messages are objects here; their wire form is not written yet.
import { WeftError } from '../../errors.js'
import type { Guid } from './guid.js'
import { DELIVER, NO_ROUTE, nextHop } from './route.js'
import { NONE, type PolyringTable } from './table.js'

/** Most hops a message may take before it is dropped (a route takes at most 2 × MAX_DEPTH − 1). */
export const MAX_HOPS = 64
/** Receivers one multicast may name. */
export const MAX_MULTICAST_RECEIVERS = 100_000
/** Broadcast ids a peer remembers by default to drop a copy it already had (a ring of this many). */
export const SEEN_BROADCASTS = 1024

export type PolyMessage =
  | { kind: 'route'; dest: Guid; data: Uint8Array; hops: number }
  /** `up`: sent by a child to its parent (the receiver then goes up and sideways, else down). */
  | { kind: 'broadcast'; id: number; up: boolean; data: Uint8Array; hops: number }
  /** Carries only the receivers routed through the peer it is sent to. */
  | { kind: 'multicast'; receivers: Guid[]; data: Uint8Array; hops: number }

export interface PeerOptions {
  table: PolyringTable
  send: (to: number, message: PolyMessage) => void
  deliver?: (message: PolyMessage) => void
  /** Broadcast: the parent before the siblings (`up-first`, default) or after them and the children. */
  order?: 'up-first' | 'sideways-first'
  /** Broadcast ids remembered (default SEEN_BROADCASTS; the simulator's million peers use a few). */
  seen?: number
}

export class PolyringPeer {
  readonly stats = { delivered: 0, forwarded: 0, noRoute: 0, tooManyHops: 0, duplicates: 0 }
  private seen: Float64Array | null = null // broadcast ids, a ring; allocated at the first broadcast
  private seenAt = 0
  private nextId = 0

  /** Broadcast order; may be changed between broadcasts. */
  order: 'up-first' | 'sideways-first'

  constructor(private readonly options: PeerOptions) {
    this.order = options.order ?? 'up-first'
    const seen = options.seen ?? SEEN_BROADCASTS
    if (!Number.isInteger(seen) || seen < 1 || seen > 1 << 20) throw new WeftError('ERR_BAD_ARGUMENT', `seen must be 1..${1 << 20}`)
  }

  get table(): PolyringTable { return this.options.table }

  /** Routes `data` to the peer whose GUID is `dest`. */
  send(dest: Guid, data: Uint8Array): void {
    this.route({ kind: 'route', dest, data, hops: 0 })
  }

  /** Sends `data` to every peer; `id` must be unique network-wide (the caller's: e.g. a hash). */
  broadcast(data: Uint8Array, id?: number): void {
    const bid = id ?? this.nextId++
    this.remember(bid)
    this.stats.delivered++
    this.spread({ kind: 'broadcast', id: bid, up: false, data, hops: 0 }, true, true)
  }

  multicast(receivers: Guid[], data: Uint8Array): void {
    if (receivers.length > MAX_MULTICAST_RECEIVERS) throw new WeftError('ERR_TOO_LARGE', `multicast to ${receivers.length} receivers, over ${MAX_MULTICAST_RECEIVERS}`)
    this.fanOut({ kind: 'multicast', receivers, data, hops: 0 })
  }

  receive(_from: number, message: PolyMessage): void {
    if (message.hops > MAX_HOPS) { this.stats.tooManyHops++; return }
    switch (message.kind) {
      case 'route': return this.route(message)
      case 'broadcast':
        if (this.remember(message.id)) { this.stats.duplicates++; return }
        this.stats.delivered++
        this.options.deliver?.(message)
        // From a child: to the parent and the siblings. From a sibling or the parent: to the children.
        return this.spread(message, message.up, false)
      case 'multicast': return this.fanOut(message)
    }
  }

  private route(m: Extract<PolyMessage, { kind: 'route' }>): void {
    const next = nextHop(this.options.table, m.dest)
    if (next === DELIVER) { this.stats.delivered++; this.options.deliver?.(m); return }
    if (next === NO_ROUTE || next < 0) { this.stats.noRoute++; return }
    this.stats.forwarded++
    this.options.send(next, { kind: 'route', dest: m.dest, data: m.data, hops: m.hops + 1 })
  }

  /** Broadcast copies: up and sideways (`upAndSideways`), children (when not, or at the origin). */
  private spread(m: Extract<PolyMessage, { kind: 'broadcast' }>, upAndSideways: boolean, origin: boolean): void {
    const t = this.options.table
    const hops = m.hops + 1
    const toParent = () => { if (t.parent !== NONE) this.forward(t.parent, { ...m, up: true, hops }) }
    const toSiblings = () => t.forEachSibling((_c, h) => this.forward(h, { ...m, up: false, hops }))
    const toChildren = () => t.forEachChild((_c, h) => this.forward(h, { ...m, up: false, hops }))
    const upFirst = this.order === 'up-first'
    if (upAndSideways) {
      if (upFirst) { toParent(); toSiblings() } else { toSiblings() }
      if (origin) toChildren()
      if (!upFirst) toParent()
    } else {
      toChildren()
    }
  }

  /** Multicast: each receiver routed by the five cases; one copy per next hop with only its receivers. */
  private fanOut(m: Extract<PolyMessage, { kind: 'multicast' }>): void {
    const t = this.options.table
    const groups = new Map<number, Guid[]>()
    let mine = false
    for (const d of m.receivers) {
      const next = nextHop(t, d)
      if (next === DELIVER) { mine = true; continue }
      if (next === NO_ROUTE || next < 0) { this.stats.noRoute++; continue }
      const g = groups.get(next)
      if (g) g.push(d); else groups.set(next, [d])
    }
    if (mine) { this.stats.delivered++; this.options.deliver?.(m) }
    for (const [to, receivers] of groups) this.forward(to, { kind: 'multicast', receivers, data: m.data, hops: m.hops + 1 })
  }

  private forward(to: number, message: PolyMessage): void {
    this.stats.forwarded++
    this.options.send(to, message)
  }

  /** Records a broadcast id; true when it was already there. */
  private remember(id: number): boolean {
    const s = this.seen ?? (this.seen = new Float64Array(this.options.seen ?? SEEN_BROADCASTS).fill(-1))
    for (let i = 0; i < s.length; i++) if (s[i] === id) return true
    s[this.seenAt] = id
    this.seenAt = (this.seenAt + 1) % s.length
    return false
  }
}
