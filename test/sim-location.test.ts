// Object location in the simulator: Tapestry's pointers against the DHT's provider records, on
// the same network model, judged by the link model's RTTs, and replayed by seed.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Simulation, type SimOptions } from '../src/sim/simulation.js'

const SEED = process.env.WEFT_SEED ?? 'sim-location-1'
const where = (what: string) => `${what} (WEFT_SEED=${SEED})`

async function located(o: Partial<SimOptions>) {
  const sim = new Simulation({ seed: SEED, latency: 'geo', nodes: 800, lookups: 300, build: 'oracle', objects: 40, servers: 3, ...o })
  try {
    await sim.build()
    const r = await sim.measure()
    assert.ok(r.location, where('no location report'))
    return r.location
  } finally {
    sim.close()
  }
}

test(`Tapestry finds a server of every object, nearer than the DHT's first provider (seed ${SEED})`, { timeout: 120_000 }, async () => {
  const tapestry = await located({ topology: 'tapestry' })
  const dht = await located({ topology: 'kademlia' })
  assert.equal(tapestry.via, 'tapestry pointers')
  assert.equal(dht.via, 'dht providers')
  for (const l of [tapestry, dht]) {
    assert.equal(l.publishSuccessRate, 1, where(`${l.via}: ${l.publishSuccessRate} of publishes reached the root / stored`))
    assert.equal(l.successRate, 1, where(`${l.via}: found a live server in ${l.successRate} of queries`))
    assert.ok(l.stretch.cdf[0] >= 1, where(`${l.via}: a stretch below 1 (${l.stretch.cdf[0]}): the nearest server was misjudged`))
    assert.ok(l.stretch.cdf.every((x, i) => i === 0 || x >= l.stretch.cdf[i - 1]), where(`${l.via}: stretch percentiles out of order`))
  }
  // Routes toward the root are about log_16 N long; the first pointer is met on the way.
  assert.ok(tapestry.hops && tapestry.hops.mean > 0 && tapestry.hops.mean <= Math.log2(800) / 4 + 0.5, where(`locate hops ${tapestry.hops?.mean}`))
  // A query meets pointers left near it first; the DHT's client can only take whichever provider comes first.
  assert.ok(tapestry.stretch.mean < dht.stretch.mean, where(`Tapestry's stretch ${tapestry.stretch.mean} is not below the DHT's ${dht.stretch.mean}`))
  assert.ok(tapestry.latencyMs.p50 < dht.latencyMs.p50, where(`Tapestry took ${tapestry.latencyMs.p50} ms (p50) to find a server, the DHT ${dht.latencyMs.p50} ms`))
})

test(`the same seed gives the same location report (seed ${SEED})`, { timeout: 120_000 }, async () => {
  const o = { topology: 'tapestry', nodes: 300, lookups: 100, objects: 20, build: 'joins', churnMedianMs: 1_800_000, holdMs: 600_000 } as const
  const a = JSON.stringify(await located(o)), b = JSON.stringify(await located(o))
  assert.equal(a, b)
})

test('bad object-location options are refused with a code', () => {
  for (const o of [{ objects: -1 }, { objects: 1.5 }, { servers: 0 }, { servers: 65 }]) {
    assert.throws(() => new Simulation({ nodes: 10, ...o }), (e: Error & { code?: string }) => e.code === 'ERR_BAD_ARGUMENT', JSON.stringify(o))
  }
})
