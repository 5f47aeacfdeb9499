// A Mainline DHT node (BEP 5, BEP 44, BEP 42 as an option, BEP 43's read-only flag), sans-IO: it
// gets a Runtime and a bound Endpoint and never touches sockets or timers itself.
//
// Serving: ping, find_node, get_peers, announce_peer (write tokens bound to the asker's IP),
// get and put (immutable and mutable items; signatures checked off the event loop). Asking:
// iterative lookups with alpha requests in flight over the k nearest, and on top of them
// getPeers, announce, get and put. Bad datagrams are dropped and counted by code; bad queries
// get the KRPC error their BEP names and are counted by code as well.
import { WeftError, type ErrorCode } from '../../errors.js'
import { RateLimiter } from '../../rpc/rate-limit.js'
import { PeerTable } from '../../rpc/peer-table.js'
import type { Endpoint, Runtime, TimerHandle } from '../../runtime/runtime.js'
import { canonicalAddress, type Address } from '../../wire/address.js'
import { bep42Id, bep42Valid, isBep42Exempt } from './bep42.js'
import {
  checkedValue, immutableTarget, MAX_SALT_BYTES, MAX_VALUE_BYTES, mutableTarget, sha1, signedBytes, signItem, toBytes,
  type MainlineItem, type MainlineKeys,
} from './items.js'
import {
  decodeKrpc, decodeValue, encodeError, encodeQuery, encodeResponse, encodeValue, hostOf, ID_BYTES,
  type BValue, type Method, type Query, type QueryArgs, type Reply, type Response,
} from './krpc.js'
import { iterativeLookup, type LookupContact } from './lookup.js'
import { defaultMainlineOptions, type MainlineOptions, type MainlineStats } from './options.js'
import { mainlineRendezvous } from './rendezvous.js'
import { answerQuery, isRefusal, serverError, type Refusal, type ServerContext } from './server.js'
import { MainlineStore } from './store.js'
import { KTable, randomIdInBucket, type MainlineContact, type TableEntry } from './table.js'
import { WriteTokens } from './tokens.js'
import { Transactions } from './transactions.js'

export type { LookupContact, MainlineOptions, MainlineStats }
export { defaultMainlineOptions }

export interface PutOptions {
  v: BValue | string
  /** Mutable: sign with these keys (a Weft Identity will do), or give `k` and `sig` of an item signed before. */
  keys?: MainlineKeys
  k?: Uint8Array
  sig?: Uint8Array
  seq?: number
  salt?: Uint8Array | string
  /**
   * Compare-and-swap: store only if the seq held is this one. When any node near the target holds
   * another, the put is ERR_CAS_MISMATCH even if nodes that held nothing took it: the writer's view is stale.
   */
  cas?: number
}

export interface PutResult { target: Uint8Array; stored: number }

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')
const equal = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i])
const EMPTY = new Uint8Array(0)

export class Mainline {
  readonly id: Uint8Array
  readonly options: Omit<MainlineOptions, 'id'>
  readonly table: KTable
  readonly store: MainlineStore
  readonly stats: MainlineStats = {
    packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, queriesIn: 0, responsesIn: 0, errorsIn: 0, queriesOut: 0, timeouts: 0,
    dropped: 0, droppedByCode: {}, refused: 0, refusedByCode: {}, unexpected: 0, rateLimited: 0, bep42Rejected: 0, handlerErrors: 0,
  }
  /** This node's address as the last answering node saw it (the `ip` of BEP 42), if any. */
  observedAddress: Address | null = null
  private readonly runtime: Runtime
  private readonly endpoint: Endpoint
  private readonly server: ServerContext
  private readonly limiter: RateLimiter
  private readonly transactions: Transactions
  private readonly verifying = new Set<Address>()
  private upkeepTimer: TimerHandle | null = null
  private closed = false

  /** Takes the endpoint: messages on it are this node's, and close() closes it. */
  constructor(ctx: { runtime: Runtime; endpoint: Endpoint }, options: Partial<MainlineOptions> = {}) {
    this.runtime = ctx.runtime
    this.endpoint = ctx.endpoint
    const { id, ...rest } = options
    this.options = { ...defaultMainlineOptions, ...rest }
    const o = this.options
    if (!Number.isInteger(o.k) || o.k < 1 || o.k > 32) throw new WeftError('ERR_BAD_ARGUMENT', 'mainline k must be an integer from 1 to 32')
    if (!Number.isInteger(o.alpha) || o.alpha < 1 || o.alpha > 16) throw new WeftError('ERR_BAD_ARGUMENT', 'mainline alpha must be an integer from 1 to 16')
    if (id !== undefined && id.length !== ID_BYTES) throw new WeftError('ERR_BAD_ID', `a Mainline node id is ${ID_BYTES} bytes`)
    const host = hostOf(ctx.endpoint.address)
    const publicHost = host !== '0.0.0.0' && host !== '::' && !isBep42Exempt(host)
    this.id = id ? id.slice() : o.bep42 && publicHost ? bep42Id(host, this.runtime.random.bytes(20)) : this.runtime.random.bytes(ID_BYTES)
    this.table = new KTable(this.id, o.k)
    this.store = new MainlineStore(o.store)
    const tokens = new WriteTokens(this.runtime.random, this.runtime.now(), o.tokenPeriodMs)
    this.server = { runtime: this.runtime, id: this.id, table: this.table, store: this.store, tokens, k: o.k, maxValuesPerReply: o.maxValuesPerReply }
    this.limiter = new RateLimiter(o.ratePerSecond, o.rateBurst, new PeerTable(o.rateTable))
    this.transactions = new Transactions(this.runtime, o, this.stats, {
      send: (to, t, q, a) => this.send(to, encodeQuery(t, q, { ...a, id: this.id }, o.readOnly)),
      timedOut: (id) => this.table.failed(id),
      wrongId: (id) => this.table.remove(id), // another node answers at that address now
      answered: (from, r) => {
        if (r.ip) this.observedAddress = r.ip
        this.learn(r.r.id, from)
      },
    })
    this.endpoint.onPacket = (from, bytes) => this.receive(from, bytes)
    this.scheduleUpkeep()
  }

  get address(): Address { return this.endpoint.address }
  get idHex(): string { return hex(this.id) }
  get isClosed(): boolean { return this.closed }
  /** The routing table's contacts. */
  contacts(): TableEntry[] { return this.table.entries() }

  // ---- receiving ---------------------------------------------------------------------------------

  private receive(from: Address, bytes: Uint8Array): void {
    if (this.closed) return
    this.stats.packetsIn++
    this.stats.bytesIn += bytes.length
    const d = decodeKrpc(bytes)
    if (!d.ok) {
      if (d.krpc !== undefined && d.t && !this.options.readOnly) {
        this.count('refused', d.code)
        if (this.allow(from)) this.send(from, encodeError(d.t, d.krpc, d.code === 'ERR_UNKNOWN_TYPE' ? 'Method Unknown' : `Protocol Error: ${d.reason}`))
      } else {
        this.count('dropped', d.code)
      }
      return
    }
    const m = d.message
    if (m.y === 'q') this.onQuery(from, m)
    else this.transactions.settle(from, m)
  }

  /** The per-source budget of answers (anything we send unasked could be used to reflect traffic). */
  private allow(from: Address): boolean {
    if (this.limiter.allow(from, this.runtime.now())) return true
    this.stats.rateLimited++
    return false
  }

  private count(kind: 'dropped' | 'refused', code: ErrorCode): void {
    this.stats[kind]++
    const byCode = kind === 'dropped' ? this.stats.droppedByCode : this.stats.refusedByCode
    byCode[code] = (byCode[code] ?? 0) + 1
  }

  private send(to: Address, bytes: Uint8Array): void {
    this.stats.packetsOut++
    this.stats.bytesOut += bytes.length
    this.endpoint.send(to, bytes)
  }

  // ---- the routing table's upkeep ------------------------------------------------------------------

  private admissible(id: Uint8Array, address: Address): boolean {
    if (!this.options.bep42 || bep42Valid(id, hostOf(address))) return true
    this.stats.bep42Rejected++
    return false
  }

  /** A node answered us from `address`: it goes in the table, or may take a stale contact's place. */
  private learn(id: Uint8Array, address: Address): void {
    if (!this.admissible(id, address)) return
    const now = this.runtime.now()
    if (this.table.seen(id, address, now) !== 'full') return
    const oldest = this.table.oldest(id)
    if (!oldest || (oldest.failures === 0 && now - oldest.seenAt < this.options.refreshIntervalMs)) return
    // The least recently seen contact is questionable: it keeps its place only if it answers.
    if (this.verifying.has(oldest.address) || this.verifying.size >= this.options.maxVerifying) return
    this.verifying.add(oldest.address)
    this.request(oldest.address, 'ping', {}, oldest.id).then(
      () => {},
      () => { this.table.remove(oldest.id); this.table.seen(id, address, this.runtime.now()) },
    ).finally(() => this.verifying.delete(oldest.address))
  }

  /** A node we do not know asked us something: ping it back, and it enters the table if it answers. */
  private heardFrom(id: Uint8Array, from: Address, readOnly: boolean): void {
    if (readOnly || this.table.has(id) || this.verifying.has(from) || this.verifying.size >= this.options.maxVerifying) return
    if (!this.table.hasRoom(id) || !this.admissible(id, from)) return
    this.verifying.add(from)
    this.request(from, 'ping', {}, id).catch(() => {}).finally(() => this.verifying.delete(from))
  }

  private scheduleUpkeep(): void {
    this.upkeepTimer = this.runtime.setTimeout(() => {
      if (this.closed) return
      this.upkeep()
      this.scheduleUpkeep()
    }, this.options.upkeepIntervalMs)
  }

  private upkeep(): void {
    const now = this.runtime.now()
    this.store.sweep(now)
    if (this.table.size === 0 && this.options.bootstrap.length) {
      this.bootstrap().catch(() => {})
      return
    }
    // A few stale buckets per round, so a node that was idle does not burst.
    for (const b of this.table.staleBuckets(now, this.options.refreshIntervalMs).slice(0, 3)) {
      this.findNode(randomIdInBucket(this.id, b, this.runtime.random.bytes(ID_BYTES))).catch(() => {})
    }
  }

  // ---- serving -----------------------------------------------------------------------------------

  private onQuery(from: Address, q: Query): void {
    this.stats.queriesIn++
    if (this.options.readOnly) return // BEP 43: a read-only node does not answer
    if (!this.allow(from)) return
    this.heardFrom(q.a.id, from, q.ro)
    const answer = (outcome: Reply | Refusal): void => {
      if (this.closed) return
      if (isRefusal(outcome)) {
        this.count('refused', outcome.code)
        this.send(from, encodeError(q.t, outcome.krpc, outcome.text))
      } else {
        this.send(from, encodeResponse(q.t, outcome, from))
      }
    }
    const failed = (err: unknown): void => { this.stats.handlerErrors++; answer(serverError(err)) }
    try {
      const outcome = answerQuery(this.server, from, q)
      if (outcome instanceof Promise) outcome.then(answer, failed)
      else answer(outcome)
    } catch (err) {
      failed(err)
    }
  }

  // ---- asking ------------------------------------------------------------------------------------

  /**
   * Sends one query and waits for its answer: rejects with ERR_TIMEOUT, with the code of a KRPC
   * error, with ERR_BAD_ID when `expectId` is given and another id answers, ERR_BUSY when the
   * queue is full, ERR_CLOSED after close().
   */
  request(to: Address, q: Method, a: Omit<QueryArgs, 'id'> = {}, expectId: Uint8Array | null = null): Promise<Response> {
    return this.transactions.request(to, q, a, expectId)
  }

  /** Pings a node; its id and the round trip. */
  async ping(address: Address): Promise<{ id: Uint8Array; rttMs: number }> {
    const started = this.runtime.now()
    const r = await this.request(canonicalAddress(address), 'ping')
    return { id: r.r.id, rttMs: this.runtime.now() - started }
  }

  /**
   * An iterative lookup of `target` with find_node, get_peers or get queries (see lookup.ts).
   * `onReply` sees every answer (false ends the lookup); `unranked`: nodes known only by address.
   */
  lookup(target: Uint8Array, q: 'find_node' | 'get_peers' | 'get', onReply?: (from: LookupContact, r: Reply) => boolean | void, unranked: Address[] = []): Promise<LookupContact[]> {
    if (target.length !== ID_BYTES) return Promise.reject(new WeftError('ERR_BAD_ID', `a Mainline target is ${ID_BYTES} bytes`))
    if (this.closed) return Promise.reject(new WeftError('ERR_CLOSED', 'the Mainline node is closed'))
    const o = this.options
    const args: Omit<QueryArgs, 'id'> = q === 'get_peers' ? { infoHash: target } : { target }
    this.table.touch(target, this.runtime.now())
    return iterativeLookup({
      runtime: this.runtime, self: this.id, target, k: o.k, alpha: o.alpha, maxQueries: o.maxLookupQueries, timeoutMs: o.lookupTimeoutMs,
      seeds: this.table.closest(target, o.k), unranked: unranked.map(canonicalAddress),
      ask: (address, id) => this.request(address, q, args, id).then((r) => r.r),
      admissible: (c) => this.admissible(c.id, c.address),
      onReply,
    })
  }

  /** Joins through the given nodes (default: options.bootstrap) with a lookup of our own id; the table's size after. */
  async bootstrap(addresses: Address[] = this.options.bootstrap): Promise<number> {
    const others = addresses.map(canonicalAddress).filter((a) => a !== this.address)
    await this.lookup(this.id, 'find_node', undefined, others)
    if (others.length && this.table.size === 0) throw new WeftError('ERR_BOOTSTRAP_FAILED', `no Mainline bootstrap node answered (${others.join(', ')})`)
    return this.table.size
  }

  /** The k nodes nearest `target` that answered. */
  async findNode(target: Uint8Array): Promise<MainlineContact[]> {
    return (await this.lookup(target, 'find_node')).map(({ id, address }) => ({ id, address }))
  }

  /** Peers announced under `infoHash` ("ip:port"), from the nodes nearest it (and this node's own store). */
  async getPeers(infoHash: Uint8Array): Promise<Address[]> {
    const max = this.options.maxPeersFound
    const found = new Set<Address>(this.store.peers(infoHash, this.runtime.now(), max))
    await this.lookup(infoHash, 'get_peers', (_from, r) => {
      for (const p of r.values ?? []) if (found.size < max) found.add(p)
    })
    return [...found]
  }

  /**
   * Announces this node as a peer of `infoHash` at `port` (default: the port this Mainline node's
   * datagrams come from, BEP 5's implied_port) to the k nodes nearest it. Throws when none took it.
   */
  async announce(infoHash: Uint8Array, port?: number): Promise<{ stored: number }> {
    if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) throw new WeftError('ERR_BAD_ARGUMENT', 'port must be an integer from 1 to 65535')
    const nearest = (await this.lookup(infoHash, 'get_peers')).filter((c) => c.token)
    const args = { infoHash, port: port ?? 0, impliedPort: port === undefined }
    const stored = await this.storeAt(nearest, (c) => this.request(c.address, 'announce_peer', { ...args, token: c.token }, c.id))
    return { stored }
  }

  /** Sends a write to each node; how many took it, or the most telling error when none did. */
  /** `refusedBy`: a refusal with this code from any node fails the write, whoever else took it. */
  private async storeAt(nodes: LookupContact[], write: (c: LookupContact) => Promise<Response>, refusedBy?: ErrorCode): Promise<number> {
    const results = await Promise.allSettled(nodes.map(write))
    const refusal = refusedBy && results.find((r) => r.status === 'rejected' && (r.reason as WeftError).code === refusedBy)
    if (refusal) throw (refusal as PromiseRejectedResult).reason
    const stored = results.filter((r) => r.status === 'fulfilled').length
    if (stored > 0) return stored
    const errors = results.map((r) => (r as PromiseRejectedResult).reason as WeftError)
    // A refusal that says why (stale seq, CAS, signature, size) beats a timeout.
    const telling = errors.find((e) => e.code !== 'ERR_TIMEOUT' && e.code !== 'ERR_BAD_MESSAGE') ?? errors[0]
    throw telling ?? new WeftError('ERR_NOT_FOUND', 'no Mainline node near the target answered')
  }

  /**
   * Reads a BEP 44 item. Immutable: the first value that hashes to `target`. Mutable (pass the
   * salt it was put with, if any): the highest seq whose signature checks. Null when none is found.
   */
  async get(target: Uint8Array, options: { salt?: Uint8Array | string } = {}): Promise<MainlineItem | null> {
    const salt = options.salt === undefined ? undefined : toBytes(options.salt) as Uint8Array
    const local = this.store.getItem(target, this.runtime.now())
    if (local && local.seq === undefined) {
      const v = decodeValue(local.v)
      if (v.ok) return { target, v: v.value }
    }
    let best: MainlineItem | null = null
    if (local && local.seq !== undefined) {
      const v = decodeValue(local.v)
      if (v.ok) best = { target, v: v.value, k: local.k, sig: local.sig, seq: local.seq, salt: local.salt }
    }
    let immutable: MainlineItem | null = null
    const checks: Promise<void>[] = []
    const checked = new Set<string>()
    await this.lookup(target, 'get', (_from, r) => {
      if (r.v === undefined) return
      const vBytes = encodeValue(r.v)
      if (vBytes.length > MAX_VALUE_BYTES) return
      if (!r.k) {
        if (!equal(sha1(vBytes), target)) return
        immutable = { target, v: r.v }
        return false
      }
      const { k, sig, seq, v } = r
      if (!sig || seq === undefined || !equal(mutableTarget(k, salt), target)) return
      if ((best && best.seq! >= seq) || checks.length >= this.options.maxVerifications || checked.has(hex(sig))) return
      checked.add(hex(sig))
      checks.push(this.runtime.verifySignature(k, signedBytes(salt, seq, vBytes), sig).then((ok) => {
        if (ok && (!best || seq > best.seq!)) best = { target, v, k, sig, seq, salt: salt?.length ? salt : undefined }
      }))
    }, [])
    await Promise.all(checks)
    return immutable ?? best
  }

  /**
   * Stores a BEP 44 item on the k nodes nearest its target (and in this node's own store).
   * Immutable: just `v`. Mutable: `v`, `seq`, `keys` (or `k` and `sig`), optionally `salt` and `cas`.
   */
  async put(options: PutOptions): Promise<PutResult> {
    const v = toBytes(options.v)
    const vBytes = checkedValue(v)
    const mutable = options.keys !== undefined || options.k !== undefined
    let args: Omit<QueryArgs, 'id'>
    let target: Uint8Array
    if (!mutable) {
      target = immutableTarget(v)
      args = { v }
    } else {
      const salt = options.salt === undefined ? EMPTY : toBytes(options.salt) as Uint8Array
      if (!(salt instanceof Uint8Array)) throw new WeftError('ERR_BAD_ARGUMENT', 'salt must be bytes or a string')
      if (salt.length > MAX_SALT_BYTES) throw new WeftError('ERR_VALUE_TOO_LARGE', `salt is ${salt.length} bytes, over ${MAX_SALT_BYTES}`)
      const seq = options.seq
      if (seq === undefined || !Number.isSafeInteger(seq) || seq < 0) throw new WeftError('ERR_BAD_ARGUMENT', 'a mutable put needs seq, an integer from 0')
      if (options.cas !== undefined && (!Number.isSafeInteger(options.cas) || options.cas < 0)) throw new WeftError('ERR_BAD_ARGUMENT', 'cas must be an integer from 0')
      const k = options.keys?.publicKey ?? options.k!
      if (!(k instanceof Uint8Array) || k.length !== 32) throw new WeftError('ERR_BAD_KEY', 'a mutable put needs a 32-byte Ed25519 public key')
      const sig = options.keys ? signItem(options.keys, salt, seq, vBytes) : options.sig
      if (!(sig instanceof Uint8Array) || sig.length !== 64) throw new WeftError('ERR_BAD_SIGNATURE', 'a mutable put needs keys, or a 64-byte sig')
      if (!options.keys && !(await this.runtime.verifySignature(k, signedBytes(salt, seq, vBytes), sig))) {
        throw new WeftError('ERR_BAD_SIGNATURE', 'sig does not sign this salt, seq and v under k')
      }
      target = mutableTarget(k, salt)
      args = { v, k, sig, seq, salt: salt.length ? salt : undefined, cas: options.cas }
    }
    const nearest = (await this.lookup(target, 'get')).filter((c) => c.token)
    const stored = await this.storeAt(nearest, (c) => this.request(c.address, 'put', { ...args, token: c.token }, c.id), args.cas !== undefined ? 'ERR_CAS_MISMATCH' : undefined)
    try {
      // A copy here too, once the nodes nearest the target took it (they decide, not we).
      this.store.putItem({ target, v: vBytes, k: args.k, sig: args.sig, seq: args.seq, salt: args.salt }, this.runtime.now())
    } catch {
      // Ours holds something newer or is full: the network's copies are what count.
    }
    return { target, stored }
  }

  // ---- Weft on Mainline --------------------------------------------------------------------------

  /** Weft peers ("ip:port" of their Weft sockets) announced under the network's rendezvous infohash. */
  findWeftPeers(network: string): Promise<Address[]> {
    return this.getPeers(mainlineRendezvous(network))
  }

  /** Announces a Weft socket's port under the network's rendezvous infohash. */
  announceWeft(network: string, weftPort: number): Promise<{ stored: number }> {
    return this.announce(mainlineRendezvous(network), weftPort)
  }

  /** Stops timers, fails what is pending with ERR_CLOSED and closes the endpoint. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.upkeepTimer) this.runtime.clearTimeout(this.upkeepTimer)
    this.transactions.close()
    await this.endpoint.close()
  }
}
