// The deterministic runtime: one virtual clock, one event queue and one seeded random source
// drive every node and every datagram. The same seed replays the same run exactly.
// The simulator grows out of this; protocol code cannot tell it from the UDP runtime.
import { WeftError } from '../errors.js'
import { verifyBytes } from '../identity/keys.js'
import { parseAddress, type Address } from '../wire/address.js'
import { SeededRandom } from './prng.js'
import type { Endpoint, Network, Runtime, TimerHandle } from './runtime.js'

interface Event {
  time: number
  seq: number
  fn: (() => void) | null // null once cancelled
}

/** A binary min-heap ordered by (time, seq): ties run in the order they were scheduled. */
class EventQueue {
  private heap: Event[] = []
  get size(): number { return this.heap.length }
  push(e: Event): void {
    const h = this.heap
    h.push(e)
    let i = h.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!before(h[i], h[p])) break
      ;[h[i], h[p]] = [h[p], h[i]]
      i = p
    }
  }
  pop(): Event | undefined {
    const h = this.heap
    const top = h[0]
    const last = h.pop()
    if (h.length > 0 && last) {
      h[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1, r = l + 1
        let m = i
        if (l < h.length && before(h[l], h[m])) m = l
        if (r < h.length && before(h[r], h[m])) m = r
        if (m === i) break
        ;[h[i], h[m]] = [h[m], h[i]]
        i = m
      }
    }
    return top
  }
  peek(): Event | undefined { return this.heap[0] }
}
function before(a: Event, b: Event): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq)
}

export interface LinkModel {
  /** One-way delay in virtual ms for a datagram between two endpoints (indices count binds from 0). */
  latency(from: Address, to: Address, random: SeededRandom, fromIndex: number, toIndex: number): number
  /** Probability in [0, 1] that a datagram is lost. */
  loss: number
}

export const defaultLinks: LinkModel = {
  latency: (_f, _t, r) => 10 + r.float() * 40,
  loss: 0,
}

/** A NAT forgets a mapping this long after its last outgoing datagram (Linux conntrack: 120 s for UDP streams is common). */
export const NAT_TIMEOUT_MS = 120_000
/** Destinations one NATed endpoint remembers; the oldest mapping goes first. */
export const NAT_MAPPINGS = 256

const drainMicrotasks = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

export class MemoryWorld implements Network {
  /** Virtual unix time at the start of every world: fixed, so runs replay exactly. */
  static readonly EPOCH = Date.UTC(2030, 0, 1)
  readonly random: SeededRandom
  private readonly queue = new EventQueue()
  private readonly endpoints = new Map<Address, MemoryEndpoint>()
  private seq = 0
  private time = 0
  private binds = 0
  /** When set, datagrams between endpoints of different groups are dropped (a network partition). */
  partition: ((index: number) => number) | null = null
  readonly stats = { datagrams: 0, lost: 0, bytes: 0, events: 0, blockedByNat: 0, partitioned: 0, unreachable: 0 }

  constructor(readonly seed: number | string, public links: LinkModel = defaultLinks) {
    this.random = new SeededRandom(seed)
  }

  now(): number { return this.time }

  schedule(ms: number, fn: () => void): Event {
    const e: Event = { time: this.time + Math.max(0, ms), seq: this.seq++, fn }
    this.queue.push(e)
    return e
  }

  /** A runtime for one node: the shared clock and queue, with its own random stream. */
  runtime(label: string | number): Runtime {
    return new WorldRuntime(this, this.random.fork(label))
  }

  bind(host: string, port: number): Promise<Endpoint> {
    try {
      return Promise.resolve(this.bindNow(host, port))
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /** bind() without the promise, for building large simulated networks. `nat`: accepts only replies. */
  bindNow(host: string, port: number, nat = false): MemoryEndpoint {
    const address = parseAddress(`${host.includes(':') ? `[${host}]` : host}:${port}`)
    let p = address.port
    if (p === 0) { p = 49152; while (this.endpoints.has(`${address.host}:${p}`)) p++ }
    const key = host.includes(':') ? `[${address.host}]:${p}` : `${address.host}:${p}`
    if (this.endpoints.has(key)) throw new WeftError('ERR_PORT_IN_USE', `simulated port ${key} is in use`)
    const ep = new MemoryEndpoint(this, key, this.binds++, nat)
    this.endpoints.set(key, ep)
    return ep
  }

  /** Delivers a datagram after the link's latency, unless the link loses it, a partition or a NAT drops it. */
  transmit(from: MemoryEndpoint, to: Address, bytes: Uint8Array): void {
    this.stats.datagrams++
    this.stats.bytes += bytes.length
    const dest = this.endpoints.get(to)
    if (!dest) { this.stats.unreachable++; return }
    if (this.links.loss > 0 && this.random.float() < this.links.loss) { this.stats.lost++; return }
    if (this.partition && this.partition(from.index) !== this.partition(dest.index)) { this.stats.partitioned++; return }
    if (from.nat) from.opened(to, this.time)
    const copy = bytes.slice() // the sender may reuse its buffer
    const fromAddress = from.address
    this.schedule(this.links.latency(fromAddress, to, this.random, from.index, dest.index), () => {
      if (dest.closed) return
      if (dest.nat && !dest.accepts(fromAddress, this.time)) { this.stats.blockedByNat++; return }
      dest.onPacket(fromAddress, copy)
    })
  }

  unbind(address: Address): void { this.endpoints.delete(address) }

  /** Runs one event; false when the queue is empty. */
  step(): boolean {
    const e = this.queue.pop()
    if (!e) return false
    this.time = e.time
    if (e.fn) { this.stats.events++; e.fn() }
    return true
  }

  /** Runs events up to virtual time `until` (or until idle), letting promise callbacks run between them. */
  async run(until = Infinity, maxEvents = 50_000_000): Promise<void> {
    for (let n = 0; n < maxEvents; n++) {
      const next = this.queue.peek()
      if (!next || next.time > until) break
      this.step()
      await drainMicrotasks()
    }
    if (until !== Infinity && this.time < until) this.time = until
  }

  /** Runs the world until `promise` settles; rejects with ERR_TIMEOUT past `limitMs` of virtual time. */
  async settle<T>(promise: Promise<T>, limitMs = 3_600_000): Promise<T> {
    let done = false
    const p = promise.finally(() => { done = true })
    p.catch(() => {})
    const deadline = this.time + limitMs
    await drainMicrotasks()
    while (!done) {
      const next = this.queue.peek()
      if (!next || next.time > deadline) throw new WeftError('ERR_TIMEOUT', `world went idle or passed ${limitMs} virtual ms before the promise settled`)
      this.step()
      await drainMicrotasks()
    }
    return p
  }
}

class WorldRuntime implements Runtime {
  constructor(private readonly world: MemoryWorld, readonly random: SeededRandom) {}
  now(): number { return this.world.now() }
  wallClock(): number { return Math.floor(MemoryWorld.EPOCH + this.world.now()) } // whole ms, as Date.now()
  setTimeout(fn: () => void, ms: number): TimerHandle { return this.world.schedule(ms, fn) }
  clearTimeout(h: TimerHandle): void { (h as Event).fn = null }
  verifySignature(publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array): Promise<boolean> {
    return Promise.resolve(verifyBytes(publicKey, data, signature))
  }
}

export class MemoryEndpoint implements Endpoint {
  closed = false
  onPacket: (from: Address, bytes: Uint8Array) => void = () => {}
  /** Behind a NAT: the destinations it sent to, and when, since only they may answer. */
  private mappings: Map<Address, number> | null = null
  constructor(private readonly world: MemoryWorld, readonly address: Address, readonly index: number, readonly nat: boolean) {}
  send(to: Address, bytes: Uint8Array): void {
    if (!this.closed) this.world.transmit(this, to, bytes)
  }
  opened(to: Address, now: number): void {
    const m = (this.mappings ??= new Map())
    m.delete(to)
    m.set(to, now)
    if (m.size > NAT_MAPPINGS) m.delete(m.keys().next().value!)
  }
  accepts(from: Address, now: number): boolean {
    const at = this.mappings?.get(from)
    return at !== undefined && now - at <= NAT_TIMEOUT_MS
  }
  close(): Promise<void> {
    this.closed = true
    this.world.unbind(this.address)
    return Promise.resolve()
  }
}
