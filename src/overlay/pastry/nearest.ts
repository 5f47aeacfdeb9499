// The n contacts numerically nearest a key, picked from a stream of pool handles without sorting
// them all or copying an id: what closest() and nextHop() ask of the leaf set and the table.
// The order is numericMetric's: distance the shorter way round the ring, the clockwise id first
// on a tie.
import { ID_BYTES } from '../../identity/node-id.js'
import { compareAt, ringDistanceAt } from './ids.js'

const scratch = new Uint8Array(ID_BYTES)

export class Nearest {
  /** Handles, nearest first. */
  readonly handles: number[] = []
  private readonly dist: Uint8Array
  private readonly clockwise: boolean[] = []

  constructor(private readonly target: Uint8Array, private readonly n: number) {
    this.dist = new Uint8Array(Math.max(1, n) * ID_BYTES)
  }

  get size(): number { return this.handles.length }

  /** Negative when (scratch, cw) is nearer than entry j. */
  private compare(cw: boolean, j: number): number {
    const d = compareAt(scratch, 0, this.dist, j * ID_BYTES)
    if (d !== 0) return d
    return cw === this.clockwise[j] ? 0 : cw ? -1 : 1
  }

  /** Offers the contact with handle h whose id is at `offset` in `ids`. */
  offer(h: number, ids: Uint8Array, offset: number): void {
    if (this.n <= 0) return
    const cw = ringDistanceAt(this.target, ids, offset, scratch)
    let at = this.handles.length
    if (at === this.n && this.compare(cw, at - 1) >= 0) return // not nearer than the farthest kept
    while (at > 0) {
      const c = this.compare(cw, at - 1)
      if (c === 0) return // the same id: already kept
      if (c > 0) break
      at--
    }
    // Make room at `at`, dropping the farthest when full.
    const last = Math.min(this.handles.length, this.n - 1)
    this.dist.copyWithin((at + 1) * ID_BYTES, at * ID_BYTES, last * ID_BYTES)
    this.dist.set(scratch, at * ID_BYTES)
    this.handles.splice(at, 0, h)
    this.clockwise.splice(at, 0, cw)
    if (this.handles.length > this.n) { this.handles.pop(); this.clockwise.pop() }
  }

  /** Whether the id at `offset` is nearer the target than the nearest kept (true when none is). */
  nearerThanBest(ids: Uint8Array, offset: number): boolean {
    const cw = ringDistanceAt(this.target, ids, offset, scratch)
    return this.handles.length === 0 || this.compare(cw, 0) < 0
  }
}
