// Mainline's routing table: 160 k-buckets (bucket b holds the ids that share exactly b leading
// bits with ours), k = 8 as in BEP 5. Compact and bounded: a bucket is made at its first
// contact and holds its ids in one Uint8Array (k × 20 bytes), its addresses in one array and
// the times and failure counts in typed arrays; at most 160 × k contacts in all. Policy (which
// contact a full bucket gives up) is the owner's: it pings the least recently seen one.
import type { Address } from '../../wire/address.js'
import { ID_BYTES } from './krpc.js'

export const ID_BITS = ID_BYTES * 8

export interface MainlineContact { id: Uint8Array; address: Address }
export interface TableEntry extends MainlineContact { seenAt: number; failures: number }

class Bucket {
  readonly ids: Uint8Array
  readonly addresses: Address[] = []
  readonly seenAt: Float64Array
  readonly failures: Uint8Array
  n = 0
  /** Last lookup into this bucket's range (for refreshes). */
  touchedAt = -Infinity
  constructor(k: number) {
    this.ids = new Uint8Array(k * ID_BYTES)
    this.seenAt = new Float64Array(k)
    this.failures = new Uint8Array(k)
  }
  indexOf(id: Uint8Array): number {
    outer: for (let i = 0; i < this.n; i++) {
      const o = i * ID_BYTES
      for (let j = 0; j < ID_BYTES; j++) if (this.ids[o + j] !== id[j]) continue outer
      return i
    }
    return -1
  }
  id(i: number): Uint8Array { return this.ids.slice(i * ID_BYTES, (i + 1) * ID_BYTES) }
  entry(i: number): TableEntry {
    return { id: this.id(i), address: this.addresses[i], seenAt: this.seenAt[i], failures: this.failures[i] }
  }
  removeAt(i: number): void {
    const last = this.n - 1
    if (i !== last) {
      this.ids.copyWithin(i * ID_BYTES, last * ID_BYTES, (last + 1) * ID_BYTES)
      this.addresses[i] = this.addresses[last]
      this.seenAt[i] = this.seenAt[last]
      this.failures[i] = this.failures[last]
    }
    this.addresses.length = last
    this.n = last
  }
}

export function commonPrefixBits(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < ID_BYTES; i++) {
    const x = a[i] ^ b[i]
    if (x !== 0) return i * 8 + Math.clz32(x) - 24
  }
  return ID_BITS
}

/** Negative when `a` is nearer `target` than `b` by XOR. */
export function compareXor(target: Uint8Array, a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < ID_BYTES; i++) {
    const d = (a[i] ^ target[i]) - (b[i] ^ target[i])
    if (d !== 0) return d
  }
  return 0
}

/** A random id in bucket `b` of `self`: the first b bits of self, bit b flipped, the rest from `random`. */
export function randomIdInBucket(self: Uint8Array, b: number, random: Uint8Array): Uint8Array {
  const id = random.slice(0, ID_BYTES)
  const byte = b >> 3
  const bit = 0x80 >> (b & 7)
  for (let i = 0; i < byte; i++) id[i] = self[i]
  const keep = ~((bit << 1) - 1) & 0xff // self's bits above bit b in this byte
  id[byte] = (self[byte] & keep) | ((self[byte] & bit) ^ bit) | (id[byte] & (bit - 1))
  return id
}

export class KTable {
  private readonly buckets: (Bucket | undefined)[] = new Array(ID_BITS)
  private count = 0

  constructor(readonly self: Uint8Array, readonly k = 8, readonly maxFailures = 2) {}

  get size(): number { return this.count }

  bucketIndex(id: Uint8Array): number {
    return Math.min(commonPrefixBits(this.self, id), ID_BITS - 1)
  }

  /** Whether the bucket `id` falls in has room for it. */
  hasRoom(id: Uint8Array): boolean {
    return (this.buckets[this.bucketIndex(id)]?.n ?? 0) < this.k
  }

  has(id: Uint8Array): boolean {
    return (this.buckets[this.bucketIndex(id)]?.indexOf(id) ?? -1) >= 0
  }

  /**
   * A contact answered (or was otherwise proven live): refresh it, or add it when its bucket has
   * room. 'full' means the bucket had no room; the owner may free one with `oldest` and `remove`.
   */
  seen(id: Uint8Array, address: Address, now: number): 'added' | 'updated' | 'full' | 'self' {
    const b = this.bucketIndex(id)
    if (commonPrefixBits(this.self, id) === ID_BITS) return 'self'
    let bucket = this.buckets[b]
    const i = bucket?.indexOf(id) ?? -1
    if (bucket && i >= 0) {
      bucket.addresses[i] = address
      bucket.seenAt[i] = now
      bucket.failures[i] = 0
      return 'updated'
    }
    bucket ??= this.buckets[b] = new Bucket(this.k)
    if (bucket.n >= this.k) return 'full'
    const at = bucket.n++
    bucket.ids.set(id.subarray(0, ID_BYTES), at * ID_BYTES)
    bucket.addresses[at] = address
    bucket.seenAt[at] = now
    bucket.failures[at] = 0
    this.count++
    return 'added'
  }

  /** The least recently seen contact of the bucket `id` falls in (the one to ping when it is full). */
  oldest(id: Uint8Array): TableEntry | null {
    const bucket = this.buckets[this.bucketIndex(id)]
    if (!bucket || bucket.n === 0) return null
    let best = 0
    for (let i = 1; i < bucket.n; i++) if (bucket.seenAt[i] < bucket.seenAt[best]) best = i
    return bucket.entry(best)
  }

  /** A request to it failed; after maxFailures in a row it is removed (true). */
  failed(id: Uint8Array): boolean {
    const bucket = this.buckets[this.bucketIndex(id)]
    const i = bucket?.indexOf(id) ?? -1
    if (!bucket || i < 0) return false
    if (++bucket.failures[i] < this.maxFailures) return false
    bucket.removeAt(i)
    this.count--
    return true
  }

  remove(id: Uint8Array): boolean {
    const bucket = this.buckets[this.bucketIndex(id)]
    const i = bucket?.indexOf(id) ?? -1
    if (!bucket || i < 0) return false
    bucket.removeAt(i)
    this.count--
    return true
  }

  /**
   * The n known contacts nearest `target` by XOR, nearest first. Buckets are visited in distance
   * order, so only the few that can hold the answer are sorted: first the target's own bucket b,
   * then every deeper bucket (all at the same top distance bit, b), then b-1, b-2, ... .
   */
  closest(target: Uint8Array, n: number): MainlineContact[] {
    const out: MainlineContact[] = []
    const b = this.bucketIndex(target)
    const take = (group: MainlineContact[]): boolean => {
      group.sort((x, y) => compareXor(target, x.id, y.id))
      for (const c of group) { if (out.length >= n) break; out.push(c) }
      return out.length >= n
    }
    const from = (bucket: Bucket | undefined, into: MainlineContact[]): void => {
      if (bucket) for (let i = 0; i < bucket.n; i++) into.push({ id: bucket.id(i), address: bucket.addresses[i] })
    }
    const own: MainlineContact[] = []
    from(this.buckets[b], own)
    if (take(own)) return out
    const deeper: MainlineContact[] = []
    for (let j = b + 1; j < ID_BITS; j++) from(this.buckets[j], deeper)
    if (take(deeper)) return out
    for (let j = b - 1; j >= 0; j--) {
      const group: MainlineContact[] = []
      from(this.buckets[j], group)
      if (take(group)) return out
    }
    return out
  }

  entries(): TableEntry[] {
    const out: TableEntry[] = []
    for (const bucket of this.buckets) if (bucket) for (let i = 0; i < bucket.n; i++) out.push(bucket.entry(i))
    return out
  }

  /** A lookup went through bucket `b`'s range: it needs no refresh for a while. */
  touch(target: Uint8Array, now: number): void {
    const b = this.bucketIndex(target)
    ;(this.buckets[b] ??= new Bucket(this.k)).touchedAt = now
  }

  /** Buckets up to the deepest non-empty one that no lookup went through in `intervalMs`. */
  staleBuckets(now: number, intervalMs: number): number[] {
    let deepest = -1
    for (let b = 0; b < ID_BITS; b++) if (this.buckets[b]?.n) deepest = b
    const out: number[] = []
    for (let b = 0; b <= deepest; b++) if (now - (this.buckets[b]?.touchedAt ?? -Infinity) >= intervalMs) out.push(b)
    return out
  }
}
