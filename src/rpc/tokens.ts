// Round-trip tokens: a keyed hash of the asker's address, handed out in every reply. A request
// that echoes it proves the asker receives at that address, so it may get replies larger than
// the request. Secrets rotate; the previous one stays valid for one more period.
import { createHash } from 'node:crypto'
import type { Random } from '../runtime/runtime.js'
import type { Address } from '../wire/address.js'

export class TokenIssuer {
  private current: Uint8Array
  private previous: Uint8Array
  private rotatedAt: number

  constructor(private readonly random: Random, private readonly periodMs: number, now: number) {
    this.current = random.bytes(16)
    this.previous = this.current
    this.rotatedAt = now
  }

  private rotate(now: number): void {
    if (now - this.rotatedAt < this.periodMs) return
    this.previous = this.current
    this.current = this.random.bytes(16)
    this.rotatedAt = now
  }

  issue(address: Address, now: number): number {
    this.rotate(now)
    return tokenOf(this.current, address)
  }

  valid(address: Address, token: number, now: number): boolean {
    this.rotate(now)
    return token === tokenOf(this.current, address) || token === tokenOf(this.previous, address)
  }
}

function tokenOf(secret: Uint8Array, address: Address): number {
  const h = createHash('sha256').update(secret).update(address).digest()
  return h.readUIntBE(0, 6) // 48 bits: exact in a JS number
}
