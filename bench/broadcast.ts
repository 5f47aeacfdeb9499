// `npm run bench:broadcast`: HyParView + Plumtree broadcast in the simulator (the real rpc and
// gossip code on one MemoryWorld, geo latency). Builds N nodes by joins, lets the views shuffle,
// shapes the tree with a few broadcasts, then measures: delivery to every live node (each once),
// datagrams per broadcast (payload vs control, / N), rounds (tree depth) and virtual latency; then
// crashes half the nodes at once, waits for repair and measures again. Writes
// bench/results/broadcast.json, docs/broadcast.svg and the broadcast section of docs/benchmarks.md.
//
//   npm run bench:broadcast [-- --nodes=100000] [--seed=1] [--broadcasts=10] [--latency=geo]
//
// Run with --expose-gc (the npm script does) for the per-node memory figure.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import * as vega from 'vega'
import { compile, type TopLevelSpec } from 'vega-lite'
import { BroadcastSim, type BroadcastSimResult, type PhaseSummary } from '../src/gossip/broadcast-sim.js'
import { section, spliceSection } from './lib/doc-sections.js'

const FONT = 'DejaVu Sans, Helvetica, Arial, sans-serif'
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const RESULTS = `${ROOT}bench/results/broadcast.json`
const DOC = `${ROOT}docs/benchmarks.md`
const SVG = `${ROOT}docs/broadcast.svg`

const arg = (name: string): string | undefined => {
  const args = process.argv.slice(2)
  const i = args.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`))
  if (i < 0) return undefined
  return args[i].includes('=') ? args[i].slice(name.length + 3) : args[i + 1]
}
const nodes = Number(arg('nodes') ?? '100000')
const seed = arg('seed') ?? '1'
const broadcasts = Number(arg('broadcasts') ?? '10')
const latency = (arg('latency') ?? 'geo') as 'geo' | 'uniform'
const noWrite = process.argv.includes('--no-write')

if (process.argv.includes('--from-results')) {
  // Draws the chart and the doc section again from bench/results/broadcast.json (no run).
  const saved = JSON.parse(readFileSync(RESULTS, 'utf8')) as { result: BroadcastSimResult; machine: Parameters<typeof render>[1] }
  writeFileSync(SVG, await plot(saved.result))
  const doc = existsSync(DOC) ? readFileSync(DOC, 'utf8') : '# Benchmarks\n'
  writeFileSync(DOC, spliceSection(doc, 'broadcast', render(saved.result, saved.machine)))
  process.exit(0)
}

const gc = (globalThis as { gc?: () => void }).gc
const started = Date.now()
let peakRss = 0
const sample = (): void => { peakRss = Math.max(peakRss, process.memoryUsage().rss) }
const ticker = setInterval(sample, 1000)
ticker.unref()
const log = (line: string): void => { process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(5)} s] ${line}\n`) }

gc?.()
const base = process.memoryUsage()
log(`broadcast: ${nodes.toLocaleString('en-US')} nodes, seed ${seed}, ${latency} latency, ${broadcasts} broadcasts per phase`)
let lastPhase = ''
let lastLog = 0
let built: NodeJS.MemoryUsage | null = null
const sim = new BroadcastSim({
  nodes, seed, latency, broadcasts,
  onProgress: (phase, done, total) => {
    sample()
    if (phase !== 'joining' && built === null) { gc?.(); built = process.memoryUsage() }
    const now = Date.now()
    if (phase !== lastPhase || done === total || now - lastLog > 10_000) {
      log(`${phase}: ${done.toLocaleString('en-US')}/${total.toLocaleString('en-US')}  (${sim.world.stats.events.toLocaleString('en-US')} events, rss ${(process.memoryUsage().rss / 2 ** 30).toFixed(2)} GiB)`)
      lastPhase = phase
      lastLog = now
    }
  },
})
const result = sim.run()
sample()
const wallS = (Date.now() - started) / 1000
const b = built ?? process.memoryUsage()
const perNode = (k: 'heapUsed' | 'external' | 'rss'): number => Math.round((b[k] - base[k]) / nodes)
const machine: Machine = {
  wallSeconds: Math.round(wallS), events: sim.world.stats.events, datagrams: sim.world.stats.datagrams, peakRssGiB: Math.round((peakRss / 2 ** 30) * 100) / 100,
  bytesPerNodeAfterBuild: { heap: perNode('heapUsed'), external: perNode('external'), rss: perNode('rss') },
  cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', node: process.version, gcExposed: !!gc,
}
log(`done in ${wallS.toFixed(0)} s: ${machine.events.toLocaleString('en-US')} events, peak RSS ${machine.peakRssGiB} GiB, ${machine.bytesPerNodeAfterBuild.heap} B heap + ${machine.bytesPerNodeAfterBuild.external} B external per node after the build`)
const line = (name: string, s: PhaseSummary): string =>
  `${name}: ${s.complete}/${s.broadcasts} complete (min ${(100 * s.minDeliveredShare).toFixed(2)} %), payload ${s.payloadPerN.toFixed(3)} N, control ${s.controlPerN.toFixed(3)} N, rounds mean ${s.meanRound.toFixed(2)} max ${s.maxRound}, p50 ${s.latencyMs.p50.toFixed(0)} ms`
for (const [n, s] of [['steady', result.steady], ['during repair', result.duringRepair], ['after repair', result.afterRepair]] as const) log(line(n, s))

if (!noWrite) {
  writeFileSync(RESULTS, JSON.stringify({ date: new Date().toISOString(), result, machine }, null, 2) + '\n')
  writeFileSync(SVG, await plot(result))
  const doc = existsSync(DOC) ? readFileSync(DOC, 'utf8') : '# Benchmarks\n'
  writeFileSync(DOC, spliceSection(doc, 'broadcast', render(result, machine)))
  log(`wrote ${RESULTS}, ${SVG} and the broadcast section of ${DOC}`)
}

function render(r: BroadcastSimResult, m: Machine): string {
  const f = (x: number, d = 3): string => x.toFixed(d)
  const int = (x: number): string => x.toLocaleString('en-US')
  const row = (name: string, s: PhaseSummary): string =>
    `| ${name} | ${s.complete}/${s.broadcasts} | ${f(100 * s.minDeliveredShare, 3)} % | ${s.duplicatesDelivered} | **${f(s.payloadPerN)}** | ${f(s.ihavePerN)} (${f(s.ihaveIdsPerN)} ids) | ${f(s.graftPerN)} | ${f(s.prunePerN)} | ${f(s.meanRound, 2)} / ${s.maxRound} | ${f(s.latencyMs.p50, 0)} / ${f(s.latencyMs.p95, 0)} / ${f(s.latencyMs.max, 0)} |`
  return section('broadcast', `
## Broadcast: HyParView + Plumtree

<!-- Generated by \`npm run bench:broadcast\` (bench/broadcast.ts). -->

\`npm run bench:broadcast -- --nodes=${r.nodes} --seed=${r.seed}\`: ${int(r.nodes)} simulated nodes running the real rpc, HyParView and
Plumtree code on one MemoryWorld (${r.latency} latency), built by joins through random live nodes (${r.joinFailures} failed joins;
${int(r.build.events)} events, ${int(r.build.virtualMs)} virtual ms), then ${r.options.warmupMs / 1000} s of shuffles and keepalives. Active view
${r.options.hyparview?.activeSize ?? 5}, passive 30 (mean after the build: ${f(r.views.activeMean, 2)} and ${f(r.views.passiveMean, 1)}). Each phase sends broadcasts of ${r.options.payloadBytes}
bytes from random live nodes, ${r.options.gapMs / 1000} s of virtual time apart; a broadcast is complete when every node live at its
sending delivered it exactly once. Datagrams are counted per broadcast and divided by the live nodes N: the payload
column is GOSSIP datagrams (the eager push, and answers to GRAFTs), the others are control. Rounds are hops from the
origin (the depth of the tree); latency is virtual ms from sending to delivery (p50 / p95 / max). Then ${int(r.failed)} nodes
(${Math.round(100 * r.options.fail)} %) crash at once; three broadcasts go right away, and the "after repair" ones from ${r.options.repairMs / 1000} s after the crash
(views then: active ${f(r.viewsAfterRepair.activeMean, 2)}, passive ${f(r.viewsAfterRepair.passiveMean, 1)}, ${r.viewsAfterRepair.isolated} nodes with no neighbour).

| phase | complete | least reached | dup. deliveries | payload / N | IHAVE / N | GRAFT / N | PRUNE / N | rounds mean / max | latency ms |
|---|---|---|---|---|---|---|---|---|---|
${row('tree forming (first broadcasts)', r.warm)}
${row('steady state', r.steady)}
${row('right after 50 % crashed', r.duringRepair)}
${row('after repair', r.afterRepair)}

Upkeep (keepalive PINGs to quiet active peers, SHUFFLE walks, NEIGHBOR) costs ${f(r.upkeepPerNodePerSec, 2)} datagrams per node per
second besides the broadcasts (replies not counted). Machine: ${m.wallSeconds} s wall, ${int(m.events)} events, peak RSS ${m.peakRssGiB} GiB;
after the build ${int(m.bytesPerNodeAfterBuild.heap)} B of JS heap and ${int(m.bytesPerNodeAfterBuild.external)} B outside it per node (rpc, transport,
endpoint, runtime, views, Plumtree state; the views are handles into one shared ContactPool: ${(r.options.hyparview?.activeSize ?? 5) + 30} small integers).
Each broadcast kept for GRAFTs costs a node its payload + 1 byte, two small map entries and a place in the list of
recent ids told to new links (bounded: 512 payloads, 1 MiB, 4,096 ids, 64 recent ids). The tree-forming and
right-after-the-crash rows are there to show the cost of forming and repairing the tree; only steady state and after
repair are required to reach everyone (test/gossip-broadcast.test.ts checks both at 1,000 nodes).

![broadcast](broadcast.svg)
`)
}

interface Machine {
  wallSeconds: number; events: number; datagrams: number; peakRssGiB: number
  bytesPerNodeAfterBuild: { heap: number; external: number; rss: number }
  cpus: number; cpuModel: string; node: string; gcExposed: boolean
}

async function plot(r: BroadcastSimResult): Promise<string> {
  const phases: [string, PhaseSummary][] = [['steady state', r.steady], ['after repair', r.afterRepair]]
  const rounds = phases.flatMap(([name, s]) => {
    const total = s.rounds.reduce((a, c) => a + c, 0) || 1
    return s.rounds.map((c, round) => ({ phase: name, round, share: (100 * c) / total }))
  })
  const cdf = phases.flatMap(([name, s]) => s.latencyCdf.map((ms, p) => ({ phase: name, ms, percentile: p })))
  const kinds = ([['tree forming', r.warm], ['steady', r.steady], ['just after crash', r.duringRepair], ['after repair', r.afterRepair]] as [string, PhaseSummary][])
    .flatMap(([name, s]) => [
      { phase: name, kind: 'GOSSIP (payload)', perN: s.payloadPerN },
      { phase: name, kind: 'IHAVE', perN: s.ihavePerN },
      { phase: name, kind: 'GRAFT', perN: s.graftPerN },
      { phase: name, kind: 'PRUNE', perN: s.prunePerN },
    ])
  const W = 300, H = 220
  const color = { field: 'phase', type: 'nominal', title: null, legend: { orient: 'bottom' } }
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: `Plumtree over HyParView: ${r.nodes.toLocaleString('en-US')} simulated nodes, ${Math.round(100 * r.options.fail)} % crashed at once`, font: FONT },
    config: { font: FONT, view: { stroke: null } },
    resolve: { scale: { color: 'independent' } },
    hconcat: [
      { width: W, height: H, title: 'Deliveries by round (tree depth)', data: { values: rounds }, mark: { type: 'line', point: true },
        encoding: { x: { field: 'round', type: 'quantitative', title: 'round (hops from the origin)' }, y: { field: 'share', type: 'quantitative', title: '% of deliveries' }, color } },
      { width: W, height: H, title: 'Delivery latency (virtual ms)', data: { values: cdf }, mark: 'line',
        encoding: { x: { field: 'ms', type: 'quantitative', title: 'ms after sending' }, y: { field: 'percentile', type: 'quantitative', title: 'percentile of nodes' }, color } },
      { width: W, height: H, title: 'Datagrams per broadcast / N', data: { values: kinds }, mark: 'bar',
        encoding: { x: { field: 'phase', type: 'nominal', title: null, sort: null, axis: { labelAngle: -20 } }, y: { field: 'perN', type: 'quantitative', title: 'datagrams / N', stack: true }, color: { field: 'kind', type: 'nominal', title: null, legend: { orient: 'bottom' } } } },
    ],
  }
  const view = new vega.View(vega.parse(compile(spec as unknown as TopLevelSpec).spec), { renderer: 'none' })
  try {
    return await view.toSVG()
  } finally {
    view.finalize()
  }
}

