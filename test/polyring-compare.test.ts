// The polyring in `weft sim --compare` (issue 5, must-show 6): a balanced StaticPolyring beside
// the uniring topologies, with hops against the exact expectation and the 2 × depth − 1 bound,
// table sizes and one broadcast's cost on every topology (the polyring's seed rules; flooding
// over the uniring tables). WEFT_SEED replays a run; every failure names it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { StaticPolyring } from '../src/overlay/polyring/sim.js'
import { balancedShape, expectedPolyringHops, hopBound, runPolyring, shapePeers } from '../src/sim/polyring-run.js'
import { floodCost } from '../src/sim/broadcast-cost.js'
import type { SimResult } from '../src/sim/report.js'
import { Simulation } from '../src/sim/simulation.js'

const SEED = process.env.WEFT_SEED ?? 'polyring-compare-1'
const CLI = resolve(import.meta.dirname, '../src/cli/main.js')
const why = (what: string) => `${what} (WEFT_SEED=${SEED})`

test('the balanced shape holds exactly N peers where three levels fit, each level near the cube root', () => {
  for (const n of [500, 1000, 10_000, 100_000, 1_000_000]) {
    const shape = balancedShape(n)
    assert.equal(shape.length, 3, `${n}: ${shape.join('x')}`)
    assert.equal(shapePeers(shape), n, `${n}: ${shape.join('x')} holds ${shapePeers(shape)}`)
    for (const s of shape) assert.ok(s >= Math.cbrt(n) / 2 && s <= 2 * Math.cbrt(n), `${n}: ${shape.join('x')} is not balanced`)
  }
  assert.deepEqual(balancedShape(1000), [10, 9, 10])
  assert.deepEqual(balancedShape(5), [5]) // too small for three levels: one ring
  // No exact fit (a prime): the nearest total.
  const near = balancedShape(10_007)
  assert.ok(Math.abs(shapePeers(near) - 10_007) <= 50, near.join('x'))
})

test('the expected hop count is the exact mean over every pair of peers', () => {
  for (const shape of [[3, 2, 3], [4, 3], [2, 3, 2, 2], [5]]) {
    const ring = new StaticPolyring({ shape })
    let sum = 0
    for (let a = 0; a < ring.peers; a++) {
      for (let b = 0; b < ring.peers; b++) {
        const r = ring.route(a, ring.guidOf(b))
        assert.ok(r.delivered && r.at === b)
        assert.ok(r.hops <= hopBound(shape.length))
        sum += r.hops
      }
    }
    const exact = sum / ring.peers ** 2
    assert.ok(Math.abs(expectedPolyringHops(shape) - exact) < 1e-9, `${shape.join('x')}: model ${expectedPolyringHops(shape)}, all pairs ${exact}`)
  }
})

test(`a polyring run: every routed message delivered within the bound, broadcast N − 1 messages to all (seed ${SEED})`, async () => {
  const [r] = await runPolyring({ sizes: [2000], lookups: 3000, seed: SEED })
  const s = r.simulated
  assert.equal(s.nodes, 2000)
  assert.equal(s.successRate, 1, why(`${s.lookups - s.succeeded} routed messages not delivered`))
  assert.equal(s.polyring!.wrong + s.polyring!.lost + s.polyring!.overBound, 0, why(JSON.stringify(s.polyring)))
  assert.ok(s.hops.max <= 2 * s.polyring!.depth - 1, why(`max hops ${s.hops.max}`))
  assert.ok(Math.abs(s.hops.mean - s.theoreticalHops) < 0.1, why(`mean hops ${s.hops.mean}, expected ${s.theoreticalHops}`))
  assert.equal(s.messagesPerLookup, s.hops.mean, why('recursive routing: one message per hop'))
  // Every peer: its parent (all but the centre), its siblings and its children.
  const [a, b, c] = s.polyring!.shape
  assert.equal(s.tableSize.mean, Number(((a * (a - 1 + b) + a * b * (1 + b - 1 + c) + a * b * c * (1 + c - 1)) / s.nodes).toFixed(3)))
  const bc = s.broadcast!
  assert.equal(bc.reached, s.nodes, why(`broadcast reached ${bc.reached}/${s.nodes}`))
  assert.equal(bc.messages, s.nodes - 1, why(`broadcast sent ${bc.messages}`))
  assert.equal(bc.duplicates, 0)
  assert.ok(bc.completionMs > 0 && bc.medianMs <= bc.completionMs)
})

test(`flooding over a uniring's tables: reaches every node; messages are the reached nodes' table sizes less each one's sender (seed ${SEED})`, async () => {
  const sim = new Simulation({ seed: SEED, latency: 'uniform', nodes: 400, lookups: 1, build: 'oracle', topology: 'chord' })
  try {
    await sim.build()
    const f = floodCost(sim, SEED)!
    let sum = 0
    for (let i = 0; i < sim.nodeCount; i++) sum += new Set(sim.contactIndices(i)!.filter((j) => j !== i)).size // one copy per distinct contact
    assert.equal(f.reached, 400, why(`reached ${f.reached}`))
    assert.equal(f.reachedShare, 1)
    assert.ok(f.messages <= sum && f.messages >= sum - 399, why(`${f.messages} messages, tables hold ${sum}`))
    assert.equal(f.duplicates, f.messages - 399)
    // Uniform links: 30 ms one way, so the last node is some whole number of hops of at least 31 ms away.
    assert.ok(f.completionMs >= 31 && f.medianMs <= f.completionMs, why(`completion ${f.completionMs} ms`))
    assert.deepEqual(floodCost(sim, SEED), f, 'the same seed floods the same way')
  } finally {
    sim.close()
  }
})

test(`weft sim --compare with the polyring: one row each, broadcast on every row, the same JSON twice (seed ${SEED})`, { timeout: 180_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-polycmp-'))
  try {
    const run = (out: string, seed = SEED) => spawnSync(process.execPath, [CLI, 'sim', '--compare', 'kademlia,chord,pastry,polyring', '--nodes', '500', '--lookups', '200', '--build', 'oracle', '--seed', seed, '--out', out, '--plot', join(dir, 'p.svg')], { encoding: 'utf8', timeout: 120_000 })
    const a = run(join(dir, 'a.json')), b = run(join(dir, 'b.json'))
    assert.equal(a.status, 0, a.stderr)
    assert.equal(b.status, 0, b.stderr)
    const text = readFileSync(join(dir, 'a.json'), 'utf8')
    assert.equal(text, readFileSync(join(dir, 'b.json'), 'utf8'), why('two runs with one seed differ'))
    const rows = JSON.parse(text) as SimResult[]
    assert.deepEqual(rows.map((r) => r.topology), ['kademlia', 'chord', 'pastry', 'polyring'])
    for (const r of rows) {
      assert.equal(r.nodes, 500)
      assert.equal(r.successRate, 1, why(`${r.topology}: success ${r.successRate}`))
      assert.ok(r.broadcast, why(`${r.topology}: no broadcast figures`))
      assert.ok(r.broadcast.reachedShare > 0 && r.broadcast.reachedShare <= 1 && r.broadcast.reached <= r.broadcast.nodes, why(`${r.topology}: ${JSON.stringify(r.broadcast)}`))
      assert.ok(r.broadcast.completionMs > 0)
    }
    const poly = rows[3]
    assert.ok(poly.hops.max <= 2 * poly.polyring!.depth - 1)
    assert.equal(poly.broadcast!.messages, 499)
    assert.equal(poly.broadcast!.reached, 500)
    for (const r of rows.slice(0, 3)) {
      assert.equal(r.broadcast!.reachedShare, 1, why(`${r.topology}: flooding reached ${r.broadcast!.reached}/${r.broadcast!.nodes}`))
      assert.ok(r.broadcast!.messages >= r.tableSize.mean * 500 - 500, why(`${r.topology}: a flood sends about a table per node`))
    }
    assert.match(a.stdout, /bcast msgs\/N/)
    assert.ok(a.stdout.includes(`polyring 500: shape ${poly.polyring!.shape.join('x')} (depth 3)`), a.stdout)
    assert.match(readFileSync(join(dir, 'p.svg'), 'utf8'), /^<svg[\s\S]*polyring[\s\S]*<\/svg>\s*$/)
    const c = run(join(dir, 'c.json'), `${SEED}:other`)
    assert.equal(c.status, 0, c.stderr)
    assert.notEqual(readFileSync(join(dir, 'c.json'), 'utf8'), text, 'another seed gave the same results')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('weft sim refuses polyring runs with options it does not model, and bad shapes, with one line', () => {
  for (const bad of [['--compare', 'kademlia,polyring', '--loss', '0.1'], ['--topology', 'polyring', '--churn', '1h'], ['--topology', 'polyring', '--shape', '0x3'], ['--topology', 'kademlia', '--shape', '3x3']]) {
    const r = spawnSync(process.execPath, [CLI, 'sim', '--nodes', '100', ...bad], { encoding: 'utf8', timeout: 30_000 })
    assert.notEqual(r.status, 0, `${bad.join(' ')} was accepted`)
    assert.ok(r.stderr.trim().split("\n").length <= 2 && /error|ERR_BAD_ARGUMENT/i.test(r.stderr), `${bad.join(" ")}: ${r.stderr}`)
  }
  const ok = spawnSync(process.execPath, [CLI, 'sim', '--topology', 'polyring', '--shape', '4x3x2', '--lookups', '100'], { encoding: 'utf8', timeout: 30_000 })
  assert.equal(ok.status, 0, ok.stderr)
  assert.match(ok.stdout, /polyring 40: shape 4x3x2/)
})
