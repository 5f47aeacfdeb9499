// The real runtime: node:dgram sockets, Node timers, the monotonic clock and crypto randomness.
import { createSocket, type Socket } from 'node:dgram'
import { randomBytes } from 'node:crypto'
import { lookup as dnsLookup, type LookupOptions } from 'node:dns'
import { isIPv4, isIPv6 } from 'node:net'
import { performance } from 'node:perf_hooks'
import { WeftError } from '../errors.js'
import { verifyBytesOffThread } from '../identity/keys.js'
import { formatAddress, parseAddress, type Address, type HostPort } from '../wire/address.js'
import type { Endpoint, Network, Random, Runtime, TimerHandle } from './runtime.js'

class CryptoRandom implements Random {
  private pool = randomBytes(4096)
  private pos = 0
  private take(n: number): Buffer {
    if (this.pos + n > this.pool.length) { this.pool = randomBytes(4096); this.pos = 0 }
    const out = this.pool.subarray(this.pos, this.pos + n)
    this.pos += n
    return out
  }
  u32(): number { return this.take(4).readUInt32BE(0) }
  float(): number { return this.u32() / 4294967296 }
  bytes(n: number): Uint8Array { return new Uint8Array(n > 1024 ? randomBytes(n) : this.take(n)) }
}

export const realRuntime: Runtime = {
  now: () => performance.now(),
  wallClock: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms)
    t.unref() // protocol timers alone never keep the process alive
    return t
  },
  clearTimeout: (h: TimerHandle) => clearTimeout(h as NodeJS.Timeout),
  random: new CryptoRandom(),
  verifySignature: verifyBytesOffThread,
}

const DEFAULT_TTL = 64 // Linux's default for UDP
/** Datagrams held back while a low-TTL one leaves (a few at most in practice). */
const MAX_HELD = 256

// Parsed destinations, shared by all endpoints: the same few addresses are sent to again and again.
const destinations = new Map<Address, HostPort>()

// A sender's address as one string per (host, port), the same object datagram after datagram. Made
// afresh, it was a cons string (a concatenation V8 keeps unflattened), which the Map lookups and
// comparisons above flattened again for every datagram: the session layer's address check alone
// cost about 0.4 µs a packet in the lookup bench. Bounded: cleared when full, refilled from use.
const addressTexts = new Map<string, Map<number, Address>>()
const MAX_ADDRESS_TEXTS = 8192
let addressTextCount = 0

function addressText(host: string, port: number, ipv6: boolean): Address {
  let ports = addressTexts.get(host)
  const known = ports?.get(port)
  if (known !== undefined) return known
  if (addressTextCount >= MAX_ADDRESS_TEXTS) { addressTexts.clear(); addressTextCount = 0; ports = undefined }
  if (!ports) addressTexts.set(host, ports = new Map())
  // Still a cons string here: V8 flattens it in place at its first use above, and every later
  // datagram from this sender gets the same, now flat, string.
  const text = ipv6 ? `[${host}]:${port}` : `${host}:${port}`
  ports.set(port, text)
  addressTextCount++
  return text
}

class UdpEndpoint implements Endpoint {
  onPacket: (from: Address, bytes: Uint8Array) => void = () => {}
  /** Datagrams waiting while a low-TTL datagram is on its way out (null: none is). */
  private held: { to: Address; bytes: Uint8Array; ttl?: number }[] | null = null
  constructor(private readonly socket: Socket, readonly address: Address) {
    socket.on('message', (msg, rinfo) => this.onPacket(addressText(rinfo.address, rinfo.port, rinfo.family === 'IPv6'), msg))
    socket.on('error', () => {}) // send errors (e.g. ICMP unreachable) surface as timeouts above
  }
  send(to: Address, bytes: Uint8Array): void {
    if (this.held) { this.hold(to, bytes); return }
    let hp = destinations.get(to)
    if (!hp) {
      hp = parseAddress(to)
      if (destinations.size >= 8192) destinations.clear() // a cheap bound; refills from use
      destinations.set(to, hp)
    }
    try {
      this.socket.send(bytes, hp.port, hp.host)
    } catch {
      // An address a peer gave us that cannot be sent to (port 0, say): the request times out.
    }
  }
  sendWithTtl(to: Address, bytes: Uint8Array, ttl: number): void {
    if (this.held) { this.hold(to, bytes, ttl); return }
    const hp = parseAddress(to)
    try {
      this.socket.setTTL(ttl)
      // The TTL is the socket's and applies when a datagram leaves, after send() returns: restore
      // it only in the callback, and hold every other datagram until then. Without the hold, the
      // reply sent in the same tick as a PUNCH opener left with TTL 2 and died on the way (seen
      // behind real NATs in the lab: every connect timed out).
      this.held = []
      this.socket.send(bytes, hp.port, hp.host, () => {
        try { this.socket.setTTL(DEFAULT_TTL) } catch { /* closed meanwhile */ }
        const held = this.held ?? []
        this.held = null
        for (const h of held) h.ttl === undefined ? this.send(h.to, h.bytes) : this.sendWithTtl(h.to, h.bytes, h.ttl)
      })
    } catch {
      // As send(): an unusable address, or a closed socket.
      this.held = null
    }
  }
  private hold(to: Address, bytes: Uint8Array, ttl?: number): void {
    if (this.held!.length < MAX_HELD) this.held!.push({ to, bytes, ttl }) // past the bound: dropped, as a full socket buffer would
  }
  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()))
  }
}

function literalLookup(address: string, options: LookupOptions, callback: (err: Error | null, address: string, family: number) => void): void {
  const family = isIPv6(address) ? 6 : isIPv4(address) ? 4 : 0
  if (family === 0) dnsLookup(address, { ...options, all: false }, (err, a, f) => callback(err, a as string, f)) // a host name given to bind ("localhost")
  else callback(null, address, family)
}

export const udpNetwork: Network = {
  bind(host: string, port: number): Promise<Endpoint> {
    // Every address reaching the socket is an IP literal (addresses are parsed before use), so
    // the name lookup that dgram runs on each send (dns.lookup and a tick) is skipped.
    const socket = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4', recvBufferSize: 1 << 20, lookup: literalLookup })
    return new Promise((resolve, reject) => {
      socket.once('error', (err: NodeJS.ErrnoException) => {
        socket.close()
        if (err.code === 'EADDRINUSE') reject(new WeftError('ERR_PORT_IN_USE', `UDP port ${port} on ${host} is already in use`, { cause: err }))
        else reject(new WeftError('ERR_BIND', `cannot bind UDP ${host}:${port}: ${err.message}`, { cause: err }))
      })
      socket.bind(port, host, () => {
        socket.removeAllListeners('error')
        const a = socket.address()
        resolve(new UdpEndpoint(socket, formatAddress(a.address, a.port)))
      })
    })
  },
}
