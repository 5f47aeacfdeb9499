// bittorrent-dht lookup figures: N nodes on 127.0.0.1, bootstrapped only to each other.
import {
  assertLoopbackOnly,
  datagramCounter,
  settledMemory,
  timeLookups,
  toFigures,
  withTimeout,
  type LookupFigures
} from '../lib/measure.js'
import { createRng, type Rng } from '../lib/stats.js'

// Minimal shape of the (untyped, ESM-only) bittorrent-dht client.
export interface Peer {
  host: string
  port: number
}
export interface BtDht {
  listen(port: number, host: string, cb?: () => void): void
  address(): { address: string; port: number }
  lookup(infoHash: Buffer, cb: (err: Error | null, visited: number) => void): () => void
  once(event: 'ready' | 'error', fn: (err?: Error) => void): void
  on(event: 'error' | 'warning', fn: (err: Error) => void): void
  destroy(cb?: () => void): void
}
export interface BtDhtOptions {
  bootstrap: false | Peer[]
  /** Ed25519 verification for BEP 44 mutable records: (signature, message, publicKey). */
  verify?: (sig: Uint8Array, msg: Uint8Array, pk: Uint8Array) => boolean
}
export type BtDhtCtor = new (opts: BtDhtOptions) => BtDht

// A non-literal specifier keeps tsc from looking for type declarations the package lacks.
export const BITTORRENT_DHT: string = 'bittorrent-dht'

const PER_LOOKUP_TIMEOUT_MS = 20_000
const PER_NODE_BOOTSTRAP_TIMEOUT_MS = 30_000
const EXTRA_BOOTSTRAP = 2 // besides node 0, each node also bootstraps to this many random earlier nodes

/** Starts `nodes` bittorrent-dht nodes on 127.0.0.1, one after another (see benchBittorrentDht). */
export async function startBittorrentNetwork(
  DHT: BtDhtCtor,
  nodes: number,
  rng: Rng,
  dhts: BtDht[],
  extra: Omit<BtDhtOptions, 'bootstrap'> = {}
): Promise<void> {
  const addrs: Peer[] = []
  // Sequential, like hyperdht's testnet: each node joins a network that is already
  // bootstrapped. Node 0 gets bootstrap:false (never the public routers); every other
  // node gets an explicit loopback list, so the public default is never used.
  for (let i = 0; i < nodes; i++) {
    const bootstrap: false | Peer[] = i === 0 ? false : [addrs[0]]
    if (bootstrap) for (let j = 0; j < EXTRA_BOOTSTRAP && i > 1; j++) bootstrap.push(addrs[1 + rng.int(i - 1)])
    const dht = new DHT({ ...extra, bootstrap })
    dhts.push(dht)
    dht.on('error', (err) => process.stderr.write(`bittorrent-dht node ${i}: ${err.message}\n`))
    dht.on('warning', () => {}) // unanswered queries etc.; expected noise
    // Bind before the bootstrap query goes out (it is sent on the next tick;
    // node:dgram queues sends while the bind is in progress).
    const ready = new Promise<void>((resolve) => dht.once('ready', () => resolve()))
    const listening = new Promise<void>((resolve) => dht.listen(0, '127.0.0.1', resolve))
    await withTimeout(Promise.all([ready, listening]), PER_NODE_BOOTSTRAP_TIMEOUT_MS, `bittorrent-dht node ${i} bootstrap`)
    addrs.push({ host: '127.0.0.1', port: dht.address().port })
  }
}

/** Destroys every node, bounded in time. */
export function destroyBittorrentNetwork(dhts: BtDht[]): Promise<unknown> {
  return withTimeout(
    Promise.all(dhts.map((d) => new Promise<void>((resolve) => d.destroy(() => resolve())))),
    60_000,
    'bittorrent-dht destroy'
  )
}

export async function benchBittorrentDht(nodes: number, lookups: number, seed: number): Promise<LookupFigures> {
  // Load the library before the RSS baseline.
  const { default: DHT } = (await import(BITTORRENT_DHT)) as { default: BtDhtCtor }
  const counter = datagramCounter()
  const rng = createRng(seed)
  const dhts: BtDht[] = []

  const baseline = await settledMemory()
  const t0 = performance.now()
  try {
    await startBittorrentNetwork(DHT, nodes, rng, dhts)
    const setupMs = performance.now() - t0
    const rss = await settledMemory()

    const run = await timeLookups(lookups, PER_LOOKUP_TIMEOUT_MS, (_i, signal) => {
      const dht = dhts[rng.int(dhts.length)]
      return new Promise<boolean>((resolve, reject) => {
        // `visited` = number of nodes that answered the get_peers walk.
        const abort = dht.lookup(rng.bytes(20), (err, visited) => (err ? reject(err) : resolve(visited >= 1)))
        signal.addEventListener('abort', abort, { once: true })
      })
    })
    assertLoopbackOnly(counter)

    return toFigures('bittorrent-dht', nodes, run, { baseline, withNodes: rss }, setupMs)
  } finally {
    await destroyBittorrentNetwork(dhts)
  }
}
