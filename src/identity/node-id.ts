// Node ids: 256-bit values, kept as raw bytes. A node's id is its Ed25519 public key itself: then
// every contact (id, address) a lookup learns also names the key its session is sealed to, and
// the first packet to any peer rides in a Noise IK handshake (no round trip for XX). Random keys
// are uniform in the bytes the XOR metric reads first (the low bytes of y).
import { WeftError } from '../errors.js'

export const ID_BYTES = 32
export const ID_BITS = ID_BYTES * 8
export type NodeId = Uint8Array

export function idFromPublicKey(publicKey: Uint8Array): NodeId {
  if (publicKey.length !== ID_BYTES) throw new WeftError('ERR_BAD_KEY', `an Ed25519 public key is ${ID_BYTES} bytes, got ${publicKey.length}`)
  return new Uint8Array(publicKey)
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))

// Byte by byte: asking a small typed array for its .buffer makes V8 move it out of its heap (an
// ArrayBuffer and a native allocation, for good), and ids are kept, one per peer and contact.
export function idToHex(id: Uint8Array): string {
  let s = ''
  for (let i = 0; i < id.length; i++) s += HEX[id[i]]
  return s
}

const HEX_ID = /^[0-9a-fA-F]{64}$/

export function idFromHex(hex: string): NodeId {
  if (typeof hex !== 'string' || !HEX_ID.test(hex)) {
    throw new WeftError('ERR_BAD_ID', `not a node id: expected 64 hex digits, got ${JSON.stringify(String(hex).slice(0, 80))}`)
  }
  return new Uint8Array(Buffer.from(hex, 'hex'))
}

export function idEquals(a: Uint8Array, b: Uint8Array, bOffset = 0): boolean {
  for (let i = 0; i < ID_BYTES; i++) if (a[i] !== b[bOffset + i]) return false
  return true
}

/** Compares the XOR distances of a and b to target: negative when a is closer. */
export function compareDistance(target: Uint8Array, a: Uint8Array, b: Uint8Array, aOffset = 0, bOffset = 0): number {
  for (let i = 0; i < ID_BYTES; i++) {
    const da = a[aOffset + i] ^ target[i]
    const db = b[bOffset + i] ^ target[i]
    if (da !== db) return da - db
  }
  return 0
}

/** Number of leading bits that a and b share (ID_BITS when equal). */
export function commonPrefixLength(a: Uint8Array, b: Uint8Array, bOffset = 0): number {
  for (let i = 0; i < ID_BYTES; i++) {
    const x = a[i] ^ b[bOffset + i]
    if (x !== 0) return i * 8 + Math.clz32(x) - 24
  }
  return ID_BITS
}

/** A random id sharing exactly `prefix` leading bits with `base` (used to refresh a bucket). */
export function randomIdWithPrefix(base: Uint8Array, prefix: number, random: Uint8Array): NodeId {
  const out = new Uint8Array(random.subarray(0, ID_BYTES))
  const full = prefix >> 3
  for (let i = 0; i < full; i++) out[i] = base[i]
  if (prefix < ID_BITS) {
    const bit = prefix & 7
    const keep = (0xff00 >> bit) & 0xff // the bits of `base` to copy in the partial byte
    const flip = 0x80 >> bit // the first differing bit
    out[full] = (base[full] & keep) | ((base[full] ^ flip) & flip) | (out[full] & ~keep & ~flip & 0xff)
  }
  return out
}
