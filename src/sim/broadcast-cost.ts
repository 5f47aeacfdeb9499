// The cost of a broadcast on a uniring topology, measured on the built network's own routing
// tables: flooding, the simplest broadcast any table allows. The origin sends a copy to every
// contact in its table; every node, the first time it gets a copy, sends one to every contact
// in its table but the node it got it from (one copy per distinct contact: Pastry lists some
// twice, in its leaf set and its table). A node sends its copies one after another,
// FLOOD_SEND_MS each (as the polyring simulator's peers do), and a copy takes the link model's
// typical one-way time (RTT / 2). No loss. Computed exactly, in virtual time, as shortest
// arrival times (Dijkstra: a node forwards once, at its first arrival), not by sending datagrams.
import { SeededRandom } from '../runtime/prng.js'
import type { BroadcastCost } from './report.js'
import type { Simulation } from './simulation.js'

/** Uplink time per copy, as the polyring simulator's (sim.ts) 1 ms. */
export const FLOOD_SEND_MS = 1
/**
 * Most table entries (over all live nodes) a flood is measured on: reading a table through
 * `Topology.entries()` costs about 4 µs an entry, so 5 M is about 20 s (Kademlia at 100,000
 * nodes holds 26 M). Above it the cost is not measured (null).
 */
export const MAX_FLOOD_ENTRIES = 5_000_000

/** One flood from a random live node (drawn from the seed), or null when the tables hold over MAX_FLOOD_ENTRIES. */
export function floodCost(sim: Simulation, seed: string, onProgress?: (done: number, total: number) => void): BroadcastCost | null {
  const n = sim.nodeCount
  const live = new Uint8Array(n)
  let liveCount = 0, entries = 0
  for (let i = 0; i < n; i++) {
    const node = sim.node(i)
    if (node) { live[i] = 1; liveCount++; entries += node.topology.size() }
  }
  if (entries > MAX_FLOOD_ENTRIES) return null
  const random = new SeededRandom(`${seed}:broadcast`)
  let origin = -1
  while (origin < 0 && liveCount > 0) { const j = random.u32() % n; if (live[j]) origin = j }

  const arrival = new Float64Array(n).fill(Infinity)
  const from = new Int32Array(n).fill(-1)
  const done = new Uint8Array(n)
  const sentBy = new Int32Array(n).fill(-1) // a contact listed twice (Pastry: leaf set and table) gets one copy
  const heap = new MinHeap()
  let reached = 0, messages = 0, toLive = 0, last = 0
  const times: number[] = []
  if (origin >= 0) { arrival[origin] = 0; heap.push(0, origin) }
  while (heap.size > 0) {
    const u = heap.popNode()
    if (done[u]) continue // a stale entry: u was reached sooner
    done[u] = 1
    reached++
    const t = arrival[u]
    times.push(t)
    if (t > last) last = t
    if (reached % 10_000 === 0) onProgress?.(reached, liveCount)
    const contacts = sim.contactIndices(u)
    if (!contacts) continue
    let k = 0
    for (const v of contacts) {
      if (v === u || v === from[u] || (v >= 0 && v < n && sentBy[v] === u)) continue
      if (v >= 0 && v < n) sentBy[v] = u
      k++
      messages++
      if (v < 0 || v >= n || !live[v]) continue // sent to a node that is gone: lost
      toLive++
      if (done[v]) continue
      const at = t + k * FLOOD_SEND_MS + sim.rttBetween(u, v) / 2
      if (at < arrival[v]) { arrival[v] = at; from[v] = u; heap.push(at, v) }
    }
  }
  onProgress?.(liveCount, liveCount)
  times.sort((a, b) => a - b)
  return {
    method: `flooding over each node's routing table (each node forwards once to all its contacts)`, origin,
    nodes: liveCount, reached, reachedShare: round(liveCount ? reached / liveCount : 0, 6),
    messages, messagesPerNode: round(liveCount ? messages / liveCount : 0, 4), duplicates: toLive - Math.max(0, reached - 1),
    completionMs: round(last, 3), medianMs: round(times.length ? times[Math.floor(times.length / 2)] : 0, 3), sendMs: FLOOD_SEND_MS,
  }
}

/** A binary min-heap of (time, node), ties by node: deterministic. */
class MinHeap {
  private t = new Float64Array(1024)
  private v = new Int32Array(1024)
  size = 0
  push(time: number, node: number): void {
    if (this.size === this.t.length) {
      const t = new Float64Array(this.size * 2); t.set(this.t); this.t = t
      const v = new Int32Array(this.size * 2); v.set(this.v); this.v = v
    }
    let i = this.size++
    while (i > 0) {
      const p = (i - 1) >> 1
      if (this.t[p] < time || (this.t[p] === time && this.v[p] <= node)) break
      this.t[i] = this.t[p]; this.v[i] = this.v[p]; i = p
    }
    this.t[i] = time; this.v[i] = node
  }
  popNode(): number {
    const top = this.v[0]
    const time = this.t[--this.size], node = this.v[this.size]
    let i = 0
    for (;;) {
      let c = 2 * i + 1
      if (c >= this.size) break
      if (c + 1 < this.size && (this.t[c + 1] < this.t[c] || (this.t[c + 1] === this.t[c] && this.v[c + 1] < this.v[c]))) c++
      if (time < this.t[c] || (time === this.t[c] && node <= this.v[c])) break
      this.t[i] = this.t[c]; this.v[i] = this.v[c]; i = c
    }
    this.t[i] = time; this.v[i] = node
    return top
  }
}

function round(x: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}
