// The bounded record store of one node: verified records in memory, written through to SQLite
// when a path is given, so that a node that restarts comes back with its data and its peers.
//
// Rules: nothing is stored that does not verify; mutable seqs only move forward; every record
// has an expiry (values: valueTtlMs after their last put; providers: their own expiresAt);
// past maxRecords or maxBytes a put is refused with ERR_STORE_FULL, after purging the expired.
// Records are held as their encoded bytes and decoded on the way out, so a caller that changes
// a record it passed in or got back cannot change what is stored.
import Database from 'better-sqlite3'
import { WeftError } from '../../errors.js'
import { idToHex } from '../../identity/node-id.js'
import { parseAddress, type Address } from '../../wire/address.js'
import {
  bytesEqual, decodeRecord, DEFAULT_LIMITS, encodeRecord, providerId, verifyRecord, type DhtLimits, type DhtRecord,
  type MutableRecord,
} from './records.js'

export const DEFAULT_MAX_RECORDS = 10_000
export const DEFAULT_MAX_BYTES = 16 * 1024 * 1024
/** Providers kept per key. When full, a newcomer that expires later evicts the one expiring first. */
export const DEFAULT_MAX_PROVIDERS_PER_KEY = 20
export const MAX_SAVED_PEERS = 10_000 // a full 256-bucket table of k = 20 is 5,120
export const MAX_PEER_RECORD_BYTES = 512 // a signed peer record with 8 IPv6 addresses is 258
const SCHEMA_VERSION = 1

export interface RecordStoreOptions {
  maxRecords?: number
  maxBytes?: number // sum of the encoded sizes of the records held
  maxProvidersPerKey?: number
  limits?: Partial<DhtLimits>
  path?: string // SQLite file; absent: memory only
  /** Unix ms at open, to drop what expired while the node was down (default: Date.now()). */
  now?: number
}

export interface StoredEntry {
  key: Uint8Array
  record: DhtRecord
  storedAt: number // time of the last put that stored or refreshed it (re-replication can skip fresh ones)
  expiresAt: number
}

export interface SavedPeer {
  id: Uint8Array
  address: Address
  lastSeen: number
  record?: Uint8Array // the peer's encoded signed peer record, when known
}

const KIND_NUMBER = { immutable: 1, mutable: 2, provider: 3 } as const
const EMPTY = new Uint8Array(0)

// One slot per (key, kind, provider id): a key can hold a value and providers side by side (a
// content hash is both an immutable key and what providers announce).
interface Entry {
  key: Uint8Array
  kind: DhtRecord['kind']
  provider: Uint8Array // provider id, empty for values
  bytes: Uint8Array // encodeRecord(record)
  storedAt: number
  expiresAt: number
}

type Row = { key: Uint8Array; kind: number; provider: Uint8Array; bytes: Uint8Array; stored_at: number; expires_at: number }

const hex = (b: Uint8Array): string => idToHex(b)
const full = (message: string): WeftError => new WeftError('ERR_STORE_FULL', message)

export class RecordStore {
  readonly limits: Readonly<DhtLimits>
  readonly maxRecords: number
  readonly maxBytes: number
  readonly maxProvidersPerKey: number
  /** Rows dropped at open because they had expired or no longer verified. */
  readonly droppedOnOpen: number = 0
  private readonly byKey = new Map<string, Entry[]>()
  private count = 0
  private total = 0
  private memoryPeers: SavedPeer[] = []
  private closed = false
  private readonly path: string | undefined
  private readonly db: Database.Database | undefined
  private readonly sql: {
    upsert: Database.Statement; remove: Database.Statement; removeKey: Database.Statement; expire: Database.Statement
    insertPeer: Database.Statement; clearPeers: Database.Statement; allPeers: Database.Statement
  } | undefined

  constructor(options: RecordStoreOptions = {}) {
    this.limits = Object.freeze({ ...DEFAULT_LIMITS, ...options.limits })
    this.maxRecords = positive(options.maxRecords ?? DEFAULT_MAX_RECORDS, 'maxRecords')
    this.maxBytes = positive(options.maxBytes ?? DEFAULT_MAX_BYTES, 'maxBytes')
    this.maxProvidersPerKey = positive(options.maxProvidersPerKey ?? DEFAULT_MAX_PROVIDERS_PER_KEY, 'maxProvidersPerKey')
    this.path = options.path
    if (options.path === undefined) return
    try {
      this.db = new Database(options.path)
      const version = this.db.pragma('user_version', { simple: true }) as number
      if (version !== 0 && version !== SCHEMA_VERSION) throw new Error(`schema version ${version}, this node reads ${SCHEMA_VERSION}`)
      this.db.pragma('journal_mode = WAL')
      this.db.pragma('synchronous = NORMAL') // WAL keeps the file consistent; a power cut may lose the last puts
      this.db.exec(`
        CREATE TABLE IF NOT EXISTS records (
          key BLOB NOT NULL, kind INTEGER NOT NULL, provider BLOB NOT NULL, bytes BLOB NOT NULL,
          stored_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
          PRIMARY KEY (key, kind, provider)) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS records_expiry ON records (expires_at);
        CREATE TABLE IF NOT EXISTS peers (
          id BLOB PRIMARY KEY, address TEXT NOT NULL, last_seen INTEGER NOT NULL, record BLOB) WITHOUT ROWID;
        PRAGMA user_version = ${SCHEMA_VERSION};`)
      this.sql = {
        upsert: this.db.prepare('INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?, ?, ?)'),
        remove: this.db.prepare('DELETE FROM records WHERE key = ? AND kind = ? AND provider = ?'),
        removeKey: this.db.prepare('DELETE FROM records WHERE key = ?'),
        expire: this.db.prepare('DELETE FROM records WHERE expires_at <= ?'),
        insertPeer: this.db.prepare('INSERT OR REPLACE INTO peers VALUES (?, ?, ?, ?)'),
        clearPeers: this.db.prepare('DELETE FROM peers'),
        allPeers: this.db.prepare('SELECT id, address, last_seen, record FROM peers ORDER BY last_seen DESC LIMIT ?'),
      }
      // Longest-lived first, so that if the bounds shrank since the last run the freshest stay.
      const rows = this.db.prepare('SELECT * FROM records ORDER BY expires_at DESC').all() as Row[]
      this.droppedOnOpen = this.load(rows, options.now ?? Date.now())
    } catch (err) {
      try { this.db?.close() } catch { /* already failing */ }
      this.closed = true
      throw new WeftError('ERR_STORE_CORRUPT', `cannot open the record store ${options.path}: ${(err as Error).message}`, { cause: err })
    }
  }

  /** Records held. */
  get size(): number { return this.count }
  /** Encoded bytes held. */
  get bytes(): number { return this.total }

  /**
   * Verifies and stores `record` under `key`. 'stored': new content; 'refreshed': the same
   * content again, its expiry pushed back. Throws the verifyRecord codes, ERR_STALE_SEQ,
   * ERR_CAS_MISMATCH (`cas`: the seq the writer expects to replace; nothing held is a mismatch),
   * ERR_STORE_FULL.
   */
  put(key: Uint8Array, record: DhtRecord, now: number, opts: { cas?: number; ttlMs?: number } = {}): 'stored' | 'refreshed' {
    this.open()
    verifyRecord(key, record, now, this.limits)
    const bytes = encodeRecord(record)
    const provider = record.kind === 'provider' ? providerId(record) : EMPTY
    // `ttlMs` (never above valueTtlMs) keeps cached copies away from the key short-lived.
    const expiresAt = record.kind === 'provider' ? record.expiresAt : now + Math.min(opts.ttlMs ?? this.limits.valueTtlMs, this.limits.valueTtlMs)
    const entry: Entry = { key: key.slice(), kind: record.kind, provider, bytes, storedAt: now, expiresAt }
    const list = this.live(key, now)
    const old = list.find((e) => e.kind === record.kind && bytesEqual(e.provider, provider))

    if (opts.cas !== undefined) {
      if (record.kind !== 'mutable') throw new WeftError('ERR_BAD_ARGUMENT', 'cas applies to mutable records only')
      const held = old && (decodeRecord(old.bytes) as { seq: number }).seq
      if (held !== opts.cas) {
        throw new WeftError('ERR_CAS_MISMATCH', `cas ${opts.cas} but the held seq is ${held === undefined ? 'none (no record)' : held}`)
      }
    }
    if (old && bytesEqual(old.bytes, bytes)) {
      // A provider's expiresAt is its own, unchanged; a short-lived cache put never shortens a copy.
      this.write(old, { ...old, storedAt: now, expiresAt: Math.max(old.expiresAt, expiresAt) }, [])
      return 'refreshed'
    }
    if (old && record.kind === 'mutable') {
      const held = decodeRecord(old.bytes) as MutableRecord
      // A reused seq is refused even with another value: the issue asks for it, and a
      // publisher that signs two values under one seq is at fault (readers still agree, by newerThan).
      if (record.seq <= held.seq) {
        throw new WeftError('ERR_STALE_SEQ', record.seq < held.seq
          ? `seq ${record.seq} is lower than the held ${held.seq}`
          : `seq ${record.seq} is already held with another value`)
      }
    }
    if (old && record.kind === 'provider') {
      const held = decodeRecord(old.bytes) as { expiresAt: number }
      if (record.expiresAt <= held.expiresAt) throw new WeftError('ERR_STALE_SEQ', 'a provider record expiring no later is already held')
    }

    // Room: a replacement frees its old slot; a new provider may evict the one expiring first.
    const evict: Entry[] = []
    if (!old && record.kind === 'provider') {
      const providers = list.filter((e) => e.kind === 'provider')
      if (providers.length >= this.maxProvidersPerKey) {
        const first = providers.reduce((a, b) => (b.expiresAt < a.expiresAt ? b : a))
        if (first.expiresAt >= expiresAt) throw full(`key already has ${providers.length} providers that expire no sooner`)
        evict.push(first)
      }
    }
    const freedRecords = (old ? 1 : 0) + evict.length
    const freedBytes = (old ? old.bytes.length : 0) + evict.reduce((n, e) => n + e.bytes.length, 0)
    const fits = (): boolean => this.count - freedRecords + 1 <= this.maxRecords && this.total - freedBytes + bytes.length <= this.maxBytes
    if (!fits()) this.expire(now)
    if (!fits()) {
      throw full(`store holds ${this.count} records (max ${this.maxRecords}) and ${this.total} bytes (max ${this.maxBytes})`)
    }
    this.write(old, entry, evict)
    return 'stored'
  }

  /** The live records under `key` (values first, then providers, latest-expiring first); [] when none. */
  get(key: Uint8Array, now: number): DhtRecord[] {
    this.open()
    return this.live(key, now)
      .slice()
      .sort((a, b) => (a.kind === 'provider' ? 1 : 0) - (b.kind === 'provider' ? 1 : 0) || b.expiresAt - a.expiresAt)
      .map((e) => decodeRecord(e.bytes))
  }

  /** Drops every expired record; returns how many. */
  expire(now: number): number {
    this.open()
    if (this.sql) this.run(() => this.sql!.expire.run(now)) // the file first: if it fails, memory still matches it
    let dropped = 0
    for (const [k, list] of this.byKey) {
      const keep = list.filter((e) => e.expiresAt > now)
      if (keep.length === list.length) continue
      for (const e of list) if (e.expiresAt <= now) this.account(e, -1)
      dropped += list.length - keep.length
      if (keep.length) this.byKey.set(k, keep)
      else this.byKey.delete(k)
    }
    return dropped
  }

  /** Every held record (expired ones too until expire() runs), for republishing and re-replication. */
  *entries(): IterableIterator<StoredEntry> {
    const all = [...this.byKey.values()].flat() // a snapshot: the caller may put while iterating
    for (const e of all) yield { key: e.key.slice(), record: decodeRecord(e.bytes), storedAt: e.storedAt, expiresAt: e.expiresAt }
  }

  /** Drops every record under `key`; returns how many. */
  delete(key: Uint8Array): number {
    this.open()
    const list = this.byKey.get(hex(key))
    if (!list) return 0
    this.run(() => this.sql?.removeKey.run(key))
    for (const e of list) this.account(e, -1)
    this.byKey.delete(hex(key))
    return list.length
  }

  /** Replaces the saved peers (the node's routing table) with `peers`. */
  savePeers(peers: SavedPeer[]): void {
    this.open()
    if (peers.length > MAX_SAVED_PEERS) throw new WeftError('ERR_TOO_LARGE', `${peers.length} peers exceed the limit of ${MAX_SAVED_PEERS}`)
    for (const p of peers) {
      if (!(p.id instanceof Uint8Array) || p.id.length !== 32) throw new WeftError('ERR_BAD_ID', 'a saved peer id must be 32 bytes')
      parseAddress(p.address)
      if (!Number.isFinite(p.lastSeen)) throw new WeftError('ERR_BAD_ARGUMENT', 'lastSeen must be a number')
      if (p.record && p.record.length > MAX_PEER_RECORD_BYTES) throw new WeftError('ERR_TOO_LARGE', 'peer record too large')
    }
    const copy = peers
      .map((p) => ({ id: p.id.slice(), address: p.address, lastSeen: p.lastSeen, ...(p.record ? { record: p.record.slice() } : {}) }))
      .sort((a, b) => b.lastSeen - a.lastSeen) // loadPeers' order, also in memory
    if (!this.db || !this.sql) { this.memoryPeers = copy; return }
    const sql = this.sql
    this.run(this.db.transaction(() => {
      sql.clearPeers.run()
      for (const p of copy) sql.insertPeer.run(p.id, p.address, p.lastSeen, p.record ?? null)
    }))
  }

  /** The saved peers, most recently seen first; rows that no longer parse are skipped. */
  loadPeers(): SavedPeer[] {
    this.open()
    if (!this.sql) return this.memoryPeers.map((p) => ({ ...p, id: p.id.slice(), ...(p.record ? { record: p.record.slice() } : {}) }))
    const rows = this.run(() => this.sql!.allPeers.all(MAX_SAVED_PEERS)) as { id: unknown; address: unknown; last_seen: unknown; record: unknown }[]
    const out: SavedPeer[] = []
    for (const r of rows) {
      if (!(r.id instanceof Uint8Array) || r.id.length !== 32 || typeof r.address !== 'string' || typeof r.last_seen !== 'number') continue
      try { parseAddress(r.address) } catch { continue }
      const peer: SavedPeer = { id: new Uint8Array(r.id), address: r.address, lastSeen: r.last_seen }
      if (r.record instanceof Uint8Array && r.record.length <= MAX_PEER_RECORD_BYTES) peer.record = new Uint8Array(r.record)
      out.push(peer)
    }
    return out
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    this.byKey.clear()
    this.count = this.total = 0
    try { this.db?.close() } catch { /* nothing left to save: every write went through */ }
  }

  // ---- internals ----------------------------------------------------------------------------

  private open(): void {
    if (this.closed) throw new WeftError('ERR_CLOSED', 'the record store is closed')
  }

  /** The entries under `key`, after dropping the expired ones. */
  private live(key: Uint8Array, now: number): Entry[] {
    const k = hex(key)
    const list = this.byKey.get(k)
    if (!list) return []
    const dead = list.filter((e) => e.expiresAt <= now)
    if (!dead.length) return list
    this.run(() => { for (const e of dead) this.sql?.remove.run(e.key, KIND_NUMBER[e.kind], e.provider) })
    for (const e of dead) this.account(e, -1)
    const keep = list.filter((e) => e.expiresAt > now)
    if (keep.length) this.byKey.set(k, keep)
    else this.byKey.delete(k)
    return keep
  }

  /** Replaces `old` (if any) by `entry` and drops `evict`, in SQLite first (one transaction), then in memory. */
  private write(old: Entry | undefined, entry: Entry, evict: Entry[]): void {
    if (this.db && this.sql) {
      const sql = this.sql
      this.run(this.db.transaction(() => {
        for (const e of evict) sql.remove.run(e.key, KIND_NUMBER[e.kind], e.provider)
        sql.upsert.run(entry.key, KIND_NUMBER[entry.kind], entry.provider, entry.bytes, entry.storedAt, entry.expiresAt)
      }))
    }
    const k = hex(entry.key)
    const gone = new Set<Entry>(evict)
    if (old) gone.add(old)
    const list = (this.byKey.get(k) ?? []).filter((e) => !gone.has(e))
    for (const e of gone) this.account(e, -1)
    list.push(entry)
    this.account(entry, 1)
    this.byKey.set(k, list)
  }

  private account(e: Entry, sign: 1 | -1): void {
    this.count += sign
    this.total += sign * e.bytes.length
  }

  /** Rows from the file go through put's checks again; whatever fails them is deleted. */
  private load(rows: Row[], now: number): number {
    let dropped = 0
    for (const row of rows) {
      try {
        if (!(row.key instanceof Uint8Array) || !(row.bytes instanceof Uint8Array) || !(row.provider instanceof Uint8Array)) {
          throw new Error('row with a wrong column type')
        }
        const record = decodeRecord(row.bytes)
        verifyRecord(row.key, record, now, this.limits)
        const provider = record.kind === 'provider' ? providerId(record) : EMPTY
        if (KIND_NUMBER[record.kind] !== row.kind || !bytesEqual(provider, row.provider)) throw new Error('row does not match its record')
        // A value's expiry can only be as far ahead as a put now would set it (the file is not trusted).
        const expiresAt = record.kind === 'provider' ? record.expiresAt : Math.min(Number(row.expires_at), now + this.limits.valueTtlMs)
        if (!(expiresAt > now)) throw new Error('expired')
        const list = this.byKey.get(hex(row.key)) ?? []
        if (this.count + 1 > this.maxRecords || this.total + row.bytes.length > this.maxBytes) throw new Error('over the bounds')
        if (record.kind === 'provider' && list.filter((e) => e.kind === 'provider').length >= this.maxProvidersPerKey) throw new Error('too many providers')
        const storedAt = Number.isSafeInteger(row.stored_at) ? Math.min(row.stored_at, now) : now
        const entry: Entry = { key: new Uint8Array(row.key), kind: record.kind, provider, bytes: new Uint8Array(row.bytes), storedAt, expiresAt }
        // Write back a corrected expiry, or expire() would leave the row for the next open.
        if (expiresAt !== row.expires_at) this.sql!.upsert.run(row.key, row.kind, row.provider, row.bytes, storedAt, expiresAt)
        list.push(entry)
        this.byKey.set(hex(row.key), list)
        this.account(entry, 1)
      } catch {
        dropped++
        this.db!.prepare('DELETE FROM records WHERE key = ? AND kind = ? AND provider = ?').run(row.key, row.kind, row.provider)
      }
    }
    return dropped
  }

  /** Runs a SQLite call; its failure (disk full, file damaged under us) becomes ERR_STORE_CORRUPT. */
  private run<T>(fn: () => T): T {
    try {
      return fn()
    } catch (err) {
      if (err instanceof WeftError) throw err
      throw new WeftError('ERR_STORE_CORRUPT', `record store ${this.path} failed: ${(err as Error).message}`, { cause: err })
    }
  }
}

function positive(n: number, name: string): number {
  if (!Number.isSafeInteger(n) || n <= 0) throw new WeftError('ERR_BAD_ARGUMENT', `${name} must be a positive integer`)
  return n
}
