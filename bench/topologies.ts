// `npm run bench:topologies`: Kademlia, Chord, Pastry (and, in compare, the polyring) side by side in the simulator. Runs
// `weft sim` in child processes and writes bench/results/topologies.json, the topologies
// section of docs/benchmarks.md and docs/topologies.svg:
//   compare   every topology at each size (oracle-built; the polyring: a balanced static shape):
//             success, hops against theory, latency, table size, messages per lookup, broadcast cost
//   digits    Pastry with b = 1, 2, 4, 8 at one size: table size against hops
//   failure   half the nodes crash at once: lookups right after, and after the topology's repair
//
//   npm run bench:topologies [-- --quick] [--sizes=1000,10000,100000] [--digits-nodes=1000000]
//                            [--failure-nodes=10000] [--lookups=2000] [--seed=1]
//                            [--only=compare|digits|failure]
// With --only, the parts not run keep their figures from bench/results/topologies.json.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import type { SimResult } from '../src/sim/report.js'
import { plotReports } from '../src/sim/plot.js'
import { section, spliceSection } from './lib/doc-sections.js'
import { simBatch, type Batch } from './lib/sim-batch.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const RESULTS = `${ROOT}bench/results/topologies.json`
const DOC = `${ROOT}docs/benchmarks.md`
const SVG = `${ROOT}docs/topologies.svg`
const TOPOLOGIES = ['kademlia', 'chord', 'pastry']
/** The compare part adds the polyring (src/sim/polyring-run.ts: seconds even at 100,000 peers); failure has no polyring model. */
const COMPARE_TOPOLOGIES = [...TOPOLOGIES, 'polyring']

const arg = (name: string): string | undefined => process.argv.slice(2).find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
const quick = process.argv.includes('--quick')
const sizes = arg('sizes') ?? (quick ? '1000,5000' : '1000,10000,100000')
const digitsNodes = arg('digits-nodes') ?? (quick ? '5000' : '1000000')
const failureNodes = arg('failure-nodes') ?? (quick ? '2000' : '10000')
const lookups = arg('lookups') ?? (quick ? '500' : '2000')
const seed = arg('seed') ?? '1'
const only = arg('only')
if (only !== undefined && !['compare', 'digits', 'failure'].includes(only)) throw new Error(`--only must be compare, digits or failure, got ${only}`)

interface TopologiesBench {
  date: string
  machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string }
  compare: Batch | null
  digits: Batch | null
  failure: { during: Batch; after: Batch } | null
}

const common = ['--lookups', lookups, '--seed', seed, '--build', 'oracle']
const run = (part: string): boolean => only === undefined || only === part
const previous = existsSync(RESULTS) ? (JSON.parse(readFileSync(RESULTS, 'utf8')) as TopologiesBench) : null

const compare = run('compare') ? simBatch(['--compare', COMPARE_TOPOLOGIES.join(','), '--nodes', sizes, ...common]) : previous?.compare ?? null
const digits = run('digits') ? simBatch(['--topology', 'pastry', '--b', '1,2,4,8', '--nodes', digitsNodes, ...common]) : previous?.digits ?? null
const failure = run('failure')
  ? {
      during: simBatch(['--compare', TOPOLOGIES.join(','), '--nodes', failureNodes, '--fail', '0.5', ...common]),
      after: simBatch(['--compare', TOPOLOGIES.join(','), '--nodes', failureNodes, '--fail', '0.5', '--warmup', '10m', ...common]),
    }
  : previous?.failure ?? null

const bench: TopologiesBench = {
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
  compare, digits, failure,
}
writeFileSync(RESULTS, JSON.stringify(bench, null, 2) + '\n')
if (compare && run('compare')) writeFileSync(SVG, await plotReports(compare.runs))
const doc = existsSync(DOC) ? readFileSync(DOC, 'utf8') : '# Benchmarks\n'
writeFileSync(DOC, spliceSection(doc, 'topologies', render(bench)))
console.log(`wrote ${RESULTS}, ${DOC}${compare && run('compare') ? ` and ${SVG}` : ''}`)

function render(b: TopologiesBench): string {
  const pct = (x: number): string => `${(x * 100).toFixed(2)} %`
  const name = (s: SimResult): string => (s.b ? `${s.topology} b=${s.b}` : s.topology)
  const off = (s: SimResult, hops: number): string => { const d = ((hops - s.theoreticalHops) / s.theoreticalHops) * 100; return `${d >= 0 ? '+' : ''}${d.toFixed(1)} %` }
  const rows = (batch: Batch): string => batch.runs.map(({ simulated: s, machine: m }) =>
    `| ${name(s)} | ${s.nodes.toLocaleString('en')} | ${pct(s.successRate)} | ${s.recall.toFixed(3)} | ${s.hops.mean.toFixed(2)} | ${s.theoreticalHops.toFixed(2)} | ${off(s, s.hops.mean)} | ${s.hops.p95} / ${s.hops.max} | ${pct(s.routing.successRate)} | ${s.routing.hops.mean.toFixed(2)} (${off(s, s.routing.hops.mean)}) | ${s.latencyMs.p50.toFixed(0)} ms | ${s.messagesPerLookup.toFixed(1)} | ${s.tableSize.mean.toFixed(1)} | ${(m.wallMs / 1000).toFixed(0)} s | ${bcast(s)} |`).join('\n')
  const bcast = (s: SimResult): string => s.broadcast ? `${s.broadcast.messagesPerNode.toFixed(2)} / ${pct(s.broadcast.reachedShare)} / ${s.broadcast.completionMs.toFixed(0)} ms` : '-'
  const head = '| topology | nodes | success | recall | lookup hops | theory | off | p95 / max | routed | route hops (off) | latency p50 | msgs/lookup | table | wall | broadcast: msgs/N / reached / time |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|'
  const theories = (batch: Batch): string => [...new Set(batch.runs.map((r) => `${name(r.simulated)}: ${r.simulated.theory}`))].join('; ')
  const parts = [
    '## Topologies',
    '',
    '<!-- Generated by `npm run bench:topologies` (bench/topologies.ts). -->',
    '',
    `Kademlia, Chord and Pastry, the same rpc and lookup code under each, in the simulator (geographic latency, k = 20,`,
    `α = 3, tables filled from the true node set). A lookup succeeds when it returns the node responsible for the key by`,
    `the topology's own rule (XOR-closest, successor, numerically closest). \"Lookup hops\" are the iterative lookup's`,
    `(findability: each reply names up to k contacts, so a step can gain more than the theory's one digit or finger);`,
    `\"routed\" and \"route hops\" follow \`nextHop\` from table to table as recursive routing does (routability), which is`,
    `what the theoretical figures describe. The polyring row (compare) is a balanced static shape of exactly N peers where`,
    `one fits (docs/polyring.md): its hops are routed messages (recursive), its latency on its own link model (10-50 ms a`,
    `link, 1 ms a copy), its theory the exact mean for random pairs. Broadcast: one from a random node; the polyring by the`,
    `seed's rules (up-first), the uniring topologies by flooding over each node's routing table (each node forwards once to`,
    `all its contacts; links at RTT / 2, 1 ms a copy). Recorded ${b.date.slice(0, 10)} on ${b.machine.cpus} × ${b.machine.cpuModel}, Node ${b.machine.node}.`,
    `Raw figures: \`bench/results/topologies.json\`; chart: [topologies.svg](topologies.svg).`,
    '',
    '### Against network size',
    '',
    b.compare ? `\`${b.compare.command}\`. Theory: ${theories(b.compare)}.\n\n${head}\n${rows(b.compare)}` : 'Not recorded yet: `npm run bench:topologies -- --only=compare`.',
    '',
    '### Pastry: digit size against table size and hops',
    '',
    b.digits ? `\`${b.digits.command}\`. A larger digit makes rows wider (up to 2^b entries) and routes shorter. The dashed theory, log2(N) / b, is the Pastry paper's ⌈log_{2^b} N⌉ without the ceiling: it fits b = 4; with b = 1 and 2 routes are shorter (a random entry in a slot often shares more than the one digit it must), and every setting stays within the paper's bound ⌈log_{2^b} N⌉.\n\n${head}\n${rows(b.digits)}` : 'Not recorded yet: `npm run bench:topologies -- --only=digits`.',
    '',
    '### Massive failure: half the nodes crash at once',
    '',
    b.failure
      ? `Right after the crash (\`${b.failure.during.command}\`), lookups must route around the dead; after ten minutes of the topology's own repair (\`${b.failure.after.command}\`), they should find every key's live owner again, which holds a replica when keys are replicated on the nodes next in line.\n\nRight after:\n\n${head}\n${rows(b.failure.during)}\n\nAfter 10 min of repair:\n\n${head}\n${rows(b.failure.after)}`
      : 'Not recorded yet: `npm run bench:topologies -- --only=failure`.',
  ]
  return section('topologies', parts.join('\n'))
}
