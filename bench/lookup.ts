// `npm run bench`: lookup latency, datagrams per lookup and RSS per node for Weft, hyperdht and
// bittorrent-dht at N = 50, 200, 500 on loopback, then Weft RPC round trips against a bare
// node:dgram ping-pong. Writes bench/results/lookup.json and docs/benchmarks.md.
//
//   npm run bench [-- --quick] [--nodes=50,200] [--lookups=200] [--seed=1] [--rtt-ms=3000]
//                 [--repeats=5] [--impls=weft,hyperdht] [--no-write]
// The same settings can come from WEFT_BENCH_QUICK=1, WEFT_BENCH_NODES, WEFT_BENCH_LOOKUPS,
// WEFT_BENCH_SEED, WEFT_BENCH_RTT_MS, WEFT_BENCH_REPEATS, WEFT_BENCH_IMPLS.
import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import {
  IMPL_ORDER, isFigures, lookupTable, median, renderMarkdown, roundTripTable, verdicts, verdictTable,
  type BenchResults, type LookupEntry, type RoundTripSummary, type RunParams
} from './lib/report.js'
import { canPin, runIsolated, runRoundTripsIsolated, type RoundTripRun } from './lib/spawn.js'
import { round } from './lib/stats.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url)) // dist/bench/ -> repository root
const RESULTS = `${ROOT}bench/results/lookup.json`
const DOC = `${ROOT}docs/benchmarks.md`
const LOOKUP_CHILD_TIMEOUT_MS = 5 * 60_000
const WINDOWS = [1, 32]

function option(name: string, env: string): string | undefined {
  const prefix = `--${name}=`
  const arg = process.argv.slice(2).find((a) => a.startsWith(prefix))
  return arg ? arg.slice(prefix.length) : process.env[env]
}

function intList(s: string, what: string): number[] {
  const xs = s.split(',').map((x) => Number(x.trim()))
  if (xs.some((x) => !Number.isInteger(x) || x < 2)) throw new Error(`bad ${what}: ${s}`)
  return xs
}

function positiveInt(s: string | undefined, fallback: number, what: string): number {
  if (s === undefined) return fallback
  const x = Number(s)
  if (!Number.isInteger(x) || x < 1) throw new Error(`bad ${what}: ${s}`)
  return x
}

function parseParams(): { params: RunParams; impls: string[]; write: boolean } {
  const args = process.argv.slice(2)
  const quick = args.includes('--quick') || process.env.WEFT_BENCH_QUICK === '1'
  const nodesArg = option('nodes', 'WEFT_BENCH_NODES')
  const implsArg = option('impls', 'WEFT_BENCH_IMPLS')
  const impls = implsArg ? implsArg.split(',').map((s) => s.trim()) : IMPL_ORDER
  for (const i of impls) if (!IMPL_ORDER.includes(i)) throw new Error(`unknown implementation ${i} (known: ${IMPL_ORDER.join(', ')})`)
  const params: RunParams = {
    nodes: nodesArg ? intList(nodesArg, 'node counts') : [50, 200, 500],
    lookups: positiveInt(option('lookups', 'WEFT_BENCH_LOOKUPS'), quick ? 50 : 200, 'lookup count'),
    seed: positiveInt(option('seed', 'WEFT_BENCH_SEED'), 1, 'seed'),
    quick,
    rtt: {
      durationMs: positiveInt(option('rtt-ms', 'WEFT_BENCH_RTT_MS'), quick ? 1000 : 3000, 'round-trip duration'),
      windows: WINDOWS,
      repeats: positiveInt(option('repeats', 'WEFT_BENCH_REPEATS'), quick ? 1 : 5, 'repeats'),
      pinnedCpu: canPin() ? 0 : null
    }
  }
  return { params, impls, write: !args.includes('--no-write') }
}

/** The commit measured, "+dirty" when src/ has uncommitted changes; "unknown" outside git. */
function gitCommit(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT, encoding: 'utf8' }).trim()
    return dirty ? `${head}+dirty` : head
  } catch {
    return 'unknown'
  }
}

const log = (line: string): void => void process.stdout.write(line + '\n')
const firstLine = (err: unknown): string => (err instanceof Error ? err.message : String(err))

async function main(): Promise<void> {
  const started = performance.now()
  const { params: p, impls, write } = parseParams()
  const cpus = os.cpus()
  const machine = {
    node: process.version,
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memMiB: Math.round(os.totalmem() / 2 ** 20),
    platform: os.platform(),
    release: os.release(),
    date: new Date().toISOString(),
    commit: gitCommit()
  }
  log(`weft bench: N = ${p.nodes.join(', ')}; ${p.lookups} lookups; seed ${p.seed}; ${impls.join(', ')}${p.quick ? ' (quick)' : ''}`)
  log(`${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, commit ${machine.commit}`)

  // Lookups: one child per (N, implementation), one at a time so they never compete for CPU.
  const lookup: LookupEntry[] = []
  const total = p.nodes.length * impls.length
  let step = 0
  for (const n of p.nodes) {
    for (const impl of impls) {
      step++
      const t0 = performance.now()
      try {
        const f = await runIsolated(impl, n, p.lookups, p.seed, LOOKUP_CHILD_TIMEOUT_MS)
        lookup.push(f)
        log(`[${step}/${total}] ${impl.padEnd(14)} N=${String(n).padEnd(4)} p50 ${round(f.p50Ms).toFixed(2)} ms, p95 ${round(f.p95Ms).toFixed(2)} ms, ` +
          `p99 ${round(f.p99Ms).toFixed(2)} ms, ${round(f.datagramsPerLookup, 1)} datagrams/lookup, ${Math.round(f.rssKiBPerNode)} KiB/node, ` +
          `success ${round(f.success * 100, 1)} %${f.exact !== undefined ? ` (exact ${round(f.exact * 100, 1)} %)` : ''} ` +
          `[${((performance.now() - t0) / 1000).toFixed(1)} s]`)
      } catch (err) {
        lookup.push({ impl, nodes: n, error: firstLine(err) })
        log(`[${step}/${total}] ${impl.padEnd(14)} N=${String(n).padEnd(4)} FAILED: ${firstLine(err).split('\n')[0]}`)
      }
    }
  }

  // Round trips: bare dgram and Weft alternate, each in its own (pinned) child process.
  const samples: BenchResults['roundTrips']['samples'] = []
  const summary: RoundTripSummary[] = []
  const cpu = p.rtt.pinnedCpu ?? undefined
  for (const window of p.rtt.windows) {
    const rates: Record<'dgram' | 'weft', number[]> = { dgram: [], weft: [] }
    for (let rep = 0; rep < p.rtt.repeats; rep++) {
      for (const impl of ['dgram', 'weft'] as const) {
        try {
          const r: RoundTripRun = await runRoundTripsIsolated(impl, p.rtt.durationMs, window, cpu)
          samples.push(r)
          rates[impl].push(r.roundTripsPerSec)
          log(`round trips ${impl.padEnd(5)} window ${String(window).padEnd(2)} run ${rep + 1}/${p.rtt.repeats}: ` +
            `${Math.round(r.roundTripsPerSec)} /s (${r.failed} failed)`)
        } catch (err) {
          samples.push({ impl, window, error: firstLine(err) })
          log(`round trips ${impl.padEnd(5)} window ${window} run ${rep + 1}: FAILED: ${firstLine(err).split('\n')[0]}`)
        }
      }
    }
    const dgram = median(rates.dgram)
    const weft = rates.weft.length > 0 ? median(rates.weft) : 0
    if (rates.dgram.length > 0) summary.push({ window, dgram, weft, ratio: weft / dgram })
  }

  const results: BenchResults = {
    machine,
    params: p,
    lookup,
    roundTrips: { samples, summary },
    verdicts: verdicts(lookup, summary, p.nodes),
    elapsedMs: performance.now() - started
  }

  log('')
  for (const n of p.nodes) log(`Lookups, N = ${n}\n${lookupTable(lookup, n)}\n`)
  log(`RPC round trips (one core)\n${roundTripTable(summary)}\n`)
  log(`Targets\n${verdictTable(results.verdicts)}\n`)

  if (write) {
    mkdirSync(`${ROOT}bench/results`, { recursive: true })
    writeFileSync(RESULTS, JSON.stringify(results, null, 2) + '\n')
    mkdirSync(`${ROOT}docs`, { recursive: true })
    writeFileSync(DOC, renderMarkdown(results))
    log(`wrote ${RESULTS} and ${DOC}`)
  }
  log(`done in ${((performance.now() - started) / 1000).toFixed(0)} s`)
  const failures = lookup.filter((e) => !isFigures(e)).length + samples.filter((s) => 'error' in s).length
  if (failures > 0) {
    log(`${failures} measurement(s) failed`)
    process.exitCode = 1
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  process.exit(1)
})
