// The rpc layer in the deterministic MemoryWorld: retries and back-off, the in-flight window, rate
// limits, round-trip tokens and anti-amplification. Every run is fixed by WEFT_SEED (default rpc-1).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { WeftError, type ErrorCode } from '../src/errors.js'
import { SeededRandom } from '../src/runtime/prng.js'
import { MemoryWorld } from '../src/runtime/memory.js'
import { expectedNodesReplyBytes, expectedPongBytes, Rpc, type ReplyBody, type RpcOptions } from '../src/rpc/rpc.js'
import { PacketTransport } from '../src/transport/transport.js'
import { canonicalAddress, type Address } from '../src/wire/address.js'
import {
  decode, encode, ErrorReplyCode, Flag, HEADER_BYTES, MAX_PACKET, MessageType, TOKEN_BYTES, type Message, type Reply,
} from '../src/wire/messages.js'

const SEED = process.env.WEFT_SEED ?? 'rpc-1'
const LATENCY = 10 // one-way virtual ms on every link, so times below are exact
// The first timeout to an unmeasured peer: srtt + 4 * rttvar with both at initialTimeoutMs / 3.
const BASE: Partial<RpcOptions> = { initialTimeoutMs: 300, minTimeoutMs: 50, maxTimeoutMs: 3000, maxRetries: 2 }
const FIRST_TIMEOUT = 500

interface Sent { at: number; to: Address; bytes: Uint8Array }
interface Peer { rpc: Rpc; transport: PacketTransport; address: Address; sent: Sent[]; world: MemoryWorld }

function newWorld(name: string, latency: (from: Address, to: Address) => number = () => LATENCY): MemoryWorld {
  return new MemoryWorld(`${SEED}:${name}`, { latency: (f, t) => latency(f, t), loss: 0 })
}

/** An Rpc on its own endpoint; every datagram it sends is logged. `resolve` maps names to addresses as a UDP socket would. */
async function peer(world: MemoryWorld, host: string, label: string, options: Partial<RpcOptions> = {}, resolve = false): Promise<Peer> {
  const endpoint = await world.bind(host, 4000)
  const transport = new PacketTransport(endpoint, MAX_PACKET)
  const sent: Sent[] = []
  const send = transport.send.bind(transport)
  transport.send = (to, bytes) => {
    sent.push({ at: world.now(), to, bytes: bytes.slice() })
    send(resolve ? canonicalAddress(to) : to, bytes)
  }
  const id = new SeededRandom(`${world.seed}:${label}:id`).bytes(32)
  const rpc = new Rpc(world.runtime(label), transport, id, { ...BASE, ...options })
  return { rpc, transport, address: endpoint.address, sent, world }
}

/** A bare endpoint that sends hand-made packets and records what comes back. */
async function raw(world: MemoryWorld, host: string) {
  const endpoint = await world.bind(host, 4000)
  const got: { from: Address; bytes: Uint8Array; message: Message | null }[] = []
  endpoint.onPacket = (from, bytes) => {
    const r = decode(bytes)
    got.push({ from, bytes, message: r.ok ? r.message : null })
  }
  return { endpoint, got, send: (to: Address, m: Message) => { const b = encode(m); endpoint.send(to, b); return b } }
}

function contacts(n: number): { id: Uint8Array; address: Address }[] {
  const rnd = new SeededRandom(`${SEED}:contacts`)
  return Array.from({ length: n }, (_, i) => ({ id: rnd.bytes(32), address: `10.1.${i >> 8}.${i & 0xff}:4000` }))
}

/** Serves PING with PONG and FIND_NODE with `n` IPv4 contacts. */
function serve(p: Peer, n = 20): void {
  const list = contacts(n)
  p.rpc.onRequest = (_from, req): ReplyBody => req.type === MessageType.PING ? { type: MessageType.PONG } : { type: MessageType.NODES, contacts: list }
}

const isCode = (code: ErrorCode, message?: RegExp) => (e: unknown) =>
  e instanceof WeftError && e.code === code && (!message || message.test(e.message))
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')
const ctx = (what: string) => `${what} (WEFT_SEED=${SEED})`
const decoded = (b: Uint8Array): Message => { const r = decode(b); assert.ok(r.ok, ctx('undecodable bytes')); return r.message }
const target = new Uint8Array(32).fill(0x42)

// ---- timeouts and retries ----------------------------------------------------------------------

test(`a request to a silent address fails with ERR_TIMEOUT after 1 + maxRetries copies, backing off (seed ${SEED})`, async () => {
  for (const maxRetries of [0, 1, 2, 3]) {
    const world = newWorld(`silent-${maxRetries}`)
    const c = await peer(world, '10.0.0.1', 'client', { maxRetries, maxTimeoutMs: 10_000 })
    const started = world.now()
    const p = c.rpc.requestAsync('10.0.0.2:4000', { type: MessageType.PING }, expectedPongBytes('10.0.0.2:4000'))
    await assert.rejects(world.settle(p), isCode('ERR_TIMEOUT', new RegExp(`after ${1 + maxRetries} attempts`)), ctx(`maxRetries=${maxRetries}`))
    assert.equal(c.sent.length, 1 + maxRetries, ctx('transmissions'))
    assert.equal(world.stats.datagrams, 1 + maxRetries, ctx('datagrams in the world'))
    assert.equal(c.transport.stats.packetsOut, 1 + maxRetries)
    for (const s of c.sent) assert.equal(hex(s.bytes), hex(c.sent[0].bytes), ctx('a retry is the same datagram, same txid'))
    // Each wait doubles: 500, 1000, 2000, 4000 ms (the last wait ends in the failure).
    const gaps = c.sent.slice(1).map((s, i) => s.at - c.sent[i].at)
    assert.deepEqual(gaps, Array.from({ length: maxRetries }, (_, i) => FIRST_TIMEOUT * 2 ** i), ctx('back-off'))
    assert.equal(world.now() - started, FIRST_TIMEOUT * (2 ** (maxRetries + 1) - 1), ctx('time to fail'))
    assert.deepEqual([c.rpc.stats.retries, c.rpc.stats.timeouts, c.rpc.inFlight], [maxRetries, 1, 0])
  }
})

test(`the back-off stops growing at maxTimeoutMs (seed ${SEED})`, async () => {
  const world = newWorld('cap')
  const c = await peer(world, '10.0.0.1', 'client', { maxRetries: 4, maxTimeoutMs: 1200 })
  await assert.rejects(world.settle(c.rpc.requestAsync('10.0.0.2:4000', { type: MessageType.PING }, 64)), isCode('ERR_TIMEOUT'))
  const gaps = c.sent.slice(1).map((s, i) => s.at - c.sent[i].at)
  assert.deepEqual(gaps, [500, 1000, 1200, 1200], ctx('capped back-off'))
})

test(`a peer that answers only the second copy still completes the request (seed ${SEED})`, async () => {
  const world = newWorld('second-copy')
  const c = await peer(world, '10.0.0.1', 'client')
  const s = await peer(world, '10.0.0.2', 'server')
  serve(s)
  const receive = s.transport.onPacket
  let copies = 0
  s.transport.onPacket = (from, bytes) => { if (++copies >= 2) receive(from, bytes) }
  const { reply, rttMs } = await world.settle(c.rpc.requestAsync(s.address, { type: MessageType.PING }, expectedPongBytes(s.address)))
  assert.equal(reply.type, MessageType.PONG)
  assert.equal(hex(reply.sender), hex(s.rpc.id))
  assert.equal(copies, 2)
  assert.equal(c.sent.length, 2, ctx('one retry'))
  assert.equal(hex(c.sent[1].bytes), hex(c.sent[0].bytes), ctx('same txid on the retry'))
  assert.equal(world.now(), FIRST_TIMEOUT + 2 * LATENCY)
  assert.equal(rttMs, 2 * LATENCY, 'measured from the copy that was answered')
  assert.deepEqual([c.rpc.stats.retries, c.rpc.stats.timeouts, c.rpc.stats.repliesIn], [1, 0, 1])
})

test(`a late reply to the first copy completes the request; the duplicate reply is dropped (seed ${SEED})`, async () => {
  // Replies take 600 ms to come back: longer than the first timeout, shorter than the second.
  const world = newWorld('late', (from) => (from === '10.0.0.2:4000' ? 600 : LATENCY))
  const c = await peer(world, '10.0.0.1', 'client')
  const s = await peer(world, '10.0.0.2', 'server')
  serve(s)
  const { reply } = await world.settle(c.rpc.requestAsync(s.address, { type: MessageType.PING }, expectedPongBytes(s.address)))
  assert.equal(reply.type, MessageType.PONG)
  assert.equal(world.now(), LATENCY + 600, ctx('the first copy’s reply completed it'))
  await world.run()
  assert.equal(s.sent.length, 2, 'the server answered both copies')
  assert.equal(c.rpc.stats.unmatchedReplies, 1, ctx('the second reply matches nothing'))
  assert.equal(c.rpc.stats.timeouts, 0)
})

// ---- the in-flight window ------------------------------------------------------------------

test(`maxInFlight=2 and maxQueued=3: of 6 requests at once, one is ERR_BUSY and five are served (seed ${SEED})`, async () => {
  const world = newWorld('window')
  const c = await peer(world, '10.0.0.1', 'client', { maxInFlight: 2, maxQueued: 3 })
  const s = await peer(world, '10.0.0.2', 'server')
  serve(s)
  let most = 0
  s.rpc.onRequest = (_from, req) => { most = Math.max(most, c.rpc.inFlight); return req.type === MessageType.PING ? { type: MessageType.PONG } : null }
  const results: (string | null)[] = []
  const all = Array.from({ length: 6 }, (_, i) => c.rpc.requestAsync(s.address, { type: MessageType.PING }, expectedPongBytes(s.address))
    .then(() => { results[i] = 'ok' }, (e: WeftError) => { results[i] = e.code }))
  assert.equal(c.rpc.inFlight, 2)
  await world.settle(Promise.all(all))
  assert.deepEqual(results, ['ok', 'ok', 'ok', 'ok', 'ok', 'ERR_BUSY'], ctx('results'))
  assert.equal(c.rpc.stats.queueFull, 1)
  assert.ok(most <= 2, ctx(`${most} requests were in flight at once`))
  // Two go at once; each reply (after 2 * LATENCY) lets the next queued one go.
  assert.deepEqual(c.sent.map((x) => x.at), [0, 0, 20, 20, 40], ctx('send times'))
  assert.equal(s.rpc.stats.requestsIn, 5)
})

// ---- per-source rate limits --------------------------------------------------------------

test(`a burst beyond rateBurst from one source is dropped and counted; others are served (seed ${SEED})`, async () => {
  const world = newWorld('rate')
  const c = await peer(world, '10.0.0.1', 'client', { maxRetries: 0 })
  const other = await peer(world, '10.0.0.3', 'other', { maxRetries: 0 })
  const s = await peer(world, '10.0.0.2', 'server', { ratePerSecond: 10, rateBurst: 5 })
  serve(s)
  const ping = (from: Peer) => from.rpc.requestAsync(s.address, { type: MessageType.PING }, expectedPongBytes(s.address)).then(() => 'ok', (e: WeftError) => e.code)
  const burst = Array.from({ length: 12 }, () => ping(c))
  const fromOther = ping(other)
  const results = await world.settle(Promise.all(burst))
  assert.deepEqual(results, [...Array(5).fill('ok'), ...Array(7).fill('ERR_TIMEOUT')], ctx('burst results'))
  assert.equal(await world.settle(fromOther), 'ok', ctx('another source has its own bucket'))
  assert.equal(s.rpc.stats.rateLimited, 7)
  assert.equal(s.rpc.stats.requestsIn, 6)
  assert.equal(s.sent.length, 6, ctx('nothing is sent back to a limited source'))
  // The bucket refills at ratePerSecond: after a second it holds the full burst again.
  await world.run(world.now() + 1000)
  const again = await world.settle(Promise.all(Array.from({ length: 6 }, () => ping(c))))
  assert.deepEqual(again, [...Array(5).fill('ok'), 'ERR_TIMEOUT'], ctx('after refill'))
  assert.equal(s.rpc.stats.rateLimited, 8)
})

// ---- tokens and anti-amplification ------------------------------------------------------

test(`the first FIND_NODE is padded to the reply it expects; later ones carry the token instead (seed ${SEED})`, async () => {
  const world = newWorld('tokens')
  const c = await peer(world, '10.0.0.1', 'client')
  const s = await peer(world, '10.0.0.2', 'server')
  serve(s, 20)
  const expect = expectedNodesReplyBytes(s.address, 20)
  assert.equal(expect, HEADER_BYTES + TOKEN_BYTES + 7 + 1 + 20 * (32 + 7))
  const find = () => world.settle(c.rpc.requestAsync(s.address, { type: MessageType.FIND_NODE, target }, expect))

  const first = await find()
  const req1 = decoded(c.sent[0].bytes)
  assert.equal(c.sent[0].bytes.length, expect, ctx('padded to the expected reply size'))
  assert.equal(req1.flags & Flag.HAS_TOKEN, 0)
  assert.ok(req1.type === MessageType.FIND_NODE && req1.token === undefined && req1.pad === expect - (HEADER_BYTES + 32 + 2))
  assert.ok(first.reply.type === MessageType.NODES && first.reply.contacts.length === 20, ctx('a full reply'))
  assert.equal(first.reply.flags & Flag.TRUNCATED, 0)
  assert.equal(s.sent[0].bytes.length, expect, ctx('the reply is exactly as large as the request'))
  assert.equal(first.reply.observed, c.address)

  const second = await find()
  const req2 = decoded(c.sent[1].bytes)
  assert.equal(c.sent[1].bytes.length, HEADER_BYTES + TOKEN_BYTES + 32 + 2, ctx('no padding with a token'))
  assert.equal(req2.flags & Flag.HAS_TOKEN, Flag.HAS_TOKEN)
  assert.ok(req2.type === MessageType.FIND_NODE && req2.token === (first.reply as Reply & { token: number }).token && req2.pad === 0)
  assert.ok(second.reply.type === MessageType.NODES && second.reply.contacts.length === 20, ctx('still a full reply'))
  assert.equal(second.reply.flags & Flag.TRUNCATED, 0)
  assert.ok(s.sent[1].bytes.length > c.sent[1].bytes.length, 'a proven address may get more than it sent')
  assert.deepEqual([s.rpc.stats.refusedAmplification, c.rpc.stats.truncatedReplies], [0, 0])

  // PING follows the same rule.
  const c2 = await peer(world, '10.0.0.3', 'client2')
  await world.settle(c2.rpc.requestAsync(s.address, { type: MessageType.PING }, expectedPongBytes(s.address)))
  await world.settle(c2.rpc.requestAsync(s.address, { type: MessageType.PING }, expectedPongBytes(s.address)))
  // With a token, still room for the smallest reply: a stale token must not turn the answer into silence.
  assert.deepEqual(c2.sent.map((x) => x.bytes.length), [expectedPongBytes(s.address), expectedPongBytes(s.address)])
  await world.run(world.now() + 60 * 60_000) // the server's token secrets rotate past the token c2 holds
  const late = await world.settle(c2.rpc.requestAsync(s.address, { type: MessageType.PING }, expectedPongBytes(s.address)))
  assert.equal(late.reply.type, MessageType.PONG, ctx('a PING with a stale token is still answered'))
  assert.equal(s.rpc.stats.refusedAmplification, 0, ctx('nothing refused for amplification'))
})

test(`a forged or borrowed token counts as no token: the reply is trimmed to the request's size (seed ${SEED})`, async () => {
  const world = newWorld('forged')
  const s = await peer(world, '10.0.0.2', 'server')
  serve(s, 20)
  const c = await peer(world, '10.0.0.1', 'client')
  const attacker = await raw(world, '10.0.0.66')
  const sender = new Uint8Array(32).fill(0x66)
  const expect = expectedNodesReplyBytes(s.address, 20)

  // The honest client earns a token for its own address.
  await world.settle(c.rpc.requestAsync(s.address, { type: MessageType.FIND_NODE, target }, expect))
  const first = await world.settle(c.rpc.requestAsync(s.address, { type: MessageType.FIND_NODE, target }, expect))
  const good = (first.reply as Reply & { token: number }).token
  const rnd = new SeededRandom(`${SEED}:forged`)
  const forged = [(good ^ 1) >>> 0, rnd.u32() * 0x10000 + (rnd.u32() & 0xffff), good /* borrowed: valid for 10.0.0.1 only */]
  for (const [i, token] of forged.entries()) {
    const req = attacker.send(s.address, { type: MessageType.FIND_NODE, txid: 100 + i, sender, flags: 0, target, token, pad: 120 })
    await world.run()
    const reply = attacker.got.at(-1)!
    assert.ok(reply.message?.type === MessageType.NODES, ctx(`forged token ${i}: a reply`))
    assert.ok(reply.bytes.length <= req.length, ctx(`forged token ${i}: ${reply.bytes.length}-byte reply to ${req.length}-byte request`))
    assert.equal(reply.message.flags & Flag.TRUNCATED, Flag.TRUNCATED, ctx('marked truncated'))
    assert.equal(reply.message.contacts.length, Math.floor((req.length - (HEADER_BYTES + TOKEN_BYTES + 7 + 1)) / 39))
  }
  // A PONG is never trimmed: to an unpadded PING from an unproven address there is no reply.
  const before = s.rpc.stats.refusedAmplification
  attacker.send(s.address, { type: MessageType.PING, txid: 200, sender, flags: 0, token: good, pad: 0 })
  await world.run()
  assert.equal(attacker.got.length, forged.length, ctx('no reply to an unpadded PING'))
  assert.equal(s.rpc.stats.refusedAmplification, before + 1)
  // With the token the server gave this very address, the attacker is proven and gets it all.
  const proven = (attacker.got.at(-1)!.message as Reply & { token: number }).token
  const req = attacker.send(s.address, { type: MessageType.FIND_NODE, txid: 300, sender, flags: 0, target, token: proven, pad: 0 })
  await world.run()
  const full = attacker.got.at(-1)!
  assert.ok(full.message?.type === MessageType.NODES && full.message.contacts.length === 20 && !(full.message.flags & Flag.TRUNCATED))
  assert.ok(full.bytes.length > req.length)
})

// ---- matching replies ------------------------------------------------------------------

test(`a reply from another address with the right txid is ignored (seed ${SEED})`, async () => {
  const world = newWorld('spoof')
  const c = await peer(world, '10.0.0.1', 'client')
  const s = await peer(world, '10.0.0.2', 'server')
  serve(s)
  const attacker = await raw(world, '10.0.0.66')
  const p = c.rpc.requestAsync(s.address, { type: MessageType.PING }, expectedPongBytes(s.address))
  const txid = decoded(c.sent[0].bytes).txid
  attacker.send(c.address, { type: MessageType.PONG, txid, sender: new Uint8Array(32), flags: 0, token: 1, observed: '6.6.6.6:6' })
  const { reply } = await world.settle(p)
  assert.equal(hex(reply.sender), hex(s.rpc.id), ctx('the real server answered'))
  assert.equal(c.rpc.stats.unmatchedReplies, 1)
  assert.equal(c.rpc.observedAddress, c.address)
})

test(`a request to "localhost:port" or a non-canonical IPv6 address matches the reply (seed ${SEED})`, async () => {
  const world = newWorld('names')
  const s4 = await peer(world, '127.0.0.1', 'server4')
  const s6 = await peer(world, '::1', 'server6')
  serve(s4); serve(s6)
  const c4 = await peer(world, '127.0.0.2', 'client4', { maxRetries: 0 }, true)
  const c6 = await peer(world, '::2', 'client6', { maxRetries: 0 }, true)
  const a = await world.settle(c4.rpc.requestAsync('localhost:4000', { type: MessageType.PING }, expectedPongBytes('127.0.0.1:4000')))
  const b = await world.settle(c6.rpc.requestAsync('[0:0:0:0:0:0:0:1]:4000', { type: MessageType.PING }, expectedPongBytes('[::1]:4000')))
  assert.equal(hex(a.reply.sender), hex(s4.rpc.id))
  assert.equal(hex(b.reply.sender), hex(s6.rpc.id))
  assert.equal(b.reply.type === MessageType.PONG && b.reply.observed, '[::2]:4000')
})

test(`an ERROR reply fails the request with the matching code (seed ${SEED})`, async () => {
  const world = newWorld('error-reply')
  const c = await peer(world, '10.0.0.1', 'client')
  const server = await raw(world, '10.0.0.2')
  const codes: [number, ErrorCode][] = [[ErrorReplyCode.RATE_LIMITED, 'ERR_RATE_LIMITED'], [ErrorReplyCode.BUSY, 'ERR_BUSY'], [ErrorReplyCode.BAD_REQUEST, 'ERR_BAD_MESSAGE'], [99, 'ERR_BAD_MESSAGE']]
  server.endpoint.onPacket = (from, bytes) => {
    const m = decoded(bytes)
    const [code] = codes[c.rpc.stats.requestsOut - 1]
    server.send(from, { type: MessageType.ERROR, txid: m.txid, sender: new Uint8Array(32), flags: 0, code, reason: 'slow down' })
  }
  for (const [, want] of codes) {
    await assert.rejects(world.settle(c.rpc.requestAsync(server.endpoint.address, { type: MessageType.PING }, 64)), isCode(want, /slow down/), ctx(want))
  }
})

test(`a handler that answers later (a promise) replies when it settles, with the error code if it fails (seed ${SEED})`, async () => {
  const world = newWorld('async-handler')
  const c = await peer(world, '10.0.0.1', 'client')
  const s = await peer(world, '10.0.0.2', 'server')
  let n = 0
  s.rpc.onRequest = () => {
    const mine = ++n
    return new Promise((resolve, reject) => world.schedule(5, () => mine === 1 ? resolve({ type: MessageType.PONG }) : reject(new WeftError('ERR_RATE_LIMITED', 'later, please'))))
  }
  const reply = await world.settle(c.rpc.requestAsync(s.address, { type: MessageType.PING }, 64))
  assert.equal(reply.reply.type, MessageType.PONG, ctx('first reply'))
  await assert.rejects(world.settle(c.rpc.requestAsync(s.address, { type: MessageType.PING }, 64)), isCode('ERR_RATE_LIMITED', /later, please/), ctx('second reply'))
  assert.equal(s.rpc.stats.handlerErrors, 0, ctx('a coded refusal is not a handler error'))
})

test(`the same seed replays the same datagrams; another seed does not (seed ${SEED})`, async () => {
  async function run(name: string): Promise<string[]> {
    const world = newWorld(name)
    const c = await peer(world, '10.0.0.1', 'client')
    const s = await peer(world, '10.0.0.2', 'server')
    serve(s, 7)
    for (let i = 0; i < 5; i++) await world.settle(c.rpc.requestAsync(s.address, { type: MessageType.FIND_NODE, target }, expectedNodesReplyBytes(s.address, 7)))
    return [...c.sent, ...s.sent].map((x) => `${x.at}:${x.to}:${hex(x.bytes)}`)
  }
  assert.deepEqual(await run('replay'), await run('replay'))
  assert.notDeepEqual(await run('replay'), await run('replay-other'))
})

test('close() fails requests in flight and queued with ERR_CLOSED', async () => {
  const world = newWorld('close')
  const c = await peer(world, '10.0.0.1', 'client', { maxInFlight: 1 })
  const a = c.rpc.requestAsync('10.0.0.2:4000', { type: MessageType.PING }, 64)
  const b = c.rpc.requestAsync('10.0.0.2:4000', { type: MessageType.PING }, 64)
  assert.deepEqual([c.rpc.inFlight, c.sent.length], [1, 1])
  c.rpc.close()
  await assert.rejects(a, isCode('ERR_CLOSED'))
  await assert.rejects(b, isCode('ERR_CLOSED'), 'the queued request is failed, not sent')
  assert.deepEqual([c.rpc.inFlight, c.sent.length], [0, 1])
  await world.run()
  assert.equal(c.sent.length, 1, 'nothing is sent or retried after close')
  await assert.rejects(c.rpc.requestAsync('10.0.0.2:4000', { type: MessageType.PING }, 64), isCode('ERR_CLOSED'))
})
