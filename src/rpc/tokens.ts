// Round-trip tokens: a keyed hash of the asker's address, handed out in every reply. A request
// that echoes it proves the asker receives at that address, so it may get replies larger than
// the request. Secrets rotate; the previous one stays valid for one more period.
import { createHash } from 'node:crypto'
import type { Random } from '../runtime/runtime.js'
import type { Address } from '../wire/address.js'
import { Field, PeerTable } from './peer-table.js'

export class TokenIssuer {
  // Drawn at the first token: a node nobody asks never needs one.
  private current: Uint8Array | null = null
  private previous: Uint8Array | null = null
  private rotatedAt: number
  // Tokens under the current secret are kept in the peer table (with the epoch they belong to),
  // so a busy peer costs one hash per rotation, not per request.
  private epoch = 0

  constructor(private readonly random: Random, private readonly periodMs: number, now: number, private readonly table: PeerTable = new PeerTable(512)) {
    this.rotatedAt = now
  }

  private rotate(now: number): void {
    if (!this.current) { this.current = this.previous = this.random.bytes(16) }
    const periods = Math.floor((now - this.rotatedAt) / this.periodMs)
    if (periods < 1) return
    // After a quiet spell of two periods or more, the old secret is too old to honour as well.
    this.previous = periods >= 2 ? this.random.bytes(16) : this.current
    this.current = this.random.bytes(16)
    this.rotatedAt += periods * this.periodMs
    this.epoch++
  }

  issue(address: Address, now: number): number {
    return this.issueAt(this.table.slot(address), address, now)
  }

  /** issue() for an address whose peer-table slot the caller already holds. */
  issueAt(slot: number, address: Address, now: number): number {
    this.rotate(now)
    const o = slot * Field.COUNT
    const f = this.table.f
    if (f[o + Field.ISSUED_EPOCH] === this.epoch) return f[o + Field.ISSUED_TOKEN]
    const t = tokenOf(this.current!, address)
    f[o + Field.ISSUED_TOKEN] = t
    f[o + Field.ISSUED_EPOCH] = this.epoch
    return t
  }

  valid(address: Address, token: number, now: number): boolean {
    this.rotate(now)
    return token === this.issue(address, now) || token === tokenOf(this.previous!, address)
  }
}

function tokenOf(secret: Uint8Array, address: Address): number {
  const h = createHash('sha256').update(secret).update(address).digest()
  return h.readUIntBE(0, 6) // 48 bits: exact in a JS number
}
