// Signed peer records: "this key is reachable at these addresses", with a sequence number so
// that a newer record replaces an older one. The id is derived from the key, never trusted.
import { WeftError } from '../errors.js'
import { packAddress, packedAddressSize, unpackAddress, type Address } from '../wire/address.js'
import { signBytes, verifyBytes, type Identity } from './keys.js'
import { idFromPublicKey, type NodeId } from './node-id.js'

const RECORD_VERSION = 1
const DOMAIN = Buffer.from('weft peer record v1\0') // signatures over records mean nothing elsewhere
export const MAX_RECORD_ADDRESSES = 8

export interface PeerRecord {
  id: NodeId
  publicKey: Uint8Array
  addresses: Address[]
  seq: number
  signature: Uint8Array
}

function body(publicKey: Uint8Array, addresses: Address[], seq: number): Uint8Array {
  if (addresses.length > MAX_RECORD_ADDRESSES) throw new WeftError('ERR_TOO_LARGE', `a peer record holds at most ${MAX_RECORD_ADDRESSES} addresses`)
  if (!Number.isSafeInteger(seq) || seq < 0) throw new WeftError('ERR_BAD_ARGUMENT', 'seq must be a non-negative safe integer')
  let size = 1 + 32 + 8 + 1
  for (const a of addresses) size += packedAddressSize(a)
  const b = new Uint8Array(size)
  b[0] = RECORD_VERSION
  b.set(publicKey, 1)
  new DataView(b.buffer).setBigUint64(33, BigInt(seq))
  b[41] = addresses.length
  let o = 42
  for (const a of addresses) o = packAddress(a, b, o)
  return b
}

export function signPeerRecord(identity: Identity, addresses: Address[], seq: number): PeerRecord {
  const signature = signBytes(identity, Buffer.concat([DOMAIN, body(identity.publicKey, addresses, seq)]))
  return { id: identity.id, publicKey: identity.publicKey, addresses: addresses.slice(), seq, signature }
}

export function verifyPeerRecord(r: PeerRecord): boolean {
  try {
    return verifyBytes(r.publicKey, Buffer.concat([DOMAIN, body(r.publicKey, r.addresses, r.seq)]), r.signature)
  } catch {
    return false
  }
}

export function encodePeerRecord(r: PeerRecord): Uint8Array {
  return Buffer.concat([body(r.publicKey, r.addresses, r.seq), r.signature])
}

/** Decodes and verifies; a record that fails its signature is ERR_BAD_SIGNATURE. */
export function decodePeerRecord(b: Uint8Array): PeerRecord {
  if (b.length < 42 + 64) throw new WeftError('ERR_TRUNCATED', 'peer record too short')
  if (b[0] !== RECORD_VERSION) throw new WeftError('ERR_VERSION', `peer record version ${b[0]} is not supported`)
  const publicKey = b.slice(1, 33)
  const seqBig = new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(33)
  if (seqBig > BigInt(Number.MAX_SAFE_INTEGER)) throw new WeftError('ERR_BAD_MESSAGE', 'peer record seq out of range')
  const count = b[41]
  if (count > MAX_RECORD_ADDRESSES) throw new WeftError('ERR_BAD_MESSAGE', 'too many addresses in peer record')
  const addresses: Address[] = []
  let o = 42
  for (let i = 0; i < count; i++) {
    const [a, next] = unpackAddress(b, o)
    addresses.push(a)
    o = next
  }
  if (b.length !== o + 64) throw new WeftError('ERR_BAD_MESSAGE', 'peer record has the wrong length')
  const r: PeerRecord = { id: idFromPublicKey(publicKey), publicKey, addresses, seq: Number(seqBig), signature: b.slice(o) }
  if (!verifyPeerRecord(r)) throw new WeftError('ERR_BAD_SIGNATURE', 'peer record signature does not verify')
  return r
}
