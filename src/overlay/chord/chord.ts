// The Chord topology (Stoica et al., 2001): ids on a ring mod 2^256, each key owned by its
// successor and replicated on the successor list; a predecessor, a successor list and the
// distinct fingers; stabilize / notify / fix-fingers / check-predecessor on one timer; join
// through a lookup of the own id; graceful leave. Lookups are iterative (findability): a walk
// to the key's predecessor by closest preceding fingers (find_predecessor, alpha at a time),
// then a pass that has the key's successors answer, so the result is the successor list of the
// key in order. nextHop() is the paper's recursive routing (routability).
import { WeftError } from '../../errors.js'
import { withDefaults } from '../../options.js'
import { ID_BYTES, idEquals, type NodeId } from '../../identity/node-id.js'
import { expectedNodesReplyBytes, expectedPongBytes, type RequestBody } from '../../rpc/rpc.js'
import type { Random } from '../../runtime/runtime.js'
import type { Address } from '../../wire/address.js'
import { Flag, MAX_CONTACTS, MessageType, Neighbors, type FindNode, type NeighborsRequest, type Reply } from '../../wire/messages.js'
import { ContactPool } from '../contact-pool.js'
import { iterativeFindNode } from '../lookup.js'
import { rank, successorMetric } from '../metric.js'
import type { Contact, LookupOptions, LookupResult, NodeSet, TableEntry, Topology, TopologyContext } from '../topology.js'
import { addPowerOfTwo, between, clockwise, inHalfOpen, precedingCompare, topBit } from './ring.js'
import { RingTable } from './ring-table.js'

export interface ChordOptions {
  /** Results per lookup (and contacts per FIND_NODE answer). */
  k: number
  /** Requests in flight per lookup. */
  alpha: number
  /** Successors of the key that must answer before a lookup ends; k for strict lookups. */
  verify: number
  /** Length of the successor list (about log2 N; keys are replicated on it). */
  successors: number
  /** Mean time between stabilize rounds (ask the successor, notify it). */
  stabilizeIntervalMs: number
  /** Mean time between fix-fingers steps (one lookup for the next finger each). */
  fixFingersIntervalMs: number
  /** Mean time between pings of the predecessor. */
  checkPredecessorIntervalMs: number
  /** Unanswered requests (each already retried by the rpc layer) before a contact is dropped. */
  maxFailures: number
}

export const defaultChordOptions: ChordOptions = {
  k: 20, alpha: 3, verify: 10, successors: 16,
  stabilizeIntervalMs: 15_000, fixFingersIntervalMs: 30_000, checkPredecessorIntervalMs: 30_000,
  maxFailures: 2,
}
const mergedOptions = withDefaults(defaultChordOptions)

/** The walk toward a key needs only its nearest few to answer; the successors are checked after. */
const WALK_VERIFY = 2
/** Successor answers naming a nearer successor, followed at once within one stabilize round. */
const MAX_STABILIZE_STEPS = 4
/** Shortest interval accepted for any maintenance timer. */
const MIN_INTERVAL_MS = 100

// Shared by every instance: per-node closures and option objects add up over a million nodes.
const ignore = (): void => {}
const pong = () => ({ type: MessageType.PONG }) as const
// The rpc layer's RequestBody does not list NEIGHBORS yet, and its send() drops `what`/`arg`:
// until it does, these requests fail to encode. Once it does, drop the cast.
const neighbors = (what: number): RequestBody => ({ type: MessageType.NEIGHBORS, what, arg: 0 })

export class Chord implements Topology {
  readonly name = 'chord'
  readonly metric = successorMetric
  readonly options: ChordOptions
  readonly table: RingTable
  onPeer: (event: 'added' | 'removed', contact: Contact) => void = ignore
  onJoin: (contact: Contact) => void = ignore
  private timer: unknown = null
  private closed = false
  private nextStabilize = 0
  private nextFix = 0
  private nextCheck = 0
  private stabilizing = false
  private fixing = false
  private checking = false
  /** The next finger bit to fix (0: start a new round from the end of the successor list). */
  private fingerCursor = 0

  constructor(private readonly ctx: TopologyContext, options: Partial<ChordOptions> = defaultChordOptions) {
    const o = this.options = mergedOptions(options)
    const whole = (name: keyof ChordOptions, lo: number, hi: number, why = ''): void => {
      const v = o[name]
      if (!Number.isInteger(v) || v < lo || v > hi) throw new WeftError('ERR_BAD_ARGUMENT', `chord ${name} must be a whole number from ${lo} to ${hi}${why}, got ${v}`)
    }
    whole('k', 1, MAX_CONTACTS, ' (a reply must fit one datagram)')
    whole('alpha', 1, 16)
    whole('verify', 1, MAX_CONTACTS)
    whole('successors', 1, MAX_CONTACTS - 1, ' (the predecessor and the list must fit one reply)')
    whole('maxFailures', 1, 63)
    for (const name of ['stabilizeIntervalMs', 'fixFingersIntervalMs', 'checkPredecessorIntervalMs'] as const) {
      if (!(o[name] >= MIN_INTERVAL_MS && o[name] <= 24 * 3_600_000)) throw new WeftError('ERR_BAD_ARGUMENT', `chord ${name} must be from ${MIN_INTERVAL_MS} ms to a day, got ${o[name]}`)
    }
    this.table = new RingTable(ctx.id, o.successors, o.maxFailures, ctx.contacts ?? new ContactPool(), ctx.arena, 2 * Math.max(o.stabilizeIntervalMs, o.checkPredecessorIntervalMs))
    this.table.onEvent = (type, c) => this.onPeer(type, c)
    const { rpc, runtime } = ctx
    rpc.onSeen = (id, address, readOnly, proven) => { if (!readOnly) this.table.observe(id, address, runtime.now(), proven) }
    rpc.handle(MessageType.PING, pong)
    rpc.handle(MessageType.FIND_NODE, (_from, req) => {
      const { target, sender } = req as FindNode
      return { type: MessageType.NODES, contacts: this.table.closest(target, o.k, sender) }
    })
    rpc.handle(MessageType.NEIGHBORS, (from, req) => this.answerNeighbors(from, req as NeighborsRequest))
    const now = runtime.now()
    this.nextStabilize = now + this.jitter(o.stabilizeIntervalMs)
    this.nextFix = now + this.jitter(o.fixFingersIntervalMs)
    this.nextCheck = now + this.jitter(o.checkPredecessorIntervalMs)
    this.schedule()
  }

  private get self(): Contact {
    return { id: this.ctx.id, address: this.ctx.address() }
  }

  private jitter(ms: number): number {
    return ms * (0.75 + 0.5 * this.ctx.runtime.random.float())
  }

  // ---- answering ---------------------------------------------------------------------------------

  /** [predecessor (us when none), successor 1, ...]: what RING, NOTIFY and LEAVING are answered with. */
  private ring(): Contact[] {
    return [this.table.predecessor() ?? this.self, ...this.table.successors()]
  }

  private answerNeighbors(from: Address, req: NeighborsRequest) {
    const reply = { type: MessageType.NODES, contacts: this.ring() } as const
    const readOnly = (req.flags & Flag.READ_ONLY) !== 0
    const now = this.ctx.runtime.now()
    switch (req.what) {
      case Neighbors.RING:
        return reply
      case Neighbors.NOTIFY: {
        // The paper's notify: the asker thinks it may be our predecessor. Answered with the ring
        // as it was, so a newcomer learns its own predecessor from its successor at once.
        if (readOnly || idEquals(req.sender, this.ctx.id)) return reply
        const pred = this.table.predecessor()
        const failing = pred !== null && this.table.predecessorFailures > 0
        if (pred && idEquals(pred.id, req.sender)) return reply
        if (pred && !failing && !between(req.sender, pred.id, this.ctx.id)) return reply
        // A node between our predecessor and us is new to the ring (one replacing a failing
        // predecessor is a repair); so is the second node of a ring that was ours alone.
        const first = this.table.successor()
        const wasAlone = !pred && this.table.successorCount <= 1 && (!first || idEquals(first.id, req.sender))
        this.table.setPredecessor(req.sender, from, now)
        if ((pred && !failing) || wasAlone) this.onJoin({ id: new Uint8Array(req.sender), address: from })
        return reply
      }
      case Neighbors.LEAVING: {
        // Only the contact at that address may take itself out.
        const known = this.table.entries(now).some((e) => e.address === from && idEquals(e.id, req.sender))
        if (!known) return reply
        const wasSuccessor = this.table.successor()?.address === from
        this.table.remove(req.sender, now, false, true) // not taken back from stale lists or late replies
        if (wasSuccessor) void this.stabilize(true)
        return { type: MessageType.NODES, contacts: this.ring() } as const
      }
      default:
        throw new WeftError('ERR_BAD_ARGUMENT', `chord has no NEIGHBORS question ${req.what}`)
    }
  }

  // ---- lookups -----------------------------------------------------------------------------------

  lookup(target: NodeId, options: LookupOptions = {}, bootstrap?: Address[]): Promise<LookupResult> {
    return this.find(target, options, bootstrap)
  }

  private async find(target: NodeId, options: LookupOptions, bootstrap?: Address[]): Promise<LookupResult> {
    const { runtime, rpc } = this.ctx
    const { k, alpha } = this.options
    const verify = Math.min(k, Math.max(1, options.verify ?? this.options.verify))
    const started = runtime.now()
    let stopped = false
    const query = options.query && {
      request: options.query.request,
      onReply: (from: Contact, reply: Reply): boolean => (stopped = options.query!.onReply(from, reply)),
    }
    const onFailed = (c: Contact): void => { this.table.failed(c.id, runtime.now()) }
    // 1. The walk, as Chord's find_predecessor: the nearest known nodes before the key are asked
    //    first, each answering with its closest preceding fingers, so the distance left halves
    //    at each step. It ends when the nearest `WALK_VERIFY` before the key have answered.
    const walk = await iterativeFindNode({
      runtime, rpc, target, self: this.self, k, alpha,
      verify: Math.min(verify, WALK_VERIFY),
      seeds: this.table.closest(target, k),
      bootstrap, signal: options.signal, query, onFailed,
      compare: precedingCompare,
    })
    if (stopped) return { ...walk, closest: rank(successorMetric, target, walk.closest), durationMs: runtime.now() - started }
    // 2. The successors: the key's predecessor (the walk's nearest node before it) answers with
    //    its successor list, then the first `verify` successors of the key must answer in turn
    //    (the rest of the result comes from their lists, which they keep fresh). Ranked
    //    clockwise from that predecessor, so it is asked first and the key's successors follow
    //    (ranked from the key, a node far past it would come first and lead back one
    //    predecessor at a time, and our own node, counted as answered, could end it early).
    const pred = walk.closest[0]?.id ?? target
    // The predecessor is one of the nodes that must answer: one more, for `verify` successors.
    const end = await iterativeFindNode({
      runtime, rpc, target, self: this.self, k, alpha, verify: Math.min(k, verify + 1),
      seeds: walk.closest.slice(0, WALK_VERIFY + 1),
      signal: options.signal, query, onFailed,
      compare: (_t, a, b) => successorMetric.compare(pred, a, b),
    })
    const closest = rank(successorMetric, target, end.closest)
    // The successor is one step past the predecessor the walk ended at (none if it is that node).
    const extra = closest.length > 0 && walk.closest.length > 0 && !idEquals(closest[0].id, walk.closest[0].id) ? 1 : 0
    return {
      target,
      closest,
      hops: walk.hops + extra,
      messages: walk.messages + end.messages,
      failed: walk.failed + end.failed,
      durationMs: runtime.now() - started,
    }
  }

  /** successor(key) as the network knows it (fix-fingers): the walk, then the successor's answer. */
  private async findSuccessor(key: NodeId): Promise<Contact | null> {
    const r = await this.find(key, { verify: 1 })
    return r.closest[0] ?? null
  }

  // ---- joining and leaving -----------------------------------------------------------------------

  async join(bootstrap: Address[], options: LookupOptions = {}): Promise<void> {
    if (bootstrap.length === 0) return // the first node of a new network
    const { runtime } = this.ctx
    const r = await this.lookup(this.ctx.id, options, bootstrap)
    for (const c of r.closest) this.table.consider(c.id, c.address, runtime.now())
    if (this.table.successorCount === 0) {
      throw new WeftError('ERR_BOOTSTRAP_FAILED', `no bootstrap peer answered (${bootstrap.join(', ')})`)
    }
    // Tell the successor (it takes us as its predecessor and names its old one, ours now), then
    // look up each distinct finger.
    await this.stabilize(true)
    await this.fixFingers(true)
  }

  async leave(): Promise<void> {
    const { rpc } = this.ctx
    const pred = this.table.predecessor(), succ = this.table.successor()
    this.stop()
    const tell = (c: Contact | null): Promise<unknown> => (c ? rpc.requestAsync(c.address, neighbors(Neighbors.LEAVING), expectedNodesReplyBytes(c.address, this.options.successors + 1)).catch(() => {}) : Promise.resolve())
    // The successor first: once it has dropped us, the predecessor's notify (sent as soon as it
    // drops us in turn) finds it without a predecessor and is taken at once.
    await tell(succ)
    if (pred && !(succ && idEquals(pred.id, succ.id))) await tell(pred)
  }

  // ---- maintenance -------------------------------------------------------------------------------

  private schedule(): void {
    if (this.closed) return
    const { runtime } = this.ctx
    const at = Math.min(this.nextStabilize, this.nextFix, this.nextCheck)
    this.timer = runtime.setTimeout(() => this.tick(), Math.max(0, at - runtime.now()))
  }

  private tick(): void {
    this.timer = null
    if (this.closed) return
    const o = this.options, now = this.ctx.runtime.now()
    if (now >= this.nextStabilize) { this.nextStabilize = now + this.jitter(o.stabilizeIntervalMs); void this.stabilize() }
    if (now >= this.nextCheck) { this.nextCheck = now + this.jitter(o.checkPredecessorIntervalMs); this.checkPredecessor() }
    if (now >= this.nextFix) { this.nextFix = now + this.jitter(o.fixFingersIntervalMs); void this.fixFingers(false) }
    this.schedule()
  }

  /**
   * The paper's stabilize: ask the successor for its predecessor and successor list (NOTIFY, so it
   * learns of us in the same round trip); adopt its predecessor if it lies between us; take its
   * list as ours after it. A successor that fails is dropped and the next one asked.
   */
  private async stabilize(force = false): Promise<void> {
    if ((this.stabilizing && !force) || this.closed) return
    this.stabilizing = true
    try {
      const { rpc, runtime } = this.ctx
      for (let step = 0; step < MAX_STABILIZE_STEPS && !this.closed; step++) {
        let s = this.table.successor()
        if (!s) {
          // Alone, or every successor failed: a predecessor is the way back into the ring.
          const p = this.table.predecessor()
          if (!p) return
          this.table.consider(p.id, p.address, runtime.now(), true)
          s = this.table.successor()
          if (!s) return
        }
        const what = rpc.readOnly ? Neighbors.RING : Neighbors.NOTIFY
        let reply: Reply
        try {
          reply = (await rpc.requestAsync(s.address, neighbors(what), expectedNodesReplyBytes(s.address, this.options.successors + 1))).reply
        } catch (err) {
          if ((err as WeftError).code === 'ERR_TIMEOUT') { this.table.failed(s.id, runtime.now()); continue }
          return
        }
        if (this.closed || reply.type !== MessageType.NODES || !idEquals(reply.sender, s.id)) return
        const [pred, ...list] = reply.contacts
        const now = runtime.now()
        // Our successor's predecessor, if between us and it, is a nearer successor: ask it next.
        // Otherwise it comes before us, and is our predecessor if we have none yet (a newcomer).
        if (pred && !idEquals(pred.id, s.id) && !idEquals(pred.id, this.ctx.id) && !this.table.isDead(pred.id, now)) {
          if (between(pred.id, this.ctx.id, s.id)) {
            this.table.consider(pred.id, pred.address, now)
            if (!idEquals(this.table.successor()!.id, s.id)) continue
          } else if (!this.table.predecessor()) {
            this.table.setPredecessor(pred.id, pred.address, now)
          }
        }
        this.table.adoptSuccessorList(list, now)
        return
      }
    } finally {
      this.stabilizing = false
    }
  }

  /** Pings the predecessor; one that stops answering is dropped, and the next notify replaces it. */
  private checkPredecessor(): void {
    const p = this.table.predecessor()
    if (!p || this.checking) return
    this.checking = true
    const { rpc, runtime } = this.ctx
    rpc.request(p.address, { type: MessageType.PING }, expectedPongBytes(p.address), (err) => {
      this.checking = false
      if (err?.code === 'ERR_TIMEOUT' && !this.closed) this.table.failed(p.id, runtime.now())
    })
  }

  /**
   * Fix-fingers: looks up successor(self + 2^b) for the next finger bit b and files the answer;
   * the finger found covers every bit up to its own distance, so the next bit to look up is the
   * one after it (about log2 N lookups a round). `all`: a whole round at once (after a join).
   */
  private async fixFingers(all: boolean): Promise<void> {
    if (this.fixing || this.closed) return
    const last = this.table.successor(this.table.successorCount - 1)
    if (!last) return
    this.fixing = true
    try {
      const key = new Uint8Array(ID_BYTES), d = new Uint8Array(ID_BYTES)
      do {
        let b = this.fingerCursor
        if (b === 0) b = Math.max(0, topBit(clockwise(this.ctx.id, last.id, d)))
        addPowerOfTwo(this.ctx.id, b, key)
        const found = await this.findSuccessor(key)
        if (this.closed) return
        const now = this.ctx.runtime.now()
        const wrapped = !found || idEquals(found.id, this.ctx.id) || topBit(clockwise(this.ctx.id, found.id, d)) < b
        this.table.setFinger(b, wrapped ? null : found, now)
        const next = wrapped ? 256 : topBit(d) + 1
        this.fingerCursor = next >= 256 ? 0 : next
      } while (all && this.fingerCursor !== 0)
    } catch {
      // a lookup aborted by close(): nothing to file
    } finally {
      this.fixing = false
    }
  }

  // ---- the table ---------------------------------------------------------------------------------

  fill(nodes: NodeSet, _random: Random, now: number): void {
    this.table.fill(nodes, now)
  }

  /**
   * Recursive routing: the successor when the key lies between us and it; otherwise the nearest
   * node before the key that we know (the closest preceding finger); null when the key is ours.
   */
  nextHop(target: NodeId): Contact | null {
    const self = this.ctx.id
    const pred = this.table.predecessor()
    if (idEquals(target, self) || (pred && inHalfOpen(target, pred.id, self))) return null
    const s = this.table.successor()
    if (!s) return null // alone: every key is ours
    if (inHalfOpen(target, self, s.id)) return s
    return this.table.closestPreceding(target) ?? s
  }

  closest(target: NodeId, n: number): Contact[] {
    return this.table.closest(target, n)
  }

  entries(): TableEntry[] {
    return this.table.entries(this.ctx.runtime.now())
  }

  size(): number {
    return this.table.size
  }

  private stop(): void {
    this.closed = true
    if (this.timer) { this.ctx.runtime.clearTimeout(this.timer as object); this.timer = null }
  }

  close(): void {
    this.stop()
  }
}
