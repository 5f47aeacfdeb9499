// The deterministic runtime: one virtual clock, one event queue and one seeded random source
// drive every node and every datagram. The same seed replays the same run exactly.
// The simulator grows out of this; protocol code cannot tell it from the UDP runtime.
import { WeftError } from '../errors.js'
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
  /** One-way delay in virtual ms for a datagram from one address to another. */
  latency(from: Address, to: Address, random: SeededRandom): number
  /** Probability in [0, 1] that a datagram is lost. */
  loss: number
}

export const defaultLinks: LinkModel = {
  latency: (_f, _t, r) => 10 + r.float() * 40,
  loss: 0,
}

const drainMicrotasks = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

export class MemoryWorld implements Network {
  /** Virtual unix time at the start of every world: fixed, so runs replay exactly. */
  static readonly EPOCH = Date.UTC(2030, 0, 1)
  readonly random: SeededRandom
  private readonly queue = new EventQueue()
  private readonly endpoints = new Map<Address, MemoryEndpoint>()
  private seq = 0
  private time = 0
  readonly stats = { datagrams: 0, lost: 0, bytes: 0, events: 0 }

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
    const random = this.random.fork(label)
    return {
      now: () => this.time,
      wallClock: () => MemoryWorld.EPOCH + this.time,
      setTimeout: (fn, ms) => this.schedule(ms, fn),
      clearTimeout: (h: TimerHandle) => { (h as Event).fn = null },
      random,
    }
  }

  bind(host: string, port: number): Promise<Endpoint> {
    const address = parseAddress(`${host.includes(':') ? `[${host}]` : host}:${port}`)
    let p = address.port
    if (p === 0) { p = 49152; while (this.endpoints.has(`${address.host}:${p}`)) p++ }
    const key = host.includes(':') ? `[${address.host}]:${p}` : `${address.host}:${p}`
    if (this.endpoints.has(key)) return Promise.reject(new WeftError('ERR_PORT_IN_USE', `simulated port ${key} is in use`))
    const ep = new MemoryEndpoint(this, key)
    this.endpoints.set(key, ep)
    return Promise.resolve(ep)
  }

  /** Delivers a datagram after the link's latency, unless the link loses it. */
  transmit(from: Address, to: Address, bytes: Uint8Array): void {
    this.stats.datagrams++
    this.stats.bytes += bytes.length
    if (this.links.loss > 0 && this.random.float() < this.links.loss) { this.stats.lost++; return }
    const copy = bytes.slice() // the sender may reuse its buffer
    this.schedule(this.links.latency(from, to, this.random), () => {
      const ep = this.endpoints.get(to)
      if (ep && !ep.closed) ep.onPacket(from, copy)
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

class MemoryEndpoint implements Endpoint {
  closed = false
  onPacket: (from: Address, bytes: Uint8Array) => void = () => {}
  constructor(private readonly world: MemoryWorld, readonly address: Address) {}
  send(to: Address, bytes: Uint8Array): void {
    if (!this.closed) this.world.transmit(this.address, to, bytes)
  }
  close(): Promise<void> {
    this.closed = true
    this.world.unbind(this.address)
    return Promise.resolve()
  }
}
