// KRPC (BEP 5, with BEP 44's get/put and BEP 43's read-only flag): the codec of Mainline DHT
// messages and their strict validation.
//
// The `bencode` package encodes and decodes. A strict gate runs before its decoder, because the
// decoder takes almost anything (a string longer than the bytes left, trailing bytes, floats,
// "-0", unsorted and repeated keys) and loops forever on a negative string length ("l-3:e").
// The gate walks the bytes once, without recursion, under the bounds below, and refuses all of
// that with a code. What passes is canonical bencode, so decoding it and encoding the result
// gives back the same bytes: hashes and signatures computed over decoded values are exact.
import bencode from 'bencode'
import { isIPv4 } from 'node:net'
import type { ErrorCode } from '../../errors.js'
import type { Address } from '../../wire/address.js'

export const ID_BYTES = 20

/** Bounds on what a KRPC datagram may hold; past them it is dropped, counted under its code. */
export const KRPC_LIMITS = {
  /** Bytes in one datagram (ERR_TOO_LARGE past it). A full BEP 44 put is about 1,300. */
  maxPacket: 2048,
  /** Nesting of lists and dictionaries (ERR_TOO_LARGE). */
  maxDepth: 16,
  /** Values in one message: strings, integers, lists, dictionaries and keys (ERR_TOO_LARGE). */
  maxItems: 512,
  /** Digits of an integer: 15 keeps every one exact in a JS number (ERR_TOO_LARGE). */
  maxIntDigits: 15,
  maxTxid: 16,
  maxToken: 64,
  /** Contacts in one reply's `nodes` (ERR_TOO_LARGE). */
  maxNodes: 64,
  /** Peers in one reply's `values` (ERR_TOO_LARGE). */
  maxValues: 200,
  /** Characters of an error text kept (longer text is cut, not refused). */
  maxErrorText: 200,
} as const

/** KRPC error codes (BEP 5 and BEP 44). */
export const KrpcCode = {
  GENERIC: 201, SERVER: 202, PROTOCOL: 203, METHOD_UNKNOWN: 204,
  VALUE_TOO_BIG: 205, BAD_SIGNATURE: 206, SALT_TOO_BIG: 207, CAS_MISMATCH: 301, SEQ_TOO_LOW: 302,
} as const

/** What bencode holds, as decoded here: byte strings are Uint8Array. */
export type BValue = Uint8Array | number | BValue[] | { [key: string]: BValue }

export type Method = 'ping' | 'find_node' | 'get_peers' | 'announce_peer' | 'get' | 'put'
export const METHODS: readonly Method[] = ['ping', 'find_node', 'get_peers', 'announce_peer', 'get', 'put']

export interface CompactNode { id: Uint8Array; address: Address }

/** A query's arguments, with the wire names turned into camelCase (info_hash, implied_port). */
export interface QueryArgs {
  id: Uint8Array
  /** find_node, get */
  target?: Uint8Array
  /** get_peers, announce_peer */
  infoHash?: Uint8Array
  /** announce_peer */
  port?: number
  impliedPort?: boolean
  /** announce_peer, put */
  token?: Uint8Array
  /** put: any bencoded value; its encoded size is checked by the handler (KRPC 205). */
  v?: BValue
  /** put (mutable): public key, signature, salt (size checked by the handler: 207), seq, cas. get: seq. */
  k?: Uint8Array
  sig?: Uint8Array
  salt?: Uint8Array
  seq?: number
  cas?: number
}

export interface Reply {
  id: Uint8Array
  nodes?: CompactNode[]
  /** get_peers: peers as "ip:port" (IPv4 only; others are skipped). */
  values?: Address[]
  token?: Uint8Array
  /** get: the item, when the node holds it. */
  v?: BValue
  k?: Uint8Array
  sig?: Uint8Array
  seq?: number
}

export interface Query { y: 'q'; t: Uint8Array; q: Method; a: QueryArgs; ro: boolean }
/** `ip`: how the answering node sees the asker (BEP 42). */
export interface Response { y: 'r'; t: Uint8Array; r: Reply; ip?: Address }
export interface ErrorReply { y: 'e'; t: Uint8Array; code: number; text: string }
export type Message = Query | Response | ErrorReply

/** A refused datagram: its code and, for a query that had a transaction id, the KRPC error to answer. */
export interface Invalid { code: ErrorCode; reason: string; t?: Uint8Array; krpc?: number }
export type Decoded = { ok: true; message: Message } | ({ ok: false } & Invalid)

const VERSION = new Uint8Array([0x57, 0x46, 0, 1]) // "WF" 0.1 (BEP 20 style client version)

// ---- the gate ----------------------------------------------------------------------------------

const D = 0x64, L = 0x6c, I = 0x69, E = 0x65, COLON = 0x3a, MINUS = 0x2d, ZERO = 0x30, NINE = 0x39

type Refusal = { code: ErrorCode; reason: string }
const bad = (reason: string): Refusal => ({ code: 'ERR_BAD_BENCODE', reason })
const large = (reason: string): Refusal => ({ code: 'ERR_TOO_LARGE', reason })

/**
 * Checks that `b` is exactly one canonical bencoded value within the bounds: null when it is,
 * else the code (ERR_BAD_BENCODE, ERR_TOO_LARGE) and the reason. Dictionary keys must be
 * printable ASCII in strictly rising order and not "__proto__" (which the decoder would turn
 * into the object's prototype).
 */
export function checkBencode(b: Uint8Array, limits = KRPC_LIMITS): Refusal | null {
  const n = b.length
  if (n > limits.maxPacket) return large(`${n} bytes, over ${limits.maxPacket}`)
  const isDict: boolean[] = [] // one per open container
  const wantKey: boolean[] = [] // dictionaries: the next item is a key
  const lastKey: [number, number][] = [] // dictionaries: the previous key's [start, end)
  let pos = 0
  let items = 0
  // After a value completes inside a dictionary, a key comes next.
  const valueDone = (): void => { const top = isDict.length - 1; if (top >= 0 && isDict[top]) wantKey[top] = true }
  do {
    if (pos >= n) return bad('ends inside a value')
    const c = b[pos]
    const top = isDict.length - 1
    if (c === E && top >= 0) {
      if (isDict[top] && !wantKey[top]) return bad('a key without a value')
      isDict.pop(); wantKey.pop(); lastKey.pop()
      pos++
      valueDone()
      continue
    }
    if (++items > limits.maxItems) return large(`more than ${limits.maxItems} values`)
    if (top >= 0 && isDict[top] && wantKey[top]) {
      if (c < ZERO || c > NINE) return bad('a dictionary key that is not a string')
      const end = stringEnd(b, pos)
      if (typeof end !== 'number') return end
      const start = end - stringLength(b, pos)
      for (let i = start; i < end; i++) if (b[i] < 0x20 || b[i] > 0x7e) return bad('a dictionary key that is not printable ASCII')
      if (end - start === 9 && String.fromCharCode(...b.subarray(start, end)) === '__proto__') return bad('the key __proto__')
      const prev = lastKey[top]
      if (prev[1] > 0 && compareBytes(b, prev[0], prev[1], start, end) >= 0) return bad('dictionary keys out of order or repeated')
      lastKey[top] = [start, end]
      wantKey[top] = false
      pos = end
      continue
    }
    if (c === I) {
      let i = pos + 1
      if (b[i] === MINUS) i++
      const first = i
      while (i < n && b[i] >= ZERO && b[i] <= NINE) i++
      const digits = i - first
      if (digits === 0 || i >= n || b[i] !== E) return bad('an integer that is not i<digits>e')
      if (b[first] === ZERO && (digits > 1 || first > pos + 1)) return bad('an integer with a leading zero or -0')
      if (digits > limits.maxIntDigits) return large(`an integer of ${digits} digits`)
      pos = i + 1
      valueDone()
    } else if (c >= ZERO && c <= NINE) {
      const end = stringEnd(b, pos)
      if (typeof end !== 'number') return end
      pos = end
      valueDone()
    } else if (c === L || c === D) {
      if (isDict.length >= limits.maxDepth) return large(`nested deeper than ${limits.maxDepth}`)
      isDict.push(c === D); wantKey.push(c === D); lastKey.push([0, 0])
      pos++
    } else {
      return bad(`unexpected byte 0x${c.toString(16)} at ${pos}`)
    }
  } while (isDict.length > 0)
  return pos === n ? null : bad(`${n - pos} bytes after the value`)
}

/** The end of the byte string starting at `pos` ("<len>:<bytes>"), or why it is not one. */
function stringEnd(b: Uint8Array, pos: number): number | Refusal {
  let i = pos
  let len = 0
  while (i < b.length && b[i] >= ZERO && b[i] <= NINE) {
    len = len * 10 + (b[i] - ZERO)
    if (++i - pos > 6) return large('a string length of more than 6 digits')
  }
  if (i >= b.length || b[i] !== COLON) return bad('a string length without its colon')
  if (b[pos] === ZERO && i - pos > 1) return bad('a string length with a leading zero')
  const end = i + 1 + len
  return end > b.length ? bad(`a string of ${len} bytes with ${b.length - i - 1} left`) : end
}

function stringLength(b: Uint8Array, pos: number): number {
  let len = 0
  for (let i = pos; b[i] !== COLON; i++) len = len * 10 + (b[i] - ZERO)
  return len
}

function compareBytes(b: Uint8Array, s1: number, e1: number, s2: number, e2: number): number {
  const n = Math.min(e1 - s1, e2 - s2)
  for (let i = 0; i < n; i++) if (b[s1 + i] !== b[s2 + i]) return b[s1 + i] - b[s2 + i]
  return (e1 - s1) - (e2 - s2)
}

/** Decodes one bencoded value after the gate; throws nothing: a refusal comes back instead. */
export function decodeValue(b: Uint8Array, limits = KRPC_LIMITS): { ok: true; value: BValue } | ({ ok: false } & Refusal) {
  const refused = checkBencode(b, limits)
  if (refused) return { ok: false, ...refused }
  return { ok: true, value: bencode.decode(b) as BValue }
}

export function encodeValue(v: BValue): Uint8Array {
  return bencode.encode(v)
}

// ---- messages ------------------------------------------------------------------------------------

class Refused extends Error {
  constructor(readonly code: ErrorCode, readonly reason: string) { super(reason) }
}
function wrong(reason: string): never { throw new Refused('ERR_BAD_MESSAGE', reason) }

type Dict = { [key: string]: BValue }
const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array
const isDictValue = (v: unknown): v is Dict => typeof v === 'object' && v !== null && !isBytes(v) && !Array.isArray(v)
const text = (v: Uint8Array): string => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('latin1')

function bytesField(d: Dict, key: string, size: { len?: number; max?: number }, required: true): Uint8Array
function bytesField(d: Dict, key: string, size: { len?: number; max?: number }, required?: false): Uint8Array | undefined
function bytesField(d: Dict, key: string, size: { len?: number; max?: number }, required = false): Uint8Array | undefined {
  const v = d[key]
  if (v === undefined) return required ? wrong(`missing ${key}`) : undefined
  if (!isBytes(v)) return wrong(`${key} is not a string`)
  if (size.len !== undefined && v.length !== size.len) return wrong(`${key} is ${v.length} bytes, not ${size.len}`)
  if (size.max !== undefined && v.length > size.max) return wrong(`${key} is ${v.length} bytes, over ${size.max}`)
  return v
}

function intField(d: Dict, key: string, min: number, max: number): number | undefined {
  const v = d[key]
  if (v === undefined) return undefined
  if (typeof v !== 'number') return wrong(`${key} is not an integer`)
  if (v < min || v > max) return wrong(`${key} ${v} is outside ${min}..${max}`)
  return v
}

/** Decodes and validates one KRPC datagram. Never throws. */
export function decodeKrpc(b: Uint8Array, limits = KRPC_LIMITS): Decoded {
  const value = decodeValue(b, limits)
  if (!value.ok) return { ok: false, code: value.code, reason: value.reason }
  const m = value.value
  if (!isDictValue(m)) return { ok: false, code: 'ERR_BAD_MESSAGE', reason: 'not a dictionary' }
  const t = m.t
  if (!isBytes(t) || t.length === 0 || t.length > limits.maxTxid) return { ok: false, code: 'ERR_BAD_MESSAGE', reason: 'no usable transaction id' }
  const y = isBytes(m.y) && m.y.length === 1 ? String.fromCharCode(m.y[0]) : ''
  try {
    if (y === 'q') return { ok: true, message: query(m, t) }
    if (y === 'r') return { ok: true, message: response(m, t, limits) }
    if (y === 'e') return { ok: true, message: errorReply(m, t, limits) }
    return { ok: false, code: 'ERR_BAD_MESSAGE', reason: 'y is not q, r or e' }
  } catch (err) {
    if (!(err instanceof Refused)) throw err
    // A query with a transaction id gets the KRPC error the BEP names; anything else is dropped.
    const krpc = y !== 'q' ? undefined : err.code === 'ERR_UNKNOWN_TYPE' ? KrpcCode.METHOD_UNKNOWN : KrpcCode.PROTOCOL
    return { ok: false, code: err.code, reason: err.reason, t, krpc }
  }
}

function query(m: Dict, t: Uint8Array): Query {
  const qb = m.q
  if (!isBytes(qb)) return wrong('q is not a string')
  const q = text(qb) as Method
  if (!METHODS.includes(q)) throw new Refused('ERR_UNKNOWN_TYPE', `unknown method ${JSON.stringify(text(qb).slice(0, 32))}`)
  const d = m.a
  if (!isDictValue(d)) return wrong('a is not a dictionary')
  const a: QueryArgs = { id: bytesField(d, 'id', { len: ID_BYTES }, true) }
  switch (q) {
    case 'ping': break
    case 'find_node': a.target = bytesField(d, 'target', { len: ID_BYTES }, true); break
    case 'get_peers': a.infoHash = bytesField(d, 'info_hash', { len: ID_BYTES }, true); break
    case 'announce_peer': {
      a.infoHash = bytesField(d, 'info_hash', { len: ID_BYTES }, true)
      a.token = bytesField(d, 'token', { max: KRPC_LIMITS.maxToken }, true)
      a.impliedPort = intField(d, 'implied_port', 0, 1) === 1
      a.port = intField(d, 'port', 0, 65535)
      if (!a.impliedPort && !a.port) wrong('no port and no implied_port')
      break
    }
    case 'get': {
      a.target = bytesField(d, 'target', { len: ID_BYTES }, true)
      a.seq = intField(d, 'seq', 0, Number.MAX_SAFE_INTEGER)
      break
    }
    case 'put': {
      a.token = bytesField(d, 'token', { max: KRPC_LIMITS.maxToken }, true)
      if (d.v === undefined) wrong('missing v')
      a.v = d.v
      a.k = bytesField(d, 'k', { len: 32 })
      a.sig = bytesField(d, 'sig', { len: 64 })
      a.salt = bytesField(d, 'salt', {}) // its size has its own error (207), given by the handler
      a.seq = intField(d, 'seq', 0, Number.MAX_SAFE_INTEGER)
      a.cas = intField(d, 'cas', 0, Number.MAX_SAFE_INTEGER)
      const mutable = a.k !== undefined || a.sig !== undefined || a.seq !== undefined
      if (mutable && (a.k === undefined || a.sig === undefined || a.seq === undefined)) wrong('a mutable put needs k, sig and seq')
      break
    }
  }
  const ro = m.ro === undefined ? 0 : m.ro
  if (ro !== 0 && ro !== 1) wrong('ro is not 0 or 1')
  return { y: 'q', t, q, a, ro: ro === 1 }
}

function response(m: Dict, t: Uint8Array, limits: typeof KRPC_LIMITS): Response {
  const d = m.r
  if (!isDictValue(d)) return wrong('r is not a dictionary')
  const r: Reply = { id: bytesField(d, 'id', { len: ID_BYTES }, true) }
  const nodes = bytesField(d, 'nodes', {})
  if (nodes) {
    if (nodes.length % 26 !== 0) wrong(`nodes is ${nodes.length} bytes, not a multiple of 26`)
    if (nodes.length / 26 > limits.maxNodes) throw new Refused('ERR_TOO_LARGE', `${nodes.length / 26} nodes, over ${limits.maxNodes}`)
    r.nodes = []
    for (let i = 0; i < nodes.length; i += 26) {
      const address = unpackAddress(nodes, i + ID_BYTES)
      if (address) r.nodes.push({ id: nodes.slice(i, i + ID_BYTES), address })
    }
  }
  const values = d.values
  if (values !== undefined) {
    if (!Array.isArray(values)) wrong('values is not a list')
    if (values.length > limits.maxValues) throw new Refused('ERR_TOO_LARGE', `${values.length} values, over ${limits.maxValues}`)
    r.values = []
    for (const p of values) {
      if (!isBytes(p) || (p.length !== 6 && p.length !== 18)) wrong('a value that is not a compact peer')
      const address = p.length === 6 ? unpackAddress(p, 0) : null // IPv6 peers (BEP 32) are not used
      if (address) r.values.push(address)
    }
  }
  r.token = bytesField(d, 'token', { max: limits.maxToken })
  if (d.v !== undefined) r.v = d.v
  r.k = bytesField(d, 'k', { len: 32 })
  r.sig = bytesField(d, 'sig', { len: 64 })
  r.seq = intField(d, 'seq', 0, Number.MAX_SAFE_INTEGER)
  const ip = m.ip
  const seenAs = isBytes(ip) && ip.length === 6 ? unpackAddress(ip, 0) ?? undefined : undefined
  return { y: 'r', t, r, ip: seenAs }
}

function errorReply(m: Dict, t: Uint8Array, limits: typeof KRPC_LIMITS): ErrorReply {
  const e = m.e
  if (!Array.isArray(e) || e.length < 1 || typeof e[0] !== 'number') return wrong('e is not [code, message]')
  const message = e[1]
  const textOf = isBytes(message) ? Buffer.from(message.subarray(0, limits.maxErrorText)).toString('utf8') : ''
  return { y: 'e', t, code: e[0], text: textOf }
}

// ---- encoding ------------------------------------------------------------------------------------

export function encodeQuery(t: Uint8Array, q: Method, a: QueryArgs, ro = false): Uint8Array {
  const args: { [key: string]: BValue | undefined } = {
    id: a.id, target: a.target, info_hash: a.infoHash, token: a.token, v: a.v, k: a.k, sig: a.sig,
    salt: a.salt && a.salt.length ? a.salt : undefined, seq: a.seq, cas: a.cas,
  }
  if (q === 'announce_peer') { args.port = a.port ?? 0; args.implied_port = a.impliedPort ? 1 : 0 }
  const msg: { [key: string]: BValue | undefined } = { t, y: bytesOf('q'), q: bytesOf(q), a: args as Dict, v: VERSION }
  if (ro) msg.ro = 1
  return bencode.encode(msg as Dict)
}

export function encodeResponse(t: Uint8Array, r: Reply, askerAddress?: Address): Uint8Array {
  const reply: { [key: string]: BValue | undefined } = {
    id: r.id, token: r.token, v: r.v, k: r.k, sig: r.sig, seq: r.seq,
    nodes: r.nodes ? packNodes(r.nodes) : undefined,
    values: r.values ? r.values.map((a) => packAddress(a)).filter((p): p is Uint8Array => p !== null) : undefined,
  }
  const ip = askerAddress ? packAddress(askerAddress) ?? undefined : undefined
  return bencode.encode({ t, y: bytesOf('r'), r: reply as Dict, ip, v: VERSION } as Dict)
}

export function encodeError(t: Uint8Array, code: number, message: string): Uint8Array {
  return bencode.encode({ t, y: bytesOf('e'), e: [code, bytesOf(message)], v: VERSION })
}

const bytesOf = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'utf8'))

// ---- compact addresses (IPv4: 4 bytes of address, 2 of port) --------------------------------------

/** "a.b.c.d:port" from 6 bytes at `offset`; null for port 0 (not an address anyone listens on). */
export function unpackAddress(b: Uint8Array, offset: number): Address | null {
  const port = (b[offset + 4] << 8) | b[offset + 5]
  if (port === 0) return null
  return `${b[offset]}.${b[offset + 1]}.${b[offset + 2]}.${b[offset + 3]}:${port}`
}

/** 6 bytes for an IPv4 "a.b.c.d:port"; null for anything else (IPv6 is not carried here). */
export function packAddress(address: Address): Uint8Array | null {
  const colon = address.lastIndexOf(':')
  const host = address.slice(0, colon)
  const port = Number(address.slice(colon + 1))
  if (!isIPv4(host) || !Number.isInteger(port) || port < 1 || port > 65535) return null
  const out = new Uint8Array(6)
  const parts = host.split('.')
  for (let i = 0; i < 4; i++) out[i] = Number(parts[i])
  out[4] = port >> 8
  out[5] = port & 0xff
  return out
}

export function packNodes(nodes: CompactNode[]): Uint8Array {
  const out = new Uint8Array(nodes.length * 26)
  let n = 0
  for (const c of nodes) {
    const a = packAddress(c.address)
    if (!a || c.id.length !== ID_BYTES) continue
    out.set(c.id, n)
    out.set(a, n + ID_BYTES)
    n += 26
  }
  return n === out.length ? out : out.slice(0, n)
}

/** The IP part of an address ("1.2.3.4" of "1.2.3.4:5", "::1" of "[::1]:5"). */
export function hostOf(address: Address): string {
  const colon = address.lastIndexOf(':')
  const host = address.slice(0, colon)
  return host.startsWith('[') ? host.slice(1, -1) : host
}
