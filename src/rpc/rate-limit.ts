// Per-source token buckets, in the rpc's bounded peer table so that many sources cannot grow memory.
import type { Address } from '../wire/address.js'
import { Field, PeerTable } from './peer-table.js'

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
