// SWIM membership on a real node: adapts `Swim` (swim.ts, sans-IO, integer handles) to the rpc
// layer. Members are (id, address) pairs kept in a bounded handle table; SWIM messages go as
// one-way SWIM datagrams (wire type 16, txid 0, like BROADCAST) and each one received goes to the
// Swim instance. A handler that returns null answers nothing; anything that does not decode is
// counted and dropped, never thrown past the rpc layer.
//
// Joining: `join(seeds)` pings each seed address (an rpc PING: its id and a round-trip token), adds
// the seeds and asks them for a state sync: a GOSSIP with seq SYNC_REQUEST carrying our own
// "alive" and the seed's token. A seed answers a sync request only when the token is valid (the
// asker's address is proven, so the answer cannot be turned on someone else), with its members in
// GOSSIP datagrams (seq SYNC_REPLY, up to 14 members each). This is memberlist's push-pull, done
// at join: piggybacked dissemination alone would never tell a newcomer of members whose "alive"
// left every queue long ago. It is done again every syncIntervalMs with one random member (as
// memberlist's periodic push-pull): a member that missed another's "alive" while it spread would
// otherwise never hear of it, and would drop that member's probes as a stranger's.
import { EventEmitter } from 'node:events'
import { WeftError } from '../errors.js'
import { idEquals, idToHex, type NodeId } from '../identity/node-id.js'
import { expectedPongBytes, type Rpc } from '../rpc/rpc.js'
import { SeededRandom } from '../runtime/prng.js'
import type { Runtime, TimerHandle } from '../runtime/runtime.js'
import { canonicalAddress, type Address } from '../wire/address.js'
import { encode, Flag, MessageType, type SwimRequest } from '../wire/messages.js'
import { decodeSwim, encodeSwim, type SwimContact } from './swim-codec.js'
import { MAX_PIGGYBACK, MemberState, Swim, SwimType, UpdateKind, type SwimConfig, type SwimEvent, type SwimMessage, type SwimUpdate } from './swim.js'

/** GOSSIP seq 0: a gossip round; SYNC_REQUEST: "send me your members"; SYNC_REPLY: a part of the answer. */
export const SYNC_REQUEST = 1
export const SYNC_REPLY = 2

export interface MembershipOptions {
  /** Addresses joined at start (default: the node's bootstrap peers). */
  seeds?: Address[]
  /** SWIM timers and bounds (memberlist's LAN defaults otherwise; see swim.ts). */
  swim?: Partial<SwimConfig>
  /** Entries of the handle table (members, and ids heard of as suspectors) at most. */
  maxMembers: number
  /** Members sent in answer to one sync request at most. */
  maxSyncMembers: number
  /** Sync requests answered per second at most (burst: 4 times that). */
  syncPerSecond: number
  /** How often to ask one random member for all its members (push-pull); 0: only at join. */
  syncIntervalMs: number
  /** Members told directly of a graceful leave, besides the usual dissemination. */
  leaveFanout: number
  /** How long a graceful leave keeps spreading the news at most before it stops. */
  leaveMs: number
  /** Seeds the random choices (probe order, helpers, gossip targets); default: the runtime's random. */
  seed?: number | string
}

export const defaultMembershipOptions: MembershipOptions = {
  maxMembers: 4096, maxSyncMembers: 1024, syncPerSecond: 20, syncIntervalMs: 30_000, leaveFanout: 4, leaveMs: 1500,
}

export function membershipOptions(o: boolean | Partial<MembershipOptions> | undefined): MembershipOptions {
  return { ...defaultMembershipOptions, ...(typeof o === 'object' ? o : {}) }
}

export type MemberStatus = 'alive' | 'suspect'
export interface Member {
  /** Node id, 64 hex digits. */
  id: string
  address: Address
  state: MemberStatus
  incarnation: number
}
/** A member in an event (its state is what the event says). */
export interface MemberEvent { id: string; address: Address; incarnation: number }

export interface MembershipEvents {
  'member:join': [MemberEvent]
  'member:suspect': [MemberEvent]
  /** A suspected member refuted the suspicion. */
  'member:alive': [MemberEvent]
  'member:fail': [MemberEvent]
  'member:leave': [MemberEvent]
}

export interface MembershipContext {
  runtime: Runtime
  rpc: Rpc
  id: NodeId
  address(): Address
  /** The transport under the rpc: one-way datagrams. */
  send(to: Address, bytes: Uint8Array): void
}

export interface MembershipStats {
  sent: number
  received: number
  /** SWIM payloads that did not decode (or named more members than the table holds). */
  malformed: number
  /** Messages not sent: a member without an address, or one that would not encode. */
  dropped: number
  syncsAnswered: number
  /** Sync requests refused: no valid token, or over the rate. */
  syncsRefused: number
  /** Messages from a non-member without a round-trip token (dropped: its address is not proven). */
  unproven: number
  /** Event listeners that threw (caught, so a listener cannot break the protocol). */
  listenerErrors: number
}

interface Entry { id: NodeId; key: string; address: Address | null }

const keyOf = (id: Uint8Array): string => Buffer.from(id.buffer, id.byteOffset, id.length).toString('latin1')
const SELF = 0

export class Membership extends EventEmitter<MembershipEvents> {
  readonly options: MembershipOptions
  readonly swim: Swim
  readonly stats: MembershipStats = { sent: 0, received: 0, malformed: 0, dropped: 0, syncsAnswered: 0, syncsRefused: 0, unproven: 0, listenerErrors: 0 }
  /** Called for each event after the listeners (the node re-emits them). */
  onEvent: ((kind: SwimEvent['kind'], member: MemberEvent) => void) | null = null
  private readonly table: (Entry | undefined)[] = []
  private readonly byKey = new Map<string, number>()
  private readonly rt: Runtime
  private running = false
  private leaving: Promise<void> | null = null
  private syncTokens: number
  private syncAt: number
  private syncTimer: TimerHandle | null = null

  constructor(private readonly ctx: MembershipContext, options: Partial<MembershipOptions> = {}) {
    super()
    this.options = membershipOptions(options)
    const o = this.options
    if (!(Number.isInteger(o.maxMembers) && o.maxMembers >= 2)) throw new WeftError('ERR_BAD_ARGUMENT', 'membership maxMembers must be an integer >= 2')
    this.rt = o.seed === undefined ? ctx.runtime : withRandom(ctx.runtime, new SeededRandom(`membership:${o.seed}`))
    const self: Entry = { id: ctx.id, key: keyOf(ctx.id), address: null }
    this.table[SELF] = self
    this.byKey.set(self.key, SELF)
    this.swim = new Swim({
      self: SELF, runtime: this.rt,
      config: { ...o.swim, maxMembers: Math.min(o.swim?.maxMembers ?? o.maxMembers, o.maxMembers) },
      send: (to, msg) => this.send(to, msg),
      onEvent: (e) => this.event(e),
    })
    this.syncTokens = 4 * o.syncPerSecond
    this.syncAt = ctx.runtime.now()
    ctx.rpc.handle(MessageType.SWIM, (from, req, verified) => { this.receive(from, req as SwimRequest, verified); return null })
  }

  get isRunning(): boolean { return this.running }

  /** Starts probing (with nobody to probe until join() or someone joins through us). */
  start(): void {
    if (this.running) return
    this.running = true
    this.swim.start()
    this.scheduleSync()
  }

  /**
   * Joins the group through the given addresses: each is pinged for its id, added, and asked for
   * its members. Resolves with how many answered; rejects ERR_BOOTSTRAP_FAILED when none did.
   */
  async join(seeds: Address[]): Promise<number> {
    if (!this.running) throw new WeftError('ERR_NOT_RUNNING', 'membership is not running')
    const self = this.ctx.address()
    const addresses = [...new Set(seeds.map(canonicalAddress))].filter((a) => a !== self)
    const handles: number[] = []
    await Promise.all(addresses.map(async (a) => {
      try {
        const { reply } = await this.ctx.rpc.requestAsync(a, { type: MessageType.PING }, expectedPongBytes(a))
        if (idEquals(reply.sender, this.ctx.id)) return
        handles.push(this.handleOf(reply.sender, a, true))
      } catch { /* an absent seed: the others may answer */ }
    }))
    if (!this.running) throw new WeftError('ERR_CLOSED', 'membership stopped while joining')
    if (addresses.length > 0 && handles.length === 0) throw new WeftError('ERR_BOOTSTRAP_FAILED', `no membership seed answered (${addresses.join(', ')})`)
    this.swim.join(handles)
    const alive: SwimUpdate = { kind: UpdateKind.ALIVE, member: SELF, incarnation: this.swim.incarnation, from: SELF }
    for (const h of handles) {
      const address = this.table[h]!.address!
      this.send(h, { type: SwimType.GOSSIP, seq: SYNC_REQUEST, updates: [alive] }, this.ctx.rpc.heldToken(address), false)
    }
    return handles.length
  }

  /** The members alive or suspected, this node first. */
  members(): Member[] {
    const out: Member[] = [{ id: idToHex(this.ctx.id), address: this.ctx.address(), state: 'alive', incarnation: this.swim.incarnation }]
    for (const h of this.swim.members()) {
      const e = this.table[h]
      if (!e?.address) continue
      out.push({ id: idToHex(e.id), address: e.address, state: this.swim.stateOf(h) === MemberState.SUSPECT ? 'suspect' : 'alive', incarnation: this.swim.incarnationOf(h) })
    }
    return out
  }

  /**
   * Leaves gracefully: says "left" to a few members at once and keeps disseminating it until the
   * news has been sent as often as SWIM sends an update (or options.leaveMs), then stops.
   */
  leave(): Promise<void> {
    if (!this.running) return Promise.resolve()
    return (this.leaving ??= new Promise<void>((resolve) => {
      this.swim.leave()
      const left: SwimUpdate = { kind: UpdateKind.DEAD, member: SELF, incarnation: this.swim.incarnation, from: SELF }
      for (const h of this.pick([...this.swim.members()], this.options.leaveFanout)) this.send(h, { type: SwimType.GOSSIP, seq: 0, updates: [left] })
      const started = this.ctx.runtime.now()
      const step = Math.max(20, Math.min(this.swim.config.gossipIntervalMs || this.swim.config.probeIntervalMs, this.swim.config.probeIntervalMs) / 2)
      const poll = (): void => {
        if (!this.running || this.swim.queueLength === 0 || this.ctx.runtime.now() - started >= this.options.leaveMs) {
          this.close()
          resolve()
          return
        }
        this.ctx.runtime.setTimeout(poll, step)
      }
      this.ctx.runtime.setTimeout(poll, step)
    }))
  }

  /** Stops without a word (others will find this node failed). */
  close(): void {
    if (!this.running) return
    this.running = false
    if (this.syncTimer) this.ctx.runtime.clearTimeout(this.syncTimer)
    this.syncTimer = null
    this.swim.stop()
  }

  private scheduleSync(): void {
    const every = this.options.syncIntervalMs
    if (!(every > 0) || !this.running) return
    this.syncTimer = this.ctx.runtime.setTimeout(() => {
      this.syncTimer = null
      void this.syncWithOne().finally(() => this.scheduleSync())
    }, every)
  }

  /** Push-pull with one random member: our "alive" to it, all its members back (when it proves our address by its token). */
  private async syncWithOne(): Promise<void> {
    if (!this.running || this.leaving) return
    const [h] = this.pick([...this.swim.members()], 1)
    const address = h === undefined ? null : this.table[h]?.address ?? null
    if (h === undefined || address === null) return
    if (this.ctx.rpc.heldToken(address) === undefined) {
      // The answer may run to kilobytes: the member sends it only to an address that echoes its token.
      try { await this.ctx.rpc.requestAsync(address, { type: MessageType.PING }, expectedPongBytes(address)) } catch { return }
      if (!this.running || this.leaving) return
    }
    const alive: SwimUpdate = { kind: UpdateKind.ALIVE, member: SELF, incarnation: this.swim.incarnation, from: SELF }
    this.send(h, { type: SwimType.GOSSIP, seq: SYNC_REQUEST, updates: [alive] }, this.ctx.rpc.heldToken(address), false)
  }

  // ---- the handle table -------------------------------------------------------------------

  /**
   * The handle of member `id`, made if new. `authoritative`: the address is where the member
   * itself just talked from (its session is bound to the id), so it replaces the one held;
   * otherwise an address heard from others only fills a gap. Throws ERR_BUSY when the table is full
   * of members SWIM still knows.
   */
  private handleOf(id: NodeId, address: Address | null, authoritative = false): number {
    const key = keyOf(id)
    const h = this.byKey.get(key)
    if (h !== undefined) {
      const e = this.table[h]!
      if (address !== null && h !== SELF && (authoritative || e.address === null)) e.address = address
      return h
    }
    let slot = this.table.length
    if (slot >= this.options.maxMembers) {
      slot = this.reusable()
      if (slot < 0) throw new WeftError('ERR_BUSY', `membership table full (${this.options.maxMembers})`)
      this.byKey.delete(this.table[slot]!.key)
    }
    this.table[slot] = { id: new Uint8Array(id), key, address }
    this.byKey.set(key, slot)
    return slot
  }

  /** A handle SWIM no longer knows (never a member, or dead and reaped): its entry can go. */
  private reusable(): number {
    for (let h = 1; h < this.table.length; h++) if (this.swim.stateOf(h) === MemberState.NONE) return h
    return -1
  }

  private contactOf = (h: number): SwimContact => {
    const e = this.table[h]
    if (!e) throw new WeftError('ERR_BAD_ARGUMENT', `no member with handle ${h}`)
    const address = h === SELF ? this.ctx.address() : e.address
    if (address === null) throw new WeftError('ERR_BAD_ARGUMENT', 'member without an address')
    return { id: e.id, address }
  }

  // ---- datagrams --------------------------------------------------------------------------

  private send(to: number, msg: SwimMessage, token?: number, counted = true): void {
    const e = this.table[to]
    if (!this.running || !e?.address || to === SELF) { this.stats.dropped++; return }
    let bytes: Uint8Array
    try {
      const payload = encodeSwim(msg, this.contactOf)
      bytes = encode({ type: MessageType.SWIM, txid: 0, sender: this.ctx.id, flags: this.ctx.rpc.readOnly ? Flag.READ_ONLY : 0, token, pad: 0, payload })
    } catch {
      this.stats.dropped++ // a member without an address; never let it throw into Swim
      return
    }
    if (counted) this.stats.sent++
    this.ctx.send(e.address, bytes)
  }

  private receive(from: Address, req: SwimRequest, verified: boolean): void {
    if (!this.running) return
    if (idEquals(req.sender, this.ctx.id)) { this.stats.malformed++; return }
    // A stranger becomes a member only from a proven address (a join's sync request carries a
    // round-trip token), and a member's address moves only on proof: otherwise one spoofed datagram
    // would aim SWIM's probes and gossip, kilobytes over seconds, at someone else's address.
    // Members made known by members' gossip are not strangers.
    const known = this.byKey.get(keyOf(req.sender))
    const member = known !== undefined && this.swim.stateOf(known) !== MemberState.NONE
    if (!member && !verified) { this.stats.unproven++; return }
    let sender: number, msg: SwimMessage
    try {
      sender = this.handleOf(req.sender, from, verified)
      msg = decodeSwim(req.payload, (id, address) => this.handleOf(id, address))
    } catch {
      this.stats.malformed++
      return
    }
    this.stats.received++
    this.swim.receive(sender, msg)
    if (msg.type === SwimType.GOSSIP && msg.seq === SYNC_REQUEST) this.answerSync(sender, verified)
  }

  private answerSync(to: number, verified: boolean): void {
    const now = this.ctx.runtime.now()
    const o = this.options
    this.syncTokens = Math.min(4 * o.syncPerSecond, this.syncTokens + ((now - this.syncAt) / 1000) * o.syncPerSecond)
    this.syncAt = now
    if (!verified || this.syncTokens < 1) { this.stats.syncsRefused++; return }
    this.syncTokens--
    this.stats.syncsAnswered++
    const snapshot = this.swim.snapshot(o.maxSyncMembers).filter((u) => u.member !== to)
    for (let i = 0; i < snapshot.length; i += MAX_PIGGYBACK) {
      this.send(to, { type: SwimType.GOSSIP, seq: SYNC_REPLY, updates: snapshot.slice(i, i + MAX_PIGGYBACK) }, undefined, false)
    }
  }

  private event(e: SwimEvent): void {
    const entry = this.table[e.member]
    if (!entry) return
    const m: MemberEvent = { id: idToHex(entry.id), address: entry.address ?? '', incarnation: e.incarnation }
    try {
      this.emit(`member:${e.kind}`, m)
      this.onEvent?.(e.kind, m)
    } catch {
      this.stats.listenerErrors++
    }
  }

  private pick(from: number[], n: number): number[] {
    const r = this.rt.random
    for (let i = from.length - 1; i > 0; i--) { const j = r.u32() % (i + 1); [from[i], from[j]] = [from[j], from[i]] }
    return from.slice(0, n)
  }
}

function withRandom(rt: Runtime, random: Runtime['random']): Runtime {
  return {
    now: () => rt.now(),
    wallClock: () => rt.wallClock(),
    setTimeout: (fn, ms) => rt.setTimeout(fn, ms),
    clearTimeout: (h) => rt.clearTimeout(h),
    random,
    verifySignature: (k, d, s) => rt.verifySignature(k, d, s),
  }
}
