// The X25519 key that encrypted sessions use, derived from the node's Ed25519 identity.
// Deriving it (instead of signing a separate key) means that anyone who knows a peer's Ed25519
// public key (from its peer record, or an earlier session) also knows its session key, so the
// first packet to it can already be encrypted (Noise IK). The map is the birational one between
// the Edwards and Montgomery forms of Curve25519, as libsodium's crypto_sign_ed25519_pk_to_curve25519.
import { createHash } from 'node:crypto'
import { WeftError } from '../errors.js'
import type { Identity } from './keys.js'
import { idToHex } from './node-id.js'

const P = (1n << 255n) - 19n

// The inverse mod P by the extended Euclidean algorithm: with BigInt, five times faster than
// Fermat's a^(P-2) (tens of microseconds, not hundreds).
function invert(a: bigint): bigint {
  let t = 0n, nt = 1n, r = P, nr = a % P
  while (nr !== 0n) {
    const q = r / nr
    ;[t, nt] = [nt, t - q * nt]
    ;[r, nr] = [nr, r - q * nr]
  }
  return t < 0n ? t + P : t
}

function fromLittleEndian(b: Uint8Array): bigint {
  let x = 0n
  for (let i = b.length - 1; i >= 0; i--) x = (x << 8n) | BigInt(b[i])
  return x
}

function toLittleEndian(x: bigint): Uint8Array {
  const out = new Uint8Array(32)
  for (let i = 0; i < 32; i++) { out[i] = Number(x & 0xffn); x >>= 8n }
  return out
}

// The map costs a modular inversion (BigInt, about 40 µs); peers come back, so results are kept.
const converted = new Map<string, Uint8Array>()
const MAX_CONVERTED = 4096

/** The X25519 public key (Montgomery u = (1 + y) / (1 - y)) of an Ed25519 public key. */
export function x25519PublicFromEd25519(publicKey: Uint8Array): Uint8Array {
  if (publicKey.length !== 32) throw new WeftError('ERR_BAD_ARGUMENT', 'an Ed25519 public key is 32 bytes')
  const hex = idToHex(publicKey) // an id is an Ed25519 key
  let u = converted.get(hex)
  if (!u) {
    u = montgomery(publicKey)
    if (converted.size >= MAX_CONVERTED) converted.clear() // a cheap bound; refills from use
    converted.set(hex, u)
  }
  return u.slice()
}

function montgomery(publicKey: Uint8Array): Uint8Array {
  const y = fromLittleEndian(publicKey) & ((1n << 255n) - 1n) // the top bit is the sign of x
  if (y >= P) throw new WeftError('ERR_BAD_KEY', 'not an Ed25519 public key: y is out of range')
  const denominator = (1n - y + P) % P
  if (denominator === 0n) throw new WeftError('ERR_BAD_KEY', 'not a usable Ed25519 public key (y = 1)')
  return toLittleEndian(((1n + y) * invert(denominator)) % P)
}

/** The X25519 private key of an identity: the scalar Ed25519 itself signs with (X25519 clamps it). */
export function x25519PrivateFromIdentity(identity: Identity): Uint8Array {
  const der = identity.privateKey.export({ type: 'pkcs8', format: 'der' })
  const seed = der.subarray(der.length - 32)
  return new Uint8Array(createHash('sha512').update(seed).digest().subarray(0, 32))
}
