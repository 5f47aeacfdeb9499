// Kademlia's k-buckets, packed: each bucket keeps its ids in one byte array and its addresses,
// last-seen times and failure counts in parallel arrays, least recently seen first.
import { commonPrefixLength, compareDistance, ID_BITS, ID_BYTES, idEquals, type NodeId } from '../../identity/node-id.js'
import type { Address } from '../../wire/address.js'
import type { Contact, TableEntry } from '../topology.js'

export class Bucket {
  readonly ids: Uint8Array
  readonly addresses: (Address | undefined)[]
  readonly seen: Float64Array
  readonly fails: Uint8Array
  count = 0
  /** Contacts that found the bucket full, newest last: they take the places of ones that fail. */
  replacements: Contact[] = []
  pinging = false
  touchedAt = 0

  constructor(readonly k: number) {
    this.ids = new Uint8Array(k * ID_BYTES)
    this.addresses = new Array(k)
    this.seen = new Float64Array(k)
    this.fails = new Uint8Array(k)
  }

  indexOf(id: Uint8Array): number {
    for (let i = 0; i < this.count; i++) if (idEquals(id, this.ids, i * ID_BYTES)) return i
    return -1
  }

  id(i: number): NodeId {
    return this.ids.slice(i * ID_BYTES, (i + 1) * ID_BYTES)
  }

  /** Moves entry i to the tail (most recently seen). */
  moveToTail(i: number): void {
    const last = this.count - 1
    if (i === last) return
    const id = this.ids.slice(i * ID_BYTES, (i + 1) * ID_BYTES)
    const addr = this.addresses[i], seen = this.seen[i], fails = this.fails[i]
    this.ids.copyWithin(i * ID_BYTES, (i + 1) * ID_BYTES, this.count * ID_BYTES)
    this.addresses.copyWithin(i, i + 1, this.count)
    this.seen.copyWithin(i, i + 1, this.count)
    this.fails.copyWithin(i, i + 1, this.count)
    this.ids.set(id, last * ID_BYTES)
    this.addresses[last] = addr; this.seen[last] = seen; this.fails[last] = fails
  }

  append(id: Uint8Array, address: Address, now: number): void {
    const i = this.count++
    this.ids.set(id.subarray(0, ID_BYTES), i * ID_BYTES)
    this.addresses[i] = address
    this.seen[i] = now
    this.fails[i] = 0
  }

  remove(i: number): void {
    this.moveToTail(i)
    this.count--
    this.addresses[this.count] = undefined
  }
}

export type TableEvent = { type: 'added' | 'removed'; contact: Contact }

export class RoutingTable {
  readonly buckets: (Bucket | undefined)[] = new Array(ID_BITS)
  private total = 0
  onEvent: (e: TableEvent) => void = () => {}
  /** Asks whether the least recently seen contact is alive: set by the owner (it sends a ping). */
  probe: (contact: Contact, done: (alive: boolean) => void) => void = (_c, done) => done(true)

  constructor(
    readonly self: NodeId,
    readonly k: number,
    private readonly maxFailures = 2,
    private readonly maxReplacements = 4,
    /** A contact seen this recently is taken to be alive without a ping. */
    private readonly freshMs = 15 * 60_000,
  ) {}

  get size(): number { return this.total }

  bucketIndex(id: Uint8Array): number {
    return Math.min(commonPrefixLength(this.self, id), ID_BITS - 1)
  }

  private bucketFor(id: Uint8Array, create: boolean): Bucket | undefined {
    const i = this.bucketIndex(id)
    let b = this.buckets[i]
    if (!b && create) b = this.buckets[i] = new Bucket(this.k)
    return b
  }

  /** A live message came from (id, address): refresh it, add it, or queue it behind a ping. */
  observe(id: NodeId, address: Address, now: number, proven = true): void {
    if (idEquals(id, this.self)) return
    const b = this.bucketFor(id, true)!
    const i = b.indexOf(id)
    if (i >= 0) {
      // Ids are only claimed: an unproven packet may not move a known contact to another address.
      if (b.addresses[i] !== address && !proven) return
      b.addresses[i] = address
      b.seen[i] = now
      b.fails[i] = 0
      b.moveToTail(i)
      return
    }
    if (b.count < this.k) {
      b.append(id, address, now)
      this.total++
      this.onEvent({ type: 'added', contact: { id: new Uint8Array(id), address } })
      return
    }
    // Full: keep the old contact unless it fails a ping (old contacts are the ones that stay up).
    const known = b.replacements.findIndex((r) => idEquals(r.id, id))
    if (known >= 0) b.replacements.splice(known, 1)
    b.replacements.push({ id: new Uint8Array(id), address })
    if (b.replacements.length > this.maxReplacements) b.replacements.shift()
    // Only a contact not heard from for a while is worth a ping (BEP 5's "questionable" node):
    // one seen recently is alive, and pinging it on every newcomer would double the traffic.
    if (b.pinging || now - b.seen[0] < this.freshMs) return
    b.pinging = true
    const head: Contact = { id: b.id(0), address: b.addresses[0]! }
    this.probe(head, (alive) => {
      b.pinging = false
      const j = b.indexOf(head.id)
      if (j < 0) return
      if (alive) { b.seen[j] = now; b.moveToTail(j); return }
      this.evict(b, j, now)
    })
  }

  /** A request to this contact went unanswered. */
  failed(id: NodeId, now: number): void {
    const b = this.bucketFor(id, false)
    if (!b) return
    const i = b.indexOf(id)
    if (i < 0) return
    b.fails[i]++
    if (b.replacements.length > 0 || b.fails[i] >= this.maxFailures) this.evict(b, i, now)
  }

  private evict(b: Bucket, i: number, now: number): void {
    const gone: Contact = { id: b.id(i), address: b.addresses[i]! }
    b.remove(i)
    this.total--
    this.onEvent({ type: 'removed', contact: gone })
    const r = b.replacements.pop()
    if (r) {
      b.append(r.id, r.address, now)
      this.total++
      this.onEvent({ type: 'added', contact: r })
    }
  }

  has(id: NodeId): boolean {
    const b = this.bucketFor(id, false)
    return !!b && b.indexOf(id) >= 0
  }

  /**
   * Up to n contacts nearest target by XOR distance. Buckets are visited nearest first, so only
   * a few are sorted: with c = cpl(self, target), bucket c holds the nearest, then buckets
   * deeper than c (all at distance with top bit c), then c-1, c-2, ... 0, each farther than the last.
   */
  closest(target: NodeId, n: number, exclude?: NodeId): Contact[] {
    const out: Contact[] = []
    const c = this.bucketIndex(target)
    const take = (group: { b: Bucket; i: number }[]): void => {
      group.sort((x, y) => compareDistance(target, x.b.ids, y.b.ids, x.i * ID_BYTES, y.i * ID_BYTES))
      for (const { b, i } of group) {
        if (out.length >= n) return
        out.push({ id: b.id(i), address: b.addresses[i]! })
      }
    }
    const gather = (from: number, to: number): { b: Bucket; i: number }[] => {
      const g: { b: Bucket; i: number }[] = []
      for (let j = from; j < to; j++) {
        const b = this.buckets[j]
        if (!b) continue
        for (let i = 0; i < b.count; i++) if (!exclude || !idEquals(exclude, b.ids, i * ID_BYTES)) g.push({ b, i })
      }
      return g
    }
    take(gather(c, c + 1))
    if (out.length < n) take(gather(c + 1, ID_BITS))
    for (let j = c - 1; j >= 0 && out.length < n; j--) take(gather(j, j + 1))
    return out
  }

  entries(now: number): TableEntry[] {
    const out: TableEntry[] = []
    this.buckets.forEach((b, index) => {
      if (!b) return
      for (let i = 0; i < b.count; i++) {
        out.push({ id: b.id(i), address: b.addresses[i]!, slot: `bucket ${index}`, lastSeenMs: Math.max(0, now - b.seen[i]), failures: b.fails[i] })
      }
    })
    return out
  }

  touch(index: number, now: number): void {
    const b = this.buckets[index]
    if (b) b.touchedAt = now
  }
}
