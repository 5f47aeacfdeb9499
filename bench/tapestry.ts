// `npm run bench:tapestry`: Tapestry's object location in the simulator, beside the Kademlia
// DHT's provider records. Runs `weft sim` in child processes and writes
// bench/results/tapestry.json, the tapestry section of docs/benchmarks.md and
// docs/tapestry-stretch.svg:
//   scale   an oracle-built network (100,000 nodes): lookups, surrogate routes and locates against
//           the oracle, hops against log_16 N; each object published by 3 random servers, and the
//           stretch of the server each query is given, Tapestry's pointers against DHT providers
//   churn   a network built by joins under churn (median session 1 h, an hour of it before and
//           an hour between publishing and asking): locate success and stretch
//
//   npm run bench:tapestry [-- --quick] [--nodes=100000] [--churn-nodes=10000] [--objects=1000]
//                          [--lookups=10000] [--seed=1] [--only=scale|churn]
// With --only, the part not run keeps its figures from bench/results/tapestry.json.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { plotLocation } from '../src/sim/plot.js'
import { section, spliceSection } from './lib/doc-sections.js'
import { simBatch, type Batch } from './lib/sim-batch.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const RESULTS = `${ROOT}bench/results/tapestry.json`
const DOC = `${ROOT}docs/benchmarks.md`
const SVG = `${ROOT}docs/tapestry-stretch.svg`

const arg = (name: string): string | undefined => process.argv.slice(2).find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
const quick = process.argv.includes('--quick')
const nodes = arg('nodes') ?? (quick ? '3000' : '100000')
const churnNodes = arg('churn-nodes') ?? (quick ? '1000' : '10000')
const objects = arg('objects') ?? (quick ? '100' : '1000')
const lookups = arg('lookups') ?? (quick ? '500' : '10000')
const seed = arg('seed') ?? '1'
const only = arg('only')
if (only !== undefined && !['scale', 'churn'].includes(only)) throw new Error(`--only must be scale or churn, got ${only}`)

interface TapestryBench {
  date: string
  machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string }
  scale: Batch | null
  churn: Batch | null
}

const run = (part: string): boolean => only === undefined || only === part
const previous = existsSync(RESULTS) ? (JSON.parse(readFileSync(RESULTS, 'utf8')) as TapestryBench) : null
const compare = ['--compare', 'tapestry,kademlia', '--objects', objects, '--seed', seed]
const scale = run('scale') ? simBatch([...compare, '--nodes', nodes, '--lookups', lookups, '--build', 'oracle']) : previous?.scale ?? null
// Kademlia's bucket refresh is set past the run, as in bench:sim's churn run: its tables' own failure handling meets the churn.
const churn = run('churn')
  ? simBatch([...compare, '--nodes', churnNodes, '--lookups', String(Math.min(Number(lookups), 2000)), '--build', 'joins', '--churn', '1h', '--warmup', '1h', '--hold', '1h', '--refresh', '2h'])
  : previous?.churn ?? null
const bench: TapestryBench = {
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
  scale, churn,
}
writeFileSync(RESULTS, JSON.stringify(bench, null, 2) + '\n')
const plotted = [...(scale?.runs ?? []), ...(churn?.runs ?? [])]
if (plotted.length > 0) writeFileSync(SVG, await plotLocation(plotted))
const doc = existsSync(DOC) ? readFileSync(DOC, 'utf8') : '# Benchmarks\n'
writeFileSync(DOC, spliceSection(doc, 'tapestry', render(bench)))
console.log(`wrote ${RESULTS}, ${DOC} and ${SVG}`)

function render(b: TapestryBench): string {
  const pct = (x: number): string => `${(x * 100).toFixed(2)} %`
  const log16 = (n: number): string => (Math.log2(n) / 4).toFixed(2)
  const lookupRows = (batch: Batch): string => batch.runs.map(({ simulated: s, machine: m }) =>
    `| ${s.topology} | ${s.nodes.toLocaleString('en')} | ${pct(s.successRate)} | ${s.hops.mean.toFixed(2)} | ${pct(s.routing.successRate)} | ${s.routing.hops.mean.toFixed(2)} | ${s.theoreticalHops.toFixed(2)} | ${s.tableSize.mean.toFixed(0)} | ${(m.wallMs / 1000).toFixed(0)} s |`).join('\n')
  const lookupHead = '| topology | nodes | lookup success | lookup hops | routed | route hops | theory | table | wall |\n|---|---|---|---|---|---|---|---|---|'
  const locateRows = (batch: Batch): string => batch.runs.map(({ simulated: s }) => {
    const l = s.location!
    return `| ${s.topology} | ${l.via} | ${l.objects} × ${l.serversPerObject} | ${pct(l.publishSuccessRate)} | ${pct(l.successRate)} | ${l.hops ? l.hops.mean.toFixed(2) : '-'} | ${l.stretch.mean.toFixed(2)} | ${l.stretch.p50.toFixed(2)} | ${l.stretch.p95.toFixed(2)} | ${l.latencyMs.p50.toFixed(0)} / ${l.latencyMs.p95.toFixed(0)} ms | ${l.messagesPerQuery ? l.messagesPerQuery.toFixed(1) : '-'} |`
  }).join('\n')
  const locateHead = '| topology | located via | objects × servers | published | found | locate hops | stretch mean | p50 | p95 | time to find p50 / p95 | msgs/locate |\n|---|---|---|---|---|---|---|---|---|---|---|'
  const parts = [
    '## Tapestry: object location',
    '',
    '<!-- Generated by `npm run bench:tapestry` (bench/tapestry.ts). -->',
    '',
    'Each object is published by 3 random servers. Tapestry leaves a pointer at every node on the route to the object\'s root and',
    'a query turns off at the first pointer it meets and takes the first server named there that answers a ping; the Kademlia DHT',
    'stores provider records at the 20 nodes nearest the key and the client takes the first provider named that answers a ping',
    '(neither has a measure of which is near). Stretch = RTT from the client to the server it was given / RTT to the nearest of the',
    'object\'s servers, from the geographic link model (1 is the best possible). "Published": Tapestry\'s publish walk reached the',
    'root, or the DHT\'s announce was stored on a node at least. "Found": the query was given a live server of the object.',
    '"Locate hops": to the first pointer. The route hops of Tapestry are surrogate',
    `routing's (\`nextHop\` from table to table); log₁₆ N is the theory. Recorded ${b.date.slice(0, 10)} on ${b.machine.cpus} × ${b.machine.cpuModel}, Node ${b.machine.node}.`,
    'Raw figures: `bench/results/tapestry.json`; chart: [tapestry-stretch.svg](tapestry-stretch.svg).',
    '',
    '### Without churn',
    '',
    b.scale
      ? `\`${b.scale.command}\`, tables filled from the true node set (Tapestry's: per slot the 3 nearest by RTT of 16 sampled, as its join's probing finds them). log₁₆ N = ${log16(b.scale.runs[0].simulated.nodes)}.\n\n${lookupHead}\n${lookupRows(b.scale)}\n\n${locateHead}\n${locateRows(b.scale)}`
      : 'Not recorded yet: `npm run bench:tapestry -- --only=scale`.',
    '',
    '### Churn: median session 1 h',
    '',
    b.churn
      ? `\`${b.churn.command}\`: built by joins, an hour of churn, objects published, another hour of churn (Tapestry servers publish again every 15 min and pointers live 40 min; the DHT's servers announce again after 30 min, provider records live an hour), then the queries. Queries ask only for objects with a live server.\n\n${lookupHead}\n${lookupRows(b.churn)}\n\n${locateHead}\n${locateRows(b.churn)}`
      : 'Not recorded yet: `npm run bench:tapestry -- --only=churn`.',
  ]
  return section('tapestry', parts.join('\n'))
}
