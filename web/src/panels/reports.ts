// The simulator's reports in the page: the JSON `weft sim --out` writes (one run or several) as a
// table with hop histograms and latency CDFs, or the SVG chart `--plot` writes. The file is read
// in the browser; nothing is uploaded.
import { byId, el, svg } from '../dom.js'
import { duration } from '../ids.js'

interface Dist { mean: number; p50: number; p95: number; max: number }
/** The fields of src/sim/report.ts SimResult that the page shows. */
interface SimResult {
  topology: string; nodes: number; seed: string; build: string; lookups: number; successRate: number; recall: number
  hops: Dist & { histogram: number[] }; latencyMs: Dist & { cdf: number[] }; messagesPerLookup: number; bytesPerLookup: number
  tableSize: Dist; theoreticalHops: number; churnMedianMs: number | null; loss: number; adversaries: number; b: number | null
}

const COLORS = ['#3884ff', '#ff9f1c', '#2ec4b6', '#e71d36', '#8338ec', '#6a994e', '#bc6c25', '#555']
const MAX_FILE_BYTES = 32 * 1024 * 1024
const MAX_RUNS = 64

/** The runs in a report file, or an error naming what is wrong. */
export function parseReport(text: string): SimResult[] {
  let data: unknown
  try { data = JSON.parse(text) } catch { throw new Error('not JSON') }
  const list = (Array.isArray(data) ? data : [data]).map((r) => (r && typeof r === 'object' && 'simulated' in r ? (r as { simulated: unknown }).simulated : r))
  if (list.length === 0 || list.length > MAX_RUNS) throw new Error(`expected 1 to ${MAX_RUNS} runs, got ${list.length}`)
  return list.map((r, i) => {
    const x = r as SimResult
    const ok = x && typeof x === 'object' && typeof x.topology === 'string' && Number.isFinite(x.nodes) && Number.isFinite(x.successRate) &&
      x.hops && Array.isArray(x.hops.histogram) && x.latencyMs && Array.isArray(x.latencyMs.cdf)
    if (!ok) throw new Error(`run ${i + 1} is not a weft sim result (topology, nodes, successRate, hops.histogram, latencyMs.cdf)`)
    return x
  })
}

export function mountReports(onError: (err: unknown) => void): void {
  const input = byId<HTMLInputElement>('report-file')
  input.addEventListener('change', () => {
    const file = input.files?.[0]
    if (!file) return
    if (file.size > MAX_FILE_BYTES) { onError(new Error(`${file.name} is over ${MAX_FILE_BYTES / 1024 / 1024} MiB`)); return }
    const view = byId('report-view')
    if (file.name.endsWith('.svg') || file.type === 'image/svg+xml') {
      view.replaceChildren(el('img', { src: URL.createObjectURL(file), alt: file.name, class: 'report-svg', 'data-testid': 'report-svg' }))
      return
    }
    file.text().then((text) => {
      const runs = parseReport(text)
      view.replaceChildren(el('p', { text: `${file.name}: ${runs.length} run${runs.length > 1 ? 's' : ''}` }), runTable(runs), el('div', { class: 'split' }, hopChart(runs), cdfChart(runs)))
      view.dataset.runs = String(runs.length)
    }).catch((err) => { view.replaceChildren(); onError(new Error(`${file.name}: ${(err as Error).message}`)) })
  })
}

function runTable(runs: SimResult[]): HTMLElement {
  const head = ['', 'topology', 'nodes', 'build', 'lookups', 'success', 'recall', 'hops mean (theory)', 'p95', 'latency p50', 'p95', 'messages', 'table size']
  return el('div', { class: 'scroll' }, el('table', { class: 'list', 'data-testid': 'report-table' },
    el('thead', {}, el('tr', {}, ...head.map((h) => el('th', { text: h })))),
    el('tbody', {}, ...runs.map((r, i) => el('tr', {},
      el('td', {}, el('span', { class: 'swatch', style: `background:${COLORS[i % COLORS.length]}` })),
      el('td', { text: `${r.topology}${r.b ? ` b=${r.b}` : ''}${r.churnMedianMs ? ` churn ${duration(r.churnMedianMs)}` : ''}` }),
      el('td', { class: 'num', text: r.nodes.toLocaleString('en') }), el('td', { text: r.build }), el('td', { class: 'num', text: String(r.lookups) }),
      el('td', { class: 'num', text: `${(100 * r.successRate).toFixed(2)} %` }), el('td', { class: 'num', text: r.recall.toFixed(3) }),
      el('td', { class: 'num', text: `${r.hops.mean.toFixed(2)} (${r.theoreticalHops.toFixed(2)})` }), el('td', { class: 'num', text: String(r.hops.p95) }),
      el('td', { class: 'num', text: duration(r.latencyMs.p50) }), el('td', { class: 'num', text: duration(r.latencyMs.p95) }),
      el('td', { class: 'num', text: r.messagesPerLookup.toFixed(1) }), el('td', { class: 'num', text: r.tableSize.mean.toFixed(1) }),
    )))))
}

const W = 420, H = 220, L = 40, B = 30, T = 20

function axes(title: string, xLabel: string, yLabel: string): SVGSVGElement {
  return svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': title },
    svg('text', { x: W / 2, y: 14, 'text-anchor': 'middle', class: 'caption', text: title }),
    svg('line', { x1: L, y1: H - B, x2: W - 10, y2: H - B, class: 'axis' }), svg('line', { x1: L, y1: T, x2: L, y2: H - B, class: 'axis' }),
    svg('text', { x: W / 2, y: H - 4, 'text-anchor': 'middle', class: 'label', text: xLabel }),
    svg('text', { x: 10, y: H / 2, transform: `rotate(-90 10 ${H / 2})`, 'text-anchor': 'middle', class: 'label', text: yLabel }))
}

function hopChart(runs: SimResult[]): SVGSVGElement {
  const chart = axes('hops per lookup', 'hops', 'share of lookups')
  const maxHop = Math.max(1, ...runs.map((r) => r.hops.histogram.length))
  const shares = runs.map((r) => { const n = r.hops.histogram.reduce((a, b) => a + b, 0) || 1; return r.hops.histogram.map((c) => c / n) })
  const top = Math.max(0.01, ...shares.flat())
  const slot = (W - 10 - L) / maxHop, bar = Math.max(1, (slot - 4) / runs.length)
  for (let h = 0; h < maxHop; h++) chart.append(svg('text', { x: L + h * slot + slot / 2, y: H - B + 12, 'text-anchor': 'middle', class: 'label', text: String(h) }))
  shares.forEach((s, i) => s.forEach((v, h) => {
    const y = (H - B - T) * (v / top)
    chart.append(svg('rect', { x: L + h * slot + 2 + i * bar, y: H - B - y, width: bar, height: y, fill: COLORS[i % COLORS.length] }))
  }))
  return chart
}

function cdfChart(runs: SimResult[]): SVGSVGElement {
  const chart = axes('lookup latency (CDF)', 'ms', 'percentile')
  const maxMs = Math.max(1, ...runs.map((r) => r.latencyMs.cdf[r.latencyMs.cdf.length - 1] ?? 0))
  chart.append(svg('text', { x: W - 10, y: H - B + 12, 'text-anchor': 'end', class: 'label', text: `${Math.round(maxMs)}` }))
  runs.forEach((r, i) => {
    const pts = r.latencyMs.cdf.map((ms, p) => `${(L + (W - 10 - L) * (ms / maxMs)).toFixed(1)},${(H - B - (H - B - T) * (p / 100)).toFixed(1)}`)
    chart.append(svg('polyline', { points: pts.join(' '), fill: 'none', stroke: COLORS[i % COLORS.length], 'stroke-width': 2 }))
  })
  return chart
}
