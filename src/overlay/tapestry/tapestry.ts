// The Tapestry topology (Zhao, Kubiatowicz and Joseph, 2001; Zhao et al., 2004) on Pastry's
// digits: ids as digits of b bits, a routing table whose row r holds nodes sharing our first r
// digits, one slot per value of digit r, each slot with c links (a primary and backups, nearest
// by RTT first: links.ts). There is no leaf set.
//
// Surrogate routing: a route for key t at row r takes column t_r, or when that slot is empty
// the next higher column that is not (wrapping round); reaching our own column means we are as
// good as any at this digit, and the walk goes on at row r + 1. Every node with a complete table
// walks to the same node, the key's root, without knowing its numeric neighbours. The root is
// the least id in surrogateMetric's order, which lookups, the DHT and the oracle rank by.
//
// Join: a lookup of our own id through the bootstrap, then row r from nodes that share r
// digits with us (NEIGHBORS ROW), then NOTIFY to every node sharing our longest prefix: they
// are the ones with a hole where we fit (the papers' acknowledged multicast, done here as a
// bounded walk of that subtree). Repair: a contact that does not answer is dropped and its
// backups move up at once; the slot is refilled from another entry of its row. Maintenance:
// every interval (jittered) one row is asked of a random entry of it, and a few of the offered
// nodes get their RTT measured, so slots drift toward nearer nodes. leave() tells the primaries.
//
// Object location (publish, locate: pointers left on the route to an object's root) is in
// location.ts, on top of nextHops(); publish() and locate() here are its face.
import { WeftError } from '../../errors.js'
import { withDefaults } from '../../options.js'
import { ID_BYTES, idEquals, type NodeId } from '../../identity/node-id.js'
import { expectedPongBytes } from '../../rpc/rpc.js'
import type { Random, TimerHandle } from '../../runtime/runtime.js'
import type { Address } from '../../wire/address.js'
import { MAX_CONTACTS, MessageType, type NeighborsRequest } from '../../wire/messages.js'
import { ContactPool } from '../contact-pool.js'
import { surrogateMetric, type Metric } from '../metric.js'
import { digitAt, sharedDigits } from '../pastry/ids.js'
import { expectedNeighborsReply, Neighbors, neighborsRequest } from '../pastry/neighbors.js'
import type { Contact, LookupOptions, NodeSet, TableEntry, TopologyContext } from '../topology.js'
import { tapestryFill } from './fill.js'
import { LinkTable } from './links.js'
import { check, PrefixTopology, validatePrefixOptions, type PrefixTopologyOptions } from '../pastry/prefix-topology.js'
import { ObjectLocation, type LocateResult, type PublishResult } from './location.js'

export interface TapestryOptions extends PrefixTopologyOptions {
  /** Links per slot: a primary and links - 1 backups (the papers use 3). */
  links: number
  /** Oracle fill: nodes sampled per slot, the nearest by RTT kept (the simulator's stand-in for probing). */
  fillSamples: number
  /** Object location: how long a pointer lives on a publish route. */
  pointerTtlMs: number
  /** Object location: published objects are published again this often (below pointerTtlMs). */
  republishMs: number
  /** Object location: objects this node holds pointers for, at most. */
  maxPointerObjects: number
}

export const defaultTapestryOptions: TapestryOptions = {
  b: 4, links: 3, k: 20, alpha: 3, verify: 10,
  maintenanceIntervalMs: 60_000, jitter: 0.25, maxFailures: 1, maxProbes: 2, maxJoinRequests: 64,
  fillSamples: 16, deadMemoryMs: 10 * 60_000, maxDead: 64,
  pointerTtlMs: 40 * 60_000, republishMs: 15 * 60_000, maxPointerObjects: 10_000,
}
const mergedOptions = withDefaults(defaultTapestryOptions)


function validate(o: TapestryOptions): void {
  const int = Number.isInteger
  validatePrefixOptions(o)
  check(int(o.links) && o.links >= 1 && o.links <= 4, `links (per slot) must be a whole number from 1 to 4, got ${o.links}`)
  check(int(o.fillSamples) && o.fillSamples >= 1 && o.fillSamples <= 1024, `fillSamples must be between 1 and 1024, got ${o.fillSamples}`)
  check(o.pointerTtlMs >= 1000, `pointerTtlMs must be at least 1000, got ${o.pointerTtlMs}`)
  check(o.republishMs > 0 && o.republishMs < o.pointerTtlMs, `republishMs must be above 0 and below pointerTtlMs (${o.pointerTtlMs}), got ${o.republishMs}`)
  check(int(o.maxPointerObjects) && o.maxPointerObjects >= 1, `maxPointerObjects must be a whole number of at least 1, got ${o.maxPointerObjects}`)
}

export class Tapestry extends PrefixTopology {
  readonly name = 'tapestry'
  readonly metric: Metric
  readonly options: TapestryOptions
  readonly pool: ContactPool
  readonly table: LinkTable
  readonly location: ObjectLocation
  private timer: TimerHandle | null = null
  /** The row the next upkeep tick refreshes. */
  private nextRow = 0
  private ticks = 0

  constructor(ctx: TopologyContext, options: Partial<TapestryOptions> = defaultTapestryOptions) {
    super(ctx)
    this.options = mergedOptions(options)
    validate(this.options)
    this.metric = surrogateMetric(this.options.b)
    this.pool = ctx.contacts ?? new ContactPool()
    this.table = new LinkTable(ctx.id, this.options.b, this.options.links, this.pool, ctx.arena)
    this.listen()
    const o = this.options
    this.location = new ObjectLocation(ctx, this, { pointerTtlMs: o.pointerTtlMs, republishMs: o.republishMs, store: { maxObjects: o.maxPointerObjects } })
    this.schedule(true)
  }

  /** Leaves pointers to this node on the route to the object's root (object: 32 bytes or 64 hex digits); republished until unpublish(). */
  publish(object: string | Uint8Array): Promise<PublishResult> { return this.location.publish(object) }
  /** The nearest server known at the first pointer on the route to the object's root. */
  locate(object: string | Uint8Array): Promise<LocateResult> { return this.location.locate(object) }
  unpublish(object: string | Uint8Array): Promise<void> { return this.location.unpublish(object) }

  // ---- What others ask -------------------------------------------------------------------

  protected answer(from: Address, req: NeighborsRequest): { type: MessageType.NODES; contacts: Contact[] } {
    const asker = req.sender
    switch (req.what) {
      case Neighbors.LEAVING: {
        const level = this.table.levelOf(asker)
        if (level >= 0) {
          const slot = this.table.slotOf(asker)
          if (this.pool.address(this.table.levels[level].handleAt(slot)) === from) this.drop(asker)
        }
        return { type: MessageType.NODES, contacts: [] }
      }
      case Neighbors.ROW:
      case Neighbors.NOTIFY: { // NOTIFY: a newcomer sharing `arg` digits with us (onSeen has offered it); it wants rows arg and deeper
        if (req.arg >= this.table.maxRows) throw new WeftError('ERR_BAD_ARGUMENT', `no row ${req.arg} with b = ${this.options.b}`)
        // Primaries first, then backups: a repair finds live nodes in a column whose primary died.
        let handles = req.what === Neighbors.ROW ? this.table.row(req.arg) : []
        if (req.what === Neighbors.NOTIFY) for (let r = req.arg; r < this.table.rows; r++) handles.push(...this.table.levels[0].row(r))
        handles = handles.filter((h) => !this.pool.hasId(h, asker))
        // Longer than a reply (b > 4, or deep rows): a window from a random place, so that asking a few nodes gathers most of it.
        if (handles.length > MAX_CONTACTS) {
          const start = this.ctx.runtime.random.u32() % handles.length
          handles = Array.from({ length: MAX_CONTACTS }, (_, j) => handles[(start + j) % handles.length])
        }
        return { type: MessageType.NODES, contacts: handles.map((h) => this.contact(h)) }
      }
      default:
        throw new WeftError('ERR_BAD_ARGUMENT', `Tapestry does not answer NEIGHBORS ${req.what}`)
    }
  }

  // ---- Learning and forgetting contacts ----------------------------------------------------

  private knows(id: Uint8Array): boolean {
    return this.table.levelOf(id) >= 0
  }

  /** A message came from (id, address) itself: it is alive; add it where there is room for it. */
  protected observe(id: NodeId, address: Address): void {
    if (this.closed || idEquals(id, this.ctx.id)) return
    this.revive(address)
    const now = this.ctx.runtime.now()
    if (!this.table.touch(id, now) && this.table.wants(id)) this.learn(id, address, now, undefined)
  }

  /** Another node named (id, address): take it where there is room, unless we dropped it lately. */
  protected hear(id: NodeId, address: Address, now: number): void {
    if (idEquals(id, this.ctx.id) || address.endsWith(':0')) return
    if (this.droppedLately(address, now)) return
    if (this.table.wants(id)) this.learn(id, address, now, undefined)
  }

  protected learn(id: NodeId, address: Address, now: number, rttMs: number | undefined): void {
    const known = this.knows(id)
    const h = this.pool.acquire(id, address)
    const out: number[] = []
    const took = this.table.offer(h, now, rttMs, out)
    if (took && !known) this.onPeer('added', this.contact(h))
    this.pool.release(h)
    this.releaseAll(out)
  }

  private releaseAll(handles: number[]): void {
    if (handles.length === 0) return
    const gone = handles.map((h) => this.contact(h))
    for (const h of handles) this.pool.release(h)
    for (const c of gone) if (!this.knows(c.id)) this.onPeer('removed', c)
  }

  /** A request to this contact went unanswered (after the rpc's retries); public for routed use (location.ts). */
  failed(id: NodeId): void {
    if (this.closed) return
    if (this.table.fail(id) >= this.options.maxFailures) this.drop(id)
  }

  /** Forgets a contact at once (its backups move up) and refills its slot. */
  protected drop(id: NodeId): void {
    const out: number[] = []
    const slot = this.table.remove(id, out)
    if (out.length === 0) return
    this.remember(this.pool.address(out[0]))
    this.releaseAll(out)
    if (slot >= 0) this.repairRow(Math.floor(slot / this.table.cols))
  }

  /** A Tapestry answer is at most a full reply (rows wider than one are windowed). */
  protected expectedContacts(): number {
    return MAX_CONTACTS
  }

  // ---- Maintenance --------------------------------------------------------------------------

  private schedule(first = false): void {
    const every = this.options.maintenanceIntervalMs
    if (this.closed || every <= 0) return
    const random = this.ctx.runtime.random
    const ms = first ? random.float() * every : every * (1 + this.options.jitter * (2 * random.float() - 1))
    this.timer = this.ctx.runtime.setTimeout(() => this.tick(), ms)
  }

  /**
   * Upkeep, one step per tick: the next non-empty row in turn is asked of a random entry of it
   * (the answer fills holes, and a few of the nodes offered for held slots get their RTT
   * measured, so nearer nodes take the primary place); and the link heard from least lately is
   * pinged, so dead links are found even where no route goes.
   */
  private tick(): void {
    this.timer = null
    if (this.closed) return
    const rows = this.table.rows
    for (let n = 0; n < rows; n++) {
      const r = this.nextRow++ % rows
      const row = this.table.row(r)
      if (row.length === 0) continue
      void this.ask(this.contact(row[this.ctx.runtime.random.u32() % row.length]), Neighbors.ROW, r).then((contacts) => {
        if (!contacts) return
        let probes = this.options.maxProbes
        for (const c of contacts) {
          if (probes <= 0) break
          const slot = this.table.slotOf(c.id)
          if (slot < 0 || this.table.primaryAt(slot) < 0 || this.knows(c.id)) continue
          probes--
          this.probe(c)
        }
      })
      break
    }
    this.ticks++
    const stalest = this.stalest()
    if (stalest >= 0) this.ping(this.contact(stalest))
    this.schedule()
  }

  /** The link heard from least lately (-1: none); among equals (a filled table's), a different one each time. */
  private stalest(): number {
    const handles: number[] = [], seen: number[] = []
    this.table.forEach((h, slot, level) => { handles.push(h); seen.push(this.table.seenAt(slot, level)) })
    if (handles.length === 0) return -1
    const start = this.ticks % handles.length
    let best = start
    for (let j = 1; j < handles.length; j++) {
      const i = (start + j) % handles.length
      if (seen[i] < seen[best]) best = i
    }
    return handles[best]
  }

  /** A liveness check: an answer refreshes the link (onSeen), silence drops it. */
  private ping(c: Contact): void {
    this.ctx.rpc.request(c.address, { type: MessageType.PING }, expectedPongBytes(c.address), (err, reply) => {
      if (this.closed) return
      if (err?.code === 'ERR_TIMEOUT') this.failed(c.id)
      else if (reply && !idEquals(reply.sender, c.id)) this.drop(c.id)
    })
  }

  // ---- Topology -----------------------------------------------------------------------------

  async join(bootstrap: Address[], options: LookupOptions = {}): Promise<void> {
    if (bootstrap.length === 0) return // the first node of a new network
    const result = await this.lookup(this.ctx.id, options, bootstrap)
    const now = this.ctx.runtime.now()
    for (const c of result.closest) this.hear(c.id, c.address, now)
    if (this.size() === 0) throw new WeftError('ERR_BOOTSTRAP_FAILED', `no bootstrap peer answered (${bootstrap.join(', ')})`)
    let budget = this.options.maxJoinRequests
    budget -= await this.fetchRows(budget, options.signal)
    await this.announce(budget, options.signal)
  }

  /** Digits each known contact shares with us, by handle. */
  private depths(): Map<number, number> {
    const ids = this.pool.idArray()
    const out = new Map<number, number>()
    this.table.forEach((h) => out.set(h, sharedDigits(this.ctx.id, this.options.b, ids, h * ID_BYTES)))
    return out
  }

  /** Row r from nodes sharing at least r digits with us, for every row down to the deepest we know. Returns requests sent. */
  private async fetchRows(budget: number, signal?: AbortSignal): Promise<number> {
    const depth = this.depths()
    if (depth.size === 0) return 0
    const deepest = Math.min(this.table.maxRows - 1, Math.max(...depth.values()))
    const random = this.ctx.runtime.random
    const asks: [Contact, number][] = []
    for (let r = 0; r <= deepest && asks.length < budget; r++) {
      const able = [...depth].filter(([, d]) => d >= r).map(([h]) => h)
      for (let n = 0; n < 2 && able.length > 0 && asks.length < budget; n++) {
        const j = random.u32() % able.length
        asks.push([this.contact(able[j]), r])
        able.splice(j, 1)
      }
    }
    await this.inParallel(asks.map(([c, r]) => () => this.ask(c, Neighbors.ROW, r)), signal)
    return asks.length
  }

  /**
   * Tells every node that shares our longest prefix (p digits) about us: each has an empty or
   * farther slot where we fit, and answers with the nodes it knows under that prefix, which are
   * told in turn. A bounded walk of the subtree: the acknowledged multicast of the papers.
   */
  private async announce(budget: number, signal?: AbortSignal): Promise<void> {
    const depth = this.depths()
    if (depth.size === 0) return
    const p = Math.max(...depth.values())
    const told = new Set<Address>()
    let wave = [...depth].filter(([, d]) => d >= p).map(([h]) => this.contact(h))
    while (wave.length > 0 && budget > 0 && !this.closed && !signal?.aborted) {
      const batch = wave.filter((c) => !told.has(c.address)).slice(0, budget)
      budget -= batch.length
      for (const c of batch) told.add(c.address)
      const next: Contact[] = []
      await this.inParallel(batch.map((c) => async () => {
        const named = await this.ask(c, Neighbors.NOTIFY, p)
        for (const n of named ?? []) if (sharedDigits(this.ctx.id, this.options.b, n.id) >= p && !told.has(n.address)) next.push(n)
      }), signal)
      wave = next
    }
  }

  async leave(): Promise<void> {
    const primaries = this.table.levels[0]
    const to: Contact[] = []
    primaries.forEach((h) => to.push(this.contact(h)))
    await Promise.all(to.map((c) => new Promise<void>((resolve) => {
      this.ctx.rpc.request(c.address, neighborsRequest(Neighbors.LEAVING), expectedNeighborsReply(c.address, 0), () => resolve())
    })))
  }

  /**
   * Surrogate routing: the slots a route toward target may take from here, in order, until n
   * links are found; none when this node is the root. Row by row, the key's digit or the next
   * higher one with a link; our own digit: on to the next row. The first slot is the route; the
   * ones after it are where the route goes if that slot's links all turn out dead.
   */
  private routeSlots(target: Uint8Array, n: number): number[] {
    const { b } = this.options
    const cols = this.table.cols, rows = this.table.rows
    const out: number[] = []
    let links = 0
    for (let r = 0; r < rows; r++) {
      const want = digitAt(target, r, b), mine = digitAt(this.ctx.id, r, b)
      for (let j = 0; j < cols; j++) {
        const c = (want + j) & (cols - 1)
        if (c === mine) break
        const slot = r * cols + c
        if (this.table.primaryAt(slot) < 0) continue
        out.push(slot)
        links += this.table.linksAt(slot).length
        if (links >= n) return out
      }
    }
    return out
  }

  nextHop(target: NodeId): Contact | null {
    const [slot] = this.routeSlots(target, 1)
    return slot === undefined ? null : this.contact(this.table.primaryAt(slot))
  }

  /**
   * Up to n links toward target, best first: the next hop's slot (primary, then backups), then
   * the slots surrogate routing would take if those were all dead. Empty when this node is the root.
   */
  nextHops(target: Uint8Array, n = 4): Contact[] {
    const out: Contact[] = []
    for (const slot of this.routeSlots(target, n)) for (const h of this.table.linksAt(slot)) if (out.length < n) out.push(this.contact(h))
    return out
  }

  protected nearest(target: Uint8Array, n: number, exclude?: Uint8Array): Contact[] {
    const ids = this.pool.idArray()
    const handles: number[] = []
    this.table.forEach((h) => { if (!exclude || !this.pool.hasId(h, exclude)) handles.push(h) })
    const view = (h: number): Uint8Array => ids.subarray(h * ID_BYTES, (h + 1) * ID_BYTES)
    handles.sort((x, y) => this.metric.compare(target, view(x), view(y)))
    return handles.slice(0, n).map((h) => this.contact(h))
  }

  closest(target: NodeId, n: number): Contact[] {
    return this.nearest(target, n)
  }

  entries(): TableEntry[] {
    const now = this.ctx.runtime.now()
    const cols = this.table.cols
    const out: TableEntry[] = []
    this.table.forEach((h, slot, level) => {
      const r = Math.floor(slot / cols), c = slot % cols
      out.push({
        ...this.contact(h), slot: `row ${r} col ${c.toString(16)}${level > 0 ? ` backup ${level}` : ''}`,
        lastSeenMs: Math.max(0, now - this.table.seenAt(slot, level)), failures: this.table.failsAt(slot, level),
      })
    })
    return out
  }

  size(): number {
    return this.table.size
  }

  fill(nodes: NodeSet, random: Random, now: number): void {
    this.table.fill(tapestryFill(this.ctx.id, this.options.b, this.options.links, this.options.fillSamples, nodes, random), now)
  }

  close(): void {
    this.closed = true
    this.location.close()
    if (this.timer) { this.ctx.runtime.clearTimeout(this.timer); this.timer = null }
  }
}
