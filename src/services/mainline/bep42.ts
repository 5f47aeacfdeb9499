// BEP 42 (DHT security extension): a node id's first 21 bits are fixed by its IP address, so
// one machine cannot pick ids wherever it likes. id[0..2] = top 21 bits of
// CRC32-C((ip & mask) | r << 29), id[19] = a random byte whose low 3 bits are r.
// Local addresses (loopback, private ranges, link-local) are exempt.
import { isIPv4, isIPv6 } from 'node:net'

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256)
  for (let i = 0; i < 256; i++) {
    let c = i
    for (let j = 0; j < 8; j++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1
    t[i] = c >>> 0
  }
  return t
})()

export function crc32c(bytes: Uint8Array): number {
  let c = 0xffffffff
  for (const b of bytes) c = CRC32C_TABLE[(c ^ b) & 0xff] ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

const V4_MASK = [0x03, 0x0f, 0x3f, 0xff]
const V6_MASK = [0x01, 0x03, 0x07, 0x0f, 0x1f, 0x3f, 0x7f, 0xff]

function ipBytes(ip: string): Uint8Array | null {
  if (isIPv4(ip)) return new Uint8Array(ip.split('.').map(Number))
  if (!isIPv6(ip)) return null
  // Expand "::" and read the first 8 bytes (all BEP 42 looks at).
  const [head, tail = ''] = ip.split('::')
  const h = head ? head.split(':') : []
  const t = ip.includes('::') && tail ? tail.split(':') : []
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t]
  const out = new Uint8Array(8)
  for (let i = 0; i < 4; i++) {
    const g = parseInt(groups[i] || '0', 16)
    out[i * 2] = g >> 8
    out[i * 2 + 1] = g & 0xff
  }
  return out
}

/** The 21-bit prefix (as a 32-bit number, low 11 bits zero) an id must have for `ip` and `r`. */
function prefixFor(ip: Uint8Array, r: number): number {
  const mask = ip.length === 4 ? V4_MASK : V6_MASK
  const masked = new Uint8Array(ip.length)
  for (let i = 0; i < ip.length; i++) masked[i] = ip[i] & mask[i]
  masked[0] |= (r & 7) << 5
  return crc32c(masked) & 0xfffff800
}

/** Whether BEP 42 leaves `ip` alone: loopback, private, link-local (and unique-local IPv6). */
export function isBep42Exempt(ip: string): boolean {
  if (isIPv4(ip)) {
    const [a, b] = ip.split('.').map(Number)
    return a === 10 || a === 127 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254)
  }
  const lower = ip.toLowerCase()
  return lower === '::1' || lower.startsWith('fc') || lower.startsWith('fd') || lower.startsWith('fe80')
}

/** A BEP 42 id for `ip`; `random` gives the 17 free bytes' values (20 bytes are read). */
export function bep42Id(ip: string, random: Uint8Array): Uint8Array {
  const bytes = ipBytes(ip)
  const id = random.slice(0, 20)
  if (!bytes) return id
  const prefix = prefixFor(bytes, id[19])
  id[0] = prefix >>> 24
  id[1] = (prefix >>> 16) & 0xff
  id[2] = ((prefix >>> 8) & 0xf8) | (id[2] & 0x07)
  return id
}

/** Whether `id` is a valid BEP 42 id for `ip` (always true for exempt addresses). */
export function bep42Valid(id: Uint8Array, ip: string): boolean {
  if (isBep42Exempt(ip)) return true
  const bytes = ipBytes(ip)
  if (!bytes || id.length !== 20) return false
  const prefix = prefixFor(bytes, id[19])
  return id[0] === prefix >>> 24 && id[1] === ((prefix >>> 16) & 0xff) && (id[2] & 0xf8) === ((prefix >>> 8) & 0xf8)
}
