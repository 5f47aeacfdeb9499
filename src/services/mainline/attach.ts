// How a Weft Node runs Mainline beside itself: a second UDP socket (plaintext KRPC, never
// through Weft's sessions), a Mainline node on it, its bootstrap, and (with a network name) the
// rendezvous that announces the node's Weft port and joins the Weft network through what it finds.
import type { Network, Runtime } from '../../runtime/runtime.js'
import type { Address } from '../../wire/address.js'
import { Mainline, type MainlineOptions } from './mainline.js'
import { Rendezvous, type RendezvousOptions } from './rendezvous.js'

/** The Mainline DHT's well-known port. */
export const DEFAULT_MAINLINE_PORT = 6881

/** `NodeOptions.mainline`. */
export interface MainlineNodeOptions {
  /** UDP port of the Mainline socket (default 6881; 0 picks a free one). */
  port?: number
  /** Address to bind (default: the node's host). */
  host?: string
  /** Mainline nodes to join through ("host:port"). */
  bootstrap?: Address[]
  /** BEP 42: keep contacts whose id does not fit their (non-local) IP out of the routing table. */
  bep42?: boolean
  /**
   * Meet the Weft network of this name on Mainline: announce this node's Weft port under
   * mainlineRendezvous(network), and join the Weft network through the peers found there
   * whenever this node knows no Weft peer (none given, or none answered).
   */
  network?: string
  /** Everything else of the Mainline node (k, alpha, timeouts, bounds). */
  tuning?: Partial<Omit<MainlineOptions, 'bootstrap' | 'bep42'>>
  /** Timers of the rendezvous. */
  rendezvous?: Partial<Omit<RendezvousOptions, 'network'>>
}

export interface AttachContext {
  runtime: Runtime
  network: Network
  /** The node's host: the Mainline socket binds there unless told otherwise. */
  host: string
  log: { info(o: object, msg: string): void; warn(o: object, msg: string): void }
  weftAddress(): Address
  weftPeers(): number
  join(addresses: Address[]): Promise<void>
}

export interface MainlineAttachment {
  mainline: Mainline
  rendezvous: Rendezvous | null
  close(): Promise<void>
}

/** Binds the socket, starts the Mainline node, bootstraps it, and runs the first rendezvous round. */
export async function attachMainline(ctx: AttachContext, o: MainlineNodeOptions): Promise<MainlineAttachment> {
  const endpoint = await ctx.network.bind(o.host ?? ctx.host, o.port ?? DEFAULT_MAINLINE_PORT)
  let mainline: Mainline
  try {
    mainline = new Mainline({ runtime: ctx.runtime, endpoint }, { ...o.tuning, bootstrap: o.bootstrap ?? [], bep42: o.bep42 ?? false })
  } catch (err) {
    await endpoint.close() // bad options: the socket must not outlive the failed start
    throw err
  }
  const attachment: MainlineAttachment = {
    mainline,
    rendezvous: null,
    async close() { attachment.rendezvous?.close(); await mainline.close() },
  }
  if (mainline.options.bootstrap.length) {
    // Mainline is best effort: a node whose bootstrap nodes are down still runs, and retries in upkeep.
    await mainline.bootstrap().catch((err: Error) => ctx.log.warn({ err, bootstrap: mainline.options.bootstrap }, 'mainline bootstrap failed'))
  }
  ctx.log.info({ address: mainline.address, id: mainline.idHex, contacts: mainline.table.size }, 'mainline node up')
  if (o.network !== undefined) {
    const rendezvous = attachment.rendezvous = new Rendezvous(ctx.runtime, mainline, ctx, { ...o.rendezvous, network: o.network })
    const round = await rendezvous.run()
    ctx.log.info({ network: o.network, found: round.found.length, joined: round.joined, announced: round.announced }, 'mainline rendezvous')
  }
  return attachment
}
