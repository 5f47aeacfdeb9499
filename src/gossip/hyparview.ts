// HyParView (Leitão, Pereira, Rodrigues 2007): a small symmetric active view (the links broadcast
// runs on) and a larger passive view (replacements), kept by JOIN / FORWARD_JOIN random walks,
// NEIGHBOR requests with a priority, DISCONNECT and periodic SHUFFLE walks. Sans-IO: it gets a
// Runtime and sends through a ChannelLink; contacts are handles into a ContactPool (shared by
// every node in the simulator), so a node's views are two small arrays of integers.
//
// The paper leans on TCP to notice a dead neighbour. Here an active peer not heard from for
// `keepaliveMs` is pinged through the rpc layer (PING, with its retries); no answer means failed:
// it leaves the active view and a passive peer is promoted.
import { WeftError } from '../errors.js'
import type { NodeId } from '../identity/node-id.js'
import type { Runtime, TimerHandle } from '../runtime/runtime.js'
import type { Address } from '../wire/address.js'
import { MembershipOp, MAX_GOSSIP_CONTACTS, MessageType, type MembershipRequest, type WireContact } from '../wire/messages.js'
import type { ReplyBody } from '../rpc/rpc.js'
import type { ContactPool } from '../overlay/contact-pool.js'
import type { ChannelLink, GossipStats } from './link.js'

export interface HyParViewOptions {
  /** Active view: the broadcast links (the paper: log10(N) + c; 5 for up to about 10^4..10^5 nodes). */
  activeSize: number
  /** Passive view: replacements for failed active peers. */
  passiveSize: number
  /** Active random walk length: FORWARD_JOIN and SHUFFLE walks. */
  arwl: number
  /** Passive random walk length: a FORWARD_JOIN adds the newcomer to the passive view at this ttl. */
  prwl: number
  /** A shuffle sends this many active and passive peers (and itself). */
  shuffleActive: number
  shufflePassive: number
  shuffleIntervalMs: number
  /** An active peer silent this long is pinged; no answer (with the rpc's retries) means failed. */
  keepaliveMs: number
  /** NEIGHBOR requests in flight at once while filling the active view. */
  maxPromotions: number
  /**
   * Below this many active peers a NEIGHBOR request goes with high priority (the paper: only with
   * none). Two nodes that only know each other would otherwise be refused by every full view forever.
   */
  minActive: number
}

export const defaultHyParViewOptions: HyParViewOptions = {
  activeSize: 5,
  passiveSize: 30,
  arwl: 6,
  prwl: 3,
  shuffleActive: 3,
  shufflePassive: 4,
  shuffleIntervalMs: 30_000,
  keepaliveMs: 10_000,
  maxPromotions: 2,
  minActive: 2,
}

export interface NeighborListener {
  /** `h` is the pool handle of the peer (valid until neighborDown returns). */
  neighborUp(h: number): void
  neighborDown(h: number): void
}

const HIGH = 1
const LOW = 0

export class HyParView {
  /** Pool handles of the active and passive views (disjoint). */
  readonly active: number[] = []
  readonly passive: number[] = []
  /** When each active peer was last heard from (ms, parallel to `active`). */
  private heard: number[] = []
  /** When this node last sent a SHUFFLE: a SHUFFLE_REPLY is taken only while one may be out. */
  private shuffledAt = -Infinity
  /** Passive peers asked to become active (NEIGHBOR in flight). */
  private promoting: number[] = []
  private timer: TimerHandle | null = null
  private ticks = 0
  /** NEIGHBOR attempts left until the next tick: a full network refuses most LOW requests, so they are rationed. */
  private budget = 0
  private closed = false
  listener: NeighborListener | null = null

  constructor(
    private readonly runtime: Runtime,
    private readonly link: ChannelLink,
    private readonly pool: ContactPool,
    readonly options: HyParViewOptions,
    private readonly stats: GossipStats,
  ) {
    if (options.activeSize < 1 || options.passiveSize < 1 || options.activeSize > 64 || options.passiveSize > 1024) {
      throw new WeftError('ERR_BAD_ARGUMENT', 'HyParView views must be 1..64 (active) and 1..1024 (passive)')
    }
    // Jittered, so that a million simulated nodes do not all tick at once.
    this.timer = runtime.setTimeout(() => this.tick(), runtime.random.float() * options.keepaliveMs)
  }

  get size(): number { return this.active.length }

  /** Joins through the first of `contacts` that accepts; calls back once. */
  join(contacts: Address[], cb: (err: WeftError | null) => void = () => {}): void {
    const self = this.link.address()
    const list = contacts.filter((a) => a !== self)
    const next = (i: number): void => {
      if (this.closed) { cb(new WeftError('ERR_CLOSED', 'gossip channel closed')); return }
      if (i >= list.length) { cb(new WeftError('ERR_BOOTSTRAP_FAILED', `no contact accepted the join (${list.length} tried)`)); return }
      this.stats.membershipOut[MembershipOp.JOIN]++
      this.link.request(list[i], { op: MembershipOp.JOIN, ttl: 0, priority: HIGH, contacts: [] }, (err, sender) => {
        if (err || !sender) { next(i + 1); return }
        this.addActive(sender, list[i])
        cb(null)
      })
    }
    next(0)
  }

  /** Tells the active peers we leave (DISCONNECT) and stops. */
  leave(): void {
    for (const h of this.active) this.send(this.pool.address(h), MembershipOp.DISCONNECT, 0, 0, [])
    this.close()
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    if (this.timer) this.runtime.clearTimeout(this.timer)
    this.timer = null
    for (const h of this.active) { this.listener?.neighborDown(h); this.pool.release(h) }
    for (const h of this.passive) this.pool.release(h)
    for (const h of this.promoting) this.pool.release(h)
    this.active.length = 0
    this.passive.length = 0
    this.promoting.length = 0
    this.heard.length = 0
  }

  /** Index in the active view of the peer at `address`, or -1. */
  activeIndex(address: Address): number {
    for (let i = 0; i < this.active.length; i++) if (this.pool.address(this.active[i]) === address) return i
    return -1
  }

  /** Any message from an active peer proves it alive. */
  heardFrom(address: Address): void {
    const i = this.activeIndex(address)
    if (i >= 0) this.heard[i] = this.runtime.now()
  }

  /** Answers a MEMBERSHIP message (JOIN and NEIGHBOR get a reply; the rest are one-way). */
  handle(from: Address, req: MembershipRequest): ReplyBody | null {
    if (this.closed) throw new WeftError('ERR_BAD_ARGUMENT', 'not in this gossip channel')
    this.stats.membershipIn[req.op]++
    const self = this.link.address()
    switch (req.op) {
      case MembershipOp.JOIN: {
        if (from === self) return null
        this.addActive(req.sender, from)
        const newcomer = { id: req.sender, address: from }
        for (const h of this.active) {
          const a = this.pool.address(h)
          if (a !== from) this.send(a, MembershipOp.FORWARD_JOIN, this.options.arwl, 0, [newcomer])
        }
        return { type: MessageType.PONG }
      }
      case MembershipOp.FORWARD_JOIN: {
        const c = req.contacts[0]
        // Only a neighbour forwards a join: from anyone else it would aim our NEIGHBOR requests at any address.
        if (!c || c.address === self || this.activeIndex(from) < 0) return null
        if (req.ttl === 0 || this.active.length <= 1) { this.connect(c.id, c.address); return null }
        if (req.ttl === this.options.prwl) this.addPassive(c.id, c.address)
        const to = this.randomActive(from, c.address)
        if (to === null) { this.connect(c.id, c.address); return null }
        this.send(to, MembershipOp.FORWARD_JOIN, req.ttl - 1, 0, [c])
        return null
      }
      case MembershipOp.NEIGHBOR: {
        if (from === self) return null
        if (req.priority === HIGH || this.active.length < this.options.activeSize || this.activeIndex(from) >= 0) {
          this.addActive(req.sender, from)
          return { type: MessageType.PONG }
        }
        throw new WeftError('ERR_BUSY', 'active view full')
      }
      case MembershipOp.DISCONNECT: {
        const i = this.activeIndex(from)
        if (i < 0) return null
        const h = this.removeActive(i)
        this.addPassiveHandle(h)
        this.pool.release(h)
        this.budget++
        this.fill()
        return null
      }
      case MembershipOp.SHUFFLE: {
        const origin = req.contacts[0]
        // A shuffle walks over active links: from anyone else it would put any address in our passive view.
        if (!origin || origin.address === self || this.activeIndex(from) < 0) return null
        const ttl = req.ttl - 1
        if (ttl > 0 && this.active.length > 1) {
          const to = this.randomActive(from, origin.address)
          if (to !== null) { this.send(to, MembershipOp.SHUFFLE, ttl, 0, req.contacts); return null }
        }
        // Accepted here: answer the origin with as many passive peers as it sent, then keep its sample.
        const reply = this.sample(this.passive, req.contacts.length, [])
        this.send(origin.address, MembershipOp.SHUFFLE_REPLY, 0, 0, reply)
        this.integrate(req.contacts, reply)
        return null
      }
      case MembershipOp.SHUFFLE_REPLY:
        if (this.runtime.now() - this.shuffledAt > this.options.shuffleIntervalMs) return null // no shuffle of ours is out
        this.integrate(req.contacts, [])
        return null
    }
    return null
  }

  // ---- views ------------------------------------------------------------------------------------

  private addActive(id: NodeId, address: Address): void {
    if (this.closed || address === this.link.address()) return
    const known = this.activeIndex(address)
    if (known >= 0) { this.heard[known] = this.runtime.now(); return }
    this.removePassive(address)
    if (this.active.length >= this.options.activeSize) {
      // Drop a random active peer: tell it (DISCONNECT) and keep it as a passive one.
      const h = this.removeActive(this.runtime.random.u32() % this.active.length)
      this.send(this.pool.address(h), MembershipOp.DISCONNECT, 0, 0, [])
      this.addPassiveHandle(h)
      this.pool.release(h)
    }
    const h = this.pool.acquire(id, address)
    this.active.push(h)
    this.heard.push(this.runtime.now())
    this.stats.neighborUp++
    this.listener?.neighborUp(h)
  }

  /** Removes active[i] and returns its handle, which the caller releases. */
  private removeActive(i: number): number {
    const h = this.active[i]
    const last = this.active.length - 1
    this.active[i] = this.active[last]; this.active.pop()
    this.heard[i] = this.heard[last]; this.heard.pop()
    this.stats.neighborDown++
    this.listener?.neighborDown(h)
    return h
  }

  private addPassive(id: NodeId, address: Address): void {
    if (address === this.link.address() || this.activeIndex(address) >= 0 || this.passiveIndex(address) >= 0) return
    if (this.passive.length >= this.options.passiveSize) this.pool.release(this.takePassive(this.runtime.random.u32() % this.passive.length))
    this.passive.push(this.pool.acquire(id, address))
  }

  private addPassiveHandle(h: number): void {
    this.addPassive(this.pool.id(h), this.pool.address(h))
  }

  private passiveIndex(address: Address): number {
    for (let i = 0; i < this.passive.length; i++) if (this.pool.address(this.passive[i]) === address) return i
    return -1
  }

  private removePassive(address: Address): void {
    const i = this.passiveIndex(address)
    if (i >= 0) this.pool.release(this.takePassive(i))
  }

  private takePassive(i: number): number {
    const h = this.passive[i]
    this.passive[i] = this.passive[this.passive.length - 1]
    this.passive.pop()
    return h
  }

  /** A shuffle's sample into the passive view; when full, evict first what we sent away, then at random. */
  private integrate(contacts: WireContact[], sent: WireContact[]): void {
    const self = this.link.address()
    for (const c of contacts) {
      if (c.address === self || this.activeIndex(c.address) >= 0 || this.passiveIndex(c.address) >= 0) continue
      if (this.passive.length >= this.options.passiveSize) {
        let evict = -1
        while (sent.length > 0 && evict < 0) evict = this.passiveIndex(sent.pop()!.address)
        if (evict < 0) evict = this.runtime.random.u32() % this.passive.length
        this.pool.release(this.takePassive(evict))
      }
      this.passive.push(this.pool.acquire(c.id, c.address))
    }
  }

  // ---- upkeep -----------------------------------------------------------------------------------

  private tick(): void {
    if (this.closed) return
    this.timer = this.runtime.setTimeout(() => this.tick(), this.options.keepaliveMs * (0.75 + 0.5 * this.runtime.random.float()))
    const now = this.runtime.now()
    this.budget = this.active.length >= this.options.activeSize - 1 ? 1 : 2 * this.options.maxPromotions
    for (let i = 0; i < this.active.length; i++) {
      if (now - this.heard[i] < this.options.keepaliveMs) continue
      const h = this.active[i]
      const address = this.pool.address(h)
      this.stats.keepalives++
      this.link.ping(address, (alive) => {
        if (this.closed) return
        const j = this.activeIndex(address)
        if (j < 0) return
        if (alive) { this.heard[j] = this.runtime.now(); return }
        this.stats.failuresDetected++
        this.pool.release(this.removeActive(j)) // failed: not kept as a passive peer
        this.budget += 2 // a lost neighbour is replaced at once
        this.fill()
      })
    }
    this.fill()
    if (++this.ticks % Math.max(1, Math.round(this.options.shuffleIntervalMs / this.options.keepaliveMs)) === 0) this.shuffle()
  }

  /** Promotes passive peers while the active view has room (NEIGHBOR, high priority when we have no neighbour). */
  private fill(): void {
    const o = this.options
    while (!this.closed && this.active.length + this.promoting.length < o.activeSize && this.promoting.length < o.maxPromotions) {
      const candidates = this.passive.length
      if (candidates === 0) return
      // Rationed per tick, except when this node has no neighbour at all.
      if (this.budget <= 0 && this.active.length >= o.minActive) return
      this.budget--
      const i = this.runtime.random.u32() % candidates
      const h = this.takePassive(i)
      this.promoting.push(h)
      const priority = this.active.length < o.minActive ? HIGH : LOW
      const address = this.pool.address(h)
      this.stats.membershipOut[MembershipOp.NEIGHBOR]++
      this.link.request(address, { op: MembershipOp.NEIGHBOR, ttl: 0, priority, contacts: [] }, (err, sender) => {
        const k = this.promoting.indexOf(h)
        if (k < 0) return // closed meanwhile
        this.promoting.splice(k, 1)
        if (!err && sender) this.addActive(sender, address)
        else if (err && err.code === 'ERR_BUSY') this.addPassiveHandle(h) // alive but full: keep it for later
        else this.stats.passiveFailed++
        this.pool.release(h)
        if (!err) return
        if (err.code !== 'ERR_BUSY') this.fill()
      })
    }
  }

  /**
   * Asks a peer to be our neighbour: a newcomer a FORWARD_JOIN walk ended at (high priority: it
   * must accept), or a member found outside the views (pub-sub's merge of overlays that formed apart).
   */
  connect(id: NodeId, address: Address, priority = HIGH): void {
    if (this.closed || this.activeIndex(address) >= 0 || address === this.link.address()) return
    this.stats.membershipOut[MembershipOp.NEIGHBOR]++
    this.link.request(address, { op: MembershipOp.NEIGHBOR, ttl: 0, priority, contacts: [] }, (err, sender) => {
      if (!err && sender) this.addActive(sender, address)
    })
    void id
  }

  /** Whether `address` is in either view. */
  knows(address: Address): boolean { return this.activeIndex(address) >= 0 || this.passiveIndex(address) >= 0 }

  /** Adds members learnt elsewhere (a rendezvous) to the passive view. */
  learn(contacts: WireContact[]): void { this.integrate(contacts, []) }

  private shuffle(): void {
    if (this.active.length === 0) return
    this.shuffledAt = this.runtime.now()
    const o = this.options
    const to = this.pool.address(this.active[this.runtime.random.u32() % this.active.length])
    const list: WireContact[] = [{ id: this.link.id, address: this.link.address() }]
    this.sample(this.active, o.shuffleActive, list, to)
    this.sample(this.passive, o.shufflePassive, list)
    this.send(to, MembershipOp.SHUFFLE, o.arwl, 0, list.slice(0, MAX_GOSSIP_CONTACTS))
  }

  /** Up to n random contacts of `view` appended to `out` (skipping `except`). */
  private sample(view: number[], n: number, out: WireContact[], except?: Address): WireContact[] {
    const idx = view.map((_, i) => i)
    for (let taken = 0; taken < n && idx.length > 0;) {
      const k = this.runtime.random.u32() % idx.length
      const h = view[idx[k]]
      idx[k] = idx[idx.length - 1]; idx.pop()
      const address = this.pool.address(h)
      if (address === except) continue
      out.push({ id: this.pool.id(h), address })
      taken++
    }
    return out
  }

  /** A random active peer other than the two given, or null. */
  private randomActive(not1: Address, not2: Address): Address | null {
    const n = this.active.length
    if (n === 0) return null
    const start = this.runtime.random.u32() % n
    for (let k = 0; k < n; k++) {
      const a = this.pool.address(this.active[(start + k) % n])
      if (a !== not1 && a !== not2) return a
    }
    return null
  }

  private send(to: Address, op: number, ttl: number, priority: number, contacts: WireContact[]): void {
    this.stats.membershipOut[op]++
    this.link.send(to, { type: MessageType.MEMBERSHIP, op, ttl, priority, contacts })
  }
}
