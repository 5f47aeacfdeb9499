// The record store: seqs only forward, compare-and-swap, providers per key, expiry, bounds, and
// persistence in SQLite (reopen, expired dropped, tampered rows dropped, corrupt files refused).
// Deterministic: seeded identities and explicit times; fast-check from WEFT_SEED (default 42).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import fc from 'fast-check'
import { check } from './helpers/property.js'
import { WeftError, type ErrorCode } from '../src/errors.js'
import { identityFromSeed } from '../src/identity/keys.js'
import {
  DEFAULT_LIMITS, encodeRecord, recordKey, signMutable, signProvider, type DhtRecord, type ImmutableRecord,
} from '../src/services/dht/records.js'
import { DEFAULT_MAX_PROVIDERS_PER_KEY, RecordStore, type SavedPeer } from '../src/services/dht/store.js'

const isCode = (code: ErrorCode) => (e: unknown) => e instanceof WeftError && e.code === code
const seedOf = (n: number) => { const s = new Uint8Array(32); s[0] = n >> 8; s[1] = n & 0xff; return s }
const identities = Array.from({ length: DEFAULT_MAX_PROVIDERS_PER_KEY + 2 }, (_, i) => identityFromSeed(seedOf(i + 1)))
const alice = identities[0]
const NOW = 1_700_000_000_000
const HOUR = 3600_000
const TTL = DEFAULT_LIMITS.valueTtlMs
const sha = (b: Uint8Array) => new Uint8Array(createHash('sha256').update(b).digest())
const bytes = (n: number, fill = 7) => new Uint8Array(n).fill(fill)
const immutable = (value: Uint8Array): ImmutableRecord => ({ kind: 'immutable', value })
const CONTENT = sha(bytes(1, 42)) // what providers announce

function put(store: RecordStore, r: DhtRecord, now = NOW, opts?: { cas?: number }): 'stored' | 'refreshed' {
  return store.put(recordKey(r), r, now, opts)
}

function withTempDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'weft-dht-store-'))
  try { fn(dir) } finally { rmSync(dir, { recursive: true, force: true }) }
}

// ---- rules ----------------------------------------------------------------------------------

test('mutable: a strictly higher seq replaces; lower, or the same with another value, is ERR_STALE_SEQ', () => {
  const store = new RecordStore()
  const v = (n: number, seq: number) => signMutable(alice, bytes(4, n), seq)
  assert.equal(put(store, v(1, 1)), 'stored')
  assert.equal(put(store, v(3, 3)), 'stored')
  assert.throws(() => put(store, v(2, 2)), isCode('ERR_STALE_SEQ'))
  assert.throws(() => put(store, v(9, 3)), isCode('ERR_STALE_SEQ'))
  assert.equal(put(store, v(3, 3)), 'refreshed')
  assert.deepEqual(store.get(recordKey(v(3, 3)), NOW), [v(3, 3)])
  assert.equal(store.size, 1)
  // Salts are separate records under separate keys.
  const salted = signMutable(alice, bytes(4), 0, bytes(2))
  assert.equal(put(store, salted), 'stored')
  assert.equal(store.size, 2)
})

test('mutable: compare-and-swap on the held seq', () => {
  const store = new RecordStore()
  const v = (seq: number) => signMutable(alice, bytes(4, seq), seq)
  assert.throws(() => put(store, v(1), NOW, { cas: 0 }), isCode('ERR_CAS_MISMATCH'), 'nothing held is a mismatch')
  put(store, v(1))
  assert.throws(() => put(store, v(2), NOW, { cas: 0 }), isCode('ERR_CAS_MISMATCH'))
  assert.equal(put(store, v(2), NOW, { cas: 1 }), 'stored')
  assert.throws(() => put(store, v(3), NOW, { cas: 1 }), isCode('ERR_CAS_MISMATCH'))
  assert.equal(put(store, v(2), NOW, { cas: 2 }), 'refreshed')
  assert.throws(() => put(store, signMutable(alice, bytes(4, 9), 2), NOW, { cas: 2 }), isCode('ERR_STALE_SEQ'), 'a matching cas still needs a higher seq')
  assert.throws(() => put(store, immutable(bytes(1)), NOW, { cas: 0 }), isCode('ERR_BAD_ARGUMENT'))
  assert.equal((store.get(recordKey(v(2)), NOW)[0] as { seq: number }).seq, 2)
})

test('property: the held seq is the highest accepted one and never goes back', () => {
  check('seq forward', fc.array(fc.tuple(fc.nat(20), fc.nat(2)), { maxLength: 30 }), (ops) => {
    const store = new RecordStore()
    let held = -1
    let heldValue = -1
    for (const [seq, value] of ops) {
      const r = signMutable(alice, Uint8Array.of(value), seq)
      const ok = seq > held || (seq === held && value === heldValue)
      try {
        put(store, r)
        assert.ok(ok, `seq ${seq} accepted over ${held}`)
        held = seq
        heldValue = value
      } catch (err) {
        assert.ok(!ok && err instanceof WeftError && err.code === 'ERR_STALE_SEQ', `seq ${seq} refused over ${held}: ${String(err)}`)
      }
      const got = store.get(recordKey(r), NOW)
      if (held >= 0) assert.equal((got[0] as { seq: number }).seq, held)
    }
  }, 100)
})

test('immutable: a put is idempotent and pushes the expiry back', () => {
  const store = new RecordStore()
  const r = immutable(bytes(10))
  assert.equal(put(store, r, NOW), 'stored')
  assert.equal(put(store, r, NOW + HOUR), 'refreshed')
  assert.equal(store.size, 1)
  const [entry] = [...store.entries()]
  assert.deepEqual(entry, { key: recordKey(r), record: r, storedAt: NOW + HOUR, expiresAt: NOW + HOUR + TTL })
  assert.deepEqual(store.get(recordKey(r), NOW + TTL), [r], 'alive past the first expiry')
})

test('nothing invalid is stored: each bad record is refused with its code and the store stays empty', () => {
  const store = new RecordStore({ limits: { maxValueBytes: 100 } })
  const m = signMutable(alice, bytes(10), 1)
  const p = signProvider(alice, CONTENT, ['10.0.0.1:1'], NOW + HOUR)
  const cases: [ErrorCode, () => unknown][] = [
    ['ERR_HASH_MISMATCH', () => store.put(sha(bytes(1)), immutable(bytes(2)), NOW)],
    ['ERR_BAD_SIGNATURE', () => store.put(recordKey(m), { ...m, value: bytes(10, 8) }, NOW)],
    ['ERR_VALUE_TOO_LARGE', () => put(store, immutable(bytes(101)))],
    ['ERR_EXPIRED', () => put(store, p, NOW + HOUR)],
    ['ERR_BAD_MESSAGE', () => put(store, signMutable(alice, bytes(1), 1, bytes(65)))],
  ]
  for (const [code, fn] of cases) assert.throws(fn, isCode(code), code)
  assert.equal(store.size, 0)
  assert.equal(store.bytes, 0)
})

test('providers: one per (key, provider); a later expiry replaces; a bounded number per key', () => {
  const store = new RecordStore()
  const announce = (i: number, expiresAt: number, address = `10.0.0.${i + 1}:4000`) => signProvider(identities[i], CONTENT, [address], expiresAt)
  assert.equal(put(store, announce(0, NOW + HOUR)), 'stored')
  assert.equal(put(store, announce(0, NOW + HOUR)), 'refreshed')
  assert.equal(put(store, announce(0, NOW + 2 * HOUR, '10.9.9.9:1')), 'stored')
  assert.throws(() => put(store, announce(0, NOW + HOUR)), isCode('ERR_STALE_SEQ'))
  assert.throws(() => put(store, announce(0, NOW + 2 * HOUR, '10.8.8.8:1')), isCode('ERR_STALE_SEQ'))
  assert.equal(store.size, 1)
  assert.deepEqual((store.get(CONTENT, NOW)[0] as { addresses: string[] }).addresses, ['10.9.9.9:1'])

  // Fill the key: provider i expires at NOW + i minutes (provider 0 keeps its 2 h).
  for (let i = 1; i < DEFAULT_MAX_PROVIDERS_PER_KEY; i++) put(store, announce(i, NOW + i * 60_000))
  assert.equal(store.size, DEFAULT_MAX_PROVIDERS_PER_KEY)
  const late = DEFAULT_MAX_PROVIDERS_PER_KEY
  assert.throws(() => put(store, announce(late, NOW + 30_000)), isCode('ERR_STORE_FULL'), 'expires before all the others')
  assert.equal(put(store, announce(late, NOW + HOUR)), 'stored', 'evicts the one expiring first')
  const got = store.get(CONTENT, NOW)
  assert.equal(got.length, DEFAULT_MAX_PROVIDERS_PER_KEY)
  const keys = got.map((r) => Buffer.from((r as { publicKey: Uint8Array }).publicKey).toString('hex'))
  assert.ok(!keys.includes(Buffer.from(identities[1].publicKey).toString('hex')), 'provider 1 (earliest) evicted')
  const expiries = got.map((r) => (r as { expiresAt: number }).expiresAt)
  assert.deepEqual(expiries, expiries.slice().sort((a, b) => b - a), 'latest-expiring first')
})

test('a key holds a value and its providers side by side; get lists the value first', () => {
  const store = new RecordStore()
  const value = bytes(1, 42)
  const p = signProvider(alice, CONTENT, ['10.0.0.1:1'], NOW + HOUR)
  put(store, p)
  put(store, immutable(value))
  assert.deepEqual(store.get(CONTENT, NOW), [immutable(value), p])
  assert.equal(store.delete(CONTENT), 2)
  assert.deepEqual(store.get(CONTENT, NOW), [])
  assert.equal(store.size, 0)
})

test('expiry: values after valueTtlMs, providers at their own expiresAt; expired are never returned', () => {
  const store = new RecordStore({ limits: { valueTtlMs: 1000 } })
  const r = immutable(bytes(3))
  const p = signProvider(alice, CONTENT, [], NOW + 500)
  put(store, r)
  put(store, p)
  assert.deepEqual(store.get(recordKey(r), NOW + 999), [r])
  assert.deepEqual(store.get(CONTENT, NOW + 499), [p])
  assert.deepEqual(store.get(CONTENT, NOW + 500), [])
  assert.equal(store.size, 1, 'get purged the expired provider')
  assert.deepEqual(store.get(recordKey(r), NOW + 1000), [])
  assert.equal(store.size, 0)
  put(store, immutable(bytes(4)))
  put(store, immutable(bytes(5)), NOW + 10)
  assert.equal(store.expire(NOW + 1000), 1)
  assert.equal(store.expire(NOW + 1010), 1)
  assert.equal(store.size, 0)
  assert.equal(store.bytes, 0)
  // An expired mutable record is gone: a lower seq may start again.
  put(store, signMutable(alice, bytes(1), 5))
  assert.equal(put(store, signMutable(alice, bytes(1), 1), NOW + 1000), 'stored')
})

test('bounds: past maxRecords or maxBytes a put is ERR_STORE_FULL, after purging the expired', () => {
  const store = new RecordStore({ maxRecords: 3, limits: { valueTtlMs: 1000 } })
  for (let i = 0; i < 3; i++) put(store, immutable(bytes(1, i)))
  assert.throws(() => put(store, immutable(bytes(1, 3))), isCode('ERR_STORE_FULL'))
  assert.equal(put(store, immutable(bytes(1, 0))), 'refreshed', 'a refresh needs no room')
  put(store, signMutable(alice, bytes(1), 1), NOW + 1000) // the first three expired and were purged
  assert.equal(store.size, 1)
  put(store, immutable(bytes(1, 8)), NOW + 1000)
  put(store, immutable(bytes(1, 9)), NOW + 1000)
  assert.equal(put(store, signMutable(alice, bytes(1), 2), NOW + 1000), 'stored', 'a replacement needs no new slot')
  assert.equal(store.size, 3)

  const encoded = encodeRecord(immutable(bytes(100))).length
  const small = new RecordStore({ maxBytes: 2 * encoded + 10 })
  put(small, immutable(bytes(100, 1)))
  put(small, immutable(bytes(100, 2)))
  assert.equal(small.bytes, 2 * encoded)
  assert.throws(() => put(small, immutable(bytes(100, 3))), isCode('ERR_STORE_FULL'))
  put(small, immutable(bytes(6, 3)))
  assert.equal(small.size, 3)
  // A bigger mutable value replacing a smaller one counts only the difference.
  const m = new RecordStore({ maxBytes: encodeRecord(signMutable(alice, bytes(50), 1)).length })
  put(m, signMutable(alice, bytes(10), 1))
  assert.equal(put(m, signMutable(alice, bytes(50), 2)), 'stored')
  assert.throws(() => put(m, signMutable(alice, bytes(51), 3)), isCode('ERR_STORE_FULL'))
})

test('stored records cannot be changed through the objects passed in or returned', () => {
  const store = new RecordStore()
  const value = bytes(4)
  const r = signMutable(alice, value, 1)
  put(store, r)
  r.value[0] = 99
  const [got] = store.get(recordKey(r), NOW) as { value: Uint8Array }[]
  got.value[1] = 99
  assert.deepEqual(store.get(recordKey(r), NOW), [signMutable(alice, value, 1)])
})

test('a closed store refuses with ERR_CLOSED', () => {
  const store = new RecordStore()
  store.close()
  store.close()
  assert.throws(() => put(store, immutable(bytes(1))), isCode('ERR_CLOSED'))
  assert.throws(() => store.get(sha(bytes(1)), NOW), isCode('ERR_CLOSED'))
  assert.throws(() => store.loadPeers(), isCode('ERR_CLOSED'))
})

test('options are checked', () => {
  assert.throws(() => new RecordStore({ maxRecords: 0 }), isCode('ERR_BAD_ARGUMENT'))
  assert.throws(() => new RecordStore({ maxBytes: -1 }), isCode('ERR_BAD_ARGUMENT'))
})

// ---- persistence ----------------------------------------------------------------------------

test('persistence: records survive close and reopen, with their expiries', () => withTempDir((dir) => {
  const path = join(dir, 'dht.sqlite')
  const store = new RecordStore({ path, now: NOW })
  const records: DhtRecord[] = [
    immutable(bytes(1000)),
    signMutable(alice, bytes(5), 7, bytes(3)),
    signProvider(alice, CONTENT, ['10.0.0.1:1', '[::1]:2'], NOW + HOUR),
    signProvider(identities[1], CONTENT, ['10.0.0.2:1'], NOW + 2 * HOUR),
  ]
  for (const r of records) put(store, r)
  put(store, records[1], NOW + 10) // a refresh is written through too
  const before = [...store.entries()]
  const size = store.bytes
  store.close()

  const again = new RecordStore({ path, now: NOW + 20 })
  assert.equal(again.droppedOnOpen, 0)
  assert.equal(again.size, 4)
  assert.equal(again.bytes, size)
  const sortKey = (e: { expiresAt: number }) => e.expiresAt
  assert.deepEqual([...again.entries()].sort((a, b) => sortKey(a) - sortKey(b)), before.sort((a, b) => sortKey(a) - sortKey(b)))
  assert.deepEqual(again.get(CONTENT, NOW + 20), [records[3], records[2]])
  // Rules hold across the restart.
  assert.throws(() => put(again, signMutable(alice, bytes(5), 6, bytes(3)), NOW + 20), isCode('ERR_STALE_SEQ'))
  again.close()
}))

test('persistence: what expired while the node was down is dropped on open, and deleted from the file', () => withTempDir((dir) => {
  const path = join(dir, 'dht.sqlite')
  const store = new RecordStore({ path, now: NOW })
  put(store, immutable(bytes(1)), NOW)
  put(store, immutable(bytes(2)), NOW + 2 * HOUR)
  put(store, signProvider(alice, CONTENT, [], NOW + HOUR), NOW)
  store.close()
  const later = new RecordStore({ path, now: NOW + TTL + HOUR })
  assert.equal(later.droppedOnOpen, 2)
  assert.deepEqual(later.get(recordKey(immutable(bytes(2))), NOW + TTL + HOUR), [immutable(bytes(2))])
  later.close()
  const db = new Database(path)
  assert.equal((db.prepare('SELECT count(*) AS n FROM records').get() as { n: number }).n, 1)
  db.close()
}))

test('persistence: tampered rows are dropped on open; stretched value expiries are cut back', () => withTempDir((dir) => {
  const path = join(dir, 'dht.sqlite')
  const store = new RecordStore({ path, now: NOW })
  const good = signMutable(alice, bytes(5), 1)
  const bad = immutable(bytes(6))
  const p = signProvider(alice, CONTENT, ['10.0.0.1:1'], NOW + HOUR)
  put(store, good)
  put(store, bad)
  put(store, p)
  store.close()
  const db = new Database(path)
  const tampered = encodeRecord(immutable(bytes(6, 9)))
  db.prepare('UPDATE records SET bytes = ? WHERE key = ?').run(tampered, recordKey(bad))
  const pBytes = encodeRecord(p)
  pBytes[pBytes.length - 1] ^= 1
  db.prepare('UPDATE records SET bytes = ? WHERE key = ?').run(pBytes, CONTENT)
  db.prepare('UPDATE records SET expires_at = ? WHERE key = ?').run(NOW + 100 * TTL, recordKey(good))
  db.prepare('INSERT INTO records VALUES (?, ?, ?, ?, ?, ?)').run(Buffer.from('junk'), 1, Buffer.alloc(0), Buffer.from([1, 2, 3]), NOW, NOW + HOUR)
  db.close()
  const again = new RecordStore({ path, now: NOW })
  assert.equal(again.droppedOnOpen, 3)
  assert.equal(again.size, 1)
  assert.deepEqual([...again.entries()].map((e) => e.expiresAt), [NOW + TTL])
  assert.equal(again.expire(NOW + TTL), 1)
  again.close()
  const last = new RecordStore({ path, now: NOW + TTL })
  assert.equal(last.size, 0, 'the cut-back expiry was written to the file')
  last.close()
}))

test('persistence: shrunk bounds keep the longest-lived records', () => withTempDir((dir) => {
  const path = join(dir, 'dht.sqlite')
  const store = new RecordStore({ path, now: NOW })
  for (let i = 0; i < 5; i++) put(store, immutable(bytes(1, i)), NOW + i)
  store.close()
  const small = new RecordStore({ path, now: NOW + 5, maxRecords: 2 })
  assert.equal(small.size, 2)
  assert.equal(small.droppedOnOpen, 3)
  assert.deepEqual([...small.entries()].map((e) => (e.record as ImmutableRecord).value[0]).sort(), [3, 4])
  small.close()
}))

test('a corrupt or unopenable file is ERR_STORE_CORRUPT with the path in the message', () => withTempDir((dir) => {
  const garbage = join(dir, 'garbage.sqlite')
  writeFileSync(garbage, Buffer.alloc(8192, 0x5a))
  assert.throws(() => new RecordStore({ path: garbage }), (e) => isCode('ERR_STORE_CORRUPT')(e) && (e as Error).message.includes(garbage))
  assert.throws(() => new RecordStore({ path: join(dir, 'missing', 'dht.sqlite') }), isCode('ERR_STORE_CORRUPT'))
  assert.throws(() => new RecordStore({ path: dir }), isCode('ERR_STORE_CORRUPT'))
  const future = join(dir, 'future.sqlite')
  const db = new Database(future)
  db.pragma('user_version = 99')
  db.close()
  assert.throws(() => new RecordStore({ path: future }), (e) => isCode('ERR_STORE_CORRUPT')(e) && /schema version 99/.test((e as Error).message))
  // A file whose records table has another shape.
  const other = join(dir, 'other.sqlite')
  const db2 = new Database(other)
  db2.exec('CREATE TABLE records (x INTEGER)')
  db2.close()
  assert.throws(() => new RecordStore({ path: other }), isCode('ERR_STORE_CORRUPT'))
}))

test('savePeers/loadPeers: replace-all round trip, in memory and in the file', () => withTempDir((dir) => {
  const peers: SavedPeer[] = identities.slice(0, 5).map((id, i) => ({ id: id.id, address: `10.0.0.${i}:${4000 + i}`, lastSeen: NOW + i }))
  peers[2] = { ...peers[2], address: '[2001:db8::2]:4002', record: bytes(100) }
  const byRecent = peers.slice().reverse()
  const memory = new RecordStore()
  assert.deepEqual(memory.loadPeers(), [])
  memory.savePeers(peers)
  assert.deepEqual(memory.loadPeers(), byRecent)

  const path = join(dir, 'dht.sqlite')
  const store = new RecordStore({ path })
  assert.deepEqual(store.loadPeers(), [])
  store.savePeers(peers)
  store.close()
  const again = new RecordStore({ path })
  assert.deepEqual(again.loadPeers(), byRecent)
  again.savePeers(peers.slice(0, 1))
  assert.deepEqual(again.loadPeers(), peers.slice(0, 1), 'replaces, not merges')
  assert.throws(() => again.savePeers([{ ...peers[0], address: 'nowhere' }]), isCode('ERR_BAD_ADDRESS'))
  assert.throws(() => again.savePeers([{ ...peers[0], id: bytes(31) }]), isCode('ERR_BAD_ID'))
  assert.deepEqual(again.loadPeers(), peers.slice(0, 1), 'a refused save changes nothing')
  again.close()
  // Rows that no longer parse are skipped, not returned.
  const db = new Database(path)
  db.prepare('INSERT INTO peers VALUES (?, ?, ?, ?)').run(Buffer.alloc(32, 1), 'not an address', NOW, null)
  db.prepare('INSERT INTO peers VALUES (?, ?, ?, ?)').run(Buffer.alloc(3, 1), '10.0.0.1:1', NOW, null)
  db.close()
  const third = new RecordStore({ path })
  assert.deepEqual(third.loadPeers(), peers.slice(0, 1))
  third.close()
}))
