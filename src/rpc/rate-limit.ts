// Per-source token buckets, in the rpc's bounded peer table so that many sources cannot grow memory.
import { packAddress, type Address } from '../wire/address.js'
import { Field, PeerTable } from './peer-table.js'

/**
 * The key one host's sources share: the IPv4 address, or an IPv6 address's /64 (one subscriber's
 * usual assignment), so that many ports, or many addresses of one /64, count as one source.
 */
export function hostKey(address: Address): string {
  // IPv4, and IPv4 mapped into IPv6 ("[::ffff:1.2.3.4]:5"): the host.
  if (address.charCodeAt(0) !== 91 || address.includes('.')) return address.slice(0, address.lastIndexOf(':'))
  const b = new Uint8Array(19)
  try { packAddress(address, b, 0) } catch { return address }
  return Buffer.from(b.subarray(1, 9)).toString('hex') + '/64'
}

/** Whether an address is on the loopback interface (127/8, ::1). */
export function isLoopback(address: Address): boolean {
  return address.startsWith('127.') || address.startsWith('[::1]:')
}

export class RateLimiter {
  constructor(private readonly perSecond: number, private readonly burst: number, private readonly table: PeerTable) {}
  /** Takes one token for `source` at time `now` (ms); false when its bucket is empty. */
  allow(source: Address, now: number): boolean {
    return this.allowAt(this.table.slot(source), now)
  }

  /** allow() for a source whose peer-table slot the caller already holds. */
  allowAt(slot: number, now: number): boolean {
    const o = slot * Field.COUNT
    const f = this.table.f
    let tokens = f[o + Field.RATE_TOKENS]
    if (tokens !== tokens) tokens = this.burst // NaN: a new source
    else tokens = Math.min(this.burst, tokens + ((now - f[o + Field.RATE_AT]) * this.perSecond) / 1000)
    f[o + Field.RATE_AT] = now
    if (tokens < 1) { f[o + Field.RATE_TOKENS] = tokens; return false }
    f[o + Field.RATE_TOKENS] = tokens - 1
    return true
  }
}
