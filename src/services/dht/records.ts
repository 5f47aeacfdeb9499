// DHT records: what is stored under a key, its compact binary form, and its verification.
// Pure and sans-IO: nothing here reads a clock; callers pass `now` in unix milliseconds.
//
// Three kinds, each bound to its key so that a node can check a record without trusting anyone:
//   immutable  key = SHA-256(value)
//   mutable    key = SHA-256(publicKey || salt), signed by publicKey, newest seq wins
//   provider   key = what is provided; "the peer with this key serves it at these addresses
//              until expiresAt", signed by the peer (provider id = SHA-256(publicKey), like node ids)
import type { Runtime } from '../../runtime/runtime.js'
import { createHash } from 'node:crypto'
import { WeftError } from '../../errors.js'
import { signBytes, verifyBytes, type Identity } from '../../identity/keys.js'
import { idFromPublicKey } from '../../identity/node-id.js'
import { canonicalAddress, packAddress, packedAddressSize, unpackAddress, type Address } from '../../wire/address.js'

export interface ImmutableRecord { kind: 'immutable'; value: Uint8Array }
export interface MutableRecord {
  kind: 'mutable'
  publicKey: Uint8Array // 32 bytes, Ed25519
  salt: Uint8Array // 0..maxSaltBytes: lets one key publish many records
  seq: number // safe integer >= 0; only moves forward
  value: Uint8Array
  signature: Uint8Array // 64 bytes
}
export interface ProviderRecord {
  kind: 'provider'
  key: Uint8Array // 32 bytes: what is provided
  publicKey: Uint8Array // the provider's Ed25519 key
  addresses: Address[] // at most MAX_PROVIDER_ADDRESSES
  expiresAt: number // unix ms
  signature: Uint8Array
}
export type DhtRecord = ImmutableRecord | MutableRecord | ProviderRecord

export interface DhtLimits {
  maxValueBytes: number // immutable and mutable values
  maxSaltBytes: number
  valueTtlMs: number // how long a node keeps an immutable or mutable record after its last put
  providerTtlMs: number // the lifetime an announcer gives its provider records by default
  maxProviderTtlMs: number // a provider record may not expire further ahead than this
}

/**
 * maxProviderTtlMs is twice providerTtlMs: room for an announcer whose clock runs ahead or that
 * announces a little longer, while a record cannot squat a slot for more than two hours.
 */
export const DEFAULT_LIMITS: Readonly<DhtLimits> = Object.freeze({
  maxValueBytes: 1000,
  maxSaltBytes: 64,
  valueTtlMs: 24 * 3600_000,
  providerTtlMs: 3600_000,
  maxProviderTtlMs: 2 * 3600_000,
})

export const RECORD_VERSION = 1
export const MAX_PROVIDER_ADDRESSES = 8
// Hard ceilings of the encoding itself (length fields); the configurable limits sit below them.
const MAX_SALT_FIELD = 255
const MAX_VALUE_FIELD = 65535
const KIND = { immutable: 1, mutable: 2, provider: 3 } as const
// Signatures carry a domain prefix so that no signature made here means anything elsewhere.
const MUTABLE_DOMAIN = Buffer.from('weft dht mutable v1\0')
const PROVIDER_DOMAIN = Buffer.from('weft dht provider v1\0')

const sha256 = (...parts: Uint8Array[]): Uint8Array => {
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  return new Uint8Array(h.digest())
}

const bad = (message: string): WeftError => new WeftError('ERR_BAD_MESSAGE', message)

/** The key a record is stored under, derived from the record alone. */
export function recordKey(r: DhtRecord): Uint8Array {
  switch (r.kind) {
    case 'immutable': return sha256(r.value)
    case 'mutable': return sha256(r.publicKey, r.salt)
    case 'provider': return r.key.slice()
  }
}

/** The id of the peer behind a provider record: its key, like a node id. */
export function providerId(r: ProviderRecord): Uint8Array {
  return idFromPublicKey(r.publicKey)
}

// ---- structure ------------------------------------------------------------------------------

function isBytes(v: unknown, min: number, max: number): v is Uint8Array {
  return v instanceof Uint8Array && v.length >= min && v.length <= max
}

const isTime = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0

/** Throws ERR_BAD_MESSAGE unless the record has the shape the encoding can carry. */
function checkShape(r: DhtRecord): void {
  if (r === null || typeof r !== 'object') throw bad('a record must be an object')
  switch (r.kind) {
    case 'immutable':
      if (!isBytes(r.value, 0, MAX_VALUE_FIELD)) throw bad('immutable record: value must be at most 65535 bytes')
      return
    case 'mutable':
      if (!isBytes(r.publicKey, 32, 32)) throw bad('mutable record: public key must be 32 bytes')
      if (!isBytes(r.salt, 0, MAX_SALT_FIELD)) throw bad('mutable record: salt must be at most 255 bytes')
      if (!isTime(r.seq)) throw bad('mutable record: seq must be a non-negative safe integer')
      if (!isBytes(r.value, 0, MAX_VALUE_FIELD)) throw bad('mutable record: value must be at most 65535 bytes')
      if (!isBytes(r.signature, 64, 64)) throw bad('mutable record: signature must be 64 bytes')
      return
    case 'provider':
      if (!isBytes(r.key, 32, 32)) throw bad('provider record: key must be 32 bytes')
      if (!isBytes(r.publicKey, 32, 32)) throw bad('provider record: public key must be 32 bytes')
      if (!Array.isArray(r.addresses) || r.addresses.length > MAX_PROVIDER_ADDRESSES || !r.addresses.every((a) => typeof a === 'string')) {
        throw bad(`provider record: addresses must be at most ${MAX_PROVIDER_ADDRESSES} strings`)
      }
      if (!isTime(r.expiresAt)) throw bad('provider record: expiresAt must be a non-negative safe integer')
      if (!isBytes(r.signature, 64, 64)) throw bad('provider record: signature must be 64 bytes')
      return
    default:
      throw bad(`unknown record kind ${JSON.stringify((r as { kind: unknown }).kind)}`)
  }
}

// ---- signing --------------------------------------------------------------------------------
// Signed bodies: fixed-size fields plus length-prefixed ones, so no two field lists give the
// same bytes. The public key is not in the body: it is the key that verifies.

function mutableBody(salt: Uint8Array, seq: number, value: Uint8Array): Uint8Array {
  const b = new Uint8Array(MUTABLE_DOMAIN.length + 1 + salt.length + 8 + 2 + value.length)
  b.set(MUTABLE_DOMAIN)
  let o = MUTABLE_DOMAIN.length
  b[o++] = salt.length
  b.set(salt, o); o += salt.length
  new DataView(b.buffer).setBigUint64(o, BigInt(seq)); o += 8
  b[o++] = value.length >> 8
  b[o++] = value.length & 0xff
  b.set(value, o)
  return b
}

function providerBody(key: Uint8Array, addresses: Address[], expiresAt: number): Uint8Array {
  let size = PROVIDER_DOMAIN.length + 32 + 8 + 1
  for (const a of addresses) size += packedAddressSize(a)
  const b = new Uint8Array(size)
  b.set(PROVIDER_DOMAIN)
  let o = PROVIDER_DOMAIN.length
  b.set(key, o); o += 32
  new DataView(b.buffer).setBigUint64(o, BigInt(expiresAt)); o += 8
  b[o++] = addresses.length
  for (const a of addresses) o = packAddress(a, b, o)
  return b
}

export function signMutable(identity: Identity, value: Uint8Array, seq: number, salt: Uint8Array = new Uint8Array(0)): MutableRecord {
  const r: MutableRecord = { kind: 'mutable', publicKey: identity.publicKey, salt: salt.slice(), seq, value: value.slice(), signature: new Uint8Array(64) }
  checkShape(r)
  r.signature = signBytes(identity, mutableBody(r.salt, seq, r.value))
  checked.add(r) // signed here, with the key it names
  return r
}

/** Addresses are stored in their canonical text form, so a record equals its decoded copy. */
export function signProvider(identity: Identity, key: Uint8Array, addresses: Address[], expiresAt: number): ProviderRecord {
  const r: ProviderRecord = {
    kind: 'provider', key: key.slice(), publicKey: identity.publicKey, addresses: addresses.map(canonicalAddress), expiresAt, signature: new Uint8Array(64),
  }
  checkShape(r)
  r.signature = signBytes(identity, providerBody(r.key, r.addresses, expiresAt))
  checked.add(r) // signed here, with the key it names
  return r
}

// ---- verification ---------------------------------------------------------------------------

/**
 * Throws unless `r` may be stored or returned under `key` at time `now`. Cheap checks first,
 * the signature last. Codes: ERR_BAD_MESSAGE (shape, salt longer than maxSaltBytes, an address
 * that does not parse), ERR_VALUE_TOO_LARGE, ERR_HASH_MISMATCH (the record does not belong under
 * `key`: for an immutable record a tampered value and a wrong key are the same thing),
 * ERR_EXPIRED (a provider record past its expiry, or expiring more than maxProviderTtlMs ahead),
 * ERR_BAD_SIGNATURE (a tampered mutable value lands here: its signature no longer covers it).
 */
export function verifyRecord(key: Uint8Array, r: DhtRecord, now: number, limits: DhtLimits = DEFAULT_LIMITS): void {
  const body = signedBody(key, r, now, limits)
  if (body && r.kind !== 'immutable' && !checked.has(r) && !verifyBytes(r.publicKey, body, r.signature)) throw badSignature(r)
}

/**
 * verifyRecord with the signature checked by the runtime (off the event loop on UDP). The
 * record object is remembered as checked, so storing it does not check it again.
 */
export async function verifyRecordWith(
  runtime: Pick<Runtime, 'verifySignature'>,
  key: Uint8Array, r: DhtRecord, now: number, limits: DhtLimits = DEFAULT_LIMITS,
): Promise<void> {
  const body = signedBody(key, r, now, limits)
  if (!body || r.kind === 'immutable' || checked.has(r)) return
  if (!(await runtime.verifySignature(r.publicKey, body, r.signature))) throw badSignature(r)
  checked.add(r)
}

// Record objects whose signature has verified. Records are never changed once made, and each
// node decodes its own copy from the wire, so this spares only a node's own second look.
const checked = new WeakSet<DhtRecord>()

const badSignature = (r: DhtRecord): WeftError => new WeftError('ERR_BAD_SIGNATURE', `${r.kind} record signature does not verify`)

/** The cheap checks of verifyRecord; returns the bytes the signature must cover (null: unsigned). */
function signedBody(key: Uint8Array, r: DhtRecord, now: number, limits: DhtLimits): Uint8Array | null {
  checkShape(r)
  if (!isBytes(key, 32, 32)) throw bad('a record key must be 32 bytes')
  if (r.kind === 'immutable' || r.kind === 'mutable') {
    if (r.value.length > limits.maxValueBytes) {
      throw new WeftError('ERR_VALUE_TOO_LARGE', `value of ${r.value.length} bytes exceeds the limit of ${limits.maxValueBytes}`)
    }
  }
  if (r.kind === 'mutable' && r.salt.length > limits.maxSaltBytes) {
    throw bad(`salt of ${r.salt.length} bytes exceeds the limit of ${limits.maxSaltBytes}`)
  }
  if (!bytesEqual(recordKey(r), key)) throw new WeftError('ERR_HASH_MISMATCH', `${r.kind} record does not belong under this key`)
  if (r.kind === 'immutable') return null
  if (r.kind === 'mutable') return mutableBody(r.salt, r.seq, r.value)
  if (r.expiresAt <= now) throw new WeftError('ERR_EXPIRED', 'provider record has expired')
  if (r.expiresAt > now + limits.maxProviderTtlMs) {
    throw new WeftError('ERR_EXPIRED', `provider record expires more than ${limits.maxProviderTtlMs} ms ahead`)
  }
  try {
    return providerBody(r.key, r.addresses, r.expiresAt)
  } catch (err) {
    throw bad(`provider record: ${(err as Error).message}`)
  }
}

/** Strictly newer: a higher seq, or (same seq, a publisher that signed twice) the larger value, so every node picks the same one. */
export function newerThan(a: MutableRecord, b: MutableRecord): boolean {
  if (a.seq !== b.seq) return a.seq > b.seq
  return Buffer.compare(a.value, b.value) > 0
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

// ---- encoding -------------------------------------------------------------------------------
// version (1) | kind (1) | fields. Big-endian integers.
//   immutable: len u16 | value
//   mutable:   publicKey 32 | saltLen u8 | salt | seq u64 | len u16 | value | signature 64
//   provider:  key 32 | publicKey 32 | expiresAt u64 | count u8 | packed addresses | signature 64
// A 1000-byte mutable value with a 64-byte salt encodes in 1173 bytes, leaving room for the
// message framing in a 1400-byte datagram.

export function encodedRecordSize(r: DhtRecord): number {
  switch (r.kind) {
    case 'immutable': return 2 + 2 + r.value.length
    case 'mutable': return 2 + 32 + 1 + r.salt.length + 8 + 2 + r.value.length + 64
    case 'provider': {
      let n = 2 + 32 + 32 + 8 + 1 + 64
      for (const a of r.addresses) n += packedAddressSize(a)
      return n
    }
  }
}

/** Throws ERR_BAD_MESSAGE for a record the encoding cannot carry (ERR_BAD_ADDRESS for an unparsable address). */
export function encodeRecord(r: DhtRecord): Uint8Array {
  checkShape(r)
  const b = new Uint8Array(encodedRecordSize(r))
  const view = new DataView(b.buffer)
  b[0] = RECORD_VERSION
  b[1] = KIND[r.kind]
  let o = 2
  switch (r.kind) {
    case 'immutable':
      view.setUint16(o, r.value.length); o += 2
      b.set(r.value, o)
      break
    case 'mutable':
      b.set(r.publicKey, o); o += 32
      b[o++] = r.salt.length
      b.set(r.salt, o); o += r.salt.length
      view.setBigUint64(o, BigInt(r.seq)); o += 8
      view.setUint16(o, r.value.length); o += 2
      b.set(r.value, o); o += r.value.length
      b.set(r.signature, o)
      break
    case 'provider':
      b.set(r.key, o); o += 32
      b.set(r.publicKey, o); o += 32
      view.setBigUint64(o, BigInt(r.expiresAt)); o += 8
      b[o++] = r.addresses.length
      for (const a of r.addresses) o = packAddress(a, b, o)
      b.set(r.signature, o)
      break
  }
  return b
}

/**
 * Total decoder: any input gives a record or a WeftError (ERR_TRUNCATED, ERR_VERSION,
 * ERR_UNKNOWN_TYPE, ERR_BAD_MESSAGE). Checks structure only; verifyRecord checks the rest.
 */
export function decodeRecord(bytes: Uint8Array): DhtRecord {
  if (!(bytes instanceof Uint8Array)) throw bad('a record must be bytes')
  const b = bytes
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength)
  let o = 0
  const need = (n: number, what: string): void => {
    if (o + n > b.length) throw new WeftError('ERR_TRUNCATED', `record truncated in ${what}`)
  }
  const take = (n: number, what: string): Uint8Array => {
    need(n, what)
    o += n
    return new Uint8Array(b.subarray(o - n, o)) // a copy, and a plain Uint8Array even from a Buffer
  }
  const u64 = (what: string): number => {
    need(8, what)
    const v = view.getBigUint64(o)
    o += 8
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`record ${what} out of range`)
    return Number(v)
  }
  const u16 = (what: string): number => { need(2, what); o += 2; return view.getUint16(o - 2) }
  const u8 = (what: string): number => { need(1, what); return b[o++] }

  const version = u8('version')
  if (version !== RECORD_VERSION) throw new WeftError('ERR_VERSION', `record version ${version} is not supported`)
  const kind = u8('kind')
  let r: DhtRecord
  if (kind === KIND.immutable) {
    r = { kind: 'immutable', value: take(u16('value length'), 'value') }
  } else if (kind === KIND.mutable) {
    const publicKey = take(32, 'public key')
    const salt = take(u8('salt length'), 'salt')
    const seq = u64('seq')
    const value = take(u16('value length'), 'value')
    r = { kind: 'mutable', publicKey, salt, seq, value, signature: take(64, 'signature') }
  } else if (kind === KIND.provider) {
    const key = take(32, 'key')
    const publicKey = take(32, 'public key')
    const expiresAt = u64('expiry')
    const count = u8('address count')
    if (count > MAX_PROVIDER_ADDRESSES) throw bad(`provider record with ${count} addresses (at most ${MAX_PROVIDER_ADDRESSES})`)
    const addresses: Address[] = []
    for (let i = 0; i < count; i++) {
      const [a, next] = unpackAddress(b, o)
      addresses.push(a)
      o = next
    }
    r = { kind: 'provider', key, publicKey, addresses, expiresAt, signature: take(64, 'signature') }
  } else {
    throw new WeftError('ERR_UNKNOWN_TYPE', `unknown record kind ${kind}`)
  }
  if (o !== b.length) throw bad(`record has ${b.length - o} trailing bytes`)
  return r
}
