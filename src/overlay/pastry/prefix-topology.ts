// What Pastry and Tapestry share: both keep a prefix table of pool handles, ask their neighbours
// NEIGHBORS questions and merge the answers, measure RTTs with pings for proximity, keep dropped
// addresses out of hearsay for a while, and look keys up with the generic iterative walk ranked
// by their own metric. Each subclass says how a contact is learnt, heard of and dropped.
import { WeftError } from '../../errors.js'
import { idEquals, type NodeId } from '../../identity/node-id.js'
import { expectedPongBytes } from '../../rpc/rpc.js'
import type { Address } from '../../wire/address.js'
import { Flag, MAX_CONTACTS, MessageType, type FindNode, type NeighborsRequest, type Reply } from '../../wire/messages.js'
import type { ContactPool } from '../contact-pool.js'
import { iterativeFindNode } from '../lookup.js'
import type { Metric } from '../metric.js'
import type { Contact, LookupOptions, LookupResult, TableEntry, Topology, TopologyContext } from '../topology.js'
import { MAX_DIGIT_BITS, MIN_DIGIT_BITS } from './ids.js'
import { expectedNeighborsReply, Neighbors, neighborsRequest } from './neighbors.js'

/** The options every prefix topology has. */
export interface PrefixTopologyOptions {
  /** Bits per digit, 1 to 8: rows of 2^b columns, about log_{2^b} N rows and hops. */
  b: number
  /** Results per lookup and contacts per FIND_NODE answer. */
  k: number
  /** Requests in flight per lookup. */
  alpha: number
  /** Nearest nodes that must answer before a lookup ends; k for the strict rule. */
  verify: number
  /** The upkeep tick, every this long (jittered): Pastry checks its leaf set, Tapestry a row and its stalest link. 0: never. */
  maintenanceIntervalMs: number
  /** Timers vary by up to this fraction either way, so nodes do not act in step. */
  jitter: number
  /** Unanswered requests (each after the rpc's retries) before a contact is dropped. */
  maxFailures: number
  /** New nodes whose RTT a table refresh measures, to keep the nearer ones in a slot. */
  maxProbes: number
  /** Requests sent to fill the table (and leaf set) and make ourselves known on join. */
  maxJoinRequests: number
  /** A dropped contact is not taken back from other nodes' answers for this long (only if heard from itself). */
  deadMemoryMs: number
  /** Dropped contacts remembered, oldest forgotten first. */
  maxDead: number
}

export function check(ok: boolean, message: string): void {
  if (!ok) throw new WeftError('ERR_BAD_ARGUMENT', message)
}

/** Checks the options every prefix topology has; each checks its own after. */
export function validatePrefixOptions(o: PrefixTopologyOptions): void {
  const int = Number.isInteger
  check(int(o.b) && o.b >= MIN_DIGIT_BITS && o.b <= MAX_DIGIT_BITS, `b (bits per digit) must be a whole number from ${MIN_DIGIT_BITS} to ${MAX_DIGIT_BITS}, got ${o.b}`)
  check(int(o.k) && o.k >= 1 && o.k <= MAX_CONTACTS, `k must be between 1 and ${MAX_CONTACTS} (a reply must fit one datagram), got ${o.k}`)
  check(int(o.alpha) && o.alpha >= 1 && o.alpha <= 16, `alpha must be between 1 and 16, got ${o.alpha}`)
  check(int(o.verify) && o.verify >= 1, `verify must be a whole number of at least 1, got ${o.verify}`)
  check(o.maintenanceIntervalMs === 0 || o.maintenanceIntervalMs >= 1000, `maintenanceIntervalMs must be 0 (off) or at least 1000, got ${o.maintenanceIntervalMs}`)
  check(o.jitter >= 0 && o.jitter < 1, `jitter must be a fraction at least 0 and below 1, got ${o.jitter}`)
  check(int(o.maxFailures) && o.maxFailures >= 1 && o.maxFailures <= 63, `maxFailures must be between 1 and 63, got ${o.maxFailures}`)
  check(int(o.maxProbes) && o.maxProbes >= 0 && o.maxProbes <= 16, `maxProbes must be between 0 and 16, got ${o.maxProbes}`)
  check(int(o.maxJoinRequests) && o.maxJoinRequests >= 1 && o.maxJoinRequests <= 1024, `maxJoinRequests must be between 1 and 1024, got ${o.maxJoinRequests}`)
  check(o.deadMemoryMs >= 0, `deadMemoryMs must be at least 0, got ${o.deadMemoryMs}`)
  check(int(o.maxDead) && o.maxDead >= 0 && o.maxDead <= 4096, `maxDead must be between 0 and 4096, got ${o.maxDead}`)
}

const ignore = (): void => {}
// Shared by every instance: per-node closures and objects add up over a million nodes.
const pong = () => ({ type: MessageType.PONG }) as const

export abstract class PrefixTopology implements Topology {
  abstract readonly name: string
  abstract readonly metric: Metric
  abstract readonly options: PrefixTopologyOptions
  abstract readonly pool: ContactPool
  onPeer: (event: 'added' | 'removed', contact: Contact) => void = ignore
  onJoin: (contact: Contact) => void = ignore
  protected closed = false
  /** Rows (0 and up) and other repairs (negative keys) with a request in flight, one each at a time. */
  protected repairing: Set<number> | null = null
  /** Addresses of dropped contacts, and when: hearsay does not bring them back for a while. */
  private dead: Map<Address, number> | null = null

  constructor(protected readonly ctx: TopologyContext) {}

  /** The prefix table: rows of pool handles. */
  protected abstract readonly table: { readonly rows: number; row(r: number): number[] }
  /** The most contacts an answer to this NEIGHBORS question holds. */
  protected abstract expectedContacts(what: number): number
  /** A message came from (id, address) itself: it is alive. */
  protected abstract observe(id: NodeId, address: Address): void
  /** Up to n known contacts nearest target by the metric, without `exclude`: a FIND_NODE answer. */
  protected abstract nearest(target: Uint8Array, n: number, exclude?: Uint8Array): Contact[]
  /** Answers a NEIGHBORS question (a WeftError refuses it). */
  protected abstract answer(from: Address, req: NeighborsRequest): { type: MessageType.NODES; contacts: Contact[] }
  /** Offers a contact to the tables (with its RTT when measured). */
  protected abstract learn(id: NodeId, address: Address, now: number, rttMs: number | undefined): void
  /** Another node named this contact: take it where there is room. */
  protected abstract hear(id: NodeId, address: Address, now: number): void
  /** Forgets a contact at once and repairs the holes it leaves. */
  protected abstract drop(id: NodeId): void
  /** A request to this contact went unanswered (after the rpc's retries). */
  abstract failed(id: NodeId): void
  abstract closest(target: NodeId, n: number): Contact[]
  abstract join(bootstrap: Address[], options?: LookupOptions): Promise<void>
  abstract nextHop(target: NodeId): Contact | null
  abstract entries(): TableEntry[]
  abstract size(): number
  abstract close(): void

  /** Registers the handlers every prefix topology has: liveness from every message, PING, FIND_NODE, NEIGHBORS. */
  protected listen(): void {
    const { rpc } = this.ctx
    rpc.onSeen = (id, address, readOnly) => { if (!readOnly) this.observe(id, address) }
    rpc.handle(MessageType.PING, pong)
    rpc.handle(MessageType.FIND_NODE, (from, req) => {
      const { target, sender, flags } = req as FindNode
      // A node looking up its own id is joining (the first step of join).
      if (idEquals(target, sender) && !(flags & Flag.READ_ONLY)) this.onJoin({ id: new Uint8Array(sender), address: from })
      return { type: MessageType.NODES, contacts: this.nearest(target, this.options.k, sender) }
    })
    rpc.handle(MessageType.NEIGHBORS, (from, req) => this.answer(from, req as NeighborsRequest))
  }

  protected get self(): Contact {
    return { id: this.ctx.id, address: this.ctx.address() }
  }

  protected contact(h: number): Contact {
    return { id: this.pool.id(h), address: this.pool.address(h) }
  }

  protected remember(address: Address): void {
    if (this.options.maxDead === 0) return
    const dead = (this.dead ??= new Map())
    dead.delete(address)
    dead.set(address, this.ctx.runtime.now())
    if (dead.size > this.options.maxDead) dead.delete(dead.keys().next().value!)
  }

  /** Heard from itself: alive after all. */
  protected revive(address: Address): void {
    this.dead?.delete(address)
  }

  /** Whether this address was dropped lately (hearsay of it is ignored); forgets it once its time is up. */
  protected droppedLately(address: Address, now: number): boolean {
    const died = this.dead?.get(address)
    if (died === undefined) return false
    if (now - died < this.options.deadMemoryMs) return true
    this.dead!.delete(address)
    return false
  }

  /**
   * Sends a NEIGHBORS question to a contact and merges the answer: the contact with its RTT, the
   * nodes it names as hearsay. Resolves with the named contacts, or null.
   */
  protected ask(to: Contact, what: number, arg: number): Promise<Contact[] | null> {
    const { id, address } = to
    return new Promise((resolve) => {
      this.ctx.rpc.request(address, neighborsRequest(what, arg), expectedNeighborsReply(address, this.expectedContacts(what)), (err, reply, rttMs) => {
        if (this.closed) { resolve(null); return }
        if (err || !reply || reply.type !== MessageType.NODES || !idEquals(reply.sender, id)) {
          if (err?.code === 'ERR_TIMEOUT') this.failed(id)
          else if (reply && reply.type !== MessageType.ERROR) this.drop(id) // another node now has that address
          resolve(null)
          return
        }
        resolve(this.merge(id, address, reply, rttMs))
      })
    })
  }

  private merge(id: NodeId, address: Address, reply: Reply, rttMs: number | undefined): Contact[] {
    const now = this.ctx.runtime.now()
    if (rttMs !== undefined) this.learn(id, address, now, rttMs)
    const contacts = reply.type === MessageType.NODES || reply.type === MessageType.VALUES ? reply.contacts : []
    for (const c of contacts) this.hear(c.id, c.address, now)
    return contacts
  }

  /** Row r lost an entry: ask another entry of it (else of a deeper row) for its row r. */
  protected repairRow(r: number): void {
    if (this.closed || this.repairing?.has(r)) return
    let candidates: number[] = []
    for (let row = r; row < this.table.rows && candidates.length === 0; row++) candidates = this.table.row(row)
    if (candidates.length === 0) return
    const h = candidates[this.ctx.runtime.random.u32() % candidates.length]
    ;(this.repairing ??= new Set()).add(r)
    void this.ask(this.contact(h), Neighbors.ROW, r).then(() => this.repairing!.delete(r))
  }

  /** Measures a contact's RTT with a PING: the table keeps the nearer of the candidates for a slot. */
  protected probe(c: Contact): void {
    this.ctx.rpc.request(c.address, { type: MessageType.PING }, expectedPongBytes(c.address), (err, reply, rttMs) => {
      if (this.closed || err || !reply || rttMs === undefined || !idEquals(reply.sender, c.id)) return
      this.learn(c.id, c.address, this.ctx.runtime.now(), rttMs)
    })
  }

  /** Runs tasks, alpha at a time, until closed or aborted. */
  protected async inParallel(tasks: (() => Promise<unknown>)[], signal?: AbortSignal): Promise<void> {
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < tasks.length && !this.closed && !signal?.aborted) await tasks[next++]().catch(() => {})
    }
    await Promise.all(Array.from({ length: Math.min(this.options.alpha, tasks.length) }, worker))
  }

  lookup(target: NodeId, options: LookupOptions = {}, bootstrap?: Address[]): Promise<LookupResult> {
    const { runtime, rpc } = this.ctx
    return iterativeFindNode({
      runtime, rpc, target, self: this.self,
      k: this.options.k, alpha: this.options.alpha,
      verify: Math.min(this.options.k, Math.max(1, options.verify ?? this.options.verify)),
      seeds: this.closest(target, this.options.k),
      bootstrap, signal: options.signal, query: options.query,
      compare: this.metric.compare,
      onFailed: (c) => this.failed(c.id),
    })
  }
}
