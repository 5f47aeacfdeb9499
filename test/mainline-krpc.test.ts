// Mainline's KRPC codec and its defences: round trips, the strict bencode gate (fuzzed with a
// seeded fast-check), and hostile queries at a live node in a seeded MemoryWorld (bad bencode,
// wrong types, huge values and lists, bad and expired tokens, bad signatures, cas mismatch, seq
// too low), each counted under its code and dropped or answered with the KRPC error its BEP
// names; the node still answers a ping afterwards. Then the same on real UDP sockets.
// Also the parts: routing table, write tokens, store bounds, BEP 42 ids.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createSocket } from 'node:dgram'
import { generateKeyPairSync, createPublicKey } from 'node:crypto'
import fc from 'fast-check'
import bencode from 'bencode'
import { MemoryWorld } from '../src/runtime/memory.js'
import { realRuntime, udpNetwork } from '../src/runtime/udp.js'
import { SeededRandom } from '../src/runtime/prng.js'
import { Node } from '../src/node/node.js'
import { Mainline } from '../src/services/mainline/mainline.js'
import {
  checkBencode, decodeKrpc, decodeValue, encodeError, encodeQuery, encodeResponse, encodeValue, KRPC_LIMITS, type BValue, type Message, type Query, type Response,
} from '../src/services/mainline/krpc.js'
import { mutableTarget, signItem, signedBytes, type MainlineKeys } from '../src/services/mainline/items.js'
import { KTable, compareXor, randomIdInBucket, commonPrefixBits } from '../src/services/mainline/table.js'
import { WriteTokens } from '../src/services/mainline/tokens.js'
import { MainlineStore } from '../src/services/mainline/store.js'
import { bep42Id, bep42Valid, isBep42Exempt } from '../src/services/mainline/bep42.js'
import { check, SEED } from './helpers/property.js'
import { rejectsWith } from './helpers/errors.js'

const b = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'))
const rnd = new SeededRandom(`mainline-krpc-${SEED}`)
const id20 = (): Uint8Array => rnd.bytes(20)
const t4 = b('aabb')

function keys(): MainlineKeys {
  const { privateKey } = generateKeyPairSync('ed25519')
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' })
  return { publicKey: new Uint8Array(spki.subarray(spki.length - 32)), privateKey }
}

// ---- codec ---------------------------------------------------------------------------------------

test('codec: every query, reply and error round-trips', { timeout: 30_000 }, () => {
  const k = keys()
  const v = b('hello')
  const queries: [Query['q'], Parameters<typeof encodeQuery>[2]][] = [
    ['ping', { id: id20() }],
    ['find_node', { id: id20(), target: id20() }],
    ['get_peers', { id: id20(), infoHash: id20() }],
    ['announce_peer', { id: id20(), infoHash: id20(), port: 6881, token: b('12345678') }],
    ['announce_peer', { id: id20(), infoHash: id20(), impliedPort: true, token: b('12345678') }],
    ['get', { id: id20(), target: id20(), seq: 4 }],
    ['put', { id: id20(), token: b('tok'), v }],
    ['put', { id: id20(), token: b('tok'), v, k: k.publicKey, sig: signItem(k, b('salt'), 7, encodeValue(v)), seq: 7, salt: b('salt'), cas: 6 }],
  ]
  for (const [q, a] of queries) {
    const d = decodeKrpc(encodeQuery(t4, q, a, q === 'get'))
    assert.ok(d.ok, `${q}: ${!d.ok && d.reason}`)
    const m = d.message as Query
    assert.equal(m.q, q)
    assert.equal(m.ro, q === 'get')
    assert.deepEqual(m.t, t4)
    for (const [key, value] of Object.entries(a)) if (value !== undefined) assert.deepEqual((m.a as unknown as Record<string, unknown>)[key], value, `${q}.${key}`)
  }
  const nodes = [{ id: id20(), address: '10.1.2.3:6881' }, { id: id20(), address: '192.168.0.9:51413' }]
  const reply = { id: id20(), nodes, values: ['1.2.3.4:5', '5.6.7.8:65535'], token: b('tok'), v: [1, b('x'), { a: 2 }] as BValue, k: k.publicKey, sig: new Uint8Array(64).fill(3), seq: 9 }
  const r = decodeKrpc(encodeResponse(t4, reply, '9.8.7.6:1234'))
  assert.ok(r.ok)
  const rm = r.message as Response
  assert.deepEqual({ ...rm.r }, reply)
  assert.equal(rm.ip, '9.8.7.6:1234')
  const e = decodeKrpc(encodeError(t4, 203, 'Protocol Error'))
  assert.ok(e.ok && e.message.y === 'e' && e.message.code === 203 && e.message.text === 'Protocol Error')
})

test('the bencode gate refuses what the library would take or hang on', { timeout: 30_000 }, () => {
  // `bencode.decode` loops forever on a negative length; it returns 2 bytes for "5:ab" and ignores trailing bytes.
  const cases: [string, string][] = [
    ['l-3:e', 'ERR_BAD_BENCODE'], ['5:ab', 'ERR_BAD_BENCODE'], ['1:a trailing', 'ERR_BAD_BENCODE'], ['i03e', 'ERR_BAD_BENCODE'],
    ['i-0e', 'ERR_BAD_BENCODE'], ['i1.5e', 'ERR_BAD_BENCODE'], ['ie', 'ERR_BAD_BENCODE'], ['d1:bi1e1:ai2ee', 'ERR_BAD_BENCODE'],
    ['d1:ai1e1:ai2ee', 'ERR_BAD_BENCODE'], ['d1:ae', 'ERR_BAD_BENCODE'], ['di1ei2ee', 'ERR_BAD_BENCODE'], ['d9:__proto__le1:ai1ee', 'ERR_BAD_BENCODE'],
    ['d1:\x01i1ee', 'ERR_BAD_BENCODE'], ['l', 'ERR_BAD_BENCODE'], ['', 'ERR_BAD_BENCODE'], ['x', 'ERR_BAD_BENCODE'], ['e', 'ERR_BAD_BENCODE'],
    ['01:a', 'ERR_BAD_BENCODE'], ['i1234567890123456e', 'ERR_TOO_LARGE'], ['9999999:a', 'ERR_TOO_LARGE'],
    ['l'.repeat(17) + 'e'.repeat(17), 'ERR_TOO_LARGE'], ['l' + 'i1e'.repeat(600) + 'e', 'ERR_TOO_LARGE'], [`${3000}:${'a'.repeat(3000)}`, 'ERR_TOO_LARGE'],
  ]
  for (const [input, code] of cases) assert.equal(checkBencode(b(input))?.code, code, JSON.stringify(input.slice(0, 40)))
  for (const ok of ['i0e', 'i-12e', '0:', 'le', 'de', 'd1:ai1e1:bi2ee', 'l'.repeat(16) + 'e'.repeat(16), 'i123456789012345e']) {
    assert.equal(checkBencode(b(ok)), null, ok)
  }
})

const keyArb = fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz_0123456789'.split('')), minLength: 1, maxLength: 8 })
const valueArb: fc.Arbitrary<BValue> = fc.letrec<{ v: BValue }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.uint8Array({ maxLength: 40 }),
    fc.integer({ min: -1e12, max: 1e12 }),
    fc.array(tie('v'), { maxLength: 5 }),
    fc.dictionary(keyArb, tie('v'), { maxKeys: 5 }).filter((d) => !('__proto__' in d)),
  ),
})).v

test(`property: bencoded values pass the gate and decode to what was encoded (WEFT_SEED=${SEED})`, { timeout: 30_000 }, () => {
  check('value round trip', valueArb, (v) => {
    const bytes = encodeValue(v)
    if (bytes.length > KRPC_LIMITS.maxPacket) return
    const d = decodeValue(bytes)
    assert.ok(d.ok, !d.ok ? d.reason : '')
    assert.deepEqual(encodeValue(d.value), bytes)
  }, 400)
})

test(`property: random and mutated datagrams decode or give a code, never throw, and what passes is canonical (WEFT_SEED=${SEED})`, { timeout: 30_000 }, () => {
  const valid = [
    encodeQuery(t4, 'get_peers', { id: id20(), infoHash: id20() }),
    encodeResponse(t4, { id: id20(), nodes: [{ id: id20(), address: '1.2.3.4:5' }], values: ['1.1.1.1:1'], token: b('t') }),
    encodeQuery(t4, 'put', { id: id20(), token: b('tok'), v: b('v'), k: id20().slice(0, 16), seq: 1 }),
  ]
  const mutated = fc.tuple(fc.constantFrom(...valid), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat())
    .map(([base, flips, cut]) => {
      const out = base.slice(0, base.length - (cut % 8))
      for (const [at, byte] of flips) out[at % out.length] = byte
      return out
    })
  const input = fc.oneof(fc.uint8Array({ maxLength: 300 }), mutated, fc.string({ unit: fc.constantFrom(...'dlie0123456789:-ax'.split('')), maxLength: 60 }).map(b))
  check('decoder', input, (bytes) => {
    const started = performance.now()
    const d = decodeKrpc(bytes)
    assert.ok(performance.now() - started < 50, 'decoding took too long')
    if (!d.ok) { assert.match(d.code, /^ERR_/); return }
    assert.equal(checkBencode(bytes), null)
    assert.deepEqual(bencode.encode(bencode.decode(bytes) as never), bytes) // canonical: decode then encode gives the bytes back
  }, 2000)
})

// ---- a live node under attack (seeded, virtual time) -----------------------------------------------

interface Rig { world: MemoryWorld; node: Mainline; exchange(bytes: Uint8Array): Promise<Message | null>; burst(bytes: Uint8Array, n: number): Promise<number> }

function rig(seed: string, options: ConstructorParameters<typeof Mainline>[1] = {}): Rig {
  const world = new MemoryWorld(seed)
  const node = new Mainline({ runtime: world.runtime('node'), endpoint: world.bindNow('10.0.0.1', 6881) }, { ratePerSecond: 1e6, rateBurst: 1e6, ...options })
  const raw = world.bindNow('10.0.0.2', 5000)
  const inbox: Message[] = []
  raw.onPacket = (_from, bytes) => {
    const d = decodeKrpc(bytes)
    if (d.ok && d.message.y !== 'q') inbox.push(d.message) // the node's own pings back are not answers
  }
  return {
    world, node,
    async exchange(bytes) {
      inbox.length = 0
      raw.send(node.address, bytes)
      await world.run(world.now() + 200)
      return inbox[0] ?? null
    },
    async burst(bytes, n) {
      inbox.length = 0
      for (let i = 0; i < n; i++) raw.send(node.address, bytes)
      await world.run(world.now() + 200)
      return inbox.length
    },
  }
}

const asker = id20()
const krpcError = (m: Message | null): number | null => (m && m.y === 'e' ? m.code : null)
const q = (method: Query['q'], a: Omit<Parameters<typeof encodeQuery>[2], 'id'>): Uint8Array => encodeQuery(t4, method, { id: asker, ...a })
async function tokenOf(r: Rig, target: Uint8Array): Promise<Uint8Array> {
  const m = await r.exchange(q('get', { target }))
  assert.ok(m && m.y === 'r' && m.r.token)
  return m.r.token
}

test(`hostile KRPC at a live node: each kind is counted under its code and dropped or refused as the BEP says (WEFT_SEED=${SEED})`, { timeout: 30_000 }, async () => {
  const r = rig(`hostile-${SEED}`)
  const { node } = r
  const expect = async (what: string, bytes: Uint8Array, answer: number | null, counted: { dropped?: string; refused?: string }) => {
    const before = { ...node.stats, droppedByCode: { ...node.stats.droppedByCode }, refusedByCode: { ...node.stats.refusedByCode } }
    const m = await r.exchange(bytes)
    assert.equal(krpcError(m), answer, `${what}: KRPC answer`)
    if (answer === null && !counted.dropped && !counted.refused) assert.ok(m && m.y === 'r', `${what}: answered`)
    if (counted.dropped) assert.equal((node.stats.droppedByCode as Record<string, number>)[counted.dropped], ((before.droppedByCode as Record<string, number>)[counted.dropped] ?? 0) + 1, `${what}: dropped under ${counted.dropped}`)
    if (counted.refused) assert.equal((node.stats.refusedByCode as Record<string, number>)[counted.refused], ((before.refusedByCode as Record<string, number>)[counted.refused] ?? 0) + 1, `${what}: refused under ${counted.refused}`)
  }
  const ping = q('ping', {})
  const hostile: [string, Uint8Array, number | null, { dropped?: string; refused?: string }][] = [
    ['not bencode', b('this is not bencode'), null, { dropped: 'ERR_BAD_BENCODE' }],
    ['negative length (hangs the bencode package)', b('d1:ad2:id-20:e1:q4:ping1:t2:aa1:y1:qe'), null, { dropped: 'ERR_BAD_BENCODE' }],
    ['truncated', ping.slice(0, ping.length - 3), null, { dropped: 'ERR_BAD_BENCODE' }],
    ['trailing garbage', new Uint8Array([...ping, 0x41]), null, { dropped: 'ERR_BAD_BENCODE' }],
    ['oversized datagram', new Uint8Array(KRPC_LIMITS.maxPacket + 1).fill(0x61), null, { dropped: 'ERR_TOO_LARGE' }],
    ['huge list', b(`d1:ad2:id20:${'x'.repeat(20)}e1:q4:ping1:t2:aa1:y1:q1:zl${'i1e'.repeat(520)}ee`), null, { dropped: 'ERR_TOO_LARGE' }],
    ['deep nesting', b(`d1:t2:aa1:y1:q1:z${'l'.repeat(40)}${'e'.repeat(40)}e`), null, { dropped: 'ERR_TOO_LARGE' }],
    ['huge integer', b(`d1:ad2:id20:${'x'.repeat(20)}4:porti99999999999999999999ee1:q4:ping1:t2:aa1:y1:qe`), null, { dropped: 'ERR_TOO_LARGE' }],
    ['not a dictionary', b('li1ei2ee'), null, { dropped: 'ERR_BAD_MESSAGE' }],
    ['no transaction id', b(`d1:ad2:id20:${'x'.repeat(20)}e1:q4:ping1:y1:qe`), null, { dropped: 'ERR_BAD_MESSAGE' }],
    ['a reply of the wrong shape', b('d1:ri1e1:t2:aa1:y1:re'), null, { dropped: 'ERR_BAD_MESSAGE' }],
    ['id is an integer', b('d1:ad2:idi5ee1:q4:ping1:t2:aa1:y1:qe'), 203, { refused: 'ERR_BAD_MESSAGE' }],
    ['id of 19 bytes', encodeQuery(t4, 'ping', { id: id20().slice(0, 19) }), 203, { refused: 'ERR_BAD_MESSAGE' }],
    ['target missing', encodeQuery(t4, 'find_node', { id: asker }), 203, { refused: 'ERR_BAD_MESSAGE' }],
    ['info_hash is a list', b(`d1:ad2:id20:${'x'.repeat(20)}9:info_hashlee1:q9:get_peers1:t2:aa1:y1:qe`), 203, { refused: 'ERR_BAD_MESSAGE' }],
    ['port is a string', b(`d1:ad2:id20:${'x'.repeat(20)}9:info_hash20:${'h'.repeat(20)}4:port4:68815:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe`), 203, { refused: 'ERR_BAD_MESSAGE' }],
    ['port out of range', q('announce_peer', { infoHash: id20(), port: 70000, token: b('x') }), 203, { refused: 'ERR_BAD_MESSAGE' }],
    ['token of 65 bytes', q('announce_peer', { infoHash: id20(), port: 1, token: new Uint8Array(65) }), 203, { refused: 'ERR_BAD_MESSAGE' }],
    ['unknown method', b(`d1:ad2:id20:${'x'.repeat(20)}e1:q6:vote!!1:t2:aa1:y1:qe`), 204, { refused: 'ERR_UNKNOWN_TYPE' }],
    ['announce with a made-up token', q('announce_peer', { infoHash: id20(), port: 1, token: b('12345678') }), 203, { refused: 'ERR_BAD_TOKEN' }],
    ['put with a made-up token', q('put', { token: b('12345678'), v: b('x') }), 203, { refused: 'ERR_BAD_TOKEN' }],
    ['a reply nobody asked for', encodeResponse(t4, { id: id20() }), null, {}],
  ]
  for (const [what, bytes, answer, counted] of hostile) {
    if (what === 'a reply nobody asked for') {
      const unexpected = node.stats.unexpected
      assert.equal(await r.exchange(bytes), null)
      assert.equal(node.stats.unexpected, unexpected + 1)
      continue
    }
    await expect(what, bytes, answer, counted)
  }

  // BEP 44 puts that are well formed but refused.
  const token = await tokenOf(r, id20())
  const k = keys()
  const v = b('a value')
  const sig = (seq: number, value = v, salt = b('s')) => signItem(k, salt, seq, encodeValue(value))
  const put = (a: Partial<Parameters<typeof encodeQuery>[2]>) => q('put', { token, v, k: k.publicKey, salt: b('s'), ...a })
  await expect('value over 1000 bytes', q('put', { token, v: new Uint8Array(1001) }), 205, { refused: 'ERR_VALUE_TOO_LARGE' })
  await expect('salt over 64 bytes', put({ salt: new Uint8Array(65), seq: 1, sig: sig(1, v, new Uint8Array(65)) }), 207, { refused: 'ERR_VALUE_TOO_LARGE' })
  await expect('bad signature', put({ seq: 1, sig: sig(2) }), 206, { refused: 'ERR_BAD_SIGNATURE' })
  await expect('signature of another key', put({ seq: 1, sig: signItem(keys(), b('s'), 1, encodeValue(v)) }), 206, { refused: 'ERR_BAD_SIGNATURE' })
  await expect('a good mutable put', put({ seq: 5, sig: sig(5) }), null, {})
  await expect('cas mismatch', put({ seq: 6, sig: sig(6), cas: 4 }), 301, { refused: 'ERR_CAS_MISMATCH' })
  await expect('seq too low', put({ seq: 4, sig: sig(4) }), 302, { refused: 'ERR_STALE_SEQ' })
  await expect('same seq, another value', put({ v: b('other'), seq: 5, sig: sig(5, b('other')) }), 302, { refused: 'ERR_STALE_SEQ' })
  await expect('cas that matches', put({ seq: 6, sig: sig(6), cas: 5 }), null, {})
  const got = await r.exchange(q('get', { target: mutableTarget(k.publicKey, b('s')) }))
  assert.ok(got && got.y === 'r' && got.r.seq === 6 && got.r.k && Buffer.from(got.r.v as Uint8Array).toString() === 'a value')
  const newer = await r.exchange(q('get', { target: mutableTarget(k.publicKey, b('s')), seq: 6 }))
  assert.ok(newer && newer.y === 'r' && newer.r.seq === 6 && newer.r.v === undefined, 'a get naming the held seq gets no value')

  // Tokens: valid for the period they were issued in and the next; not after that.
  const ih = id20()
  const fresh = await tokenOf(r, ih)
  await r.world.run(r.world.now() + 6 * 60_000) // one rotation: the token is under the previous secret now
  await expect('token from the previous period', q('announce_peer', { infoHash: ih, port: 7000, token: fresh }), null, {})
  await r.world.run(r.world.now() + 5 * 60_000)
  await expect('expired token', q('announce_peer', { infoHash: ih, port: 7000, token: fresh }), 203, { refused: 'ERR_BAD_TOKEN' })
  const peers = await r.exchange(q('get_peers', { infoHash: ih }))
  assert.ok(peers && peers.y === 'r')
  assert.deepEqual(peers.r.values, ['10.0.0.2:7000'])

  // After all that, the node still answers.
  const pong = await r.exchange(ping)
  assert.ok(pong && pong.y === 'r' && Buffer.from(pong.r.id).equals(Buffer.from(node.id)))
  assert.equal(node.stats.handlerErrors, 0)
  await node.close()
})

test('rate limit: a source past its budget is not answered, and counted', { timeout: 30_000 }, async () => {
  const r = rig(`rate-${SEED}`, { ratePerSecond: 10, rateBurst: 20 })
  const answered = await r.burst(q('ping', {}), 100)
  assert.equal(answered, 20, 'the burst, then nothing')
  assert.equal(r.node.stats.rateLimited, 80)
  await r.world.run(r.world.now() + 2000)
  assert.equal(await r.burst(q('ping', {}), 1), 1, 'the budget refills')
  await r.node.close()
})

test('BEP 42: with the check on, a contact whose id does not fit its public IP stays out of the table', { timeout: 30_000 }, async () => {
  const world = new MemoryWorld(`bep42-${SEED}`)
  const a = new Mainline({ runtime: world.runtime('a'), endpoint: world.bindNow('10.0.0.1', 6881) }, { bep42: true })
  const good = new Mainline({ runtime: world.runtime('good'), endpoint: world.bindNow('21.75.31.124', 6881) }, { bep42: true })
  const bad = new Mainline({ runtime: world.runtime('bad'), endpoint: world.bindNow('124.31.75.21', 6881) }, { id: new Uint8Array(20).fill(0xee) })
  assert.ok(bep42Valid(good.id, '21.75.31.124'), 'a node on a public address takes a BEP 42 id')
  assert.ok(!bep42Valid(bad.id, '124.31.75.21'))
  await world.settle(good.ping(a.address))
  await world.settle(bad.ping(a.address))
  await world.run(world.now() + 500)
  assert.ok(a.table.has(good.id), 'the fitting id is pinged back and kept')
  assert.ok(!a.table.has(bad.id), 'the other is not')
  assert.ok(a.stats.bep42Rejected >= 1)
  for (const n of [a, good, bad]) await n.close()
})

test('real UDP: thousands of malformed datagrams at a node with --mainline are dropped and counted; it keeps answering', { timeout: 30_000 }, async () => {
  const node = new Node({ encrypt: false, mainline: { port: 0, tuning: { ratePerSecond: 1e6, rateBurst: 1e6 } } })
  await node.start()
  const other = new Mainline({ runtime: realRuntime, endpoint: await udpNetwork.bind('127.0.0.1', 0) })
  const sock = createSocket('udp4')
  try {
    const target = node.mainline.address
    const port = Number(target.split(':')[1])
    const r = new SeededRandom(`udp-garbage-${SEED}`)
    const valid = encodeQuery(t4, 'find_node', { id: id20(), target: id20() })
    const kinds = [
      () => r.bytes(1 + (r.u32() % 300)),
      () => valid.slice(0, r.u32() % valid.length),
      () => { const x = valid.slice(); x[r.u32() % x.length] = r.u32() & 0xff; return x },
      () => new Uint8Array(KRPC_LIMITS.maxPacket + 1 + (r.u32() % 3000)),
      () => b(`l-${r.u32() % 100}:e`),
    ]
    const sent = 3000
    for (let i = 0; i < sent; i++) {
      await new Promise<void>((res) => sock.send(kinds[i % kinds.length](), port, '127.0.0.1', () => res()))
      if (i % 1000 === 0) assert.ok((await other.ping(target)).rttMs >= 0)
    }
    await new Promise((res) => setTimeout(res, 200))
    const s = node.mainline.stats
    assert.ok(s.dropped + s.refused >= sent * 0.6, `dropped ${s.dropped}, refused ${s.refused} of ${sent}`)
    assert.ok((s.droppedByCode.ERR_BAD_BENCODE ?? 0) > 0 && (s.droppedByCode.ERR_TOO_LARGE ?? 0) > 0)
    assert.equal(s.handlerErrors, 0)
    const pong = await other.ping(target)
    assert.deepEqual(pong.id, node.mainline.id)
  } finally {
    sock.close()
    await other.close()
    await node.stop()
  }
})

// ---- the parts -----------------------------------------------------------------------------------

test(`property: the table's closest() is the true nearest of what it holds, and it stays bounded (WEFT_SEED=${SEED})`, { timeout: 30_000 }, () => {
  check('closest', fc.tuple(fc.uint8Array({ minLength: 20, maxLength: 20 }), fc.array(fc.uint8Array({ minLength: 20, maxLength: 20 }), { maxLength: 300 }), fc.uint8Array({ minLength: 20, maxLength: 20 })),
    ([self, ids, target]) => {
      const t = new KTable(self, 8)
      ids.forEach((id, i) => t.seen(id, `10.0.${i >> 8}.${i & 255}:1`, i))
      const held = t.entries()
      assert.ok(held.length <= 160 * 8 && held.length === t.size)
      const truth = held.map((e) => e.id).sort((a, c) => compareXor(target, a, c)).slice(0, 8)
      assert.deepEqual(t.closest(target, 8).map((c) => c.id), truth)
    }, 200)
  const self = id20()
  const t = new KTable(self, 8)
  for (let i = 0; i < 20_000; i++) t.seen(id20(), `10.0.0.1:${1 + (i % 60000)}`, i)
  assert.ok(t.size <= 8 * 30, `${t.size} contacts from 20,000 random ids`)
  const deep = randomIdInBucket(self, 100, id20())
  assert.equal(commonPrefixBits(self, deep), 100)
  assert.equal(t.seen(deep, '10.0.0.2:1', 0), 'added')
  assert.equal(t.failed(deep), false)
  assert.equal(t.failed(deep), true, 'two failures in a row remove a contact')
  assert.ok(!t.has(deep))
})

test('write tokens: bound to the IP, valid for one to two periods', { timeout: 30_000 }, () => {
  const tokens = new WriteTokens(new SeededRandom('tokens'), 0, 1000)
  const tok = tokens.issue('1.2.3.4', 0)
  assert.ok(tokens.valid('1.2.3.4', tok, 999))
  assert.ok(!tokens.valid('1.2.3.5', tok, 999), 'another IP')
  assert.ok(tokens.valid('1.2.3.4', tok, 1500), 'previous period')
  assert.ok(!tokens.valid('1.2.3.4', tok, 2001), 'two periods on')
  assert.ok(!tokens.valid('1.2.3.4', tok.slice(0, 4), 0))
  const late = new WriteTokens(new SeededRandom('tokens2'), 0, 1000)
  const old = late.issue('1.2.3.4', 0)
  assert.ok(!late.valid('1.2.3.4', old, 5000), 'after a long quiet spell nothing old is honoured')
})

test('store: bounds, expiry, and mutable items only move forward', { timeout: 30_000 }, async () => {
  const s = new MainlineStore({ maxSwarms: 2, maxPeersPerSwarm: 3, peerTtlMs: 1000, maxItems: 2, itemTtlMs: 1000 })
  const [h1, h2, h3] = [id20(), id20(), id20()]
  for (let i = 1; i <= 5; i++) s.addPeer(h1, `1.1.1.1:${i}`, 0)
  assert.deepEqual(s.peers(h1, 0, 10), ['1.1.1.1:5', '1.1.1.1:4', '1.1.1.1:3'], 'the newest announces stay')
  s.addPeer(h2, '2.2.2.2:1', 0)
  assert.throws(() => s.addPeer(h3, '3.3.3.3:1', 0), { code: 'ERR_STORE_FULL' })
  assert.deepEqual(s.peers(h1, 1000, 10), [], 'announces expire')
  s.addPeer(h3, '3.3.3.3:1', 1000)
  s.putItem({ target: h1, v: b('1:a') }, 0)
  s.putItem({ target: h2, v: b('1:b') }, 0)
  assert.throws(() => s.putItem({ target: h3, v: b('1:c') }, 1), { code: 'ERR_STORE_FULL' })
  s.putItem({ target: h3, v: b('1:c') }, 1000) // the others expired
  const m = { target: id20(), v: b('1:x'), k: new Uint8Array(32), sig: new Uint8Array(64), seq: 3 }
  const s2 = new MainlineStore()
  s2.putItem(m, 0)
  assert.throws(() => s2.putItem({ ...m, seq: 2 }, 0), { code: 'ERR_STALE_SEQ' })
  assert.throws(() => s2.putItem({ ...m, v: b('1:y') }, 0), { code: 'ERR_STALE_SEQ' })
  assert.throws(() => s2.putItem({ ...m, seq: 4 }, 0, 2), { code: 'ERR_CAS_MISMATCH' })
  s2.putItem({ ...m, seq: 4 }, 0, 3)
  assert.equal(s2.getItem(m.target, 0)?.seq, 4)
})

test('BEP 42: the test vectors of the BEP, and the exempt ranges', { timeout: 30_000 }, () => {
  const vectors: [string, number, string][] = [
    ['124.31.75.21', 1, '5fbfbf'], ['21.75.31.124', 86, '5a3ce9'], ['65.23.51.170', 22, 'a5d432'], ['84.124.73.14', 65, '1b0321'], ['43.213.53.83', 90, 'e56f6c'],
  ]
  for (const [ip, rand, prefix] of vectors) {
    const random = id20()
    random[19] = rand
    random[2] = (random[2] & 0xf8) | (parseInt(prefix.slice(4), 16) & 7)
    const id = bep42Id(ip, random)
    assert.equal(Buffer.from(id.subarray(0, 3)).toString('hex'), prefix, ip)
    assert.equal(id[19], rand)
    assert.ok(bep42Valid(id, ip))
    const off = id.slice(); off[0] ^= 1
    assert.ok(!bep42Valid(off, ip))
  }
  for (const ip of ['127.0.0.1', '10.1.2.3', '192.168.1.1', '172.20.0.1', '169.254.0.1']) assert.ok(isBep42Exempt(ip), ip)
  assert.ok(!isBep42Exempt('8.8.8.8'))
})

test('library put: bad input is refused with a clear code before anything is sent', { timeout: 30_000 }, async () => {
  const world = new MemoryWorld(`put-args-${SEED}`)
  const node = new Mainline({ runtime: world.runtime('n'), endpoint: world.bindNow('10.0.0.1', 1) })
  const k = keys()
  await rejectsWith(node.put({ v: new Uint8Array(1000) }), 'ERR_VALUE_TOO_LARGE')
  await rejectsWith(node.put({ v: 'x', keys: k, seq: 1, salt: new Uint8Array(65) }), 'ERR_VALUE_TOO_LARGE')
  await rejectsWith(node.put({ v: 'x', keys: k }), 'ERR_BAD_ARGUMENT')
  await rejectsWith(node.put({ v: 'x', keys: k, seq: -1 }), 'ERR_BAD_ARGUMENT')
  await rejectsWith(node.put({ v: 'x', k: k.publicKey, sig: new Uint8Array(64), seq: 1 }), 'ERR_BAD_SIGNATURE')
  await rejectsWith(node.announce(id20(), 0), 'ERR_BAD_ARGUMENT')
  await rejectsWith(node.lookup(new Uint8Array(5), 'find_node'), 'ERR_BAD_ID')
  assert.equal(node.stats.packetsOut, 0)
  assert.equal(signedBytes(undefined, 1, b('1:v')).length, b('3:seqi1e1:v1:v').length)
  await node.close()
  await rejectsWith(node.ping('10.0.0.9:1'), 'ERR_CLOSED')
})
