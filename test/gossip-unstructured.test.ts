// Unstructured search (src/gossip/unstructured.ts, unstructured-sim.ts): flooding with a TTL and
// random walks. WEFT_SEED replays a run; every failure names it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { isWeftError } from '../src/errors.js'
import { SeededRandom } from '../src/runtime/prng.js'
import { SeenCache, UnstructuredPeer, UNSTRUCTURED_LIMITS, randomGraph, neighboursOf, type UnstructuredMessage } from '../src/gossip/unstructured.js'
import { UnstructuredNetwork } from '../src/gossip/unstructured-sim.js'

const SEED = process.env.WEFT_SEED ?? 'unstructured-1'
const CLI = resolve(import.meta.dirname, '../src/cli/main.js')

test(`flooding with TTL >= diameter finds an item on one replica every time; each peer processes a query at most once (seed ${SEED})`, () => {
  const net = new UnstructuredNetwork({ nodes: 600, seed: SEED, degree: 5 })
  const diameter = net.eccentricity(600)
  assert.ok(Number.isFinite(diameter) && diameter >= 3 && diameter <= 12, `diameter ${diameter} (seed ${SEED})`)
  const r = net.run({ mode: 'flood', ttl: diameter, replicas: 1, searches: 150 })
  assert.equal(r.successRate, 1, `success ${r.successRate} at TTL ${diameter} = diameter (seed ${SEED})`)
  assert.equal(r.maxProcessedPerPeer, 1, `a peer processed one query ${r.maxProcessedPerPeer} times (seed ${SEED})`)
  assert.equal(r.reachedPerSearch, 599, `every peer but the origin processes the query: ${r.reachedPerSearch} (seed ${SEED})`)
  assert.equal(r.hitsDropped, 0)
  // Every processed query is sent on to every neighbour but its sender; the origin sends to all.
  const sumDegree = net.graph.targets.length
  assert.ok(r.queryMessagesPerSearch < sumDegree, `${r.queryMessagesPerSearch} query messages, sum of degrees ${sumDegree} (seed ${SEED})`)
  assert.ok(r.queryMessagesPerSearch > sumDegree - 600 - 600 * 1, `${r.queryMessagesPerSearch} query messages (seed ${SEED})`)
  // A hit comes back along the reverse path: as many hit messages as hops, one replica.
  assert.ok(Math.abs(r.hitMessagesPerSearch - r.hops.mean) < 1e-6, `hit messages ${r.hitMessagesPerSearch} vs hops ${r.hops.mean} (seed ${SEED})`)
  // A short TTL misses: the measure can fail.
  const short = net.run({ mode: 'flood', ttl: 2, replicas: 1, searches: 150 })
  assert.ok(short.successRate < 0.5, `TTL 2 success ${short.successRate} (seed ${SEED})`)
  assert.ok(short.messagesPerSearch < r.messagesPerSearch / 5)
})

/** Peers on a graph, driven by hand: FIFO delivery, counting query messages. */
function drive(nodes: number, degree: number, seed: string) {
  const g = randomGraph(nodes, degree, new SeededRandom(`${seed}:graph`))
  const queue: [number, number, UnstructuredMessage][] = []
  const hits: UnstructuredMessage[] = []
  const random = new SeededRandom(`${seed}:peers`)
  const peers = Array.from({ length: nodes }, (_, i) => new UnstructuredPeer(i, neighboursOf(g, i), { random, send: (to, m) => queue.push([to, i, m]), onHit: (h) => hits.push(h) }, { seenCache: 16 }))
  const deliver = (): { queries: number; hitMsgs: number } => {
    let queries = 0, hitMsgs = 0
    for (let h = 0; h < queue.length; h++) {
      const [to, from, m] = queue[h]
      if (m.type === 'query') queries++; else hitMsgs++
      peers[to].receive(from, m)
    }
    queue.length = 0
    return { queries, hitMsgs }
  }
  return { g, peers, hits, deliver }
}

test(`a random walk sends walkers x steps messages (seed ${SEED})`, () => {
  const { peers, hits, deliver } = drive(300, 4, SEED)
  const random = new SeededRandom(`${SEED}:walk`)
  for (let s = 0; s < 50; s++) {
    const walkers = 1 + (random.u32() % 32), ttl = 1 + (random.u32() % 200)
    const origin = random.u32() % 300
    // An item nobody holds: every walker walks its whole TTL.
    const before = peers.reduce((a, p) => a + p.stats.walkSteps, 0)
    peers[origin].search(0xdead0000 + s, 'walk', ttl, walkers)
    const { queries, hitMsgs } = deliver()
    assert.equal(queries, walkers * ttl, `${walkers} walkers, TTL ${ttl}: ${queries} messages (seed ${SEED})`)
    assert.equal(hitMsgs, 0)
    assert.equal(peers.reduce((a, p) => a + p.stats.walkSteps, 0) - before, walkers * (ttl - 1), `steps after the first hop (seed ${SEED})`)
  }
  // With the item on 10 peers, walkers end at a hit: messages = the steps walkers took.
  for (let i = 0; i < 10; i++) peers[(i * 29) % 300].store(7)
  let sawShort = false
  for (let s = 0; s < 50; s++) {
    const origin = 1 + s * 5
    if (peers[origin].has(7)) continue
    const before = peers.reduce((a, p) => a + p.stats.walkSteps, 0)
    hits.length = 0
    peers[origin].search(7, 'walk', 100, 8)
    const { queries, hitMsgs } = deliver()
    const steps = peers.reduce((a, p) => a + p.stats.walkSteps, 0) - before
    assert.equal(queries, 8 + steps, `first hops + forwarded steps (seed ${SEED})`)
    assert.equal(hitMsgs, hits.length, 'hits go directly to the origin')
    assert.ok(queries <= 8 * 100)
    if (queries < 8 * 100) sawShort = true
  }
  assert.ok(sawShort, `some walker stopped at a hit (seed ${SEED})`)
})

test(`the seen-cache holds at most its capacity and forgets the oldest (seed ${SEED})`, () => {
  const c = new SeenCache(8)
  for (let id = 1; id <= 20; id++) c.add(id, id + 100)
  assert.equal(c.size, 8)
  assert.equal(c.evicted, 12)
  assert.equal(c.get(12), undefined)
  assert.equal(c.get(13), 113)
  assert.equal(c.get(20), 120)
  for (const bad of [0, -1, 1.5, UNSTRUCTURED_LIMITS.maxSeenCache + 1]) {
    assert.throws(() => new SeenCache(bad), (e) => isWeftError(e, 'ERR_BAD_ARGUMENT'))
  }
  // In a network: many floods, every peer's cache stays within its bound, and hits still come back.
  const { peers, hits, deliver } = drive(200, 5, SEED)
  peers[17].store(99)
  const random = new SeededRandom(`${SEED}:floods`)
  let found = 0
  for (let s = 0; s < 60; s++) {
    hits.length = 0
    const origin = random.u32() % 200
    if (origin === 17) continue
    peers[origin].search(99, 'flood', 12)
    deliver()
    if (hits.length > 0) found++
    for (const p of peers) assert.ok(p.seenSize <= 16, `seen-cache ${p.seenSize} > 16 (seed ${SEED})`)
  }
  assert.ok(peers.some((p) => p.seenEvicted > 0), 'caches were full and evicted')
  assert.ok(found >= 55, `${found} floods found the item (seed ${SEED})`)
  // Bad arguments are refused with a code.
  assert.throws(() => peers[0].search(1, 'flood', 0), (e) => isWeftError(e, 'ERR_BAD_ARGUMENT'))
  assert.throws(() => peers[0].search(1, 'walk', 10, UNSTRUCTURED_LIMITS.maxWalkers + 1), (e) => isWeftError(e, 'ERR_BAD_ARGUMENT'))
  assert.throws(() => peers[0].search(1, 'flood', UNSTRUCTURED_LIMITS.maxTtl + 1), (e) => isWeftError(e, 'ERR_BAD_ARGUMENT'))
})

test(`results replay identically by seed (seed ${SEED})`, () => {
  const once = (seed: string): string => {
    const net = new UnstructuredNetwork({ nodes: 1000, seed })
    return JSON.stringify([
      net.run({ mode: 'flood', ttl: 4, replicas: 3, searches: 40 }),
      net.run({ mode: 'walk', ttl: 300, walkers: 8, replicas: 3, searches: 40 }),
    ])
  }
  const a = once(SEED)
  assert.equal(once(SEED), a, `same seed, same results (seed ${SEED})`)
  assert.notEqual(once(`${SEED}-other`), a, 'another seed, other results')
})

test(`weft sim --topology unstructured prints a summary and writes --out (seed ${SEED})`, { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-unstructured-'))
  try {
    const out = join(dir, 'u.json')
    const run = (args: string[]) => spawnSync(process.execPath, [CLI, 'sim', '--topology', 'unstructured', '--nodes', '500', '--lookups', '60', '--seed', SEED, ...args], { encoding: 'utf8', timeout: 50_000 })
    const flood = run(['--ttl', '12', '--out', out])
    assert.equal(flood.status, 0, flood.stderr)
    assert.match(flood.stdout, /flood TTL 12/)
    assert.match(flood.stdout, /100\.00 %/)
    const json = JSON.parse(readFileSync(out, 'utf8'))
    assert.equal(json.mode, 'flood')
    assert.equal(json.nodes, 500)
    assert.equal(json.searches, 60)
    assert.equal(json.successRate, 1)
    assert.equal(json.maxProcessedPerPeer, 1)
    const again = run(['--ttl', '12', '--out', out + '2'])
    assert.equal(again.status, 0)
    assert.equal(readFileSync(out + '2', 'utf8'), readFileSync(out, 'utf8'), 'byte-identical for the same seed')

    const walk = run(['--search', 'walk', '--walkers', '4', '--ttl', '50', '--replicas', '0.01', '--out', out])
    assert.equal(walk.status, 0, walk.stderr)
    assert.match(walk.stdout, /4 walkers TTL 50/)
    const w = JSON.parse(readFileSync(out, 'utf8'))
    assert.equal(w.replicas, 5)
    assert.ok(w.queryMessagesPerSearch <= 4 * 50 && w.successRate > 0.3, JSON.stringify(w))

    for (const bad of [['--search', 'gossip'], ['--ttl', '0'], ['--replicas', '0'], ['--walkers', '9999']]) {
      const r = run(bad)
      assert.notEqual(r.status, 0, `${bad.join(' ')} accepted`)
      assert.match(r.stderr, /error/i, r.stderr)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
