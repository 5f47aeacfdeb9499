// The simulator's view of the truth: every node ever created, sorted by id, and which are alive.
// It answers "which live nodes are really closest to this key" to judge lookups, and gives the
// id ranges (split by bit) that an oracle fill of routing tables needs.
import { compareDistance, ID_BITS, ID_BYTES } from '../identity/node-id.js'
import type { ContactPool } from '../overlay/contact-pool.js'
import type { Metric } from '../overlay/metric.js'
import { digitAt, digitCount } from '../overlay/pastry/ids.js'
import type { NodeSet } from '../overlay/topology.js'
import type { Random } from '../runtime/runtime.js'

const ZERO = new Uint8Array(ID_BYTES) // XOR distance from zero is id order

/** Below this many nodes in a range, closest() sorts instead of splitting further. */
const LEAF = 16

export class Oracle implements NodeSet {
  /** Pool handles in id order. */
  private sorted = new Uint32Array(1024)
  private count = 0
  /** Live handles, unordered, and each handle's place in that list (-1: dead or unknown). */
  private live = new Uint32Array(1024)
  private liveCount = 0
  private livePos = new Int32Array(1024).fill(-1)

  /** The typical RTT between two nodes (pool handles), set by a simulation whose links have a model of it. */
  rtt?: (a: number, b: number) => number

  constructor(private readonly pool: ContactPool) {}

  get size(): number { return this.count }
  get alive(): number { return this.liveCount }

  private get ids(): Uint8Array { return this.pool.idArray() }

  /** Adds a node (alive) in id order. Building many at once: call addAll. */
  add(h: number): void {
    this.ensure(h + 1, this.count + 1)
    let lo = 0, hi = this.count
    const ids = this.ids
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (compareDistance(ZERO, ids, ids, this.sorted[mid] * ID_BYTES, h * ID_BYTES) < 0) lo = mid + 1
      else hi = mid
    }
    this.sorted.copyWithin(lo + 1, lo, this.count)
    this.sorted[lo] = h
    this.count++
    this.setAlive(h, true)
  }

  /** Adds many nodes at once (one sort instead of an insertion each). */
  addAll(handles: ArrayLike<number>): void {
    const all = Array.from(this.sorted.subarray(0, this.count))
    for (let i = 0; i < handles.length; i++) all.push(handles[i])
    const ids = this.ids
    all.sort((a, b) => {
      for (let i = 0; i < ID_BYTES; i++) {
        const d = ids[a * ID_BYTES + i] - ids[b * ID_BYTES + i]
        if (d !== 0) return d
      }
      return 0
    })
    let max = 0
    for (const h of all) max = Math.max(max, h)
    this.ensure(max + 1, all.length)
    this.sorted.set(all)
    this.count = all.length
    for (let i = 0; i < handles.length; i++) this.setAlive(handles[i], true)
  }

  setAlive(h: number, alive: boolean): void {
    const at = this.livePos[h]
    if (alive && at < 0) {
      this.live[this.liveCount] = h
      this.livePos[h] = this.liveCount++
    } else if (!alive && at >= 0) {
      const last = this.live[--this.liveCount]
      this.live[at] = last
      this.livePos[last] = at
      this.livePos[h] = -1
    }
  }

  isAlive(h: number): boolean { return this.livePos[h] >= 0 }

  randomLive(random: Random): number {
    return this.live[random.u32() % this.liveCount]
  }

  at(i: number): number { return this.sorted[i] }

  idAt(i: number): Uint8Array { const o = this.sorted[i] * ID_BYTES; return this.ids.subarray(o, o + ID_BYTES) }

  search(id: Uint8Array): number {
    const ids = this.ids
    let lo = 0, hi = this.count
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (compareDistance(ZERO, ids, id, this.sorted[mid] * ID_BYTES) < 0) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  /** The n live nodes most responsible for target by `metric`, best first (handles). */
  closestBy(metric: Metric, target: Uint8Array, n: number): number[] {
    if (metric.name === 'xor') return this.closest(target, n)
    if (metric.name === 'surrogate') {
      const out: number[] = []
      this.collectByDigits(metric, target, n, 0, this.count, 0, out)
      return out
    }
    // Ring metrics: the answer lies within n live nodes either side of the key's place in id order.
    const out: number[] = []
    const start = this.search(target)
    for (let step = 0, after = 0; after < n && step < this.count; step++) {
      const h = this.sorted[(start + step) % this.count]
      if (this.isAlive(h)) { out.push(h); after++ }
    }
    if (metric.name === 'numeric') {
      for (let step = 1, before = 0; before < n && step < this.count; step++) {
        const h = this.sorted[(start - step + this.count * 2) % this.count]
        if (this.isAlive(h) && !out.includes(h)) { out.push(h); before++ }
      }
      const ids = this.ids
      out.sort((a, b) => metric.compare(target, ids.subarray(a * ID_BYTES, (a + 1) * ID_BYTES), ids.subarray(b * ID_BYTES, (b + 1) * ID_BYTES)))
    }
    return out.slice(0, n)
  }

  split(lo: number, hi: number, bit: number): number {
    const ids = this.ids, byte = bit >> 3, mask = 0x80 >> (bit & 7)
    while (lo < hi) { const m = (lo + hi) >> 1; if (ids[this.sorted[m] * ID_BYTES + byte] & mask) hi = m; else lo = m + 1 }
    return lo
  }

  /** The n live nodes nearest target by XOR, nearest first (handles). */
  closest(target: Uint8Array, n: number): number[] {
    const out: number[] = []
    this.collect(target, n, 0, this.count, 0, out)
    return out
  }

  // All nodes in [lo, hi) share `depth` leading bits. XOR order is the order of (id ^ target), so
  // the half whose next bit matches the target's comes first, then the other half.
  private collect(target: Uint8Array, n: number, lo: number, hi: number, depth: number, out: number[]): void {
    if (out.length >= n || lo >= hi) return
    const ids = this.ids
    if (hi - lo <= LEAF || depth >= ID_BITS) {
      const leaf: number[] = []
      for (let i = lo; i < hi; i++) if (this.isAlive(this.sorted[i])) leaf.push(this.sorted[i])
      leaf.sort((a, b) => compareDistance(target, ids, ids, a * ID_BYTES, b * ID_BYTES))
      for (const h of leaf) { if (out.length >= n) return; out.push(h) }
      return
    }
    const a = this.split(lo, hi, depth)
    if (target[depth >> 3] & (0x80 >> (depth & 7))) {
      this.collect(target, n, a, hi, depth + 1, out)
      this.collect(target, n, lo, a, depth + 1, out)
    } else {
      this.collect(target, n, lo, a, depth + 1, out)
      this.collect(target, n, a, hi, depth + 1, out)
    }
  }

  // Surrogate order: all nodes in [lo, hi) share `digit` leading digits. The columns of the next
  // digit come in the order (column - target's digit) mod 2^b, each a range split out bit by bit.
  private collectByDigits(metric: Metric, target: Uint8Array, n: number, lo: number, hi: number, digit: number, out: number[]): void {
    if (out.length >= n || lo >= hi) return
    const b = metric.b!
    if (hi - lo <= LEAF || digit >= digitCount(b)) {
      const ids = this.ids
      const leaf: number[] = []
      for (let i = lo; i < hi; i++) if (this.isAlive(this.sorted[i])) leaf.push(this.sorted[i])
      leaf.sort((x, y) => metric.compare(target, ids.subarray(x * ID_BYTES, (x + 1) * ID_BYTES), ids.subarray(y * ID_BYTES, (y + 1) * ID_BYTES)))
      for (const h of leaf) { if (out.length >= n) return; out.push(h) }
      return
    }
    const cols = 1 << b, bit0 = digit * b, bits = Math.min(b, ID_BITS - bit0) // the last digit may be short
    const from = new Int32Array(cols), to = new Int32Array(cols)
    const split = (l: number, h: number, depth: number, prefix: number): void => {
      if (depth === bits) { const col = prefix << (b - bits); from[col] = l; to[col] = h; return }
      const mid = l < h ? this.split(l, h, bit0 + depth) : l
      split(l, mid, depth + 1, prefix * 2)
      split(mid, h, depth + 1, prefix * 2 + 1)
    }
    split(lo, hi, 0, 0)
    const td = digitAt(target, digit, b)
    for (let j = 0; j < cols && out.length < n; j++) {
      const c = (td + j) & (cols - 1)
      this.collectByDigits(metric, target, n, from[c], to[c], digit + 1, out)
    }
  }

  private ensure(handles: number, count: number): void {
    if (count > this.sorted.length) { const s = new Uint32Array(Math.max(count, this.sorted.length * 2)); s.set(this.sorted); this.sorted = s }
    if (count > this.live.length) { const l = new Uint32Array(Math.max(count, this.live.length * 2)); l.set(this.live); this.live = l }
    if (handles > this.livePos.length) {
      const p = new Int32Array(Math.max(handles, this.livePos.length * 2)).fill(-1)
      p.set(this.livePos)
      this.livePos = p
    }
  }
}
