// hyperdht lookup figures on a local testnet (hyperdht/testnet), loopback only.
import { createRequire } from 'node:module'
import {
  assertLoopbackOnly,
  datagramCounter,
  settledMemory,
  timeLookups,
  toFigures,
  withTimeout,
  type LookupFigures
} from '../lib/measure.js'
import { createRng } from '../lib/stats.js'

// Minimal shapes of the (untyped, CommonJS) hyperdht / dht-rpc objects we touch.
interface Query {
  finished(): Promise<void>
  destroy(err?: Error): void
  closestReplies: unknown[]
}
interface HyperDHTNode {
  findNode(target: Buffer): Query
}
interface Testnet {
  nodes: HyperDHTNode[]
  bootstrap: { host: string; port: number }[]
  destroy(): Promise<void>
}
type CreateTestnet = (size: number, opts: { host: string }) => Promise<Testnet>

const PER_LOOKUP_TIMEOUT_MS = 20_000
const SETUP_TIMEOUT_MS = 4 * 60_000

export async function benchHyperdht(nodes: number, lookups: number, seed: number): Promise<LookupFigures> {
  const require = createRequire(import.meta.url)
  // Load the library (and its native addons) before the RSS baseline.
  const createTestnet = require('hyperdht/testnet') as CreateTestnet
  const counter = datagramCounter()
  const rng = createRng(seed)

  const baseline = await settledMemory()
  const t0 = performance.now()
  // The testnet helper binds every node to 127.0.0.1, gives the first node an empty
  // bootstrap list (never the public one) and bootstraps the rest, one by one, to it.
  const testnet = await withTimeout(createTestnet(nodes, { host: '127.0.0.1' }), SETUP_TIMEOUT_MS, 'hyperdht testnet setup')
  const setupMs = performance.now() - t0
  try {
    for (const b of testnet.bootstrap) {
      if (b.host !== '127.0.0.1') throw new Error(`unexpected bootstrap ${b.host}:${b.port}`)
    }
    const rss = await settledMemory()

    const run = await timeLookups(lookups, PER_LOOKUP_TIMEOUT_MS, async (_i, signal) => {
      const node = testnet.nodes[rng.int(testnet.nodes.length)]
      const q = node.findNode(rng.bytes(32))
      signal.addEventListener('abort', () => q.destroy(), { once: true })
      await q.finished() // drains the stream; resolves when the query has converged
      return q.closestReplies.length >= 1
    })
    assertLoopbackOnly(counter)

    return toFigures('hyperdht', nodes, run, { baseline, withNodes: rss }, setupMs)
  } finally {
    await withTimeout(testnet.destroy(), 60_000, 'hyperdht testnet destroy')
  }
}
