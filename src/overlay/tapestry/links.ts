// Tapestry's routing table: Pastry's prefix table (row r, column c: a node sharing our first r
// digits whose digit r is c) with c links per slot instead of one, nearest by RTT first. Level 0
// holds each slot's primary, levels 1..c-1 its backups. A newcomer that beats a level's holder
// pushes the holder down a level; when a link is dropped the ones below move up, so a failed
// primary is replaced at once instead of after a repair.
import { ID_BYTES } from '../../identity/node-id.js'
import type { Arena } from '../arena.js'
import type { ContactPool } from '../contact-pool.js'
import { PrefixTable } from '../pastry/prefix-table.js'

export class LinkTable {
  readonly levels: PrefixTable[]
  readonly cols: number
  readonly maxRows: number

  constructor(self: Uint8Array, readonly b: number, links: number, private readonly pool: ContactPool, arena?: Arena) {
    this.levels = Array.from({ length: links }, () => new PrefixTable(self, b, pool, arena))
    this.cols = this.levels[0].cols
    this.maxRows = this.levels[0].maxRows
  }

  get size(): number {
    let n = 0
    for (const l of this.levels) n += l.size
    return n
  }

  /** Rows allocated: the primaries' (backups never reach deeper). */
  get rows(): number { return this.levels[0].rows }

  slotOf(id: Uint8Array): number { return this.levels[0].slotOf(id, 0) }

  /** The links of slot i, primary first (empty when the slot is). */
  linksAt(i: number): number[] {
    const out: number[] = []
    for (const l of this.levels) { const h = l.handleAt(i); if (h >= 0) out.push(h) }
    return out
  }

  /** The primary of slot i, or -1. */
  primaryAt(i: number): number {
    for (const l of this.levels) { const h = l.handleAt(i); if (h >= 0) return h }
    return -1
  }

  /** The level holding this id, or -1. */
  levelOf(id: Uint8Array): number {
    for (let j = 0; j < this.levels.length; j++) if (this.levels[j].indexOf(id) >= 0) return j
    return -1
  }

  /**
   * Offers handle h (with its RTT if measured): it takes the first level where PrefixTable.offer
   * takes it, and whoever it displaces is offered to the levels below. Handles that fall off the
   * last level go to `displaced`, still retained. Returns whether h is now held.
   */
  offer(h: number, nowMs: number, rttMs: number | undefined, displaced: number[]): boolean {
    const id = this.pool.id(h)
    const at = this.levelOf(id)
    if (at >= 0) { this.levels[at].offer(h, nowMs, rttMs, displaced); return false } // refreshes it
    const slot = this.slotOf(id)
    if (slot < 0) return false
    let cur = h, rtt = rttMs, took = false
    for (let j = 0; j < this.levels.length; j++) {
      const level = this.levels[j]
      const heldRtt = level.rttAt(slot)
      const out: number[] = []
      if (!level.offer(cur, nowMs, rtt, out)) continue
      if (cur === h) took = true
      else this.pool.release(cur) // the level below now holds its own reference
      if (out.length === 0) return took
      cur = out[0]
      rtt = heldRtt >= 0 ? heldRtt : undefined
    }
    if (cur !== h) displaced.push(cur)
    return took
  }

  /** Whether a link with no RTT would be taken: its slot has a free or failing level. */
  wants(id: Uint8Array): boolean {
    if (this.levelOf(id) >= 0) return false
    for (const l of this.levels) if (l.wants(id)) return true
    return false
  }

  touch(id: Uint8Array, nowMs: number): boolean {
    for (const l of this.levels) if (l.touch(id, nowMs)) return true
    return false
  }

  /** A request to this id went unanswered: its failure count, 0 if not held. */
  fail(id: Uint8Array): number {
    for (const l of this.levels) { const f = l.fail(id); if (f > 0) return f }
    return 0
  }

  /** Drops this id; the links below it move up a level. Its handle goes to `removed`, still retained. Returns the slot or -1. */
  remove(id: Uint8Array, removed: number[]): number {
    const j = this.levelOf(id)
    if (j < 0) return -1
    const slot = this.levels[j].remove(id, removed)
    const ids = this.pool.idArray()
    for (let k = j + 1; k < this.levels.length; k++) {
      const h = this.levels[k].handleAt(slot)
      if (h < 0) break
      const moved: number[] = []
      const rtt = this.levels[k].rttAt(slot)
      this.levels[k].remove(ids.subarray(h * ID_BYTES, (h + 1) * ID_BYTES), moved)
      this.levels[k - 1].offer(h, this.levels[k].seenAt(slot), rtt >= 0 ? rtt : undefined, [])
      this.pool.release(h)
    }
    return slot
  }

  /** Every link, level by level, row by row. */
  forEach(fn: (h: number, slot: number, level: number) => void): void {
    this.levels.forEach((l, j) => l.forEach((h, slot) => fn(h, slot, j)))
  }

  /** Row r's links: primaries first, then backups. */
  row(r: number): number[] {
    return this.levels.flatMap((l) => l.row(r))
  }

  /** The oracle fill: per level, slots and handles (see PrefixTable.fill). */
  fill(levels: { slots: number[]; handles: number[] }[], nowMs: number): void {
    levels.forEach((f, j) => this.levels[j].fill(f.slots, f.handles, nowMs))
  }

  seenAt(slot: number, level: number): number { return this.levels[level].seenAt(slot) }
  failsAt(slot: number, level: number): number { return this.levels[level].failsAt(slot) }
}
