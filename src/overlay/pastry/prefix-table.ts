// Pastry's routing table: row r, column c holds a node whose id shares the first r digits
// with ours and whose digit r is c (the column of our own digit stays empty: those nodes
// belong to the rows below). Of the nodes that fit a slot, the one with the lowest measured
// round-trip time is kept.
//
// Rows are dense typed arrays of pool handles (handle + 1; 0 is an empty slot), allocated only
// up to the deepest row with an entry: about log_{2^b} N rows of 2^b slots. A slot's state
// (last seen, failed requests) and measured RTT get arrays of their own only once the table
// changes after a fill, so an oracle-filled table of a million-node simulation costs 4 bytes a slot.
import { ID_BYTES } from '../../identity/node-id.js'
import { heapArena, type Arena } from '../arena.js'
import type { ContactPool } from '../contact-pool.js'
import { digitAt, digitCount, sharedDigits } from './ids.js'

const MAX_FAILS = 63
const MAX_RTT = 0xfffe
const EMPTY = new Uint32Array(0)

export class PrefixTable {
  readonly cols: number
  /** Rows an id has digits for: the bound on the table's depth. */
  readonly maxRows: number
  private slots: Uint32Array = EMPTY
  /** Per slot: last seen in seconds * 64 + failed requests; null: all as of the fill. */
  private state: Uint32Array | null = null
  /** Per slot: measured RTT in ms + 1 (0: not measured); null: none measured. */
  private rtts: Uint16Array | null = null
  private filledAt = 0
  private count = 0

  constructor(
    readonly self: Uint8Array,
    readonly b: number,
    private readonly pool: ContactPool,
    private readonly arena: Arena = heapArena,
  ) {
    this.cols = 1 << b
    this.maxRows = digitCount(b)
  }

  /** Contacts in the table. */
  get size(): number { return this.count }
  /** Rows allocated (the deepest row with an entry, or that had one, plus one). */
  get rows(): number { return this.slots.length / this.cols }

  /** The slot for the id at offset in ids, or -1 for our own id. */
  slotOf(ids: Uint8Array, offset: number): number {
    const r = sharedDigits(this.self, this.b, ids, offset)
    if (r >= this.maxRows) return -1
    return r * this.cols + digitAt(ids, r, this.b, offset)
  }

  /** The handle in slot i, or -1 when empty. */
  handleAt(i: number): number { return i < this.slots.length ? this.slots[i] - 1 : -1 }
  seenAt(i: number): number { return this.state ? Math.floor(this.state[i] / 64) * 1000 : this.filledAt * 1000 }
  failsAt(i: number): number { return this.state ? this.state[i] % 64 : 0 }
  /** Measured RTT of slot i's contact in ms, or -1 when not measured. */
  rttAt(i: number): number { return this.rtts ? this.rtts[i] - 1 : -1 }

  private setState(i: number, seenMs: number, fails: number): void {
    if (!this.state) {
      this.state = this.arena.words(this.slots.length)
      this.state.fill(this.filledAt * 64)
    }
    this.state[i] = Math.floor(seenMs / 1000) * 64 + Math.min(fails, MAX_FAILS)
  }

  private setRtt(i: number, rttMs: number | undefined): void {
    if (rttMs === undefined) { if (this.rtts) this.rtts[i] = 0; return }
    this.rtts ??= new Uint16Array(this.slots.length)
    this.rtts[i] = Math.min(MAX_RTT, Math.max(0, Math.round(rttMs))) + 1
  }

  private ensureRows(n: number): void {
    const size = n * this.cols
    if (size <= this.slots.length) return
    const slots = this.arena.words(size)
    slots.set(this.slots)
    this.slots = slots
    if (this.state) { const s = this.arena.words(size); s.fill(this.filledAt * 64); s.set(this.state); this.state = s }
    if (this.rtts) { const r = new Uint16Array(size); r.set(this.rtts); this.rtts = r }
  }

  /**
   * Offers handle h (its RTT if measured): it takes an empty slot; it takes a held slot from a
   * contact with failed requests, or when its RTT is lower than the holder's (or the holder's is
   * not known). A displaced holder goes to `displaced`, still retained: the caller releases it.
   * Returns whether h is now in the table (retained once here).
   */
  offer(h: number, nowMs: number, rttMs: number | undefined, displaced: number[]): boolean {
    const ids = this.pool.idArray()
    const i = this.slotOf(ids, h * ID_BYTES)
    if (i < 0) return false
    const cur = this.handleAt(i)
    if (cur === h) {
      this.setState(i, nowMs, 0)
      if (rttMs !== undefined) this.setRtt(i, rttMs)
      return false
    }
    if (cur >= 0) {
      if (this.pool.hasId(cur, ids.subarray(h * ID_BYTES, (h + 1) * ID_BYTES))) return false // the same node at another address: keep the one we know
      const better = this.failsAt(i) > 0 || (rttMs !== undefined && (this.rttAt(i) < 0 || rttMs < this.rttAt(i)))
      if (!better) return false
      displaced.push(cur)
      this.count--
    }
    this.ensureRows(Math.floor(i / this.cols) + 1)
    this.pool.retain(h)
    this.slots[i] = h + 1
    this.count++
    this.setState(i, nowMs, 0)
    this.setRtt(i, rttMs)
    return true
  }

  /** Whether offer(h) with no RTT would take it: its slot is empty (or held by a failing contact). */
  wants(id: Uint8Array): boolean {
    const i = this.slotOf(id, 0)
    if (i < 0) return false
    const cur = this.handleAt(i)
    return cur < 0 || (this.failsAt(i) > 0 && !this.pool.hasId(cur, id))
  }

  /** The slot holding this id, or -1. */
  indexOf(id: Uint8Array): number {
    const i = this.slotOf(id, 0)
    if (i < 0) return -1
    const cur = this.handleAt(i)
    return cur >= 0 && this.pool.hasId(cur, id) ? i : -1
  }

  /** A message came from this id: it is alive. Returns whether it is in the table. */
  touch(id: Uint8Array, nowMs: number): boolean {
    const i = this.indexOf(id)
    if (i < 0) return false
    // An oracle-filled table that nothing has changed keeps no state array: seeing its contacts
    // does not make one (in a million-node simulation it would double the table's bytes).
    if (this.state && (this.failsAt(i) > 0 || nowMs - this.seenAt(i) >= 1000)) this.setState(i, nowMs, 0)
    return true
  }

  /** Records an RTT measured to this id, if it is in the table. */
  measured(id: Uint8Array, rttMs: number): void {
    const i = this.indexOf(id)
    if (i >= 0) this.setRtt(i, rttMs)
  }

  /** A request to this id went unanswered: its failure count, 0 if not in the table. */
  fail(id: Uint8Array): number {
    const i = this.indexOf(id)
    if (i < 0) return 0
    const f = this.failsAt(i) + 1
    this.setState(i, this.seenAt(i), f)
    return f
  }

  /** Empties this id's slot; its handle goes to `removed`, still retained. Returns the slot or -1. */
  remove(id: Uint8Array, removed: number[]): number {
    const i = this.indexOf(id)
    if (i < 0) return -1
    removed.push(this.slots[i] - 1)
    this.slots[i] = 0
    this.count--
    if (this.rtts) this.rtts[i] = 0
    return i
  }

  /** The handles of row r. */
  row(r: number): number[] {
    const out: number[] = []
    if (r >= this.rows) return out
    for (let i = r * this.cols, e = i + this.cols; i < e; i++) if (this.slots[i] !== 0) out.push(this.slots[i] - 1)
    return out
  }

  /** Calls fn for each entry, row by row. */
  forEach(fn: (h: number, slot: number) => void): void {
    for (let i = 0; i < this.slots.length; i++) if (this.slots[i] !== 0) fn(this.slots[i] - 1, i)
  }

  /**
   * Fills an empty table at once (the simulator's oracle fill): handles[j] into slots[j],
   * retained here. Allocates rows up to the deepest slot and nothing for state or RTTs.
   */
  fill(slots: ArrayLike<number>, handles: ArrayLike<number>, nowMs: number): void {
    if (this.count > 0) throw new Error('fill() is for an empty table')
    let deepest = -1
    for (let j = 0; j < slots.length; j++) deepest = Math.max(deepest, slots[j])
    this.filledAt = Math.floor(nowMs / 1000)
    this.state = null
    this.rtts = null
    if (deepest < 0) return
    this.ensureRows(Math.floor(deepest / this.cols) + 1)
    for (let j = 0; j < slots.length; j++) {
      this.pool.retain(handles[j])
      this.slots[slots[j]] = handles[j] + 1
    }
    this.count = slots.length
  }

  /** Releases every handle. */
  clear(): void {
    this.forEach((h) => this.pool.release(h))
    this.slots = EMPTY
    this.state = null
    this.rtts = null
    this.count = 0
  }
}
