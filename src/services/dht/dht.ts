// The DHT service: put and get immutable, mutable and provider records on the k nodes nearest
// their key. It rides on any topology's lookup (with GET as the query), so Chord, Pastry and
// the polyring can carry it too. Writes need the round-trip token the storing node handed out
// during the lookup, so nobody stores at a node without having talked to it first.
import { createHash } from 'node:crypto'
import { WeftError } from '../../errors.js'
import type { Identity } from '../../identity/keys.js'
import { idEquals, idFromHex, idToHex, type NodeId } from '../../identity/node-id.js'
import type { Contact, LookupOptions, Topology } from '../../overlay/topology.js'
import { expectedPongBytes, type ReplyBody, type RequestBody, type Rpc } from '../../rpc/rpc.js'
import type { Runtime } from '../../runtime/runtime.js'
import type { Address } from '../../wire/address.js'
import { contactSize, HEADER_BYTES, MAX_PACKET, MessageType, TOKEN_BYTES, type Get, type Put } from '../../wire/messages.js'
import {
  DEFAULT_LIMITS, decodeRecord, encodeRecord, newerThan, providerId, recordKey, signMutable, signProvider, verifyRecord, verifyRecordWith,
  type DhtLimits, type DhtRecord, type MutableRecord, type ProviderRecord,
} from './records.js'
import type { RecordStore } from './store.js'

export interface DhtOptions {
  /** Replication: records go to this many nodes nearest their key. */
  k: number
  limits: DhtLimits
  /** Records one source address may store here per minute. */
  putsPerSourcePerMinute: number
  /** Stored records are pushed again to the nodes now nearest their key this often. */
  replicateIntervalMs: number
  /** Records this node published are published again this often. */
  republishIntervalMs: number
  /** Bound on the records this node republishes as their author. */
  maxOwnRecords: number
  /** Records handed out to the newcomers of one batch (a second's joins), in all. */
  maxHandoff: number
}

export const defaultDhtOptions: DhtOptions = {
  k: 20,
  limits: DEFAULT_LIMITS,
  putsPerSourcePerMinute: 600,
  replicateIntervalMs: 3600_000,
  republishIntervalMs: 3600_000,
  maxOwnRecords: 1000,
  maxHandoff: 500,
}

export interface DhtContext {
  runtime: Runtime
  rpc: Rpc
  topology: Topology
  identity: Identity
  store: RecordStore
  /** This node's address as others reach it. */
  address(): Address
}

export interface PutResult {
  key: string
  /** Nodes that confirmed they stored it. */
  stored: number
}

export interface Provider {
  id: string
  addresses: Address[]
  expiresAt: number
}

export interface DhtCallOptions {
  signal?: AbortSignal
}

// Room left for records in a VALUES reply: header, token, an IPv6 observed address, two counts.
const RECORD_BUDGET = MAX_PACKET - HEADER_BYTES - TOKEN_BYTES - 19 - 2

// Holders nearest a key that hand it to a newcomer: a little redundancy, not k copies.
const HANDOFF_SENDERS = 3
// Newcomers waiting for their records, and how long they wait so that arrivals batch up.
const MAX_NEWCOMERS = 256
const HANDOFF_DELAY_MS = 1000
const STORED: ReplyBody = { type: MessageType.STORED }

/** What a PUT asks of the storing node besides the record. */
interface PutOptions { cas?: number; ttlMs?: number; cache?: boolean }

export function mutableKey(publicKey: Uint8Array, salt: Uint8Array = new Uint8Array(0)): NodeId {
  return new Uint8Array(createHash('sha256').update(publicKey).update(salt).digest())
}

export class Dht {
  readonly options: DhtOptions
  private readonly own = new Map<string, { record: DhtRecord }>() // records we authored, by key hex
  private readonly putsBySource = new Map<Address, { count: number; since: number }>()
  private readonly timers = new Map<string, unknown>()
  /** Newcomers waiting for their records, each with the (wall clock) time it arrived. */
  private readonly newcomers: { peer: Contact; since: number }[] = []
  private handoffTimer: unknown = null
  private closed = false

  constructor(private readonly ctx: DhtContext, options: Partial<DhtOptions> = {}) {
    this.options = { ...defaultDhtOptions, ...options }
    ctx.rpc.handle(MessageType.GET, (_from, req) => this.answerGet(req as Get))
    ctx.rpc.handle(MessageType.PUT, (from, req, verified) => this.answerPut(from, req as Put, verified))
    this.every('replicate', this.options.replicateIntervalMs, () => this.replicate())
    this.every('republish', this.options.republishIntervalMs, () => this.republish())
  }

  /** The topology's order of responsibility for `key`: negative when `a` is nearer than `b`. */
  private closer(key: Uint8Array, a: Uint8Array, b: Uint8Array): number {
    return this.ctx.topology.metric.compare(key, a, b)
  }

  // ---- serving other nodes ----------------------------------------------------------------------

  private answerGet(req: Get): ReplyBody {
    const records: Uint8Array[] = []
    let budget = RECORD_BUDGET
    for (const r of this.ctx.store.get(req.target, this.ctx.runtime.wallClock())) {
      const bytes = encodeRecord(r)
      if (bytes.length + 2 > budget) break
      records.push(bytes)
      budget -= bytes.length + 2
    }
    const contacts: Contact[] = []
    for (const c of this.ctx.topology.closest(req.target, this.options.k + 1)) {
      if (idEquals(c.id, req.sender)) continue
      const size = contactSize(c)
      if (size > budget || contacts.length >= this.options.k) break
      contacts.push(c)
      budget -= size
    }
    return { type: MessageType.VALUES, contacts, records }
  }

  private answerPut(from: Address, req: Put, verified: boolean): ReplyBody | Promise<ReplyBody> {
    if (!verified) throw new WeftError('ERR_BAD_TOKEN', 'a put needs the token this node gave you in a reply (look the key up first)')
    const now = this.ctx.runtime.now()
    let s = this.putsBySource.get(from)
    if (!s || now - s.since >= 60_000) {
      if (this.putsBySource.size >= 4096) this.putsBySource.clear() // bounded; a reset only forgives
      s = { count: 0, since: now }
      this.putsBySource.set(from, s)
    }
    if (++s.count > this.options.putsPerSourcePerMinute) {
      throw new WeftError('ERR_RATE_LIMITED', `more than ${this.options.putsPerSourcePerMinute} puts a minute from ${from}`)
    }
    let record: DhtRecord
    try {
      record = decodeRecord(req.record)
    } catch (err) {
      throw new WeftError('ERR_BAD_MESSAGE', `bad record: ${(err as Error).message}`)
    }
    const key = recordKey(record)
    // A replica keeps the expiry it had (ttlMs); a cache copy fades with distance from the key.
    const ttlMs = req.cache ? Math.min(this.ttlFor(key), req.ttlMs ?? Infinity) : req.ttlMs
    const store = (): ReplyBody => {
      this.ctx.store.put(key, record, this.ctx.runtime.wallClock(), { cas: req.cas, ttlMs })
      return STORED
    }
    if (record.kind === 'immutable') return store()
    // The signature is checked off the event loop; the store's own check then knows the record.
    const { runtime } = this.ctx
    return verifyRecordWith(runtime, key, record, runtime.wallClock(), this.options.limits).then(store)
  }

  /**
   * How long to keep a record: the full TTL on the k nodes nearest its key; on a node farther
   * away (a cache copy left by a get), inversely proportional to the nodes it knows nearer the
   * key, as the Kademlia paper has it, so caches fade with distance.
   */
  private ttlFor(key: NodeId): number {
    const { k, limits } = this.options
    const self = this.ctx.identity.id
    const near = this.ctx.topology.closest(key, k)
    if (near.length < k || this.closer(key, self, near[k - 1].id) <= 0) return limits.valueTtlMs // one of the k
    let nearer = 0
    for (const c of this.ctx.topology.closest(key, 4 * k)) if (this.closer(key, c.id, self) < 0) nearer++
    return nearer < k ? limits.valueTtlMs : Math.round((limits.valueTtlMs * k) / nearer / 2)
  }

  // ---- the library API --------------------------------------------------------------------------

  /** Stores an immutable value; its key is SHA-256(value). */
  async put(value: Uint8Array, options: DhtCallOptions = {}): Promise<PutResult> {
    return this.publish({ kind: 'immutable', value }, options)
  }

  /** Finds an immutable value by key and checks that it hashes to the key. */
  async get(key: string | Uint8Array, options: DhtCallOptions = {}): Promise<Uint8Array> {
    const k = toKey(key)
    const found = await this.query(k, options, (r) => r.kind === 'immutable')
    const hit = found.find((r) => r.kind === 'immutable')
    if (!hit) throw new WeftError('ERR_NOT_FOUND', `no value for key ${idToHex(k)}`)
    return hit.value
  }

  /**
   * Publishes a value under (the identity's public key, salt). Without `seq`, the next one after
   * the newest found. With `cas`, storing nodes refuse unless they hold exactly that seq.
   */
  async putMutable(identity: Identity, value: Uint8Array, options: DhtCallOptions & { salt?: Uint8Array; seq?: number; cas?: number } = {}): Promise<PutResult & { seq: number }> {
    let seq = options.seq
    if (seq === undefined) {
      const current = await this.getMutable(identity.publicKey, options).catch((err) => {
        if (err instanceof WeftError && err.code === 'ERR_NOT_FOUND') return null
        throw err
      })
      seq = current ? current.seq + 1 : 0
    }
    const record = signMutable(identity, value, seq, options.salt)
    return { ...(await this.publish(record, options, options.cas)), seq }
  }

  /** The newest valid record under (public key, salt), after the lookup has heard from its nearest nodes. */
  async getMutable(publicKey: Uint8Array, options: DhtCallOptions & { salt?: Uint8Array } = {}): Promise<{ value: Uint8Array; seq: number; key: string }> {
    const key = mutableKey(publicKey, options.salt)
    const found = await this.query(key, options, () => false)
    let best: MutableRecord | null = null
    for (const r of found) if (r.kind === 'mutable' && (!best || newerThan(r, best))) best = r
    if (!best) throw new WeftError('ERR_NOT_FOUND', `no mutable record for key ${idToHex(key)}`)
    return { value: best.value, seq: best.seq, key: idToHex(key) }
  }

  /** Says "this node provides `key`", signed by this node, for providerTtlMs. */
  async announce(key: string | Uint8Array, options: DhtCallOptions = {}): Promise<PutResult> {
    const k = toKey(key)
    const expiresAt = this.ctx.runtime.wallClock() + this.options.limits.providerTtlMs
    return this.publish(signProvider(this.ctx.identity, k, [this.ctx.address()], expiresAt), options)
  }

  /** The live providers of `key`, each with its addresses. */
  async providers(key: string | Uint8Array, options: DhtCallOptions = {}): Promise<Provider[]> {
    const k = toKey(key)
    const found = await this.query(k, options, () => false)
    const byId = new Map<string, ProviderRecord>()
    for (const r of found) {
      if (r.kind !== 'provider') continue
      const id = idToHex(providerId(r))
      const had = byId.get(id)
      if (!had || r.expiresAt > had.expiresAt) byId.set(id, r)
    }
    return [...byId.entries()].map(([id, r]) => ({ id, addresses: r.addresses, expiresAt: r.expiresAt }))
  }

  // ---- lookups and stores ----------------------------------------------------------------------

  /**
   * Looks `key` up with GET, verifying every record before it is kept. `enough` ends the lookup
   * at the first record it accepts (an immutable value needs no second opinion). Values found
   * away from the key are cached one step back: at the nearest node that answered without one.
   */
  private async query(key: NodeId, options: DhtCallOptions, enough: (r: DhtRecord) => boolean): Promise<DhtRecord[]> {
    const now = this.ctx.runtime.wallClock()
    const found: DhtRecord[] = this.ctx.store.get(key, now) // this node may hold it already
    if (found.some(enough)) return found
    let nearestWithout: Contact | null = null
    const seen = new Set<string>() // the same record from many holders is checked once
    const lookup: LookupOptions = {
      signal: options.signal,
      query: {
        request: { type: MessageType.GET, target: key },
        onReply: (from, reply) => {
          if (reply.type !== MessageType.VALUES) return false
          let stop = false
          for (const bytes of reply.records) {
            const id = Buffer.from(bytes).toString('base64')
            if (seen.has(id)) continue
            seen.add(id)
            let r: DhtRecord
            try {
              r = decodeRecord(bytes)
              verifyRecord(key, r, now, this.options.limits)
            } catch {
              continue // a bad record from a peer is dropped, never returned
            }
            found.push(r)
            if (enough(r)) stop = true
          }
          if (reply.records.length === 0 && (!nearestWithout || this.closer(key, from.id, nearestWithout.id) < 0)) nearestWithout = from
          return stop
        },
      },
    }
    await this.ctx.topology.lookup(key, lookup)
    const hit = found.find(enough)
    const cacheAt = nearestWithout as Contact | null
    if (hit && cacheAt && !idEquals(cacheAt.id, this.ctx.identity.id)) void this.store(cacheAt, encodeRecord(hit), { cache: true }).catch(() => {})
    return found
  }

  /** Stores a record signed elsewhere (e.g. by a client that keeps its key to itself). */
  async putRecord(record: DhtRecord, options: DhtCallOptions & { cas?: number } = {}): Promise<PutResult> {
    return this.publish(record, options, options.cas)
  }

  /** Stores a record on the k nodes nearest its key (this one too, if it is among them). */
  private async publish(record: DhtRecord, options: DhtCallOptions, cas?: number): Promise<PutResult> {
    const key = recordKey(record)
    verifyRecord(key, record, this.ctx.runtime.wallClock(), this.options.limits)
    const bytes = encodeRecord(record)
    const hex = idToHex(key)
    if (this.own.size < this.options.maxOwnRecords || this.own.has(hex)) this.own.set(hex, { record })
    const stored = await this.replicateTo(key, bytes, record, options, { cas })
    return { key: hex, stored }
  }

  /** A strict lookup (every one of the k nearest answered, so we hold their tokens), then PUTs. */
  private async replicateTo(key: NodeId, bytes: Uint8Array, record: DhtRecord, options: DhtCallOptions, put: PutOptions = {}): Promise<number> {
    const result = await this.ctx.topology.lookup(key, { signal: options.signal, verify: this.options.k })
    const targets = result.closest.slice(0, this.options.k)
    const body = putBody(bytes, put) // one request body for all k PUTs
    // Callbacks, not a promise per target: this is the hot path of every put.
    return new Promise((resolve, reject) => {
      let left = targets.length
      let stored = 0
      let firstError: unknown = null
      const done = (err: unknown): void => {
        if (err) firstError ??= err
        else stored++
        if (--left > 0) return
        if (stored > 0) resolve(stored)
        else reject(firstError instanceof WeftError ? firstError : new WeftError('ERR_NOT_FOUND', `no node stored key ${idToHex(key)}`))
      }
      if (left === 0) { left = 1; done(null); return }
      for (const c of targets) {
        if (!idEquals(c.id, this.ctx.identity.id)) { this.storeAt(c, body, done); continue }
        try {
          this.ctx.store.put(key, record, this.ctx.runtime.wallClock(), put)
          done(null)
        } catch (err) {
          done(err)
        }
      }
    })
  }

  private store(c: Contact, record: Uint8Array, options: PutOptions = {}): Promise<void> {
    return new Promise((resolve, reject) => this.storeAt(c, putBody(record, options), (err) => (err ? reject(err) : resolve())))
  }

  /** PUTs at `c`; a token gone stale since the lookup is renewed by a ping (rpc.requestProven). */
  private storeAt(c: Contact, body: RequestBody, cb: (err: WeftError | null) => void): void {
    this.ctx.rpc.requestProven(c.address, body, 0, (err) => cb(err))
  }

  // ---- keeping records alive ---------------------------------------------------------------------

  /**
   * Runs `fn` every `ms`, timed from the end of the last run. The first run is at a random point
   * of the first period, so nodes that started together do not all replicate at once (and the
   * first to push a key spares the others: see replicate()).
   */
  private every(name: string, ms: number, fn: () => Promise<void>): void {
    const tick = (): void => {
      if (this.closed) return
      void fn().catch(() => {}).finally(() => {
        if (!this.closed) this.timers.set(name, this.ctx.runtime.setTimeout(tick, ms))
      })
    }
    this.timers.set(name, this.ctx.runtime.setTimeout(tick, ms / 2 + this.ctx.runtime.random.float() * (ms / 2)))
  }

  /**
   * Pushes every stored record to the nodes now nearest its key (they may have changed). A record
   * stored here within the last half period was just pushed by another holder: skip it (as the
   * Kademlia paper does), so a key costs about one push per period, not k.
   */
  async replicate(): Promise<void> {
    const now = this.ctx.runtime.wallClock()
    this.ctx.store.expire(now)
    const entries = [...this.ctx.store.entries()]
    for (const e of entries) {
      if (this.closed) return
      if (now - e.storedAt < this.options.replicateIntervalMs / 2) continue
      // A replica keeps its expiry: only the author's republish gives a record a new lease.
      const ttlMs = Math.max(0, Math.min(0xffffffff, Math.round(e.expiresAt - now)))
      await this.replicateTo(e.key, encodeRecord(e.record), e.record, {}, { ttlMs }).catch(() => {})
    }
  }

  /**
   * A node joined (its self-lookup reached us; a contact that is merely new to our table may
   * well hold the records already): queue it to be handed the records it should now hold. Newcomers are handled
   * together a moment later, so a network that is filling up costs one table query per record
   * per batch, not per newcomer.
   */
  welcome(peer: Contact): void {
    // The id is only claimed (v1 has no id proof), so: bounded, deduplicated, and a ping proves
    // the address before anything is sent; a batch hands out at most maxHandoff records in all.
    if (this.closed || this.newcomers.length >= MAX_NEWCOMERS || this.newcomers.some((n) => idEquals(n.peer.id, peer.id))) return
    // A copy: the id may be a view into the datagram it came in.
    this.newcomers.push({ peer: { id: new Uint8Array(peer.id), address: peer.address }, since: this.ctx.runtime.wallClock() })
    if (this.handoffTimer === null) {
      this.handoffTimer = this.ctx.runtime.setTimeout(() => { void this.handoff().catch(() => {}) }, HANDOFF_DELAY_MS)
    }
  }

  /**
   * Hands each queued newcomer the records for which it is among the k nodes nearest the key
   * that this node knows, if this node is among the nearest few holders (so a few nodes, not k,
   * send each record). Only records stored here before the newcomer arrived: one stored since
   * came from a put whose lookup could already see the newcomer (and stored there too, if it
   * is among the k nearest). Bounded per newcomer. Returns the records sent.
   */
  async handoff(): Promise<number> {
    this.handoffTimer = null
    const waiting = this.newcomers.splice(0)
    if (waiting.length === 0) return 0
    const batch = waiting.map((n) => n.peer)
    const isNew = (id: NodeId): boolean => batch.some((p) => idEquals(p.id, id))
    const self = this.ctx.identity.id
    const now = this.ctx.runtime.wallClock()
    const due = batch.map(() => [] as { record: DhtRecord; ttlMs: number }[])
    let budget = this.options.maxHandoff
    const lastArrival = Math.max(...waiting.map((n) => n.since))
    for (const e of this.ctx.store.entries()) {
      if (budget <= 0) break
      if (e.expiresAt <= now) continue // never revive what has expired
      if (e.storedAt >= lastArrival) continue // every newcomer was there when it was stored
      const near = this.ctx.topology.closest(e.key, this.options.k)
      const edge = near.length < this.options.k ? null : near[near.length - 1]
      // Some nodes nearer than this one may be newcomers that do not hold it yet: not counted.
      let nearerHolders = 0
      for (const c of near) if (!isNew(c.id) && this.closer(e.key, c.id, self) < 0) nearerHolders++
      if (nearerHolders >= HANDOFF_SENDERS) continue
      batch.forEach((p, i) => {
        if (e.storedAt >= waiting[i].since) return
        if (budget > 0 && (!edge || this.closer(e.key, p.id, edge.id) <= 0)) { due[i].push({ record: e.record, ttlMs: Math.min(0xffffffff, Math.round(e.expiresAt - now)) }); budget-- }
      })
    }
    let sent = 0
    await Promise.all(batch.map(async (p, i) => {
      if (due[i].length === 0 || this.closed) return
      try {
        await this.ctx.rpc.requestAsync(p.address, { type: MessageType.PING }, expectedPongBytes(p.address)) // its token
      } catch {
        return // gone already, or never there
      }
      for (const { record, ttlMs } of due[i]) {
        if (this.closed) break
        await this.store(p, encodeRecord(record), { ttlMs }).then(() => sent++, () => {})
      }
    }))
    return sent
  }

  /** Publishes again what this node authored, so it outlives the nodes that held it. */
  async republish(): Promise<void> {
    for (const { record } of [...this.own.values()]) {
      if (this.closed) return
      if (record.kind === 'provider') continue // an announce is renewed by announcing again
      await this.replicateTo(recordKey(record), encodeRecord(record), record, {}).catch(() => {})
    }
  }

  close(): void {
    this.closed = true
    for (const t of this.timers.values()) this.ctx.runtime.clearTimeout(t as object)
    if (this.handoffTimer !== null) this.ctx.runtime.clearTimeout(this.handoffTimer as object)
  }
}

function putBody(record: Uint8Array, o: PutOptions): RequestBody {
  return { type: MessageType.PUT, record, cas: o.cas, ttlMs: o.ttlMs, cache: o.cache }
}

function toKey(key: string | Uint8Array): NodeId {
  if (typeof key === 'string') return idFromHex(key) // keys and node ids share one space
  if (key.length !== 32) throw new WeftError('ERR_BAD_ID', 'a key must be 32 bytes')
  return key
}
