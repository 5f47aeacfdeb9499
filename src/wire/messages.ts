// Weft wire protocol, version 1: message shapes, limits and the codec. spec/wire.md is the reference.
import { WeftError } from '../errors.js'
import { ID_BYTES, type NodeId } from '../identity/node-id.js'
import { packAddress, packedAddressSize, unpackAddress, type Address } from './address.js'

export const MAGIC = 0x57 // 'W'
export const VERSION = 1
export const HEADER_BYTES = 40 // magic, version, type, flags, txid (4), sender id (32)
export const MAX_PACKET = 1400 // fits the path MTU of nearly every network without fragmenting
export const MAX_CONTACTS = 25 // 25 IPv6 contacts still fit in MAX_PACKET
export const MAX_REASON_BYTES = 200
export const TOKEN_BYTES = 6

export const enum MessageType {
  PING = 1,
  PONG = 2,
  FIND_NODE = 3,
  NODES = 4,
  ERROR = 5,
}

export const Flag = {
  HAS_TOKEN: 0x01, // request: carries the round-trip token the responder gave this address
  TRUNCATED: 0x02, // reply: shortened to the request's size (the asker's address is unproven)
  READ_ONLY: 0x04, // sender is a client: do not add it to routing tables
} as const
const KNOWN_FLAGS = 0x07

export interface WireContact {
  id: NodeId
  address: Address
}

interface Header {
  txid: number
  sender: NodeId
  flags: number
}
export interface Ping extends Header { type: MessageType.PING; token?: number; pad?: number }
export interface FindNode extends Header { type: MessageType.FIND_NODE; target: NodeId; token?: number; pad?: number }
export interface Pong extends Header { type: MessageType.PONG; token: number; observed: Address }
export interface Nodes extends Header { type: MessageType.NODES; token: number; observed: Address; contacts: WireContact[] }
export interface ErrorReply extends Header { type: MessageType.ERROR; code: number; reason: string }

export type Request = Ping | FindNode
export type Reply = Pong | Nodes | ErrorReply
export type Message = Request | Reply

export const ErrorReplyCode = { RATE_LIMITED: 1, BAD_REQUEST: 2, BUSY: 3 } as const

export function isRequest(m: Message): m is Request {
  return m.type === MessageType.PING || m.type === MessageType.FIND_NODE
}

export function contactSize(c: WireContact): number {
  return ID_BYTES + packedAddressSize(c.address)
}

/** Exact encoded size, so replies can be trimmed before encoding. */
export function encodedSize(m: Message): number {
  switch (m.type) {
    case MessageType.PING:
      return HEADER_BYTES + (m.token !== undefined ? TOKEN_BYTES : 0) + 2 + (m.pad ?? 0)
    case MessageType.FIND_NODE:
      return HEADER_BYTES + (m.token !== undefined ? TOKEN_BYTES : 0) + ID_BYTES + 2 + (m.pad ?? 0)
    case MessageType.PONG:
      return HEADER_BYTES + TOKEN_BYTES + packedAddressSize(m.observed)
    case MessageType.NODES: {
      let n = HEADER_BYTES + TOKEN_BYTES + packedAddressSize(m.observed) + 1
      for (const c of m.contacts) n += contactSize(c)
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

export function encode(m: Message): Uint8Array {
  const size = encodedSize(m)
  if (size > MAX_PACKET) throw new WeftError('ERR_TOO_LARGE', `message of ${size} bytes exceeds ${MAX_PACKET}`)
  const b = new Uint8Array(size)
  const hasToken = (m.type === MessageType.PING || m.type === MessageType.FIND_NODE) && m.token !== undefined
  b[0] = MAGIC
  b[1] = VERSION
  b[2] = m.type
  b[3] = (m.flags & ~Flag.HAS_TOKEN) | (hasToken ? Flag.HAS_TOKEN : 0)
  b[4] = m.txid >>> 24; b[5] = (m.txid >>> 16) & 0xff; b[6] = (m.txid >>> 8) & 0xff; b[7] = m.txid & 0xff
  b.set(m.sender.subarray(0, ID_BYTES), 8)
  let o = HEADER_BYTES
  switch (m.type) {
    case MessageType.PING:
    case MessageType.FIND_NODE: {
      if (m.token !== undefined) o = writeU48(b, o, m.token)
      if (m.type === MessageType.FIND_NODE) { b.set(m.target, o); o += ID_BYTES }
      const pad = m.pad ?? 0
      b[o] = pad >> 8; b[o + 1] = pad & 0xff // the pad bytes that follow are already zero
      break
    }
    case MessageType.PONG:
      o = writeU48(b, o, m.token)
      packAddress(m.observed, b, o)
      break
    case MessageType.NODES:
      if (m.contacts.length > MAX_CONTACTS) throw new WeftError('ERR_TOO_LARGE', `${m.contacts.length} contacts exceed ${MAX_CONTACTS}`)
      o = writeU48(b, o, m.token)
      o = packAddress(m.observed, b, o)
      b[o++] = m.contacts.length
      for (const c of m.contacts) {
        b.set(c.id, o); o += ID_BYTES
        o = packAddress(c.address, b, o)
      }
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

export type DecodeResult = { ok: true; message: Message } | { ok: false; error: WeftError }

/** Decodes untrusted bytes. Never throws: anything malformed is a typed error. */
export function decode(b: Uint8Array): DecodeResult {
  try {
    return { ok: true, message: decodeOrThrow(b) }
  } catch (err) {
    if (err instanceof WeftError) return { ok: false, error: err }
    return { ok: false, error: new WeftError('ERR_BAD_MESSAGE', `undecodable message: ${(err as Error).message}`) }
  }
}

function need(b: Uint8Array, o: number, n: number, what: string): void {
  if (o + n > b.length) throw new WeftError('ERR_TRUNCATED', `truncated ${what}`)
}

function decodeOrThrow(b: Uint8Array): Message {
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
  const sender = b.slice(8, 8 + ID_BYTES)
  let o = HEADER_BYTES
  let m: Message
  switch (type) {
    case MessageType.PING:
    case MessageType.FIND_NODE: {
      let token: number | undefined
      if (flags & Flag.HAS_TOKEN) { need(b, o, TOKEN_BYTES, 'token'); token = readU48(b, o); o += TOKEN_BYTES }
      let target: NodeId | undefined
      if (type === MessageType.FIND_NODE) { need(b, o, ID_BYTES, 'target'); target = b.slice(o, o + ID_BYTES); o += ID_BYTES }
      need(b, o, 2, 'pad length')
      const pad = (b[o] << 8) | b[o + 1]
      o += 2
      need(b, o, pad, 'padding')
      for (let i = 0; i < pad; i++) if (b[o + i] !== 0) throw new WeftError('ERR_BAD_MESSAGE', 'padding must be zero')
      o += pad
      m = target
        ? { type: MessageType.FIND_NODE, txid, sender, flags, target, token, pad }
        : { type: MessageType.PING, txid, sender, flags, token, pad }
      break
    }
    case MessageType.PONG:
    case MessageType.NODES: {
      need(b, o, TOKEN_BYTES, 'token')
      const token = readU48(b, o)
      o += TOKEN_BYTES
      need(b, o, 1, 'observed address')
      const [observed, next] = unpackAddress(b, o)
      o = next
      if (type === MessageType.PONG) { m = { type, txid, sender, flags, token, observed }; break }
      need(b, o, 1, 'contact count')
      const count = b[o++]
      if (count > MAX_CONTACTS) throw new WeftError('ERR_BAD_MESSAGE', `${count} contacts exceed the limit of ${MAX_CONTACTS}`)
      const contacts: WireContact[] = []
      for (let i = 0; i < count; i++) {
        need(b, o, ID_BYTES + 1, 'contact')
        const id = b.slice(o, o + ID_BYTES)
        const [address, after] = unpackAddress(b, o + ID_BYTES)
        o = after
        contacts.push({ id, address })
      }
      m = { type, txid, sender, flags, token, observed, contacts }
      break
    }
    case MessageType.ERROR: {
      need(b, o, 2, 'error')
      const code = b[o]
      const len = b[o + 1]
      o += 2
      if (len > MAX_REASON_BYTES) throw new WeftError('ERR_BAD_MESSAGE', 'error reason too long')
      need(b, o, len, 'error reason')
      const reason = Buffer.from(b.subarray(o, o + len)).toString('utf8')
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
