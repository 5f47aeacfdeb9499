// A polyring peer's routing table: its parent, its siblings (its own ring, a full mesh) and its
// children (one level down, no grandchildren), as integer handles in typed arrays indexed by
// coordinate: sibling x is `siblings[x]`, child x is `children[x]`. A handle is whatever the
// layer below names a contact by (a contact-pool handle on a real node, a peer index in the
// simulator); NONE marks an empty slot. No object per contact.
import { WeftError } from '../../errors.js'
import { type Guid, MAX_DEPTH } from './guid.js'

export const NONE = -1
/** Most siblings or children one table holds (coordinates 0 .. MAX_RING - 1). */
export const MAX_RING = 1 << 20
const MIN_CAPACITY = 4
const EMPTY = new Int32Array(0)

function grown(a: Int32Array, need: number): Int32Array {
  let cap = Math.max(MIN_CAPACITY, a.length)
  while (cap < need) cap *= 2
  const b = new Int32Array(Math.min(cap, MAX_RING)).fill(NONE)
  b.set(a)
  return b
}

function checkCoord(kind: string, coord: number): void {
  if (!Number.isInteger(coord) || coord < 0 || coord >= MAX_RING) {
    throw new WeftError('ERR_BAD_ARGUMENT', `${kind} coordinate ${coord} is not in 0..${MAX_RING - 1} (MAX_RING)`)
  }
}

export class PolyringTable {
  /** The parent's handle, or NONE (a centre-ring peer has no parent). */
  parent = NONE
  /** Handles by sibling coordinate; self's own slot may hold its own handle (never routed to). */
  siblings: Int32Array
  /** Handles by child coordinate. */
  children: Int32Array
  /** 1 at a sibling coordinate whose peer is private (NATed): reached through the parent. Lazily allocated. */
  privateSiblings: Uint8Array | null = null
  private nSiblings = 0
  private nChildren = 0

  constructor(readonly self: Guid, siblings: Int32Array = EMPTY, children: Int32Array = EMPTY) {
    if (self.length < 1 || self.length > MAX_DEPTH) throw new WeftError('ERR_BAD_ARGUMENT', `bad polyring GUID depth ${self.length}`)
    this.siblings = siblings
    this.children = children
    for (let i = 0; i < siblings.length; i++) if (siblings[i] !== NONE && i !== this.ownCoord) this.nSiblings++
    for (let i = 0; i < children.length; i++) if (children[i] !== NONE) this.nChildren++
  }

  /**
   * A table over arrays shared with other tables (the simulator's static shapes: every member of
   * a full-mesh ring sees the same ring, so one Int32Array serves them all, and a parent's
   * children array is its children's siblings array). Such a table must not be written to.
   */
  static shared(self: Guid, parent: number, siblings: Int32Array, children: Int32Array): PolyringTable {
    const t = new PolyringTable(self, siblings, children)
    t.parent = parent
    return t
  }

  /** This peer's own coordinate in its ring (the last of its GUID). */
  get ownCoord(): number { return this.self[this.self.length - 1] }
  get depth(): number { return this.self.length }
  get siblingCount(): number { return this.nSiblings }
  get childCount(): number { return this.nChildren }

  sibling(coord: number): number { return coord < this.siblings.length ? this.siblings[coord] : NONE }
  child(coord: number): number { return coord < this.children.length ? this.children[coord] : NONE }

  setParent(handle: number): void { this.parent = handle }

  setSibling(coord: number, handle: number, isPrivate = false): void {
    checkCoord('sibling', coord)
    if (coord === this.ownCoord) throw new WeftError('ERR_BAD_ARGUMENT', `sibling coordinate ${coord} is this peer's own`)
    if (coord >= this.siblings.length) this.siblings = grown(this.siblings, coord + 1)
    if (this.siblings[coord] === NONE) this.nSiblings++
    this.siblings[coord] = handle
    if (isPrivate || this.privateSiblings) {
      if (!this.privateSiblings || this.privateSiblings.length < this.siblings.length) {
        const p = new Uint8Array(this.siblings.length)
        if (this.privateSiblings) p.set(this.privateSiblings)
        this.privateSiblings = p
      }
      this.privateSiblings[coord] = isPrivate ? 1 : 0
    }
  }

  removeSibling(coord: number): void {
    if (coord < this.siblings.length && this.siblings[coord] !== NONE && coord !== this.ownCoord) {
      this.siblings[coord] = NONE
      this.nSiblings--
      if (this.privateSiblings) this.privateSiblings[coord] = 0
    }
  }

  setChild(coord: number, handle: number): void {
    checkCoord('child', coord)
    if (coord >= this.children.length) this.children = grown(this.children, coord + 1)
    if (this.children[coord] === NONE) this.nChildren++
    this.children[coord] = handle
  }

  removeChild(coord: number): void {
    if (coord < this.children.length && this.children[coord] !== NONE) {
      this.children[coord] = NONE
      this.nChildren--
    }
  }

  /** The coordinate a parent hands to its next child: the lowest free one. */
  nextFreeChild(): number {
    for (let i = 0; i < this.children.length; i++) if (this.children[i] === NONE) return i
    if (this.children.length >= MAX_RING) throw new WeftError('ERR_BUSY', `child ring full (${MAX_RING})`)
    return this.children.length
  }

  forEachSibling(fn: (coord: number, handle: number) => void): void {
    const s = this.siblings, own = this.ownCoord
    for (let i = 0; i < s.length; i++) if (s[i] !== NONE && i !== own) fn(i, s[i])
  }

  forEachChild(fn: (coord: number, handle: number) => void): void {
    const c = this.children
    for (let i = 0; i < c.length; i++) if (c[i] !== NONE) fn(i, c[i])
  }

  /** Bytes of the table's own arrays (typed array contents; not V8 object headers). */
  arrayBytes(): number {
    return this.siblings.byteLength + this.children.byteLength + this.self.byteLength + (this.privateSiblings?.byteLength ?? 0)
  }
}
