// Runs one simulation per network size and reports each: what `weft sim` and the bench call.
import v8 from 'node:v8'
import { runInNewContext } from 'node:vm'
import { Simulation, type SimOptions } from './simulation.js'
import type { SimReport } from './report.js'
import { floodCost } from './broadcast-cost.js'

export interface RunOptions extends Partial<Omit<SimOptions, 'nodes' | 'build' | 'onProgress'>> {
  sizes: number[]
  /** 'auto': real joins up to JOIN_LIMIT nodes, an oracle fill above. */
  build?: SimOptions['build'] | 'auto'
  onProgress?: (size: number, phase: string, done: number, total: number, eventsPerSecond: number) => void
  /** Also measure one broadcast's cost over the built tables (flooding: sim/broadcast-cost.ts). */
  broadcast?: boolean
}

/** Above this many nodes, 'auto' builds by oracle fill: joins cost about 300 events a node. */
export const JOIN_LIMIT = 20_000

export async function runSimulations(o: RunOptions): Promise<SimReport[]> {
  const reports: SimReport[] = []
  for (const nodes of o.sizes) {
    const started = Date.now()
    const before = await heapBytes()
    let lastEvents = 0, lastAt = started, eps = 0
    const sim = new Simulation({
      ...o, nodes,
      build: (o.build ?? 'auto') === 'auto' ? (nodes <= JOIN_LIMIT ? 'joins' : 'oracle') : o.build as SimOptions['build'],
      onProgress: (phase, done, total, events) => {
        const now = Date.now()
        if (now - lastAt >= 500) { eps = ((events - lastEvents) * 1000) / (now - lastAt); lastEvents = events; lastAt = now }
        o.onProgress?.(nodes, phase, done, total, eps)
      },
    })
    await sim.build()
    const perNode = ((await heapBytes()) - before) / nodes
    const simulated = await sim.measure()
    if (o.broadcast) simulated.broadcast = floodCost(sim, simulated.seed, (done, total) => o.onProgress?.(nodes, 'broadcast', done, total, 0))
    const wallMs = Date.now() - started
    reports.push({
      simulated,
      // The process's peak so far (with several sizes, the largest one's), as the kernel counts it.
      machine: { wallMs, eventsPerSecond: Math.round(simulated.events / (wallMs / 1000)), peakRssBytes: process.resourceUsage().maxRSS * 1024, bytesPerNode: Math.round(perNode) },
    })
    sim.close()
  }
  return reports
}

/**
 * Live JS heap plus memory outside it (typed arrays), after full collections: with --expose-gc
 * or without (the flag is set at run time). A turn of the event loop between two collections
 * lets the backing stores of freed ArrayBuffers go too. A run right after a larger one in the same
 * process can still read low (even negative): the last run's memory freed during this build.
 */
export async function heapBytes(): Promise<number> {
  collect ??= (globalThis as { gc?: () => void }).gc ?? (v8.setFlagsFromString('--expose-gc'), runInNewContext('gc') as () => void)
  collect()
  await new Promise((resolve) => setImmediate(resolve))
  collect()
  const m = process.memoryUsage()
  return m.heapUsed + m.external
}
let collect: (() => void) | null = null
