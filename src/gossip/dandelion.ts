// Dandelion++ (Fanti et al., SIGMETRICS 2018): publish without revealing the origin. Sans-IO.
//
// A message first travels a "stem": a random walk over fixed per-epoch links, then "fluffs"
// (is handed to ordinary broadcast) at a random hop. An observer that sees the broadcast learns
// where the stem ended, not where it began.
//
// Per epoch (10 min by default) each node draws:
//   - its mode: fluff (a "diffuser") with probability q (fluffProbability, 10 %), else stem (a relay);
//   - two stem successors among its peers, and the one its own messages always take;
//   - a routing map, filled lazily: each inbound peer is mapped to one of the two successors, so
//     every stem message arriving from the same peer leaves on the same edge during the epoch.
// A relay forwards a new stem message on its inbound peer's edge; a diffuser fluffs it. A node's
// own messages always go out on the stem, whatever its mode. Every node that handles a stem
// message arms an embargo timer (base + exponential): if the broadcast has not brought the
// message back by then (a stem node dropped it, or died), this node fluffs it itself. A stem
// message seen twice (a loop) is fluffed at once.
//
// The small interface a pub-sub uses:
//   const d = new Dandelion({ runtime, peers, sendStem, fluff, key })
//   d.start()                 // draws the first epoch, then one every epochMs
//   d.send(msg)               // publish privately: stem first, eventually fluff(msg)
//   d.onStem(from, msg)       // a stem message arrived from peer `from` (the pub-sub's STEM frame)
//   d.onFluffed(key(msg))     // the broadcast delivered this message: drop its embargo
// `fluff(msg)` is the pub-sub's broadcast (Plumtree or flooding); `sendStem(to, msg)` its
// point-to-point send to one peer. Peers are small integer handles; messages are opaque.
import { WeftError } from '../errors.js'
import type { Runtime, TimerHandle } from '../runtime/runtime.js'

export interface DandelionConfig {
  /** q: the share of nodes that are diffusers in an epoch (the paper's fluff probability per hop). */
  fluffProbability: number
  /** Stem successors per epoch (Dandelion++: 2). */
  successors: number
  epochMs: number
  /** Embargo = embargoBaseMs + Exponential(mean embargoMeanMs). */
  embargoBaseMs: number
  embargoMeanMs: number
  /** Stem messages held under embargo at most; past it a new stem message is fluffed at once. */
  maxPending: number
  /** Message keys remembered (loop and duplicate detection), oldest forgotten first. */
  maxSeen: number
  /** Inbound peers with a route this epoch at most; past it a peer's route is drawn per message. */
  maxRoutes: number
}

export const DANDELION_DEFAULTS: DandelionConfig = {
  fluffProbability: 0.1,
  successors: 2,
  epochMs: 600_000,
  embargoBaseMs: 10_000,
  embargoMeanMs: 5_000,
  maxPending: 4_096,
  maxSeen: 16_384,
  maxRoutes: 1_024,
}

export interface DandelionOptions<M> {
  runtime: Runtime
  /** The peers a stem may go to (e.g. the active view); read at each epoch and when a successor is gone. */
  peers: () => readonly number[]
  sendStem: (to: number, msg: M) => void
  /** Hands the message to broadcast. */
  fluff: (msg: M) => void
  /** A message's identity (its id or hash). */
  key: (msg: M) => string | number
  config?: Partial<DandelionConfig>
}

export type DandelionMode = 'stem' | 'fluff'

interface Pending<M> { msg: M; timer: TimerHandle }

export interface DandelionStats {
  originated: number
  stemmed: number
  fluffed: number
  embargoFired: number
  loops: number
  refusedPending: number
}

export class Dandelion<M> {
  readonly config: DandelionConfig
  private readonly rt: Runtime
  private readonly o: DandelionOptions<M>
  private modeNow: DandelionMode = 'stem'
  private succ: number[] = []
  private own = -1
  private readonly routes = new Map<number, number>()
  private readonly pending = new Map<string | number, Pending<M>>()
  private readonly seen = new Set<string | number>()
  private readonly seenOrder: (string | number)[] = []
  private seenHead = 0
  private epochTimer: TimerHandle | null = null
  private running = false
  readonly stats: DandelionStats = { originated: 0, stemmed: 0, fluffed: 0, embargoFired: 0, loops: 0, refusedPending: 0 }

  constructor(o: DandelionOptions<M>) {
    this.config = { ...DANDELION_DEFAULTS, ...o.config }
    const c = this.config
    if (!(c.fluffProbability >= 0 && c.fluffProbability <= 1)) throw new WeftError('ERR_BAD_ARGUMENT', 'fluffProbability must be in [0, 1]')
    if (!(Number.isInteger(c.successors) && c.successors >= 1 && c.successors <= 8)) throw new WeftError('ERR_BAD_ARGUMENT', 'successors must be 1..8')
    if (!(c.epochMs > 0 && c.embargoBaseMs >= 0 && c.embargoMeanMs >= 0)) throw new WeftError('ERR_BAD_ARGUMENT', 'epochMs must be > 0 and embargo times >= 0')
    if (!(c.maxPending >= 1 && c.maxSeen >= 1 && c.maxRoutes >= 0)) throw new WeftError('ERR_BAD_ARGUMENT', 'Dandelion bounds must be positive')
    this.rt = o.runtime
    this.o = o
  }

  get mode(): DandelionMode { return this.modeNow }
  get stemSuccessors(): readonly number[] { return this.succ }
  get pendingCount(): number { return this.pending.size }

  start(): void {
    if (this.running) return
    this.running = true
    this.newEpoch()
  }

  stop(): void {
    this.running = false
    if (this.epochTimer) this.rt.clearTimeout(this.epochTimer)
    this.epochTimer = null
    for (const p of this.pending.values()) this.rt.clearTimeout(p.timer)
    this.pending.clear()
  }

  /** Draws this epoch's mode, successors and own-message edge; forgets the routes. Called every epochMs. */
  newEpoch(): void {
    if (this.epochTimer) this.rt.clearTimeout(this.epochTimer)
    const r = this.rt.random
    this.modeNow = r.float() < this.config.fluffProbability ? 'fluff' : 'stem'
    this.succ = this.draw(this.config.successors, [])
    this.own = this.succ.length > 0 ? this.succ[r.u32() % this.succ.length] : -1
    this.routes.clear()
    if (this.running) this.epochTimer = this.rt.setTimeout(() => this.newEpoch(), this.config.epochMs)
  }

  /** A successor is gone (the host saw the link die): another peer takes its place this epoch. */
  peerDown(h: number): void {
    const i = this.succ.indexOf(h)
    if (i < 0) return
    const repl = this.draw(1, this.succ)
    if (repl.length > 0) this.succ[i] = repl[0]
    else this.succ.splice(i, 1)
    for (const [from, to] of this.routes) if (to === h) this.routes.delete(from)
    if (this.own === h) this.own = this.succ.length > 0 ? this.succ[this.rt.random.u32() % this.succ.length] : -1
  }

  /** Publishes privately: along the stem on this epoch's own edge (fluffed at once when there is no peer). */
  send(msg: M): void {
    const k = this.o.key(msg)
    this.stats.originated++
    this.remember(k)
    if (this.own < 0) { this.doFluff(k, msg); return }
    if (!this.embargo(k, msg)) return
    this.stats.stemmed++
    this.o.sendStem(this.own, msg)
  }

  /** A stem message from peer `from`. */
  onStem(from: number, msg: M): void {
    const k = this.o.key(msg)
    if (this.seen.has(k)) {
      // Seen before: a stem loop (or a replay); fluff it once, so it cannot circle.
      if (this.pending.has(k)) { this.stats.loops++; this.doFluff(k, msg) }
      return
    }
    this.remember(k)
    if (this.modeNow === 'fluff' || this.succ.length === 0) { this.doFluff(k, msg); return }
    if (!this.embargo(k, msg)) return
    this.stats.stemmed++
    this.o.sendStem(this.route(from), msg)
  }

  /** The broadcast brought this message: no embargo needed any more. */
  onFluffed(key: string | number): void {
    this.remember(key)
    const p = this.pending.get(key)
    if (p) { this.rt.clearTimeout(p.timer); this.pending.delete(key) }
  }

  private route(from: number): number {
    let to = this.routes.get(from)
    if (to === undefined) {
      const r = this.rt.random
      // Prefer a successor other than the sender, so a stem does not bounce straight back.
      const others = this.succ.filter((s) => s !== from)
      const pool = others.length > 0 ? others : this.succ
      to = pool[r.u32() % pool.length]
      if (this.routes.size < this.config.maxRoutes) this.routes.set(from, to)
    }
    return to
  }

  /** Arms the embargo for a message this node is passing on; false (and fluffed instead) when full. */
  private embargo(k: string | number, msg: M): boolean {
    if (this.pending.size >= this.config.maxPending) {
      this.stats.refusedPending++
      this.doFluff(k, msg)
      return false
    }
    const c = this.config
    const ms = c.embargoBaseMs + (c.embargoMeanMs > 0 ? -Math.log(1 - this.rt.random.float()) * c.embargoMeanMs : 0)
    const timer = this.rt.setTimeout(() => {
      if (this.pending.get(k)?.timer !== timer) return
      this.pending.delete(k)
      this.stats.embargoFired++
      this.stats.fluffed++
      this.o.fluff(msg)
    }, ms)
    this.pending.set(k, { msg, timer })
    return true
  }

  private doFluff(k: string | number, msg: M): void {
    const p = this.pending.get(k)
    if (p) { this.rt.clearTimeout(p.timer); this.pending.delete(k) }
    this.stats.fluffed++
    this.o.fluff(msg)
  }

  private remember(k: string | number): void {
    if (this.seen.has(k)) return
    this.seen.add(k)
    this.seenOrder.push(k)
    if (this.seen.size > this.config.maxSeen) {
      this.seen.delete(this.seenOrder[this.seenHead++])
      if (this.seenHead > 4096 && this.seenHead * 2 > this.seenOrder.length) { this.seenOrder.splice(0, this.seenHead); this.seenHead = 0 }
    }
  }

  /** n distinct random peers not in `not`. */
  private draw(n: number, not: readonly number[]): number[] {
    const peers = this.o.peers().filter((p) => !not.includes(p))
    const r = this.rt.random
    const out: number[] = []
    for (let i = 0; i < n && peers.length > 0; i++) {
      const j = r.u32() % peers.length
      out.push(peers[j])
      peers[j] = peers[peers.length - 1]
      peers.pop()
    }
    return out
  }
}
