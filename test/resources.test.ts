// The resource manager: a flood from many ports of one IP is refused past the per-host rate
// (counted), the per-address table and the handshake state stay within their bounds, and
// status().resources names every bound with its use.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createSocket, type Socket } from 'node:dgram'
import { randomBytes } from 'node:crypto'
import { Node } from '../src/node/node.js'
import { seededIdentity } from '../src/node/testnet.js'
import { SeededRandom } from '../src/runtime/prng.js'
import { encode, encodedSize, MessageType, type Request } from '../src/wire/messages.js'
import { expectedPongBytes } from '../src/rpc/rpc.js'

const SEED = process.env.WEFT_SEED ?? 'resources'
async function seeded(run: () => Promise<void>): Promise<void> {
  try { await run() } catch (err) { console.error(`seed: ${SEED} (WEFT_SEED overrides)`); throw err }
}

const PORTS = 150
const PER_PORT = 20

async function openSockets(n: number, onMessage: () => void): Promise<Socket[]> {
  return Promise.all(Array.from({ length: n }, () => new Promise<Socket>((resolve) => {
    const s = createSocket('udp4')
    s.on('message', onMessage)
    s.bind(0, '127.0.0.1', () => resolve(s))
  })))
}

/** Sends `perSocket` datagrams from each socket to `to`, yielding now and then so replies are read. */
async function flood(sockets: Socket[], to: string, perSocket: number, packet: (i: number) => Uint8Array): Promise<void> {
  const [host, port] = [to.slice(0, to.lastIndexOf(':')), Number(to.slice(to.lastIndexOf(':') + 1))]
  for (let round = 0; round < perSocket; round++) {
    for (let i = 0; i < sockets.length; i++) sockets[i].send(packet(round * sockets.length + i), port, host)
    await new Promise((r) => setImmediate(r))
  }
  await new Promise((r) => setTimeout(r, 200)) // the last replies
}

function checkResources(node: Node, names: string[]): void {
  const resources = node.status().resources
  for (const name of names) assert.ok(resources[name], `status().resources.${name}`)
  for (const [name, r] of Object.entries(resources)) {
    assert.ok(Number.isFinite(r.limit) && r.limit > 0, `${name}: a finite limit`)
    if (r.use !== null) assert.ok(r.use <= r.limit, `${name}: use ${r.use} <= limit ${r.limit}`)
    assert.match(r.option, /^[a-z]+\.[A-Za-z]+$/, `${name}: names its option`)
  }
}

test('requests from many ports of one IP are refused past the per-host rate; the tables stay bounded', () => seeded(async () => {
  const rate = 50, burst = 100, addressTableSize = 64
  const node = new Node({
    identity: seededIdentity(SEED, 0), encrypt: false,
    rpc: { exemptLoopback: false, hostRatePerSecond: rate, hostRateBurst: burst, addressTableSize },
  })
  await node.start()
  let replies = 0
  const sockets = await openSockets(PORTS, () => { replies++ })
  try {
    const random = new SeededRandom(`${SEED}`)
    const sender = random.bytes(32)
    const ping = (txid: number): Uint8Array => {
      const req: Request = { type: MessageType.PING, txid, sender, flags: 0, token: undefined, pad: 0 }
      req.pad = expectedPongBytes(node.address) - encodedSize(req) // no amplification: the answer fits the question
      return encode(req)
    }
    const started = performance.now()
    await flood(sockets, node.address, PER_PORT, ping)
    const seconds = (performance.now() - started) / 1000
    const s = node.status()
    // Refused past the rate, counted; what passed is within burst + rate x time. (The kernel may
    // drop some of the flood before the node reads it: the node's own count of datagrams is the base.)
    assert.ok(s.transport.packetsIn > 2 * burst && s.transport.packetsIn <= PORTS * PER_PORT, `${s.transport.packetsIn} datagrams reached the node`)
    assert.ok(s.rpc.hostRateLimited > 0, 'the per-host bucket refused')
    assert.equal(s.rpc.requestsIn + s.rpc.hostRateLimited + s.rpc.rateLimited, s.transport.packetsIn, 'every request counted once')
    assert.ok(s.rpc.requestsIn <= burst + rate * seconds + 1, `${s.rpc.requestsIn} accepted in ${seconds.toFixed(2)} s`)
    assert.ok(replies <= s.rpc.requestsIn)
    assert.equal(s.resources.requestRatePerHost.refused, s.rpc.hostRateLimited)
    // Refused requests never took a per-address slot: the table holds at most what passed, and its bound.
    assert.ok(s.resources.addressTable.use! <= Math.min(addressTableSize, s.rpc.requestsIn))
    checkResources(node, ['requestsInFlight', 'requestQueue', 'requestRatePerAddress', 'requestRatePerHost', 'addressTable', 'hostTable', 'records', 'recordBytes', 'relayAllocations', 'channels'])
  } finally {
    for (const s of sockets) s.close()
    await node.stop()
  }
}))

test('a handshake flood from many ports of one IP: refused past the per-host rate, half-open state bounded', () => seeded(async () => {
  const rate = 20, burst = 40, maxHalfOpen = 16
  const node = new Node({
    identity: seededIdentity(SEED, 1),
    sessions: { exemptLoopback: false, handshakesPerHostPerSecond: rate, handshakeBurstPerHost: burst, maxHalfOpen },
  })
  await node.start()
  let answers = 0
  const sockets = await openSockets(PORTS, () => { answers++ })
  try {
    // XX message 1: E1, pattern 0, sender index, an ephemeral key, padding to 160 bytes.
    const init = (i: number): Uint8Array => {
      const b = new Uint8Array(160)
      b[0] = 0xe1
      new DataView(b.buffer).setUint32(2, i)
      b.set(randomBytes(32), 6) // any 32 bytes: the keys' values do not matter to the bounds
      return b
    }
    const started = performance.now()
    await flood(sockets, node.address, 5, init)
    const seconds = (performance.now() - started) / 1000
    const s = node.status()
    const sessions = s.sessions!
    assert.ok(sessions.handshakesRateLimited > 0, 'the per-host handshake bucket refused')
    assert.ok(sessions.handshakesAnswered <= burst + rate * seconds + 1, `${sessions.handshakesAnswered} answered in ${seconds.toFixed(2)} s`)
    assert.ok(answers <= sessions.handshakesAnswered)
    assert.ok(s.resources.halfOpenHandshakes.use! <= maxHalfOpen)
    assert.ok(s.resources.sessions.use! <= s.resources.sessions.limit)
    assert.equal(s.resources.handshakeRatePerHost.refused, sessions.handshakesRateLimited)
    checkResources(node, ['sessions', 'halfOpenHandshakes', 'handshakeHosts', 'handshakeRatePerHost', 'sessionQueuePerPeer', 'knownKeys', 'requestsInFlight', 'requestRatePerHost'])
  } finally {
    for (const s of sockets) s.close()
    await node.stop()
  }
}))

test('loopback is exempt by default: a devnet on 127.0.0.1 is not throttled per host', () => seeded(async () => {
  const node = new Node({ identity: seededIdentity(SEED, 2), encrypt: false })
  const other = new Node({ identity: seededIdentity(SEED, 3), encrypt: false })
  try {
    await node.start()
    await other.start()
    for (let i = 0; i < 5; i++) await other.ping(node.address)
    assert.equal(node.status().rpc.hostRateLimited, 0)
    assert.equal(node.status().resources.hostTable.use, 0, 'loopback sources take no host bucket')
  } finally {
    await other.stop()
    await node.stop()
  }
}))
