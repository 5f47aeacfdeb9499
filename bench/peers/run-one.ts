// Runs ONE lookup measurement in its own process, so RSS figures are not polluted by
// earlier runs, and prints one JSON LookupFigures line on stdout.
//   node --expose-gc dist/bench/peers/run-one.js <impl> <nodes> <lookups> <seed>
import { pathToFileURL } from 'node:url'
import type { LookupFigures } from '../lib/measure.js'
import { benchBittorrentDht } from './bittorrent-dht.js'
import { benchHyperdht } from './hyperdht.js'
import { benchWeft } from './weft.js'

export type LookupBench = (nodes: number, lookups: number, seed: number) => Promise<LookupFigures>

// Registered implementations.
export const IMPLS: Record<string, LookupBench> = {
  weft: benchWeft,
  hyperdht: benchHyperdht,
  'bittorrent-dht': benchBittorrentDht
}

/** Hard bound on one run; the parent (bench/lib/spawn.ts) has its own timeout too. */
const WATCHDOG_MS = 5 * 60_000

async function main(argv: string[]): Promise<void> {
  const [impl, nodesArg, lookupsArg, seedArg] = argv
  const bench = impl === undefined ? undefined : IMPLS[impl]
  const nodes = Number(nodesArg)
  const lookups = Number(lookupsArg)
  const seed = Number(seedArg ?? 1)
  if (!bench || !Number.isInteger(nodes) || nodes < 2 || !Number.isInteger(lookups) || lookups < 1 || !Number.isInteger(seed)) {
    process.stderr.write(`usage: run-one <${Object.keys(IMPLS).join('|')}> <nodes>=2> <lookups>=1> <seed>\n`)
    process.exit(2)
  }

  const watchdog = setTimeout(() => {
    process.stderr.write(`run-one ${impl} N=${nodes}: watchdog fired after ${WATCHDOG_MS} ms\n`)
    process.exit(3)
  }, WATCHDOG_MS)
  watchdog.unref()

  const figures = await bench(nodes, lookups, seed)
  process.stdout.write(JSON.stringify(figures) + '\n')
}

// Only run when executed directly, so IMPLS can be imported elsewhere.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    // Exit explicitly: libraries may leave timers/sockets behind after destroy.
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`run-one failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
      process.exit(1)
    }
  )
}
