// One suite for every topology in the registry: the same lookups, DHT, joins, leaves and crashes
// must work on each. Simulated networks (deterministic by seed) and one real loopback network.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { idEquals, idToHex, type NodeId } from '../src/identity/node-id.js'
import type { Node } from '../src/node/node.js'
import { createTestnet, type Testnet } from '../src/node/testnet.js'
import { topologyNames, type TopologyName } from '../src/overlay/registry.js'
import { MemoryWorld } from '../src/runtime/memory.js'
import { SeededRandom } from '../src/runtime/prng.js'

const SEED = process.env.WEFT_SEED ?? 'topologies-1'
const where = (t: string, what: string) => `${t}: ${what} (WEFT_SEED=${SEED})`

async function simulated(topology: TopologyName, nodes: number, label: string): Promise<{ net: Testnet; world: MemoryWorld }> {
  const world = new MemoryWorld(`${SEED}:${topology}:${label}`)
  const net = await createTestnet({ nodes, seed: `${SEED}:${label}`, world, host: '100.64.0.1', node: { topology } })
  return { net, world }
}

/** Lookups from random live nodes: how many found the true responsible node first, and the true 10 among the first 10. */
async function lookups(net: Testnet, live: Node[], count: number, rnd: SeededRandom) {
  let first = 0, ten = 0
  const misses: string[] = []
  for (let i = 0; i < count; i++) {
    const from = live[rnd.u32() % live.length]
    const target = rnd.bytes(32)
    const r = await net.wait(from.lookup(target))
    const want = net.oracle(target, 10, live)
    const got = r.closest.map((c) => c.id)
    if (got.length > 0 && idEquals(got[0], want[0])) first++
    else misses.push(idToHex(target).slice(0, 12))
    if (want.every((id) => got.slice(0, 10).some((g) => idEquals(g, id)))) ten++
  }
  return { first, ten, misses }
}

for (const topology of topologyNames) {
  test(`${topology}: in a 150-node network built by joins, lookups find the responsible nodes (seed ${SEED})`, { timeout: 120_000 }, async () => {
    const { net, world } = await simulated(topology, 150, 'lookups')
    try {
      await world.run(world.now() + 60_000) // a minute of upkeep after the joins
      const r = await lookups(net, net.nodes, 200, new SeededRandom(`${SEED}:${topology}:lookups`))
      assert.equal(r.first, 200, where(topology, `the responsible node was not first in ${200 - r.first}/200 lookups: ${r.misses.slice(0, 5).join(' ')}`))
      assert.ok(r.ten >= 196, where(topology, `the true 10 were among the first 10 in only ${r.ten}/200 lookups`))
    } finally {
      await net.close()
    }
  })

  test(`${topology}: DHT values put anywhere are found from anywhere (seed ${SEED})`, { timeout: 120_000 }, async () => {
    const { net } = await simulated(topology, 100, 'dht')
    try {
      const rnd = new SeededRandom(`${SEED}:${topology}:dht`)
      const stored: { key: string; value: string }[] = []
      for (let i = 0; i < 60; i++) {
        const value = `${topology} value ${i}`
        const r = await net.wait(net.nodes[rnd.u32() % 100].dht.put(Buffer.from(value)))
        assert.ok(r.stored >= 10, where(topology, `put ${i} stored on only ${r.stored} nodes`))
        stored.push({ key: r.key, value })
      }
      let found = 0
      for (const { key, value } of stored) {
        const got = await net.wait(net.nodes[rnd.u32() % 100].dht.get(key).catch(() => null))
        if (got && Buffer.from(got).toString() === value) found++
      }
      assert.equal(found, stored.length, where(topology, `${stored.length - found}/${stored.length} values not found`))
    } finally {
      await net.close()
    }
  })

  test(`${topology}: after 10% leave gracefully, lookups at once find the live responsible nodes (seed ${SEED})`, { timeout: 120_000 }, async () => {
    const { net, world } = await simulated(topology, 120, 'leave')
    try {
      await world.run(world.now() + 30_000)
      const rnd = new SeededRandom(`${SEED}:${topology}:leave`)
      const leaving = new Set<number>()
      while (leaving.size < 12) leaving.add(1 + (rnd.u32() % 119))
      await net.wait(Promise.all([...leaving].map((i) => net.nodes[i].stop())))
      const live = net.nodes.filter((n) => n.isRunning)
      const r = await lookups(net, live, 100, rnd)
      assert.equal(r.first, 100, where(topology, `the live responsible node was not first in ${100 - r.first}/100 lookups: ${r.misses.slice(0, 5).join(' ')}`))
    } finally {
      await net.close()
    }
  })

  test(`${topology}: half the nodes crash at once; after repair, lookups and stored values are all found (seed ${SEED})`, { timeout: 180_000 }, async () => {
    const { net, world } = await simulated(topology, 120, 'crash')
    try {
      const rnd = new SeededRandom(`${SEED}:${topology}:crash`)
      const keys: { key: string; value: string }[] = []
      for (let i = 0; i < 40; i++) {
        const value = `${topology} survives ${i}`
        keys.push({ key: (await net.wait(net.nodes[rnd.u32() % 120].dht.put(Buffer.from(value)))).key, value })
      }
      const crashed = new Set<number>()
      while (crashed.size < 60) crashed.add(1 + (rnd.u32() % 119)) // the Chord paper's massive failure
      await Promise.all([...crashed].map((i) => net.nodes[i].stop({ leave: false })))
      const live = net.nodes.filter((n) => n.isRunning)
      await world.run(world.now() + 5 * 60_000) // the topology's own repair
      await net.wait(Promise.all(live.map((n) => n.dht.replicate()))) // one re-replication round
      const r = await lookups(net, live, 100, rnd)
      assert.equal(r.first, 100, where(topology, `the live responsible node was not first in ${100 - r.first}/100 lookups: ${r.misses.slice(0, 5).join(' ')}`))
      let found = 0
      for (const { key, value } of keys) {
        const got = await net.wait(live[rnd.u32() % live.length].dht.get(key).catch(() => null))
        if (got && Buffer.from(got).toString() === value) found++
      }
      assert.equal(found, keys.length, where(topology, `${keys.length - found}/${keys.length} values lost after the crash`))
    } finally {
      await net.close()
    }
  })

  test(`${topology}: a real loopback network of 100 nodes stores and finds values across it (seed ${SEED})`, { timeout: 120_000 }, async () => {
    const net = await createTestnet({ nodes: 100, seed: `${SEED}:loopback`, node: { topology }, joinConcurrency: 4 })
    try {
      const rnd = new SeededRandom(`${SEED}:${topology}:loopback`)
      const stored: { key: string; value: string; from: number }[] = []
      for (let i = 0; i < 50; i++) {
        const from = rnd.u32() % 100
        const value = `${topology} over udp ${i}`
        stored.push({ key: (await net.nodes[from].dht.put(Buffer.from(value))).key, value, from })
      }
      let found = 0
      for (const { key, value, from } of stored) {
        const reader = net.nodes[(from + 1 + (rnd.u32() % 99)) % 100] // never the writer
        const got = await reader.dht.get(key).catch(() => null)
        if (got && Buffer.from(got).toString() === value) found++
      }
      assert.equal(found, stored.length, where(topology, `${stored.length - found}/${stored.length} values not found over UDP`))
      const target: NodeId = rnd.bytes(32)
      const r = await net.nodes[0].lookup(target)
      assert.ok(idEquals(r.closest[0].id, net.oracle(target, 1)[0]), where(topology, 'a loopback lookup missed the responsible node'))
    } finally {
      await net.close()
    }
  })
}
