// A devnet as the dashboard sees it: every node of one process, and the datagrams between them
// counted per link in one-second windows (a tap on the network the nodes bind through), so the
// page can draw traffic as it happens. Used by `weft devnet`, the browser test and the bench.
import type { Endpoint, Network } from '../runtime/runtime.js'
import { udpNetwork } from '../runtime/udp.js'
import type { Address } from '../wire/address.js'
import type { Node } from '../node/node.js'
import { createTestnet, type Testnet, type TestnetOptions } from '../node/testnet.js'

/** Length of one traffic window. */
export const TRAFFIC_WINDOW_MS = 1000
/** Windows kept (the page asks for the ones after the last it saw). */
export const TRAFFIC_WINDOWS = 30
/** Distinct links counted per window; datagrams on further links count in `otherPackets`. */
export const TRAFFIC_MAX_LINKS = 20_000

export interface TrafficWindow {
  seq: number
  /** Wall-clock end of the window (ms since the epoch). */
  atMs: number
  /** Datagrams sent in the window, between devnet nodes or not. */
  packets: number
  /** [from index, to index, datagrams], busiest first. */
  links: [number, number, number][]
  /** Datagrams on links past TRAFFIC_MAX_LINKS or to addresses outside the devnet. */
  otherPackets: number
}

/** Counts datagrams per (sender, receiver) pair of devnet nodes, per window. */
export class Traffic {
  private readonly index = new Map<Address, number>()
  private current = new Map<number, number>()
  private packets = 0
  private other = 0
  private seq = 0
  private readonly windows: TrafficWindow[] = []
  private timer: NodeJS.Timeout | null = null

  /** A network whose endpoints count what they send, over `inner` (default: real UDP). */
  network(inner: Network = udpNetwork): Network {
    return { bind: async (host, port) => new TapEndpoint(await inner.bind(host, port), this) }
  }

  /** Names the nodes by index (their order in the devnet) and starts the windows. */
  register(nodes: readonly Node[]): void {
    this.index.clear()
    nodes.forEach((n, i) => { if (n.isRunning) this.index.set(n.address, i) })
    if (!this.timer) {
      this.timer = setInterval(() => this.rotate(), TRAFFIC_WINDOW_MS)
      this.timer.unref()
    }
  }

  count(from: Address, to: Address): void {
    this.packets++
    const a = this.index.get(from)
    const b = this.index.get(to)
    if (a === undefined || b === undefined) { this.other++; return }
    const key = a * 0x10000 + b
    const n = this.current.get(key)
    if (n !== undefined) this.current.set(key, n + 1)
    else if (this.current.size < TRAFFIC_MAX_LINKS) this.current.set(key, 1)
    else this.other++
  }

  private rotate(): void {
    const links: [number, number, number][] = []
    for (const [key, n] of this.current) links.push([Math.floor(key / 0x10000), key % 0x10000, n])
    links.sort((x, y) => y[2] - x[2])
    this.windows.push({ seq: ++this.seq, atMs: Date.now(), packets: this.packets, links, otherPackets: this.other })
    if (this.windows.length > TRAFFIC_WINDOWS) this.windows.shift()
    this.current = new Map()
    this.packets = 0
    this.other = 0
  }

  /** The windows after `since` (all kept ones for 0), oldest first. */
  since(since: number): { windowMs: number; seq: number; windows: TrafficWindow[] } {
    return { windowMs: TRAFFIC_WINDOW_MS, seq: this.seq, windows: this.windows.filter((w) => w.seq > since) }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
  }
}

class TapEndpoint implements Endpoint {
  constructor(private readonly inner: Endpoint, private readonly traffic: Traffic) {}
  get address(): Address { return this.inner.address }
  get onPacket(): Endpoint['onPacket'] { return this.inner.onPacket }
  set onPacket(fn: Endpoint['onPacket']) { this.inner.onPacket = fn }
  send(to: Address, bytes: Uint8Array): void {
    this.traffic.count(this.inner.address, to)
    this.inner.send(to, bytes)
  }
  sendWithTtl(to: Address, bytes: Uint8Array, ttl: number): void {
    this.traffic.count(this.inner.address, to)
    if (this.inner.sendWithTtl) this.inner.sendWithTtl(to, bytes, ttl)
    else this.inner.send(to, bytes)
  }
  close(): Promise<void> { return this.inner.close() }
}

/** What the API knows of the devnet it serves. */
export interface DevnetView {
  readonly nodes: readonly Node[]
  readonly traffic: Traffic | null
}

export interface Devnet extends DevnetView {
  readonly net: Testnet
  close(): Promise<void>
}

/**
 * A testnet on real UDP whose traffic is counted per link. Sessions stay sealed, as on any UDP
 * network (the tap would otherwise turn the default off: it is not `udpNetwork` itself).
 */
export async function createDevnet(o: TestnetOptions): Promise<Devnet> {
  const traffic = new Traffic()
  const net = await createTestnet({ ...o, node: { ...o.node, encrypt: o.node?.encrypt ?? true, network: traffic.network(o.node?.network) } })
  traffic.register(net.nodes)
  return {
    net, nodes: net.nodes, traffic,
    close: async () => { traffic.stop(); await net.close() },
  }
}
