// Every devnet node on one picture: nodes on the id ring (SVG, one circle each), the last
// second's datagrams between them as lines, and dots that travel from sender to receiver
// (canvas, redrawn each frame). Counters are polled; the page records how long each update took.
import { api, type DevnetNodes, type LookupTrace, type Traffic, type TrafficWindow } from '../api.js'
import { byId, svg, titled } from '../dom.js'
import { onCircle, ringPos, short } from '../ids.js'

const SIZE = 600, C = SIZE / 2, R = 270
const NODES_EVERY_MS = 2000
const TRAFFIC_EVERY_MS = 1000
/** Links drawn per window and dots in flight: bounds on the work of a frame. */
const MAX_LINES = 3000
const MAX_DOTS = 400

export interface DevnetHooks {
  select(id: string): void
  onError(err: unknown): void
}

/** Time per update (ms from an answer to the picture drawn), for people and the bench. */
export const stats = { nodeUpdates: 0, trafficUpdates: 0, updateMs: [] as number[], frames: 0 }
const record = (ms: number): void => { stats.updateMs.push(ms); if (stats.updateMs.length > 600) stats.updateMs.shift() }
;(globalThis as { weftStats?: typeof stats }).weftStats = stats

export class DevnetPicture {
  private readonly root: SVGSVGElement
  private readonly canvas: HTMLCanvasElement
  private readonly lines: HTMLCanvasElement
  private readonly circles = new Map<string, SVGCircleElement>()
  private readonly route: SVGGElement
  private xy: [number, number][] = []
  private ids: string[] = []
  private prev: DevnetNodes | null = null
  private seq = 0
  private dots: { from: number; to: number; start: number; ms: number }[] = []
  private window: TrafficWindow | null = null
  private selected: string | null = null
  private raf = 0
  private timers: number[] = []

  constructor(private readonly hooks: DevnetHooks, private readonly traffic: boolean) {
    const box = byId('devnet-picture')
    const dpr = Math.min(2, window.devicePixelRatio || 1)
    this.canvas = Object.assign(document.createElement('canvas'), { width: SIZE * dpr, height: SIZE * dpr })
    this.lines = Object.assign(document.createElement('canvas'), { width: SIZE * dpr, height: SIZE * dpr })
    for (const c of [this.canvas, this.lines]) c.getContext('2d')!.scale(dpr, dpr)
    this.root = svg('svg', { viewBox: `0 0 ${SIZE} ${SIZE}`, class: 'devnet', role: 'img', 'aria-label': 'devnet nodes on the id ring', 'data-testid': 'devnet-svg' })
    this.root.append(svg('circle', { cx: C, cy: C, r: R, class: 'ring-line' }))
    this.route = svg('g', { class: 'route' })
    box.replaceChildren(this.canvas, this.root)
    this.root.addEventListener('click', (e) => {
      const id = (e.target as Element).getAttribute('data-id')
      if (id) hooks.select(id)
    })
  }

  start(): void {
    const nodes = (): void => { void this.pollNodes() }
    const traffic = (): void => { void this.pollTraffic() }
    nodes()
    this.timers.push(window.setInterval(nodes, NODES_EVERY_MS))
    if (this.traffic) { traffic(); this.timers.push(window.setInterval(traffic, TRAFFIC_EVERY_MS)) }
    const frame = (t: number): void => { this.frame(t); this.raf = requestAnimationFrame(frame) }
    this.raf = requestAnimationFrame(frame)
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t)
    cancelAnimationFrame(this.raf)
  }

  select(id: string): void {
    if (this.selected) this.circles.get(this.selected)?.classList.remove('selected')
    this.selected = id
    this.circles.get(id)?.classList.add('selected')
  }

  /** The lookup's route over the whole network. */
  showTrace(t: LookupTrace): void {
    const pts = t.path.map((p) => this.circles.get(p.id)).filter((c): c is SVGCircleElement => !!c).map((c) => `${c.getAttribute('cx')},${c.getAttribute('cy')}`)
    this.route.replaceChildren(svg('polyline', { points: pts.join(' '), class: 'hop' }))
    const target = onCircle(ringPos(t.target), C, C, R)
    this.route.append(titled(svg('path', { d: `M ${target[0]} ${target[1] - 9} l 7 12 l -14 0 z`, class: 'target' }), `target ${t.target}`))
  }

  private async pollNodes(): Promise<void> {
    let d: DevnetNodes
    try { d = await api<DevnetNodes>('/v1/devnet/nodes') } catch (err) { this.hooks.onError(err); return }
    const t0 = performance.now()
    if (d.nodes.length !== this.ids.length || d.nodes.some((n, i) => n.id !== this.ids[i])) this.layout(d)
    const dt = this.prev ? Math.max(1, d.atMs - this.prev.atMs) / 1000 : 1
    let running = 0, peers = 0, rate = 0
    const top = Math.max(1, ...d.nodes.map((n, i) => n.packetsIn - (this.prev?.nodes[i]?.packetsIn ?? n.packetsIn)))
    d.nodes.forEach((n, i) => {
      const c = this.circles.get(n.id)!
      const delta = this.prev ? n.packetsIn - (this.prev.nodes[i]?.packetsIn ?? n.packetsIn) : 0
      if (n.running) { running++; peers += n.peers }
      rate += delta
      c.setAttribute('class', `node ${n.running ? 'running' : 'stopped'}${n.id === d.served ? ' served' : ''}${n.id === this.selected ? ' selected' : ''}`)
      c.setAttribute('r', String(3 + 4 * Math.sqrt(delta / top)))
      c.firstElementChild!.textContent = `#${n.index} ${n.id}\n${n.address ?? 'stopped'} · ${n.peers} peers · ${n.packetsIn} datagrams in, ${n.packetsOut} out · ${n.records} records`
    })
    byId('devnet-summary').textContent = `${d.nodes.length} nodes · ${running} running · ${d.topology} · ${(peers / Math.max(1, running)).toFixed(1)} peers/node · ${Math.round(rate / dt)} datagrams/s`
    this.root.dataset.nodes = String(d.nodes.length)
    this.prev = d
    stats.nodeUpdates++
    record(performance.now() - t0)
  }

  private layout(d: DevnetNodes): void {
    this.ids = d.nodes.map((n) => n.id)
    this.xy = d.nodes.map((n) => onCircle(ringPos(n.id), C, C, R))
    this.circles.clear()
    const g = svg('g', { class: 'nodes' })
    d.nodes.forEach((n, i) => {
      const [x, y] = this.xy[i]
      const c = titled(svg('circle', { cx: x.toFixed(1), cy: y.toFixed(1), r: 3, class: 'node', 'data-id': n.id, 'data-index': i }), short(n.id))
      this.circles.set(n.id, c)
      g.append(c)
    })
    this.root.replaceChildren(this.root.firstElementChild!, g, this.route)
    this.prev = null
    if (this.selected) this.select(this.selected)
  }

  private async pollTraffic(): Promise<void> {
    let t: Traffic
    try { t = await api<Traffic>(`/v1/devnet/traffic?since=${this.seq}`) } catch (err) { this.hooks.onError(err); return }
    const t0 = performance.now()
    this.seq = t.seq
    const w = t.windows[t.windows.length - 1]
    if (!w || this.xy.length === 0) return
    this.window = w
    // The lines, drawn once per window into their own layer.
    const ctx = this.lines.getContext('2d')!
    ctx.clearRect(0, 0, SIZE, SIZE)
    const most = w.links[0]?.[2] ?? 1
    ctx.lineWidth = 1
    for (const [a, b, n] of w.links.slice(0, MAX_LINES)) {
      const p = this.xy[a], q = this.xy[b]
      if (!p || !q) continue
      ctx.strokeStyle = `rgba(56, 132, 255, ${(0.08 + 0.6 * Math.log1p(n) / Math.log1p(most)).toFixed(3)})`
      ctx.beginPath(); ctx.moveTo(p[0], p[1]); ctx.quadraticCurveTo(C, C, q[0], q[1]); ctx.stroke()
    }
    // Dots for the busiest links, spread over the next window.
    const now = performance.now()
    this.dots = this.dots.filter((d) => now - d.start < d.ms)
    for (const [a, b] of w.links.slice(0, Math.max(0, MAX_DOTS - this.dots.length))) {
      this.dots.push({ from: a, to: b, start: now + Math.random() * t.windowMs * 0.5, ms: 500 + Math.random() * 400 })
    }
    byId('devnet-picture').dataset.traffic = String(w.packets)
    stats.trafficUpdates++
    record(performance.now() - t0)
  }

  private frame(now: number): void {
    stats.frames++
    if (!this.window) return
    const ctx = this.canvas.getContext('2d')!
    ctx.clearRect(0, 0, SIZE, SIZE)
    ctx.drawImage(this.lines, 0, 0, SIZE, SIZE)
    ctx.fillStyle = '#ff9f1c'
    for (const d of this.dots) {
      const f = (now - d.start) / d.ms
      if (f < 0 || f > 1) continue
      const p = this.xy[d.from], q = this.xy[d.to]
      if (!p || !q) continue
      // Along the same curve as the line (a quadratic through the centre).
      const u = 1 - f
      const x = u * u * p[0] + 2 * u * f * C + f * f * q[0]
      const y = u * u * p[1] + 2 * u * f * C + f * f * q[1]
      ctx.fillRect(x - 1.5, y - 1.5, 3, 3)
    }
  }
}
