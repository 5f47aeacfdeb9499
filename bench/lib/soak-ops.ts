// The soak's workload: lookups, DHT puts and gets from random live nodes, each under its own
// timeout (an AbortSignal) and watched by a deadline past it. An operation that has neither
// settled nor been aborted by the deadline is "stuck": the failure the soak exists to catch.
import { isWeftError } from '../../src/errors.js'
import type { Node } from '../../src/node/node.js'
import { percentile, type Rng } from './stats.js'

export type OpKind = 'lookup' | 'put' | 'get'
export const OP_KINDS: OpKind[] = ['lookup', 'put', 'get']

/** Operations in flight at most; past it a tick is skipped (and counted), so a stall cannot pile up work. */
export const MAX_OPS_IN_FLIGHT = 64
/** Stuck operations whose details are kept for the report. */
const MAX_STUCK_KEPT = 50
/** Values in the pool the puts draw from: the data set is bounded, so stored bytes level off and growth means a leak. */
export const VALUE_MIN_BYTES = 64
export const VALUE_MAX_BYTES = 512

export interface OpStats {
  started: number
  ok: number
  /** Settled with an error or a miss (a get that found nothing), by code. */
  failed: number
  failedByCode: Record<string, number>
  /** Aborted by their own timeout (counted in failed too). */
  timedOut: number
  stuck: number
  /** Stuck ones that settled later after all. */
  settledLate: number
  latenciesMs: number[]
}

export interface StuckOp { kind: OpKind; node: string; startedAtS: number }

export interface OpSummary extends Omit<OpStats, 'latenciesMs'> {
  latencyMs: { p50: number; p95: number; p99: number; max: number }
}

const emptyStats = (): OpStats => ({ started: 0, ok: 0, failed: 0, failedByCode: {}, timedOut: 0, stuck: 0, settledLate: 0, latenciesMs: [] })

export class Workload {
  readonly stats: Record<OpKind, OpStats> = { lookup: emptyStats(), put: emptyStats(), get: emptyStats() }
  readonly stuckOps: StuckOp[] = []
  skipped = 0
  inFlight = 0
  private readonly values: Buffer[]
  /** Keys (hex) of pool values some put stored, by pool index. */
  private readonly putKeys = new Map<number, string>()
  private readonly settled = new Set<Promise<void>>()

  constructor(
    private readonly rng: Rng, valueCount: number,
    /** Each operation's own timeout, and the margin past it after which it counts as stuck. */
    readonly timeoutMs: number, readonly marginMs: number,
    private readonly clockS: () => number,
  ) {
    this.values = Array.from({ length: valueCount }, () => rng.bytes(VALUE_MIN_BYTES + rng.int(VALUE_MAX_BYTES - VALUE_MIN_BYTES + 1)))
  }

  /** Starts one operation from `node`: kind drawn with weights lookup 2 : put 1 : get 1 (a get only once something was put). */
  launch(node: Node): void {
    if (this.inFlight >= MAX_OPS_IN_FLIGHT) { this.skipped++; return }
    const r = this.rng.int(4)
    const kind: OpKind = r < 2 ? 'lookup' : r === 2 || this.putKeys.size === 0 ? 'put' : 'get'
    const signal = AbortSignal.timeout(this.timeoutMs)
    let body: () => Promise<boolean>
    if (kind === 'lookup') {
      const target = this.rng.bytes(32)
      body = async () => (await node.lookup(target, { signal })).closest.length > 0
    } else if (kind === 'put') {
      const i = this.rng.int(this.values.length)
      body = async () => {
        const { key, stored } = await node.dht.put(this.values[i], { signal })
        if (stored > 0) this.putKeys.set(i, key)
        return stored > 0
      }
    } else {
      const keys = [...this.putKeys.keys()]
      const i = keys[this.rng.int(keys.length)]
      body = async () => Buffer.from(await node.dht.get(this.putKeys.get(i)!, { signal })).equals(this.values[i])
    }
    this.run(kind, node, signal, body)
  }

  private run(kind: OpKind, node: Node, signal: AbortSignal, body: () => Promise<boolean>): void {
    const s = this.stats[kind]
    s.started++
    this.inFlight++
    const started = performance.now()
    const startedAtS = this.clockS()
    const address = node.isRunning ? node.address : '(stopped)'
    let done = false
    let stuck = false
    const deadline = setTimeout(() => {
      if (done) return
      stuck = true
      s.stuck++
      if (this.stuckOps.length < MAX_STUCK_KEPT) this.stuckOps.push({ kind, node: address, startedAtS })
    }, this.timeoutMs + this.marginMs)
    deadline.unref() // the bench's own timers stay out of the handle count
    const finish = (ok: boolean, err?: unknown): void => {
      done = true
      clearTimeout(deadline)
      this.inFlight--
      if (stuck) { s.settledLate++; return }
      if (ok) { s.ok++; s.latenciesMs.push(performance.now() - started); return }
      s.failed++
      const code = err === undefined ? 'MISS' : isWeftError(err) ? err.code : err instanceof Error ? err.name : 'UNKNOWN'
      s.failedByCode[code] = (s.failedByCode[code] ?? 0) + 1
      if (signal.aborted) s.timedOut++
    }
    // A node stopped under us throws synchronously (ERR_NOT_RUNNING): the promise turns that into a failure.
    const p = Promise.resolve().then(body).then((ok) => finish(ok), (err: unknown) => finish(false, err))
    this.settled.add(p)
    void p.finally(() => this.settled.delete(p))
  }

  /** Waits for every operation in flight, up to `ms`. */
  async drain(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    await Promise.race([Promise.all([...this.settled]), new Promise<void>((resolve) => { timer = setTimeout(resolve, ms) })])
    clearTimeout(timer)
  }

  totals(): { started: number; ok: number; failed: number; stuck: number; inFlight: number } {
    const t = { started: 0, ok: 0, failed: 0, stuck: 0, inFlight: this.inFlight }
    for (const k of OP_KINDS) { t.started += this.stats[k].started; t.ok += this.stats[k].ok; t.failed += this.stats[k].failed; t.stuck += this.stats[k].stuck }
    return t
  }

  summary(): Record<OpKind, OpSummary> {
    const out = {} as Record<OpKind, OpSummary>
    for (const k of OP_KINDS) {
      const { latenciesMs, ...rest } = this.stats[k]
      const l = [...latenciesMs].sort((a, b) => a - b)
      const q = (p: number): number => (l.length ? Math.round(percentile(l, p)) : NaN)
      out[k] = { ...rest, failedByCode: { ...rest.failedByCode }, latencyMs: { p50: q(50), p95: q(95), p99: q(99), max: l.length ? Math.round(l[l.length - 1]) : NaN } }
    }
    return out
  }
}
