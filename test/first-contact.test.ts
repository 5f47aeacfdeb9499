// A node id is its Ed25519 key, so a node that knows a peer's id seals its first request to it
// in a Noise IK handshake, and the answer comes back in the handshake's second message: one
// round trip, two datagrams, as in plaintext. Knowing only an address costs XX's extra trip.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Node } from '../src/node/node.js'
import { MemoryWorld } from '../src/runtime/memory.js'
import { seededIdentity } from '../src/node/testnet.js'
import type { Rpc } from '../src/rpc/rpc.js'

const SEED = process.env.WEFT_SEED ?? 'first-contact-1'
const rpcOf = (node: Node) => (node as unknown as { rpc: Rpc }).rpc

test(`a first request to a peer known by id: IK, answered in message 2 (2 datagrams); by address only: XX (4) (seed ${SEED})`, async () => {
  const world = new MemoryWorld(SEED)
  const nodes = [0, 1, 2].map((i) => new Node({ host: `10.0.2.${i + 1}`, identity: seededIdentity(SEED, i), runtime: world.runtime(i), network: world, encrypt: true }))
  const [a, b, c] = nodes
  try {
    for (const n of nodes) await world.settle(n.start())
    const datagrams = async (f: () => Promise<unknown>): Promise<number> => {
      const before = world.stats.datagrams
      await world.settle(f())
      return world.stats.datagrams - before
    }
    rpcOf(a).expectPeer(b.address, b.id) // what a lookup does for every contact it asks
    assert.equal(await datagrams(() => a.ping(b.address)), 2, 'IK: INIT with the ping, RESP with the pong')
    assert.equal(await datagrams(() => a.ping(c.address)), 4, 'XX: INIT, RESP, FINAL with the ping, DATA with the pong')
    assert.equal(await datagrams(() => a.ping(b.address)), 2, 'then a session: DATA each way')
    // A wrong hint (a key nobody at that address holds) costs one IK attempt, then XX.
    rpcOf(b).expectPeer(c.address, a.id)
    const pong = await world.settle(b.ping(c.address))
    assert.equal(pong.id, c.idHex)
    assert.equal(b.status().sessions!.handshakeTimeouts, 0)
    assert.equal(a.status().sessions!.handshakeFailures + b.status().sessions!.handshakeFailures, 0)
    assert.ok(c.status().sessions!.handshakeFailures >= 1, 'c could not open the IK message sealed to another key')
  } finally {
    await world.settle(Promise.all(nodes.map((n) => n.stop({ leave: false }))))
  }
})
