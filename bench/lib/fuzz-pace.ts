// Pacing for bench/fuzz-udp.ts: keeps the datagrams in flight towards each live node (sent, minus
// what the node counted in, minus what the kernel dropped at its socket) under a window, so a fast
// sender does not overrun the node's socket buffer and the kernel drops almost nothing. The node's
// counters come from its process every few tens of milliseconds; between two updates the sender
// assumes nothing arrived, so the real number in flight is at most the window.
import { readFileSync } from 'node:fs'

/** Counters of the live nodes, as their process reports them. */
export interface NodeCounts {
  /** Datagrams each node's transport counted in (packetsIn). */
  packetsIn: number[]
}

/**
 * In flight with no progress for this long: written off (so a few lost datagrams cannot stall the
 * run) and reported. Our pings' own datagrams can show up here: the client counts a datagram out
 * before the node counts it in.
 */
const WRITE_OFF_MS = 2000

export class Pacer {
  /** Fuzz datagrams handed to the kernel, per target. */
  readonly issued: number[]
  private packetsIn: number[]
  private baseIn: number[] | null = null
  /** Datagrams our own clients (the pings) sent to each target since the flood began. */
  private clientOut: number[]
  /** Datagrams the kernel dropped at each node's socket since the flood began (null: not readable here). */
  kernelDrops: number[] | null
  private baseDrops: number[] | null = null
  private readonly listeners: (() => void)[] = []
  /** Datagrams written off per target: in flight, yet neither counted in nor dropped by the kernel for WRITE_OFF_MS. */
  readonly unaccounted: number[]
  private lastChange: number[]
  private seen: number[]
  lastUpdate = 0

  constructor(readonly quota: number[], readonly window: number) {
    const zeros = () => quota.map(() => 0)
    this.issued = zeros(); this.packetsIn = zeros(); this.clientOut = zeros(); this.kernelDrops = zeros()
    this.unaccounted = zeros(); this.lastChange = zeros(); this.seen = zeros()
  }

  /** Fresh counters: node counts, our clients' sends to each target, the kernel's drops (totals since start). */
  update(counts: NodeCounts, clientOut: number[], kernelDrops: number[] | null): void {
    if (!this.baseIn) { this.baseIn = counts.packetsIn.slice(); this.baseDrops = kernelDrops?.slice() ?? null }
    this.packetsIn = counts.packetsIn.map((x, i) => x - this.baseIn![i])
    this.clientOut = clientOut
    this.kernelDrops = kernelDrops && this.baseDrops ? kernelDrops.map((x, i) => x - this.baseDrops![i]) : null
    const now = this.lastUpdate = performance.now()
    for (let t = 0; t < this.quota.length; t++) {
      const got = this.received(t) + this.dropped(t)
      if (got !== this.seen[t]) { this.seen[t] = got; this.lastChange[t] = now }
      else if (this.inFlight(t) > 0 && now - this.lastChange[t] > WRITE_OFF_MS) { this.unaccounted[t] += this.inFlight(t); this.lastChange[t] = now }
    }
    for (const fn of this.listeners) fn()
  }

  onUpdate(fn: () => void): void { this.listeners.push(fn) }

  /** Fuzz datagrams target t counted in (its transport's count less our clients' datagrams). */
  received(t: number): number { return Math.max(0, this.packetsIn[t] - this.clientOut[t]) }
  dropped(t: number): number { return this.kernelDrops?.[t] ?? 0 }
  inFlight(t: number): number { return this.issued[t] - this.received(t) - this.dropped(t) - this.unaccounted[t] }

  /** Datagrams that may go to target t now: the window's room, and no more than its quota still needs. */
  room(t: number): number {
    const needed = this.quota[t] - this.received(t) - this.inFlight(t)
    return Math.max(0, Math.min(this.window - this.inFlight(t), needed))
  }

  /** A target with room, round-robin from `from`; -1 if none has. */
  pick(from: number): number {
    for (let k = 0; k < this.quota.length; k++) {
      const t = (from + k) % this.quota.length
      if (this.room(t) > 0) return t
    }
    return -1
  }

  allReceived(): boolean { return this.quota.every((q, t) => this.received(t) >= q) }
  totalReceived(): number { return this.quota.reduce((a, _, t) => a + this.received(t), 0) }
}

/**
 * Datagrams the kernel dropped at the UDP sockets bound to these local ports (Linux: the last
 * column of /proc/net/udp, a full receive buffer mostly); null where that file is not readable.
 */
export function kernelUdpDrops(ports: number[]): number[] | null {
  let text: string
  try { text = readFileSync('/proc/net/udp', 'utf8') } catch { return null }
  const byPort = new Map<number, number>()
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/)
    if (f.length < 13) continue
    const port = parseInt(f[1].slice(f[1].indexOf(':') + 1), 16)
    byPort.set(port, (byPort.get(port) ?? 0) + Number(f[f.length - 1]))
  }
  return ports.map((p) => byPort.get(p) ?? 0)
}
