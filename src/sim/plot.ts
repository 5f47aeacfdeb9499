// SVG charts of simulation reports, drawn with Vega-Lite (compiled to Vega, rendered headless).
// One report: hop histogram + latency CDF. Several sizes of one topology: the same, one colour
// per size, plus mean/p95 hops against size beside the theory. Several topologies: hops, p50
// latency, table size and messages per lookup against size, one colour per topology.
import * as vega from 'vega'
import { compile, type TopLevelSpec } from 'vega-lite'
import { WeftError } from '../errors.js'
import type { SimReport, SimResult } from './report.js'

type Spec = Record<string, unknown>

const W = 330
const H = 230
const FONT = 'DejaVu Sans, Helvetica, Arial, sans-serif'

const int = (n: number): string => n.toLocaleString('en-US')
const pct = (x: number): string => `${(x * 100).toFixed(1)}%`
const uniq = <T>(xs: T[]): T[] => [...new Set(xs)]

/** Renders the reports as one standalone SVG document. */
export async function plotReports(reports: SimReport[]): Promise<string> {
  if (!Array.isArray(reports) || reports.length === 0) {
    throw new WeftError('ERR_BAD_ARGUMENT', 'plotReports needs at least one simulation report')
  }
  // Pastry runs with different digit sizes are different series.
  const runs = reports.map((r) => (r.simulated.b === null || r.simulated.b === undefined ? r.simulated : { ...r.simulated, topology: `${r.simulated.topology} b=${r.simulated.b}` })).sort((a, b) => a.topology.localeCompare(b.topology) || a.nodes - b.nodes)
  const topologies = uniq(runs.map((r) => r.topology))
  return render(topologies.length > 1 ? compareSpec(runs, topologies) : sizesSpec(runs))
}

async function render(spec: Spec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec as unknown as TopLevelSpec).spec), { renderer: 'none' })
  try {
    return await view.toSVG()
  } finally {
    view.finalize()
  }
}

/** One topology, one or more runs: histogram and CDF per run, and hops vs size if sizes differ. */
function sizesSpec(runs: SimResult[]): Spec {
  const labels = runs.map((r) => int(r.nodes))
  const label = (r: SimResult, i: number): string =>
    labels.filter((l) => l === labels[i]).length > 1 ? `${labels[i]} (seed ${r.seed})` : labels[i]
  const series = runs.map(label)
  const color = { field: 'run', type: 'nominal', title: 'nodes', sort: series, legend: series.length > 1 ? { orient: 'bottom', direction: 'horizontal' } : null }

  const bins = Math.max(...runs.map((r) => lastNonZero(r.hops.histogram) + 1), 1)
  const hist = runs.flatMap((r, i) => {
    const total = r.hops.histogram.reduce((s, c) => s + c, 0) || 1
    return Array.from({ length: bins }, (_, h) => ({ run: series[i], hops: h, share: (100 * (r.hops.histogram[h] ?? 0)) / total }))
  })
  const cdf = runs.flatMap((r, i) => r.latencyMs.cdf.map((ms, p) => ({ run: series[i], ms, percentile: p })))

  const many = series.length > 1
  const x = { field: 'hops', type: many ? 'quantitative' : 'ordinal', title: 'hops', axis: { labelAngle: 0, tickMinStep: 1 } }
  const panels: Spec[] = [
    {
      // One run: bars. Several: one outline per run (grouped bars of 4 runs × 30 bins are unreadable).
      title: 'Hops per lookup',
      width: W,
      height: H,
      data: { values: hist },
      encoding: { x, y: { field: 'share', type: 'quantitative', title: 'share of lookups (%)' }, color },
      layer: many
        ? [
            { name: 'hops_histogram', mark: { type: 'line', strokeWidth: 2 } },
            { name: 'hops_histogram_points', mark: { type: 'point', filled: true, size: 25, opacity: 1, tooltip: true } },
          ]
        : [{ name: 'hops_histogram', mark: { type: 'bar', tooltip: true } }],
    },
    {
      name: 'latency_cdf',
      title: 'Lookup latency CDF',
      width: W,
      height: H,
      data: { values: cdf },
      mark: { type: 'line', strokeWidth: 2 },
      encoding: {
        x: { field: 'ms', type: 'quantitative', title: 'latency (virtual ms)' },
        y: { field: 'percentile', type: 'quantitative', title: 'percentile', scale: { domain: [0, 100] } },
        color,
      },
    },
  ]
  const sizes = uniq(runs.map((r) => r.nodes))
  const body: Spec = { hconcat: panels }
  if (sizes.length > 1) {
    body.hconcat = [{ hconcat: panels }, scalingPanel(runs, sizes)]
    body.resolve = { scale: { color: 'independent', strokeDash: 'independent' }, legend: { color: 'independent', strokeDash: 'independent' } }
  }

  const r0 = runs[0]
  const seeds = uniq(runs.map((r) => r.seed))
  const nodes = sizes.length > 1 ? `${int(sizes[0])} to ${int(sizes[sizes.length - 1])} nodes` : `${int(r0.nodes)} nodes`
  const success =
    runs.length > 1
      ? `success rate ${runs.map((r, i) => `${pct(r.successRate)} at ${series[i]}`).join(', ')}`
      : `${pct(r0.successRate)} success`
  return top(
    [r0.topology, nodes, `seed ${seeds.join(', ')}`, ...(runs.length > 1 ? [] : [success])].join(' · '),
    [...(runs.length > 1 ? [success] : []), setup(runs)],
    body,
  )
}

/** Mean and p95 hops against size (log x), beside the model's expected mean, dashed. */
function scalingPanel(runs: SimResult[], sizes: number[]): Spec {
  const theory = `theory: ${uniq(runs.map((r) => r.theory)).join('; ')}`
  const kinds = ['mean', 'p95', theory]
  const rows = runs.flatMap((r) => [
    { nodes: r.nodes, kind: 'mean', hops: r.hops.mean },
    { nodes: r.nodes, kind: 'p95', hops: r.hops.p95 },
    { nodes: r.nodes, kind: theory, hops: r.theoreticalHops },
  ])
  const legend = { orient: 'bottom', direction: 'vertical', title: null, labelLimit: 2 * W, symbolType: 'stroke', symbolStrokeWidth: 2 }
  const dash = { field: 'kind', type: 'nominal', scale: { domain: kinds, range: [[1, 0], [1, 0], [6, 4]] }, legend }
  return {
    name: 'hops_vs_size',
    title: 'Hops vs network size',
    width: W,
    height: H,
    data: { values: rows },
    encoding: {
      x: sizeAxis(sizes),
      y: { field: 'hops', type: 'quantitative', title: 'hops per lookup' },
      color: { field: 'kind', type: 'nominal', scale: { domain: kinds, range: ['#1f5fa8', '#7fb0e0', '#666666'] }, legend },
      strokeDash: dash,
    },
    layer: [
      { name: 'hops_lines', mark: { type: 'line', strokeWidth: 2 } },
      { name: 'hops_points', transform: [{ filter: `datum.kind !== ${JSON.stringify(theory)}` }], mark: { type: 'point', filled: true, size: 50, opacity: 1, tooltip: true } },
    ],
  }
}

/** Several topologies: four panels against size, one colour per topology. */
function compareSpec(runs: SimResult[], topologies: string[]): Spec {
  const sizes = uniq(runs.map((r) => r.nodes)).sort((a, b) => a - b)
  const x = sizeAxis(sizes)
  const color = { field: 'topology', type: 'nominal', title: 'topology', sort: topologies }
  const rows = runs.map((r) => ({
    topology: r.topology,
    nodes: r.nodes,
    hops: r.hops.mean,
    theory: r.theoreticalHops,
    p50: r.latencyMs.p50,
    table: r.tableSize.mean,
    messages: r.messagesPerLookup,
  }))
  const lines = (field: string, title: string, name: string, dash?: number[]): Spec[] => [
    {
      name,
      mark: { type: 'line', strokeWidth: 2, ...(dash ? { strokeDash: dash } : {}) },
      encoding: { x, y: { field, type: 'quantitative', title }, color },
    },
    ...(dash ? [] : [{ mark: { type: 'point', filled: true, size: 50, opacity: 1, tooltip: true }, encoding: { x, y: { field, type: 'quantitative' }, color } }]),
  ]
  const panel = (title: string, layer: Spec[]): Spec => ({ title, width: W, height: H, data: { values: rows }, layer })
  const hops = panel('Mean hops (dashed: theory)', [
    ...lines('hops', 'hops per lookup', 'hops_measured'),
    ...lines('theory', 'hops per lookup', 'hops_theory', [6, 4]),
  ])
  const per = (f: (r: SimResult) => string): string =>
    topologies.map((t) => `${t} ${uniq(runs.filter((r) => r.topology === t).map(f)).join('/')}`).join(', ')
  const span = sizes.length > 1 ? `${int(sizes[0])} to ${int(sizes[sizes.length - 1])}` : int(sizes[0])
  return top(
    `${topologies.join(' vs ')} · ${span} nodes · seed ${uniq(runs.map((r) => r.seed)).join(', ')}`,
    [
      `success rate ${per((r) => pct(r.successRate))}`,
      setup(runs),
      ...topologies.map((t) => `theory (dashed), ${t}: ${runs.find((r) => r.topology === t)?.theory ?? ''}`),
    ],
    {
      vconcat: [
        { hconcat: [hops, panel('Lookup latency p50', lines('p50', 'latency p50 (virtual ms)', 'latency_p50'))] },
        {
          hconcat: [
            panel('Routing table size (mean)', lines('table', 'contacts per node', 'table_size')),
            panel('Messages per lookup', lines('messages', 'messages per lookup', 'messages')),
          ],
        },
      ],
      resolve: { scale: { color: 'shared' } },
    },
  )
}

/** Network size on a log axis, ticked at the measured sizes. */
function sizeAxis(sizes: number[]): Spec {
  const lo = Math.min(...sizes)
  const hi = Math.max(...sizes)
  return {
    field: 'nodes',
    type: 'quantitative',
    title: 'network size (nodes, log scale)',
    scale: { type: 'log', domain: [lo / 1.6, hi * 1.6], nice: false },
    axis: { values: sizes, format: '~s', grid: true },
  }
}

/** The parameters every run shares, or the range they span. */
function setup(runs: SimResult[]): string {
  const one = <T>(f: (r: SimResult) => T): string => uniq(runs.map((r) => String(f(r)))).join('/')
  const churn = one((r) => (r.churnMedianMs === null ? 'none' : `${int(r.churnMedianMs)} ms median session`))
  return (
    `build ${one((r) => r.build)}, k=${one((r) => r.k)}, α=${one((r) => r.alpha)}, latency ${one((r) => r.latencyModel)}, ` +
    `loss ${one((r) => pct(r.loss))}, churn ${churn}, adversaries ${one((r) => r.adversaries)}, lookups ${one((r) => int(r.lookups))}`
  )
}

function top(title: string, subtitle: string[], body: Spec): Spec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, subtitle, anchor: 'start', fontSize: 18, subtitleFontSize: 12, subtitleColor: '#444', offset: 14 },
    padding: 16,
    spacing: 40,
    ...body,
    config: {
      font: FONT,
      title: { fontSize: 14 },
      axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal', labelOverlap: true },
      legend: { labelFontSize: 11, titleFontSize: 12 },
      view: { stroke: '#ddd' },
    },
  }
}

function lastNonZero(xs: number[]): number {
  for (let i = xs.length - 1; i >= 0; i--) if (xs[i] > 0) return i
  return -1
}

/**
 * Object location (runs made with --objects): the stretch of the server each query was given
 * (RTT to it / RTT to the nearest server of the object) as a CDF per run, and the time to find one.
 */
export async function plotLocation(reports: SimReport[]): Promise<string> {
  const runs = reports.map((r) => r.simulated).filter((r) => r.location)
  if (runs.length === 0) throw new WeftError('ERR_BAD_ARGUMENT', 'plotLocation needs reports of runs with --objects')
  const name = (r: SimResult): string =>
    `${r.topology}${r.b ? ` b=${r.b}` : ''} (${r.location!.via})${uniq(runs.map((x) => x.nodes)).length > 1 ? `, ${int(r.nodes)}` : ''}${uniq(runs.map((x) => x.churnMedianMs)).length > 1 ? (r.churnMedianMs ? ', churn' : ', no churn') : ''}`
  const series = runs.map(name)
  const color = { field: 'run', type: 'nominal', title: null, sort: series, legend: { orient: 'bottom', direction: 'vertical', labelLimit: 2 * W } }
  const cap = Math.max(2, ...runs.map((r) => r.location!.stretch.cdf[98] ?? 1))
  const stretch = runs.flatMap((r, i) => r.location!.stretch.cdf.map((s, p) => ({ run: series[i], stretch: Math.max(1, Math.min(s, cap)), percentile: p })))
  const latency = runs.flatMap((r, i) => r.location!.latencyMs.p50 >= 0 ? [
    { run: series[i], kind: 'p50', ms: r.location!.latencyMs.p50 },
    { run: series[i], kind: 'mean', ms: r.location!.latencyMs.mean },
    { run: series[i], kind: 'p95', ms: r.location!.latencyMs.p95 },
  ] : [])
  const l0 = runs[0].location!
  return render(top(
    `Object location · ${uniq(runs.map((r) => int(r.nodes))).join(', ')} nodes · ${l0.objects} objects × ${l0.serversPerObject} servers · seed ${uniq(runs.map((r) => r.seed)).join(', ')}`,
    [
      `stretch = RTT to the server a query was given / RTT to the nearest server of the object (1 is ideal)`,
      ...runs.map((r, i) => `${series[i]}: found a live server in ${pct(r.location!.successRate)} of queries`),
      setup(runs),
    ],
    {
      hconcat: [
        {
          name: 'stretch_cdf', title: 'Stretch CDF (capped at the largest p98)', width: W, height: H,
          data: { values: stretch },
          mark: { type: 'line', strokeWidth: 2 },
          encoding: {
            x: { field: 'stretch', type: 'quantitative', title: 'stretch (log scale)', scale: { type: 'log', domain: [1, cap], nice: false } },
            y: { field: 'percentile', type: 'quantitative', title: 'percentile of queries', scale: { domain: [0, 100] } },
            color,
          },
        },
        {
          name: 'locate_latency', title: 'Time to find a server', width: W, height: H,
          data: { values: latency },
          mark: { type: 'bar', tooltip: true },
          encoding: {
            x: { field: 'kind', type: 'nominal', title: null, sort: ['p50', 'mean', 'p95'], axis: { labelAngle: 0 } },
            xOffset: { field: 'run', sort: series },
            y: { field: 'ms', type: 'quantitative', title: 'virtual ms' },
            color,
          },
        },
      ],
    },
  ))
}
