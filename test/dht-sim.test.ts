// The DHT under a sudden loss of a quarter of the network, in the deterministic world: after one
// re-replication round, every value is still found.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryWorld } from '../src/runtime/memory.js'
import { createTestnet } from '../src/node/testnet.js'
import { SeededRandom } from '../src/runtime/prng.js'

const SEED = process.env.WEFT_SEED ?? 'dht-sim-1'

test(`kill 25% of 200 nodes at once: after one re-replication round, 100% of 300 values are found (seed ${SEED})`, { timeout: 300_000 }, async () => {
  const world = new MemoryWorld(SEED)
  const net = await createTestnet({ nodes: 200, seed: SEED, world, host: '100.64.0.1' })
  const rnd = new SeededRandom(`${SEED}:dht`)
  const keys: { key: string; value: string }[] = []
  for (let i = 0; i < 300; i++) {
    const value = `value ${i} ${rnd.u32()}`
    const r = await net.wait(net.nodes[rnd.u32() % 200].dht.put(Buffer.from(value)))
    keys.push({ key: r.key, value })
  }
  const dead = new Set<number>()
  while (dead.size < 50) dead.add(rnd.u32() % 200)
  for (const i of dead) await net.nodes[i].stop() // no goodbye
  const live = net.nodes.filter((_, i) => !dead.has(i))
  await world.run(world.now() + 65 * 60_000) // every node's first replication falls in its first hour
  let found = 0
  for (const { key, value } of keys) {
    const from = live[rnd.u32() % live.length]
    const got = await net.wait(from.dht.get(key).catch(() => null))
    if (got && Buffer.from(got).toString() === value) found++
  }
  await net.close()
  assert.equal(found, 300, `only ${found}/300 values found after killing 50 nodes (seed ${SEED})`)
})
