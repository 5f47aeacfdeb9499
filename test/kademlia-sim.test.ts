// Kademlia in the deterministic world: lookups against an oracle, failures, and replay by seed.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryWorld } from '../src/runtime/memory.js'
import { createTestnet } from '../src/node/testnet.js'
import { idToHex, idEquals } from '../src/identity/node-id.js'
import { SeededRandom } from '../src/runtime/prng.js'
import { expectedNodesReplyBytes, type Rpc } from '../src/rpc/rpc.js'
import { Flag, MessageType } from '../src/wire/messages.js'

const SEED = process.env.WEFT_SEED ?? 'kademlia-sim-1'

async function run(seed: string, nodes: number, lookups: number, crash = 0, verify?: number, warmup = 0) {
  const world = new MemoryWorld(seed)
  const net = await createTestnet({ nodes, seed, world, host: '100.64.0.1' })
  const rnd = new SeededRandom(`${seed}:lookups`)
  const crashed = new Set<number>()
  while (crashed.size < crash) crashed.add(1 + (rnd.u32() % (nodes - 1)))
  for (const i of crashed) await net.nodes[i].stop()
  const live = net.nodes.filter((_, i) => !crashed.has(i))
  // Lookups after a crash find the dead entries and replace them; measure after that warm-up.
  for (let i = 0; i < warmup; i++) await net.wait(live[rnd.u32() % live.length].lookup(rnd.bytes(32), { verify }))
  let exact = 0
  let headExact = 0 // the first `verify` (default 10) results, the ones proven by their answers
  const hops: number[] = []
  let deadReturned = 0
  const trace: string[] = []
  for (let i = 0; i < lookups; i++) {
    const from = live[rnd.u32() % live.length]
    const target = rnd.bytes(32)
    const r = await net.wait(from.lookup(target, { verify }))
    const want = net.oracle(target, 20, live)
    const got = r.closest.map((c) => c.id)
    if (got.length === want.length && got.every((id, j) => idEquals(id, want[j]))) exact++
    if (got.slice(0, verify ?? 10).every((id, j) => idEquals(id, want[j]))) headExact++
    for (const id of got) if (!live.some((n) => idEquals(n.id, id))) deadReturned++
    hops.push(r.hops)
    trace.push(`${idToHex(target).slice(0, 8)}:${r.hops}:${r.messages}:${r.durationMs.toFixed(3)}`)
  }
  await net.close()
  return { exact, headExact, hops, trace, deadReturned, events: world.stats.events }
}

test(`lookups in a 300-node simulated network find the true 20 closest (seed ${SEED})`, async () => {
  // Default lookups end when the 10 nearest have answered: those 10 must always be right; the
  // other 10 come from the nearest nodes' tables and are right nearly always.
  const r = await run(SEED, 300, 200)
  assert.equal(r.headExact, 200, `the 10 verified nearest were wrong in ${200 - r.headExact}/200 lookups (seed ${SEED})`)
  assert.ok(r.exact >= 196, `only ${r.exact}/200 lookups exact (seed ${SEED})`)
  // Strict lookups (every one of the 20 has answered) are always exact.
  const strict = await run(SEED, 300, 200, 0, 20)
  assert.equal(strict.exact, 200, `strict lookups: only ${strict.exact}/200 exact (seed ${SEED})`)
  const mean = r.hops.reduce((a, b) => a + b, 0) / r.hops.length
  assert.ok(mean <= 4, `mean hops ${mean} too high (seed ${SEED})`)
})

test(`strict lookups route around crashed nodes and return only live ones (seed ${SEED})`, async () => {
  // 10% of nodes crash without a word; tables still hold them, so some live nodes near a target
  // are missing from every table until the dead entries fail and are replaced.
  const r = await run(`${SEED}:crash`, 200, 100, 20, 20, 200)
  assert.equal(r.deadReturned, 0, `crashed nodes returned as live (seed ${SEED})`)
  // Exactness depends on which live nodes the tables still lack: 94-100 over seeds a-j.
  assert.ok(r.exact >= 90, `only ${r.exact}/100 lookups exact with 20 crashed nodes (seed ${SEED})`)
})

test(`the same seed replays the same run exactly (seed ${SEED})`, async () => {
  const a = await run(`${SEED}:replay`, 80, 30)
  const b = await run(`${SEED}:replay`, 80, 30)
  assert.deepEqual(a.trace, b.trace)
  assert.equal(a.events, b.events)
  const c = await run(`${SEED}:other`, 80, 30)
  assert.notDeepEqual(a.trace, c.trace)
})

test(`after the token secrets rotate, a request with a stale token still gets the whole answer (seed ${SEED})`, async () => {
  const world = new MemoryWorld(`${SEED}:rotate`)
  // No bucket refreshes in this run, so nothing renews the tokens the nodes got while joining.
  const node = { kademlia: { refreshIntervalMs: 24 * 3600_000 }, dht: { replicateIntervalMs: 24 * 3600_000, republishIntervalMs: 24 * 3600_000 } }
  const net = await createTestnet({ nodes: 40, seed: `${SEED}:rotate`, world, host: '100.64.0.1', node })
  const [x, y] = [net.nodes[3], net.nodes[4]]
  await net.wait(x.ping(y.address)) // x now holds y's token...
  await world.run(world.now() + 30 * 60_000) // ...which is stale once y's secret has rotated twice
  const rpc = (x as unknown as { rpc: Rpc }).rpc
  const target = new SeededRandom(`${SEED}:rotate`).bytes(32)
  const { reply } = await net.wait(rpc.requestAsync(y.address, { type: MessageType.FIND_NODE, target }, expectedNodesReplyBytes(y.address, 20)))
  const stats = x.status().rpc
  await net.close()
  assert.equal(reply.type, MessageType.NODES)
  assert.equal(reply.flags & Flag.TRUNCATED, 0, 'the answer was cut short')
  assert.equal(reply.type === MessageType.NODES && reply.contacts.length, 20)
  assert.ok(stats.truncatedReplies >= 1, 'no stale token was used: the test did not exercise the resend')
})
