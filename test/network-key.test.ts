// Private networks: the Noise psk handshakes against published vectors, then real nodes on UDP
// loopback: members talk; a node without the key, or with another, gets no answer at all.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { Handshake, keyPairFromPrivate, type Pattern } from '../src/transport/noise.js'
import { networkKeyFrom } from '../src/transport/session.js'
import { createTestnet, seededIdentity } from '../src/node/testnet.js'
import { Node } from '../src/node/node.js'
import { WeftError } from '../src/errors.js'
import { rejectsWith } from './helpers/errors.js'

const SEED = process.env.WEFT_SEED ?? 'network-key'
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')
const unhex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'))
const keyOf = (label: string) => new Uint8Array(createHash('sha256').update(`${SEED}:${label}`).digest())
/** Names the seed in a failure, so the run can be replayed. */
async function seeded(run: () => Promise<void>): Promise<void> {
  try { await run() } catch (err) { console.error(`seed: ${SEED} (WEFT_SEED overrides)`); throw err }
}

interface PskVector {
  name: string; prologue: string; psk: string; init_static: string; init_ephemeral: string
  resp_static: string; resp_ephemeral: string; handshake_hash?: string; transport_first?: 'initiator'; messages: { payload: string; ciphertext: string }[]
}
const fixture = JSON.parse(readFileSync(new URL('../../test/fixtures/noise-psk-vectors.json', import.meta.url), 'utf8')) as { vectors: PskVector[] }

for (const v of fixture.vectors) {
  test(`published psk vector ${v.name}`, () => {
    const [, patternAndPsk] = v.name.split('_')
    const pattern = patternAndPsk.slice(0, 2) as Pattern
    const psk = { key: unhex(v.psk), position: Number(patternAndPsk.slice(5)) }
    const respStatic = keyPairFromPrivate(unhex(v.resp_static))
    const initiator = new Handshake({
      pattern, initiator: true, prologue: unhex(v.prologue), s: keyPairFromPrivate(unhex(v.init_static)),
      e: keyPairFromPrivate(unhex(v.init_ephemeral)), rs: pattern === 'IK' ? respStatic.publicKey : undefined, psk,
    })
    const responder = new Handshake({ pattern, initiator: false, prologue: unhex(v.prologue), s: respStatic, e: keyPairFromPrivate(unhex(v.resp_ephemeral)), psk })
    let i = 0
    for (; !initiator.complete; i++) {
      const [from, to] = i % 2 === 0 ? [initiator, responder] : [responder, initiator]
      const sent = from.writeMessage(unhex(v.messages[i].payload))
      assert.equal(hex(sent), v.messages[i].ciphertext, `handshake message ${i}`)
      assert.equal(hex(to.readMessage(sent)), v.messages[i].payload)
    }
    if (v.handshake_hash) assert.equal(hex(initiator.handshakeHash), v.handshake_hash)
    const ini = initiator.split(), res = responder.split()
    const handshake = i
    for (; i < v.messages.length; i++) {
      const fromInitiator = v.transport_first === 'initiator' ? (i - handshake) % 2 === 0 : i % 2 === 0
      const [send, receive] = fromInitiator ? [ini.send, res.receive] : [res.send, ini.receive]
      const sent = send.encryptWithAd(new Uint8Array(0), unhex(v.messages[i].payload))
      assert.equal(hex(sent), v.messages[i].ciphertext, `transport message ${i}`)
      assert.equal(hex(receive.decryptWithAd(new Uint8Array(0), sent)), v.messages[i].payload)
    }
  })
}

test('a psk handshake refuses message 1 made with another key or without one', () => {
  const a = keyPairFromPrivate(keyOf('a')), b = keyPairFromPrivate(keyOf('b'))
  for (const pattern of ['XX', 'IK'] as Pattern[]) {
    for (const other of [{ key: keyOf('other'), position: 1 }, undefined]) {
      const initiator = new Handshake({ pattern, initiator: true, s: a, rs: pattern === 'IK' ? b.publicKey : undefined, psk: other })
      const responder = new Handshake({ pattern, initiator: false, s: b, psk: { key: keyOf('net'), position: 1 } })
      const m1 = initiator.writeMessage(new Uint8Array(0))
      // XX without a psk sends 32 bytes; the responder reads what a psk1 message 1 would be (the padding in a session packet).
      const padded = new Uint8Array(Math.max(m1.length, 48)); padded.set(m1)
      assert.throws(() => responder.readMessage(padded), (err: unknown) => err instanceof WeftError && err.code === 'ERR_HANDSHAKE', `${pattern} ${other ? 'other key' : 'no key'}`)
    }
  }
})

test('network keys: 32 bytes, or a passphrase stretched the same way every time; never without encryption', () => {
  assert.equal(networkKeyFrom('correct horse').length, 32)
  assert.equal(hex(networkKeyFrom('correct horse')), hex(networkKeyFrom('correct horse')))
  assert.notEqual(hex(networkKeyFrom('correct horse')), hex(networkKeyFrom('correct horsE')))
  assert.throws(() => networkKeyFrom(new Uint8Array(31)), (err: unknown) => err instanceof WeftError && err.code === 'ERR_BAD_ARGUMENT')
  assert.throws(() => networkKeyFrom(''), (err: unknown) => err instanceof WeftError && err.code === 'ERR_BAD_ARGUMENT')
  assert.throws(() => new Node({ networkKey: keyOf('net'), encrypt: false }), (err: unknown) => err instanceof WeftError && err.code === 'ERR_BAD_ARGUMENT')
})

test('members of a private network look up and put; outsiders get no answer at all, and are counted', () => seeded(async () => {
  const net = await createTestnet({ nodes: 6, seed: SEED, node: { networkKey: keyOf('net') } })
  const outsider = new Node({ identity: seededIdentity(SEED, 100) }) // no key
  const stranger = new Node({ identity: seededIdentity(SEED, 101), networkKey: keyOf('another net') })
  const plain = [new Node({ identity: seededIdentity(SEED, 102) }), new Node({ identity: seededIdentity(SEED, 103) })]
  try {
    for (const n of [outsider, stranger, ...plain]) await n.start()
    const [first, last] = [net.nodes[0], net.nodes[5]]
    // Members: lookups find everyone, a put reaches the others and a get reads it back.
    const found = await last.lookup(first.idHex)
    assert.equal(found.closest[0].address, first.address)
    const put = await first.dht.put(new TextEncoder().encode('members only'))
    assert.ok(put.stored >= 3, `stored on ${put.stored} nodes`)
    assert.equal(new TextDecoder().decode(await last.dht.get(put.key)), 'members only')
    // Outsiders: every request times out, and not one datagram came back.
    const target = net.nodes[2]
    const refusedBefore = target.status().sessions!.networkRefused
    await Promise.all([rejectsWith(outsider.ping(target.address), 'ERR_TIMEOUT'), rejectsWith(stranger.ping(target.address), 'ERR_TIMEOUT')])
    assert.equal(outsider.status().transport.packetsIn, 0, 'the outsider got no answer at all')
    assert.equal(stranger.status().transport.packetsIn, 0, 'the node with another key got no answer at all')
    const s = target.status().sessions!
    assert.ok(s.networkRefused - refusedBefore >= 2, `refusals counted: ${s.networkRefused}`)
    // Nodes without keys keep working among themselves.
    const pong = await plain[0].ping(plain[1].address)
    assert.equal(pong.id, plain[1].idHex)
    assert.equal(plain[1].status().sessions!.networkRefused, 0)
  } finally {
    await Promise.all([outsider, stranger, ...plain].map((n) => n.stop({ leave: false })))
    await net.close()
  }
}))
