// What the soak measures at each sample: process memory, open handles (as Node counts them and
// as file descriptors), protocol timers pending, the nodes' own state, and whether stopped nodes
// are ever garbage-collected. Everything here only observes; nothing changes how a node runs.
import { readdirSync } from 'node:fs'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import v8 from 'node:v8'
import type { Node } from '../../src/node/node.js'
import type { Runtime, TimerHandle } from '../../src/runtime/runtime.js'
import { realRuntime } from '../../src/runtime/udp.js'
import { collectGarbage } from './measure.js'

/** The real runtime, counting the protocol timers it holds (they are unref'd, so Node's own handle list does not show them). */
export class CountingRuntime implements Runtime {
  private readonly live = new Set<TimerHandle>()
  readonly random = realRuntime.random
  now = realRuntime.now
  wallClock = realRuntime.wallClock
  verifySignature = realRuntime.verifySignature
  get pending(): number { return this.live.size }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const t: TimerHandle = realRuntime.setTimeout(() => { this.live.delete(t); fn() }, ms)
    this.live.add(t)
    return t
  }

  clearTimeout(handle: TimerHandle): void {
    this.live.delete(handle)
    realRuntime.clearTimeout(handle)
  }
}

/**
 * Stopped nodes and their runtimes. A node the process still references after it stopped (a
 * listener, a map entry, a timer that re-arms) is a leak that grows with churn: after a full GC,
 * `unreclaimed` must stay small, and the timers of stopped nodes must run out.
 */
export class StoppedNodes {
  private stopped = 0
  private reclaimed = 0
  /** Runtimes of stopped nodes that still had timers pending when last looked at. */
  private withTimers: CountingRuntime[] = []
  private readonly registry = new FinalizationRegistry<null>(() => { this.reclaimed++ })

  add(node: Node, runtime: CountingRuntime): void {
    this.stopped++
    this.registry.register(node, null)
    this.withTimers.push(runtime)
  }

  /** Protocol timers still pending in stopped nodes (those at 0 are dropped from the list). */
  timersPending(): number {
    this.withTimers = this.withTimers.filter((r) => r.pending > 0)
    return this.withTimers.reduce((s, r) => s + r.pending, 0)
  }

  get counts(): { stopped: number; reclaimed: number; unreclaimed: number } {
    return { stopped: this.stopped, reclaimed: this.reclaimed, unreclaimed: this.stopped - this.reclaimed }
  }
}

export interface NodeDetail {
  role: 'bootstrap' | 'random'
  address: string
  uptimeS: number
  tableSize: number
  sessionsOpen: number
  rpcInFlight: number
  records: number
  timersPending: number
}

export interface Sample {
  /** Seconds since the churn phase began. */
  t: number
  liveNodes: number
  /** RSS after a full GC that compacts the whole heap (see compactingGc): what the process holds on to. */
  rssMB: number
  /** RSS and V8's committed heap after ordinary full GCs, before the compacting one. */
  rssUncompactedMB: number
  heapTotalUncompactedMB: number
  heapUsedMB: number
  heapTotalMB: number
  externalMB: number
  arrayBuffersMB: number
  /** V8's heap by space (new, old, code, large objects...): committed and used MB, to see which space grows. */
  heapSpacesMB: Record<string, { committed: number; used: number }>
  /** process.getActiveResourcesInfo(): ref'd handles, requests and timers, total and by kind. */
  handles: number
  handlesByKind: Record<string, number>
  udpSockets: number
  /** Entries in /proc/self/fd (every socket, ref'd or not); -1 where there is no /proc. */
  fds: number
  /** Event-loop delay over the interval since the last sample. */
  loopDelayMs: { p99: number; max: number }
  /** Sums over the live nodes. */
  totals: { tableEntries: number; sessionsOpen: number; knownKeys: number; rpcInFlight: number; records: number; recordBytes: number; timersPending: number }
  stopped: { stopped: number; reclaimed: number; unreclaimed: number; timersPending: number }
  /** Cumulative operation counts at this sample. */
  ops: { started: number; ok: number; failed: number; stuck: number; inFlight: number }
  churn: { replaced: number; startFailures: number }
  nodes: NodeDetail[]
}

export interface LiveNode { node: Node; runtime: CountingRuntime; bootstrap: boolean }

const MB = 1024 * 1024
const mb = (x: number): number => Math.round((x / MB) * 10) / 10

// Not in NodeStatus: the rpc's requests in flight and the peer keys the session layer remembers
// (by address, for IK). The soak reads them where the node keeps them.
const rpcInFlight = (n: Node): number => (n as unknown as { rpc: { inFlight: number } | null }).rpc?.inFlight ?? 0
const knownKeys = (n: Node): number => (n as unknown as { sealed: { knownKeyCount?: number } | null }).sealed?.knownKeyCount ?? 0

function detail(l: LiveNode, role: NodeDetail['role']): NodeDetail {
  const s = l.node.status()
  return {
    role, address: s.address, uptimeS: Math.round(s.uptimeMs / 1000), tableSize: s.peers, sessionsOpen: s.sessions?.open ?? 0,
    rpcInFlight: rpcInFlight(l.node), records: s.records.count, timersPending: l.runtime.pending,
  }
}

function heapSpaces(): Sample['heapSpacesMB'] {
  const out: Sample['heapSpacesMB'] = {}
  for (const s of v8.getHeapSpaceStatistics()) out[s.space_name.replace(/_space$/, '')] = { committed: mb(s.space_size), used: mb(s.space_used_size) }
  return out
}

/**
 * A full GC that evacuates every fragmented page. V8's own full GCs (and gc()) compact only pages it
 * finds sparse enough, so under churn its old space keeps part-empty pages: in a 20-minute run the
 * old space committed 127 MB for 73 MB of live heap, and RSS followed. V8 compacts like this by
 * itself when memory runs short (before an allocation could fail), so the RSS after it is the
 * memory a leak would show in. The flag is on for this GC only; the nodes run with V8's defaults.
 */
async function compactingGc(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc
  if (!gc) return
  v8.setFlagsFromString('--compact-on-every-full-gc')
  try {
    gc()
  } finally {
    v8.setFlagsFromString('--no-compact-on-every-full-gc')
  }
  await new Promise<void>((resolve) => setTimeout(resolve, 20))
}

function countFds(): number {
  try { return readdirSync('/proc/self/fd').length } catch { return -1 }
}

export class Prober {
  private readonly loop = monitorEventLoopDelay({ resolution: 10 })
  constructor() { this.loop.enable() }

  /** One sample after a full GC (with --expose-gc), so what is counted is what is still referenced. */
  async sample(
    t: number, live: LiveNode[], stopped: StoppedNodes, pick: (n: number) => number,
    ops: Sample['ops'], churn: Sample['churn'],
  ): Promise<Sample> {
    await collectGarbage()
    const uncompacted = process.memoryUsage()
    await compactingGc()
    const m = process.memoryUsage()
    const info = process.getActiveResourcesInfo()
    const byKind: Record<string, number> = {}
    for (const k of info) byKind[k] = (byKind[k] ?? 0) + 1
    const totals = { tableEntries: 0, sessionsOpen: 0, knownKeys: 0, rpcInFlight: 0, records: 0, recordBytes: 0, timersPending: 0 }
    const running = live.filter((l) => l.node.isRunning)
    for (const l of running) {
      const s = l.node.status()
      totals.tableEntries += s.peers
      totals.sessionsOpen += s.sessions?.open ?? 0
      totals.knownKeys += knownKeys(l.node)
      totals.rpcInFlight += rpcInFlight(l.node)
      totals.records += s.records.count
      totals.recordBytes += s.records.bytes
      totals.timersPending += l.runtime.pending
    }
    const others = running.filter((l) => !l.bootstrap)
    const nodes = [
      ...running.filter((l) => l.bootstrap).map((l) => detail(l, 'bootstrap')),
      ...Array.from({ length: Math.min(2, others.length) }, () => detail(others[pick(others.length)], 'random')),
    ]
    const loopDelayMs = { p99: Math.round(this.loop.percentile(99) / 1e5) / 10, max: Math.round(this.loop.max / 1e5) / 10 }
    this.loop.reset()
    return {
      t: Math.round(t * 10) / 10, liveNodes: running.length,
      rssMB: mb(m.rss), rssUncompactedMB: mb(uncompacted.rss), heapTotalUncompactedMB: mb(uncompacted.heapTotal), heapUsedMB: mb(m.heapUsed), heapTotalMB: mb(m.heapTotal), externalMB: mb(m.external), arrayBuffersMB: mb(m.arrayBuffers),
      heapSpacesMB: heapSpaces(),
      handles: info.length, handlesByKind: byKind, udpSockets: byKind.UDPWrap ?? 0, fds: countFds(), loopDelayMs,
      totals, stopped: { ...stopped.counts, timersPending: stopped.timersPending() }, ops: { ...ops }, churn: { ...churn }, nodes,
    }
  }

  close(): void { this.loop.disable() }
}
