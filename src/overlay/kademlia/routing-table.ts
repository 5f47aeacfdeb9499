// Kademlia's k-buckets, packed into one typed array per table so that a node costs a few
// kilobytes (a million of them fit in memory in the simulator). Contacts are handles into a
// ContactPool; the table keeps, bucket after bucket, two words per contact:
//   [pool handle, last seen in seconds * 64 + failed requests]
// least recently seen first within each bucket.
import { commonPrefixLength, compareDistance, ID_BITS, ID_BYTES, idEquals, type NodeId } from '../../identity/node-id.js'
import type { Address } from '../../wire/address.js'
import { heapArena, type Arena } from '../arena.js'
import { ContactPool } from '../contact-pool.js'
import type { Contact, TableEntry } from '../topology.js'
import { addressPrefixes, type DiversityOptions } from './diversity.js'

const WORDS = 2
const MAX_FAILS = 63 // failures share a word with the time, in its low 6 bits

// Shared defaults: a closure per table would cost bytes on each of a million simulated nodes.
const ignore = (): void => {}
const EMPTY = new Uint32Array(0) // shared by empty tables; never written
// A bucket's touched word: the time of the last lookup in it (seconds, low 30 bits) and two flags.
/** A failure took the bucket's last contact; a lookup there clears it. */
const EMPTIED = 0x80000000
/** A lookup (or a fill) has covered the bucket at least once. */
const SEARCHED = 0x40000000
const TIME = 0x3fffffff
const assumeAlive = (_c: Contact, done: (alive: boolean) => void): void => done(true)
// Prefixes of the newcomer and of each contact it is compared with (one table works at a time).
const NEW_PREFIX = new Float64Array(2)
const OLD_PREFIX = new Float64Array(2)

/** Who may enter the table: ids that pass a check (the crypto puzzle) and a diversity limit. */
export interface Admission {
  acceptId?: ((id: NodeId) => boolean) | null
  diversity?: DiversityOptions | null
}

export type TableEvent = { type: 'added' | 'removed'; contact: Contact }

export class RoutingTable {
  private data: Uint32Array = EMPTY
  /** Per bucket: [end offset in contacts, last lookup in seconds]; buckets past the last are empty. */
  private meta: Uint32Array = EMPTY
  private total = 0
  private pinging: Set<number> | null = null
  /** Contacts that found their bucket full, newest last: they take the places of ones that fail. */
  private replacements: Map<number, number[]> | null = null
  onEvent: (e: TableEvent) => void = ignore
  private acceptId: ((id: NodeId) => boolean) | null = null
  private diversity: DiversityOptions | null = null
  /** Contacts never admitted because their id failed acceptId (the puzzle). */
  refusedIds = 0
  /** Contacts kept out of a bucket (or its replacements) by the diversity limit. */
  refusedDiversity = 0
  /** Asks whether the least recently seen contact is alive: set by the owner (it sends a ping). */
  probe: (contact: Contact, done: (alive: boolean) => void) => void = assumeAlive

  constructor(
    readonly self: NodeId,
    readonly k: number,
    private readonly maxFailures = 2,
    private readonly maxReplacements = 4,
    /** A contact seen this recently is taken to be alive without a ping. */
    private readonly freshMs = 15 * 60_000,
    readonly pool: ContactPool = new ContactPool(),
    private readonly arena: Arena = heapArena,
  ) {}

  get size(): number { return this.total }

  /** Sets the admission rules; a diversity with no limit set is none. */
  admit(rules: Admission): void {
    this.acceptId = rules.acceptId ?? null
    const d = rules.diversity
    this.diversity = d && (d.perSlash24 > 0 || d.perSlash16 > 0) ? d : null
  }

  /**
   * Whether a contact at `address` may join bucket b beside the ones there (but `skip`, the
   * index of the contact itself when it moves): under the per-/24 and per-/16 limits.
   */
  private diverse(b: number, address: Address, skip = -1): boolean {
    const d = this.diversity
    if (!d || !addressPrefixes(address, d.exemptPrivate, NEW_PREFIX)) return true
    const narrow = NEW_PREFIX[0], wide = NEW_PREFIX[1]
    let sameNarrow = 0, sameWide = 0
    for (let i = this.start(b), e = this.end(b); i < e; i++) {
      if (i === skip || !addressPrefixes(this.pool.address(this.handle(i)), d.exemptPrivate, OLD_PREFIX) || OLD_PREFIX[1] !== wide) continue
      sameWide++
      if (OLD_PREFIX[0] === narrow) sameNarrow++
    }
    if ((d.perSlash24 > 0 && sameNarrow >= d.perSlash24) || (d.perSlash16 > 0 && sameWide >= d.perSlash16)) {
      this.refusedDiversity++
      return false
    }
    return true
  }

  /** Buckets up to the deepest one ever used (the rest are empty). */
  get bucketCount(): number { return this.meta.length / 2 }

  bucketIndex(id: Uint8Array): number {
    return Math.min(commonPrefixLength(this.self, id), ID_BITS - 1)
  }

  private start(b: number): number { return b === 0 ? 0 : this.end(b - 1) }
  private end(b: number): number { return b < this.bucketCount ? this.meta[b * 2] : this.total }

  bucketSize(b: number): number { return this.end(b) - this.start(b) }
  touchedAt(b: number): number { return b < this.bucketCount ? (this.meta[b * 2 + 1] & TIME) * 1000 : 0 }

  /**
   * Buckets to refresh: those with no lookup in `intervalMs`; empty ones that no lookup has
   * visited yet; and those that lost their last contact to a failure (their range may hold live
   * nodes we have not met). An empty bucket that was searched waits like the others: deep ones
   * are empty because no node has such ids, and searching again every tick would not change that.
   */
  staleBuckets(now: number, intervalMs: number): number[] {
    let deepest = -1
    for (let b = 0; b < this.bucketCount; b++) if (this.bucketSize(b) > 0 || this.meta[b * 2 + 1] & EMPTIED) deepest = b
    const out: number[] = []
    for (let b = 0; b <= deepest; b++) {
      const touched = this.meta[b * 2 + 1]
      if (touched & EMPTIED || (!(touched & SEARCHED) && this.bucketSize(b) === 0) || now - this.touchedAt(b) >= intervalMs) out.push(b)
    }
    return out
  }

  /** A lookup went through bucket b. Buckets past the last one are empty: nothing to refresh. */
  touch(b: number, now: number): void {
    if (b < this.bucketCount) this.meta[b * 2 + 1] = (SEARCHED | Math.floor(now / 1000)) >>> 0
  }

  private ensureBucket(b: number): void {
    const n = this.bucketCount
    if (b < n) return
    const meta = this.arena.words((b + 1) * 2)
    meta.set(this.meta)
    for (let j = n; j <= b; j++) meta[j * 2] = this.total
    this.meta = meta
  }

  private handle(i: number): number { return this.data[i * WORDS] }
  private seen(i: number): number { return Math.floor(this.data[i * WORDS + 1] / 64) * 1000 }
  private fails(i: number): number { return this.data[i * WORDS + 1] % 64 }
  private setSeen(i: number, now: number, fails: number): void {
    this.data[i * WORDS + 1] = Math.floor(now / 1000) * 64 + Math.min(fails, MAX_FAILS)
  }

  private indexOf(b: number, id: Uint8Array): number {
    for (let i = this.start(b), e = this.end(b); i < e; i++) if (this.pool.hasId(this.handle(i), id)) return i
    return -1
  }

  private contact(i: number): Contact {
    const h = this.handle(i)
    return { id: this.pool.id(h), address: this.pool.address(h) }
  }

  /** Puts a held handle at the tail of bucket b (most recently seen), shifting later buckets up. */
  private insert(b: number, h: number, now: number): void {
    this.ensureBucket(b)
    if ((this.total + 1) * WORDS > this.data.length) this.reserve(Math.max(this.total + 1, Math.ceil(this.total * 1.25) + 4))
    const at = this.end(b)
    this.data.copyWithin((at + 1) * WORDS, at * WORDS, this.total * WORDS)
    this.data[at * WORDS] = h
    this.setSeen(at, now, 0)
    for (let j = b; j < this.bucketCount; j++) this.meta[j * 2]++
    this.total++
  }

  /** Takes contact i out of bucket b and returns its handle (still held). */
  private take(b: number, i: number): number {
    const h = this.handle(i)
    this.data.copyWithin(i * WORDS, (i + 1) * WORDS, this.total * WORDS)
    for (let j = b; j < this.bucketCount; j++) this.meta[j * 2]--
    this.total--
    return h
  }

  private moveToTail(b: number, i: number): void {
    const last = this.end(b) - 1
    if (i === last) return
    const h = this.data[i * WORDS], s = this.data[i * WORDS + 1]
    this.data.copyWithin(i * WORDS, (i + 1) * WORDS, (last + 1) * WORDS)
    this.data[last * WORDS] = h
    this.data[last * WORDS + 1] = s
  }

  /** Makes room for n contacts in all, so that a table filled at once has no slack. */
  reserve(n: number): void {
    if (n * WORDS <= this.data.length) return
    const data = this.arena.words(n * WORDS)
    data.set(this.data.subarray(0, this.total * WORDS))
    this.data = data
  }

  /** A live message came from (id, address): refresh it, add it, or queue it behind a ping. */
  observe(id: NodeId, address: Address, now: number, proven = true): void {
    if (idEquals(id, this.self)) return
    const b = this.bucketIndex(id)
    const i = this.indexOf(b, id)
    if (i >= 0) {
      const h = this.handle(i)
      if (this.pool.address(h) !== address) {
        // Ids are only claimed: an unproven packet may not move a known contact to another address.
        if (!proven || !this.diverse(b, address, i)) return
        this.data[i * WORDS] = this.pool.acquire(id, address)
        this.pool.release(h)
      }
      this.setSeen(i, now, 0)
      this.moveToTail(b, i)
      return
    }
    // A new contact: one double hash for the puzzle, a scan of one bucket for diversity.
    if (this.acceptId && !this.acceptId(id)) { this.refusedIds++; return }
    if (!this.diverse(b, address)) return
    if (this.bucketSize(b) < this.k) {
      this.insert(b, this.pool.acquire(id, address), now)
      this.onEvent({ type: 'added', contact: { id: new Uint8Array(id), address } })
      return
    }
    // Full: keep the old contact unless it fails a ping (old contacts are the ones that stay up).
    this.queueReplacement(b, id, address)
    // Only a contact not heard from for a while is worth a ping (BEP 5's "questionable" node):
    // one seen recently is alive, and pinging it on every newcomer would double the traffic.
    const head = this.start(b)
    if (this.pinging?.has(b) || now - this.seen(head) < this.freshMs) return
    ;(this.pinging ??= new Set()).add(b)
    const contact = this.contact(head)
    this.probe(contact, (alive) => {
      this.pinging!.delete(b)
      const j = this.indexOf(b, contact.id)
      if (j < 0) return
      if (alive) { this.setSeen(j, now, 0); this.moveToTail(b, j); return }
      this.evict(b, j, now)
    })
  }

  private queueReplacement(b: number, id: NodeId, address: Address): void {
    const list: number[] = (this.replacements ??= new Map()).get(b) ?? []
    const known = list.findIndex((h) => this.pool.hasId(h, id))
    if (known >= 0) this.pool.release(list.splice(known, 1)[0])
    list.push(this.pool.acquire(id, address))
    if (list.length > this.maxReplacements) this.pool.release(list.shift()!)
    this.replacements.set(b, list)
  }

  /** A request to this contact went unanswered. */
  failed(id: NodeId, now: number): void {
    const b = this.bucketIndex(id)
    const i = this.indexOf(b, id)
    if (i < 0) return
    const fails = this.fails(i) + 1
    this.setSeen(i, this.seen(i), fails)
    if ((this.replacements?.get(b)?.length ?? 0) > 0 || fails >= this.maxFailures) this.evict(b, i, now)
  }

  private evict(b: number, i: number, now: number): void {
    const gone = this.contact(i)
    this.pool.release(this.take(b, i))
    if (this.bucketSize(b) === 0) this.meta[b * 2 + 1] |= EMPTIED
    this.onEvent({ type: 'removed', contact: gone })
    // The newest replacement that the bucket's prefixes still admit (the bucket changed since it queued).
    const list = this.replacements?.get(b)
    let r: number | undefined
    while ((r = list?.pop()) !== undefined && !this.diverse(b, this.pool.address(r))) this.pool.release(r)
    if (r !== undefined) {
      this.insert(b, r, now) // the replacement list's reference passes to the bucket
      this.onEvent({ type: 'added', contact: { id: this.pool.id(r), address: this.pool.address(r) } })
    }
  }

  /**
   * Fills an empty table at once (the simulator's oracle fill): counts[b] handles for bucket b,
   * one after another in `handles`, distinct, at most k a bucket, none of them us. Retains each.
   */
  fill(handles: ArrayLike<number>, counts: ArrayLike<number>, now: number): void {
    if (this.total > 0) throw new Error('fill() is for an empty table')
    this.reserve(handles.length)
    this.ensureBucket(counts.length - 1)
    const seen = Math.floor(now / 1000) * 64
    let at = 0
    for (let b = 0; b < counts.length; b++) {
      for (let j = 0; j < counts[b]; j++, at++) {
        const h = handles[at]
        this.pool.retain(h)
        this.data[at * WORDS] = h
        this.data[at * WORDS + 1] = seen
      }
      this.meta[b * 2] = at
      this.meta[b * 2 + 1] = (SEARCHED | (seen / 64)) >>> 0 // as a join's bucket refreshes would have left it
    }
    this.total = at
  }

  has(id: NodeId): boolean {
    return this.indexOf(this.bucketIndex(id), id) >= 0
  }

  /** Releases every handle (a simulated node that leaves gives its pool references back). */
  clear(): void {
    for (let i = 0; i < this.total; i++) this.pool.release(this.handle(i))
    for (const list of this.replacements?.values() ?? []) for (const h of list) this.pool.release(h)
    this.replacements = null
    this.total = 0
    this.data = EMPTY
    this.meta = EMPTY
  }

  /**
   * Up to n contacts nearest target by XOR distance. Buckets are visited nearest first, so only
   * a few are sorted: with c = cpl(self, target), bucket c holds the nearest, then buckets
   * deeper than c (all at distance with top bit c), then c-1, c-2, ... 0, each farther than the last.
   */
  closest(target: NodeId, n: number, exclude?: NodeId): Contact[] {
    const out: Contact[] = []
    const c = this.bucketIndex(target)
    const ids = this.pool.idArray()
    const group: number[] = []
    const take = (from: number, to: number): void => {
      group.length = 0
      for (let i = from; i < to; i++) {
        const h = this.handle(i)
        if (!exclude || !this.pool.hasId(h, exclude)) group.push(h)
      }
      if (group.length > 1) group.sort((x, y) => compareDistance(target, ids, ids, x * ID_BYTES, y * ID_BYTES))
      for (let j = 0; j < group.length && out.length < n; j++) out.push({ id: this.pool.id(group[j]), address: this.pool.address(group[j]) })
    }
    take(this.start(c), this.end(c))
    if (out.length < n) take(this.end(c), this.total)
    for (let j = c - 1; j >= 0 && out.length < n; j--) take(this.start(j), this.end(j))
    return out
  }

  entries(now: number): TableEntry[] {
    const out: TableEntry[] = []
    for (let b = 0; b < this.bucketCount; b++) {
      for (let i = this.start(b); i < this.end(b); i++) {
        out.push({ ...this.contact(i), slot: `bucket ${b}`, lastSeenMs: Math.max(0, now - this.seen(i)), failures: this.fails(i) })
      }
    }
    return out
  }
}
