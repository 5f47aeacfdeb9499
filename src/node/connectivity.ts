// NAT traversal, the control side: what kind of NAT this node is behind, whether strangers can
// reach it, a relay when they cannot, and hole punching to a peer. The datagram side (relayed
// packets, probes, the switch to a direct path) is transport/paths.ts; the messages are CONNECT
// requests answered with NODES (spec/wire.md section 14).
import { WeftError } from '../errors.js'
import { idEquals, type NodeId } from '../identity/node-id.js'
import type { Topology } from '../overlay/topology.js'
import { expectedNodesReplyBytes, expectedPongBytes, type Rpc } from '../rpc/rpc.js'
import type { Runtime } from '../runtime/runtime.js'
import { BIRTHDAY_PORTS, BIRTHDAY_PROBES, type PathTransport } from '../transport/paths.js'
import { formatAddress, parseAddress, type Address } from '../wire/address.js'
import { ConnectOp, MAX_LOCAL_ADDRESSES, MessageType, type ConnectRequest, type Nodes, type Reply } from '../wire/messages.js'

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
  /** IP TTL of our punch openers: the smallest that gets through all of our NATs (measured behind a consistent NAT). */
  openerTtl: number
}

export interface ConnectivityOptions {
  /** Serve as a relay for private nodes when this node is publicly reachable. */
  relay: boolean
  /** How long the reachability test waits for a stranger's datagram. */
  reachTimeoutMs: number
  /** How long a punch probes the peer's public address before settling for the relay. */
  punchTimeoutMs: number
  /**
   * IP TTL of the opener: past our own NAT (two hops), dead before the peer's. Behind a
   * consistent NAT, classify() measures the TTL that passes all our NATs (openerTtl up to
   * openerTtl + 2: a double NAT needs 3) and uses that instead.
   */
  openerTtl: number
  /** A relayed address is refreshed this often. */
  refreshMs: number
  /** Exchange LAN addresses in a PUNCH and try them with a peer behind our own NAT (spec/wire.md 14.4). */
  lan: boolean
}

export const DEFAULT_CONNECTIVITY_OPTIONS: ConnectivityOptions = {
  relay: true,
  reachTimeoutMs: 2000,
  punchTimeoutMs: 2000,
  openerTtl: 2,
  refreshMs: 20_000,
  lan: true,
}

const REACH_TRIES = 6
/** Opener TTLs tried when measuring ours: openerTtl, +1, +2. */
const OPENER_TTL_TRIES = 3
/** A dial-back's probes start after this (the asker opens toward the new port first) and come this often. */
const DIAL_BACK_DELAY_MS = 250
const DIAL_BACK_INTERVAL_MS = 250
/** The birthday sockets of a PUNCH's target outlive the asker's punch timeout by this (its answer and probes take a while to come). */
const BIRTHDAY_SLACK_MS = 1000

export interface ConnectResult {
  /** The address to use for the peer from now on (unchanged: a punched path keeps it). */
  address: Address
  /** direct: a punched path; relayed: through the peer's relay; plain: the peer was reachable as it was. */
  path: 'direct' | 'relayed' | 'plain'
  /** When the direct path goes over our LAN (the peer is behind our own NAT): the peer's LAN address it goes to. */
  lan?: Address
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
  /** Where to look for a new relay when ours stops answering (public peers we know). */
  relayCandidates?: () => Address[]
  /** Told when our relayed address changes (a new relay took over), or is lost (null). */
  onRelayed?: (relayed: Address | null) => void
  /** Our LAN addresses (localAddresses()): offered to a peer behind our own NAT. */
  locals?: Address[]
}

export class Connectivity {
  readonly status: NatStatus
  private readonly o: ConnectivityOptions
  private refresher: unknown = null
  private closed = false
  /** The relays last offered to takeRelay: the first place to look for a replacement. */
  private relays: Address[] = []
  readonly stats = { relayLost: 0, relayReplaced: 0 }

  constructor(private readonly d: Deps, options: Partial<ConnectivityOptions> = {}) {
    this.o = { ...DEFAULT_CONNECTIVITY_OPTIONS, ...options }
    this.status = { type: 'unknown', reachable: null, observed: [], publicAddress: null, relay: null, relayedAddress: null, openerTtl: this.o.openerTtl }
    d.rpc.handle(MessageType.CONNECT, (from, req, verified) => this.answer(from, req as ConnectRequest, verified))
  }

  close(): void {
    this.closed = true
    if (this.refresher) this.d.runtime.clearTimeout(this.refresher as object)
  }

  // ---- answering

  private answer(from: Address, req: ConnectRequest, verified = true): Promise<{ type: MessageType.NODES; contacts: { id: NodeId; address: Address }[] }> | { type: MessageType.NODES; contacts: { id: NodeId; address: Address }[] } {
    const me = (address: Address) => ({ type: MessageType.NODES as const, contacts: [{ id: this.d.id, address }] })
    // Every op binds a port or sends to an address for a while (a relay, dial-back probes, punch
    // openers, a spray): only for an asker whose address is proven, or a stranger's one datagram
    // brings many (test/amplification.test.ts: 50 bytes in, seven probes out; the UDP fuzz: a SPRAY
    // brought 1,024 probes to random ports of the asker's IP).
    if (!verified) {
      throw new WeftError('ERR_BAD_TOKEN', 'this CONNECT needs the token this node gave you in a reply')
    }
    switch (req.op) {
      case ConnectOp.ALLOCATE:
        if (!this.o.relay || this.status.reachable === false || this.d.rpc.readOnly) throw new WeftError('ERR_BUSY', 'this node does not relay')
        return this.d.paths.allocate(from, this.d.host).then(me)
      case ConnectOp.PUNCH: {
        checkAddress(req.address)
        const mine = this.status.publicAddress ?? this.status.observed[0]?.as ?? this.d.rpc.observedAddress ?? this.d.paths.address
        const lan = this.lanPeer(from, mine, req.locals ?? [])
        if (lan.length > 0) {
          // The asker is behind our own NAT, which does not hairpin (Linux MASQUERADE): its
          // datagrams to our public address end in the NAT. Probe its LAN addresses and name ours
          // (after our public one); the first path either side hears back from is the direct path.
          void this.d.paths.probeAny(from, lan, this.o.punchTimeoutMs)
          return { type: MessageType.NODES, contacts: [mine, ...this.d.locals!].map((address) => ({ id: this.d.id, address })) }
        }
        if (this.status.type === 'random') {
          // Our NAT gives each destination a new random port, so the asker cannot guess ours:
          // open many ports toward it (the birthday method, spec/wire.md 14.3), answer once the
          // openers left, and name ourselves twice, meaning "probe random ports of my IP".
          const toward = from !== req.address ? [req.address, from] : [req.address]
          const both = { type: MessageType.NODES as const, contacts: [{ id: this.d.id, address: mine }, { id: this.d.id, address: mine }] }
          return this.d.paths.birthdayOpen(from, toward, this.status.openerTtl, BIRTHDAY_PORTS, this.d.host, this.o.punchTimeoutMs + BIRTHDAY_SLACK_MS)
            .then(() => both, () => me(mine)) // busy: a plain answer, the asker's probes fail and the relay carries on
        }
        // Open our NAT toward the asker's public address, then say where we are; the asker's
        // probes arrive after our opener left, so our NAT lets them in. Also toward the address
        // the request came from, when another: the asker's NAT may have moved its port since the
        // asker learned its public address (Linux does, for all new flows, once one datagram from
        // a stranger made it remap a port: seen in the NAT lab), and the request is a new flow.
        this.d.paths.open(req.address, this.status.openerTtl)
        if (from !== req.address) this.d.paths.open(from, this.status.openerTtl)
        return me(mine)
      }
      case ConnectOp.SPRAY: {
        // The asker is behind a random NAT and opened many ports toward us: probe random ports
        // of its IP from our own socket. Only of the asker's own IP, so nobody can aim our
        // probes at a third party; the answer does not wait for the probes.
        checkAddress(req.address)
        const ip = parseAddress(from).host
        if (parseAddress(req.address).host !== ip) throw new WeftError('ERR_BAD_ADDRESS', 'SPRAY probes only the asker\'s own IP')
        void this.d.paths.spray(from, ip, BIRTHDAY_PROBES, this.o.punchTimeoutMs)
        return me(this.status.publicAddress ?? this.d.rpc.observedAddress ?? this.d.paths.address)
      }
      case ConnectOp.REACH: {
        checkAddress(req.address)
        // A random contact, so that an asker who already talked to this one can ask again.
        const candidates = this.d.topology()?.closest(this.d.id, 16).filter((c) => c.address !== from && c.address !== req.address) ?? []
        if (candidates.length === 0) return { type: MessageType.NODES, contacts: [] }
        const helper = candidates[this.d.runtime.random.u32() % candidates.length]
        // Answer only once the helper has answered the DIAL: a contact that is gone would pass
        // for a stranger who could not get through (seen in the NAT lab: open nodes called
        // firewalled because the helper was a node stopped minutes before). The answer names
        // the helper at the port it probes from, then at its own address.
        return new Promise((resolve) => {
          this.d.rpc.requestProven(helper.address, { type: MessageType.CONNECT, op: ConnectOp.DIAL, address: req.address }, expectedNodesReplyBytes(helper.address, 1), (err, reply) => {
            const port = !err && reply?.type === MessageType.NODES ? reply.contacts[0]?.address : undefined
            resolve({ type: MessageType.NODES, contacts: port ? [{ id: helper.id, address: port }, { id: helper.id, address: helper.address }] : [] })
          })
        })
      }
      case ConnectOp.DIAL:
        // Probe `address` from a port bound for this, and name it. A new port, not our own:
        // a datagram from a stranger leaves an UNREPLIED entry on a NAT, and if the NATed node
        // later sent to that same address, Linux would remap its port (for all its new flows);
        // nobody ever sends to a port that lives two seconds. Only a node without NAT can dial:
        // behind one, the asker would see another address than the one named.
        checkAddress(req.address)
        if (this.behindNat || this.private) throw new WeftError('ERR_BUSY', 'this node is behind NAT and cannot dial')
        return this.d.paths.dialBack(req.address, this.d.host, { delayMs: DIAL_BACK_DELAY_MS, intervalMs: DIAL_BACK_INTERVAL_MS, forMs: this.o.reachTimeoutMs }).then(me)
      default:
        throw new WeftError('ERR_BAD_MESSAGE', `unknown CONNECT op ${req.op}`)
    }
  }

  // ---- asking

  private async ask(to: Address, op: number, address: Address, contacts = 1, locals: Address[] = []): Promise<Nodes> {
    const reply = await new Promise<Reply>((resolve, reject) => {
      const req = { type: MessageType.CONNECT as const, op, address, ...(locals.length ? { locals } : {}) }
      this.d.rpc.requestProven(to, req, expectedNodesReplyBytes(to, contacts), (err, r) => (err ? reject(err) : resolve(r!)))
    })
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
    const vias = seen.map((x) => x.by)
    const [reachable, openerTtl] = await Promise.all([
      this.reachable(vias, behindNat ? seen[0].as : own, !behindNat),
      s.type === 'consistent' ? this.measureOpenerTtl(vias, seen[0].as) : Promise.resolve(null),
    ])
    s.reachable = reachable
    if (openerTtl !== null) s.openerTtl = openerTtl
    if (!behindNat) s.type = s.reachable === true ? 'open' : s.reachable === false ? 'firewalled' : 'unknown'
    return s
  }

  /**
   * The LAN addresses of an asker to probe: some only when the asker is behind our own NAT (its
   * request left that NAT from our public IP: proven by its token, not its word) and named LAN
   * addresses. Never a public address a peer names, and at most MAX_LOCAL_ADDRESSES.
   */
  private lanPeer(from: Address, mine: Address, locals: Address[]): Address[] {
    if (!this.o.lan || !this.d.locals?.length || !this.behindNat || locals.length === 0) return []
    if (parseAddress(from).host !== parseAddress(mine).host) return []
    return locals.filter(isLanAddress).slice(0, MAX_LOCAL_ADDRESSES)
  }

  /** Whether observers saw us at another address than our own. */
  private get behindNat(): boolean {
    return this.status.observed.some((x) => x.as !== this.d.paths.address)
  }

  /** Whether strangers cannot reach us, as far as `status` knows: behind NAT unless proven reachable. */
  get private(): boolean {
    const s = this.status
    if (s.type === 'random' || s.type === 'firewalled') return true
    return this.behindNat ? s.reachable !== true : s.reachable === false
  }

  /**
   * Asks one of `vias` to have another node send to `address`, and waits for that node's
   * datagram. The test counts only when that node is a stranger (a NAT that filters by IP would
   * let in a peer we talked to), so a few tries are made; null when none gave a stranger.
   */
  private async reachable(vias: Address[], address: Address, dialBack: boolean): Promise<boolean | null> {
    for (let i = 0; i < REACH_TRIES; i++) {
      let reply: Nodes
      try { reply = await this.ask(vias[i % vias.length], ConnectOp.REACH, address, 2) } catch { continue }
      const [probing, helper] = reply.contacts
      if (!probing || !helper || this.d.rpc.knows(helper.address)) continue
      if (parseAddress(probing.address).host !== parseAddress(helper.address).host) continue
      return this.d.paths.heardFrom(probing.address, this.o.reachTimeoutMs)
    }
    // No stranger among our peers' contacts (a small network: we talked to every server while
    // joining). Without NAT, a peer's new port is stranger enough: a stateful firewall lets in
    // only the exact ip:port we sent to. Behind NAT we stay without a verdict (private), as a NAT
    // that filters by IP alone would let the known peer's new port in.
    const port = dialBack ? await this.dialBackPort(vias, 0, address) : null
    return port ? this.d.paths.heardFrom(port, this.o.reachTimeoutMs) : null
  }

  /** Asks one of `vias` (from the `first`th on) to probe `address` (ours) from a new port; that port's address, or null. */
  private async dialBackPort(vias: Address[], first: number, address: Address): Promise<Address | null> {
    for (let i = 0; i < vias.length; i++) {
      const via = vias[(first + i) % vias.length]
      try {
        const port = (await this.ask(via, ConnectOp.DIAL, address)).contacts[0]?.address
        // The port must be on the host we asked (not a private address behind its NAT).
        if (port && parseAddress(port).host === parseAddress(via).host) return port
      } catch { /* the next one */ }
    }
    return null
  }

  /**
   * The smallest opener TTL that gets through all of our NATs: for each TTL tried, a peer dials
   * back from a new port after we sent one datagram there with that TTL; the probes get in only
   * if the datagram made the mapping on our outermost NAT. (Behind one NAT 2; behind a double
   * NAT a TTL-2 opener dies at the outer NAT, so the peer's probes are dropped there: 3.)
   * Null when no TTL tried worked (or no peer would dial back).
   */
  private async measureOpenerTtl(vias: Address[], publicAddress: Address): Promise<number | null> {
    const ttls = Array.from({ length: OPENER_TTL_TRIES }, (_, i) => this.o.openerTtl + i)
    const heard = await Promise.all(ttls.map(async (ttl, i) => {
      const port = await this.dialBackPort(vias, i, publicAddress)
      if (!port) return false
      const heard = this.d.paths.heardFrom(port, this.o.reachTimeoutMs)
      this.d.paths.open(port, ttl)
      return heard
    }))
    const i = heard.indexOf(true)
    return i < 0 ? null : ttls[i]
  }

  /**
   * Takes a relayed address from the first of `relays` that grants one, and keeps it fresh; when
   * that relay stops answering, another takes over (spec/wire.md 14.1).
   */
  async takeRelay(relays: Address[]): Promise<Address> {
    this.relays = [...relays]
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
      this.ask(server, ConnectOp.ALLOCATE, this.d.paths.address).then(
        () => this.keepRelay(server),
        // The rpc layer retried already: the relay is gone (or refuses us now). Its relayed
        // address is dead with it, so peers must hear of the new one.
        () => { if (!this.closed) void this.replaceRelay(server) },
      )
    }, this.o.refreshMs)
  }

  private async replaceRelay(dead: Address): Promise<void> {
    this.stats.relayLost++
    this.status.relay = null
    this.status.relayedAddress = null
    this.d.paths.useRelay(null)
    const candidates = [...new Set([...this.relays, ...(this.d.relayCandidates?.() ?? [])])].filter((a) => a !== dead)
    try {
      const relayed = await this.takeRelay(candidates)
      this.stats.relayReplaced++
      this.d.onRelayed?.(relayed)
    } catch {
      this.d.onRelayed?.(null)
      // Nobody granted one: try again later, the old relay included (it may be back).
      this.refresher = this.d.runtime.setTimeout(() => { if (!this.closed) void this.replaceRelay('') }, this.o.refreshMs)
    }
  }

  /**
   * Reaches the peer at `address` (its public or relayed address), then, when either side is
   * behind NAT, punches a direct path: we tell it our public address, it opens its NAT toward
   * us and names its own, and we probe that. Without an answer in time the relay carries on.
   */
  async connect(address: Address): Promise<ConnectResult> {
    const started = this.d.runtime.now()
    const mine = this.status.publicAddress ?? this.d.rpc.observedAddress ?? this.d.paths.address
    // Behind NAT, our LAN addresses go along: a peer behind the same NAT answers with its own.
    const locals = this.o.lan && this.behindNat ? this.d.locals ?? [] : []
    const reply = await this.ask(address, ConnectOp.PUNCH, mine, 2 + locals.length, locals)
    const [peer, hint] = reply.contacts
    if (!peer) throw new WeftError('ERR_BAD_MESSAGE', 'a PUNCH answer names the peer')
    const done = (path: ConnectResult['path'], lan?: Address): ConnectResult => ({ address, path, id: peer.id, ms: this.d.runtime.now() - started, ...(lan ? { lan } : {}) })
    if (peer.address === address) return done('plain')
    const ip = parseAddress(peer.address).host
    const birthday = hint?.address === peer.address
    // The peer's LAN addresses, only when it shares our public IP (the same NAT): probed with its
    // public address (a NAT that hairpins may carry that), the first to answer wins.
    const lan = locals.length && ip === parseAddress(mine).host
      ? reply.contacts.slice(1).filter((c) => idEquals(c.id, peer.id) && c.address !== peer.address && isLanAddress(c.address)).map((c) => c.address).slice(0, MAX_LOCAL_ADDRESSES)
      : []
    if (lan.length > 0) {
      const random = birthday || this.status.type === 'random' // a public port that means nothing: LAN only
      const won = await this.d.paths.probeAny(address, random ? lan : [...lan, peer.address], this.o.punchTimeoutMs)
      if (won !== null) return done('direct', lan.includes(won) ? won : undefined)
      if (!random) return done('relayed')
    }
    if (birthday) {
      // The target is behind a random NAT and has opened many ports toward us: probe random
      // ports of its IP (the birthday method). From our own socket: only outbound datagrams.
      return done(await this.d.paths.spray(address, ip, BIRTHDAY_PROBES, this.o.punchTimeoutMs) ? 'direct' : 'relayed')
    }
    if (this.status.type === 'random') {
      // We are behind a random NAT: the target could not guess our port. Open many ports toward
      // it, then (through the relay, after the openers left) have it probe random ports of our IP.
      try {
        const { done: won } = await this.d.paths.birthdayOpen(address, [peer.address], this.status.openerTtl, BIRTHDAY_PORTS, this.d.host, this.o.punchTimeoutMs)
        await this.ask(address, ConnectOp.SPRAY, mine).catch(() => {})
        return done(await won ? 'direct' : 'relayed')
      } catch {
        return done('relayed') // busy: the relay carries on
      }
    }
    const direct = await this.d.paths.probe(address, peer.address, this.o.punchTimeoutMs)
    return done(direct ? 'direct' : 'relayed')
  }
}

/**
 * Whether `a` is on a private or link-local range (RFC 1918, 169.254/16, IPv6 unique local
 * fc00::/7): the only addresses a peer may have us probe as its LAN addresses.
 */
export function isLanAddress(a: Address): boolean {
  let host: string, port: number
  try { ({ host, port } = parseAddress(a)) } catch { return false }
  if (port === 0) return false
  if (host.includes(':')) return /^f[cd][0-9a-f]{2}:/i.test(host)
  const [x, y] = host.split('.').map(Number)
  return x === 10 || (x === 172 && y >= 16 && y <= 31) || (x === 192 && y === 168) || (x === 169 && y === 254)
}

/**
 * Our LAN addresses at `bound`'s port: `bound` itself, or when bound to the unspecified address,
 * the interfaces' (`interfaceHosts`, e.g. from os.networkInterfaces(), asked only then); LAN ranges only, at most
 * MAX_LOCAL_ADDRESSES.
 */
export function localAddresses(bound: Address, interfaceHosts: () => string[]): Address[] {
  const { host, port } = parseAddress(bound)
  const hosts = host === '0.0.0.0' ? interfaceHosts().filter((h) => !h.includes(':')) : host === '::' ? interfaceHosts() : [host]
  return [...new Set(hosts.map((h) => formatAddress(h, port)))].filter(isLanAddress).slice(0, MAX_LOCAL_ADDRESSES)
}

function checkAddress(a: Address): void {
  parseAddress(a) // throws ERR_BAD_ADDRESS, answered as BAD_REQUEST
}
