// Pub-sub messages on the wire (the payload of a Plumtree GOSSIP, spec/wire.md 3.16): signed by
// their author (Ed25519), bound to one topic, and on a restricted topic carrying the owner's signed
// authorization of the author. A strict codec: anything malformed is a coded error.
import { createHash } from 'node:crypto'
import { WeftError } from '../../errors.js'
import { signBytes, verifyBytes, type Identity } from '../../identity/keys.js'
import { CHANNEL_BYTES, MAX_BROADCAST_PAYLOAD } from '../../wire/messages.js'

export const PUBSUB_VERSION = 1
export const MAX_TOPIC_BYTES = 200
const KEY_BYTES = 32
const SIG_BYTES = 64
const TIME_BYTES = 6
const AUTH_BYTES = TIME_BYTES + SIG_BYTES
/** version, flags, topic, author, time, nonce, data length ... signature. */
const FIXED_BYTES = 1 + 1 + CHANNEL_BYTES + KEY_BYTES + TIME_BYTES + 4 + 2 + SIG_BYTES
/** Data bytes one message may carry: what fits one GOSSIP with an authorization. */
export const MAX_PUBSUB_DATA = MAX_BROADCAST_PAYLOAD - FIXED_BYTES - AUTH_BYTES
const FLAG_AUTHORIZED = 0x01

const MESSAGE_DOMAIN = Buffer.from('weft-pubsub-message-v1\0')
const AUTH_DOMAIN = Buffer.from('weft-pubsub-authorization-v1\0')
const TOPIC_DOMAIN = Buffer.from('weft-pubsub-topic-v1\0')

export interface PubSubMessage {
  /** The topic id (SHA-256 of the name and, for a restricted topic, its owner key). */
  topic: Uint8Array
  author: Uint8Array
  /** The author's wall clock at publishing (unix ms). */
  time: number
  nonce: number
  data: Uint8Array
  /** On a restricted topic: until when the owner authorized the author, and the owner's signature. */
  authorization: { expiresAt: number; signature: Uint8Array } | null
  signature: Uint8Array
}

/** An owner's grant to one publisher on one restricted topic (134 bytes; hex for people). */
export interface Authorization {
  topic: Uint8Array
  publisher: Uint8Array
  expiresAt: number
  signature: Uint8Array
}

/** A topic's id: open topics by name; restricted ones by name and owner key (a different id from the open one). */
export function topicId(name: string, owner?: Uint8Array | null): Uint8Array {
  const bytes = Buffer.from(name, 'utf8')
  if (bytes.length === 0 || bytes.length > MAX_TOPIC_BYTES) throw new WeftError('ERR_BAD_ARGUMENT', `a topic name is 1..${MAX_TOPIC_BYTES} bytes of UTF-8, got ${bytes.length}`)
  if (owner && owner.length !== KEY_BYTES) throw new WeftError('ERR_BAD_KEY', 'a topic owner key is 32 bytes (64 hex digits)')
  const h = createHash('sha256').update(TOPIC_DOMAIN)
  h.update(owner ? Uint8Array.of(1) : Uint8Array.of(0))
  if (owner) h.update(owner)
  return new Uint8Array(h.update(bytes).digest())
}

function writeU48(b: Uint8Array, o: number, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0 || v >= 2 ** 48) throw new WeftError('ERR_BAD_ARGUMENT', 'a time must fit 48 bits')
  const hi = Math.floor(v / 0x100000000)
  b[o] = hi >> 8; b[o + 1] = hi & 0xff
  new DataView(b.buffer, b.byteOffset).setUint32(o + 2, v >>> 0)
}
function readU48(b: Uint8Array, o: number): number {
  return ((b[o] << 8) | b[o + 1]) * 0x100000000 + new DataView(b.buffer, b.byteOffset).getUint32(o + 2)
}

function authBytes(topic: Uint8Array, publisher: Uint8Array, expiresAt: number): Uint8Array {
  const b = new Uint8Array(AUTH_DOMAIN.length + CHANNEL_BYTES + KEY_BYTES + TIME_BYTES)
  b.set(AUTH_DOMAIN)
  b.set(topic, AUTH_DOMAIN.length)
  b.set(publisher, AUTH_DOMAIN.length + CHANNEL_BYTES)
  writeU48(b, AUTH_DOMAIN.length + CHANNEL_BYTES + KEY_BYTES, expiresAt)
  return b
}

/** The owner (its identity) authorizes `publisher` to publish on the restricted topic until `expiresAt`. */
export function authorize(owner: Identity, topic: Uint8Array, publisher: Uint8Array, expiresAt: number): Authorization {
  if (publisher.length !== KEY_BYTES) throw new WeftError('ERR_BAD_KEY', 'a publisher key is 32 bytes (64 hex digits)')
  return { topic: new Uint8Array(topic), publisher: new Uint8Array(publisher), expiresAt, signature: signBytes(owner, authBytes(topic, publisher, expiresAt)) }
}

export function encodeAuthorization(a: Authorization): Uint8Array {
  const b = new Uint8Array(CHANNEL_BYTES + KEY_BYTES + AUTH_BYTES)
  b.set(a.topic); b.set(a.publisher, CHANNEL_BYTES)
  writeU48(b, CHANNEL_BYTES + KEY_BYTES, a.expiresAt)
  b.set(a.signature, CHANNEL_BYTES + KEY_BYTES + TIME_BYTES)
  return b
}

export function decodeAuthorization(b: Uint8Array): Authorization {
  if (b.length !== CHANNEL_BYTES + KEY_BYTES + AUTH_BYTES) throw new WeftError('ERR_BAD_ARGUMENT', `an authorization is ${CHANNEL_BYTES + KEY_BYTES + AUTH_BYTES} bytes`)
  return {
    topic: b.slice(0, CHANNEL_BYTES), publisher: b.slice(CHANNEL_BYTES, CHANNEL_BYTES + KEY_BYTES),
    expiresAt: readU48(b, CHANNEL_BYTES + KEY_BYTES), signature: b.slice(CHANNEL_BYTES + KEY_BYTES + TIME_BYTES),
  }
}

export function verifyAuthorization(owner: Uint8Array, a: Authorization): boolean {
  return verifyBytes(owner, authBytes(a.topic, a.publisher, a.expiresAt), a.signature)
}

/** Builds and signs a message. */
export function signMessage(author: Identity, topic: Uint8Array, data: Uint8Array, time: number, nonce: number, authorization: Authorization | null): Uint8Array {
  if (data.length > MAX_PUBSUB_DATA) throw new WeftError('ERR_TOO_LARGE', `a pub-sub message carries at most ${MAX_PUBSUB_DATA} bytes, got ${data.length}`)
  const size = FIXED_BYTES + data.length + (authorization ? AUTH_BYTES : 0)
  const b = new Uint8Array(size)
  let o = 0
  b[o++] = PUBSUB_VERSION
  b[o++] = authorization ? FLAG_AUTHORIZED : 0
  b.set(topic, o); o += CHANNEL_BYTES
  b.set(author.publicKey, o); o += KEY_BYTES
  writeU48(b, o, time); o += TIME_BYTES
  new DataView(b.buffer).setUint32(o, nonce >>> 0); o += 4
  b[o++] = data.length >> 8; b[o++] = data.length & 0xff
  b.set(data, o); o += data.length
  if (authorization) {
    writeU48(b, o, authorization.expiresAt); o += TIME_BYTES
    b.set(authorization.signature, o); o += SIG_BYTES
  }
  b.set(signBytes(author, signedPart(b.subarray(0, o))), o)
  return b
}

function signedPart(body: Uint8Array): Uint8Array {
  const b = new Uint8Array(MESSAGE_DOMAIN.length + body.length)
  b.set(MESSAGE_DOMAIN)
  b.set(body, MESSAGE_DOMAIN.length)
  return b
}

/** Decodes a message without checking signatures (see verifyMessage). Never throws. */
export function decodeMessage(b: Uint8Array): { ok: true; message: PubSubMessage } | { ok: false; error: WeftError } {
  const bad = (why: string) => ({ ok: false as const, error: new WeftError('ERR_BAD_MESSAGE', `pub-sub message: ${why}`) })
  if (b.length < FIXED_BYTES) return bad('truncated')
  if (b[0] !== PUBSUB_VERSION) return bad(`version ${b[0]} is not ${PUBSUB_VERSION}`)
  const flags = b[1]
  if (flags & ~FLAG_AUTHORIZED) return bad(`reserved flag bits 0x${flags.toString(16)}`)
  let o = 2
  const topic = b.subarray(o, o + CHANNEL_BYTES); o += CHANNEL_BYTES
  const author = b.subarray(o, o + KEY_BYTES); o += KEY_BYTES
  const time = readU48(b, o); o += TIME_BYTES
  const nonce = new DataView(b.buffer, b.byteOffset).getUint32(o); o += 4
  const len = (b[o] << 8) | b[o + 1]; o += 2
  if (len > MAX_PUBSUB_DATA) return bad(`${len} data bytes exceed ${MAX_PUBSUB_DATA}`)
  const authorized = (flags & FLAG_AUTHORIZED) !== 0
  if (b.length !== FIXED_BYTES + len + (authorized ? AUTH_BYTES : 0)) return bad('length does not match its fields')
  const data = b.subarray(o, o + len); o += len
  let authorization: PubSubMessage['authorization'] = null
  if (authorized) {
    authorization = { expiresAt: readU48(b, o), signature: b.subarray(o + TIME_BYTES, o + AUTH_BYTES) }
    o += AUTH_BYTES
  }
  return { ok: true, message: { topic, author, time, nonce, data, authorization, signature: b.subarray(o, o + SIG_BYTES) } }
}

/**
 * Checks a decoded message: the author's signature over it, and on a restricted topic (owner given)
 * the owner's authorization of the author, unexpired at `now`. Returns an error code or null.
 */
export function verifyMessage(b: Uint8Array, m: PubSubMessage, owner: Uint8Array | null, now: number): 'ERR_BAD_SIGNATURE' | 'ERR_UNAUTHORIZED' | 'ERR_EXPIRED' | null {
  if (owner) {
    if (!m.authorization) return 'ERR_UNAUTHORIZED'
    if (m.authorization.expiresAt < now) return 'ERR_EXPIRED'
    if (!verifyBytes(owner, authBytes(m.topic, m.author, m.authorization.expiresAt), m.authorization.signature)) return 'ERR_UNAUTHORIZED'
  } else if (m.authorization) return 'ERR_UNAUTHORIZED' // an open topic carries none
  if (!verifyBytes(m.author, signedPart(b.subarray(0, b.length - SIG_BYTES)), m.signature)) return 'ERR_BAD_SIGNATURE'
  return null
}
