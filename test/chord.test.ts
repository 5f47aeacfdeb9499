// Chord: ring arithmetic, the oracle fill against brute force, and networks built by joins in the
// deterministic world: lookups against the true successors, recursive routing, a mass crash and
// a graceful leave. Deterministic by seed (WEFT_SEED overrides).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ID_BYTES, idEquals, idToHex, type NodeId } from '../src/identity/node-id.js'
import { SeededRandom } from '../src/runtime/prng.js'
import { MemoryWorld } from '../src/runtime/memory.js'
import { Rpc } from '../src/rpc/rpc.js'
import { PacketTransport } from '../src/transport/transport.js'
import { MAX_PACKET } from '../src/wire/messages.js'
import { ContactPool } from '../src/overlay/contact-pool.js'
import { Oracle } from '../src/sim/oracle.js'
import { successorMetric } from '../src/overlay/metric.js'
import { Chord, defaultChordOptions, type ChordOptions } from '../src/overlay/chord/chord.js'
import { addPowerOfTwo, between, clockwise, inHalfOpen, topBit } from '../src/overlay/chord/ring.js'
import { WeftError } from '../src/errors.js'

const SEED = process.env.WEFT_SEED ?? 'chord-1'
const RING = 1n << 256n

const big = (id: Uint8Array): bigint => BigInt('0x' + idToHex(id))
const fromBig = (v: bigint): Uint8Array => {
  const hex = ((v % RING) + RING) % RING
  return new Uint8Array(Buffer.from(hex.toString(16).padStart(64, '0'), 'hex'))
}

test(`ring arithmetic agrees with bigint arithmetic (seed ${SEED})`, () => {
  const r = new SeededRandom(`${SEED}:ring`)
  const out = new Uint8Array(ID_BYTES)
  const specials = [fromBig(0n), fromBig(1n), fromBig(RING - 1n), fromBig(RING / 2n)]
  const pick = (i: number): Uint8Array => (i < specials.length * 3 && i % 3 === 0 ? specials[(i / 3) % specials.length] : r.bytes(32))
  for (let i = 0; i < 500; i++) {
    const a = pick(i), b = pick(i + 1), x = i % 7 === 0 ? a : i % 11 === 0 ? b : r.bytes(32)
    const [A, B, X] = [big(a), big(b), big(x)]
    const cw = (from: bigint, to: bigint): bigint => (((to - from) % RING) + RING) % RING
    assert.equal(big(clockwise(a, b, out)), cw(A, B), `clockwise (seed ${SEED})`)
    const bit = r.u32() % 256
    assert.equal(big(addPowerOfTwo(a, bit, out)), (A + (1n << BigInt(bit))) % RING, `a + 2^${bit} (seed ${SEED})`)
    const d = cw(A, B)
    assert.equal(topBit(clockwise(a, b, out)), d === 0n ? -1 : d.toString(2).length - 1, `topBit (seed ${SEED})`)
    const open = A === B ? X !== A : cw(A, X) > 0n && cw(A, X) < cw(A, B)
    const half = A === B ? X !== A : cw(A, X) > 0n && cw(A, X) <= cw(A, B)
    assert.equal(between(x, a, b), open, `between (seed ${SEED})`)
    assert.equal(inHalfOpen(x, a, b), half, `inHalfOpen (seed ${SEED})`)
  }
  // The edges: x = b is in (a, b] and not in (a, b); the ring wraps past 2^256 - 1.
  assert.equal(inHalfOpen(fromBig(5n), fromBig(RING - 5n), fromBig(5n)), true)
  assert.equal(between(fromBig(5n), fromBig(RING - 5n), fromBig(5n)), false)
  assert.equal(between(fromBig(0n), fromBig(RING - 5n), fromBig(5n)), true)
  assert.equal(big(addPowerOfTwo(fromBig(RING - 1n), 0, out)), 0n)
  assert.throws(() => addPowerOfTwo(out, 256, out), RangeError)
})

// ---- building nodes over the memory world -----------------------------------------------------------

interface Peer { id: NodeId; address: string; rpc: Rpc; chord: Chord; up: boolean }

function spawn(world: MemoryWorld, i: number, options: Partial<ChordOptions>, contacts?: ContactPool): Peer {
  const ep = world.bindNow(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, 4000)
  const runtime = world.runtime(`node:${i}`)
  const transport = new PacketTransport(ep, MAX_PACKET)
  const id = runtime.random.bytes(32)
  const rpc = new Rpc(runtime, transport, id)
  const chord = new Chord({ runtime, rpc, id, address: () => transport.address, contacts }, options)
  return { id, address: ep.address, rpc, chord, up: true }
}

function crash(p: Peer): void {
  p.up = false
  p.chord.close()
  p.rpc.close()
}

/** The live nodes in id order, and the successor list of a key among them (brute force). */
function truth(peers: Peer[]) {
  const live = peers.filter((p) => p.up).sort((a, b) => successorMetric.compare(new Uint8Array(32), a.id, b.id))
  return {
    live,
    successors(key: Uint8Array, n: number): Peer[] {
      const out = live.slice().sort((a, b) => successorMetric.compare(key, a.id, b.id))
      return out.slice(0, n)
    },
  }
}

const hex = (id: Uint8Array): string => idToHex(id).slice(0, 10)

/** A network built by joins, a few at a time through random nodes already in, then stabilized. */
async function network(seed: string, n: number, options: Partial<ChordOptions> = {}, batch = 4) {
  const world = new MemoryWorld(seed)
  const rnd = new SeededRandom(`${seed}:build`)
  const peers = [spawn(world, 0, options)]
  for (let i = 1; i < n; i += batch) {
    const group: Peer[] = []
    for (let j = i; j < Math.min(n, i + batch); j++) group.push(spawn(world, j, options))
    const joins = group.map((p) => p.chord.join([peers[rnd.u32() % peers.length].address]))
    await world.settle(Promise.all(joins))
    peers.push(...group)
  }
  return { world, rnd, peers }
}

async function settleFor(world: MemoryWorld, ms: number): Promise<void> {
  await world.run(world.now() + ms)
}

/** Random lookups from random live nodes against the true successors. */
async function checkLookups(world: MemoryWorld, peers: Peer[], rnd: SeededRandom, count: number, seed: string, verify?: number) {
  const t = truth(peers)
  const hops: number[] = []
  let messages = 0
  for (let i = 0; i < count; i++) {
    const from = t.live[rnd.u32() % t.live.length]
    const key = rnd.bytes(32)
    const r = await world.settle(from.chord.lookup(key, verify === undefined ? {} : { verify }))
    const want = t.successors(key, 10)
    const got = r.closest.map((c) => hex(c.id))
    assert.ok(r.closest.length > 0 && idEquals(r.closest[0].id, want[0].id),
      `lookup ${i} of ${hex(key)} from ${hex(from.id)}: got ${got[0]}, want successor ${hex(want[0].id)} (seed ${seed})`)
    assert.deepEqual(got.slice(0, 10), want.map((p) => hex(p.id)), `lookup ${i} of ${hex(key)}: the first 10 are not the true successors (seed ${seed})`)
    hops.push(r.hops)
    messages += r.messages
  }
  return { meanHops: hops.reduce((a, b) => a + b, 0) / hops.length, maxHops: Math.max(...hops), meanMessages: messages / count }
}

/** Follows nextHop from random live nodes to each key's owner; returns the steps taken. */
function checkRouting(peers: Peer[], rnd: SeededRandom, count: number, seed: string) {
  const t = truth(peers)
  const byAddress = new Map(t.live.map((p) => [p.address, p]))
  const steps: number[] = []
  for (let i = 0; i < count; i++) {
    let at = t.live[rnd.u32() % t.live.length]
    const key = rnd.bytes(32)
    let n = 0
    for (let next = at.chord.nextHop(key); next; next = at.chord.nextHop(key)) {
      const p = byAddress.get(next.address)
      assert.ok(p, `route to ${hex(key)} went to a dead or unknown node ${hex(next.id)} (seed ${seed})`)
      at = p
      assert.ok(++n <= 64, `route to ${hex(key)} does not end (seed ${seed})`)
    }
    const owner = t.successors(key, 1)[0]
    assert.equal(hex(at.id), hex(owner.id), `route to ${hex(key)} ended at ${hex(at.id)}, not its owner (seed ${seed})`)
    steps.push(n)
  }
  return { mean: steps.reduce((a, b) => a + b, 0) / steps.length, max: Math.max(...steps) }
}

// ---- the fill ---------------------------------------------------------------------------------------

test(`fill() sets the successor list, predecessor and distinct fingers of the true ring (seed ${SEED})`, () => {
  const r = new SeededRandom(`${SEED}:fill`)
  const world = new MemoryWorld(`${SEED}:fill`)
  const pool = new ContactPool(1024)
  const oracle = new Oracle(pool)
  const N = 600, S = defaultChordOptions.successors
  const handles: number[] = []
  for (let i = 0; i < N; i++) handles.push(pool.acquire(r.bytes(32), `10.9.${i >> 8}.${i & 255}:4000`))
  // Clustered ids too, so that some fingers are far apart and some bits have no node.
  for (let i = 0; i < 40; i++) { const id = fromBig(big(pool.id(handles[0])) + BigInt(i + 1) * 1000n); handles.push(pool.acquire(id, `10.8.0.${i}:4000`)) }
  oracle.addAll(handles)
  const sorted = handles.map((h) => big(pool.id(h))).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  const succOf = (v: bigint): bigint => sorted.find((x) => x >= v) ?? sorted[0]
  for (const [trial, selfId] of [[0, pool.id(handles[0])], [1, pool.id(handles[7])], [2, r.bytes(32)]] as const) {
    const p = spawn(world, 100 + trial, {}, pool)
    // A node fills its table around its own id: give it the id under test.
    p.id.set(selfId)
    p.chord.fill(oracle, r, 0)
    const self = big(selfId)
    const others = sorted.filter((x) => x !== self)
    const after = others.filter((x) => x > self).concat(others.filter((x) => x < self))
    const succ = p.chord.table.successors().map((c) => big(c.id))
    assert.deepEqual(succ, after.slice(0, S), `successor list, trial ${trial} (seed ${SEED})`)
    assert.equal(big(p.chord.table.predecessor()!.id), after[after.length - 1], `predecessor, trial ${trial} (seed ${SEED})`)
    // Brute force: finger b = successor(self + 2^b) for every b; the distinct ones past the list.
    const lastDist = (succ[S - 1] - self + RING) % RING
    const want = new Map<bigint, number>()
    for (let b = 0; b < 256; b++) {
      const f = succOf((self + (1n << BigInt(b))) % RING)
      const d = (f - self + RING) % RING
      if (f === self || d <= lastDist || d < 1n << BigInt(b)) continue
      if (!want.has(f)) want.set(f, d.toString(2).length - 1)
    }
    const got = p.chord.table.fingers().map(([bit, c]) => [big(c.id), bit] as const)
    assert.deepEqual(got, [...want.entries()], `fingers, trial ${trial} (seed ${SEED})`)
    const labels = p.chord.entries().map((e) => e.slot)
    assert.equal(labels[0], 'predecessor')
    assert.equal(labels[1], 'successor 1')
    assert.ok(labels.some((l) => /^finger \d+$/.test(l)), `finger slots labelled by bit (seed ${SEED})`)
    assert.ok(p.chord.table.fingerCount <= 2 * Math.log2(N) + 4, `about log2 N fingers, got ${p.chord.table.fingerCount} (seed ${SEED})`)
    p.chord.close()
  }
})

test('options are validated', () => {
  const world = new MemoryWorld('chord-options')
  const bads = [{ k: 0 }, { k: 26 }, { successors: 0 }, { successors: 25 }, { alpha: 0 }, { stabilizeIntervalMs: 0 }, { maxFailures: 0 }, { verify: 1.5 }]
  for (const [i, bad] of bads.entries()) {
    assert.throws(() => spawn(world, i, bad), (e: unknown) => e instanceof WeftError && e.code === 'ERR_BAD_ARGUMENT', JSON.stringify(bad))
  }
})

// ---- networks built by joins ------------------------------------------------------------------------

test(`200 nodes joined one batch at a time: lookups return the true successors, routing reaches the owner (seed ${SEED})`, async () => {
  const seed = `${SEED}:joins`
  const { world, rnd, peers } = await network(seed, 200)
  await settleFor(world, 5 * 60_000)
  // Every node's successor and predecessor are the true ones.
  const t = truth(peers)
  t.live.forEach((p, i) => {
    const s = t.live[(i + 1) % t.live.length], q = t.live[(i - 1 + t.live.length) % t.live.length]
    assert.equal(hex(p.chord.table.successor()!.id), hex(s.id), `successor of ${hex(p.id)} (seed ${seed})`)
    assert.equal(hex(p.chord.table.predecessor()!.id), hex(q.id), `predecessor of ${hex(p.id)} (seed ${seed})`)
  })
  const r = await checkLookups(world, peers, rnd, 200, seed)
  const log2n = Math.log2(peers.length)
  assert.ok(r.meanHops < log2n, `mean hops ${r.meanHops.toFixed(2)} not below log2 N = ${log2n.toFixed(1)} (seed ${seed})`)
  const route = checkRouting(peers, rnd, 200, seed)
  assert.ok(route.max <= Math.ceil(log2n) + 2, `a route took ${route.max} steps (log2 N = ${log2n.toFixed(1)}) (seed ${seed})`)
  assert.ok(route.mean <= log2n / 2 + 1.5, `routes took ${route.mean.toFixed(2)} steps on average (seed ${seed})`)
  // Strict lookups: every one of the k results answered.
  const strict = await checkLookups(world, peers, rnd, 20, seed, 20)
  assert.ok(strict.meanMessages > r.meanMessages, `strict lookups ask more nodes (seed ${seed})`)
  console.log(`# chord 200 nodes: lookup hops mean ${r.meanHops.toFixed(2)} max ${r.maxHops}, messages ${r.meanMessages.toFixed(1)}; route steps mean ${route.mean.toFixed(2)} max ${route.max}`)
  for (const p of peers) crash(p)
})

test(`after a quarter of the nodes crash at once, stabilization repairs the ring (seed ${SEED})`, async () => {
  const seed = `${SEED}:crash`
  const { world, rnd, peers } = await network(seed, 160)
  await settleFor(world, 2 * 60_000)
  const order = peers.slice(1)
  for (let i = order.length - 1; i > 0; i--) { const j = rnd.u32() % (i + 1); [order[i], order[j]] = [order[j], order[i]] }
  for (const p of order.slice(0, peers.length / 4)) crash(p)
  await settleFor(world, 8 * 60_000)
  const t = truth(peers)
  let wrong = 0
  t.live.forEach((p, i) => { if (!idEquals(p.chord.table.successor()!.id, t.live[(i + 1) % t.live.length].id)) wrong++ })
  assert.equal(wrong, 0, `${wrong} live nodes have a wrong successor after the crash (seed ${seed})`)
  await checkLookups(world, peers, rnd, 100, seed)
  checkRouting(peers, rnd, 100, seed)
  for (const p of peers) if (p.up) crash(p)
})

test(`a graceful leave repairs the ring at once (seed ${SEED})`, async () => {
  const seed = `${SEED}:leave`
  const { world, rnd, peers } = await network(seed, 40)
  await settleFor(world, 2 * 60_000)
  const joined: string[] = []
  for (const p of peers) p.chord.onJoin = (c) => joined.push(hex(c.id))
  for (let round = 0; round < 3; round++) {
    // A stabilize round between leaves, so that lists further back have dropped the last leaver.
    await settleFor(world, 60_000)
    const t = truth(peers)
    const i = 1 + (rnd.u32() % (t.live.length - 2))
    const [pred, leaver, succ] = [t.live[i - 1], t.live[i], t.live[i + 1]]
    const removed: string[] = []
    pred.chord.onPeer = (e, c) => { if (e === 'removed') removed.push(hex(c.id)) }
    await world.settle(leaver.chord.leave())
    crash(leaver)
    // Well before any request could time out or a stabilize round come due.
    await settleFor(world, 250)
    assert.equal(hex(pred.chord.table.successor()!.id), hex(succ.id), `the predecessor's successor after a leave (seed ${seed})`)
    assert.equal(hex(succ.chord.table.predecessor()!.id), hex(pred.id), `the successor's predecessor after a leave (seed ${seed})`)
    assert.ok(!pred.chord.table.has(leaver.id) && !succ.chord.table.has(leaver.id), `the neighbours dropped the leaver (seed ${seed})`)
    assert.ok(removed.includes(hex(leaver.id)), `onPeer told of the removal (seed ${seed})`)
    pred.chord.onPeer = () => {}
  }
  assert.equal(joined.length, 0, `a leave is not a join: ${joined.join(", ")} (seed ${seed})`)
  // A newcomer is announced by onJoin on its successor.
  const newcomer = spawn(world, 1000, {})
  await world.settle(newcomer.chord.join([truth(peers).live[0].address]))
  peers.push(newcomer)
  const t = truth(peers)
  const at = t.live.indexOf(newcomer)
  const owner = t.live[(at + 1) % t.live.length]
  assert.ok(joined.includes(hex(newcomer.id)), `onJoin fired for the newcomer (seed ${seed})`)
  assert.equal(hex(owner.chord.table.predecessor()!.id), hex(newcomer.id), `the newcomer's successor took it as predecessor (seed ${seed})`)
  await checkLookups(world, peers, rnd, 30, seed)
  for (const p of peers) if (p.up) crash(p)
})
