// The polyring's wire messages (spec/wire.md, "Polyring"). Each is one message on the reliable
// channel between two ring neighbours (transport/channels.ts, stream POLYRING_STREAM), so the
// channel acknowledges, resends and orders them; this codec only frames them. The first byte is
// the type; integers are big-endian; GUIDs use guid.ts's form (depth byte + LEB128 varints);
// addresses the packed form of wire/address.ts (7 bytes IPv4, 19 IPv6).
//
// The routed kinds (DATA, BROADCAST, MULTICAST) are peer.ts's PolyMessage objects as they are;
// what they carry is a *payload* (encodePayload): a kind byte, the originator's GUID and either
// the user's data or a join request forwarded to a parent named by GUID.
//
// decodeWire is total: any byte string either decodes to a message or throws
// WeftError('ERR_BAD_MESSAGE'); nothing else escapes it.
import { WeftError } from '../../errors.js'
import { packAddress, packedAddressSize, readAddress, type Address } from '../../wire/address.js'
import { encodedGuidLength, MAX_GUID_BYTES, readGuid, writeGuid, type Guid } from './guid.js'
import type { PolyMessage } from './peer.js'

export const enum WireType {
  JOIN = 0x01,
  WELCOME = 0x02,
  REFUSE = 0x03,
  HELLO = 0x04,
  LEAVE = 0x05,
  HEARTBEAT = 0x06,
  /** A peer's child count, to its siblings (the load a join policy reads). */
  LOAD = 0x07,
  /** A parent's list of its private (NATed) children, to its children. */
  PRIVATE = 0x08,
  /** The entry peer refused a message from this sender (its token bucket is empty). */
  RATE_LIMITED = 0x09,
  /** A parent's table (its GUID, its parent's and siblings' members) to its heir: kept for a takeover, or (now) act at once. */
  HEIR = 0x0a,
  /** "I now hold this GUID (and no longer that one)": a takeover, to the mover's new and old neighbours. */
  TAKEOVER = 0x0b,
  /** "You are not my neighbour": the answer to a HEARTBEAT from an address this peer does not hold (it was dropped). */
  NOT_NEIGHBOUR = 0x0c,
  /** "That GUID is held here by another, live peer": the answer to a HELLO or TAKEOVER claiming it. */
  TAKEN = 0x0d,
  /** "Do you still hear the holder of this GUID?": a would-be heir's check before a takeover. */
  CHECK = 0x0e,
  /** The answer to CHECK: whether the holder was heard lately. */
  CHECKED = 0x0f,
  DATA = 0x10,
  BROADCAST = 0x11,
  MULTICAST = 0x12,
}

/** Largest encoded message: below the channel's default maxMessageBytes (64 KiB). */
export const MAX_WIRE_BYTES = 60 * 1024
/** Largest user data in one routed message, broadcast or multicast. */
export const MAX_DATA_BYTES = 16 * 1024
/** Receivers one multicast copy names (a larger multicast is split by the sender). */
export const MAX_WIRE_RECEIVERS = 128
/** Ring members one WELCOME lists (a joiner learns the rest from their HELLOs). */
export const MAX_WELCOME_MEMBERS = 200
/** A region label's UTF-8 bytes. */
export const MAX_REGION_BYTES = 64
/** A refusal's reason, UTF-8 bytes. */
export const MAX_REASON_BYTES = 200
/** A fetched content key's bytes. */
export const MAX_KEY_BYTES = 64
/** Coordinates one PRIVATE notice lists. */
export const MAX_PRIVATE_LIST = 1024
/** Broadcast ids are integers below 2^53 (peer.ts remembers them in a Float64Array). */
export const MAX_BROADCAST_ID = Number.MAX_SAFE_INTEGER

const JOIN_CENTRE = 1, JOIN_HOSTED = 2, JOIN_TARGET = 4, JOIN_PLACE = 8, JOIN_PRIVATE = 16, JOIN_CLUSTER = 32
const JOIN_FLAGS = JOIN_CENTRE | JOIN_HOSTED | JOIN_TARGET | JOIN_PLACE | JOIN_PRIVATE | JOIN_CLUSTER
const HELLO_HOSTED = 1, HELLO_PRIVATE = 2, HELLO_REPLY = 4, HELLO_CLUSTER = 8
const HELLO_FLAGS = HELLO_HOSTED | HELLO_PRIVATE | HELLO_REPLY | HELLO_CLUSTER
const HEIR_NOW = 1
const TAKEOVER_OLD = 1
const CHECKED_HEARD = 1
const FETCHED_FOUND = 1
const BROADCAST_UP = 1

export interface JoinRequest {
  /** Matches the answer (WELCOME or REFUSE) to the request. */
  req: number
  /** Join the centre ring (else a child ring). */
  centre: boolean
  hosted: boolean
  region: string
  /** The parent to join under, by GUID: a peer that is not it routes the request there. */
  target: Guid | null
  /** "Pick me a parent" in the asked peer's ring, by region label, then load (present only when set). */
  place?: true
  /** The joiner is private (NATed): siblings reach it through the parent (present only when set). */
  private?: true
  /** Join `target` itself as a further member of its cluster (present only when set; needs target). */
  cluster?: true
}
export interface WireMember { guid: Guid; address: Address }

export type ControlMessage =
  | ({ kind: 'join' } & JoinRequest)
  /** The joiner's GUID and its ring: the centre ring (the answerer included), or its siblings. */
  | { kind: 'welcome'; req: number; guid: Guid; members: WireMember[] }
  | { kind: 'refuse'; req: number; reason: string }
  /** "I am `guid` at the address this channel comes from": the receiver places it by GUID. */
  /** `private` and `reply` (an answer to a HELLO, which gets none back) are present only when set. */
  /** `cluster`: the sender joined `guid` as a further member of its cluster (the receiver adds it to that GUID's members). */
  | { kind: 'hello'; guid: Guid; hosted: boolean; region: string; private?: true; reply?: true; cluster?: true }
  | { kind: 'leave'; guid: Guid }
  | { kind: 'heartbeat' }
  | { kind: 'load'; children: number }
  /** The coordinates of the sender's children that are private (the whole list, each time). */
  | { kind: 'private'; coords: number[] }
  /** `req`: the refused fetch's request number (0: not a fetch); retry after `retryAfterMs`. */
  | { kind: 'rate-limited'; req: number; retryAfterMs: number }
  /**
   * A parent's table to its heir (lowest child): its GUID and the members of its parent and
   * siblings (and of its own cluster). `now` (a handover): take `guid` over at once.
   */
  | { kind: 'heir'; now: boolean; guid: Guid; members: WireMember[] }
  /** The sender now holds `guid`; it no longer holds `old` (null: it held nothing before, or it is not told). */
  | { kind: 'takeover'; guid: Guid; old: Guid | null }
  | { kind: 'not-neighbour' }
  /** `guid` is held at the sender by another peer that it hears: the receiver, if it claims `guid`, rejoins (its parent's word, or a refused takeover). */
  | { kind: 'taken'; guid: Guid }
  | { kind: 'check'; guid: Guid }
  | { kind: 'checked'; guid: Guid; heard: boolean }
export type WireMessage = ControlMessage | PolyMessage

/** What a routed message, broadcast or multicast carries. */
export type Payload =
  | { kind: 'data'; origin: Guid; data: Uint8Array }
  /** A join request a ring peer forwards to the parent it names, for the joiner at `joiner`. */
  | { kind: 'join'; origin: Guid; joiner: Address; join: JoinRequest }
  /** Asks the destination (or a cache on the way) for the content stored under `key`; the answer is routed to `origin`. */
  | { kind: 'fetch'; origin: Guid; req: number; key: Uint8Array }
  /** The answer to a fetch: `origin` answered (the content's `home`, or a cache on the route); `data` null when not found. */
  | { kind: 'fetched'; origin: Guid; home: Guid; req: number; ttlMs: number; key: Uint8Array; data: Uint8Array | null }
export const PAYLOAD_DATA = 0, PAYLOAD_JOIN = 1, PAYLOAD_FETCH = 2, PAYLOAD_FETCHED = 3

const bad = (why: string): WeftError => new WeftError('ERR_BAD_MESSAGE', `bad polyring message: ${why}`)
const utf8 = new TextEncoder()
const strictUtf8 = new TextDecoder('utf-8', { fatal: true })

// ---- writing -------------------------------------------------------------------------------

class Writer {
  private buf: Uint8Array
  at = 0
  constructor(size: number) { this.buf = new Uint8Array(size) }
  private room(n: number): void {
    if (this.at + n > MAX_WIRE_BYTES) throw new WeftError('ERR_TOO_LARGE', `polyring message over ${MAX_WIRE_BYTES} bytes`)
    if (this.at + n <= this.buf.length) return
    const b = new Uint8Array(Math.min(MAX_WIRE_BYTES, Math.max(this.buf.length * 2, this.at + n)))
    b.set(this.buf)
    this.buf = b
  }
  u8(v: number): void { this.room(1); this.buf[this.at++] = v }
  u16(v: number): void { this.room(2); this.buf[this.at++] = v >>> 8; this.buf[this.at++] = v & 0xff }
  u32(v: number): void { this.room(4); for (let s = 24; s >= 0; s -= 8) this.buf[this.at++] = (v >>> s) & 0xff }
  u64(v: number): void { this.u32(Math.floor(v / 2 ** 32)); this.u32(v >>> 0) }
  guid(g: Guid): void { this.room(encodedGuidLength(g)); this.at = writeGuid(g, this.buf, this.at) }
  address(a: Address): void { this.room(packedAddressSize(a)); this.at = packAddress(a, this.buf, this.at) }
  bytes(b: Uint8Array): void { this.room(b.length); this.buf.set(b, this.at); this.at += b.length }
  /** A u8 length and UTF-8 text, at most `max` bytes. */
  text(s: string, max: number, what: string): void {
    const b = utf8.encode(s)
    if (b.length > max) throw new WeftError('ERR_BAD_ARGUMENT', `${what} over ${max} bytes`)
    this.u8(b.length)
    this.bytes(b)
  }
  done(): Uint8Array { return this.buf.slice(0, this.at) }
}

function checkHops(h: number): void {
  if (!Number.isInteger(h) || h < 0 || h > 255) throw new WeftError('ERR_BAD_ARGUMENT', `hops ${h} not in 0..255`)
}

function writeJoin(w: Writer, j: JoinRequest): void {
  w.u32(j.req)
  if (j.cluster && !j.target) throw new WeftError('ERR_BAD_ARGUMENT', 'a cluster join names the GUID to join')
  w.u8((j.centre ? JOIN_CENTRE : 0) | (j.hosted ? JOIN_HOSTED : 0) | (j.target ? JOIN_TARGET : 0) | (j.place ? JOIN_PLACE : 0) | (j.private ? JOIN_PRIVATE : 0) | (j.cluster ? JOIN_CLUSTER : 0))
  w.text(j.region, MAX_REGION_BYTES, 'region label')
  if (j.target) w.guid(j.target)
}

export function encodeWire(m: WireMessage): Uint8Array {
  switch (m.kind) {
    case 'join': { const w = new Writer(64); w.u8(WireType.JOIN); writeJoin(w, m); return w.done() }
    case 'welcome': {
      if (m.members.length > MAX_WELCOME_MEMBERS) throw new WeftError('ERR_TOO_LARGE', `welcome with ${m.members.length} members, over ${MAX_WELCOME_MEMBERS}`)
      const w = new Writer(64 + m.members.length * 16)
      w.u8(WireType.WELCOME); w.u32(m.req); w.guid(m.guid); w.u16(m.members.length)
      for (const x of m.members) { w.guid(x.guid); w.address(x.address) }
      return w.done()
    }
    case 'refuse': {
      const w = new Writer(8 + MAX_REASON_BYTES)
      w.u8(WireType.REFUSE); w.u32(m.req)
      const b = utf8.encode(m.reason)
      w.text(strictUtf8.decode(b.subarray(0, cutUtf8(b, MAX_REASON_BYTES))), MAX_REASON_BYTES, 'reason')
      return w.done()
    }
    case 'hello': {
      const w = new Writer(64); w.u8(WireType.HELLO); w.guid(m.guid)
      w.u8((m.hosted ? HELLO_HOSTED : 0) | (m.private ? HELLO_PRIVATE : 0) | (m.reply ? HELLO_REPLY : 0) | (m.cluster ? HELLO_CLUSTER : 0))
      w.text(m.region, MAX_REGION_BYTES, 'region label')
      return w.done()
    }
    case 'leave': { const w = new Writer(MAX_GUID_BYTES + 1); w.u8(WireType.LEAVE); w.guid(m.guid); return w.done() }
    case 'heartbeat': return Uint8Array.of(WireType.HEARTBEAT)
    case 'load': { const w = new Writer(5); w.u8(WireType.LOAD); w.u32(m.children); return w.done() }
    case 'private': {
      if (m.coords.length > MAX_PRIVATE_LIST) throw new WeftError('ERR_TOO_LARGE', `private list of ${m.coords.length}, over ${MAX_PRIVATE_LIST}`)
      const w = new Writer(3 + 4 * m.coords.length); w.u8(WireType.PRIVATE); w.u16(m.coords.length)
      for (const c of m.coords) w.u32(c)
      return w.done()
    }
    case 'rate-limited': { const w = new Writer(9); w.u8(WireType.RATE_LIMITED); w.u32(m.req); w.u32(m.retryAfterMs); return w.done() }
    case 'heir': {
      if (m.members.length > MAX_WELCOME_MEMBERS) throw new WeftError('ERR_TOO_LARGE', `heir table with ${m.members.length} members, over ${MAX_WELCOME_MEMBERS}`)
      const w = new Writer(64 + m.members.length * 16)
      w.u8(WireType.HEIR); w.u8(m.now ? HEIR_NOW : 0); w.guid(m.guid); w.u16(m.members.length)
      for (const x of m.members) { w.guid(x.guid); w.address(x.address) }
      return w.done()
    }
    case 'takeover': {
      const w = new Writer(2 * MAX_GUID_BYTES + 2)
      w.u8(WireType.TAKEOVER); w.u8(m.old ? TAKEOVER_OLD : 0); w.guid(m.guid)
      if (m.old) w.guid(m.old)
      return w.done()
    }
    case 'not-neighbour': return Uint8Array.of(WireType.NOT_NEIGHBOUR)
    case 'taken': case 'check': {
      const w = new Writer(MAX_GUID_BYTES + 1); w.u8(m.kind === 'taken' ? WireType.TAKEN : WireType.CHECK); w.guid(m.guid); return w.done()
    }
    case 'checked': { const w = new Writer(MAX_GUID_BYTES + 2); w.u8(WireType.CHECKED); w.u8(m.heard ? CHECKED_HEARD : 0); w.guid(m.guid); return w.done() }
    case 'route': {
      checkHops(m.hops)
      const w = new Writer(8 + encodedGuidLength(m.dest) + m.data.length)
      w.u8(WireType.DATA); w.u8(m.hops); w.guid(m.dest); w.bytes(m.data)
      return w.done()
    }
    case 'broadcast': {
      checkHops(m.hops)
      if (!Number.isSafeInteger(m.id) || m.id < 0) throw new WeftError('ERR_BAD_ARGUMENT', `broadcast id ${m.id} is not an integer in 0..2^53-1`)
      const w = new Writer(12 + m.data.length)
      w.u8(WireType.BROADCAST); w.u8(m.up ? BROADCAST_UP : 0); w.u8(m.hops); w.u64(m.id); w.bytes(m.data)
      return w.done()
    }
    case 'multicast': {
      checkHops(m.hops)
      const n = m.receivers.length
      if (n < 1 || n > MAX_WIRE_RECEIVERS) throw new WeftError('ERR_TOO_LARGE', `a multicast copy names 1..${MAX_WIRE_RECEIVERS} receivers, not ${n}`)
      const w = new Writer(8 + n * 4 + m.data.length)
      w.u8(WireType.MULTICAST); w.u8(m.hops); w.u16(n)
      for (const g of m.receivers) w.guid(g)
      w.bytes(m.data)
      return w.done()
    }
  }
}

/** The longest prefix of UTF-8 bytes `b` of at most `max` bytes that ends on a character boundary. */
function cutUtf8(b: Uint8Array, max: number): number {
  if (b.length <= max) return b.length
  let n = max
  while (n > 0 && (b[n] & 0xc0) === 0x80) n--
  return n
}

export function encodePayload(p: Payload): Uint8Array {
  const w = new Writer(128 + (p.kind === 'data' || (p.kind === 'fetched' && p.data) ? p.data!.length : 0))
  const key = (k: Uint8Array): void => {
    if (k.length > MAX_KEY_BYTES) throw new WeftError('ERR_TOO_LARGE', `a content key of ${k.length} bytes, over ${MAX_KEY_BYTES}`)
    w.u8(k.length); w.bytes(k)
  }
  const data = (d: Uint8Array): void => {
    if (d.length > MAX_DATA_BYTES) throw new WeftError('ERR_TOO_LARGE', `polyring data of ${d.length} bytes, over ${MAX_DATA_BYTES}`)
    w.bytes(d)
  }
  switch (p.kind) {
    case 'data': w.u8(PAYLOAD_DATA); w.guid(p.origin); data(p.data); break
    case 'join': w.u8(PAYLOAD_JOIN); w.guid(p.origin); w.address(p.joiner); writeJoin(w, p.join); break
    case 'fetch': w.u8(PAYLOAD_FETCH); w.guid(p.origin); w.u32(p.req); key(p.key); break
    case 'fetched':
      w.u8(PAYLOAD_FETCHED); w.guid(p.origin); w.guid(p.home); w.u32(p.req); w.u32(p.ttlMs); w.u8(p.data ? FETCHED_FOUND : 0); key(p.key)
      if (p.data) data(p.data)
      break
  }
  return w.done()
}

// ---- reading -------------------------------------------------------------------------------

class Reader {
  at = 0
  constructor(readonly b: Uint8Array) {}
  need(n: number): void { if (this.at + n > this.b.length) throw bad('truncated') }
  u8(): number { this.need(1); return this.b[this.at++] }
  u16(): number { this.need(2); const v = (this.b[this.at] << 8) | this.b[this.at + 1]; this.at += 2; return v }
  u32(): number { this.need(4); const v = ((this.b[this.at] << 24) | (this.b[this.at + 1] << 16) | (this.b[this.at + 2] << 8) | this.b[this.at + 3]) >>> 0; this.at += 4; return v }
  guid(): Guid { const { guid, end } = readGuid(this.b, this.at); this.at = end; return guid }
  address(): Address {
    let a: Address
    try { a = readAddress(this.b, this.at) } catch (err) { throw bad(`address: ${(err as Error).message}`) }
    this.at += this.b[this.at] === 4 ? 7 : 19
    return a
  }
  text(max: number, what: string): string {
    const n = this.u8()
    if (n > max) throw bad(`${what} of ${n} bytes, over ${max}`)
    this.need(n)
    const s = this.b.subarray(this.at, this.at + n)
    this.at += n
    try { return strictUtf8.decode(s) } catch { throw bad(`${what} is not UTF-8`) }
  }
  rest(max: number, what: string): Uint8Array {
    const n = this.b.length - this.at
    if (n > max) throw bad(`${what} of ${n} bytes, over ${max}`)
    const out = this.b.slice(this.at)
    this.at = this.b.length
    return out
  }
  end(): void { if (this.at !== this.b.length) throw bad(`${this.b.length - this.at} trailing bytes`) }
}

function readJoin(r: Reader): JoinRequest {
  const req = r.u32()
  const flags = r.u8()
  if (flags & ~JOIN_FLAGS) throw bad(`join flags ${flags}`)
  const centre = (flags & JOIN_CENTRE) !== 0
  if (centre && flags & JOIN_TARGET) throw bad('a centre join names no parent')
  const region = r.text(MAX_REGION_BYTES, 'region label')
  const j: JoinRequest = { req, centre, hosted: (flags & JOIN_HOSTED) !== 0, region, target: flags & JOIN_TARGET ? r.guid() : null }
  if (flags & JOIN_PLACE) j.place = true
  if (flags & JOIN_PRIVATE) j.private = true
  if (flags & JOIN_CLUSTER) {
    if (!j.target) throw bad('a cluster join names its GUID')
    j.cluster = true
  }
  return j
}

/** The largest routed payload: a kind byte, the origin's GUID and the data. */
export const MAX_PAYLOAD_BYTES = 1 + MAX_GUID_BYTES + MAX_DATA_BYTES

export function decodeWire(bytes: Uint8Array): WireMessage {
  if (bytes.length > MAX_WIRE_BYTES) throw bad(`${bytes.length} bytes, over ${MAX_WIRE_BYTES}`)
  const r = new Reader(bytes)
  const type = r.u8()
  let m: WireMessage
  switch (type) {
    case WireType.JOIN: m = { kind: 'join', ...readJoin(r) }; break
    case WireType.WELCOME: {
      const req = r.u32(), g = r.guid(), n = r.u16()
      if (n > MAX_WELCOME_MEMBERS) throw bad(`welcome with ${n} members, over ${MAX_WELCOME_MEMBERS}`)
      const members: WireMember[] = []
      for (let i = 0; i < n; i++) members.push({ guid: r.guid(), address: r.address() })
      m = { kind: 'welcome', req, guid: g, members }
      break
    }
    case WireType.REFUSE: m = { kind: 'refuse', req: r.u32(), reason: r.text(MAX_REASON_BYTES, 'reason') }; break
    case WireType.HELLO: {
      const g = r.guid(), flags = r.u8()
      if (flags & ~HELLO_FLAGS) throw bad(`hello flags ${flags}`)
      const h: WireMessage = { kind: 'hello', guid: g, hosted: (flags & HELLO_HOSTED) !== 0, region: r.text(MAX_REGION_BYTES, 'region label') }
      if (flags & HELLO_PRIVATE) h.private = true
      if (flags & HELLO_REPLY) h.reply = true
      if (flags & HELLO_CLUSTER) h.cluster = true
      m = h
      break
    }
    case WireType.LEAVE: m = { kind: 'leave', guid: r.guid() }; break
    case WireType.HEARTBEAT: m = { kind: 'heartbeat' }; break
    case WireType.LOAD: m = { kind: 'load', children: r.u32() }; break
    case WireType.PRIVATE: {
      const n = r.u16()
      if (n > MAX_PRIVATE_LIST) throw bad(`private list of ${n}, over ${MAX_PRIVATE_LIST}`)
      const coords: number[] = []
      for (let i = 0; i < n; i++) coords.push(r.u32())
      m = { kind: 'private', coords }
      break
    }
    case WireType.RATE_LIMITED: m = { kind: 'rate-limited', req: r.u32(), retryAfterMs: r.u32() }; break
    case WireType.HEIR: {
      const flags = r.u8()
      if (flags & ~HEIR_NOW) throw bad(`heir flags ${flags}`)
      const g = r.guid(), n = r.u16()
      if (n > MAX_WELCOME_MEMBERS) throw bad(`heir table with ${n} members, over ${MAX_WELCOME_MEMBERS}`)
      const members: WireMember[] = []
      for (let i = 0; i < n; i++) members.push({ guid: r.guid(), address: r.address() })
      m = { kind: 'heir', now: flags === HEIR_NOW, guid: g, members }
      break
    }
    case WireType.TAKEOVER: {
      const flags = r.u8()
      if (flags & ~TAKEOVER_OLD) throw bad(`takeover flags ${flags}`)
      const g = r.guid()
      m = { kind: 'takeover', guid: g, old: flags & TAKEOVER_OLD ? r.guid() : null }
      break
    }
    case WireType.NOT_NEIGHBOUR: m = { kind: 'not-neighbour' }; break
    case WireType.TAKEN: m = { kind: 'taken', guid: r.guid() }; break
    case WireType.CHECK: m = { kind: 'check', guid: r.guid() }; break
    case WireType.CHECKED: {
      const flags = r.u8()
      if (flags & ~CHECKED_HEARD) throw bad(`checked flags ${flags}`)
      m = { kind: 'checked', heard: flags === CHECKED_HEARD, guid: r.guid() }
      break
    }
    case WireType.DATA: {
      const hops = r.u8()
      m = { kind: 'route', hops, dest: r.guid(), data: r.rest(MAX_PAYLOAD_BYTES, 'payload') }
      break
    }
    case WireType.BROADCAST: {
      const flags = r.u8()
      if (flags & ~BROADCAST_UP) throw bad(`broadcast flags ${flags}`)
      const hops = r.u8(), hi = r.u32(), lo = r.u32()
      if (hi > 0x1f_ffff) throw bad('broadcast id over 2^53 - 1')
      m = { kind: 'broadcast', up: flags === BROADCAST_UP, hops, id: hi * 2 ** 32 + lo, data: r.rest(MAX_PAYLOAD_BYTES, 'payload') }
      break
    }
    case WireType.MULTICAST: {
      const hops = r.u8(), n = r.u16()
      if (n < 1 || n > MAX_WIRE_RECEIVERS) throw bad(`multicast with ${n} receivers, not 1..${MAX_WIRE_RECEIVERS}`)
      const receivers: Guid[] = []
      for (let i = 0; i < n; i++) receivers.push(r.guid())
      m = { kind: 'multicast', hops, receivers, data: r.rest(MAX_PAYLOAD_BYTES, 'payload') }
      break
    }
    default: throw bad(`unknown type ${type}`)
  }
  r.end()
  return m
}

/** Decodes a routed payload (network bytes: ERR_BAD_MESSAGE on anything malformed). */
export function decodePayload(bytes: Uint8Array): Payload {
  const r = new Reader(bytes)
  const kind = r.u8()
  const origin = r.guid()
  if (kind === PAYLOAD_DATA) return { kind: 'data', origin, data: r.rest(MAX_DATA_BYTES, 'data') }
  const key = (): Uint8Array => {
    const n = r.u8()
    if (n > MAX_KEY_BYTES) throw bad(`content key of ${n} bytes, over ${MAX_KEY_BYTES}`)
    r.need(n)
    r.at += n
    return r.b.slice(r.at - n, r.at)
  }
  if (kind === PAYLOAD_FETCH) {
    const req = r.u32(), k = key()
    r.end()
    return { kind: 'fetch', origin, req, key: k }
  }
  if (kind === PAYLOAD_FETCHED) {
    const home = r.guid(), req = r.u32(), ttlMs = r.u32(), flags = r.u8()
    if (flags & ~FETCHED_FOUND) throw bad(`fetched flags ${flags}`)
    const k = key()
    const data = flags & FETCHED_FOUND ? r.rest(MAX_DATA_BYTES, 'data') : null
    r.end()
    return { kind: 'fetched', origin, home, req, ttlMs, key: k, data }
  }
  if (kind !== PAYLOAD_JOIN) throw bad(`unknown payload kind ${kind}`)
  const joiner = r.address()
  const join = readJoin(r)
  r.end()
  return { kind: 'join', origin, joiner, join }
}

/** A payload's kind byte and originator, read without decoding the rest (each hop's checks). */
export function payloadHead(bytes: Uint8Array): { kind: number; origin: Guid } {
  const r = new Reader(bytes)
  const kind = r.u8()
  return { kind, origin: r.guid() }
}
