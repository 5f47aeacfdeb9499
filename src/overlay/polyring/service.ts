// The polyring on a real node: joins a ring, keeps a reliable channel (transport/channels.ts,
// stream POLYRING_STREAM) to each neighbour (parent, siblings, children), and drives peer.ts's
// PolyringPeer (the seed's routing, broadcast and multicast rules) with a `send(to, message)`
// that encodes to the wire (wire.ts). The channel acknowledges, resends and orders every
// message, so a routed message is not lost to one dropped datagram. Attached to a Node like
// Membership is (NodeOptions.polyring, node.polyring); docs/polyring.md, "On a real node".
//
// Handles: the routing table (table.ts) holds small integers; here a handle is an index into
// `members` (one per neighbour GUID: its member addresses, one for a single peer, several for a
// cluster), reused after the neighbour goes.
//
// Failure and takeover (docs/polyring.md, "Failure, takeover and clusters on real nodes"): a
// HEARTBEAT to every member of every neighbour each heartbeatMs; a member silent for
// heartbeatMisses intervals is dropped (a GUID with no member left frees its slot). A parent
// keeps its heir (lowest child) supplied with its table (HEIR); when the parent is gone the heir
// takes its GUID over and tells everyone (TAKEOVER), and its own GUID passes to its heir
// (HEIR now) or stays with its fellow cluster members, or is vacated if it was a leaf.
//
// Join: the first centre peer takes [0]. Another centre peer asks a centre peer (its `via`
// peers, default the node's bootstrap peers), which hands out the lowest free centre coordinate
// and lists the ring; a child asks its parent (by address, or by GUID through any ring peer,
// which routes the request there), which hands out the lowest free child coordinate and lists
// the new child's siblings. The newcomer then says HELLO to each one it was given, and each
// places it in its table by its GUID. Leave: a peer with children hands its GUID to its heir,
// and sends LEAVE to every other neighbour, which drops it.
//
// Services (docs/polyring.md, "Services on real nodes"): send/fetch by node id through the DHT
// (locator.ts), caching of fetched content on the return route (cache.ts), rate limiting where a
// sender enters the ring (ratelimit.ts), join placement by region and load, private peers told
// by their parent, side polyrings (another Polyring on another stream) and pub-sub topics on them.
import { createHash } from 'node:crypto'
import { WeftError } from '../../errors.js'
import type { Identity } from '../../identity/keys.js'
import { idFromHex, type NodeId } from '../../identity/node-id.js'
import type { Logger } from '../../node/log.js'
import type { Runtime, TimerHandle } from '../../runtime/runtime.js'
import type { PeerChannel } from '../../transport/channels.js'
import { canonicalAddress, parseAddress, type Address } from '../../wire/address.js'
import { commonPrefix, formatGuid, guid, guidEquals, parentGuid, parseGuid, childGuid, type Guid } from './guid.js'
import { ContentCache, DEFAULT_CACHE_BYTES, type CacheStats } from './cache.js'
import { Locator, type LocatorStats, type PolyringDht } from './locator.js'
import { PolyringPeer, type PolyMessage } from './peer.js'
import { checkRateLimit, DEFAULT_BYTES_PER_SECOND, DEFAULT_MESSAGES_PER_SECOND, TokenBucket, type RateLimit } from './ratelimit.js'
import { MAX_RING, NONE, PolyringTable } from './table.js'
import {
  decodePayload, decodeWire, encodePayload, encodeWire, MAX_DATA_BYTES, MAX_KEY_BYTES, MAX_PRIVATE_LIST, MAX_WELCOME_MEMBERS, MAX_WIRE_RECEIVERS,
  PAYLOAD_FETCH, PAYLOAD_FETCHED, payloadHead, type JoinRequest, type Payload, type WireMember, type WireMessage,
} from './wire.js'

/** The channel stream the polyring uses between two peers ('poly'). */
export const POLYRING_STREAM = 0x706f6c79
/** Neighbours (parent, siblings, children) one peer keeps at most; past it joins are refused. */
export const MAX_NEIGHBOURS = 1024
/** Receivers one multicast may name (split into copies of at most MAX_WIRE_RECEIVERS on the wire). */
export const MAX_MULTICAST_GUIDS = 4096
/** How long a join waits for one asked peer's answer before it asks the next. */
export const JOIN_TIMEOUT_MS = 5000
/** Every member of every neighbour gets a HEARTBEAT this often (what it hears proves us alive). */
export const HEARTBEAT_MS = 1000
/**
 * A neighbour member silent for this many heartbeat intervals is dropped (failure detection).
 * 5, not 3: on a loaded machine (100 processes on 2 cores) stalls of 3 s happened; a false drop
 * is repaired (below) but costs a reconciliation, a slower failover costs 2 s.
 */
export const HEARTBEAT_MISSES = 5
/**
 * A dropped neighbour is remembered this many failure windows: probed (a HELLO) each interval so
 * a false drop is repaired, re-admitted at its GUID when heard, and a dropped child's coordinate
 * is not handed to a joiner meanwhile (quarantine).
 */
export const QUARANTINE_WINDOWS = 10
/** A holder heard within this many intervals counts as alive for CHECK answers and TAKEOVER refusals. */
export const HEARD_INTERVALS = 2
/** A would-be heir with nobody to ask (no grandparent or parent's sibling) probes its parent this many intervals before taking over. */
export const CONFIRM_INTERVALS = 2
/** Members one GUID's cluster has at most (further cluster joins are refused). */
export const MAX_CLUSTER = 16
/** Messages one `messages()` iterator buffers unread; past it the oldest is dropped (counted). */
export const MAX_INBOX = 1024
/** Messages kept for `recent()` (the API's GET /v1/polyring/messages). */
export const MAX_RECENT = 256
/** How long a leave waits for its LEAVE notices to be acknowledged. */
export const LEAVE_FLUSH_MS = 1000
/** How long a fetch waits for its answer. */
export const FETCH_TIMEOUT_MS = 5000
/** Fetches one peer has in flight at most. */
export const MAX_PENDING_FETCHES = 1024
/** Keys one peer serves from its own store (besides a provider callback). */
export const MAX_SERVED = 4096
/** Default lifetime of an answer in the caches on its route. */
export const DEFAULT_SERVE_TTL_MS = 60_000
/** Longest back-off an entry peer's RATE_LIMITED may impose on this sender. */
export const MAX_RETRY_AFTER_MS = 10_000
/** Side polyrings one node runs at most (each its own Polyring on its own channel stream). */
export const MAX_SIDES = 16
/** A side ring's creator announces it again this often (a provider record lives an hour by default). */
export const SIDE_ANNOUNCE_MS = 30 * 60_000

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
  /** Heartbeat interval (default HEARTBEAT_MS) and the silent intervals after which a neighbour is dropped (default HEARTBEAT_MISSES). */
  heartbeatMs?: number
  heartbeatMisses?: number
  /** Join this GUID (`[4.2]`) as a further member of its cluster, through the `via` peers (or `parent`'s address). */
  cluster?: string
  /** A private (NATed) peer: it tells its parent, which tells its siblings to reach it through the parent. */
  private?: boolean
  /** Bytes of routed answers this peer caches (default DEFAULT_CACHE_BYTES; 0: no cache). */
  cacheBytes?: number
  /** What one sender may inject through this peer when it is the sender's entry peer. */
  rateLimit?: Partial<RateLimit>
  /** How long a node id's resolved GUID is cached (default LOCATION_TTL_MS). */
  locationTtlMs?: number
  fetchTimeoutMs?: number
}

/** What `fetch` resolves with: the content, who answered it (its home or a cache on the route) and the answer's hops. */
export interface FetchResult { data: Uint8Array; from: Guid; hops: number; cached: boolean }
/** A provider callback: the data under `key` (and its cache lifetime), or null. */
export type ContentProvider = (key: Uint8Array) => { data: Uint8Array; ttlMs?: number } | null

export interface PolyringContext {
  runtime: Runtime
  /** The reliable channel to `address` on `stream` (opened if needed). */
  channel(address: Address, stream: number): PeerChannel
  /** The channel stream this ring uses (default POLYRING_STREAM; a side polyring has its own). */
  stream?: number
  /** The DHT on the same nodes: identity -> location records, side-ring announcements. */
  dht?: PolyringDht
  /** This node's key: it signs the location record. */
  identity?: Identity
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
  /** Hops it took to get here. */
  hops: number
}

/** `private`: a sibling our parent says is private (reached through the parent). */
export interface PolyringNeighbour { guid: string; address: Address; private?: true }
export interface PolyringStatus {
  guid: string | null
  centre: boolean
  region: string
  hosted: boolean
  private: boolean
  parent: PolyringNeighbour | null
  siblings: PolyringNeighbour[]
  children: PolyringNeighbour[]
  stats: PolyringStats
  cache: CacheStats
  location: LocatorStats & { guid: string | null; cached: number } | null
  rateLimit: RateLimit
  sides: { name: string; guid: string | null; stream: number }[]
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
  /** Messages refused here as their sender's entry peer (its token bucket was empty). */
  rateLimited: number
  /** RATE_LIMITED notices this peer got (its own messages refused), and sends it then refused itself. */
  rateLimitedNotices: number
  refusedLocally: number
  /** Fetches asked, answered here as the content's home, answered here from the cache. */
  fetches: number
  served: number
  cacheAnswers: number
  /** Joins this peer passed to a sibling it picked by region and load. */
  joinsPlaced: number
  /** Neighbour members dropped after heartbeatMisses silent intervals (or a failed channel). */
  failures: number
  /** GUIDs this peer took over (its parent's, or its parent's old one by a handover), and handovers it sent. */
  takeovers: number
  handovers: number
  /** Messages moved from a dead cluster member's channel to another member of its GUID. */
  resent: number
  /** Peers that joined this peer's GUID as cluster members through it. */
  clusterJoins: number
  /** Dropped neighbours heard again and put back at their GUID (a false drop repaired). */
  readmitted: number
  /** Times this peer found its GUID held by another (TAKEN from its parent, or a refused takeover) and joined anew. */
  rejoins: number
  /** TAKEOVERs refused here (the old holder is still heard), and takeovers this peer called off (a CHECK said the parent is heard). */
  takeoversRefused: number
  takeoversCalledOff: number
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
    rateLimited: 0, rateLimitedNotices: 0, refusedLocally: 0, fetches: 0, served: 0, cacheAnswers: 0, joinsPlaced: 0,
    failures: 0, takeovers: 0, handovers: 0, resent: 0, clusterJoins: 0, readmitted: 0, rejoins: 0, takeoversRefused: 0, takeoversCalledOff: 0,
  }
  private table: PolyringTable | null = null
  private peer: PolyringPeer | null = null
  // Handles: index -> the neighbour GUID's member addresses ([]: a free handle) and the GUID it holds in our table (null: not placed).
  private readonly members: Address[][] = []
  private readonly placedAs: (Guid | null)[] = []
  /** When each known member address was last heard from (failure detection). */
  private readonly lastHeard = new Map<Address, number>()
  private readonly chans = new Map<Address, PeerChannel>()
  /** The handle of this GUID's other cluster members (NONE: a single peer). */
  private fellows = NONE
  /** Round-robin over a cluster's members for routed messages. */
  private rr = 0
  /** Our parent's table, kept in case we must take its GUID over (we are its heir). */
  private heirTable: { guid: Guid; members: WireMember[] } | null = null
  private heirSent = { h: NONE, version: -1 }
  private tableVersion = 0
  private heirCheck = false
  /** TAKEOVERs held back until we lose the GUID's holder ourselves (GUID text -> the taker). */
  private readonly pendingTakeovers = new Map<string, { address: Address; at: number }>()
  private lastTick = 0
  /** Neighbour members dropped for silence, kept QUARANTINE_WINDOWS windows (address -> its GUID, when, whether it was one of a cluster). */
  private readonly dropped = new Map<Address, { guid: Guid; at: number; cluster: boolean }>()
  /** Child coordinates freed by a failure: not handed out again until the time given. */
  private readonly quarantine = new Map<number, number>()
  /** A takeover waiting for confirmation that the parent is gone (CHECK answers, or silence of a direct probe). */
  private confirming: { guid: Guid; members: WireMember[]; probes: Address[]; asked: Address[]; yes: number; no: number; since: number } | null = null
  /** When this peer last took a GUID over (a refusal soon after makes it back off). */
  private tookOverAt = -Infinity
  private rejoining = false
  /** Set by leave(): we no longer greet anyone again (a LEAVE'd neighbour must not put us back). */
  private leaving = false
  /** peer.ts counters of the PolyringPeers replaced by takeovers. */
  private readonly peerBase = { noRoute: 0, tooManyHops: 0, duplicates: 0, forwarded: 0 }
  // What each neighbour told us (HELLO, JOIN, LOAD): for join policies and private siblings.
  private readonly nRegion: string[] = []
  private readonly nHosted: boolean[] = []
  private readonly nPrivate: boolean[] = []
  private readonly nLoad: number[] = []
  /** Sibling coordinates our parent says are private. */
  private privateCoords = new Set<number>()
  private readonly buckets = new Map<number, TokenBucket>()
  private readonly limit: RateLimit
  private limitedUntil = 0
  readonly cache: ContentCache
  private readonly served = new Map<string, { data: Uint8Array; ttlMs: number }>()
  private provider: ContentProvider | null = null
  private readonly fetches = new Map<number, { resolve: (r: FetchResult) => void; reject: (e: WeftError) => void; timer: TimerHandle }>()
  private readonly locator: Locator | null
  private readonly sides = new Map<number, { name: string; ring: Polyring; announce?: TimerHandle }>()
  private readonly stream: number
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
    this.stream = ctx.stream ?? POLYRING_STREAM
    this.limit = checkRateLimit({ messagesPerSecond: DEFAULT_MESSAGES_PER_SECOND, bytesPerSecond: DEFAULT_BYTES_PER_SECOND, ...this.o.rateLimit })
    this.cache = new ContentCache(() => ctx.runtime.now(), this.o.cacheBytes ?? DEFAULT_CACHE_BYTES)
    this.locator = ctx.dht && ctx.identity ? new Locator(ctx.runtime, ctx.dht, ctx.identity, this.o.locationTtlMs) : null
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
    const base: Omit<JoinRequest, 'req' | 'target'> = { centre: !!o.centre, hosted: !!o.hosted, region: o.region ?? '' }
    if (o.private) base.private = true
    // Neither the centre nor a parent: the asked peer picks one in its ring, by region, then load.
    if (!o.centre && o.parent === undefined && o.cluster === undefined) base.place = true
    let asks: { to: Address; target: Guid | null }[]
    if (o.cluster !== undefined) {
      // A cluster member: any ring peer routes the request to the GUID, whose holder answers.
      const g = parseGuid(o.cluster)
      base.cluster = true
      base.centre = false
      const to = o.parent !== undefined && !o.parent.startsWith('[') ? [canonicalAddress(o.parent)] : via
      asks = to.map((a) => ({ to: a, target: g }))
      if (asks.length === 0) throw new WeftError('ERR_BAD_ARGUMENT', `to join ${o.cluster} as a cluster member, give a ring peer to ask (via, or the node's bootstrap peers)`)
    } else if (o.parent !== undefined) {
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
        this.welcome(w.guid, w.members, base.centre || base.cluster ? null : w.from, !!base.cluster)
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
    if (this.peer) {
      this.syncPeerStats()
      for (const k of ['noRoute', 'tooManyHops', 'duplicates', 'forwarded'] as const) this.peerBase[k] = this.stats[k]
    }
    this.table = t
    this.changed()
    // Identity -> location: this node's GUID under its node id in the DHT (again whenever it changes).
    if (this.locator) {
      this.locator.publish(t.self).catch((err: unknown) => this.ctx.log?.warn({ err }, 'polyring: location not published'))
    }
    this.peer = new PolyringPeer({
      table: t, order: this.o.order,
      send: (to, m) => this.sendPoly(to, m),
      deliver: (m) => this.deliver(m),
    })
    if (this.heartbeat === null) { this.lastTick = this.ctx.runtime.now(); this.scheduleHeartbeat() }
  }

  /** The answer to our join: our GUID, and the ring we are in (the answerer is `parent` for a child). */
  private welcome(g: Guid, members: WireMember[], parent: Address | null, cluster = false): void {
    const t = new PolyringTable(g)
    this.setTable(t)
    if (parent !== null) this.place(this.handleFor(parent), parentGuid(g)!)
    const hello = this.hello(false, cluster)
    for (const m of members) {
      if (m.address === this.ctx.address()) continue
      if (guidEquals(m.guid, g) && !cluster) continue
      // The answerer's list is trusted: several addresses under one GUID are that GUID's cluster members.
      if (this.placeAddress(m.address, m.guid, true) !== NONE) this.sendTo(m.address, hello)
    }
    this.ctx.log?.info({ guid: formatGuid(g), siblings: t.siblingCount, parent, cluster }, 'joined the polyring')
  }

  private hello(reply: boolean, cluster = false): WireMessage {
    const m: WireMessage = { kind: 'hello', guid: this.table!.self, hosted: !!this.o.hosted, region: this.o.region ?? '' }
    if (this.o.private) m.private = true
    if (reply) m.reply = true
    if (cluster) m.cluster = true
    return m
  }

  // ---- sending ---------------------------------------------------------------------------------

  /**
   * Routes `data` to a peer named by its location (a GUID, or its text `[4.2.17]`) or by its
   * identity (a node id: 32 bytes or 64 hex digits), which is resolved to the GUID it published
   * in the DHT first (cached). Resolves with the GUID it was routed to. Errors in the arguments
   * throw at once; a node id that has published no GUID rejects with ERR_NOT_FOUND.
   */
  send(dest: Guid | NodeId | string, data: Uint8Array): Promise<Guid> {
    const to = this.target(dest)
    if ('guid' in to) { this.sendGuid(to.guid, data); return Promise.resolve(to.guid) }
    this.ready()
    this.payload(data) // a bad payload is the caller's error now, not after the lookup
    return this.locate(to.id).then((g) => { this.sendGuid(g, data); return g })
  }

  private sendGuid(g: Guid, data: Uint8Array): void {
    const peer = this.ready()
    this.checkLimited()
    peer.send(g, this.payload(data))
    this.stats.sent++
  }

  /** A destination as given: a GUID (Uint32Array or `[...]` text) or a node id (32 bytes or 64 hex digits). */
  private target(dest: Guid | NodeId | string): { guid: Guid } | { id: NodeId } {
    if (dest instanceof Uint32Array) return { guid: dest }
    if (typeof dest === 'string') return dest.startsWith('[') ? { guid: parseGuid(dest) } : { id: idFromHex(dest) }
    if (dest instanceof Uint8Array && dest.length === 32) return { id: dest }
    throw new WeftError('ERR_BAD_ARGUMENT', 'a polyring destination is a GUID ([4.2.17]) or a node id (32 bytes, 64 hex digits)')
  }

  /** The GUID node `id` published in the DHT (this node's own without asking). */
  private locate(id: NodeId): Promise<Guid> {
    if (this.ctx.identity && Buffer.compare(Buffer.from(id), Buffer.from(this.ctx.identity.id)) === 0 && this.table) return Promise.resolve(this.table.self)
    if (!this.locator) return Promise.reject(new WeftError('ERR_UNSUPPORTED', 'this polyring has no DHT to resolve node ids with'))
    return this.locator.resolve(id)
  }

  /** Throws ERR_RATE_LIMITED while the entry peer's back-off lasts. */
  private checkLimited(): void {
    if (this.ctx.runtime.now() < this.limitedUntil) {
      this.stats.refusedLocally++
      throw new WeftError('ERR_RATE_LIMITED', `the entry peer refused this node's messages: retry in ${Math.ceil(this.limitedUntil - this.ctx.runtime.now())} ms`)
    }
  }

  /** Sends `data` to every other peer of the polyring, each once. */
  broadcast(data: Uint8Array): void {
    const peer = this.ready()
    this.checkLimited()
    const r = this.ctx.runtime.random
    peer.broadcast(this.payload(data), (r.u32() & 0x1f_ffff) * 2 ** 32 + r.u32()) // a random 53-bit id
    this.stats.sent++
  }

  /** Sends `data` to exactly the peers named (GUIDs or their text), each once. */
  multicast(dests: (Guid | string)[], data: Uint8Array): void {
    const peer = this.ready()
    this.checkLimited()
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

  // ---- content: serve, fetch, caches on the route ---------------------------------------------------

  /** Serves `data` under `key` to fetches routed here; caches on the way back keep it `ttlMs`. */
  serve(key: string | Uint8Array, data: Uint8Array, ttlMs = DEFAULT_SERVE_TTL_MS): void {
    const k = keyBytes(key)
    if (data.length > MAX_DATA_BYTES) throw new WeftError('ERR_TOO_LARGE', `content of ${data.length} bytes, over ${MAX_DATA_BYTES}`)
    if (!Number.isInteger(ttlMs) || ttlMs < 0 || ttlMs > 0xffffffff) throw new WeftError('ERR_BAD_ARGUMENT', `ttlMs ${ttlMs} not in 0..2^32-1`)
    const hex = Buffer.from(k).toString('hex')
    if (!this.served.has(hex) && this.served.size >= MAX_SERVED) throw new WeftError('ERR_STORE_FULL', `this peer serves ${MAX_SERVED} keys already`)
    this.served.set(hex, { data: data.slice(), ttlMs })
  }

  /** Answers fetches for keys not given to serve() (null: not found). */
  provide(fn: ContentProvider | null): void { this.provider = fn }

  /**
   * Asks the peer at `dest` (a GUID or a node id) for the content under `key`. The request is
   * routed; any peer on the route that holds a fresh copy in its cache answers instead, and every
   * peer the answer passes on its way back (this one too) keeps a copy. ERR_NOT_FOUND when the
   * home has nothing under the key, ERR_TIMEOUT without an answer in fetchTimeoutMs.
   */
  async fetch(dest: Guid | NodeId | string, key: string | Uint8Array): Promise<FetchResult> {
    const k = keyBytes(key)
    const to = this.target(dest)
    const home = 'guid' in to ? to.guid : await this.locate(to.id)
    const peer = this.ready()
    this.checkLimited()
    const self = this.table!.self
    this.stats.fetches++
    if (guidEquals(home, self)) {
      const hit = this.lookupServed(k)
      if (!hit) throw new WeftError('ERR_NOT_FOUND', `nothing served under that key here`)
      return { data: hit.data, from: self, hops: 0, cached: false }
    }
    const cached = this.cache.get(cacheKey(home, k))
    if (cached) return { data: cached, from: self, hops: 0, cached: true }
    if (this.fetches.size >= MAX_PENDING_FETCHES) throw new WeftError('ERR_BUSY', `${MAX_PENDING_FETCHES} fetches in flight`)
    let req = this.ctx.runtime.random.u32() || 1
    while (this.fetches.has(req) || req === 0) req = (req + 1) >>> 0
    return new Promise((resolve, reject) => {
      const ms = this.o.fetchTimeoutMs ?? FETCH_TIMEOUT_MS
      const timer = this.ctx.runtime.setTimeout(() => {
        this.fetches.delete(req)
        reject(new WeftError('ERR_TIMEOUT', `no answer to a fetch from ${formatGuid(home)} in ${ms} ms`))
      }, ms)
      this.fetches.set(req, { resolve, reject, timer })
      peer.send(home, encodePayload({ kind: 'fetch', origin: self, req, key: k }))
      this.stats.sent++
    })
  }

  private lookupServed(k: Uint8Array): { data: Uint8Array; ttlMs: number } | null {
    const own = this.served.get(Buffer.from(k).toString('hex'))
    if (own) return own
    const p = this.provider?.(k) ?? null
    return p ? { data: p.data, ttlMs: p.ttlMs ?? DEFAULT_SERVE_TTL_MS } : null
  }

  /** A fetch routed to us as its home: answer it (found or not) back along the route. */
  private answerFetch(p: Extract<Payload, { kind: 'fetch' }>, home: Guid): void {
    const hit = this.lookupServed(p.key)
    this.stats.served++
    const data = hit && hit.data.length <= MAX_DATA_BYTES ? hit.data : null
    this.peer!.send(p.origin, encodePayload({ kind: 'fetched', origin: home, home, req: p.req, ttlMs: hit?.ttlMs ?? 0, key: p.key, data }))
  }

  /**
   * A routed message passing through (not for us): a fetch we hold a fresh copy for is answered
   * here (true: not forwarded); an answer on its way back is cached here, then forwarded.
   */
  private intercept(m: Extract<PolyMessage, { kind: 'route' }>, kind: number): boolean {
    if (kind !== PAYLOAD_FETCH && kind !== PAYLOAD_FETCHED) return false
    const self = this.table!.self
    if (guidEquals(m.dest, self)) return false
    let p: Payload
    try { p = decodePayload(m.data) } catch { this.stats.malformed++; return true }
    if (p.kind === 'fetch') {
      const ck = cacheKey(m.dest, p.key)
      const hit = this.cache.get(ck)
      if (!hit) return false
      this.stats.cacheAnswers++
      this.peer!.send(p.origin, encodePayload({ kind: 'fetched', origin: self, home: m.dest, req: p.req, ttlMs: this.cache.ttlLeft(ck), key: p.key, data: hit }))
      return true
    }
    if (p.kind === 'fetched' && p.data) this.cache.put(cacheKey(p.home, p.key), p.data, p.ttlMs)
    return false
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

  /**
   * To the neighbour GUID behind handle `h`: a routed message to one member, picked round-robin
   * (a cluster shares the load); anything else to every member.
   */
  private sendWire(h: number, m: WireMessage): void {
    const ms = this.members[h]
    if (!ms || ms.length === 0) { this.stats.sendFailures++; return }
    if (ms.length === 1) { this.sendTo(ms[0], m); return }
    if (m.kind === 'route' || m.kind === 'broadcast' || m.kind === 'multicast') { this.sendTo(ms[this.rr++ % ms.length], m); return }
    for (const a of ms) this.sendTo(a, m)
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
    const c = this.ctx.channel(address, this.stream)
    this.accept(c)
    return c
  }

  // ---- receiving -------------------------------------------------------------------------------

  /** Whether channels on `stream` are this ring's or one of its side rings'. */
  ownsStream(stream: number): boolean { return stream === this.stream || this.sides.has(stream) }

  /** Takes a channel on this ring's stream, or a side ring's (one the peer opened, or one we opened). */
  accept(c: PeerChannel): void {
    if (c.stream !== this.stream) { this.sides.get(c.stream)?.ring.accept(c); return }
    if (this.attached.has(c)) return
    this.attached.add(c)
    this.chans.set(c.address, c)
    c.onMessage = (bytes) => this.onWire(c.address, bytes)
    c.onClose = () => { if (this.chans.get(c.address) === c) this.chans.delete(c.address) }
    c.onError = (err) => {
      this.stats.channelFailures++
      // The peer restarted its end (or dropped ours): it is alive; the next message opens a new channel.
      // If it is our neighbour it may have dropped us (a false alarm): a HELLO lets it put us back.
      if (c.reset) { if (this.table && !this.leaving && this.byAddress.has(c.address)) this.sendTo(c.address, this.hello(false)); return }
      this.ctx.log?.warn({ peer: c.address, err: err.message }, 'polyring: channel failed')
      // The neighbour stopped acknowledging: it is dead to us.
      if (this.byAddress.has(c.address)) this.memberFailed(c.address, c)
    }
  }

  private onWire(from: Address, bytes: Uint8Array): void {
    if (this.closed) return
    let m: WireMessage
    try { m = decodeWire(bytes) } catch { this.stats.malformed++; return }
    if (this.lastHeard.has(from)) this.lastHeard.set(from, this.ctx.runtime.now())
    else if (this.table && !this.leaving && !this.byAddress.has(from) && this.strangerHeard(from, m)) return
    switch (m.kind) {
      case 'not-neighbour': {
        // A neighbour (or one we dropped) does not hold us: say who we are; it puts us back, or says our GUID is taken.
        if (this.table && !this.leaving && (this.byAddress.has(from) || this.dropped.has(from))) this.sendTo(from, this.hello(false))
        return
      }
      case 'taken': return this.onTaken(from, m.guid)
      case 'check': { if (this.table) this.sendTo(from, { kind: 'checked', guid: m.guid, heard: this.holderHeard(m.guid) }); return }
      case 'checked': {
        const c = this.confirming
        if (c && guidEquals(c.guid, m.guid) && c.asked.includes(from)) { if (m.heard) c.yes++; else c.no++ }
        return
      }
      case 'join': return this.answerJoin(from, m)
      case 'heir': return this.onHeir(from, m)
      case 'takeover': return this.onTakeover(from, m)
      case 'welcome': {
        const p = this.pending.get(m.req)
        if (!p) return this.onRefresh(from, m.guid, m.members)
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
        const had = this.byAddress.get(from)
        const known = had !== undefined && this.placedAs[had] !== null
        const h = this.placeAddress(from, m.guid, !!m.cluster)
        if (h === NONE) {
          // Its GUID is held here by another peer that we still hear (a coordinate given away after a drop): it must rejoin.
          const slot = this.slotHandle(m.guid)
          if (!m.cluster && slot !== NONE && !this.members[slot].includes(from) && !guidEquals(m.guid, this.table.self)) this.sendTo(from, { kind: 'taken', guid: m.guid })
          return
        }
        if (this.dropped.delete(from)) this.readmitted(h, m.guid)
        this.nRegion[h] = m.region
        this.nHosted[h] = m.hosted
        this.nPrivate[h] = !!m.private
        // A newcomer learns our region, role and load from our answer (an answer gets none back).
        if (!m.reply && !known) {
          this.sendTo(from, this.hello(true))
          this.sendTo(from, { kind: 'load', children: this.table.childCount })
        }
        return
      }
      case 'leave': {
        const h = this.byAddress.get(from)
        const g = h === undefined ? null : this.placedAs[h]
        if (h !== undefined && g && guidEquals(g, m.guid)) { this.stats.leaves++; this.dropAddress(from) }
        return
      }
      case 'heartbeat': return
      case 'load': {
        const h = this.byAddress.get(from)
        if (h !== undefined && this.placedAs[h] !== null) this.nLoad[h] = m.children
        return
      }
      case 'private': {
        // Only our parent (or, before our welcome is processed, the peer we are joining) says which siblings are private.
        const h = this.byAddress.get(from)
        const t = this.table
        if (t && (h === undefined || h !== t.parent)) { this.stats.strangers++; return }
        this.privateCoords = new Set(m.coords)
        if (t) t.forEachSibling((c, sh) => t.setSibling(c, sh, this.privateCoords.has(c)))
        return
      }
      case 'rate-limited': {
        const h = this.byAddress.get(from)
        if (h === undefined || this.placedAs[h] === null) { this.stats.strangers++; return }
        this.stats.rateLimitedNotices++
        this.limitedUntil = Math.max(this.limitedUntil, this.ctx.runtime.now() + Math.min(m.retryAfterMs, MAX_RETRY_AFTER_MS))
        const f = this.fetches.get(m.req)
        if (m.req !== 0 && f) {
          this.fetches.delete(m.req)
          this.ctx.runtime.clearTimeout(f.timer)
          f.reject(new WeftError('ERR_RATE_LIMITED', `${from} refused the fetch: retry in ${m.retryAfterMs} ms`))
        }
        return
      }
      default: {
        // Routed messages, broadcast and multicast: only from a neighbour.
        const h = this.byAddress.get(from)
        if (!this.peer || h === undefined || this.placedAs[h] === null) { this.stats.strangers++; return }
        let head: { kind: number; origin: Guid }
        try { head = payloadHead(m.data) } catch { this.stats.malformed++; return }
        if (!this.admit(h, m, head, bytes.length)) return
        if (m.kind === 'route' && this.intercept(m, head.kind)) return
        this.peer.receive(h, m)
        this.syncPeerStats()
      }
    }
  }

  /**
   * A message from an address that is not (or no longer) our neighbour. A peer we dropped for
   * silence is alive after all: put back at its GUID if the slot is still free (or still its
   * cluster's), else told its GUID is taken. A heartbeat from anyone else is answered
   * NOT_NEIGHBOUR, so a peer dropped long ago finds out. True: the message is consumed here.
   */
  private strangerHeard(from: Address, m: WireMessage): boolean {
    const c = this.confirming
    if (c && c.probes.includes(from)) {
      // Our parent is alive (its answer to our probe, or anything else): no takeover.
      this.confirming = null
      this.stats.takeoversCalledOff++
      this.ctx.log?.info({ parent: formatGuid(c.guid) }, 'polyring: parent heard again, takeover called off')
    }
    const d = this.dropped.get(from)
    if (!d) {
      if (m.kind === 'heartbeat') { this.sendTo(from, { kind: 'not-neighbour' }); return true }
      return false
    }
    if (m.kind === 'leave') { this.dropped.delete(from); return true }
    // Its own word on what it holds now wins over our memory of it.
    if (m.kind === 'hello' || m.kind === 'takeover' || m.kind === 'join' || m.kind === 'welcome' || m.kind === 'refuse') return false
    this.dropped.delete(from)
    const slot = this.slotHandle(d.guid)
    if (slot !== NONE && !d.cluster) {
      this.sendTo(from, { kind: 'taken', guid: d.guid })
      return m.kind === 'heartbeat'
    }
    const h = this.placeAddress(from, d.guid, d.cluster)
    if (h === NONE) return false
    this.readmitted(h, d.guid)
    this.sendTo(from, this.hello(false)) // it may have dropped us too
    return false
  }

  private readmitted(h: number, g: Guid): void {
    this.stats.readmitted++
    this.lastHeard.set(this.members[h][this.members[h].length - 1], this.ctx.runtime.now())
    const t = this.table!
    if (g.length === t.depth + 1) this.quarantine.delete(g[t.depth])
    this.ctx.log?.info({ guid: formatGuid(g) }, 'polyring: a dropped neighbour is back')
    // It may have missed joiners meanwhile: its parent (or a centre sibling) lists its ring again (an unasked WELCOME).
    if (g.length === t.depth + 1 || (g.length === 1 && t.depth === 1)) this.sendTo(this.members[h][this.members[h].length - 1], { kind: 'welcome', req: 0, guid: g, members: this.ringFor(g, this.members[h]) })
  }

  /** The ring a peer at `g` (our child, or a centre peer) belongs to, as we know it, without the addresses `skip`. */
  private ringFor(g: Guid, skip: Address[]): WireMember[] {
    const t = this.table!
    const members: WireMember[] = []
    const add = (x: Guid, h: number): void => {
      for (const a of this.members[h] ?? []) if (!skip.includes(a) && members.length < MAX_WELCOME_MEMBERS) members.push({ guid: x, address: a })
    }
    if (g.length === 1) {
      members.push({ guid: t.self, address: this.ctx.address() })
      t.forEachSibling((c, h) => add(guid([c]), h))
    } else {
      t.forEachChild((c, h) => add(childGuid(t.self, c), h))
    }
    if (this.fellows !== NONE) add(t.self, this.fellows)
    return members
  }

  /** An unasked WELCOME: our parent (a centre sibling for a centre peer) lists our ring again after putting us back; we greet whoever is new to us. */
  private onRefresh(from: Address, g: Guid, members: WireMember[]): void {
    const t = this.table
    const h = this.byAddress.get(from)
    const by = h !== undefined ? this.placedAs[h] : null
    if (!t || !by || !guidEquals(g, t.self) || !(h === t.parent || (t.depth === 1 && by.length === 1))) { this.stats.strangers++; return }
    const hello = this.hello(false)
    for (const x of members) {
      if (x.address === this.ctx.address() || this.byAddress.has(x.address) || guidEquals(x.guid, t.self)) continue
      if (this.placeAddress(x.address, x.guid, false) !== NONE) this.sendTo(x.address, hello)
    }
  }

  /** Whether a member of the GUID `g` that we hold was heard within HEARD_INTERVALS heartbeat intervals. */
  private holderHeard(g: Guid): boolean {
    const slot = this.slotHandle(g)
    if (slot === NONE) return false
    const now = this.ctx.runtime.now(), within = HEARD_INTERVALS * this.everyMs
    return this.members[slot].some((a) => now - (this.lastHeard.get(a) ?? -Infinity) <= within)
  }

  private get everyMs(): number { return this.o.heartbeatMs ?? HEARTBEAT_MS }
  /** How long a dropped neighbour is remembered, and its coordinate (a child's) kept free. */
  private get quarantineMs(): number { return QUARANTINE_WINDOWS * ((this.o.heartbeatMisses ?? HEARTBEAT_MISSES) + 1) * this.everyMs }

  /**
   * TAKEN: our GUID is held by another peer where the sender looks. We believe our parent (who
   * hands out our coordinate), a sibling when we are a centre peer (no parent), and after a
   * recent takeover of ours any neighbour (the takeover was refused: the old holder is alive).
   * Then we join anew.
   */
  private onTaken(from: Address, g: Guid): void {
    const t = this.table
    if (!t || !guidEquals(g, t.self) || this.fellows !== NONE || this.rejoining) return
    const h = this.byAddress.get(from)
    const known = h !== undefined ? this.placedAs[h] : this.dropped.get(from)?.guid ?? null
    if (!known) { this.stats.strangers++; return }
    const l = t.depth
    const parent = known.length === l - 1 && commonPrefix(known, t.self) === l - 1
    const sibling = known.length === l && commonPrefix(known, t.self) === l - 1
    const recent = this.ctx.runtime.now() - this.tookOverAt < this.quarantineMs
    if (parent || (sibling && l === 1) || (recent && h !== undefined)) this.rejoin(`${from} (${formatGuid(known)}) holds ${formatGuid(g)} for another peer`)
  }

  /** Leaves our GUID (it is another's) and joins again as the options say: a new GUID, told to everyone by the join. */
  private rejoin(why: string): void {
    const t = this.table
    if (!t || this.rejoining || this.closed) return
    this.rejoining = true
    this.stats.rejoins++
    this.ctx.log?.warn({ guid: formatGuid(t.self), why }, 'polyring: our GUID is held by another peer: joining anew')
    const former: Address[] = []
    for (let h = 0; h < this.members.length; h++) {
      if (this.placedAs[h] !== null) { this.sendWire(h, { kind: 'leave', guid: t.self }); former.push(...this.members[h]) }
    }
    for (let h = 0; h < this.members.length; h++) this.release(h)
    this.dropped.clear(); this.quarantine.clear(); this.pendingTakeovers.clear()
    this.confirming = null; this.heirTable = null; this.fellows = NONE
    if (this.peer) { this.syncPeerStats(); for (const k of ['noRoute', 'tooManyHops', 'duplicates', 'forwarded'] as const) this.peerBase[k] = this.stats[k] }
    this.table = null
    this.peer = null
    // A centre peer with nobody to ask would start a ring of its own: it asks its former neighbours.
    const via = this.o.via ?? this.ctx.bootstrap
    const overrides: Partial<PolyringOptions> = via.length === 0 && this.o.centre ? { via: former } : {}
    this.join(overrides).then(
      (g) => this.ctx.log?.info({ guid: formatGuid(g), was: formatGuid(t.self) }, 'polyring: rejoined with a new GUID'),
      (err: unknown) => this.ctx.log?.warn({ err }, 'polyring: rejoin failed'),
    ).finally(() => { this.rejoining = false })
  }

  /**
   * The entry peer's check: a message that enters the ring here (it comes from its originator:
   * first hop, or the neighbour is the origin it names) takes a token from that neighbour's
   * bucket; an empty bucket refuses it and tells the sender (RATE_LIMITED), never silently.
   */
  private admit(h: number, m: PolyMessage, head: { kind: number; origin: Guid }, size: number): boolean {
    if (m.hops > 1 && !guidEquals(head.origin, this.placedAs[h]!)) return true
    const now = this.ctx.runtime.now()
    let b = this.buckets.get(h)
    if (!b) { b = new TokenBucket(this.limit, now); this.buckets.set(h, b) }
    if (b.take(size, now)) return true
    this.stats.rateLimited++
    let req = 0
    if (m.kind === 'route' && head.kind === PAYLOAD_FETCH) {
      try { const p = decodePayload(m.data); if (p.kind === 'fetch') req = p.req } catch { /* counted where it is delivered */ }
    }
    this.sendWire(h, { kind: 'rate-limited', req, retryAfterMs: Math.min(b.retryAfterMs(size), MAX_RETRY_AFTER_MS) })
    return false
  }

  private deliver(m: PolyMessage): void {
    let p
    try { p = decodePayload(m.data) } catch { this.stats.malformed++; return }
    if (p.kind === 'join') {
      // A join request routed here because it names us as the parent.
      if (m.kind === 'route') this.answerJoin(p.joiner, p.join)
      return
    }
    if (p.kind === 'fetch') {
      if (m.kind === 'route') this.answerFetch(p, m.dest)
      return
    }
    if (p.kind === 'fetched') {
      if (m.kind !== 'route') return
      if (p.data) this.cache.put(cacheKey(p.home, p.key), p.data, p.ttlMs) // the asker is on the return path too
      const f = this.fetches.get(p.req)
      if (!f) return
      this.fetches.delete(p.req)
      this.ctx.runtime.clearTimeout(f.timer)
      if (p.data) f.resolve({ data: p.data, from: p.origin, hops: m.hops, cached: !guidEquals(p.origin, p.home) })
      else f.reject(new WeftError('ERR_NOT_FOUND', `${formatGuid(p.home)} serves nothing under that key`))
      return
    }
    const kind: PolyringKind = m.kind === 'route' ? 'send' : m.kind
    const msg: PolyringMessage = { kind, from: p.origin, data: p.data, seq: ++this.seq, hops: m.hops }
    this.stats.received++
    if (kind === 'send') this.stats.sends++
    else if (kind === 'broadcast') this.stats.broadcasts++
    else this.stats.multicasts++
    this.recentLog.push(msg)
    if (this.recentLog.length > MAX_RECENT) this.recentLog.shift()
    for (const i of this.inboxes) i.push(msg)
  }

  private syncPeerStats(): void {
    const s = this.peer!.stats, b = this.peerBase
    this.stats.noRoute = b.noRoute + s.noRoute
    this.stats.tooManyHops = b.tooManyHops + s.tooManyHops
    this.stats.duplicates = b.duplicates + s.duplicates
    this.stats.forwarded = b.forwarded + s.forwarded
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
    if (j.cluster && j.target && guidEquals(j.target, t.self)) return this.welcomeMember(from, j)
    if (j.target && !guidEquals(j.target, t.self)) {
      // Not us: route the request to the parent it names; that parent answers the joiner directly.
      this.peer.send(j.target, encodePayload({ kind: 'join', origin: t.self, joiner: from, join: { ...j } }))
      return
    }
    if (j.place && !j.centre && !j.target) {
      // Join policy: we pick the parent in our ring (us or a sibling), by region label, then load.
      const pick = this.pickParent(j)
      if (pick === null) return refuse(`no ${j.hosted ? 'hosted ' : ''}peer in ${formatGuid(t.self)}'s ring takes children`)
      if (pick !== NONE) {
        this.stats.joinsPlaced++
        this.nLoad[pick] = (this.nLoad[pick] ?? 0) + 1 // until its LOAD says otherwise: spreads joins that arrive together
        this.peer.send(this.placedAs[pick]!, encodePayload({ kind: 'join', origin: t.self, joiner: from, join: { ...j, target: this.placedAs[pick]! } }))
        return
      }
    }
    if (j.centre && t.depth !== 1) return refuse(`${formatGuid(t.self)} is not a centre peer`)
    // Hosted and autonomous peers: the operator's hosted peers hold the inner rings.
    if (j.centre && this.o.hosted && !j.hosted) return refuse('the centre ring is hosted: an autonomous peer joins an outer ring (under a parent)')
    if (!j.centre && j.hosted && !this.o.hosted) return refuse('a hosted peer joins the centre ring or a hosted parent, not an autonomous one')
    const known = this.byAddress.get(from)
    const held = known !== undefined ? this.placedAs[known] : null
    // A repeated request (its answer was lost, or the joiner restarted) gets the GUID it holds.
    if (held !== null && (j.centre ? held.length === 1 : held.length === t.depth + 1 && commonPrefix(held, t.self) === t.depth)) {
      return this.welcomeJoiner(from, j, held)
    }
    if (known !== undefined) this.dropAddress(from)
    const h = this.handleFor(from)
    if (h === NONE) return refuse(`this peer has ${MAX_NEIGHBOURS} neighbours`)
    let g: Guid
    try {
      // A child we dropped that asks again gets its old coordinate back if it is still free.
      const back = this.dropped.get(from)?.guid
      const again = !j.centre && back && back.length === t.depth + 1 && commonPrefix(back, t.self) === t.depth && t.child(back[t.depth]) === NONE ? back : null
      g = j.centre ? guid([nextFreeSibling(t)]) : again ?? childGuid(t.self, this.nextFreeChild(t))
    } catch (err) {
      this.release(h)
      return refuse((err as Error).message)
    }
    if (!this.place(h, g)) return refuse('no free slot')
    this.nRegion[h] = j.region
    this.nHosted[h] = j.hosted
    this.nPrivate[h] = !!j.private
    this.welcomeJoiner(from, j, g)
    if (!j.centre) this.tellPrivateChildren(j.private ? null : h)
  }

  /**
   * The parent in our ring for a joiner that named none: us (NONE) or a sibling's handle; null
   * when nobody fits. A hosted joiner needs a hosted parent; a region label picks the peers with
   * that label when there are any (else all); private peers take no children; then the fewest
   * children wins, the lowest coordinate on a tie.
   */
  private pickParent(j: JoinRequest): number | null {
    const t = this.table!
    type C = { h: number; coord: number; region: string; hosted: boolean; load: number }
    let cands: C[] = []
    if (!this.o.private) cands.push({ h: NONE, coord: t.ownCoord, region: this.o.region ?? '', hosted: !!this.o.hosted, load: t.childCount })
    t.forEachSibling((coord, h) => { if (!this.nPrivate[h]) cands.push({ h, coord, region: this.nRegion[h] ?? '', hosted: !!this.nHosted[h], load: this.nLoad[h] ?? 0 }) })
    if (j.hosted) cands = cands.filter((c) => c.hosted)
    if (j.region) {
      const same = cands.filter((c) => c.region === j.region)
      if (same.length) cands = same
    }
    let best: C | null = null
    for (const c of cands) if (!best || c.load < best.load || (c.load === best.load && c.coord < best.coord)) best = c
    return best ? best.h : null
  }

  /**
   * Tells our children which of them are private (the whole list): all of them when the list
   * changed (`only` null), else just the newcomer `only` when the list is not empty.
   */
  private tellPrivateChildren(only: number | null): void {
    const t = this.table!
    const coords: number[] = []
    t.forEachChild((c, h) => { if (this.nPrivate[h] && coords.length < MAX_PRIVATE_LIST) coords.push(c) })
    if (only !== null) { if (coords.length) this.sendWire(only, { kind: 'private', coords }); return }
    t.forEachChild((_c, h) => this.sendWire(h, { kind: 'private', coords }))
  }

  /** Our child count changed: tell our siblings (the load join policies read). */
  private loadChanged(): void {
    const t = this.table!
    const m: WireMessage = { kind: 'load', children: t.childCount }
    t.forEachSibling((_c, h) => this.sendWire(h, m))
  }

  /** The lowest child coordinate neither held nor in quarantine (a dropped child's, kept for its return). */
  private nextFreeChild(t: PolyringTable): number {
    const now = this.ctx.runtime.now()
    for (let c = 0; c < MAX_RING; c++) {
      if (t.child(c) !== NONE) continue
      const until = this.quarantine.get(c)
      if (until === undefined || until <= now) return c
    }
    throw new WeftError('ERR_BUSY', `child ring full (${MAX_RING})`)
  }

  private welcomeJoiner(to: Address, j: JoinRequest, g: Guid): void {
    const t = this.table!
    const members: WireMember[] = []
    const add = (coordGuid: Guid, h: number): void => {
      for (const a of this.members[h] ?? []) if (a !== to && members.length < MAX_WELCOME_MEMBERS) members.push({ guid: coordGuid, address: a })
    }
    if (j.centre) {
      members.push({ guid: t.self, address: this.ctx.address() })
      if (this.fellows !== NONE) add(t.self, this.fellows)
      t.forEachSibling((c, h) => add(guid([c]), h))
    } else {
      // Our fellow cluster members are the joiner's parent too.
      if (this.fellows !== NONE) add(t.self, this.fellows)
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
    else if (this.members.length < MAX_NEIGHBOURS) { h = this.members.length; this.members.push([]); this.placedAs.push(null) }
    else return NONE
    this.members[h] = [a]
    this.placedAs[h] = null
    this.byAddress.set(a, h)
    this.lastHeard.set(a, this.ctx.runtime.now())
    return h
  }

  /**
   * Places `address` at GUID `g`: under its own handle, or (`merge`) as a further member of the
   * cluster that holds `g` here. NONE when `g` is not a neighbour GUID or its slot is another's.
   */
  private placeAddress(address: Address, g: Guid, merge: boolean): number {
    const a = canonicalAddress(address)
    const known = this.byAddress.get(a)
    if (known !== undefined && this.placedAs[known] && guidEquals(this.placedAs[known]!, g)) return known
    const slot = this.slotHandle(g)
    if (merge && slot !== NONE && slot !== known) {
      if (this.members[slot].length >= MAX_CLUSTER) { this.stats.misplaced++; return NONE }
      if (known !== undefined) this.dropAddress(a) // it moved
      this.members[slot].push(a)
      this.byAddress.set(a, slot)
      this.lastHeard.set(a, this.ctx.runtime.now())
      this.changed()
      return slot
    }
    const h = this.handleFor(a)
    if (h === NONE) return NONE
    return this.place(h, g) ? h : NONE
  }

  /** The handle holding neighbour GUID `g` in our table (our fellows for our own GUID), or NONE. */
  private slotHandle(g: Guid): number {
    const t = this.table
    if (!t) return NONE
    const self = t.self, l = self.length, m = commonPrefix(self, g)
    if (g.length === l && m === l) return this.fellows
    if (g.length === l - 1 && m === l - 1) return t.parent
    if (g.length === l && m === l - 1 && g[l - 1] < MAX_RING) return t.sibling(g[l - 1])
    if (g.length === l + 1 && m === l && g[l] < MAX_RING) return t.child(g[l])
    return NONE
  }

  /** Removes one member address; a GUID left with no member is dropped from the table. */
  private dropAddress(a: Address): void {
    const h = this.byAddress.get(a)
    this.lastHeard.delete(a)
    if (h === undefined) return
    const ms = this.members[h]
    if (ms.length <= 1) { this.unplace(h); return }
    ms.splice(ms.indexOf(a), 1)
    this.byAddress.delete(a)
    this.changed()
  }

  /** Something in the table changed: the heir's copy is sent again (once per turn of the event loop). */
  private changed(): void {
    this.tableVersion++
    if (this.heirCheck) return
    this.heirCheck = true
    queueMicrotask(() => { this.heirCheck = false; this.supplyHeir() })
  }

  /** Puts handle `h` in the slot its GUID names (parent, sibling or child); false if it has none or it is taken. */
  private place(h: number, g: Guid): boolean {
    const t = this.table!
    const self = t.self, l = self.length, m = commonPrefix(self, g)
    const prior = this.placedAs[h]
    if (prior && guidEquals(prior, g)) return true
    let ok = false
    try {
      if (g.length === l && m === l) {
        // Our own GUID: a fellow member of our cluster.
        if (this.fellows === NONE || this.fellows === h) { if (prior) this.unslot(h, prior); this.fellows = h; ok = true }
      } else if (g.length === l - 1 && m === l - 1) {
        if (t.parent === NONE || t.parent === h) { if (prior) this.unslot(h, prior); t.setParent(h); ok = true }
      } else if (g.length === l && m === l - 1 && g[l - 1] !== t.ownCoord && g[l - 1] < MAX_RING) {
        const s = t.sibling(g[l - 1])
        if (s === NONE || s === h) { if (prior) this.unslot(h, prior); t.setSibling(g[l - 1], h, this.privateCoords.has(g[l - 1])); ok = true }
      } else if (g.length === l + 1 && m === l && g[l] < MAX_RING) {
        const c = t.child(g[l])
        if (c === NONE || c === h) { if (prior) this.unslot(h, prior); t.setChild(g[l], h); ok = true; this.placedAs[h] = g; this.loadChanged() }
      }
    } catch {
      ok = false
    }
    if (!ok) { this.stats.misplaced++; if (!prior) this.release(h); return false }
    this.placedAs[h] = g
    this.changed()
    return true
  }

  /** Drops a neighbour from the table and frees its handle. */
  private unplace(h: number): void {
    const g = this.placedAs[h]
    if (g) this.unslot(h, g)
    this.release(h)
    // A takeover of this GUID we held back while its holder still looked alive to us applies now.
    const p = g ? this.pendingTakeovers.get(formatGuid(g)) : undefined
    if (p && g) { this.pendingTakeovers.delete(formatGuid(g)); this.applyTakeover(p.address, g) }
  }

  private unslot(h: number, g: Guid): void {
    const t = this.table
    if (!t) return
    const l = t.self.length
    this.changed()
    if (this.fellows === h) this.fellows = NONE
    else if (g.length === l - 1 && t.parent === h) t.setParent(NONE)
    else if (g.length === l && t.sibling(g[l - 1]) === h) t.removeSibling(g[l - 1])
    else if (g.length === l + 1 && t.child(g[l]) === h) {
      t.removeChild(g[l])
      this.placedAs[h] = null
      this.loadChanged()
      if (this.nPrivate[h]) { this.nPrivate[h] = false; this.tellPrivateChildren(null) }
    }
    this.placedAs[h] = null
  }

  private release(h: number): void {
    const ms = this.members[h]
    if (!ms || ms.length === 0) return
    for (const a of ms) { this.byAddress.delete(a); this.lastHeard.delete(a) }
    if (this.fellows === h) this.fellows = NONE
    this.members[h] = []
    this.placedAs[h] = null
    this.nRegion[h] = ''
    this.nHosted[h] = false
    this.nPrivate[h] = false
    this.nLoad[h] = 0
    this.buckets.delete(h)
    this.free.push(h)
  }

  // ---- side polyrings ---------------------------------------------------------------------------

  /**
   * Starts a side polyring `name` with this node as its centre ([0]): a separate Polyring on
   * its own channel stream, for a service's heavy traffic. It is announced in the DHT (a provider
   * record under SHA-256 of the name), where joinSide finds it.
   */
  async createSide(name: string, options: Partial<PolyringOptions> = {}): Promise<Polyring> {
    const side = this.newSide(name, { ...options, centre: true, parent: undefined, via: [] })
    await side.join()
    const dht = this.ctx.dht
    if (dht) {
      await dht.announce(sideKey(name))
      const entry = this.sides.get(sideStream(name))!
      const again = (): void => {
        entry.announce = this.ctx.runtime.setTimeout(() => {
          if (this.sides.get(sideStream(name)) !== entry) return
          dht.announce(sideKey(name)).catch((err: unknown) => this.ctx.log?.warn({ err, side: name }, 'polyring: side ring not announced'))
          again()
        }, SIDE_ANNOUNCE_MS)
      }
      again()
    }
    return side
  }

  /**
   * Joins the side polyring `name` as a child of its creator (found in the DHT, or at `via`).
   * ERR_NOT_FOUND when nobody announced it.
   */
  async joinSide(name: string, options: Partial<PolyringOptions> & { via?: Address[] } = {}): Promise<Polyring> {
    let at = options.via?.map(canonicalAddress) ?? []
    if (at.length === 0 && this.ctx.dht) at = (await this.ctx.dht.providers(sideKey(name))).flatMap((p) => p.addresses).map(canonicalAddress)
    at = at.filter((a) => a !== this.ctx.address())
    if (at.length === 0) throw new WeftError('ERR_NOT_FOUND', `nobody announced a side polyring ${JSON.stringify(name)}`)
    const side = this.newSide(name, { ...options, centre: false, parent: at[0], via: [] })
    try {
      await side.join()
    } catch (err) {
      this.dropSide(name)
      throw err
    }
    return side
  }

  /**
   * Pub-sub on side rings (open problem 3): the topic `name` is the side polyring `topic/NAME`;
   * subscribing joins it (creating it, with this node its centre, when nobody announced it);
   * publish is its broadcast() and its messages() are the topic's. Two nodes creating the same
   * topic at once make two rings (joiners take the first the DHT names): see docs/polyring.md.
   */
  async topic(name: string): Promise<Polyring> {
    const side = `topic/${name}`
    const had = this.side(side)
    if (had) return had
    try {
      return await this.joinSide(side)
    } catch (err) {
      if (err instanceof WeftError && err.code === 'ERR_NOT_FOUND') return this.createSide(side)
      throw err
    }
  }

  /** The side polyring `name` this node runs, or null. */
  side(name: string): Polyring | null { return this.sides.get(sideStream(name))?.ring ?? null }

  /** Leaves and closes the side polyring `name`. */
  async leaveSide(name: string): Promise<void> {
    const s = this.sides.get(sideStream(name))
    if (!s) return
    await s.ring.leave()
    this.dropSide(name)
  }

  private newSide(name: string, options: PolyringOptions): Polyring {
    if (this.closed) throw new WeftError('ERR_CLOSED', 'the polyring service is closed')
    const stream = sideStream(name)
    const had = this.sides.get(stream)
    if (had) throw new WeftError('ERR_BAD_ARGUMENT', had.name === name ? `side polyring ${JSON.stringify(name)} runs already` : `side polyring ${JSON.stringify(name)} shares a stream with ${JSON.stringify(had.name)}`)
    if (this.sides.size >= MAX_SIDES) throw new WeftError('ERR_BUSY', `${MAX_SIDES} side polyrings already`)
    const ring = new Polyring({ ...this.ctx, stream, bootstrap: [], dht: undefined, identity: undefined }, { ...options, join: false })
    this.sides.set(stream, { name, ring })
    return ring
  }

  private dropSide(name: string): void {
    const stream = sideStream(name)
    const s = this.sides.get(stream)
    if (s?.announce) this.ctx.runtime.clearTimeout(s.announce)
    s?.ring.close()
    this.sides.delete(stream)
  }

  // ---- liveness, leave, status -----------------------------------------------------------------

  /**
   * Every heartbeatMs: a HEARTBEAT to every member of every neighbour (and of our own cluster),
   * then failure detection: a member not heard from for heartbeatMisses intervals is dropped. A
   * tick that fires late (this process stalled, not the peers) moves every last-heard time on by
   * the delay, so a stall here is not taken for silence there.
   */
  private scheduleHeartbeat(): void {
    const every = this.o.heartbeatMs ?? HEARTBEAT_MS
    this.heartbeat = this.ctx.runtime.setTimeout(() => {
      if (this.closed) return
      const now = this.ctx.runtime.now()
      const late = now - this.lastTick - every
      // Dropped neighbours: probed with a HELLO (one at a time: not while the last is unacknowledged) until the quarantine ends.
      const qms = this.quarantineMs
      for (const [a, d] of this.dropped) {
        if (now - d.at > qms || this.byAddress.has(a)) { this.dropped.delete(a); continue }
        const c = this.chans.get(a)
        if (this.table && !this.leaving && !(c && !c.closed && c.pending > 0)) this.sendTo(a, this.hello(false))
      }
      for (const [coord, until] of this.quarantine) if (until <= now) this.quarantine.delete(coord)
      if (this.confirming) this.confirmStep()
      this.lastTick = now
      if (late > every / 2) for (const [a, at] of this.lastHeard) this.lastHeard.set(a, at + late)
      for (let h = 0; h < this.members.length; h++) {
        if (this.placedAs[h] !== null) for (const a of this.members[h]) this.sendTo(a, { kind: 'heartbeat' })
      }
      const limit = (this.o.heartbeatMisses ?? HEARTBEAT_MISSES) * every
      for (const [a, at] of [...this.lastHeard]) if (now - at > limit && this.byAddress.has(a)) this.memberFailed(a, null)
      for (const [k, p] of this.pendingTakeovers) {
        // Still heard a whole window after the claim (a LEAVE would have come by now): the claim is refused, the taker told (it backs off).
        if (now - p.at > limit && this.holderHeard(parseGuid(k))) {
          this.pendingTakeovers.delete(k)
          this.stats.takeoversRefused++
          this.sendTo(p.address, { kind: 'taken', guid: parseGuid(k) })
        } else if (now - p.at > 2 * (limit + every)) this.pendingTakeovers.delete(k)
      }
      this.scheduleHeartbeat()
    }, every)
  }

  /**
   * A neighbour member is dead (silent, or its channel failed): it is dropped; what its channel
   * still held goes to another member of the same GUID; a parent GUID with no member left is
   * taken over by its heir.
   */
  private memberFailed(a: Address, failed: PeerChannel | null): void {
    const h = this.byAddress.get(a)
    if (h === undefined) return
    const g = this.placedAs[h]
    this.stats.failures++
    this.ctx.log?.info({ peer: a, guid: g ? formatGuid(g) : null }, 'polyring: neighbour failed')
    const c = failed ?? this.chans.get(a) ?? null
    const held = c ? c.channel.unacknowledged() : []
    c?.close()
    const t = this.table
    const wasParent = t !== null && t.parent === h
    if (g) {
      // Remembered for the quarantine: probed, and put back if heard again (a stall, not a crash).
      if (this.dropped.size >= MAX_NEIGHBOURS) this.dropped.delete(this.dropped.keys().next().value!)
      this.dropped.set(a, { guid: g, at: this.ctx.runtime.now(), cluster: (this.members[h]?.length ?? 0) > 1 })
    }
    this.dropAddress(a)
    // A dropped child's coordinate is not handed to a joiner until the quarantine ends: it may come back.
    if (t && g && t === this.table && g.length === t.depth + 1 && commonPrefix(g, t.self) === t.depth && t.child(g[t.depth]) === NONE) {
      this.quarantine.set(g[t.depth], this.ctx.runtime.now() + this.quarantineMs)
    }
    // A cluster member failed: its fellows carry on; routed messages stuck in its channel are resent to one of them.
    if (this.members[h]?.length && this.byAddress.get(this.members[h][0]) === h) {
      for (const bytes of held) {
        const m = decodeWireSafe(bytes)
        if (!m || (m.kind !== 'route' && m.kind !== 'broadcast' && m.kind !== 'multicast')) continue // control messages are per member
        this.stats.resent++
        this.sendTo(this.members[h][this.rr++ % this.members[h].length], m)
      }
    }
    if (wasParent && t === this.table && t.parent === NONE && g) this.parentLost(g)
  }

  /**
   * Our parent's GUID has no member left: if we are its heir and hold its table, we take it over,
   * once confirmed: we ask its parent and siblings (CHECK) whether they still hear it, and probe
   * it directly. A "heard" answer or any word from it calls the takeover off; a "not heard" and no
   * "heard" in one interval confirms it. With nobody to ask, CONFIRM_INTERVALS of silence confirm
   * it. A peer cut off from everyone (its own stall, its own link) gets no answer and takes nothing.
   */
  private parentLost(g: Guid): void {
    const tbl = this.heirTable
    if (!this.isHeir()) return
    if (!tbl || !guidEquals(tbl.guid, g)) { this.ctx.log?.warn({ parent: formatGuid(g) }, 'polyring: parent lost, but no table from it to take over with'); return }
    const me = this.ctx.address()
    const probes = [...this.dropped].filter(([, d]) => guidEquals(d.guid, g)).map(([a]) => a)
    const asked = [...new Set(tbl.members.filter((x) => x.address !== me && !guidEquals(x.guid, g)).map((x) => x.address))]
    this.confirming = { guid: g, members: tbl.members, probes, asked, yes: 0, no: 0, since: this.ctx.runtime.now() }
    this.confirmStep()
  }

  /** One step of a takeover's confirmation (at once, then every heartbeat tick). */
  private confirmStep(): void {
    const c = this.confirming
    const t = this.table
    if (!c) return
    if (!t || t.parent !== NONE || !this.isHeir() || !guidEquals(parentGuid(t.self) ?? t.self, c.guid)) { this.confirming = null; return }
    const now = this.ctx.runtime.now()
    if (c.yes > 0) { this.stats.takeoversCalledOff++; this.ctx.log?.info({ parent: formatGuid(c.guid) }, 'polyring: parent still heard by its neighbours: no takeover yet') }
    const confirmed = c.asked.length === 0 ? now - c.since >= CONFIRM_INTERVALS * this.everyMs : c.no > 0 && c.yes === 0
    if (confirmed) { this.confirming = null; this.takeOver(c.guid, c.members); return }
    c.yes = 0; c.no = 0
    for (const a of c.probes) this.sendTo(a, { kind: 'heartbeat' })
    for (const a of c.asked) this.sendTo(a, { kind: 'check', guid: c.guid })
  }

  /** Whether we are our parent's heir: no lower sibling coordinate is held, and in a cluster we are the lowest address. */
  private isHeir(): boolean {
    const t = this.table
    if (!t || t.depth < 2) return false
    for (let c = 0; c < t.ownCoord; c++) if (t.sibling(c) !== NONE) return false
    const me = this.ctx.address()
    if (this.fellows !== NONE && this.members[this.fellows].some((a) => a < me)) return false
    return true
  }

  /** Our heir (the lowest child) gets our table whenever it or the heir changed. */
  private supplyHeir(): void {
    const t = this.table
    if (!t || this.closed) return
    let heir = NONE
    t.forEachChild((_c, h) => { if (heir === NONE) heir = h })
    if (heir === NONE || (heir === this.heirSent.h && this.tableVersion === this.heirSent.version)) return
    this.heirSent = { h: heir, version: this.tableVersion }
    this.sendWire(heir, { kind: 'heir', now: false, guid: t.self, members: this.tableForHeir() })
  }

  /** Our parent's and siblings' members (and our fellows'), as an heir needs them to take our GUID. */
  private tableForHeir(): WireMember[] {
    const t = this.table!
    const out: WireMember[] = []
    const add = (g: Guid, h: number): void => { for (const a of this.members[h] ?? []) if (out.length < MAX_WELCOME_MEMBERS) out.push({ guid: g, address: a }) }
    const p = parentGuid(t.self)
    if (p && t.parent !== NONE) add(p, t.parent)
    t.forEachSibling((c, h) => { const g = t.self.slice(); g[g.length - 1] = c; add(g, h) })
    if (this.fellows !== NONE) add(t.self, this.fellows)
    return out
  }

  private onHeir(from: Address, m: Extract<WireMessage, { kind: 'heir' }>): void {
    const t = this.table
    const h = this.byAddress.get(from)
    // Only from our parent, about its own GUID.
    if (!t || h === undefined || h !== t.parent || !guidEquals(parentGuid(t.self) ?? t.self, m.guid) || t.depth < 2) { this.stats.strangers++; return }
    this.heirTable = { guid: m.guid, members: m.members }
    if (m.now && this.isHeir()) this.takeOver(m.guid, m.members)
  }

  /**
   * Takes GUID `g` (our parent's) over with its table `members` (its parent's and siblings'
   * members): our siblings become our children, its neighbours ours. Our old GUID stays with our
   * fellow cluster members, or passes to our heir (HEIR now), or is vacated (we had no child).
   * Everyone concerned hears a TAKEOVER from us.
   */
  private takeOver(g: Guid, members: WireMember[]): void {
    const t = this.table!
    const old = t.self
    const me = this.ctx.address()
    this.stats.takeovers++
    this.tookOverAt = this.ctx.runtime.now()
    // What we remembered was relative to our old place.
    this.dropped.clear(); this.quarantine.clear(); this.confirming = null
    const oldSiblings: [number, number][] = []
    t.forEachSibling((c, h) => oldSiblings.push([c, h]))
    let heir = NONE
    const oldChildren: number[] = []
    t.forEachChild((_c, h) => { if (heir === NONE) heir = h; oldChildren.push(h) })
    const fellows = this.fellows
    const oldParent = t.parent
    if (fellows !== NONE) heir = NONE // our GUID stays with them
    const oldChildTable = heir !== NONE ? this.handoverTable(g, oldSiblings) : null
    // Forget the old placements (handles and addresses stay), then place everyone anew.
    for (let h = 0; h < this.placedAs.length; h++) this.placedAs[h] = null
    this.fellows = NONE
    this.heirTable = null
    this.setTable(new PolyringTable(g))
    if (oldParent !== NONE) this.release(oldParent)
    for (const [c, h] of oldSiblings) this.place(h, childGuid(g, c))
    if (fellows !== NONE) this.place(fellows, old)
    for (const h of oldChildren) {
      if (h === heir && fellows === NONE) continue
      // They are our heir's (or our fellows') children now: they drop us as their parent.
      if (fellows === NONE) this.sendWire(h, { kind: 'leave', guid: old })
      this.release(h)
    }
    if (heir !== NONE) this.place(heir, old) // it takes our old GUID: routes to it go there at once
    for (const x of members) {
      if (x.address === me || guidEquals(x.guid, g)) continue // the old holder's members are gone
      this.placeAddress(x.address, x.guid, true)
    }
    // Our heir first (the same channel carries its TAKEOVER's cause before anything else), then everyone.
    if (heir !== NONE) { this.stats.handovers++; this.sendWire(heir, { kind: 'heir', now: true, guid: old, members: oldChildTable! }) }
    const notice: WireMessage = { kind: 'takeover', guid: g, old }
    for (let h = 0; h < this.members.length; h++) if (this.placedAs[h] !== null && h !== heir) for (const a of this.members[h]) this.sendTo(a, notice)
    this.ctx.log?.info({ from: formatGuid(old), to: formatGuid(g), heir: heir !== NONE }, 'polyring: took a GUID over')
  }

  /** What our heir needs to take our old GUID: us (its new parent, at `g`) and our old siblings (its siblings to be). */
  private handoverTable(g: Guid, oldSiblings: [number, number][]): WireMember[] {
    const out: WireMember[] = [{ guid: g, address: this.ctx.address() }]
    for (const [c, h] of oldSiblings) for (const a of this.members[h] ?? []) if (out.length < MAX_WELCOME_MEMBERS) out.push({ guid: childGuid(g, c), address: a })
    return out
  }

  /**
   * TAKEOVER: the sender now holds `guid` and no longer `old`. It is accepted only once this peer
   * has lost `guid`'s holder itself (its LEAVE, or silence past the window): while any member of
   * that GUID is still heard from here, the takeover waits (so a would-be heir cut off from a
   * live parent cannot evict it where the parent is still heard); if the holder is still heard a
   * whole window later, the claim is refused and the taker told TAKEN.
   */
  private onTakeover(from: Address, m: Extract<WireMessage, { kind: 'takeover' }>): void {
    if (!this.table) return
    const a = canonicalAddress(from)
    const h0 = this.byAddress.get(a)
    if (h0 !== undefined && (!m.old || (this.placedAs[h0] && guidEquals(this.placedAs[h0]!, m.old)))) this.dropAddress(a)
    const slot = this.slotHandle(m.guid)
    if (slot !== NONE && !this.members[slot].includes(a)) {
      if (this.pendingTakeovers.size >= MAX_NEIGHBOURS) return
      this.pendingTakeovers.set(formatGuid(m.guid), { address: a, at: this.ctx.runtime.now() })
      return
    }
    this.applyTakeover(a, m.guid)
  }

  private applyTakeover(a: Address, g: Guid): void {
    const h = this.handleFor(a)
    if (h === NONE || !this.place(h, g)) return
    this.lastHeard.set(a, this.ctx.runtime.now())
  }

  /** A cluster join for our GUID: the joiner becomes a fellow member and gets our whole table. */
  private welcomeMember(from: Address, j: JoinRequest): void {
    const t = this.table!
    const h = this.placeAddress(from, t.self, true)
    if (h === NONE) { this.stats.joinsRefused++; this.sendTo(from, { kind: 'refuse', req: j.req, reason: `cluster ${formatGuid(t.self)} is full` }); return }
    this.stats.clusterJoins++
    const members: WireMember[] = [{ guid: t.self, address: this.ctx.address() }]
    const add = (g: Guid, hh: number): void => { for (const a of this.members[hh] ?? []) if (a !== from && members.length < MAX_WELCOME_MEMBERS) members.push({ guid: g, address: a }) }
    add(t.self, this.fellows)
    const p = parentGuid(t.self)
    if (p && t.parent !== NONE) add(p, t.parent)
    t.forEachSibling((c, hh) => { const g = t.self.slice(); g[g.length - 1] = c; add(g, hh) })
    t.forEachChild((c, hh) => add(childGuid(t.self, c), hh))
    this.stats.joinsAnswered++
    this.sendTo(from, { kind: 'welcome', req: j.req, guid: t.self, members })
  }

  /**
   * Leaves gracefully. A cluster member tells its fellows and neighbours to drop it (no GUID
   * changes). A single peer with children hands its GUID to its heir (HEIR now: the heir takes it
   * over without waiting for heartbeats) and tells the others to drop it; a leaf's GUID is vacated.
   * Then waits for the notices to be acknowledged.
   */
  async leave(): Promise<void> {
    await Promise.all([...this.sides.values()].map((s) => s.ring.leave().catch(() => {})))
    const t = this.table
    if (!t || this.closed) return
    this.leaving = true
    let heir = NONE
    if (this.fellows === NONE) t.forEachChild((_c, h) => { if (heir === NONE) heir = h })
    if (heir !== NONE) { this.stats.handovers++; this.sendWire(heir, { kind: 'heir', now: true, guid: t.self, members: this.tableForHeir() }) }
    const addresses: Address[] = []
    for (let h = 0; h < this.members.length; h++) {
      if (this.placedAs[h] === null) continue
      if (h !== heir) this.sendWire(h, { kind: 'leave', guid: t.self })
      addresses.push(...this.members[h])
    }
    const channels = addresses.map((a) => this.ctx.channel(a, this.stream))
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
    for (const f of this.fetches.values()) { this.ctx.runtime.clearTimeout(f.timer); f.reject(new WeftError('ERR_CLOSED', 'the polyring service closed')) }
    this.fetches.clear()
    for (const s of this.sides.values()) { if (s.announce) this.ctx.runtime.clearTimeout(s.announce); s.ring.close() }
    this.sides.clear()
    for (const i of [...this.inboxes]) i.close()
  }

  status(): PolyringStatus {
    const t = this.table
    const n = (g: Guid, h: number): PolyringNeighbour => ({ guid: formatGuid(g), address: this.members[h]?.[0] ?? '' })
    const siblings: PolyringNeighbour[] = [], children: PolyringNeighbour[] = []
    if (t) {
      const p = parentGuid(t.self)
      t.forEachSibling((c, h) => {
        const g = t.self.slice(); g[g.length - 1] = c
        const x = n(g, h)
        if (t.privateSiblings?.[c] === 1) x.private = true
        siblings.push(x)
      })
      t.forEachChild((c, h) => children.push(n(childGuid(t.self, c), h)))
      if (this.peer) this.syncPeerStats()
      return {
        guid: formatGuid(t.self), centre: t.depth === 1, region: this.o.region ?? '', hosted: !!this.o.hosted, private: !!this.o.private,
        parent: p && t.parent !== NONE ? n(p, t.parent) : null, siblings, children, stats: { ...this.stats }, ...this.extraStatus(),
      }
    }
    return {
      guid: null, centre: !!this.o.centre, region: this.o.region ?? '', hosted: !!this.o.hosted, private: !!this.o.private,
      parent: null, siblings, children, stats: { ...this.stats }, ...this.extraStatus(),
    }
  }

  private extraStatus(): Pick<PolyringStatus, 'cache' | 'location' | 'rateLimit' | 'sides'> {
    const l = this.locator
    return {
      cache: this.cache.status(),
      location: l ? { ...l.stats, guid: l.publishedGuid, cached: l.cached } : null,
      rateLimit: { ...this.limit },
      sides: [...this.sides.entries()].map(([stream, s]) => ({ name: s.name, guid: s.ring.guid ? formatGuid(s.ring.guid) : null, stream })),
    }
  }
}

/** A wire message this peer encoded itself, decoded again (null if it somehow does not decode). */
function decodeWireSafe(bytes: Uint8Array): WireMessage | null {
  try { return decodeWire(bytes) } catch { return null }
}

/** The lowest free centre coordinate (not our own, not a sibling's). */
function nextFreeSibling(t: PolyringTable): number {
  for (let i = 0; i < MAX_RING; i++) if (i !== t.ownCoord && t.sibling(i) === NONE) return i
  throw new WeftError('ERR_BUSY', `centre ring full (${MAX_RING})`)
}

/** A content key given as text (UTF-8) or bytes, at most MAX_KEY_BYTES. */
function keyBytes(key: string | Uint8Array): Uint8Array {
  const k = typeof key === 'string' ? new TextEncoder().encode(key) : key
  if (!(k instanceof Uint8Array) || k.length > MAX_KEY_BYTES) throw new WeftError('ERR_BAD_ARGUMENT', `a content key is text or bytes of at most ${MAX_KEY_BYTES} bytes`)
  return k
}

/** The cache's name for the content under `key` at home `home`. */
function cacheKey(home: Guid, key: Uint8Array): string {
  return `${formatGuid(home)}${Buffer.from(key).toString('hex')}`
}

/** The DHT key a side polyring is announced under. */
export function sideKey(name: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update('weft/polyring/side/').update(name).digest())
}

/** A side polyring's channel stream: 'p' then 24 bits of its name's hash (never the main ring's). */
export function sideStream(name: string): number {
  if (typeof name !== 'string' || name.length < 1 || name.length > 200) throw new WeftError('ERR_BAD_ARGUMENT', 'a side polyring name is 1..200 characters')
  const h = createHash('sha256').update(name).digest()
  const s = ((0x70 << 24) | (h[0] << 16) | (h[1] << 8) | h[2]) >>> 0
  return s === POLYRING_STREAM ? (s ^ 1) >>> 0 : s
}

/** A parent given as `HOST:PORT` or as a GUID `[4.2]`. */
export function parentRef(v: string): { address: Address; guid: null } | { address: null; guid: Guid } {
  if (v.startsWith('[')) return { address: null, guid: parseGuid(v) }
  parseAddress(v) // ERR_BAD_ADDRESS with the reason
  return { address: canonicalAddress(v), guid: null }
}
