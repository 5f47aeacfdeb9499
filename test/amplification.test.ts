// Amplification (issue 10, must-show 4): a stranger that has not proven its address (no round-trip
// token) must never get back more bytes than it sent. Every request type of wire/messages.ts, each
// op, at several sizes from the smallest valid one, goes over real UDP on 127.0.0.1 to a live node
// that holds enough state to answer big (a few dozen peers, provider records, a gossip channel with
// a cached broadcast, SWIM members, Tapestry pointers). Everything that reaches the stranger's
// socket within a window after its one request counts as the reply (dial-back probes from other
// ports too). Encrypted: the Noise handshake's first messages are requests too (IK carrying the
// request, XX's first message alone), and the sealed reply is compared with the sealed request.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createSocket, type Socket } from 'node:dgram'
import { createHash } from 'node:crypto'
import { createTestnet, seededIdentity, type Testnet } from '../src/node/testnet.js'
import type { Node } from '../src/node/node.js'
import { identityFromSeed, type Identity } from '../src/identity/keys.js'
import { SeededRandom } from '../src/runtime/prng.js'
import { realRuntime, udpNetwork } from '../src/runtime/udp.js'
import { PacketTransport } from '../src/transport/transport.js'
import { SecureTransport, SESSION_OVERHEAD } from '../src/transport/session.js'
import {
  BroadcastOp, ConnectOp, decode, encode, encodedSize, Flag, LocateOp, MAX_PACKET, MembershipOp, MessageType, Neighbors, senderIdOf, senderIdOffset,
  type Message, type Request,
} from '../src/wire/messages.js'
import { encodeSwim } from '../src/gossip/swim-codec.js'
import { SwimType, UpdateKind, type SwimMessage } from '../src/gossip/swim.js'
import { SYNC_REQUEST } from '../src/gossip/membership.js'
import { broadcastId } from '../src/gossip/plumtree.js'
import type { Gossip } from '../src/gossip/gossip.js'
import { encodeRecord } from '../src/services/dht/records.js'

const SEED = process.env.WEFT_SEED ?? 'amplification-1'
/** Long enough for a dial-back's probes (250 ms delay, every 250 ms for 2 s) and a SWIM probe round. */
const WINDOW_MS = 2600
const PADS = [0, 64, 400] // the smallest valid request, and larger ones
const PEERS = 24

interface Target {
  node: Node
  net: Testnet
  /** A gossip channel the target is in, with one broadcast in its cache. */
  channel: Uint8Array
  cachedId: Uint8Array
  /** A key under which the target holds many provider records. */
  providerKey: Uint8Array
  object: Uint8Array
  /** Addresses and ids (hex) of every node of the target's network. */
  addresses: Set<string>
  ids: Set<string>
}

interface Stranger { id: Uint8Array; address: string }

/** One request per (type, op): what a stranger can send. */
function catalogue(t: Target, me: Stranger, rnd: SeededRandom): { name: string; req: Request }[] {
  const h = { txid: rnd.u32(), sender: me.id, flags: Flag.READ_ONLY, token: undefined, pad: 0 }
  const swim = (m: SwimMessage): Uint8Array => encodeSwim(m, (x) => (x === 0 ? me : { id: t.node.id, address: t.node.address }))
  const payload = rnd.bytes(300)
  const out: { name: string; req: Request }[] = [
    { name: 'PING', req: { ...h, type: MessageType.PING } },
    { name: 'FIND_NODE', req: { ...h, type: MessageType.FIND_NODE, target: rnd.bytes(32) } },
    // Looking up its own id, not read-only: "I am joining" (the target welcomes joiners with records).
    { name: 'FIND_NODE join', req: { ...h, flags: 0, type: MessageType.FIND_NODE, target: me.id } },
    { name: 'GET providers', req: { ...h, type: MessageType.GET, target: t.providerKey } },
    { name: 'PUT', req: { ...h, type: MessageType.PUT, record: encodeRecord({ kind: 'immutable', value: rnd.bytes(40) }) } },
    ...Object.entries(Neighbors).map(([k, what]) => ({ name: `NEIGHBORS ${k}`, req: { ...h, type: MessageType.NEIGHBORS, what, arg: 0 } as Request })),
    ...Object.entries(LocateOp).map(([k, op]) => ({ name: `LOCATE ${k}`, req: { ...h, type: MessageType.LOCATE, op, object: t.object, hop: 0, ttlSec: 60 } as Request })),
    ...Object.entries(ConnectOp).map(([k, op]) => ({ name: `CONNECT ${k}`, req: { ...h, type: MessageType.CONNECT, op, address: me.address } as Request })),
    ...Object.entries(MembershipOp).map(([k, op]) => ({
      name: `MEMBERSHIP ${k}`,
      req: { ...h, type: MessageType.MEMBERSHIP, op, channel: t.channel, ttl: op === MembershipOp.SHUFFLE ? 1 : 0, priority: 1, contacts: op === MembershipOp.JOIN || op === MembershipOp.NEIGHBOR || op === MembershipOp.DISCONNECT ? [] : [me] } as Request,
    })),
    { name: 'BROADCAST GOSSIP', req: { ...h, type: MessageType.BROADCAST, op: BroadcastOp.GOSSIP, channel: t.channel, round: 0, ids: [broadcastId(payload)], payload } },
    { name: 'BROADCAST IHAVE', req: { ...h, type: MessageType.BROADCAST, op: BroadcastOp.IHAVE, channel: t.channel, round: 0, ids: [rnd.bytes(16)], payload: new Uint8Array(0) } },
    { name: 'BROADCAST GRAFT', req: { ...h, type: MessageType.BROADCAST, op: BroadcastOp.GRAFT, channel: t.channel, round: 0, ids: [t.cachedId], payload: new Uint8Array(0) } },
    { name: 'BROADCAST PRUNE', req: { ...h, type: MessageType.BROADCAST, op: BroadcastOp.PRUNE, channel: t.channel, round: 0, ids: [], payload: new Uint8Array(0) } },
    { name: 'BROADCAST STEM', req: { ...h, type: MessageType.BROADCAST, op: BroadcastOp.STEM, channel: t.channel, round: 0, ids: [broadcastId(payload)], payload } },
    { name: 'SWIM PING', req: { ...h, type: MessageType.SWIM, txid: 0, payload: swim({ type: SwimType.PING, seq: 1, target: 1, updates: [] }) } },
    { name: 'SWIM PING_REQ', req: { ...h, type: MessageType.SWIM, txid: 0, payload: swim({ type: SwimType.PING_REQ, seq: 2, target: 1, updates: [] }) } },
    { name: 'SWIM ACK', req: { ...h, type: MessageType.SWIM, txid: 0, payload: swim({ type: SwimType.ACK, seq: 3, updates: [] }) } },
    { name: 'SWIM NACK', req: { ...h, type: MessageType.SWIM, txid: 0, payload: swim({ type: SwimType.NACK, seq: 4, updates: [] }) } },
    { name: 'SWIM GOSSIP sync', req: { ...h, type: MessageType.SWIM, txid: 0, payload: swim({ type: SwimType.GOSSIP, seq: SYNC_REQUEST, updates: [{ kind: UpdateKind.ALIVE, member: 0, incarnation: 1, from: 0 }] }) } },
  ]
  return out
}

function padded(req: Request, pad: number): Request | null {
  const r = { ...req, pad } as Request
  return encodedSize(r) <= MAX_PACKET ? r : null
}

async function bindSocket(): Promise<Socket> {
  const s = createSocket('udp4')
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve))
  return s
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const [hostOf, portOf] = [(a: string) => a.slice(0, a.lastIndexOf(':')), (a: string) => Number(a.slice(a.lastIndexOf(':') + 1))]

interface Outcome { name: string; sent: number; received: number[] }

/**
 * Whether a datagram that reached a stranger's socket came from the target's network (any of its
 * nodes: a request can make the target's peers send too), or is a path-layer probe (dial-backs
 * leave from fresh ports). Other tests on this machine run nodes on loopback too, and a port they
 * used may be the one a stranger was given: their datagrams are not replies.
 */
function fromTarget(t: Target, b: Uint8Array, from: string): boolean {
  if (t.addresses.has(from) || (b[0] >= 0xd0 && b[0] <= 0xd3)) return true
  const sender = senderIdOf(b)
  return sender !== null && t.ids.has(Buffer.from(sender).toString('hex'))
}

/** SWIM requests go in a round of their own, after the others: a SWIM stranger becomes a member and draws probes. */
const isSwim = (name: string): boolean => name.startsWith('SWIM')
/** SWIM outcomes of every target, asserted in a test of their own (a known open problem: see the todo test). */
const swimOutcomes: string[] = []

/** Plaintext: one socket per request, all at once; then everything each socket got in the window. */
async function plaintextRound(t: Target, rnd: SeededRandom, swim = false): Promise<Outcome[]> {
  const jobs: { name: string; sock: Socket; bytes: Uint8Array; received: number[] }[] = []
  for (const pad of PADS) {
    const sock = await bindSocket()
    const me = { id: rnd.bytes(32), address: `127.0.0.1:${sock.address().port}` }
    sock.close()
    for (const { name, req } of catalogue(t, me, rnd)) {
      if (isSwim(name) !== swim) continue
      const r = padded(req, pad)
      if (!r) continue
      const s = await bindSocket()
      const self = { id: r.sender, address: `127.0.0.1:${s.address().port}` }
      // The stranger names itself where a message carries contacts or an address.
      const mine = rebind(r, me.address, self.address)
      const job = { name: `${name} (pad ${pad})`, sock: s, bytes: encode(mine), received: [] as number[] }
      s.on('message', (m, rinfo) => { if (fromTarget(t, m, `${rinfo.address}:${rinfo.port}`)) job.received.push(m.length) })
      jobs.push(job)
    }
  }
  for (const j of jobs) j.sock.send(j.bytes, portOf(t.node.address), hostOf(t.node.address))
  await sleep(WINDOW_MS)
  for (const j of jobs) j.sock.close()
  return jobs.map((j) => ({ name: j.name, sent: j.bytes.length, received: j.received }))
}

/** The same request with the stranger's placeholder address replaced by the socket's real one. */
function rebind(r: Request, from: string, to: string): Request {
  if (r.type === MessageType.CONNECT && r.address === from) return { ...r, address: to }
  if (r.type === MessageType.MEMBERSHIP) return { ...r, contacts: r.contacts.map((c) => (c.address === from ? { ...c, address: to } : c)) }
  if (r.type === MessageType.SWIM) {
    // The SWIM payload names the stranger by id and packed address: re-encode with the real port.
    const text = Buffer.from(r.payload)
    const a = Buffer.alloc(7); a[0] = 4; a.set([127, 0, 0, 1], 1)
    const oldPort = portOf(from), newPort = portOf(to)
    a.writeUInt16BE(oldPort, 5)
    const at = text.indexOf(a)
    if (at >= 0) text.writeUInt16BE(newPort, at + 5)
    return { ...r, payload: new Uint8Array(text) }
  }
  return r
}

/** Encrypted: a real SecureTransport per stranger; what its UDP socket sent and got. */
async function encryptedRound(t: Target, rnd: SeededRandom, pattern: 'IK' | 'XX', swim = false): Promise<(Outcome & { packetsOut: number[] })[]> {
  const jobs: { name: string; sec: SecureTransport; out: number[]; in: number[]; bytes: Uint8Array }[] = []
  let n = 0
  for (const pad of pattern === 'IK' ? PADS : [0]) {
    const identity: Identity = identityFromSeed(createHash('sha256').update(`${SEED}:stranger:${pattern}:${pad}`).digest())
    const list = pattern === 'IK' ? catalogue(t, { id: identity.id, address: '127.0.0.1:1' }, rnd) : [{ name: 'PING', req: catalogue(t, { id: identity.id, address: '127.0.0.1:1' }, rnd)[0].req }]
    for (const { name, req } of list) {
      if (isSwim(name) !== swim) continue
      const id = identityFromSeed(createHash('sha256').update(`${SEED}:stranger:${pattern}:${pad}:${n++}`).digest())
      const endpoint = await udpNetwork.bind('127.0.0.1', 0)
      const out: number[] = [], got: number[] = []
      const send = endpoint.send.bind(endpoint)
      endpoint.send = (to, b) => { out.push(b.length); send(to, b) }
      const packets = new PacketTransport(endpoint, MAX_PACKET + SESSION_OVERHEAD + 20)
      const deliver = endpoint.onPacket
      endpoint.onPacket = (from, b) => { if (fromTarget(t, b, from)) got.push(b.length); deliver(from, b) }
      const sec = new SecureTransport(packets, realRuntime, id, senderIdOffset, { maxPacket: MAX_PACKET })
      sec.onPacket = () => {}
      if (pattern === 'IK') sec.addPeerKey(t.node.address, t.node.identity.publicKey)
      const r = padded({ ...req, sender: id.id } as Request, pad)
      if (!r) { await sec.close(); continue }
      const bytes = encode(rebind(r, '127.0.0.1:1', endpoint.address))
      jobs.push({ name: `${pattern} ${name} (pad ${pad})`, sec, out, in: got, bytes })
    }
  }
  for (const j of jobs) j.sec.send(t.node.address, j.bytes)
  await sleep(WINDOW_MS)
  for (const j of jobs) await j.sec.close()
  return jobs.map((j) => ({ name: j.name, sent: j.out.reduce((a, b) => a + b, 0), packetsOut: j.out, received: j.in }))
}

async function makeTarget(encrypt: boolean, topology: 'kademlia' | 'tapestry' | 'chord'): Promise<Target> {
  const net = await createTestnet({ nodes: PEERS, seed: `${SEED}:${topology}:${encrypt}`, node: { encrypt, topology, membership: topology === 'kademlia' } })
  const node = net.nodes[0]
  const rnd = new SeededRandom(`${SEED}:state`)
  // Provider records: a dozen peers announce under one key that the target holds.
  const providerKey = createHash('sha256').update(`${SEED}:topic`).digest()
  if (topology === 'kademlia') await Promise.all(net.nodes.slice(1, 13).map((n) => n.dht.announce(providerKey).catch(() => {})))
  // A gossip channel with the target in it and one broadcast in its cache.
  const channel = createHash('sha256').update(`${SEED}:channel`).digest()
  const gossipOf = (n: Node) => (n as unknown as { gossipLayer: Gossip }).gossipLayer
  const c0 = gossipOf(node).open(channel, () => {})
  for (const n of net.nodes.slice(1, 5)) await gossipOf(n).open(channel, () => {}).joinAsync([node.address]).catch(() => {})
  const cachedId = c0.broadcast(rnd.bytes(1000))!
  // Tapestry: pointers to an object on the target.
  const object = createHash('sha256').update(`${SEED}:object`).digest()
  if (topology === 'tapestry') await node.tapestry.publish(object).catch(() => {})
  return { node, net, channel, cachedId, providerKey, object, addresses: new Set(net.nodes.map((n) => n.address)), ids: new Set(net.nodes.map((n) => n.idHex)) }
}

function report(title: string, outcomes: Outcome[]): string[] {
  const bad: string[] = []
  for (const o of outcomes) {
    const got = o.received.reduce((a, b) => a + b, 0)
    if (got > o.sent) bad.push(`${title} ${o.name}: sent ${o.sent} bytes, got ${got} (${o.received.join(' + ')})`)
  }
  const answered = outcomes.filter((o) => o.received.length > 0).length
  console.log(`${title}: ${outcomes.length} requests, ${answered} answered, ${bad.length} amplified`)
  return bad
}

test(`no unauthenticated request gets more bytes back than it sent: plaintext, every type (seed ${SEED})`, { timeout: 120_000 }, async () => {
  const rnd = new SeededRandom(`${SEED}:plain`)
  const bad: string[] = []
  for (const topology of ['kademlia', 'tapestry', 'chord'] as const) {
    const t = await makeTarget(false, topology)
    try {
      if (topology === 'kademlia') await provenGetsMore(t)
      const outcomes = await plaintextRound(t, rnd)
      // Every type reached the node's decoder and handler (none was malformed).
      assert.equal(t.node.status().rpc.malformed, 0, JSON.stringify(t.node.status().rpc.malformedByCode))
      bad.push(...report(`plaintext ${topology}`, outcomes))
      if (topology === 'kademlia') swimOutcomes.push(...report('plaintext SWIM', await plaintextRound(t, rnd, true)))
    } finally {
      await t.net.close()
    }
  }
  assert.deepEqual(bad, [])
})

/** The node holds enough to answer big: a proven asker gets a VALUES far larger than its request, a stranger a trimmed one. */
async function provenGetsMore(t: Target): Promise<void> {
  const sock = await bindSocket()
  const replies: Message[] = []
  sock.on('message', (m) => { const r = decode(m); if (r.ok) replies.push(r.message) })
  const to = (b: Uint8Array) => sock.send(b, portOf(t.node.address), hostOf(t.node.address))
  const sender = new Uint8Array(32).fill(9)
  const get = (token?: number) => encode({ type: MessageType.GET, txid: 1, sender, flags: Flag.READ_ONLY, token, pad: 0, target: t.providerKey })
  to(get())
  await sleep(200)
  const first = replies.shift()
  assert.ok(first && first.type === MessageType.VALUES, 'the stranger gets an answer')
  assert.ok(first.flags & Flag.TRUNCATED, 'cut to the request size')
  const strangerBytes = encode(first).length
  to(get(first.token))
  await sleep(200)
  const full = replies.shift()
  sock.close()
  assert.ok(full && full.type === MessageType.VALUES)
  const fullBytes = encode(full).length
  console.log(`GET of ${get().length} bytes: stranger ${strangerBytes} bytes (${first.records.length} records, ${first.contacts.length} contacts), proven ${fullBytes} bytes (${full.records.length} records, ${full.contacts.length} contacts)`)
  assert.ok(strangerBytes <= get().length)
  assert.ok(fullBytes > 4 * get().length, 'a proven asker gets the whole answer')
}

test(`no unauthenticated request gets more bytes back than it sent: encrypted, handshakes included (seed ${SEED})`, { timeout: 120_000 }, async () => {
  const rnd = new SeededRandom(`${SEED}:sealed`)
  const t = await makeTarget(true, 'kademlia')
  try {
    const ik = await encryptedRound(t, rnd, 'IK')
    const xx = await encryptedRound(t, rnd, 'XX')
    const bad = [...report('encrypted IK', ik), ...report('encrypted XX', xx)]
    // The handshake's first answer alone: RESP never larger than the INIT it answers.
    for (const o of [...ik, ...xx]) if (o.received.length) assert.ok(o.received[0] <= o.packetsOut[0], `${o.name}: RESP ${o.received[0]} > INIT ${o.packetsOut[0]}`)
    assert.ok(t.node.status().sessions!.handshakesAnswered >= ik.length)
    swimOutcomes.push(...report('encrypted IK SWIM', await encryptedRound(t, rnd, 'IK', true)))
    assert.deepEqual(bad, [])
  } finally {
    await t.net.close()
  }
})

// SWIM: a stranger's message (e.g. a GOSSIP naming itself alive) is dropped unless it carries a
// round-trip token, so it cannot make the node probe and gossip to an address it does not own.
test('SWIM: a stranger gets no more bytes than it sent', () => {
  assert.deepEqual(swimOutcomes, [])
})
