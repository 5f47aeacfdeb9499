// Runs each measurement in a fresh child process (clean RSS, no JIT or GC state shared between
// implementations) and parses the one JSON line it prints. Every child has a timeout.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { DhtFigures } from './dht.js'
import type { LookupFigures } from './measure.js'
import type { RoundTripFigures } from '../peers/dgram-pingpong.js'

const RUN_ONE = fileURLToPath(new URL('../peers/run-one.js', import.meta.url))
const RUN_RTT = fileURLToPath(new URL('../peers/run-rtt.js', import.meta.url))
const FIELDS: (keyof LookupFigures)[] = [
  'impl', 'nodes', 'lookups', 'success', 'p50Ms', 'p95Ms', 'p99Ms', 'datagramsPerLookup', 'rssKiBPerNode', 'setupMs'
]
const RTT_FIELDS: (keyof RoundTripFigures)[] = ['roundTripsPerSec', 'roundTrips', 'failed', 'elapsedMs']

/** Spawns `node <args>` (optionally pinned to CPU `cpu` with taskset) and parses its last stdout line. */
function runChildJson<T>(what: string, args: string[], fields: string[], timeoutMs: number, cpu?: number): Promise<T> {
  const [cmd, argv] = cpu !== undefined
    ? ['taskset', ['-c', String(cpu), process.execPath, ...args]]
    : [process.execPath, args]
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    // Keep only the tail of stderr for the error message.
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)))

    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${what}: no result within ${timeoutMs} ms (killed)\n${stderr}`))
    }, timeoutMs)

    child.on('error', (err) => {
      clearTimeout(timer)
      reject(new Error(`${what}: could not start ${cmd}: ${err.message}`))
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      if (code !== 0) {
        reject(new Error(`${what}: child exited with ${signal ?? code}\n${stderr}`))
        return
      }
      const line = stdout.trim().split('\n').pop() ?? ''
      try {
        const figures = JSON.parse(line) as Record<string, unknown>
        const missing = fields.filter((f) => !(f in figures))
        if (missing.length > 0) throw new Error(`missing fields ${missing.join(', ')}`)
        resolve(figures as T)
      } catch (err) {
        reject(new Error(`${what}: unparsable result line ${JSON.stringify(line)}: ${(err as Error).message}\n${stderr}`))
      }
    })
  })
}

export function runIsolated(
  impl: string,
  nodes: number,
  lookups: number,
  seed: number,
  timeoutMs = 5 * 60_000
): Promise<LookupFigures> {
  return runChildJson<LookupFigures>(
    `${impl} N=${nodes}`,
    ['--expose-gc', RUN_ONE, impl, String(nodes), String(lookups), String(seed)],
    FIELDS,
    timeoutMs
  )
}

export interface RoundTripRun extends RoundTripFigures {
  impl: string
  window: number
  durationMs: number
}

/** True when `taskset` is available to pin a child to one CPU. */
export function canPin(): boolean {
  return process.platform === 'linux' && ['/usr/bin/taskset', '/bin/taskset'].some((p) => existsSync(p))
}

/** One round-trip measurement (`dgram` or `weft`) in its own process, pinned to `cpu` if given. */
export function runRoundTripsIsolated(
  impl: string,
  durationMs: number,
  window: number,
  cpu?: number,
  timeoutMs = durationMs + 60_000
): Promise<RoundTripRun> {
  return runChildJson<RoundTripRun>(
    `${impl} round trips (window ${window})`,
    [RUN_RTT, impl, String(durationMs), String(window)],
    RTT_FIELDS,
    timeoutMs,
    cpu
  )
}

const RUN_DHT = fileURLToPath(new URL('../peers/run-dht.js', import.meta.url))
const DHT_FIELDS: (keyof DhtFigures)[] = ['impl', 'nodes', 'puts', 'setupMs', 'immutable', 'mutable']

/** One DHT put/get measurement (`weft`, `hyperdht` or `bittorrent-dht`) in its own process. */
export function runDhtIsolated(
  impl: string,
  nodes: number,
  puts: number,
  seed: number,
  timeoutMs = 8 * 60_000,
  nodeArgs: string[] = []
): Promise<DhtFigures> {
  return runChildJson<DhtFigures>(
    `${impl} DHT N=${nodes}`,
    [...nodeArgs, RUN_DHT, impl, String(nodes), String(puts), String(seed)],
    DHT_FIELDS,
    timeoutMs
  )
}
