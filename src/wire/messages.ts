// Weft wire protocol, version 1: message shapes, limits and the codec. spec/wire.md is the reference.
import { WeftError } from '../errors.js'
import { ID_BYTES, type NodeId } from '../identity/node-id.js'
import { packAddress, packedAddressSize, readAddress, unpackAddress, type Address } from './address.js'

export const MAGIC = 0x57 // 'W'
export const VERSION = 1
export const HEADER_BYTES = 40 // magic, version, type, flags, txid (4), sender id (32)
export const MAX_PACKET = 1400 // fits the path MTU of nearly every network without fragmenting
export const MAX_CONTACTS = 25 // 25 IPv6 contacts still fit in MAX_PACKET
export const MAX_REASON_BYTES = 200
export const TOKEN_BYTES = 6

export const MAX_RECORDS = 32 // records in one VALUES reply
export const CAS_BYTES = 8

export const MAX_NEXT_HOPS = 4 // next hops in one POINTERS reply: the primary and its backups
export const MAX_SERVERS = 8 // servers in one POINTERS reply

export const CHANNEL_BYTES = 32 // a gossip overlay's id (0: the node's own broadcast overlay; pub-sub: the topic's hash)
export const MAX_LOCAL_ADDRESSES = 4 // LAN addresses in one CONNECT PUNCH (hairpin candidates, spec 14.4)
export const MAX_GOSSIP_CONTACTS = 16 // contacts in one MEMBERSHIP message (a shuffle sample and its origin)
export const BROADCAST_ID_BYTES = 16 // a broadcast message id
export const MAX_BROADCAST_IDS = 64 // ids in one IHAVE or GRAFT
export const MAX_BROADCAST_PAYLOAD = 1200 // payload bytes of one GOSSIP
/** Payload bytes of one SWIM message: what is left of a packet after the header, a token and the two length fields. */
export const MAX_SWIM_BYTES = MAX_PACKET - HEADER_BYTES - TOKEN_BYTES - 4
/** SWIM payload: u8 type (1..5), u32 seq, ..., u8 update count: at least this many bytes. */
const MIN_SWIM_BYTES = 6
const MAX_SWIM_TYPE = 5

export const enum MessageType {
  PING = 1,
  PONG = 2,
  FIND_NODE = 3,
  NODES = 4,
  ERROR = 5,
  GET = 6, // like FIND_NODE, but the responder also returns the records it holds for the key
  PUT = 7, // store a record; the key is derived from the record itself
  VALUES = 8, // reply to GET: nearest contacts and any records
  STORED = 9, // reply to PUT
  NEIGHBORS = 10, // a topology's own question about the responder's neighbours; the reply is NODES
  LOCATE = 11, // Tapestry object location: publish, locate or unpublish an object's pointers
  POINTERS = 12, // reply to LOCATE: the next hop toward the object's root and any servers held
  CONNECT = 13, // NAT traversal: relay allocation, hole punching, reachability; the reply is NODES
  MEMBERSHIP = 14, // HyParView partial views: JOIN, FORWARD_JOIN, NEIGHBOR, DISCONNECT, SHUFFLE, SHUFFLE_REPLY (spec 3.14)
  BROADCAST = 15, // Plumtree: GOSSIP (eager push of a payload), IHAVE (lazy push of ids), GRAFT, PRUNE (spec 3.15)
  SWIM = 16, // SWIM membership: PING, ACK, PING_REQ, NACK, GOSSIP with piggybacked updates (spec 3.16; gossip/swim-codec.ts)
}

/** The highest message type this version knows; the types from 1 to it are all defined. */
export const LAST_TYPE = MessageType.SWIM

export const Flag = {
  HAS_TOKEN: 0x01, // request: carries the round-trip token the responder gave this address
  TRUNCATED: 0x02, // reply: shortened to the request's size (the asker's address is unproven)
  READ_ONLY: 0x04, // sender is a client: do not add it to routing tables
} as const
const KNOWN_FLAGS = 0x07

/** The sender id a packet's header claims, without decoding the rest; null when it is not a Weft packet. */
export function senderIdOf(b: Uint8Array): Uint8Array | null {
  const at = senderIdOffset(b)
  return at < 0 ? null : b.subarray(at, at + ID_BYTES)
}

/** Where senderIdOf's id starts in `b` (-1: none), for a check that makes no view. */
export function senderIdOffset(b: Uint8Array): number {
  return b.length >= HEADER_BYTES && b[0] === MAGIC ? 8 : -1
}

export interface WireContact {
  id: NodeId
  address: Address
}

interface Header {
  txid: number
  sender: NodeId
  flags: number
}
interface RequestFields { token?: number; pad?: number }
interface ReplyFields { token: number; observed: Address }
export interface Ping extends Header, RequestFields { type: MessageType.PING }
export interface FindNode extends Header, RequestFields { type: MessageType.FIND_NODE; target: NodeId }
export interface Get extends Header, RequestFields { type: MessageType.GET; target: NodeId }
/**
 * A topology's maintenance question, answered with NODES. `what` says which (Neighbors), `arg`
 * is its parameter (a Pastry table row). The asker's id and address come from the header.
 */
export interface NeighborsRequest extends Header, RequestFields { type: MessageType.NEIGHBORS; what: number; arg: number }

/** What a NEIGHBORS request asks. */
export const Neighbors = {
  /** Chord: [predecessor, ...successor list]; Pastry: the leaf set. */
  RING: 0,
  /** Chord: "I may be your predecessor" (the asker), then as RING. */
  NOTIFY: 1,
  /** Pastry: routing table row `arg`. */
  ROW: 2,
  /** "I am leaving": drop the asker now and repair as after a failure (graceful leave). */
  LEAVING: 3,
} as const
/**
 * Tapestry object location, hop by hop toward the object's root, answered with POINTERS. `op`
 * says which (LocateOp); `hop`: how many hops this node is from the publisher or asker; `ttlSec`:
 * the pointer lifetime a PUBLISH asks for (0 otherwise). The server of a PUBLISH is the sender
 * (header id and the datagram's source address), so no contact is carried.
 */
export interface LocateRequest extends Header, RequestFields {
  type: MessageType.LOCATE; op: number; object: NodeId; hop: number; ttlSec: number
}

/**
 * NAT traversal between the asker and the responder, answered with NODES (see ConnectOp for what
 * each op's `address` and reply contacts mean).
 */
export interface ConnectRequest extends Header, RequestFields {
  type: MessageType.CONNECT; op: number; address: Address
  /** PUNCH only: the asker's LAN addresses (0..MAX_LOCAL_ADDRESSES), for a peer behind the same NAT (spec 14.4). */
  locals?: Address[]
}

/**
 * HyParView membership in the overlay `channel` (spec 3.14). `op`: MembershipOp; `ttl`: the random
 * walk's time to live (FORWARD_JOIN, SHUFFLE); `priority`: NEIGHBOR's (1: high, the asker has no
 * other neighbour). `contacts`: FORWARD_JOIN: [the newcomer]; SHUFFLE: [the origin, ...sample];
 * SHUFFLE_REPLY: the sample. JOIN and NEIGHBOR are answered (PONG: accepted; ERROR BUSY: refused);
 * the others are one-way (no reply).
 */
export interface MembershipRequest extends Header, RequestFields {
  type: MessageType.MEMBERSHIP; op: number; channel: Uint8Array; ttl: number; priority: number; contacts: WireContact[]
}
export const MembershipOp = { JOIN: 0, FORWARD_JOIN: 1, NEIGHBOR: 2, DISCONNECT: 3, SHUFFLE: 4, SHUFFLE_REPLY: 5 } as const
const MAX_MEMBERSHIP_OP = 5

/**
 * Plumtree broadcast in the overlay `channel` (spec 3.15), one-way. `op`: BroadcastOp; `round`: hops
 * from the origin at the receiver (GOSSIP, IHAVE); `ids`: GOSSIP: exactly one; IHAVE: 1..MAX_BROADCAST_IDS;
 * GRAFT: 0..MAX_BROADCAST_IDS (none: "make this link eager", nothing to resend); PRUNE: none;
 * STEM (a Dandelion++ stem hop, not broadcast): exactly one. `payload`: GOSSIP and STEM only.
 */
export interface BroadcastRequest extends Header, RequestFields {
  type: MessageType.BROADCAST; op: number; channel: Uint8Array; round: number; ids: Uint8Array[]; payload: Uint8Array
}
export const BroadcastOp = { GOSSIP: 0, IHAVE: 1, GRAFT: 2, PRUNE: 3, STEM: 4 } as const
const MAX_BROADCAST_OP = 4

/**
 * SWIM membership (spec 3.16), one-way, txid 0. `payload`: a SWIM message as gossip/swim-codec.ts
 * writes it (1..MAX_SWIM_BYTES bytes, its first byte a SWIM type 1..5); this layer checks only the
 * frame, the membership layer decodes the rest (and drops what does not decode, counted).
 */
export interface SwimRequest extends Header, RequestFields { type: MessageType.SWIM; payload: Uint8Array }

/** What a CONNECT request asks. */
export const ConnectOp = {
  /** "Relay for me": the reply's one contact is the responder at the relayed address it bound for the asker. Asked again, it refreshes. */
  ALLOCATE: 0,
  /**
   * "I am at `address` (public); open your NAT toward it": the reply's contact is the responder at its own public address.
   * A responder behind a random NAT opens many ports instead and names itself twice: "probe random ports of my IP".
   * The request carries the asker's LAN addresses (`locals`); a responder behind the same NAT adds its own as more contacts.
   */
  PUNCH: 1,
  /** "Have someone else reach me at `address`": the reply's contacts are who will, at the port it probes from and at its own address (a reachability test). */
  REACH: 2,
  /** "Send PROBEs to `address` from a port bound for this": the reply's contact is the responder at that port. */
  DIAL: 3,
  /** "I opened many ports toward you: probe random ports of my IP, `address`'s": the reply's contact is the responder (birthday method). */
  SPRAY: 4,
} as const
const MAX_CONNECT_OP = 4

/** What a LOCATE request does. */
export const LocateOp = {
  /** Leave a pointer "object -> the asker" here, then pass it on toward the root. */
  PUBLISH: 0,
  /** Answer with the servers held for the object, if any, and the next hop toward the root. */
  LOCATE: 1,
  /** Drop the asker's pointer for the object. */
  UNPUBLISH: 2,
} as const
const MAX_LOCATE_OP = 2
export const TTL_SEC_BYTES = 4 // u32 seconds: a pointer's lifetime, up to 136 years

/**
 * `record` is opaque here: the DHT service encodes and verifies it. `cas`: the seq the writer
 * expects the holder to have. `ttlMs`: keep it no longer than this (a replica keeps its original
 * expiry). `cache`: a copy left on a get's path, not a put to the nodes nearest the key.
 */
export interface Put extends Header, RequestFields { type: MessageType.PUT; record: Uint8Array; cas?: number; ttlMs?: number; cache?: boolean }

/** Bits of a PUT's option byte. */
export const PutOption = { HAS_CAS: 0x01, HAS_TTL: 0x02, CACHE: 0x04 } as const
const KNOWN_PUT_OPTIONS = 0x07
export const TTL_BYTES = 4 // u32 milliseconds: up to 49 days
export interface Pong extends Header, ReplyFields { type: MessageType.PONG }
export interface Stored extends Header, ReplyFields { type: MessageType.STORED }
export interface Nodes extends Header, ReplyFields { type: MessageType.NODES; contacts: WireContact[] }
export interface Values extends Header, ReplyFields { type: MessageType.VALUES; contacts: WireContact[]; records: Uint8Array[] }
/** `next`: the next hop toward the object's root, then its backups (empty at the root); `servers`: pointers held (LOCATE). */
export interface Pointers extends Header, ReplyFields { type: MessageType.POINTERS; next: WireContact[]; servers: WireContact[] }
export interface ErrorReply extends Header { type: MessageType.ERROR; code: number; reason: string }

export type Request = Ping | FindNode | Get | Put | NeighborsRequest | LocateRequest | ConnectRequest | MembershipRequest | BroadcastRequest | SwimRequest
export type Reply = Pong | Stored | Nodes | Values | Pointers | ErrorReply
export type Message = Request | Reply

/** ERROR reply codes on the wire, and the error code each one becomes at the asker. */
export const ErrorReplyCode = {
  RATE_LIMITED: 1, BAD_REQUEST: 2, BUSY: 3, VALUE_TOO_LARGE: 4, HASH_MISMATCH: 5, BAD_SIGNATURE: 6,
  STALE_SEQ: 7, CAS_MISMATCH: 8, STORE_FULL: 9, BAD_TOKEN: 10, EXPIRED: 11, FORBIDDEN: 12,
} as const

export function isRequest(m: Message): m is Request {
  return m.type === MessageType.PING || m.type === MessageType.FIND_NODE || m.type === MessageType.GET || m.type === MessageType.PUT || m.type === MessageType.NEIGHBORS ||
    m.type === MessageType.LOCATE || m.type === MessageType.CONNECT || m.type === MessageType.MEMBERSHIP || m.type === MessageType.BROADCAST || m.type === MessageType.SWIM
}

export function contactSize(c: WireContact): number {
  return ID_BYTES + packedAddressSize(c.address)
}

function contactsSize(contacts: WireContact[]): number {
  let n = 1
  for (const c of contacts) n += contactSize(c)
  return n
}

/** Exact encoded size, so replies can be trimmed before encoding. */
export function encodedSize(m: Message): number {
  switch (m.type) {
    case MessageType.PING:
    case MessageType.FIND_NODE:
    case MessageType.GET:
    case MessageType.PUT:
    case MessageType.NEIGHBORS:
    case MessageType.LOCATE:
    case MessageType.CONNECT:
    case MessageType.MEMBERSHIP:
    case MessageType.BROADCAST:
    case MessageType.SWIM: {
      let n = HEADER_BYTES + (m.token !== undefined ? TOKEN_BYTES : 0) + 2 + (m.pad ?? 0)
      if (m.type === MessageType.MEMBERSHIP) n += 1 + CHANNEL_BYTES + 2 + contactsSize(m.contacts)
      if (m.type === MessageType.BROADCAST) n += 1 + CHANNEL_BYTES + 2 + m.ids.length * BROADCAST_ID_BYTES + 2 + m.payload.length
      if (m.type === MessageType.SWIM) n += 2 + m.payload.length
      if (m.type === MessageType.FIND_NODE || m.type === MessageType.GET) n += ID_BYTES
      if (m.type === MessageType.NEIGHBORS) n += 2
      if (m.type === MessageType.LOCATE) n += 1 + ID_BYTES + 1 + TTL_SEC_BYTES
      if (m.type === MessageType.CONNECT) n += 1 + packedAddressSize(m.address)
      if (m.type === MessageType.CONNECT && m.op === ConnectOp.PUNCH) { n += 1; for (const a of m.locals ?? []) n += packedAddressSize(a) }
      if (m.type === MessageType.PUT) n += 1 + (m.cas !== undefined ? CAS_BYTES : 0) + (m.ttlMs !== undefined ? TTL_BYTES : 0) + 2 + m.record.length
      return n
    }
    case MessageType.PONG:
    case MessageType.STORED:
      return HEADER_BYTES + TOKEN_BYTES + packedAddressSize(m.observed)
    case MessageType.NODES:
      return HEADER_BYTES + TOKEN_BYTES + packedAddressSize(m.observed) + contactsSize(m.contacts)
    case MessageType.POINTERS:
      return HEADER_BYTES + TOKEN_BYTES + packedAddressSize(m.observed) + contactsSize(m.next) + contactsSize(m.servers)
    case MessageType.VALUES: {
      let n = HEADER_BYTES + TOKEN_BYTES + packedAddressSize(m.observed) + contactsSize(m.contacts) + 1
      for (const r of m.records) n += 2 + r.length
      return n
    }
    case MessageType.ERROR:
      return HEADER_BYTES + 1 + 1 + Buffer.byteLength(m.reason)
  }
}

function writeU48(b: Uint8Array, o: number, v: number): number {
  const hi = Math.floor(v / 0x100000000)
  b[o] = hi >> 8; b[o + 1] = hi & 0xff
  b[o + 2] = v >>> 24; b[o + 3] = (v >>> 16) & 0xff; b[o + 4] = (v >>> 8) & 0xff; b[o + 5] = v & 0xff
  return o + 6
}
function readU48(b: Uint8Array, o: number): number {
  const hi = (b[o] << 8) | b[o + 1]
  const lo = ((b[o + 2] << 24) | (b[o + 3] << 16) | (b[o + 4] << 8) | b[o + 5]) >>> 0
  return hi * 0x100000000 + lo
}
function writeU16(b: Uint8Array, o: number, v: number): number {
  b[o] = v >> 8; b[o + 1] = v & 0xff
  return o + 2
}

function writeContacts(b: Uint8Array, o: number, contacts: WireContact[], max = MAX_CONTACTS, what = 'contacts'): number {
  if (contacts.length > max) throw new WeftError('ERR_TOO_LARGE', `${contacts.length} ${what} exceed ${max}`)
  b[o++] = contacts.length
  for (const c of contacts) {
    b.set(c.id, o); o += ID_BYTES
    o = packAddress(c.address, b, o)
  }
  return o
}

export function encode(m: Message): Uint8Array {
  const size = encodedSize(m)
  if (size > MAX_PACKET) throw new WeftError('ERR_TOO_LARGE', `message of ${size} bytes exceeds ${MAX_PACKET}`)
  const b = new Uint8Array(size)
  const hasToken = isRequest(m) && m.token !== undefined
  b[0] = MAGIC
  b[1] = VERSION
  b[2] = m.type
  b[3] = (m.flags & ~Flag.HAS_TOKEN) | (hasToken ? Flag.HAS_TOKEN : 0)
  b[4] = m.txid >>> 24; b[5] = (m.txid >>> 16) & 0xff; b[6] = (m.txid >>> 8) & 0xff; b[7] = m.txid & 0xff
  b.set(m.sender.subarray(0, ID_BYTES), 8)
  let o = HEADER_BYTES
  switch (m.type) {
    case MessageType.PING:
    case MessageType.FIND_NODE:
    case MessageType.GET:
    case MessageType.PUT:
    case MessageType.NEIGHBORS:
    case MessageType.LOCATE:
    case MessageType.CONNECT:
    case MessageType.MEMBERSHIP:
    case MessageType.BROADCAST:
    case MessageType.SWIM: {
      if (m.token !== undefined) o = writeU48(b, o, m.token)
      if (m.type === MessageType.MEMBERSHIP) {
        if (!(Number.isInteger(m.op) && m.op >= 0 && m.op <= MAX_MEMBERSHIP_OP)) throw new WeftError('ERR_BAD_ARGUMENT', `unknown MEMBERSHIP op ${m.op}`)
        if (m.channel.length !== CHANNEL_BYTES) throw new WeftError('ERR_BAD_ARGUMENT', `a channel id is ${CHANNEL_BYTES} bytes`)
        if (!(Number.isInteger(m.ttl) && m.ttl >= 0 && m.ttl <= 255 && (m.priority === 0 || m.priority === 1))) throw new WeftError('ERR_BAD_ARGUMENT', 'MEMBERSHIP ttl must be a byte and priority 0 or 1')
        b[o++] = m.op
        b.set(m.channel, o); o += CHANNEL_BYTES
        b[o++] = m.ttl; b[o++] = m.priority
        o = writeContacts(b, o, m.contacts, MAX_GOSSIP_CONTACTS)
      }
      if (m.type === MessageType.BROADCAST) {
        checkBroadcast(m.op, m.ids.length, m.payload.length, (c) => new WeftError('ERR_BAD_ARGUMENT', c))
        if (m.channel.length !== CHANNEL_BYTES) throw new WeftError('ERR_BAD_ARGUMENT', `a channel id is ${CHANNEL_BYTES} bytes`)
        if (!(Number.isInteger(m.round) && m.round >= 0 && m.round <= 255)) throw new WeftError('ERR_BAD_ARGUMENT', 'BROADCAST round must be a byte')
        b[o++] = m.op
        b.set(m.channel, o); o += CHANNEL_BYTES
        b[o++] = m.round
        b[o++] = m.ids.length
        for (const id of m.ids) {
          if (id.length !== BROADCAST_ID_BYTES) throw new WeftError('ERR_BAD_ARGUMENT', `a broadcast id is ${BROADCAST_ID_BYTES} bytes`)
          b.set(id, o); o += BROADCAST_ID_BYTES
        }
        o = writeU16(b, o, m.payload.length)
        b.set(m.payload, o); o += m.payload.length
      }
      if (m.type === MessageType.SWIM) {
        checkSwim(m.payload, (c) => new WeftError('ERR_BAD_ARGUMENT', c))
        o = writeU16(b, o, m.payload.length)
        b.set(m.payload, o); o += m.payload.length
      }
      if (m.type === MessageType.FIND_NODE || m.type === MessageType.GET) { b.set(m.target, o); o += ID_BYTES }
      if (m.type === MessageType.NEIGHBORS) {
        if (!(m.what >= 0 && m.what <= 255 && m.arg >= 0 && m.arg <= 255)) throw new WeftError('ERR_BAD_ARGUMENT', 'NEIGHBORS what and arg must be bytes')
        b[o++] = m.what; b[o++] = m.arg
      }
      if (m.type === MessageType.LOCATE) {
        if (!(Number.isInteger(m.op) && m.op >= 0 && m.op <= MAX_LOCATE_OP)) throw new WeftError('ERR_BAD_ARGUMENT', `unknown LOCATE op ${m.op}`)
        if (m.object.length !== ID_BYTES) throw new WeftError('ERR_BAD_ARGUMENT', `a LOCATE object id is ${ID_BYTES} bytes`)
        if (!(Number.isInteger(m.hop) && m.hop >= 0 && m.hop <= 255)) throw new WeftError('ERR_BAD_ARGUMENT', 'LOCATE hop must be a byte')
        if (!(Number.isInteger(m.ttlSec) && m.ttlSec >= 0 && m.ttlSec <= 0xffffffff)) throw new WeftError('ERR_BAD_ARGUMENT', 'ttlSec must fit 32 bits')
        b[o++] = m.op
        b.set(m.object, o); o += ID_BYTES
        b[o++] = m.hop
        new DataView(b.buffer).setUint32(o, m.ttlSec)
        o += TTL_SEC_BYTES
      }
      if (m.type === MessageType.CONNECT) {
        if (!(Number.isInteger(m.op) && m.op >= 0 && m.op <= MAX_CONNECT_OP)) throw new WeftError('ERR_BAD_ARGUMENT', `unknown CONNECT op ${m.op}`)
        b[o++] = m.op
        o = packAddress(m.address, b, o)
        if (m.op === ConnectOp.PUNCH) {
          const locals = m.locals ?? []
          if (locals.length > MAX_LOCAL_ADDRESSES) throw new WeftError('ERR_BAD_ARGUMENT', `a PUNCH carries at most ${MAX_LOCAL_ADDRESSES} local addresses`)
          b[o++] = locals.length
          for (const a of locals) o = packAddress(a, b, o)
        }
      }
      if (m.type === MessageType.PUT) {
        b[o++] = (m.cas !== undefined ? PutOption.HAS_CAS : 0) | (m.ttlMs !== undefined ? PutOption.HAS_TTL : 0) | (m.cache ? PutOption.CACHE : 0)
        if (m.cas !== undefined) {
          if (!Number.isSafeInteger(m.cas) || m.cas < 0) throw new WeftError('ERR_BAD_ARGUMENT', 'cas must be a non-negative safe integer')
          new DataView(b.buffer).setBigUint64(o, BigInt(m.cas))
          o += CAS_BYTES
        }
        if (m.ttlMs !== undefined) {
          if (!Number.isInteger(m.ttlMs) || m.ttlMs < 0 || m.ttlMs > 0xffffffff) throw new WeftError('ERR_BAD_ARGUMENT', 'ttlMs must fit 32 bits')
          new DataView(b.buffer).setUint32(o, m.ttlMs)
          o += TTL_BYTES
        }
        o = writeU16(b, o, m.record.length)
        b.set(m.record, o); o += m.record.length
      }
      writeU16(b, o, m.pad ?? 0) // the pad bytes that follow are already zero
      break
    }
    case MessageType.PONG:
    case MessageType.STORED:
      o = writeU48(b, o, m.token)
      packAddress(m.observed, b, o)
      break
    case MessageType.NODES:
    case MessageType.VALUES:
      o = writeU48(b, o, m.token)
      o = packAddress(m.observed, b, o)
      o = writeContacts(b, o, m.contacts)
      if (m.type === MessageType.VALUES) {
        if (m.records.length > MAX_RECORDS) throw new WeftError('ERR_TOO_LARGE', `${m.records.length} records exceed ${MAX_RECORDS}`)
        b[o++] = m.records.length
        for (const r of m.records) { o = writeU16(b, o, r.length); b.set(r, o); o += r.length }
      }
      break
    case MessageType.POINTERS:
      o = writeU48(b, o, m.token)
      o = packAddress(m.observed, b, o)
      o = writeContacts(b, o, m.next, MAX_NEXT_HOPS, 'next hops')
      writeContacts(b, o, m.servers, MAX_SERVERS, 'servers')
      break
    case MessageType.ERROR: {
      b[o++] = m.code
      const reason = Buffer.from(m.reason)
      if (reason.length > MAX_REASON_BYTES) throw new WeftError('ERR_TOO_LARGE', 'error reason too long')
      b[o++] = reason.length
      b.set(reason, o)
      break
    }
  }
  return b
}

/** The shape rules of a BROADCAST op, shared by the encoder and the decoder. */
function checkBroadcast(op: number, ids: number, payload: number, error: (reason: string) => WeftError): void {
  if (!(Number.isInteger(op) && op >= 0 && op <= MAX_BROADCAST_OP)) throw error(`unknown BROADCAST op ${op}`)
  if (payload > MAX_BROADCAST_PAYLOAD) throw error(`a broadcast payload of ${payload} bytes exceeds ${MAX_BROADCAST_PAYLOAD}`)
  const carries = op === BroadcastOp.GOSSIP || op === BroadcastOp.STEM
  if (carries ? ids !== 1 : op === BroadcastOp.PRUNE ? ids !== 0 : op === BroadcastOp.IHAVE ? ids < 1 || ids > MAX_BROADCAST_IDS : ids > MAX_BROADCAST_IDS) throw error(`a BROADCAST op ${op} cannot carry ${ids} ids`)
  if (!carries && payload !== 0) throw error(`only a GOSSIP or STEM carries a payload (op ${op})`)
}

/** The frame rules of a SWIM payload, shared by the encoder and the decoder. */
function checkSwim(payload: Uint8Array, error: (reason: string) => WeftError): void {
  if (payload.length > MAX_SWIM_BYTES) throw error(`a SWIM payload of ${payload.length} bytes exceeds ${MAX_SWIM_BYTES}`)
  if (payload.length < MIN_SWIM_BYTES) throw error(`a SWIM payload of ${payload.length} bytes is shorter than ${MIN_SWIM_BYTES}`)
  if (payload[0] < 1 || payload[0] > MAX_SWIM_TYPE) throw error(`unknown SWIM message type ${payload[0]}`)
}

export type DecodeResult = { ok: true; message: Message } | { ok: false; error: WeftError }

/**
 * Decodes untrusted bytes. Never throws: anything malformed is a typed error. The byte fields of
 * the message (sender, target, contact ids, records) are views into `b`, not copies: a hot path
 * decodes 20 contacts per reply. Whoever keeps one beyond the message copies it.
 */
export function decode(b: Uint8Array): DecodeResult {
  try {
    return { ok: true, message: decodeOrThrow(b) }
  } catch (err) {
    if (err instanceof WeftError) return { ok: false, error: err }
    return { ok: false, error: new WeftError('ERR_BAD_MESSAGE', `undecodable message: ${(err as Error).message}`) }
  }
}

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

function need(b: Uint8Array, o: number, n: number, what: string): void {
  if (o + n > b.length) throw new WeftError('ERR_TRUNCATED', `truncated ${what}`)
}

/** Reads a contact list (a u8 count, then the contacts) into `out`; returns the offset after it. */
function readContacts(b: Uint8Array, o: number, max: number, what: string, out: WireContact[]): number {
  if (o >= b.length) throw new WeftError('ERR_TRUNCATED', `truncated ${what} count`) // need() would build the label on every reply
  const count = b[o++]
  if (count > max) throw new WeftError('ERR_BAD_MESSAGE', `${count} ${what}s exceed the limit of ${max}`)
  for (let i = 0; i < count; i++) {
    need(b, o, ID_BYTES + 1, what)
    const id = b.subarray(o, o + ID_BYTES)
    o += ID_BYTES
    const address = readAddress(b, o)
    o += b[o] === 4 ? 7 : 19
    out.push({ id, address })
  }
  return o
}

function decodeOrThrow(packet: Uint8Array): Message {
  // A plain Uint8Array view: a Buffer's subarray is far slower and would make every field a Buffer.
  const b = new Uint8Array(packet.buffer, packet.byteOffset, packet.byteLength)
  if (b.length > MAX_PACKET) throw new WeftError('ERR_TOO_LARGE', `packet of ${b.length} bytes exceeds ${MAX_PACKET}`)
  // Magic and version come first: another version's header may be laid out differently.
  need(b, 0, 2, 'header')
  if (b[0] !== MAGIC) throw new WeftError('ERR_BAD_MESSAGE', 'not a Weft packet (bad magic byte)')
  if (b[1] !== VERSION) throw new WeftError('ERR_VERSION', `wire version ${b[1]} is not supported (this node speaks ${VERSION})`)
  need(b, 0, HEADER_BYTES, 'header')
  const type = b[2]
  const flags = b[3]
  if (flags & ~KNOWN_FLAGS) throw new WeftError('ERR_BAD_MESSAGE', `reserved flag bits set: 0x${flags.toString(16)}`)
  const txid = ((b[4] << 24) | (b[5] << 16) | (b[6] << 8) | b[7]) >>> 0
  const sender = b.subarray(8, 8 + ID_BYTES)
  let o = HEADER_BYTES
  let m: Message
  switch (type) {
    case MessageType.PING:
    case MessageType.FIND_NODE:
    case MessageType.GET:
    case MessageType.PUT:
    case MessageType.NEIGHBORS:
    case MessageType.LOCATE:
    case MessageType.CONNECT:
    case MessageType.MEMBERSHIP:
    case MessageType.BROADCAST:
    case MessageType.SWIM: {
      let token: number | undefined
      if (flags & Flag.HAS_TOKEN) { need(b, o, TOKEN_BYTES, 'token'); token = readU48(b, o); o += TOKEN_BYTES }
      let gossip: MembershipRequest | BroadcastRequest | SwimRequest | undefined
      if (type === MessageType.MEMBERSHIP) {
        need(b, o, 1 + CHANNEL_BYTES + 2, 'membership op, channel, ttl and priority')
        const op = b[o++]
        if (op > MAX_MEMBERSHIP_OP) throw new WeftError('ERR_BAD_MESSAGE', `unknown MEMBERSHIP op ${op}`)
        const channel = b.subarray(o, o + CHANNEL_BYTES); o += CHANNEL_BYTES
        const ttl = b[o++], priority = b[o++]
        if (priority > 1) throw new WeftError('ERR_BAD_MESSAGE', `MEMBERSHIP priority ${priority} is not 0 or 1`)
        const contacts: WireContact[] = []
        o = readContacts(b, o, MAX_GOSSIP_CONTACTS, 'membership contact', contacts)
        gossip = { type, txid, sender, flags, op, channel, ttl, priority, contacts, token }
      }
      if (type === MessageType.BROADCAST) {
        need(b, o, 1 + CHANNEL_BYTES + 2, 'broadcast op, channel, round and id count')
        const op = b[o++]
        const channel = b.subarray(o, o + CHANNEL_BYTES); o += CHANNEL_BYTES
        const round = b[o++], count = b[o++]
        need(b, o, count * BROADCAST_ID_BYTES + 2, 'broadcast ids and payload length')
        const ids: Uint8Array[] = []
        for (let i = 0; i < count; i++) { ids.push(b.subarray(o, o + BROADCAST_ID_BYTES)); o += BROADCAST_ID_BYTES }
        const len = (b[o] << 8) | b[o + 1]
        o += 2
        checkBroadcast(op, count, len, (c) => new WeftError('ERR_BAD_MESSAGE', c))
        need(b, o, len, 'broadcast payload')
        const payload = b.subarray(o, o + len); o += len
        gossip = { type, txid, sender, flags, op, channel, round, ids, payload, token }
      }
      if (type === MessageType.SWIM) {
        need(b, o, 2, 'SWIM payload length')
        const len = (b[o] << 8) | b[o + 1]
        o += 2
        need(b, o, len, 'SWIM payload')
        const payload = b.subarray(o, o + len); o += len
        checkSwim(payload, (c) => new WeftError('ERR_BAD_MESSAGE', c))
        gossip = { type, txid, sender, flags, payload, token }
      }
      let target: NodeId | undefined
      if (type === MessageType.FIND_NODE || type === MessageType.GET) { need(b, o, ID_BYTES, 'target'); target = b.subarray(o, o + ID_BYTES); o += ID_BYTES }
      let what = 0, arg = 0
      if (type === MessageType.NEIGHBORS) { need(b, o, 2, 'neighbours question'); what = b[o]; arg = b[o + 1]; o += 2 }
      let op = 0, hop = 0, ttlSec = 0
      let object: NodeId | undefined
      if (type === MessageType.LOCATE) {
        need(b, o, 1, 'locate op')
        op = b[o++]
        if (op > MAX_LOCATE_OP) throw new WeftError('ERR_BAD_MESSAGE', `unknown LOCATE op ${op}`)
        need(b, o, ID_BYTES, 'object id')
        object = b.subarray(o, o + ID_BYTES)
        o += ID_BYTES
        need(b, o, 1 + TTL_SEC_BYTES, 'locate hop and ttl')
        hop = b[o++]
        ttlSec = new DataView(b.buffer, b.byteOffset + o, TTL_SEC_BYTES).getUint32(0)
        o += TTL_SEC_BYTES
      }
      let address: Address | undefined
      let locals: Address[] | undefined
      if (type === MessageType.CONNECT) {
        need(b, o, 2, 'connect op and address')
        op = b[o++]
        if (op > MAX_CONNECT_OP) throw new WeftError('ERR_BAD_MESSAGE', `unknown CONNECT op ${op}`)
        ;[address, o] = unpackAddress(b, o)
        if (op === ConnectOp.PUNCH) {
          need(b, o, 1, 'local address count')
          const count = b[o++]
          if (count > MAX_LOCAL_ADDRESSES) throw new WeftError('ERR_BAD_MESSAGE', `a PUNCH carries at most ${MAX_LOCAL_ADDRESSES} local addresses, not ${count}`)
          if (count > 0) locals = []
          for (let i = 0; i < count; i++) { let a: Address; [a, o] = unpackAddress(b, o); locals!.push(a) }
        }
      }
      let record: Uint8Array | undefined
      let cas: number | undefined
      let ttlMs: number | undefined
      let cache: boolean | undefined
      if (type === MessageType.PUT) {
        need(b, o, 1, 'put options')
        const options = b[o++]
        if (options & ~KNOWN_PUT_OPTIONS) throw new WeftError('ERR_BAD_MESSAGE', `reserved put option bits set: 0x${options.toString(16)}`)
        if (options & PutOption.CACHE) cache = true
        if (options & PutOption.HAS_CAS) {
          need(b, o, CAS_BYTES, 'cas')
          const v = new DataView(b.buffer, b.byteOffset + o, CAS_BYTES).getBigUint64(0)
          if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new WeftError('ERR_BAD_MESSAGE', 'cas out of range')
          cas = Number(v)
          o += CAS_BYTES
        }
        if (options & PutOption.HAS_TTL) {
          need(b, o, TTL_BYTES, 'ttl')
          ttlMs = new DataView(b.buffer, b.byteOffset + o, TTL_BYTES).getUint32(0)
          o += TTL_BYTES
        }
        need(b, o, 2, 'record length')
        const len = (b[o] << 8) | b[o + 1]
        o += 2
        need(b, o, len, 'record')
        record = b.subarray(o, o + len)
        o += len
      }
      need(b, o, 2, 'pad length')
      const pad = (b[o] << 8) | b[o + 1]
      o += 2
      need(b, o, pad, 'padding')
      for (let i = 0; i < pad; i++) if (b[o + i] !== 0) throw new WeftError('ERR_BAD_MESSAGE', 'padding must be zero')
      o += pad
      if (type === MessageType.FIND_NODE || type === MessageType.GET) m = { type, txid, sender, flags, target: target!, token, pad }
      else if (type === MessageType.PUT) m = { type, txid, sender, flags, record: record!, cas, ttlMs, cache, token, pad }
      else if (type === MessageType.NEIGHBORS) m = { type, txid, sender, flags, what, arg, token, pad }
      else if (type === MessageType.LOCATE) m = { type, txid, sender, flags, op, object: object!, hop, ttlSec, token, pad }
      else if (type === MessageType.CONNECT) m = locals ? { type, txid, sender, flags, op, address: address!, locals, token, pad } : { type, txid, sender, flags, op, address: address!, token, pad }
      else if (gossip) { gossip.pad = pad; m = gossip }
      else m = { type: MessageType.PING, txid, sender, flags, token, pad }
      break
    }
    case MessageType.PONG:
    case MessageType.STORED:
    case MessageType.NODES:
    case MessageType.VALUES:
    case MessageType.POINTERS: {
      // HAS_TOKEN is a request's flag (a reply's token is always there): the encoder never sets it, so a reply with it is not one encoding.
      if (flags & Flag.HAS_TOKEN) throw new WeftError('ERR_BAD_MESSAGE', 'HAS_TOKEN set on a reply')
      need(b, o, TOKEN_BYTES, 'token')
      const token = readU48(b, o)
      o += TOKEN_BYTES
      need(b, o, 1, 'observed address')
      const [observed, next] = unpackAddress(b, o)
      o = next
      if (type === MessageType.PONG || type === MessageType.STORED) { m = { type, txid, sender, flags, token, observed }; break }
      if (type === MessageType.POINTERS) {
        const hops: WireContact[] = []
        const servers: WireContact[] = []
        o = readContacts(b, o, MAX_NEXT_HOPS, 'next hop', hops)
        o = readContacts(b, o, MAX_SERVERS, 'server', servers)
        m = { type, txid, sender, flags, token, observed, next: hops, servers }
        break
      }
      const contacts: WireContact[] = []
      o = readContacts(b, o, MAX_CONTACTS, 'contact', contacts)
      if (type === MessageType.NODES) { m = { type, txid, sender, flags, token, observed, contacts }; break }
      need(b, o, 1, 'record count')
      const n = b[o++]
      if (n > MAX_RECORDS) throw new WeftError('ERR_BAD_MESSAGE', `${n} records exceed the limit of ${MAX_RECORDS}`)
      const records: Uint8Array[] = []
      for (let i = 0; i < n; i++) {
        need(b, o, 2, 'record length')
        const len = (b[o] << 8) | b[o + 1]
        o += 2
        need(b, o, len, 'record')
        records.push(b.subarray(o, o + len))
        o += len
      }
      m = { type, txid, sender, flags, token, observed, contacts, records }
      break
    }
    case MessageType.ERROR: {
      if (flags & Flag.HAS_TOKEN) throw new WeftError('ERR_BAD_MESSAGE', 'HAS_TOKEN set on a reply')
      need(b, o, 2, 'error')
      const code = b[o]
      const len = b[o + 1]
      o += 2
      if (len > MAX_REASON_BYTES) throw new WeftError('ERR_BAD_MESSAGE', 'error reason too long')
      need(b, o, len, 'error reason')
      // Strict UTF-8: a lenient decode would turn bad bytes into U+FFFD, so the reason would not
      // encode back to the bytes received (and could even outgrow MAX_REASON_BYTES). Found by fuzzing.
      let reason: string
      try { reason = STRICT_UTF8.decode(b.subarray(o, o + len)) } catch { throw new WeftError('ERR_BAD_MESSAGE', 'error reason is not UTF-8') }
      o += len
      m = { type, txid, sender, flags, code, reason }
      break
    }
    default:
      throw new WeftError('ERR_UNKNOWN_TYPE', `unknown message type ${type}`)
  }
  if (o !== b.length) throw new WeftError('ERR_BAD_MESSAGE', `${b.length - o} trailing bytes after message`)
  return m
}
