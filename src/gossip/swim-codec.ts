// The bytes of a SWIM message, for a real transport (the simulator passes the objects). It is the
// payload that follows the 40-byte Weft header under a message type of its own (not yet given a
// number in wire/messages.ts: SWIM runs in the simulator for now; docs/gossip.md). Members are
// handles inside Swim; on the wire they are (id, address), and the host's resolver maps back.
//
//   u8 type (1 PING, 2 ACK, 3 PING_REQ, 4 NACK, 5 GOSSIP) | u32 seq | PING, PING_REQ: target id (32) + address
//   u8 n (<= MAX_PIGGYBACK) | n updates:
//     u8 kind (1 ALIVE, 2 SUSPECT, 3 DEAD; 0x80 on DEAD: the member left) | u32 incarnation
//     member id (32) + packed address | SUSPECT only: the suspector's id (32)
import { WeftError } from '../errors.js'
import { ID_BYTES, type NodeId } from '../identity/node-id.js'
import { HEADER_BYTES, MAX_PACKET } from '../wire/messages.js'
import { packAddress, packedAddressSize, unpackAddress, type Address } from '../wire/address.js'
import { MAX_PIGGYBACK, SwimType, UpdateKind, type SwimMessage, type SwimUpdate } from './swim.js'

/** Bytes a SWIM payload may take: a datagram less the Weft header. */
export const MAX_SWIM_PAYLOAD = MAX_PACKET - HEADER_BYTES
const MAX_ADDRESS = 19
const LEFT = 0x80
/** Largest update on the wire (a SUSPECT of an IPv6 member). */
export const MAX_UPDATE_BYTES = 1 + 4 + ID_BYTES + MAX_ADDRESS + ID_BYTES
/** Largest message head (a PING_REQ to an IPv6 member), before the updates. */
export const MAX_HEAD_BYTES = 1 + 4 + ID_BYTES + MAX_ADDRESS + 1

export interface SwimContact { id: NodeId; address: Address }
/** Handle -> (id, address), for encoding. */
export type ContactOf = (handle: number) => SwimContact
/** (id, address or null when only the id travels) -> handle, for decoding; may throw to refuse. */
export type HandleOf = (id: NodeId, address: Address | null) => number

function hasTarget(m: SwimMessage): m is SwimMessage & { target: number } {
  return m.type === SwimType.PING || m.type === SwimType.PING_REQ
}

export function swimEncodedSize(m: SwimMessage, contactOf: ContactOf): number {
  let n = 1 + 4 + 1
  if (hasTarget(m)) n += ID_BYTES + packedAddressSize(contactOf(m.target).address)
  for (const u of m.updates) n += 1 + 4 + ID_BYTES + packedAddressSize(contactOf(u.member).address) + (u.kind === UpdateKind.SUSPECT ? ID_BYTES : 0)
  return n
}

export function encodeSwim(m: SwimMessage, contactOf: ContactOf): Uint8Array {
  if (m.updates.length > MAX_PIGGYBACK) throw new WeftError('ERR_TOO_LARGE', `${m.updates.length} updates exceed ${MAX_PIGGYBACK}`)
  const size = swimEncodedSize(m, contactOf)
  if (size > MAX_SWIM_PAYLOAD) throw new WeftError('ERR_TOO_LARGE', `SWIM message of ${size} bytes exceeds ${MAX_SWIM_PAYLOAD}`)
  const b = new Uint8Array(size)
  const dv = new DataView(b.buffer)
  let o = 0
  b[o++] = m.type
  dv.setUint32(o, m.seq >>> 0); o += 4
  const contact = (h: number): void => {
    const c = contactOf(h)
    if (c.id.length !== ID_BYTES) throw new WeftError('ERR_BAD_ARGUMENT', `member id must be ${ID_BYTES} bytes`)
    b.set(c.id, o); o += ID_BYTES
    o = packAddress(c.address, b, o)
  }
  if (hasTarget(m)) contact(m.target)
  b[o++] = m.updates.length
  for (const u of m.updates) {
    b[o++] = u.kind | (u.kind === UpdateKind.DEAD && u.from === u.member ? LEFT : 0)
    dv.setUint32(o, u.incarnation >>> 0); o += 4
    contact(u.member)
    if (u.kind === UpdateKind.SUSPECT) { b.set(contactOf(u.from).id, o); o += ID_BYTES }
  }
  return b
}

export function decodeSwim(b: Uint8Array, handleOf: HandleOf): SwimMessage {
  if (b.length > MAX_SWIM_PAYLOAD) throw new WeftError('ERR_TOO_LARGE', `SWIM message of ${b.length} bytes exceeds ${MAX_SWIM_PAYLOAD}`)
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength)
  let o = 0
  const need = (n: number): void => { if (o + n > b.length) throw new WeftError('ERR_TRUNCATED', 'SWIM message ends early') }
  const id = (): NodeId => { need(ID_BYTES); const x = b.slice(o, o + ID_BYTES); o += ID_BYTES; return x }
  const contact = (): number => {
    const i = id()
    need(1)
    let address: Address, next: number
    try { [address, next] = unpackAddress(b, o) } catch (err) { throw new WeftError('ERR_BAD_MESSAGE', `SWIM contact address: ${(err as Error).message}`) }
    o = next
    return handleOf(i, address)
  }
  need(5)
  const type = b[o++]
  if (type < SwimType.PING || type > SwimType.GOSSIP) throw new WeftError('ERR_BAD_MESSAGE', `unknown SWIM message type ${type}`)
  const seq = dv.getUint32(o); o += 4
  const target = type === SwimType.PING || type === SwimType.PING_REQ ? contact() : -1
  need(1)
  const n = b[o++]
  if (n > MAX_PIGGYBACK) throw new WeftError('ERR_BAD_MESSAGE', `${n} updates exceed ${MAX_PIGGYBACK}`)
  const updates: SwimUpdate[] = []
  for (let i = 0; i < n; i++) {
    need(5)
    const k = b[o++]
    const kind = (k & ~LEFT) as UpdateKind
    if (kind < UpdateKind.ALIVE || kind > UpdateKind.DEAD || ((k & LEFT) && kind !== UpdateKind.DEAD)) throw new WeftError('ERR_BAD_MESSAGE', `bad SWIM update kind 0x${k.toString(16)}`)
    const incarnation = dv.getUint32(o); o += 4
    const member = contact()
    const from = kind === UpdateKind.SUSPECT ? handleOf(id(), null) : kind === UpdateKind.DEAD && !(k & LEFT) ? -1 : member
    updates.push({ kind, incarnation, member, from })
  }
  if (o !== b.length) throw new WeftError('ERR_BAD_MESSAGE', `${b.length - o} trailing bytes after a SWIM message`)
  if (type === SwimType.PING || type === SwimType.PING_REQ) return { type, seq, target, updates }
  return { type: type as typeof SwimType.ACK | typeof SwimType.NACK | typeof SwimType.GOSSIP, seq, updates }
}
