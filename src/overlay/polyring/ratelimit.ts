// Rate limiting of heavy senders where they enter the ring (docs/polyring.md, "Rate limiting"):
// the first polyring peer a message reaches (a neighbour of its originator) takes it from that
// originator's token bucket, one bucket for messages and one for bytes; an empty bucket refuses
// the message and the sender is told (RATE_LIMITED). Tokens refill continuously; a full bucket
// holds one second's worth (the burst).
import { WeftError } from '../../errors.js'

/** Default rate one sender may inject through one entry peer. */
export const DEFAULT_MESSAGES_PER_SECOND = 500
export const DEFAULT_BYTES_PER_SECOND = 4 << 20

export interface RateLimit { messagesPerSecond: number; bytesPerSecond: number }

export function checkRateLimit(r: RateLimit): RateLimit {
  for (const [k, v] of Object.entries(r)) if (!(typeof v === 'number' && v > 0 && Number.isFinite(v))) throw new WeftError('ERR_BAD_ARGUMENT', `rate limit ${k} must be a positive number, not ${v}`)
  return r
}

export class TokenBucket {
  private messages: number
  private bytes: number
  private last: number
  constructor(private readonly limit: RateLimit, now: number) {
    this.messages = limit.messagesPerSecond
    this.bytes = limit.bytesPerSecond
    this.last = now
  }

  /** Takes one message of `size` bytes; false (nothing taken) when either bucket lacks it. */
  take(size: number, now: number): boolean {
    const dt = Math.max(0, now - this.last) / 1000
    this.last = now
    this.messages = Math.min(this.limit.messagesPerSecond, this.messages + dt * this.limit.messagesPerSecond)
    this.bytes = Math.min(this.limit.bytesPerSecond, this.bytes + dt * this.limit.bytesPerSecond)
    if (this.messages < 1 || this.bytes < size) return false
    this.messages -= 1
    this.bytes -= size
    return true
  }

  /** Milliseconds until one more message (of `size` bytes) would be taken. */
  retryAfterMs(size: number): number {
    const m = this.messages >= 1 ? 0 : (1 - this.messages) / this.limit.messagesPerSecond
    const b = this.bytes >= size ? 0 : (size - this.bytes) / this.limit.bytesPerSecond
    return Math.ceil(Math.max(m, b) * 1000)
  }
}
