// `npm run bench:eclipse`: an eclipse attack on one victim's Kademlia table (issue 10, must-show
// 2), over a range of attacker budgets, with no defence, the static puzzle, diversity limits,
// and both. Writes bench/results/eclipse.json, docs/eclipse.svg and the eclipse section of
// docs/security.md. See src/sim/eclipse.ts for the model.
//
//   npm run bench:eclipse [-- --honest 10000] [--seed 1] [--seeds 3] [--puzzle-bits 16] [--subnets 3]
//                         [--min-log2 10] [--max-log2 40] [--step 2] [--rounds 24] [--churn 0.1]
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import * as vega from 'vega'
import { compile, type TopLevelSpec } from 'vega-lite'
import { generateIdentity } from '../src/identity/keys.js'
import { defaultEclipseOptions, defences, runEclipse, type Defence, type EclipseOptions } from '../src/sim/eclipse.js'
import { MAX_PUZZLE_BITS } from '../src/identity/puzzle.js'
import { section, spliceSection } from './lib/doc-sections.js'
import { arg, num } from './lib/args.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const RESULTS = `${ROOT}bench/results/eclipse.json`
const DOC = `${ROOT}docs/security.md`
const SVG = `${ROOT}docs/eclipse.svg`

const seed = arg('seed') ?? '1'
const seeds = num('seeds', 3, (x) => Number.isInteger(x) && x >= 1 && x <= 20)
const honest = num('honest', 10_000, (x) => Number.isInteger(x) && x >= 100 && x <= 1_000_000)
const puzzleBits = num('puzzle-bits', 16, (x) => Number.isInteger(x) && x >= 1 && x <= MAX_PUZZLE_BITS)
const subnets = num('subnets', 3, (x) => Number.isInteger(x) && x >= 1 && x <= 1000)
const minLog2 = num('min-log2', 10, (x) => Number.isInteger(x) && x >= 0 && x <= 60)
const maxLog2 = num('max-log2', 40, (x) => Number.isInteger(x) && x >= minLog2 && x <= 60)
const step = num('step', 2, (x) => Number.isInteger(x) && x >= 1)
const rounds = num('rounds', 24, (x) => Number.isInteger(x) && x >= 0 && x <= 1000)
const churn = num('churn', 0.1, (x) => x >= 0 && x <= 1)

// The attacker's unit of work: one Ed25519 key generation (the puzzle's double hash is ~30x cheaper).
const KEYGEN_SAMPLE = 2000
let t0 = process.hrtime.bigint()
for (let i = 0; i < KEYGEN_SAMPLE; i++) generateIdentity()
const keygenPerSecond = KEYGEN_SAMPLE / (Number(process.hrtime.bigint() - t0) / 1e9)
console.log(`key generation: ${Math.round(keygenPerSecond)} per second on one core`)

interface Point {
  log2Budget: number
  defence: Defence
  /** Means over the seeds. */
  nearestShare: number
  tableShare: number
  tableSize: number
  validIds: number
  attackerNodes: number
  refusedDiversity: number
}

const options: Partial<EclipseOptions> = { honest, puzzleBits, subnets, rounds, churn }
const points: Point[] = []
t0 = process.hrtime.bigint()
for (let lb = minLog2; lb <= maxLog2; lb += step) {
  for (const defence of defences) {
    const runs = Array.from({ length: seeds }, (_, s) => runEclipse({ ...options, seed: `${seed}:${s}`, budget: 2 ** lb }, defence))
    const mean = (f: (r: (typeof runs)[number]) => number): number => runs.reduce((sum, r) => sum + f(r), 0) / runs.length
    points.push({
      log2Budget: lb, defence, nearestShare: mean((r) => r.nearest.share), tableShare: mean((r) => r.table.share),
      tableSize: mean((r) => r.table.size), validIds: mean((r) => r.validIds), attackerNodes: mean((r) => r.attackerNodes),
      refusedDiversity: mean((r) => r.refusedDiversity),
    })
  }
  const row = points.slice(-defences.length).map((p) => `${p.defence} ${pct(p.nearestShare)}/${pct(p.tableShare)}`).join('  ')
  console.log(`budget 2^${lb}: nearest/table held by attackers: ${row}  (${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(0)} s)`)
}

const bench = {
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', node: process.version },
  seed, seeds, keygenPerSecond: Math.round(keygenPerSecond),
  options: { ...defaultEclipseOptions, ...options, seed: undefined, budget: undefined },
  points,
}
writeFileSync(RESULTS, JSON.stringify(bench, null, 2) + '\n')
writeFileSync(SVG, await plot())
const doc = existsSync(DOC) ? readFileSync(DOC, 'utf8') : '# Security and reliability\n'
writeFileSync(DOC, spliceSection(doc, 'eclipse', section('eclipse', render())))
console.log(`wrote ${RESULTS}, ${SVG} and the eclipse section of ${DOC}`)

function pct(x: number): string { return `${(x * 100).toFixed(0)} %` }

/** Core time for 2^lb key generations at the measured rate. */
function coreTime(lb: number): string {
  const s = 2 ** lb / keygenPerSecond
  if (s < 120) return `${s.toFixed(s < 10 ? 1 : 0)} s`
  if (s < 7200) return `${(s / 60).toFixed(0)} min`
  if (s < 2 * 86400) return `${(s / 3600).toFixed(0)} h`
  if (s < 2 * 365 * 86400) return `${(s / 86400).toFixed(0)} days`
  return `${(s / (365 * 86400)).toFixed(0)} years`
}

/** The smallest budget at which attackers hold at least half the victim's k nearest, per defence. */
function halfBudget(d: Defence): string {
  const p = points.find((x) => x.defence === d && x.nearestShare >= 0.5)
  return p ? `2^${p.log2Budget} (${coreTime(p.log2Budget)} of one core)` : `beyond 2^${maxLog2}`
}

/** The range of whole-table shares a defence leaves the attackers over the budgets run. */
function tableRange(d: Defence): string {
  const shares = points.filter((p) => p.defence === d).map((p) => p.tableShare)
  return `${pct(Math.min(...shares))}–${pct(Math.max(...shares))}`
}

function render(): string {
  const o = bench.options
  const d = o.diversity
  const shown = points.filter((p) => (p.log2Budget - minLog2) % (2 * step) === 0 || p.log2Budget === maxLog2)
  const budgets = [...new Set(shown.map((p) => p.log2Budget))]
  const cell = (lb: number, def: Defence): string => {
    const p = points.find((x) => x.log2Budget === lb && x.defence === def)!
    return `${pct(p.nearestShare)} / ${pct(p.tableShare)}`
  }
  return [
    '## Eclipse: crypto puzzle and routing-table diversity',
    '',
    `S/Kademlia's static puzzle (\`puzzleBits\`, a network parameter, 0 = off, at most ${MAX_PUZZLE_BITS}): a node id (its Ed25519 public key)`,
    'is valid when SHA-256(SHA-256(id)) starts with that many zero bits; a node makes one in about 2^bits key generations,',
    'a table checks one with a double hash, and Kademlia neither admits nor asks (in lookups) a contact whose id fails.',
    `Diversity (\`diversity: { perSlash24, perSlash16, exemptPrivate }\`, defaults ${defaultEclipseOptions.diversity.perSlash24} per /24 and ${defaultEclipseOptions.diversity.perSlash16} per /16`,
    'per bucket; IPv6 /48 and /32): a contact past the limit neither enters a bucket nor waits as its replacement.',
    'Loopback, private (10/8, 172.16/12, 192.168/16, fc00::/7), link-local and 100.64/10 addresses are exempt unless',
    '`exemptPrivate: false`. Refusals are counted (`Kademlia.refused`).',
    '',
    `The attack (\`src/sim/eclipse.ts\`): ${honest.toLocaleString('en-US')} honest nodes at random public addresses; the victim's real`,
    `\`RoutingTable\` (k = ${o.k}) starts as a join leaves it; attackers spend a budget of key generations on ids, keep up to`,
    `${o.perBucket} per bucket of the victim, run them from ${subnets} /24 subnets and contact the victim every hour for ${rounds} hours,`,
    `while ${pct(churn)} of honest nodes leave (and as many join) each hour, ${o.honestContacts} honest nodes contact the victim,`,
    `and contacts that left fail out of the table. Puzzle: ${puzzleBits} bits (each honest node pays about 2^${puzzleBits} key generations once,`,
    `${coreTime(puzzleBits)} here). Key generation ran at ${Math.round(keygenPerSecond).toLocaleString('en-US')} per second on one core (measured at the start of the run, on a shared machine).`,
    `Mean of ${seeds} seeds. Each cell: share of the victim's ${o.k} nearest contacts / of its whole table held by attackers.`,
    '',
    `| attacker budget (key generations) | one core | no defence | puzzle (${puzzleBits} bits) | diversity (${d.perSlash24}/24, ${d.perSlash16}/16) | both |`,
    '|---|---|---|---|---|---|',
    ...budgets.map((lb) => `| 2^${lb} | ${coreTime(lb)} | ${defences.map((def) => cell(lb, def)).join(' | ')} |`),
    '',
    `Attackers hold half the victim's ${o.k} nearest from: ${defences.map((def) => `${def}: ${halfBudget(def)}`).join('; ')}.`,
    '',
    '![Share of the victim\'s table held by attackers against their budget](eclipse.svg)',
    '',
    `What this shows: the puzzle multiplies the cost of every id by 2^bits, so it moves both curves right by ${puzzleBits} powers`,
    `of two; per-bucket diversity caps attackers at subnets × perSlash24 = ${subnets * d.perSlash24} contacts per bucket, which holds them to`,
    `${tableRange('diversity')} of a churning table (${tableRange('none')} with no defence), and with the puzzle to ${tableRange('both')}.`,
    'What the defences do not cover: diversity does not protect the k nearest against an attacker who can make',
    'ids deeper than any honest node (each deeper bucket has its own quota, and no honest node competes there); an attacker',
    'with many /24s (a botnet, a large cloud account) is not limited by it; the puzzle only prices ids, so a patient or',
    'well-funded attacker still gets them (static puzzle: ids made once serve forever); and the model has attackers contact',
    'the victim directly, not poison its lookups (that is what disjoint paths address, see above).',
    '',
    `Command: \`npm run bench:eclipse -- --honest ${honest} --seeds ${seeds} --puzzle-bits ${puzzleBits} --subnets ${subnets} --min-log2 ${minLog2} --max-log2 ${maxLog2} --step ${step}\``,
    `(${bench.date.slice(0, 10)}, ${bench.machine.cpuModel}). Figures: \`bench/results/eclipse.json\`; plot: \`docs/eclipse.svg\`.`,
  ].join('\n')
}

async function plot(): Promise<string> {
  const names: Record<Defence, string> = { none: 'no defence', puzzle: `puzzle (${puzzleBits} bits)`, diversity: 'diversity limits', both: 'puzzle + diversity' }
  const series = defences.map((d) => names[d])
  const values = points.flatMap((p) => [
    { panel: `the victim's ${defaultEclipseOptions.k} nearest`, defence: names[p.defence], log2: p.log2Budget, share: 100 * p.nearestShare },
    { panel: 'the whole table', defence: names[p.defence], log2: p.log2Budget, share: 100 * p.tableShare },
  ])
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: `Eclipse attack on one Kademlia node · ${honest.toLocaleString('en-US')} honest nodes · attackers in ${subnets} /24s · seed ${seed} (${seeds} seeds)`,
      subtitle: [`share of the victim's routing table held by attackers after ${rounds} h with ${pct(churn)} honest churn per hour`],
      anchor: 'start', fontSize: 15, subtitleFontSize: 12, subtitleColor: '#444', offset: 12,
    },
    padding: 16,
    data: { values },
    facet: { column: { field: 'panel', type: 'nominal', title: null, sort: [values[0].panel, 'the whole table'], header: { labelFontSize: 13 } } },
    spec: {
      width: 360, height: 240,
      layer: [
        { mark: { type: 'line', strokeWidth: 2 } },
        { mark: { type: 'point', filled: true, size: 30, tooltip: true } },
      ],
      encoding: {
        x: { field: 'log2', type: 'quantitative', title: 'attacker budget: log2 of key generations', scale: { domain: [minLog2, maxLog2] } },
        y: { field: 'share', type: 'quantitative', title: 'held by attackers (%)', scale: { domain: [0, 100] } },
        color: { field: 'defence', type: 'nominal', title: null, sort: series, legend: { orient: 'bottom', direction: 'horizontal' } },
      },
    },
    config: { font: 'DejaVu Sans, Helvetica, Arial, sans-serif', axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal' }, legend: { labelFontSize: 11 }, view: { stroke: '#ddd' } },
  }
  const view = new vega.View(vega.parse(compile(spec as unknown as TopLevelSpec).spec), { renderer: 'none' })
  try { return await view.toSVG() } finally { view.finalize() }
}
