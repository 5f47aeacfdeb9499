// `npm run bench`: lookup latency, datagrams per lookup and RSS per node for Weft (encrypted, the
// default, and weft-plaintext), hyperdht and bittorrent-dht at N = 50, 200, 500 on loopback, then
// Weft RPC round trips (encrypted and plaintext) against a bare node:dgram ping-pong, then DHT puts
// and gets (immutable and mutable) of Weft, hyperdht and bittorrent-dht at N = 200.
// Writes bench/results/lookup.json, bench/results/dht.json and docs/benchmarks.md.
//
//   npm run bench [-- --quick] [--nodes=50,200] [--lookups=200] [--seed=1] [--rtt-ms=3000]
//                 [--repeats=5] [--session-rounds=5] [--pairs=3] [--impls=weft,weft-plaintext,hyperdht] [--dht-nodes=200] [--dht-puts=200]
//                 [--only=lookup|dht] [--no-write]
// --impls defaults to all four; without weft-plaintext there is no encryption cost and no plaintext
// round-trip run, and the DHT section skips weft-plaintext (it measures the default build only).
// The same settings can come from WEFT_BENCH_QUICK=1, WEFT_BENCH_NODES, WEFT_BENCH_LOOKUPS,
// WEFT_BENCH_SEED, WEFT_BENCH_RTT_MS, WEFT_BENCH_REPEATS, WEFT_BENCH_SESSION_ROUNDS, WEFT_BENCH_IMPLS, WEFT_BENCH_DHT_NODES,
// WEFT_BENCH_DHT_PUTS, WEFT_BENCH_ONLY. With --only, the section not run keeps its results file,
// and the report is rebuilt from both files.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { DHT_KINDS, MAX_VALUE_BYTES, MIN_VALUE_BYTES } from './lib/dht.js'
import {
  DHT_IMPL_ORDER, dhtComparisonTable, dhtTable, dhtVerdicts, encryptionCosts, encryptionTable, IMPL_ORDER, isDhtFigures, isFigures,
  lookupTable, median, renderMarkdown, roundTripTable, verdicts, verdictTable, WEFT, WEFT_PLAINTEXT,
  type BenchResults, type DhtEntry, type DhtParams, type DhtResults, type LookupEntry, type MachineInfo, type RoundTripSummary, type RunParams
} from './lib/report.js'
import { mergePairs, runEncryptionPair, type PairedRun } from './lib/paired.js'
import type { LookupFigures } from './lib/measure.js'
import { canPin, runDhtIsolated, runIsolated, runRoundTripsIsolated, type RoundTripRun } from './lib/spawn.js'
import { currentSection, sectionNames, spliceSection } from './lib/doc-sections.js'
import { round } from './lib/stats.js'
import { gitCommit } from './lib/git.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url)) // dist/bench/ -> repository root
const RESULTS = `${ROOT}bench/results/lookup.json`
const DHT_RESULTS = `${ROOT}bench/results/dht.json`
const DOC = `${ROOT}docs/benchmarks.md`
const LOOKUP_CHILD_TIMEOUT_MS = 5 * 60_000
const DHT_CHILD_TIMEOUT_MS = 8 * 60_000
const SECTIONS = ['lookup', 'dht'] as const
type Section = (typeof SECTIONS)[number]
const WINDOWS = [1, 32]
/** Round-trip measurements bench/peers/run-rtt.ts knows. */
type RttImpl = 'dgram' | 'weft' | 'weft-plaintext'

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

function parseParams(): { params: RunParams; dht: DhtParams; impls: string[]; sections: Section[]; write: boolean } {
  const args = process.argv.slice(2)
  const quick = args.includes('--quick') || process.env.WEFT_BENCH_QUICK === '1'
  const nodesArg = option('nodes', 'WEFT_BENCH_NODES')
  const implsArg = option('impls', 'WEFT_BENCH_IMPLS')
  const impls = implsArg ? implsArg.split(',').map((s) => s.trim()) : IMPL_ORDER
  for (const i of impls) if (!IMPL_ORDER.includes(i)) throw new Error(`unknown implementation ${i} (known: ${IMPL_ORDER.join(', ')})`)
  const params: RunParams = {
    nodes: nodesArg ? intList(nodesArg, 'node counts') : [50, 200, 500],
    lookups: positiveInt(option('lookups', 'WEFT_BENCH_LOOKUPS'), quick ? 50 : 200, 'lookup count'),
    sessionRounds: positiveInt(option('session-rounds', 'WEFT_BENCH_SESSION_ROUNDS'), quick ? 2 : 5, 'sessions-up rounds'),
    pairs: positiveInt(option('pairs', 'WEFT_BENCH_PAIRS'), quick ? 1 : 3, 'encrypted/plaintext process pairs'),
    seed: positiveInt(option('seed', 'WEFT_BENCH_SEED'), 1, 'seed'),
    quick,
    rtt: {
      durationMs: positiveInt(option('rtt-ms', 'WEFT_BENCH_RTT_MS'), quick ? 1000 : 3000, 'round-trip duration'),
      windows: WINDOWS,
      repeats: positiveInt(option('repeats', 'WEFT_BENCH_REPEATS'), quick ? 1 : 5, 'repeats'),
      pinnedCpu: canPin() ? 0 : null
    }
  }
  const dht: DhtParams = {
    nodes: positiveInt(option('dht-nodes', 'WEFT_BENCH_DHT_NODES'), 200, 'DHT node count'),
    puts: positiveInt(option('dht-puts', 'WEFT_BENCH_DHT_PUTS'), quick ? 50 : 200, 'DHT put count'),
    seed: params.seed,
    quick,
    minValueBytes: MIN_VALUE_BYTES,
    maxValueBytes: MAX_VALUE_BYTES
  }
  if (dht.nodes < 2) throw new Error(`bad DHT node count: ${dht.nodes}`)
  const onlyArg = option('only', 'WEFT_BENCH_ONLY')
  const sections = onlyArg ? onlyArg.split(',').map((s) => s.trim()) : [...SECTIONS]
  for (const s of sections) if (!(SECTIONS as readonly string[]).includes(s)) throw new Error(`unknown section ${s} (known: ${SECTIONS.join(', ')})`)
  return { params, dht, impls, sections: sections as Section[], write: !args.includes('--no-write') }
}


const log = (line: string): void => void process.stdout.write(line + '\n')
const firstLine = (err: unknown): string => (err instanceof Error ? err.message : String(err))

/** A results file from an earlier run, or null when absent or unreadable. */
function readJson<T>(path: string): T | null {
  if (!existsSync(path)) return null
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T
  } catch (err) {
    log(`(ignoring ${path}: ${firstLine(err)})`)
    return null
  }
}

async function lookupSection(p: RunParams, impls: string[], machine: MachineInfo, started: number): Promise<BenchResults> {
  // Lookups: one child per (N, implementation), one at a time so they never compete for CPU.
  const lookup: LookupEntry[] = []
  // Weft encrypted and plaintext run as a pair whose passes take turns (bench/lib/paired.ts): the
  // encryption cost compares them, and a slow minute on the machine must not decide it.
  const paired = impls.includes(WEFT) && impls.includes(WEFT_PLAINTEXT)
  const singles = paired ? impls.filter((i) => i !== WEFT && i !== WEFT_PLAINTEXT) : impls
  const total = p.nodes.length * (singles.length + (paired ? 1 : 0))
  let step = 0
  const report = (f: LookupFigures, t0: number): void =>
    log(`[${step}/${total}] ${f.impl.padEnd(14)} N=${String(f.nodes).padEnd(4)} p50 ${round(f.p50Ms).toFixed(2)} ms, p95 ${round(f.p95Ms).toFixed(2)} ms, ` +
      `p99 ${round(f.p99Ms).toFixed(2)} ms, ${round(f.datagramsPerLookup, 1)} datagrams/lookup, ${Math.round(f.rssKiBPerNode)} KiB/node, ` +
      `success ${round(f.success * 100, 1)} %${f.exact !== undefined ? ` (exact ${round(f.exact * 100, 1)} %)` : ''}` +
      `${f.sessionsUp ? `; sessions up p50 ${round(f.sessionsUp.p50Ms).toFixed(2)} ms (${f.sessionsUp.lookups ?? f.lookups} lookups)` : ''} ` +
      `[${((performance.now() - t0) / 1000).toFixed(1)} s]`)
  for (const n of p.nodes) {
    if (paired) {
      step++
      const t0 = performance.now()
      try {
        const runs: PairedRun[] = []
        const pairs = p.pairs ?? 1
        for (let k = 0; k < pairs; k++) {
          runs.push(await runEncryptionPair(n, p.lookups, p.seed, p.sessionRounds ?? 1, {
            cpu: p.rtt.pinnedCpu ?? undefined, progress: (line) => log(`    ${pairs > 1 ? `pair ${k + 1}/${pairs} ` : ''}${line}`)
          }))
        }
        const pair = mergePairs(runs)
        for (const f of [pair.encrypted, pair.plaintext]) { lookup.push(f); report(f, t0) }
      } catch (err) {
        for (const impl of [WEFT, WEFT_PLAINTEXT]) lookup.push({ impl, nodes: n, error: firstLine(err) })
        log(`[${step}/${total}] weft pair      N=${String(n).padEnd(4)} FAILED: ${firstLine(err).split('\n')[0]}`)
      }
    }
    for (const impl of singles) {
      step++
      const t0 = performance.now()
      try {
        const f = await runIsolated(impl, n, p.lookups, p.seed, LOOKUP_CHILD_TIMEOUT_MS)
        lookup.push(f)
        report(f, t0)
      } catch (err) {
        lookup.push({ impl, nodes: n, error: firstLine(err) })
        log(`[${step}/${total}] ${impl.padEnd(14)} N=${String(n).padEnd(4)} FAILED: ${firstLine(err).split('\n')[0]}`)
      }
    }
  }
  // The table lists implementations in IMPL_ORDER at each N, however they were run.
  lookup.sort((a, b) => a.nodes - b.nodes || IMPL_ORDER.indexOf(a.impl) - IMPL_ORDER.indexOf(b.impl))

  // Round trips: bare dgram and Weft (and Weft plaintext, when asked for) alternate, each in its
  // own (pinned) child process, so drift on the machine hits all of them alike.
  const samples: BenchResults['roundTrips']['samples'] = []
  const summary: RoundTripSummary[] = []
  const cpu = p.rtt.pinnedCpu ?? undefined
  const rttImpls: RttImpl[] = impls.includes(WEFT_PLAINTEXT) ? ['dgram', 'weft', 'weft-plaintext'] : ['dgram', 'weft']
  for (const window of p.rtt.windows) {
    const rates: Record<RttImpl, number[]> = { dgram: [], weft: [], 'weft-plaintext': [] }
    for (let rep = 0; rep < p.rtt.repeats; rep++) {
      for (const impl of rttImpls) {
        try {
          const r: RoundTripRun = await runRoundTripsIsolated(impl, p.rtt.durationMs, window, cpu)
          samples.push(r)
          rates[impl].push(r.roundTripsPerSec)
          log(`round trips ${impl.padEnd(14)} window ${String(window).padEnd(2)} run ${rep + 1}/${p.rtt.repeats}: ` +
            `${Math.round(r.roundTripsPerSec)} /s (${r.failed} failed)`)
        } catch (err) {
          samples.push({ impl, window, error: firstLine(err) })
          log(`round trips ${impl.padEnd(14)} window ${window} run ${rep + 1}: FAILED: ${firstLine(err).split('\n')[0]}`)
        }
      }
    }
    const dgram = median(rates.dgram)
    const weft = rates.weft.length > 0 ? median(rates.weft) : 0
    const plain = rates['weft-plaintext']
    const weftPlaintext = plain.length > 0 ? { weftPlaintext: median(plain) } : {}
    if (rates.dgram.length > 0) summary.push({ window, dgram, weft, ratio: weft / dgram, ...weftPlaintext })
  }

  const results: BenchResults = {
    machine,
    params: p,
    lookup,
    roundTrips: { samples, summary },
    verdicts: verdicts(lookup, summary, p.nodes),
    encryption: encryptionCosts(lookup, p.nodes),
    elapsedMs: performance.now() - started
  }
  log('')
  for (const n of p.nodes) log(`Lookups, N = ${n}\n${lookupTable(lookup, n)}\n`)
  log(`Encryption cost (Weft encrypted against plaintext)\n${encryptionTable(results.encryption ?? [])}\n`)
  log(`RPC round trips (one core)\n${roundTripTable(summary)}\n`)
  log(`Targets\n${verdictTable(results.verdicts)}\n`)
  return results
}

async function dhtSection(d: DhtParams, asked: string[], machine: MachineInfo): Promise<DhtResults> {
  const started = performance.now()
  // Only the default (encrypted) Weft has a DHT bench: weft-plaintext is skipped here.
  const impls = asked.filter((i) => DHT_IMPL_ORDER.includes(i))
  log(`DHT put/get: N = ${d.nodes}, ${d.puts} puts then ${d.puts} gets, immutable and mutable; ${impls.join(', ')}`)
  const dht: DhtEntry[] = []
  for (const [i, impl] of impls.entries()) {
    const t0 = performance.now()
    try {
      const f = await runDhtIsolated(impl, d.nodes, d.puts, d.seed, DHT_CHILD_TIMEOUT_MS)
      dht.push(f)
      for (const kind of DHT_KINDS) {
        const k = f[kind]
        log(`[dht ${i + 1}/${impls.length}] ${impl.padEnd(14)} ${kind.padEnd(9)} put p50 ${round(k.put.p50Ms).toFixed(2)} ms, p95 ${round(k.put.p95Ms).toFixed(2)} ms; ` +
          `get p50 ${round(k.get.p50Ms).toFixed(2)} ms, p95 ${round(k.get.p95Ms).toFixed(2)} ms; ` +
          `stored ${k.putsOk}/${k.puts}, found ${k.found}, verified ${k.verified}; ` +
          `${round(k.datagramsPerPut, 1)} datagrams/put, ${round(k.datagramsPerGet, 1)} datagrams/get; ` +
          `CPU ${round(k.cpuMsPerPut).toFixed(2)} ms/put, ${round(k.cpuMsPerGet).toFixed(2)} ms/get`)
      }
      log(`[dht ${i + 1}/${impls.length}] ${impl} done [${((performance.now() - t0) / 1000).toFixed(1)} s, setup ${(f.setupMs / 1000).toFixed(1)} s]`)
    } catch (err) {
      dht.push({ impl, nodes: d.nodes, error: firstLine(err) })
      log(`[dht ${i + 1}/${impls.length}] ${impl.padEnd(14)} FAILED: ${firstLine(err).split('\n')[0]}`)
    }
  }
  const results: DhtResults = { machine, params: d, dht, verdicts: dhtVerdicts(dht, d.nodes), elapsedMs: performance.now() - started }
  log('')
  for (const kind of DHT_KINDS) log(`DHT ${kind}, N = ${d.nodes}\n${dhtTable(dht, kind)}\n`)
  log(`DHT: Weft against the best peer (p50)\n${dhtComparisonTable(dht)}\n`)
  log(`DHT targets\n${verdictTable(results.verdicts)}\n`)
  return results
}

async function main(): Promise<void> {
  const started = performance.now()
  const { params: p, dht: d, impls, sections, write } = parseParams()
  const cpus = os.cpus()
  const machine: MachineInfo = {
    node: process.version,
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memMiB: Math.round(os.totalmem() / 2 ** 20),
    platform: os.platform(),
    release: os.release(),
    date: new Date().toISOString(),
    commit: gitCommit(ROOT)
  }
  const runLookups = sections.includes('lookup')
  const runDht = sections.includes('dht')
  log(`weft bench: ${runLookups ? `lookups at N = ${p.nodes.join(', ')}, ${p.lookups} each; round trips; ` : ''}` +
    `${runDht ? `DHT put/get at N = ${d.nodes}, ${d.puts} puts; ` : ''}seed ${p.seed}; ${impls.join(', ')}${p.quick ? ' (quick)' : ''}`)
  log(`${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, commit ${machine.commit}`)

  const lookupResults = runLookups ? await lookupSection(p, impls, machine, started) : null
  const dhtResults = runDht ? await dhtSection(d, impls, machine) : null

  if (write) {
    mkdirSync(`${ROOT}bench/results`, { recursive: true })
    if (lookupResults) writeFileSync(RESULTS, JSON.stringify(lookupResults, null, 2) + '\n')
    if (dhtResults) writeFileSync(DHT_RESULTS, JSON.stringify(dhtResults, null, 2) + '\n')
    // The report always shows both sections: the one not run this time comes from its file.
    const forDocLookup = lookupResults ?? readJson<BenchResults>(RESULTS)
    const forDocDht = dhtResults ?? readJson<DhtResults>(DHT_RESULTS)
    const wrote = [lookupResults && RESULTS, dhtResults && DHT_RESULTS].filter(Boolean)
    if (forDocLookup) {
      mkdirSync(`${ROOT}docs`, { recursive: true })
      // The other benches (bench:sim, bench:topologies, bench:swim, ...) write marked parts: carry them all over.
      const old = existsSync(DOC) ? readFileSync(DOC, 'utf8') : ''
      let doc = renderMarkdown(forDocLookup, forDocDht)
      for (const name of sectionNames(old)) { const kept = currentSection(old, name); if (kept) doc = spliceSection(doc, name, kept) }
      writeFileSync(DOC, doc)
      wrote.push(DOC)
    } else {
      log(`no lookup results in ${RESULTS}: not writing ${DOC} (run the lookup section once)`)
    }
    log(`wrote ${wrote.join(', ')}`)
  }
  log(`done in ${((performance.now() - started) / 1000).toFixed(0)} s`)
  const failures =
    (lookupResults?.lookup.filter((e) => !isFigures(e)).length ?? 0) +
    (lookupResults?.roundTrips.samples.filter((s) => 'error' in s).length ?? 0) +
    (dhtResults?.dht.filter((e) => !isDhtFigures(e)).length ?? 0)
  if (failures > 0) {
    log(`${failures} measurement(s) failed`)
    process.exitCode = 1
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  process.exit(1)
})
