// `npm run bench:dashboard`: is the dashboard responsive with a 500-node devnet? Starts the
// devnet in this process (real UDP on loopback, sealed sessions, traffic counted per link) with
// lookups running all along, opens the dashboard in Debian's headless Chromium (playwright-core)
// and records, over --seconds: the page's frame intervals (requestAnimationFrame), long tasks,
// the time each update of the picture takes once its answer arrived, updates per second, the
// time from "Look up" to the path drawn, and what the devnet routes cost the node.
// Writes bench/results/dashboard.json.
//
//   npm run bench:dashboard [-- --nodes=500] [--seconds=20] [--seed=1] [--quick]
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import { createDevnet } from '../src/api/devnet.js'
import { startApi } from '../src/api/server.js'
import { SeededRandom } from '../src/runtime/prng.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const RESULTS = `${ROOT}bench/results/dashboard.json`
const CHROMIUM = '/usr/bin/chromium'
/** The whole run is bounded: past this, it stops with an error. */
const DEADLINE_MS = 6 * 60_000

const arg = (name: string): string | undefined => process.argv.slice(2).find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
const quick = process.argv.includes('--quick')
const nodes = Number(arg('nodes') ?? (quick ? 100 : 500))
const seconds = Number(arg('seconds') ?? (quick ? 5 : 20))
const seed = arg('seed') ?? '1'
if (!Number.isInteger(nodes) || nodes < 2 || nodes > 2000) throw new Error(`--nodes must be 2..2000, got ${arg('nodes')}`)
if (!(seconds >= 1 && seconds <= 120)) throw new Error(`--seconds must be 1..120, got ${arg('seconds')}`)
if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium`)

const deadline = setTimeout(() => { console.error(`bench:dashboard: over ${DEADLINE_MS / 60_000} min, giving up`); process.exit(1) }, DEADLINE_MS)
deadline.unref()

const q = (xs: number[], p: number): number => {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]
}
const r2 = (x: number): number => Math.round(x * 100) / 100
const summary = (xs: number[]) => ({ count: xs.length, mean: r2(xs.reduce((a, b) => a + b, 0) / (xs.length || 1)), p50: r2(q(xs, 0.5)), p95: r2(q(xs, 0.95)), p99: r2(q(xs, 0.99)), max: r2(Math.max(...xs)) })

console.log(`bench:dashboard: a ${nodes}-node devnet, the dashboard open in Chromium for ${seconds} s (seed ${seed})`)
let t = Date.now()
const devnet = await createDevnet({ nodes, seed: `bench-dashboard:${seed}` })
const joinMs = Date.now() - t
console.log(`  joined in ${(joinMs / 1000).toFixed(1)} s`)
const api = await startApi(devnet.nodes[0], '127.0.0.1:0', { devnet })

// Lookups from random nodes all along, a few at a time: traffic for the picture to show.
const rnd = new SeededRandom(`bench-dashboard-load:${seed}`)
let loading = true
let lookupsDone = 0
const load = async (): Promise<void> => {
  while (loading) {
    await devnet.nodes[rnd.u32() % nodes].lookup(rnd.bytes(32)).catch(() => {})
    lookupsDone++
    await new Promise((r) => setTimeout(r, 50))
  }
}
const loaders = Array.from({ length: 4 }, load)

// What the routes the page polls cost the node (and how big their answers are).
const route = async (path: string) => {
  const times: number[] = []
  let bytes = 0
  for (let i = 0; i < 10; i++) {
    const t0 = performance.now()
    const body = await (await fetch(`http://${api.address}${path}`)).text()
    times.push(performance.now() - t0)
    bytes = body.length
  }
  return { ms: summary(times), bytes }
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
})
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } })
  t = Date.now()
  await page.goto(`http://${api.address}/`)
  await page.waitForFunction((n) => document.querySelectorAll('svg.devnet circle.node').length === n, nodes, { timeout: 60_000 })
  await page.waitForFunction(() => Number(document.getElementById('devnet-picture')?.dataset.traffic ?? 0) > 0, undefined, { timeout: 30_000 })
  const firstPictureMs = Date.now() - t
  console.log(`  all ${nodes} nodes and their traffic on the page after ${(firstPictureMs / 1000).toFixed(1)} s; measuring for ${seconds} s...`)

  // Frame intervals, long tasks and the page's own update timings over the window.
  const page$ = await page.evaluate(async (ms) => {
    const w = globalThis as unknown as { weftStats: { nodeUpdates: number; trafficUpdates: number; updateMs: number[]; frames: number } }
    const before = { nodes: w.weftStats.nodeUpdates, traffic: w.weftStats.trafficUpdates }
    w.weftStats.updateMs.length = 0
    const longTasks: number[] = []
    const obs = new PerformanceObserver((list) => { for (const e of list.getEntries()) longTasks.push(e.duration) })
    obs.observe({ type: 'longtask', buffered: false })
    const intervals: number[] = []
    let last = 0
    const started = performance.now()
    await new Promise<void>((resolve) => {
      const frame = (now: number): void => {
        if (last) intervals.push(now - last)
        last = now
        if (now - started < ms) requestAnimationFrame(frame)
        else resolve()
      }
      requestAnimationFrame(frame)
    })
    obs.disconnect()
    const elapsed = performance.now() - started
    const memory = (performance as unknown as { memory?: { usedJSHeapSize: number } }).memory
    return {
      elapsed, intervals, longTasks,
      nodeUpdates: w.weftStats.nodeUpdates - before.nodes,
      trafficUpdates: w.weftStats.trafficUpdates - before.traffic,
      updateMs: w.weftStats.updateMs.slice(),
      heapBytes: memory?.usedJSHeapSize ?? null,
      svgNodes: document.querySelectorAll('svg *').length,
    }
  }, seconds * 1000)

  // A lookup from the page while all that runs: click to the path drawn (less the hop-by-hop replay).
  const lookupMs: number[] = []
  for (let i = 0; i < 5; i++) {
    await page.fill('#lookup-target', devnet.nodes[rnd.u32() % nodes].idHex)
    const t0 = Date.now()
    await page.click('#lookup-run')
    await page.waitForSelector('#lookup-result[data-state=drawing], #lookup-result[data-state=done]', { timeout: 30_000 })
    lookupMs.push(Date.now() - t0)
    await page.waitForSelector('#lookup-result[data-state=done]', { timeout: 30_000 })
  }
  loading = false
  await Promise.all(loaders)
  const routes = { devnetNodes: await route('/v1/devnet/nodes'), devnetTraffic: await route('/v1/devnet/traffic?since=0') }
  const frameMs = summary(page$.intervals)
  const result = {
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, loadAverage: os.loadavg().map(r2), chromium: browser.version() },
    setup: { nodes, seconds, seed, joinMs, backgroundLookups: lookupsDone, note: 'the devnet, its lookups and Chromium share this machine' },
    firstPictureMs,
    frames: {
      ms: frameMs,
      fps: r2(page$.intervals.length / (page$.elapsed / 1000)),
      over50ms: page$.intervals.filter((x) => x > 50).length,
      over100ms: page$.intervals.filter((x) => x > 100).length,
    },
    longTasks: { count: page$.longTasks.length, totalMs: r2(page$.longTasks.reduce((a, b) => a + b, 0)), maxMs: r2(Math.max(0, ...page$.longTasks)) },
    updates: {
      perSecond: { nodes: r2(page$.nodeUpdates / (page$.elapsed / 1000)), traffic: r2(page$.trafficUpdates / (page$.elapsed / 1000)) },
      ms: summary(page$.updateMs),
    },
    lookupFromPageMs: summary(lookupMs),
    page: { heapBytes: page$.heapBytes, svgElements: page$.svgNodes },
    routes,
  }
  mkdirSync(`${ROOT}bench/results`, { recursive: true })
  writeFileSync(RESULTS, JSON.stringify(result, null, 2) + '\n')
  console.log(`  frames: ${result.frames.fps} fps, interval p50 ${frameMs.p50} ms, p95 ${frameMs.p95} ms, max ${frameMs.max} ms; ${result.frames.over50ms} over 50 ms`)
  console.log(`  long tasks: ${result.longTasks.count} (${result.longTasks.totalMs} ms in all, longest ${result.longTasks.maxMs} ms)`)
  console.log(`  updates: ${result.updates.perSecond.nodes}/s of the nodes, ${result.updates.perSecond.traffic}/s of the traffic; each p50 ${result.updates.ms.p50} ms, p95 ${result.updates.ms.p95} ms, max ${result.updates.ms.max} ms`)
  console.log(`  lookup from the page: p50 ${result.lookupFromPageMs.p50} ms; /v1/devnet/nodes ${routes.devnetNodes.bytes} bytes in ${routes.devnetNodes.ms.p50} ms (p50)`)
  console.log(`wrote ${RESULTS}`)
} finally {
  loading = false
  await browser.close()
  await api.close()
  await devnet.close()
}
