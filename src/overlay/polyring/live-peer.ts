// A polyring peer that survives failures, sans-IO: peer clusters (several peers per GUID),
// failure detection by heartbeats, hop-by-hop acknowledged routing with resends, and the
// takeover that answers the article's open problem 1 (a leave or a death renames nobody but
// the heir chain). It is given a runtime (clock, timers, random), `send(to, message)` to a peer
// handle and the tables of the clusters (one per GUID, replicated among the cluster's members
// and its designated heir); the simulator (live-sim.ts) carries its messages. docs/polyring.md
// ("Clusters, failure and takeover") says what it promises.
import { WeftError } from '../../errors.js'
import type { Runtime, TimerHandle } from '../../runtime/runtime.js'
import type { Guid } from './guid.js'
import { DELIVER, NO_ROUTE, nextHop } from './route.js'
import { NONE, type PolyringTable } from './table.js'
import { GONE, ClusterView, type ClusterDirectory, isLinked } from './cluster.js'
import { MAX_HOPS } from './peer.js'

/** Heartbeat (probe) interval to every linked neighbour member, ms. */
export const HEARTBEAT_MS = 250
/** Heartbeats missed before a member is declared dead: misses × interval is the silence allowed. */
export const HEARTBEAT_MISSES = 3
/** A hop not acknowledged this long is resent (to another member, or after the table changed); above a round trip. */
export const ACK_TIMEOUT_MS = 200
/** Attempts per hop (first send included); ACK_TIMEOUT_MS × this must cover the failover window plus a takeover. */
export const MAX_HOP_ATTEMPTS = 16
/** Unacknowledged hops one peer holds; past it a routed message is refused (counted as busy). */
export const MAX_PENDING = 65_536

export type RouteMessage = { kind: 'route'; id: number; seq: number; dest: Guid; data: Uint8Array; hops: number }
/** A cluster's new member list; `gone`: the GUID is left empty (its slot is removed from tables). */
export type ClusterUpdate = { cluster: number; coord: number; members: Int32Array; gone: boolean }
export type LiveMessage =
  | { kind: 'ping' }
  | { kind: 'pong' }
  | RouteMessage
  | { kind: 'ack'; seq: number }
  | { kind: 'members'; updates: ClusterUpdate[] }
  /** To a designated heir: take over this cluster (your parent's GUID) now. */
  | { kind: 'handover'; cluster: number }

export interface LiveHooks {
  onDeliver?(peer: number, m: RouteMessage): void
  onResend?(peer: number, id: number): void
  onLost?(peer: number, id: number, why: 'attempts' | 'no-route' | 'busy' | 'hops'): void
  onDetect?(peer: number, dead: number, cluster: number): void
  onPromote?(peer: number, from: number, to: number): void
}

export interface LivePeerOptions {
  self: number
  cluster: number
  directory: ClusterDirectory
  /** The table of each cluster (GUID); a peer uses its cluster's, and its parent's after a takeover. */
  tables: ReadonlyArray<PolyringTable>
  runtime: Pick<Runtime, 'now' | 'setTimeout' | 'clearTimeout' | 'random'>
  send: (to: number, m: LiveMessage) => void
  hooks?: LiveHooks
  heartbeatMs?: number
  misses?: number
  ackTimeoutMs?: number
  maxAttempts?: number
  /** A leaver keeps forwarding (and acking) this long after its notices, then stops. */
  lingerMs?: number
}

interface Pending { seq: number; m: RouteMessage; cluster: number; to: number; tried: number[]; attempts: number; timer: TimerHandle | null }

export class LivePeer {
  readonly stats = { delivered: 0, forwarded: 0, resends: 0, lost: 0, noRoute: 0, busy: 0, pings: 0, detections: 0, promotions: 0, notices: 0 }
  /** The cluster (GUID) this peer holds now. */
  cluster: number
  readonly view: ClusterView
  private readonly lastHeard = new Map<number, number>()
  private readonly pending = new Map<number, Pending>()
  private seq = 0
  private rr = 0
  private stopped = false
  private leaving = false
  private readonly hb: number
  private readonly misses: number
  private readonly ackMs: number
  private readonly attempts: number

  constructor(private readonly o: LivePeerOptions) {
    this.cluster = o.cluster
    this.view = new ClusterView(o.directory)
    this.hb = o.heartbeatMs ?? HEARTBEAT_MS
    this.misses = o.misses ?? HEARTBEAT_MISSES
    this.ackMs = o.ackTimeoutMs ?? ACK_TIMEOUT_MS
    this.attempts = o.maxAttempts ?? MAX_HOP_ATTEMPTS
    if (!(this.hb > 0 && this.misses >= 1 && this.ackMs > 0 && this.attempts >= 1 && this.attempts <= 1000)) {
      throw new WeftError('ERR_BAD_ARGUMENT', 'heartbeat interval, misses, ack timeout and attempts must be positive (attempts at most 1000)')
    }
  }

  get table(): PolyringTable { return this.o.tables[this.cluster] }
  get guid(): Guid { return this.table.self }
  get alive(): boolean { return !this.stopped }
  get pendingHops(): number { return this.pending.size }

  /** Starts heartbeats, the first at a random offset so peers do not probe in lockstep. */
  start(): void {
    this.o.runtime.setTimeout(() => this.tick(), Math.floor(this.o.runtime.random.float() * this.hb))
  }

  /** A crash: from now on the peer drops everything and sends nothing. */
  crash(): void {
    this.stopped = true
    for (const p of this.pending.values()) if (p.timer) this.o.runtime.clearTimeout(p.timer)
    this.pending.clear()
  }

  /** Routes `data` to the peer(s) holding `dest`; `id` names the message end to end (the caller's). */
  send(dest: Guid, data: Uint8Array, id: number): void {
    if (this.stopped) return
    this.route({ kind: 'route', id, seq: 0, dest, data, hops: 0 })
  }

  receive(from: number, m: LiveMessage): void {
    if (this.stopped) return
    switch (m.kind) {
      case 'ping': this.o.send(from, { kind: 'pong' }); return
      case 'pong': this.lastHeard.set(from, this.o.runtime.now()); return
      case 'ack': {
        const p = this.pending.get(m.seq)
        if (p) { if (p.timer) this.o.runtime.clearTimeout(p.timer); this.pending.delete(m.seq) }
        return
      }
      case 'route':
        // Custody passes on the ack: from here this peer resends until the next hop acks.
        this.o.send(from, { kind: 'ack', seq: m.seq })
        if (m.hops > MAX_HOPS) { this.lose(m.id, 'hops'); return }
        this.route(m)
        return
      case 'members':
        this.stats.notices++
        for (const u of m.updates) this.apply(u)
        return
      case 'handover':
        // Only from our parent's cluster, naming it: we are its heir.
        if (!this.leaving && m.cluster === this.table.parent) this.promote()
        return
    }
  }

  /**
   * Graceful leave. A cluster member tells its fellow members and every neighbour to drop it (no
   * GUID changes). A single peer hands its GUID to its heir (its lowest live child, which moves
   * up the same way as after a crash, at once) or, with no children, tells its parent and
   * siblings the GUID is gone. It then forwards and acks for `lingerMs` and stops.
   */
  leave(): void {
    if (this.stopped || this.leaving) return
    const c = this.cluster, t = this.table
    const rest = this.without(this.view.members(c), this.o.self)
    let update: ClusterUpdate
    if (rest.length > 0) {
      update = { cluster: c, coord: t.ownCoord, members: rest, gone: false }
    } else {
      const heir = this.heirMember(t)
      if (heir !== NONE) {
        update = { cluster: c, coord: t.ownCoord, members: Int32Array.of(heir), gone: false }
        this.o.send(heir, { kind: 'handover', cluster: c })
      } else {
        update = { cluster: c, coord: t.ownCoord, members: GONE, gone: true }
      }
    }
    this.leaving = true
    this.apply(update)
    const clusters = [t.parent, ...this.siblingClusters(t), c]
    t.forEachChild((_x, k) => clusters.push(k))
    this.notify(clusters, [update])
    this.o.runtime.setTimeout(() => this.crash(), this.o.lingerMs ?? this.ackMs * this.attempts)
  }

  // ---- heartbeats and failure detection ----------------------------------------------------

  private tick(): void {
    if (this.stopped) return
    this.o.runtime.setTimeout(() => this.tick(), this.hb)
    if (this.leaving) return
    const now = this.o.runtime.now(), silence = this.misses * this.hb
    const t = this.table
    let probed = 0
    // Every member of every neighbouring GUID is probed (not only the linked ones), so the member
    // a hop fails over to is one already known alive, and every death is seen within the window.
    const probe = (c: number): void => {
      if (c === NONE) return
      const v = this.view.members(c)
      for (let j = 0; j < v.length; j++) {
        const m = v[j]
        if (m === this.o.self) continue
        probed++
        const heard = this.lastHeard.get(m)
        if (heard === undefined) this.lastHeard.set(m, now) // a new link: its silence counts from now
        else if (now - heard > silence) { this.declareDead(c, m); continue }
        this.stats.pings++
        this.o.send(m, { kind: 'ping' })
      }
    }
    probe(this.cluster)
    probe(t.parent)
    t.forEachSibling((_x, c) => { if (c !== this.cluster) probe(c) })
    t.forEachChild((_x, c) => probe(c))
    if (this.lastHeard.size > 2 * probed + 16) this.pruneHeard()
    // Our parent's GUID has no live member left: its heir (the lowest live child) takes it over.
    if (t.parent !== NONE && this.view.members(t.parent).length === 0 && !this.view.isGone(t.parent) && this.isHeir(t)) this.promote()
  }

  private declareDead(c: number, m: number): void {
    this.lastHeard.delete(m)
    if (!this.view.drop(c, m)) return
    this.stats.detections++
    this.o.hooks?.onDetect?.(this.o.self, m, c)
  }

  /** Keeps only the members still probed (after a takeover or a shrink). */
  private pruneHeard(): void {
    const keep = new Set<number>()
    const add = (c: number) => { if (c !== NONE) for (const m of this.view.members(c)) keep.add(m) }
    const t = this.table
    add(this.cluster); add(t.parent)
    t.forEachSibling((_x, c) => add(c)); t.forEachChild((_x, c) => add(c))
    for (const m of this.lastHeard.keys()) if (!keep.has(m)) this.lastHeard.delete(m)
  }

  // ---- takeover ------------------------------------------------------------------------------

  /** The heir of our parent: the first live member of the lowest-coordinate live child cluster. */
  private isHeir(t: PolyringTable): boolean {
    const own = this.view.members(this.cluster)
    if (own.length > 0 && own[0] !== this.o.self) return false
    for (let x = 0; x < t.ownCoord; x++) {
      const s = t.sibling(x)
      if (s !== NONE && s !== this.cluster && this.view.members(s).length > 0) return false
    }
    return true
  }

  /** This cluster's heir: the first live member of its lowest-coordinate child cluster with one. */
  private heirMember(t: PolyringTable): number {
    for (let x = 0; x < t.children.length; x++) {
      const c = t.children[x]
      if (c === NONE) continue
      const v = this.view.members(c)
      if (v.length > 0) return v[0]
    }
    return NONE
  }

  /**
   * Moves this peer up into its parent's GUID (the parent died, or handed it over by leaving).
   * Its own old GUID stays with its fellow members if it had any; otherwise its own heir is told
   * to take it over the same way (the chain goes down one lowest child per level), or, with no
   * child, the GUID is left empty. Every neighbour of both GUIDs is told in one notice.
   */
  private promote(): void {
    const from = this.cluster, tFrom = this.table, to = tFrom.parent
    if (to === NONE) return
    const tTo = this.o.tables[to]
    this.cluster = to
    this.stats.promotions++
    const mine: ClusterUpdate = { cluster: to, coord: tTo.ownCoord, members: Int32Array.of(this.o.self), gone: false }
    const rest = this.without(this.view.members(from), this.o.self)
    let old: ClusterUpdate
    if (rest.length > 0) {
      old = { cluster: from, coord: tFrom.ownCoord, members: rest, gone: false }
    } else {
      const heir = this.heirMember(tFrom)
      if (heir !== NONE) {
        old = { cluster: from, coord: tFrom.ownCoord, members: Int32Array.of(heir), gone: false }
        this.o.send(heir, { kind: 'handover', cluster: from })
      } else {
        old = { cluster: from, coord: tFrom.ownCoord, members: GONE, gone: true }
      }
    }
    this.apply(mine)
    this.apply(old)
    this.o.hooks?.onPromote?.(this.o.self, from, to)
    // The neighbours of both GUIDs: the parent's parent and siblings, its children (our former
    // siblings and our old GUID), and our old children.
    const clusters: number[] = [tTo.parent, ...this.siblingClusters(tTo)]
    tTo.forEachChild((_x, c) => clusters.push(c))
    tFrom.forEachChild((_x, c) => clusters.push(c))
    this.notify(clusters, [mine, old])
  }

  private apply(u: ClusterUpdate): void {
    if (u.gone) {
      this.view.set(u.cluster, GONE)
      const t = this.table
      if (t.child(u.coord) === u.cluster) t.removeChild(u.coord)
      if (u.coord !== t.ownCoord && t.sibling(u.coord) === u.cluster) t.removeSibling(u.coord)
    } else {
      this.view.set(u.cluster, u.members)
    }
  }

  /** Sends the updates to every member this peer knows of the given clusters (and its own). */
  private notify(clusters: number[], updates: ClusterUpdate[]): void {
    const sent = new Set<number>([this.o.self])
    for (const c of [...clusters, this.cluster]) {
      if (c === NONE) continue
      for (const m of this.view.members(c)) {
        if (sent.has(m)) continue
        sent.add(m)
        this.o.send(m, { kind: 'members', updates })
      }
    }
  }

  private siblingClusters(t: PolyringTable): number[] {
    const out: number[] = []
    t.forEachSibling((_x, c) => { if (c !== this.cluster) out.push(c) })
    return out
  }

  private without(v: Int32Array, m: number): Int32Array {
    return v.indexOf(m) < 0 ? v.slice() : v.filter((x) => x !== m)
  }

  // ---- routed messages -----------------------------------------------------------------------

  private route(m: RouteMessage): void {
    let next = nextHop(this.table, m.dest)
    if (next === DELIVER) {
      if (!this.leaving) {
        this.stats.delivered++
        this.o.hooks?.onDeliver?.(this.o.self, m)
        return
      }
      next = this.cluster // a leaver passes what is addressed to its GUID to its successor
    }
    if (next === NO_ROUTE || next < 0 || this.view.isGone(next)) { this.stats.noRoute++; this.lose(m.id, 'no-route'); return }
    if (this.pending.size >= MAX_PENDING) { this.stats.busy++; this.lose(m.id, 'busy'); return }
    this.stats.forwarded++
    const p: Pending = { seq: this.seq++, m: { ...m, hops: m.hops + 1 }, cluster: next, to: NONE, tried: [], attempts: 0, timer: null }
    p.m.seq = p.seq
    this.pending.set(p.seq, p)
    this.attempt(p)
  }

  /** One send of a hop to a member of its next cluster, or a wait when none is alive in our view. */
  private attempt(p: Pending): void {
    p.attempts++
    const to = this.pickMember(p.cluster, p.tried)
    p.to = to
    if (to !== NONE) {
      if (p.attempts > 1) { this.stats.resends++; this.o.hooks?.onResend?.(this.o.self, p.m.id) }
      this.o.send(to, p.m)
    }
    p.timer = this.o.runtime.setTimeout(() => this.timeout(p), this.ackMs)
  }

  private timeout(p: Pending): void {
    if (this.stopped || this.pending.get(p.seq) !== p) return
    if (p.attempts >= this.attempts) { this.pending.delete(p.seq); this.lose(p.m.id, 'attempts'); return }
    if (p.to !== NONE && p.tried.indexOf(p.to) < 0) p.tried.push(p.to)
    // The table may have changed under us (we took over a GUID, or a slot went): decide again.
    let next = nextHop(this.table, p.m.dest)
    if (next === DELIVER) {
      this.pending.delete(p.seq)
      if (!this.leaving) { this.stats.delivered++; this.o.hooks?.onDeliver?.(this.o.self, p.m); return }
      next = this.cluster
      this.pending.set(p.seq, p)
    }
    if (next === NO_ROUTE || next < 0 || this.view.isGone(next)) { this.pending.delete(p.seq); this.stats.noRoute++; this.lose(p.m.id, 'no-route'); return }
    if (next !== p.cluster) { p.cluster = next; p.tried.length = 0 }
    this.attempt(p)
  }

  /**
   * Load balancing: round-robin over the members this peer links (cluster.ts isLinked) that
   * are alive in its view and not yet tried for this hop; then any untried live member (the
   * failover to the rest of the cluster); then, all tried, the linked ones again.
   */
  private pickMember(c: number, tried: number[]): number {
    const v = this.view.members(c)
    if (v.length === 0) return NONE
    const own = this.view.members(this.cluster)
    const i = Math.max(0, own.indexOf(this.o.self)), a = Math.max(1, own.length)
    let n = 0, any = NONE, first = NONE
    for (let j = 0; j < v.length; j++) if (isLinked(i, a, j, v.length) && tried.indexOf(v[j]) < 0) n++
    if (n > 0) {
      let k = this.rr++ % n
      for (let j = 0; j < v.length; j++) {
        if (isLinked(i, a, j, v.length) && tried.indexOf(v[j]) < 0 && k-- === 0) return v[j]
      }
    }
    for (let j = 0; j < v.length; j++) {
      if (tried.indexOf(v[j]) < 0) { any = v[j]; break }
      if (first === NONE && isLinked(i, a, j, v.length)) first = v[j]
    }
    if (any !== NONE) return any
    tried.length = 0
    return first !== NONE ? first : v[0]
  }

  private lose(id: number, why: 'attempts' | 'no-route' | 'busy' | 'hops'): void {
    if (why !== 'no-route') this.stats.lost++
    this.o.hooks?.onLost?.(this.o.self, id, why)
  }
}
