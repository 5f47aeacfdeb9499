// BEP 44 items: targets, the signed bytes of a mutable item, and the checks on a user's put.
// Immutable: target = SHA-1(bencoded v). Mutable: target = SHA-1(public key || salt), and the
// Ed25519 signature covers the bencoded "salt" (when not empty), "seq" and "v" entries without
// the surrounding dictionary: 4:salt<n>:<salt>3:seqi<seq>e1:v<bencoded v>.
import { createHash, sign, type KeyObject } from 'node:crypto'
import { WeftError } from '../../errors.js'
import { encodeValue, type BValue } from './krpc.js'

/** BEP 44 bounds: the bencoded value and the salt. */
export const MAX_VALUE_BYTES = 1000
export const MAX_SALT_BYTES = 64

export interface MainlineKeys { publicKey: Uint8Array; privateKey: KeyObject }

/** An item as read from the DHT (or to put again). */
export interface MainlineItem {
  target: Uint8Array
  /** The value as decoded: a byte string is a Uint8Array. */
  v: BValue
  /** Mutable items only. */
  k?: Uint8Array
  sig?: Uint8Array
  seq?: number
  salt?: Uint8Array
}

export function sha1(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha1')
  for (const p of parts) h.update(p)
  return new Uint8Array(h.digest())
}

const EMPTY = new Uint8Array(0)

export function immutableTarget(v: BValue): Uint8Array {
  return sha1(encodeValue(v))
}

export function mutableTarget(publicKey: Uint8Array, salt: Uint8Array = EMPTY): Uint8Array {
  return sha1(publicKey, salt)
}

/** The bytes a mutable item's signature covers, from its bencoded value. */
export function signedBytes(salt: Uint8Array | undefined, seq: number, vBytes: Uint8Array): Uint8Array {
  const ascii = (s: string): Buffer => Buffer.from(s, 'latin1')
  const parts: Uint8Array[] = []
  if (salt && salt.length) parts.push(ascii(`4:salt${salt.length}:`), salt)
  parts.push(ascii(`3:seqi${seq}e1:v`), vBytes)
  return new Uint8Array(Buffer.concat(parts))
}

export function signItem(keys: MainlineKeys, salt: Uint8Array | undefined, seq: number, vBytes: Uint8Array): Uint8Array {
  return new Uint8Array(sign(null, signedBytes(salt, seq, vBytes), keys.privateKey))
}

/** A string value or salt is its UTF-8 bytes. */
export function toBytes(v: BValue | string): BValue {
  return typeof v === 'string' ? new Uint8Array(Buffer.from(v, 'utf8')) : v
}

/** The encoded value of a put, refused past MAX_VALUE_BYTES (ERR_VALUE_TOO_LARGE). */
export function checkedValue(v: BValue): Uint8Array {
  let bytes: Uint8Array
  try {
    bytes = encodeValue(v)
  } catch (err) {
    throw new WeftError('ERR_BAD_ARGUMENT', `v cannot be bencoded: ${(err as Error).message}`)
  }
  if (bytes.length > MAX_VALUE_BYTES) throw new WeftError('ERR_VALUE_TOO_LARGE', `v is ${bytes.length} bytes bencoded, over ${MAX_VALUE_BYTES}`)
  return bytes
}
