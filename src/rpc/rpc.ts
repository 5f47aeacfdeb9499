// Request/response over datagrams: transaction ids, adaptive timeouts, bounded retries, a bounded
// window of requests in flight, per-source rate limits and anti-amplification tokens.
import { WeftError, type ErrorCode } from '../errors.js'
import { withDefaults } from '../options.js'
import type { NodeId } from '../identity/node-id.js'
import type { Runtime, TimerHandle } from '../runtime/runtime.js'
import type { Transport } from '../transport/transport.js'
import { Field, PeerTable } from './peer-table.js'
import { hostKey, isLoopback, RateLimiter } from './rate-limit.js'
import { RttEstimator } from './rtt.js'
import { TokenIssuer } from './tokens.js'
import { canonicalAddress, packedAddressSize, type Address } from '../wire/address.js'
import {
  decode, encode, encodedSize, ErrorReplyCode, Flag, HEADER_BYTES, MAX_REASON_BYTES, isRequest, MAX_PACKET, MessageType, TOKEN_BYTES,
  type Message, type Reply, type Request,
} from '../wire/messages.js'

export interface RpcOptions {
  /** Retries after the first attempt before a request fails with ERR_TIMEOUT. */
  maxRetries: number
  minTimeoutMs: number
  maxTimeoutMs: number
  initialTimeoutMs: number
  /** Requests this node may have in flight at once; more wait in a queue of maxQueued. */
  maxInFlight: number
  maxQueued: number
  /** Requests accepted per second from one source address, and the burst allowed. */
  ratePerSecond: number
  rateBurst: number
  /** Bounds of the per-address tables (rate buckets, RTT estimates, tokens). */
  addressTableSize: number
  /**
   * Requests accepted per second from one host (every port of an IP, or an IPv6 /64, together),
   * and the burst; checked before the per-address bucket, so a flood from many ports of one host
   * neither passes nor churns the per-address table.
   */
  hostRatePerSecond: number
  hostRateBurst: number
  /** Hosts whose buckets are kept (a second bounded table, clock eviction). */
  hostTableSize: number
  /** Loopback sources skip the per-host bucket (a devnet puts every node on 127.0.0.1). */
  exemptLoopback: boolean
  tokenPeriodMs: number
}

export const defaultRpcOptions: RpcOptions = {
  maxRetries: 2,
  minTimeoutMs: 50,
  maxTimeoutMs: 3000,
  initialTimeoutMs: 300,
  maxInFlight: 256,
  maxQueued: 4096,
  ratePerSecond: 1000,
  rateBurst: 2000,
  addressTableSize: 512,
  hostRatePerSecond: 4000,
  hostRateBurst: 8000,
  hostTableSize: 256,
  exemptLoopback: true,
  tokenPeriodMs: 300_000,
}

/** A request as the layer above writes it: the rpc layer fills in header, token and padding. */
export type RequestBody =
  | { type: MessageType.PING }
  | { type: MessageType.FIND_NODE; target: NodeId }
  | { type: MessageType.GET; target: NodeId }
  | { type: MessageType.NEIGHBORS; what: number; arg: number }
  | { type: MessageType.PUT; record: Uint8Array; cas?: number; ttlMs?: number; cache?: boolean }
  | { type: MessageType.LOCATE; op: number; object: NodeId; hop: number; ttlSec: number }
  | { type: MessageType.CONNECT; op: number; address: Address; locals?: Address[] }
  | { type: MessageType.MEMBERSHIP; op: number; channel: Uint8Array; ttl: number; priority: number; contacts: { id: NodeId; address: Address }[] }

/** A reply as the handler writes it: the rpc layer adds token and observed address. */
export type ReplyBody =
  | { type: MessageType.PONG }
  | { type: MessageType.STORED }
  | { type: MessageType.NODES; contacts: { id: NodeId; address: Address }[] }
  | { type: MessageType.VALUES; contacts: { id: NodeId; address: Address }[]; records: Uint8Array[] }
  | { type: MessageType.POINTERS; next: { id: NodeId; address: Address }[]; servers: { id: NodeId; address: Address }[] }

/**
 * Answers one request type. `verified`: the asker echoed a valid round-trip token, so it has
 * talked to us from this address before (writes require it). Throwing a WeftError whose code
 * has a wire form sends an ERROR reply with it; null sends nothing. A promise answers when it
 * settles (its rejection as a thrown error would).
 */
export type RequestHandler = (from: Address, req: Request, verified: boolean) => ReplyBody | null | Promise<ReplyBody | null>

// ERROR reply codes <-> error codes, both ways.
const WIRE_ERRORS: [number, ErrorCode][] = [
  [ErrorReplyCode.RATE_LIMITED, 'ERR_RATE_LIMITED'], [ErrorReplyCode.BAD_REQUEST, 'ERR_BAD_MESSAGE'],
  [ErrorReplyCode.BAD_REQUEST, 'ERR_BAD_ARGUMENT'],
  [ErrorReplyCode.BUSY, 'ERR_BUSY'], [ErrorReplyCode.VALUE_TOO_LARGE, 'ERR_VALUE_TOO_LARGE'],
  [ErrorReplyCode.HASH_MISMATCH, 'ERR_HASH_MISMATCH'], [ErrorReplyCode.BAD_SIGNATURE, 'ERR_BAD_SIGNATURE'],
  [ErrorReplyCode.STALE_SEQ, 'ERR_STALE_SEQ'], [ErrorReplyCode.CAS_MISMATCH, 'ERR_CAS_MISMATCH'],
  [ErrorReplyCode.STORE_FULL, 'ERR_STORE_FULL'], [ErrorReplyCode.BAD_TOKEN, 'ERR_BAD_TOKEN'],
  [ErrorReplyCode.EXPIRED, 'ERR_EXPIRED'], [ErrorReplyCode.FORBIDDEN, 'ERR_FORBIDDEN'],
]
const codeOfWire = new Map<number, ErrorCode>([...WIRE_ERRORS].reverse()) // the first listed wins
const wireOfCode = new Map<ErrorCode, number>(WIRE_ERRORS.map(([w, c]) => [c, w]))

export interface RpcStats {
  requestsOut: number
  requestsIn: number
  repliesIn: number
  repliesOut: number
  retries: number
  timeouts: number
  malformed: number
  malformedByCode: Partial<Record<ErrorCode, number>>
  rateLimited: number
  unmatchedReplies: number
  truncatedReplies: number
  refusedAmplification: number
  queueFull: number
  /** Requests whose handler failed in a way it should not have (answered BAD_REQUEST). */
  handlerErrors: number
  /** Requests dropped by the per-host bucket (hostRatePerSecond), before the per-address one. */
  hostRateLimited: number
  /** Requests the authorize hook refused (answered ERROR FORBIDDEN). */
  unauthorized: number
}

/**
 * Decides whether a request reaches its handler (NodeOptions.authorize). `id` is the sender the
 * header names: authenticated by the session when the node encrypts, only claimed otherwise.
 * Runs once per request, synchronously: keep it cheap. Throwing refuses.
 */
export type RequestAuthorizer = (from: Address, req: Request) => boolean

// Shared by every Rpc: per-instance closures would cost bytes on each of a million simulated nodes.
const ignore = (): void => {}
function dispatch(this: Rpc, from: Address, req: Request, verified: boolean): ReturnType<RequestHandler> {
  return this.handlerFor(req.type)?.(from, req, verified) ?? null
}
const NO_PENDING: ReadonlyMap<number, unknown> = new Map()
const mergedOptions = withDefaults(defaultRpcOptions)

export type RequestCallback = (err: WeftError | null, reply?: Reply, rttMs?: number) => void

interface Pending {
  txid: number
  to: Address
  body: RequestBody
  expectReplyBytes: number
  /** Sent with a token that the peer no longer accepts, and sent again with the fresh one. */
  resent: boolean
  bytes: Uint8Array
  tries: number
  sentAt: number
  deadline: number
  cb: RequestCallback
  /** Told once, when a retry has timed out as well (the request goes on with its last retries). */
  onSlow?: () => void
}

interface Queued { to: Address; body: RequestBody; expectReplyBytes: number; cb: RequestCallback; onSlow?: () => void }

export class Rpc {
  readonly options: RpcOptions
  readonly stats: RpcStats = {
    requestsOut: 0, requestsIn: 0, repliesIn: 0, repliesOut: 0, retries: 0, timeouts: 0, malformed: 0,
    malformedByCode: {}, rateLimited: 0, unmatchedReplies: 0, truncatedReplies: 0, refusedAmplification: 0, queueFull: 0, handlerErrors: 0,
    hostRateLimited: 0, unauthorized: 0,
  }
  /** Consulted before a request reaches its handler; null: every request is. */
  authorize: RequestAuthorizer | null = null
  /** Handlers by message type (a few small integers: an array, not a Map). */
  private readonly handlers: (RequestHandler | undefined)[] = []
  /** Answers a request: by default the handler registered for its type. */
  onRequest: RequestHandler = dispatch
  /** Called for every valid message from a peer, so tables can learn of it. */
  /** `proven`: a reply to our request, or a request with a valid token: the address is real. */
  onSeen: (id: NodeId, address: Address, readOnly: boolean, proven: boolean) => void = ignore
  /** Our address as the last replying peer saw it. */
  observedAddress: Address | null = null
  /** Set to stop others from adding this node to their tables (clients, private nodes). */
  readOnly = false

  // Allocated at the first request: a simulated node that is only ever asked costs nothing here.
  private pending = NO_PENDING as Map<number, Pending>
  private readonly queue: Queued[] = []
  private readonly rtt: RttEstimator
  private readonly limiter: RateLimiter
  private readonly tokens: TokenIssuer
  private readonly peers: PeerTable
  private readonly hosts: PeerTable
  private readonly hostLimiter: RateLimiter
  private closed = false
  /** One timer per Rpc, armed for the earliest deadline, instead of a Node timer per request. */
  private sweepTimer: TimerHandle | null = null
  private sweepAt = Infinity

  constructor(
    private readonly runtime: Runtime,
    private readonly transport: Transport,
    readonly id: NodeId,
    options: Partial<RpcOptions> = defaultRpcOptions,
  ) {
    this.options = mergedOptions(options)
    const o = this.options
    this.peers = new PeerTable(o.addressTableSize)
    this.rtt = new RttEstimator(o.minTimeoutMs, o.maxTimeoutMs, o.initialTimeoutMs, this.peers)
    this.limiter = new RateLimiter(o.ratePerSecond, o.rateBurst, this.peers)
    this.hosts = new PeerTable(o.hostTableSize)
    this.hostLimiter = new RateLimiter(o.hostRatePerSecond, o.hostRateBurst, this.hosts)
    this.tokens = new TokenIssuer(runtime.random, o.tokenPeriodMs, runtime.now(), this.peers)
    transport.onPacket = (from, bytes) => this.receive(from, bytes)
  }

  /** Registers the handler of one request type (the overlay: PING, FIND_NODE; the DHT: GET, PUT). */
  handle(type: MessageType, handler: RequestHandler): void {
    this.handlers[type] = handler
  }

  handlerFor(type: MessageType): RequestHandler | undefined { return this.handlers[type] }
  /** The node we expect at `address` (a contact's id, which is its key): the transport can seal the first request to it. */
  expectPeer(address: Address, id: NodeId): void { this.transport.hintPeerKey?.(address, id) }

  /** The round-trip token `address` last gave us (for a one-way message that must prove our address); undefined: none. */
  heldToken(address: Address): number | undefined {
    const slot = this.peers.find(address)
    const held = slot < 0 ? NaN : this.peers.f[slot * Field.COUNT + Field.HELD_TOKEN]
    return held === held ? held : undefined
  }

  get inFlight(): number { return this.pending.size }
  /** Requests waiting for room in the window (maxInFlight). */
  get queued(): number { return this.queue.length }
  /** Addresses in the per-address table, and hosts in the per-host one. */
  get addressCount(): number { return this.peers.size }
  get hostCount(): number { return this.hosts.size }
  get smoothedRttMs(): number | null { return this.rtt.smoothed }

  /** Whether this rpc has exchanged messages with `address` lately (it is in the per-address table). */
  knows(address: Address): boolean { return this.peers.find(address) >= 0 }

  /**
   * Sends a request and calls back once with the reply or an error. `expectReplyBytes` is the
   * largest reply wanted: requests to peers whose token we lack are padded to it, so the peer
   * may answer in full without amplifying.
   */
  request(to: Address, body: RequestBody, expectReplyBytes: number, cb: RequestCallback, onSlow?: () => void): void {
    if (this.closed) { cb(new WeftError('ERR_CLOSED', 'rpc is closed')); return }
    if (this.pending.size >= this.options.maxInFlight) {
      if (this.queue.length >= this.options.maxQueued) {
        this.stats.queueFull++
        cb(new WeftError('ERR_BUSY', `request queue is full (${this.options.maxQueued})`))
        return
      }
      this.queue.push({ to, body, expectReplyBytes, cb, onSlow })
      return
    }
    this.send(to, body, expectReplyBytes, cb, false, onSlow)
  }

  /**
   * A request that writes state at the responder (PUT, a pointer's PUBLISH): it needs the token
   * the responder gave us. Refused for want of one, a PING fetches it and the request goes once more.
   */
  requestProven(to: Address, body: RequestBody, expectReplyBytes: number, cb: RequestCallback): void {
    this.request(to, body, expectReplyBytes, (err, reply, rttMs) => {
      if (!err || err.code !== 'ERR_BAD_TOKEN') { cb(err, reply, rttMs); return }
      this.request(to, { type: MessageType.PING }, expectedPongBytes(to), (pingErr) => {
        if (pingErr) cb(pingErr)
        else this.request(to, body, expectReplyBytes, cb)
      })
    })
  }

  requestAsync(to: Address, body: RequestBody, expectReplyBytes = 0): Promise<{ reply: Reply; rttMs: number }> {
    return new Promise((resolve, reject) => {
      this.request(to, body, expectReplyBytes, (err, reply, rttMs) => (err ? reject(err) : resolve({ reply: reply!, rttMs: rttMs! })))
    })
  }

  private send(to: Address, body: RequestBody, expectReplyBytes: number, cb: RequestCallback, resent = false, onSlow?: () => void): void {
    let txid = this.runtime.random.u32()
    while (this.pending.has(txid)) txid = (txid + 1) >>> 0
    const slot = this.peers.find(to)
    const held = slot < 0 ? NaN : this.peers.f[slot * Field.COUNT + Field.HELD_TOKEN]
    const token = held === held ? held : undefined
    const flags = this.readOnly ? Flag.READ_ONLY : 0
    // One object shape per type (no spread): keeps encode/encodedSize monomorphic.
    const req: Request = body.type === MessageType.PING ? { type: MessageType.PING, txid, sender: this.id, flags, token, pad: 0 }
      : body.type === MessageType.PUT ? { type: MessageType.PUT, txid, sender: this.id, flags, record: body.record, cas: body.cas, ttlMs: body.ttlMs, cache: body.cache, token, pad: 0 }
        : body.type === MessageType.NEIGHBORS ? { type: MessageType.NEIGHBORS, txid, sender: this.id, flags, what: body.what, arg: body.arg, token, pad: 0 }
          : body.type === MessageType.LOCATE ? { type: MessageType.LOCATE, txid, sender: this.id, flags, op: body.op, object: body.object, hop: body.hop, ttlSec: body.ttlSec, token, pad: 0 }
            : body.type === MessageType.CONNECT ? { type: MessageType.CONNECT, txid, sender: this.id, flags, op: body.op, address: body.address, ...(body.locals?.length ? { locals: body.locals } : {}), token, pad: 0 }
            : body.type === MessageType.MEMBERSHIP ? { type: MessageType.MEMBERSHIP, txid, sender: this.id, flags, op: body.op, channel: body.channel, ttl: body.ttl, priority: body.priority, contacts: body.contacts, token, pad: 0 }
            : { type: body.type, txid, sender: this.id, flags, target: body.target, token, pad: 0 }
    if (token === undefined && expectReplyBytes > 0) {
      req.pad = Math.max(0, Math.min(MAX_PACKET, expectReplyBytes) - encodedSize(req))
    } else if (expectReplyBytes > 0) {
      // The token may be stale by now (the peer's secrets rotate): then the peer may send no more
      // than it got. Room for the smallest reply lets a PONG, or an empty NODES that carries a
      // fresh token, still come back instead of a silence that looks like a dead peer.
      req.pad = Math.max(0, Math.min(expectReplyBytes, expectedNodesReplyBytes(to, 0)) - encodedSize(req))
    }
    let bytes: Uint8Array
    try {
      bytes = encode(req)
    } catch (err) {
      cb(err as WeftError)
      return
    }
    const p: Pending = { txid, to, body, expectReplyBytes, resent, bytes, tries: 0, sentAt: 0, deadline: 0, cb, onSlow }
    if (this.pending === NO_PENDING) this.pending = new Map()
    this.pending.set(txid, p)
    this.stats.requestsOut++
    this.transmit(p)
  }

  private transmit(p: Pending): void {
    p.tries++
    p.sentAt = this.runtime.now()
    const timeout = this.rtt.timeout(p.to) * 2 ** (p.tries - 1) // back off on each retry
    p.deadline = p.sentAt + Math.min(timeout, this.options.maxTimeoutMs)
    this.arm(p.deadline)
    this.transport.send(p.to, p.bytes)
  }

  private arm(deadline: number): void {
    if (this.sweepTimer && deadline >= this.sweepAt) return
    if (this.sweepTimer) this.runtime.clearTimeout(this.sweepTimer)
    this.sweepAt = deadline
    this.sweepTimer = this.runtime.setTimeout(() => this.sweep(), Math.max(0, deadline - this.runtime.now()))
  }

  /** Expires every request past its deadline, then re-arms for the earliest one left. */
  private sweep(): void {
    this.sweepTimer = null
    this.sweepAt = Infinity
    const now = this.runtime.now()
    const due: Pending[] = []
    let next = Infinity
    for (const p of this.pending.values()) {
      if (p.deadline <= now) due.push(p)
      else if (p.deadline < next) next = p.deadline
    }
    if (next < Infinity) this.arm(next)
    for (const p of due) this.expire(p)
  }

  private expire(p: Pending): void {
    if (this.pending.get(p.txid) !== p) return
    if (p.tries <= this.options.maxRetries) {
      if (p.tries === 2) p.onSlow?.() // one retry unanswered too: not just a lost datagram or a slow first guess
      this.stats.retries++
      this.transmit(p)
      return
    }
    this.stats.timeouts++
    this.finish(p, new WeftError('ERR_TIMEOUT', `no reply from ${p.to} after ${p.tries} attempts`))
  }

  private finish(p: Pending, err: WeftError | null, reply?: Reply, rttMs?: number): void {
    this.pending.delete(p.txid)
    if (this.pending.size === 0 && this.sweepTimer) { this.runtime.clearTimeout(this.sweepTimer); this.sweepTimer = null; this.sweepAt = Infinity }
    const next = this.closed ? undefined : this.queue.shift() // once closed, close() fails the queue
    if (next) this.send(next.to, next.body, next.expectReplyBytes, next.cb, false, next.onSlow)
    p.cb(err, reply, rttMs)
  }

  private countMalformed(code: ErrorCode): void {
    this.stats.malformed++
    this.stats.malformedByCode[code] = (this.stats.malformedByCode[code] ?? 0) + 1
  }

  private receive(from: Address, bytes: Uint8Array): void {
    if (this.closed) return
    const result = decode(bytes)
    if (!result.ok) { this.countMalformed(result.error.code); return }
    const m = result.message
    try {
      if (isRequest(m)) this.answer(from, m, bytes.length)
      else this.match(from, m)
    } catch {
      this.stats.handlerErrors++ // a bug above must not let a peer's packet end the process
    }
  }

  private match(from: Address, m: Reply): void {
    const p = this.pending.get(m.txid)
    if (!p || (p.to !== from && !sameAddress(p.to, from))) { this.stats.unmatchedReplies++; return }
    this.stats.repliesIn++
    const now = this.runtime.now()
    const rttMs = now - p.sentAt
    const slot = this.peers.slot(from) // one table lookup for the RTT sample and the token
    if (p.tries === 1) this.rtt.sampleAt(slot, rttMs) // Karn: a retried request gives no clean sample
    if (m.type !== MessageType.ERROR) {
      this.peers.f[slot * Field.COUNT + Field.HELD_TOKEN] = m.token
      this.observedAddress = m.observed
      if (m.flags & Flag.TRUNCATED) {
        this.stats.truncatedReplies++
        if (!p.resent && p.expectReplyBytes > 0) {
          // Our token had expired (secrets rotate), so the answer was cut to our request's size.
          // The reply carries a fresh token: ask once more with it, for the whole answer.
          this.pending.delete(p.txid)
          this.send(p.to, p.body, p.expectReplyBytes, p.cb, true, p.onSlow)
          return
        }
      }
    }
    this.onSeen(m.sender, from, (m.flags & Flag.READ_ONLY) !== 0, true)
    if (m.type === MessageType.ERROR) {
      this.finish(p, new WeftError(codeOfWire.get(m.code) ?? 'ERR_BAD_MESSAGE', `${from} refused the request: ${m.reason}`))
      return
    }
    this.finish(p, null, m, rttMs)
  }

  private answer(from: Address, req: Request, requestBytes: number): void {
    const now = this.runtime.now()
    // The host's bucket first: a flood from many ports must not take per-address slots from real peers.
    if (!(this.options.exemptLoopback && isLoopback(from)) && !this.hostLimiter.allowAt(this.hosts.slot(hostKey(from)), now)) {
      this.stats.hostRateLimited++
      return
    }
    const slot = this.peers.slot(from) // one table lookup for the rate limit and the token
    if (!this.limiter.allowAt(slot, now)) { this.stats.rateLimited++; return }
    this.stats.requestsIn++
    const token = this.tokens.issueAt(slot, from, now)
    const verified = req.token !== undefined && (req.token === token || this.tokens.valid(from, req.token, now))
    if (this.authorize && !this.allowed(from, req)) {
      // Refused before the handler and before onSeen (tables do not learn from refused traffic).
      // The ERROR is never larger than the request (refuse cuts its reason to fit): no amplification.
      this.stats.unauthorized++
      this.refuse(from, req, verified, requestBytes, new WeftError('ERR_FORBIDDEN', 'not authorized'))
      return
    }
    this.onSeen(req.sender, from, (req.flags & Flag.READ_ONLY) !== 0, verified)
    let body: ReplyBody | null | Promise<ReplyBody | null>
    try {
      body = this.onRequest(from, req, verified)
    } catch (err) {
      this.refuse(from, req, verified, requestBytes, err)
      return
    }
    if (!(body instanceof Promise)) { this.reply(from, req, token, verified, requestBytes, body); return }
    // A handler that works off the event loop (a signature check on the thread pool) answers later.
    body.then(
      (b) => { if (!this.closed) this.reply(from, req, token, verified, requestBytes, b) },
      (err: unknown) => { if (!this.closed) this.refuse(from, req, verified, requestBytes, err) },
    )
  }

  private allowed(from: Address, req: Request): boolean {
    try { return this.authorize!(from, req) === true } catch { return false } // a hook that throws refuses
  }

  private refuse(from: Address, req: Request, verified: boolean, requestBytes: number, err: unknown): void {
    // A refusal goes back as an ERROR with its code; anything else a handler throws is a bug
    // here, never a reason to crash on a peer's packet: answer BAD_REQUEST and count it.
    if (!(err instanceof WeftError) || !wireOfCode.has(err.code)) this.stats.handlerErrors++
    const code = err instanceof WeftError ? wireOfCode.get(err.code) ?? ErrorReplyCode.BAD_REQUEST : ErrorReplyCode.BAD_REQUEST
    // The reason is cut to fit the reason limit and, to an unproven asker, the request's size.
    const room = Math.min(MAX_REASON_BYTES, verified ? MAX_REASON_BYTES : requestBytes - HEADER_BYTES - 2)
    const reason = truncateUtf8(err instanceof WeftError ? err.message : 'internal error', room)
    this.stats.repliesOut++
    this.transport.send(from, encode({ type: MessageType.ERROR, txid: req.txid, sender: this.id, flags: this.readOnly ? Flag.READ_ONLY : 0, code, reason }))
  }

  private reply(from: Address, req: Request, token: number, verified: boolean, requestBytes: number, body: ReplyBody | null): void {
    if (!body) return
    const flags = this.readOnly ? Flag.READ_ONLY : 0
    // One literal per type (no spread): keeps encode monomorphic. The handler's arrays are used
    // as they are, and copied only to be cut below.
    const txid = req.txid
    const reply: Reply = body.type === MessageType.NODES
      ? { type: MessageType.NODES, txid, sender: this.id, flags, token, observed: from, contacts: body.contacts }
      : body.type === MessageType.VALUES
        ? { type: MessageType.VALUES, txid, sender: this.id, flags, token, observed: from, contacts: body.contacts, records: body.records }
        : body.type === MessageType.POINTERS
          ? { type: MessageType.POINTERS, txid, sender: this.id, flags, token, observed: from, next: body.next, servers: body.servers }
          : { type: body.type, txid, sender: this.id, flags, token, observed: from }
    if (!verified && encodedSize(reply) > requestBytes) {
      // The asker has not proven its address: never send more bytes than it sent.
      if (reply.type === MessageType.NODES || reply.type === MessageType.VALUES) {
        reply.contacts = reply.contacts.slice()
        if (reply.type === MessageType.VALUES) reply.records = reply.records.slice()
        while (reply.contacts.length > 0 && encodedSize(reply) > requestBytes) reply.contacts.pop()
        if (reply.type === MessageType.VALUES) while (reply.records.length > 0 && encodedSize(reply) > requestBytes) reply.records.pop()
      } else if (reply.type === MessageType.POINTERS) {
        // As VALUES: the route on (next hops) goes first, then the answer (servers), each from the end.
        reply.next = reply.next.slice()
        reply.servers = reply.servers.slice()
        while (reply.next.length > 0 && encodedSize(reply) > requestBytes) reply.next.pop()
        while (reply.servers.length > 0 && encodedSize(reply) > requestBytes) reply.servers.pop()
      } else { this.stats.refusedAmplification++; return }
      if (encodedSize(reply) > requestBytes) { this.stats.refusedAmplification++; return }
      reply.flags |= Flag.TRUNCATED
    }
    this.stats.repliesOut++
    this.transport.send(from, encode(reply))
  }

  /** Fails everything in flight and stops answering. */
  close(): void {
    this.closed = true
    for (const p of [...this.pending.values()]) this.finish(p, new WeftError('ERR_CLOSED', 'node stopped'))
    for (const q of this.queue.splice(0)) q.cb(new WeftError('ERR_CLOSED', 'node stopped'))
  }
}

/** The longest prefix of `text` that fits in `bytes` bytes of UTF-8. */
function truncateUtf8(text: string, bytes: number): string {
  if (Buffer.byteLength(text) <= bytes) return text
  let t = text.slice(0, Math.max(0, bytes))
  while (Buffer.byteLength(t) > bytes) t = t.slice(0, -1)
  return t
}

/** True when `to` as the caller wrote it ("localhost:5", "[0::1]:5") is `from` as a socket reports it. */
function sameAddress(to: Address, from: Address): boolean {
  try {
    return canonicalAddress(to) === from
  } catch {
    return false
  }
}

/** Bytes of a reply with `contacts` contacts of the same address family as `to`. */
export function expectedNodesReplyBytes(to: Address, contacts: number): number {
  const a = packedAddressSize(to)
  return HEADER_BYTES + TOKEN_BYTES + a + 1 + contacts * (32 + a)
}

/** Bytes of a POINTERS reply with `next` next hops and `servers` servers of the same address family as `to`. */
export function expectedPointersReplyBytes(to: Address, next: number, servers: number): number {
  const a = packedAddressSize(to)
  return HEADER_BYTES + TOKEN_BYTES + a + 1 + next * (32 + a) + 1 + servers * (32 + a)
}

/** A VALUES reply can be as large as a datagram may be. */
export const expectedValuesReplyBytes = MAX_PACKET

export function expectedPongBytes(to: Address): number {
  return HEADER_BYTES + TOKEN_BYTES + packedAddressSize(to)
}
