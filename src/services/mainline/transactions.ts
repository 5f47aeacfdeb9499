// Mainline's queries in flight: a random 4-byte transaction id each, one timer each, at most
// maxInFlight at once and maxQueued waiting (ERR_BUSY past that). An answer settles its query
// only if it comes from the address the query went to; a KRPC error rejects with the code that
// matches it, a reply from another node id than expected with ERR_BAD_ID.
import { WeftError, type ErrorCode } from '../../errors.js'
import type { Runtime, TimerHandle } from '../../runtime/runtime.js'
import type { Address } from '../../wire/address.js'
import { KrpcCode, type ErrorReply, type Method, type QueryArgs, type Response } from './krpc.js'
import type { MainlineStats } from './options.js'

export interface TransactionHooks {
  send(to: Address, t: Uint8Array, q: Method, a: Omit<QueryArgs, 'id'>): void
  /** A query to a node of known id went unanswered. */
  timedOut(expectId: Uint8Array): void
  /** Another node than expected answered at that address. */
  wrongId(expectId: Uint8Array): void
  /** A node answered (before its query's promise resolves). */
  answered(from: Address, r: Response): void
}

interface Query {
  to: Address
  q: Method
  a: Omit<QueryArgs, 'id'>
  expectId: Uint8Array | null
  resolve: (r: Response) => void
  reject: (e: WeftError) => void
  timer?: TimerHandle
}

const REMOTE_CODES: Record<number, ErrorCode> = {
  [KrpcCode.PROTOCOL]: 'ERR_BAD_MESSAGE', [KrpcCode.METHOD_UNKNOWN]: 'ERR_UNKNOWN_TYPE', [KrpcCode.SERVER]: 'ERR_BUSY',
  [KrpcCode.VALUE_TOO_BIG]: 'ERR_VALUE_TOO_LARGE', [KrpcCode.SALT_TOO_BIG]: 'ERR_VALUE_TOO_LARGE',
  [KrpcCode.BAD_SIGNATURE]: 'ERR_BAD_SIGNATURE', [KrpcCode.CAS_MISMATCH]: 'ERR_CAS_MISMATCH', [KrpcCode.SEQ_TOO_LOW]: 'ERR_STALE_SEQ',
}

const equal = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i])

export class Transactions {
  private readonly pending = new Map<number, Query>()
  private readonly waiting: Query[] = []
  private closed = false

  constructor(
    private readonly runtime: Runtime,
    private readonly options: { queryTimeoutMs: number; maxInFlight: number; maxQueued: number },
    private readonly stats: MainlineStats,
    private readonly hooks: TransactionHooks,
  ) {}

  get inFlight(): number { return this.pending.size }

  request(to: Address, q: Method, a: Omit<QueryArgs, 'id'>, expectId: Uint8Array | null): Promise<Response> {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new WeftError('ERR_CLOSED', 'the Mainline node is closed'))
      const query: Query = { to, q, a, expectId, resolve, reject }
      if (this.pending.size < this.options.maxInFlight) return this.dispatch(query)
      if (this.waiting.length >= this.options.maxQueued) return reject(new WeftError('ERR_BUSY', `${this.options.maxQueued} Mainline requests already queued`))
      this.waiting.push(query)
    })
  }

  private dispatch(query: Query): void {
    let key: number
    do key = this.runtime.random.u32(); while (this.pending.has(key))
    query.timer = this.runtime.setTimeout(() => {
      if (!this.pending.delete(key)) return
      this.stats.timeouts++
      if (query.expectId) this.hooks.timedOut(query.expectId)
      query.reject(new WeftError('ERR_TIMEOUT', `${query.to} did not answer ${query.q} in ${this.options.queryTimeoutMs} ms`))
      this.dequeue()
    }, this.options.queryTimeoutMs)
    this.pending.set(key, query)
    this.stats.queriesOut++
    this.hooks.send(query.to, new Uint8Array([key >>> 24, (key >>> 16) & 0xff, (key >>> 8) & 0xff, key & 0xff]), query.q, query.a)
  }

  private dequeue(): void {
    while (!this.closed && this.waiting.length && this.pending.size < this.options.maxInFlight) this.dispatch(this.waiting.shift()!)
  }

  /** A reply or KRPC error arrived: it settles the query it answers, if any waits for it from that address. */
  settle(from: Address, m: Response | ErrorReply): void {
    const key = m.t.length === 4 ? ((m.t[0] << 24) | (m.t[1] << 16) | (m.t[2] << 8) | m.t[3]) >>> 0 : -1
    const query = this.pending.get(key)
    if (!query || query.to !== from) { this.stats.unexpected++; return }
    this.pending.delete(key)
    this.runtime.clearTimeout(query.timer!)
    if (m.y === 'e') {
      this.stats.errorsIn++
      query.reject(new WeftError(REMOTE_CODES[m.code] ?? 'ERR_BAD_MESSAGE', `${from} answered with KRPC error ${m.code}: ${m.text}`))
    } else if (query.expectId && !equal(query.expectId, m.r.id)) {
      this.stats.responsesIn++
      this.hooks.wrongId(query.expectId)
      query.reject(new WeftError('ERR_BAD_ID', `${from} answered with another node id`))
    } else {
      this.stats.responsesIn++
      this.hooks.answered(from, m)
      query.resolve(m)
    }
    this.dequeue()
  }

  /** Fails every query in flight or waiting with ERR_CLOSED. */
  close(): void {
    this.closed = true
    const closed = new WeftError('ERR_CLOSED', 'the Mainline node is closed')
    for (const query of this.pending.values()) { this.runtime.clearTimeout(query.timer!); query.reject(closed) }
    this.pending.clear()
    for (const query of this.waiting.splice(0)) query.reject(closed)
  }
}
