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
import { formatAddress, packAddress, packedAddressSize, parseAddress, unpackAddress, type Address } from '../wire/address.js'
import type { Transport, TransportStats } from './transport.js'

const enum Kind { RELAY_OUT = 0xd0, RELAY_IN = 0xd1, PROBE = 0xd2, PROBE_ACK = 0xd3 }
const PROBE_BYTES = 9
/** Dial-backs (probes from a port bound for one asker) running at once. */
const MAX_DIAL_BACKS = 64
/**
 * The birthday method against a NAT that maps each destination to a new random port (spec/wire.md
 * section 14.3): one side opens BIRTHDAY_PORTS fresh sockets toward the other, the other sends
 * BIRTHDAY_PROBES probes to random ports of its IP. With n = 64512 ports a NAT can pick, all miss
 * with probability about exp(-256 * 1024 / 64512) = 2%.
 */
export const BIRTHDAY_PORTS = 256
export const BIRTHDAY_PROBES = 1024
/** Birthday attempts (each with its sockets, or its probes) running at once. */
const MAX_BIRTHDAYS = 4
/**
 * After the openers are handed to the sockets, this long before the peer may probe: a probe that
 * reached our NAT before an opener left would take that opener's port (the NAT then gives the
 * opener another), and the hit would be lost.
 */
const OPENERS_LEAVE_MS = 20
/** Winning birthday sockets kept (one per peer reached that way); past it the oldest is closed. */
const MAX_BIRTHDAY_PATHS = 64
/** Probes go out in bursts of this many, one burst per tick: paced, so routers' queues keep them. */
const SPRAY_BURST = 32
const SPRAY_TICK_MS = 2
/** The ports a NAT picks from for a socket bound above 1023 (Linux: 1024..65535). */
const NAT_PORT_MIN = 1024
const NAT_PORT_MAX = 65535
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
  // Birthday winners: the peer (as the layers above know it) -> the socket and address it is reached at.
  private readonly viaSocket = new Map<Address, { endpoint: Endpoint; physical: Address }>()
  private birthdays = 0
  // Birthday attempts running, by peer: a retried PUNCH or SPRAY joins its first one instead of
  // starting another (two sets of sockets for one peer: the asker would map to the first winner
  // while a second one took over here, seen in the NAT lab).
  private readonly birthdayRuns = new Map<Address, Promise<{ done: Promise<boolean> }>>()
  private readonly sprays = new Map<Address, Promise<boolean>>()
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
    return this.direct.has(address) || this.viaSocket.has(address) ? 'direct' : this.viaRelay.has(address) ? 'relay' : 'plain'
  }

  send(to: Address, bytes: Uint8Array): void {
    if (this.closed) return
    const socket = this.viaSocket.get(to)
    if (socket) { socket.endpoint.send(socket.physical, bytes); return }
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
      for (const v of this.viaSocket.values()) void v.endpoint.close()
      this.viaSocket.clear()
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
  useRelay(server: Address | null, relayed?: Address): void {
    this.relay = server === null || relayed === undefined ? null : { server, relayed }
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
    return this.probeAny(logical, [physical], timeoutMs).then((won) => won !== null)
  }

  /**
   * As probe(), over several candidate addresses of one peer at once (its public address and its
   * LAN addresses, spec/wire.md 14.4): the first that answers wins and is returned; null when
   * none answered within `timeoutMs`.
   */
  probeAny(logical: Address, candidates: Address[], timeoutMs: number): Promise<Address | null> {
    const nonce = this.runtime.random.bytes(8)
    const key = Buffer.from(nonce).toString('hex')
    const physicals = [...new Set(candidates)]
    return new Promise((resolve) => {
      let timer: TimerHandle | null = null
      const started = this.runtime.now()
      const finish = (won: Address | null): void => {
        this.probes.delete(key)
        if (timer) this.runtime.clearTimeout(timer)
        if (won !== null) this.setDirect(logical, won)
        // Candidates that lost stop standing for the peer.
        for (const p of physicals) if (p !== won && this.logicalOf.get(p) === logical && this.direct.get(logical) !== p) this.logicalOf.delete(p)
        resolve(won)
      }
      this.probes.set(key, (from) => { if (physicals.includes(from)) finish(from) })
      // Inbound first: the peer may answer directly before our probe's answer reaches us.
      for (const p of physicals) if (logical !== p && !this.logicalOf.has(p)) bounded(this.logicalOf, p, logical, this.o.maxPeers)
      const tick = (): void => {
        if (this.closed || this.runtime.now() - started >= timeoutMs) { finish(null); return }
        for (const p of physicals) {
          this.pathStats.probesSent++
          this.inner.send(p, this.probePacket(Kind.PROBE, nonce)) // one buffer each: a receiver may reuse it
        }
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

  // ---- the birthday method (spec/wire.md section 14.3)

  /**
   * The side behind a random NAT: binds `count` fresh sockets and sends from each a low-TTL
   * opener to every one of `toward` (each makes a mapping with a new random public port on our
   * NAT, and dies before the peer's NAT). Resolves once the openers have been sent (then the
   * peer may probe random ports of our IP), with `done`. The first PROBE from one of `toward` that gets
   * in wins: we answer from that socket, and from then on datagrams for `logical` leave from it
   * and what arrives there is handed up as from `logical`. `done` is true then, false when no
   * probe came within `forMs`; every other socket is closed.
   */
  birthdayOpen(logical: Address, toward: Address[], ttl: number, count: number, host: string, forMs: number): Promise<{ done: Promise<boolean> }> {
    const running = this.birthdayRuns.get(logical)
    if (running) return running
    const run = this.startBirthday(logical, toward, ttl, count, host, forMs)
    this.birthdayRuns.set(logical, run)
    const end = (): void => { if (this.birthdayRuns.get(logical) === run) this.birthdayRuns.delete(logical) }
    run.then((r) => r.done).then(end, end)
    return run
  }

  private async startBirthday(logical: Address, toward: Address[], ttl: number, count: number, host: string, forMs: number): Promise<{ done: Promise<boolean> }> {
    if (!this.network || this.birthdays >= MAX_BIRTHDAYS) {
      throw new WeftError('ERR_BUSY', `this node runs at most ${MAX_BIRTHDAYS} birthday attempts at once`)
    }
    this.birthdays++
    const sockets: Endpoint[] = []
    let settle: (ok: boolean) => void = () => {}
    const done = new Promise<boolean>((resolve) => { settle = resolve })
    let over = false
    const finish = (winner: Endpoint | null, physical?: Address): void => {
      if (over) return
      over = true
      this.runtime.clearTimeout(timer)
      for (const e of sockets) if (e !== winner) void e.close()
      this.birthdays--
      const ok = winner !== null && physical !== undefined && !this.closed
      if (ok) this.useSocket(logical, winner, physical)
      else if (winner) void winner.close()
      settle(ok)
    }
    const timer = this.runtime.setTimeout(() => finish(null), forMs)
    // All at once: the asker's request waits for our answer, and may be retried meanwhile.
    const network = this.network
    const bound = await Promise.allSettled(Array.from({ length: count }, () => network.bind(host, 0)))
    for (const b of bound) if (b.status === 'fulfilled') sockets.push(b.value)
    const failed = bound.find((b): b is PromiseRejectedResult => b.status === 'rejected')
    if (failed) {
      finish(null)
      throw failed.reason
    }
    if (over) { for (const e of sockets) void e.close(); return { done } } // timed out while binding
    for (const e of sockets) {
      e.onPacket = (from, b) => {
        if (over || b[0] !== Kind.PROBE || b.length !== PROBE_BYTES || !toward.some((t) => sameHost(t, from))) return
        this.pathStats.probesAnswered++
        b[0] = Kind.PROBE_ACK
        e.send(from, b)
        finish(e, from)
      }
      for (const to of toward) {
        const b = this.probePacket(Kind.PROBE, this.runtime.random.bytes(8))
        this.pathStats.probesSent++
        if (e.sendWithTtl) e.sendWithTtl(to, b, ttl)
        else e.send(to, b)
      }
    }
    await new Promise<void>((resolve) => this.runtime.setTimeout(resolve, OPENERS_LEAVE_MS))
    return { done }
  }

  /**
   * The other side: sends `count` PROBEs from our own socket to distinct random ports of `ip`,
   * in paced bursts, and waits up to `timeoutMs` for a PROBE_ACK from that IP. On one, datagrams
   * for `logical` go to the port that answered. Only outbound datagrams leave our NAT: safe.
   */
  spray(logical: Address, ip: string, count: number, timeoutMs: number): Promise<boolean> {
    const running = this.sprays.get(logical)
    if (running) return running
    const run = this.startSpray(logical, ip, count, timeoutMs)
    this.sprays.set(logical, run)
    void run.then(() => { if (this.sprays.get(logical) === run) this.sprays.delete(logical) })
    return run
  }

  private startSpray(logical: Address, ip: string, count: number, timeoutMs: number): Promise<boolean> {
    if (this.birthdays >= MAX_BIRTHDAYS) return Promise.resolve(false)
    this.birthdays++
    const nonce = this.runtime.random.bytes(8)
    const key = Buffer.from(nonce).toString('hex')
    const ports = new Set<number>()
    const span = NAT_PORT_MAX - NAT_PORT_MIN + 1
    while (ports.size < Math.min(count, span)) ports.add(NAT_PORT_MIN + (this.runtime.random.u32() % span))
    const queue = [...ports]
    return new Promise((resolve) => {
      let timer: TimerHandle | null = null
      let over = false
      const finish = (physical: Address | null): void => {
        if (over) return
        over = true
        this.birthdays--
        this.probes.delete(key)
        if (timer) this.runtime.clearTimeout(timer)
        if (physical && !this.closed) this.setDirect(logical, physical)
        resolve(physical !== null)
      }
      this.probes.set(key, (from) => { if (parseAddress(from).host === ip) finish(from) })
      const started = this.runtime.now()
      const tick = (): void => {
        if (over) return
        if (this.closed || this.runtime.now() - started >= timeoutMs) { finish(null); return }
        for (let i = 0; i < SPRAY_BURST && queue.length; i++) {
          this.pathStats.probesSent++
          this.inner.send(formatAddress(ip, queue.pop()!), this.probePacket(Kind.PROBE, nonce))
        }
        timer = this.runtime.setTimeout(tick, queue.length ? SPRAY_TICK_MS : Math.max(1, timeoutMs - (this.runtime.now() - started)))
      }
      tick()
    })
  }

  /** Datagrams for `logical` leave from `endpoint` to `physical`; what comes from there is `logical`'s. */
  private useSocket(logical: Address, endpoint: Endpoint, physical: Address): void {
    const old = this.viaSocket.get(logical)
    if (old && old.endpoint !== endpoint) void old.endpoint.close()
    this.viaSocket.set(logical, { endpoint, physical })
    if (this.viaSocket.size > MAX_BIRTHDAY_PATHS) {
      const [first, v] = this.viaSocket.entries().next().value as [Address, { endpoint: Endpoint }]
      this.viaSocket.delete(first)
      void v.endpoint.close()
    }
    this.viaRelay.delete(logical)
    this.pathStats.directPaths++
    endpoint.onPacket = (from, b) => {
      if (this.closed || from !== physical) return
      if (b[0] === Kind.PROBE && b.length === PROBE_BYTES) { b[0] = Kind.PROBE_ACK; endpoint.send(from, b); return }
      if (b[0] === Kind.PROBE_ACK || b[0] === Kind.RELAY_IN || b[0] === Kind.RELAY_OUT) return
      this.onPacket(logical, b)
    }
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
        this.onPacket(inner.address, inner.payload)
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
        this.onPacket(this.logicalOf.get(from) ?? from, b)
    }
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

function sameHost(a: Address, b: Address): boolean {
  return parseAddress(a).host === parseAddress(b).host
}

function bounded<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key)
  map.set(key, value)
  if (map.size > max) map.delete(map.keys().next().value as K)
}
