// DHT records: encoding round trips, a total decoder, and one distinct code per kind of bad input.
// Deterministic: seeded identities, fast-check from WEFT_SEED (default 42).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import fc from 'fast-check'
import { check } from './helpers/property.js'
import { WeftError, type ErrorCode } from '../src/errors.js'
import { identityFromSeed } from '../src/identity/keys.js'
import { idFromPublicKey } from '../src/identity/node-id.js'
import { realRuntime } from '../src/runtime/udp.js'
import {
  DEFAULT_LIMITS, decodeRecord, encodedRecordSize, encodeRecord, MAX_PROVIDER_ADDRESSES, newerThan, providerId, recordKey,
  signMutable, signProvider, verifyRecord, verifyRecordWith, type DhtRecord, type ImmutableRecord, type MutableRecord, type ProviderRecord,
} from '../src/services/dht/records.js'

const isCode = (code: ErrorCode) => (e: unknown) => e instanceof WeftError && e.code === code
const seedOf = (n: number) => new Uint8Array(32).fill(n)
const alice = identityFromSeed(seedOf(1))
const bob = identityFromSeed(seedOf(2))
const NOW = 1_700_000_000_000
const sha = (b: Uint8Array) => new Uint8Array(createHash('sha256').update(b).digest())
const bytes = (n: number, fill = 7) => new Uint8Array(n).fill(fill)
const flip = (b: Uint8Array, i: number) => { const c = b.slice(); c[i] ^= 1; return c }

const immutable = (value: Uint8Array): ImmutableRecord => ({ kind: 'immutable', value })
const mutable = (value = bytes(10), seq = 1, salt = new Uint8Array(0)) => signMutable(alice, value, seq, salt)
const provider = (expiresAt = NOW + DEFAULT_LIMITS.providerTtlMs, addresses = ['10.0.0.1:4000', '[2001:db8::1]:4000']) =>
  signProvider(alice, sha(bytes(3)), addresses, expiresAt)

// ---- round trips ----------------------------------------------------------------------------

test('each kind round-trips through its encoding and verifies under its key', () => {
  const records: DhtRecord[] = [immutable(bytes(0)), immutable(bytes(1000)), mutable(), mutable(bytes(0), 0, bytes(64)), provider(), provider(NOW + 1, [])]
  for (const r of records) {
    const encoded = encodeRecord(r)
    assert.equal(encoded.length, encodedRecordSize(r))
    assert.deepEqual(decodeRecord(encoded), r)
    assert.deepEqual(decodeRecord(Buffer.from(encoded)), r, 'a Buffer decodes to plain Uint8Arrays')
    verifyRecord(recordKey(r), r, NOW)
  }
})

test('keys: SHA-256 of the value, of publicKey || salt, or the provided key', () => {
  const v = bytes(5)
  assert.deepEqual(recordKey(immutable(v)), sha(v))
  const m = mutable(v, 1, Uint8Array.of(9, 9))
  assert.deepEqual(recordKey(m), sha(Uint8Array.from([...alice.publicKey, 9, 9])))
  assert.notDeepEqual(recordKey(mutable(v, 1, Uint8Array.of(9))), recordKey(m), 'another salt is another key')
  const p = provider()
  assert.deepEqual(recordKey(p), p.key)
  assert.deepEqual(providerId(p), idFromPublicKey(alice.publicKey))
})

test('encoding layout: version, kind, then the fields (mutable overhead is 109 bytes plus the salt)', () => {
  const m = mutable(bytes(1000), 5, bytes(3))
  const e = encodeRecord(m)
  assert.deepEqual([e[0], e[1]], [1, 2])
  assert.equal(e.length, 1000 + 3 + 109)
  assert.deepEqual(e.subarray(2, 34), alice.publicKey)
  assert.equal(e[34], 3)
  assert.equal(Buffer.from(e).readBigUInt64BE(38), 5n)
  assert.deepEqual(e.subarray(e.length - 64), m.signature)
  assert.deepEqual([...encodeRecord(immutable(Uint8Array.of(0xaa))).subarray(0, 5)], [1, 1, 0, 1, 0xaa])
})

test('the largest records leave 60 bytes of framing in a 1400-byte datagram', () => {
  const biggestMutable = mutable(bytes(DEFAULT_LIMITS.maxValueBytes), Number.MAX_SAFE_INTEGER, bytes(DEFAULT_LIMITS.maxSaltBytes))
  const biggestProvider = provider(NOW + 1, Array.from({ length: MAX_PROVIDER_ADDRESSES }, (_, i) => `[2001:db8::${i + 1}]:65535`))
  for (const r of [biggestMutable, biggestProvider, immutable(bytes(DEFAULT_LIMITS.maxValueBytes))]) {
    assert.ok(encodeRecord(r).length + 60 <= 1400, `${r.kind}: ${encodeRecord(r).length} bytes`)
  }
})

test('property: signed mutable and provider records round-trip and verify', () => {
  const arb = fc.record({
    value: fc.uint8Array({ maxLength: 1000 }),
    salt: fc.uint8Array({ maxLength: 64 }),
    seq: fc.maxSafeNat(),
    ttl: fc.integer({ min: 1, max: DEFAULT_LIMITS.maxProviderTtlMs }),
    ips: fc.array(fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 65535 })), { maxLength: MAX_PROVIDER_ADDRESSES }),
  })
  check('records round-trip', arb, ({ value, salt, seq, ttl, ips }) => {
    const m = signMutable(bob, value, seq, salt)
    assert.deepEqual(decodeRecord(encodeRecord(m)), m)
    verifyRecord(recordKey(m), m, NOW)
    const p = signProvider(bob, sha(value), ips.map(([ip, port]) => `${ip}:${port}`), NOW + ttl)
    assert.deepEqual(decodeRecord(encodeRecord(p)), p)
    verifyRecord(p.key, p, NOW)
  }, 100)
})

// ---- the decoder is total -------------------------------------------------------------------

function decodesOrCodes(b: Uint8Array): void {
  try {
    decodeRecord(b)
  } catch (err) {
    if (!(err instanceof WeftError)) throw new Error(`untyped error from decodeRecord: ${String(err)}`)
  }
}

test('property: random bytes decode to a record or a WeftError, never an untyped exception', () => {
  check('random bytes', fc.uint8Array({ maxLength: 1300 }), decodesOrCodes, 2000)
  // Bytes that start like a record reach deeper into the decoder.
  const header = fc.tuple(fc.constantFrom(1, 2, 3, 4), fc.uint8Array({ maxLength: 400 })).map(([kind, rest]) => Uint8Array.from([1, kind, ...rest]))
  check('record-like bytes', header, decodesOrCodes, 2000)
})

test('property: every truncation and bit flip of a valid encoding decodes or gives a code', () => {
  const samples = [immutable(bytes(20)), mutable(bytes(20), 3, bytes(4)), provider()].map(encodeRecord)
  for (const e of samples) {
    for (let n = 0; n < e.length; n++) assert.throws(() => decodeRecord(e.subarray(0, n)), (err) => err instanceof WeftError)
    for (let i = 0; i < e.length; i++) for (let bit = 0; bit < 8; bit += 3) { const c = e.slice(); c[i] ^= 1 << bit; decodesOrCodes(c) }
  }
})

test('malformed encodings give distinct codes', () => {
  const e = encodeRecord(mutable())
  assert.throws(() => decodeRecord(new Uint8Array(0)), isCode('ERR_TRUNCATED'))
  assert.throws(() => decodeRecord(e.subarray(0, e.length - 1)), isCode('ERR_TRUNCATED'))
  assert.throws(() => decodeRecord(Uint8Array.from([2, ...e.subarray(1)])), isCode('ERR_VERSION'))
  assert.throws(() => decodeRecord(Uint8Array.from([1, 9, ...e.subarray(2)])), isCode('ERR_UNKNOWN_TYPE'))
  assert.throws(() => decodeRecord(Uint8Array.from([...e, 0])), isCode('ERR_BAD_MESSAGE'))
  const big = encodeRecord(mutable(bytes(1), Number.MAX_SAFE_INTEGER))
  big[35] = 0xff // seq's top byte (no salt): past 2^53
  assert.throws(() => decodeRecord(big), isCode('ERR_BAD_MESSAGE'))
  const p = encodeRecord(provider(NOW + 1, []))
  p[2 + 32 + 32 + 8] = MAX_PROVIDER_ADDRESSES + 1
  assert.throws(() => decodeRecord(p), isCode('ERR_BAD_MESSAGE'))
})

// ---- verification: one code per kind of bad input -------------------------------------------

test('a tampered immutable value and a wrong key are ERR_HASH_MISMATCH', () => {
  const r = immutable(bytes(10))
  const key = recordKey(r)
  assert.throws(() => verifyRecord(key, immutable(flip(r.value, 0)), NOW), isCode('ERR_HASH_MISMATCH'))
  assert.throws(() => verifyRecord(flip(key, 31), r, NOW), isCode('ERR_HASH_MISMATCH'))
  const m = mutable()
  assert.throws(() => verifyRecord(recordKey(mutable(bytes(10), 1, Uint8Array.of(1))), m, NOW), isCode('ERR_HASH_MISMATCH'))
  const p = provider()
  assert.throws(() => verifyRecord(flip(p.key, 0), p, NOW), isCode('ERR_HASH_MISMATCH'))
})

test('a tampered mutable value, seq or signature, or another signer, is ERR_BAD_SIGNATURE', () => {
  const m = mutable(bytes(10), 4, bytes(2))
  const key = recordKey(m)
  assert.throws(() => verifyRecord(key, { ...m, value: flip(m.value, 3) }, NOW), isCode('ERR_BAD_SIGNATURE'))
  assert.throws(() => verifyRecord(key, { ...m, seq: 5 }, NOW), isCode('ERR_BAD_SIGNATURE'))
  assert.throws(() => verifyRecord(key, { ...m, signature: flip(m.signature, 10) }, NOW), isCode('ERR_BAD_SIGNATURE'))
  const byBob = signMutable(bob, m.value, m.seq, m.salt)
  assert.throws(() => verifyRecord(key, { ...m, signature: byBob.signature }, NOW), isCode('ERR_BAD_SIGNATURE'))
  const p = provider()
  assert.throws(() => verifyRecord(p.key, { ...p, addresses: ['10.0.0.2:4000'] }, NOW), isCode('ERR_BAD_SIGNATURE'))
  assert.throws(() => verifyRecord(p.key, { ...p, expiresAt: p.expiresAt + 1 }, NOW), isCode('ERR_BAD_SIGNATURE'))
  assert.throws(() => verifyRecord(p.key, { ...p, signature: flip(p.signature, 0) }, NOW), isCode('ERR_BAD_SIGNATURE'))
})

test('verifyRecordWith checks the signature off the event loop: tampered records fail, good ones pass', async () => {
  const m = mutable(bytes(10), 4, bytes(2))
  const key = recordKey(m)
  const copy = decodeRecord(encodeRecord(m)) // a copy as a peer decodes it: not known as checked
  await verifyRecordWith(realRuntime, key, copy, NOW)
  verifyRecord(key, copy, NOW) // and known as checked now
  await assert.rejects(verifyRecordWith(realRuntime, key, { ...m, value: flip(m.value, 3) }, NOW), isCode('ERR_BAD_SIGNATURE'))
  await assert.rejects(verifyRecordWith(realRuntime, key, { ...m, signature: flip(m.signature, 1) }, NOW), isCode('ERR_BAD_SIGNATURE'))
  const p = provider()
  await assert.rejects(verifyRecordWith(realRuntime, p.key, { ...p, expiresAt: p.expiresAt + 1 }, NOW), isCode('ERR_BAD_SIGNATURE'))
  await assert.rejects(verifyRecordWith(realRuntime, flip(key, 0), copy, NOW), isCode('ERR_HASH_MISMATCH'))
})

test('signatures are domain-separated: one kind\'s signature does not verify as another\'s', () => {
  // A provider body and a mutable body of the same bytes still differ by their prefix.
  const m = mutable()
  const p = provider()
  assert.throws(() => verifyRecord(p.key, { ...p, signature: m.signature }, NOW), isCode('ERR_BAD_SIGNATURE'))
  assert.throws(() => verifyRecord(recordKey(m), { ...m, signature: p.signature }, NOW), isCode('ERR_BAD_SIGNATURE'))
})

test('an oversized value is ERR_VALUE_TOO_LARGE, under the default or a configured limit', () => {
  assert.throws(() => verifyRecord(sha(bytes(1001)), immutable(bytes(1001)), NOW), isCode('ERR_VALUE_TOO_LARGE'))
  const m = mutable(bytes(1001))
  assert.throws(() => verifyRecord(recordKey(m), m, NOW), isCode('ERR_VALUE_TOO_LARGE'))
  const limits = { ...DEFAULT_LIMITS, maxValueBytes: 100 }
  const small = mutable(bytes(100))
  verifyRecord(recordKey(small), small, NOW, limits)
  assert.throws(() => verifyRecord(sha(bytes(101)), immutable(bytes(101)), NOW, limits), isCode('ERR_VALUE_TOO_LARGE'))
})

test('a provider record past its expiry, or expiring too far ahead, is ERR_EXPIRED', () => {
  const p = provider(NOW + 1000)
  verifyRecord(p.key, p, NOW + 999)
  assert.throws(() => verifyRecord(p.key, p, NOW + 1000), isCode('ERR_EXPIRED'))
  const far = provider(NOW + DEFAULT_LIMITS.maxProviderTtlMs + 1)
  assert.throws(() => verifyRecord(far.key, far, NOW), isCode('ERR_EXPIRED'))
  verifyRecord(far.key, far, NOW + 1)
})

test('structural problems are ERR_BAD_MESSAGE: salt too long, bad sizes, bad addresses, unknown kind', () => {
  const longSalt = mutable(bytes(1), 1, bytes(65))
  assert.throws(() => verifyRecord(recordKey(longSalt), longSalt, NOW), isCode('ERR_BAD_MESSAGE'))
  verifyRecord(recordKey(longSalt), longSalt, NOW, { ...DEFAULT_LIMITS, maxSaltBytes: 65 })
  assert.throws(() => signMutable(alice, bytes(1), 1, bytes(256)), isCode('ERR_BAD_MESSAGE'))
  assert.throws(() => signMutable(alice, bytes(1), -1), isCode('ERR_BAD_MESSAGE'))
  assert.throws(() => signMutable(alice, bytes(1), 1.5), isCode('ERR_BAD_MESSAGE'))
  const m = mutable()
  const key = recordKey(m)
  assert.throws(() => verifyRecord(key, { ...m, publicKey: m.publicKey.subarray(1) }, NOW), isCode('ERR_BAD_MESSAGE'))
  assert.throws(() => verifyRecord(key, { ...m, signature: m.signature.subarray(1) }, NOW), isCode('ERR_BAD_MESSAGE'))
  assert.throws(() => verifyRecord(key.subarray(1), m, NOW), isCode('ERR_BAD_MESSAGE'))
  const p = provider()
  assert.throws(() => verifyRecord(p.key, { ...p, addresses: ['nowhere'] }, NOW), isCode('ERR_BAD_MESSAGE'))
  assert.throws(() => verifyRecord(p.key, { ...p, addresses: Array(9).fill('10.0.0.1:1') }, NOW), isCode('ERR_BAD_MESSAGE'))
  assert.throws(() => verifyRecord(p.key, { ...p, addresses: [7 as unknown as string] }, NOW), isCode('ERR_BAD_MESSAGE'))
  assert.throws(() => verifyRecord(p.key, { kind: 'other' } as unknown as DhtRecord, NOW), isCode('ERR_BAD_MESSAGE'))
  assert.throws(() => encodeRecord({ kind: 'immutable', value: 'text' } as unknown as DhtRecord), isCode('ERR_BAD_MESSAGE'))
  assert.throws(() => signProvider(alice, p.key, ['nowhere'], NOW + 1), isCode('ERR_BAD_ADDRESS'))
})

test('each kind of bad input has its own code', () => {
  const m = mutable(bytes(10))
  const p = provider(NOW + 10)
  const i = immutable(bytes(10))
  const longSalt = mutable(bytes(1), 1, bytes(65))
  const codeOf = (fn: () => void): string => { try { fn(); return 'ok' } catch (e) { return (e as WeftError).code } }
  const codes = {
    tampered: codeOf(() => verifyRecord(recordKey(i), immutable(flip(i.value, 0)), NOW)),
    badSignature: codeOf(() => verifyRecord(recordKey(m), { ...m, signature: flip(m.signature, 0) }, NOW)),
    oversized: codeOf(() => verifyRecord(sha(bytes(1001)), immutable(bytes(1001)), NOW)),
    expired: codeOf(() => verifyRecord(p.key, p, NOW + 10)),
    badSalt: codeOf(() => verifyRecord(recordKey(longSalt), longSalt, NOW)),
  }
  assert.deepEqual(codes, {
    tampered: 'ERR_HASH_MISMATCH', badSignature: 'ERR_BAD_SIGNATURE', oversized: 'ERR_VALUE_TOO_LARGE', expired: 'ERR_EXPIRED', badSalt: 'ERR_BAD_MESSAGE',
  })
  assert.equal(new Set(Object.values(codes)).size, 5)
})

test('newerThan: a higher seq wins; the same seq breaks ties by value so every node agrees', () => {
  const a = mutable(bytes(1, 1), 2)
  const b = mutable(bytes(1, 2), 2)
  const c = mutable(bytes(1, 0), 3)
  assert.ok(newerThan(c, a) && !newerThan(a, c))
  assert.ok(newerThan(b, a) && !newerThan(a, b))
  assert.ok(!newerThan(a, a))
  const records: MutableRecord[] = [a, b, c]
  const newest = records.reduce((x, y) => (newerThan(y, x) ? y : x))
  assert.equal(newest, c)
})

test('provider addresses are kept in canonical form, so the decoded copy is equal', () => {
  const p: ProviderRecord = signProvider(alice, sha(bytes(1)), ['localhost:80', '[::ffff:1.2.3.4]:5', '[2001:DB8:0:0::1]:7'], NOW + 5)
  assert.deepEqual(p.addresses, ['127.0.0.1:80', '[::ffff:1.2.3.4]:5', '[2001:db8::1]:7'])
  assert.deepEqual(decodeRecord(encodeRecord(p)), p)
})
