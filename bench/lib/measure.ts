// Shared result type and measurement helpers (RSS per node, datagram counting).
import dgram from 'node:dgram'
import { createRequire } from 'node:module'
import { percentile } from './stats.js'

export interface LookupFigures {
  impl: string
  nodes: number
  lookups: number
  /** Fraction of lookups that completed and returned >= 1 node. */
  success: number
  p50Ms: number
  p95Ms: number
  p99Ms: number
  datagramsPerLookup: number
  /**
   * Throughput of the timed phase: lookups / its wall time. Lookups run one after another, so
   * this is about 1000 / mean latency. Absent in results recorded before it was added.
   */
  lookupsPerSec?: number
  rssKiBPerNode: number
  setupMs: number
  /**
   * Where the RSS per node goes, from process.memoryUsage() deltas taken with the two RSS
   * readings (KiB per node): V8 heap committed and live, and memory outside the V8 heap.
   */
  memoryKiBPerNode?: { heapTotal: number; heapUsed: number; external: number; arrayBuffers: number }
  /** Weft only: fraction of lookups that returned exactly the true k nearest (checked after timing). */
  exact?: number
  /** Weft only: process CPU per lookup in the timed phase, ms (all nodes share the process). */
  cpuMsPerLookup?: number
  /** Weft only: Noise handshakes started per lookup in the timed phase. */
  handshakesPerLookup?: number
  /**
   * Weft only: the same lookups run again, with every session they need open, in rounds, `lookups`
   * in all; each figure is the median over rounds, `roundP50Ms` the p50 of each round (older
   * results: one pass, without the CPU, handshake and round figures).
   */
  sessionsUp?: {
    p50Ms: number; p95Ms: number; lookupsPerSec: number; datagramsPerLookup: number
    cpuMsPerLookup?: number; handshakesPerLookup?: number; lookups?: number; roundP50Ms?: number[]
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Full GC (needs --expose-gc), with a turn of the event loop in between so finalizers can run. */
export async function collectGarbage(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc
  if (!gc) {
    process.stderr.write('warning: run node with --expose-gc, RSS figures are noisy without it\n')
    return
  }
  for (let i = 0; i < 3; i++) {
    gc()
    await sleep(20)
  }
}

/** Process memory (RSS, V8 heap, external) after a full GC. */
export async function settledMemory(): Promise<NodeJS.MemoryUsage> {
  await collectGarbage()
  return process.memoryUsage()
}

/** Process RSS in bytes after a full GC. */
export async function settledRss(): Promise<number> {
  return (await settledMemory()).rss
}

/** (RSS with N live nodes - RSS baseline before any node existed) / N, in KiB. */
export function rssKiBPerNode(baselineRss: number, rssWithNodes: number, nodes: number): number {
  return (rssWithNodes - baselineRss) / 1024 / nodes
}

/**
 * Counts every datagram SENT by anything in this process. Each reply is itself a
 * sent datagram, so counting sends covers both directions of every RPC.
 *
 * - node:dgram (bittorrent-dht via k-rpc-socket, the ping-pong): dgram.Socket.prototype.send
 *   is wrapped, one count per call (each call sends exactly one datagram).
 * - udx-native (hyperdht 6 / dht-rpc 6 do not use node:dgram): all dht-rpc traffic goes
 *   through UDXSocket.prototype.trySend (requests, replies, retries) and hyperdht's
 *   holepuncher uses UDXSocket.prototype.send; both are wrapped. The native binding is
 *   only called from those two methods for plain datagrams (UDX streams are not used
 *   by findNode).
 *
 * Network guard: any send whose destination is not a 127.x.x.x literal (or the dgram
 * default, localhost) is DROPPED and recorded in `violations`; callers fail the run.
 */
export interface DatagramCounter {
  /** Start counting from zero. */
  start(): void
  /** Stop counting and return the number of datagrams sent since start(). */
  stop(): number
  /** Destinations of sends that were blocked because they were not loopback. */
  readonly violations: string[]
}

let counter: DatagramCounter | null = null

export function datagramCounter(): DatagramCounter {
  if (counter) return counter
  let counting = false
  let count = 0
  const violations: string[] = []

  // Returns true if the send may proceed.
  const onSend = (host: unknown, port: unknown): boolean => {
    const h = host === undefined || host === null || typeof host === 'function' ? '127.0.0.1' : String(host)
    if (!isLoopback(h)) {
      if (violations.length < 20) violations.push(`${h}:${String(port)}`)
      return false
    }
    if (counting) count++
    return true
  }

  // node:dgram: send(msg, [offset, length,] port [, address] [, cb]); same argument
  // disambiguation as Node's own implementation.
  const proto = dgram.Socket.prototype as unknown as { send: (...args: unknown[]) => unknown }
  const origSend = proto.send
  proto.send = function (this: unknown, ...args: unknown[]) {
    const long = Boolean(args[4]) || (Boolean(args[3]) && typeof args[3] !== 'function')
    const port = long ? args[3] : args[1]
    const host = long ? args[4] : args[2]
    if (!onSend(host, port)) {
      const cb = [...args].reverse().find((a) => typeof a === 'function') as ((err: Error) => void) | undefined
      if (cb) process.nextTick(cb, new Error(`bench: blocked non-loopback send to ${String(host)}`))
      return
    }
    return origSend.apply(this, args)
  }

  // udx-native: optional, only present when hyperdht is installed.
  try {
    const require = createRequire(import.meta.url)
    const UDXSocket = require('udx-native/lib/socket.js') as {
      prototype: { send: (...a: unknown[]) => unknown; trySend: (...a: unknown[]) => unknown }
    }
    const { send, trySend } = UDXSocket.prototype
    // (buffer, port, host, ttl)
    UDXSocket.prototype.trySend = function (this: unknown, ...args: unknown[]) {
      if (!onSend(args[2], args[1])) return
      return trySend.apply(this, args)
    }
    UDXSocket.prototype.send = function (this: unknown, ...args: unknown[]) {
      if (!onSend(args[2], args[1])) return Promise.resolve(false)
      return send.apply(this, args)
    }
  } catch {
    // udx-native not installed: nothing to patch.
  }

  counter = {
    start() {
      count = 0
      counting = true
    },
    stop() {
      counting = false
      return count
    },
    violations
  }
  return counter
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)
}

/** Throws if anything tried to send outside loopback. */
export function assertLoopbackOnly(c: DatagramCounter): void {
  if (c.violations.length > 0) {
    throw new Error(`non-loopback datagrams were attempted (and blocked): ${c.violations.join(', ')}`)
  }
}

/** Rejects after `ms` with a clear message; the timer does not keep the process alive. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms)
    timer.unref()
  })
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer))
}

export interface LookupRun {
  latenciesMs: number[]
  successes: number
  datagrams: number
  /** Wall time of the whole timed phase. */
  elapsedMs: number
}

/** Quiet: fewer datagrams than this in one window of QUIET_WINDOW_MS. */
const QUIET_DATAGRAMS = 20
const QUIET_WINDOW_MS = 250
const QUIET_MAX_MS = 15_000

/**
 * Waits until the network is quiet (the join's tail: table refreshes, pings, handshakes), at most
 * 15 s, so a timed phase measures its own lookups rather than the setup still going on beside
 * them. Returns how long it waited and the datagrams of the last window.
 */
export async function quiesce(): Promise<{ waitedMs: number; lastWindow: number }> {
  const c = datagramCounter()
  const t0 = performance.now()
  let lastWindow = 0
  do {
    c.start()
    await new Promise<void>((resolve) => setTimeout(resolve, QUIET_WINDOW_MS))
    lastWindow = c.stop()
  } while (lastWindow >= QUIET_DATAGRAMS && performance.now() - t0 < QUIET_MAX_MS)
  return { waitedMs: performance.now() - t0, lastWindow }
}

/**
 * Runs `lookups` lookups strictly one after another (so each wall time is pure latency)
 * and counts datagrams sent by the whole process during this phase only.
 * `lookupOnce(i, signal)` resolves true if the lookup completed and returned >= 1 node;
 * a rejection or timeout counts as a failure (its time is still recorded). `signal`
 * aborts on timeout so the implementation can cancel the query.
 */
export async function timeLookups(
  lookups: number,
  perLookupTimeoutMs: number,
  lookupOnce: (i: number, signal: AbortSignal) => Promise<boolean>
): Promise<LookupRun> {
  await quiesce()
  return timeLookupBlock(0, lookups, perLookupTimeoutMs, lookupOnce)
}

/** As timeLookups, for lookups `from` to `from + count - 1`, without waiting for a quiet network first. */
export async function timeLookupBlock(
  from: number,
  count: number,
  perLookupTimeoutMs: number,
  lookupOnce: (i: number, signal: AbortSignal) => Promise<boolean>
): Promise<LookupRun> {
  const c = datagramCounter()
  const latenciesMs: number[] = []
  let successes = 0
  c.start()
  const phaseStart = performance.now()
  for (let i = from; i < from + count; i++) {
    const t0 = performance.now()
    const ac = new AbortController()
    let ok = false
    try {
      ok = await withTimeout(lookupOnce(i, ac.signal), perLookupTimeoutMs, `lookup ${i}`)
    } catch (err) {
      ac.abort()
      process.stderr.write(`lookup ${i} failed: ${(err as Error).message}\n`)
    }
    latenciesMs.push(performance.now() - t0)
    if (ok) successes++
  }
  const elapsedMs = performance.now() - phaseStart
  const datagrams = c.stop()
  return { latenciesMs, successes, datagrams, elapsedMs }
}

/** Assembles the figures reported for one implementation at one N. */
export function toFigures(
  impl: string,
  nodes: number,
  run: LookupRun,
  rss: { baseline: number | NodeJS.MemoryUsage; withNodes: number | NodeJS.MemoryUsage },
  setupMs: number
): LookupFigures {
  const { baseline, withNodes } = rss
  const rssOf = (m: number | NodeJS.MemoryUsage): number => (typeof m === 'number' ? m : m.rss)
  const per = (k: 'heapTotal' | 'heapUsed' | 'external' | 'arrayBuffers'): number =>
    typeof baseline === 'number' || typeof withNodes === 'number' ? NaN : (withNodes[k] - baseline[k]) / 1024 / nodes
  const lookups = run.latenciesMs.length
  const sorted = [...run.latenciesMs].sort((a, b) => a - b)
  return {
    impl,
    nodes,
    lookups,
    success: lookups === 0 ? 0 : run.successes / lookups,
    p50Ms: percentile(sorted, 50),
    p95Ms: percentile(sorted, 95),
    p99Ms: percentile(sorted, 99),
    datagramsPerLookup: lookups === 0 ? 0 : run.datagrams / lookups,
    lookupsPerSec: run.elapsedMs > 0 ? lookups / (run.elapsedMs / 1000) : 0,
    rssKiBPerNode: rssKiBPerNode(rssOf(baseline), rssOf(withNodes), nodes),
    setupMs,
    ...(typeof baseline === 'number' || typeof withNodes === 'number'
      ? {}
      : { memoryKiBPerNode: { heapTotal: per('heapTotal'), heapUsed: per('heapUsed'), external: per('external'), arrayBuffers: per('arrayBuffers') } })
  }
}
