// Plumtree (Leitão, Pereira, Rodrigues 2007): epidemic broadcast trees over HyParView's active view.
// A payload goes eagerly (GOSSIP) to the eager peers and as an id (IHAVE, batched) to the lazy ones.
// A duplicate GOSSIP turns its link lazy (PRUNE), so the eager links settle into a spanning tree;
// an id announced but not received within a timer is pulled (GRAFT), which also puts that link
// back in the tree: that is the repair after failures. Sans-IO, bounded everywhere.
//
// A message id is the first 16 bytes of SHA-256(payload), checked on receipt: an id cannot be
// claimed for another payload, so a forged GOSSIP cannot make nodes ignore the real one.
import { createHash } from 'node:crypto'
import { WeftError } from '../errors.js'
import type { ContactPool } from '../overlay/contact-pool.js'
import type { Runtime, TimerHandle } from '../runtime/runtime.js'
import type { Address } from '../wire/address.js'
import { BROADCAST_ID_BYTES, BroadcastOp, MAX_BROADCAST_IDS, MAX_BROADCAST_PAYLOAD, MessageType, type BroadcastRequest } from '../wire/messages.js'
import type { NeighborListener } from './hyparview.js'
import type { ChannelLink, GossipStats } from './link.js'

export interface PlumtreeOptions {
  /** After the first IHAVE of an unknown id, wait this long for the GOSSIP before a GRAFT. */
  graftTimeoutMs: number
  /** Then GRAFT the next announcer every this long. */
  graftRetryMs: number
  /** GRAFTs for one id before giving up. */
  maxGraftTries: number
  /** IHAVEs wait this long so that several ids share a datagram. */
  lazyDelayMs: number
  /** Ids remembered (duplicates dropped). */
  maxSeen: number
  /** Payloads kept to answer GRAFTs: count and bytes. */
  maxCached: number
  maxCachedBytes: number
  /** Ids announced but not yet received, and announcers kept per id. */
  maxMissing: number
  maxAnnouncers: number
  /** IHAVE entries waiting for the batch; past it the batch goes at once. */
  maxLazyQueue: number
  /**
   * Neighbours that left the view lately, remembered for as long as a GRAFT may follow an IHAVE
   * (graftTimeoutMs + (maxGraftTries + 1) x graftRetryMs): their IHAVEs and GRAFTs still count.
   */
  maxFormer: number
  /**
   * The paper's optimisation: an IHAVE for a message received this many rounds later than the
   * IHAVE's path would have brought it makes that lazy link eager (GRAFT with no ids); the longer
   * eager link is pruned by the next duplicate. 0: off.
   */
  optimizeThreshold: number
  /**
   * A link that comes up gets an IHAVE of the ids received in this window (at most maxSync), so a
   * node that was cut off, or an overlay merged with another, pulls what it missed. 0: off.
   */
  syncWindowMs: number
  maxSync: number
}

export const defaultPlumtreeOptions: PlumtreeOptions = {
  graftTimeoutMs: 1000,
  graftRetryMs: 500,
  maxGraftTries: 8,
  lazyDelayMs: 25,
  maxSeen: 4096,
  maxCached: 512,
  maxCachedBytes: 1 << 20,
  maxMissing: 1024,
  maxAnnouncers: 8,
  maxLazyQueue: 4096,
  maxFormer: 256,
  optimizeThreshold: 0,
  syncWindowMs: 30_000,
  maxSync: 64, // off: measured at 1,000 geo nodes, 3 gave 1.25 N payloads and deeper trees (hops are not latency)
}

/** The id of a payload: SHA-256, first 16 bytes. */
export function broadcastId(payload: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(payload).digest().subarray(0, BROADCAST_ID_BYTES))
}

const keyOf = (id: Uint8Array): string => Buffer.from(id.buffer, id.byteOffset, BROADCAST_ID_BYTES).toString('latin1')

interface Missing {
  id: Uint8Array
  announcers: Address[]
  timer: TimerHandle | null
  tries: number
}

/** `round`: hops from the origin (0 at the origin); `from`: the peer it came from (null: published here). */
export type DeliverFn = (id: Uint8Array, payload: Uint8Array, round: number, from: Address | null) => void
/** Checked before a new payload is delivered or forwarded; false drops it (counted). */
export type ValidateFn = (payload: Uint8Array, id: Uint8Array) => boolean

export class Plumtree implements NeighborListener {
  /** Pool handles (owned by HyParView's active view): eager links carry payloads, lazy ones ids. */
  readonly eager: number[] = []
  readonly lazy: number[] = []
  private readonly seen = new Set<string>()
  /** Payloads for GRAFTs: round byte then payload. */
  private readonly cache = new Map<string, Uint8Array>()
  private cacheBytes = 0
  private readonly missing = new Map<string, Missing>()
  private lazyTo: Address[] = []
  private lazyIds: Uint8Array[] = []
  private lazyRounds: number[] = []
  private lazyTimer: TimerHandle | null = null
  /** The last maxSync ids received, oldest first, and when (for a link that comes up). */
  private recentIds: Uint8Array[] = []
  private recentAt: number[] = []
  /** Former neighbours' addresses (proven when they joined the view) and when they left, oldest first. */
  private readonly former = new Map<Address, number>()
  private closed = false

  constructor(
    private readonly runtime: Runtime,
    private readonly link: ChannelLink,
    private readonly pool: ContactPool,
    readonly options: PlumtreeOptions,
    private readonly stats: GossipStats,
    private readonly deliver: DeliverFn,
    private readonly validate: ValidateFn | null = null,
  ) {}

  // ---- neighbours (from HyParView) ---------------------------------------------------------------

  neighborUp(h: number): void {
    if (!this.eager.includes(h) && !this.lazy.includes(h)) this.eager.push(h)
    this.former.delete(this.pool.address(h))
    const since = this.runtime.now() - this.options.syncWindowMs
    if (this.options.syncWindowMs <= 0 || this.recentIds.length === 0) return
    const a = this.pool.address(h)
    for (let i = 0; i < this.recentIds.length; i++) if (this.recentAt[i] >= since) this.queueIHave(a, this.recentIds[i], 0)
  }

  neighborDown(h: number): void {
    if (!remove(this.eager, h) && !remove(this.lazy, h)) return
    // Ids announced on this link just before it went down draw GRAFTs after: still answer them
    // (the address was proven when it joined the view, so this is no stranger's reflector).
    const a = this.pool.address(h), now = this.runtime.now()
    this.former.delete(a)
    this.former.set(a, now)
    for (const [k, at] of this.former) {
      if (this.former.size <= this.options.maxFormer && now - at <= this.formerMs()) break
      this.former.delete(k)
    }
  }

  /** Publishes a payload from here; returns its id, or null when it was seen already. */
  broadcast(payload: Uint8Array): Uint8Array | null {
    if (this.closed) throw new WeftError('ERR_CLOSED', 'gossip channel closed')
    if (payload.length > MAX_BROADCAST_PAYLOAD) throw new WeftError('ERR_TOO_LARGE', `a broadcast payload of ${payload.length} bytes exceeds ${MAX_BROADCAST_PAYLOAD}`)
    const id = broadcastId(payload)
    const key = keyOf(id)
    if (this.seen.has(key)) return null
    this.accept(key, id, payload, 0, null)
    return id
  }

  has(id: Uint8Array): boolean { return this.seen.has(keyOf(id)) }

  /** Handles a BROADCAST datagram (one-way). */
  handle(from: Address, req: BroadcastRequest): void {
    if (this.closed) return
    this.stats.broadcastIn[req.op]++
    switch (req.op) {
      case BroadcastOp.GOSSIP: {
        const id = req.ids[0]
        const key = keyOf(id)
        if (this.seen.has(key)) {
          this.stats.duplicates++
          // A second copy: this link is not needed in the tree.
          const i = this.indexOf(this.eager, from)
          if (i >= 0) { this.lazy.push(this.eager[i]); this.eager.splice(i, 1) }
          this.send(from, BroadcastOp.PRUNE, 0, [], EMPTY)
          return
        }
        if (keyOf(broadcastId(req.payload)) !== key) { this.stats.dropped++; return } // the id is not this payload's
        if (this.validate && !this.validate(req.payload, id)) { this.stats.dropped++; return }
        // The link it came on is part of the tree.
        const j = this.indexOf(this.lazy, from)
        if (j >= 0) { this.eager.push(this.lazy[j]); this.lazy.splice(j, 1) }
        this.accept(key, new Uint8Array(id), req.payload, req.round, from)
        return
      }
      case BroadcastOp.IHAVE:
        // IHAVE and GRAFT come only from neighbours, or ones that just left (a link's two ends
        // drop it at different times): a stranger's IHAVE would draw our GRAFTs to any address,
        // its GRAFT a cached payload ten times its size.
        if (!this.isPeer(from)) { this.stats.dropped++; return }
        for (const id of req.ids) this.announced(from, id, req.round)
        return
      case BroadcastOp.GRAFT: {
        if (!this.isPeer(from)) { this.stats.dropped++; return }
        const j = this.indexOf(this.lazy, from)
        if (j >= 0) { this.eager.push(this.lazy[j]); this.lazy.splice(j, 1) }
        for (const id of req.ids) {
          const cached = this.cache.get(keyOf(id))
          if (!cached) continue
          this.stats.graftAnswers++
          this.send(from, BroadcastOp.GOSSIP, Math.min(255, cached[0] + 1), [id], cached.subarray(1))
        }
        return
      }
      case BroadcastOp.PRUNE: {
        const i = this.indexOf(this.eager, from)
        if (i >= 0) { this.lazy.push(this.eager[i]); this.eager.splice(i, 1) }
        return
      }
    }
  }

  close(): void {
    this.closed = true
    for (const m of this.missing.values()) if (m.timer) this.runtime.clearTimeout(m.timer)
    this.missing.clear()
    if (this.lazyTimer) this.runtime.clearTimeout(this.lazyTimer)
    this.lazyTimer = null
    this.lazyTo = []
    this.lazyIds = []
    this.lazyRounds = []
    this.former.clear()
  }

  // ---- internals --------------------------------------------------------------------------------

  private accept(key: string, id: Uint8Array, payload: Uint8Array, round: number, from: Address | null): void {
    this.remember(key, id, payload, round)
    const m = this.missing.get(key)
    if (m) { if (m.timer) this.runtime.clearTimeout(m.timer); this.missing.delete(key) }
    this.stats.delivered++
    this.deliver(id, payload, round, from)
    const next = Math.min(255, round + 1)
    for (const h of this.eager) {
      const a = this.pool.address(h)
      if (a !== from) this.send(a, BroadcastOp.GOSSIP, next, [id], payload)
    }
    for (const h of this.lazy) {
      const a = this.pool.address(h)
      if (a !== from) this.queueIHave(a, id, next)
    }
  }

  private remember(key: string, id: Uint8Array, payload: Uint8Array, round: number): void {
    const o = this.options
    if (o.syncWindowMs > 0) {
      this.recentIds.push(id)
      this.recentAt.push(this.runtime.now())
      if (this.recentIds.length > o.maxSync) { this.recentIds.shift(); this.recentAt.shift() }
    }
    this.seen.add(key)
    if (this.seen.size > o.maxSeen) this.seen.delete(this.seen.values().next().value!)
    const c = new Uint8Array(payload.length + 1)
    c[0] = round
    c.set(payload, 1)
    this.cache.set(key, c)
    this.cacheBytes += c.length
    while (this.cache.size > o.maxCached || this.cacheBytes > o.maxCachedBytes) {
      const [k, v] = this.cache.entries().next().value!
      this.cache.delete(k)
      this.cacheBytes -= v.length
    }
  }

  private announced(from: Address, id: Uint8Array, round: number): void {
    const key = keyOf(id)
    if (this.seen.has(key)) {
      const got = this.options.optimizeThreshold > 0 ? this.cache.get(key) : undefined
      if (got && got[0] - round >= this.options.optimizeThreshold) {
        const j = this.indexOf(this.lazy, from)
        if (j >= 0) {
          this.eager.push(this.lazy[j]); this.lazy.splice(j, 1)
          this.stats.optimized++
          this.send(from, BroadcastOp.GRAFT, 0, [], EMPTY)
        }
      }
      return
    }
    let m = this.missing.get(key)
    if (!m) {
      if (this.missing.size >= this.options.maxMissing) { this.stats.dropped++; return }
      m = { id: new Uint8Array(id), announcers: [], timer: null, tries: 0 }
      this.missing.set(key, m)
      const entry = m
      m.timer = this.runtime.setTimeout(() => this.expired(key, entry), this.options.graftTimeoutMs)
    }
    if (m.announcers.length < this.options.maxAnnouncers && !m.announcers.includes(from)) m.announcers.push(from)
  }

  /** The GOSSIP did not come in time: pull it from the next announcer, and make that link eager. */
  private expired(key: string, m: Missing): void {
    m.timer = null
    if (this.closed || this.missing.get(key) !== m) return
    const to = m.announcers.shift()
    if (to === undefined || ++m.tries > this.options.maxGraftTries) { this.missing.delete(key); return }
    const j = this.indexOf(this.lazy, to)
    if (j >= 0) { this.eager.push(this.lazy[j]); this.lazy.splice(j, 1) }
    this.send(to, BroadcastOp.GRAFT, 0, [m.id], EMPTY)
    m.announcers.push(to) // it may answer later; keep it as the last resort
    m.timer = this.runtime.setTimeout(() => this.expired(key, m), this.options.graftRetryMs)
  }

  private queueIHave(to: Address, id: Uint8Array, round: number): void {
    this.lazyTo.push(to)
    this.lazyIds.push(id)
    this.lazyRounds.push(round)
    if (this.lazyTo.length >= this.options.maxLazyQueue) { this.flush(); return }
    this.lazyTimer ??= this.runtime.setTimeout(() => this.flush(), this.options.lazyDelayMs)
  }

  /** Sends the queued IHAVEs, one datagram per peer (and per MAX_BROADCAST_IDS ids). */
  private flush(): void {
    if (this.lazyTimer) { this.runtime.clearTimeout(this.lazyTimer); this.lazyTimer = null }
    const to = this.lazyTo, ids = this.lazyIds, rounds = this.lazyRounds
    this.lazyTo = []
    this.lazyIds = []
    this.lazyRounds = []
    if (to.length === 1) { this.sendIHave(to[0], rounds[0], ids); return }
    // One datagram per (peer, round): the round is the optimisation's clue.
    const batches = new Map<string, { to: Address; round: number; ids: Uint8Array[] }>()
    for (let i = 0; i < to.length; i++) {
      const k = `${rounds[i]} ${to[i]}`
      const b = batches.get(k)
      if (b) b.ids.push(ids[i])
      else batches.set(k, { to: to[i], round: rounds[i], ids: [ids[i]] })
    }
    for (const b of batches.values()) {
      for (let i = 0; i < b.ids.length; i += MAX_BROADCAST_IDS) this.sendIHave(b.to, b.round, b.ids.slice(i, i + MAX_BROADCAST_IDS))
    }
  }

  private sendIHave(to: Address, round: number, ids: Uint8Array[]): void {
    if (this.closed) return
    this.stats.ihaveIds += ids.length
    this.send(to, BroadcastOp.IHAVE, round, ids, EMPTY)
  }

  private send(to: Address, op: number, round: number, ids: Uint8Array[], payload: Uint8Array): void {
    this.stats.broadcastOut[op]++
    this.link.send(to, { type: MessageType.BROADCAST, op, round, ids, payload })
  }

  /** A neighbour, or one that left within formerMs. */
  private isPeer(address: Address): boolean {
    if (this.indexOf(this.lazy, address) >= 0 || this.indexOf(this.eager, address) >= 0) return true
    const at = this.former.get(address)
    return at !== undefined && this.runtime.now() - at <= this.formerMs()
  }

  /** How long after its first IHAVE a missing id may still be GRAFTed (one retry of slack for latency). */
  private formerMs(): number {
    const o = this.options
    return o.graftTimeoutMs + (o.maxGraftTries + 1) * o.graftRetryMs
  }

  private indexOf(list: number[], address: Address): number {
    for (let i = 0; i < list.length; i++) if (this.pool.address(list[i]) === address) return i
    return -1
  }
}

const EMPTY = new Uint8Array(0)

function remove(list: number[], h: number): boolean {
  const i = list.indexOf(h)
  if (i >= 0) list.splice(i, 1)
  return i >= 0
}
