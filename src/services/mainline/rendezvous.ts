// Bootstrapping a Weft network through Mainline. Every node of the network NAME announces its
// Weft socket's port under one infohash, SHA-1("weft network " + NAME), and looks up the peers
// announced there; a node that knows no Weft peer yet joins the Weft network through them. The
// rest is Weft's own protocol (sessions, rpc, the overlay): Mainline only carries the addresses.
//
// Two nodes that start at the same moment may both find nobody: a node that is still alone
// looks again every retryAloneMs, so they meet at the next round. A node that has peers
// re-announces every announceIntervalMs, well within how long Mainline nodes keep announces.
import type { Runtime, TimerHandle } from '../../runtime/runtime.js'
import type { Address } from '../../wire/address.js'
import { sha1 } from './items.js'
import type { Mainline } from './mainline.js'

/** The infohash under which the Weft network `network` meets on Mainline. */
export function mainlineRendezvous(network: string): Uint8Array {
  return sha1(new Uint8Array(Buffer.from(`weft network ${network}`, 'utf8')))
}

export interface RendezvousOptions {
  network: string
  /** Re-announce this often. */
  announceIntervalMs: number
  /** While no Weft peer is known, look up the rendezvous again this often. */
  retryAloneMs: number
  /** Addresses one join tries. */
  maxJoinPeers: number
}

export const defaultRendezvousOptions: Omit<RendezvousOptions, 'network'> = {
  announceIntervalMs: 15 * 60_000,
  retryAloneMs: 30_000,
  maxJoinPeers: 16,
}

export interface RendezvousHooks {
  /** The Weft socket's address: its port is what gets announced, and it is not a peer to join. */
  weftAddress(): Address
  /** Weft peers known now (0: alone). */
  weftPeers(): number
  /** Joins the Weft network through these addresses (rejects if none answers). */
  join(addresses: Address[]): Promise<void>
}

export interface RendezvousRound {
  /** Weft peers found announced (this node's own address left out). */
  found: Address[]
  /** Whether this round joined the Weft network through them. */
  joined: boolean
  /** Mainline nodes that took the announce (0 if it failed). */
  announced: number
}

export class Rendezvous {
  readonly options: RendezvousOptions
  last: RendezvousRound | null = null
  private timer: TimerHandle | null = null
  private closed = false

  constructor(private readonly runtime: Runtime, private readonly mainline: Mainline, private readonly hooks: RendezvousHooks, options: Partial<RendezvousOptions> & { network: string }) {
    this.options = { ...defaultRendezvousOptions, ...options }
  }

  /** One round: look up, join if alone, announce; then the next round is scheduled. */
  async run(): Promise<RendezvousRound> {
    const own = this.hooks.weftAddress()
    const port = Number(own.slice(own.lastIndexOf(':') + 1))
    const found = (await this.mainline.findWeftPeers(this.options.network).catch(() => [] as Address[])).filter((a) => a !== own)
    let joined = false
    if (!this.closed && this.hooks.weftPeers() === 0 && found.length) {
      joined = await this.hooks.join(found.slice(0, this.options.maxJoinPeers)).then(() => true, () => false)
    }
    const announced = this.closed ? 0 : await this.mainline.announceWeft(this.options.network, port).then((r) => r.stored, () => 0)
    this.last = { found, joined, announced }
    this.schedule()
    return this.last
  }

  private schedule(): void {
    if (this.closed) return
    if (this.timer) this.runtime.clearTimeout(this.timer)
    const ms = this.hooks.weftPeers() === 0 ? this.options.retryAloneMs : this.options.announceIntervalMs
    this.timer = this.runtime.setTimeout(() => { this.timer = null; this.run().catch(() => {}) }, ms)
  }

  close(): void {
    this.closed = true
    if (this.timer) this.runtime.clearTimeout(this.timer)
    this.timer = null
  }
}
