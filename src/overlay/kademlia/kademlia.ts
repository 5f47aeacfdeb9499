// The Kademlia topology: XOR distance, k-buckets, iterative lookups, join by self-lookup and
// bucket refresh.
import { WeftError } from '../../errors.js'
import { withDefaults } from '../../options.js'
import { compareDistance, ID_BITS, idEquals, randomIdWithPrefix, type NodeId } from '../../identity/node-id.js'
import { expectedPongBytes } from '../../rpc/rpc.js'
import { xorMetric } from '../metric.js'
import type { Address } from '../../wire/address.js'
import { Flag, MessageType, type FindNode } from '../../wire/messages.js'
import type { Random } from '../../runtime/runtime.js'
import type { Contact, LookupOptions, LookupResult, NodeSet, TableEntry, Topology, TopologyContext } from '../topology.js'
import { iterativeFindNode, MAX_DISJOINT_PATHS } from '../lookup.js'
import { RoutingTable } from './routing-table.js'
import { checkPuzzle, validatePuzzleBits } from '../../identity/puzzle.js'
import { defaultDiversity, MAX_PER_PREFIX, type DiversityOptions } from './diversity.js'

export interface KademliaOptions {
  /** Bucket size and replication parameter. */
  k: number
  /** Requests in flight per lookup. */
  alpha: number
  /** Nearest nodes that must answer before a lookup ends; k for the paper's rule. */
  verify: number
  /** A bucket with no lookup in this long is refreshed with a lookup of a random id in it. */
  refreshIntervalMs: number
  /** Unanswered requests before a contact leaves its bucket (sooner if a replacement waits). */
  maxFailures: number
  /** A full bucket pings its oldest contact for a newcomer only if not heard from in this long. */
  staleAfterMs: number
  /** S/Kademlia's disjoint lookup paths, 1..MAX_DISJOINT_PATHS (docs/security.md: why the default). */
  disjoint: number
  /** S/Kademlia's static puzzle, a network parameter: ids must solve it to enter the table or a lookup (0: off). */
  puzzleBits: number
  /** Contacts per IP prefix in one bucket (see diversity.ts); the fields not given keep their defaults. */
  diversity: Partial<DiversityOptions>
}

// Shared by every instance: per-node closures and option objects add up over a million nodes.
const ignore = (): void => {}
const pong = () => ({ type: MessageType.PONG }) as const
// One check per difficulty, shared: a closure per node would add up over a million nodes.
const puzzleChecks: ((id: NodeId) => boolean)[] = []
const puzzleCheck = (bits: number) => (puzzleChecks[bits] ??= (id: NodeId) => checkPuzzle(id, bits))

export const defaultKademliaOptions: KademliaOptions = { k: 20, alpha: 3, verify: 10, refreshIntervalMs: 15 * 60_000, maxFailures: 2, staleAfterMs: 15 * 60_000, disjoint: 1, puzzleBits: 0, diversity: defaultDiversity }
const mergedOptions = withDefaults(defaultKademliaOptions)
const mergedDiversity = withDefaults(defaultDiversity)

export class Kademlia implements Topology {
  readonly name = 'kademlia'
  readonly metric = xorMetric
  readonly options: KademliaOptions
  readonly routing: RoutingTable
  onPeer: (event: 'added' | 'removed', contact: Contact) => void = ignore
  onJoin: (contact: Contact) => void = ignore
  private refreshTimer: unknown = null
  private readonly acceptId: ((id: NodeId) => boolean) | undefined
  private closed = false

  constructor(private readonly ctx: TopologyContext, options: Partial<KademliaOptions> = defaultKademliaOptions) {
    this.options = mergedOptions(options)
    if (this.options.k < 1 || this.options.k > 25) throw new WeftError('ERR_BAD_ARGUMENT', 'k must be between 1 and 25 (a reply must fit one datagram)')
    if (this.options.alpha < 1 || this.options.alpha > 16) throw new WeftError('ERR_BAD_ARGUMENT', 'alpha must be between 1 and 16')
    if (!Number.isInteger(this.options.disjoint) || this.options.disjoint < 1 || this.options.disjoint > MAX_DISJOINT_PATHS) throw new WeftError('ERR_BAD_ARGUMENT', `disjoint must be a whole number from 1 to ${MAX_DISJOINT_PATHS}`)
    this.routing = new RoutingTable(ctx.id, this.options.k, this.options.maxFailures, 4, this.options.staleAfterMs, ctx.contacts, ctx.arena)
    const bits = validatePuzzleBits(this.options.puzzleBits)
    const diversity = mergedDiversity(this.options.diversity)
    for (const key of ['perSlash24', 'perSlash16'] as const) {
      const n = diversity[key]
      if (!Number.isInteger(n) || n < 0 || n > MAX_PER_PREFIX) throw new WeftError('ERR_BAD_ARGUMENT', `diversity.${key} must be an integer between 0 (no limit) and ${MAX_PER_PREFIX}, got ${n}`)
    }
    this.acceptId = bits > 0 ? puzzleCheck(bits) : undefined
    this.routing.admit({ acceptId: this.acceptId, diversity })
    const { rpc, runtime } = ctx
    this.routing.onEvent = (e) => this.onPeer(e.type, e.contact)
    this.routing.probe = (c, done) => {
      rpc.request(c.address, { type: MessageType.PING }, expectedPongBytes(c.address), (err) => done(!err || (err.code !== 'ERR_TIMEOUT' && err.code !== 'ERR_CLOSED'))) // a refusal is an answer too
    }
    rpc.onSeen = (id, address, readOnly, proven) => { if (!readOnly) this.routing.observe(id, address, runtime.now(), proven) }
    rpc.handle(MessageType.PING, pong)
    rpc.handle(MessageType.FIND_NODE, (from, req) => {
      const { target, sender, flags } = req as FindNode
      // A node looking up its own id is joining (that is how join works here).
      if (idEquals(target, sender) && !(flags & Flag.READ_ONLY)) this.onJoin({ id: sender, address: from })
      return { type: MessageType.NODES, contacts: this.routing.closest(target, this.options.k, sender) }
    })
    this.scheduleRefresh()
  }


  private get self(): Contact {
    return { id: this.ctx.id, address: this.ctx.address() }
  }

  lookup(target: NodeId, options: LookupOptions = {}, bootstrap?: Address[]): Promise<LookupResult> {
    const { runtime, rpc } = this.ctx
    this.routing.touch(this.routing.bucketIndex(target), runtime.now())
    return iterativeFindNode({
      runtime, rpc, target, self: this.self,
      k: this.options.k, alpha: this.options.alpha,
      verify: Math.min(this.options.k, Math.max(1, options.verify ?? this.options.verify)),
      seeds: this.routing.closest(target, this.options.k),
      bootstrap, signal: options.signal, query: options.query,
      disjoint: options.disjoint ?? this.options.disjoint,
      acceptId: this.acceptId,
      onFailed: (c) => this.routing.failed(c.id, runtime.now()),
    })
  }

  async join(bootstrap: Address[], options: LookupOptions = {}): Promise<void> {
    if (bootstrap.length === 0) return // the first node of a new network
    const result = await this.lookup(this.ctx.id, options, bootstrap)
    if (this.routing.size === 0) {
      throw new WeftError('ERR_BOOTSTRAP_FAILED', `no bootstrap peer answered (${bootstrap.join(', ')})`)
    }
    // Refresh every bucket farther than the nearest neighbour, so others learn of us and we of them.
    const nearest = result.closest.find((c) => !idEquals(c.id, this.ctx.id))
    const depth = nearest ? this.routing.bucketIndex(nearest.id) : 0
    const indices: number[] = []
    for (let i = 0; i < depth; i++) indices.push(i)
    await this.refreshBuckets(indices, options)
  }

  private async refreshBuckets(indices: number[], options: LookupOptions = {}): Promise<void> {
    const queue = indices.slice()
    const worker = async (): Promise<void> => {
      for (let i = queue.shift(); i !== undefined && !this.closed; i = queue.shift()) {
        await this.lookup(randomIdWithPrefix(this.ctx.id, i, this.ctx.runtime.random.bytes(32)), options).catch(() => {})
      }
    }
    await Promise.all([worker(), worker(), worker()])
  }

  private scheduleRefresh(): void {
    if (this.closed) return
    const { runtime } = this.ctx
    const every = Math.max(1000, this.options.refreshIntervalMs / 4)
    this.refreshTimer = runtime.setTimeout(() => {
      if (this.closed) return
      const stale = this.routing.staleBuckets(runtime.now(), this.options.refreshIntervalMs)
      if (stale.length === 0) this.scheduleRefresh()
      else void this.refreshBuckets(stale).finally(() => this.scheduleRefresh())
    }, every)
  }

  fill(nodes: NodeSet, random: Random, now: number): void {
    // Bucket b holds k random nodes of those that share b bits with us and differ at bit b. The
    // nodes sharing b bits are one range in id order, which bit b splits into ours and the other.
    const self = this.ctx.id, k = this.options.k
    const handles: number[] = [], counts: number[] = []
    let lo = 0, hi = nodes.size
    for (let b = 0; b < ID_BITS && hi - lo > 1; b++) {
      const mid = nodes.split(lo, hi, b)
      const mine = (self[b >> 3] & (0x80 >> (b & 7))) !== 0
      const [olo, ohi] = mine ? [lo, mid] : [mid, hi]
      ;[lo, hi] = mine ? [mid, hi] : [lo, mid]
      const start = handles.length
      if (ohi - olo <= k) for (let i = olo; i < ohi; i++) handles.push(nodes.at(i))
      else {
        while (handles.length - start < k) {
          const h = nodes.at(olo + (random.u32() % (ohi - olo)))
          if (handles.indexOf(h, start) < 0) handles.push(h)
        }
      }
      counts.push(handles.length - start)
    }
    this.routing.fill(handles, counts, now)
  }

  nextHop(target: NodeId): Contact | null {
    const [best] = this.routing.closest(target, 1)
    if (!best || compareDistance(target, best.id, this.ctx.id) >= 0) return null
    return best
  }

  closest(target: NodeId, n: number): Contact[] {
    return this.routing.closest(target, n)
  }

  /**
   * S/Kademlia's sibling list: the s nearest nodes to this node's own id (s = k by default), so
   * the siblings of a key near us (the nodes that must hold its replicas) are known. Kept in
   * the routing table (its nearest buckets hold every node near us), read from it here.
   */
  siblings(s = this.options.k): Contact[] {
    return this.routing.closest(this.ctx.id, s)
  }

  entries(): TableEntry[] {
    return this.routing.entries(this.ctx.runtime.now())
  }

  /** Contacts kept out of the table: ids that fail the puzzle, and addresses past the diversity limit. */
  get refused(): { puzzle: number; diversity: number } {
    return { puzzle: this.routing.refusedIds, diversity: this.routing.refusedDiversity }
  }

  size(): number {
    return this.routing.size
  }

  close(): void {
    this.closed = true
    if (this.refreshTimer) this.ctx.runtime.clearTimeout(this.refreshTimer as object)
  }
}
