// Weft DHT put/get figures: N real UDP nodes on 127.0.0.1 (src/node/testnet.ts), node.dht.put/get
// for immutable values and putMutable/getMutable (one identity per record, seq 1, no salt).
import { createHash } from 'node:crypto'
import { isWeftError } from '../../src/errors.js'
import { identityFromSeed, type Identity } from '../../src/identity/keys.js'
import { createTestnet, type Testnet } from '../../src/node/testnet.js'
import { mutableKey } from '../../src/services/dht/dht.js'
import { bytesEqual, MUTABLE_SEQ, planPuts, runDhtPhases, type DhtAdapter, type DhtFigures, type GetOutcome } from '../lib/dht.js'
import { assertLoopbackOnly, datagramCounter, withTimeout } from '../lib/measure.js'
import { createRng } from '../lib/stats.js'

const SETUP_TIMEOUT_MS = 4 * 60_000

/** A get that finds nothing is an outcome (not found), not a failure of the run. */
async function notFoundIsMiss(p: Promise<GetOutcome>): Promise<GetOutcome> {
  try {
    return await p
  } catch (err) {
    if (isWeftError(err, 'ERR_NOT_FOUND')) return { found: false, verified: false }
    throw err
  }
}

export async function benchWeftDht(nodes: number, puts: number, seed: number, progress?: (line: string) => void): Promise<DhtFigures> {
  const counter = datagramCounter() // also the loopback guard for the join traffic
  const rng = createRng(seed)
  const plan = planPuts(rng, nodes, puts)
  const t0 = performance.now()
  let net: Testnet | undefined
  try {
    net = await withTimeout(createTestnet({ nodes, seed: String(seed), host: '127.0.0.1' }), SETUP_TIMEOUT_MS, 'weft testnet setup')
    const setupMs = performance.now() - t0
    if (!net.bootstrap.startsWith('127.0.0.1:')) throw new Error(`unexpected bootstrap ${net.bootstrap}`)
    const node = (i: number) => net!.nodes[i].dht

    const adapter: DhtAdapter<string, Identity> = {
      writer: (s) => identityFromSeed(s),
      immutableKey: (value) => createHash('sha256').update(value).digest('hex'),
      mutableKey: (w) => Buffer.from(mutableKey(w.publicKey)).toString('hex'),
      async putImmutable(by, value, key, signal) {
        const r = await node(by).put(value, { signal })
        if (r.key !== key) throw new Error(`put returned key ${r.key}, expected ${key}`)
        return r.stored
      },
      getImmutable: (from, key, value, signal) => notFoundIsMiss(node(from).get(key, { signal }).then((v) => ({ found: true, verified: bytesEqual(v, value) }))),
      async putMutable(by, w, value, key, signal) {
        const r = await node(by).putMutable(w, value, { seq: MUTABLE_SEQ, signal })
        if (r.key !== key) throw new Error(`putMutable returned key ${r.key}, expected ${key}`)
        return r.stored
      },
      getMutable: (from, w, key, value, signal) => notFoundIsMiss(node(from).getMutable(w.publicKey, { signal }).then((r) => ({
        found: true, verified: r.key === key && r.seq === MUTABLE_SEQ && bytesEqual(r.value, value)
      })))
    }
    const figures = await runDhtPhases('weft', adapter, plan, progress)
    assertLoopbackOnly(counter)
    return { impl: 'weft', nodes, puts, setupMs, ...figures }
  } finally {
    if (net) await withTimeout(net.close(), 60_000, 'weft testnet close')
  }
}
