// Pub-sub: one gossip channel per topic (a HyParView overlay of the topic's members with Plumtree
// on top), found through a rendezvous (the DHT's provider records under the topic id by default).
// Messages are signed by their author, checked before they are forwarded or delivered (signature,
// topic, age, the owner's authorization on a restricted topic, a per-author rate), deduplicated by
// id, and handed to each local subscription's bounded queue exactly once.
import { WeftError } from '../../errors.js'
import { idToHex } from '../../identity/node-id.js'
import type { Identity } from '../../identity/keys.js'
import type { Runtime, TimerHandle } from '../../runtime/runtime.js'
import type { Address } from '../../wire/address.js'
import { BROADCAST_ID_BYTES, BroadcastOp, MessageType } from '../../wire/messages.js'
import type { Channel, Gossip } from '../../gossip/gossip.js'
import { Dandelion, type DandelionConfig } from '../../gossip/dandelion.js'
import { broadcastId } from '../../gossip/plumtree.js'
import {
  authorize, decodeAuthorization, decodeMessage, encodeAuthorization, signMessage, topicId, verifyAuthorization, verifyMessage, MAX_PUBSUB_DATA,
  type Authorization,
} from './message.js'

/** How members of a topic find each other. */
export interface Rendezvous {
  /** Says this node is a member of `topic`. */
  announce(topic: Uint8Array): Promise<void>
  /** (Some) members of `topic`. */
  find(topic: Uint8Array): Promise<{ id: Uint8Array; address: Address }[]>
}

export interface PubSubContext {
  runtime: Runtime
  gossip: Gossip
  identity: Identity
  address(): Address
  rendezvous: Rendezvous
}

export interface PubSubOptions {
  /** Topics this node is in at once (subscribed or publishing). */
  maxTopics: number
  /** Messages waiting in one subscription; past it the oldest is dropped (counted). */
  queueSize: number
  subscriptionsPerTopic: number
  /** Messages accepted per second from one author, and the burst; the same bounds what this node publishes. */
  ratePerSecond: number
  rateBurst: number
  /** Authors whose rate is tracked (then the oldest bucket goes). */
  maxAuthors: number
  /** Messages older than this (by their author's clock) or further ahead than maxFutureMs are refused. */
  maxAgeMs: number
  maxFutureMs: number
  /** Message ids remembered per topic; a message older than the oldest one forgotten is refused (no replay). */
  maxSeen: number
  /** How often a topic with no neighbour looks for members again, and how often membership is re-announced. */
  maintainMs: number
  announceMs: number
  /** A topic joined only to publish is left after this long without a publish. */
  publisherIdleMs: number
  /** Contacts tried when joining a topic. */
  joinContacts: number
  /**
   * Overlays that formed apart (members that joined at once and found different members) are
   * merged: at this many maintenance ticks after a join, and at a tenth of the later ones, a member
   * asks the rendezvous again and makes a member it did not know its neighbour.
   */
  mergeTicks: number
  /** The chance that a later upkeep tick merges too (with a low-priority NEIGHBOR: a full view refuses it). */
  mergeChance: number
  /** Dandelion++ for `publish(..., { private: true })` (src/gossip/dandelion.ts defaults: 10 % fluff, 2 successors, 10 min epochs). */
  dandelion?: Partial<DandelionConfig>
}

export const defaultPubSubOptions: PubSubOptions = {
  maxTopics: 32,
  queueSize: 1024,
  subscriptionsPerTopic: 16,
  ratePerSecond: 50,
  rateBurst: 200,
  maxAuthors: 1024,
  maxAgeMs: 10 * 60_000,
  maxFutureMs: 60_000,
  maxSeen: 16_384,
  maintainMs: 15_000,
  announceMs: 20 * 60_000,
  publisherIdleMs: 10 * 60_000,
  joinContacts: 8,
  mergeTicks: 2,
  mergeChance: 0.1,
}

/** A message as a subscriber gets it. */
export interface TopicMessage {
  topic: string
  /** Message id: 32 hex digits (the first 16 bytes of SHA-256 of the signed message). */
  id: string
  /** The author's Ed25519 public key, 64 hex digits. */
  author: string
  data: Uint8Array
  /** The author's clock at publishing (unix ms). */
  time: number
  /** Hops from the author (0: published by this node). */
  hops: number
}

export interface TopicOptions {
  /** A restricted topic's owner key (32 bytes or 64 hex digits): only publishers it authorized are accepted. */
  owner?: Uint8Array | string
}

export interface PublishOptions extends TopicOptions {
  /** Dandelion++: a stem phase first (a random walk over per-epoch links), then the broadcast, so the origin is hidden. */
  private?: boolean
  /** The owner's authorization of this node (bytes or hex), for a restricted topic this node does not own. */
  authorization?: Authorization | Uint8Array | string
}

export interface PubSubStats {
  published: number
  delivered: number
  /** Refused input, by code (bad signature, unauthorized, expired, rate limited, bad message, replay, wrong topic). */
  refused: Record<string, number>
  /** Messages dropped from full subscription queues. */
  queueDropped: number
}

const hexKey = (v: Uint8Array | string | undefined, what: string): Uint8Array | null => {
  if (v === undefined) return null
  if (typeof v !== 'string') { if (v.length !== 32) throw new WeftError('ERR_BAD_ARGUMENT', `${what} is 32 bytes`); return v }
  if (!/^[0-9a-fA-F]{64}$/.test(v)) throw new WeftError('ERR_BAD_ARGUMENT', `${what} is 64 hex digits`)
  return new Uint8Array(Buffer.from(v, 'hex'))
}
const keyOf = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1')

interface Topic {
  name: string
  id: Uint8Array
  owner: Uint8Array | null
  channel: Channel
  subs: Set<Subscription>
  ready: Promise<void>
  /** Ids seen, with their author time (insertion order: oldest first), and the time below which messages are refused. */
  seen: Map<string, number>
  horizon: number
  timer: TimerHandle | null
  lastPublish: number
  lastAnnounce: number
  joining: boolean
  /** Announced as a member (subscribers are; a node that only publishes is not). */
  announced: boolean
  /** Members the last join found. */
  found: number
  merges: number
  /** Dandelion++ for private publishing in this topic. */
  stem: Dandelion<Uint8Array>
  authorization: Authorization | null
}

export class PubSub {
  readonly options: PubSubOptions
  readonly stats: PubSubStats = { published: 0, delivered: 0, refused: {}, queueDropped: 0 }
  private readonly topics = new Map<string, Topic>()
  /** Per-author token buckets: [tokens, last refill ms]. */
  private readonly buckets = new Map<string, [number, number]>()
  private closed = false

  constructor(private readonly ctx: PubSubContext, options: Partial<PubSubOptions> = {}) {
    this.options = { ...defaultPubSubOptions, ...options }
  }

  /**
   * Subscribes to a topic: an async iterator of its messages (each once). `ready` settles when this
   * node has joined the topic's overlay (or found it has no other member yet).
   */
  subscribe(name: string, options: TopicOptions = {}): Subscription {
    const t = this.topic(name, hexKey(options.owner, 'a topic owner key'))
    if (t.subs.size >= this.options.subscriptionsPerTopic) throw new WeftError('ERR_BUSY', `at most ${this.options.subscriptionsPerTopic} subscriptions to one topic`)
    const s = new Subscription(this, t, this.options.queueSize)
    t.subs.add(s)
    if (!t.announced && !t.joining) {
      // In the topic to publish until now: from now on others must find this member.
      t.announced = true
      t.lastAnnounce = this.ctx.runtime.now()
      void this.ctx.rendezvous.announce(t.id).catch(() => {})
    }
    return s
  }

  /** Publishes `data` on a topic (joining its overlay first if this node is not in it); resolves with the message id. */
  async publish(name: string, data: Uint8Array | string, options: PublishOptions = {}): Promise<{ id: string; topic: string; peers: number }> {
    const bytes = typeof data === 'string' ? new Uint8Array(Buffer.from(data, 'utf8')) : data
    if (bytes.length > MAX_PUBSUB_DATA) throw new WeftError('ERR_TOO_LARGE', `a pub-sub message carries at most ${MAX_PUBSUB_DATA} bytes, got ${bytes.length}`)
    const owner = hexKey(options.owner, 'a topic owner key')
    const t = this.topic(name, owner)
    let auth: Authorization | null = null
    if (owner) {
      auth = this.authorizationFor(t, options.authorization)
      if (!auth) throw new WeftError('ERR_FORBIDDEN', `topic ${JSON.stringify(name)} is restricted to publishers its owner authorized; pass the owner's authorization`)
    }
    const { runtime, identity } = this.ctx
    const now = runtime.wallClock()
    if (!this.allow(identity.publicKey, runtime.now())) throw new WeftError('ERR_RATE_LIMITED', `at most ${this.options.ratePerSecond} messages a second (burst ${this.options.rateBurst})`)
    t.lastPublish = runtime.now()
    await t.ready
    // Joined only to publish, and nobody took us in: look again (a lookup can fail under load), then say so.
    for (let tries = 0; tries < 3 && t.channel.membership.size === 0 && t.subs.size === 0 && !this.closed; tries++) {
      if (!t.joining) await (t.ready = this.join(t))
      else await t.ready
    }
    if (t.channel.membership.size === 0 && t.subs.size === 0) throw new WeftError('ERR_NOT_FOUND', `no member of topic ${JSON.stringify(name)} could be reached (${t.found} found)`)
    if (this.closed) throw new WeftError('ERR_CLOSED', 'pub-sub is closed')
    const payload = signMessage(identity, t.id, bytes, now, runtime.random.u32(), auth)
    let id: Uint8Array | null
    if (options.private) {
      // Stem first: the message leaves on this epoch's own stem edge; a diffuser down the stem (or an embargo) fluffs it.
      id = broadcastId(payload)
      if (t.channel.tree.has(id)) id = null
      else { this.freshEpoch(t); t.stem.send(payload) }
    } else id = t.channel.broadcast(payload)
    if (!id) throw new WeftError('ERR_BAD_ARGUMENT', 'this exact message was published already')
    this.stats.published++
    return { id: Buffer.from(id).toString('hex'), topic: name, peers: t.channel.membership.size }
  }

  /** As a topic's owner: authorize `publisher` (its public key) on the restricted topic `name` owned by this node. */
  authorize(name: string, publisher: Uint8Array | string, expiresAt: number): { authorization: string; topic: string } {
    const id = topicId(name, this.ctx.identity.publicKey)
    const a = authorize(this.ctx.identity, id, hexKey(publisher, 'a publisher key')!, expiresAt)
    return { authorization: Buffer.from(encodeAuthorization(a)).toString('hex'), topic: name }
  }

  /** Topics this node is in. */
  list(): { topic: string; id: string; owner: string | null; subscriptions: number; neighbours: number; passive: number }[] {
    return [...this.topics.values()].map((t) => ({
      topic: t.name, id: idToHex(t.id), owner: t.owner ? Buffer.from(t.owner).toString('hex') : null, subscriptions: t.subs.size,
      neighbours: t.channel.membership.size, passive: t.channel.membership.passive.length,
    }))
  }

  /** Leaves every topic (DISCONNECT to the neighbours; `leave: false`: without a word) and ends every subscription. */
  close(leave = true): void {
    if (this.closed) return
    this.closed = true
    for (const t of [...this.topics.values()]) this.leave(t, leave)
  }

  // ---- topics -----------------------------------------------------------------------------------

  private topic(name: string, owner: Uint8Array | null): Topic {
    if (this.closed) throw new WeftError('ERR_CLOSED', 'pub-sub is closed')
    const id = topicId(name, owner)
    const key = keyOf(id)
    const had = this.topics.get(key)
    if (had) return had
    if (this.topics.size >= this.options.maxTopics) throw new WeftError('ERR_BUSY', `at most ${this.options.maxTopics} topics at once`)
    const t = { name, id, owner, subs: new Set(), seen: new Map(), horizon: 0, timer: null, lastPublish: 0, lastAnnounce: 0, joining: false, announced: false, found: 0, merges: 0, authorization: null } as unknown as Topic
    t.channel = this.ctx.gossip.open(id, (mid, payload, round) => this.deliver(t, mid, payload, round), (payload, mid) => this.check(t, payload, mid))
    const { channel } = t, pool = this.ctx.gossip.pool
    t.stem = new Dandelion<Uint8Array>({
      runtime: this.ctx.runtime,
      peers: () => channel.membership.active,
      sendStem: (h, payload) => {
        this.ctx.gossip.stats.broadcastOut[BroadcastOp.STEM]++
        channel.send(pool.address(h), { type: MessageType.BROADCAST, op: BroadcastOp.STEM, round: 0, ids: [broadcastId(payload)], payload })
      },
      fluff: (payload) => { channel.broadcast(payload) },
      key: (payload) => keyOf(broadcastId(payload)),
      config: this.options.dandelion,
    })
    // A stem successor that leaves the active view is replaced at once.
    const tree = channel.tree
    channel.membership.listener = { neighborUp: (h) => tree.neighborUp(h), neighborDown: (h) => { tree.neighborDown(h); t.stem.peerDown(h) } }
    channel.onStem = (from, mid, payload) => this.stemIn(t, from, mid, payload)
    t.stem.start()
    this.topics.set(key, t)
    t.ready = this.join(t)
    const tick = (): void => {
      t.timer = this.ctx.runtime.setTimeout(tick, this.options.maintainMs * (0.75 + 0.5 * this.ctx.runtime.random.float()))
      this.maintain(t)
    }
    t.timer = this.ctx.runtime.setTimeout(tick, this.options.maintainMs * (0.75 + 0.5 * this.ctx.runtime.random.float()))
    return t
  }

  /**
   * Joins through members found, then announces membership. Announcing only once joined matters:
   * a node still joining that others joined through would take their first messages nowhere (a
   * Plumtree message goes to the links there are when it is sent). Members that found nobody at
   * the same time start apart; merge() joins their overlays at the next upkeep ticks.
   */
  private async join(t: Topic): Promise<void> {
    t.joining = true
    try {
      const found = await this.members(t)
      t.found = found.length
      const hv = t.channel.membership
      if (found.length > 0) {
        hv.learn(found.slice(this.options.joinContacts))
        await t.channel.joinAsync(found.slice(0, this.options.joinContacts).map((c) => c.address)).catch(() => {}) // nobody answered: alone for now; maintain() tries again
        // One more link, to a member found but not the one that took us in: members that joined
        // at once and found different members would otherwise form overlays apart.
        const other = found.find((c) => hv.activeIndex(c.address) < 0)
        if (other && hv.size > 0) hv.connect(other.id, other.address)
      }
      if (this.topics.get(keyOf(t.id)) !== t) { t.joining = false; return }
      t.merges = this.options.mergeTicks
      t.lastAnnounce = this.ctx.runtime.now()
    } catch (err) {
      t.joining = false
      throw err
    }
    // Joined. Subscribers then announce themselves (a node that only publishes need not be found); a
    // subscription is ready once others can find it.
    if (t.subs.size === 0) { t.joining = false; return }
    t.announced = true
    await this.ctx.rendezvous.announce(t.id).catch(() => {}).finally(() => { t.joining = false })
  }

  /** Members the rendezvous knows, other than this node, in random order (so that members do not all join through the first one). */
  private async members(t: Topic): Promise<{ id: Uint8Array; address: Address }[]> {
    const self = this.ctx.address()
    const found = (await this.ctx.rendezvous.find(t.id).catch(() => [])).filter((c) => c.address !== self)
    if (this.topics.get(keyOf(t.id)) !== t) return []
    for (let i = found.length - 1; i > 0; i--) {
      const j = this.ctx.runtime.random.u32() % (i + 1)
      ;[found[i], found[j]] = [found[j], found[i]]
    }
    return found
  }

  /** Makes a member this node did not know its neighbour: two overlays of one topic that formed apart become one. */
  private async merge(t: Topic, priority: number): Promise<void> {
    t.joining = true
    try {
      const hv = t.channel.membership
      const found = await this.members(t)
      // Not "a member we do not know": passive views hold members of the other overlay too. Any
      // member outside the active view will do; when the overlays are apart, some pick across.
      const other = found.find((c) => hv.activeIndex(c.address) < 0)
      hv.learn(found.filter((c) => c !== other))
      if (other) hv.connect(other.id, other.address, priority)
    } finally {
      t.joining = false
    }
  }

  private maintain(t: Topic): void {
    const now = this.ctx.runtime.now()
    if (t.subs.size === 0 && now - t.lastPublish > this.options.publisherIdleMs) { this.leave(t); return }
    if (t.joining) return
    if (t.channel.membership.size === 0 || now - t.lastAnnounce > this.options.announceMs) { void this.join(t); return }
    if (t.merges > 0) { t.merges--; void this.merge(t, 1) } else if (this.ctx.runtime.random.float() < this.options.mergeChance) void this.merge(t, 0)
  }

  /** Leaves a topic when its last subscription ends and it is not being published to. */
  release(t: Topic, s: Subscription): void {
    t.subs.delete(s)
    if (t.subs.size === 0 && this.ctx.runtime.now() - t.lastPublish > this.options.publisherIdleMs) this.leave(t)
  }

  private leave(t: Topic, tell = true): void {
    const key = keyOf(t.id)
    if (this.topics.get(key) !== t) return
    this.topics.delete(key)
    if (t.timer) this.ctx.runtime.clearTimeout(t.timer)
    t.stem.stop()
    if (tell) t.channel.leave()
    else t.channel.close()
    for (const s of [...t.subs]) s.end()
  }

  private authorizationFor(t: Topic, given: PublishOptions['authorization']): Authorization | null {
    const { identity, runtime } = this.ctx
    if (given !== undefined) {
      const a = typeof given === 'string' ? decodeAuthorization(hexBytes(given)) : given instanceof Uint8Array ? decodeAuthorization(given) : given
      if (!Buffer.from(a.topic).equals(Buffer.from(t.id)) || !Buffer.from(a.publisher).equals(Buffer.from(identity.publicKey)) || !verifyAuthorization(t.owner!, a)) {
        throw new WeftError('ERR_FORBIDDEN', 'the authorization is not the topic owner\'s grant to this node on this topic')
      }
      if (a.expiresAt < runtime.wallClock()) throw new WeftError('ERR_EXPIRED', 'the authorization has expired')
      t.authorization = a
    }
    if (t.authorization) return t.authorization
    // The owner publishes on its own topic with a grant to itself.
    if (Buffer.from(identity.publicKey).equals(Buffer.from(t.owner!))) {
      t.authorization = authorize(identity, t.id, identity.publicKey, runtime.wallClock() + 365 * 24 * 3600_000)
      return t.authorization
    }
    return null
  }

  // ---- input --------------------------------------------------------------------------------------

  private refuse(code: string): false {
    this.stats.refused[code] = (this.stats.refused[code] ?? 0) + 1
    return false
  }

  /** Runs before a new message is forwarded or delivered: false drops it here (and it goes no further from here). */
  private check(t: Topic, payload: Uint8Array, id: Uint8Array): boolean {
    const d = decodeMessage(payload)
    if (!d.ok) return this.refuse(d.error.code)
    const m = d.message
    if (!Buffer.from(m.topic).equals(Buffer.from(t.id))) return this.refuse('ERR_WRONG_TOPIC')
    const now = this.ctx.runtime.wallClock()
    if (m.time > now + this.options.maxFutureMs || m.time < now - this.options.maxAgeMs || m.time < t.horizon) return this.refuse('ERR_EXPIRED')
    if (t.seen.has(keyOf(id))) return this.refuse('ERR_REPLAY')
    const bad = verifyMessage(payload, m, t.owner, now)
    if (bad) return this.refuse(bad)
    if (!this.allow(m.author, this.ctx.runtime.now())) return this.refuse('ERR_RATE_LIMITED')
    return true
  }

  /** A Dandelion++ stem hop: checked like a broadcast message, then passed on (or fluffed) by the topic's Dandelion. */
  private stemIn(t: Topic, from: Address, id: Uint8Array, payload: Uint8Array): void {
    if (keyOf(broadcastId(payload)) !== keyOf(id)) { this.refuse('ERR_BAD_MESSAGE'); return }
    if (t.channel.tree.has(id)) return // already broadcast
    if (!this.check(t, payload, id)) return
    const i = t.channel.membership.activeIndex(from)
    this.freshEpoch(t)
    // From outside the active view there is no inbound edge to route by: fluff it here.
    if (i < 0) { t.channel.broadcast(new Uint8Array(payload)); return }
    t.stem.onStem(t.channel.membership.active[i], new Uint8Array(payload))
  }

  /** Dandelion draws its stem successors per epoch; a topic joined after the draw (no peers then) draws again. */
  private freshEpoch(t: Topic): void {
    if (t.stem.stemSuccessors.length === 0 && t.channel.membership.size > 0) t.stem.newEpoch()
  }

  private deliver(t: Topic, id: Uint8Array, payload: Uint8Array, round: number): void {
    t.stem.onFluffed(keyOf(id.subarray(0, BROADCAST_ID_BYTES)))
    const d = decodeMessage(payload)
    if (!d.ok) return // our own publish or a checked one: cannot happen
    const m = d.message
    const key = keyOf(id.subarray(0, BROADCAST_ID_BYTES))
    if (t.seen.has(key)) return
    t.seen.set(key, m.time)
    if (t.seen.size > this.options.maxSeen) {
      const [k, time] = t.seen.entries().next().value!
      t.seen.delete(k)
      t.horizon = Math.max(t.horizon, time)
    }
    const msg: TopicMessage = {
      topic: t.name, id: Buffer.from(id).toString('hex'), author: Buffer.from(m.author).toString('hex'),
      data: new Uint8Array(m.data), time: m.time, hops: round,
    }
    this.stats.delivered++
    for (const s of t.subs) s.push(msg)
  }

  private allow(author: Uint8Array, now: number): boolean {
    const key = keyOf(author)
    let b = this.buckets.get(key)
    if (!b) {
      if (this.buckets.size >= this.options.maxAuthors) this.buckets.delete(this.buckets.keys().next().value!)
      b = [this.options.rateBurst, now]
      this.buckets.set(key, b)
    }
    b[0] = Math.min(this.options.rateBurst, b[0] + ((now - b[1]) / 1000) * this.options.ratePerSecond)
    b[1] = now
    if (b[0] < 1) return false
    b[0]--
    return true
  }

  /** Counted for a subscription whose queue was full. */
  noteDropped(): void { this.stats.queueDropped++ }
}

function hexBytes(s: string): Uint8Array {
  if (!/^([0-9a-fA-F]{2})+$/.test(s)) throw new WeftError('ERR_BAD_ARGUMENT', 'an authorization is hex digits')
  return new Uint8Array(Buffer.from(s, 'hex'))
}

/** One subscriber's view of a topic: an async iterator over a bounded queue. */
export class Subscription implements AsyncIterableIterator<TopicMessage> {
  private readonly queue: TopicMessage[] = []
  private waiting: ((r: IteratorResult<TopicMessage>) => void) | null = null
  private done = false
  /** Messages dropped because this subscriber did not keep up. */
  dropped = 0

  constructor(private readonly pubsub: PubSub, private readonly t: Topic, private readonly limit: number) {}

  get topic(): string { return this.t.name }
  /** Settles when this node has joined the topic's overlay (or found no other member yet). */
  get ready(): Promise<void> { return this.t.ready }

  push(m: TopicMessage): void {
    if (this.done) return
    if (this.waiting) { const w = this.waiting; this.waiting = null; w({ value: m, done: false }); return }
    if (this.queue.length >= this.limit) { this.queue.shift(); this.dropped++; this.pubsub.noteDropped() }
    this.queue.push(m)
  }

  next(): Promise<IteratorResult<TopicMessage>> {
    const m = this.queue.shift()
    if (m) return Promise.resolve({ value: m, done: false })
    if (this.done) return Promise.resolve({ value: undefined, done: true })
    if (this.waiting) return Promise.reject(new WeftError('ERR_BUSY', 'one next() at a time'))
    return new Promise((resolve) => { this.waiting = resolve })
  }

  /** Ends the subscription (leaving the topic if it was the last one). */
  return(): Promise<IteratorResult<TopicMessage>> {
    if (!this.done) this.pubsub.release(this.t, this)
    this.end()
    return Promise.resolve({ value: undefined, done: true })
  }

  end(): void {
    if (this.done) return
    this.done = true
    this.queue.length = 0
    const w = this.waiting
    this.waiting = null
    w?.({ value: undefined, done: true })
  }

  close(): void { void this.return() }

  [Symbol.asyncIterator](): AsyncIterableIterator<TopicMessage> { return this }
}

