// Pastry's leaf set: the `half` nodes numerically nearest this one on each side of the ring
// (clockwise: the larger ids after it; counter-clockwise: the smaller ids before it), nearest
// first. It decides the last hop of a route and holds the nodes responsible for keys near this
// node. In a network of fewer than 2 * half + 1 nodes a node can sit on both sides.
//
// One typed array per node: [clockwise handles (half) | counter-clockwise handles (half) |
// a state word per place: last seen in seconds * 64 + failed requests].
import { ID_BYTES, idEquals } from '../../identity/node-id.js'
import { heapArena, type Arena } from '../arena.js'
import type { ContactPool } from '../contact-pool.js'
import { compareAt, subtractAt } from './ids.js'

export const enum Side { CW = 0, CCW = 1 }

const MAX_FAILS = 63
const EMPTY = new Uint32Array(0)
const SIDES: readonly Side[] = [Side.CW, Side.CCW]
const da = new Uint8Array(ID_BYTES), db = new Uint8Array(ID_BYTES)

export class LeafSet {
  private words: Uint32Array = EMPTY
  private readonly count = [0, 0]

  constructor(
    readonly self: Uint8Array,
    readonly half: number,
    private readonly pool: ContactPool,
    private readonly arena: Arena = heapArena,
  ) {}

  /** Leaves on one side. */
  size(side: Side): number { return this.count[side] }
  get total(): number { return this.count[0] + this.count[1] }

  handle(side: Side, i: number): number { return this.words[side * this.half + i] }
  private state(side: Side, i: number): number { return this.words[(2 + side) * this.half + i] }
  private setState(side: Side, i: number, seenMs: number, fails: number): void {
    this.words[(2 + side) * this.half + i] = Math.floor(seenMs / 1000) * 64 + Math.min(fails, MAX_FAILS)
  }
  seenAt(side: Side, i: number): number { return Math.floor(this.state(side, i) / 64) * 1000 }
  failsAt(side: Side, i: number): number { return this.state(side, i) % 64 }

  /** The distance from this node to the id at offset, going round the ring on `side`, into out. */
  private distance(side: Side, ids: Uint8Array, offset: number, out: Uint8Array): Uint8Array {
    return side === Side.CW ? subtractAt(ids, offset, this.self, 0, out) : subtractAt(this.self, 0, ids, offset, out)
  }

  indexOf(side: Side, id: Uint8Array): number {
    const ids = this.pool.idArray()
    for (let i = 0; i < this.count[side]; i++) if (idEquals(id, ids, this.handle(side, i) * ID_BYTES)) return i
    return -1
  }

  has(id: Uint8Array): boolean { return this.indexOf(Side.CW, id) >= 0 || this.indexOf(Side.CCW, id) >= 0 }

  /** Where the id at offset would go on `side` (count[side] or more: it would not). */
  private placeOf(side: Side, ids: Uint8Array, offset: number): number {
    this.distance(side, ids, offset, da)
    let at = this.count[side]
    while (at > 0) {
      const other = this.handle(side, at - 1)
      if (compareAt(da, 0, this.distance(side, ids, other * ID_BYTES, db), 0) >= 0) break
      at--
    }
    return at
  }

  /** Whether offer() would take this id (on either side). */
  wants(id: Uint8Array): boolean {
    if (idEquals(id, this.self) || this.has(id)) return false
    for (const side of SIDES) {
      if (this.count[side] < this.half) return true
      const ids = this.pool.idArray()
      const far = this.handle(side, this.count[side] - 1)
      if (compareAt(this.distance(side, id, 0, da), 0, this.distance(side, ids, far * ID_BYTES, db), 0) < 0) return true
    }
    return false
  }

  /**
   * Takes handle h (retaining it once per side) where it is among the `half` nearest; the
   * leaves it pushes out go to `evicted`, still retained: the caller releases them. Returns
   * whether it was taken.
   */
  offer(h: number, seenMs: number, evicted: number[]): boolean {
    const ids = this.pool.idArray()
    if (idEquals(this.self, ids, h * ID_BYTES)) return false
    if (this.words === EMPTY) this.words = this.arena.words(4 * this.half)
    let taken = false
    for (const side of SIDES) {
      if (this.indexOf(side, ids.subarray(h * ID_BYTES, (h + 1) * ID_BYTES)) >= 0) continue
      const at = this.placeOf(side, ids, h * ID_BYTES)
      if (at >= this.half) continue
      const n = this.count[side]
      if (n === this.half) evicted.push(this.handle(side, n - 1))
      const last = Math.min(n, this.half - 1)
      const base = side * this.half, meta = (2 + side) * this.half
      this.words.copyWithin(base + at + 1, base + at, base + last)
      this.words.copyWithin(meta + at + 1, meta + at, meta + last)
      this.words[base + at] = h
      this.setState(side, at, seenMs, 0)
      this.pool.retain(h)
      this.count[side] = last + 1
      taken = true
    }
    return taken
  }

  /** A message came from this id: it is alive. Returns whether it is a leaf. */
  touch(id: Uint8Array, nowMs: number): boolean {
    let found = false
    for (const side of SIDES) {
      const i = this.indexOf(side, id)
      if (i >= 0) { this.setState(side, i, nowMs, 0); found = true }
    }
    return found
  }

  /** A request to this id went unanswered: its failure count (the larger of its places), 0 if not a leaf. */
  fail(id: Uint8Array): number {
    let fails = 0
    for (const side of SIDES) {
      const i = this.indexOf(side, id)
      if (i < 0) continue
      const f = this.failsAt(side, i) + 1
      this.setState(side, i, this.seenAt(side, i), f)
      fails = Math.max(fails, f)
    }
    return fails
  }

  /**
   * Takes this id out of the leaf set; its handles go to `removed`, still retained. Returns a
   * bit mask of the sides it left (1 << Side).
   */
  remove(id: Uint8Array, removed: number[]): number {
    let sides = 0
    for (const side of SIDES) {
      const i = this.indexOf(side, id)
      if (i < 0) continue
      removed.push(this.handle(side, i))
      const n = this.count[side], base = side * this.half, meta = (2 + side) * this.half
      this.words.copyWithin(base + i, base + i + 1, base + n)
      this.words.copyWithin(meta + i, meta + i + 1, meta + n)
      this.count[side] = n - 1
      sides |= 1 << side
    }
    return sides
  }

  /**
   * Whether target lies within the leaf set's range, so the leaf set alone decides where it
   * belongs. A side with room means the leaf set holds every node we know of: the whole ring.
   */
  covers(target: Uint8Array): boolean {
    if (this.count[Side.CW] < this.half || this.count[Side.CCW] < this.half) return true
    const ids = this.pool.idArray()
    for (const side of SIDES) {
      const far = this.handle(side, this.count[side] - 1)
      if (compareAt(this.distance(side, target, 0, da), 0, this.distance(side, ids, far * ID_BYTES, db), 0) <= 0) return true
    }
    return false
  }

  /** The place on `side` heard from least lately (the nearest of equals), or -1 when empty. */
  stalest(side: Side): number {
    let best = -1, oldest = Infinity
    for (let i = 0; i < this.count[side]; i++) {
      const seen = this.state(side, i) >>> 6
      if (seen < oldest) { oldest = seen; best = i }
    }
    return best
  }

  /** Calls fn for each place, clockwise side first, nearest first on each side. */
  forEach(fn: (h: number, side: Side, i: number) => void): void {
    for (const side of SIDES) for (let i = 0; i < this.count[side]; i++) fn(this.handle(side, i), side, i)
  }

  /** Fills an empty leaf set at once (the simulator's oracle fill): handles nearest first, retained here. */
  fill(cw: ArrayLike<number>, ccw: ArrayLike<number>, seenMs: number): void {
    if (this.total > 0) throw new Error('fill() is for an empty leaf set')
    if (cw.length > this.half || ccw.length > this.half) throw new Error('more leaves than the leaf set holds')
    if (this.words === EMPTY) this.words = this.arena.words(4 * this.half)
    const sides = [cw, ccw]
    for (const side of SIDES) {
      const list = sides[side]
      for (let i = 0; i < list.length; i++) {
        this.words[side * this.half + i] = list[i]
        this.pool.retain(list[i])
        this.setState(side, i, seenMs, 0)
      }
      this.count[side] = list.length
    }
  }

  /** Releases every handle. */
  clear(): void {
    this.forEach((h) => this.pool.release(h))
    this.count[0] = this.count[1] = 0
  }
}
