// Chord's routing state, packed: a predecessor, a successor list and the distinct fingers, all
// as ContactPool handles in typed arrays (no object per contact), so that a simulated node costs
// a few hundred bytes. Each slot is two words: [pool handle, last seen in seconds * 64 + failed
// requests]. Fingers are kept one per bit b (the node nearest self + 2^b among those whose
// clockwise distance from us lies in [2^b, 2^(b+1)): exactly the distinct fingers of the paper),
// in increasing distance, each with its bit in a byte array; fingers that the (full) successor
// list already covers are not kept twice.
import { ID_BYTES, idEquals, type NodeId } from '../../identity/node-id.js'
import type { Address } from '../../wire/address.js'
import { heapArena, type Arena } from '../arena.js'
import { ContactPool } from '../contact-pool.js'
import type { Contact, NodeSet, TableEntry } from '../topology.js'
import { addPowerOfTwo, between, clockwise, compareAt, topBit } from './ring.js'

const NONE = 0xffffffff
const MAX_FAILS = 63 // failures share a word with the time, in its low 6 bits
const EMPTY = new Uint32Array(0) // shared by empty tables; never written
const EMPTY_BYTES = new Uint8Array(0)
/** Ids dropped after failing, remembered so that a neighbour's stale list does not bring them back. */
const DEAD_SLOTS = 8
const ignore = (): void => {}

// Scratch space shared by every table (the protocol code is single-threaded).
const d1 = new Uint8Array(ID_BYTES), d2 = new Uint8Array(ID_BYTES), start = new Uint8Array(ID_BYTES)
let scratch = new Uint8Array(64 * ID_BYTES)
let order: number[] = []

export type RingEvent = (type: 'added' | 'removed', contact: Contact) => void

export class RingTable {
  private predH = NONE
  private predMeta = 0
  /** Successors, nearest first: [handle, meta] pairs, allocated at the first one. */
  private succ: Uint32Array = EMPTY
  private succCount = 0
  /** Fingers beyond the successor list, nearest first: [handle, meta] pairs, and their bits. */
  private fing: Uint32Array = EMPTY
  private fingBits: Uint8Array = EMPTY_BYTES
  private fingCount = 0
  /** Recently dropped ids and when (seconds), allocated at the first drop. */
  private dead: Uint8Array | null = null
  private deadAt: Uint32Array | null = null
  /** Per remembered id: 1 if it left gracefully (then even its own late packets do not bring it back). */
  private deadLeft: Uint8Array | null = null
  private deadNext = 0
  onEvent: RingEvent = ignore

  constructor(
    readonly self: NodeId,
    readonly maxSuccessors: number,
    private readonly maxFailures = 2,
    readonly pool: ContactPool = new ContactPool(),
    private readonly arena: Arena = heapArena,
    /** How long a dropped id stays refused as a successor unless it speaks to us itself. */
    private readonly deadForMs = 120_000,
  ) {}

  // ---- reading -----------------------------------------------------------------------------------

  get successorCount(): number { return this.succCount }
  get fingerCount(): number { return this.fingCount }

  private contact(h: number): Contact { return { id: this.pool.id(h), address: this.pool.address(h) } }

  successor(i = 0): Contact | null { return i < this.succCount ? this.contact(this.succ[i * 2]) : null }
  predecessor(): Contact | null { return this.predH === NONE ? null : this.contact(this.predH) }
  successors(): Contact[] {
    const out: Contact[] = []
    for (let i = 0; i < this.succCount; i++) out.push(this.contact(this.succ[i * 2]))
    return out
  }
  /** The fingers as [bit, contact], nearest first (those the successor list covers are not kept). */
  fingers(): [number, Contact][] {
    const out: [number, Contact][] = []
    for (let i = 0; i < this.fingCount; i++) out.push([this.fingBits[i], this.contact(this.fing[i * 2])])
    return out
  }

  /** Distinct contacts in the table. */
  get size(): number {
    let n = 0
    this.forEachDistinct(() => { n++ })
    return n
  }

  private forEachDistinct(fn: (h: number) => void): void {
    const seen: number[] = []
    const visit = (h: number): void => {
      if (seen.includes(h)) return
      seen.push(h)
      fn(h)
    }
    if (this.predH !== NONE) visit(this.predH)
    for (let i = 0; i < this.succCount; i++) visit(this.succ[i * 2])
    for (let i = 0; i < this.fingCount; i++) visit(this.fing[i * 2])
  }

  has(id: Uint8Array): boolean {
    if (this.predH !== NONE && this.pool.hasId(this.predH, id)) return true
    for (let i = 0; i < this.succCount; i++) if (this.pool.hasId(this.succ[i * 2], id)) return true
    for (let i = 0; i < this.fingCount; i++) if (this.pool.hasId(this.fing[i * 2], id)) return true
    return false
  }

  /** The clockwise distance from us to handle h, into out. */
  private distanceOf(h: number, out: Uint8Array, outOff = 0): Uint8Array {
    return clockwise(this.self, this.pool.idArray(), out, h * ID_BYTES, outOff)
  }

  entries(now: number): TableEntry[] {
    const row = (slot: string, h: number, meta: number): TableEntry => ({
      slot, id: this.pool.id(h), address: this.pool.address(h),
      lastSeenMs: Math.floor(meta / 64) * 1000, failures: meta % 64,
    })
    void now
    const out: TableEntry[] = []
    if (this.predH !== NONE) out.push(row('predecessor', this.predH, this.predMeta))
    for (let i = 0; i < this.succCount; i++) out.push(row(`successor ${i + 1}`, this.succ[i * 2], this.succ[i * 2 + 1]))
    for (let i = 0; i < this.fingCount; i++) out.push(row(`finger ${this.fingBits[i]}`, this.fing[i * 2], this.fing[i * 2 + 1]))
    return out
  }

  // ---- answers -------------------------------------------------------------------------------------

  /**
   * Up to n known contacts most responsible for `target` by the successor rule, with the nearest
   * ones before it at the end (a quarter of n): those are what a lookup walks to, the ones after
   * it what it ends with. In successor order, so the first is the target's successor as known.
   */
  closest(target: Uint8Array, n: number, exclude?: Uint8Array): Contact[] {
    const handles: number[] = []
    const add = (h: number): void => {
      if (handles.includes(h)) return
      if (exclude && this.pool.hasId(h, exclude)) return
      handles.push(h)
    }
    for (let i = 0; i < this.succCount; i++) add(this.succ[i * 2])
    for (let i = 0; i < this.fingCount; i++) add(this.fing[i * 2])
    if (this.predH !== NONE) add(this.predH)
    const m = handles.length
    if (scratch.length < m * ID_BYTES) scratch = new Uint8Array(m * 2 * ID_BYTES)
    const ids = this.pool.idArray()
    order.length = 0
    for (let i = 0; i < m; i++) {
      clockwise(target, ids, scratch, handles[i] * ID_BYTES, i * ID_BYTES)
      order.push(i)
    }
    order.sort((a, b) => compareAt(scratch, a * ID_BYTES, scratch, b * ID_BYTES))
    const out: Contact[] = []
    let picked = order
    if (m > n) {
      const before = Math.min(m, Math.floor(n / 4))
      picked = order.slice(0, n - before).concat(before > 0 ? order.slice(m - before) : [])
    }
    for (let j = 0; j < picked.length; j++) {
      // Two handles with one id (an address changed): keep the first.
      if (j > 0 && compareAt(scratch, picked[j] * ID_BYTES, scratch, picked[j - 1] * ID_BYTES) === 0) continue
      out.push(this.contact(handles[picked[j]]))
    }
    return out
  }

  /** The known node nearest before `target` going clockwise from us (the paper's closest preceding node). */
  closestPreceding(target: Uint8Array): Contact | null {
    let best = NONE
    const ids = this.pool.idArray()
    const consider = (h: number): void => {
      if (this.failures(h) > 0 && best !== NONE) return // one that has failed is a last resort
      if (!between(ids, this.self, target, h * ID_BYTES)) return
      if (best === NONE) { best = h; return }
      this.distanceOf(h, d1)
      this.distanceOf(best, d2)
      if (compareAt(d1, 0, d2, 0) > 0 || this.failures(best) > 0) best = h
    }
    for (let i = 0; i < this.fingCount; i++) consider(this.fing[i * 2])
    for (let i = 0; i < this.succCount; i++) consider(this.succ[i * 2])
    return best === NONE ? null : this.contact(best)
  }

  private failures(h: number): number {
    for (let i = 0; i < this.succCount; i++) if (this.succ[i * 2] === h) return this.succ[i * 2 + 1] % 64
    for (let i = 0; i < this.fingCount; i++) if (this.fing[i * 2] === h) return this.fing[i * 2 + 1] % 64
    return 0
  }

  // ---- learning ------------------------------------------------------------------------------------

  /**
   * A live message came from (id, address): refresh it wherever it is, and take it as a successor
   * or a finger if it is nearer than what we have. Never as a predecessor: that is notify's job.
   */
  observe(id: NodeId, address: Address, now: number, proven = true): void {
    if (idEquals(id, this.self)) return
    // A node that said goodbye may still have replies on the way, sent before it left.
    if (this.isDead(id, now, true)) return
    this.forgetDead(id)
    const meta = Math.floor(now / 1000) * 64
    const refresh = (words: Uint32Array, i: number): void => {
      const h = words[i * 2]
      if (!this.pool.hasId(h, id)) return
      if (this.pool.address(h) !== address) {
        if (!proven) return // ids are only claimed: an unproven packet may not move a contact
        words[i * 2] = this.pool.acquire(id, address)
        this.pool.release(h)
      }
      words[i * 2 + 1] = meta
    }
    if (this.predH !== NONE && this.pool.hasId(this.predH, id)) {
      if (this.pool.address(this.predH) === address) this.predMeta = meta
      else if (proven) { const h = this.predH; this.predH = this.pool.acquire(id, address); this.pool.release(h); this.predMeta = meta }
    }
    for (let i = 0; i < this.succCount; i++) refresh(this.succ, i)
    for (let i = 0; i < this.fingCount; i++) refresh(this.fing, i)
    this.consider(id, address, now, true)
  }

  /**
   * A contact someone told us of (a lookup result, a neighbour's successor list): taken as a
   * successor or finger if nearer than what we have, unless we dropped it lately for failing.
   */
  consider(id: NodeId, address: Address, now: number, live = false): void {
    if (idEquals(id, this.self) || address.endsWith(':0')) return
    if (!live && this.isDead(id, now)) return
    const known = this.has(id)
    const addedSucc = this.insertSuccessor(id, address, now)
    const addedFinger = this.insertFinger(id, address, now)
    if (!known && (addedSucc || addedFinger)) this.onEvent('added', { id: new Uint8Array(id), address })
  }

  /** Inserts into the successor list in ring order; false if it is already there or falls past the end. */
  private insertSuccessor(id: NodeId, address: Address, now: number): boolean {
    clockwise(this.self, id, d1)
    let at = 0
    for (; at < this.succCount; at++) {
      this.distanceOf(this.succ[at * 2], d2)
      const c = compareAt(d1, 0, d2, 0)
      if (c === 0) return false // that id is there already
      if (c < 0) break
    }
    if (at >= this.maxSuccessors) return false
    if (this.succ === EMPTY) this.succ = this.arena.words(this.maxSuccessors * 2)
    let dropped = NONE
    if (this.succCount === this.maxSuccessors) { dropped = this.succ[(this.succCount - 1) * 2]; this.succCount-- }
    this.succ.copyWithin((at + 1) * 2, at * 2, this.succCount * 2)
    this.succ[at * 2] = this.pool.acquire(id, address)
    this.succ[at * 2 + 1] = Math.floor(now / 1000) * 64
    this.succCount++
    if (dropped !== NONE) this.releaseSlot(dropped)
    // Fingers that the full successor list now covers are not kept twice.
    if (this.succCount === this.maxSuccessors) this.pruneCoveredFingers()
    return true
  }

  private pruneCoveredFingers(): void {
    if (this.fingCount === 0 || this.succCount < this.maxSuccessors) return
    this.distanceOf(this.succ[(this.succCount - 1) * 2], d2)
    let n = 0
    while (n < this.fingCount && compareAt(this.distanceOf(this.fing[n * 2], d1), 0, d2, 0) <= 0) n++
    if (n === 0) return
    const gone: number[] = []
    for (let i = 0; i < n; i++) gone.push(this.fing[i * 2])
    this.fing.copyWithin(0, n * 2, this.fingCount * 2)
    this.fingBits.copyWithin(0, n, this.fingCount)
    this.fingCount -= n
    for (const h of gone) this.releaseSlot(h)
  }

  /** Whether a full successor list already covers a node at clockwise distance d (in d1). */
  private coveredBySuccessors(d: Uint8Array): boolean {
    if (this.succCount < this.maxSuccessors) return false
    this.distanceOf(this.succ[(this.succCount - 1) * 2], d2)
    return compareAt(d, 0, d2, 0) <= 0
  }

  /** Takes it as the finger of its bit if nearer than the one there. */
  private insertFinger(id: NodeId, address: Address, now: number): boolean {
    clockwise(this.self, id, d1)
    const bit = topBit(d1)
    if (bit < 0 || this.coveredBySuccessors(d1)) return false
    let at = 0
    while (at < this.fingCount && this.fingBits[at] < bit) at++
    if (at < this.fingCount && this.fingBits[at] === bit) {
      this.distanceOf(this.fing[at * 2], d2)
      if (compareAt(d1, 0, d2, 0) >= 0) return false
      const old = this.fing[at * 2]
      this.fing[at * 2] = this.pool.acquire(id, address)
      this.fing[at * 2 + 1] = Math.floor(now / 1000) * 64
      this.releaseSlot(old)
      return true
    }
    this.openFinger(at)
    this.fing[at * 2] = this.pool.acquire(id, address)
    this.fing[at * 2 + 1] = Math.floor(now / 1000) * 64
    this.fingBits[at] = bit
    return true
  }

  private openFinger(at: number): void {
    if ((this.fingCount + 1) * 2 > this.fing.length) {
      const cap = Math.min(256, Math.max(4, this.fingCount + 4))
      const words = this.arena.words(cap * 2), bits = this.arena.bytes(cap)
      words.set(this.fing.subarray(0, this.fingCount * 2))
      bits.set(this.fingBits.subarray(0, this.fingCount))
      this.fing = words
      this.fingBits = bits
    }
    this.fing.copyWithin((at + 1) * 2, at * 2, this.fingCount * 2)
    this.fingBits.copyWithin(at + 1, at, this.fingCount)
    this.fingCount++
  }

  /**
   * What a lookup of successor(self + 2^bit) found: `found` is the finger of bit `bit` and of the
   * bits up to its own, so fingers of the bits in between are stale and go; null (the ring wraps
   * back to us before any node) drops every finger from `bit` on.
   */
  setFinger(bit: number, found: Contact | null, now: number): void {
    let to = 256
    if (found && !idEquals(found.id, this.self)) {
      clockwise(this.self, found.id, d1)
      to = topBit(d1)
    }
    const gone: number[] = []
    let w = 0
    for (let i = 0; i < this.fingCount; i++) {
      const b = this.fingBits[i]
      if (b >= bit && b < to) { gone.push(this.fing[i * 2]); continue }
      this.fing[w * 2] = this.fing[i * 2]; this.fing[w * 2 + 1] = this.fing[i * 2 + 1]; this.fingBits[w] = b; w++
    }
    this.fingCount = w
    for (const h of gone) this.releaseSlot(h)
    if (found && to < 256) {
      // Replace whatever holds that bit: the lookup found the node nearest its start.
      const at = this.fingBits.subarray(0, this.fingCount).indexOf(to)
      if (at >= 0 && !this.pool.hasId(this.fing[at * 2], found.id)) {
        const old = this.fing[at * 2]
        this.fing.copyWithin(at * 2, (at + 1) * 2, this.fingCount * 2)
        this.fingBits.copyWithin(at, at + 1, this.fingCount)
        this.fingCount--
        this.releaseSlot(old)
      }
      this.consider(found.id, found.address, now)
    }
  }

  /** Sets the predecessor (a notify, or the newcomer learning it); returns the one it replaced. */
  setPredecessor(id: NodeId, address: Address, now: number): void {
    if (idEquals(id, this.self)) return
    const known = this.has(id)
    const old = this.predH
    this.predH = this.pool.acquire(id, address)
    this.predMeta = Math.floor(now / 1000) * 64
    if (old !== NONE) this.releaseSlot(old)
    if (!known) this.onEvent('added', { id: new Uint8Array(id), address })
  }

  /** The predecessor's meta: failures so far. */
  get predecessorFailures(): number { return this.predH === NONE ? 0 : this.predMeta % 64 }

  /**
   * Rebuilds the successor list after the first successor answered with its own list: ours is
   * it, then its list in ring order (stopping where the list wraps back to us), at most
   * maxSuccessors. Entries we keep hold their state.
   */
  adoptSuccessorList(list: Contact[], now: number): void {
    if (this.succCount === 0) return
    const first = this.succ[0]
    const fresh: number[] = [first]
    clockwise(this.self, this.pool.idArray(), d2, first * ID_BYTES)
    const last = new Uint8Array(d2)
    for (const c of list) {
      if (fresh.length >= this.maxSuccessors) break
      if (idEquals(c.id, this.self) || c.address.endsWith(':0')) break // wrapped round to us
      if (this.isDead(c.id, now)) continue
      clockwise(this.self, c.id, d1)
      if (compareAt(d1, 0, last, 0) <= 0) break // not past the previous one: the list wrapped
      last.set(d1)
      fresh.push(this.pool.acquire(c.id, c.address))
    }
    const metaOf = (h: number): number => {
      for (let i = 0; i < this.succCount; i++) if (this.succ[i * 2] === h) return this.succ[i * 2 + 1]
      return Math.floor(now / 1000) * 64
    }
    const old: number[] = []
    for (let i = 0; i < this.succCount; i++) old.push(this.succ[i * 2])
    const metas = fresh.map((h, i) => (i === 0 ? this.succ[1] : metaOf(h)))
    for (let i = 0; i < fresh.length; i++) { this.succ[i * 2] = fresh[i]; this.succ[i * 2 + 1] = metas[i] }
    this.succCount = fresh.length
    // The first one was not acquired again: its reference carries over. Release the old list's
    // references to the others (the new list holds its own; a contact in neither is removed).
    for (let i = 1; i < old.length; i++) this.releaseSlot(old[i])
    for (let i = 1; i < fresh.length; i++) if (!old.includes(fresh[i])) this.announce(fresh[i])
    this.pruneCoveredFingers()
  }

  private announce(h: number): void {
    // An `added` event only for contacts new to the whole table (the list already holds h once).
    let refs = 0
    if (this.predH === h) refs++
    for (let i = 0; i < this.succCount; i++) if (this.succ[i * 2] === h) refs++
    for (let i = 0; i < this.fingCount; i++) if (this.fing[i * 2] === h) refs++
    if (refs === 1 && this.onEvent !== ignore) this.onEvent('added', this.contact(h))
  }

  // ---- forgetting ----------------------------------------------------------------------------------

  /** Releases one slot's reference, telling of the contact's removal if no other slot holds it. */
  private releaseSlot(h: number, quiet = false): void {
    const still = this.predH === h || this.succ.subarray(0, this.succCount * 2).some((v, i) => i % 2 === 0 && v === h)
      || this.fing.subarray(0, this.fingCount * 2).some((v, i) => i % 2 === 0 && v === h)
    const c = !still && !quiet && this.onEvent !== ignore ? this.contact(h) : null
    this.pool.release(h)
    if (c) this.onEvent('removed', c)
  }

  /** A request to this contact went unanswered: true if it was dropped for it. */
  failed(id: NodeId, now: number): boolean {
    let worst = 0
    const bump = (words: Uint32Array, i: number): void => {
      if (!this.pool.hasId(words[i * 2], id)) return
      const f = Math.min(MAX_FAILS, (words[i * 2 + 1] % 64) + 1)
      words[i * 2 + 1] = Math.floor(words[i * 2 + 1] / 64) * 64 + f
      worst = Math.max(worst, f)
    }
    if (this.predH !== NONE && this.pool.hasId(this.predH, id)) {
      this.predMeta = Math.floor(this.predMeta / 64) * 64 + Math.min(MAX_FAILS, (this.predMeta % 64) + 1)
      worst = Math.max(worst, this.predMeta % 64)
    }
    for (let i = 0; i < this.succCount; i++) bump(this.succ, i)
    for (let i = 0; i < this.fingCount; i++) bump(this.fing, i)
    if (worst < this.maxFailures) return false
    this.remove(id, now, true)
    return true
  }

  /**
   * Drops the id from every slot; true if it was there. `dead`: it failed, or (`left`) said it
   * is leaving; either way a neighbour's stale list will not bring it back for a while.
   */
  remove(id: NodeId, now: number, dead = false, left = false): boolean {
    const gone: number[] = []
    if (this.predH !== NONE && this.pool.hasId(this.predH, id)) { gone.push(this.predH); this.predH = NONE }
    let w = 0
    for (let i = 0; i < this.succCount; i++) {
      const h = this.succ[i * 2]
      if (this.pool.hasId(h, id)) { gone.push(h); continue }
      this.succ[w * 2] = h; this.succ[w * 2 + 1] = this.succ[i * 2 + 1]; w++
    }
    this.succCount = w
    w = 0
    for (let i = 0; i < this.fingCount; i++) {
      const h = this.fing[i * 2]
      if (this.pool.hasId(h, id)) { gone.push(h); continue }
      this.fing[w * 2] = h; this.fing[w * 2 + 1] = this.fing[i * 2 + 1]; this.fingBits[w] = this.fingBits[i]; w++
    }
    this.fingCount = w
    if (gone.length === 0) return false
    if (dead || left) this.rememberDead(id, now, left)
    const c = this.onEvent !== ignore ? this.contact(gone[0]) : null
    for (const h of gone) this.pool.release(h)
    if (c) this.onEvent('removed', c)
    return true
  }

  private rememberDead(id: NodeId, now: number, left: boolean): void {
    if (!this.dead) { this.dead = new Uint8Array(DEAD_SLOTS * ID_BYTES); this.deadAt = new Uint32Array(DEAD_SLOTS); this.deadLeft = new Uint8Array(DEAD_SLOTS) }
    this.deadLeft![this.deadNext] = left ? 1 : 0
    this.dead.set(id.subarray(0, ID_BYTES), this.deadNext * ID_BYTES)
    this.deadAt![this.deadNext] = Math.floor(now / 1000) + 1 // 0 marks a free slot
    this.deadNext = (this.deadNext + 1) % DEAD_SLOTS
  }

  /** Whether the id was dropped lately (`leftOnly`: because it left gracefully). */
  isDead(id: Uint8Array, now: number, leftOnly = false): boolean {
    if (!this.dead) return false
    for (let i = 0; i < DEAD_SLOTS; i++) {
      const at = this.deadAt![i]
      if (leftOnly && !this.deadLeft![i]) continue
      if (at !== 0 && (Math.floor(now / 1000) + 1 - at) * 1000 < this.deadForMs && idEquals(id, this.dead, i * ID_BYTES)) return true
    }
    return false
  }

  private forgetDead(id: Uint8Array): void {
    if (!this.dead) return
    for (let i = 0; i < DEAD_SLOTS; i++) if (this.deadAt![i] !== 0 && idEquals(id, this.dead, i * ID_BYTES)) this.deadAt![i] = 0
  }

  /** Releases every handle (a simulated node that leaves gives its pool references back). */
  clear(): void {
    if (this.predH !== NONE) this.pool.release(this.predH)
    for (let i = 0; i < this.succCount; i++) this.pool.release(this.succ[i * 2])
    for (let i = 0; i < this.fingCount; i++) this.pool.release(this.fing[i * 2])
    this.predH = NONE
    this.succCount = 0
    this.fingCount = 0
  }

  // ---- the simulator's oracle fill -----------------------------------------------------------------

  /**
   * Fills an empty table from the true node set: successor list, predecessor and the distinct
   * fingers, with O(log N) binary searches of O(log N) steps each. Retains each handle.
   */
  fill(nodes: NodeSet, now: number): void {
    if (this.predH !== NONE || this.succCount > 0 || this.fingCount > 0) throw new Error('fill() is for an empty table')
    const n = nodes.size
    if (n === 0) return
    const meta = Math.floor(now / 1000) * 64
    const i = nodes.search(this.self)
    const selfIn = i < n && idEquals(nodes.idAt(i), this.self)
    const first = selfIn ? i + 1 : i
    const others = n - (selfIn ? 1 : 0)
    const count = Math.min(this.maxSuccessors, others)
    if (count > 0) {
      this.succ = this.arena.words(this.maxSuccessors * 2)
      for (let j = 0; j < count; j++) {
        const h = nodes.at((first + j) % n)
        this.pool.retain(h)
        this.succ[j * 2] = h
        this.succ[j * 2 + 1] = meta
      }
      this.succCount = count
      const h = nodes.at((i - 1 + n) % n)
      this.pool.retain(h)
      this.predH = h
      this.predMeta = meta
    }
    // Finger b is the first node at or after self + 2^b. Starting from b = 0, each finger found
    // covers every bit up to its own distance's, so the next one to look up is the bit after it.
    const bits: number[] = [], handles: number[] = []
    // A full successor list covers the fingers up to its last node: start the search there.
    const full = this.succCount === this.maxSuccessors
    const lastDistance = full ? new Uint8Array(this.distanceOf(this.succ[(this.succCount - 1) * 2], d2)) : null
    for (let b = lastDistance ? Math.max(0, topBit(lastDistance)) : 0; b < 256 && others > 0;) {
      addPowerOfTwo(this.self, b, start)
      const at = nodes.search(start) % n
      const id = nodes.idAt(at)
      if (idEquals(id, this.self)) break // no node from self + 2^b round to us
      clockwise(this.self, id, d1)
      const bit = topBit(d1)
      if (bit < b) break // wrapped round past us to a nearer node
      if (!lastDistance || compareAt(d1, 0, lastDistance, 0) > 0) { bits.push(bit); handles.push(nodes.at(at)) }
      b = bit + 1
    }
    if (handles.length > 0) {
      this.fing = this.arena.words(handles.length * 2)
      this.fingBits = this.arena.bytes(handles.length)
      for (let j = 0; j < handles.length; j++) {
        this.pool.retain(handles[j])
        this.fing[j * 2] = handles[j]
        this.fing[j * 2 + 1] = meta
        this.fingBits[j] = bits[j]
      }
      this.fingCount = handles.length
    }
  }
}
