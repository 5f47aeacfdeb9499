// Garbage at a live node's UDP port is counted and dropped, and the node keeps answering.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createSocket } from 'node:dgram'
import { Node } from '../src/node/node.js'
import { SeededRandom } from '../src/runtime/prng.js'
import { decode, encode, MessageType, MAX_PACKET } from '../src/wire/messages.js'

const SEED = process.env.WEFT_SEED ?? 'bad-input-1'

// Plaintext nodes: the rpc decoder meets the garbage directly (on encrypted nodes it meets only
// what authenticated peers sealed). Encrypted nodes: the session layer drops it first.
for (const encrypt of [false, true]) test(`thousands of malformed datagrams are counted and dropped (${encrypt ? 'encrypted' : 'plaintext'}, seed ${SEED})`, async () => {
  const node = new Node({ encrypt, rpc: { ratePerSecond: 1e6, rateBurst: 1e6 } })
  const client = new Node({ encrypt, readOnly: true })
  await node.start()
  await client.start()
  const sock = createSocket('udp4')
  try {
    const rnd = new SeededRandom(SEED)
    const [host, port] = [node.address.split(':')[0], Number(node.address.split(':')[1])]
    const valid = encode({ type: MessageType.FIND_NODE, txid: 7, sender: rnd.bytes(32), flags: 0, target: rnd.bytes(32), pad: 0 })
    const kinds = {
      random: () => rnd.bytes(1 + (rnd.u32() % 200)),
      truncated: () => valid.slice(0, rnd.u32() % valid.length),
      oversized: () => new Uint8Array(MAX_PACKET + 1 + (rnd.u32() % 4000)),
      wrongVersion: () => { const b = valid.slice(); b[1] = 2 + (rnd.u32() % 250); return b },
      badType: () => { const b = valid.slice(); b[2] = 10 + (rnd.u32() % 246); return b },
    }
    const sent = 4000
    const send = (b: Uint8Array) => new Promise<void>((r) => sock.send(b, port, host, () => r()))
    const names = Object.keys(kinds) as (keyof typeof kinds)[]
    for (let i = 0; i < sent; i++) {
      await send(kinds[names[i % names.length]]())
      if (i % 500 === 0) assert.ok((await client.ping(node.address)).rttMs >= 0) // still answering
    }
    await new Promise((r) => setTimeout(r, 200))
    const s = node.status()
    const sessionDrops = s.sessions ? s.sessions.malformed + s.sessions.misdirected + s.sessions.handshakeFailures : 0
    const dropped = s.rpc.malformed + s.transport.oversizeDropped + sessionDrops
    console.log(`sent ${sent} bad datagrams; dropped ${dropped}:`, JSON.stringify({ ...s.rpc.malformedByCode, oversize: s.transport.oversizeDropped, sessionDrops }))
    // A random datagram decodes by chance only if it matches the magic, version and layout.
    assert.ok(dropped >= sent * 0.99, `only ${dropped} of ${sent} counted as dropped`)
    if (encrypt) {
      assert.ok(s.sessions!.malformed >= 2400, 'plaintext never reaches the rpc layer of an encrypted node')
      assert.equal(s.rpc.malformed, 0)
    } else {
      assert.ok(s.rpc.malformedByCode.ERR_VERSION! >= 700)
      assert.ok(s.rpc.malformedByCode.ERR_UNKNOWN_TYPE! >= 700)
    }
    assert.ok(s.transport.oversizeDropped >= 700)
    const pong = await client.ping(node.address)
    assert.equal(pong.id, node.idHex)
  } finally {
    sock.close()
    await client.stop()
    await node.stop()
  }
})

// The rpc layer's own defences, seen from a raw plaintext socket (test/session.test.ts covers handshakes).
test('a request from an unproven address never gets a larger reply (no amplification)', async () => {
  const node = new Node({ encrypt: false })
  const filler = await Promise.all(Array.from({ length: 25 }, () => new Node({ encrypt: false, bootstrap: [] })))
  await node.start()
  for (const f of filler) { f.options.bootstrap = [node.address]; await f.start() }
  const sock = createSocket('udp4')
  try {
    const rnd = new SeededRandom('amp')
    const req = encode({ type: MessageType.FIND_NODE, txid: 1, sender: rnd.bytes(32), flags: 0x04, target: rnd.bytes(32), pad: 0 })
    const [host, port] = [node.address.split(':')[0], Number(node.address.split(':')[1])]
    const reply = await new Promise<Buffer>((resolve) => {
      sock.once('message', (m) => resolve(m))
      sock.send(req, port, host)
    })
    assert.ok(reply.length <= req.length, `reply of ${reply.length} bytes to a ${req.length}-byte request`)
    assert.equal(reply[3] & 0x02, 0x02, 'reply is marked truncated')
    // A padded request (as Weft clients send) gets the full answer.
    const lookup = await filler[0].lookup(rnd.bytes(32))
    assert.equal(lookup.closest.length, 20)
  } finally {
    sock.close()
    await Promise.all([node.stop(), ...filler.map((f) => f.stop())])
  }
})

test('a peer that hands out unreachable contacts (port 0) cannot take a node down', async () => {
  const fake = createSocket('udp4')
  await new Promise<void>((r) => fake.bind(0, '127.0.0.1', () => r()))
  const rnd = new SeededRandom('port0')
  const fakeId = rnd.bytes(32)
  // A "peer" that answers every request with contacts nobody can be sent to.
  fake.on('message', (msg, rinfo) => {
    const d = decode(msg)
    if (!d.ok || (d.message.type !== MessageType.FIND_NODE && d.message.type !== MessageType.PING)) return
    const contacts = Array.from({ length: 5 }, () => ({ id: rnd.bytes(32), address: '127.0.0.1:0' }))
    const head = { txid: d.message.txid, sender: fakeId, flags: 0, token: 1, observed: `${rinfo.address}:${rinfo.port}` }
    fake.send(encode(d.message.type === MessageType.PING ? { ...head, type: MessageType.PONG } : { ...head, type: MessageType.NODES, contacts }), rinfo.port, rinfo.address)
  })
  const node = new Node({ encrypt: false, bootstrap: [`127.0.0.1:${(fake.address() as { port: number }).port}`], rpc: { maxRetries: 1, minTimeoutMs: 20, maxTimeoutMs: 100 } })
  try {
    await node.start()
    await node.lookup(rnd.bytes(32))
    // Sending to port 0 fails in the socket; the request simply times out, retries included.
    await assert.rejects(node.ping('127.0.0.1:0'), (e: unknown) => (e as { code?: string }).code === 'ERR_TIMEOUT')
    await new Promise((r) => setTimeout(r, 300))
    assert.equal((await node.ping(`127.0.0.1:${(fake.address() as { port: number }).port}`)).id.length, 64)
  } finally {
    fake.close()
    await node.stop()
  }
})
