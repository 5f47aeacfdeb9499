// The polyring on a real node: joins a ring, keeps a reliable channel (transport/channels.ts,
// stream POLYRING_STREAM) to each neighbour (parent, siblings, children), and drives peer.ts's
// PolyringPeer (the seed's routing, broadcast and multicast rules) with a `send(to, message)`
// that encodes to the wire (wire.ts). The channel acknowledges, resends and orders every
// message, so a routed message is not lost to one dropped datagram. Attached to a Node like
// Membership is (NodeOptions.polyring, node.polyring); docs/polyring.md, "On a real node".
//
// Handles: the routing table (table.ts) holds small integers; here a handle is an index into
// `addresses` (one per neighbour address), reused after the neighbour goes.
//
// Join: the first centre peer takes [0]. Another centre peer asks a centre peer (its `via`
// peers, default the node's bootstrap peers), which hands out the lowest free centre coordinate
// and lists the ring; a child asks its parent (by address, or by GUID through any ring peer,
// which routes the request there), which hands out the lowest free child coordinate and lists
// the new child's siblings. The newcomer then says HELLO to each one it was given, and each
// places it in its table by its GUID. Leave: LEAVE to every neighbour, which drops the slot.
import { WeftError } from '../../errors.js'
import type { Logger } from '../../node/log.js'
import type { Runtime, TimerHandle } from '../../runtime/runtime.js'
import type { PeerChannel } from '../../transport/channels.js'
import { canonicalAddress, parseAddress, type Address } from '../../wire/address.js'
import { commonPrefix, formatGuid, guid, guidEquals, parentGuid, parseGuid, childGuid, type Guid } from './guid.js'
import { PolyringPeer, type PolyMessage } from './peer.js'
import { MAX_RING, NONE, PolyringTable } from './table.js'
import {
  decodePayload, decodeWire, encodePayload, encodeWire, MAX_DATA_BYTES, MAX_WELCOME_MEMBERS, MAX_WIRE_RECEIVERS,
  type JoinRequest, type WireMember, type WireMessage,
} from './wire.js'

/** The channel stream the polyring uses between two peers ('poly'). */
export const POLYRING_STREAM = 0x706f6c79
/** Neighbours (parent, siblings, children) one peer keeps at most; past it joins are refused. */
export const MAX_NEIGHBOURS = 1024
/** Receivers one multicast may name (split into copies of at most MAX_WIRE_RECEIVERS on the wire). */
export const MAX_MULTICAST_GUIDS = 4096
/** How long a join waits for one asked peer's answer before it asks the next. */
export const JOIN_TIMEOUT_MS = 5000
/** A neighbour that was sent nothing for this long gets a HEARTBEAT (the channel's acks then prove it alive). */
export const HEARTBEAT_MS = 1000
/** Messages one `messages()` iterator buffers unread; past it the oldest is dropped (counted). */
export const MAX_INBOX = 1024
/** Messages kept for `recent()` (the API's GET /v1/polyring/messages). */
export const MAX_RECENT = 256
/** How long a leave waits for its LEAVE notices to be acknowledged. */
export const LEAVE_FLUSH_MS = 1000

export interface PolyringOptions {
  /** Join the centre ring (the first centre peer, with no one to ask, takes [0]). */
  centre?: boolean
  /** The parent to join under: its address, or its GUID (`[4.2]`, reached through the `via` peers). */
  parent?: Address | string
  /** A region label (told to neighbours; for join policies). */
  region?: string
  /** A hosted peer (run by the network's operator: the inner rings). */
  hosted?: boolean
  /** Peers to ask to join (a centre peer, or any ring peer for a parent named by GUID); default: the node's bootstrap peers. */
  via?: Address[]
  /** Join when the node starts (default true); false: call `join()` later. */
  join?: boolean
  /** Broadcast order: the parent before the siblings (default) or after. */
  order?: 'up-first' | 'sideways-first'
  joinTimeoutMs?: number
  heartbeatMs?: number
}

export interface PolyringContext {
  runtime: Runtime
  /** The reliable channel to `address` on POLYRING_STREAM (opened if needed). */
  channel(address: Address): PeerChannel
  /** This node's address (what neighbours reach it at). */
  address(): Address
  /** The node's bootstrap peers: the default `via`. */
  bootstrap: Address[]
  log?: Logger
}

export type PolyringKind = 'send' | 'broadcast' | 'multicast'
export interface PolyringMessage {
  kind: PolyringKind
  /** The originator's GUID. */
  from: Guid
  data: Uint8Array
  /** Order of arrival at this peer (1, 2, ...). */
  seq: number
}

export interface PolyringNeighbour { guid: string; address: Address }
export interface PolyringStatus {
  guid: string | null
  centre: boolean
  region: string
  hosted: boolean
  parent: PolyringNeighbour | null
  siblings: PolyringNeighbour[]
  children: PolyringNeighbour[]
  stats: PolyringStats
}

export interface PolyringStats {
  received: number
  sent: number
  /** Received messages by kind. */
  sends: number
  broadcasts: number
  multicasts: number
  /** Routed messages with no next hop, too many hops, or repeated broadcasts (peer.ts's counters). */
  noRoute: number
  tooManyHops: number
  duplicates: number
  forwarded: number
  /** Wire messages that did not decode. */
  malformed: number
  /** Routed messages from an address that is not a neighbour (dropped). */
  strangers: number
  /** HELLOs for a slot held by another address, or a GUID that is not a neighbour's. */
  misplaced: number
  /** Channel sends refused (ERR_BUSY, ERR_CLOSED) or failed channels. */
  sendFailures: number
  channelFailures: number
  joinsAnswered: number
  joinsRefused: number
  leaves: number
  /** Messages dropped from a full `messages()` iterator. */
  inboxDropped: number
}

interface PendingJoin { resolve: (m: { guid: Guid; members: WireMember[]; from: Address }) => void; reject: (e: WeftError) => void; timer: TimerHandle }

/** An async iterator of received messages, buffering at most MAX_INBOX. */
class Inbox implements AsyncIterableIterator<PolyringMessage> {
  private readonly queue: PolyringMessage[] = []
  private waiter: ((r: IteratorResult<PolyringMessage>) => void) | null = null
  private closed = false
  constructor(private readonly onDrop: () => void, private readonly onClose: (i: Inbox) => void) {}
  push(m: PolyringMessage): void {
    if (this.closed) return
    if (this.waiter) { const w = this.waiter; this.waiter = null; w({ value: m, done: false }); return }
    if (this.queue.length >= MAX_INBOX) { this.queue.shift(); this.onDrop() }
    this.queue.push(m)
  }
  next(): Promise<IteratorResult<PolyringMessage>> {
    const m = this.queue.shift()
    if (m) return Promise.resolve({ value: m, done: false })
    if (this.closed) return Promise.resolve({ value: undefined, done: true })
    return new Promise((resolve) => { this.waiter = resolve })
  }
  return(): Promise<IteratorResult<PolyringMessage>> {
    this.close()
    return Promise.resolve({ value: undefined, done: true })
  }
  close(): void {
    if (this.closed) return
    this.closed = true
    this.onClose(this)
    if (this.waiter) { const w = this.waiter; this.waiter = null; w({ value: undefined, done: true }) }
  }
  [Symbol.asyncIterator](): AsyncIterableIterator<PolyringMessage> { return this }
}

export class Polyring {
  readonly stats: PolyringStats = {
    received: 0, sent: 0, sends: 0, broadcasts: 0, multicasts: 0, noRoute: 0, tooManyHops: 0, duplicates: 0, forwarded: 0,
    malformed: 0, strangers: 0, misplaced: 0, sendFailures: 0, channelFailures: 0, joinsAnswered: 0, joinsRefused: 0, leaves: 0, inboxDropped: 0,
  }
  private table: PolyringTable | null = null
  private peer: PolyringPeer | null = null
  // Handles: index -> neighbour address and the GUID it holds in our table (null: not placed).
  private readonly addresses: (Address | null)[] = []
  private readonly placedAs: (Guid | null)[] = []
  private readonly lastSent: number[] = []
  private readonly byAddress = new Map<Address, number>()
  private readonly free: number[] = []
  private readonly attached = new WeakSet<PeerChannel>()
  private readonly pending = new Map<number, PendingJoin>()
  private readonly inboxes = new Set<Inbox>()
  private readonly recentLog: PolyringMessage[] = []
  private seq = 0
  private heartbeat: TimerHandle | null = null
  private joining: Promise<Guid> | null = null
  private closed = false
  private readonly o: PolyringOptions

  constructor(private readonly ctx: PolyringContext, options: PolyringOptions = {}) {
    this.o = { ...options }
    if (this.o.centre && this.o.parent !== undefined) throw new WeftError('ERR_BAD_ARGUMENT', 'a polyring peer joins the centre ring or under a parent, not both')
    if (this.o.parent !== undefined) parentRef(this.o.parent) // a bad parent is the caller's error, before anything starts
    if (new TextEncoder().encode(this.o.region ?? '').length > 64) throw new WeftError('ERR_BAD_ARGUMENT', 'a region label is at most 64 bytes')
  }

  /** This peer's GUID (null before it joined). */
  get guid(): Guid | null { return this.table?.self ?? null }
  get joined(): boolean { return this.table !== null }

  /**
   * Joins a ring as the options say (or as `overrides` say): the centre ring, or under a parent
   * given by address or GUID, or (neither) under the first `via` peer that answers; with nobody
   * to ask, as [0], the first centre peer. Resolves with the GUID handed out.
   */
  join(overrides: Partial<PolyringOptions> = {}): Promise<Guid> {
    if (this.table) return Promise.resolve(this.table.self)
    Object.assign(this.o, overrides)
    return (this.joining ??= this.joinOnce().finally(() => { this.joining = null }))
  }

  private async joinOnce(): Promise<Guid> {
    const o = this.o
    const self = this.ctx.address()
    const via = (o.via ?? this.ctx.bootstrap).map(canonicalAddress).filter((a) => a !== self)
    const base = { centre: !!o.centre, hosted: !!o.hosted, region: o.region ?? '' }
    let asks: { to: Address; target: Guid | null }[]
    if (o.parent !== undefined) {
      const p = parentRef(o.parent)
      asks = p.address !== null ? [{ to: p.address, target: null }] : via.map((to) => ({ to, target: p.guid }))
      if (asks.length === 0) throw new WeftError('ERR_BAD_ARGUMENT', `to join under ${o.parent} by GUID, give a ring peer to ask (via, or the node's bootstrap peers)`)
    } else {
      asks = via.map((to) => ({ to, target: null }))
    }
    if (asks.length === 0) {
      if (o.parent === undefined) { this.becomeFirst(); return this.table!.self }
    }
    let last: WeftError | null = null
    for (const ask of asks) {
      try {
        const w = await this.ask(ask.to, { ...base, target: ask.target })
        this.welcome(w.guid, w.members, base.centre ? null : w.from)
        return this.table!.self
      } catch (err) {
        last = err instanceof WeftError ? err : new WeftError('ERR_BOOTSTRAP_FAILED', String(err))
        this.ctx.log?.warn({ via: ask.to, err: last.message }, 'polyring: join refused or unanswered')
      }
    }
    throw new WeftError('ERR_BOOTSTRAP_FAILED', `no peer let this node join the polyring (${asks.length} asked): ${last?.message}`)
  }

  private ask(to: Address, j: Omit<JoinRequest, 'req'>): Promise<{ guid: Guid; members: WireMember[]; from: Address }> {
    let req = this.ctx.runtime.random.u32()
    while (this.pending.has(req)) req = (req + 1) >>> 0
    return new Promise((resolve, reject) => {
      const timer = this.ctx.runtime.setTimeout(() => {
        this.pending.delete(req)
        reject(new WeftError('ERR_TIMEOUT', `no polyring join answer from ${to} in ${this.o.joinTimeoutMs ?? JOIN_TIMEOUT_MS} ms`))
      }, this.o.joinTimeoutMs ?? JOIN_TIMEOUT_MS)
      this.pending.set(req, { resolve, reject, timer })
      if (!this.sendTo(to, { kind: 'join', req, ...j })) {
        this.ctx.runtime.clearTimeout(timer)
        this.pending.delete(req)
        reject(new WeftError('ERR_CLOSED', `cannot reach ${to}`))
      }
    })
  }

  private becomeFirst(): void {
    this.setTable(new PolyringTable(guid([0])))
  }

  private setTable(t: PolyringTable): void {
    this.table = t
    this.peer = new PolyringPeer({
      table: t, order: this.o.order,
      send: (to, m) => this.sendPoly(to, m),
      deliver: (m) => this.deliver(m),
    })
    this.scheduleHeartbeat()
  }

  /** The answer to our join: our GUID, and the ring we are in (the answerer is `parent` for a child). */
  private welcome(g: Guid, members: WireMember[], parent: Address | null): void {
    const t = new PolyringTable(g)
    this.setTable(t)
    if (parent !== null) this.place(this.handleFor(parent), parentGuid(g)!)
    const hello: WireMessage = { kind: 'hello', guid: g, hosted: !!this.o.hosted, region: this.o.region ?? '' }
    for (const m of members) {
      if (guidEquals(m.guid, g) || m.address === this.ctx.address()) continue
      const h = this.handleFor(m.address)
      if (h === NONE) continue
      if (this.place(h, m.guid)) this.sendWire(h, hello)
    }
    this.ctx.log?.info({ guid: formatGuid(g), siblings: t.siblingCount, parent }, 'joined the polyring')
  }

  // ---- sending ---------------------------------------------------------------------------------

  /** Routes `data` to the peer whose GUID is `dest` (a Guid or its text, `[4.2.17]`). */
  send(dest: Guid | string, data: Uint8Array): void {
    const peer = this.ready()
    const d = typeof dest === 'string' ? parseGuid(dest) : dest
    peer.send(d, this.payload(data))
    this.stats.sent++
  }

  /** Sends `data` to every other peer of the polyring, each once. */
  broadcast(data: Uint8Array): void {
    const peer = this.ready()
    const r = this.ctx.runtime.random
    peer.broadcast(this.payload(data), (r.u32() & 0x1f_ffff) * 2 ** 32 + r.u32()) // a random 53-bit id
    this.stats.sent++
  }

  /** Sends `data` to exactly the peers named (GUIDs or their text), each once. */
  multicast(dests: (Guid | string)[], data: Uint8Array): void {
    const peer = this.ready()
    if (dests.length < 1 || dests.length > MAX_MULTICAST_GUIDS) throw new WeftError('ERR_BAD_ARGUMENT', `a multicast names 1..${MAX_MULTICAST_GUIDS} receivers, not ${dests.length}`)
    const seen = new Set<string>()
    const receivers: Guid[] = []
    for (const d of dests) {
      const g = typeof d === 'string' ? parseGuid(d) : d
      const key = formatGuid(g)
      if (!seen.has(key)) { seen.add(key); receivers.push(g) }
    }
    peer.multicast(receivers, this.payload(data))
    this.stats.sent++
  }

  private payload(data: Uint8Array): Uint8Array {
    if (!(data instanceof Uint8Array)) throw new WeftError('ERR_BAD_ARGUMENT', 'polyring data must be bytes')
    if (data.length > MAX_DATA_BYTES) throw new WeftError('ERR_TOO_LARGE', `polyring data of ${data.length} bytes, over ${MAX_DATA_BYTES}`)
    return encodePayload({ kind: 'data', origin: this.table!.self, data })
  }

  private ready(): PolyringPeer {
    if (this.closed) throw new WeftError('ERR_CLOSED', 'the polyring service is closed')
    if (!this.peer) throw new WeftError('ERR_NOT_RUNNING', 'this node has not joined the polyring yet')
    return this.peer
  }

  /** PolyringPeer's send: one wire message per copy; a multicast copy with too many receivers goes in parts. */
  private sendPoly(to: number, m: PolyMessage): void {
    if (m.kind === 'multicast' && m.receivers.length > MAX_WIRE_RECEIVERS) {
      for (let i = 0; i < m.receivers.length; i += MAX_WIRE_RECEIVERS) this.sendWire(to, { ...m, receivers: m.receivers.slice(i, i + MAX_WIRE_RECEIVERS) })
      return
    }
    this.sendWire(to, m)
  }

  private sendWire(h: number, m: WireMessage): void {
    const a = this.addresses[h]
    if (a == null) { this.stats.sendFailures++; return }
    if (this.sendTo(a, m)) this.lastSent[h] = this.ctx.runtime.now()
  }

  private sendTo(address: Address, m: WireMessage): boolean {
    try {
      this.channelTo(address).send(encodeWire(m))
      return true
    } catch (err) {
      this.stats.sendFailures++
      this.ctx.log?.debug({ to: address, err }, 'polyring: send failed')
      return false
    }
  }

  private channelTo(address: Address): PeerChannel {
    const c = this.ctx.channel(address)
    this.accept(c)
    return c
  }

  // ---- receiving -------------------------------------------------------------------------------

  /** Takes a channel on POLYRING_STREAM (one the peer opened, or one we opened). */
  accept(c: PeerChannel): void {
    if (this.attached.has(c)) return
    this.attached.add(c)
    c.onMessage = (bytes) => this.onWire(c.address, bytes)
    c.onError = (err) => {
      this.stats.channelFailures++
      this.ctx.log?.warn({ peer: c.address, err: err.message }, 'polyring: channel failed')
      // The neighbour stopped acknowledging: it is dead to us; its slot is freed.
      const h = this.byAddress.get(c.address)
      if (h !== undefined) this.unplace(h)
    }
  }

  private onWire(from: Address, bytes: Uint8Array): void {
    if (this.closed) return
    let m: WireMessage
    try { m = decodeWire(bytes) } catch { this.stats.malformed++; return }
    switch (m.kind) {
      case 'join': return this.answerJoin(from, m)
      case 'welcome': {
        const p = this.pending.get(m.req)
        if (!p) return
        this.pending.delete(m.req)
        this.ctx.runtime.clearTimeout(p.timer)
        p.resolve({ guid: m.guid, members: m.members, from })
        return
      }
      case 'refuse': {
        const p = this.pending.get(m.req)
        if (!p) return
        this.pending.delete(m.req)
        this.ctx.runtime.clearTimeout(p.timer)
        p.reject(new WeftError('ERR_FORBIDDEN', `${from} refused the join: ${m.reason}`))
        return
      }
      case 'hello': {
        if (!this.table) return
        const h = this.handleFor(from)
        if (h !== NONE) this.place(h, m.guid)
        return
      }
      case 'leave': {
        const h = this.byAddress.get(from)
        const g = h === undefined ? null : this.placedAs[h]
        if (h !== undefined && g && guidEquals(g, m.guid)) { this.stats.leaves++; this.unplace(h) }
        return
      }
      case 'heartbeat': return
      default: {
        // Routed messages, broadcast and multicast: only from a neighbour.
        const h = this.byAddress.get(from)
        if (!this.peer || h === undefined || this.placedAs[h] === null) { this.stats.strangers++; return }
        this.peer.receive(h, m)
        this.syncPeerStats()
      }
    }
  }

  private deliver(m: PolyMessage): void {
    let p
    try { p = decodePayload(m.data) } catch { this.stats.malformed++; return }
    if (p.kind === 'join') {
      // A join request routed here because it names us as the parent.
      if (m.kind === 'route') this.answerJoin(p.joiner, p.join)
      return
    }
    const kind: PolyringKind = m.kind === 'route' ? 'send' : m.kind
    const msg: PolyringMessage = { kind, from: p.origin, data: p.data, seq: ++this.seq }
    this.stats.received++
    if (kind === 'send') this.stats.sends++
    else if (kind === 'broadcast') this.stats.broadcasts++
    else this.stats.multicasts++
    this.recentLog.push(msg)
    if (this.recentLog.length > MAX_RECENT) this.recentLog.shift()
    for (const i of this.inboxes) i.push(msg)
  }

  private syncPeerStats(): void {
    const s = this.peer!.stats
    this.stats.noRoute = s.noRoute
    this.stats.tooManyHops = s.tooManyHops
    this.stats.duplicates = s.duplicates
    this.stats.forwarded = s.forwarded
  }

  /** Received messages, as they arrive (buffering at most MAX_INBOX unread). */
  messages(): AsyncIterableIterator<PolyringMessage> {
    const inbox = new Inbox(() => this.stats.inboxDropped++, (i) => this.inboxes.delete(i))
    if (this.closed) inbox.close()
    else this.inboxes.add(inbox)
    return inbox
  }

  /** The last MAX_RECENT messages received with seq above `since`, oldest first. */
  recent(since = 0): PolyringMessage[] {
    return this.recentLog.filter((m) => m.seq > since)
  }

  // ---- joins we answer -------------------------------------------------------------------------

  private answerJoin(from: Address, j: JoinRequest): void {
    const refuse = (reason: string): void => {
      this.stats.joinsRefused++
      this.sendTo(from, { kind: 'refuse', req: j.req, reason })
    }
    const t = this.table
    if (!t || !this.peer) return refuse('not in a polyring yet')
    if (j.target && !guidEquals(j.target, t.self)) {
      // Not us: route the request to the parent it names; that parent answers the joiner directly.
      this.peer.send(j.target, encodePayload({ kind: 'join', origin: t.self, joiner: from, join: { ...j } }))
      return
    }
    if (j.centre && t.depth !== 1) return refuse(`${formatGuid(t.self)} is not a centre peer`)
    const known = this.byAddress.get(from)
    const held = known !== undefined ? this.placedAs[known] : null
    // A repeated request (its answer was lost, or the joiner restarted) gets the GUID it holds.
    if (held !== null && (j.centre ? held.length === 1 : held.length === t.depth + 1 && commonPrefix(held, t.self) === t.depth)) {
      return this.welcomeJoiner(from, j, held)
    }
    if (known !== undefined) this.unplace(known)
    const h = this.handleFor(from)
    if (h === NONE) return refuse(`this peer has ${MAX_NEIGHBOURS} neighbours`)
    let g: Guid
    try {
      g = j.centre ? guid([nextFreeSibling(t)]) : childGuid(t.self, t.nextFreeChild())
    } catch (err) {
      this.release(h)
      return refuse((err as Error).message)
    }
    if (!this.place(h, g)) return refuse('no free slot')
    this.welcomeJoiner(from, j, g)
  }

  private welcomeJoiner(to: Address, j: JoinRequest, g: Guid): void {
    const t = this.table!
    const members: WireMember[] = []
    const add = (coordGuid: Guid, h: number): void => {
      const a = this.addresses[h]
      if (a != null && a !== to && members.length < MAX_WELCOME_MEMBERS) members.push({ guid: coordGuid, address: a })
    }
    if (j.centre) {
      members.push({ guid: t.self, address: this.ctx.address() })
      t.forEachSibling((c, h) => add(guid([c]), h))
    } else {
      t.forEachChild((c, h) => add(childGuid(t.self, c), h))
    }
    this.stats.joinsAnswered++
    this.sendTo(to, { kind: 'welcome', req: j.req, guid: g, members })
  }

  // ---- the table -------------------------------------------------------------------------------

  /** The handle of a neighbour address (a new one if needed); NONE past MAX_NEIGHBOURS. */
  private handleFor(address: Address): number {
    const a = canonicalAddress(address)
    const known = this.byAddress.get(a)
    if (known !== undefined) return known
    let h: number
    if (this.free.length) h = this.free.pop()!
    else if (this.addresses.length < MAX_NEIGHBOURS) { h = this.addresses.length; this.addresses.push(null); this.placedAs.push(null); this.lastSent.push(0) }
    else return NONE
    this.addresses[h] = a
    this.placedAs[h] = null
    this.lastSent[h] = 0
    this.byAddress.set(a, h)
    return h
  }

  /** Puts handle `h` in the slot its GUID names (parent, sibling or child); false if it has none or it is taken. */
  private place(h: number, g: Guid): boolean {
    const t = this.table!
    const self = t.self, l = self.length, m = commonPrefix(self, g)
    const prior = this.placedAs[h]
    if (prior && guidEquals(prior, g)) return true
    let ok = false
    try {
      if (g.length === l - 1 && m === l - 1) {
        if (t.parent === NONE || t.parent === h) { if (prior) this.unslot(h, prior); t.setParent(h); ok = true }
      } else if (g.length === l && m === l - 1 && g[l - 1] !== t.ownCoord && g[l - 1] < MAX_RING) {
        const s = t.sibling(g[l - 1])
        if (s === NONE || s === h) { if (prior) this.unslot(h, prior); t.setSibling(g[l - 1], h); ok = true }
      } else if (g.length === l + 1 && m === l && g[l] < MAX_RING) {
        const c = t.child(g[l])
        if (c === NONE || c === h) { if (prior) this.unslot(h, prior); t.setChild(g[l], h); ok = true }
      }
    } catch {
      ok = false
    }
    if (!ok) { this.stats.misplaced++; if (!prior) this.release(h); return false }
    this.placedAs[h] = g
    return true
  }

  /** Drops a neighbour from the table and frees its handle. */
  private unplace(h: number): void {
    const g = this.placedAs[h]
    if (g) this.unslot(h, g)
    this.release(h)
  }

  private unslot(h: number, g: Guid): void {
    const t = this.table
    if (!t) return
    const l = t.self.length
    if (g.length === l - 1 && t.parent === h) t.setParent(NONE)
    else if (g.length === l && t.sibling(g[l - 1]) === h) t.removeSibling(g[l - 1])
    else if (g.length === l + 1 && t.child(g[l]) === h) t.removeChild(g[l])
    this.placedAs[h] = null
  }

  private release(h: number): void {
    const a = this.addresses[h]
    if (a == null) return
    this.byAddress.delete(a)
    this.addresses[h] = null
    this.placedAs[h] = null
    this.free.push(h)
  }

  // ---- liveness, leave, status -----------------------------------------------------------------

  private scheduleHeartbeat(): void {
    const every = this.o.heartbeatMs ?? HEARTBEAT_MS
    this.heartbeat = this.ctx.runtime.setTimeout(() => {
      if (this.closed) return
      const now = this.ctx.runtime.now()
      for (let h = 0; h < this.addresses.length; h++) {
        if (this.placedAs[h] !== null && now - this.lastSent[h] >= every) this.sendWire(h, { kind: 'heartbeat' })
      }
      this.scheduleHeartbeat()
    }, every)
  }

  /** Tells every neighbour this peer leaves (they drop its slot) and waits for the notices to be acknowledged. */
  async leave(): Promise<void> {
    const t = this.table
    if (!t || this.closed) return
    const channels: PeerChannel[] = []
    for (let h = 0; h < this.addresses.length; h++) {
      const a = this.addresses[h]
      if (a == null || this.placedAs[h] === null) continue
      this.sendWire(h, { kind: 'leave', guid: t.self })
      channels.push(this.ctx.channel(a))
    }
    const until = this.ctx.runtime.now() + LEAVE_FLUSH_MS
    while (channels.some((c) => !c.closed && c.pending > 0) && this.ctx.runtime.now() < until) {
      await new Promise<void>((resolve) => this.ctx.runtime.setTimeout(resolve, 20))
    }
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    if (this.heartbeat) this.ctx.runtime.clearTimeout(this.heartbeat)
    for (const p of this.pending.values()) { this.ctx.runtime.clearTimeout(p.timer); p.reject(new WeftError('ERR_CLOSED', 'the polyring service closed')) }
    this.pending.clear()
    for (const i of [...this.inboxes]) i.close()
  }

  status(): PolyringStatus {
    const t = this.table
    const n = (g: Guid, h: number): PolyringNeighbour => ({ guid: formatGuid(g), address: this.addresses[h] ?? '' })
    const siblings: PolyringNeighbour[] = [], children: PolyringNeighbour[] = []
    if (t) {
      const p = parentGuid(t.self)
      t.forEachSibling((c, h) => { const g = t.self.slice(); g[g.length - 1] = c; siblings.push(n(g, h)) })
      t.forEachChild((c, h) => children.push(n(childGuid(t.self, c), h)))
      if (this.peer) this.syncPeerStats()
      return {
        guid: formatGuid(t.self), centre: t.depth === 1, region: this.o.region ?? '', hosted: !!this.o.hosted,
        parent: p && t.parent !== NONE ? n(p, t.parent) : null, siblings, children, stats: { ...this.stats },
      }
    }
    return { guid: null, centre: !!this.o.centre, region: this.o.region ?? '', hosted: !!this.o.hosted, parent: null, siblings, children, stats: { ...this.stats } }
  }
}

/** The lowest free centre coordinate (not our own, not a sibling's). */
function nextFreeSibling(t: PolyringTable): number {
  for (let i = 0; i < MAX_RING; i++) if (i !== t.ownCoord && t.sibling(i) === NONE) return i
  throw new WeftError('ERR_BUSY', `centre ring full (${MAX_RING})`)
}

/** A parent given as `HOST:PORT` or as a GUID `[4.2]`. */
export function parentRef(v: string): { address: Address; guid: null } | { address: null; guid: Guid } {
  if (v.startsWith('[')) return { address: null, guid: parseGuid(v) }
  parseAddress(v) // ERR_BAD_ADDRESS with the reason
  return { address: canonicalAddress(v), guid: null }
}
