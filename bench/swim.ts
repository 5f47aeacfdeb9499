// `npm run bench:swim`: SWIM failure detection in the simulator, with and without Lifeguard, at
// memberlist's LAN defaults. Writes bench/results/swim.json, docs/swim.svg and the swim section
// of docs/benchmarks.md.
//   detection  --nodes members (10,000), --loss (1 %), 1 % of them crash at once after 20 s; 100 s
//              more: time until the first member suspects / declares each dead, until every live
//              member has marked it dead; false suspicions and deaths of live members
//   slow       the same at --slow-nodes members (2,000), 2 % of which are "slow" (every message to
//              them waits 0..1.5 s more): Lifeguard's threat model, where false positives come from
//
//   npm run bench:swim [-- --nodes 10000] [--seed 1] [--loss 0.01] [--slow-nodes 2000] [--quick] [--only detection|slow] [--plot-only]
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import * as vega from 'vega'
import { compile, type TopLevelSpec } from 'vega-lite'
import { LAN_DEFAULTS } from '../src/gossip/swim.js'
import { runSwimSim, type SwimSimOptions, type SwimSimResult } from '../src/gossip/swim-sim.js'
import { section, spliceSection } from './lib/doc-sections.js'
import { summarize, type Summary } from './lib/stats.js'
import { arg, flag, num } from './lib/args.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const RESULTS = `${ROOT}bench/results/swim.json`
const DOC = `${ROOT}docs/benchmarks.md`
const SVG = `${ROOT}docs/swim.svg`

const quick = flag('quick')
const nodes = num('nodes', quick ? 1000 : 10_000, (x) => Number.isInteger(x) && x >= 10 && x <= 100_000)
const slowNodes = num('slow-nodes', quick ? 500 : 2000, (x) => Number.isInteger(x) && x >= 10 && x <= 100_000)
const loss = num('loss', 0.01, (x) => x >= 0 && x < 1)
const seed = arg('seed') ?? '1'
const only = arg('only')
if (only !== undefined && only !== 'detection' && only !== 'slow') { console.error('--only must be detection or slow'); process.exit(2) }

interface RunSummary {
  scenario: 'detection' | 'slow'
  lifeguard: boolean
  nodes: number
  killed: number
  slow: number
  loss: number
  /** Over the crashed members, ms after the crash. */
  firstSuspect: Summary
  firstDead: Summary
  allDead: Summary
  /** Crashed members not marked dead by every live member by the end. */
  notDetectedByAll: number
  falseSuspicions: number
  falseDeaths: number
  falselySuspected: { healthy: number; slow: number }
  falselyDead: { healthy: number; slow: number }
  refutations: number
  messagesPerMemberPerSecond: number
  maxLocalHealth: number
  virtualMs: number
  events: number
  wallMs: number
  /** Per crashed member: ms until all live members marked it dead (null: not within the run), for the plot. */
  allDeadTimes: (number | null)[]
  firstDeadTimes: (number | null)[]
}
interface SwimBench {
  date: string
  machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string }
  seed: string
  config: typeof LAN_DEFAULTS
  runs: RunSummary[]
}

function run(scenario: 'detection' | 'slow', lifeguard: boolean): RunSummary {
  const n = scenario === 'detection' ? nodes : slowNodes
  const label = `[swim] ${scenario} ${n.toLocaleString('en')} members, lifeguard ${lifeguard ? 'on' : 'off'}`
  console.log(`${label}: loss ${(loss * 100).toFixed(1)} %, seed ${seed}`)
  const o: SwimSimOptions = {
    nodes: n, seed, loss, lifeguard, killFraction: 0.01, warmupMs: 20_000, afterMs: 100_000,
    ...(scenario === 'slow' ? { slowFraction: 0.02, slowDelayMs: 1500 } : {}),
    onProgress: (p) => console.log(`${label}: ${(p.virtualMs / 1000).toFixed(0)} s virtual, ${p.events.toLocaleString('en')} events, ${p.suspicions.toLocaleString('en')} suspicions, ${p.deaths.toLocaleString('en')} deaths, crashed members detected by all ${p.detectedByAll}/${p.killed}`),
  }
  const t0 = performance.now()
  const r: SwimSimResult = runSwimSim(o)
  const wallMs = performance.now() - t0
  const times = (f: (v: SwimSimResult['victims'][number]) => number | null): number[] => r.victims.map(f).filter((x): x is number => x !== null)
  const s: RunSummary = {
    scenario, lifeguard, nodes: n, killed: r.killed, slow: r.slow, loss,
    firstSuspect: summarize(times((v) => v.firstSuspect)),
    firstDead: summarize(times((v) => v.firstDead)),
    allDead: summarize(times((v) => v.allDead)),
    notDetectedByAll: r.victims.filter((v) => v.allDead === null).length,
    falseSuspicions: r.falseSuspicions, falseDeaths: r.falseDeaths,
    falselySuspected: r.falselySuspected, falselyDead: r.falselyDead,
    refutations: r.refutations,
    messagesPerMemberPerSecond: r.messagesPerMemberPerSecond,
    maxLocalHealth: r.maxLocalHealth,
    virtualMs: r.virtualMs, events: r.events, wallMs: Math.round(wallMs),
    allDeadTimes: r.victims.map((v) => v.allDead),
    firstDeadTimes: r.victims.map((v) => v.firstDead),
  }
  console.log(`${label}: done in ${(wallMs / 1000).toFixed(0)} s wall; all-dead p50 ${(s.allDead.p50 / 1000).toFixed(1)} s, p99 ${(s.allDead.p99 / 1000).toFixed(1)} s; live members falsely dead ${s.falselyDead.healthy + s.falselyDead.slow}, falsely suspected ${s.falselySuspected.healthy + s.falselySuspected.slow}`)
  return s
}

const previous = existsSync(RESULTS) ? (JSON.parse(readFileSync(RESULTS, 'utf8')) as SwimBench) : null
// --plot-only: redraw the plot and the section from bench/results/swim.json without running anything.
const plotOnly = flag('plot-only')
if (plotOnly && !previous) { console.error(`--plot-only needs ${RESULTS}`); process.exit(2) }
const runs: RunSummary[] = plotOnly ? previous!.runs : []
for (const scenario of plotOnly ? [] : (['detection', 'slow'] as const)) {
  if (only !== undefined && only !== scenario) { runs.push(...(previous?.runs.filter((r) => r.scenario === scenario) ?? [])); continue }
  for (const lifeguard of [false, true]) runs.push(run(scenario, lifeguard))
}
const bench: SwimBench = plotOnly ? previous! : {
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
  seed, config: LAN_DEFAULTS, runs,
}
writeFileSync(RESULTS, JSON.stringify(bench, null, 2) + '\n')
writeFileSync(SVG, await plot(bench))
const doc = existsSync(DOC) ? readFileSync(DOC, 'utf8') : '# Benchmarks\n'
writeFileSync(DOC, spliceSection(doc, 'swim', section('swim', render(bench))))
console.log(`wrote ${RESULTS}, ${SVG} and the swim section of ${DOC}`)

function minSuspicionS(n: number): number { return LAN_DEFAULTS.suspicionMult * Math.max(1, Math.log10(n)) * LAN_DEFAULTS.probeIntervalMs / 1000 }

function render(b: SwimBench): string {
  const s = (ms: number): string => (Number.isFinite(ms) ? (ms / 1000).toFixed(1) : '–')
  const lg = (r: RunSummary): string => (r.lifeguard ? 'on' : 'off')
  const rate = (x: { healthy: number; slow: number }, r: RunSummary): string => `${((100 * (x.healthy + x.slow)) / (r.nodes - r.killed)).toFixed(2)} %`
  const rows = b.runs.map((r) =>
    `| ${r.scenario} | ${r.nodes.toLocaleString('en')} | ${lg(r)} | ${s(r.firstSuspect.mean)} | ${s(r.firstDead.mean)} | ${s(r.allDead.mean)} | ${s(r.allDead.p50)} | ${s(r.allDead.p99)} | ${s(r.allDead.max)} | ${r.notDetectedByAll} | ${r.falselySuspected.healthy} / ${r.falselySuspected.slow} (${rate(r.falselySuspected, r)}) | ${r.falselyDead.healthy} / ${r.falselyDead.slow} (${rate(r.falselyDead, r)}) | ${r.falseDeaths.toLocaleString('en')} | ${r.refutations} | ${r.messagesPerMemberPerSecond.toFixed(1)} | ${r.maxLocalHealth} | ${(r.wallMs / 1000).toFixed(0)} s |`).join('\n')
  const det = b.runs.find((r) => r.scenario === 'detection')
  const slow = b.runs.find((r) => r.scenario === 'slow')
  const slowOff = b.runs.find((r) => r.scenario === 'slow' && !r.lifeguard)
  const slowOn = b.runs.find((r) => r.scenario === 'slow' && r.lifeguard)
  const c = b.config
  return [
    '## SWIM membership and Lifeguard',
    '',
    '<!-- Generated by `npm run bench:swim` (bench/swim.ts). -->',
    '',
    `\`npm run bench:swim\` runs the real \`src/gossip/swim.ts\` (one \`Swim\` per member) on a MemoryWorld: its seeded clock, timers and`,
    'per-member random streams, with a light in-simulator send that hands the message object over after a uniform 10–50 ms',
    'one-way latency unless the link loses it (no rpc stack, no encoding: `src/gossip/swim-sim.ts`; the codec is tested on its own).',
    'Every member starts knowing every other; after 20 s, 1 % of the members crash silently; the run goes on for 100 s.',
    '"All dead" is the time from the crash until every live member has marked that member dead (its own suspicion timer or',
    'a DEAD update heard); "first" is the first member to suspect or declare it. False positives are live members that any',
    'live member suspected or declared dead, over the whole 120 s (healthy / slow members, and the rate over all live members). The slow scenario makes 2 % of',
    'the members slow (every message to them waits an extra uniform 0–1.5 s before it is handled): the starved-process case',
    'Lifeguard was made for.',
    '',
    `Configuration: memberlist's \`DefaultLANConfig\`: ProbeInterval ${c.probeIntervalMs} ms, ProbeTimeout ${c.probeTimeoutMs} ms, IndirectChecks ${c.indirectChecks},`,
    `SuspicionMult ${c.suspicionMult}, SuspicionMaxTimeoutMult ${c.suspicionMaxTimeoutMult}, RetransmitMult ${c.retransmitMult}, AwarenessMaxMultiplier ${c.maxLocalHealth}, GossipInterval ${c.gossipIntervalMs} ms`,
    `to GossipNodes ${c.gossipNodes}, GossipToTheDeadTime ${c.deadReapMs / 1000} s. Lifeguard off: no local health, suspicion timeout fixed at the minimum, no nacks,`,
    'no buddy system (SWIM as memberlist ran before Lifeguard). No TCP fallback ping and no push-pull state sync (memberlist has both).',
    '',
    `${b.date} · seed ${b.seed} · Node ${b.machine.node} · ${b.machine.cpuModel} (${b.machine.cpus} cores, shared)`,
    '',
    '| scenario | members | Lifeguard | first suspect (mean, s) | first dead (mean, s) | all dead mean (s) | p50 | p99 | max | not detected by all | falsely suspected (healthy / slow) | falsely dead (healthy / slow) | false death declarations | refutations | msgs / member / s | max local health | wall |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    rows,
    '',
    'Next to what memberlist\'s defaults and the papers predict:',
    '',
    !det ? null : `- **Suspicion timeout.** min = SuspicionMult × log10(N) × ProbeInterval = ${minSuspicionS(det.nodes).toFixed(1)} s at ${det.nodes.toLocaleString('en')} members` +
      ` (${minSuspicionS(slow?.nodes ?? det.nodes).toFixed(1)} s at ${(slow?.nodes ?? det.nodes).toLocaleString('en')}); Lifeguard starts at ${c.suspicionMaxTimeoutMult} × min and reaches min after ` +
      `${c.suspicionMult - 2} independent confirmations. "First dead" minus "first suspect" is that timeout: with Lifeguard it stays at min here because` +
      ' a crashed member is probed by about one member a second, so confirmations arrive within a few seconds.',
    `- **First detection.** The SWIM paper (§3.1): a crashed member is picked by some member's probe in a given protocol period with` +
      ' probability 1 − (1 − 1/N)^N ≈ 1 − 1/e, so e/(e − 1) ≈ 1.58 periods are expected until it is; counting from a crash at a random' +
      ' moment of a period (−½) and adding the probe\'s own period (the suspicion is raised at its end, +1) gives ≈ 2.1 ×' +
      ` ProbeInterval = ${(2.08 * c.probeIntervalMs / 1000).toFixed(1)} s: the "first suspect" column. memberlist publishes no measured figures; "dead everywhere" is expected at` +
      ' that plus the suspicion timeout plus a few gossip rounds.',
    '- **Lifeguard\'s price and gain.** A member that hears of a suspicion runs its own timer, which starts at 6 × min and' +
      ' reaches min only once it has heard two independent confirmations, so "dead everywhere" can come a little later with' +
      ' Lifeguard (the detection rows). In return, starved members stop accusing healthy ones' +
      (slowOff && slowOn ? `: in the slow rows healthy members falsely suspected went from ${slowOff.falselySuspected.healthy} to ${slowOn.falselySuspected.healthy}` +
        ` and falsely declared dead from ${slowOff.falselyDead.healthy} to ${slowOn.falselyDead.healthy}, as the slow members\' local health rose (to ${slowOn.maxLocalHealth}` +
        ` at most) and stretched their probe interval.` : '.'),
    `- **Dissemination.** each update is sent RetransmitMult × ceil(log10(N + 1)) = ${c.retransmitMult * Math.ceil(Math.log10(nodes + 1))} times by each member at ${nodes.toLocaleString('en')}, on probes and in the gossip round.`,
    '',
    'Figures: `bench/results/swim.json`; plot: `docs/swim.svg`.',
  ].filter((l) => l !== null).join('\n')
}

async function plot(b: SwimBench): Promise<string> {
  const name = (r: RunSummary): string => `${r.scenario} ${r.nodes.toLocaleString('en')}, Lifeguard ${r.lifeguard ? 'on' : 'off'}`
  const series = b.runs.map(name)
  const cdf = b.runs.flatMap((r) => {
    const t = r.allDeadTimes.filter((x): x is number => x !== null).sort((a, c) => a - c)
    return t.map((ms, i) => ({ run: name(r), s: ms / 1000, share: (100 * (i + 1)) / r.allDeadTimes.length }))
  })
  const fp = b.runs.flatMap((r) => [
    { run: name(r), what: 'suspected', members: r.falselySuspected.healthy + r.falselySuspected.slow },
    { run: name(r), what: 'declared dead', members: r.falselyDead.healthy + r.falselyDead.slow },
  ])
  const color = { field: 'run', type: 'nominal', title: null, sort: series, legend: { orient: 'bottom', direction: 'vertical', labelLimit: 400 } }
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: `SWIM failure detection · memberlist LAN defaults · loss ${(loss * 100).toFixed(1)} % · seed ${b.seed}`,
      subtitle: ['1 % of members crash at once; slow: 2 % of members handle messages 0–1.5 s late', 'left: share of crashed members marked dead by every live member; right: live members falsely suspected / declared dead'],
      anchor: 'start', fontSize: 16, subtitleFontSize: 12, subtitleColor: '#444', offset: 12,
    },
    padding: 16, spacing: 40,
    hconcat: [
      {
        name: 'all_dead_cdf', title: 'Time until every live member marks a crashed one dead', width: 360, height: 240,
        data: { values: cdf }, mark: { type: 'line', strokeWidth: 2, interpolate: 'step-after' },
        encoding: {
          x: { field: 's', type: 'quantitative', title: 'seconds after the crash' },
          y: { field: 'share', type: 'quantitative', title: 'crashed members (%)', scale: { domain: [0, 100] } },
          color,
        },
      },
      {
        name: 'false_positives', title: 'Live members falsely suspected / declared dead', width: 320, height: 240,
        data: { values: fp },
        encoding: {
          x: { field: 'what', type: 'nominal', title: null, axis: { labelAngle: 0 }, sort: ['suspected', 'declared dead'] },
          xOffset: { field: 'run', sort: series },
          y: { field: 'members', type: 'quantitative', title: 'members (symmetric log scale)', scale: { type: 'symlog' }, axis: { values: [0, 1, 3, 10, 30, 100, 300, 1000] } },
          color,
        },
        layer: [
          { mark: { type: 'bar', tooltip: true } },
          { mark: { type: 'text', dy: -6, fontSize: 10 }, encoding: { text: { field: 'members', type: 'quantitative' } } },
        ],
      },
    ],
    config: { font: 'DejaVu Sans, Helvetica, Arial, sans-serif', axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal' }, legend: { labelFontSize: 11 }, view: { stroke: '#ddd' } },
  }
  const view = new vega.View(vega.parse(compile(spec as unknown as TopLevelSpec).spec), { renderer: 'none' })
  try { return await view.toSVG() } finally { view.finalize() }
}
