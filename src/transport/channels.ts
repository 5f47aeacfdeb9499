// Reliable channels between peers, multiplexed over the datagrams of one transport (an encrypted
// session, normally). It sits between the session layer and the rpc layer: a packet that starts
// with CHANNEL_MAGIC is a channel segment and goes to its channel; everything else goes up to the
// rpc layer unchanged. spec/wire.md section 15.
//
//   segment packet:  0x43 ('C') | stream (u32) | from (u32) | to (u32) | a Channel datagram (channel.ts)
//
// Restart: each end of a channel is an *incarnation* with a random nonzero epoch, chosen when it
// is created. `from` is the sender's epoch, `to` the receiver's as far as the sender knows it (0:
// not known yet). A channel that failed or was closed is reopened as a new incarnation from
// sequence 0, while the far end may still hold the old one: a packet whose `from` differs from
// the epoch the receiver learned (with `to` 0 or the receiver's own) says the peer restarted, so
// the receiver drops its old channel (onError ERR_CLOSED with `reset` set) and accepts the new
// stream as a new channel. A packet addressed to an incarnation of ours that is gone (`to` is not
// ours) is stale: dropped, and a DATA is answered with a RESET (an empty segment, from = the gone
// epoch, to = the sender's), which fails the sender's old channel at once (not after its resends).
//
// A channel is (peer address, stream). Either side opens one with open(); the first segment of a
// stream nobody opened here creates it and calls onChannel (an accept), up to the bounds, past
// which segments are counted and dropped. Inside a session, the peer is authenticated and the
// segments sealed, so a channel needs no handshake of its own.
import { WeftError } from '../errors.js'
import type { Runtime } from '../runtime/runtime.js'
import type { Address } from '../wire/address.js'
import { Channel, type ChannelOptions } from './channel.js'
import type { Transport, TransportStats } from './transport.js'

export const CHANNEL_MAGIC = 0x43
export const CHANNEL_HEADER_BYTES = 13
export const MAX_STREAM = 0xffffffff

export interface ChannelsOptions {
  /** Channels open at once; past it the least recently used one is closed to make room for a new one. */
  maxChannels: number
  /** Channels one peer may open here (incoming); more are refused (counted). */
  maxChannelsPerPeer: number
  channel: Partial<ChannelOptions>
}

export const DEFAULT_CHANNELS_OPTIONS: ChannelsOptions = {
  maxChannels: 256,
  maxChannelsPerPeer: 8,
  channel: {},
}

export interface ChannelsStats {
  opened: number
  accepted: number
  /** Segments for a new stream past maxChannelsPerPeer. */
  refused: number
  /** Channels closed to make room (maxChannels). */
  evicted: number
  /** Channels that failed (a peer that stopped acknowledging, a broken stream). */
  failed: number
  /** Channel packets too short to carry a stream id. */
  malformed: number
}

/** Channel restarts (not in the node's status: its schema is fixed). */
export interface ChannelRestartStats {
  /** Channels dropped because the peer restarted its end (a new epoch). */
  restarted: number
  /** Packets addressed to an incarnation of ours that is gone (dropped). */
  stale: number
  /** RESETs sent (answers to stale DATA) and channels they failed here. */
  resetsSent: number
  resetsReceived: number
}

/** One reliable, ordered message stream with one peer. */
export class PeerChannel {
  /** Each message the peer sent, once and in order. */
  onMessage: (message: Uint8Array) => void = () => {}
  /** The channel failed (ERR_TIMEOUT: the peer stopped acknowledging; ERR_BAD_MESSAGE / ERR_TOO_LARGE: a broken stream). */
  onError: (err: WeftError) => void = () => {}
  /** Called once when the channel closes, whatever the reason. */
  onClose: () => void = () => {}
  /** Set before onError when the channel ended because the peer restarted its end or no longer holds ours (not a dead peer). */
  reset = false
  /** The peer's epoch, learned from its first packet (0: none yet). */
  remoteEpoch = 0
  #ended = false

  /** `localEpoch`: this end's incarnation (random, nonzero). */
  constructor(readonly address: Address, readonly stream: number, readonly channel: Channel, private readonly release: (c: PeerChannel) => void, readonly localEpoch = 1) {}

  /** Queues a message for the peer; throws ERR_TOO_LARGE, ERR_BUSY (send buffer full) or ERR_CLOSED. */
  send(message: Uint8Array): void { this.channel.send(message) }
  get closed(): boolean { return this.channel.closed }
  get stats() { return this.channel.stats }
  /** Messages queued and not yet acknowledged by the peer: 0 when everything sent has arrived. */
  get pending(): number { return this.channel.stats.bytesQueued }

  /** Closes the channel here (the peer is not told: its unacknowledged sends fail in time). */
  close(): void {
    if (this.#ended) return
    this.#ended = true
    this.channel.close()
    this.release(this)
    this.onClose()
  }
}

const keyOf = (address: Address, stream: number): string => `${stream}@${address}`

export class ChannelTransport implements Transport {
  onPacket: (from: Address, bytes: Uint8Array) => void = () => {}
  /** A peer opened a channel to us (its first segment arrived). */
  onChannel: (channel: PeerChannel) => void = () => {}
  readonly channelStats: ChannelsStats = { opened: 0, accepted: 0, refused: 0, evicted: 0, failed: 0, malformed: 0 }
  readonly restartStats: ChannelRestartStats = { restarted: 0, stale: 0, resetsSent: 0, resetsReceived: 0 }
  private readonly o: ChannelsOptions
  private readonly channels = new Map<string, PeerChannel>() // insertion order = least recently used first
  private readonly perPeer = new Map<Address, number>()

  constructor(private readonly inner: Transport, private readonly runtime: Runtime, options: Partial<ChannelsOptions> = {}) {
    this.o = { ...DEFAULT_CHANNELS_OPTIONS, ...options }
    inner.onPacket = (from, bytes) => {
      if (bytes[0] === CHANNEL_MAGIC) this.receive(from, bytes)
      else this.onPacket(from, bytes)
    }
  }

  get address(): Address { return this.inner.address }
  get stats(): TransportStats { return this.inner.stats }
  get open(): number { return this.channels.size }
  send(to: Address, bytes: Uint8Array): void { this.inner.send(to, bytes) }
  hintPeerKey(to: Address, publicKey: Uint8Array): void { this.inner.hintPeerKey?.(to, publicKey) }

  /** The channel to `address` on `stream`: the open one, or a new one. */
  channel(address: Address, stream = 0): PeerChannel {
    if (!Number.isInteger(stream) || stream < 0 || stream > MAX_STREAM) throw new WeftError('ERR_BAD_ARGUMENT', `a stream is an integer from 0 to ${MAX_STREAM}, got ${stream}`)
    const found = this.touch(keyOf(address, stream))
    if (found) return found
    this.channelStats.opened++
    return this.create(address, stream)
  }

  async close(): Promise<void> {
    for (const c of [...this.channels.values()]) c.close()
    return this.inner.close()
  }

  private receive(from: Address, bytes: Uint8Array): void {
    if (bytes.length < CHANNEL_HEADER_BYTES) { this.channelStats.malformed++; return }
    const stream = u32(bytes, 1), epoch = u32(bytes, 5), to = u32(bytes, 9)
    if (epoch === 0) { this.channelStats.malformed++; return }
    const body = bytes.subarray(CHANNEL_HEADER_BYTES)
    const key = keyOf(from, stream)
    let c = this.channels.get(key)
    if (body.length === 0) {
      // RESET: the peer holds no incarnation `epoch` of its own end any more, so our channel `to` talks to nobody.
      if (c && c.localEpoch === to && c.remoteEpoch === epoch) { this.restartStats.resetsReceived++; this.endByReset(c) }
      return
    }
    if (c && (to === 0 || to === c.localEpoch)) {
      if (c.remoteEpoch === 0 || c.remoteEpoch === epoch) {
        this.touch(key)
        c.remoteEpoch = epoch
        c.channel.receive(body)
        return
      }
      // A new epoch: the peer restarted its end, so ours belongs to an incarnation that is gone.
      this.restartStats.restarted++
      this.endByReset(c)
    }
    if (to !== 0) {
      // Addressed to an incarnation of ours that is gone (or that a restart just ended): tell a DATA's sender, so its channel fails now.
      this.restartStats.stale++
      if (body[0] === 1) this.sendReset(from, stream, to, epoch)
      return
    }
    if ((this.perPeer.get(from) ?? 0) >= this.o.maxChannelsPerPeer) { this.channelStats.refused++; return }
    this.channelStats.accepted++
    c = this.create(from, stream)
    c.remoteEpoch = epoch
    this.onChannel(c)
    c.channel.receive(body)
  }

  /** The channel ends because the peer restarted or dropped its end: onError (with `reset`), then closed. */
  private endByReset(c: PeerChannel): void {
    c.reset = true
    c.onError(new WeftError('ERR_CLOSED', `the peer at ${c.address} restarted or dropped channel ${c.stream}`))
    c.close()
  }

  private sendReset(to: Address, stream: number, goneEpoch: number, theirEpoch: number): void {
    this.restartStats.resetsSent++
    const b = new Uint8Array(CHANNEL_HEADER_BYTES)
    b[0] = CHANNEL_MAGIC
    writeU32(b, 1, stream); writeU32(b, 5, goneEpoch); writeU32(b, 9, theirEpoch)
    this.inner.send(to, b)
  }

  private touch(key: string): PeerChannel | undefined {
    const c = this.channels.get(key)
    if (c) { this.channels.delete(key); this.channels.set(key, c) } // most recently used last
    return c
  }

  private create(address: Address, stream: number): PeerChannel {
    if (this.channels.size >= this.o.maxChannels) {
      this.channelStats.evicted++
      this.channels.values().next().value!.close()
    }
    let epoch = this.runtime.random.u32()
    while (epoch === 0) epoch = this.runtime.random.u32()
    const head = new Uint8Array(CHANNEL_HEADER_BYTES)
    head[0] = CHANNEL_MAGIC
    writeU32(head, 1, stream); writeU32(head, 5, epoch)
    const channel = new Channel(this.runtime, (d) => {
      const b = new Uint8Array(CHANNEL_HEADER_BYTES + d.length)
      b.set(head)
      writeU32(b, 9, pc.remoteEpoch)
      b.set(d, CHANNEL_HEADER_BYTES)
      this.inner.send(address, b)
    }, this.o.channel)
    const key = keyOf(address, stream)
    const pc = new PeerChannel(address, stream, channel, () => {
      if (this.channels.get(key) !== pc) return
      this.channels.delete(key)
      const n = (this.perPeer.get(address) ?? 1) - 1
      if (n > 0) this.perPeer.set(address, n)
      else this.perPeer.delete(address)
    }, epoch)
    channel.onMessage = (m) => pc.onMessage(m)
    channel.onError = (err) => {
      this.channelStats.failed++
      pc.onError(err)
      pc.close()
    }
    this.channels.set(key, pc)
    this.perPeer.set(address, (this.perPeer.get(address) ?? 0) + 1)
    return pc
  }
}

function u32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0
}

function writeU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24; b[at + 1] = (v >>> 16) & 0xff; b[at + 2] = (v >>> 8) & 0xff; b[at + 3] = v & 0xff
}
