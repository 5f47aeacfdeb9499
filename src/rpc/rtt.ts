// Retransmission timeouts from measured round trips (RFC 6298's estimator), per peer and overall.
import type { Address } from '../wire/address.js'
import { Field, PeerTable } from './peer-table.js'

export class RttEstimator {
  private srtt: number
  private rttvar: number

  constructor(private readonly minMs: number, private readonly maxMs: number, initialMs: number, private readonly table: PeerTable) {
    this.srtt = initialMs / 3
    this.rttvar = initialMs / 3
  }

  /** Round trips measured so far. */
  samples = 0

  sample(peer: Address, rttMs: number): void {
    this.sampleAt(this.table.slot(peer), rttMs)
  }

  /** sample() for a peer whose peer-table slot the caller already holds. */
  sampleAt(slot: number, rttMs: number): void {
    this.samples++
    this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - rttMs)
    this.srtt = 0.875 * this.srtt + 0.125 * rttMs
    const o = slot * Field.COUNT
    const f = this.table.f
    const s = f[o + Field.SRTT]
    if (s !== s) { f[o + Field.SRTT] = rttMs; f[o + Field.RTTVAR] = rttMs / 2; return }
    f[o + Field.RTTVAR] = 0.75 * f[o + Field.RTTVAR] + 0.25 * Math.abs(s - rttMs)
    f[o + Field.SRTT] = 0.875 * s + 0.125 * rttMs
  }

  /** Timeout for a first attempt to `peer`; unknown peers get the network-wide estimate. */
  timeout(peer: Address): number {
    const i = this.table.find(peer)
    let srtt = this.srtt, rttvar = this.rttvar
    if (i >= 0) {
      const o = i * Field.COUNT
      const s = this.table.f[o + Field.SRTT]
      if (s === s) { srtt = s; rttvar = this.table.f[o + Field.RTTVAR] }
    }
    return Math.min(this.maxMs, Math.max(this.minMs, srtt + 4 * rttvar))
  }

  /** The network-wide smoothed RTT, or null before the first measurement. */
  get smoothed(): number | null { return this.samples > 0 ? this.srtt : null }
}
