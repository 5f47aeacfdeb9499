// Runs one simulation per network size and reports each: what `weft sim` and the bench call.
import { Simulation, type SimOptions } from './simulation.js'
import type { SimReport } from './report.js'

export interface RunOptions extends Partial<Omit<SimOptions, 'nodes' | 'build' | 'onProgress'>> {
  sizes: number[]
  /** 'auto': real joins up to JOIN_LIMIT nodes, an oracle fill above. */
  build?: SimOptions['build'] | 'auto'
  onProgress?: (size: number, phase: string, done: number, total: number, eventsPerSecond: number) => void
}

/** Above this many nodes, 'auto' builds by oracle fill: joins cost about 300 events a node. */
export const JOIN_LIMIT = 20_000

export async function runSimulations(o: RunOptions): Promise<SimReport[]> {
  const reports: SimReport[] = []
  for (const nodes of o.sizes) {
    const started = Date.now()
    const before = heapBytes()
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
    const perNode = (heapBytes() - before) / nodes
    const simulated = await sim.measure()
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

/** Live JS heap plus memory outside it (typed arrays), after a full collection when one can be asked for. */
function heapBytes(): number {
  ;(globalThis as { gc?: () => void }).gc?.()
  const m = process.memoryUsage()
  return m.heapUsed + m.external
}
