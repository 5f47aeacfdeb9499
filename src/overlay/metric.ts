// Which nodes are responsible for a key, by topology: the order in which a lookup ranks
// candidates, the oracle judges results and the DHT picks replicas.
//   xor        Kademlia: the smallest id XOR key
//   successor  Chord: the first ids at or after the key, going clockwise round the ring
//   numeric    Pastry: the ids numerically nearest the key on the ring, either side
import { compareDistance, ID_BYTES, type NodeId } from '../identity/node-id.js'

export type MetricName = 'xor' | 'successor' | 'numeric'

export interface Metric {
  readonly name: MetricName
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

export const metrics: Record<MetricName, Metric> = { xor: xorMetric, successor: successorMetric, numeric: numericMetric }

/** `n` of `contacts` most responsible for `target` by `metric`, best first. */
export function rank<T extends { id: NodeId }>(metric: Metric, target: Uint8Array, contacts: T[], n = contacts.length): T[] {
  return contacts.slice().sort((x, y) => metric.compare(target, x.id, y.id)).slice(0, n)
}
