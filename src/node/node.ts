// One running peer: identity, transport, rpc and a topology wired together, with a small API.
import { EventEmitter } from 'node:events'
import { isWeftError, WeftError } from '../errors.js'
import { generateIdentity, loadIdentity, loadOrCreateIdentity, type Identity } from '../identity/keys.js'
import { idFromHex, idToHex, type NodeId } from '../identity/node-id.js'
import { checkPuzzle, solvePuzzle, validatePuzzleBits } from '../identity/puzzle.js'
import { createTopology, type TopologyName, type TopologyOptions } from '../overlay/registry.js'
import type { Contact, LookupOptions, LookupResult, Topology } from '../overlay/topology.js'
import { expectedPongBytes, Rpc, type RpcOptions, type RpcStats } from '../rpc/rpc.js'
import type { Network, Runtime } from '../runtime/runtime.js'
import { realRuntime, udpNetwork } from '../runtime/udp.js'
import { PacketTransport, type Transport, type TransportStats } from '../transport/transport.js'
import { networkKeyFrom, SecureTransport, SESSION_OVERHEAD, type SessionOptions, type SessionStats } from '../transport/session.js'
import { resourceReport, type Resource } from './resources.js'
import { PathTransport, RELAY_OVERHEAD, type PathOptions, type PathStats } from '../transport/paths.js'
import { ChannelTransport, type ChannelsOptions, type ChannelsStats, type PeerChannel } from '../transport/channels.js'
import { mapPort, type PortMapping, type PortMappingOptions } from './port-mapping.js'
import { Connectivity, localAddresses, type ConnectivityOptions, type ConnectResult, type NatStatus } from './connectivity.js'
import { Dht, type DhtOptions } from '../services/dht/dht.js'
import { Tapestry } from '../overlay/tapestry/tapestry.js'
import { RecordStore, type RecordStoreOptions } from '../services/dht/store.js'
import { canonicalAddress, type Address } from '../wire/address.js'
import { join } from 'node:path'
import { networkInterfaces } from 'node:os'
import { MAX_PACKET, MessageType, senderIdOffset, type Request } from '../wire/messages.js'
import { silentLogger, type Logger } from './log.js'
import { NodeMetrics } from './metrics.js'
import { attachMainline, type MainlineAttachment, type MainlineNodeOptions } from '../services/mainline/attach.js'
import type { Mainline, RendezvousRound } from '../services/mainline/index.js'
import { Gossip, gossipOptions } from '../gossip/gossip.js'
import type { HyParViewOptions } from '../gossip/hyparview.js'
import type { PlumtreeOptions } from '../gossip/plumtree.js'
import { PubSub, type PubSubOptions } from '../services/pubsub/pubsub.js'
import { Membership, membershipOptions, type MemberEvent, type MembershipOptions } from '../gossip/membership.js'
import { Polyring, type PolyringOptions } from '../overlay/polyring/service.js'

/** How long a graceful leave may take before the node closes anyway. */
const LEAVE_TIMEOUT_MS = 2000

export interface NodeOptions {
  host?: string
  /** UDP port; 0 picks a free one. */
  port?: number
  bootstrap?: Address[]
  /** Directory for the identity key (created with mode 0700; the key file gets 0600). */
  dataDir?: string
  /** A key file to use; unlike dataDir, it must exist. */
  keyFile?: string
  identity?: Identity
  /**
   * S/Kademlia's static crypto puzzle, a network parameter (0..24, default 0: off): this node's id
   * must solve it (one is generated that does, about 2^bits key pairs; a given key that does not
   * is refused) and Kademlia admits only contacts whose ids solve it.
   */
  puzzleBits?: number
  topology?: TopologyName
  /** Options of the topology (k, alpha, Pastry's b, Chord's successors, ...). */
  topologyOptions?: TopologyOptions
  /** The same as topologyOptions (its first name, from when Kademlia was the only topology). */
  kademlia?: TopologyOptions
  rpc?: Partial<RpcOptions>
  /**
   * Seal every datagram in a Noise session bound to both peers' identities. Default: true on
   * UDP; false on a simulated network (a MemoryWorld measures routing, not ciphers), unless set.
   * Nodes that encrypt and nodes that do not cannot talk to each other.
   */
  encrypt?: boolean
  /** Bounds and timers of the encrypted sessions. */
  sessions?: Partial<SessionOptions>
  /**
   * A private network: 32 bytes, or a passphrase string (stretched to 32 bytes with scrypt, see
   * networkKeyFrom). Handshakes bind it (Noise XXpsk1 / IKpsk1); a node without it gets no answer
   * at all. Needs encryption: with `encrypt: false` it is ERR_BAD_ARGUMENT.
   */
  networkKey?: Uint8Array | string
  /**
   * Whether a request reaches its handler: consulted by the rpc layer for every request that
   * passed the rate limits. Refused: answered ERROR FORBIDDEN (never larger than the request) and
   * counted in status().rpc.unauthorized. Synchronous and cheap; throwing refuses.
   */
  authorize?: (peer: AuthorizedPeer, request: Request) => boolean
  /** Whether a peer may open a session at all (encrypted nodes): refused, its handshake gets no answer (sessions.peersRefused). */
  authorizePeer?: (peer: { id: NodeId; address: Address }) => boolean
  /** Bounds of the reliable channels (Node.channel) and of each channel's window and buffers. */
  channels?: Partial<ChannelsOptions>
  /** Ask the router for a UDP port mapping (UPnP, then NAT-PMP) before the NAT check. Off by default. */
  portMapping?: boolean | Partial<PortMappingOptions>
  /**
   * Find out after joining what NAT this node is behind and whether strangers reach it; if they
   * do not, stay out of routing tables (ask as a client) and take a relayed address from
   * `relays` (default: the bootstrap peers). Default false; `weft node` turns it on.
   */
  nat?: boolean
  relays?: Address[]
  /** Relaying for others, punch timing. */
  connectivity?: Partial<ConnectivityOptions>
  /** Bounds of relaying (allocations, bytes, lifetime). */
  paths?: Partial<PathOptions>
  dht?: Partial<DhtOptions>
  /** Bounds of the local record store; with dataDir it lives in DIR/weft.db (SQLite). */
  store?: Omit<RecordStoreOptions, 'path'>
  /** A client node asks but is never added to others' routing tables. */
  readOnly?: boolean
  runtime?: Runtime
  network?: Network
  /** Structured logs (pino); default: silent. */
  logger?: Logger
  /** Count metrics from the start (see `node.metrics`); otherwise from the first use of `node.metrics`. */
  metrics?: boolean
  /** Also run a Mainline (BitTorrent DHT) node on a second UDP port; see docs/mainline.md. */
  mainline?: MainlineNodeOptions
  /** Gossip channels (HyParView views, Plumtree timers and caches) and pub-sub bounds; see docs/pubsub.md. */
  gossip?: { hyparview?: Partial<HyParViewOptions>; plumtree?: Partial<PlumtreeOptions>; maxChannels?: number }
  pubsub?: Partial<PubSubOptions>
  /**
   * SWIM membership with Lifeguard (see `node.membership` and docs/gossip.md): failure detection and
   * member:join / suspect / alive / fail / leave events. Off by default; `true` joins through the
   * bootstrap peers with memberlist's LAN timers; an object sets the seeds and the SWIM timers.
   */
  membership?: boolean | Partial<MembershipOptions>
  /**
   * Join a Polymorph polyring beside the topology (see `node.polyring` and docs/polyring.md):
   * `true` or an object (centre ring, parent by address or GUID, region, hosted). Off by default.
   */
  polyring?: boolean | PolyringOptions
}

/** Who sent a request, as the authorize hook sees it. */
export interface AuthorizedPeer {
  /** The sender id of the request: proven by the session when the node encrypts (`authenticated`), only claimed otherwise. */
  id: NodeId
  address: Address
  authenticated: boolean
}

export interface PeerInfo {
  id: string
  address: Address
  slot: string
  lastSeenMs: number
  failures: number
}

export interface NodeStatus {
  id: string
  address: Address
  observedAddress: Address | null
  topology: string
  peers: number
  uptimeMs: number
  /** Smoothed round-trip time of this node's requests; null before it has made one. */
  rttMs: number | null
  transport: TransportStats
  /** Encrypted sessions: open now, and the counters (null when the node runs in plaintext). */
  sessions: (SessionStats & { open: number }) | null
  /** Reliable channels (Node.channel): open now, and the counters. */
  channels: ChannelsStats & { open: number }
  /** NAT type, reachability, relay; and the path layer's counters. */
  nat: NatStatus & { paths: PathStats; relayLost: number; relayReplaced: number; portMapping: { protocol: string; externalAddress: string } | null }
  rpc: RpcStats
  /** DHT records held in the local store and their encoded bytes. */
  records: { count: number; bytes: number }
  /** Every bound the node runs with: limit, use now, refusals (src/node/resources.ts, docs/security.md). */
  resources: Record<string, Resource>
}

export interface NodeEvents {
  'peer:added': [Contact]
  'peer:removed': [Contact]
  started: []
  stopped: []
  /** Our relayed address changed: a new relay took over from one that stopped answering (null: none yet). */
  'nat:relayed': [Address | null]
  /** A peer opened a reliable channel to us (see Node.channel). */
  channel: [PeerChannel]
  /** SWIM membership (options.membership): a member joined, is suspected, refuted a suspicion, failed or left. */
  'member:join': [MemberEvent]
  'member:suspect': [MemberEvent]
  'member:alive': [MemberEvent]
  'member:fail': [MemberEvent]
  'member:leave': [MemberEvent]
}

export interface LookupReport extends Omit<LookupResult, 'target' | 'closest'> {
  target: string
  closest: { id: string; address: Address }[]
}

export class Node extends EventEmitter<NodeEvents> {
  readonly identity: Identity
  private readonly runtime: Runtime
  private readonly network: Network
  private transport: ChannelTransport | null = null
  private sealed: Transport | null = null
  private portMapping: PortMapping | null = null
  private paths: PathTransport | null = null
  private connectivity: Connectivity | null = null
  private rpc: Rpc | null = null
  private overlay: Topology | null = null
  private stopping: Promise<void> | null = null
  private dhtService: Dht | null = null
  private recordStore: RecordStore | null = null
  private startedAt = 0
  private starting: Promise<void> | null = null
  private nodeMetrics: NodeMetrics | null = null
  private mainlineParts: MainlineAttachment | null = null
  private gossipLayer: Gossip | null = null
  private pubsubService: PubSub | null = null
  private membershipLayer: Membership | null = null
  private polyringService: Polyring | null = null
  private readonly networkKey: Uint8Array | null
  readonly log: Logger

  constructor(readonly options: NodeOptions = {}) {
    super()
    this.log = options.logger ?? silentLogger
    this.runtime = options.runtime ?? realRuntime
    this.network = options.network ?? udpNetwork
    const bits = validatePuzzleBits(options.puzzleBits ?? 0)
    const generate = bits > 0 ? () => solvePuzzle(bits).identity : generateIdentity
    this.identity = options.identity
      ?? (options.keyFile ? loadIdentity(options.keyFile)
        : options.dataDir ? loadOrCreateIdentity(options.dataDir, generate)
          : generate())
    if (!checkPuzzle(this.identity.id, bits)) {
      const from = options.identity ? 'the given identity' : `the key in ${options.keyFile ?? join(options.dataDir ?? '', 'identity.pem')}`
      throw new WeftError('ERR_BAD_ARGUMENT', `${from} (id ${idToHex(this.identity.id).slice(0, 16)}...) does not solve the ${bits}-bit crypto puzzle (puzzleBits); use a key made for this network or start without one to generate it`)
    }
    if (options.metrics) this.nodeMetrics = new NodeMetrics(this)
    if (options.networkKey !== undefined && options.encrypt === false) {
      throw new WeftError('ERR_BAD_ARGUMENT', 'a network key needs encryption: drop encrypt: false (--no-encrypt)')
    }
    this.networkKey = options.networkKey === undefined ? null : networkKeyFrom(options.networkKey)
  }

  /** This node's Prometheus metrics (its own registry). Counting starts at the first use unless `options.metrics`. */
  get metrics(): NodeMetrics {
    if (!this.nodeMetrics) {
      this.nodeMetrics = new NodeMetrics(this)
      if (this.rpc) this.instrument(this.rpc, this.nodeMetrics)
    }
    return this.nodeMetrics
  }

  /** Counts the rpc's requests by type and outcome: the one place metrics reach into the rpc layer. */
  private instrument(rpc: Rpc, m: NodeMetrics): void {
    const request = rpc.request
    // Every argument passes through unchanged but the callback, which counts the outcome first.
    rpc.request = function (this: Rpc, ...args: Parameters<Rpc['request']>) {
      const [, body, , cb] = args
      args[3] = (err, reply, rttMs) => {
        m.rpcOut(body.type, err ? err.code : reply?.type === MessageType.ERROR ? 'error_reply' : 'ok')
        cb(err, reply, rttMs)
      }
      request.apply(this, args)
    }
    const onRequest = rpc.onRequest
    rpc.onRequest = function (this: Rpc, ...args: Parameters<Rpc['onRequest']>) {
      const req = args[1]
      const refused = (err: unknown): string => (err instanceof WeftError ? err.code : 'ERR_HANDLER')
      try {
        const answer = onRequest.apply(this, args)
        // An answer that comes later (a signature checked on the thread pool) counts when it settles.
        if (answer instanceof Promise) {
          return answer.then((a) => { m.rpcIn(req.type, a ? 'ok' : 'no_reply'); return a }, (err: unknown) => { m.rpcIn(req.type, refused(err)); throw err })
        }
        m.rpcIn(req.type, answer ? 'ok' : 'no_reply')
        return answer
      } catch (err) {
        m.rpcIn(req.type, refused(err))
        throw err
      }
    }
  }

  get id(): NodeId { return this.identity.id }
  get idHex(): string { return idToHex(this.identity.id) }
  get address(): Address { return this.running().transport!.address }
  get topology(): Topology { return this.running().overlay! }
  get isRunning(): boolean { return this.rpc !== null }
  /** The DHT: put/get, putMutable/getMutable, announce/providers. */
  get dht(): Dht { return this.running().dhtService! }
  /** Pub-sub: subscribe(topic) (an async iterator), publish(topic, data), authorize (restricted topics). */
  get pubsub(): PubSub { return this.running().pubsubService! }
  /** SWIM membership: join(seeds), leave(), members() and member:* events (only with options.membership). */
  get membership(): Membership {
    if (!this.options.membership) throw new WeftError('ERR_BAD_ARGUMENT', 'node.membership needs the membership option')
    return this.running().membershipLayer!
  }
  /** The polyring: send(guid, data), broadcast(data), multicast(guids, data), messages() (only with options.polyring). */
  get polyring(): Polyring {
    if (!this.options.polyring) throw new WeftError('ERR_BAD_ARGUMENT', 'node.polyring needs the polyring option (weft node --topology polyring)')
    return this.running().polyringService!
  }
  /** Tapestry's object location (publish, locate, unpublish): only on a node started with topology 'tapestry'. */
  get tapestry(): Tapestry {
    const t = this.running().overlay
    if (!(t instanceof Tapestry)) throw new WeftError('ERR_BAD_ARGUMENT', `node.tapestry needs topology 'tapestry'; this node runs ${t?.name}`)
    return t
  }

  /** The Mainline DHT node: getPeers, announce, get, put (only with options.mainline). */
  get mainline(): Mainline {
    if (!this.options.mainline) throw new WeftError('ERR_BAD_ARGUMENT', 'node.mainline needs the mainline option (weft node --mainline)')
    const parts = this.running().mainlineParts
    if (!parts) throw new WeftError('ERR_NOT_RUNNING', 'the Mainline node is not started yet')
    return parts.mainline
  }
  /** The last Mainline rendezvous round (options.mainline.network): Weft peers found, whether it joined, announces stored. */
  get mainlineRendezvous(): RendezvousRound | null { return this.mainlineParts?.rendezvous?.last ?? null }

  private running(): this {
    if (!this.rpc) throw new WeftError('ERR_NOT_RUNNING', 'the node is not started')
    return this
  }

  /** Binds the socket and joins through the bootstrap peers (or starts a new network). */
  async start(options: LookupOptions = {}): Promise<void> {
    // A second start while the first is binding or joining waits for the first.
    this.starting ??= this.startOnce(options).finally(() => { this.starting = null })
    return this.starting
  }

  private async startOnce(options: LookupOptions): Promise<void> {
    if (this.rpc) return
    const o = this.options
    const endpoint = await this.network.bind(o.host ?? '127.0.0.1', o.port ?? 0)
    const encrypt = o.encrypt ?? (this.networkKey !== null || this.network === udpNetwork)
    const packets = new PacketTransport(endpoint, MAX_PACKET + (encrypt ? SESSION_OVERHEAD : 0) + RELAY_OVERHEAD)
    const paths = new PathTransport(packets, this.runtime, this.network, (to, b, ttl) => packets.sendWithTtl(to, b, ttl), o.paths)
    const sealed = encrypt
      ? new SecureTransport(paths, this.runtime, this.identity, senderIdOffset, { ...o.sessions, maxPacket: MAX_PACKET, networkKey: this.networkKey })
      : paths
    const authorizePeer = o.authorizePeer
    if (authorizePeer && sealed instanceof SecureTransport) sealed.authorizePeer = (id, address) => authorizePeer({ id, address })
    // Reliable channels share the session with the rpc layer: their packets are told apart by their first byte.
    const transport = new ChannelTransport(sealed, this.runtime, o.channels)
    transport.onChannel = (c) => {
      if (this.polyringService?.ownsStream(c.stream)) this.polyringService.accept(c) // the main ring's stream or a side ring's
      else this.emit('channel', c)
    }
    const rpc = new Rpc(this.runtime, transport, this.identity.id, o.rpc)
    // With a NAT check to come, join as a client: nobody should list us before we know strangers reach us.
    rpc.readOnly = (o.readOnly ?? false) || !!o.nat
    const authorize = o.authorize
    if (authorize) rpc.authorize = (from, req) => authorize({ id: req.sender, address: from, authenticated: encrypt }, req)
    if (this.nodeMetrics) this.instrument(rpc, this.nodeMetrics)
    let overlay: Topology
    try {
      overlay = createTopology(o.topology ?? 'kademlia', {
        runtime: this.runtime, rpc, id: this.identity.id, address: () => transport.address,
      }, { puzzleBits: o.puzzleBits, ...o.kademlia, ...o.topologyOptions })
    } catch (err) {
      rpc.close() // bad topology options: the socket must not outlive the failed start
      await transport.close()
      throw err
    }
    overlay.onPeer = (event, contact) => {
      if (this.log.isLevelEnabled('debug')) this.log.debug({ peer: idToHex(contact.id), address: contact.address }, `peer ${event}`)
      this.emit(event === 'added' ? 'peer:added' : 'peer:removed', contact)
    }
    overlay.onJoin = (contact) => this.dhtService?.welcome(contact)
    this.transport = transport
    this.sealed = sealed
    this.paths = paths
    this.connectivity = new Connectivity({
      runtime: this.runtime, rpc, paths, topology: () => this.overlay, id: this.identity.id, host: o.host ?? '127.0.0.1',
      relayCandidates: () => overlay.entries().map((e) => e.address), // routing-table entries are public servers
      locals: localAddresses(paths.address, interfaceHosts),
      onRelayed: (relayed) => {
        this.log.info({ relay: this.connectivity?.status.relay, relayed }, relayed ? 'a new relay took over' : 'relay lost, none found yet')
        this.emit('nat:relayed', relayed)
      },
    }, o.connectivity)
    this.rpc = rpc
    this.overlay = overlay
    this.startedAt = this.runtime.now()
    try {
      const store = this.recordStore = new RecordStore({
        ...o.store, limits: o.dht?.limits, path: o.dataDir ? join(o.dataDir, 'weft.db') : undefined, now: this.runtime.wallClock(),
      })
      this.dhtService = new Dht({ runtime: this.runtime, rpc, topology: overlay, identity: this.identity, store, address: () => transport.address }, o.dht)
      const dht = this.dhtService
      this.gossipLayer = new Gossip({ runtime: this.runtime, rpc, id: this.identity.id, address: () => transport.address, send: (to, b) => transport.send(to, b) }, gossipOptions(o.gossip))
      // Members of a topic meet through provider records under the topic id.
      this.pubsubService = new PubSub({
        runtime: this.runtime, gossip: this.gossipLayer, identity: this.identity, address: () => transport.address,
        rendezvous: {
          announce: async (topic) => { await dht.announce(topic) },
          find: async (topic) => (await dht.providers(topic)).flatMap((p) => p.addresses.map((address) => ({ id: idFromHex(p.id), address }))),
        },
      }, o.pubsub)
      const membership = o.membership ? membershipOptions(o.membership) : null
      if (membership) {
        const m = this.membershipLayer = new Membership({ runtime: this.runtime, rpc, id: this.identity.id, address: () => transport.address, send: (to, b) => transport.send(to, b) }, membership)
        m.onEvent = (kind, member) => this.emit(`member:${kind}`, member)
        m.start()
      }
      // A bad address is the caller's error, not a timeout; "localhost:4000" means 127.0.0.1:4000.
      const given = (o.bootstrap ?? []).map(canonicalAddress).filter((a) => a !== transport.address)
      // With no bootstrap peers, a node that ran before rejoins through the table it saved.
      const saved = given.length === 0 ? store.loadPeers().map((p) => p.address).filter((a) => a !== transport.address) : []
      await overlay.join(given.length ? given : saved, options).catch((err) => {
        if (given.length === 0 && isWeftError(err, 'ERR_BOOTSTRAP_FAILED')) return // nobody from last time is up: start anew
        throw err
      })
      if (membership) {
        // The overlay's bootstrap peers are the seeds unless others are given; none: a new group.
        const seeds = (membership.seeds ?? given).map(canonicalAddress).filter((a) => a !== transport.address)
        if (seeds.length) await this.membershipLayer!.join(seeds).catch((err: unknown) => this.log.warn({ err }, 'membership: no seed answered'))
      }
      if (o.polyring) {
        const po = o.polyring === true ? {} : o.polyring
        const ring = this.polyringService = new Polyring({
          runtime: this.runtime, channel: (a, stream) => transport.channel(canonicalAddress(a), stream), address: () => transport.address, bootstrap: given, log: this.log,
          dht, identity: this.identity, // identity -> location: the node's GUID under its id
        }, po)
        if (po.join !== false) await ring.join()
      }
      if (o.mainline) {
        this.mainlineParts = await attachMainline({
          runtime: this.runtime, network: this.network, host: o.host ?? '127.0.0.1', log: this.log,
          weftAddress: () => transport.address, weftPeers: () => overlay.size(), join: (peers) => overlay.join(peers, options),
        }, o.mainline)
      }
    } catch (err) {
      this.log.error({ err }, 'start failed')
      await this.stop()
      throw err
    }
    this.log.info({ id: this.idHex, address: transport.address, peers: overlay.size(), bootstrap: o.bootstrap ?? [] }, overlay.size() ? 'joined the network' : 'started a new network')
    if (o.portMapping) await this.mapPort(o.portMapping === true ? {} : o.portMapping)
    if (o.nat) await this.checkNat()
    this.emit('started')
  }

  /**
   * Leaves gracefully (the topology tells the neighbours that need to know), then closes.
   * `leave: false` goes without a word, as a crash would (for tests and simulations).
   */
  stop(options: { leave?: boolean } = {}): Promise<void> {
    if (!this.rpc) return Promise.resolve()
    return (this.stopping ??= this.leaveAndClose(options.leave ?? true).finally(() => { this.stopping = null }))
  }

  private async leaveAndClose(leave: boolean): Promise<void> {
    const overlay = this.overlay!
    if (leave && (overlay.leave || this.membershipLayer || this.polyringService)) {
      // Bounded: a neighbour that does not answer must not hold the node up.
      let timer: unknown = null
      await Promise.race([
        Promise.all([overlay.leave?.().catch(() => {}), this.membershipLayer?.leave().catch(() => {}), this.polyringService?.leave().catch(() => {})]),
        new Promise<void>((resolve) => { timer = this.runtime.setTimeout(resolve, LEAVE_TIMEOUT_MS) }),
      ])
      this.runtime.clearTimeout(timer as object)
    }
    const { rpc, transport, recordStore } = this
    if (!rpc) return
    await this.portMapping?.close()
    this.portMapping = null
    await this.mainlineParts?.close()
    this.mainlineParts = null
    this.pubsubService?.close(leave) // a graceful stop says DISCONNECT to each topic's neighbours
    this.pubsubService = null
    this.membershipLayer?.close()
    this.membershipLayer = null
    this.polyringService?.close()
    this.polyringService = null
    this.gossipLayer?.close()
    this.gossipLayer = null
    this.dhtService?.close()
    this.dhtService = null
    this.recordStore = null
    this.rpc = null
    this.overlay = null
    this.transport = null
    this.sealed = null
    this.paths = null
    this.connectivity?.close()
    this.connectivity = null
    try {
      if (recordStore) {
        const now = this.runtime.wallClock()
        recordStore.savePeers(overlay.entries().map((e) => ({ id: e.id, address: e.address, lastSeen: now - e.lastSeenMs })))
      }
    } finally {
      // Whatever saving did, the node ends up fully stopped: store, timers and socket closed.
      recordStore?.close()
      overlay.close()
      rpc.close()
      await transport!.close()
      this.log.info({ id: this.idHex }, 'stopped')
      this.emit('stopped')
    }
  }

  /**
   * Classifies this node's NAT through up to three peers, and when strangers cannot reach it,
   * turns it into a client of the routing tables with a relayed address. Runs at start with `nat`.
   */
  async checkNat(): Promise<NatStatus> {
    const { connectivity, overlay, rpc } = this.running()
    const bootstrap = (this.options.bootstrap ?? []).map(canonicalAddress)
    const observers = [...new Set([...bootstrap, ...overlay!.entries().map((e) => e.address)])].slice(0, 3)
    const s = await connectivity!.classify(observers)
    this.log.info({ nat: s.type, reachable: s.reachable, public: s.publicAddress }, 'NAT checked')
    if (!connectivity!.private) {
      if (rpc!.readOnly && !this.options.readOnly) {
        rpc!.readOnly = false
        await overlay!.lookup(this.identity.id).catch(() => {}) // now as a server: the nearest peers list us
      }
    } else {
      rpc!.readOnly = true // others cannot reach us unasked: we are nobody's routing-table entry
      const relays = this.options.relays?.map(canonicalAddress) ?? observers
      try {
        const relayed = await connectivity!.takeRelay(relays)
        this.log.info({ relay: s.relay, relayed }, 'reachable through a relay')
      } catch (err) {
        this.log.warn({ err }, 'no relay: reachable only by peers we contact')
      }
    }
    return s
  }

  /**
   * Reaches the peer at `address` (its public or relayed address) and, when either side is
   * behind NAT, punches a direct path; the relay carries on when punching fails.
   */
  async connect(address: Address): Promise<ConnectResult> {
    return this.running().connectivity!.connect(canonicalAddress(address))
  }

  /** This node's NAT status (type, reachability, relay). */
  get nat(): NatStatus { return this.running().connectivity!.status }

  /** Asks the router to forward our port; on failure (no gateway, refused) the node goes on without. */
  private async mapPort(options: Partial<PortMappingOptions>): Promise<void> {
    const [host, port] = splitHostPort(this.address)
    const lan = host === '0.0.0.0' ? firstLanAddress() : host
    try {
      this.portMapping = await mapPort(lan, port, options)
      this.log.info({ protocol: this.portMapping.protocol, external: this.portMapping.externalAddress }, 'port mapped on the router')
    } catch (err) {
      this.log.warn({ err }, 'no port mapping')
    }
  }

  /**
   * A reliable, ordered message channel to the peer at `address` (inside its encrypted session
   * when the node encrypts): messages arrive once and in order, or the channel fails. The peer
   * sees it as a 'channel' event. Several streams per peer are told apart by `stream`.
   */
  channel(address: Address, stream = 0): PeerChannel {
    return this.running().transport!.channel(canonicalAddress(address), stream)
  }

  /** Finds the k nodes nearest `target` (a node id as 64 hex digits or 32 bytes). */
  async lookup(target: string | Uint8Array, options: LookupOptions = {}): Promise<LookupResult> {
    const id = typeof target === 'string' ? idFromHex(target) : target
    if (id.length !== 32) throw new WeftError('ERR_BAD_ID', 'a node id must be 32 bytes')
    const overlay = this.running().overlay!
    const started = this.runtime.now()
    try {
      const r = await overlay.lookup(id, options)
      this.nodeMetrics?.lookup(r.durationMs, 'ok', r.hops)
      return r
    } catch (err) {
      const code = err instanceof WeftError ? err.code : 'ERR_LOOKUP'
      this.nodeMetrics?.lookup(this.runtime.now() - started, code)
      this.log.warn({ target: idToHex(id), code, err }, 'lookup failed')
      throw err
    }
  }

  async ping(address: Address): Promise<{ id: string; rttMs: number }> {
    const to = canonicalAddress(address) // the form replies come from, so tokens and RTTs match up
    const { reply, rttMs } = await this.running().rpc!.requestAsync(to, { type: MessageType.PING }, expectedPongBytes(to))
    return { id: idToHex(reply.sender), rttMs }
  }

  peers(): PeerInfo[] {
    return this.running().overlay!.entries().map((e) => ({ ...e, id: idToHex(e.id) }))
  }

  status(): NodeStatus {
    const { transport, rpc, overlay } = this.running()
    return {
      id: this.idHex,
      address: transport!.address,
      observedAddress: rpc!.observedAddress,
      topology: overlay!.name,
      peers: overlay!.size(),
      uptimeMs: Math.round(this.runtime.now() - this.startedAt),
      rttMs: rpc!.smoothedRttMs === null ? null : Math.round(rpc!.smoothedRttMs * 1000) / 1000,
      transport: { ...transport!.stats },
      sessions: this.sealed instanceof SecureTransport ? { ...this.sealed.sessionStats, open: this.sealed.sessionCount } : null,
      channels: { ...transport!.channelStats, open: transport!.open },
      nat: { ...this.connectivity!.status, observed: this.connectivity!.status.observed.slice(), paths: { ...this.paths!.pathStats }, ...this.connectivity!.stats,
        portMapping: this.portMapping && { protocol: this.portMapping.protocol, externalAddress: this.portMapping.externalAddress } },
      rpc: { ...rpc!.stats, malformedByCode: { ...rpc!.stats.malformedByCode } },
      records: { count: this.recordStore?.size ?? 0, bytes: this.recordStore?.bytes ?? 0 },
      resources: resourceReport({
        rpc: rpc!, sessions: this.sealed instanceof SecureTransport ? this.sealed : null, paths: this.paths!, channels: transport!,
        store: this.recordStore, gossip: this.gossipLayer, pathOptions: this.options.paths, channelOptions: this.options.channels,
      }),
    }
  }
}

/** A lookup result in printable form (hex ids). */
export function lookupReport(r: LookupResult): LookupReport {
  return { ...r, target: idToHex(r.target), closest: r.closest.map((c) => ({ id: idToHex(c.id), address: c.address })) }
}

function splitHostPort(address: Address): [string, number] {
  const i = address.lastIndexOf(':')
  return [address.slice(0, i).replace(/^\[|\]$/g, ''), Number(address.slice(i + 1))]
}

/** Our interfaces' addresses, loopback left out (a LAN peer cannot reach those). */
function interfaceHosts(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).filter((a) => !a.internal).map((a) => a.address))
}

/** Our first IPv4 address that is not loopback: what the router knows us by when we bind 0.0.0.0. */
function firstLanAddress(): string {
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address
  return '127.0.0.1'
}
