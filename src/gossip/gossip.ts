// Gossip channels on one node: each channel (a 32-byte id) is a HyParView overlay with Plumtree on
// top. This registers the MEMBERSHIP and BROADCAST handlers with the rpc layer and routes each
// message to its channel. One-way messages (FORWARD_JOIN, SHUFFLE, DISCONNECT, GOSSIP, IHAVE,
// GRAFT, PRUNE) go straight to the transport with txid 0; JOIN and NEIGHBOR are rpc requests
// (retried, answered PONG or ERROR BUSY), and liveness is a PING.
import { WeftError } from '../errors.js'
import type { NodeId } from '../identity/node-id.js'
import { ContactPool } from '../overlay/contact-pool.js'
import { expectedPongBytes, type Rpc } from '../rpc/rpc.js'
import type { Runtime } from '../runtime/runtime.js'
import type { Address } from '../wire/address.js'
import { BroadcastOp, CHANNEL_BYTES, encode, Flag, MembershipOp, MessageType, type BroadcastRequest, type MembershipRequest, type Request } from '../wire/messages.js'
import { defaultHyParViewOptions, HyParView, type HyParViewOptions } from './hyparview.js'
import { newGossipStats, type ChannelLink, type GossipStats, type MembershipBody, type OneWayBody } from './link.js'
import { defaultPlumtreeOptions, Plumtree, type DeliverFn, type PlumtreeOptions, type ValidateFn } from './plumtree.js'

export interface GossipContext {
  runtime: Runtime
  rpc: Rpc
  id: NodeId
  address(): Address
  /** The transport under the rpc: one-way datagrams. */
  send(to: Address, bytes: Uint8Array): void
  /** Contacts as handles; the simulator shares one pool across nodes. */
  pool?: ContactPool
  /** Counters; the simulator shares one object across nodes. */
  stats?: GossipStats
  /** Answer PINGs here (a simulated node with no topology to do it). */
  answerPings?: boolean
}

export interface GossipOptions {
  hyparview: HyParViewOptions
  plumtree: PlumtreeOptions
  /** Channels open at once on one node. */
  maxChannels: number
}

export const defaultGossipOptions: GossipOptions = {
  hyparview: defaultHyParViewOptions, plumtree: defaultPlumtreeOptions, maxChannels: 64,
}

export function gossipOptions(o: { hyparview?: Partial<HyParViewOptions>; plumtree?: Partial<PlumtreeOptions>; maxChannels?: number } = {}): GossipOptions {
  return {
    hyparview: { ...defaultHyParViewOptions, ...o.hyparview },
    plumtree: { ...defaultPlumtreeOptions, ...o.plumtree },
    maxChannels: o.maxChannels ?? defaultGossipOptions.maxChannels,
  }
}

/** The node's own broadcast overlay: channel id zero. */
export const GLOBAL_CHANNEL = new Uint8Array(CHANNEL_BYTES)

const keyOf = (c: Uint8Array): string => Buffer.from(c.buffer, c.byteOffset, CHANNEL_BYTES).toString('latin1')

export class Channel implements ChannelLink {
  readonly membership: HyParView
  readonly tree: Plumtree
  /** Dandelion++ stem hops (BROADCAST op STEM) go here, not to Plumtree; unset: dropped (counted). */
  onStem: ((from: Address, id: Uint8Array, payload: Uint8Array) => void) | null = null
  constructor(private readonly gossip: Gossip, readonly channel: Uint8Array, deliver: DeliverFn, validate: ValidateFn | null) {
    const { runtime } = gossip.ctx
    this.membership = new HyParView(runtime, this, gossip.pool, gossip.options.hyparview, gossip.stats)
    this.tree = new Plumtree(runtime, this, gossip.pool, gossip.options.plumtree, gossip.stats, deliver, validate)
    this.membership.listener = this.tree
  }

  get id(): NodeId { return this.gossip.ctx.id }
  address(): Address { return this.gossip.ctx.address() }

  /** Joins the channel's overlay through the first contact that accepts. */
  join(contacts: Address[], cb?: (err: WeftError | null) => void): void { this.membership.join(contacts, cb) }
  joinAsync(contacts: Address[]): Promise<void> {
    return new Promise((resolve, reject) => this.membership.join(contacts, (err) => (err ? reject(err) : resolve())))
  }

  /** Broadcasts to every member; returns the message id (null: this payload was sent already). */
  broadcast(payload: Uint8Array): Uint8Array | null { return this.tree.broadcast(payload) }

  /** Leaves (DISCONNECT to the neighbours) and closes. */
  leave(): void {
    this.membership.leave()
    this.close()
  }

  close(): void {
    this.membership.close()
    this.tree.close()
    this.gossip.forget(this)
  }

  send(to: Address, body: OneWayBody): void {
    const g = this.gossip
    const header = { txid: 0, sender: g.ctx.id, flags: g.ctx.rpc.readOnly ? Flag.READ_ONLY : 0, token: undefined, pad: 0 }
    const req: Request = body.type === MessageType.MEMBERSHIP
      ? { type: MessageType.MEMBERSHIP, ...header, channel: this.channel, op: body.op, ttl: body.ttl, priority: body.priority, contacts: body.contacts }
      : { type: MessageType.BROADCAST, ...header, channel: this.channel, op: body.op, round: body.round, ids: body.ids, payload: body.payload }
    let bytes: Uint8Array
    try {
      bytes = encode(req)
    } catch {
      g.stats.dropped++ // cannot happen with the bounds above; never let it throw into a handler
      return
    }
    g.ctx.send(to, bytes)
  }

  request(to: Address, body: MembershipBody, cb: (err: WeftError | null, sender?: NodeId) => void): void {
    const rpc = this.gossip.ctx.rpc
    rpc.requestProven(to, { type: MessageType.MEMBERSHIP, channel: this.channel, op: body.op, ttl: body.ttl, priority: body.priority, contacts: body.contacts }, expectedPongBytes(to), (err, reply) => {
      if (err) cb(err)
      else if (!reply || reply.type !== MessageType.PONG) cb(new WeftError('ERR_BAD_MESSAGE', 'a MEMBERSHIP request is answered with PONG'))
      else cb(null, reply.sender)
    })
  }

  ping(to: Address, cb: (alive: boolean) => void): void {
    this.gossip.ctx.rpc.request(to, { type: MessageType.PING }, expectedPongBytes(to), (err) => cb(!err || (err.code !== 'ERR_TIMEOUT' && err.code !== 'ERR_CLOSED')))
  }
}

export class Gossip {
  readonly pool: ContactPool
  readonly stats: GossipStats
  readonly options: GossipOptions
  private readonly channels = new Map<string, Channel>()

  constructor(readonly ctx: GossipContext, options: GossipOptions = defaultGossipOptions) {
    this.options = options
    this.pool = ctx.pool ?? new ContactPool(64)
    this.stats = ctx.stats ?? newGossipStats()
    ctx.rpc.handle(MessageType.MEMBERSHIP, (from, req, verified) => this.onMembership(from, req as MembershipRequest, verified))
    ctx.rpc.handle(MessageType.BROADCAST, (from, req) => { this.onBroadcast(from, req as BroadcastRequest); return null })
    if (ctx.answerPings) ctx.rpc.handle(MessageType.PING, () => ({ type: MessageType.PONG }))
  }

  get size(): number { return this.channels.size }

  channel(id: Uint8Array): Channel | undefined { return this.channels.get(keyOf(id)) }

  /** Opens a channel (a HyParView overlay with Plumtree); `deliver` gets each new message once. */
  open(id: Uint8Array, deliver: DeliverFn, validate: ValidateFn | null = null): Channel {
    if (id.length !== CHANNEL_BYTES) throw new WeftError('ERR_BAD_ARGUMENT', `a channel id is ${CHANNEL_BYTES} bytes`)
    const key = keyOf(id)
    if (this.channels.has(key)) throw new WeftError('ERR_BAD_ARGUMENT', 'channel already open')
    if (this.channels.size >= this.options.maxChannels) throw new WeftError('ERR_BUSY', `at most ${this.options.maxChannels} gossip channels at once`)
    const c = new Channel(this, new Uint8Array(id), deliver, validate)
    this.channels.set(key, c)
    return c
  }

  forget(c: Channel): void {
    const key = keyOf(c.channel)
    if (this.channels.get(key) === c) this.channels.delete(key)
  }

  close(): void {
    for (const c of [...this.channels.values()]) c.close()
  }

  private onMembership(from: Address, req: MembershipRequest, verified = true) {
    // JOIN and NEIGHBOR put the asker in the active view, which then gets every broadcast: only an
    // asker whose address is proven (test/amplification.test.ts: 78 bytes in, 1.9 kB out).
    if (!verified && (req.op === MembershipOp.JOIN || req.op === MembershipOp.NEIGHBOR)) throw new WeftError('ERR_BAD_TOKEN', 'JOIN and NEIGHBOR need the token this node gave you in a reply')
    const c = this.channels.get(keyOf(req.channel))
    if (!c) {
      this.stats.unknownChannel++
      // Refuse what expects an answer; the one-way ops are dropped.
      if (req.op === 0 || req.op === 2) throw new WeftError('ERR_BAD_ARGUMENT', 'not in this gossip channel')
      return null
    }
    c.membership.heardFrom(from)
    return c.membership.handle(from, req)
  }

  private onBroadcast(from: Address, req: BroadcastRequest): void {
    const c = this.channels.get(keyOf(req.channel))
    if (!c) { this.stats.unknownChannel++; return }
    c.membership.heardFrom(from)
    if (req.op !== BroadcastOp.STEM) { c.tree.handle(from, req); return }
    this.stats.broadcastIn[req.op]++
    if (c.onStem) c.onStem(from, req.ids[0], req.payload)
    else this.stats.dropped++
  }
}
