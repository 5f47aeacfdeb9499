// Paths to peers, under the sessions: plain datagrams; a relay's forwarding for nodes behind NAT;
// and the move to a direct path once a hole punch has worked. The sessions above see one stable
// address per peer whichever path carries it. spec/wire.md section 14.
//
// The relay works like TURN: a public node binds a port for a private node (the "relayed
// address"); what reaches that port is handed to the private node, and the private node's
// answers leave from it. So everyone else reaches the private node at an ordinary UDP address.
//
// Packets of this layer (first byte; everything else passes through untouched):
//   D0 RELAY_OUT  private node -> relay: address | payload   send payload from my relayed port to address
//   D1 RELAY_IN   relay -> private node: address | payload   address sent this to your relayed port
//   D2 PROBE      nonce (8)   a direct datagram after a punch (or a low-TTL opener)
//   D3 PROBE_ACK  nonce (8)   the answer to a PROBE, from where it arrived
// Addresses are packed as in spec/wire.md section 4.
import { WeftError } from '../errors.js'
import type { Endpoint, Network, Runtime, TimerHandle } from '../runtime/runtime.js'
import { packAddress, packedAddressSize, parseAddress, unpackAddress, type Address } from '../wire/address.js'
import type { Transport, TransportStats } from './transport.js'

const enum Kind { RELAY_OUT = 0xd0, RELAY_IN = 0xd1, PROBE = 0xd2, PROBE_ACK = 0xd3 }
const PROBE_BYTES = 9
/** Dial-backs (probes from a port bound for one asker) running at once. */
const MAX_DIAL_BACKS = 64
/** The largest address a relay packet carries (IPv6). */
export const RELAY_OVERHEAD = 1 + 19

export interface PathOptions {
  /** Relayed addresses this node serves at once (0: it relays for nobody). */
  maxAllocations: number
  /** An allocation not refreshed for this long is closed. */
  allocationTtlMs: number
  /** Longest life and most bytes (both ways) of one allocation. */
  maxAllocationMs: number
  maxAllocationBytes: number
  /** Peers remembered as reached through our relay, and direct paths (aliases) kept. */
  maxPeers: number
  /** A probe is sent this often while a punch waits for its answer. */
  probeIntervalMs: number
}

export const DEFAULT_PATH_OPTIONS: PathOptions = {
  maxAllocations: 64,
  allocationTtlMs: 60_000,
  maxAllocationMs: 3_600_000,
  maxAllocationBytes: 64 * 1024 * 1024,
  maxPeers: 1024,
  probeIntervalMs: 100,
}

export interface PathStats {
  allocations: number
  relayedIn: number
  relayedOut: number
  relayRefused: number
  probesSent: number
  probesAnswered: number
  directPaths: number
  malformed: number
}

interface Allocation { owner: Address; endpoint: Endpoint; expiresAt: number; endsAt: number; bytes: number }

/** Sends a datagram with a given IP TTL, when the endpoint can (real UDP); otherwise with the normal TTL. */
export type TtlSender = (to: Address, bytes: Uint8Array, ttl: number) => void

export class PathTransport implements Transport {
  readonly pathStats: PathStats = { allocations: 0, relayedIn: 0, relayedOut: 0, relayRefused: 0, probesSent: 0, probesAnswered: 0, directPaths: 0, malformed: 0 }
  onPacket: (from: Address, bytes: Uint8Array) => void = () => {}
  private readonly o: PathOptions
  // Relay server side.
  private readonly allocations = new Map<Address, Allocation>() // by owner
  // Relay client side: our relay, and the peers that reached us through it (answered the same way).
  private relay: { server: Address; relayed: Address } | null = null
  private readonly viaRelay = new Map<Address, true>()
  // Punched paths: the address the layers above use -> where datagrams really go.
  private readonly direct = new Map<Address, Address>()
  private readonly logicalOf = new Map<Address, Address>()
  private readonly probes = new Map<string, (from: Address) => void>()
  private readonly watchers = new Map<Address, () => void>()
  private sweeper: TimerHandle | null = null
  private dialBacks = 0
  private closed = false

  constructor(
    private readonly inner: Transport,
    private readonly runtime: Runtime,
    private readonly network: Network | null,
    private readonly sendTtl: TtlSender | null,
    options: Partial<PathOptions> = {},
  ) {
    this.o = { ...DEFAULT_PATH_OPTIONS, ...options }
    inner.onPacket = (from, bytes) => this.receive(from, bytes)
  }

  get address(): Address { return this.inner.address }
  get stats(): TransportStats { return this.inner.stats }
  /** Our relayed address, when a relay serves us. */
  get relayedAddress(): Address | null { return this.relay?.relayed ?? null }
  get relayServer(): Address | null { return this.relay?.server ?? null }
  get allocationCount(): number { return this.allocations.size }
  /** Where datagrams for `address` go now: 'direct' after a punch, 'relay' through our relay, else 'plain'. */
  pathTo(address: Address): 'direct' | 'relay' | 'plain' {
    return this.direct.has(address) ? 'direct' : this.viaRelay.has(address) ? 'relay' : 'plain'
  }

  send(to: Address, bytes: Uint8Array): void {
    if (this.closed) return
    const physical = this.direct.get(to)
    if (physical) { this.inner.send(physical, bytes); return }
    if (this.relay && this.viaRelay.has(to)) {
      this.pathStats.relayedOut++
      this.inner.send(this.relay.server, wrap(Kind.RELAY_OUT, to, bytes))
      return
    }
    this.inner.send(to, bytes)
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true
      if (this.sweeper) this.runtime.clearTimeout(this.sweeper)
      for (const a of this.allocations.values()) void a.endpoint.close()
      this.allocations.clear()
    }
    return this.inner.close()
  }

  // ---- relay, server side

  /** Binds (or refreshes) the relayed address of `owner`. */
  async allocate(owner: Address, host: string): Promise<Address> {
    const now = this.runtime.now()
    const held = this.allocations.get(owner)
    if (held) { held.expiresAt = Math.min(held.endsAt, now + this.o.allocationTtlMs); return held.endpoint.address }
    if (!this.network || this.allocations.size >= this.o.maxAllocations) {
      this.pathStats.relayRefused++
      throw new WeftError('ERR_BUSY', `this node relays for at most ${this.o.maxAllocations} peers`)
    }
    const endpoint = await this.network.bind(host, 0)
    const a: Allocation = { owner, endpoint, expiresAt: now + this.o.allocationTtlMs, endsAt: now + this.o.maxAllocationMs, bytes: 0 }
    endpoint.onPacket = (from, bytes) => {
      if (!this.spend(a, bytes.length)) return
      this.pathStats.relayedIn++
      this.inner.send(owner, wrap(Kind.RELAY_IN, from, bytes))
    }
    this.allocations.set(owner, a)
    this.pathStats.allocations++
    this.scheduleSweep()
    return endpoint.address
  }

  private spend(a: Allocation, n: number): boolean {
    a.bytes += n
    if (a.bytes <= this.o.maxAllocationBytes && this.runtime.now() < a.endsAt) return true
    this.pathStats.relayRefused++
    this.release(a)
    return false
  }

  private release(a: Allocation): void {
    if (this.allocations.get(a.owner) === a) this.allocations.delete(a.owner)
    void a.endpoint.close()
  }

  private scheduleSweep(): void {
    if (this.sweeper || this.closed) return
    this.sweeper = this.runtime.setTimeout(() => {
      this.sweeper = null
      const now = this.runtime.now()
      for (const a of [...this.allocations.values()]) if (a.expiresAt <= now) this.release(a)
      if (this.allocations.size) this.scheduleSweep()
    }, this.o.allocationTtlMs / 4)
  }

  // ---- relay, client side

  /** From now on, datagrams that reach `relayed` come to us through `server`, and our answers go back that way. */
  useRelay(server: Address, relayed: Address): void {
    this.relay = { server, relayed }
  }

  // ---- punching

  /** A datagram that opens our NAT toward `to` and, with a small TTL, dies before the peer's NAT. */
  open(to: Address, ttl: number): void {
    const b = this.probePacket(Kind.PROBE, this.runtime.random.bytes(8))
    this.pathStats.probesSent++
    if (this.sendTtl) this.sendTtl(to, b, ttl)
    else this.inner.send(to, b)
  }

  /**
   * Probes `physical` directly until it answers (true) or `timeoutMs` passes (false). On an
   * answer, datagrams for `logical` go to `physical` from then on, and what comes from
   * `physical` is handed up as from `logical`: the session above carries on, now direct.
   */
  probe(logical: Address, physical: Address, timeoutMs: number): Promise<boolean> {
    const nonce = this.runtime.random.bytes(8)
    const key = Buffer.from(nonce).toString('hex')
    return new Promise((resolve) => {
      let timer: TimerHandle | null = null
      const started = this.runtime.now()
      const finish = (ok: boolean): void => {
        this.probes.delete(key)
        if (timer) this.runtime.clearTimeout(timer)
        if (ok) this.setDirect(logical, physical)
        else if (this.logicalOf.get(physical) === logical && !this.direct.has(logical)) this.logicalOf.delete(physical)
        resolve(ok)
      }
      this.probes.set(key, (from) => { if (from === physical) finish(true) })
      // Inbound first: the peer may answer directly before our probe's answer reaches us.
      if (logical !== physical && !this.logicalOf.has(physical)) bounded(this.logicalOf, physical, logical, this.o.maxPeers)
      const tick = (): void => {
        if (this.closed || this.runtime.now() - started >= timeoutMs) { finish(false); return }
        this.pathStats.probesSent++
        this.inner.send(physical, this.probePacket(Kind.PROBE, nonce))
        timer = this.runtime.setTimeout(tick, this.o.probeIntervalMs)
      }
      tick()
    })
  }

  /**
   * Binds a new port and, from `delayMs` on, sends a PROBE from it to `to` every `intervalMs`
   * until `forMs` have passed; resolves with the new port's address at once. The asker never
   * sent to that port, so a probe gets in only where its NAT or firewall lets strangers in (or
   * where the asker has opened toward the port since). The delay lets the asker open first.
   */
  async dialBack(to: Address, host: string, timing: { delayMs: number; intervalMs: number; forMs: number }): Promise<Address> {
    if (!this.network || this.dialBacks >= MAX_DIAL_BACKS) {
      throw new WeftError('ERR_BUSY', `this node dials back to at most ${MAX_DIAL_BACKS} peers at once`)
    }
    this.dialBacks++
    let endpoint: Endpoint
    try { endpoint = await this.network.bind(host, 0) } catch (err) { this.dialBacks--; throw err }
    const started = this.runtime.now()
    const tick = (): void => {
      if (this.closed || this.runtime.now() - started >= timing.forMs) { this.dialBacks--; void endpoint.close(); return }
      this.pathStats.probesSent++
      endpoint.send(to, this.probePacket(Kind.PROBE, this.runtime.random.bytes(8)))
      this.runtime.setTimeout(tick, timing.intervalMs)
    }
    this.runtime.setTimeout(tick, timing.delayMs)
    return endpoint.address
  }

  private setDirect(logical: Address, physical: Address): void {
    if (logical === physical) { this.viaRelay.delete(logical); return }
    bounded(this.direct, logical, physical, this.o.maxPeers)
    bounded(this.logicalOf, physical, logical, this.o.maxPeers)
    this.pathStats.directPaths++
  }

  private probePacket(kind: Kind, nonce: Uint8Array): Uint8Array {
    const b = new Uint8Array(PROBE_BYTES)
    b[0] = kind
    b.set(nonce, 1)
    return b
  }

  /** Resolves true when any datagram arrives from `address` within `timeoutMs` (a reachability test), else false. */
  heardFrom(address: Address, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = this.runtime.setTimeout(() => { this.watchers.delete(address); resolve(false) }, timeoutMs)
      this.watchers.set(address, () => { this.runtime.clearTimeout(timer); this.watchers.delete(address); resolve(true) })
    })
  }

  // ---- receiving

  private receive(from: Address, b: Uint8Array): void {
    if (this.closed) return
    if (this.watchers.size) this.watchers.get(from)?.()
    switch (b[0]) {
      case Kind.RELAY_OUT: {
        const a = this.allocations.get(from)
        const inner = a && unwrap(b)
        if (!a || !inner) { this.pathStats.malformed++; return }
        if (!this.spend(a, inner.payload.length)) return
        this.pathStats.relayedOut++
        a.endpoint.send(inner.address, inner.payload)
        return
      }
      case Kind.RELAY_IN: {
        const inner = this.relay && from === this.relay.server ? unwrap(b) : null
        if (!inner) { this.pathStats.malformed++; return }
        this.pathStats.relayedIn++
        if (!this.direct.has(inner.address)) bounded(this.viaRelay, inner.address, true, this.o.maxPeers)
        this.deliver(inner.address, inner.payload)
        return
      }
      case Kind.PROBE:
        if (b.length !== PROBE_BYTES) { this.pathStats.malformed++; return }
        this.pathStats.probesAnswered++
        this.viaRelay.delete(from) // it reached us directly: answer directly from now on
        b[0] = Kind.PROBE_ACK
        this.inner.send(from, b) // the same size: no amplification
        return
      case Kind.PROBE_ACK:
        if (b.length !== PROBE_BYTES) { this.pathStats.malformed++; return }
        this.probes.get(Buffer.from(b.subarray(1)).toString('hex'))?.(from)
        return
      default:
        if (this.viaRelay.has(from)) this.viaRelay.delete(from) // a direct datagram: the punch worked from its side
        this.deliver(this.logicalOf.get(from) ?? from, b)
    }
  }

  private deliver(from: Address, bytes: Uint8Array): void {
    this.onPacket(from, bytes)
  }
}

function wrap(kind: Kind, address: Address, payload: Uint8Array): Uint8Array {
  const b = new Uint8Array(1 + packedAddressSize(address) + payload.length)
  b[0] = kind
  const o = packAddress(address, b, 1)
  b.set(payload, o)
  return b
}

function unwrap(b: Uint8Array): { address: Address; payload: Uint8Array } | null {
  try {
    const [address, o] = unpackAddress(b, 1)
    parseAddress(address) // refuses port 0 and other unusable addresses
    return { address, payload: b.subarray(o) }
  } catch {
    return null
  }
}

function bounded<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key)
  map.set(key, value)
  if (map.size > max) map.delete(map.keys().next().value as K)
}
