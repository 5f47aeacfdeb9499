// The simulator: the real Kademlia code on simulated networks, judged against the oracle, and
// replayed by seed. Scenarios that real sockets cannot reach: thousands of nodes, churn, loss,
// NAT, partitions and adversaries.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import fc from 'fast-check'
import { check } from './helpers/property.js'
import { compareDistance, idEquals } from '../src/identity/node-id.js'
import { ContactPool } from '../src/overlay/contact-pool.js'
import { Oracle } from '../src/sim/oracle.js'
import { Simulation, type SimOptions } from '../src/sim/simulation.js'
import { runSimulations } from '../src/sim/run.js'

const SEED = process.env.WEFT_SEED ?? 'sim-1'
const CLI = resolve(import.meta.dirname, '../src/cli/main.js')

async function simulate(o: Partial<SimOptions>) {
  const sim = new Simulation({ seed: SEED, latency: 'uniform', ...o })
  await sim.build()
  const r = await sim.measure()
  return { sim, r }
}

test('the oracle finds the true closest live nodes and splits id ranges by bit', () => {
  const id = fc.uint8Array({ minLength: 32, maxLength: 32 })
  check('oracle', fc.tuple(fc.array(id, { minLength: 1, maxLength: 200 }), id, fc.integer({ min: 1, max: 30 }), fc.integer({ min: 0, max: 12 })), ([ids, target, n, bits]) => {
    const pool = new ContactPool()
    const oracle = new Oracle(pool)
    const handles = ids.map((x, i) => pool.acquire(x, `10.0.${i >> 8}.${i & 255}:1`))
    oracle.addAll(handles.slice(0, handles.length >> 1))
    for (const h of handles.slice(handles.length >> 1)) oracle.add(h)
    handles.forEach((h, i) => { if (i % 3 === 0) oracle.setAlive(h, false) })
    const live = handles.filter((_, i) => i % 3 !== 0)
    const want = live.map((h) => pool.id(h)).sort((a, b) => compareDistance(target, a, b)).slice(0, n)
    const got = oracle.closest(target, n).map((h) => pool.id(h))
    assert.equal(got.length, want.length)
    got.forEach((g, i) => assert.ok(idEquals(g, want[i]) || compareDistance(target, g, want[i]) === 0))
    // Walking down the bits of target by split() leaves exactly the nodes sharing that prefix.
    let lo = 0, hi = oracle.size
    for (let b = 0; b < bits; b++) {
      const mid = oracle.split(lo, hi, b)
      ;[lo, hi] = target[b >> 3] & (0x80 >> (b & 7)) ? [mid, hi] : [lo, mid]
    }
    const shares = (x: Uint8Array) => { for (let b = 0; b < bits; b++) if (((x[b >> 3] ^ target[b >> 3]) & (0x80 >> (b & 7))) !== 0) return false; return true }
    assert.equal(hi - lo, ids.filter(shares).length)
    for (let i = lo; i < hi; i++) assert.ok(shares(pool.id(oracle.at(i))))
  }, 100)
})

test(`a network built by real joins finds the true closest node for every lookup (seed ${SEED})`, async () => {
  const { r } = await simulate({ nodes: 1000, lookups: 300, build: 'joins' })
  assert.equal(r.successRate, 1, `success ${r.successRate} (seed ${SEED})`)
  assert.ok(r.recall >= 0.99, `recall ${r.recall} (seed ${SEED})`)
  assert.ok(r.hops.mean >= 1 && r.hops.mean <= 4, `mean hops ${r.hops.mean} (seed ${SEED})`)
  assert.ok(r.tableSize.max <= 20 * 256)
})

test(`an oracle-filled network behaves like a joined one: tables at most k a bucket, lookups exact (seed ${SEED})`, async () => {
  const { sim, r } = await simulate({ nodes: 5000, lookups: 300, build: 'oracle', latency: 'geo' })
  assert.equal(r.successRate, 1, `success ${r.successRate} (seed ${SEED})`)
  // A filled bucket b holds min(k, nodes in its range): about k * (log2(N / k) + 1) contacts in all.
  assert.ok(r.tableSize.mean > 20 * 7 && r.tableSize.mean < 20 * 11, `table size ${r.tableSize.mean}`)
  assert.ok(Math.abs(r.hops.mean - r.theoreticalHops) / r.theoreticalHops < 0.25, `hops ${r.hops.mean} vs theory ${r.theoreticalHops}`)
  sim.close()
})

test(`the same seed gives byte-identical simulated results; another seed does not (seed ${SEED})`, async () => {
  const run = async (seed: string) => {
    const [rep] = await runSimulations({ sizes: [300], topology: 'kademlia', lookups: 100, seed, latency: 'geo', loss: 0.01, churnMedianMs: 600_000, churnDistribution: 'weibull', adversaries: 0.05, adversaryMode: 'drop', nat: 0.1, build: 'joins', warmupMs: 120_000, concurrency: 8, joinConcurrency: 8, k: 20, alpha: 3 })
    return JSON.stringify(rep.simulated)
  }
  const a = await run(SEED), b = await run(SEED), c = await run(`${SEED}:other`)
  assert.equal(a, b)
  assert.notEqual(a, c)
})

test(`under churn (median session 10 min) with 2% loss, lookups still find the closest live node (seed ${SEED})`, async () => {
  const { sim, r } = await simulate({ nodes: 500, lookups: 300, build: 'joins', churnMedianMs: 600_000, loss: 0.02, warmupMs: 1_200_000 })
  assert.ok(sim.departures > 500, `only ${sim.departures} departures in 20 virtual minutes`)
  assert.ok(r.successRate >= 0.97, `success ${r.successRate} under churn (seed ${SEED})`)
})

test(`nodes behind NAT stay out of tables but can still look up (seed ${SEED})`, async () => {
  const { sim, r } = await simulate({ nodes: 600, lookups: 200, build: 'joins', nat: 0.3 })
  assert.equal(r.successRate, 1, `success ${r.successRate} (seed ${SEED})`)
  assert.ok(sim.world.stats.blockedByNat >= 0)
  // Every contact in every table is reachable: the simulated NAT drops what nobody asked for.
  const natted = sim.nattedAddresses()
  assert.ok(natted.size > 120, `${natted.size} nodes behind NAT`)
  for (const entries of sim.tables()) for (const e of entries) assert.ok(!natted.has(e.address), `${e.address} is behind NAT but listed`)
})

test(`lookups route around adversaries that drop, misroute or collude (seed ${SEED})`, async () => {
  for (const adversaryMode of ['drop', 'misroute', 'collude'] as const) {
    const { r } = await simulate({ nodes: 600, lookups: 200, build: 'joins', adversaries: 0.2, adversaryMode })
    assert.ok(r.successRate >= 0.95, `${adversaryMode}: success ${r.successRate} (seed ${SEED})`)
  }
})

test(`a partition cuts lookups across it; healing restores them (seed ${SEED})`, async () => {
  const sim = new Simulation({ seed: SEED, latency: 'uniform', nodes: 600, lookups: 100, build: 'oracle' })
  await sim.build()
  sim.world.partition = (i) => i % 2
  const cut = await sim.measure()
  assert.ok(sim.world.stats.partitioned > 0)
  assert.ok(cut.successRate < 0.9, `success ${cut.successRate} across a partition`)
  sim.world.partition = null
  const healed = await sim.measure()
  assert.ok(healed.successRate >= 0.99, `success ${healed.successRate} after healing`)
})

test('weft sim writes the same report twice for one seed, and refuses bad arguments with one line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-sim-'))
  try {
    const run = (out: string) => spawnSync(process.execPath, [CLI, 'sim', '--nodes', '300', '--lookups', '50', '--seed', SEED, '--out', out, '--plot', join(dir, 'p.svg')], { encoding: 'utf8', timeout: 120_000 })
    const a = run(join(dir, 'a.json')), b = run(join(dir, 'b.json'))
    assert.equal(a.status, 0, a.stderr)
    assert.equal(b.status, 0, b.stderr)
    assert.equal(readFileSync(join(dir, 'a.json'), 'utf8'), readFileSync(join(dir, 'b.json'), 'utf8'))
    assert.match(a.stdout, /100\.00 %/)
    assert.match(readFileSync(join(dir, 'p.svg'), 'utf8'), /^<svg[\s\S]*<\/svg>\s*$/)
    assert.ok(JSON.parse(readFileSync(join(dir, 'a.json.machine.json'), 'utf8'))[0].wallMs > 0)
    for (const bad of [['--nodes', '1'], ['--loss', '1.5'], ['--churn', 'often'], ['--topology', 'nope']]) {
      const r = spawnSync(process.execPath, [CLI, 'sim', ...bad], { encoding: 'utf8', timeout: 30_000 })
      assert.notEqual(r.status, 0, `${bad.join(' ')} was accepted`)
      assert.ok(r.stderr.trim().split('\n').length <= 2 && /error/i.test(r.stderr), `${bad.join(' ')}: ${r.stderr}`)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
