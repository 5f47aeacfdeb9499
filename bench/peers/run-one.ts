// Runs ONE lookup measurement in its own process, so RSS figures are not polluted by
// earlier runs, and prints one JSON LookupFigures line on stdout.
//   node --expose-gc dist/bench/peers/run-one.js <impl> <nodes> <lookups> <seed>
import { runChild, usage } from '../lib/child.js'
import type { LookupFigures } from '../lib/measure.js'
import { benchBittorrentDht } from './bittorrent-dht.js'
import { benchHyperdht } from './hyperdht.js'
import { benchWeft } from './weft.js'

export type LookupBench = (nodes: number, lookups: number, seed: number) => Promise<LookupFigures>

// Registered implementations. `weft` is the default (encrypted) build; `weft-plaintext` the same
// network with encryption off, for the encryption-cost comparison.
export const IMPLS: Record<string, LookupBench> = {
  weft: (n, l, s) => benchWeft(n, l, s, { encrypt: true }),
  'weft-plaintext': (n, l, s) => benchWeft(n, l, s, { encrypt: false }),
  hyperdht: benchHyperdht,
  'bittorrent-dht': benchBittorrentDht
}

/** Hard bound on one run; the parent (bench/lib/spawn.ts) has its own timeout too. */
const WATCHDOG_MS = 5 * 60_000

async function main(argv: string[]): Promise<LookupFigures> {
  const [impl, nodesArg, lookupsArg, seedArg] = argv
  const bench = impl === undefined ? undefined : IMPLS[impl]
  const nodes = Number(nodesArg)
  const lookups = Number(lookupsArg)
  const seed = Number(seedArg ?? 1)
  if (!bench || !Number.isInteger(nodes) || nodes < 2 || !Number.isInteger(lookups) || lookups < 1 || !Number.isInteger(seed)) {
    usage(`run-one <${Object.keys(IMPLS).join('|')}> <nodes>=2> <lookups>=1> <seed>`)
  }

  return bench(nodes, lookups, seed)
}

runChild('run-one', import.meta.url, WATCHDOG_MS, main)
