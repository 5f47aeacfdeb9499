// The wire codec (spec/wire.md): property tests with fast-check, and the spec's worked examples.
// Deterministic: fast-check runs from WEFT_SEED (default 42); a failure names the seed to replay.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SocketAddress } from 'node:net'
import fc from 'fast-check'
import { check, SEED } from './helpers/property.js'
import { WeftError, type ErrorCode } from '../src/errors.js'
import {
  canonicalAddress, formatAddress, packAddress, packedAddressSize, parseAddress, unpackAddress,
} from '../src/wire/address.js'
import {
  decode, encode, encodedSize, Flag, isRequest, HEADER_BYTES, LAST_TYPE, LocateOp, MAGIC, MAX_CONTACTS, MAX_NEXT_HOPS, MAX_PACKET, MAX_REASON_BYTES,
  MAX_SERVERS, MessageType, VERSION, type Message, type WireContact,
} from '../src/wire/messages.js'

const KNOWN_CODES = new Set<ErrorCode>(['ERR_BAD_MESSAGE', 'ERR_TRUNCATED', 'ERR_TOO_LARGE', 'ERR_VERSION', 'ERR_UNKNOWN_TYPE'])

function decodeError(bytes: Uint8Array): ErrorCode {
  const r = decode(bytes)
  assert.equal(r.ok, false, 'expected the decoder to refuse these bytes')
  if (r.ok) throw new Error('unreachable')
  assert.ok(r.error instanceof WeftError)
  return r.error.code
}

// ---- arbitraries -------------------------------------------------------------------------------

const hex = (b: Uint8Array | number[]) => Buffer.from(b).toString('hex')
const id = fc.uint8Array({ minLength: 32, maxLength: 32 })
const port = fc.integer({ min: 0, max: 65535 })
const ipv4 = fc.tuple(fc.uint8Array({ minLength: 4, maxLength: 4 }), port).map(([b, p]) => `${b.join('.')}:${p}`)
/** 16 bytes with many zero groups (so "::" compression is exercised) and IPv4-mapped forms. */
const ipv6Bytes = fc.oneof(
  fc.array(fc.oneof(fc.constant(0), fc.constant(0), fc.constant(0xffff), fc.integer({ min: 0, max: 0xffff })), { minLength: 8, maxLength: 8 })
    .map((groups) => Uint8Array.from(groups.flatMap((g) => [g >> 8, g & 0xff]))),
  fc.uint8Array({ minLength: 4, maxLength: 4 }).map((v4) => Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...v4])),
  fc.uint8Array({ minLength: 16, maxLength: 16 }),
)
/** Node's own formatting (libuv's inet_ntop), which is what a socket reports as a sender. */
function nodeIpv6Text(bytes: Uint8Array): string {
  const groups: string[] = []
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] << 8) | bytes[i + 1]).toString(16))
  return new SocketAddress({ address: groups.join(':'), family: 'ipv6' }).address
}
const ipv6 = fc.tuple(ipv6Bytes, port).map(([b, p]) => `[${nodeIpv6Text(b)}]:${p}`)
const address = fc.oneof(ipv4, ipv6)
const txid = fc.integer({ min: 0, max: 0xffffffff })
const token = fc.integer({ min: 0, max: 2 ** 48 - 1 })
const flags = fc.integer({ min: 0, max: 7 }) // every known flag combination
const contact: fc.Arbitrary<WireContact> = fc.record({ id, address }, { noNullPrototype: true })
const reason = fc.string({ unit: 'binary', maxLength: 200 }).filter((s) => Buffer.byteLength(s) <= MAX_REASON_BYTES)
// The largest request is FIND_NODE with a token: 40 + 6 + 32 + 2 = 80 bytes before its padding.
const pad = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: MAX_PACKET - 80 }))
// LOCATE is larger: 40 + 6 + 1 + 32 + 1 + 4 + 2 = 86 bytes before its padding.
const locatePad = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: MAX_PACKET - 86 }))
const locateOp = fc.constantFrom(LocateOp.PUBLISH, LocateOp.LOCATE, LocateOp.UNPUBLISH)

const message: fc.Arbitrary<Message> = fc.oneof(
  fc.record({ type: fc.constant(MessageType.PING), txid, sender: id, flags, token: fc.option(token, { nil: undefined }), pad })
    .map((m) => m as Message),
  fc.record({ type: fc.constant(MessageType.FIND_NODE), txid, sender: id, flags, target: id, token: fc.option(token, { nil: undefined }), pad })
    .map((m) => m as Message),
  fc.record({ type: fc.constant(MessageType.PONG), txid, sender: id, flags, token, observed: address }).map((m) => m as Message),
  fc.record({
    type: fc.constant(MessageType.NODES), txid, sender: id, flags, token, observed: address,
    contacts: fc.array(contact, { minLength: 0, maxLength: MAX_CONTACTS }),
  }).map((m) => m as Message),
  fc.record({ type: fc.constant(MessageType.ERROR), txid, sender: id, flags, code: fc.integer({ min: 0, max: 255 }), reason })
    .map((m) => m as Message),
  fc.record({ type: fc.constant(MessageType.GET), txid, sender: id, flags, target: id, token: fc.option(token, { nil: undefined }), pad })
    .map((m) => m as Message),
  fc.record({
    type: fc.constant(MessageType.PUT), txid, sender: id, flags, token: fc.option(token, { nil: undefined }),
    cas: fc.option(fc.maxSafeNat(), { nil: undefined }), ttlMs: fc.option(fc.integer({ min: 0, max: 0xffffffff }), { nil: undefined }),
    cache: fc.option(fc.constant(true), { nil: undefined }),
    record: fc.uint8Array({ maxLength: 1200 }), pad: fc.integer({ min: 0, max: 40 }),
  }).map((m) => m as Message),
  fc.record({ type: fc.constant(MessageType.STORED), txid, sender: id, flags, token, observed: address }).map((m) => m as Message),
  fc.record({
    type: fc.constant(MessageType.NEIGHBORS), txid, sender: id, flags, token: fc.option(token, { nil: undefined }),
    what: fc.integer({ min: 0, max: 255 }), arg: fc.integer({ min: 0, max: 255 }), pad,
  }).map((m) => m as Message),
  fc.record({
    type: fc.constant(MessageType.VALUES), txid, sender: id, flags, token, observed: address,
    contacts: fc.array(contact, { minLength: 0, maxLength: 8 }),
    records: fc.array(fc.uint8Array({ maxLength: 120 }), { maxLength: 6 }),
  }).map((m) => m as Message),
  fc.record({
    type: fc.constant(MessageType.LOCATE), txid, sender: id, flags, token: fc.option(token, { nil: undefined }),
    op: locateOp, object: id, hop: fc.integer({ min: 0, max: 255 }), ttlSec: fc.integer({ min: 0, max: 0xffffffff }), pad: locatePad,
  }).map((m) => m as Message),
  fc.record({
    type: fc.constant(MessageType.POINTERS), txid, sender: id, flags, token, observed: address,
    next: fc.array(contact, { maxLength: MAX_NEXT_HOPS }), servers: fc.array(contact, { maxLength: MAX_SERVERS }),
  }).map((m) => m as Message),
)

/** What the decoder returns for `m`: HAS_TOKEN is set exactly when a request carries a token. */
function expected(m: Message): Message {
  const hasToken = isRequest(m) && m.token !== undefined
  const out = { ...m, flags: (m.flags & ~Flag.HAS_TOKEN) | (hasToken ? Flag.HAS_TOKEN : 0) } as Message
  if (isRequest(out)) {
    if (out.type === MessageType.PUT) {
      // The decoder always has these keys; cache is true or absent.
      if (out.cas === undefined) out.cas = undefined
      if (out.ttlMs === undefined) out.ttlMs = undefined
      out.cache = out.cache ? true : undefined
    }
    out.pad = out.pad ?? 0
    if (out.token === undefined) out.token = undefined // the decoder always has the key
  }
  return out
}

// ---- round trips ------------------------------------------------------------------------------

test(`every valid message round-trips: decode(encode(m)) = m, at its exact size (seed ${SEED})`, () => {
  check('round trip', message, (m) => {
    const bytes = encode(m)
    assert.equal(bytes.length, encodedSize(m))
    assert.ok(bytes.length <= MAX_PACKET)
    const r = decode(bytes)
    assert.ok(r.ok, r.ok ? '' : `${r.error.code}: ${r.error.message}`)
    assert.deepStrictEqual(r.message, expected(m))
    assert.deepStrictEqual(encode(r.message), bytes) // and back to the same bytes
  }, 1500)
})

test('a NODES reply with 25 IPv6 contacts fits in MAX_PACKET; a 26th contact is refused', () => {
  const v6 = '[2001:db8:ffff:ffff:ffff:ffff:ffff:ffff]:65535'
  const contacts = Array.from({ length: MAX_CONTACTS }, () => ({ id: new Uint8Array(32).fill(9), address: v6 }))
  const m: Message = { type: MessageType.NODES, txid: 1, sender: new Uint8Array(32), flags: 0, token: 1, observed: v6, contacts }
  assert.equal(encode(m).length, 40 + 6 + 19 + 1 + 25 * 51)
  assert.ok(decode(encode(m)).ok)
  const tooMany = { ...m, contacts: [...contacts.slice(0, 20).map((c) => ({ ...c, address: '1.2.3.4:5' })), ...contacts.slice(0, 6)] }
  assert.throws(() => encode(tooMany), (e: unknown) => e instanceof WeftError && e.code === 'ERR_TOO_LARGE')
})

// ---- what a decoder must refuse --------------------------------------------------------------

test(`random bytes never make decode throw: a valid message or a typed error (seed ${SEED})`, () => {
  const header = fc.tuple(fc.integer({ min: 0, max: 13 }), fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 1400 }))
    .map(([type, fl, rest]) => Uint8Array.from([MAGIC, VERSION, type, fl & 0x0f, ...rest]))
  const bytes = fc.oneof(fc.uint8Array({ maxLength: 1500 }), header)
  check('random bytes', bytes, (b) => {
    let r
    try { r = decode(b) } catch (err) { assert.fail(`decode threw ${String(err)} on ${hex(b)}`) }
    if (r.ok) {
      assert.ok(b.length <= MAX_PACKET && b.length >= HEADER_BYTES + 2)
    } else {
      assert.ok(r.error instanceof WeftError)
      assert.ok(KNOWN_CODES.has(r.error.code), `unexpected code ${r.error.code}`)
    }
  }, 3000)
})

test(`a valid encoding with random bytes changed decodes or fails with a typed error (seed ${SEED})`, () => {
  const mutated = fc.tuple(message, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }))
  check('mutation', mutated, ([m, edits]) => {
    const b = encode(m)
    for (const [at, v] of edits) b[at % b.length] = v
    const r = decode(b)
    if (!r.ok) assert.ok(KNOWN_CODES.has(r.error.code), `unexpected code ${r.error.code}`)
  }, 1000)
})

test(`every strict prefix of a valid encoding fails with ERR_TRUNCATED (seed ${SEED})`, () => {
  check('prefixes', message, (m) => {
    const b = encode(m)
    for (let n = 0; n < b.length; n++) assert.equal(decodeError(b.subarray(0, n)), 'ERR_TRUNCATED', `prefix of ${n}/${b.length} bytes`)
  }, 150)
})

test(`bytes appended to a valid encoding are refused (seed ${SEED})`, () => {
  check('trailing bytes', fc.tuple(message, fc.uint8Array({ minLength: 1, maxLength: 64 })), ([m, extra]) => {
    const b = Uint8Array.from([...encode(m), ...extra])
    assert.equal(decodeError(b), b.length > MAX_PACKET ? 'ERR_TOO_LARGE' : 'ERR_BAD_MESSAGE')
  }, 500)
})

test(`any version but 1 is ERR_VERSION, whatever follows the version byte (seed ${SEED})`, () => {
  const version = fc.integer({ min: 0, max: 255 }).filter((v) => v !== VERSION)
  check('version', fc.tuple(message, version, fc.nat()), ([m, v, cut]) => {
    const b = encode(m)
    b[1] = v
    assert.equal(decodeError(b), 'ERR_VERSION')
    assert.equal(decodeError(b.subarray(0, 2 + (cut % (b.length - 1)))), 'ERR_VERSION') // even if shorter than a v1 header
  }, 300)
})

test(`a bad magic byte is ERR_BAD_MESSAGE; an unknown type is ERR_UNKNOWN_TYPE (seed ${SEED})`, () => {
  check('magic and type', fc.tuple(message, fc.integer({ min: 0, max: 255 })), ([m, v]) => {
    const b = encode(m)
    if (v !== MAGIC) { const c = b.slice(); c[0] = v; assert.equal(decodeError(c), 'ERR_BAD_MESSAGE') }
    if (v === 0 || v > LAST_TYPE) { const c = b.slice(); c[2] = v; assert.equal(decodeError(c), 'ERR_UNKNOWN_TYPE') }
  }, 300)
})

test(`packets over MAX_PACKET are ERR_TOO_LARGE, and the encoder will not make one (seed ${SEED})`, () => {
  check('oversized', fc.tuple(message, fc.integer({ min: MAX_PACKET + 1, max: 9000 })), ([m, size]) => {
    const b = new Uint8Array(size)
    b.set(encode(m))
    assert.equal(decodeError(b), 'ERR_TOO_LARGE')
  }, 100)
  const sender = new Uint8Array(32)
  const tooBig: Message[] = [
    { type: MessageType.PING, txid: 0, sender, flags: 0, pad: MAX_PACKET - 42 + 1 },
    { type: MessageType.FIND_NODE, txid: 0, sender, flags: 0, target: sender, token: 1, pad: MAX_PACKET - 80 + 1 },
    { type: MessageType.ERROR, txid: 0, sender, flags: 0, code: 1, reason: 'x'.repeat(MAX_REASON_BYTES + 1) },
    { type: MessageType.ERROR, txid: 0, sender, flags: 0, code: 1, reason: 'é'.repeat(101) }, // 202 UTF-8 bytes
  ]
  for (const m of tooBig) assert.throws(() => encode(m), (e: unknown) => e instanceof WeftError && e.code === 'ERR_TOO_LARGE')
  const atLimit: Message = { type: MessageType.FIND_NODE, txid: 0, sender, flags: 0, target: sender, token: 1, pad: MAX_PACKET - 80 }
  assert.equal(encode(atLimit).length, MAX_PACKET)
  assert.ok(decode(encode(atLimit)).ok)
})

test(`reserved flag bits (0x08..0x80) are refused (seed ${SEED})`, () => {
  check('reserved flags', fc.tuple(message, fc.integer({ min: 3, max: 7 })), ([m, bit]) => {
    const b = encode(m)
    b[3] |= 1 << bit
    assert.equal(decodeError(b), 'ERR_BAD_MESSAGE')
  }, 300)
})

test(`non-zero padding is refused (seed ${SEED})`, () => {
  const padded = fc.tuple(fc.boolean(), id, fc.option(token, { nil: undefined }), fc.integer({ min: 1, max: 1000 }), fc.nat(), fc.integer({ min: 1, max: 255 }))
  check('padding', padded, ([isPing, sender, tok, p, at, v]) => {
    const m: Message = isPing
      ? { type: MessageType.PING, txid: 5, sender, flags: 0, token: tok, pad: p }
      : { type: MessageType.FIND_NODE, txid: 5, sender, flags: 0, target: sender, token: tok, pad: p }
    const b = encode(m)
    assert.ok(decode(b).ok)
    b[b.length - p + (at % p)] = v
    assert.equal(decodeError(b), 'ERR_BAD_MESSAGE')
  }, 300)
})

test('a contact count over 25, an unknown address family and an overlong reason are refused', () => {
  const sender = new Uint8Array(32)
  const nodes = encode({ type: MessageType.NODES, txid: 1, sender, flags: 0, token: 0, observed: '1.2.3.4:5', contacts: [] })
  const count = nodes.slice(); count[HEADER_BYTES + 6 + 7] = MAX_CONTACTS + 1
  assert.equal(decodeError(count), 'ERR_BAD_MESSAGE')
  for (const family of [0, 5, 7, 255]) {
    const fam = nodes.slice(); fam[HEADER_BYTES + 6] = family
    assert.equal(decodeError(fam), 'ERR_BAD_MESSAGE')
  }
  const err = encode({ type: MessageType.ERROR, txid: 1, sender, flags: 0, code: 2, reason: 'x'.repeat(MAX_REASON_BYTES) })
  assert.ok(decode(err).ok)
  const long = new Uint8Array(err.length + 1); long.set(err); long[HEADER_BYTES + 1] = MAX_REASON_BYTES + 1
  assert.equal(decodeError(long), 'ERR_BAD_MESSAGE')
})

// ---- LOCATE and POINTERS (Tapestry object location) ------------------------------------------

const isCode = (code: ErrorCode) => (e: unknown) => e instanceof WeftError && e.code === code
const contactsAt = (n: number, address: string, fill = 1): WireContact[] =>
  Array.from({ length: n }, (_, i) => ({ id: new Uint8Array(32).fill(fill + i), address }))

test('LOCATE and POINTERS round-trip at their exact size: IPv4, IPv6, mixed and empty lists', () => {
  const sender = Uint8Array.from({ length: 32 }, (_, i) => i)
  const object = new Uint8Array(32).fill(0xab)
  const v4 = '198.51.100.1:51413'
  const v6 = '[2001:db8::7]:4001'
  const locate = { type: MessageType.LOCATE, txid: 9, sender, flags: 0, object } as const
  const pointers = { type: MessageType.POINTERS, txid: 9, sender, flags: 0, token: 0x123456789abc } as const
  const messages: Message[] = [
    { ...locate, op: LocateOp.PUBLISH, hop: 0, ttlSec: 3600, pad: 0 },
    { ...locate, op: LocateOp.LOCATE, hop: 255, ttlSec: 0, token: 0x123456789abc, pad: 13 },
    { ...locate, op: LocateOp.UNPUBLISH, hop: 3, ttlSec: 0xffffffff, flags: Flag.READ_ONLY, token: 0, pad: MAX_PACKET - 86 },
    { ...pointers, observed: v4, next: [], servers: [] },
    { ...pointers, observed: v6, next: [], servers: [] },
    { ...pointers, observed: v4, next: contactsAt(1, v4), servers: [] },
    { ...pointers, observed: v4, next: [], servers: contactsAt(1, v6) },
    { ...pointers, observed: v6, next: contactsAt(MAX_NEXT_HOPS, v6), servers: contactsAt(MAX_SERVERS, v6, 100), flags: Flag.TRUNCATED },
    { ...pointers, observed: v6, next: [...contactsAt(2, v4), ...contactsAt(2, v6, 50)], servers: [...contactsAt(3, v6, 60), ...contactsAt(5, v4, 70)] },
  ]
  for (const m of messages) {
    const bytes = encode(m)
    assert.equal(bytes.length, encodedSize(m))
    assert.equal(isRequest(m), m.type === MessageType.LOCATE)
    const r = decode(bytes)
    assert.ok(r.ok, r.ok ? '' : `${r.error.code}: ${r.error.message}`)
    assert.deepStrictEqual(r.message, expected(m))
    if (r.message.type === MessageType.LOCATE) assert.equal(r.message.object.buffer, bytes.buffer, 'a view, not a copy')
    if (r.message.type === MessageType.POINTERS) for (const c of [...r.message.next, ...r.message.servers]) assert.equal(c.id.buffer, bytes.buffer)
  }
  // The largest POINTERS (all IPv6, full lists) is far below MAX_PACKET.
  assert.equal(encode(messages[7]).length, 40 + 6 + 19 + 1 + MAX_NEXT_HOPS * 51 + 1 + MAX_SERVERS * 51)
  assert.equal(encode(messages[2]).length, MAX_PACKET)
})

test('LOCATE and POINTERS bytes are laid out as spec/wire.md 3.11 and 3.12 say', () => {
  const sender = Uint8Array.from({ length: 32 }, (_, i) => i)
  const object = new Uint8Array(32).fill(0xab)
  const publish: Message = {
    type: MessageType.LOCATE, txid: 0x0badf00d, sender, flags: 0, op: LocateOp.PUBLISH, object, hop: 3, ttlSec: 3600, token: 0x123456789abc, pad: 0,
  }
  assert.equal(hex(encode(publish)), '57010b01' + '0badf00d' + hex(sender) + '123456789abc' + '00' + 'ab'.repeat(32) + '03' + '00000e10' + '0000')
  assert.equal(encode(publish).length, 86)
  const reply: Message = {
    type: MessageType.POINTERS, txid: 0x0badf00d, sender: object, flags: 0, token: 0x123456789abc, observed: '192.0.2.7:4000',
    next: [{ id: sender, address: '198.51.100.1:51413' }], servers: [],
  }
  assert.equal(hex(encode(reply)), '57010c00' + '0badf00d' + 'ab'.repeat(32) + '123456789abc' + '04c00002070fa0' + '01' + hex(sender) + '04c6336401c8d5' + '00')
})

test('LOCATE and POINTERS: a bad op, a short object id and over-long lists are refused by the decoder', () => {
  const sender = new Uint8Array(32)
  const locate = encode({ type: MessageType.LOCATE, txid: 1, sender, flags: 0, op: LocateOp.LOCATE, object: sender, hop: 1, ttlSec: 0, pad: 0 })
  assert.ok(decode(locate).ok)
  for (const op of [3, 4, 0x80, 255]) {
    const bad = locate.slice(); bad[HEADER_BYTES] = op
    assert.equal(decodeError(bad), 'ERR_BAD_MESSAGE', `op ${op}`)
    assert.equal(decodeError(bad.subarray(0, HEADER_BYTES + 1)), 'ERR_BAD_MESSAGE', 'the op is checked before the object is looked for')
  }
  for (const n of [HEADER_BYTES + 1, HEADER_BYTES + 2, HEADER_BYTES + 32, HEADER_BYTES + 33, HEADER_BYTES + 37]) {
    assert.equal(decodeError(locate.subarray(0, n)), 'ERR_TRUNCATED', `cut at ${n}`)
  }

  const observed = '1.2.3.4:5'
  const empty = encode({ type: MessageType.POINTERS, txid: 1, sender, flags: 0, token: 0, observed, next: [], servers: [] })
  const nextAt = HEADER_BYTES + 6 + 7
  const tooManyNext = empty.slice(); tooManyNext[nextAt] = MAX_NEXT_HOPS + 1
  assert.equal(decodeError(tooManyNext), 'ERR_BAD_MESSAGE')
  const tooManyServers = empty.slice(); tooManyServers[nextAt + 1] = MAX_SERVERS + 1
  assert.equal(decodeError(tooManyServers), 'ERR_BAD_MESSAGE')
  // Over the limit with the bytes there for one more: still refused (the count is checked first).
  const full = encode({
    type: MessageType.POINTERS, txid: 1, sender, flags: 0, token: 0, observed, next: [], servers: contactsAt(MAX_SERVERS, observed),
  })
  const extra = Uint8Array.from([...full, ...full.subarray(nextAt + 2, nextAt + 2 + 39)])
  extra[nextAt + 1] = MAX_SERVERS + 1
  assert.equal(decodeError(extra), 'ERR_BAD_MESSAGE')
  assert.equal(decodeError(empty.subarray(0, nextAt + 1)), 'ERR_TRUNCATED', 'no servers count')
  const oneServer = empty.slice(); oneServer[nextAt + 1] = 1
  assert.equal(decodeError(oneServer), 'ERR_TRUNCATED', 'a server announced but absent')
  const fam = encode({ type: MessageType.POINTERS, txid: 1, sender, flags: 0, token: 0, observed, next: [], servers: contactsAt(1, observed) })
  fam[nextAt + 2 + 32] = 5
  assert.equal(decodeError(fam), 'ERR_BAD_MESSAGE', 'an unknown address family in a server')
})

test('LOCATE and POINTERS: the encoder refuses what it cannot send', () => {
  const sender = new Uint8Array(32)
  const ok = { type: MessageType.LOCATE, txid: 1, sender, flags: 0, op: LocateOp.PUBLISH, object: sender, hop: 0, ttlSec: 60, pad: 0 } as const
  assert.ok(encode(ok).length > 0)
  const badArgs: Message[] = [
    { ...ok, op: 3 }, { ...ok, op: -1 }, { ...ok, op: 1.5 }, { ...ok, op: NaN },
    { ...ok, hop: 256 }, { ...ok, hop: -1 }, { ...ok, hop: 0.5 },
    { ...ok, ttlSec: 2 ** 32 }, { ...ok, ttlSec: -1 }, { ...ok, ttlSec: 1.5 },
    { ...ok, object: new Uint8Array(31) }, { ...ok, object: new Uint8Array(33) },
  ]
  for (const m of badArgs) assert.throws(() => encode(m), isCode('ERR_BAD_ARGUMENT'), JSON.stringify({ ...m, sender: undefined, object: undefined }))
  const reply = { type: MessageType.POINTERS, txid: 1, sender, flags: 0, token: 0, observed: '1.2.3.4:5' } as const
  assert.throws(() => encode({ ...reply, next: contactsAt(MAX_NEXT_HOPS + 1, '1.2.3.4:5'), servers: [] }), isCode('ERR_TOO_LARGE'))
  assert.throws(() => encode({ ...reply, next: [], servers: contactsAt(MAX_SERVERS + 1, '1.2.3.4:5') }), isCode('ERR_TOO_LARGE'))
  assert.throws(() => encode({ ...ok, pad: MAX_PACKET - 86 + 1, token: 1 }), isCode('ERR_TOO_LARGE'))
})

test('HAS_TOKEN follows the token on requests; the encoder clears it on replies', () => {
  const sender = new Uint8Array(32)
  const ping = encode({ type: MessageType.PING, txid: 1, sender, flags: Flag.HAS_TOKEN, pad: 0 })
  assert.equal(ping[3], 0)
  const withToken = encode({ type: MessageType.PING, txid: 1, sender, flags: 0, token: 0, pad: 0 })
  assert.equal(withToken[3], Flag.HAS_TOKEN)
  const pong = encode({ type: MessageType.PONG, txid: 1, sender, flags: Flag.HAS_TOKEN | Flag.TRUNCATED, token: 1, observed: '1.2.3.4:5' })
  assert.equal(pong[3], Flag.TRUNCATED)
})

// ---- the worked examples in spec/wire.md ----------------------------------------------------

test('the worked examples in spec/wire.md encode and decode exactly', () => {
  const sender = Uint8Array.from({ length: 32 }, (_, i) => i)
  const target = new Uint8Array(32).fill(0xff)
  const ping: Message = { type: MessageType.PING, txid: 0x01020304, sender, flags: 0, pad: 11 }
  const pingHex = '5701010001020304' + hex(sender) + '000b' + '00'.repeat(11)
  assert.equal(hex(encode(ping)), pingHex)
  const find: Message = { type: MessageType.FIND_NODE, txid: 0xcafebabe, sender, flags: Flag.READ_ONLY, target, token: 0x123456789abc, pad: 0 }
  const findHex = '57010305cafebabe' + hex(sender) + '123456789abc' + 'ff'.repeat(32) + '0000'
  assert.equal(hex(encode(find)), findHex)
  const pong: Message = { type: MessageType.PONG, txid: 0x01020304, sender: target, flags: 0, token: 0x123456789abc, observed: '192.0.2.7:4000' }
  assert.equal(hex(encode(pong)), '5701020001020304' + 'ff'.repeat(32) + '123456789abc' + '04c0000207' + '0fa0')
  const nodes: Message = {
    type: MessageType.NODES, txid: 0xcafebabe, sender: target, flags: Flag.TRUNCATED, token: 0x0000000000ff,
    observed: '[2001:db8::1]:4000', contacts: [{ id: sender, address: '198.51.100.1:51413' }],
  }
  assert.equal(hex(encode(nodes)),
    '57010402cafebabe' + 'ff'.repeat(32) + '0000000000ff' + '06' + '20010db8000000000000000000000001' + '0fa0' + '01' + hex(sender) + '04c6336401c8d5')

  // The DHT examples: store and find the immutable value "hello".
  const record = Uint8Array.from(Buffer.from('0101000568656c6c6f', 'hex')) // version 1, kind 1, length 5, "hello"
  const key = Uint8Array.from(Buffer.from('2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824', 'hex'))
  assert.equal(hex(key), '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824') // SHA-256("hello"): checked below
  const get: Message = { type: MessageType.GET, txid: 0x0badf00d, sender, flags: 0, target: key, token: 0x123456789abc, pad: 0 }
  assert.equal(hex(encode(get)), '57010601' + '0badf00d' + hex(sender) + '123456789abc' + hex(key) + '0000')
  const values: Message = {
    type: MessageType.VALUES, txid: 0x0badf00d, sender: target, flags: 0, token: 0x123456789abc, observed: '192.0.2.7:4000',
    contacts: [{ id: new Uint8Array(32).fill(0xab), address: '198.51.100.1:51413' }], records: [record],
  }
  assert.equal(hex(encode(values)),
    '57010800' + '0badf00d' + 'ff'.repeat(32) + '123456789abc' + '04c00002070fa0' + '01' + 'ab'.repeat(32) + '04c6336401c8d5' + '01' + '0009' + hex(record))
  const put: Message = { type: MessageType.PUT, txid: 0x0badf00e, sender, flags: 0, record, token: 0x123456789abc, pad: 0 }
  assert.equal(hex(encode(put)), '57010701' + '0badf00e' + hex(sender) + '123456789abc' + '00' + '0009' + hex(record) + '0000')
  const casPut: Message = { ...put, cas: 6 } as Message // the variant the spec describes after the PUT example
  assert.equal(hex(encode(casPut)), '57010701' + '0badf00e' + hex(sender) + '123456789abc' + '01' + '0000000000000006' + '0009' + hex(record) + '0000')
  const stored: Message = { type: MessageType.STORED, txid: 0x0badf00e, sender: target, flags: 0, token: 0x123456789abc, observed: '192.0.2.7:4000' }
  assert.equal(hex(encode(stored)), '57010900' + '0badf00e' + 'ff'.repeat(32) + '123456789abc' + '04c00002070fa0')
  assert.deepEqual([get, values, put, casPut, stored].map((m) => encode(m).length), [80, 105, 60, 68, 53])

  // ... and every example decodes to what was encoded.
  for (const m of [ping, find, pong, nodes, get, values, put, casPut, stored]) {
    const r = decode(encode(m))
    assert.ok(r.ok, r.ok ? '' : `${r.error.code}: ${r.error.message}`)
    assert.deepStrictEqual(r.message, expected(m))
  }
})

test('the signed record examples in spec/wire.md encode, decode and verify exactly', async () => {
  const { decodeRecord, encodeRecord, providerId, recordKey, signMutable, signProvider, verifyRecord } = await import('../src/services/dht/records.js')
  const { identityFromSeed } = await import('../src/identity/keys.js')
  const { createHash, verify: cryptoVerify } = await import('node:crypto')
  const utf8 = (s: string) => new TextEncoder().encode(s)
  const author = identityFromSeed(new Uint8Array(32).fill(1))
  assert.equal(hex(author.publicKey), '8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c')

  const mutable = signMutable(author, utf8('hi'), 7, utf8('s'))
  const mutableBytes = encodeRecord(mutable)
  const mutableSignature = 'a4533c38b36760820771201c64e729965cfbdc8233305b2d631c74b0666a572a' +
    '80d35d0ab45aed88ea2dc171ba195da92c411ddb2f172f22bde19bebc1848508'
  assert.equal(hex(mutableBytes), '0102' + hex(author.publicKey) + '01' + '73' + '0000000000000007' + '0002' + '6869' + mutableSignature)
  assert.equal(hex(recordKey(mutable)), '88a2ebd55685cf7ee2897aa4c9f15f265a901719e18888d904b519389300f6c3')
  assert.equal(hex(recordKey(mutable)), createHash('sha256').update(author.publicKey).update('s').digest('hex'))
  const mutableSigned = Buffer.concat([Buffer.from('weft dht mutable v1\0'), Buffer.from('01730000000000000007' + '00026869', 'hex')])
  assert.ok(cryptoVerify(null, mutableSigned, author.privateKey, Buffer.from(mutableSignature, 'hex'))) // the signed bytes the spec lists
  assert.deepStrictEqual(decodeRecord(mutableBytes), mutable)
  verifyRecord(recordKey(mutable), decodeRecord(mutableBytes), 0)

  const key = new Uint8Array(createHash('sha256').update('hello').digest())
  assert.equal(hex(key), '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824')
  const expiresAt = 1_700_000_000_000
  const provider = signProvider(author, key, ['198.51.100.1:51413'], expiresAt)
  const providerBytes = encodeRecord(provider)
  const providerSignature = '11404622e5fd8b497f4d0a38975216a7e60858f94fdd05b47ef354d7fa6b21bc' +
    '33fe88b009aa55ee8e47b19c22358a60f949ac621c4acdb4375e0f664586cf0a'
  assert.equal(hex(providerBytes), '0103' + hex(key) + hex(author.publicKey) + '0000018bcfe56800' + '01' + '04c6336401c8d5' + providerSignature)
  const providerSigned = Buffer.concat([Buffer.from('weft dht provider v1\0'), key, Buffer.from('0000018bcfe56800' + '01' + '04c6336401c8d5', 'hex')])
  assert.ok(cryptoVerify(null, providerSigned, author.privateKey, Buffer.from(providerSignature, 'hex')))
  assert.equal(hex(providerId(provider)), '8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c')
  assert.deepStrictEqual(decodeRecord(providerBytes), provider)
  verifyRecord(key, decodeRecord(providerBytes), expiresAt - 2 * 3600_000) // valid from expiresAt - 2 h ...
  verifyRecord(key, decodeRecord(providerBytes), expiresAt - 1) // ... to just before expiresAt
  for (const now of [expiresAt - 2 * 3600_000 - 1, expiresAt]) {
    assert.throws(() => verifyRecord(key, decodeRecord(providerBytes), now), (e: unknown) => e instanceof WeftError && e.code === 'ERR_EXPIRED')
  }
})

// ---- addresses ------------------------------------------------------------------------------

test(`addresses: parse/format and pack/unpack round trips, with RFC 5952 text (seed ${SEED})`, () => {
  check('address text', address, (a) => {
    const { host, port: p } = parseAddress(a)
    assert.equal(formatAddress(host, p), a)
    const out = new Uint8Array(25)
    const end = packAddress(a, out, 3)
    assert.equal(end - 3, packedAddressSize(a))
    assert.equal(out[3], a.startsWith('[') ? 6 : 4)
    assert.deepEqual(unpackAddress(out, 3), [a, end])
    assert.equal(canonicalAddress(a), a)
  }, 1000)
  check('address bytes', fc.tuple(ipv6Bytes, port), ([ip, p]) => {
    const b = Uint8Array.from([6, ...ip, p >> 8, p & 0xff])
    const [text, end] = unpackAddress(b, 0)
    assert.equal(end, 19)
    assert.equal(text, `[${nodeIpv6Text(ip)}]:${p}`) // the form a socket would report
    const again = new Uint8Array(19)
    packAddress(text, again, 0)
    assert.deepEqual(again, b)
  }, 1000)
})

test('IPv6 text: compression, case, IPv4-mapped form and canonicalisation', () => {
  const canonical: [string, string][] = [
    ['[::1]:5', '[::1]:5'],
    ['[2001:db8::1]:65535', '[2001:db8::1]:65535'],
    ['[2001:DB8:0:0:0:0:0:1]:80', '[2001:db8::1]:80'],
    ['[0:0:0:0:0:0:0:0]:1', '[::]:1'],
    ['[1:0:0:2:0:0:0:3]:1', '[1:0:0:2::3]:1'], // the longest run of zeros
    ['[1:0:0:2:0:0:3:4]:1', '[1::2:0:0:3:4]:1'], // the first of equal runs
    ['[1:0:2:3:4:5:6:7]:1', '[1:0:2:3:4:5:6:7]:1'], // a single zero group stays
    ['[fe80::0001]:1', '[fe80::1]:1'],
    ['[::ffff:7f00:1]:9', '[::ffff:127.0.0.1]:9'], // IPv4-mapped, as a dual-stack socket reports it
    ['[::FFFF:1.2.3.4]:9', '[::ffff:1.2.3.4]:9'],
    ['localhost:7', '127.0.0.1:7'],
    ['10.0.0.1:080', '10.0.0.1:80'],
  ]
  for (const [text, want] of canonical) assert.equal(canonicalAddress(text), want, text)
  const packed = new Uint8Array(19)
  packAddress('[2001:db8::1]:65535', packed, 0)
  assert.equal(hex(packed), '0620010db8000000000000000000000001ffff')
  packAddress('192.0.2.7:4000', packed, 0)
  assert.equal(hex(packed.subarray(0, 7)), '04c00002070fa0')
})

test(`parseAddress refuses junk with ERR_BAD_ADDRESS, and never throws anything else (seed ${SEED})`, () => {
  const junk = [
    '', '1.2.3.4', '1.2.3.4:', ':5', '1.2.3.4:65536', '1.2.3.4:-1', '1.2.3.4:5x', '256.1.1.1:5', '1.2.3:5', '01.2.3.4:5',
    '[::1]', '::1:5', '[::1]:', '[::1]:5:6', '[1.2.3.4]:5', '[localhost]:5', 'example.com:80', ' 1.2.3.4:5', '1.2.3.4:5 ',
    '[2001:db8::g]:1', '[:::1]:5', '[1:2:3:4:5:6:7:8:9]:1', '1.2.3.4:99999999999999999999',
  ]
  for (const text of junk) {
    assert.throws(() => parseAddress(text), (e: unknown) => e instanceof WeftError && e.code === 'ERR_BAD_ADDRESS', JSON.stringify(text))
  }
  const text = fc.oneof(fc.string({ unit: 'binary-ascii', maxLength: 50 }), fc.stringMatching(/^\[?[0-9a-fA-F:.]{0,45}\]?:\d{0,6}$/))
  check('parseAddress fuzz', text, (t) => {
    let ok = false
    try { parseAddress(t); ok = true } catch (err) {
      assert.ok(err instanceof WeftError && err.code === 'ERR_BAD_ADDRESS', `${JSON.stringify(t)} threw ${String(err)}`)
    }
    if (ok) { // whatever parses also packs, at the size it claims
      const out = new Uint8Array(19)
      assert.equal(packAddress(t, out, 0), packedAddressSize(t))
    }
  }, 2000)
})

test('unpackAddress refuses a short or unknown address with a typed error', () => {
  assert.throws(() => unpackAddress(Uint8Array.from([4, 1, 2, 3, 4, 0]), 0), (e: unknown) => e instanceof WeftError && e.code === 'ERR_TRUNCATED')
  assert.throws(() => unpackAddress(Uint8Array.from([6, 0, 0]), 0), (e: unknown) => e instanceof WeftError && e.code === 'ERR_TRUNCATED')
  assert.throws(() => unpackAddress(new Uint8Array(0), 0), (e: unknown) => e instanceof WeftError && e.code === 'ERR_TRUNCATED')
  assert.throws(() => unpackAddress(Uint8Array.from([5, 0, 0, 0, 0, 0, 0]), 0), (e: unknown) => e instanceof WeftError && e.code === 'ERR_BAD_MESSAGE')
})

test('decoded byte fields are plain Uint8Array views, also from a Buffer', () => {
  const contacts: WireContact[] = [{ id: new Uint8Array(32).fill(7), address: '10.0.0.1:4000' }, { id: new Uint8Array(32).fill(9), address: '[::1]:5' }]
  const bytes = encode({ type: MessageType.NODES, txid: 5, sender: new Uint8Array(32).fill(1), flags: 0, token: 3, observed: '10.0.0.2:1', contacts })
  for (const input of [bytes, Buffer.from(bytes)]) {
    const r = decode(input)
    assert.ok(r.ok && r.message.type === MessageType.NODES)
    if (!r.ok || r.message.type !== MessageType.NODES) return
    for (const field of [r.message.sender, ...r.message.contacts.map((c) => c.id)]) {
      assert.equal(Object.getPrototypeOf(field), Uint8Array.prototype)
      assert.equal(field.buffer, input.buffer, 'a view into the datagram, not a copy')
    }
    assert.deepEqual(r.message.contacts.map((c) => ({ id: hex(c.id), address: c.address })), contacts.map((c) => ({ id: hex(c.id), address: c.address })))
  }
})
