// Polyring clusters, failure and takeover (src/overlay/polyring/live-*.ts, docs/polyring.md
// "Clusters, failure and takeover"): must-show 4 and open problem 1, in the simulator with
// crashes (a crashed peer drops everything), heartbeats and hop-by-hop acknowledged routing.
// WEFT_SEED replays a run; every failure names it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SeededRandom } from '../src/runtime/prng.js'
import { formatGuid, guidEquals, type Guid } from '../src/overlay/polyring/guid.js'
import { LivePolyring } from '../src/overlay/polyring/live-sim.js'
import { ClusterDirectory, ClusterView, GONE, isLinked } from '../src/overlay/polyring/cluster.js'
import { NONE } from '../src/overlay/polyring/table.js'
import { isWeftError } from '../src/errors.js'

const SEED = process.env.WEFT_SEED ?? 'polyring-cluster-1'

/** Sends `count` messages from random live peers to the GUIDs of random live clusters; returns their ids. */
function sendRandom(sim: LivePolyring, random: SeededRandom, count: number, exclude: Set<string> = new Set()): number[] {
  const live = sim.livePeers()
  const targets = [...sim.holders().keys()].map((c) => sim.tables[c].self).filter((g) => !exclude.has(formatGuid(g)))
  const ids: number[] = []
  for (let i = 0; i < count; i++) {
    const from = live[Math.floor(random.float() * live.length)]
    ids.push(sim.send(from, targets[Math.floor(random.float() * targets.length)]))
  }
  return ids
}

/** Every id delivered exactly once, to a live peer holding its destination GUID. */
function assertDelivered(sim: LivePolyring, ids: number[], ctx: string): void {
  for (const id of ids) {
    const at = sim.deliveredTo[id]
    const what = `message ${id} to ${formatGuid(sim.dest[id])} (${sim.lost[id] ?? 'not delivered'}) ${ctx} (seed ${SEED})`
    assert.equal(sim.deliveries[id], 1, what)
    const as = sim.deliveredAs[id]!
    assert.ok(guidEquals(as, sim.dest[id]), `${what}: delivered at ${formatGuid(as)}`)
    assert.ok(sim.isAlive(at), `${what}: delivered at a peer that died`)
  }
}

const guids = (sim: LivePolyring): string[] => sim.peers.map((q) => formatGuid(q.guid))
const sum = (a: number[], ids: number[]): number => ids.reduce((s, id) => s + a[id], 0)

test('clusters: directory layout, views, link sharing', () => {
  const d = new ClusterDirectory([3, 1, 2])
  assert.deepEqual([...d.membersOf(0)], [0, 1, 2])
  assert.deepEqual([...d.membersOf(2)], [4, 5])
  assert.equal(d.clusterOf[4], 2)
  assert.throws(() => new ClusterDirectory([0]), (e: unknown) => isWeftError(e, 'ERR_BAD_ARGUMENT'))
  const v = new ClusterView(d)
  assert.ok(v.drop(0, 1) && !v.drop(0, 1))
  assert.deepEqual([...v.members(0)], [0, 2])
  assert.deepEqual([...v.members(2)], [4, 5]) // untouched clusters come from the directory
  assert.equal(v.changed, 1)
  v.set(1, GONE)
  assert.ok(v.isGone(1) && v.members(1).length === 0)
  // A single peer links every member; 3-3 pairs i with i; 3-2 pairs 0-0, 1-1, 2-0.
  for (let j = 0; j < 3; j++) assert.ok(isLinked(0, 1, j, 3))
  assert.deepEqual([0, 1, 2].map((i) => [0, 1, 2].filter((j) => isLinked(i, 3, j, 3))), [[0], [1], [2]])
  assert.deepEqual([0, 1, 2].map((i) => [0, 1].filter((j) => isLinked(i, 3, j, 2))), [[0], [1], [0]])
})

test(`kill one member of each centre cluster: no message lost after the failover window, no GUID changes (seed ${SEED})`, () => {
  const random = new SeededRandom(`${SEED}:clusters`)
  const sim = new LivePolyring({ shape: [10, 10, 10], clusters: [3], seed: SEED })
  assert.equal(sim.peers.length, 1110 + 20)
  sim.runFor(3 * sim.heartbeatMs) // every link heard at least once
  const before = guids(sim)
  // Load is spread: a steady run with no failure takes no resend and loses nothing.
  const calm = sendRandom(sim, random, 2000)
  sim.runFor(1000)
  assertDelivered(sim, calm, 'before any failure')
  assert.equal(sum(sim.resends, calm), 0)
  const centre = sim.tables.flatMap((t, c) => (t.depth === 1 ? [c] : []))
  const killed = centre.map((c) => { const m = sim.directory.membersOf(c); return m[Math.floor(random.float() * m.length)] })
  const t0 = sim.world.now()
  for (const p of killed) sim.crash(p)
  // During the window: messages sent every 100 ms get through by resending to the other members.
  const during: number[] = []
  while (sim.world.now() < t0 + sim.failoverWindowMs) { during.push(...sendRandom(sim, random, 200)); sim.runFor(100) }
  sim.runFor(sim.failoverWindowMs)
  assert.ok(sim.lastDetectionAt - t0 <= sim.failoverWindowMs, `last detection ${sim.lastDetectionAt - t0} ms after the crash, window ${sim.failoverWindowMs} ms`)
  // After the window: every message arrives at once, with no resend at all.
  const after = sendRandom(sim, random, 5000)
  sim.runFor(2000)
  assertDelivered(sim, during, 'sent during the failover window')
  assertDelivered(sim, after, 'sent after the failover window')
  const duringResends = sum(sim.resends, during), afterResends = sum(sim.resends, after)
  assert.ok(duringResends > 0, 'no message needed a resend during the window: the kill did nothing')
  assert.equal(afterResends, 0, `${afterResends} resends after the window (seed ${SEED})`)
  // No GUID changed anywhere; no takeover happened; the dead are the only ones missing.
  const now = guids(sim)
  for (let p = 0; p < sim.peers.length; p++) if (sim.isAlive(p)) assert.equal(now[p], before[p], `peer ${p} (seed ${SEED})`)
  assert.deepEqual(sim.promotions, [])
  assert.equal(sim.livePeers().length, sim.peers.length - killed.length)
  console.log(`# clusters: ${killed.length} members killed; window ${sim.failoverWindowMs} ms, last detection after ${sim.lastDetectionAt - t0} ms; ` +
    `${during.length} sent during it (${duringResends} resends), ${after.length} after (0 resends); all delivered`)
})

/** The heir chain the docs promise from a dead single-peer GUID: lowest live child, then its lowest child, ... */
function expectedChain(sim: LivePolyring, c: number): number[] {
  const chain: number[] = []
  let t = sim.tables[c]
  for (;;) {
    let next = NONE
    t.forEachChild((_x, k) => { if (next === NONE) next = k })
    if (next === NONE) return chain
    chain.push(next)
    t = sim.tables[next]
  }
}

/**
 * Kills (or gracefully removes) the single peer holding cluster `c` and checks the promised
 * outcome: the heir chain moves up one level each, the last GUID of the chain is left empty,
 * every other peer keeps its GUID, and messages to every occupied GUID are delivered.
 */
function takeover(sim: LivePolyring, random: SeededRandom, c: number, how: 'crash' | 'leave'): { recoveryMs: number; chain: string[]; resends: number; vacated: string } {
  sim.runFor(3 * sim.heartbeatMs)
  const dead = sim.directory.membersOf(c)[0]
  const chain = expectedChain(sim, c)
  assert.ok(chain.length >= 1, 'the parent has children')
  const holderOf = (k: number) => sim.directory.membersOf(k)[0]
  const before = guids(sim)
  const vacated = formatGuid(sim.tables[chain[chain.length - 1]].self)
  const t0 = sim.world.now()
  if (how === 'crash') sim.crash(dead); else sim.leave(dead)
  const during = sendRandom(sim, random, 1000, new Set([vacated]))
  sim.runFor(sim.failoverWindowMs + 500)
  const ctx = `${how} of ${formatGuid(sim.tables[c].self)}`
  // The chain: each heir took its parent's GUID, in order, and nobody else moved.
  const expected = [c, ...chain.slice(0, -1)].map((to, i) => ({ peer: holderOf(chain[i]), from: formatGuid(sim.tables[chain[i]].self), to: formatGuid(sim.tables[to].self) }))
  assert.deepEqual(sim.promotions.map(({ peer, from, to }) => ({ peer, from, to })), expected, `${ctx} (seed ${SEED})`)
  const recoveryMs = Math.max(...sim.promotions.map((p) => p.at)) - t0
  const moved = new Set(expected.map((e) => e.peer))
  const now = guids(sim)
  for (let p = 0; p < sim.peers.length; p++) {
    if (p === dead) continue
    const want = moved.has(p) ? formatGuid(sim.tables[sim.peers[p].cluster].self) : before[p]
    assert.equal(now[p], want, `peer ${p} ${ctx} (seed ${SEED})`)
    if (moved.has(p)) assert.equal(now[p], expected.find((e) => e.peer === p)!.to)
  }
  // Every GUID held before is held now, but the chain's last one.
  const held = new Set(sim.livePeers().map((p) => now[p]))
  for (const g of new Set(before)) assert.equal(held.has(g), g !== vacated, `${g} ${ctx} (seed ${SEED})`)
  // Messages sent while it recovered reached every surviving GUID; after recovery too, with no resend.
  assertDelivered(sim, during, `sent during the ${ctx}`)
  const after = sendRandom(sim, random, 3000)
  sim.runFor(1500)
  assertDelivered(sim, after, `sent after the ${ctx}`)
  assert.equal(sum(sim.resends, after), 0, `${ctx}: resends after recovery (seed ${SEED})`)
  // The vacated GUID is unroutable: dropped and counted, not delivered elsewhere.
  const live = sim.livePeers()
  const gone = sim.send(live[0], sim.tables[chain[chain.length - 1]].self)
  sim.runFor(500)
  assert.equal(sim.deliveries[gone], 0)
  assert.equal(sim.lost[gone], 'no-route')
  return { recoveryMs, chain: expected.map((e) => `${e.from}->${e.to}`), resends: sum(sim.resends, during), vacated }
}

test(`kill a parent without a cluster: its lowest child takes its GUID, only its own leaf GUID is vacated (seed ${SEED})`, () => {
  const random = new SeededRandom(`${SEED}:parent`)
  const sim = new LivePolyring({ shape: [10, 10, 10], clusters: [3], seed: SEED })
  const parents = sim.tables.flatMap((t, c) => (t.depth === 2 ? [c] : []))
  const c = parents[Math.floor(random.float() * parents.length)]
  const r = takeover(sim, random, c, 'crash')
  assert.equal(r.chain.length, 1)
  assert.ok(r.recoveryMs <= sim.failoverWindowMs, `recovery ${r.recoveryMs} ms, window ${sim.failoverWindowMs} ms`)
  assert.ok(r.resends > 0)
  console.log(`# crash of a level-2 parent: ${r.chain.join(', ')}, vacated ${r.vacated}; heir took over ${r.recoveryMs.toFixed(0)} ms after the crash (window ${sim.failoverWindowMs} ms); ${r.resends} resends`)
})

test(`kill a centre peer of a deep shape: the heir chain moves up one level each, nothing else (seed ${SEED})`, () => {
  const random = new SeededRandom(`${SEED}:chain`)
  const sim = new LivePolyring({ shape: [5, 4, 4, 4], random, fill: 0.8, seed: SEED })
  // The centre peer with the longest heir chain (3 levels below it when the shape allows).
  const centre = sim.tables.flatMap((t, c) => (t.depth === 1 ? [c] : []))
  const c = centre.reduce((best, k) => (expectedChain(sim, k).length > expectedChain(sim, best).length ? k : best))
  const depth = expectedChain(sim, c).length
  assert.ok(depth >= 2, `no centre peer with a chain of 2 (seed ${SEED})`)
  const r = takeover(sim, random, c, 'crash')
  assert.equal(r.chain.length, depth)
  // Detection, then one notice-and-handover hop (at most a link latency) per further level.
  assert.ok(r.recoveryMs <= sim.failoverWindowMs + (depth - 1) * 50, `recovery ${r.recoveryMs} ms`)
  console.log(`# crash of a centre peer: ${r.chain.join(', ')}, vacated ${r.vacated}; done ${r.recoveryMs.toFixed(0)} ms after the crash`)
})

test(`graceful leave: a cluster member leaves with no GUID change; a parent hands its GUID to its heir at once (seed ${SEED})`, () => {
  const random = new SeededRandom(`${SEED}:leave`)
  const sim = new LivePolyring({ shape: [6, 5, 5, 4], clusters: [3, 2], seed: SEED })
  sim.runFor(3 * sim.heartbeatMs)
  const before = guids(sim)
  const member = sim.directory.membersOf(2)[1]
  const t0 = sim.world.now()
  sim.leave(member)
  const during = sendRandom(sim, random, 1000)
  sim.runFor(200) // notices take one link latency
  const after = sendRandom(sim, random, 2000)
  sim.runFor(3000)
  assertDelivered(sim, during, 'sent while a member left')
  assertDelivered(sim, after, 'sent after a member left')
  assert.equal(sum(sim.resends, after), 0)
  assert.equal(sim.detections, 0, 'a graceful leave needs no failure detection')
  const now = guids(sim)
  for (let p = 0; p < sim.peers.length; p++) if (p !== member) assert.equal(now[p], before[p])
  assert.ok(!sim.isAlive(member), 'the leaver stops after lingering')
  // A single-peer parent at level 3 (its children are leaves) leaves: its heir moves up at once.
  const parents = sim.tables.flatMap((t, c) => (t.depth === 3 && sim.directory.size(c) === 1 ? [c] : []))
  const r = takeover(sim, random, parents[Math.floor(random.float() * parents.length)], 'leave')
  assert.ok(r.recoveryMs <= 2 * 50, `takeover ${r.recoveryMs} ms after the leave`)
  assert.equal(sim.detections, 0)
  console.log(`# graceful leave: member left at ${t0} with 0 resends after 200 ms; parent leave ${r.chain.join(', ')} in ${r.recoveryMs.toFixed(0)} ms, ${r.resends} resends`)
})

test(`a dead parent whose lowest child is a cluster: one member moves up, no GUID is vacated (seed ${SEED})`, () => {
  const random = new SeededRandom(`${SEED}:member-heir`)
  const sim = new LivePolyring({ shape: [4, 3, 3], clusters: [1, 2], seed: SEED })
  sim.runFor(3 * sim.heartbeatMs)
  const before = guids(sim)
  const c = Math.floor(random.float() * 4) // a single centre peer; its children are clusters of 2
  const dead = sim.directory.membersOf(c)[0]
  let heirCluster = NONE
  sim.tables[c].forEachChild((_x, k) => { if (heirCluster === NONE) heirCluster = k })
  const [heir, stays] = sim.directory.membersOf(heirCluster)
  sim.crash(dead)
  const during = sendRandom(sim, random, 500)
  sim.runFor(sim.failoverWindowMs + 500)
  assert.deepEqual(sim.promotions.map((p) => [p.peer, p.from, p.to]), [[heir, before[heir], before[dead]]], `seed ${SEED}`)
  const now = guids(sim)
  for (let p = 0; p < sim.peers.length; p++) if (p !== dead && p !== heir) assert.equal(now[p], before[p], `peer ${p} (seed ${SEED})`)
  assert.equal(now[stays], before[heir], 'the heir GUID keeps its other member')
  assert.equal(sim.holders().size, sim.tables.length, 'every GUID is still held')
  assertDelivered(sim, during, 'sent while the member moved up')
  const after = sendRandom(sim, random, 2000)
  sim.runFor(1500)
  assertDelivered(sim, after, 'sent after')
  assert.equal(sum(sim.resends, after), 0)
})
