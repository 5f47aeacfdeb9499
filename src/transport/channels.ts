// Reliable channels between peers, multiplexed over the datagrams of one transport (an encrypted
// session, normally). It sits between the session layer and the rpc layer: a packet that starts
// with CHANNEL_MAGIC is a channel segment and goes to its channel; everything else goes up to the
// rpc layer unchanged. spec/wire.md section 15.
//
//   segment packet:  0x43 ('C') | stream (u32, big-endian) | a Channel datagram (channel.ts)
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
export const CHANNEL_HEADER_BYTES = 5
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

/** One reliable, ordered message stream with one peer. */
export class PeerChannel {
  /** Each message the peer sent, once and in order. */
  onMessage: (message: Uint8Array) => void = () => {}
  /** The channel failed (ERR_TIMEOUT: the peer stopped acknowledging; ERR_BAD_MESSAGE / ERR_TOO_LARGE: a broken stream). */
  onError: (err: WeftError) => void = () => {}
  /** Called once when the channel closes, whatever the reason. */
  onClose: () => void = () => {}
  #ended = false

  constructor(readonly address: Address, readonly stream: number, readonly channel: Channel, private readonly release: (c: PeerChannel) => void) {}

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
    if (bytes.length < CHANNEL_HEADER_BYTES + 1) { this.channelStats.malformed++; return }
    const stream = ((bytes[1] << 24) | (bytes[2] << 16) | (bytes[3] << 8) | bytes[4]) >>> 0
    let c = this.touch(keyOf(from, stream))
    if (!c) {
      if ((this.perPeer.get(from) ?? 0) >= this.o.maxChannelsPerPeer) { this.channelStats.refused++; return }
      this.channelStats.accepted++
      c = this.create(from, stream)
      this.onChannel(c)
    }
    c.channel.receive(bytes.subarray(CHANNEL_HEADER_BYTES))
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
    const head = new Uint8Array(CHANNEL_HEADER_BYTES)
    head[0] = CHANNEL_MAGIC
    head[1] = stream >>> 24; head[2] = stream >>> 16; head[3] = stream >>> 8; head[4] = stream
    const channel = new Channel(this.runtime, (d) => {
      const b = new Uint8Array(CHANNEL_HEADER_BYTES + d.length)
      b.set(head)
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
    })
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
