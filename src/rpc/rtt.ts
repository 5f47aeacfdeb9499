// Retransmission timeouts from measured round trips (RFC 6298's estimator), per peer and overall.
import { LruMap } from '../util/lru.js'
import type { Address } from '../wire/address.js'

interface Estimate { srtt: number; rttvar: number }

export class RttEstimator {
  private readonly global: Estimate
  private readonly peers: LruMap<Address, Estimate>

  constructor(private readonly minMs: number, private readonly maxMs: number, initialMs: number, capacity: number) {
    this.global = { srtt: initialMs / 3, rttvar: initialMs / 3 }
    this.peers = new LruMap(capacity)
  }

  sample(peer: Address, rttMs: number): void {
    update(this.global, rttMs)
    const e = this.peers.peek(peer)
    if (e) update(e, rttMs)
    else this.peers.set(peer, { srtt: rttMs, rttvar: rttMs / 2 })
  }

  /** Timeout for a first attempt to `peer`; unknown peers get the network-wide estimate. */
  timeout(peer: Address): number {
    const e = this.peers.peek(peer) ?? this.global
    return Math.min(this.maxMs, Math.max(this.minMs, e.srtt + 4 * e.rttvar))
  }

  get smoothed(): number { return this.global.srtt }
}

function update(e: Estimate, r: number): void {
  e.rttvar = 0.75 * e.rttvar + 0.25 * Math.abs(e.srtt - r)
  e.srtt = 0.875 * e.srtt + 0.125 * r
}
