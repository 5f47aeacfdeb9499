// Per-address state of the rpc layer in ONE bounded table: the rate-limit bucket, the RTT
// estimate, the token the peer gave us and the token we issued it. The numbers live in one
// Float64Array (no object and no boxed number per peer), the addresses in one Map to a slot;
// when full, slots are reused by a clock (second-chance) sweep, so a hit never moves anything.
import type { Address } from '../wire/address.js'

export const enum Field { RATE_TOKENS, RATE_AT, SRTT, RTTVAR, HELD_TOKEN, ISSUED_TOKEN, ISSUED_EPOCH, COUNT }

const NO_FIELDS = new Float64Array(0)
const NO_FLAGS = new Uint8Array(0)
const NO_INDEX: ReadonlyMap<Address, number> = new Map()

export class PeerTable {
  // Nothing is allocated until the first peer: a simulated node that never talks costs little.
  private index = NO_INDEX as Map<Address, number>
  private keys: (Address | undefined)[] = []
  f = NO_FIELDS
  private used = NO_FLAGS
  private cap = 0
  private hand = 0

  constructor(readonly capacity: number) {}

  get size(): number { return this.index.size }

  /** The slot of `a`, or -1. */
  find(a: Address): number {
    const i = this.index.get(a)
    if (i === undefined) return -1
    this.used[i] = 1
    return i
  }

  /** The slot of `a`, taking one (fields NaN) if it has none. */
  slot(a: Address): number {
    let i = this.index.get(a)
    if (i !== undefined) { this.used[i] = 1; return i }
    if (this.index.size >= this.cap && this.cap < this.capacity) this.grow()
    if (this.index.size < this.cap) {
      i = this.index.size // slots stay dense: one is only reused when the table is full
    } else {
      while (this.used[this.hand]) { this.used[this.hand] = 0; this.hand = (this.hand + 1) % this.cap }
      i = this.hand
      this.hand = (this.hand + 1) % this.cap
      this.index.delete(this.keys[i]!)
    }
    this.keys[i] = a
    this.index.set(a, i)
    this.used[i] = 1
    this.f.fill(NaN, i * Field.COUNT, (i + 1) * Field.COUNT)
    return i
  }

  private grow(): void {
    if (this.index === NO_INDEX) this.index = new Map()
    const cap = Math.min(this.capacity, Math.max(4, this.cap * 2))
    const f = new Float64Array(cap * Field.COUNT).fill(NaN)
    f.set(this.f)
    const used = new Uint8Array(cap)
    used.set(this.used)
    this.f = f
    this.used = used
    this.cap = cap
  }
}
