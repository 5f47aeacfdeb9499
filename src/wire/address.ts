// Transport addresses as strings ("1.2.3.4:5", "[::1]:5") and their packed wire form.
import { isIPv4, isIPv6 } from 'node:net'
import { WeftError } from '../errors.js'

export type Address = string

export interface HostPort {
  host: string
  port: number
}

/** Parses "host:port" or "[v6]:port"; throws ERR_BAD_ADDRESS with the reason. */
export function parseAddress(text: string): HostPort {
  const bracketed = /^\[([^\]]+)\]:(\d+)$/.exec(text)
  const m = bracketed ?? /^([^:[\]]+):(\d+)$/.exec(text)
  if (!m) throw new WeftError('ERR_BAD_ADDRESS', `not an address: ${JSON.stringify(text)} (expected HOST:PORT)`)
  const port = Number(m[2])
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new WeftError('ERR_BAD_ADDRESS', `bad port in address ${JSON.stringify(text)}`)
  }
  let host = m[1]
  if (host === 'localhost') host = '127.0.0.1'
  // Brackets hold IPv6 only: "[1.2.3.4]:5" would be sized as IPv6 but packed as IPv4.
  if (bracketed ? !isIPv6(host) : !isIPv4(host)) {
    throw new WeftError('ERR_BAD_ADDRESS', `not an IP address: ${JSON.stringify(host)} in ${JSON.stringify(text)}`)
  }
  return { host, port }
}

export function formatAddress(host: string, port: number): Address {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`
}

/** Bytes an address takes on the wire: family, IP and port. */
export function packedAddressSize(address: Address): number {
  return address.charCodeAt(0) === 91 /* [ */ ? 19 : 7
}

// Addresses repeat endlessly (every contact in every reply), so their packed form is cached.
const packedCache = new Map<Address, Uint8Array>()
const PACKED_CACHE_MAX = 8192

/** Packs "a.b.c.d:port" straight from its characters; false if it is not in that exact form. */
function packIpv4(address: Address, out: Uint8Array, offset: number): boolean {
  let part = 0, digits = 0, value = 0, leadingZero = false
  for (let i = 0; i < address.length; i++) {
    const c = address.charCodeAt(i)
    if (c >= 48 && c <= 57) {
      value = value * 10 + (c - 48)
      if (++digits === 1) leadingZero = c === 48
      if (digits > 5 || (part < 4 && (value > 255 || (digits > 1 && leadingZero)))) return false // no leading zeros
    } else if ((c === 46 && part < 3) || (c === 58 && part === 3)) {
      if (digits === 0) return false
      out[offset + 1 + part++] = value
      value = 0; digits = 0
    } else return false
  }
  if (part !== 4 || digits === 0 || value > 65535 || (digits > 1 && leadingZero)) return false
  out[offset] = 4
  out[offset + 5] = value >> 8
  out[offset + 6] = value & 0xff
  return true
}

function packed(address: Address): Uint8Array {
  let p = packedCache.get(address)
  if (p) return p
  const { host, port } = parseAddress(address)
  if (isIPv4(host)) {
    p = new Uint8Array(7)
    p[0] = 4
    const parts = host.split('.')
    for (let i = 0; i < 4; i++) p[1 + i] = Number(parts[i])
    p[5] = port >> 8
    p[6] = port & 0xff
  } else {
    p = new Uint8Array(19)
    p[0] = 6
    p.set(ipv6ToBytes(host), 1)
    p[17] = port >> 8
    p[18] = port & 0xff
  }
  if (packedCache.size >= PACKED_CACHE_MAX) packedCache.clear() // cheap bound; refills from use
  packedCache.set(address, p)
  return p
}

export function packAddress(address: Address, out: Uint8Array, offset: number): number {
  if (offset + 7 <= out.length && packIpv4(address, out, offset)) return offset + 7 // the common case, no lookup
  const p = packed(address)
  out.set(p, offset)
  return offset + p.length
}

function ipv6ToBytes(host: string): Uint8Array {
  const bytes = new Uint8Array(16)
  let text = host
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text) // "::ffff:1.2.3.4"
  if (v4) {
    const p = v4[1].split('.').map(Number)
    text = text.slice(0, -v4[1].length) + ((p[0] << 8) | p[1]).toString(16) + ':' + ((p[2] << 8) | p[3]).toString(16)
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined]
  const h = head ? head.split(':') : []
  const t = tail ? tail.split(':') : []
  const groups = tail === undefined ? h : [...h, ...new Array(8 - h.length - t.length).fill('0'), ...t]
  for (let i = 0; i < 8; i++) {
    const g = parseInt(groups[i], 16)
    bytes[i * 2] = g >> 8
    bytes[i * 2 + 1] = g & 0xff
  }
  return bytes
}

function bytesToIpv6(b: Uint8Array, offset: number): string {
  // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d) addresses in dotted form, as
  // Node's sockets report them, so an address learned from the wire equals the socket's.
  let zeros = 0
  while (zeros < 10 && b[offset + zeros] === 0) zeros++
  if (zeros === 10) {
    const w5 = (b[offset + 10] << 8) | b[offset + 11]
    const w6 = (b[offset + 12] << 8) | b[offset + 13]
    if (w5 === 0xffff || (w5 === 0 && w6 !== 0)) {
      return `::${w5 ? 'ffff:' : ''}${b[offset + 12]}.${b[offset + 13]}.${b[offset + 14]}.${b[offset + 15]}`
    }
  }
  const groups: string[] = []
  for (let i = 0; i < 8; i++) groups.push(((b[offset + i * 2] << 8) | b[offset + i * 2 + 1]).toString(16))
  // Compress the longest run of zero groups, as RFC 5952 asks.
  let best = -1, bestLen = 0
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') { i++; continue }
    let j = i
    while (j < 8 && groups[j] === '0') j++
    if (j - i > bestLen && j - i > 1) { best = i; bestLen = j - i }
    i = j
  }
  if (best < 0) return groups.join(':')
  return groups.slice(0, best).join(':') + '::' + groups.slice(best + bestLen).join(':')
}

/** The one text form of an address: what unpackAddress yields and Node's sockets report. */
export function canonicalAddress(address: Address): Address {
  const b = new Uint8Array(19)
  packAddress(address, b, 0)
  return unpackAddress(b, 0)[0]
}

/** Reads a packed address; returns [address, next offset] or throws ERR_BAD_MESSAGE / ERR_TRUNCATED. */
export function unpackAddress(b: Uint8Array, offset: number): [Address, number] {
  const address = readAddress(b, offset)
  return [address, offset + (b[offset] === 4 ? 7 : 19)]
}

/**
 * Reads a packed address (it takes 7 bytes for IPv4, 19 for IPv6, by its first byte); throws
 * ERR_BAD_MESSAGE / ERR_TRUNCATED. No tuple: decoding a reply reads 20 of these.
 */
export function readAddress(b: Uint8Array, offset: number): Address {
  const family = b[offset]
  if (family === 4) {
    if (offset + 7 > b.length) throw new WeftError('ERR_TRUNCATED', 'truncated IPv4 address')
    return ipv4Text(b, offset)
  }
  if (family === 6) {
    if (offset + 19 > b.length) throw new WeftError('ERR_TRUNCATED', 'truncated IPv6 address')
    const port = (b[offset + 17] << 8) | b[offset + 18]
    return `[${bytesToIpv6(b, offset + 1)}]:${port}`
  }
  if (offset >= b.length) throw new WeftError('ERR_TRUNCATED', 'truncated address')
  throw new WeftError('ERR_BAD_MESSAGE', `unknown address family ${family}`)
}

// The text of IPv4 addresses seen on the wire, in a direct-mapped cache keyed by their packed
// bits: the same addresses come back in every reply, and a string used before is built once and
// hashed once (the lookups and tables key maps and sets by it). A miss overwrites its slot, so
// the cache is bounded and a hit allocates nothing.
const OCTET = Array.from({ length: 256 }, (_, i) => String(i)) // no number-to-text per octet
let textIps = new Uint32Array(8192)
let textPorts = new Int32Array(8192).fill(-1) // -1: empty
let texts: Address[] = new Array<Address>(8192).fill('')
let textShift = 32 - 13 // the slot is the top bits of a multiplicative hash

/**
 * Slots in the cache of IPv4 address texts (default 8192, rounded up to a power of two). A
 * simulation of many nodes raises it to about its node count; a node has no need to.
 */
export function setAddressCacheSize(slots: number): void {
  const n = 2 ** Math.ceil(Math.log2(Math.max(256, Math.min(slots, 1 << 24))))
  if (n === texts.length) return
  textIps = new Uint32Array(n)
  textPorts = new Int32Array(n).fill(-1)
  texts = new Array<Address>(n).fill('')
  textShift = 32 - Math.log2(n)
}

function ipv4Text(b: Uint8Array, o: number): Address {
  const port = (b[o + 5] << 8) | b[o + 6]
  const ip = ((b[o + 1] << 24) | (b[o + 2] << 16) | (b[o + 3] << 8) | b[o + 4]) >>> 0
  const slot = Math.imul(ip ^ Math.imul(port, 0x85ebca6b), 0x9e3779b1) >>> textShift
  if (textIps[slot] === ip && textPorts[slot] === port) return texts[slot]
  const text = `${OCTET[b[o + 1]]}.${OCTET[b[o + 2]]}.${OCTET[b[o + 3]]}.${OCTET[b[o + 4]]}:${port}`
  textIps[slot] = ip
  textPorts[slot] = port
  texts[slot] = text
  return text
}
