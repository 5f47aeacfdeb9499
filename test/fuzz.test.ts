// Fuzzing every decoder of network or file input (issue 10): random bytes and mutations of valid
// encodings (bit flips, truncation, extension, boundary values in length and count fields,
// insertions). Each decoder must return a value or throw a WeftError with a code, never another
// error; a value must encode back to the same bytes where an encoder exists. Seeded: WEFT_SEED
// overrides the default, and a failure names the seed (test/helpers/property.ts).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { check } from './helpers/property.js'
import { WeftError } from '../src/errors.js'
import {
  decode, encode, encodedSize, Flag, MAX_PACKET, MessageType, type Message, type WireContact,
} from '../src/wire/messages.js'
import { packAddress, parseAddress, readAddress, unpackAddress } from '../src/wire/address.js'
import { decodeSwim, encodeSwim, type SwimContact } from '../src/gossip/swim-codec.js'
import { MAX_PIGGYBACK, SwimType, UpdateKind, type SwimMessage, type SwimUpdate } from '../src/gossip/swim.js'
import { decodeRecord, encodeRecord, type DhtRecord } from '../src/services/dht/records.js'
import { decodeAuthorization, decodeMessage, encodeAuthorization } from '../src/services/pubsub/message.js'
import { decodeKrpc, decodeValue, encodeValue } from '../src/services/mainline/krpc.js'
import { decodePeerRecord, encodePeerRecord, signPeerRecord } from '../src/identity/peer-record.js'
import { identityFromSeed } from '../src/identity/keys.js'
import { Handshake, keyPairFromPrivate } from '../src/transport/noise.js'
import { SecureTransport } from '../src/transport/session.js'
import { PathTransport } from '../src/transport/paths.js'
import { CHANNEL_HEADER_BYTES, ChannelTransport } from '../src/transport/channels.js'
import { Channel } from '../src/transport/channel.js'
import type { Transport, TransportStats } from '../src/transport/transport.js'
import { MemoryWorld } from '../src/runtime/memory.js'
import { decodeGuid, encodeGuid, MAX_DEPTH } from '../src/overlay/polyring/guid.js'
import { createHash } from 'node:crypto'
import { Node } from '../src/node/node.js'
import { captureCorpus, fire, type FuzzTarget } from '../bench/fuzz-udp.js'
import { SEED } from './helpers/property.js'

const RANDOM_RUNS = 1500
const MUTATION_RUNS = 2500

// ---- the property: total, typed, round-tripping ------------------------------------------------

/** Runs a decoder; a WeftError with a code is a refusal (undefined), anything else thrown fails the test. */
function total<T>(what: string, f: () => T): T | undefined {
  try {
    return f()
  } catch (err) {
    if (err instanceof WeftError && typeof err.code === 'string' && err.code.startsWith('ERR_')) return undefined
    throw new Error(`${what} threw ${(err as Error)?.constructor?.name ?? typeof err}: ${(err as Error)?.message}`, { cause: err })
  }
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

/** Random bytes, and mutations of valid encodings. */
const randomBytes = (maxLength = MAX_PACKET + 40): fc.Arbitrary<Uint8Array> => fc.uint8Array({ maxLength })

const BOUNDARY = [0, 1, 0x7f, 0x80, 0xfe, 0xff]
function mutate(b: Uint8Array, kind: number, i: number, j: number, extra: Uint8Array): Uint8Array {
  const n = b.length
  const c = new Uint8Array(b)
  switch (kind) {
    case 0: if (n) c[i % n] ^= 1 << (j % 8); return c // bit flip
    case 1: return c.slice(0, n ? i % n : 0) // truncation
    case 2: return concat(c, extra.length ? extra : Uint8Array.of(j & 0xff)) // extension
    case 3: // a length or count field set to a boundary value (one or two bytes, as u8 and u16 fields are)
      if (n) c[i % n] = BOUNDARY[j % BOUNDARY.length]
      if (n > 1 && j & 8) c[(i + 1) % n] = BOUNDARY[(j >> 4) % BOUNDARY.length]
      return c
    case 4: { const at = n ? i % n : 0; return concat(c.subarray(0, at), extra, c.subarray(at)) } // insertion
    case 5: { const at = n ? i % n : 0; return concat(c.subarray(0, at), c.subarray(Math.min(n, at + 1 + (j % 8)))) } // deletion
    default: for (let k = 0; k < extra.length && n; k++) c[(i + k * (j | 1)) % n] = extra[k] // scattered overwrites
      return c
  }
}
function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0))
  let o = 0
  for (const p of parts) { out.set(p, o); o += p.length }
  return out
}
function mutated(valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc.tuple(valid, fc.integer({ min: 0, max: 6 }), fc.nat(), fc.nat(), fc.uint8Array({ maxLength: 24 }))
    .map(([b, kind, i, j, extra]) => mutate(b, kind, i, j, extra))
}

/** Random bytes and mutations of `valid`, each through `probe`. */
function fuzz(name: string, valid: fc.Arbitrary<Uint8Array>, probe: (b: Uint8Array) => void, runs = { random: RANDOM_RUNS, mutation: MUTATION_RUNS }): void {
  check(`${name}: valid encodings`, valid, probe, 200)
  check(`${name}: random bytes`, randomBytes(), probe, runs.random)
  check(`${name}: mutated encodings`, mutated(valid), probe, runs.mutation)
}

// ---- building blocks: ids, addresses, contacts -------------------------------------------------

const id32 = fc.uint8Array({ minLength: 32, maxLength: 32 })
const u32 = fc.integer({ min: 0, max: 0xffffffff })
const byte = fc.integer({ min: 0, max: 255 })
/** An address in its one text form: what the wire decodes to. */
const address = fc.oneof(
  fc.tuple(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.integer({ min: 1, max: 65535 })).map(([ip, port]) => readAddress(Uint8Array.of(4, ...ip, port >> 8, port & 0xff), 0)),
  fc.tuple(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.integer({ min: 1, max: 65535 })).map(([ip, port]) => readAddress(Uint8Array.of(6, ...ip, port >> 8, port & 0xff), 0)),
)
const contact: fc.Arbitrary<WireContact> = fc.record({ id: id32, address })
const contacts = (max: number) => fc.array(contact, { maxLength: max })
const token = fc.option(fc.integer({ min: 0, max: 2 ** 48 - 1 }), { nil: undefined })
const reqHeader = fc.record({ txid: u32, sender: id32, flags: fc.constantFrom(0, Flag.TRUNCATED, Flag.READ_ONLY), token, pad: fc.integer({ min: 0, max: 48 }) })
const replyHeader = fc.record({ txid: u32, sender: id32, flags: fc.constantFrom(0, Flag.TRUNCATED, Flag.READ_ONLY, Flag.TRUNCATED | Flag.READ_ONLY) })
const smallBytes = (max: number) => fc.uint8Array({ maxLength: max })

/** Every message type of wire/messages.ts, requests and replies. */
const message: fc.Arbitrary<Message> = fc.oneof(
  reqHeader.map((h) => ({ ...h, type: MessageType.PING }) as Message),
  fc.tuple(reqHeader, id32).map(([h, target]) => ({ ...h, type: MessageType.FIND_NODE, target }) as Message),
  fc.tuple(reqHeader, id32).map(([h, target]) => ({ ...h, type: MessageType.GET, target }) as Message),
  fc.tuple(reqHeader, smallBytes(300), fc.option(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), { nil: undefined }), fc.option(u32, { nil: undefined }), fc.constantFrom(undefined, true))
    .map(([h, record, cas, ttlMs, cache]) => ({ ...h, type: MessageType.PUT, record, cas, ttlMs, cache }) as Message),
  fc.tuple(reqHeader, byte, byte).map(([h, what, arg]) => ({ ...h, type: MessageType.NEIGHBORS, what, arg }) as Message),
  fc.tuple(reqHeader, fc.integer({ min: 0, max: 2 }), id32, byte, u32).map(([h, op, object, hop, ttlSec]) => ({ ...h, type: MessageType.LOCATE, op, object, hop, ttlSec }) as Message),
  fc.tuple(reqHeader, fc.integer({ min: 0, max: 4 }), address, fc.array(address, { maxLength: 4 }))
    .map(([h, op, a, locals]) => ({ ...h, type: MessageType.CONNECT, op, address: a, ...(op === 1 && locals.length ? { locals } : {}) }) as Message),
  fc.tuple(reqHeader, fc.integer({ min: 0, max: 5 }), id32, byte, fc.constantFrom(0, 1), contacts(16))
    .map(([h, op, channel, ttl, priority, cs]) => ({ ...h, type: MessageType.MEMBERSHIP, op, channel, ttl, priority, contacts: cs }) as Message),
  fc.tuple(reqHeader, fc.integer({ min: 0, max: 4 }), id32, byte, fc.array(fc.uint8Array({ minLength: 16, maxLength: 16 }), { minLength: 1, maxLength: 64 }), smallBytes(600))
    .map(([h, op, channel, round, ids, payload]) => {
      // The shape each op allows (messages.ts checkBroadcast).
      const carries = op === 0 || op === 4
      return { ...h, type: MessageType.BROADCAST, op, channel, round, ids: carries ? ids.slice(0, 1) : op === 3 ? [] : ids, payload: carries ? payload : new Uint8Array(0) } as Message
    }),
  fc.tuple(reqHeader, fc.integer({ min: 1, max: 5 }), fc.uint8Array({ minLength: 5, maxLength: 400 }))
    .map(([h, t, rest]) => ({ ...h, type: MessageType.SWIM, payload: Uint8Array.of(t, ...rest) }) as Message),
  fc.tuple(replyHeader, fc.integer({ min: 0, max: 2 ** 48 - 1 }), address, fc.constantFrom(MessageType.PONG, MessageType.STORED))
    .map(([h, t, observed, type]) => ({ ...h, type, token: t, observed }) as Message),
  fc.tuple(replyHeader, fc.integer({ min: 0, max: 2 ** 48 - 1 }), address, contacts(25)).map(([h, t, observed, cs]) => ({ ...h, type: MessageType.NODES, token: t, observed, contacts: cs }) as Message),
  fc.tuple(replyHeader, fc.integer({ min: 0, max: 2 ** 48 - 1 }), address, contacts(8), fc.array(smallBytes(80), { maxLength: 8 }))
    .map(([h, t, observed, cs, records]) => ({ ...h, type: MessageType.VALUES, token: t, observed, contacts: cs, records }) as Message),
  fc.tuple(replyHeader, fc.integer({ min: 0, max: 2 ** 48 - 1 }), address, contacts(4), contacts(8))
    .map(([h, t, observed, next, servers]) => ({ ...h, type: MessageType.POINTERS, token: t, observed, next, servers }) as Message),
  fc.tuple(replyHeader, byte, fc.string({ maxLength: 60 })).map(([h, code, reason]) => ({ ...h, type: MessageType.ERROR, code, reason }) as Message),
).filter((m) => encodedSize(m) <= MAX_PACKET)

// ---- wire ------------------------------------------------------------------------------------------

test('wire messages: every type decodes to a value or a coded error, and values encode back to the same bytes', { timeout: 60_000 }, () => {
  const valid = message.map(encode)
  fuzz('wire decode', valid, (b) => {
    const r = decode(b)
    if (!r.ok) {
      assert.ok(r.error instanceof WeftError && r.error.code.startsWith('ERR_'))
      // decode() wraps a stray TypeError or RangeError as ERR_BAD_MESSAGE: that would be a bug in the decoder.
      assert.ok(!r.error.message.startsWith('undecodable message:'), `the decoder threw a non-WeftError: ${r.error.message} (bytes ${hex(b)})`)
      return
    }
    assert.equal(hex(encode(r.message)), hex(b), `type ${r.message.type} does not round-trip`)
  })
  // Mutations that keep the header, aimed at each type's body.
  for (const type of [1, 3, 4, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16] as const) {
    const ofType = message.filter((m) => m.type === type).map(encode)
    check(`wire decode: mutated type ${type}`, mutated(ofType).map((b) => { if (b.length >= 3) b[0] = 0x57, b[1] = 1, b[2] = type; return b }), (b) => {
      const r = decode(b)
      if (!r.ok) { assert.ok(!r.error.message.startsWith('undecodable message:'), r.error.message); return }
      assert.equal(hex(encode(r.message)), hex(b))
    }, 400)
  }
})

test('addresses: packed addresses decode or refuse with a code and pack back; text addresses parse or refuse', () => {
  const packed = address.map((a) => { const b = new Uint8Array(19); return b.subarray(0, packAddress(a, b, 0)) })
  fuzz('unpackAddress', packed, (b) => {
    const r = total('unpackAddress', () => unpackAddress(b, 0))
    if (!r) return
    const out = new Uint8Array(19)
    const n = packAddress(r[0], out, 0)
    assert.equal(n, r[1])
    assert.equal(hex(out.subarray(0, n)), hex(b.subarray(0, n)))
  })
  check('parseAddress: random text', fc.oneof(fc.string({ maxLength: 60 }), fc.string({ unit: 'binary', maxLength: 60 }), address.map((a) => a.slice(0, -1) + '9'), address.chain((a) => fc.nat(a.length).map((i) => a.slice(0, i) + ':' + a.slice(i)))),
    (s) => { total('parseAddress', () => parseAddress(s)) }, 3000)
})

// ---- SWIM payloads ---------------------------------------------------------------------------------

test('SWIM payloads: decode to a message or a coded error, and encode back to the same bytes', () => {
  const contactTable = fc.array(contact, { minLength: 1, maxLength: 20 })
  const swim = contactTable.chain((table) => {
    const h = fc.integer({ min: 0, max: table.length - 1 })
    const update: fc.Arbitrary<SwimUpdate> = fc.tuple(fc.constantFrom(UpdateKind.ALIVE, UpdateKind.SUSPECT, UpdateKind.DEAD), u32, h, h, fc.boolean())
      .map(([kind, incarnation, member, from, left]) => ({ kind, incarnation, member, from: kind === UpdateKind.DEAD ? (left ? member : -1) : kind === UpdateKind.ALIVE ? member : from }))
    const msg: fc.Arbitrary<SwimMessage> = fc.tuple(fc.integer({ min: 1, max: 5 }), u32, h, fc.array(update, { maxLength: MAX_PIGGYBACK }))
      .map(([type, seq, target, updates]) => (type === SwimType.PING || type === SwimType.PING_REQ ? { type, seq, target, updates } : { type, seq, updates }) as SwimMessage)
    return msg.map((m) => encodeSwim(m, (x) => table[x]))
  })
  fuzz('decodeSwim', swim, (b) => {
    const table: SwimContact[] = []
    const handleOf = (id: Uint8Array, a: string | null): number => table.push({ id: new Uint8Array(id), address: a ?? '0.0.0.0:1' }) - 1
    const m = total('decodeSwim', () => decodeSwim(b, handleOf))
    if (!m) return
    assert.equal(hex(encodeSwim(m, (x) => table[x])), hex(b))
  })
})

// ---- services: DHT records, pub-sub messages, Mainline KRPC ------------------------------------------

test('DHT records: decode to a record or a coded error, and encode back to the same bytes', () => {
  const record: fc.Arbitrary<DhtRecord> = fc.oneof(
    smallBytes(300).map((value) => ({ kind: 'immutable', value }) as DhtRecord),
    fc.tuple(id32, smallBytes(64), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), smallBytes(300), fc.uint8Array({ minLength: 64, maxLength: 64 }))
      .map(([publicKey, salt, seq, value, signature]) => ({ kind: 'mutable', publicKey, salt, seq, value, signature }) as DhtRecord),
    fc.tuple(id32, id32, fc.array(address, { maxLength: 8 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), fc.uint8Array({ minLength: 64, maxLength: 64 }))
      .map(([key, publicKey, addresses, expiresAt, signature]) => ({ kind: 'provider', key, publicKey, addresses, expiresAt, signature }) as DhtRecord),
  )
  fuzz('decodeRecord', record.map(encodeRecord), (b) => {
    const r = total('decodeRecord', () => decodeRecord(b))
    if (r) assert.equal(hex(encodeRecord(r)), hex(b))
  })
})

test('pub-sub messages and authorizations: decode or refuse with a code; authorizations encode back', () => {
  const FIXED = 1 + 1 + 32 + 32 + 6 + 4 + 2 + 64
  const msg = fc.tuple(fc.boolean(), smallBytes(300), fc.uint8Array({ minLength: FIXED - 4, maxLength: FIXED - 4 }), fc.uint8Array({ minLength: 70, maxLength: 70 }))
    .map(([auth, data, fixed, authBytes]) => {
      // version | flags | topic | author | time | nonce | len | data | [auth] | signature
      const head = fixed.subarray(0, 2 + 32 + 32 + 6 + 4)
      head[0] = 1; head[1] = auth ? 1 : 0
      return concat(head, Uint8Array.of(data.length >> 8, data.length & 0xff), data, auth ? authBytes : new Uint8Array(0), fixed.subarray(0, 64))
    })
  fuzz('pubsub decodeMessage', msg, (b) => {
    const r = total('pubsub decodeMessage', () => decodeMessage(b))
    assert.ok(r, 'decodeMessage never throws')
    if (r.ok) assert.equal(r.message.data.length + FIXED + (r.message.authorization ? 70 : 0), b.length)
    else assert.ok(r.error instanceof WeftError)
  })
  fuzz('pubsub decodeAuthorization', fc.uint8Array({ minLength: 134, maxLength: 134 }), (b) => {
    const a = total('decodeAuthorization', () => decodeAuthorization(b))
    if (a) assert.equal(hex(encodeAuthorization(a)), hex(b))
  })
})

test('Mainline KRPC: the bencode gate refuses with a code or decodes; canonical values encode back', () => {
  type B = number | Uint8Array | B[] | { [k: string]: B }
  const { value: bvalue } = fc.letrec<{ value: B }>((tie) => ({
    value: fc.oneof({ depthSize: 'small' },
      fc.integer({ min: -1e9, max: 1e9 }), smallBytes(30),
      fc.array(tie('value'), { maxLength: 4 }),
      fc.dictionary(fc.string({ unit: 'grapheme-ascii', maxLength: 6 }), tie('value'), { maxKeys: 4 })),
  }))
  const query = fc.tuple(smallBytes(4), fc.constantFrom('ping', 'find_node', 'get_peers', 'announce_peer', 'get', 'put'), id32, id32, fc.integer({ min: 1, max: 65535 }), smallBytes(20))
    .map(([t, q, id, target, port, tok]) => encodeValue({ t: t.length ? t : Uint8Array.of(1), y: Buffer.from('q'), q: Buffer.from(q), a: { id, target, info_hash: target, port, token: tok } }))
  const response = fc.tuple(smallBytes(4), id32, fc.uint8Array({ maxLength: 26 * 8 }))
    .map(([t, id, nodes]) => encodeValue({ t: t.length ? t : Uint8Array.of(1), y: Buffer.from('r'), r: { id, nodes: nodes.subarray(0, nodes.length - (nodes.length % 26)) } }))
  const valid = fc.oneof(bvalue.map((v) => encodeValue(v)), query, response)
  fuzz('decodeKrpc', valid, (b) => {
    const r = total('decodeKrpc', () => decodeKrpc(b))
    assert.ok(r, 'decodeKrpc never throws')
    const v = total('decodeValue', () => decodeValue(b))
    assert.ok(v, 'decodeValue never throws')
    if (v.ok) assert.equal(hex(encodeValue(v.value)), hex(b), 'the gate passes canonical bencode only')
  })
})

// ---- identity ----------------------------------------------------------------------------------------

test('peer records: decode to a verified record or a coded error, and encode back', () => {
  const ids = [0, 1, 2].map((i) => identityFromSeed(createHash('sha256').update(`fuzz-peer-record:${i}`).digest()))
  const valid = fc.tuple(fc.integer({ min: 0, max: 2 }), fc.array(address, { maxLength: 8 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }))
    .map(([i, addresses, seq]) => encodePeerRecord(signPeerRecord(ids[i], addresses, seq)))
  fuzz('decodePeerRecord', valid, (b) => {
    const r = total('decodePeerRecord', () => decodePeerRecord(b))
    if (r) assert.equal(hex(encodePeerRecord(r)), hex(b))
  }, { random: 800, mutation: 1200 })
})

// ---- transport: Noise handshake messages, session packets, relay framing, channel segments ------------

function key(seed: string) { return keyPairFromPrivate(createHash('sha256').update(seed).digest()) }

test('Noise handshake messages: each step reads a message or refuses with a code', () => {
  const rs = key('fuzz-responder'), is = key('fuzz-initiator')
  const prologue = Buffer.from('weft session v1')
  // Real messages of both patterns, to mutate.
  const captured: Record<string, Uint8Array[]> = { xx1: [], xx2: [], xx3: [], ik1: [], ik2: [] }
  for (let i = 0; i < 4; i++) {
    const payload = new Uint8Array(i * 40).fill(i)
    const xi = new Handshake({ pattern: 'XX', initiator: true, prologue, s: is }), xr = new Handshake({ pattern: 'XX', initiator: false, prologue, s: rs })
    const m1 = xi.writeMessage(new Uint8Array(0)); xr.readMessage(m1)
    const m2 = xr.writeMessage(payload); xi.readMessage(m2)
    const m3 = xi.writeMessage(payload); xr.readMessage(m3)
    captured.xx1.push(m1); captured.xx2.push(m2); captured.xx3.push(m3)
    const ii = new Handshake({ pattern: 'IK', initiator: true, prologue, s: is, rs: rs.publicKey }), ir = new Handshake({ pattern: 'IK', initiator: false, prologue, s: rs })
    const k1 = ii.writeMessage(payload); ir.readMessage(k1)
    captured.ik1.push(k1); captured.ik2.push(ir.writeMessage(payload))
  }
  // A reader at each step: a fresh handshake brought to the point where it reads that message.
  const readers: Record<string, (b: Uint8Array) => unknown> = {
    xx1: (b) => new Handshake({ pattern: 'XX', initiator: false, prologue, s: rs }).readMessage(b),
    ik1: (b) => new Handshake({ pattern: 'IK', initiator: false, prologue, s: rs }).readMessage(b),
    xx2: (b) => { const h = new Handshake({ pattern: 'XX', initiator: true, prologue, s: is }); h.writeMessage(new Uint8Array(0)); return h.readMessage(b) },
    ik2: (b) => { const h = new Handshake({ pattern: 'IK', initiator: true, prologue, s: is, rs: rs.publicKey }); h.writeMessage(new Uint8Array(0)); return h.readMessage(b) },
    xx3: (b) => {
      const i = new Handshake({ pattern: 'XX', initiator: true, prologue, s: is }), r = new Handshake({ pattern: 'XX', initiator: false, prologue, s: rs })
      r.readMessage(i.writeMessage(new Uint8Array(0))); r.writeMessage(new Uint8Array(0))
      return r.readMessage(b)
    },
  }
  for (const [step, read] of Object.entries(readers)) {
    fuzz(`noise ${step}`, fc.constantFrom(...captured[step]), (b) => { total(`noise ${step}`, () => read(b)) }, { random: 300, mutation: 500 })
  }
})

/** A transport that records what is sent: the layer under test is fed datagrams by hand. */
class Recorder implements Transport {
  readonly stats: TransportStats = { packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, oversizeDropped: 0 }
  onPacket: (from: string, bytes: Uint8Array) => void = () => {}
  readonly sent: { to: string; bytes: Uint8Array }[] = []
  constructor(readonly address: string) {}
  send(to: string, bytes: Uint8Array): void { this.sent.push({ to, bytes: new Uint8Array(bytes) }) }
  close(): Promise<void> { return Promise.resolve() }
}

test('session, relay and channel packets: every layer drops what does not parse and never throws', () => {
  const world = new MemoryWorld('fuzz-transport')
  const A = '10.0.0.1:1000', B = '10.0.0.2:2000'
  const [ia, ib] = [0, 1].map((i) => identityFromSeed(createHash('sha256').update(`fuzz-session:${i}`).digest()))
  // Two real sessions (XX, then IK) to capture INIT, RESP, FINAL and DATA packets.
  const wa = new Recorder(A), wb = new Recorder(B)
  const sa = new SecureTransport(wa, world.runtime('a'), ia, () => -1), sb = new SecureTransport(wb, world.runtime('b'), ib, () => -1)
  const pump = (): void => {
    for (let moved = true; moved;) {
      moved = false
      for (const [from, w, to] of [[A, wa, wb], [B, wb, wa]] as const) {
        for (const { bytes } of w.sent.splice(0)) { to.onPacket(from, bytes); moved = true }
      }
    }
  }
  const captured: Uint8Array[] = []
  const tap = (w: Recorder) => { const send = w.send.bind(w); w.send = (to, b) => { captured.push(new Uint8Array(b)); send(to, b) } }
  tap(wa); tap(wb)
  sa.send(B, Uint8Array.of(0x57, 1, 1, 0)); pump()
  sb.send(A, new Uint8Array(300).fill(7)); pump()
  const sc = new SecureTransport(new Recorder('10.0.0.3:3000'), world.runtime('c'), identityFromSeed(createHash('sha256').update('fuzz-session:2').digest()), () => -1)
  sc.addPeerKey(B, ib.publicKey)
  sc.send(B, Uint8Array.of(0x57, 1, 1, 0))
  captured.push(...(sc as unknown as { inner: Recorder }).inner.sent.map((s) => s.bytes))
  assert.ok(captured.some((b) => b[0] === 0xe1) && captured.some((b) => b[0] === 0xe2) && captured.some((b) => b[0] === 0xe3) && captured.some((b) => b[0] === 0xe4))
  const before = { ...sb.sessionStats }
  const delivered: Uint8Array[] = []
  sb.onPacket = (_f, b) => { delivered.push(b) }
  fuzz('session receive', fc.constantFrom(...captured), (b) => {
    wb.onPacket(A, b)
    wb.onPacket('10.0.0.9:9', b)
    wb.sent.length = 0
  })
  const drops = Object.entries(sb.sessionStats).filter(([k, v]) => v !== before[k as keyof typeof before]).map(([k, v]) => `${k}: ${v}`)
  assert.ok(drops.length > 0, 'the session layer counted what it dropped')

  // Relay framing: RELAY_OUT, RELAY_IN, PROBE, PROBE_ACK around real payloads.
  const wp = new Recorder(B)
  const paths = new PathTransport(wp, world.runtime('p'), null, null)
  paths.onPacket = () => {}
  const frame = fc.tuple(fc.constantFrom(0xd0, 0xd1, 0xd2, 0xd3), address, smallBytes(100)).map(([k, a, payload]) => {
    if (k >= 0xd2) return Uint8Array.of(k, ...payload.subarray(0, 8), ...new Uint8Array(Math.max(0, 8 - payload.length)))
    const b = new Uint8Array(20); const n = packAddress(a, b, 0)
    return concat(Uint8Array.of(k), b.subarray(0, n), payload)
  })
  fuzz('path receive', frame, (b) => { wp.onPacket(A, b); wp.sent.length = 0 })
  assert.ok(paths.pathStats.malformed > 0)

  // Channel segments, captured from a real channel pair, inside the channel framing.
  const wc = new Recorder(A), wd = new Recorder(B)
  const ca = new ChannelTransport(wc, world.runtime('ca')), cb = new ChannelTransport(wd, world.runtime('cb'))
  ca.onPacket = () => {}; cb.onPacket = () => {}
  const ch = ca.channel(B, 3)
  for (let i = 0; i < 4; i++) ch.send(new Uint8Array(100 + i * 700).fill(i))
  const segments = wc.sent.map((s) => s.bytes)
  for (const s of segments) wd.onPacket(A, s)
  segments.push(...wd.sent.map((s) => s.bytes)) // the acks
  fuzz('channel receive', fc.constantFrom(...segments), (b) => { if (b.length) b[0] = 0x43; wd.onPacket(A, b); wd.sent.length = 0 })
  const single = new Channel(world.runtime('ch'), () => {})
  fuzz('channel segment', fc.constantFrom(...segments.map((s) => s.subarray(CHANNEL_HEADER_BYTES))), (b) => { single.receive(b) })
  assert.ok(single.stats.malformed > 0 || cb.channelStats.malformed > 0)
  void sa.close(); void sb.close(); void sc.close()
})

// ---- overlay: polyring GUIDs ------------------------------------------------------------------------

test('polyring GUIDs: decode to a GUID or a coded error, and encode back', () => {
  const guid = fc.array(fc.integer({ min: 0, max: 2 ** 31 }), { minLength: 1, maxLength: MAX_DEPTH }).map((xs) => encodeGuid(Uint32Array.from(xs)))
  fuzz('decodeGuid', guid.filter((b) => total('valid guid', () => decodeGuid(b)) !== undefined), (b) => {
    const g = total('decodeGuid', () => decodeGuid(b))
    if (g) assert.equal(hex(encodeGuid(g)), hex(b))
  })
})

// ---- a live node's UDP port (the short version of bench/fuzz-udp.ts) ------------------------------------

test(`live nodes (encrypted and plaintext) survive 20,000 fuzzed datagrams and still answer a ping (seed ${SEED})`, { timeout: 60_000 }, async () => {
  const rejections: unknown[] = []
  const onRejection = (e: unknown) => { rejections.push(e) }
  process.on('unhandledRejection', onRejection)
  const nodes = [new Node({ encrypt: true, membership: true }), new Node({ encrypt: false, membership: true })]
  const clients = [new Node({ encrypt: true, readOnly: true }), new Node({ encrypt: false, readOnly: true })]
  try {
    for (const n of [...nodes, ...clients]) await n.start()
    const targets: FuzzTarget[] = nodes.map((n) => ({ address: n.address, publicKey: n.identity.publicKey, encrypt: n.status().sessions !== null }))
    const seeds = await captureCorpus(targets, `test:${SEED}`, 2)
    const fired = await fire(targets, seeds, 20_000, `test:${SEED}`, 2)
    await new Promise((r) => setTimeout(r, 500))
    assert.equal(fired.sent + fired.sendErrors, 20_000)
    for (let i = 0; i < nodes.length; i++) {
      const s = nodes[i].status()
      const pong = await clients[i].ping(nodes[i].address)
      assert.equal(pong.id, nodes[i].idHex, 'the node still answers a real ping')
      // What the node got, it counted: drops by reason at each layer.
      const sessionDrops = s.sessions ? s.sessions.malformed + s.sessions.misdirected + s.sessions.handshakeFailures + s.sessions.decryptFailures + s.sessions.replays : 0
      const drops = s.transport.oversizeDropped + s.rpc.malformed + s.nat.paths.malformed + s.channels.malformed + sessionDrops
      console.log(`${s.sessions ? 'encrypted' : 'plaintext'}: received ${s.transport.packetsIn} of ${fired.sent} sent, dropped ${drops} (oversize ${s.transport.oversizeDropped}, rpc ${JSON.stringify(s.rpc.malformedByCode)}, paths ${s.nat.paths.malformed}, session ${sessionDrops})`)
      assert.ok(s.transport.packetsIn > 1000, 'the datagrams reached the node')
      assert.ok(drops > s.transport.packetsIn * 0.3, 'most of them were counted as dropped')
      if (!s.sessions) assert.ok(s.rpc.malformed > 0, 'the plaintext node\'s rpc decoder met them')
    }
    assert.deepEqual(rejections, [])
  } finally {
    process.off('unhandledRejection', onRejection)
    for (const n of [...clients, ...nodes]) await n.stop({ leave: false })
  }
})
