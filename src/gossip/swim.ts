// SWIM membership (Das, Gupta, Motivala 2002) with Lifeguard's extensions (Dadgar et al. 2017,
// arXiv 1707.00788), sans-IO. One Swim instance is one member's view of the group.
//
// - Failure detection. Every probe interval the member pings the next member of a randomly
//   ordered list (reshuffled at each wrap). No ack within the probe timeout: it asks k members
//   (ping-req) to ping the target for it. No ack, direct or relayed, by the end of the interval:
//   the target is suspected. A suspicion becomes "dead" when its timeout runs out; a member that
//   hears it is suspected refutes by raising its incarnation number and broadcasting "alive".
// - Dissemination. Updates (alive, suspect, dead) ride on pings, ping-reqs and acks from a
//   bounded broadcast queue, fewest transmissions first, each sent retransmitMult * ceil(log10(N+1))
//   times; a newer update about a member replaces the queued one.
// - Lifeguard. (1) Local Health Multiplier: a score 0..maxLocalHealth-1 that rises on failed probes
//   (by the nacks missing from the helpers, or 1 without helpers) and on refuting a suspicion of
//   ourselves, falls on each successful probe, and scales the probe interval by (score + 1).
//   (2) Dynamic suspicion: a suspicion starts at max = suspicionMaxTimeoutMult * min and shrinks
//   toward min = suspicionMult * max(1, log10 N) * probeInterval as independent members confirm
//   it (k = suspicionMult - 2 expected confirmations, log-scaled). (3) Buddy system: a ping to a
//   suspected member carries the suspicion, so it can refute at once. Helpers answer a ping-req
//   they could not complete with a nack. With `lifeguard: false` all of this is off (score stays
//   0, suspicion timeout = min, no nacks, no buddy), which is SWIM as memberlist ran before it.
//
// Members are small integer handles (the host maps them to ids and addresses, as the overlay's
// contact pool does); per-member state lives in typed arrays indexed by handle. The host gives a
// Runtime (clock, timers, seeded random) and a send function; swim-codec.ts turns messages into
// bytes for a real transport, and the simulator passes the objects directly.
import { WeftError } from '../errors.js'
import type { Runtime, TimerHandle } from '../runtime/runtime.js'

/** Largest member handle accepted (arrays are indexed by handle). */
export const MAX_HANDLE = 1 << 24
/** Updates piggybacked on one message: what fits one datagram (see swim-codec.ts). */
export const MAX_PIGGYBACK = 14

export const UpdateKind = { ALIVE: 1, SUSPECT: 2, DEAD: 3 } as const
export type UpdateKind = (typeof UpdateKind)[keyof typeof UpdateKind]

/** Member states as kept in the state array. NONE: not a member (never heard of, or reaped). */
export const MemberState = { NONE: 0, ALIVE: 1, SUSPECT: 2, DEAD: 3, LEFT: 4 } as const

export interface SwimUpdate {
  kind: UpdateKind
  member: number
  incarnation: number
  /** Who says so: the suspector (counts confirmations) or, for DEAD, the member itself when it left. */
  from: number
}

export const SwimType = { PING: 1, ACK: 2, PING_REQ: 3, NACK: 4, GOSSIP: 5 } as const
export type SwimMessage =
  | { type: typeof SwimType.PING; seq: number; target: number; updates: SwimUpdate[] }
  | { type: typeof SwimType.ACK; seq: number; updates: SwimUpdate[] }
  | { type: typeof SwimType.PING_REQ; seq: number; target: number; updates: SwimUpdate[] }
  | { type: typeof SwimType.NACK; seq: number; updates: SwimUpdate[] }
  /** Updates only, sent by the optional gossip round (memberlist's GossipInterval); seq is 0. */
  | { type: typeof SwimType.GOSSIP; seq: number; updates: SwimUpdate[] }

export type SwimEventKind = 'join' | 'suspect' | 'alive' | 'fail' | 'leave'
export interface SwimEvent {
  kind: SwimEventKind
  member: number
  incarnation: number
}

export interface SwimConfig {
  /** Base probe interval (memberlist LAN: 1 s). */
  probeIntervalMs: number
  /** Wait for a direct ack before asking helpers (memberlist LAN: 500 ms; not scaled by health, as in memberlist). */
  probeTimeoutMs: number
  /** Helpers asked to ping a silent target (memberlist: IndirectChecks 3). */
  indirectChecks: number
  /** Suspicion timeout min = suspicionMult * max(1, log10 N) * probeInterval (memberlist: 4). */
  suspicionMult: number
  /** Lifeguard: suspicion timeout max = this * min (memberlist: 6). */
  suspicionMaxTimeoutMult: number
  /** Each update is sent retransmitMult * ceil(log10(N + 1)) times (memberlist: 4). */
  retransmitMult: number
  /** Lifeguard local health: the score stays below this (memberlist AwarenessMaxMultiplier: 8). */
  maxLocalHealth: number
  /** Lifeguard: a helper nacks when the target has not acked within this share of probeTimeout. */
  nackFraction: number
  /**
   * Besides piggybacking, send queued updates to gossipNodes random members every this many ms
   * (memberlist LAN: 200 ms to 3); 0: piggyback only, as in the SWIM paper.
   */
  gossipIntervalMs: number
  gossipNodes: number
  /** Lifeguard on (LHM, dynamic suspicion, buddy system, nacks) or plain SWIM. */
  lifeguard: boolean
  /** Members known (any state) at most; updates about further members are refused and counted. */
  maxMembers: number
  /** Updates waiting in the broadcast queue at most; the most retransmitted go first. */
  maxQueue: number
  /** Ping-reqs being served for others at once at most. */
  maxIndirect: number
  /** A dead member is forgotten (state NONE) this long after it died (memberlist GossipToTheDeadTime: 30 s). */
  deadReapMs: number
}

/** memberlist's DefaultLANConfig, with Lifeguard on. */
export const LAN_DEFAULTS: SwimConfig = {
  probeIntervalMs: 1000,
  probeTimeoutMs: 500,
  indirectChecks: 3,
  suspicionMult: 4,
  suspicionMaxTimeoutMult: 6,
  retransmitMult: 4,
  maxLocalHealth: 8,
  nackFraction: 0.8,
  gossipIntervalMs: 200,
  gossipNodes: 3,
  lifeguard: true,
  maxMembers: 65_536,
  maxQueue: 4_096,
  maxIndirect: 256,
  deadReapMs: 30_000,
}

export interface SwimOptions {
  self: number
  runtime: Runtime
  send: (to: number, msg: SwimMessage) => void
  onEvent?: (e: SwimEvent) => void
  config?: Partial<SwimConfig>
}

interface Suspicion {
  incarnation: number
  start: number
  /** Confirmations expected (Lifeguard's k); 0: the timeout is min from the start. */
  k: number
  confirmers: number[]
  timer: TimerHandle
  minMs: number
  maxMs: number
}

interface QueuedUpdate {
  update: SwimUpdate
  transmits: number
  live: boolean
}

interface Probe {
  seq: number
  target: number
  acked: boolean
  nacks: number
  expectedNacks: number
  ackTimer: TimerHandle | null
}

interface Relay {
  requester: number
  seq: number
  nackTimer: TimerHandle | null
  expiry: TimerHandle
}

export interface SwimStats {
  sent: number
  received: number
  probes: number
  probeFailures: number
  indirectProbes: number
  refutations: number
  refused: { members: number; indirect: number; queue: number; misdirected: number; oversized: number }
}

export class Swim {
  readonly self: number
  readonly config: SwimConfig
  private readonly rt: Runtime
  private readonly sendFn: SwimOptions['send']
  private readonly onEvent: (e: SwimEvent) => void

  private state = new Uint8Array(64)
  private inc = new Uint32Array(64)
  private known = 0 // members in any state but NONE, self excluded
  private live = 0 // ALIVE or SUSPECT, self excluded
  private selfInc = 0
  private leaving = false

  /** Probe order: handles, shuffled at each wrap; dead and forgotten ones are skipped, then dropped. */
  private order = new Uint32Array(64)
  private orderLen = 0
  private orderPos = 0
  private inOrder = new Uint8Array(64)
  private readonly suspicions = new Map<number, Suspicion>()
  private readonly deadQueue: { member: number; at: number }[] = []
  private deadHead = 0

  /** Broadcast queue: buckets[t] holds the updates sent t times, newest last. */
  private buckets: QueuedUpdate[][] = [[]]
  private readonly queued = new Map<number, QueuedUpdate>()
  private entries = 0 // in the buckets, superseded ones included (compacted when they dominate)

  private seq = 0
  private probe: Probe | null = null
  private tickTimer: TimerHandle | null = null
  private gossipTimer: TimerHandle | null = null
  private readonly relays = new Map<number, Relay>()
  private health = 0
  private running = false

  readonly stats: SwimStats = { sent: 0, received: 0, probes: 0, probeFailures: 0, indirectProbes: 0, refutations: 0, refused: { members: 0, indirect: 0, queue: 0, misdirected: 0, oversized: 0 } }

  constructor(o: SwimOptions) {
    this.config = { ...LAN_DEFAULTS, ...o.config }
    const c = this.config
    if (!(c.probeIntervalMs > 0 && c.probeTimeoutMs > 0 && c.probeTimeoutMs <= c.probeIntervalMs)) throw new WeftError('ERR_BAD_ARGUMENT', 'SWIM needs 0 < probeTimeoutMs <= probeIntervalMs')
    if (!(Number.isInteger(c.indirectChecks) && c.indirectChecks >= 0 && c.indirectChecks <= 16)) throw new WeftError('ERR_BAD_ARGUMENT', 'indirectChecks must be 0..16')
    if (!(c.gossipIntervalMs >= 0 && Number.isInteger(c.gossipNodes) && c.gossipNodes >= 0 && c.gossipNodes <= 16)) throw new WeftError('ERR_BAD_ARGUMENT', 'gossipIntervalMs must be >= 0 and gossipNodes 0..16')
    if (!(c.suspicionMult >= 1 && c.suspicionMaxTimeoutMult >= 1 && c.retransmitMult >= 1 && c.maxLocalHealth >= 1)) throw new WeftError('ERR_BAD_ARGUMENT', 'SWIM multipliers must be at least 1')
    checkHandle(o.self)
    this.self = o.self
    this.rt = o.runtime
    this.sendFn = o.send
    this.onEvent = o.onEvent ?? (() => {})
  }

  // ---- the host's side --------------------------------------------------------------------

  /** Starts probing, at a random offset within the first interval so members do not tick together. */
  start(): void {
    if (this.running) return
    this.running = true
    this.tickTimer = this.rt.setTimeout(() => this.tick(), this.rt.random.float() * this.config.probeIntervalMs)
    this.wakeGossip()
  }

  /**
   * The gossip round runs only while updates wait (a round with nothing to send sends nothing),
   * so an idle member has no timer ticking every 200 ms; it starts at a random phase.
   */
  private wakeGossip(): void {
    if (this.gossipTimer || !this.running || this.config.gossipIntervalMs <= 0 || this.queued.size === 0) return
    this.gossipTimer = this.rt.setTimeout(() => this.gossip(), this.rt.random.float() * this.config.gossipIntervalMs)
  }

  /** The gossip round: queued updates to a few random members. */
  private gossip(): void {
    this.gossipTimer = null
    if (!this.running || this.queued.size === 0) return
    this.gossipTimer = this.rt.setTimeout(() => this.gossip(), this.config.gossipIntervalMs)
    for (const h of this.randomMembers(this.config.gossipNodes, this.self, true)) {
      if (this.queued.size === 0) break
      this.send(h, { type: SwimType.GOSSIP, seq: 0, updates: [] })
    }
  }

  stop(): void {
    this.running = false
    if (this.tickTimer) this.rt.clearTimeout(this.tickTimer)
    if (this.gossipTimer) this.rt.clearTimeout(this.gossipTimer)
    if (this.probe?.ackTimer) this.rt.clearTimeout(this.probe.ackTimer)
    this.probe = null
    for (const s of this.suspicions.values()) this.rt.clearTimeout(s.timer)
    this.suspicions.clear()
    for (const r of this.relays.values()) this.dropRelay(r)
    this.relays.clear()
  }

  /**
   * Adds members known alive without telling anyone (a state sync on join, or a simulation that
   * starts converged). join() is the way in for a newcomer.
   */
  addMembers(handles: Iterable<number>, incarnation = 0): void {
    for (const h of handles) {
      if (h === this.self || this.stateOf(h) !== MemberState.NONE) continue
      if (!this.admit(h)) continue
      this.state[h] = MemberState.ALIVE
      this.inc[h] = incarnation >>> 0
      this.known++; this.live++
      this.insertInOrder(h)
    }
  }

  /** Joins through the given members: adds them and broadcasts our own "alive". */
  join(seeds: Iterable<number>): void {
    this.addMembers(seeds)
    this.enqueue({ kind: UpdateKind.ALIVE, member: this.self, incarnation: this.selfInc, from: this.self })
  }

  /** Graceful leave: broadcasts "dead, from myself" (others report `leave`); keep running a few intervals, then stop(). */
  leave(): void {
    this.leaving = true
    this.enqueue({ kind: UpdateKind.DEAD, member: this.self, incarnation: this.selfInc, from: this.self })
  }

  /**
   * This member's view for a state sync (memberlist's push-pull): every member alive or suspected,
   * ourselves included, as updates, at most `max`. The host carries it over a reliable channel.
   */
  snapshot(max = this.config.maxMembers): SwimUpdate[] {
    const out: SwimUpdate[] = [{ kind: UpdateKind.ALIVE, member: this.self, incarnation: this.selfInc, from: this.self }]
    for (let h = 0; h < this.state.length && out.length < max; h++) {
      const st = this.state[h]
      if (st === MemberState.ALIVE || st === MemberState.SUSPECT) out.push({ kind: st === MemberState.ALIVE ? UpdateKind.ALIVE : UpdateKind.SUSPECT, member: h, incarnation: this.inc[h], from: this.self })
    }
    return out
  }

  /** Merges another member's snapshot: each entry is handled as the update it is (newer incarnations win). */
  merge(snapshot: readonly SwimUpdate[]): void {
    if (!this.running) return
    for (const u of snapshot) this.apply(u)
  }

  /** A message from member `from`. */
  receive(from: number, msg: SwimMessage): void {
    if (!this.running) return
    this.stats.received++
    if (msg.updates.length > MAX_PIGGYBACK) { this.stats.refused.oversized++; return }
    for (const u of msg.updates) this.apply(u)
    switch (msg.type) {
      case SwimType.PING:
        if (msg.target !== this.self) { this.stats.refused.misdirected++; return }
        this.send(from, { type: SwimType.ACK, seq: msg.seq, updates: this.tellTheDead(from) })
        return
      case SwimType.ACK: return this.onAck(msg.seq)
      case SwimType.NACK:
        if (this.probe && this.probe.seq === msg.seq) this.probe.nacks++
        return
      case SwimType.PING_REQ: return this.onPingReq(from, msg.seq, msg.target)
    }
  }

  /** Current state of a member (MemberState), MemberState.ALIVE for ourselves. */
  stateOf(h: number): number {
    if (h === this.self) return this.leaving ? MemberState.LEFT : MemberState.ALIVE
    return h < this.state.length ? this.state[h] : MemberState.NONE
  }
  incarnationOf(h: number): number { return h === this.self ? this.selfInc : h < this.inc.length ? this.inc[h] : 0 }
  get incarnation(): number { return this.selfInc }
  /** Lifeguard's local health score (0 is healthy); probes run (score + 1) times slower. */
  get localHealth(): number { return this.health }
  /** Members alive or suspected, ourselves excluded. */
  get liveMembers(): number { return this.live }
  get queueLength(): number { return this.queued.size }

  /** The members alive or suspected (ourselves excluded). */
  *members(): IterableIterator<number> {
    for (let h = 0; h < this.state.length; h++) {
      const s = this.state[h]
      if (s === MemberState.ALIVE || s === MemberState.SUSPECT) yield h
    }
  }

  // ---- probing ----------------------------------------------------------------------------

  private scaled(ms: number): number { return ms * (this.health + 1) }

  private tick(): void {
    this.tickTimer = null
    if (!this.running) return
    this.finishProbe()
    this.reapDead()
    const target = this.nextTarget()
    const interval = this.scaled(this.config.probeIntervalMs)
    this.tickTimer = this.rt.setTimeout(() => this.tick(), interval)
    if (target < 0) return
    const seq = this.nextSeq()
    const probe: Probe = { seq, target, acked: false, nacks: 0, expectedNacks: 0, ackTimer: null }
    this.probe = probe
    this.stats.probes++
    // Buddy system: a suspected member hears of its suspicion first thing, so it can refute.
    const s = this.state[target] === MemberState.SUSPECT && this.config.lifeguard
      ? [{ kind: UpdateKind.SUSPECT, member: target, incarnation: this.inc[target], from: this.self } as SwimUpdate]
      : []
    this.send(target, { type: SwimType.PING, seq, target, updates: s })
    probe.ackTimer = this.rt.setTimeout(() => this.indirect(probe), this.config.probeTimeoutMs)
  }

  private indirect(p: Probe): void {
    p.ackTimer = null
    if (this.probe !== p || p.acked) return
    const helpers = this.randomMembers(this.config.indirectChecks, p.target)
    this.stats.indirectProbes++
    p.expectedNacks = this.config.lifeguard ? helpers.length : 0
    for (const h of helpers) this.send(h, { type: SwimType.PING_REQ, seq: p.seq, target: p.target, updates: [] })
  }

  /** At the end of a probe's interval: an unacked target is suspected; local health moves. */
  private finishProbe(): void {
    const p = this.probe
    if (!p) return
    this.probe = null
    if (p.ackTimer) this.rt.clearTimeout(p.ackTimer)
    if (p.acked) return
    this.stats.probeFailures++
    if (this.config.lifeguard) this.addHealth(p.expectedNacks > 0 ? Math.max(0, p.expectedNacks - p.nacks) : 1)
    const st = this.stateOf(p.target)
    if (st === MemberState.ALIVE || st === MemberState.SUSPECT) {
      this.apply({ kind: UpdateKind.SUSPECT, member: p.target, incarnation: this.inc[p.target], from: this.self })
    }
  }

  /**
   * A member we hold dead (not yet forgotten) is talking to us: its ack carries the verdict, so it
   * refutes and comes back (a partition healed), as memberlist's push-pull would tell it later.
   */
  private tellTheDead(h: number): SwimUpdate[] {
    const st = h < this.state.length ? this.state[h] : MemberState.NONE
    return st === MemberState.DEAD ? [{ kind: UpdateKind.DEAD, member: h, incarnation: this.inc[h], from: this.self }] : []
  }

  private onAck(seq: number): void {
    const p = this.probe
    if (p && p.seq === seq) {
      if (!p.acked) {
        p.acked = true
        if (this.config.lifeguard) this.addHealth(-1)
      }
      return
    }
    const r = this.relays.get(seq)
    if (r) {
      this.dropRelay(r)
      this.relays.delete(seq)
      this.send(r.requester, { type: SwimType.ACK, seq: r.seq, updates: [] })
    }
  }

  private onPingReq(from: number, seq: number, target: number): void {
    if (target === this.self) { this.send(from, { type: SwimType.ACK, seq, updates: [] }); return }
    if (this.relays.size >= this.config.maxIndirect) { this.stats.refused.indirect++; return }
    const local = this.nextSeq()
    const r: Relay = {
      requester: from, seq, nackTimer: null,
      expiry: this.rt.setTimeout(() => { this.dropRelay(r); this.relays.delete(local) }, this.config.probeTimeoutMs),
    }
    if (this.config.lifeguard) {
      r.nackTimer = this.rt.setTimeout(() => { r.nackTimer = null; this.send(from, { type: SwimType.NACK, seq, updates: [] }) }, this.config.nackFraction * this.config.probeTimeoutMs)
    }
    this.relays.set(local, r)
    this.send(target, { type: SwimType.PING, seq: local, target, updates: [] })
  }

  private dropRelay(r: Relay): void {
    if (r.nackTimer) this.rt.clearTimeout(r.nackTimer)
    this.rt.clearTimeout(r.expiry)
  }

  private nextSeq(): number { return (this.seq = (this.seq + 1) >>> 0) }

  private addHealth(delta: number): void {
    this.health = Math.max(0, Math.min(this.config.maxLocalHealth - 1, this.health + delta))
  }

  /** The next member in probe order that is alive or suspected; reshuffles at each wrap. */
  private nextTarget(): number {
    for (let checked = 0; checked <= this.orderLen; checked++) {
      if (this.orderPos >= this.orderLen) {
        this.reshuffle()
        if (this.orderLen === 0) return -1
      }
      const h = this.order[this.orderPos++]
      const s = this.state[h]
      if (s === MemberState.ALIVE || s === MemberState.SUSPECT) return h
    }
    return -1
  }

  /** Drops the dead and forgotten from the order and shuffles it (Fisher-Yates). */
  private reshuffle(): void {
    const o = this.order
    let n = 0
    for (let i = 0; i < this.orderLen; i++) {
      const h = o[i]
      const s = this.state[h]
      if (s === MemberState.ALIVE || s === MemberState.SUSPECT) o[n++] = h
      else this.inOrder[h] = 0
    }
    const r = this.rt.random
    for (let i = n - 1; i > 0; i--) {
      const j = r.u32() % (i + 1)
      const t = o[i]; o[i] = o[j]; o[j] = t
    }
    this.orderLen = n
    this.orderPos = 0
  }

  /** A new member goes to a random place in the order (memberlist does the same), so it is probed within a round. */
  private insertInOrder(h: number): void {
    if (this.inOrder[h]) return
    this.inOrder[h] = 1
    if (this.orderLen === this.order.length) {
      const bigger = new Uint32Array(this.order.length * 2)
      bigger.set(this.order)
      this.order = bigger
    }
    const o = this.order
    const last = this.orderLen++
    o[last] = h
    const j = this.rt.random.u32() % this.orderLen
    o[last] = o[j]; o[j] = h
  }

  /** Up to n distinct random members alive (and suspected, with `suspects`), other than `not` and ourselves. */
  private randomMembers(n: number, not: number, suspects = false): number[] {
    const out: number[] = []
    const o = this.order
    const len = this.orderLen
    if (len === 0 || n === 0) return out
    const r = this.rt.random
    for (let tries = 0; tries < 3 * len && tries < 64 * n && out.length < n; tries++) {
      const h = o[r.u32() % len]
      const st = this.state[h]
      if (h === not || !(st === MemberState.ALIVE || (suspects && st === MemberState.SUSPECT)) || out.includes(h)) continue
      out.push(h)
    }
    return out
  }

  // ---- membership updates -----------------------------------------------------------------

  private apply(u: SwimUpdate): void {
    const m = u.member
    if (!(Number.isInteger(m) && m >= 0 && m < MAX_HANDLE)) return
    if (m === this.self) return this.aboutSelf(u)
    const st = m < this.state.length ? this.state[m] : MemberState.NONE
    const cur = st === MemberState.NONE ? 0 : this.inc[m]
    switch (u.kind) {
      case UpdateKind.ALIVE: {
        if (st !== MemberState.NONE && u.incarnation <= cur) return
        if (st === MemberState.NONE && !this.admit(m)) return
        this.clearSuspicion(m)
        if (st === MemberState.NONE) this.known++
        if (st !== MemberState.ALIVE && st !== MemberState.SUSPECT) this.live++
        this.state[m] = MemberState.ALIVE
        this.inc[m] = u.incarnation
        this.insertInOrder(m)
        this.enqueue(u)
        this.onEvent({ kind: st === MemberState.SUSPECT ? 'alive' : 'join', member: m, incarnation: u.incarnation })
        return
      }
      case UpdateKind.SUSPECT: {
        if (st === MemberState.NONE || st === MemberState.DEAD || st === MemberState.LEFT || u.incarnation < cur) return
        if (st === MemberState.SUSPECT && u.incarnation === cur) {
          const s = this.suspicions.get(m)
          if (s && this.confirm(m, s, u.from)) this.enqueue(u) // pass independent confirmations on
          return
        }
        if (st === MemberState.SUSPECT) {
          // Suspected again at a newer incarnation (we missed its refutation): a fresh suspicion.
          this.inc[m] = u.incarnation
          this.startSuspicion(m, u.incarnation, u.from)
          this.enqueue(u)
          return
        }
        this.state[m] = MemberState.SUSPECT
        this.inc[m] = u.incarnation
        this.startSuspicion(m, u.incarnation, u.from)
        this.enqueue(u)
        this.onEvent({ kind: 'suspect', member: m, incarnation: u.incarnation })
        return
      }
      case UpdateKind.DEAD: {
        if (st === MemberState.NONE || st === MemberState.DEAD || st === MemberState.LEFT || u.incarnation < cur) return
        this.clearSuspicion(m)
        const left = u.from === m
        this.state[m] = left ? MemberState.LEFT : MemberState.DEAD
        this.inc[m] = u.incarnation
        this.live--
        this.deadQueue.push({ member: m, at: this.rt.now() })
        this.enqueue(u)
        this.onEvent({ kind: left ? 'leave' : 'fail', member: m, incarnation: u.incarnation })
        return
      }
    }
  }

  /** Someone says we are suspected or dead: refute with a higher incarnation (unless we are leaving). */
  private aboutSelf(u: SwimUpdate): void {
    if (u.kind === UpdateKind.ALIVE || this.leaving) return
    if (u.incarnation < this.selfInc) return
    this.selfInc = u.incarnation + 1
    this.stats.refutations++
    if (this.config.lifeguard) this.addHealth(1)
    this.enqueue({ kind: UpdateKind.ALIVE, member: this.self, incarnation: this.selfInc, from: this.self })
  }

  private admit(m: number): boolean {
    if (this.known >= this.config.maxMembers) { this.stats.refused.members++; return false }
    checkHandle(m)
    if (m >= this.state.length) this.grow(m + 1)
    return true
  }

  private grow(n: number): void {
    let size = this.state.length
    while (size < n) size *= 2
    const s = new Uint8Array(size); s.set(this.state); this.state = s
    const i = new Uint32Array(size); i.set(this.inc); this.inc = i
    const o = new Uint8Array(size); o.set(this.inOrder); this.inOrder = o
  }

  /** Lifeguard's suspicion timeouts; without it the timeout is min from the start. */
  private suspicionBounds(): { minMs: number; maxMs: number; k: number } {
    const c = this.config
    const n = this.live + 1
    const minMs = c.suspicionMult * Math.max(1, Math.log10(Math.max(1, n))) * c.probeIntervalMs
    if (!c.lifeguard) return { minMs, maxMs: minMs, k: 0 }
    let k = c.suspicionMult - 2
    if (n - 2 < k) k = 0
    return { minMs, maxMs: c.suspicionMaxTimeoutMult * minMs, k }
  }

  private startSuspicion(m: number, incarnation: number, from: number): void {
    this.clearSuspicion(m)
    const { minMs, maxMs, k } = this.suspicionBounds()
    const start = this.rt.now()
    const s: Suspicion = { incarnation, start, k, confirmers: [from], minMs, maxMs, timer: null as unknown as TimerHandle }
    s.timer = this.rt.setTimeout(() => this.suspicionExpired(m, s), k === 0 ? minMs : maxMs)
    this.suspicions.set(m, s)
  }

  /** A confirmation from a member not yet counted shortens the timeout; true if it counted. */
  private confirm(m: number, s: Suspicion, from: number): boolean {
    if (s.k === 0 || s.confirmers.length - 1 >= s.k || s.confirmers.includes(from)) return false
    s.confirmers.push(from)
    const c = s.confirmers.length - 1
    const frac = Math.log(c + 1) / Math.log(s.k + 1)
    const timeout = Math.max(s.minMs, s.maxMs - frac * (s.maxMs - s.minMs))
    const elapsed = this.rt.now() - s.start
    this.rt.clearTimeout(s.timer)
    s.timer = this.rt.setTimeout(() => this.suspicionExpired(m, s), Math.max(0, timeout - elapsed))
    return true
  }

  private suspicionExpired(m: number, s: Suspicion): void {
    if (this.suspicions.get(m) !== s) return
    this.suspicions.delete(m)
    if (this.state[m] !== MemberState.SUSPECT || this.inc[m] !== s.incarnation) return
    this.apply({ kind: UpdateKind.DEAD, member: m, incarnation: s.incarnation, from: this.self })
  }

  private clearSuspicion(m: number): void {
    const s = this.suspicions.get(m)
    if (s) { this.rt.clearTimeout(s.timer); this.suspicions.delete(m) }
  }

  /** Forgets members dead for deadReapMs (memberlist's GossipToTheDeadTime). */
  private reapDead(): void {
    const now = this.rt.now()
    const q = this.deadQueue
    while (this.deadHead < q.length && now - q[this.deadHead].at >= this.config.deadReapMs) {
      const { member } = q[this.deadHead++]
      const st = this.state[member]
      if (st === MemberState.DEAD || st === MemberState.LEFT) { this.state[member] = MemberState.NONE; this.known-- }
    }
    if (this.deadHead > 1024 && this.deadHead * 2 > q.length) { q.splice(0, this.deadHead); this.deadHead = 0 }
  }

  // ---- the broadcast queue ----------------------------------------------------------------

  private retransmitLimit(): number {
    return this.config.retransmitMult * Math.ceil(Math.log10(this.live + 2))
  }

  private enqueue(u: SwimUpdate): void {
    const old = this.queued.get(u.member)
    if (old) old.live = false
    if (this.queued.size >= this.config.maxQueue && !old) this.dropMostSent()
    const q: QueuedUpdate = { update: u, transmits: 0, live: true }
    this.queued.set(u.member, q)
    this.buckets[0].push(q)
    if (++this.entries > 2 * this.queued.size + 256) this.compact()
    this.wakeGossip()
  }

  private compact(): void {
    this.buckets = this.buckets.map((b) => b.filter((q) => q.live))
    this.entries = this.queued.size
  }

  private dropMostSent(): void {
    this.stats.refused.queue++
    for (let t = this.buckets.length - 1; t >= 0; t--) {
      const b = this.buckets[t]
      while (b.length > 0) {
        const q = b.shift()!
        this.entries--
        if (!q.live) continue
        q.live = false
        this.queued.delete(q.update.member)
        return
      }
    }
  }

  /** Up to MAX_PIGGYBACK queued updates, fewest transmissions first (newest first among equals). */
  private piggyback(out: SwimUpdate[]): void {
    if (this.queued.size === 0) return
    const limit = this.retransmitLimit()
    const taken: QueuedUpdate[] = []
    const room = MAX_PIGGYBACK - out.length
    for (let t = 0; t < this.buckets.length && taken.length < room; t++) {
      const b = this.buckets[t]
      while (b.length > 0 && taken.length < room) {
        const q = b.pop()!
        this.entries--
        if (!q.live) continue
        taken.push(q)
      }
    }
    for (const q of taken) {
      if (!out.some((u) => u.member === q.update.member)) out.push(q.update)
      q.transmits++
      if (q.transmits >= limit) {
        q.live = false
        this.queued.delete(q.update.member)
        continue
      }
      while (this.buckets.length <= q.transmits) this.buckets.push([])
      this.buckets[q.transmits].push(q)
      this.entries++
    }
  }

  private send(to: number, msg: SwimMessage): void {
    this.piggyback(msg.updates)
    this.stats.sent++
    this.sendFn(to, msg)
  }
}

function checkHandle(h: number): void {
  if (!(Number.isInteger(h) && h >= 0 && h < MAX_HANDLE)) throw new WeftError('ERR_BAD_ARGUMENT', `member handle ${h} is not an integer in [0, ${MAX_HANDLE})`)
}
