// Id arithmetic for Pastry: ids read as digits of b bits (most significant first), prefixes in
// digits, and distances round the ring. Ids may sit at an offset in a larger array (the
// contact pool's), so nothing here copies one.
import { commonPrefixLength, ID_BITS, ID_BYTES } from '../../identity/node-id.js'

export const MIN_DIGIT_BITS = 1
export const MAX_DIGIT_BITS = 8

/** Digits in an id of ID_BITS bits: the last one is shorter when b does not divide ID_BITS. */
export function digitCount(b: number): number {
  return Math.ceil(ID_BITS / b)
}

/**
 * Digit i of an id (0 is the most significant). A short last digit reads as if the id went on
 * with zero bits, so every node numbers the columns of the last row alike.
 */
export function digitAt(id: Uint8Array, i: number, b: number, offset = 0): number {
  const bit = i * b
  const byte = bit >> 3
  const hi = id[offset + byte]
  const lo = byte + 1 < ID_BYTES ? id[offset + byte + 1] : 0
  return (((hi << 8) | lo) >> (16 - (bit & 7) - b)) & ((1 << b) - 1)
}

/** Leading digits that a and b (at bOffset) share: digitCount(b) when they are equal. */
export function sharedDigits(a: Uint8Array, bits: number, b: Uint8Array, bOffset = 0): number {
  const cpl = commonPrefixLength(a, b, bOffset)
  return cpl >= ID_BITS ? digitCount(bits) : Math.floor(cpl / bits)
}

/** (a - b) mod 2^ID_BITS into out, with a and b at offsets. */
export function subtractAt(a: Uint8Array, aOffset: number, b: Uint8Array, bOffset: number, out: Uint8Array): Uint8Array {
  let borrow = 0
  for (let i = ID_BYTES - 1; i >= 0; i--) {
    const d = a[aOffset + i] - b[bOffset + i] - borrow
    out[i] = d & 0xff
    borrow = d < 0 ? 1 : 0
  }
  return out
}

/** Big-endian comparison of two ids (or distances) at offsets. */
export function compareAt(a: Uint8Array, aOffset: number, b: Uint8Array, bOffset: number): number {
  for (let i = 0; i < ID_BYTES; i++) {
    const d = a[aOffset + i] - b[bOffset + i]
    if (d !== 0) return d
  }
  return 0
}

const cw = new Uint8Array(ID_BYTES), ccw = new Uint8Array(ID_BYTES)
/**
 * The distance between target and x (at xOffset) the shorter way round the ring, into out.
 * Returns true when that way is clockwise from the target (x at or after it): numericMetric's
 * tie-break, under which the clockwise one of two equally distant ids wins.
 */
export function ringDistanceAt(target: Uint8Array, x: Uint8Array, xOffset: number, out: Uint8Array): boolean {
  subtractAt(x, xOffset, target, 0, cw)
  subtractAt(target, 0, x, xOffset, ccw)
  if (compareAt(ccw, 0, cw, 0) < 0) { out.set(ccw); return false }
  out.set(cw)
  return true
}
