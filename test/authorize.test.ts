// The authorization hooks on real UDP nodes: a service refuses one peer's PUTs while answering its
// FIND_NODEs, refusals are counted and answered with a small ERROR FORBIDDEN; authorizePeer
// refuses a whole peer at the session, without a word.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createTestnet, seededIdentity } from '../src/node/testnet.js'
import { Node, type AuthorizedPeer } from '../src/node/node.js'
import { idEquals } from '../src/identity/node-id.js'
import { MessageType } from '../src/wire/messages.js'
import { rejectsWith } from './helpers/errors.js'

const SEED = process.env.WEFT_SEED ?? 'authorize'
async function seeded(run: () => Promise<void>): Promise<void> {
  try { await run() } catch (err) { console.error(`seed: ${SEED} (WEFT_SEED overrides)`); throw err }
}

test('a service refuses one peer\'s PUTs while its FIND_NODEs still work; the refusals are counted', () => seeded(async () => {
  const refusedId = seededIdentity(SEED, 50).id
  const asked: AuthorizedPeer[] = []
  const service = new Node({
    identity: seededIdentity(SEED, 0),
    authorize: (peer, request) => {
      asked.push(peer)
      return !(request.type === MessageType.PUT && idEquals(peer.id, refusedId))
    },
  })
  await service.start()
  const net = await createTestnet({ nodes: 4, seed: `${SEED}-others`, node: { bootstrap: [service.address] } })
  const refused = new Node({ identity: seededIdentity(SEED, 50), bootstrap: [service.address] })
  const allowed = net.nodes[0]
  try {
    await refused.start()
    assert.ok(asked.some((p) => idEquals(p.id, refusedId) && p.authenticated), 'the hook saw the refused peer, authenticated by its session')
    // FIND_NODE from the refused peer: answered.
    const r = await refused.lookup(service.idHex)
    assert.equal(r.closest[0].address, service.address)
    const before = service.status().rpc.unauthorized
    // Its put reaches every node but the service, which answers FORBIDDEN (no retry, no timeout).
    const put = await refused.dht.put(new TextEncoder().encode('from the refused peer'))
    assert.equal(service.status().rpc.unauthorized - before, 1, 'one PUT refused and counted')
    assert.ok(put.stored >= 3, `the others stored it (${put.stored})`)
    assert.equal(service.status().records.count, 0, 'the service stored nothing from the refused peer')
    // Another peer's put is stored by the service as well.
    await allowed.dht.put(new TextEncoder().encode('from an allowed peer'))
    assert.equal(service.status().records.count, 1)
    assert.equal(service.status().rpc.unauthorized - before, 1)
  } finally {
    await refused.stop({ leave: false })
    await net.close()
    await service.stop()
  }
}))

test('authorizePeer refuses a peer at the session: its requests get no answer, the refusal is counted', () => seeded(async () => {
  const banned = seededIdentity(SEED, 60)
  const service = new Node({ identity: seededIdentity(SEED, 1), authorizePeer: (peer) => !idEquals(peer.id, banned.id) })
  const friend = new Node({ identity: seededIdentity(SEED, 61) })
  const foe = new Node({ identity: banned })
  try {
    await service.start()
    await Promise.all([friend.start(), foe.start()])
    assert.equal((await friend.ping(service.address)).id, service.idHex)
    await rejectsWith(foe.ping(service.address), 'ERR_TIMEOUT')
    const s = service.status().sessions!
    assert.ok(s.peersRefused >= 1, `refusals counted: ${s.peersRefused}`)
    assert.equal(service.status().rpc.requestsIn, 1, 'only the friend\'s ping reached the rpc layer')
  } finally {
    await Promise.all([friend, foe, service].map((n) => n.stop({ leave: false })))
  }
}))
