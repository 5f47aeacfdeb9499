// The polyring in `weft sim` (--topology polyring, --compare ...,polyring): a StaticPolyring
// (src/overlay/polyring/sim.ts: one sans-IO PolyringPeer per GUID on a MemoryWorld) of a
// balanced shape for each size, measured the way the uniring rows are: routed messages between
// random peers (hops, latency, messages), table sizes, bytes per node, and one broadcast by the
// seed's rules. It reports a SimResult so the same table, JSON and plot carry it.
import { WeftError } from '../errors.js'
import { SeededRandom } from '../runtime/prng.js'
import { MAX_SIM_PEERS, StaticPolyring, type BroadcastStats } from '../overlay/polyring/sim.js'
import { NONE } from '../overlay/polyring/table.js'
import { encodePayload, encodeWire } from '../overlay/polyring/wire.js'
import type { Guid } from '../overlay/polyring/guid.js'
import { distribution, histogram, percentiles } from './simulation.js'
import { heapBytes } from './run.js'
import type { BroadcastCost, SimReport, SimResult } from './report.js'

/** The link model StaticPolyring runs on, in words (it is not --latency's). */
export const POLYRING_LINKS = 'polyring links: 10-50 ms one way (fixed per link), 1 ms per copy sent'
/** The balanced shape's depth: a centre ring, its children, their children. */
export const BALANCED_DEPTH = 3

export interface PolyringRunOptions {
  /** Peers wanted per run; each gets balancedShape(n). Ignored when `shapes` is given. */
  sizes: number[]
  /** Explicit shapes (--shape), one run each. */
  shapes?: number[][]
  lookups: number
  seed: string
  /** Routed messages in flight at once (as --concurrency for lookups). */
  concurrency?: number
  onProgress?: (size: number, phase: string, done: number, total: number, eventsPerSecond: number) => void
}

/** Peers in a full shape: a + ab + abc + ... */
export function shapePeers(shape: number[]): number {
  let total = 0, level = 1
  for (const s of shape) { level *= s; total += level }
  return total
}

/**
 * The shape used for n peers: three levels a × b × c (a centre peers, b children each, c
 * grandchildren each) with a + ab + abc as near n as can be, exactly n where some a, b, c fit,
 * each within [∛n / 2, 2∛n]; among equally near, the most balanced (smallest max / min, then
 * the larger centre ring). Below 14 peers (2x2x2), one ring of n.
 */
export function balancedShape(n: number): number[] {
  if (!Number.isInteger(n) || n < 1) throw new WeftError('ERR_BAD_ARGUMENT', `polyring size must be a whole number of at least 1, got ${n}`)
  if (n < 14) return [n]
  const root = Math.cbrt(n)
  const lo = Math.max(2, Math.floor(root / 2)), hi = Math.max(lo + 1, Math.ceil(2 * root))
  let best: number[] = [n], bestOff = Infinity, bestRatio = Infinity
  for (let a = lo; a <= hi; a++) {
    for (let b = lo; b <= hi; b++) {
      const exact = (n - a - a * b) / (a * b)
      for (const c of new Set([Math.floor(exact), Math.ceil(exact)])) {
        if (c < lo || c > hi) continue
        const off = Math.abs(a + a * b + a * b * c - n)
        const ratio = Math.max(a, b, c) / Math.min(a, b, c)
        if (off < bestOff || (off === bestOff && (ratio < bestRatio || (ratio === bestRatio && a > best[0])))) {
          best = [a, b, c]; bestOff = off; bestRatio = ratio
        }
      }
    }
  }
  return best
}

/**
 * The exact mean route length between two peers drawn uniformly (with replacement) from a full
 * shape. A route from A to B with M shared coordinates takes LA + LB − 2M − 1 hops, |LA − LB|
 * when one is the other's ancestor, 0 to itself; B's first m coordinates match A's with
 * probability 1 / (peers at level m).
 */
export function expectedPolyringHops(shape: number[]): number {
  const count: number[] = [1] // count[l]: peers at level l (GUIDs of length l); count[0] = 1, the empty prefix
  for (const s of shape) count.push(count[count.length - 1] * s)
  const total = shapePeers(shape)
  let sum = 0
  for (let i = 1; i <= shape.length; i++) {
    for (let j = 1; j <= shape.length; j++) {
      const L = Math.min(i, j)
      let e = 0
      for (let m = 0; m <= L; m++) {
        const p = m === L ? 1 / count[L] : 1 / count[m] - 1 / count[m + 1]
        e += p * (m === L ? Math.abs(i - j) : i + j - 2 * m - 1)
      }
      sum += (count[i] / total) * (count[j] / total) * e
    }
  }
  return sum
}

/** Longest bound a route takes in a shape of this depth. */
export const hopBound = (depth: number): number => 2 * depth - 1

/** One run per size (or per explicit shape). */
export async function runPolyring(o: PolyringRunOptions): Promise<SimReport[]> {
  const shapes = o.shapes ?? o.sizes.map(balancedShape)
  const reports: SimReport[] = []
  for (const shape of shapes) {
    const peers = shapePeers(shape)
    if (peers > MAX_SIM_PEERS) throw new WeftError('ERR_TOO_LARGE', `polyring shape ${shape.join('x')} has ${peers.toLocaleString('en')} peers, over ${MAX_SIM_PEERS.toLocaleString('en')}`)
    reports.push(await runOne(shape, o))
    await new Promise((resolve) => setImmediate(resolve)) // let a progress bar draw
  }
  return reports
}

async function runOne(shape: number[], o: PolyringRunOptions): Promise<SimReport> {
  const started = Date.now()
  const before = await heapBytes()
  const progress = (phase: string, done: number, total: number) => o.onProgress?.(shapePeers(shape), phase, done, total, 0)
  progress('building', 0, 1)
  const ring = new StaticPolyring({ shape })
  const net = ring.network(`${o.seed}:polyring`)
  const perNode = ((await heapBytes()) - before) / ring.peers
  progress('building', 1, 1)

  // Routed messages between random peers, `concurrency` in flight: each new one leaves when one arrives.
  const random = new SeededRandom(`${o.seed}:polyring:routes`)
  const count = o.lookups, inFlight = Math.max(1, o.concurrency ?? 32)
  const target = new Int32Array(count), source = new Int32Array(count), sentAt = new Float64Array(count)
  const hops: number[] = [], latency: number[] = []
  let issued = 0, finished = 0, wrong = 0, overBound = 0, wireBytes = 0
  const bound = hopBound(ring.depth)
  const sent0 = net.sent, events0 = net.world.stats.events, t0 = net.world.now()
  const issue = (): void => {
    const i = issued++
    const a = ring.randomPeer(random), b = ring.randomPeer(random)
    target[i] = b
    source[i] = a
    sentAt[i] = net.world.now()
    net.peers[a].send(ring.guidOf(b), Uint8Array.of(i & 0xff, (i >>> 8) & 0xff, (i >>> 16) & 0xff, i >>> 24))
  }
  net.onDeliver = (h, m) => {
    if (m.kind !== 'route') return
    const i = (m.data[0] | (m.data[1] << 8) | (m.data[2] << 16) | (m.data[3] << 24)) >>> 0
    finished++
    if (target[i] !== h) wrong++
    else {
      hops.push(m.hops)
      latency.push(net.world.now() - sentAt[i])
      if (m.hops > bound) overBound++
      wireBytes += m.hops * routedFrameBytes(ring.guidOf(source[i]), m.dest) // one frame per hop
    }
    if (finished % 1000 === 0 || finished === count) progress('routing', finished, count)
    if (issued < count) issue()
  }
  while (issued < count) {
    // A message dropped (no route) never frees its slot: start a fresh window after each drain.
    for (let k = 0; k < inFlight && issued < count; k++) issue()
    while (net.world.step()) { /* run */ }
  }
  net.onDeliver = null
  const routeMs = net.world.now() - t0
  const routeEvents = net.world.stats.events - events0
  const routedSent = net.sent - sent0

  const tables: number[] = new Array(ring.peers)
  for (let h = 0; h < ring.peers; h++) {
    const t = ring.tables[h]
    tables[h] = (t.parent !== NONE ? 1 : 0) + t.siblingCount + t.childCount
  }

  progress('broadcast', 0, 1)
  const origin = ring.randomPeer(new SeededRandom(`${o.seed}:polyring:broadcast`))
  const b = ring.broadcast(origin, { order: 'up-first' })
  progress('broadcast', 1, 1)

  const expected = expectedPolyringHops(shape)
  const delivered = hops.length
  const distHops = distribution(hops)
  const simulated: SimResult = {
    topology: 'polyring', nodes: ring.peers, seed: o.seed, build: 'static', k: 0, alpha: 0, refreshMs: null, b: null, warmupMs: 0, failAtOnce: 0,
    latencyModel: POLYRING_LINKS, loss: 0, churnMedianMs: null, adversaries: 0,
    lookups: count, succeeded: delivered, successRate: round(delivered / count, 6), recall: round(delivered / count, 6),
    hops: { ...distHops, histogram: histogram(hops) },
    latencyMs: { ...distribution(latency), cdf: percentiles(latency) },
    routing: { successRate: round(delivered / count, 6), hops: distHops },
    messagesPerLookup: round(routedSent / count, 3),
    bytesPerLookup: round(wireBytes / count, 1),
    tableSize: distribution(tables),
    theoreticalHops: round(expected, 3),
    theory: `exact mean for random pairs on ${shape.join('x')} (LA + LB − 2M − 1 hops); bound 2 × depth − 1 = ${bound}`,
    virtualTimeMs: round(routeMs, 3), events: routeEvents, datagrams: routedSent,
    location: null,
    broadcast: polyringBroadcastCost(b, origin),
    polyring: { shape, depth: ring.depth, hopBound: bound, overBound, wrong, lost: count - finished },
  }
  const wallMs = Date.now() - started
  return {
    simulated,
    machine: { wallMs, eventsPerSecond: Math.round((routeEvents + b.events) / Math.max(0.001, wallMs / 1000)), peakRssBytes: process.resourceUsage().maxRSS * 1024, bytesPerNode: Math.round(perNode) },
  }
}

function polyringBroadcastCost(b: BroadcastStats, origin: number): BroadcastCost {
  return {
    method: `polyring: the seed's rules, ${b.order}`, origin, nodes: b.peers, reached: b.reached, reachedShare: round(b.reached / b.peers, 6),
    messages: b.sent, messagesPerNode: round(b.sent / b.peers, 4), duplicates: b.duplicates,
    completionMs: round(b.completionMs, 3), medianMs: round(b.medianMs, 3), sendMs: 1,
  }
}

/** Bytes of one routed DATA frame as a real node encodes it (wire.ts; an empty user payload, no channel or session header). */
function routedFrameBytes(origin: Guid, dest: Guid): number {
  return encodeWire({ kind: 'route', dest, hops: 0, data: encodePayload({ kind: 'data', origin, data: new Uint8Array(0) }) }).length
}

function round(x: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}

