// Pub-sub rules in a seeded MemoryWorld (real nodes, DHT rendezvous): restricted topics (the owner's
// authorization), forged and unauthorized messages refused with a code and counted, size and rate
// bounds, private publishing (Dandelion++ stem, then broadcast), and exactly-once delivery with a replayed message. WEFT_SEED picks the seed.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryWorld } from '../src/runtime/memory.js'
import { createTestnet } from '../src/node/testnet.js'
import { signMessage, topicId, MAX_PUBSUB_DATA } from '../src/services/pubsub/message.js'
import type { Node } from '../src/node/node.js'
import type { Subscription, TopicMessage } from '../src/services/pubsub/pubsub.js'

const SEED = process.env.WEFT_SEED ?? 'pubsub-rules-1'
const why = (what: string): string => `${what} (seed ${SEED}; rerun with WEFT_SEED=${SEED})`

/** Everything a subscription yields, collected as it comes; `take` runs the world, then empties it. */
function collect(s: Subscription): { take(world: MemoryWorld, ms: number): Promise<TopicMessage[]> } {
  const got: TopicMessage[] = []
  void (async () => { for await (const m of s) got.push(m) })()
  return {
    async take(world, ms) {
      await world.run(world.now() + ms)
      return got.splice(0)
    },
  }
}

test('restricted topics, forged messages, bounds and private publishing', { timeout: 120_000 }, async () => {
  const world = new MemoryWorld(SEED)
  const net = await createTestnet({ nodes: 12, seed: SEED, world, host: '100.64.1.1', node: { pubsub: { rateBurst: 5, ratePerSecond: 1 } } })
  const [owner, publisher, intruder, ...rest] = net.nodes as [Node, Node, Node, ...Node[]]
  const ownerKey = Buffer.from(owner.identity.publicKey).toString('hex')
  try {
    // Subscribers of the restricted topic "news" owned by `owner`, and of the open topic "news".
    const restricted = rest.slice(0, 5).map((n) => n.pubsub.subscribe('news', { owner: ownerKey }))
    const open = rest.slice(5).map((n) => n.pubsub.subscribe('news'))
    const intruderSub = intruder.pubsub.subscribe('news', { owner: ownerKey }) // in the overlay, to inject from inside
    await net.wait(Promise.all([...restricted, ...open, intruderSub].map((s) => s.ready)))
    const restrictedOut = restricted.map(collect), openOut = open.map(collect)
    // Members that subscribed at the same moment found nobody and started apart: the upkeep ticks (15 s) merge them.
    await world.run(world.now() + 40_000)
    assert.notDeepEqual(topicId('news'), topicId('news', owner.identity.publicKey), 'a restricted topic is another topic')

    // The owner publishes on its own topic; an authorized publisher too; the intruder is refused locally.
    const grant = owner.pubsub.authorize('news', publisher.identity.publicKey, world.runtime('x').wallClock() + 3600_000)
    await net.wait(owner.pubsub.publish('news', 'from the owner', { owner: ownerKey }))
    await net.wait(publisher.pubsub.publish('news', 'from an authorized publisher', { owner: ownerKey, authorization: grant.authorization }))
    await assert.rejects(net.wait(intruder.pubsub.publish('news', 'let me in', { owner: ownerKey })), { code: 'ERR_FORBIDDEN' })
    await assert.rejects(net.wait(intruder.pubsub.publish('news', 'stolen grant', { owner: ownerKey, authorization: grant.authorization })), { code: 'ERR_FORBIDDEN' })
    // From inside the overlay, the intruder broadcasts a message signed by itself without a grant: every member refuses it.
    const t = [...(intruder as unknown as { pubsubService: { topics: Map<string, { channel: { broadcast(p: Uint8Array): unknown } }> } }).pubsubService.topics.values()][0]
    t.channel.broadcast(signMessage(intruder.identity, topicId('news', owner.identity.publicKey), new TextEncoder().encode('forged'), world.runtime('y').wallClock(), 7, null))
    for (const s of restrictedOut) {
      const got = (await s.take(world, 5000)).map((m) => Buffer.from(m.data).toString())
      assert.deepEqual(got.sort(), ['from an authorized publisher', 'from the owner'], why('a restricted-topic subscriber gets the authorized messages, once each, and nothing else'))
    }
    const refused = rest.slice(0, 5).reduce((n, x) => n + (x.pubsub.stats.refused.ERR_UNAUTHORIZED ?? 0), 0)
    assert.ok(refused >= 1, why(`the forged message is refused and counted (${refused})`))
    for (const s of openOut) assert.deepEqual(await s.take(world, 0), [], 'the open topic of the same name is another topic')

    // Open topic: exactly once, even when the same signed bytes are broadcast again later.
    await net.wait(publisher.pubsub.publish('news', 'open news'))
    const again = signMessage(publisher.identity, topicId('news'), new TextEncoder().encode('replayed'), world.runtime('z').wallClock(), 9, null)
    const inOpen = [...(rest[5] as unknown as { pubsubService: { topics: Map<string, { name: string; owner: unknown; channel: { broadcast(p: Uint8Array): unknown; tree: { has(id: Uint8Array): boolean } } }> } }).pubsubService.topics.values()].find((x) => x.owner === null)!
    inOpen.channel.broadcast(again)
    for (const s of openOut) {
      const got = (await s.take(world, 5000)).map((m) => Buffer.from(m.data).toString())
      assert.deepEqual(got.sort(), ['open news', 'replayed'], why('each open-topic message once'))
    }
    assert.equal(inOpen.channel.broadcast(again), null, 'the same message again is a duplicate')

    // Private: a Dandelion++ stem first, then the broadcast; every subscriber gets it once (within the embargo at worst).
    const stemsBefore = net.nodes.reduce((n, x) => n + ((x as unknown as { gossipLayer: { stats: { broadcastOut: number[] } } }).gossipLayer.stats.broadcastOut[4] ?? 0), 0)
    await net.wait(publisher.pubsub.publish('news', 'psst', { private: true }))
    for (const s of openOut) {
      const got = (await s.take(world, 30_000)).map((m) => Buffer.from(m.data).toString())
      assert.deepEqual(got, ['psst'], why('a private message reaches every subscriber once'))
    }
    const stems = net.nodes.reduce((n, x) => n + ((x as unknown as { gossipLayer: { stats: { broadcastOut: number[] } } }).gossipLayer.stats.broadcastOut[4] ?? 0), 0) - stemsBefore
    assert.ok(stems >= 1, why(`the private message went along a stem first (${stems} stem hops)`))

    // Bounds and the private hook, each a coded refusal.
    await assert.rejects(net.wait(publisher.pubsub.publish('news', new Uint8Array(MAX_PUBSUB_DATA + 1))), { code: 'ERR_TOO_LARGE' })
    assert.throws(() => publisher.pubsub.subscribe(''), { code: 'ERR_BAD_ARGUMENT' })
    assert.throws(() => publisher.pubsub.subscribe('x'.repeat(201)), { code: 'ERR_BAD_ARGUMENT' })
    assert.throws(() => publisher.pubsub.subscribe('news', { owner: 'abc' }), { code: 'ERR_BAD_ARGUMENT' })
    let limited = 0
    for (let i = 0; i < 10; i++) await net.wait(publisher.pubsub.publish('news', `burst ${i}`)).catch((e) => { if (e.code === 'ERR_RATE_LIMITED') limited++ })
    assert.ok(limited >= 5, why(`publishing past the burst is refused (${limited} of 10)`))
  } finally {
    await net.close()
  }
})
