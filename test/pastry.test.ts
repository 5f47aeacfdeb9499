// Pastry: digits and prefixes, the oracle fill against brute force, and networks built by real
// joins in the deterministic world: lookups and routes against the truth, crashes, leave().
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ID_BYTES, idEquals, idToHex } from '../src/identity/node-id.js'
import { ContactPool } from '../src/overlay/contact-pool.js'
import { numericMetric } from '../src/overlay/metric.js'
import { defaultPastryOptions, Pastry, type PastryOptions } from '../src/overlay/pastry/pastry.js'
import { digitAt, digitCount, sharedDigits } from '../src/overlay/pastry/ids.js'
import { Side } from '../src/overlay/pastry/leaf-set.js'
import { PrefixTable } from '../src/overlay/pastry/prefix-table.js'
import { Neighbors, neighborsRequest } from '../src/overlay/pastry/neighbors.js'
import { Rpc } from '../src/rpc/rpc.js'
import { MemoryWorld, type MemoryEndpoint } from '../src/runtime/memory.js'
import { SeededRandom } from '../src/runtime/prng.js'
import { Oracle } from '../src/sim/oracle.js'
import { PacketTransport } from '../src/transport/transport.js'
import { MAX_PACKET, MessageType } from '../src/wire/messages.js'

const SEED = process.env.WEFT_SEED ?? 'pastry-1'

// ---- Helpers --------------------------------------------------------------------------------

function bigOf(id: Uint8Array): bigint {
  return BigInt(`0x${idToHex(id)}`)
}

function hex(id: Uint8Array): string { return idToHex(id).slice(0, 12) }

interface PNode { i: number; id: Uint8Array; address: string; rpc: Rpc; topo: Pastry; ep: MemoryEndpoint; alive: boolean }

class Net {
  readonly world: MemoryWorld
  readonly nodes: PNode[] = []
  private readonly random: SeededRandom
  private readonly byAddress = new Map<string, PNode>()

  constructor(readonly seed: string, readonly options: Partial<PastryOptions>) {
    this.world = new MemoryWorld(seed)
    this.random = new SeededRandom(`${seed}:net`)
  }

  spawn(): PNode {
    const i = this.nodes.length
    const ep = this.world.bindNow(`10.1.${i >> 8}.${i & 255}`, 4000)
    const runtime = this.world.runtime(i)
    const transport = new PacketTransport(ep, MAX_PACKET)
    const id = this.random.bytes(ID_BYTES)
    const rpc = new Rpc(runtime, transport, id)
    const topo = new Pastry({ runtime, rpc, id, address: () => transport.address }, this.options)
    const node: PNode = { i, id, address: ep.address, rpc, topo, ep, alive: true }
    this.nodes.push(node)
    this.byAddress.set(ep.address, node)
    return node
  }

  get live(): PNode[] { return this.nodes.filter((n) => n.alive) }
  node(address: string): PNode { return this.byAddress.get(address)! }
  pick(among: PNode[] = this.live): PNode { return among[this.random.u32() % among.length] }
  target(): Uint8Array { return this.random.bytes(ID_BYTES) }

  /** Builds n nodes by joins, `concurrency` at a time, each through a random node already in. */
  async build(n: number, concurrency = 4): Promise<void> {
    this.spawn()
    while (this.nodes.length < n) {
      const joined = this.live
      const batch: Promise<void>[] = []
      for (let j = 0; j < concurrency && this.nodes.length < n; j++) batch.push(this.spawn().topo.join([this.pick(joined).address]))
      await this.world.settle(Promise.all(batch))
    }
  }

  async run(ms: number): Promise<void> { await this.world.run(this.world.now() + ms) }

  /** Live ids ranked by numericMetric for target: the truth. */
  truth(target: Uint8Array, n: number): Uint8Array[] {
    return this.live.map((x) => x.id).sort((a, b) => numericMetric.compare(target, a, b)).slice(0, n)
  }

  crash(node: PNode): void {
    node.alive = false
    node.topo.close()
    node.rpc.close()
    void node.ep.close()
  }

  /** Live nodes whose leaf set is not exactly the `half` live nodes either side. */
  wrongLeafSets(): string[] {
    const live = this.live.slice().sort((a, b) => (bigOf(a.id) < bigOf(b.id) ? -1 : 1))
    const bad: string[] = []
    const half = (this.options.leafSet ?? defaultPastryOptions.leafSet) / 2
    const per = Math.min(half, live.length - 1)
    live.forEach((node, at) => {
      const want = [[], []] as string[][]
      for (let j = 1; j <= per; j++) {
        want[Side.CW].push(live[(at + j) % live.length].address)
        want[Side.CCW].push(live[(at - j + live.length * 2) % live.length].address)
      }
      const got = [[], []] as string[][]
      node.topo.leaves.forEach((h, side) => got[side].push(node.topo.pool.address(h)))
      if (want.some((w, s) => w.join() !== got[s].join())) bad.push(node.address)
    })
    return bad
  }

  close(): void { for (const n of this.live) this.crash(n) }
}

function mean(xs: number[]): number { return xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length) }

/** Lookups from random live nodes: how many found the true nearest first, and the true 10 first. */
async function lookups(net: Net, count: number, label: string) {
  let first = 0, ten = 0
  const hops: number[] = []
  const misses: string[] = []
  for (let j = 0; j < count; j++) {
    const from = net.pick()
    const target = net.target()
    const r = await net.world.settle(from.topo.lookup(target))
    const want = net.truth(target, 10)
    const got = r.closest.map((c) => c.id)
    if (got.length > 0 && idEquals(got[0], want[0])) first++
    else if (misses.length < 3) misses.push(`${label}: from ${hex(from.id)} to ${hex(target)} got ${got[0] ? hex(got[0]) : 'none'} want ${hex(want[0])}`)
    if (want.every((id, x) => got[x] && idEquals(got[x], id))) ten++
    hops.push(r.hops)
  }
  return { first, ten, hops, meanHops: mean(hops), misses }
}

/** Follows nextHop() from random nodes toward random keys: where each route ends, and its steps. */
function routes(net: Net, count: number, maxSteps: number) {
  let exact = 0, detours = 0
  const steps: number[] = []
  const misses: string[] = []
  for (let j = 0; j < count; j++) {
    let at = net.pick()
    const target = net.target()
    let n = 0
    for (let next = at.topo.nextHop(target); next && n <= maxSteps; next = at.topo.nextHop(target)) {
      const hop = net.node(next.address)
      // A crashed hop does not answer: the sender drops it (as on a timeout) and routes again.
      if (!hop.alive) { at.topo.failed(next.id); detours++; continue }
      at = hop
      n++
    }
    const [want] = net.truth(target, 1)
    if (idEquals(at.id, want)) exact++
    else if (misses.length < 3) misses.push(`to ${hex(target)}: ended at ${hex(at.id)} after ${n}, want ${hex(want)}`)
    steps.push(n)
  }
  return { exact, detours, steps, meanSteps: mean(steps), maxSteps: Math.max(...steps), misses }
}

// ---- Digits and prefixes ------------------------------------------------------------------

test(`digits and shared prefixes match a BigInt reference for b = 1..8 (seed ${SEED})`, () => {
  const r = new SeededRandom(`${SEED}:digits`)
  for (let b = 1; b <= 8; b++) {
    const rows = digitCount(b)
    assert.equal(rows, Math.ceil(256 / b))
    for (let t = 0; t < 20; t++) {
      const id = r.bytes(32)
      const padded = bigOf(id) << BigInt(rows * b - 256) // a short last digit reads with zero bits after
      for (let i = 0; i < rows; i++) {
        const want = Number((padded >> BigInt((rows - 1 - i) * b)) & BigInt((1 << b) - 1))
        assert.equal(digitAt(id, i, b), want, `b=${b} digit ${i} of ${idToHex(id)} (seed ${SEED})`)
      }
      // Another id sharing a random number of leading bits.
      const other = r.bytes(32)
      const bits = r.u32() % 257
      for (let x = 0; x < bits; x++) {
        const m = 0x80 >> (x & 7)
        other[x >> 3] = (other[x >> 3] & ~m) | (id[x >> 3] & m)
      }
      let shared = 0
      while (shared < rows && digitAt(id, shared, b) === digitAt(other, shared, b)) shared++
      assert.equal(sharedDigits(id, b, other), shared, `b=${b} shared digits, ${bits} bits alike (seed ${SEED})`)
      assert.equal(sharedDigits(id, b, id), rows)
    }
  }
  // By hand: 0xa5 = 1010 0101.
  const id = new Uint8Array(32); id[0] = 0xa5
  assert.deepEqual([0, 1, 2, 3].map((i) => digitAt(id, i, 2)), [2, 2, 1, 1])
  assert.deepEqual([0, 1].map((i) => digitAt(id, i, 4)), [0xa, 0x5])
  assert.equal(digitAt(id, 0, 8), 0xa5)
  assert.equal(digitAt(id, 0, 3), 5)
  assert.equal(digitAt(id, 1, 3), 1)
  assert.equal(digitAt(id, 2, 3), 2) // bits 6..8: 01 then the next byte's 0
})

test('options are checked: b from 1 to 8, an even leaf set up to 24, k up to 25', () => {
  const world = new MemoryWorld('options')
  const make = (o: Partial<PastryOptions>) => {
    const ep = world.bindNow('192.0.2.9', 0)
    const id = new Uint8Array(32)
    const rpc = new Rpc(world.runtime(0), new PacketTransport(ep, MAX_PACKET), id)
    return new Pastry({ runtime: world.runtime(0), rpc, id, address: () => ep.address }, { maintenanceIntervalMs: 0, ...o })
  }
  for (const bad of [{ b: 0 }, { b: 9 }, { b: 2.5 }, { leafSet: 7 }, { leafSet: 26 }, { leafSet: 0 }, { k: 26 }, { alpha: 0 }, { jitter: 1 }, { maxFailures: 0 }]) {
    assert.throws(() => make(bad), (e: Error & { code?: string }) => e.code === 'ERR_BAD_ARGUMENT', JSON.stringify(bad))
  }
  for (const b of [1, 2, 3, 4, 5, 6, 7, 8]) assert.equal(make({ b }).options.b, b)
  assert.equal(make({ b: undefined }).options.b, 4, 'undefined means the default')
  assert.equal(make({}).options.b, 4)
  assert.equal(make({}).options.leafSet, 16)
})

// ---- The oracle fill against brute force -----------------------------------------------------

test(`fill() matches a brute-force table and leaf set for b = 1, 2, 3, 4, 8 (seed ${SEED})`, () => {
  const r = new SeededRandom(`${SEED}:fill`)
  const pool = new ContactPool(1024)
  const N = 2000
  const handles: number[] = []
  for (let i = 0; i < N; i++) handles.push(pool.acquire(r.bytes(32), `10.2.${i >> 8}.${i & 255}:1`))
  // A few ids that share long prefixes, so deep rows are exercised.
  const base = pool.id(handles[0])
  for (let i = 0; i < 40; i++) {
    const id = r.bytes(32)
    id.set(base.subarray(0, 1 + (i % 12)))
    handles.push(pool.acquire(id, `10.3.0.${i}:1`))
  }
  const oracle = new Oracle(pool)
  oracle.addAll(handles)
  const world = new MemoryWorld('fill')
  const sorted = handles.slice().sort((a, b) => (bigOf(pool.id(a)) < bigOf(pool.id(b)) ? -1 : 1))
  for (const b of [1, 2, 3, 4, 8]) {
    for (let t = 0; t < 12; t++) {
      const me = t === 0 ? handles[0] : handles[r.u32() % handles.length]
      const self = pool.id(me)
      const ep = world.bindNow('192.0.2.10', 0)
      const rpc = new Rpc(world.runtime(t), new PacketTransport(ep, MAX_PACKET), self)
      const p = new Pastry({ runtime: world.runtime(t), rpc, id: self, address: () => ep.address, contacts: pool }, { b, maintenanceIntervalMs: 0 })
      p.fill(oracle, r, 0)
      // Brute force: the slots that some node fits, and check each filled slot's node.
      const cols = 1 << b
      const fillable = new Set<number>()
      for (const h of handles) {
        if (h === me) continue
        const id = pool.id(h)
        const row = sharedDigits(self, b, id)
        fillable.add(row * cols + digitAt(id, row, b))
      }
      const got = new Set<number>()
      p.table.forEach((h, slot) => {
        const row = Math.floor(slot / cols), col = slot % cols
        const id = pool.id(h)
        assert.equal(sharedDigits(self, b, id), row, `b=${b}: slot ${row}/${col} holds ${hex(id)} of the wrong row (seed ${SEED})`)
        assert.equal(digitAt(id, row, b), col, `b=${b}: slot ${row}/${col} holds ${hex(id)} of the wrong column (seed ${SEED})`)
        got.add(slot)
      })
      assert.deepEqual([...got].sort((x, y) => x - y), [...fillable].sort((x, y) => x - y), `b=${b}: filled slots differ from the fillable ones (seed ${SEED})`)
      const deepest = Math.max(...fillable)
      assert.equal(p.table.rows, Math.floor(deepest / cols) + 1, `b=${b}: rows allocated past the deepest entry`)
      // Leaf set: the 8 nodes either side in id order.
      const at = sorted.indexOf(me)
      const want = [[], []] as number[][]
      for (let j = 1; j <= 8; j++) {
        want[Side.CW].push(sorted[(at + j) % sorted.length])
        want[Side.CCW].push(sorted[(at - j + sorted.length) % sorted.length])
      }
      const leaves = [[], []] as number[][]
      p.leaves.forEach((h, side) => leaves[side].push(h))
      assert.deepEqual(leaves, want, `b=${b}: leaf set of ${hex(self)} (seed ${SEED})`)
      assert.equal(p.size(), new Set([...leaves.flat(), ...[...got].map((s) => p.table.handleAt(s))]).size)
      for (const e of p.entries()) assert.match(e.slot, /^(row \d+ col [0-9a-f]+|leaf [+-]\d+)$/)
      p.close()
      rpc.close()
    }
  }
})

test(`fill() in a network smaller than the leaf set holds every node (seed ${SEED})`, () => {
  const r = new SeededRandom(`${SEED}:small`)
  const pool = new ContactPool()
  const handles = Array.from({ length: 6 }, (_, i) => pool.acquire(r.bytes(32), `10.4.0.${i}:1`))
  const oracle = new Oracle(pool)
  oracle.addAll(handles)
  const world = new MemoryWorld('small')
  const self = pool.id(handles[2])
  const ep = world.bindNow('192.0.2.11', 0)
  const rpc = new Rpc(world.runtime(0), new PacketTransport(ep, MAX_PACKET), self)
  const p = new Pastry({ runtime: world.runtime(0), rpc, id: self, address: () => ep.address, contacts: pool }, { maintenanceIntervalMs: 0 })
  p.fill(oracle, r, 0)
  assert.equal(p.leaves.size(Side.CW), 5)
  assert.equal(p.leaves.size(Side.CCW), 5)
  assert.equal(p.size(), 5)
  // Every key's route from here ends at its numerically nearest node in one step at most.
  for (let t = 0; t < 50; t++) {
    const key = r.bytes(32)
    const best = handles.map((h) => pool.id(h)).sort((a, b) => numericMetric.compare(key, a, b))[0]
    const hop = p.nextHop(key)
    assert.ok(hop ? idEquals(hop.id, best) : idEquals(self, best), `route to ${hex(key)} (seed ${SEED})`)
  }
  rpc.close()
})

test(`the table keeps the nearer of two nodes for a slot, and replaces failing entries (seed ${SEED})`, () => {
  const r = new SeededRandom(`${SEED}:proximity`)
  const pool = new ContactPool()
  const self = r.bytes(32)
  const table = new PrefixTable(self, 4, pool)
  // Three ids in row 1, column 7: our first digit, then 7 (ours is not 7).
  const ids = [0, 1, 2].map(() => {
    const id = r.bytes(32)
    id[0] = (self[0] & 0xf0) | ((self[0] & 0x0f) === 7 ? 8 : 7)
    return id
  })
  const col = digitAt(ids[0], 1, 4)
  const [a, b, c] = ids.map((id, i) => pool.acquire(id, `10.5.0.${i}:1`))
  const out: number[] = []
  assert.equal(table.offer(a, 1000, undefined, out), true) // an empty slot takes anyone
  assert.equal(table.offer(b, 1000, undefined, out), false) // no RTT: the holder stays
  table.measured(ids[0], 80)
  assert.equal(table.offer(b, 2000, 30, out), true, 'lower RTT wins the slot')
  assert.deepEqual(out.splice(0), [a])
  assert.equal(table.offer(c, 3000, 45, out), false, 'higher RTT loses')
  const slot = 1 * 16 + col
  assert.equal(table.handleAt(slot), b)
  assert.equal(table.rttAt(slot), 30)
  assert.equal(table.fail(ids[1]), 1)
  assert.equal(table.offer(c, 4000, undefined, out), true, 'a failing holder gives way')
  assert.deepEqual(out.splice(0), [b])
  assert.equal(table.size, 1)
  assert.equal(table.rows, 2, 'rows up to the deepest entry only')
})

test('a NEIGHBORS request is answered after the peer has rotated its token secrets', async () => {
  // A request carrying a token the peer no longer takes may get back no more bytes than it sent:
  // it must leave room for an (empty, TRUNCATED) NODES reply with the fresh token, or a node
  // quiet with a peer for 10 minutes would take it for dead.
  const world = new MemoryWorld('tokens')
  const make = (i: number) => {
    const ep = world.bindNow(`10.6.0.${i}`, 4000)
    const id = new SeededRandom(`tokens:${i}`).bytes(32)
    const rpc = new Rpc(world.runtime(i), new PacketTransport(ep, MAX_PACKET), id)
    return { rpc, topo: new Pastry({ runtime: world.runtime(i), rpc, id, address: () => ep.address }, { maintenanceIntervalMs: 0 }), address: ep.address }
  }
  const a = make(1), b = make(2)
  for (const wait of [0, 11 * 60_000]) {
    await world.run(world.now() + wait)
    const { reply } = await world.settle(a.rpc.requestAsync(b.address, neighborsRequest(Neighbors.RING), 200))
    assert.equal(reply.type, MessageType.NODES, `after ${wait} ms`)
  }
  a.rpc.close(); b.rpc.close()
})

// ---- Networks built by joins ------------------------------------------------------------------

const opts: Partial<PastryOptions> = {} // the defaults: b = 4, leaf set 16
let main: Net | null = null

test(`200 nodes built by joins: lookups find the true nearest and the true 10, in few hops (seed ${SEED})`, async (t) => {
  const net = main = new Net(`${SEED}:main`, opts)
  await net.build(200)
  await net.run(3 * 60_000) // a few maintenance rounds
  const wrong = net.wrongLeafSets()
  assert.equal(wrong.length, 0, `${wrong.length} leaf sets are not exact after joins (seed ${SEED})`)
  const r = await lookups(net, 200, 'b=4')
  assert.equal(r.first, 200, `true nearest first in only ${r.first}/200 lookups: ${r.misses.join('; ')} (seed ${SEED})`)
  assert.equal(r.ten, 200, `true 10 first in only ${r.ten}/200 lookups (seed ${SEED})`)
  const bound = Math.log(200) / Math.log(16) + 1
  assert.ok(r.meanHops <= bound, `mean hops ${r.meanHops} above log16(200) + 1 = ${bound.toFixed(2)} (seed ${SEED})`)
  // Tables hold what prefix routing needs: row 0 nearly full.
  const sizes = net.live.map((n) => n.topo.size())
  t.diagnostic(`b=4, 200 nodes: mean lookup hops ${r.meanHops.toFixed(2)}, mean table size ${mean(sizes).toFixed(1)}`)
  assert.ok(mean(sizes) >= 25, `mean table size ${mean(sizes)} (seed ${SEED})`)
})

test(`nextHop() routes from any node to the numerically nearest one within about log16(N) + 1 steps (seed ${SEED})`, (t) => {
  const net = main!
  const bound = Math.log(200) / Math.log(16) + 1
  const r = routes(net, 300, 12)
  t.diagnostic(`b=4 routes: mean ${r.meanSteps.toFixed(2)} steps, max ${r.maxSteps}`)
  assert.equal(r.exact, 300, `only ${r.exact}/300 routes ended at the nearest node: ${r.misses.join('; ')} (seed ${SEED})`)
  assert.ok(r.meanSteps <= bound, `mean route ${r.meanSteps} steps above ${bound.toFixed(2)} (seed ${SEED})`)
  assert.ok(r.maxSteps <= Math.ceil(bound) + 1, `a route took ${r.maxSteps} steps (seed ${SEED})`)
})

test(`leave(): the leaving node's leaves drop it and repair at once (seed ${SEED})`, async () => {
  const net = main!
  for (let t = 0; t < 3; t++) {
    const leaver = net.pick()
    const neighbours = new Set<string>()
    leaver.topo.leaves.forEach((h) => neighbours.add(leaver.topo.pool.address(h)))
    await net.world.settle(leaver.topo.leave())
    net.crash(leaver)
    await net.run(2000) // the repair requests' round trips, far less than any maintenance interval
    for (const a of neighbours) {
      const n = net.node(a)
      assert.ok(!n.topo.leaves.has(leaver.id), `${a} still has the leaver in its leaf set (seed ${SEED})`)
    }
    const wrong = net.wrongLeafSets()
    assert.equal(wrong.length, 0, `${wrong.length} leaf sets not exact right after a leave (seed ${SEED})`)
  }
})

test(`25% of nodes crash at once: after repair, lookups and routes still find the true nearest live node (seed ${SEED})`, async (t) => {
  const net = main!
  const live = net.live
  const r = new SeededRandom(`${SEED}:crash`)
  const victims = new Set<PNode>()
  while (victims.size < Math.floor(live.length / 4)) victims.add(live[r.u32() % live.length])
  for (const v of victims) net.crash(v)
  // Repair: lookups run into the dead and drop them; maintenance checks every leaf in time.
  await lookups(net, 50, 'warm-up')
  await net.run(12 * 60_000)
  const wrong = net.wrongLeafSets()
  assert.ok(wrong.length <= net.live.length / 20, `${wrong.length}/${net.live.length} leaf sets still wrong after repair (seed ${SEED})`)
  const l = await lookups(net, 150, 'after crash')
  assert.equal(l.first, 150, `true nearest live node first in only ${l.first}/150 lookups: ${l.misses.join('; ')} (seed ${SEED})`)
  assert.ok(l.ten >= 147, `true 10 first in only ${l.ten}/150 lookups (seed ${SEED})`)
  const ro = routes(net, 200, 16)
  t.diagnostic(`after crash: ${wrong.length} leaf sets wrong, lookups ${l.first}/150 nearest, ${l.ten}/150 true 10, routes ${ro.exact}/200 with ${ro.detours} detours`)
  assert.equal(ro.exact, 200, `only ${ro.exact}/200 routes ended at the nearest live node: ${ro.misses.join('; ')} (seed ${SEED})`)
  net.close()
})

for (const [b, n] of [[1, 100], [8, 100]] as const) {
  test(`b = ${b}: ${n} nodes by joins, lookups and routes exact, hops about log_${1 << b}(N) + 1 (seed ${SEED})`, async (t) => {
    const net = new Net(`${SEED}:b${b}`, { b })
    await net.build(n)
    await net.run(3 * 60_000)
    assert.equal(net.wrongLeafSets().length, 0, `leaf sets not exact (seed ${SEED})`)
    const r = await lookups(net, 100, `b=${b}`)
    assert.equal(r.first, 100, `true nearest first in only ${r.first}/100: ${r.misses.join('; ')} (seed ${SEED})`)
    assert.equal(r.ten, 100, `true 10 first in only ${r.ten}/100 (seed ${SEED})`)
    const bound = Math.log(n) / Math.log(1 << b) + 1
    assert.ok(r.meanHops <= bound, `b=${b}: mean hops ${r.meanHops} above ${bound.toFixed(2)} (seed ${SEED})`)
    const ro = routes(net, 200, 30)
    t.diagnostic(`b=${b}, ${n} nodes: mean lookup hops ${r.meanHops.toFixed(2)}, mean route ${ro.meanSteps.toFixed(2)} steps (max ${ro.maxSteps}), mean table size ${mean(net.live.map((x) => x.topo.size())).toFixed(1)}`)
    assert.equal(ro.exact, 200, `routes: ${ro.misses.join('; ')} (seed ${SEED})`)
    assert.ok(ro.meanSteps <= bound, `b=${b}: mean route ${ro.meanSteps} steps above ${bound.toFixed(2)} (seed ${SEED})`)
    net.close()
  })
}
