// Per-source token buckets, in a bounded table so that many sources cannot grow memory.
import { LruMap } from '../util/lru.js'
import type { Address } from '../wire/address.js'

interface Bucket { tokens: number; at: number }

export class RateLimiter {
  private readonly buckets: LruMap<Address, Bucket>
  constructor(private readonly perSecond: number, private readonly burst: number, capacity: number) {
    this.buckets = new LruMap(capacity)
  }
  /** Takes one token for `source` at time `now` (ms); false when its bucket is empty. */
  allow(source: Address, now: number): boolean {
    let b = this.buckets.get(source)
    if (!b) { b = { tokens: this.burst, at: now }; this.buckets.set(source, b) }
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) * this.perSecond) / 1000)
    b.at = now
    if (b.tokens < 1) return false
    b.tokens -= 1
    return true
  }
}
