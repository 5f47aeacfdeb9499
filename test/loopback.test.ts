// 200 real nodes on 127.0.0.1 (UDP): lookups for random ids from random nodes must return the
// true 20 closest live nodes in at least 99.9% of cases.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createTestnet } from '../src/node/testnet.js'
import { idEquals } from '../src/identity/node-id.js'
import { SeededRandom } from '../src/runtime/prng.js'

const SEED = process.env.WEFT_SEED ?? 'loopback-1'

test(`200 nodes on loopback: 1,000 lookups return the true 20 closest (seed ${SEED})`, { timeout: 240_000 }, async () => {
  const net = await createTestnet({ nodes: 200, seed: SEED })
  try {
    const rnd = new SeededRandom(SEED)
    const lookups = 1000
    const hops = new Map<number, number>()
    let exact = 0
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < lookups) {
        next++
        const from = net.nodes[rnd.u32() % net.nodes.length]
        const target = rnd.bytes(32)
        const r = await from.lookup(target)
        const want = net.oracle(target, 20)
        if (r.closest.length === 20 && r.closest.every((c, j) => idEquals(c.id, want[j]))) exact++
        hops.set(r.hops, (hops.get(r.hops) ?? 0) + 1)
      }
    }
    await Promise.all(Array.from({ length: 8 }, worker))
    const dist = [...hops.entries()].sort((a, b) => a[0] - b[0]).map(([h, n]) => `${h} hops: ${n}`).join(', ')
    console.log(`exact ${exact}/${lookups}; hop distribution: ${dist}`)
    assert.ok(exact >= 999, `only ${exact}/${lookups} lookups returned the true 20 closest (seed ${SEED})`)
  } finally {
    await net.close()
  }
})
