// `npm run bench:unstructured`: finding a rare item, unstructured against structured. Flooding
// with a TTL and random walks (src/gossip/unstructured-sim.ts) on a random graph of degree 5, and
// Kademlia lookups (src/sim/simulation.ts, the real rpc + topology stacks) on the same number of
// nodes: success rate and messages per search. Writes bench/results/unstructured.json,
// docs/unstructured.svg and the unstructured section of docs/benchmarks.md.
//
//   npm run bench:unstructured [-- --nodes 10000,100000] [--searches 200] [--lookups 1000] [--seed 1] [--quick] [--plot-only]
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import * as vega from 'vega'
import { compile, type TopLevelSpec } from 'vega-lite'
import { UnstructuredNetwork, type UnstructuredResult } from '../src/gossip/unstructured-sim.js'
import { Simulation } from '../src/sim/simulation.js'
import { section, spliceSection } from './lib/doc-sections.js'
import { arg, flag, num } from './lib/args.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const RESULTS = `${ROOT}bench/results/unstructured.json`
const DOC = `${ROOT}docs/benchmarks.md`
const SVG = `${ROOT}docs/unstructured.svg`

const quick = flag('quick')
const sizes = (arg('nodes') ?? (quick ? '2000' : '10000,100000')).split(',').map(Number)
for (const n of sizes) if (!Number.isInteger(n) || n < 100 || n > 1_000_000) { console.error(`--nodes: bad value ${n}`); process.exit(2) }
const searches = num('searches', quick ? 50 : 200, (x) => Number.isInteger(x) && x >= 10 && x <= 100_000)
const lookups = num('lookups', quick ? 200 : 1000, (x) => Number.isInteger(x) && x >= 10 && x <= 100_000)
const seed = arg('seed') ?? '1'
const DEGREE = 5
const WALKERS = 16
/** Replicas: one peer, 0.1 % and 1 % of the peers. */
const REPLICAS: { label: string; of: (n: number) => number }[] = [
  { label: '1 replica', of: () => 1 },
  { label: '0.1 %', of: (n) => Math.max(1, Math.round(n / 1000)) },
  { label: '1 %', of: (n) => Math.max(1, Math.round(n / 100)) },
]
const FLOOD_TTLS = [2, 3, 4, 5, 6, 7, 8, 9]
const WALK_TTLS = [16, 64, 256, 1024, 4096, 16384]
/** Messages one point of the plot may cost (searches are cut to fit, at least 20). */
const BUDGET = num('budget', quick ? 2e6 : 1e7, (x) => x >= 1e5)

interface Dht {
  nodes: number
  build: string
  lookups: number
  successRate: number
  recall: number
  hopsMean: number
  /** Messages a lookup counted itself (requests sent and replies taken) and datagrams on the wire per lookup (every datagram in the world during the lookups). */
  messagesPerLookup: number
  datagramsPerLookup: number
  wallMs: number
}
interface Size {
  nodes: number
  degree: number
  /** Largest hop distance from 20 sampled peers: about the diameter. */
  eccentricity: number
  runs: (UnstructuredResult & { replicaLabel: string; wallMs: number })[]
  dht: Dht
}
interface Bench {
  date: string
  machine: { cpus: number; cpuModel: string; node: string }
  seed: string
  searchesPerPoint: number
  walkers: number
  sizes: Size[]
}

const plotOnly = flag('plot-only')
const previous = existsSync(RESULTS) ? (JSON.parse(readFileSync(RESULTS, 'utf8')) as Bench) : null
if (plotOnly && !previous) { console.error(`--plot-only needs ${RESULTS}`); process.exit(2) }

const bench: Bench = plotOnly ? previous! : {
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', node: process.version },
  seed, searchesPerPoint: searches, walkers: WALKERS, sizes: [],
}
for (const nodes of plotOnly ? [] : sizes) {
  const t0 = performance.now()
  const net = new UnstructuredNetwork({ nodes, seed, degree: DEGREE })
  const ecc = net.eccentricity(20)
  console.log(`[unstructured] ${nodes.toLocaleString('en')} nodes: random graph of mean degree ${net.meanDegree.toFixed(2)}, eccentricity ${ecc} (${((performance.now() - t0) / 1000).toFixed(1)} s)`)
  const runs: Size['runs'] = []
  // Fewer searches for the costliest points at large N: a full flood of 100,000 peers is 600,000 messages.
  const per = (cost: number): number => Math.max(20, Math.min(searches, Math.floor(searches * Math.min(1, BUDGET / (cost * searches)))))
  for (const rep of REPLICAS) {
    const replicas = rep.of(nodes)
    const configs = [
      ...FLOOD_TTLS.filter((t) => t <= ecc + 1).map((ttl) => ({ mode: 'flood' as const, ttl, cost: Math.min(nodes * net.meanDegree, net.meanDegree * (net.meanDegree - 1) ** (ttl - 1)) })),
      ...WALK_TTLS.map((ttl) => ({ mode: 'walk' as const, ttl, cost: WALKERS * ttl })),
    ]
    for (const c of configs) {
      const t = performance.now()
      const r = net.run({ mode: c.mode, ttl: c.ttl, walkers: WALKERS, replicas, searches: per(c.cost) })
      const wallMs = Math.round(performance.now() - t)
      runs.push({ ...r, replicaLabel: rep.label, wallMs })
      console.log(`[unstructured] ${nodes.toLocaleString('en')} nodes, ${rep.label} (${replicas}), ${r.method}: success ${(r.successRate * 100).toFixed(1)} %, ${r.messagesPerSearch.toFixed(0)} messages/search, ${r.hops.mean.toFixed(1)} hops to a hit (${r.searches} searches, ${(wallMs / 1000).toFixed(1)} s)`)
    }
  }
  bench.sizes.push({ nodes, degree: net.meanDegree, eccentricity: ecc, runs, dht: await dht(nodes) })
}

async function dht(nodes: number): Promise<Dht> {
  const t = performance.now()
  // Oracle-built tables (what joins converge to without churn; joins cost ~300 events a node), uniform 10-50 ms links.
  let last = 0
  const sim = new Simulation({
    topology: 'kademlia', nodes, lookups, seed, latency: 'uniform', build: 'oracle',
    onProgress: (phase, done, total) => {
      const now = performance.now()
      if (now - last > 5000 || done === total) { last = now; console.log(`[unstructured] kademlia ${nodes.toLocaleString('en')} nodes: ${phase} ${done}/${total}`) }
    },
  })
  await sim.build()
  const before = sim.world.stats.datagrams
  const r = await sim.measure()
  const datagrams = sim.world.stats.datagrams - before
  sim.close()
  const d: Dht = {
    nodes, build: r.build, lookups: r.lookups, successRate: r.successRate, recall: r.recall, hopsMean: r.hops.mean,
    messagesPerLookup: r.messagesPerLookup, datagramsPerLookup: Math.round((datagrams / r.lookups) * 1000) / 1000, wallMs: Math.round(performance.now() - t),
  }
  console.log(`[unstructured] kademlia ${nodes.toLocaleString('en')} nodes: success ${(d.successRate * 100).toFixed(2)} %, ${d.messagesPerLookup.toFixed(1)} messages counted by the lookups, ${d.datagramsPerLookup.toFixed(1)} datagrams on the wire per lookup, ${d.hopsMean.toFixed(2)} hops (${(d.wallMs / 1000).toFixed(1)} s)`)
  return d
}

writeFileSync(RESULTS, JSON.stringify(bench, null, 2) + '\n')
writeFileSync(SVG, await plot(bench))
const doc = existsSync(DOC) ? readFileSync(DOC, 'utf8') : '# Benchmarks\n'
writeFileSync(DOC, spliceSection(doc, 'unstructured', section('unstructured', render(bench))))
console.log(`wrote ${RESULTS}, ${SVG} and the unstructured section of ${DOC}`)

/** The cheapest point of a method family that finds the item at least `at` of the time. */
function cheapest(runs: Size['runs'], mode: string, label: string, at: number): Size['runs'][number] | undefined {
  return runs.filter((r) => r.mode === mode && r.replicaLabel === label && r.successRate >= at).sort((a, b) => a.messagesPerSearch - b.messagesPerSearch)[0]
}

/** The cheapest 99 % unstructured setting over the DHT's cost, for each size and replica level: the range, in words. */
function contrast(b: Bench): string {
  const parts = b.sizes.map((s) => {
    const ratios = REPLICAS.map((rep) => {
      const best = [cheapest(s.runs, 'flood', rep.label, 0.99), cheapest(s.runs, 'walk', rep.label, 0.99)].filter((x) => x !== undefined).sort((x, y) => x.messagesPerSearch - y.messagesPerSearch)[0]
      return best ? best.messagesPerSearch / s.dht.datagramsPerLookup : NaN
    })
    const rare = ratios[0], common = ratios[ratios.length - 1]
    return `at ${s.nodes.toLocaleString('en')} nodes ${Number.isNaN(rare) ? 'no setting tried reached 99 % for one replica' : `${Math.round(rare).toLocaleString('en')}×`} the DHT's messages for one replica and ${Number.isNaN(common) ? '-' : `${Math.round(common).toLocaleString('en')}×`} for 1 %`
  })
  return `finding an item 99 % of the time, the cheapest unstructured setting costs ${parts.join('; ')}`
}

function render(b: Bench): string {
  const pct = (x: number): string => `${(x * 100).toFixed(1)} %`
  const int = (x: number): string => Math.round(x).toLocaleString('en')
  const out: string[] = [
    '## Unstructured search vs DHT lookup: finding a rare item',
    '',
    '<!-- Generated by `npm run bench:unstructured` (bench/unstructured.ts). -->',
    '',
    `Peers on a seeded random graph of degree ${DEGREE} to ${DEGREE + 2} (each links to random others until it has ${DEGREE}: HyParView's active-view size at`,
    'these N), running the real `src/gossip/unstructured.ts`. An item is placed on r random peers; each search starts at a random',
    'peer that does not hold it. **Flooding** (Gnutella): QUERY to every neighbour but the sender, once per query id (a 64-entry',
    `seen-cache), while the TTL lasts; hits go back along the reverse path. **Random walk**: ${b.walkers} walkers, each step to a random`,
    'neighbour, a hit answered directly to the origin; no checking back, so the other walkers walk on to their TTL. Messages',
    'are every QUERY and HIT sent. Delivery is FIFO (all links alike), so a flood spreads breadth first.',
    '',
    'The **DHT** is `weft sim`\'s Kademlia (real rpc + topology stacks on a MemoryWorld, k = 20, α = 3, tables filled by the',
    'oracle, uniform 10–50 ms links): a lookup for a random key from a random node succeeds when it returns the true closest',
    'node, where a DHT stores the item (a GET rides the same walk). Its cost is measured on the wire: datagrams (requests and',
    'replies) during the lookups, divided by the lookups. It does not depend on r: the item lives where its key says.',
    '',
    `${b.date} · Node ${b.machine.node} · ${b.machine.cpuModel} · seed ${b.seed} · up to ${b.searchesPerPoint} searches per point`,
  ]
  for (const s of b.sizes) {
    out.push('', `### ${int(s.nodes)} nodes (mean degree ${s.degree.toFixed(2)}, eccentricity about ${s.eccentricity})`, '')
    out.push(`| method | ${REPLICAS.map((r) => `${r.label}: success`).join(' | ')} | ${REPLICAS.map((r) => `${r.label}: msgs/search`).join(' | ')} | hops to a hit (1 replica) |`)
    out.push(`|---|${REPLICAS.map(() => '---|').join('')}${REPLICAS.map(() => '---|').join('')}---|`)
    const methods = [...new Set(s.runs.map((r) => r.method))]
    for (const m of methods) {
      const cells = REPLICAS.map((rep) => s.runs.find((r) => r.method === m && r.replicaLabel === rep.label))
      out.push(`| ${m} | ${cells.map((c) => (c ? pct(c.successRate) : '-')).join(' | ')} | ${cells.map((c) => (c ? int(c.messagesPerSearch) : '-')).join(' | ')} | ${cells[0] && cells[0].succeeded > 0 ? cells[0].hops.mean.toFixed(1) : '-'} |`)
    }
    const d = s.dht
    out.push(`| **Kademlia lookup** | ${REPLICAS.map(() => pct(d.successRate)).join(' | ')} | ${REPLICAS.map(() => d.datagramsPerLookup.toFixed(1)).join(' | ')} | ${d.hopsMean.toFixed(2)} |`)
    out.push('')
    const lines = REPLICAS.map((rep) => {
      const f = cheapest(s.runs, 'flood', rep.label, 0.99), w = cheapest(s.runs, 'walk', rep.label, 0.99)
      const say = (mode: string, r: typeof f): string => {
        if (r) return `${r.mode === 'flood' ? `TTL ${r.ttl}` : r.method}, ${int(r.messagesPerSearch)} messages (${int(r.messagesPerSearch / d.datagramsPerLookup)}× the DHT)`
        const best = s.runs.filter((x) => x.mode === mode && x.replicaLabel === rep.label).sort((x, y) => y.successRate - x.successRate)[0]
        return `no setting tried${best ? ` (best: ${best.method}, ${pct(best.successRate)} with ${int(best.messagesPerSearch)} messages)` : ''}`
      }
      const n = s.runs.find((r) => r.replicaLabel === rep.label)?.replicas ?? 0
      return `- ${rep.label} (${int(n)} peer${n === 1 ? '' : 's'}): flooding: ${say('flood', f)}; random walks: ${say('walk', w)}.`
    })
    out.push(`The DHT: ${pct(d.successRate)} of ${int(d.lookups)} lookups found the true closest node, ${d.datagramsPerLookup.toFixed(1)} datagrams on the wire (requests and replies) and ${d.hopsMean.toFixed(2)} hops each. The cheapest unstructured setting that finds the item in at least 99 % of searches:`, '', ...lines)
  }
  out.push('',
    'Flooding pays for coverage: once the TTL reaches the graph\'s eccentricity every peer gets the query, about N × degree messages',
    'whatever r is, and below it success falls with the share of peers reached. A random walk pays for the item\'s rarity: about',
    'N / r steps to meet a replica, so it is cheap for popular items and as costly as a flood (and slower, in hops) for rare ones.',
    'A DHT lookup costs a few dozen datagrams, at any r, because it goes where the key says. The seed\'s contrast, measured:',
    `${contrast(b)}; in exchange it asks nothing of where items are put (any item, any query a peer can answer).`,
    '',
    'Figures: `bench/results/unstructured.json`; plot: `docs/unstructured.svg`; one setting at a time: `weft sim --topology unstructured`',
    '`[--search flood|walk] [--ttl N] [--walkers K] [--replicas R]`.')
  return out.join('\n')
}

async function plot(b: Bench): Promise<string> {
  const rows = b.sizes.flatMap((s) => [
    ...s.runs.map((r, i, all) => {
      // Label a point with its TTL unless an earlier point of its line already reached 100 % (they pile up there).
      const before = all.slice(0, i).filter((x) => x.mode === r.mode && x.replicaLabel === r.replicaLabel)
      const label = before.some((x) => x.successRate === 1) ? '' : `${r.ttl}`
      return { nodes: s.nodes, replicas: r.replicaLabel, family: r.mode === 'flood' ? 'flooding (TTL 2..)' : `random walk, ${r.walkers} walkers (TTL ${WALK_TTLS[0]}..)`, label, ttl: r.ttl, messages: Math.max(1, r.messagesPerSearch), success: r.successRate * 100 }
    }),
    ...REPLICAS.map((rep) => ({ nodes: s.nodes, replicas: rep.label, family: 'Kademlia lookup', label: '', ttl: 0, messages: s.dht.datagramsPerLookup, success: s.dht.successRate * 100 })),
  ])
  const families = ['flooding (TTL 2..)', `random walk, ${b.walkers} walkers (TTL ${WALK_TTLS[0]}..)`, 'Kademlia lookup']
  const panel = (nodes: number, rep: string): Record<string, unknown> => ({
    title: `${nodes.toLocaleString('en')} nodes, item on ${rep}${rep.endsWith('%') ? ' of the peers' : ''}`, width: 250, height: 200,
    data: { values: rows.filter((x) => x.nodes === nodes && x.replicas === rep) },
    encoding: {
      x: { field: 'messages', type: 'quantitative', title: 'messages per search (log)', scale: { type: 'log', domain: [10, 2_000_000] }, axis: { values: [10, 100, 1000, 10_000, 100_000, 1_000_000], format: '~s' } },
      y: { field: 'success', type: 'quantitative', title: 'success rate (%)', scale: { domain: [0, 100] } },
      color: { field: 'family', type: 'nominal', title: null, scale: { domain: families, range: ['#d62728', '#1f77b4', '#2ca02c'] }, legend: { orient: 'bottom', direction: 'vertical', labelLimit: 400 } },
    },
    layer: [
      { mark: { type: 'line', strokeWidth: 2 }, encoding: { order: { field: 'ttl' } } },
      { mark: { type: 'point', filled: true, size: 50, tooltip: true } },
      { mark: { type: 'text', dy: -9, fontSize: 9, color: '#555' }, encoding: { text: { field: 'label' } } },
    ],
  })
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: `Finding a rare item: flooding vs random walk vs DHT lookup · seed ${b.seed}`,
      subtitle: [`Random graph of degree ${DEGREE}..${DEGREE + 2}; points labelled with their TTL (until the first at 100 %).`, 'Kademlia: k = 20, α = 3, datagrams on the wire per lookup. Up and to the left is better.'],
      anchor: 'start', fontSize: 16, subtitleFontSize: 12, subtitleColor: '#444', offset: 12,
    },
    padding: 16, spacing: 30,
    vconcat: b.sizes.map((s) => ({ hconcat: REPLICAS.map((rep) => panel(s.nodes, rep.label)) })),
    resolve: { scale: { color: 'shared' } },
    config: { font: 'DejaVu Sans, Helvetica, Arial, sans-serif', axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal' }, legend: { labelFontSize: 12 }, view: { stroke: '#ddd' } },
  }
  const view = new vega.View(vega.parse(compile(spec as unknown as TopLevelSpec).spec), { renderer: 'none' })
  try { return await view.toSVG() } finally { view.finalize() }
}
