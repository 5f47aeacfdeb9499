// NAT traversal, the control side: what kind of NAT this node is behind, whether strangers can
// reach it, a relay when they cannot, and hole punching to a peer. The datagram side (relayed
// packets, probes, the switch to a direct path) is transport/paths.ts; the messages are CONNECT
// requests answered with NODES (spec/wire.md section 14).
import { WeftError } from '../errors.js'
import type { NodeId } from '../identity/node-id.js'
import type { Topology } from '../overlay/topology.js'
import { expectedNodesReplyBytes, expectedPongBytes, type Rpc } from '../rpc/rpc.js'
import type { Runtime } from '../runtime/runtime.js'
import type { PathTransport } from '../transport/paths.js'
import { parseAddress, type Address } from '../wire/address.js'
import { ConnectOp, MessageType, type ConnectRequest, type Nodes } from '../wire/messages.js'

/**
 * open: no NAT, strangers reach it; firewalled: no NAT but no inbound UDP from strangers;
 * consistent: a NAT that keeps one public port for every destination (a cone); random: a new
 * public port per destination (symmetric); unknown: too few observers yet.
 */
export type NatType = 'unknown' | 'open' | 'firewalled' | 'consistent' | 'random'

export interface NatStatus {
  type: NatType
  /** Whether a node we never sent to could reach us (null: not tested). */
  reachable: boolean | null
  /** Our address as each observer saw it. */
  observed: { by: Address; as: Address }[]
  /** Where the public internet sees us (our address when there is no NAT). */
  publicAddress: Address | null
  relay: Address | null
  relayedAddress: Address | null
}

export interface ConnectivityOptions {
  /** Serve as a relay for private nodes when this node is publicly reachable. */
  relay: boolean
  /** How long the reachability test waits for a stranger's datagram. */
  reachTimeoutMs: number
  /** How long a punch probes the peer's public address before settling for the relay. */
  punchTimeoutMs: number
  /** IP TTL of the opener: past our own NAT (two hops), dead before the peer's. */
  openerTtl: number
  /** A relayed address is refreshed this often. */
  refreshMs: number
}

export const DEFAULT_CONNECTIVITY_OPTIONS: ConnectivityOptions = {
  relay: true,
  reachTimeoutMs: 2000,
  punchTimeoutMs: 2000,
  openerTtl: 2,
  refreshMs: 20_000,
}

const REACH_TRIES = 6

export interface ConnectResult {
  /** The address to use for the peer from now on (unchanged: a punched path keeps it). */
  address: Address
  /** direct: a punched path; relayed: through the peer's relay; plain: the peer was reachable as it was. */
  path: 'direct' | 'relayed' | 'plain'
  /** The peer's id, proven by the session when the node encrypts. */
  id: NodeId
  ms: number
}

interface Deps {
  runtime: Runtime
  rpc: Rpc
  paths: PathTransport
  topology: () => Topology | null
  id: NodeId
  /** The host our socket is bound to: relayed ports are bound on it too. */
  host: string
}

export class Connectivity {
  readonly status: NatStatus = { type: 'unknown', reachable: null, observed: [], publicAddress: null, relay: null, relayedAddress: null }
  private readonly o: ConnectivityOptions
  private refresher: unknown = null
  private closed = false

  constructor(private readonly d: Deps, options: Partial<ConnectivityOptions> = {}) {
    this.o = { ...DEFAULT_CONNECTIVITY_OPTIONS, ...options }
    d.rpc.handle(MessageType.CONNECT, (from, req) => this.answer(from, req as ConnectRequest))
  }

  close(): void {
    this.closed = true
    if (this.refresher) this.d.runtime.clearTimeout(this.refresher as object)
  }

  // ---- answering

  private answer(from: Address, req: ConnectRequest): Promise<{ type: MessageType.NODES; contacts: { id: NodeId; address: Address }[] }> | { type: MessageType.NODES; contacts: { id: NodeId; address: Address }[] } {
    const me = (address: Address) => ({ type: MessageType.NODES as const, contacts: [{ id: this.d.id, address }] })
    switch (req.op) {
      case ConnectOp.ALLOCATE:
        if (!this.o.relay || this.status.reachable === false || this.d.rpc.readOnly) throw new WeftError('ERR_BUSY', 'this node does not relay')
        return this.d.paths.allocate(from, this.d.host).then(me)
      case ConnectOp.PUNCH:
        // Open our NAT toward the asker's public address, then say where we are; the asker's
        // probes arrive after our opener left, so our NAT lets them in.
        checkAddress(req.address)
        this.d.paths.open(req.address, this.o.openerTtl)
        return me(this.status.publicAddress ?? this.d.rpc.observedAddress ?? this.d.paths.address)
      case ConnectOp.REACH: {
        checkAddress(req.address)
        // A random contact, so that an asker who already talked to this one can ask again.
        const candidates = this.d.topology()?.closest(this.d.id, 16).filter((c) => c.address !== from && c.address !== req.address) ?? []
        if (candidates.length === 0) return { type: MessageType.NODES, contacts: [] }
        const helper = candidates[this.d.runtime.random.u32() % candidates.length]
        this.d.rpc.request(helper.address, { type: MessageType.CONNECT, op: ConnectOp.DIAL, address: req.address }, expectedNodesReplyBytes(helper.address, 0), () => {})
        return { type: MessageType.NODES, contacts: [{ id: helper.id, address: helper.address }] }
      }
      case ConnectOp.DIAL:
        checkAddress(req.address)
        this.d.rpc.request(req.address, { type: MessageType.PING }, expectedPongBytes(req.address), () => {})
        return { type: MessageType.NODES, contacts: [] }
      default:
        throw new WeftError('ERR_BAD_MESSAGE', `unknown CONNECT op ${req.op}`)
    }
  }

  // ---- asking

  private async ask(to: Address, op: number, address: Address): Promise<Nodes> {
    const { reply } = await this.d.rpc.requestAsync(to, { type: MessageType.CONNECT, op, address }, expectedNodesReplyBytes(to, 1))
    if (reply.type !== MessageType.NODES) throw new WeftError('ERR_BAD_MESSAGE', 'a CONNECT must be answered with NODES')
    return reply
  }

  /**
   * Asks `observers` (public peers, two or more with different IPs for a verdict) how they see
   * us, then whether a stranger can reach us. Sets and returns `status`.
   */
  async classify(observers: Address[]): Promise<NatStatus> {
    const own = this.d.paths.address
    const seen: NatStatus['observed'] = []
    await Promise.all(observers.map(async (by) => {
      try {
        const { reply } = await this.d.rpc.requestAsync(by, { type: MessageType.PING }, expectedPongBytes(by))
        if (reply.type === MessageType.PONG) seen.push({ by, as: reply.observed })
      } catch { /* an observer that does not answer says nothing */ }
    }))
    seen.sort((a, b) => (a.by < b.by ? -1 : 1)) // replies race: keep the report stable
    const s = this.status
    s.observed = seen
    const ips = new Set(seen.map((x) => parseAddress(x.by).host))
    const as = new Set(seen.map((x) => x.as))
    if (seen.length === 0) { s.type = 'unknown'; return s }
    const behindNat = seen.some((x) => x.as !== own)
    s.publicAddress = behindNat ? (as.size === 1 ? seen[0].as : null) : own
    if (behindNat) s.type = ips.size < 2 ? 'unknown' : as.size === 1 ? 'consistent' : 'random'
    s.reachable = await this.reachable(seen.map((x) => x.by), behindNat ? seen[0].as : own)
    if (!behindNat) s.type = s.reachable === true ? 'open' : s.reachable === false ? 'firewalled' : 'unknown'
    return s
  }

  /** Whether strangers cannot reach us, as far as `status` knows: behind NAT unless proven reachable. */
  get private(): boolean {
    const s = this.status
    if (s.type === 'random' || s.type === 'firewalled') return true
    const behindNat = s.observed.some((x) => x.as !== this.d.paths.address)
    return behindNat ? s.reachable !== true : s.reachable === false
  }

  /**
   * Asks one of `vias` to have another node send to `address`, and waits for that node's
   * datagram. The test counts only when that node is a stranger (our NAT or firewall would let
   * in a peer we talked to), so a few tries are made; null when none gave a stranger.
   */
  private async reachable(vias: Address[], address: Address): Promise<boolean | null> {
    for (let i = 0; i < REACH_TRIES; i++) {
      let reply: Nodes
      try { reply = await this.ask(vias[i % vias.length], ConnectOp.REACH, address) } catch { continue }
      const stranger = reply.contacts[0]?.address
      if (!stranger || this.d.rpc.knows(stranger)) continue
      return this.d.paths.heardFrom(stranger, this.o.reachTimeoutMs)
    }
    return null
  }

  /** Takes a relayed address from the first of `relays` that grants one, and keeps it fresh. */
  async takeRelay(relays: Address[]): Promise<Address> {
    for (const server of relays) {
      try {
        const reply = await this.ask(server, ConnectOp.ALLOCATE, this.d.paths.address)
        const relayed = reply.contacts[0]?.address
        if (!relayed) continue
        this.d.paths.useRelay(server, relayed)
        this.status.relay = server
        this.status.relayedAddress = relayed
        this.keepRelay(server)
        return relayed
      } catch { /* the next one */ }
    }
    throw new WeftError('ERR_NOT_FOUND', `none of ${relays.length} relays granted an address`)
  }

  private keepRelay(server: Address): void {
    if (this.refresher) this.d.runtime.clearTimeout(this.refresher as object)
    this.refresher = this.d.runtime.setTimeout(() => {
      if (this.closed) return
      this.ask(server, ConnectOp.ALLOCATE, this.d.paths.address).catch(() => {}).finally(() => this.keepRelay(server))
    }, this.o.refreshMs)
  }

  /**
   * Reaches the peer at `address` (its public or relayed address), then, when either side is
   * behind NAT, punches a direct path: we tell it our public address, it opens its NAT toward
   * us and names its own, and we probe that. Without an answer in time the relay carries on.
   */
  async connect(address: Address): Promise<ConnectResult> {
    const started = this.d.runtime.now()
    const mine = this.status.publicAddress ?? this.d.rpc.observedAddress ?? this.d.paths.address
    const reply = await this.ask(address, ConnectOp.PUNCH, mine)
    const peer = reply.contacts[0]
    if (!peer) throw new WeftError('ERR_BAD_MESSAGE', 'a PUNCH answer names the peer')
    const done = (path: ConnectResult['path']): ConnectResult => ({ address, path, id: peer.id, ms: this.d.runtime.now() - started })
    if (peer.address === address) return done('plain')
    const direct = await this.d.paths.probe(address, peer.address, this.o.punchTimeoutMs)
    return done(direct ? 'direct' : 'relayed')
  }
}

function checkAddress(a: Address): void {
  parseAddress(a) // throws ERR_BAD_ADDRESS, answered as BAD_REQUEST
}
