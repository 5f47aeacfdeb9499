// The simulator's charts: hand-made reports in, one standalone SVG out, with the parts a reader needs.
// WEFT_PLOT_OUT=dir writes each chart there to look at.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { plotReports } from '../src/sim/plot.js'
import type { SimReport } from '../src/sim/report.js'
import { rejectsWith } from './helpers/errors.js'

const THEORY = {
  kademlia: 'log2(n) / log2(2^b), b = 1, less log2(k)',
  chord: '½ · log2(n)',
} as const

/** A plausible report: Poisson-shaped hops around the model's mean, exponential-ish latency. */
function report(topology: keyof typeof THEORY, nodes: number, seed = 'plot-1'): SimReport {
  const lookups = 1000
  const theoreticalHops = topology === 'chord' ? 0.5 * Math.log2(nodes) : Math.log2(nodes) - Math.log2(20)
  const mean = theoreticalHops * 1.08
  const pmf = Array.from({ length: 30 }, (_, h) => Math.exp(-mean + h * Math.log(mean) - lnFactorial(h)))
  const histogram = pmf.map((p) => Math.round(p * lookups))
  const cdf = Array.from({ length: 101 }, (_, p) => Math.round(mean * 40 * (0.4 - Math.log(1 - (p / 100) * 0.995))))
  const table = topology === 'chord' ? 1.5 * Math.log2(nodes) : 20 * Math.log2(nodes / 20)
  const counted = histogram.reduce((s, c) => s + c, 0)
  const hopAt = (q: number) => { let acc = 0; for (let h = 0; h < histogram.length; h++) if ((acc += histogram[h]) >= q * counted) return h; return 0 }
  return {
    simulated: {
      topology, nodes, seed, build: 'oracle', k: 20, alpha: 3, refreshMs: null, b: null, warmupMs: 0, failAtOnce: 0, latencyModel: 'king', loss: 0.01,
      churnMedianMs: null, adversaries: 0, lookups, succeeded: 996, successRate: 0.996, recall: 0.98, location: null,
      hops: { mean, p50: hopAt(0.5), p95: hopAt(0.95), max: histogram.length - 1, histogram },
      latencyMs: { mean: cdf[50] * 1.1, p50: cdf[50], p95: cdf[95], max: cdf[100], cdf },
      routing: { successRate: 1, hops: { mean, p50: hopAt(0.5), p95: hopAt(0.95), max: histogram.length - 1 } },
      messagesPerLookup: mean * 3.2, bytesPerLookup: mean * 3.2 * 120,
      tableSize: { mean: table, p50: table, p95: table * 1.1, max: table * 1.3 },
      theoreticalHops, theory: THEORY[topology], virtualTimeMs: 600_000, events: 1e6, datagrams: 5e5,
    },
    machine: { wallMs: 1234, eventsPerSecond: 8e5, peakRssBytes: 2e8, bytesPerNode: 3000 },
  }
}

function lnFactorial(n: number): number {
  let s = 0
  for (let i = 2; i <= n; i++) s += Math.log(i)
  return s
}

/** The SVG of the mark groups with one Vega name (a line mark has one group per series). */
function markGroup(svg: string, name: string): string {
  const groups = svg.split(new RegExp(`<g class="mark-\\w+ role-mark ${name}"`)).slice(1).map((g) => g.slice(0, g.indexOf('</g>')))
  assert.ok(groups.length > 0, `no mark group ${name}`)
  return groups.join('\n')
}

const paths = (svg: string, name: string): number => (markGroup(svg, name).match(/<path /g) ?? []).length
const bins = (r: SimReport): number => r.simulated.hops.histogram.reduce((last, c, h) => (c > 0 ? h + 1 : last), 0)

function checkDocument(svg: string, name: string): void {
  if (process.env.WEFT_PLOT_OUT) writeFileSync(join(process.env.WEFT_PLOT_OUT, `${name}.svg`), svg)
  assert.ok(svg.startsWith('<svg'), svg.slice(0, 80))
  assert.ok(svg.trimEnd().endsWith('</svg>'))
  assert.match(svg, /xmlns="http:\/\/www\.w3\.org\/2000\/svg"/)
  assert.equal((svg.match(/<svg/g) ?? []).length, 1)
  assert.doesNotMatch(svg, /NaN|undefined|Infinity/)
}

test('one report: hop histogram with one bar per bin, and the latency CDF', async () => {
  const r = report('kademlia', 10_000)
  const svg = await plotReports([r])
  checkDocument(svg, 'single')
  for (const text of ['kademlia · 10,000 nodes · seed plot-1 · 99.6% success', 'hops', 'share of lookups (%)', 'latency (virtual ms)', 'percentile']) {
    assert.ok(svg.includes(`>${text}<`), `missing text ${text}`)
  }
  assert.equal(paths(svg, 'hops_histogram_marks'), bins(r))
  const share = (100 * r.simulated.hops.histogram[4]) / r.simulated.hops.histogram.reduce((s, c) => s + c, 0)
  assert.ok(svg.includes(`aria-label="hops: 4; share of lookups (%): ${share.toFixed(2)}`), 'bar for 4 hops has its share')
  assert.equal(paths(svg, 'latency_cdf_marks'), 1)
  assert.ok(!svg.includes('theory'), 'no scaling panel for one size')
})

test('several sizes: one histogram series per size, and hops vs size beside the theory', async () => {
  const sizes = [1e3, 1e4, 1e5, 1e6]
  const runs = sizes.map((n) => report('kademlia', n))
  const svg = await plotReports([...runs].reverse())
  checkDocument(svg, 'sizes')
  for (const text of ['kademlia · 1,000 to 1,000,000 nodes · seed plot-1', 'network size (nodes, log scale)', 'hops per lookup', `theory: ${THEORY.kademlia}`, '1M', '1k']) {
    assert.ok(svg.includes(`>${text}<`), `missing text ${text}`)
  }
  // One outline per size, with a point per bin.
  assert.equal(paths(svg, 'hops_histogram_marks'), sizes.length)
  assert.equal(paths(svg, 'hops_histogram_points_marks'), Math.max(...runs.map(bins)) * sizes.length)
  assert.equal(paths(svg, 'latency_cdf_marks'), sizes.length)
  // Points for mean and p95 at each size; the theory is drawn as a line only.
  assert.equal(paths(svg, 'hops_points_marks'), 2 * sizes.length)
  assert.doesNotMatch(markGroup(svg, 'hops_points_marks'), /kind: theory/)
  assert.equal(paths(svg, 'hops_lines_marks'), 3)
  assert.equal((markGroup(svg, 'hops_lines_marks').match(/stroke-dasharray="6,4"/g) ?? []).length, 1)
})

test('several topologies: coloured by topology, theory dashed in the hops panel', async () => {
  const runs = [1e3, 1e5].flatMap((n) => [report('kademlia', n), report('chord', n)])
  const svg = await plotReports(runs)
  checkDocument(svg, 'compare')
  for (const text of ['chord vs kademlia · 1,000 to 100,000 nodes · seed plot-1', 'success rate chord 99.6%, kademlia 99.6%', `theory (dashed), chord: ${THEORY.chord}`, 'latency p50 (virtual ms)', 'contacts per node', 'messages per lookup', 'chord', 'kademlia']) {
    assert.ok(svg.includes(`>${text}<`), `missing text ${text}`)
  }
  assert.equal(paths(svg, 'hops_theory_marks'), 2)
  assert.equal((markGroup(svg, 'hops_theory_marks').match(/stroke-dasharray="6,4"/g) ?? []).length, 2)
  assert.equal(paths(svg, 'hops_measured_marks'), 2)
})

test('no reports is a bad argument', async () => {
  await rejectsWith(plotReports([]), 'ERR_BAD_ARGUMENT')
})
