// The packet layer under the codec: counts and bounds datagrams. The connectivity work wraps
// this same interface in encrypted sessions and NAT traversal; nothing above it changes.
import type { Address } from '../wire/address.js'
import type { Endpoint } from '../runtime/runtime.js'

export interface TransportStats {
  packetsIn: number
  packetsOut: number
  bytesIn: number
  bytesOut: number
  oversizeDropped: number
}

export interface Transport {
  readonly address: Address
  readonly stats: TransportStats
  send(to: Address, bytes: Uint8Array): void
  onPacket: (from: Address, bytes: Uint8Array) => void
  close(): Promise<void>
  /** The Ed25519 key expected at `to` (a contact's id): an encrypting transport seals its first packet to it. */
  hintPeerKey?(to: Address, publicKey: Uint8Array): void
}

/** Plain datagrams over an endpoint, with a size bound on what comes in. */
export class PacketTransport implements Transport {
  readonly stats: TransportStats = { packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, oversizeDropped: 0 }
  onPacket: (from: Address, bytes: Uint8Array) => void = () => {}

  constructor(private readonly endpoint: Endpoint, private readonly maxPacket: number) {
    endpoint.onPacket = (from, bytes) => {
      this.stats.packetsIn++
      this.stats.bytesIn += bytes.length
      if (bytes.length > this.maxPacket) { this.stats.oversizeDropped++; return }
      this.onPacket(from, bytes)
    }
  }

  get address(): Address { return this.endpoint.address }

  send(to: Address, bytes: Uint8Array): void {
    this.stats.packetsOut++
    this.stats.bytesOut += bytes.length
    this.endpoint.send(to, bytes)
  }

  /** Sends with a given IP TTL when the endpoint can (UDP), else normally. */
  sendWithTtl(to: Address, bytes: Uint8Array, ttl: number): void {
    this.stats.packetsOut++
    this.stats.bytesOut += bytes.length
    if (this.endpoint.sendWithTtl) this.endpoint.sendWithTtl(to, bytes, ttl)
    else this.endpoint.send(to, bytes)
  }

  close(): Promise<void> { return this.endpoint.close() }
}
