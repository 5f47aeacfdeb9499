// hyperdht put/get figures on its local testnet (hyperdht/testnet, every node on 127.0.0.1):
// immutablePut/immutableGet, and mutablePut/mutableGet with a DHT.keyPair(seed) per record, seq 1.
import { createRequire } from 'node:module'
import { bytesEqual, MUTABLE_SEQ, planPuts, runDhtPhases, type DhtAdapter, type DhtFigures } from '../lib/dht.js'
import { assertLoopbackOnly, datagramCounter, withTimeout } from '../lib/measure.js'
import { createRng } from '../lib/stats.js'

// Minimal shapes of the (untyped, CommonJS) hyperdht objects we touch.
interface KeyPair {
  publicKey: Buffer
  secretKey: Buffer
}
interface HyperDHTNode {
  immutablePut(value: Buffer): Promise<{ hash: Buffer; closestNodes: unknown[] }>
  immutableGet(hash: Buffer): Promise<{ value: Buffer } | null>
  mutablePut(keyPair: KeyPair, value: Buffer, opts: { seq: number }): Promise<{ publicKey: Buffer; closestNodes: unknown[]; seq: number }>
  mutableGet(publicKey: Buffer, opts?: { seq?: number; latest?: boolean }): Promise<{ value: Buffer; seq: number } | null>
}
interface HyperDHTClass {
  keyPair(seed?: Buffer): KeyPair
  hash(data: Buffer): Buffer
}
interface Testnet {
  nodes: HyperDHTNode[]
  bootstrap: { host: string; port: number }[]
  destroy(): Promise<void>
}
type CreateTestnet = (size: number, opts: { host: string }) => Promise<Testnet>

const SETUP_TIMEOUT_MS = 4 * 60_000

export async function benchHyperdhtDht(nodes: number, puts: number, seed: number, progress?: (line: string) => void): Promise<DhtFigures> {
  const require = createRequire(import.meta.url)
  const createTestnet = require('hyperdht/testnet') as CreateTestnet
  const DHT = require('hyperdht') as HyperDHTClass
  const counter = datagramCounter()
  const rng = createRng(seed)
  const plan = planPuts(rng, nodes, puts)
  const t0 = performance.now()
  const testnet = await withTimeout(createTestnet(nodes, { host: '127.0.0.1' }), SETUP_TIMEOUT_MS, 'hyperdht testnet setup')
  const setupMs = performance.now() - t0
  try {
    for (const b of testnet.bootstrap) if (b.host !== '127.0.0.1') throw new Error(`unexpected bootstrap ${b.host}:${b.port}`)
    const node = (i: number) => testnet.nodes[i]

    const adapter: DhtAdapter<Buffer, KeyPair> = {
      writer: (s) => DHT.keyPair(s),
      immutableKey: (value) => DHT.hash(value),
      mutableKey: (kp) => DHT.hash(kp.publicKey),
      async putImmutable(by, value, key) {
        const r = await node(by).immutablePut(value)
        if (!r.hash.equals(key)) throw new Error('immutablePut returned another hash')
        return r.closestNodes.length
      },
      async getImmutable(from, key, value) {
        // immutableGet checks that the value hashes to the key, and stops at the first such reply.
        const r = await node(from).immutableGet(key)
        return r ? { found: true, verified: bytesEqual(r.value, value) } : { found: false, verified: false }
      },
      async putMutable(by, kp, value) {
        const r = await node(by).mutablePut(kp, value, { seq: MUTABLE_SEQ })
        return r.closestNodes.length
      },
      async getMutable(from, kp, _key, value) {
        // Default options: the newest seq the whole query finds (latest: true), signature checked.
        const r = await node(from).mutableGet(kp.publicKey)
        return r ? { found: true, verified: r.seq === MUTABLE_SEQ && bytesEqual(r.value, value) } : { found: false, verified: false }
      }
    }
    const figures = await runDhtPhases('hyperdht', adapter, plan, progress)
    assertLoopbackOnly(counter)
    return { impl: 'hyperdht', nodes, puts, setupMs, ...figures }
  } finally {
    await withTimeout(testnet.destroy(), 60_000, 'hyperdht testnet destroy')
  }
}
