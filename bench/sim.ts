// `npm run bench:sim`: the simulator at scale. Runs `weft sim` in a child process per network
// size (1e3 to 1e6 by default, oracle-built) and one network of real joins under churn, then
// writes bench/results/sim.json, the simulator section of docs/benchmarks.md and, when it ran
// several sizes, docs/sim-hops.svg.
//
//   npm run bench:sim [-- --quick] [--sizes=1000,10000,100000,1000000] [--lookups=10000]
//                     [--churn-nodes=100000] [--churn=1h] [--warmup=<churn>] [--seed=1] [--only=sizes|churn]
// --warmup: virtual time of churn before the lookups (default: the median session).
// With --only, the part not run keeps its figures from bench/results/sim.json.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { SimMachine, SimResult } from '../src/sim/report.js'
import { plotReports } from '../src/sim/plot.js'
import { simSection, spliceSimSection, type SimBench } from './lib/sim-section.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const CLI = `${ROOT}dist/src/cli/main.js`
const RESULTS = `${ROOT}bench/results/sim.json`
const DOC = `${ROOT}docs/benchmarks.md`

const arg = (name: string): string | undefined => process.argv.slice(2).find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
const quick = process.argv.includes('--quick')
const sizes = (arg('sizes') ?? (quick ? '1000,10000' : '1000,10000,100000,1000000')).split(',').map(Number)
const lookups = Number(arg('lookups') ?? (quick ? 1000 : 10000))
const seed = arg('seed') ?? '1'
const churnNodes = Number(arg('churn-nodes') ?? (quick ? 2000 : 100000))
const churn = arg('churn') ?? '1h'
const warmup = arg('warmup') ?? churn

function sim(args: string[], label: string): { simulated: SimResult; machine: SimMachine; command: string } {
  const dir = mkdtempSync(join(os.tmpdir(), 'weft-bench-sim-'))
  const out = join(dir, 'r.json')
  const command = `weft sim ${args.join(' ')}`
  console.log(`${label}: ${command}`)
  try {
    const r = spawnSync(process.execPath, [CLI, 'sim', ...args, '--out', out], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 3 * 3600_000 })
    if (r.status !== 0) throw new Error(`${command} failed (exit ${r.status ?? r.signal})`)
    const simulated = JSON.parse(readFileSync(out, 'utf8')) as SimResult
    const [machine] = JSON.parse(readFileSync(`${out}.machine.json`, 'utf8')) as SimMachine[]
    return { simulated, machine, command }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const only = arg('only')
if (only !== undefined && only !== 'sizes' && only !== 'churn') throw new Error(`--only must be sizes or churn, got ${only}`)
const sizeRuns = only === 'churn' ? null
  : sizes.map((n) => sim(['--nodes', String(n), '--lookups', String(lookups), '--seed', seed, '--build', 'oracle'], `size ${n}`))
const churnRun = only === 'sizes' ? null
  // Bucket refresh is set past the run (2 h) so that the hour of churn is met by the tables'
  // own failure handling alone, and so that 100,000 nodes refreshing every bucket (1.4 M
  // lookups) does not make this run take hours. The report states it.
  : sim(['--nodes', String(churnNodes), '--lookups', String(Math.min(lookups, 2000)), '--seed', seed, '--build', 'joins', '--churn', churn, '--warmup', warmup, '--refresh', '2h'], `churn ${churnNodes}`)
// Read only now: another bench:sim --only=... may have written its part meanwhile.
const previous = existsSync(RESULTS) ? (JSON.parse(readFileSync(RESULTS, 'utf8')) as SimBench) : null
const bench: SimBench = {
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
  sizes: sizeRuns ?? previous?.sizes ?? [],
  churn: churnRun ?? previous?.churn ?? null,
}
writeFileSync(RESULTS, JSON.stringify(bench, null, 2) + '\n')
if (sizeRuns && sizeRuns.length > 1) writeFileSync(`${ROOT}docs/sim-hops.svg`, await plotReports(sizeRuns))
const doc = existsSync(DOC) ? readFileSync(DOC, 'utf8') : '# Benchmarks\n'
writeFileSync(DOC, spliceSimSection(doc, simSection(bench)))
console.log(`wrote ${RESULTS} and ${DOC}`)
