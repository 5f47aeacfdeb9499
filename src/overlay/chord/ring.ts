// Ring arithmetic for Chord: 256-bit ids (big-endian) on a ring mod 2^256. Clockwise distances,
// intervals, powers of two and the bit index of a distance (which finger it is). Functions take
// an optional offset for the second id so that ids can be read in place from a ContactPool's
// array without a copy.
import { ID_BITS, ID_BYTES } from '../../identity/node-id.js'

/** Big-endian comparison of a[aOff..] and b[bOff..] (32 bytes each). */
export function compareAt(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number): number {
  for (let i = 0; i < ID_BYTES; i++) {
    const d = a[aOff + i] - b[bOff + i]
    if (d !== 0) return d
  }
  return 0
}

/** The clockwise distance from `from` to `to` (to - from mod 2^256), into out. */
export function clockwise(from: Uint8Array, to: Uint8Array, out: Uint8Array, toOff = 0, outOff = 0): Uint8Array {
  let borrow = 0
  for (let i = ID_BYTES - 1; i >= 0; i--) {
    const d = to[toOff + i] - from[i] - borrow
    out[outOff + i] = d & 0xff
    borrow = d < 0 ? 1 : 0
  }
  return out
}

/** id + 2^bit mod 2^256 into out (bit 0 is the least significant). */
export function addPowerOfTwo(id: Uint8Array, bit: number, out: Uint8Array): Uint8Array {
  if (!(bit >= 0 && bit < ID_BITS)) throw new RangeError(`bit ${bit} is outside 0..${ID_BITS - 1}`)
  out.set(id.subarray(0, ID_BYTES))
  let i = ID_BYTES - 1 - (bit >> 3)
  let carry = 1 << (bit & 7)
  for (; i >= 0 && carry; i--) {
    const s = out[i] + carry
    out[i] = s & 0xff
    carry = s >> 8
  }
  return out
}

/** floor(log2(d)) for a distance d: the finger whose range [2^b, 2^(b+1)) holds it; -1 for 0. */
export function topBit(d: Uint8Array, off = 0): number {
  for (let i = 0; i < ID_BYTES; i++) {
    const x = d[off + i]
    if (x !== 0) return (ID_BYTES - 1 - i) * 8 + (31 - Math.clz32(x))
  }
  return -1
}

const dx = new Uint8Array(ID_BYTES), db = new Uint8Array(ID_BYTES)

/**
 * Whether x lies in the open interval (a, b) going clockwise from a. When a = b the interval is
 * the whole ring but a itself (as the paper has it for a node alone).
 */
export function between(x: Uint8Array, a: Uint8Array, b: Uint8Array, xOff = 0): boolean {
  clockwise(a, x, dx, xOff)
  clockwise(a, b, db)
  if (topBit(dx) < 0) return false // x = a
  if (topBit(db) < 0) return true // a = b: everything but a
  return compareAt(dx, 0, db, 0) < 0
}

/** Whether x lies in (a, b] clockwise: the keys a node b is responsible for when a is its predecessor. */
export function inHalfOpen(x: Uint8Array, a: Uint8Array, b: Uint8Array, xOff = 0): boolean {
  clockwise(a, x, dx, xOff)
  clockwise(a, b, db)
  if (topBit(dx) < 0) return false // x = a
  if (topBit(db) < 0) return true // a = b: the whole ring
  return compareAt(dx, 0, db, 0) <= 0
}

const ka = new Uint8Array(ID_BYTES), kb = new Uint8Array(ID_BYTES)

/**
 * Chord's walk order (find_predecessor's): the nodes nearest before the key first, by how far
 * they lie counter-clockwise from it (a node at the key itself first of all). The nodes just past
 * the key come last: they know little of the way back to it but their own predecessor.
 */
export function precedingCompare(t: Uint8Array, a: Uint8Array, b: Uint8Array): number {
  return compareAt(clockwise(a, t, ka), 0, clockwise(b, t, kb), 0)
}
