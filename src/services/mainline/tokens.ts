// Write tokens (BEP 5): get_peers and get answer with a token bound to the asker's IP, which an
// announce_peer or put from that IP must bring back. The token is the first 8 bytes of
// SHA-1(secret || ip); the secret rotates every period, and tokens under the previous secret
// stay valid, so a token lives between one and two periods (5 to 10 minutes by default).
import { createHash, timingSafeEqual } from 'node:crypto'
import type { Random } from '../../runtime/runtime.js'

export const TOKEN_BYTES = 8
export const DEFAULT_TOKEN_PERIOD_MS = 5 * 60_000

export class WriteTokens {
  private current: Uint8Array
  private previous: Uint8Array
  private rotatedAt: number

  constructor(private readonly random: Random, now: number, readonly periodMs = DEFAULT_TOKEN_PERIOD_MS) {
    this.current = random.bytes(16)
    this.previous = random.bytes(16) // nothing was issued under it: a fresh node honours nothing old
    this.rotatedAt = now
  }

  private rotate(now: number): void {
    const periods = Math.floor((now - this.rotatedAt) / this.periodMs)
    if (periods < 1) return
    // After two periods or more without a rotation, the old current secret is too old as well.
    this.previous = periods >= 2 ? this.random.bytes(16) : this.current
    this.current = this.random.bytes(16)
    this.rotatedAt += periods * this.periodMs
  }

  issue(ip: string, now: number): Uint8Array {
    this.rotate(now)
    return tokenOf(this.current, ip)
  }

  valid(ip: string, token: Uint8Array, now: number): boolean {
    this.rotate(now)
    if (token.length !== TOKEN_BYTES) return false
    return timingSafeEqual(token, tokenOf(this.current, ip)) || timingSafeEqual(token, tokenOf(this.previous, ip))
  }
}

function tokenOf(secret: Uint8Array, ip: string): Uint8Array {
  return new Uint8Array(createHash('sha1').update(secret).update(ip).digest().subarray(0, TOKEN_BYTES))
}
