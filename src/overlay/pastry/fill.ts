// The simulator's oracle fill for Pastry: the leaf set and routing table a node would hold in a
// network without churn, read off the true node set in id order.
//   leaf set    the `half` nodes after this one in id order and the `half` before, wrapping round
//   row r       the nodes sharing our first r digits are one range in id order; splitting it bit
//               by bit on digit r gives one range per column, and each slot takes a random node of
//               its range. Our own column's range is row r + 1's.
// The column bounds of a range are found once per node set and kept (every node shares row 0's),
// so a node costs about one random pick per slot, and only rows that have entries are made: a
// million nodes fill in a minute or two for every b from 1 to 8.
import { ID_BITS, idEquals } from '../../identity/node-id.js'
import type { Random } from '../../runtime/runtime.js'
import type { NodeSet } from '../topology.js'
import { digitAt, digitCount } from './ids.js'

export interface PastryFill {
  /** Leaves clockwise (larger ids), nearest first. */
  cw: number[]
  /** Leaves counter-clockwise (smaller ids), nearest first. */
  ccw: number[]
  /** Table slots (row * 2^b + column) and the handle for each. */
  slots: number[]
  handles: number[]
}

/** Below this many nodes a row's range is scanned for its columns instead of split. */
const SCAN = 64
/** Column bounds kept per row of one node set (the top rows' ranges are the same for many nodes). */
const MAX_CACHED = 1 << 16

interface ColumnCache { size: number; b: number; rows: Map<number, Int32Array>[] }
const caches = new WeakMap<NodeSet, ColumnCache>()

/**
 * Where each column of row r starts in [lo, hi), a range of nodes sharing r digits: cols + 1
 * indices, found by splitting bit by bit. Every node with that prefix has the same row r ranges
 * (row 0's are everybody's), so they are kept for the node set while its size stays the same.
 */
function columnStarts(nodes: NodeSet, b: number, r: number, lo: number, hi: number): Int32Array {
  let cache = caches.get(nodes)
  if (!cache || cache.size !== nodes.size || cache.b !== b) caches.set(nodes, cache = { size: nodes.size, b, rows: [] })
  const row = (cache.rows[r] ??= new Map())
  const known = row.get(lo)
  if (known && known[known.length - 1] === hi) return known
  const cols = 1 << b, bit0 = r * b, bits = Math.min(b, ID_BITS - bit0) // the last digit may be short
  const starts = new Int32Array(cols + 1)
  const split = (l: number, h: number, depth: number, prefix: number): void => {
    if (depth === bits) {
      const col = prefix << (b - bits)
      starts[col] = l
      for (let c = col + 1; c <= cols && (c & ((1 << (b - bits)) - 1)) !== 0; c++) starts[c] = h // a short digit's unused columns: empty
      return
    }
    const mid = l < h ? nodes.split(l, h, bit0 + depth) : l
    split(l, mid, depth + 1, prefix * 2)
    split(mid, h, depth + 1, prefix * 2 + 1)
  }
  split(lo, hi, 0, 0)
  starts[cols] = hi
  if (row.size < MAX_CACHED) row.set(lo, starts)
  return starts
}

/**
 * Calls fn(row, column, lo, hi) for every non-empty slot of `self`'s prefix table: [lo, hi) is
 * the range, in id order, of the nodes that fit the slot. Pastry and Tapestry pick from it.
 */
export function forEachSlotRange(self: Uint8Array, b: number, nodes: NodeSet, fn: (row: number, col: number, lo: number, hi: number) => void): void {
  const n = nodes.size
  if (n === 0) return
  const at = nodes.search(self)
  const selfIn = at < n && idEquals(nodes.idAt(at), self)
  const cols = 1 << b, rows = digitCount(b)
  let lo = 0, hi = n
  for (let r = 0; r < rows && hi - lo > (selfIn ? 1 : 0); r++) {
    const mine = digitAt(self, r, b)
    let nextLo = 0, nextHi = 0
    const take = (l: number, h: number, col: number): void => {
      if (col === mine) { nextLo = l; nextHi = h; return }
      fn(r, col, l, h)
    }
    if (hi - lo <= SCAN) {
      // Small range: one pass, the columns come in runs (the range is in id order).
      for (let s = lo; s < hi;) {
        const col = digitAt(nodes.idAt(s), r, b)
        let e = s + 1
        while (e < hi && digitAt(nodes.idAt(e), r, b) === col) e++
        take(s, e, col)
        s = e
      }
    } else {
      const starts = columnStarts(nodes, b, r, lo, hi)
      for (let col = 0; col < cols; col++) if (starts[col + 1] > starts[col]) take(starts[col], starts[col + 1], col)
    }
    lo = nextLo
    hi = nextHi
  }
}

export function pastryFill(self: Uint8Array, b: number, half: number, nodes: NodeSet, random: Random): PastryFill {
  const n = nodes.size
  const out: PastryFill = { cw: [], ccw: [], slots: [], handles: [] }
  if (n === 0) return out
  const at = nodes.search(self)
  const selfIn = at < n && idEquals(nodes.idAt(at), self)
  const others = n - (selfIn ? 1 : 0)
  const perSide = Math.min(half, others)
  const after = selfIn ? at + 1 : at
  for (let j = 0; j < perSide; j++) out.cw.push(nodes.at((after + j) % n))
  for (let j = 0; j < perSide; j++) out.ccw.push(nodes.at((((at - 1 - j) % n) + n) % n))
  const cols = 1 << b
  forEachSlotRange(self, b, nodes, (r, col, l, h) => {
    out.slots.push(r * cols + col)
    out.handles.push(nodes.at(l + (random.u32() % (h - l))))
  })
  return out
}
