// `npm run bench:soak`: a long run of real nodes on loopback under churn and steady load (issue 10,
// must-show 5). Checks that RSS and open handles stay flat and that no operation outlives its
// timeout; writes bench/results/soak.json, docs/soak.svg and the soak section of docs/security.md,
// and exits 1 when a check fails (3 when the run overruns its own time bound).
//
//   npm run bench:soak [-- --minutes 30] [--nodes 200] [--seed 1] [--sample-seconds 10]
//                      [--churn-seconds 3] [--ops-per-second 4] [--op-timeout-ms 20000] [--values 64] [--no-write] [--plot-only]
//
// All nodes run in this one process: at 200 nodes and a few operations a second the event loop
// keeps up (its delay is sampled and reported), and one process is what makes RSS and the handle
// count mean "the nodes'".
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { Node } from '../src/node/node.js'
import { seededIdentity } from '../src/node/testnet.js'
import { arg, flag, num } from './lib/args.js'
import { section, spliceSection } from './lib/doc-sections.js'
import { collectGarbage, withTimeout } from './lib/measure.js'
import { countCheck, flatCheck, shareCheck, type Check } from './lib/soak-check.js'
import { Workload } from './lib/soak-ops.js'
import { CountingRuntime, Prober, StoppedNodes, type LiveNode, type Sample } from './lib/soak-probe.js'
import { plotSoak, soakMarkdown, type SoakParams, type SoakResult } from './lib/soak-report.js'
import { createRng } from './lib/stats.js'
import { gitCommit } from './lib/git.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url)) // dist-*/bench/ -> repository root
const RESULTS = `${ROOT}bench/results/soak.json`
const SVG = `${ROOT}docs/soak.svg`
const DOC = `${ROOT}docs/security.md`

const BOOTSTRAP_NODES = 2
const JOIN_CONCURRENCY = 8
/** One node's start (bind and join) or stop, at most. */
const JOIN_TIMEOUT_MS = 30_000
const STOP_TIMEOUT_MS = 10_000
/** The whole start-up and the whole teardown, at most. */
const SETUP_TIMEOUT_MS = 10 * 60_000
const TEARDOWN_TIMEOUT_MS = 60_000
/** Past its own timeout, how long an operation may take to settle before it counts as stuck. */
const STUCK_MARGIN_MS = 10_000
/** Gets that find the value put, at least (a miss is a value whose every holder churned away before handing it on). */
const MIN_GET_SHARE = 0.9
const MIN_LOOKUP_SHARE = 0.95
/** Errors that escaped to the process (unhandled rejections, uncaught exceptions) whose text is kept. */
const MAX_ESCAPED_KEPT = 20

const minutes = num('minutes', 30, (x) => x > 0 && x <= 24 * 60)
/**
 * Load and churn before the measured minutes begin. V8's heap grows its committed size for the first
 * quarter hour of this load while live data stays flat (heapTotal 92 -> 170 MB, heapUsed 53 -> 74 MB in
 * the first 30-minute run), and routing tables, sessions and record copies fill toward their bounds.
 */
const warmupMinutes = num('warmup-minutes', 10, (x) => x >= 0 && x <= 24 * 60)
const nodeCount = num('nodes', 200, (x) => Number.isInteger(x) && x >= BOOTSTRAP_NODES + 2 && x <= 2000)
const seed = arg('seed') ?? '1'
const sampleSeconds = num('sample-seconds', 10, (x) => x >= 1 && x <= 600)
const churnSeconds = num('churn-seconds', 3, (x) => x >= 0.2 && x <= 3600)
const opsPerSecond = num('ops-per-second', 4, (x) => x > 0 && x <= 200)
const opTimeoutMs = num('op-timeout-ms', 20_000, (x) => Number.isInteger(x) && x >= 1000 && x <= 300_000)
const valueCount = num('values', 64, (x) => Number.isInteger(x) && x >= 1 && x <= 100_000)
const write = !flag('no-write')

const params: SoakParams = {
  minutes, warmupMinutes, nodes: nodeCount, bootstrapNodes: BOOTSTRAP_NODES, seed, sampleSeconds, churnSeconds, opsPerSecond,
  opTimeoutMs, stuckMarginMs: STUCK_MARGIN_MS, values: valueCount,
}
/** The command that repeats a run with these parameters (defaults left out but the main four). */
const commandFor = (p: SoakParams): string =>
  `npm run bench:soak -- --minutes ${p.minutes} --warmup-minutes ${p.warmupMinutes} --nodes ${p.nodes} --seed ${p.seed} --sample-seconds ${p.sampleSeconds}` +
  (p.churnSeconds !== 3 ? ` --churn-seconds ${p.churnSeconds}` : '') + (p.opsPerSecond !== 4 ? ` --ops-per-second ${p.opsPerSecond}` : '') +
  (p.opTimeoutMs !== 20_000 ? ` --op-timeout-ms ${p.opTimeoutMs}` : '') + (p.values !== 64 ? ` --values ${p.values}` : '')
const command = commandFor(params)

const log = (line: string): void => void process.stdout.write(line + '\n')
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
const seed32 = createHash('sha256').update(`soak:${seed}`).digest().readUInt32LE(0)
const rng = createRng(seed32)

// Anything that escapes to the process is a failure of the soak, counted rather than fatal so the run can say how many.
const escaped: string[] = []
let escapedCount = 0
const onEscaped = (kind: string) => (err: unknown): void => {
  escapedCount++
  if (escaped.length < MAX_ESCAPED_KEPT) escaped.push(`${kind}: ${err instanceof Error ? err.stack ?? err.message : String(err)}`)
  log(`[soak] ${kind}: ${err instanceof Error ? err.message : String(err)}`)
}
process.on('unhandledRejection', onEscaped('unhandled rejection'))
process.on('uncaughtException', onEscaped('uncaught exception'))

// The run's own bound: start-up, the run, draining and teardown, with room to spare.
const watchdogMs = SETUP_TIMEOUT_MS + (warmupMinutes + minutes) * 60_000 + opTimeoutMs + STUCK_MARGIN_MS + TEARDOWN_TIMEOUT_MS + 60_000
setTimeout(() => { log(`[soak] overran its bound of ${Math.round(watchdogMs / 60_000)} min: giving up`); process.exit(3) }, watchdogMs).unref()

let nextIdentity = 0
function makeNode(bootstrap: string[], isBootstrap = false): LiveNode {
  const runtime = new CountingRuntime()
  const node = new Node({ host: '127.0.0.1', port: 0, identity: seededIdentity(`soak:${seed}`, nextIdentity++), runtime, bootstrap })
  return { node, runtime, bootstrap: isBootstrap }
}

async function startPopulation(): Promise<{ live: LiveNode[]; bootstrap: string[] }> {
  const live: LiveNode[] = []
  const first = makeNode([], true)
  await withTimeout(first.node.start(), JOIN_TIMEOUT_MS, 'bootstrap node 0 start')
  live.push(first)
  const bootstrap = [first.node.address]
  for (let i = 1; i < BOOTSTRAP_NODES; i++) {
    const b = makeNode([...bootstrap], true)
    await withTimeout(b.node.start(), JOIN_TIMEOUT_MS, `bootstrap node ${i} start`)
    live.push(b)
    bootstrap.push(b.node.address)
  }
  let left = nodeCount - BOOTSTRAP_NODES
  const worker = async (): Promise<void> => {
    while (left > 0) {
      left--
      const n = makeNode(bootstrap)
      await withTimeout(n.node.start(), JOIN_TIMEOUT_MS, 'node start')
      live.push(n)
      if (live.length % 25 === 0 || live.length === nodeCount) log(`[soak] started ${live.length}/${nodeCount} nodes`)
    }
  }
  await Promise.all(Array.from({ length: JOIN_CONCURRENCY }, worker))
  return { live, bootstrap }
}


/** Committed MB of V8's spaces that hold more than 1 MB, e.g. "new 16 old 120 lo 9". */
function spaces(s: Sample): string {
  return Object.entries(s.heapSpacesMB).filter(([, v]) => v.committed >= 1)
    .map(([k, v]) => `${k.replace('large_object', 'lo')} ${Math.round(v.committed)}`).join(' ')
}

function progress(s: Sample): string {
  const per = (x: number): string => (x / Math.max(1, s.liveNodes)).toFixed(1)
  return `[soak] ${(s.t / 60).toFixed(1)}/${warmupMinutes + minutes} min · ${s.liveNodes} nodes · RSS ${s.rssMB} MB (before compacting ${s.rssUncompactedMB}) · heap ${s.heapUsedMB}/${s.heapTotalMB} MB (${spaces(s)}) · external ${s.externalMB} MB · ` +
    `handles ${s.handles} (UDP ${s.udpSockets}) · fds ${s.fds} · per node: timers ${per(s.totals.timersPending)} sessions ${per(s.totals.sessionsOpen)} keys ${per(s.totals.knownKeys)} ` +
    `table ${per(s.totals.tableEntries)} records ${per(s.totals.records)} · ops ok ${s.ops.ok} failed ${s.ops.failed} stuck ${s.ops.stuck} (in flight ${s.ops.inFlight}) · ` +
    `replaced ${s.churn.replaced} · stopped not collected ${s.stopped.unreclaimed} · loop p99 ${s.loopDelayMs.p99} ms`
}

async function main(): Promise<number> {
  const startedAt = new Date().toISOString()
  log(`[soak] ${nodeCount} nodes, ${warmupMinutes} min warm-up + ${minutes} min measured, seed ${seed}, sample every ${sampleSeconds} s, churn 1 node / ${churnSeconds} s, ${opsPerSecond} ops/s`)
  const t0 = performance.now()
  const { live, bootstrap } = await withTimeout(startPopulation(), SETUP_TIMEOUT_MS, 'start-up')
  const setupS = (performance.now() - t0) / 1000
  const originals = new Set(live.filter((l) => !l.bootstrap).map((l) => l.node))
  log(`[soak] all ${nodeCount} nodes up in ${setupS.toFixed(1)} s; churn and load begin`)

  const runStart = performance.now()
  const clockS = (): number => (performance.now() - runStart) / 1000
  const stopped = new StoppedNodes()
  const workload = new Workload(rng, valueCount, opTimeoutMs, STUCK_MARGIN_MS, clockS)
  const churn = { replaced: 0, graceful: 0, crashed: 0, startFailures: 0, skippedTicks: 0 }
  let churning = false

  /** Stops one random non-bootstrap node (alternately gracefully and as a crash) and starts a new one. */
  const churnOnce = async (): Promise<void> => {
    if (churning) { churn.skippedTicks++; return }
    churning = true
    try {
      if (live.length >= nodeCount) { // below it (a join failed), only a join: the population returns to size
        const candidates = live.filter((l) => !l.bootstrap)
        const victim = candidates[rng.int(candidates.length)]
        live.splice(live.indexOf(victim), 1) // out of the pool first, so no new operation starts on it
        originals.delete(victim.node)
        const graceful = churn.replaced % 2 === 0
        await withTimeout(victim.node.stop({ leave: graceful }), STOP_TIMEOUT_MS, 'node stop').catch((err: unknown) => log(`[soak] ${String(err)}`))
        stopped.add(victim.node, victim.runtime)
        churn.replaced++
        if (graceful) churn.graceful++
        else churn.crashed++
      }
      const fresh = makeNode(bootstrap)
      try {
        await withTimeout(fresh.node.start(), JOIN_TIMEOUT_MS, 'node start')
        live.push(fresh)
      } catch (err) {
        churn.startFailures++
        log(`[soak] a join failed: ${err instanceof Error ? err.message : String(err)}`)
        await fresh.node.stop({ leave: false }).catch(() => {})
        stopped.add(fresh.node, fresh.runtime)
      }
    } finally {
      churning = false
    }
  }
  const churnTimer = setInterval(() => void churnOnce(), churnSeconds * 1000)
  const opsTimer = setInterval(() => {
    const pool = live.filter((l) => l.node.isRunning)
    if (pool.length) workload.launch(pool[rng.int(pool.length)].node)
  }, 1000 / opsPerSecond)
  churnTimer.unref() // the bench's own timers stay out of the handle count (the nodes' sockets keep the process alive)
  opsTimer.unref()

  const prober = new Prober()
  const samples: Sample[] = []
  const runS = (warmupMinutes + minutes) * 60
  const warmupS = warmupMinutes * 60
  for (let k = 0; ; k++) {
    const due = k * sampleSeconds
    if (due > runS) break
    const wait = due * 1000 - (performance.now() - runStart)
    if (wait > 0) await sleep(wait)
    const s = await prober.sample(clockS(), live, stopped, (n) => rng.int(n), workload.totals(), { replaced: churn.replaced, startFailures: churn.startFailures })
    samples.push(s)
    log(progress(s))
  }
  clearInterval(churnTimer)
  clearInterval(opsTimer)
  prober.close()
  log(`[soak] load stopped; waiting for ${workload.inFlight} operations in flight`)
  await workload.drain(opTimeoutMs + STUCK_MARGIN_MS + 1000)
  while (churning) await sleep(100)

  // Teardown: every node stops (as a crash: quick, and a graceful leave was exercised all along).
  const t1 = performance.now()
  const originalsLeft = originals.size
  const runtimes = live.map((l) => l.runtime)
  await withTimeout(Promise.all(live.map((l) => l.node.stop({ leave: false }))), TEARDOWN_TIMEOUT_MS, 'teardown').catch((err: unknown) => log(`[soak] ${String(err)}`))
  live.length = 0
  originals.clear()
  await collectGarbage()
  const info = process.getActiveResourcesInfo()
  const byKind: Record<string, number> = {}
  for (const kind of info) byKind[kind] = (byKind[kind] ?? 0) + 1
  const teardown = { udpSockets: byKind.UDPWrap ?? 0, handles: info.length, handlesByKind: byKind, timersPending: runtimes.reduce((s, r) => s + r.pending, 0) + stopped.timersPending() }
  const teardownS = (performance.now() - t1) / 1000
  log(`[soak] torn down in ${teardownS.toFixed(1)} s: ${teardown.udpSockets} UDP sockets, ${teardown.timersPending} protocol timers left`)

  const ops = workload.summary()
  const stuck = ops.lookup.stuck + ops.put.stuck + ops.get.stuck
  const share = (ok: number, started: number): number => (started ? ok / started : 0)
  const checks: Check[] = [
    flatCheck('RSS flat', 'median RSS, MB', samples, warmupS, (s) => s.rssMB),
    flatCheck('open handles flat', 'median getActiveResourcesInfo() count', samples, warmupS, (s) => s.handles),
    flatCheck('file descriptors flat', 'median /proc/self/fd count', samples, warmupS, (s) => s.fds),
    flatCheck('protocol timers flat', 'median timers pending over the live nodes', samples, warmupS, (s) => s.totals.timersPending),
    countCheck('no operation stuck', `operations unsettled ${STUCK_MARGIN_MS / 1000} s past their timeout`, stuck, 0),
    countCheck('nothing escaped', 'unhandled rejections and uncaught exceptions', escapedCount, 0),
    shareCheck('lookups succeed', 'share of lookups that returned contacts', share(ops.lookup.ok, ops.lookup.started), MIN_LOOKUP_SHARE),
    shareCheck('gets find puts', 'share of gets that returned the value put', share(ops.get.ok, ops.get.started), MIN_GET_SHARE),
    countCheck('clean teardown', 'UDP sockets open after every node stopped', teardown.udpSockets, 0),
  ]
  const pass = checks.every((c) => c.pass)
  const result: SoakResult = {
    params, command,
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', node: process.version, platform: `${os.platform()} ${os.release()}`, totalMemMB: Math.round(os.totalmem() / 2 ** 20) },
    commit: gitCommit(ROOT), startedAt, setupS: Math.round(setupS * 10) / 10, runS: Math.round(clockS() * 10) / 10, teardownS: Math.round(teardownS * 10) / 10,
    churn: {
      ...churn, originalsLeft,
      originalsReplacedShare: (nodeCount - BOOTSTRAP_NODES - originalsLeft) / (nodeCount - BOOTSTRAP_NODES),
    },
    ops, opsSkipped: workload.skipped, stuckOps: workload.stuckOps, teardown, checks, pass, samples,
  }
  for (const c of checks) {
    const figure = c.change === null ? `${c.last}` : `${c.first} → ${c.last} (${c.change >= 0 ? '+' : ''}${(c.change * 100).toFixed(1)} %)`
    log(`[soak] ${c.pass ? 'pass' : 'FAIL'}  ${c.name}: ${figure}, limit ${c.limit}`)
  }
  for (const e of escaped) log(`[soak] escaped: ${e}`)
  if (write) {
    mkdirSync(`${ROOT}bench/results`, { recursive: true })
    writeFileSync(RESULTS, JSON.stringify({ ...result, escaped }, null, 2) + '\n')
    await writeDocs(result)
  }
  log(`[soak] ${pass ? 'PASS' : 'FAIL'}`)
  return pass ? 0 : 1
}

async function writeDocs(result: SoakResult): Promise<void> {
  writeFileSync(SVG, await plotSoak(result))
  writeFileSync(DOC, spliceSection(readFileSync(DOC, 'utf8'), 'soak', section('soak', soakMarkdown(result))))
  log(`[soak] wrote docs/soak.svg and the soak section of docs/security.md`)
}

/** --plot-only: the plot and the doc section again from bench/results/soak.json, without a run. */
async function replot(): Promise<number> {
  const result = JSON.parse(readFileSync(RESULTS, 'utf8')) as SoakResult
  result.params.warmupMinutes ??= 0 // runs from before the flag measured from the start
  result.command ??= commandFor(result.params)
  await writeDocs(result)
  return result.pass ? 0 : 1
}

const run = flag('plot-only') ? replot : main
run().then((code) => process.exit(code), (err: unknown) => {
  log(`[soak] failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`)
  process.exit(2)
})
