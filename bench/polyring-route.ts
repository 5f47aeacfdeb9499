// `npm run bench:polyring`: the polyring's routing decision and its static-shape simulation.
//   decision  nanoseconds per nextHop() on one table whose ring has 10, 1,000 and 100,000
//             siblings (and as many children), for a mix of destinations over the five cases
//             and for each case alone: the figure must not grow with the ring.
//   shapes    10x10x10 and 100x100x100 (1,010,100 peers; skip with --quick): build, 100,000
//             routed messages between random peers, broadcast from a random peer up-first and
//             sideways-first, multicast to 1,000 distinct random receivers.
// Writes bench/results/polyring-route.json and the polyring-route section of docs/benchmarks.md.
//
//   npm run bench:polyring [-- --seed 1] [--quick]
import { readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { type Guid, guid } from '../src/overlay/polyring/guid.js'
import { nextHop, routeCase, RouteCase } from '../src/overlay/polyring/route.js'
import { PolyringTable } from '../src/overlay/polyring/table.js'
import { StaticPolyring, type BroadcastStats, type MulticastStats, type RouteStats } from '../src/overlay/polyring/sim.js'
import { SeededRandom } from '../src/runtime/prng.js'
import { section, spliceSection } from './lib/doc-sections.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const RESULTS = `${ROOT}bench/results/polyring-route.json`
const DOC = `${ROOT}docs/benchmarks.md`
const argv = process.argv.slice(2)
const seedArg = argv.indexOf('--seed')
const seed = seedArg >= 0 ? argv[seedArg + 1] : '1'
const quick = argv.includes('--quick')
const random = new SeededRandom(`polyring-bench:${seed}`)

// ---- decision time -------------------------------------------------------------------------
const RING_SIZES = [10, 1_000, 100_000]
const DESTS = 4096 // a power of two: the loop indexes with a mask
const ITERATIONS = 4_000_000
const TRIALS = 7

/** A depth-2 table, self [3.k], ring of `size` siblings, `size` children, a parent. */
function tableOf(size: number): PolyringTable {
  const own = Math.floor(size / 2)
  const t = new PolyringTable(guid([3, own]))
  t.setParent(7)
  for (let i = 0; i < size; i++) if (i !== own) t.setSibling(i, 1000 + i)
  for (let i = 0; i < size; i++) t.setChild(i, 2_000_000 + i)
  return t
}

/** Destinations of one case (or all five mixed) seen from [3.own]. */
function destsOf(size: number, which: RouteCase | 0): Guid[] {
  const own = Math.floor(size / 2)
  const r = () => Math.floor(random.float() * size)
  const other = () => { let x = r(); while (x === own) x = r(); return x }
  const tail = () => Array.from({ length: Math.floor(random.float() * 3) }, r)
  const make: Record<number, () => Guid> = {
    [RouteCase.OtherBranch]: () => guid([4 + Math.floor(random.float() * 100), r(), ...tail()]),
    [RouteCase.Parent]: () => guid([3]),
    [RouteCase.Sibling]: () => guid([3, other(), ...tail()]),
    [RouteCase.Self]: () => guid([3, own]),
    [RouteCase.Child]: () => guid([3, own, r(), ...tail()]),
  }
  const out: Guid[] = []
  for (let i = 0; i < DESTS; i++) {
    const c = which === 0 ? (1 + (i % 5)) as RouteCase : which
    const d = make[c]()
    if (routeCase(guid([3, own]), d) !== c) throw new Error(`bench bug: ${d} is not case ${c}`)
    out.push(d)
  }
  if (which === 0) for (let i = out.length - 1; i > 0; i--) { const j = Math.floor(random.float() * (i + 1)); [out[i], out[j]] = [out[j], out[i]] }
  return out
}

/** One trial: ns per decision over ITERATIONS decisions. */
function timeDecisions(t: PolyringTable, dests: Guid[]): number {
  let sink = 0
  const mask = DESTS - 1
  const start = process.hrtime.bigint()
  for (let i = 0; i < ITERATIONS; i++) sink += nextHop(t, dests[i & mask])
  const ns = Number(process.hrtime.bigint() - start) / ITERATIONS
  if (sink === 0.5) console.log(sink) // keep the loop's result alive
  return ns
}

const CASES: [string, RouteCase | 0][] = [['mixed', 0], ['other branch', RouteCase.OtherBranch], ['parent', RouteCase.Parent], ['sibling', RouteCase.Sibling], ['self', RouteCase.Self], ['child', RouteCase.Child]]
interface DecisionRow { siblings: number; tableBytes: number; ns: Record<string, number> }
const decisions: DecisionRow[] = []
const tables = RING_SIZES.map(tableOf)
const destSets = RING_SIZES.map((s) => CASES.map(([, c]) => destsOf(s, c)))
// Warm every table and case up first, so that the first size measured is not also the JIT's warm-up.
for (let i = 0; i < RING_SIZES.length; i++) for (const d of destSets[i]) { let s = 0; for (let k = 0; k < 1_000_000; k++) s += nextHop(tables[i], d[k & (DESTS - 1)]); if (s === 0.5) console.log(s) }
// Trials go round the sizes and cases in turn, so that none is measured only early or only late.
const trials: number[][][] = RING_SIZES.map(() => CASES.map(() => []))
for (let k = 0; k < TRIALS; k++) {
  for (let i = 0; i < RING_SIZES.length; i++) CASES.forEach((_, j) => trials[i][j].push(timeDecisions(tables[i], destSets[i][j])))
}
for (let i = 0; i < RING_SIZES.length; i++) {
  const ns: Record<string, number> = {}
  CASES.forEach(([name], j) => { const v = trials[i][j].sort((a, b) => a - b); ns[name] = Math.round(v[Math.floor(TRIALS / 2)] * 100) / 100 })
  decisions.push({ siblings: RING_SIZES[i], tableBytes: tables[i].arrayBytes(), ns })
  console.log(`ring ${RING_SIZES[i]}: ${JSON.stringify(ns)} ns/decision, table arrays ${tables[i].arrayBytes()} bytes`)
}

// ---- shapes --------------------------------------------------------------------------------
interface ShapeRun {
  shape: string
  peers: number
  buildMs: number
  heapBytesPerPeer: number
  arrayBytesPerPeer: number
  ownArrayBytesPerPeer: number
  route: RouteStats & { wallMs: number }
  /** The same through the protocol (PolyringPeer per peer on the MemoryWorld), all in flight at once. */
  send: RouteStats & { virtualMs: number; wallMs: number }
  /** Heap + array buffers per peer once every peer has its PolyringPeer. */
  heapWithPeersBytesPerPeer: number
  broadcast: (BroadcastStats & { origin: string; wallMs: number })[]
  multicast: MulticastStats & { wallMs: number }
}
function gcNow(): void { (globalThis as { gc?: () => void }).gc?.() }

function runShape(shape: number[]): ShapeRun {
  gcNow()
  const heap0 = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers
  let t = performance.now()
  const p = new StaticPolyring({ shape })
  const buildMs = performance.now() - t
  gcNow()
  const heap1 = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers
  const r = new SeededRandom(`polyring-shape:${seed}:${shape.join('x')}`)
  t = performance.now()
  const route = { ...p.routeRandom(100_000, r), wallMs: Math.round(performance.now() - t) }
  gcNow()
  const heap2a = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers
  p.network(`${seed}`)
  gcNow()
  const heap2 = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers
  t = performance.now()
  const send = { ...p.sendRandom(100_000, r), wallMs: Math.round(performance.now() - t) }
  const origin = p.randomPeer(r)
  const broadcast = (['up-first', 'sideways-first'] as const).map((order) => {
    const t1 = performance.now()
    const b = p.broadcast(origin, { order, seed: `${seed}` })
    return { ...b, origin: `[${p.guidOf(origin).join('.')}]`, wallMs: Math.round(performance.now() - t1) }
  })
  const chosen = new Set<number>()
  const want = Math.min(1000, p.peers)
  while (chosen.size < want) chosen.add(p.randomPeer(r))
  t = performance.now()
  const multicast = { ...p.multicast(p.randomPeer(r), [...chosen].map((h) => p.guidOf(h))), wallMs: Math.round(performance.now() - t) }
  const run: ShapeRun = {
    shape: shape.join('x'), peers: p.peers, buildMs: Math.round(buildMs),
    heapBytesPerPeer: Math.round((heap1 - heap0) / p.peers),
    arrayBytesPerPeer: Math.round(p.arrayBytesPerPeer()), ownArrayBytesPerPeer: Math.round(p.ownArrayBytesPerPeer()),
    route, send, heapWithPeersBytesPerPeer: Math.round((heap2 - heap2a + heap1 - heap0) / p.peers), broadcast, multicast,
  }
  console.log(JSON.stringify(run))
  return run
}

const shapes = [runShape([10, 10, 10])]
if (!quick) shapes.push(runShape([100, 100, 100]))

const bench = {
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
  seed,
  peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
  decision: { iterations: ITERATIONS, trials: TRIALS, destinations: DESTS, rows: decisions },
  shapes,
}
writeFileSync(RESULTS, JSON.stringify(bench, null, 2) + '\n')
const doc = readFileSync(DOC, 'utf8')
writeFileSync(DOC, spliceSection(doc, 'polyring-route', section('polyring-route', render())))
console.log(`wrote ${RESULTS} and the polyring-route section of ${DOC}`)

function render(): string {
  const f = (x: number) => x.toLocaleString('en')
  const lines = [
    '## Polyring: routing decision and static shapes',
    '',
    '<!-- Generated by `npm run bench:polyring` (bench/polyring-route.ts). -->',
    '',
    '`nextHop` (src/overlay/polyring/route.ts) on one depth-2 table whose ring has 10, 1,000 and 100,000 siblings and as',
    `many children, over ${f(DESTS)} precomputed destinations: all five cases mixed, then each alone. Median of ${TRIALS} trials`,
    `of ${f(ITERATIONS)} decisions, taken round the sizes and cases in turn (includes the loop and the array read of the destination).`,
    '',
    `${bench.date} · seed ${seed} · Node ${bench.machine.node} · ${bench.machine.cpuModel} (${bench.machine.cpus} cores, shared)`,
    '',
    `| siblings | table arrays (bytes) | ${CASES.map(([n]) => `${n} (ns)`).join(' | ')} |`,
    `|---|---|${CASES.map(() => '---').join('|')}|`,
    ...decisions.map((d) => `| ${f(d.siblings)} | ${f(d.tableBytes)} | ${CASES.map(([n]) => d.ns[n].toFixed(1)).join(' | ')} |`),
    '',
    'Static shapes (`src/overlay/polyring/sim.ts`: every peer has its real table and a sans-IO `PolyringPeer` (peer.ts); messages',
    'are objects carried on a MemoryWorld, no join protocol, sessions or bytes yet). 100,000 messages between random peers, all in',
    'flight at once through the protocol (hops also checked by a synchronous walk of the decision); broadcast from one random peer',
    'with each peer sending its copies one after another at 1 ms each and a fixed 10–50 ms latency per link, the parent',
    'sent to first (up-first) or last (sideways-first); multicast to 1,000 distinct random receivers. Bytes per peer: typed-array',
    'contents with each ring\'s array shared by its members (the simulator) and as if each peer held its own copy (a real node);',
    'heap per peer with tables only, and with every PolyringPeer made.',
    '',
    '| shape | peers | build | heap / peer (tables, + peers) | arrays / peer (shared, own) | delivered | max / mean hops (bound 2 × depth) | broadcast sent | reached once | duplicates | completion up-first / sideways-first (median) | multicast receivers reached | copies | copies outside their subtree |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...shapes.map((s) => {
      const [u, w] = s.broadcast
      return `| ${s.shape} | ${f(s.peers)} | ${f(s.buildMs)} ms | ${f(s.heapBytesPerPeer)} B, ${f(s.heapWithPeersBytesPerPeer)} B | ${f(s.arrayBytesPerPeer)} B, ${f(s.ownArrayBytesPerPeer)} B | ${f(s.send.delivered)} / ${f(s.send.messages)} | ${s.send.maxHops} / ${s.send.meanHops.toFixed(2)} (${2 * s.shape.split('x').length}) | ${f(u.sent)} | ${f(u.reached)} | ${u.duplicates} | ${u.completionMs.toFixed(0)} ms (${u.medianMs.toFixed(0)}) / ${w.completionMs.toFixed(0)} ms (${w.medianMs.toFixed(0)}) | ${f(s.multicast.reached)} / ${f(s.multicast.receivers)} | ${f(s.multicast.copies)} | ${s.multicast.violations} |`
    }),
    '',
    `Peak RSS of the whole run: ${f(bench.peakRssMiB)} MiB. Figures: \`bench/results/polyring-route.json\`.`,
  ]
  return lines.join('\n')
}
