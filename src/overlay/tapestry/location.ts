// Tapestry's object location. A server publishes an object by walking the route toward the
// object's root (surrogate routing) and leaving a pointer "object -> server" at every node on it;
// a query walks the route from the client toward the same root and stops at the first node
// with a pointer. Routes from nearby nodes meet early (tables prefer near nodes), so a query
// usually meets the pointers of a nearby server long before the root: Tapestry finds a nearby
// copy, where a DHT always asks the key's owners.
//
// The walk is driven by the publisher or client (each hop answers LOCATE with its next hops,
// primary and backups, and any servers it holds): the same nodes as the papers' forwarded
// messages, with a timeout at one hop falling back to that hop's backup at once. A locate pings
// the servers a pointer names and walks on if none answers. Pointers expire
// (pointerTtlMs) and servers publish again before that (republishMs), which also moves pointers
// onto new routes after churn.
import { WeftError } from '../../errors.js'
import { idEquals, idToHex, type NodeId } from '../../identity/node-id.js'
import { expectedPointersReplyBytes, expectedPongBytes } from '../../rpc/rpc.js'
import type { TimerHandle } from '../../runtime/runtime.js'
import type { Address } from '../../wire/address.js'
import { LocateOp, MAX_NEXT_HOPS, MAX_SERVERS, MessageType, type LocateRequest, type Pointers } from '../../wire/messages.js'
import type { Contact, LookupResult, TopologyContext } from '../topology.js'
import { PointerStore, type PointerStoreOptions } from './pointers.js'

export interface LocationOptions {
  /** How long a pointer lives on the nodes of a publish route. */
  pointerTtlMs: number
  /** Published objects are published again this often (before their pointers expire). */
  republishMs: number
  /** Objects this node publishes, at most. */
  maxPublished: number
  /** A walk gives up after this many hops (routes are about log_{2^b} N long). */
  maxHops: number
  store: Partial<PointerStoreOptions>
}

export const defaultLocationOptions: LocationOptions = {
  pointerTtlMs: 40 * 60_000, republishMs: 15 * 60_000, maxPublished: 1000, maxHops: 32, store: {},
}

export interface LocateResult {
  object: string
  /** The first server named at the first pointer met (nearest first) that answered a ping, or null when none was found. */
  server: Contact | null
  /** Every server that pointer holder named, nearest first (only `server` is known to be up). */
  servers: Contact[]
  /** Hops walked until a pointer was met (0: this node held one). */
  hops: number
  messages: number
  durationMs: number
}

export interface PublishResult {
  object: string
  /** Nodes that now hold a pointer to us (ourselves included). */
  pointers: number
  hops: number
  /** Whether the walk reached the root (false: a hop and its backups did not answer). */
  reachedRoot: boolean
}

/** What location needs of the topology. */
export interface Router {
  /** Up to n links toward target (the next hop, its backups, then the surrogate slots after it); empty at the root. */
  nextHops(target: Uint8Array, n?: number): Contact[]
  /** A contact did not answer. */
  failed(id: NodeId): void
  /** The iterative lookup: the live nodes nearest target in the routing order, nearest first (the root first). */
  lookup(target: NodeId): Promise<LookupResult>
}

/** Nodes nearest the root (by the lookup) a locate asks when its walk met no pointer. */
const NEAR_ROOT = 3
/** Lookups a walk may make to get past hops whose links are all dead. */
const MAX_DETOURS = 2

const toObject = (o: string | Uint8Array): Uint8Array => {
  if (typeof o !== 'string') {
    if (o.length !== 32) throw new WeftError('ERR_BAD_ARGUMENT', `an object id is 32 bytes, got ${o.length}`)
    return o
  }
  if (!/^[0-9a-f]{64}$/i.test(o)) throw new WeftError('ERR_BAD_ARGUMENT', 'an object id is 64 hex digits')
  return new Uint8Array(Buffer.from(o, 'hex'))
}

export class ObjectLocation {
  readonly options: LocationOptions
  private pointers: PointerStore | null = null
  /** Objects we publish, by hex id. */
  private readonly published = new Map<string, Uint8Array>()
  private timer: TimerHandle | null = null
  private closed = false

  constructor(private readonly ctx: TopologyContext, private readonly router: Router, options: Partial<LocationOptions> = {}) {
    this.options = { ...defaultLocationOptions, ...options }
    if (!(this.options.republishMs > 0 && this.options.republishMs < this.options.pointerTtlMs)) {
      throw new WeftError('ERR_BAD_ARGUMENT', `republishMs must be above 0 and below pointerTtlMs (${this.options.pointerTtlMs}), got ${this.options.republishMs}`)
    }
    ctx.rpc.handle(MessageType.LOCATE, (from, req, verified) => this.answer(from, req as LocateRequest, verified))
  }

  /** Live pointers held here (for people and tests). */
  get pointerCount(): number {
    this.pointers?.expire(this.ctx.runtime.now())
    return this.pointers?.size ?? 0
  }

  private store(): PointerStore {
    return (this.pointers ??= new PointerStore(this.options.store))
  }

  private answer(from: Address, req: LocateRequest, verified: boolean): Omit<Pointers, 'txid' | 'sender' | 'flags' | 'token' | 'observed'> {
    const now = this.ctx.runtime.now()
    const next = (): Contact[] => this.router.nextHops(req.object, MAX_NEXT_HOPS)
    switch (req.op) {
      case LocateOp.PUBLISH: {
        // The server is the datagram's source: only a proven address may leave a pointer to itself.
        if (!verified) throw new WeftError('ERR_BAD_TOKEN', 'a publish needs the token this node gave you in a reply')
        const ttl = Math.min(req.ttlSec * 1000, this.options.pointerTtlMs)
        this.store().put(req.object, { id: req.sender, address: from }, req.hop, now + ttl, now)
        return { type: MessageType.POINTERS, next: next(), servers: [] }
      }
      case LocateOp.UNPUBLISH:
        // Only the server itself, from its proven address, takes its pointer away.
        if (!verified) throw new WeftError('ERR_BAD_TOKEN', 'an unpublish needs the token this node gave you in a reply')
        this.pointers?.remove(req.object, req.sender, from)
        return { type: MessageType.POINTERS, next: next(), servers: [] }
      case LocateOp.LOCATE: {
        // The next hops as well: if every server named here has gone, the asker walks on.
        const servers = this.pointers?.get(req.object, now, MAX_SERVERS).map((p) => p.server) ?? []
        return { type: MessageType.POINTERS, next: next(), servers }
      }
      default:
        throw new WeftError('ERR_BAD_ARGUMENT', `unknown LOCATE op ${req.op}`)
    }
  }

  /** Leaves pointers to this node on the route to the object's root; republished until unpublish(). */
  async publish(object: string | Uint8Array): Promise<PublishResult> {
    const id = toObject(object)
    const key = idToHex(id)
    if (!this.published.has(key) && this.published.size >= this.options.maxPublished) {
      throw new WeftError('ERR_STORE_FULL', `this node already publishes ${this.options.maxPublished} objects`)
    }
    this.published.set(key, new Uint8Array(id))
    this.scheduleRepublish()
    return this.publishOnce(id)
  }

  private async publishOnce(id: Uint8Array): Promise<PublishResult> {
    const now = this.ctx.runtime.now()
    this.store().put(id, { id: this.ctx.id, address: this.ctx.address() }, 0, now + this.options.pointerTtlMs, now)
    const walk = await this.walk(id, LocateOp.PUBLISH)
    return { object: idToHex(id), pointers: 1 + walk.answered, hops: walk.hops, reachedRoot: walk.reachedRoot }
  }

  /** Stops publishing and removes our pointers on the route. */
  async unpublish(object: string | Uint8Array): Promise<void> {
    const id = toObject(object)
    this.published.delete(idToHex(id))
    this.pointers?.remove(id, this.ctx.id)
    await this.walk(id, LocateOp.UNPUBLISH)
  }

  /** Walks toward the object's root and returns the servers named at the first pointer met. */
  async locate(object: string | Uint8Array): Promise<LocateResult> {
    const id = toObject(object)
    const started = this.ctx.runtime.now()
    const own = this.pointers?.get(id, started, MAX_SERVERS).map((p) => p.server) ?? []
    // Ourselves first, if we serve it: nothing to ask.
    const mine = own.find((c) => idEquals(c.id, this.ctx.id))
    if (mine) return { object: idToHex(id), server: mine, servers: own, hops: 0, messages: 0, durationMs: 0 }
    let messages = 0
    const up = async (servers: Contact[]): Promise<Contact | null> => {
      for (const c of servers) { messages++; if (await this.alive(c)) return c }
      return null
    }
    let server = own.length > 0 ? await up(own) : null
    let servers = own, hops = 0
    const accept = async (named: Contact[]): Promise<boolean> => { server = await up(named); if (server) servers = named; return server !== null }
    if (!server) {
      const walk = await this.walk(id, LocateOp.LOCATE, accept)
      hops = walk.hops
      messages += walk.messages
    }
    if (!server && !this.closed) {
      // No pointer on the route (tables changing under churn moved the root, or a publish fell
      // short of it): ask the few nodes the lookup ranks first for the object, where the pointers
      // of walks that ended near the root lie.
      const found = await this.router.lookup(id).catch(() => null)
      messages += found?.messages ?? 0
      for (const c of (found?.closest ?? []).slice(0, NEAR_ROOT)) {
        if (idEquals(c.id, this.ctx.id)) continue
        messages++
        const reply = await this.ask(c, { type: MessageType.LOCATE, op: LocateOp.LOCATE, object: id, hop: Math.min(255, hops + 1), ttlSec: 0 }, false)
        if (reply && reply.servers.length > 0 && await accept(reply.servers.map(copyContact))) { hops++; break }
      }
    }
    return { object: idToHex(id), server, servers: server ? servers : [], hops, messages, durationMs: this.ctx.runtime.now() - started }
  }

  /** Whether a server answers a ping as itself. */
  private alive(c: Contact): Promise<boolean> {
    return new Promise((resolve) => {
      this.ctx.rpc.request(c.address, { type: MessageType.PING }, expectedPongBytes(c.address), (err, reply) => resolve(!err && !!reply && idEquals(reply.sender, c.id)))
    })
  }

  /**
   * Follows the route hop by hop: each hop is asked (op) and names the next, with backups tried
   * in turn when one does not answer. Where a hop and all its backups are silent (tables not yet
   * repaired after churn), our own table is asked again if the dead end was our own link, and
   * otherwise the iterative lookup finds the live nodes nearest the root and the walk goes on
   * from there. Ends at the root, at a pointer (LOCATE), at a loop, or after maxHops.
   */
  private async walk(object: Uint8Array, op: number, accept?: (servers: Contact[]) => Promise<boolean>): Promise<{ hops: number; answered: number; messages: number; reachedRoot: boolean; servers: Contact[] }> {
    const visited = new Set<Address>([this.ctx.address()])
    let candidates = this.router.nextHops(object)
    let hops = 0, answered = 0, messages = 0, detours = 0
    const ttlSec = op === LocateOp.PUBLISH ? Math.ceil(this.options.pointerTtlMs / 1000) : 0
    while (candidates.length > 0 && hops < this.options.maxHops && !this.closed) {
      let reply: Pointers | null = null
      const tried = new Set<Address>()
      for (let i = 0; i < candidates.length && !reply; i++) {
        const c = candidates[i]
        if (visited.has(c.address) || tried.has(c.address) || idEquals(c.id, this.ctx.id)) continue
        tried.add(c.address)
        messages++
        reply = await this.ask(c, { type: MessageType.LOCATE, op, object, hop: Math.min(255, hops + 1), ttlSec }, hops === 0)
        if (reply) visited.add(c.address)
        // Our own links: failed() dropped the silent one and its backups moved up; look again.
        else if (hops === 0 && i === candidates.length - 1 && tried.size < 3 * MAX_NEXT_HOPS) candidates.push(...this.router.nextHops(object).filter((n) => !tried.has(n.address)))
      }
      if (!reply) {
        if (detours >= MAX_DETOURS || this.closed) return { hops, answered, messages, reachedRoot: false, servers: [] }
        detours++
        const found = await this.router.lookup(object).catch(() => null)
        messages += found?.messages ?? 0
        candidates = (found?.closest ?? []).filter((c) => !visited.has(c.address) && !idEquals(c.id, this.ctx.id)).slice(0, MAX_NEXT_HOPS)
        if (found && found.closest.length > 0 && idEquals(found.closest[0].id, this.ctx.id)) return { hops, answered, messages, reachedRoot: true, servers: [] } // we are the root
        continue
      }
      hops++
      answered++
      // A pointer met: done if one of its servers is taken (a LOCATE checks they are up), else walk on.
      if (reply.servers.length > 0 && (!accept || await accept(reply.servers.map(copyContact)))) return { hops, answered, messages, reachedRoot: false, servers: reply.servers.map(copyContact) }
      if (reply.next.length === 0) return { hops, answered, messages, reachedRoot: true, servers: [] }
      candidates = reply.next.map(copyContact)
    }
    return { hops, answered, messages, reachedRoot: candidates.length === 0, servers: [] }
  }

  /** One hop's question: its answer, or null when it did not answer (our own links are told). */
  private ask(to: Contact, body: { type: MessageType.LOCATE; op: number; object: Uint8Array; hop: number; ttlSec: number }, ours: boolean): Promise<Pointers | null> {
    return new Promise((resolve) => {
      this.ctx.rpc.requestProven(to.address, body, expectedPointersReplyBytes(to.address, MAX_NEXT_HOPS, MAX_SERVERS), (err, reply) => {
        if (err || !reply || reply.type !== MessageType.POINTERS || !idEquals(reply.sender, to.id)) {
          if (ours && err?.code === 'ERR_TIMEOUT') this.router.failed(to.id)
          resolve(null)
          return
        }
        resolve(reply)
      })
    })
  }

  private scheduleRepublish(): void {
    if (this.timer || this.closed) return
    const every = this.options.republishMs * (0.9 + 0.2 * this.ctx.runtime.random.float())
    this.timer = this.ctx.runtime.setTimeout(() => {
      this.timer = null
      if (this.closed || this.published.size === 0) return
      this.pointers?.expire(this.ctx.runtime.now())
      void (async () => {
        for (const id of [...this.published.values()]) {
          if (this.closed) return
          await this.publishOnce(id).catch(() => {})
        }
      })()
      this.scheduleRepublish()
    }, every)
  }

  close(): void {
    this.closed = true
    if (this.timer) { this.ctx.runtime.clearTimeout(this.timer); this.timer = null }
  }
}

function copyContact(c: Contact): Contact {
  return { id: new Uint8Array(c.id), address: c.address }
}
