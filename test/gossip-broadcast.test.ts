// HyParView + Plumtree in the deterministic world: every live node gets every broadcast exactly
// once in steady state and after half the nodes crash at once; the same seed replays the same run;
// malformed and hostile gossip input is counted and dropped. WEFT_SEED=... picks the seed.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { BroadcastSim } from '../src/gossip/broadcast-sim.js'
import { Gossip, GLOBAL_CHANNEL } from '../src/gossip/gossip.js'
import { broadcastId } from '../src/gossip/plumtree.js'
import { MemoryWorld } from '../src/runtime/memory.js'
import { Rpc } from '../src/rpc/rpc.js'
import { PacketTransport } from '../src/transport/transport.js'
import {
  BroadcastOp, decode, encode, MAX_BROADCAST_IDS, MAX_BROADCAST_PAYLOAD, MAX_GOSSIP_CONTACTS, MAX_PACKET, MembershipOp, MessageType,
  type BroadcastRequest, type MembershipRequest,
} from '../src/wire/messages.js'
import { SeededRandom } from '../src/runtime/prng.js'

const SEED = process.env.WEFT_SEED ?? 'gossip-broadcast-1'
const why = (seed: string, what: string): string => `${what} (seed ${seed}; rerun with WEFT_SEED=${seed})`

test('1,000 simulated nodes: every live node gets every broadcast once, in steady state and after 50 % crash at once', () => {
  const sim = new BroadcastSim({ nodes: 1000, seed: SEED, latency: 'geo', warmupMs: 30_000, broadcasts: 5, gapMs: 8000, repairMs: 60_000 })
  const r = sim.run()
  assert.equal(r.joinFailures, 0, why(SEED, 'joins failed'))
  assert.equal(r.steady.complete, r.steady.broadcasts, why(SEED, `steady state: ${r.steady.complete}/${r.steady.broadcasts} broadcasts reached every node (min share ${r.steady.minDeliveredShare})`))
  assert.equal(r.steady.duplicatesDelivered, 0, why(SEED, 'a node delivered a message twice'))
  assert.ok(r.steady.payloadPerN <= 1.2, why(SEED, `steady state: ${r.steady.payloadPerN.toFixed(3)} x N payload datagrams per broadcast`))
  assert.equal(r.failed, 500)
  assert.equal(r.viewsAfterRepair.isolated, 0, why(SEED, 'a survivor has no active neighbour after repair'))
  assert.equal(r.afterRepair.complete, r.afterRepair.broadcasts, why(SEED, `after repair: ${r.afterRepair.complete}/${r.afterRepair.broadcasts} broadcasts reached every survivor (min share ${r.afterRepair.minDeliveredShare})`))
  assert.equal(r.afterRepair.duplicatesDelivered + r.duringRepair.duplicatesDelivered, 0, why(SEED, 'a node delivered a message twice'))
  assert.ok(r.afterRepair.payloadPerN <= 1.3, why(SEED, `after repair: ${r.afterRepair.payloadPerN.toFixed(3)} x N payload datagrams per broadcast`))
})

test('the same seed replays the same broadcast run exactly', () => {
  const once = (): string => {
    const sim = new BroadcastSim({ nodes: 300, seed: `${SEED}:replay`, latency: 'geo', warmupMs: 20_000, broadcasts: 3, gapMs: 5000, repairMs: 30_000 })
    return JSON.stringify({ r: sim.run(), stats: sim.stats, events: sim.world.stats.events })
  }
  const a = once(), b = once()
  assert.equal(a, b, why(`${SEED}:replay`, 'two runs with one seed differ'))
})

test('MEMBERSHIP and BROADCAST round-trip through the codec, and their bounds are enforced both ways', () => {
  const rnd = new SeededRandom(`${SEED}:codec`)
  const sender = rnd.bytes(32), channel = rnd.bytes(32)
  const contacts = Array.from({ length: MAX_GOSSIP_CONTACTS }, (_, i) => ({ id: rnd.bytes(32), address: `10.0.0.${i}:4000` }))
  const m: MembershipRequest = { type: MessageType.MEMBERSHIP, txid: 7, sender, flags: 0, op: MembershipOp.SHUFFLE, channel, ttl: 6, priority: 0, contacts, pad: 0 }
  const d = decode(encode(m))
  assert.ok(d.ok)
  assert.deepEqual({ ...d.message, sender: [...d.message.sender] }, { ...m, sender: [...sender], token: undefined, channel: (d.message as MembershipRequest).channel, contacts: (d.message as MembershipRequest).contacts })
  assert.deepEqual((d.message as MembershipRequest).contacts.map((c) => c.address), contacts.map((c) => c.address))
  const payload = rnd.bytes(MAX_BROADCAST_PAYLOAD)
  const g: BroadcastRequest = { type: MessageType.BROADCAST, txid: 0, sender, flags: 0, op: BroadcastOp.GOSSIP, channel, round: 3, ids: [broadcastId(payload)], payload, pad: 0 }
  const bytes = encode(g)
  assert.ok(bytes.length <= MAX_PACKET)
  const dg = decode(bytes)
  assert.ok(dg.ok && dg.message.type === MessageType.BROADCAST)
  assert.deepEqual([...(dg.message as BroadcastRequest).payload], [...payload])
  // Encoder refuses what the decoder would refuse.
  assert.throws(() => encode({ ...m, contacts: [...contacts, contacts[0]] }), { code: 'ERR_TOO_LARGE' })
  assert.throws(() => encode({ ...g, payload: new Uint8Array(MAX_BROADCAST_PAYLOAD + 1) }), { code: 'ERR_BAD_ARGUMENT' })
  assert.throws(() => encode({ ...g, op: BroadcastOp.IHAVE, ids: Array.from({ length: MAX_BROADCAST_IDS + 1 }, () => rnd.bytes(16)), payload: new Uint8Array(0) }), { code: 'ERR_BAD_ARGUMENT' })
  assert.throws(() => encode({ ...g, op: BroadcastOp.PRUNE }), { code: 'ERR_BAD_ARGUMENT' })
  // Decoder: an IHAVE with a payload, a GOSSIP with two ids, a bad op, a priority of 2, a truncation.
  const ihave = encode({ ...g, op: BroadcastOp.IHAVE, payload: new Uint8Array(0) })
  const withPayload = Uint8Array.from([...ihave.subarray(0, ihave.length - 4), 0, 1, 9, 0, 0])
  assert.equal(decode(withPayload).ok, false)
  const badOp = encode(g).slice(); badOp[40] = 9
  assert.equal(decode(badOp).ok, false)
  const badPriority = encode(m).slice(); badPriority[40 + 1 + 32 + 1] = 2
  assert.equal(decode(badPriority).ok, false)
  for (let cut = 1; cut < 60; cut += 7) assert.equal(decode(bytes.subarray(0, bytes.length - cut)).ok, false)
})

test('hostile gossip input is counted and dropped, never delivered or crashing', async () => {
  const world = new MemoryWorld(`${SEED}:hostile`)
  const make = (i: number) => {
    const ep = world.bindNow(`10.9.0.${i}`, 4000)
    const runtime = world.runtime(i)
    const t = new PacketTransport(ep, MAX_PACKET)
    const id = runtime.random.bytes(32)
    const rpc = new Rpc(runtime, t, id)
    const got: Uint8Array[] = []
    const gossip = new Gossip({ runtime, rpc, id, address: () => t.address, send: (to, b) => t.send(to, b), answerPings: true })
    const channel = gossip.open(GLOBAL_CHANNEL, (_id, payload) => got.push(payload.slice()))
    return { ep, t, rpc, gossip, channel, got, id }
  }
  const a = make(1), b = make(2)
  await world.settle(b.channel.joinAsync([a.t.address]))
  assert.equal(a.channel.membership.size, 1)
  assert.equal(b.channel.membership.size, 1)
  const attacker = world.bindNow('10.9.0.66', 4000)
  const rnd = new SeededRandom(`${SEED}:fuzz`)
  const sender = rnd.bytes(32)
  // A GOSSIP whose id is not its payload's hash; one for a channel nobody opened; random bytes; truncations.
  const payload = rnd.bytes(50)
  const forged: BroadcastRequest = { type: MessageType.BROADCAST, txid: 0, sender, flags: 0, op: BroadcastOp.GOSSIP, channel: GLOBAL_CHANNEL, round: 0, ids: [rnd.bytes(16)], payload, pad: 0 }
  attacker.send(a.t.address, encode(forged))
  attacker.send(a.t.address, encode({ ...forged, channel: rnd.bytes(32), ids: [broadcastId(payload)] }))
  attacker.send(a.t.address, encode({ type: MessageType.MEMBERSHIP, txid: 0, sender, flags: 0, op: MembershipOp.SHUFFLE_REPLY, channel: rnd.bytes(32), ttl: 0, priority: 0, contacts: [], pad: 0 }))
  for (let i = 0; i < 500; i++) {
    const good = encode({ ...forged, ids: [broadcastId(payload)], round: i % 256 })
    const bytes = i % 2 ? rnd.bytes(1 + (rnd.u32() % 300)) : good.subarray(0, rnd.u32() % good.length)
    if (i % 2 === 0 && bytes.length > 0) bytes[0] = 0x57
    attacker.send(a.t.address, bytes)
  }
  await world.run(world.now() + 5000)
  assert.deepEqual(a.got, [], 'nothing hostile was delivered')
  assert.equal(a.gossip.stats.dropped, 1, 'the forged id is dropped and counted')
  assert.equal(a.gossip.stats.unknownChannel, 2)
  assert.ok(a.rpc.stats.malformed >= 490, `malformed datagrams counted (${a.rpc.stats.malformed})`)
  assert.equal(a.rpc.stats.handlerErrors, 0)
  // The real message still goes through after all that.
  const id = b.channel.broadcast(payload)
  assert.ok(id)
  await world.run(world.now() + 2000)
  assert.deepEqual(a.got.map((p) => [...p]), [[...payload]])
})
