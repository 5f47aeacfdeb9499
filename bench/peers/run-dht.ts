// Runs ONE DHT put/get measurement in its own process and prints one JSON DhtFigures line on
// stdout (progress lines go to stderr).
//   node dist/bench/peers/run-dht.js <impl> <nodes> <puts> <seed> [--profile=DIR]
// --profile=DIR (or WEFT_BENCH_DHT_PROFILE=DIR) writes a V8 CPU profile of each timed phase
// (DIR/<impl>-<kind>-<put|get>.cpuprofile), without the network setup; open it in Chrome DevTools
// or summarise it with `node dist/bench/lib/profile-summary.js FILE`.
import { mkdirSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector'
import { join } from 'node:path'
import { runChild, usage } from '../lib/child.js'
import { phaseHooks, type DhtFigures } from '../lib/dht.js'
import { benchBittorrentDhtStore } from './dht-bittorrent.js'
import { benchHyperdhtDht } from './dht-hyperdht.js'
import { benchWeftDht } from './dht-weft.js'

export type DhtBench = (nodes: number, puts: number, seed: number, progress?: (line: string) => void) => Promise<DhtFigures>

export const DHT_IMPLS: Record<string, DhtBench> = {
  weft: benchWeftDht,
  hyperdht: benchHyperdhtDht,
  'bittorrent-dht': benchBittorrentDhtStore
}

/** Hard bound on one run; the parent (bench/lib/spawn.ts) has its own timeout too. */
const WATCHDOG_MS = 8 * 60_000

async function main(argv: string[]): Promise<DhtFigures> {
  const profileArg = argv.find((a) => a.startsWith('--profile='))?.slice('--profile='.length) ?? process.env.WEFT_BENCH_DHT_PROFILE
  const [impl, nodesArg, putsArg, seedArg] = argv.filter((a) => !a.startsWith('--'))
  const bench = impl === undefined ? undefined : DHT_IMPLS[impl]
  const nodes = Number(nodesArg)
  const puts = Number(putsArg)
  const seed = Number(seedArg ?? 1)
  if (!bench || !Number.isInteger(nodes) || nodes < 2 || !Number.isInteger(puts) || puts < 1 || !Number.isInteger(seed)) {
    usage(`run-dht <${Object.keys(DHT_IMPLS).join('|')}> <nodes>=2> <puts>=1> <seed>`)
  }

  if (profileArg) profilePhases(profileArg)
  return bench(nodes, puts, seed, (line) => process.stderr.write(line + '\n'))
}

/** Profiles each timed phase with the inspector's sampling profiler (100 µs interval). */
function profilePhases(dir: string): void {
  mkdirSync(dir, { recursive: true })
  const session = new Session()
  session.connect()
  const post = (method: string, params?: object): Promise<unknown> =>
    new Promise((resolve, reject) => session.post(method, params, (err, res) => (err ? reject(err) : resolve(res))))
  phaseHooks.before = async () => {
    await post('Profiler.enable')
    await post('Profiler.setSamplingInterval', { interval: 100 })
    await post('Profiler.start')
  }
  phaseHooks.after = async (phase) => {
    const { profile } = (await post('Profiler.stop')) as { profile: unknown }
    const file = join(dir, `${phase}.cpuprofile`)
    writeFileSync(file, JSON.stringify(profile))
    process.stderr.write(`profile of ${phase}: ${file}\n`)
  }
}

runChild('run-dht', import.meta.url, WATCHDOG_MS, main)
