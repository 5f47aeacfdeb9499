// A reliable, ordered message channel over an unreliable datagram path, sans-IO. It carries
// what must not be lost (polyring routed messages, pub-sub) between two fixed peers, inside the
// encrypted session that already paired them: so there is no handshake, no addressing and no
// congestion control here, only sequencing, acknowledgement, retransmission and a fixed window.
//
// Wire format of a segment (integers big-endian):
//
//   DATA   0      1       2              6
//          +------+-------+--------------+---------------------------------+
//          | 0x01 | flags |   seq (u32)  |  payload (0 .. segmentBytes)    |
//          +------+-------+--------------+---------------------------------+
//          flags: bit 0 FIRST (the segment starts a message), bit 1 LAST (it ends one);
//          a message that fits one segment (or is empty) has both. Other bits must be 0.
//
//   ACK    0      1       2              6                14           16
//          +------+-------+--------------+----------------+------------+
//          | 0x02 | 0x00  |   ack (u32)  |   sack (u64)   | wnd (u16)  |
//          +------+-------+--------------+----------------+------------+
//          ack:  the next seq expected; every seq before it has arrived (cumulative).
//          sack: bit i (value 2^i) set = seq ack+1+i has arrived too (selective), so one loss
//                does not resend the whole window.
//          wnd:  the receiver's window in segments (>= 1); the sender keeps at most
//                min(own windowSegments, wnd) unacknowledged segments in flight.
//
// Sequence numbers are 32-bit serial numbers that wrap: both ends start at `initialSeq` (0 unless
// a test says otherwise) and compare with (a - b) | 0, which is safe because the window
// (<= 65535 segments) is far below 2^31.
//
// Sender: send() queues a copy of the message; pump() cuts it into segments while the window has
// room. Each segment remembers when it was last sent and how often. One timer, armed for the
// earliest deadline, retransmits every segment not acknowledged (cumulatively or selectively)
// within RTO * 2^(retransmits so far), capped at maxRtoMs; RTO comes from the RFC 6298 estimator
// (src/rpc/rtt.ts), sampled by Karn's rule (only segments sent once). A segment with DUP_THRESH
// selectively acknowledged segments above it is resent early (fast retransmit) once it has been
// out for srtt + 4 * rttvar: reordering alone does not trigger it. A segment that would need more
// than maxRetransmits fails the channel (ERR_TIMEOUT).
//
// Receiver: segments in [next, next + window) are kept in a reorder buffer (so it holds at most
// windowSegments segments); older ones are duplicates (counted, dropped, answered with an ACK so a
// sender whose ACK was lost learns); newer ones cannot come from a well-behaved sender and are
// malformed. In-order segments are joined into messages and handed to onMessage exactly once.
// ACKs are delayed by ackDelayMs, but sent at once for every second segment, for an out-of-order
// or duplicate segment and for one that fills a gap.
//
// Errors: a datagram that does not parse, or is out of the window, is counted in stats.malformed
// and dropped; receive() never throws. A stream that parses but breaks framing (a segment that
// continues no message, a message over maxMessageBytes) cannot be resynchronised without losing
// data, so it fails the channel: onError(ERR_BAD_MESSAGE / ERR_TOO_LARGE), then the channel is closed.
//
// Both ends should use the same segmentBytes, maxMessageBytes and windowSegments (a larger
// sender window is corrected by the receiver's first ACK). sendDatagram must not feed the peer
// synchronously back into this channel; a real socket or the simulator never does.
import { WeftError } from '../errors.js'
import { PeerTable } from '../rpc/peer-table.js'
import { RttEstimator } from '../rpc/rtt.js'
import type { Runtime, TimerHandle } from '../runtime/runtime.js'

export interface ChannelOptions {
  /** Largest message; a larger send() throws ERR_TOO_LARGE, a larger incoming one fails the channel. */
  maxMessageBytes: number
  /** Payload bytes per datagram (the DATA header adds DATA_HEADER_BYTES). */
  segmentBytes: number
  /** Flow control: unacknowledged segments in flight, and the receiver's reorder buffer. At most 65535. */
  windowSegments: number
  /**
   * Send buffer bound: bytes accepted by send() and not yet acknowledged (an empty message
   * counts 1). Past it send() throws WeftError('ERR_BUSY'): wait for stats.bytesQueued to fall.
   */
  maxQueuedBytes: number
  /** Retransmissions per segment; one more would be needed -> the channel fails with ERR_TIMEOUT. */
  maxRetransmits: number
  /** Delayed ack: how long a lone in-order segment waits for a second before it is acknowledged. */
  ackDelayMs: number
  /** The retransmission timeout before any round trip was measured. */
  initialRtoMs: number
  /** Bounds of the retransmission timeout (the estimate, and the backed-off timeout). */
  minRtoMs: number
  maxRtoMs: number
  /** First sequence number; both ends must agree (tests use it to cross the 2^32 wrap). */
  initialSeq: number
}

export const defaultChannelOptions: Readonly<ChannelOptions> = Object.freeze({
  maxMessageBytes: 64 * 1024,
  segmentBytes: 1200,
  windowSegments: 64,
  maxQueuedBytes: 1024 * 1024,
  maxRetransmits: 8,
  ackDelayMs: 20,
  initialRtoMs: 1000,
  minRtoMs: 200,
  maxRtoMs: 10_000,
  initialSeq: 0,
})

export const enum SegmentType { DATA = 1, ACK = 2 }
export const SEGMENT_FIRST = 1
export const SEGMENT_LAST = 2
export const DATA_HEADER_BYTES = 6
export const ACK_BYTES = 16
/** Segments past the cumulative ack that one ACK can report. */
export const SACK_BITS = 64
/** Selectively acknowledged segments above a hole that mark it lost (TCP's dupthresh). */
export const DUP_THRESH = 3
export const MAX_WINDOW_SEGMENTS = 0xffff
/** The largest UDP payload less the DATA header. */
export const MAX_SEGMENT_BYTES = 65_507 - DATA_HEADER_BYTES
/** A timer may fire this early (real timers are coarse; virtual time is float). */
const TIMER_SLACK_MS = 1
/** The one peer of the channel, as the RTT estimator's per-peer table wants an address. */
const PEER = 'channel-peer'
const EMPTY = new Uint8Array(0)

export interface ChannelStats {
  /** DATA datagrams sent, retransmissions included. */
  segmentsSent: number
  retransmits: number
  acksSent: number
  /** DATA segments that arrived again (already delivered or already buffered). */
  duplicates: number
  /** Datagrams dropped because they did not parse or were outside the window. */
  malformed: number
  /** Messages handed to onMessage. */
  delivered: number
  /** Bytes in the send buffer (accepted by send(), not yet acknowledged); see maxQueuedBytes. */
  bytesQueued: number
}

interface Outgoing {
  seq: number
  flags: number
  payload: Uint8Array
  /** What the segment counts against maxQueuedBytes: its payload, or 1 for an empty message. */
  charge: number
  sentAt: number
  /** Transmissions so far: 1 + retransmissions. */
  tries: number
  /** The peer reported it in a selective ack: never resent. */
  sacked: boolean
}

interface Incoming { flags: number; payload: Uint8Array }

export class Channel {
  onMessage: (message: Uint8Array) => void = () => {}
  onError: (err: WeftError) => void = () => {}
  readonly options: Readonly<ChannelOptions>
  readonly stats: ChannelStats = { segmentsSent: 0, retransmits: 0, acksSent: 0, duplicates: 0, malformed: 0, delivered: 0, bytesQueued: 0 }

  private done = false
  // Sender.
  private sndUna: number // the oldest unacknowledged seq; flight[i].seq === sndUna + i
  private sndNext: number
  private flight: Outgoing[] = []
  private outbox: Uint8Array[] = [] // messages not yet fully cut into segments, from outHead on
  private outHead = 0
  private outOffset = 0 // bytes of outbox[outHead] already in segments
  private peerWindow: number
  private readonly rtt: RttEstimator
  private rtxTimer: TimerHandle | null = null
  private rtxAt = Infinity
  // Receiver.
  private rcvNext: number
  private readonly reorder = new Map<number, Incoming>()
  private partial: Uint8Array[] = []
  private partialBytes = 0
  private assembling = false
  private ready: Uint8Array[] = [] // whole messages not yet handed to onMessage, from readyHead on
  private readyHead = 0
  private unacked = 0
  private ackTimer: TimerHandle | null = null

  constructor(private readonly runtime: Runtime, private readonly sendDatagram: (bytes: Uint8Array) => void, options: Partial<ChannelOptions> = {}) {
    const o = (this.options = mergedOptions(options))
    this.sndUna = this.sndNext = this.rcvNext = o.initialSeq
    this.peerWindow = o.windowSegments
    // The estimator's prior timeout is srtt + 4 * rttvar with both at initialMs / 3, i.e. 5/3 of it.
    // Its floor is 1 ms: minRtoMs applies to the timer (rto()), not to the fast-retransmit delay.
    this.rtt = new RttEstimator(1, o.maxRtoMs, o.initialRtoMs * 0.6, new PeerTable(1))
  }

  /** True once close() was called or the channel failed. */
  get closed(): boolean { return this.done }
  /** Segments sent and not yet cumulatively acknowledged. */
  get inFlight(): number { return this.flight.length }
  /** The current retransmission timeout (before backoff). */
  get rtoMs(): number { return this.rto() }

  /**
   * Queues a message; it is delivered to the peer's onMessage exactly once and in order, or the
   * channel fails. Throws ERR_TOO_LARGE (over maxMessageBytes), ERR_BUSY (the send buffer would
   * pass maxQueuedBytes) or ERR_CLOSED. The bytes are copied.
   */
  send(message: Uint8Array): void {
    if (this.done) throw new WeftError('ERR_CLOSED', 'channel is closed')
    const o = this.options
    if (message.length > o.maxMessageBytes) throw new WeftError('ERR_TOO_LARGE', `message of ${message.length} bytes is over maxMessageBytes (${o.maxMessageBytes})`)
    const charge = Math.max(1, message.length)
    if (this.stats.bytesQueued + charge > o.maxQueuedBytes) {
      throw new WeftError('ERR_BUSY', `send buffer full: ${this.stats.bytesQueued} + ${charge} bytes would pass maxQueuedBytes (${o.maxQueuedBytes}); wait for acks`)
    }
    this.stats.bytesQueued += charge
    this.outbox.push(message.slice())
    this.pump()
  }

  /** Feeds one datagram that arrived for this channel. Never throws on bad bytes: they are counted. */
  receive(datagram: Uint8Array): void {
    if (this.done) return
    this.flush() // messages an onMessage that threw left behind
    if (this.done) return
    switch (datagram[0]) {
      case SegmentType.DATA: this.onData(datagram); break
      case SegmentType.ACK: this.onAck(datagram); break
      default: this.stats.malformed++
    }
  }

  /**
   * The whole messages sent and not yet acknowledged, oldest first (their segments in flight,
   * then the queue): what a caller may resend elsewhere when the peer is found dead. A message
   * whose first segments were already acknowledged is left out (the peer has part of it).
   */
  unacknowledged(): Uint8Array[] {
    const out: Uint8Array[] = []
    let parts: Uint8Array[] | null = null
    let bytes = 0
    for (const s of this.flight) {
      if (s.flags & SEGMENT_FIRST) { parts = []; bytes = 0 }
      if (!parts) continue
      parts.push(s.payload)
      bytes += s.payload.length
      if (s.flags & SEGMENT_LAST) { out.push(join(parts, bytes).slice()); parts = null }
    }
    for (let i = this.outHead; i < this.outbox.length; i++) {
      const m = this.outbox[i]
      if (i === this.outHead && this.outOffset > 0) {
        if (parts) { parts.push(m.subarray(this.outOffset)); out.push(join(parts, bytes + m.length - this.outOffset).slice()) }
      } else {
        out.push(m.slice())
      }
    }
    return out
  }

  /** Stops the channel: timers are cancelled and buffers dropped. onError is not called. */
  close(): void {
    if (this.done) return
    this.done = true
    if (this.rtxTimer !== null) this.runtime.clearTimeout(this.rtxTimer)
    if (this.ackTimer !== null) this.runtime.clearTimeout(this.ackTimer)
    this.rtxTimer = this.ackTimer = null
    this.flight = []
    this.outbox = []
    this.outHead = this.outOffset = 0
    this.reorder.clear()
    this.partial = []
    this.ready = []
    this.readyHead = 0
    this.stats.bytesQueued = 0
  }

  // ---- sender -------------------------------------------------------------------------------

  /** Cuts queued messages into segments and sends them while the window has room. */
  private pump(): void {
    const o = this.options
    const window = Math.min(o.windowSegments, this.peerWindow)
    let sent = false
    while (this.flight.length < window && this.outHead < this.outbox.length && !this.done) {
      const msg = this.outbox[this.outHead]
      const start = this.outOffset
      const end = Math.min(msg.length, start + o.segmentBytes)
      let flags = start === 0 ? SEGMENT_FIRST : 0
      if (end === msg.length) {
        flags |= SEGMENT_LAST
        this.outbox[this.outHead++] = EMPTY
        this.outOffset = 0
      } else {
        this.outOffset = end
      }
      const payload = msg.subarray(start, end)
      const seg: Outgoing = { seq: this.sndNext, flags, payload, charge: msg.length === 0 ? 1 : payload.length, sentAt: 0, tries: 0, sacked: false }
      this.sndNext = (this.sndNext + 1) >>> 0
      this.flight.push(seg)
      this.transmit(seg)
      sent = true
    }
    if (this.outHead === this.outbox.length) {
      this.outbox.length = 0
      this.outHead = 0
    } else if (this.outHead > 1024 && this.outHead * 2 > this.outbox.length) {
      this.outbox = this.outbox.slice(this.outHead)
      this.outHead = 0
    }
    if (sent) this.armRtx()
  }

  private transmit(seg: Outgoing): void {
    const bytes = new Uint8Array(DATA_HEADER_BYTES + seg.payload.length)
    bytes[0] = SegmentType.DATA
    bytes[1] = seg.flags
    writeU32(bytes, 2, seg.seq)
    bytes.set(seg.payload, DATA_HEADER_BYTES)
    if (seg.tries > 0) this.stats.retransmits++
    seg.tries++
    seg.sentAt = this.runtime.now()
    this.stats.segmentsSent++
    this.sendDatagram(bytes)
  }

  /** Resends a segment, or fails the channel when it has used up its retransmissions. */
  private retransmit(seg: Outgoing): boolean {
    if (seg.tries > this.options.maxRetransmits) {
      this.fail(new WeftError('ERR_TIMEOUT', `segment ${seg.seq} was not acknowledged after ${this.options.maxRetransmits} retransmissions`))
      return false
    }
    this.transmit(seg)
    return true
  }

  private onAck(d: Uint8Array): void {
    if (d.length !== ACK_BYTES || d[1] !== 0) { this.stats.malformed++; return }
    const wnd = (d[14] << 8) | d[15]
    const ack = readU32(d, 2)
    const acked = (ack - this.sndUna) | 0
    if (wnd === 0 || acked > this.flight.length) { this.stats.malformed++; return } // acknowledges what was never sent
    if (acked < 0) return // an older ACK overtaken by a newer one
    this.peerWindow = wnd
    let cleanSentAt = -1 // the latest send time of a newly acknowledged segment sent once (Karn)
    for (let i = 0; i < acked; i++) {
      const s = this.flight[i]
      this.stats.bytesQueued -= s.charge
      if (s.tries === 1 && !s.sacked) cleanSentAt = Math.max(cleanSentAt, s.sentAt)
    }
    if (acked > 0) {
      this.flight.splice(0, acked)
      this.sndUna = ack
    }
    const hi = readU32(d, 6), lo = readU32(d, 10)
    if ((hi | lo) !== 0) {
      for (let i = 0; i < SACK_BITS && i + 1 < this.flight.length; i++) {
        if (((i < 32 ? lo >>> i : hi >>> (i - 32)) & 1) === 0) continue
        const s = this.flight[i + 1]
        if (s.sacked) continue
        s.sacked = true
        if (s.tries === 1) cleanSentAt = Math.max(cleanSentAt, s.sentAt)
      }
    }
    const now = this.runtime.now()
    if (cleanSentAt >= 0) this.rtt.sample(PEER, now - cleanSentAt)
    if (!this.fastRetransmit(now)) return
    this.pump()
    this.armRtx()
  }

  /**
   * Resends each hole with DUP_THRESH selectively acked segments above it, once it has been out
   * for the loss delay (srtt + 4 * rttvar, without the minRtoMs floor). Reordering is not loss:
   * a pure count would resend most of a burst whose datagrams overtake each other.
   */
  private fastRetransmit(now: number): boolean {
    const lossDelay = this.rtt.timeout(PEER)
    let sackedAbove = 0
    for (let i = this.flight.length - 1; i >= 0; i--) {
      const s = this.flight[i]
      if (s.sacked) { sackedAbove++; continue }
      if (sackedAbove < DUP_THRESH || now - s.sentAt < lossDelay) continue
      if (!this.retransmit(s)) return false
    }
    return true
  }

  /** The retransmission timeout before backoff: the estimate, at least minRtoMs. */
  private rto(): number { return Math.max(this.options.minRtoMs, this.rtt.timeout(PEER)) }

  private deadline(s: Outgoing, rto: number): number {
    return s.sentAt + Math.min(this.options.maxRtoMs, rto * 2 ** (s.tries - 1))
  }

  /** Arms the one retransmission timer for the earliest deadline (a timer already due sooner is kept). */
  private armRtx(): void {
    if (this.done) return
    const rto = this.rto()
    let at = Infinity
    for (const s of this.flight) if (!s.sacked) at = Math.min(at, this.deadline(s, rto))
    if (at === Infinity) {
      if (this.rtxTimer !== null) this.runtime.clearTimeout(this.rtxTimer)
      this.rtxTimer = null
      this.rtxAt = Infinity
      return
    }
    if (this.rtxTimer !== null) {
      if (this.rtxAt <= at) return // it will fire first and re-arm
      this.runtime.clearTimeout(this.rtxTimer)
    }
    this.rtxAt = at
    this.rtxTimer = this.runtime.setTimeout(() => this.onRtxTimer(), Math.max(0, at - this.runtime.now()))
  }

  private onRtxTimer(): void {
    this.rtxTimer = null
    this.rtxAt = Infinity
    if (this.done) return
    const now = this.runtime.now()
    const rto = this.rto()
    for (const s of this.flight) {
      if (!s.sacked && this.deadline(s, rto) <= now + TIMER_SLACK_MS && !this.retransmit(s)) return
    }
    this.armRtx()
  }

  // ---- receiver -----------------------------------------------------------------------------

  private onData(d: Uint8Array): void {
    const o = this.options
    if (d.length < DATA_HEADER_BYTES || (d[1] & ~(SEGMENT_FIRST | SEGMENT_LAST)) !== 0 || d.length - DATA_HEADER_BYTES > o.segmentBytes) {
      this.stats.malformed++
      return
    }
    const seq = readU32(d, 2)
    const ahead = (seq - this.rcvNext) | 0
    if (ahead >= o.windowSegments) { this.stats.malformed++; return } // no well-behaved sender goes there
    if (ahead < 0 || this.reorder.has(seq)) {
      this.stats.duplicates++
      this.ackNow() // our ACK may have been lost
      return
    }
    const hadGap = this.reorder.size > 0
    this.reorder.set(seq, { flags: d[1], payload: d.slice(DATA_HEADER_BYTES) })
    this.advance()
    if (this.done) return
    if (ahead > 0 || hadGap || ++this.unacked >= 2 || o.ackDelayMs === 0) this.ackNow()
    else if (this.ackTimer === null) this.ackTimer = this.runtime.setTimeout(() => { this.ackTimer = null; this.ackNow() }, o.ackDelayMs)
    this.flush()
  }

  /** Moves in-order segments out of the reorder buffer, joining them into whole messages. */
  private advance(): void {
    const o = this.options
    for (let seg = this.reorder.get(this.rcvNext); seg !== undefined; seg = this.reorder.get(this.rcvNext)) {
      this.reorder.delete(this.rcvNext)
      this.rcvNext = (this.rcvNext + 1) >>> 0
      const first = (seg.flags & SEGMENT_FIRST) !== 0
      if (first === this.assembling) {
        this.fail(new WeftError('ERR_BAD_MESSAGE', first ? 'peer started a message before ending the previous one' : 'peer sent a segment that continues no message'))
        return
      }
      this.partialBytes += seg.payload.length
      if (this.partialBytes > o.maxMessageBytes) {
        this.fail(new WeftError('ERR_TOO_LARGE', `peer sent a message over maxMessageBytes (${o.maxMessageBytes})`))
        return
      }
      this.assembling = true
      this.partial.push(seg.payload)
      if ((seg.flags & SEGMENT_LAST) !== 0) {
        this.ready.push(join(this.partial, this.partialBytes))
        this.partial = []
        this.partialBytes = 0
        this.assembling = false
      }
    }
  }

  /** Hands whole messages to onMessage; state is updated first, so one that throws loses nothing. */
  private flush(): void {
    while (this.readyHead < this.ready.length && !this.done) {
      const m = this.ready[this.readyHead]
      this.ready[this.readyHead++] = EMPTY
      this.stats.delivered++
      this.onMessage(m)
    }
    if (this.readyHead > 0 && this.readyHead === this.ready.length) {
      this.ready.length = 0
      this.readyHead = 0
    }
  }

  private ackNow(): void {
    if (this.ackTimer !== null) { this.runtime.clearTimeout(this.ackTimer); this.ackTimer = null }
    this.unacked = 0
    let hi = 0, lo = 0
    for (const seq of this.reorder.keys()) {
      const i = ((seq - this.rcvNext) | 0) - 1
      if (i < 0 || i >= SACK_BITS) continue
      if (i < 32) lo |= 1 << i
      else hi |= 1 << (i - 32)
    }
    const b = new Uint8Array(ACK_BYTES)
    b[0] = SegmentType.ACK
    writeU32(b, 2, this.rcvNext)
    writeU32(b, 6, hi >>> 0)
    writeU32(b, 10, lo >>> 0)
    b[14] = this.options.windowSegments >>> 8
    b[15] = this.options.windowSegments & 0xff
    this.stats.acksSent++
    this.sendDatagram(b)
  }

  private fail(err: WeftError): void {
    if (this.done) return
    this.close()
    this.onError(err)
  }
}

function mergedOptions(options: Partial<ChannelOptions>): ChannelOptions {
  const o: ChannelOptions = { ...defaultChannelOptions }
  for (const k of Object.keys(options) as (keyof ChannelOptions)[]) if (options[k] !== undefined) o[k] = options[k]
  const check = (name: keyof ChannelOptions, min: number, max: number, integer = true): void => {
    const v = o[name]
    if (typeof v !== 'number' || !(v >= min && v <= max) || (integer && !Number.isInteger(v))) {
      throw new WeftError('ERR_BAD_ARGUMENT', `channel option ${name} must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], got ${String(v)}`)
    }
  }
  check('maxMessageBytes', 0, 2 ** 30)
  check('segmentBytes', 1, MAX_SEGMENT_BYTES)
  check('windowSegments', 1, MAX_WINDOW_SEGMENTS)
  check('maxQueuedBytes', Math.max(1, o.maxMessageBytes), 2 ** 40)
  check('maxRetransmits', 0, 64)
  check('ackDelayMs', 0, 60_000, false)
  check('minRtoMs', 1, 600_000, false)
  check('maxRtoMs', o.minRtoMs, 600_000, false)
  check('initialRtoMs', o.minRtoMs, o.maxRtoMs, false)
  check('initialSeq', 0, 0xffffffff)
  return o
}

function readU32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0
}

function writeU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24
  b[at + 1] = (v >>> 16) & 0xff
  b[at + 2] = (v >>> 8) & 0xff
  b[at + 3] = v & 0xff
}

function join(parts: Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1) return parts[0]
  const out = new Uint8Array(total)
  let at = 0
  for (const p of parts) { out.set(p, at); at += p.length }
  return out
}
