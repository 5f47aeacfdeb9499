// Routing-table diversity (S/Kademlia, libp2p's peer-diversity filter, libtorrent's
// restrict_routing_ips): a bucket takes at most a few contacts from one IP prefix, so that one
// operator with a few subnets cannot fill it however many ids it makes. IPv4 /24 and /16; IPv6
// /48 (a site) and /32 (a provider). Loopback, private and carrier-grade NAT addresses are exempt
// by default: a test, a LAN or a simulated world puts every node in one /24.
import { packAddress, type Address } from '../../wire/address.js'

export interface DiversityOptions {
  /** Contacts from one IPv4 /24 (IPv6 /48) in one bucket; 0: no limit. */
  perSlash24: number
  /** Contacts from one IPv4 /16 (IPv6 /32) in one bucket; 0: no limit. */
  perSlash16: number
  /** Loopback, private, link-local and unique-local addresses are not limited. */
  exemptPrivate: boolean
}

/**
 * libp2p allows 2 per /16 per bucket and libtorrent 1 per /24: 2 per /24 and 4 per /16 of a
 * 20-contact bucket keep one operator to a fifth of it while sparing NATed neighbours and clouds.
 */
export const defaultDiversity: DiversityOptions = { perSlash24: 2, perSlash16: 4, exemptPrivate: true }
/** A limit above k would never bite; this one bounds what a configuration may say. */
export const MAX_PER_PREFIX = 64

/**
 * The prefixes of an address as two numbers, written to out: [narrow, wide] (IPv4: /24, /16;
 * IPv6: /48, /32; the families' ranges do not overlap). False when the address is exempt or not
 * an IP address (then no limit applies to it).
 */
export function addressPrefixes(address: Address, exemptPrivate: boolean, out: Float64Array): boolean {
  let b: Uint8Array
  try {
    packAddress(address, scratch, 0)
    b = scratch
  } catch {
    return false
  }
  if (b[0] === 4) return ipv4Prefixes(b[1], b[2], b[3], exemptPrivate, out)
  // IPv4-mapped IPv6 (::ffff:a.b.c.d) is the IPv4 address.
  let zeros = 0
  while (zeros < 10 && b[1 + zeros] === 0) zeros++
  if (zeros === 10 && b[11] === 0xff && b[12] === 0xff) return ipv4Prefixes(b[13], b[14], b[15], exemptPrivate, out)
  if (exemptPrivate) {
    if ((b[1] & 0xfe) === 0xfc) return false // fc00::/7 unique local
    if (b[1] === 0xfe && (b[2] & 0xc0) === 0x80) return false // fe80::/10 link local
    let low = 0
    while (low < 15 && b[1 + low] === 0) low++
    if (low === 15 && b[16] <= 1) return false // ::1 and ::
  }
  const top32 = ((b[1] << 24) | (b[2] << 16) | (b[3] << 8) | b[4]) >>> 0
  out[0] = 2 ** 24 + top32 * 65536 + ((b[5] << 8) | b[6]) // 2^24 + 48 bits
  out[1] = 2 ** 16 + top32 // 2^16 + 32 bits
  return true
}

const scratch = new Uint8Array(19)

function ipv4Prefixes(a: number, b: number, c: number, exemptPrivate: boolean, out: Float64Array): boolean {
  if (exemptPrivate && isPrivateIpv4(a, b)) return false
  out[0] = (a << 16) | (b << 8) | c // below 2^24
  out[1] = (a << 8) | b // below 2^16
  return true
}

/** 127/8, 10/8, 172.16/12, 192.168/16, 169.254/16, 0/8 and the carrier-grade NAT space 100.64/10. */
function isPrivateIpv4(a: number, b: number): boolean {
  return a === 127 || a === 10 || a === 0 || (a === 172 && (b & 0xf0) === 16) || (a === 192 && b === 168) || (a === 169 && b === 254) || (a === 100 && (b & 0xc0) === 64)
}
