// Polyring GUIDs: lists of coordinates, printed `[4.2.17]`. The centre ring has one
// coordinate; the children of [4.2] are [4.2.0], [4.2.1], ... (the parent hands out x).
// In memory a GUID is a Uint32Array of its coordinates (its length is the depth); on the wire
// it is one byte of depth followed by each coordinate as an unsigned LEB128 varint.
import { WeftError } from '../../errors.js'

export type Guid = Uint32Array

/** Deepest GUID accepted (the seed's depth is unbounded; ours is a named bound, rule 4). */
export const MAX_DEPTH = 32
/** Largest coordinate accepted: every coordinate fits a u32 below it. */
export const MAX_COORD = 0xffff_fffe
/** Longest text form: `[` + 32 × (10 digits + '.') + `]`. */
export const MAX_GUID_TEXT = 2 + MAX_DEPTH * 11
/** Longest encoded form: a depth byte and 32 varints of at most 5 bytes. */
export const MAX_GUID_BYTES = 1 + MAX_DEPTH * 5

const bad = (text: string, why: string): WeftError =>
  new WeftError('ERR_BAD_ARGUMENT', `bad polyring GUID ${JSON.stringify(text.length > 40 ? text.slice(0, 40) + '…' : text)}: ${why}`)

/** A GUID from its coordinates; refuses an empty list, a depth over MAX_DEPTH or a coordinate out of range. */
export function guid(coords: ArrayLike<number>): Guid {
  if (coords.length < 1) throw new WeftError('ERR_BAD_ARGUMENT', 'a polyring GUID has at least one coordinate')
  if (coords.length > MAX_DEPTH) throw new WeftError('ERR_BAD_ARGUMENT', `a polyring GUID has at most ${MAX_DEPTH} coordinates`)
  const g = new Uint32Array(coords.length)
  for (let i = 0; i < coords.length; i++) {
    const c = coords[i]
    if (!Number.isInteger(c) || c < 0 || c > MAX_COORD) throw new WeftError('ERR_BAD_ARGUMENT', `polyring coordinate ${c} is not an integer in 0..${MAX_COORD}`)
    g[i] = c
  }
  return g
}

/** Parses `[4.2.17]`: brackets, decimal coordinates without leading zeros, dots; nothing else. */
export function parseGuid(text: string): Guid {
  if (typeof text !== 'string') throw new WeftError('ERR_BAD_ARGUMENT', 'a polyring GUID must be text')
  if (text.length > MAX_GUID_TEXT) throw bad(text, `longer than ${MAX_GUID_TEXT} characters`)
  if (text.length < 3 || text.charCodeAt(0) !== 0x5b || text.charCodeAt(text.length - 1) !== 0x5d) throw bad(text, 'expected [a.b.c]')
  const coords: number[] = []
  let i = 1
  const end = text.length - 1
  for (;;) {
    const start = i
    let v = 0
    while (i < end) {
      const ch = text.charCodeAt(i)
      if (ch < 0x30 || ch > 0x39) break
      v = v * 10 + (ch - 0x30)
      i++
      if (i - start > 10) throw bad(text, 'coordinate too large')
    }
    if (i === start) throw bad(text, `expected a digit at ${i}`)
    if (i - start > 1 && text.charCodeAt(start) === 0x30) throw bad(text, 'leading zero')
    if (v > MAX_COORD) throw bad(text, `coordinate over ${MAX_COORD}`)
    coords.push(v)
    if (coords.length > MAX_DEPTH) throw bad(text, `deeper than ${MAX_DEPTH}`)
    if (i === end) break
    if (text.charCodeAt(i) !== 0x2e) throw bad(text, `unexpected ${JSON.stringify(text[i])} at ${i}`)
    i++
  }
  return guid(coords)
}

export function formatGuid(g: Guid): string {
  return `[${Array.prototype.join.call(g, '.')}]`
}

/** Number of leading coordinates two GUIDs share (M in the seed's routing rule). */
export function commonPrefix(a: Guid, b: Guid): number {
  const n = a.length < b.length ? a.length : b.length
  let m = 0
  while (m < n && a[m] === b[m]) m++
  return m
}

export function guidEquals(a: Guid, b: Guid): boolean {
  return a.length === b.length && commonPrefix(a, b) === a.length
}

/** Total order: coordinate by coordinate, an ancestor before its descendants (depth-first order). */
export function compareGuid(a: Guid, b: Guid): number {
  const m = commonPrefix(a, b)
  if (m < a.length && m < b.length) return a[m] < b[m] ? -1 : 1
  return a.length - b.length
}

/** The parent's GUID, or null for a centre-ring GUID (its parent is nobody). */
export function parentGuid(g: Guid): Guid | null {
  return g.length <= 1 ? null : g.slice(0, g.length - 1)
}

export function childGuid(g: Guid, coord: number): Guid {
  if (g.length >= MAX_DEPTH) throw new WeftError('ERR_BAD_ARGUMENT', `a polyring GUID has at most ${MAX_DEPTH} coordinates`)
  if (!Number.isInteger(coord) || coord < 0 || coord > MAX_COORD) throw new WeftError('ERR_BAD_ARGUMENT', `polyring coordinate ${coord} is not an integer in 0..${MAX_COORD}`)
  const c = new Uint32Array(g.length + 1)
  c.set(g)
  c[g.length] = coord
  return c
}

/** True when `d` is `a` or below it. */
export function isInSubtree(d: Guid, a: Guid): boolean {
  return d.length >= a.length && commonPrefix(a, d) === a.length
}

/** Bytes of the wire form. */
export function encodedGuidLength(g: Guid): number {
  let n = 1
  for (let i = 0; i < g.length; i++) { let v = g[i]; do { n++; v = Math.floor(v / 128) } while (v > 0) }
  return n
}

/** Writes the wire form at `offset` and returns the offset after it. */
export function writeGuid(g: Guid, out: Uint8Array, offset: number): number {
  out[offset++] = g.length
  for (let i = 0; i < g.length; i++) {
    let v = g[i]
    while (v >= 0x80) { out[offset++] = (v & 0x7f) | 0x80; v = Math.floor(v / 128) }
    out[offset++] = v
  }
  return offset
}

export function encodeGuid(g: Guid): Uint8Array {
  const out = new Uint8Array(encodedGuidLength(g))
  writeGuid(g, out, 0)
  return out
}

/**
 * Reads a wire-form GUID at `offset`. Network bytes: anything malformed (truncated, depth 0 or
 * over MAX_DEPTH, a varint over 5 bytes, non-minimal, or a coordinate over MAX_COORD) is
 * ERR_BAD_MESSAGE.
 */
export function readGuid(bytes: Uint8Array, offset = 0): { guid: Guid; end: number } {
  const fail = (why: string) => new WeftError('ERR_BAD_MESSAGE', `bad polyring GUID bytes: ${why}`)
  if (offset >= bytes.length) throw fail('truncated')
  const depth = bytes[offset++]
  if (depth < 1 || depth > MAX_DEPTH) throw fail(`depth ${depth}`)
  const g = new Uint32Array(depth)
  for (let i = 0; i < depth; i++) {
    let v = 0, scale = 1, n = 0
    for (;;) {
      if (offset >= bytes.length) throw fail('truncated')
      const b = bytes[offset++]
      n++
      v += (b & 0x7f) * scale
      if ((b & 0x80) === 0) {
        if (b === 0 && n > 1) throw fail('non-minimal varint')
        break
      }
      if (n >= 5) throw fail('varint too long')
      scale *= 128
    }
    if (v > MAX_COORD) throw fail(`coordinate ${v}`)
    g[i] = v
  }
  return { guid: g, end: offset }
}

export function decodeGuid(bytes: Uint8Array): Guid {
  const { guid: g, end } = readGuid(bytes, 0)
  if (end !== bytes.length) throw new WeftError('ERR_BAD_MESSAGE', `bad polyring GUID bytes: ${bytes.length - end} trailing`)
  return g
}
