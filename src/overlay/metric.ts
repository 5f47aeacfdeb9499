// Which nodes are responsible for a key, by topology: the order in which a lookup ranks
// candidates, the oracle judges results and the DHT picks replicas.
//   xor        Kademlia: the smallest id XOR key
//   successor  Chord: the first ids at or after the key, going clockwise round the ring
//   numeric    Pastry: the ids numerically nearest the key on the ring, either side
//   surrogate  Tapestry: digit by digit from the first, the id whose digit is the key's or the
//              next higher one that exists, wrapping round (surrogate routing's root)
import { compareDistance, ID_BYTES, type NodeId } from '../identity/node-id.js'
import { digitAt, digitCount } from './pastry/ids.js'

export type MetricName = 'xor' | 'successor' | 'numeric' | 'surrogate'

export interface Metric {
  readonly name: MetricName
  /** Bits per digit, for metrics that read ids as digits (surrogate). */
  readonly b?: number
  /** Negative when `a` comes before `b` (is more responsible for `target`), 0 when a = b. */
  compare(target: Uint8Array, a: Uint8Array, b: Uint8Array): number
}

/** Big-endian unsigned comparison of two ids. */
export function compareIds(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < ID_BYTES; i++) if (a[i] !== b[i]) return a[i] - b[i]
  return 0
}

/** (a - b) mod 2^256 into out. */
export function ringSubtract(a: Uint8Array, b: Uint8Array, out: Uint8Array): Uint8Array {
  let borrow = 0
  for (let i = ID_BYTES - 1; i >= 0; i--) {
    const d = a[i] - b[i] - borrow
    out[i] = d & 0xff
    borrow = d < 0 ? 1 : 0
  }
  return out
}

export const xorMetric: Metric = { name: 'xor', compare: (t, a, b) => compareDistance(t, a, b) }

export const successorMetric: Metric = {
  name: 'successor',
  // Clockwise distance from the key: ids at or past it come first (in id order), then the ids
  // that wrapped round (also in id order).
  compare(t, a, b) {
    const aPast = compareIds(a, t) >= 0, bPast = compareIds(b, t) >= 0
    if (aPast !== bPast) return aPast ? -1 : 1
    return compareIds(a, b)
  },
}

const da = new Uint8Array(ID_BYTES), db = new Uint8Array(ID_BYTES), tmp = new Uint8Array(ID_BYTES)
/** The shorter way round the ring from t to x, into out. */
function ringDistance(t: Uint8Array, x: Uint8Array, out: Uint8Array): Uint8Array {
  ringSubtract(x, t, out)
  ringSubtract(t, x, tmp)
  if (compareIds(tmp, out) < 0) out.set(tmp)
  return out
}

export const numericMetric: Metric = {
  name: 'numeric',
  // Equal distances either side of the key: the one clockwise of it wins, so every node agrees.
  compare(t, a, b) {
    const d = compareIds(ringDistance(t, a, da), ringDistance(t, b, db))
    return d !== 0 ? d : successorMetric.compare(t, a, b)
  },
}

const surrogates = new Map<number, Metric>()
/**
 * Tapestry's order for digits of b bits: ids compare by (digit - key's digit) mod 2^b, digit by
 * digit from the first. The least id is the node that surrogate routing reaches from anywhere:
 * each step takes the key's digit, or the next higher digit that some node has. With b = 1 this
 * is XOR order.
 */
export function surrogateMetric(b: number): Metric {
  let m = surrogates.get(b)
  if (!m) {
    const mask = (1 << b) - 1, digits = digitCount(b)
    m = {
      name: 'surrogate', b,
      compare(t, x, y) {
        for (let i = 0; i < digits; i++) {
          const td = digitAt(t, i, b)
          const d = ((digitAt(x, i, b) - td) & mask) - ((digitAt(y, i, b) - td) & mask)
          if (d !== 0) return d
        }
        return 0
      },
    }
    surrogates.set(b, m)
  }
  return m
}

/** `n` of `contacts` most responsible for `target` by `metric`, best first. */
export function rank<T extends { id: NodeId }>(metric: Metric, target: Uint8Array, contacts: T[], n = contacts.length): T[] {
  return contacts.slice().sort((x, y) => metric.compare(target, x.id, y.id)).slice(0, n)
}
