// The Pastry topology (Rowstron and Druschel, 2001): ids as digits of b bits, a routing table
// whose row r holds nodes sharing our first r digits (one per value of digit r), and a leaf set
// of the nodes numerically nearest on each side. A key belongs to the node numerically nearest
// it (numericMetric). A route goes to the leaf set's nearest node when the key is within the
// leaf set, else to the table entry that shares one more digit with the key, else to any known
// node as near in prefix and numerically nearer: about log_{2^b} N hops. Table entries are
// picked by measured round-trip time (proximity), so early hops are short.
//
// Lookups here are iterative (lookup.ts, ranked by numericMetric) like Kademlia's: each node
// answers with the contacts it knows nearest the key, which converges as prefix routing does.
// nextHop() is the paper's routing rule, for routed (recursive) use and for measuring routes.
//
// Join: a lookup of our own id through the bootstrap (the paper routes a join message there),
// then routing-table row r from nodes that share r digits with us (NEIGHBORS ROW), and the leaf
// set from the nearest node (NEIGHBORS RING); then NOTIFY to each leaf, which adds us and
// answers with its leaf set. Repair: a contact that times out is dropped; a hole in the leaf set
// is refilled from the farthest leaf on that side, a table hole from another entry of its row
// (or of a deeper row). Maintenance: on a jittered interval, one leaf on each side (the one
// heard from least lately) is asked for its leaf set, and now and then one row is refreshed
// from a random entry of it, probing a few of the offered nodes' RTTs. leave() tells the leaf set (NEIGHBORS LEAVING).
//
// Where Tapestry (Zhao et al., 2001/2004) would differ, on the same digits:
// - No leaf set. A route that finds its slot empty takes the next non-empty column of that row
//   (surrogate routing, deterministic), so every node maps a key to the same root without
//   knowing its numeric neighbours; the root is the surrogate, not the numerically nearest node.
// - Objects are published by routing a pointer toward the root and leaving (key -> server)
//   pointers at every hop; a query routes toward the root and turns off at the first pointer,
//   so it finds nearby copies (Pastry's DHT stores at the k nearest nodes instead).
// - Each slot keeps a primary and backup links (c = 2 or 3 nodes, nearest by RTT first), so a
//   failed hop falls back at once instead of waiting for a repair, and joins run an
//   acknowledged multicast to the nodes sharing the newcomer's prefix to fill table holes.
import { WeftError } from '../../errors.js'
import { withDefaults } from '../../options.js'
import { ID_BYTES, idEquals, type NodeId } from '../../identity/node-id.js'
import type { Random, TimerHandle } from '../../runtime/runtime.js'
import type { Address } from '../../wire/address.js'
import { MAX_CONTACTS, MessageType, type NeighborsRequest } from '../../wire/messages.js'
import { ContactPool } from '../contact-pool.js'
import { numericMetric } from '../metric.js'
import type { Contact, LookupOptions, NodeSet, TableEntry, TopologyContext } from '../topology.js'
import { pastryFill } from './fill.js'
import { digitAt, sharedDigits } from './ids.js'
import { LeafSet, Side } from './leaf-set.js'
import { Nearest } from './nearest.js'
import { expectedNeighborsReply, Neighbors, neighborsRequest } from './neighbors.js'
import { PrefixTable } from './prefix-table.js'
import { check, PrefixTopology, validatePrefixOptions, type PrefixTopologyOptions } from './prefix-topology.js'

export interface PastryOptions extends PrefixTopologyOptions {
  /** Leaf set size, even: half on each side. At most 24, so a leaf set fits one reply. */
  leafSet: number
  /** Table refresh: every this long (jittered), one row is asked of a random entry of it. 0: never. */
  tableMaintenanceMs: number
}

export const defaultPastryOptions: PastryOptions = {
  b: 4, leafSet: 16, k: 20, alpha: 3, verify: 10,
  maintenanceIntervalMs: 60_000, tableMaintenanceMs: 10 * 60_000, jitter: 0.25,
  maxFailures: 1, maxProbes: 2, maxJoinRequests: 48, deadMemoryMs: 10 * 60_000, maxDead: 64,
}
const mergedOptions = withDefaults(defaultPastryOptions)

const MAX_LEAF_SET = 24
const ANNOUNCE_ROUNDS = 3

function validate(o: PastryOptions): void {
  const int = Number.isInteger
  validatePrefixOptions(o)
  check(int(o.leafSet) && o.leafSet >= 2 && o.leafSet <= MAX_LEAF_SET && o.leafSet % 2 === 0, `leafSet must be an even number from 2 to ${MAX_LEAF_SET}, got ${o.leafSet}`)
  check(o.tableMaintenanceMs === 0 || o.tableMaintenanceMs >= 1000, `tableMaintenanceMs must be 0 (off) or at least 1000, got ${o.tableMaintenanceMs}`)
}

/** Repairs in flight are keyed by row (0 and up) or leaf-set side (these). */
const REPAIR_CW = -1, REPAIR_CCW = -2

export class Pastry extends PrefixTopology {
  readonly name = 'pastry'
  readonly metric = numericMetric
  readonly options: PastryOptions
  readonly pool: ContactPool
  readonly leaves: LeafSet
  readonly table: PrefixTable
  private timer: TimerHandle | null = null
  private nextTableAt = 0
  /** Leaf candidates being asked whether they are alive (NOTIFY), by address. */
  private verifying: Map<Address, Promise<void>> | null = null

  constructor(ctx: TopologyContext, options: Partial<PastryOptions> = defaultPastryOptions) {
    super(ctx)
    this.options = mergedOptions(options)
    validate(this.options)
    this.pool = ctx.contacts ?? new ContactPool()
    this.leaves = new LeafSet(ctx.id, this.options.leafSet / 2, this.pool, ctx.arena)
    this.table = new PrefixTable(ctx.id, this.options.b, this.pool, ctx.arena)
    this.listen()
    this.schedule(true)
  }

  // ---- What others ask -------------------------------------------------------------------

  protected answer(from: Address, req: NeighborsRequest): { type: MessageType.NODES; contacts: Contact[] } {
    const asker = req.sender
    switch (req.what) {
      case Neighbors.LEAVING: {
        // Drop it now (only if it is the node we know at that address) and repair as after a failure.
        const known = this.findHandle(asker)
        if (known >= 0 && this.pool.address(known) === from) this.drop(asker)
        return { type: MessageType.NODES, contacts: this.leafContacts(asker) }
      }
      case Neighbors.RING:
      case Neighbors.NOTIFY: // the asker may be our leaf: onSeen has already offered it
        return { type: MessageType.NODES, contacts: this.leafContacts(asker) }
      case Neighbors.ROW: {
        if (req.arg >= this.table.maxRows) throw new WeftError('ERR_BAD_ARGUMENT', `no row ${req.arg} with b = ${this.options.b}`)
        const row = this.table.row(req.arg).filter((h) => !this.pool.hasId(h, asker))
        // A row longer than a reply (b > 4): a window from a random column, so that asking a few
        // nodes gathers most of it.
        let picked = row
        if (row.length > MAX_CONTACTS) {
          const start = this.ctx.runtime.random.u32() % row.length
          picked = []
          for (let j = 0; j < MAX_CONTACTS; j++) picked.push(row[(start + j) % row.length])
        }
        return { type: MessageType.NODES, contacts: picked.map((h) => this.contact(h)) }
      }
      default:
        throw new WeftError('ERR_BAD_ARGUMENT', `Pastry does not answer NEIGHBORS ${req.what}`)
    }
  }

  /** The leaf set as contacts, each once, without `exclude`. */
  private leafContacts(exclude?: Uint8Array): Contact[] {
    const seen = new Set<number>()
    const out: Contact[] = []
    this.leaves.forEach((h) => {
      if (seen.has(h) || (exclude && this.pool.hasId(h, exclude))) return
      seen.add(h)
      out.push(this.contact(h))
    })
    return out
  }

  // ---- Learning and forgetting contacts ----------------------------------------------------

  /** The handle of a known contact with this id (leaf set first), or -1. */
  private findHandle(id: Uint8Array): number {
    for (const side of [Side.CW, Side.CCW]) {
      const i = this.leaves.indexOf(side, id)
      if (i >= 0) return this.leaves.handle(side, i)
    }
    const slot = this.table.indexOf(id)
    return slot >= 0 ? this.table.handleAt(slot) : -1
  }

  private knows(id: Uint8Array): boolean {
    return this.leaves.has(id) || this.table.indexOf(id) >= 0
  }

  /** A message came from (id, address) itself: it is alive; add it where there is room for it. */
  protected observe(id: NodeId, address: Address): void {
    if (this.closed || idEquals(id, this.ctx.id)) return
    const now = this.ctx.runtime.now()
    this.revive(address)
    const inLeaves = this.leaves.touch(id, now)
    const inTable = this.table.touch(id, now)
    if ((!inLeaves && this.leaves.wants(id)) || (!inTable && this.table.wants(id))) this.learn(id, address, now, undefined)
  }

  /** Another node named (id, address): take it where there is room, unless we dropped it lately. */
  protected hear(id: NodeId, address: Address, now: number): void {
    if (idEquals(id, this.ctx.id) || address.endsWith(':0')) return
    if (this.droppedLately(address, now)) return
    if (this.table.wants(id)) this.learn(id, address, now, undefined, false)
    if (this.leaves.wants(id)) this.verify(id, address)
  }

  /**
   * A leaf candidate named by another node: it joins the leaf set only once it answers a NOTIFY
   * itself, which also tells it of us. (Hearsay leaves would bring crashed nodes back: some node
   * always still lists one in its table.) A candidate that does not answer is not asked again
   * for a while.
   */
  private verify(id: NodeId, address: Address): void {
    const verifying = (this.verifying ??= new Map())
    if (verifying.has(address) || verifying.size >= this.options.leafSet * 2 || this.closed) return
    const copy = new Uint8Array(id) // the id may be a view into a datagram
    verifying.set(address, this.ask({ id: copy, address }, Neighbors.NOTIFY, 0).then((contacts) => {
      verifying.delete(address)
      if (!contacts && !this.knows(copy)) this.remember(address)
    }))
  }

  /** Offers a contact to the table (with its RTT, when measured) and, if it is live, the leaf set. */
  protected learn(id: NodeId, address: Address, now: number, rttMs: number | undefined, live = true): void {
    const known = this.knows(id)
    const h = this.pool.acquire(id, address)
    const out: number[] = []
    const inLeaves = live && this.leaves.offer(h, now, out)
    const inTable = this.table.offer(h, now, rttMs, out)
    if ((inLeaves || inTable) && !known) this.onPeer('added', this.contact(h))
    this.pool.release(h)
    this.releaseAll(out)
  }

  /** Releases handles taken out of the table or leaf set, telling onPeer of contacts now unknown. */
  private releaseAll(handles: number[]): void {
    if (handles.length === 0) return
    const gone: Contact[] = []
    for (const h of handles) if (!gone.some((c) => this.pool.hasId(h, c.id))) gone.push(this.contact(h))
    for (const h of handles) this.pool.release(h)
    for (const c of gone) if (!this.knows(c.id)) this.onPeer('removed', c)
  }

  /**
   * A request to this contact went unanswered (after the rpc's retries). Public for routed use:
   * a layer that forwards along nextHop() reports the hops that do not answer, and asks again.
   */
  failed(id: NodeId): void {
    if (this.closed) return
    const fails = Math.max(this.leaves.fail(id), this.table.fail(id))
    if (fails >= this.options.maxFailures) this.drop(id)
  }

  /** Forgets a contact at once and repairs the holes it leaves. */
  protected drop(id: NodeId): void {
    const out: number[] = []
    const sides = this.leaves.remove(id, out)
    const slot = this.table.remove(id, out)
    if (out.length === 0) return
    this.remember(this.pool.address(out[0]))
    this.releaseAll(out)
    if (sides & (1 << Side.CW)) this.repairLeaves(Side.CW)
    if (sides & (1 << Side.CCW)) this.repairLeaves(Side.CCW)
    if (slot >= 0) this.repairRow(Math.floor(slot / this.table.cols))
  }

  /** A leaf-set side lost a leaf: ask the farthest one left on it (else the nearest on the other) for its leaf set. */
  private repairLeaves(side: Side): void {
    const key = side === Side.CW ? REPAIR_CW : REPAIR_CCW
    if (this.closed || this.repairing?.has(key)) return
    const other = side === Side.CW ? Side.CCW : Side.CW
    const n = this.leaves.size(side)
    const h = n > 0 ? this.leaves.handle(side, n - 1) : this.leaves.size(other) > 0 ? this.leaves.handle(other, 0) : -1
    if (h < 0) return
    ;(this.repairing ??= new Set()).add(key)
    void this.ask(this.contact(h), Neighbors.RING, 0).then(() => this.repairing!.delete(key))
  }

  /** A Pastry answer: a row of 2^b - 1 contacts, or the leaf set. */
  protected expectedContacts(what: number): number {
    return what === Neighbors.ROW ? this.table.cols - 1 : this.options.leafSet
  }

  // ---- Maintenance --------------------------------------------------------------------------

  private jittered(ms: number, random: Random): number {
    return ms * (1 + this.options.jitter * (2 * random.float() - 1))
  }

  private schedule(first = false): void {
    const every = this.options.maintenanceIntervalMs
    if (this.closed || every <= 0) return
    const random = this.ctx.runtime.random
    if (first) this.nextTableAt = this.ctx.runtime.now() + random.float() * this.options.tableMaintenanceMs
    // The first tick falls anywhere in the interval, so nodes made together do not tick together.
    this.timer = this.ctx.runtime.setTimeout(() => this.tick(), first ? random.float() * every : this.jittered(every, random))
  }

  private tick(): void {
    this.timer = null
    if (this.closed) return
    // Keep-alive and repair of the leaf set: on each side, the leaf heard from least lately is
    // asked for its leaves, unless it was heard from within the interval (then all were). A
    // crashed leaf is never heard from, so it is found within a tick or two.
    const now = this.ctx.runtime.now()
    for (const side of [Side.CW, Side.CCW]) {
      const i = this.leaves.stalest(side)
      if (i >= 0 && now - this.leaves.seenAt(side, i) >= this.options.maintenanceIntervalMs) {
        void this.ask(this.contact(this.leaves.handle(side, i)), Neighbors.RING, 0)
      }
    }
    if (this.options.tableMaintenanceMs > 0 && now >= this.nextTableAt) {
      this.nextTableAt = now + this.jittered(this.options.tableMaintenanceMs, this.ctx.runtime.random)
      this.refreshRow()
    }
    this.schedule()
  }

  /**
   * The paper's table maintenance: a random entry of a random row is asked for its row; the
   * answer fills holes, and a few of the nodes offered for held slots get their RTT measured.
   */
  private refreshRow(): void {
    const rows: number[] = []
    for (let r = 0; r < this.table.rows; r++) if (this.table.row(r).length > 0) rows.push(r)
    if (rows.length === 0) return
    const random = this.ctx.runtime.random
    const r = rows[random.u32() % rows.length]
    const row = this.table.row(r)
    void this.ask(this.contact(row[random.u32() % row.length]), Neighbors.ROW, r).then((contacts) => {
      if (!contacts) return
      let probes = this.options.maxProbes
      for (const c of contacts) {
        if (probes <= 0) break
        const slot = this.table.slotOf(c.id, 0)
        if (slot < 0 || this.table.handleAt(slot) < 0 || this.table.indexOf(c.id) >= 0) continue
        probes--
        this.probe(c)
      }
    })
  }

  // ---- Topology -----------------------------------------------------------------------------

  async join(bootstrap: Address[], options: LookupOptions = {}): Promise<void> {
    if (bootstrap.length === 0) return // the first node of a new network
    const result = await this.lookup(this.ctx.id, options, bootstrap)
    const now = this.ctx.runtime.now()
    for (const c of result.closest) this.hear(c.id, c.address, now)
    if (this.size() === 0) throw new WeftError('ERR_BOOTSTRAP_FAILED', `no bootstrap peer answered (${bootstrap.join(', ')})`)
    await this.fetchRows(options.signal)
    await this.announce(options.signal)
  }

  /**
   * Row r from nodes sharing at least r digits with us (the paper takes it from the r-th node
   * on the join route), for every row down to the nearest node's; a row wider than one reply
   * from several nodes. The nearest node's leaf set as well.
   */
  private async fetchRows(signal?: AbortSignal): Promise<void> {
    const ids = this.pool.idArray()
    const known: number[] = [], depth: number[] = []
    const add = (h: number): void => {
      if (known.includes(h)) return
      known.push(h)
      depth.push(sharedDigits(this.ctx.id, this.options.b, ids, h * ID_BYTES))
    }
    this.leaves.forEach(add)
    this.table.forEach(add)
    if (known.length === 0) return
    const deepest = Math.min(this.table.maxRows - 1, Math.max(...depth))
    const random = this.ctx.runtime.random
    const perRow = Math.ceil((this.table.cols - 1) / MAX_CONTACTS)
    const asks: [Contact, number, number][] = []
    const [nearest] = this.nearestHandles(this.ctx.id, 1)
    if (nearest !== undefined) asks.push([this.contact(nearest), Neighbors.RING, 0])
    for (let r = 0; r <= deepest && asks.length < this.options.maxJoinRequests; r++) {
      const able = known.filter((_, j) => depth[j] >= r)
      for (let n = 0; n < perRow && able.length > 0 && asks.length < this.options.maxJoinRequests; n++) {
        const j = random.u32() % able.length
        asks.push([this.contact(able[j]), Neighbors.ROW, r])
        able.splice(j, 1)
      }
    }
    await this.inParallel(asks.map(([c, what, arg]) => () => this.ask(c, what, arg)), signal)
  }

  /**
   * Waits for the NOTIFY requests to the new leaves learned so far (verify()), and to those their
   * answers bring, for a few rounds: then our leaf set is right and our leaves know us.
   */
  private async announce(signal?: AbortSignal): Promise<void> {
    for (let round = 0; round < ANNOUNCE_ROUNDS && !this.closed && !signal?.aborted; round++) {
      const pending = [...(this.verifying?.values() ?? [])]
      if (pending.length === 0) break
      await Promise.all(pending)
    }
  }

  async leave(): Promise<void> {
    const leaves = this.leafContacts()
    await Promise.all(leaves.map((c) => new Promise<void>((resolve) => {
      this.ctx.rpc.request(c.address, neighborsRequest(Neighbors.LEAVING), expectedNeighborsReply(c.address, this.options.leafSet), () => resolve())
    })))
  }

  nextHop(target: NodeId): Contact | null {
    if (idEquals(target, this.ctx.id)) return null
    const ids = this.pool.idArray()
    const near = new Nearest(target, 1)
    near.offer(-1, this.ctx.id, 0) // ourselves: -1
    if (this.leaves.covers(target)) {
      // Within the leaf set's range: its numerically nearest member (or us) is the key's node.
      this.leaves.forEach((h) => near.offer(h, ids, h * ID_BYTES))
    } else {
      const b = this.options.b
      const r = sharedDigits(this.ctx.id, b, target)
      const h = this.table.handleAt(r * this.table.cols + digitAt(target, r, b))
      if (h >= 0) return this.contact(h)
      // The rare case: a known node sharing as long a prefix with the key and numerically nearer.
      const consider = (x: number): void => { if (sharedDigits(target, b, ids, x * ID_BYTES) >= r) near.offer(x, ids, x * ID_BYTES) }
      this.leaves.forEach(consider)
      this.table.forEach(consider)
      if (near.handles[0] < 0) {
        // None: any nearer node at all keeps the route going (tables still repairing).
        this.leaves.forEach((x) => near.offer(x, ids, x * ID_BYTES))
        this.table.forEach((x) => near.offer(x, ids, x * ID_BYTES))
      }
    }
    const best = near.handles[0]
    return best < 0 ? null : this.contact(best)
  }

  /** Handles of the n known contacts numerically nearest target (not `exclude`), nearest first. */
  private nearestHandles(target: Uint8Array, n: number, exclude?: Uint8Array): number[] {
    const ids = this.pool.idArray()
    const near = new Nearest(target, n)
    const offer = (h: number): void => { if (!exclude || !this.pool.hasId(h, exclude)) near.offer(h, ids, h * ID_BYTES) }
    this.leaves.forEach(offer)
    this.table.forEach(offer)
    return near.handles
  }

  protected nearest(target: Uint8Array, n: number, exclude?: Uint8Array): Contact[] {
    return this.nearestHandles(target, n, exclude).map((h) => this.contact(h))
  }

  closest(target: NodeId, n: number): Contact[] {
    return this.nearest(target, n)
  }

  entries(): TableEntry[] {
    const now = this.ctx.runtime.now()
    const out: TableEntry[] = []
    this.leaves.forEach((h, side, i) => {
      out.push({ ...this.contact(h), slot: `leaf ${side === Side.CW ? '+' : '-'}${i + 1}`, lastSeenMs: Math.max(0, now - this.leaves.seenAt(side, i)), failures: this.leaves.failsAt(side, i) })
    })
    const cols = this.table.cols
    this.table.forEach((h, slot) => {
      const r = Math.floor(slot / cols), c = slot % cols
      out.push({ ...this.contact(h), slot: `row ${r} col ${c.toString(16)}`, lastSeenMs: Math.max(0, now - this.table.seenAt(slot)), failures: this.table.failsAt(slot) })
    })
    return out
  }

  size(): number {
    // The table's contacts, and the leaves it does not hold (a leaf on both sides counts once).
    let n = this.table.size
    const ids = this.pool.idArray()
    this.leaves.forEach((h, side, i) => {
      const id = ids.subarray(h * ID_BYTES, (h + 1) * ID_BYTES)
      if (this.table.indexOf(id) >= 0) return
      if (side === Side.CCW && this.leaves.indexOf(Side.CW, id) >= 0) return
      n++
    })
    return n
  }

  fill(nodes: NodeSet, random: Random, now: number): void {
    const f = pastryFill(this.ctx.id, this.options.b, this.options.leafSet / 2, nodes, random)
    this.leaves.fill(f.cw, f.ccw, now)
    this.table.fill(f.slots, f.handles, now)
  }

  close(): void {
    this.closed = true
    if (this.timer) { this.ctx.runtime.clearTimeout(this.timer); this.timer = null }
  }
}
