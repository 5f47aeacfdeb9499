// The soak's outputs: its results record, the plot (RSS and open handles over time, Vega-Lite to
// SVG as in src/sim/plot.ts) and the soak section of docs/security.md.
import * as vega from 'vega'
import { compile, type TopLevelSpec } from 'vega-lite'
import { FLAT_TOLERANCE, flatCheck, thirds, type Check } from './soak-check.js'
import { OP_KINDS, type OpKind, type OpSummary, type StuckOp } from './soak-ops.js'
import type { Sample } from './soak-probe.js'

export interface SoakParams {
  minutes: number
  /** Minutes of load and churn before the measured ones (not compared). */
  warmupMinutes: number
  nodes: number
  bootstrapNodes: number
  seed: string
  sampleSeconds: number
  churnSeconds: number
  opsPerSecond: number
  opTimeoutMs: number
  stuckMarginMs: number
  values: number
}

export interface SoakResult {
  params: SoakParams
  /** The command that reproduces the run. */
  command: string
  machine: { cpus: number; cpuModel: string; node: string; platform: string; totalMemMB: number }
  commit: string
  startedAt: string
  setupS: number
  runS: number
  teardownS: number
  churn: {
    replaced: number; graceful: number; crashed: number; startFailures: number; skippedTicks: number
    /** Nodes of the starting population (bootstrap nodes aside) still running at the end. */
    originalsLeft: number; originalsReplacedShare: number
  }
  ops: Record<OpKind, OpSummary>
  opsSkipped: number
  stuckOps: StuckOp[]
  /** After every node stopped: what was still open. */
  teardown: { udpSockets: number; handles: number; handlesByKind: Record<string, number>; timersPending: number }
  checks: Check[]
  pass: boolean
  samples: Sample[]
}

const FONT = 'DejaVu Sans, Helvetica, Arial, sans-serif'
const W = 420
const H = 220

/** Shaded windows of the first and last thirds after warm-up: what the flatness checks compare. */
function windows(r: SoakResult): { from: number; to: number; window: string }[] {
  const th = thirds(r.samples, r.params.warmupMinutes * 60)
  if (!th) return []
  const m = (s: Sample): number => s.t / 60
  return [
    { from: m(th.first[0]), to: m(th.first[th.first.length - 1]), window: 'first third' },
    { from: m(th.last[0]), to: m(th.last[th.last.length - 1]), window: 'last third' },
  ]
}

function panel(title: string, rows: { min: number; series: string; value: number }[], yTitle: string, r: SoakResult, log = false): Record<string, unknown> {
  const series = [...new Set(rows.map((x) => x.series))]
  return {
    title, width: W, height: H,
    layer: [
      {
        data: { values: windows(r) },
        mark: { type: 'rect', opacity: 0.12, color: '#888' },
        encoding: { x: { field: 'from', type: 'quantitative' }, x2: { field: 'to' } },
      },
      {
        data: { values: rows },
        mark: { type: 'line', strokeWidth: 2 },
        encoding: {
          x: { field: 'min', type: 'quantitative', title: 'minutes since churn began' },
          y: { field: 'value', type: 'quantitative', title: yTitle, scale: log ? { type: 'log' } : { zero: true } },
          color: { field: 'series', type: 'nominal', title: null, sort: series, legend: { orient: 'bottom', direction: 'horizontal', labelLimit: 260 } },
        },
      },
    ],
    resolve: { scale: { x: 'shared', color: 'independent' }, legend: { color: 'independent' } },
  }
}

export async function plotSoak(r: SoakResult): Promise<string> {
  const p = r.params
  const rows = (pick: (s: Sample) => Record<string, number>): { min: number; series: string; value: number }[] =>
    r.samples.flatMap((s) => Object.entries(pick(s)).map(([series, value]) => ({ min: Math.round((s.t / 60) * 100) / 100, series, value })))
  const per = (s: Sample, x: number): number => Math.max(0.1, Math.round((x / Math.max(1, s.liveNodes)) * 10) / 10)
  const verdicts = r.checks.map((c) => `${c.name} ${c.pass ? 'pass' : 'FAIL'}`).join(' · ')
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: `Soak · ${p.nodes} loopback nodes · ${p.minutes} min · churn 1 node / ${p.churnSeconds} s · ${p.opsPerSecond} ops/s · seed ${p.seed}`,
      subtitle: [
        `shaded: the first and last thirds of the ${p.minutes} measured minutes (after ${p.warmupMinutes} min of warm-up under the same load), whose medians must agree within ±${FLAT_TOLERANCE * 100} %`,
        verdicts,
      ],
      anchor: 'start', fontSize: 16, subtitleFontSize: 12, subtitleColor: '#444', offset: 12,
    },
    padding: 16, spacing: 36,
    // Each panel has its own series: its own colours and legend.
    resolve: { scale: { color: 'independent' }, legend: { color: 'independent' } },
    vconcat: [
      {
        resolve: { scale: { color: 'independent' }, legend: { color: 'independent' } },
        hconcat: [
          panel('Process memory (after a compacting full GC)', rows((s) => ({ RSS: s.rssMB, 'RSS before compacting': s.rssUncompactedMB ?? s.rssMB, 'heap used': s.heapUsedMB, external: s.externalMB })), 'MB', r),
          panel('Open handles', rows((s) => ({ 'active resources': s.handles, 'UDP sockets': s.udpSockets, 'file descriptors': s.fds })), 'count', r),
        ],
      },
      {
        resolve: { scale: { color: 'independent' }, legend: { color: 'independent' } },
        hconcat: [
          panel('Per live node (log scale)', rows((s) => ({
            'protocol timers': per(s, s.totals.timersPending), 'sessions open': per(s, s.totals.sessionsOpen), 'peer keys kept': per(s, s.totals.knownKeys),
            'table entries': per(s, s.totals.tableEntries), records: per(s, s.totals.records),
          })), 'mean per node', r, true),
          panel('Stopped nodes not yet garbage-collected', rows((s) => ({ unreclaimed: s.stopped.unreclaimed, 'their timers pending': s.stopped.timersPending })), 'count', r),
        ],
      },
    ],
    config: { font: FONT, axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal' }, legend: { labelFontSize: 11 }, view: { stroke: '#ddd' } },
  }
  const view = new vega.View(vega.parse(compile(spec as unknown as TopLevelSpec).spec), { renderer: 'none' })
  try { return await view.toSVG() } finally { view.finalize() }
}

const fmt = (x: number | null, digits = 1): string => (x === null || !Number.isFinite(x) ? '–' : x.toLocaleString('en-US', { maximumFractionDigits: digits }))
const pct = (x: number): string => `${(x * 100).toFixed(1)} %`

export function soakMarkdown(r: SoakResult): string {
  const command = r.command
  const p = r.params
  const o = r.ops
  const checkRows = r.checks.map((c) =>
    `| ${c.name} | ${c.what} | ${fmt(c.first)} | ${fmt(c.last, 3)} | ${c.change === null ? '–' : `${c.change >= 0 ? '+' : ''}${(c.change * 100).toFixed(1)} %`} | ${c.limit} | ${c.pass ? 'pass' : '**FAIL**'} |`)
  const opRows = OP_KINDS.map((k) => {
    const s = o[k]
    const codes = Object.entries(s.failedByCode).map(([c, n]) => `${c} ${n}`).join(', ') || '–'
    return `| ${k} | ${s.started} | ${s.ok} (${s.started ? pct(s.ok / s.started) : '–'}) | ${s.failed} | ${codes} | ${s.timedOut} | ${s.stuck} | ${fmt(s.latencyMs.p50, 0)} | ${fmt(s.latencyMs.p95, 0)} | ${fmt(s.latencyMs.max, 0)} |`
  })
  const last = r.samples[r.samples.length - 1]
  const raw = r.samples.every((s) => s.rssUncompactedMB !== undefined)
    ? flatCheck('', '', r.samples, p.warmupMinutes * 60, (s) => s.rssUncompactedMB) : null
  return [
    '## Soak: 200 loopback nodes under churn',
    '',
    `\`${command}\` (bench/soak.ts; a bench, not part of \`npm test\`). Run of ${r.startedAt.slice(0, 10)} on ${r.machine.cpus} × ${r.machine.cpuModel}, Node ${r.machine.node}, commit ${r.commit}.`,
    '',
    `${p.nodes} real nodes on 127.0.0.1 in one process (encrypted sessions, the UDP default), joined through ${p.bootstrapNodes} bootstrap nodes, for ${p.warmupMinutes} + ${p.minutes} min after a ${fmt(r.setupS, 0)} s start-up.`,
    `Every ${p.churnSeconds} s one random non-bootstrap node stops, alternately gracefully and as a crash (\`stop({ leave: false })\`), and a new node (new identity, new port) joins:`,
    `${r.churn.replaced} replaced (${r.churn.graceful} graceful, ${r.churn.crashed} crashed), ${pct(r.churn.originalsReplacedShare)} of the starting population gone by the end, ${r.churn.startFailures} joins failed.`,
    `Throughout, ${p.opsPerSecond} operations a second from random live nodes (lookup : put : get = 2 : 1 : 1; puts draw from a pool of ${p.values} values of 64–512 bytes, so stored data levels off; a get asks for a value some put stored),`,
    `each with its own ${p.opTimeoutMs / 1000} s timeout (an AbortSignal); one that has not settled ${p.stuckMarginMs / 1000} s past it counts as stuck.`,
    `Sampled every ${p.sampleSeconds} s after full GCs, the last of them compacting (V8's \`--compact-on-every-full-gc\`, switched on for that one GC only): RSS, heap, \`process.getActiveResourcesInfo()\` (ref'd handles: the nodes' UDP sockets), file descriptors, and the nodes' protocol timers (unref'd, so counted through a counting runtime), sessions, tables and records.`,
    '',
    `**Verdict: ${r.pass ? 'pass' : 'FAIL'}.** Flatness compares the medians of the first and last thirds of the ${p.minutes} measured minutes, which follow ${p.warmupMinutes} min of warm-up under the same churn and load (V8 grows its committed heap and tables fill toward their bounds there).`,
    '',
    '| check | figure | first third | last third / value | change | limit | result |',
    '|---|---|---:|---:|---:|---|---|',
    ...checkRows,
    '',
    '| operation | started | ok | failed | failures by code | timed out | stuck | p50 ms | p95 ms | max ms |',
    '|---|---:|---:|---:|---|---:|---:|---:|---:|---:|',
    ...opRows,
    '',
    `${r.opsSkipped} operation ticks skipped at the in-flight bound, ${r.churn.skippedTicks} churn ticks skipped while the previous replacement was still under way. At the last sample: ${last ? `${last.liveNodes} nodes, RSS ${fmt(last.rssMB)} MB, ${last.handles} active resources, ${last.fds} file descriptors, ${fmt(last.totals.timersPending / Math.max(1, last.liveNodes))} protocol timers, ${fmt(last.totals.sessionsOpen / Math.max(1, last.liveNodes))} sessions, ${fmt(last.totals.knownKeys / Math.max(1, last.liveNodes))} peer keys kept (bound: 4,096) and ${fmt(last.totals.tableEntries / Math.max(1, last.liveNodes))} table entries per node; event-loop delay p99 ${fmt(last.loopDelayMs.p99)} ms; ${last.stopped.unreclaimed} of ${last.stopped.stopped} stopped nodes not yet collected` : 'no samples'}.`,
    `After teardown: ${r.teardown.udpSockets} UDP sockets and ${r.teardown.timersPending} protocol timers left; active resources ${r.teardown.handles} (${Object.entries(r.teardown.handlesByKind).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}).`,
    '',
    'The first runs of this soak found a leak: the session layer kept each peer\'s key (by address, for IK handshakes) as a view into the decrypted datagram it came in, pinning that datagram\'s 8 KiB Buffer pool slab for as long as the key was remembered;' +
      ' with churn the slabs added up (external memory +29 MB in 3 min at 200 nodes, heap flat). Keys are now copied (`rememberKey` in src/transport/session.ts): +2.4 MB in the same run.',
    '',
    `Why compact: V8's full GCs evacuate only pages they find sparse enough, so under churn its old space keeps part-empty pages and its committed size (and RSS) creeps up while live data is flat:` +
      ` a 20-minute run without compaction had 127 MB of old space committed for 73 MB of live heap. V8 compacts every page like this by itself when memory runs short, so RSS after it is what a leak would show in.` +
      (raw?.change != null ? ` Without the compacting GC, RSS went ${fmt(raw.first)} → ${fmt(raw.last)} MB (${raw.change >= 0 ? '+' : ''}${(raw.change * 100).toFixed(1)} %, medians of the same thirds; not checked).` : ''),
    '',
    '![Soak: memory, open handles, per-node state and stopped nodes over time](soak.svg)',
    '',
    'All samples: `bench/results/soak.json`.',
  ].join('\n')
}
