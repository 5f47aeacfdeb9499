// One simulated network: many nodes running the real rpc and topology code on a MemoryWorld,
// built by real joins or by an oracle fill, with churn, loss, NAT and adversaries, then measured
// by lookups judged against an oracle that knows every live node.
import { WeftError } from '../errors.js'
import { heapArena, SlabArena } from '../overlay/arena.js'
import { ContactPool } from '../overlay/contact-pool.js'
import type { Metric } from '../overlay/metric.js'
import { createTopology, topologyMetric, type TopologyOptions } from '../overlay/registry.js'
import type { LookupOptions, TableEntry, Topology } from '../overlay/topology.js'
import { MAX_DISJOINT_PATHS } from '../overlay/lookup.js'
import { MemoryWorld } from '../runtime/memory.js'
import { SeededRandom } from '../runtime/prng.js'
import { expectedPongBytes, Rpc } from '../rpc/rpc.js'
import { PacketTransport } from '../transport/transport.js'
import { setAddressCacheSize } from '../wire/address.js'
import { MAX_PACKET, MessageType, type FindNode } from '../wire/messages.js'
import { linkModel } from './latency.js'
import { Oracle } from './oracle.js'
import type { Distribution, SimResult } from './report.js'
import { theoreticalHops } from './theory.js'
import { measureLocation, type LocationHost } from './location.js'
import { createHash } from 'node:crypto'
import { identityFromSeed, type Identity } from '../identity/keys.js'
import { Dht } from '../services/dht/dht.js'
import { RecordStore } from '../services/dht/store.js'

export type AdversaryMode = 'drop' | 'misroute' | 'collude'
export type Build = 'joins' | 'oracle'

export interface SimOptions {
  topology: string
  nodes: number
  lookups: number
  seed: string
  latency: string
  loss: number
  /** Median session length in virtual ms; null: no churn. */
  churnMedianMs: number | null
  churnDistribution: 'exponential' | 'weibull'
  /** Share of nodes that misbehave, and how. */
  adversaries: number
  adversaryMode: AdversaryMode
  /** Share of nodes behind a NAT that accepts only replies (they join as read-only clients). */
  nat: number
  build: Build
  /** Virtual ms of protocol upkeep (timers, refreshes, churn) between the build and the lookups. */
  warmupMs: number
  /** Share of nodes that crash at once right after the build, before the warm-up (a massive failure). */
  failAtOnce: number
  /** Lookups in flight at once. */
  concurrency: number
  /** Nodes joining at once in a build by joins. */
  joinConcurrency: number
  k: number
  alpha: number
  /** Kademlia: S/Kademlia's disjoint lookup paths (the topology's own default when absent). */
  disjoint?: number
  /** Bucket refresh interval (the topology's own default when absent). */
  refreshMs?: number
  /** Pastry and Tapestry: bits per digit (the topology's own default when absent). */
  b?: number
  /** Object location: objects published (0: none), each by this many servers, then `lookups` queries. Tapestry by its pointers, others by DHT provider records. */
  objects: number
  servers: number
  /** Virtual ms between publishing the objects and the queries. */
  holdMs: number
  onProgress?: (phase: string, done: number, total: number, events: number) => void
}

export const defaultSimOptions: SimOptions = {
  topology: 'kademlia', nodes: 1000, lookups: 1000, seed: '1', latency: 'geo', loss: 0,
  churnMedianMs: null, churnDistribution: 'exponential', adversaries: 0, adversaryMode: 'drop', nat: 0,
  build: 'joins', warmupMs: 0, failAtOnce: 0, concurrency: 32, joinConcurrency: 16, k: 20, alpha: 3,
  objects: 0, servers: 3, holdMs: 0,
}

/** The most nodes one simulation may hold: 16 M addresses fit in 10.0.0.0/8. */
export const MAX_SIM_NODES = 16_000_000
const PORT = 4000
/** Simulated nodes keep per-address rpc state (RTT, tokens, rate) for 64 peers, not 512: a million of them must fit in memory. */
const SIM_RPC = { addressTableSize: 64 }
/** Weibull shape for session lengths: below 1, many short sessions and a long tail (as measured in deployed P2P systems). */
const WEIBULL_SHAPE = 0.5

export class Simulation {
  readonly options: SimOptions
  readonly world: MemoryWorld
  readonly pool = new ContactPool(1024)
  /** Node ids, and the tables of an oracle build (filled once, exactly sized), come from shared slabs. */
  readonly arena = new SlabArena()
  readonly oracle = new Oracle(this.pool)
  private readonly random: SeededRandom
  private readonly links
  private topologies: (Topology | null)[] = []
  private rpcs: (Rpc | null)[] = []
  /** Per node, its DHT: only when objects are located through provider records. */
  private dhts: (Dht | null)[] = []
  private readonly withDht: boolean
  private handles: number[] = []
  /** Per pool handle: the node it is + 1 (0: not a node), and whether it is an honest server. */
  private nodeOfHandle: Int32Array = new Int32Array(1024)
  private honest: Uint8Array = new Uint8Array(1024)
  private adversary: Uint8Array = new Uint8Array(1024)
  /** The adversaries in id order, for colluders to name the ones nearest a target (they know each other). */
  private readonly adversaries = new Oracle(this.pool)
  private churned = 0
  /** One options object for every node, so topologies can share what they derive from it. */
  private readonly topologyOptions: TopologyOptions
  /** The topology's order of responsibility: what the oracle ranks by. */
  private readonly metric: Metric

  constructor(options: Partial<SimOptions> = {}) {
    const o = this.options = { ...defaultSimOptions, ...options }
    if (!Number.isInteger(o.nodes) || o.nodes < 2 || o.nodes > MAX_SIM_NODES) throw new WeftError('ERR_BAD_ARGUMENT', `--nodes must be a whole number from 2 to ${MAX_SIM_NODES}, got ${o.nodes}`)
    if (!Number.isInteger(o.lookups) || o.lookups < 1) throw new WeftError('ERR_BAD_ARGUMENT', `--lookups must be a whole number of at least 1, got ${o.lookups}`)
    for (const [name, v] of [['adversaries', o.adversaries], ['nat', o.nat], ['fail', o.failAtOnce]] as const) {
      if (!(v >= 0 && v < 1)) throw new WeftError('ERR_BAD_ARGUMENT', `--${name} must be a fraction at least 0 and below 1, got ${v}`)
    }
    if (o.churnMedianMs !== null && !(o.churnMedianMs >= 1000)) throw new WeftError('ERR_BAD_ARGUMENT', `--churn must be a median session of at least 1 s, got ${o.churnMedianMs} ms`)
    this.links = linkModel(o.latency, o.loss)
    this.world = new MemoryWorld(o.seed, this.links)
    setAddressCacheSize(2 * o.nodes) // every address decoded again and again: keep their texts (a few MB per 100k)
    this.random = new SeededRandom(`${o.seed}:sim`)
    if (o.disjoint !== undefined && !(Number.isInteger(o.disjoint) && o.disjoint >= 1 && o.disjoint <= MAX_DISJOINT_PATHS)) throw new WeftError('ERR_BAD_ARGUMENT', `--disjoint must be a whole number from 1 to ${MAX_DISJOINT_PATHS}, got ${o.disjoint}`)
    this.topologyOptions = { k: o.k, alpha: o.alpha, ...(o.disjoint ? { disjoint: o.disjoint } : {}), ...(o.refreshMs ? { refreshIntervalMs: o.refreshMs } : {}), ...(o.b ? { b: o.b } : {}) }
    this.metric = topologyMetric(o.topology, this.topologyOptions)
    if (!Number.isInteger(o.objects) || o.objects < 0) throw new WeftError('ERR_BAD_ARGUMENT', `--objects must be a whole number of at least 0, got ${o.objects}`)
    if (!Number.isInteger(o.servers) || o.servers < 1 || o.servers > 64) throw new WeftError('ERR_BAD_ARGUMENT', `--servers must be a whole number from 1 to 64, got ${o.servers}`)
    this.withDht = o.objects > 0 && o.topology !== 'tapestry'
    this.oracle.rtt = (a, b) => this.rttBetween(this.nodeOfHandle[a] - 1, this.nodeOfHandle[b] - 1)
  }

  private progress(phase: string, done: number, total: number): void {
    this.options.onProgress?.(phase, done, total, this.world.stats.events)
  }

  /** Creates node i (not yet joined) and returns its index. */
  private spawn(honest = false): number {
    const o = this.options
    const i = this.topologies.length
    const nat = !honest && this.random.float() < o.nat
    const bad = !honest && !nat && this.random.float() < o.adversaries
    const host = `${10 + Math.floor(i / 16_777_216)}.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`
    const ep = this.world.bindNow(host, PORT, nat)
    this.links.place(ep.index, this.random)
    const runtime = this.world.runtime(i)
    const transport = new PacketTransport(ep, MAX_PACKET)
    const id = this.arena.bytes(32)
    id.set(this.random.bytes(32))
    const rpc = new Rpc(runtime, transport, id, SIM_RPC)
    rpc.readOnly = nat
    const topology = createTopology(o.topology, { runtime, rpc, id, address: () => transport.address, contacts: this.pool, arena: o.build === 'oracle' ? this.arena : heapArena }, this.topologyOptions)
    const h = this.pool.acquire(id, ep.address) // the simulation's own reference: the oracle keeps every id
    this.topologies.push(topology)
    this.rpcs.push(rpc)
    if (this.withDht) {
      const dht = new Dht({ runtime, rpc, topology, identity: lazyIdentity(id, `${o.seed}:identity:${i}`), store: new RecordStore({ now: runtime.wallClock() }), address: () => transport.address })
      topology.onJoin = (c) => dht.welcome(c)
      this.dhts.push(dht)
    }
    this.handles.push(h)
    const size = Math.max(h, i) + 1
    if (size > this.honest.length) {
      this.nodeOfHandle = grown(this.nodeOfHandle, size)
      this.honest = grown(this.honest, size)
      this.adversary = grown(this.adversary, size)
    }
    this.nodeOfHandle[h] = i + 1
    if (bad) { this.adversary[i] = 1; this.adversaries.add(h) } else if (!nat) this.honest[h] = 1
    return i
  }

  /** Makes a node misbehave once it has joined (it joins like anyone else). */
  private corrupt(i: number): void {
    const rpc = this.rpcs[i], topology = this.topologies[i], k = this.options.k
    if (!rpc || !topology) return // it left before its join ended
    const mode = this.options.adversaryMode
    if (mode === 'drop') { rpc.onRequest = () => null; return }
    rpc.handle(MessageType.FIND_NODE, (_from, req) => {
      const { target } = req as FindNode
      if (mode === 'misroute') {
        // Real contacts, but the farthest it knows: a lookup that trusts it goes nowhere.
        const all = topology.closest(target, Math.max(k, topology.size()))
        return { type: MessageType.NODES, contacts: all.slice(-k).reverse() }
      }
      // Colluders name only each other (live ones), nearest to the target first: S/Kademlia's
      // adversary, trying to eclipse the target by pulling every lookup into its own nodes.
      const mates = this.adversaries.closestBy(this.metric, target, k)
      return { type: MessageType.NODES, contacts: mates.map((h) => ({ id: this.pool.id(h), address: this.pool.address(h) })) }
    })
  }

  /** The typical RTT between nodes i and j: node i is endpoint i (spawn binds one each, in order). */
  rttBetween(i: number, j: number): number {
    return this.links.rtt(i, j)
  }

  /** Reachable nodes (not behind NAT) are the ones the oracle knows: only they belong in tables. */
  private isServer(i: number): boolean { return !this.rpcs[i]?.readOnly }

  private bootstrapFor(i: number): string[] {
    // Any honest node that is up can introduce a newcomer.
    for (let tries = 0; tries < 1000; tries++) {
      const h = this.oracle.randomLive(this.random)
      if (this.nodeOfHandle[h] !== i + 1 && this.honest[h]) return [this.pool.address(h)]
    }
    throw new WeftError('ERR_BOOTSTRAP_FAILED', 'no live honest node to join through')
  }

  /** Adds node i to the truth, if others can reach it. */
  private known(i: number): void {
    if (this.isServer(i)) this.oracle.add(this.handles[i])
  }

  /** Builds the network: the first node alone, the others by joining through a random live one. */
  /**
   * Builds the network by joins: one node alone, then newcomers through random live nodes. The
   * network grows by up to a tenth of itself at a time (at least joinConcurrency joins in
   * flight), so a large build takes minutes of virtual time rather than days, and the nodes
   * already in do not spend it all refreshing their buckets.
   */
  async buildByJoins(): Promise<void> {
    const o = this.options
    this.known(this.spawn(true))
    let joined = 1, active = 0, next = 1
    const done = new Promise<void>((resolve) => {
      const launch = (): void => {
        while (next < o.nodes && active < Math.max(o.joinConcurrency, Math.floor(joined / 10))) {
          const i = this.spawn()
          next++
          active++
          void this.topologies[i]!.join(this.bootstrapFor(i)).catch(() => {}).then(() => { // a failed join shows in the lookups
            if (!this.topologies[i]) return
            this.known(i)
            if (this.adversary[i]) this.corrupt(i)
            active--
            if (++joined % 100 === 0 || joined === o.nodes) this.progress('joining', joined, o.nodes)
            if (joined === o.nodes) resolve()
            else launch()
          })
        }
      }
      if (o.nodes === 1) resolve()
      else launch()
    })
    await this.world.settle(done, Infinity)
  }

  /** Builds the network by filling every table from the true node set (what joins converge to without churn). */
  buildByOracle(): void {
    const o = this.options
    for (let i = 0; i < o.nodes; i++) {
      this.spawn(i === 0)
      if ((i + 1) % 10_000 === 0 || i + 1 === o.nodes) this.progress('creating', i + 1, o.nodes)
    }
    this.oracle.addAll(this.handles.filter((_, i) => this.isServer(i)))
    const fillRandom = new SeededRandom(`${o.seed}:fill`)
    for (let i = 0; i < o.nodes; i++) {
      const t = this.topologies[i]!
      if (!t.fill) throw new WeftError('ERR_BAD_ARGUMENT', `topology ${o.topology} has no oracle fill; use --build joins`)
      t.fill(this.oracle, fillRandom, this.world.now())
      if (this.adversary[i]) this.corrupt(i)
      if ((i + 1) % 10_000 === 0 || i + 1 === o.nodes) this.progress('filling tables', i + 1, o.nodes)
    }
  }

  /** Schedules node i's failure after a session length drawn from the churn distribution; a newcomer replaces it. */
  private scheduleDeparture(i: number): void {
    const o = this.options
    if (o.churnMedianMs === null) return
    const u = 1 - this.random.float()
    const session = o.churnDistribution === 'weibull'
      ? (o.churnMedianMs / Math.LN2 ** (1 / WEIBULL_SHAPE)) * (-Math.log(u)) ** (1 / WEIBULL_SHAPE)
      : (o.churnMedianMs / Math.LN2) * -Math.log(u)
    this.world.schedule(session, () => {
      this.fail(i)
      const j = this.spawn()
      void this.topologies[j]!.join(this.bootstrapFor(j)).catch(() => {}).then(() => {
        if (!this.topologies[j]) return // it left before its join ended
        this.known(j)
        if (this.adversary[j]) this.corrupt(j)
        this.scheduleDeparture(j)
      })
    })
  }

  /** A massive failure: this share of the live nodes, drawn by the seed, crash at the same instant. */
  private failMany(share: number): void {
    const live: number[] = []
    for (let i = 0; i < this.topologies.length; i++) if (this.topologies[i]) live.push(i)
    for (let left = Math.round(share * live.length), n = live.length; left > 0; left--, n--) {
      const at = this.random.u32() % n
      this.fail(live[at])
      live[at] = live[n - 1]
    }
  }

  /** Node i crashes: no goodbye; its socket closes and its state is dropped. */
  private fail(i: number): void {
    this.churned++
    if (this.isServer(i)) this.oracle.setAlive(this.handles[i], false)
    if (this.adversary[i]) this.adversaries.setAlive(this.handles[i], false)
    this.topologies[i]?.close()
    this.dhts[i]?.close()
    this.rpcs[i]?.close()
    if (this.dhts[i]) this.dhts[i] = null
    this.topologies[i] = null
    this.rpcs[i] = null
  }

  async build(): Promise<void> {
    if (this.options.build === 'oracle') this.buildByOracle()
    else await this.buildByJoins()
    for (let i = 0; i < this.topologies.length; i++) this.scheduleDeparture(i)
    if (this.options.failAtOnce > 0) this.failMany(this.options.failAtOnce)
    if (this.options.warmupMs > 0) await this.advance(this.options.warmupMs, 'maintaining')
  }

  /** Runs the protocol for `ms` of virtual time, reporting progress. */
  private async advance(ms: number, phase: string): Promise<void> {
    const end = this.world.now() + ms
    const step = Math.max(1000, ms / 100)
    for (let t = this.world.now(); t < end;) {
      t = Math.min(end, t + step)
      await this.world.run(t)
      this.progress(phase, Math.round(ms - (end - t)), Math.round(ms))
    }
  }

  /**
   * Runs the lookups and judges each against the oracle. `lookup` overrides the topology's
   * lookup options (e.g. disjoint paths), so one built network can be measured several ways:
   * the same seed asks the same lookups from the same nodes each time.
   */
  async measure(lookup?: LookupOptions): Promise<SimResult> {
    const o = this.options
    const lookRandom = new SeededRandom(`${o.seed}:lookups`)
    const hops: number[] = [], latency: number[] = []
    let succeeded = 0, recallSum = 0, messages = 0, done = 0
    const routeHops: number[] = []
    let routed = 0
    const bytesBefore = this.world.stats.bytes
    const startedAt = this.world.now()
    let issued = 0
    const worker = async (): Promise<void> => {
      while (issued < o.lookups) {
        issued++
        let from = -1 // any live node asks, clients behind NAT too
        while (from < 0) { const j = lookRandom.u32() % this.topologies.length; if (this.topologies[j] && !this.adversary[j]) from = j }
        const target = lookRandom.bytes(32)
        let r
        try { r = await (lookup ? this.topologies[from]!.lookup(target, lookup) : this.topologies[from]!.lookup(target)) } catch { r = null }
        const truth = this.honestClosest(target, o.k)
        // Routability too: follow nextHop from table to table (no messages), as recursive routing would.
        const route = this.route(from, target)
        if (route && truth.length > 0 && route.end === this.nodeOfHandle[truth[0]] - 1) { routed++; routeHops.push(route.hops) }
        if (r) {
          const got = new Set(r.closest.map((c) => c.address)) // one node per address here
          const hit = truth.filter((h) => got.has(this.pool.address(h))).length
          if (truth.length > 0 && got.has(this.pool.address(truth[0]))) succeeded++
          recallSum += truth.length ? hit / truth.length : 1
          hops.push(r.hops)
          latency.push(r.durationMs)
          messages += r.messages
        }
        if (++done % 100 === 0 || done === o.lookups) this.progress('lookups', done, o.lookups)
      }
    }
    await this.world.settle(Promise.all(Array.from({ length: Math.min(o.concurrency, o.lookups) }, worker)), Infinity)
    const tables: number[] = []
    for (const t of this.topologies) if (t) tables.push(t.size())
    const th = theoreticalHops(o.topology, this.oracle.alive, { k: o.k, b: o.b })
    const location = o.objects > 0
      ? await measureLocation(this.locationHost(), { objects: o.objects, servers: o.servers, queries: o.lookups, concurrency: o.concurrency, seed: o.seed, holdMs: o.holdMs }, { distribution, percentiles, round })
      : null
    return {
      topology: o.topology, nodes: o.nodes, seed: o.seed, build: o.build, k: o.k, alpha: o.alpha, refreshMs: o.refreshMs ?? null, b: o.b ?? null, warmupMs: o.warmupMs, failAtOnce: o.failAtOnce,
      latencyModel: this.links.name, loss: o.loss, churnMedianMs: o.churnMedianMs, adversaries: o.adversaries,
      lookups: o.lookups, succeeded, successRate: round(succeeded / o.lookups, 6), recall: round(recallSum / o.lookups, 6),
      hops: { ...distribution(hops), histogram: histogram(hops) },
      routing: { successRate: round(routed / o.lookups, 6), hops: distribution(routeHops) },
      latencyMs: { ...distribution(latency), cdf: percentiles(latency) },
      messagesPerLookup: round(messages / Math.max(1, hops.length), 3),
      bytesPerLookup: round((this.world.stats.bytes - bytesBefore) / o.lookups, 1),
      tableSize: distribution(tables),
      theoreticalHops: round(th.hops, 3), theory: th.model,
      virtualTimeMs: round(this.world.now() - startedAt, 3),
      events: this.world.stats.events, datagrams: this.world.stats.datagrams,
      location,
    }
  }

  /** What the object-location experiment sees of this network. */
  private locationHost(): LocationHost {
    return {
      topologyName: this.options.topology,
      randomNode: (random, server) => {
        for (;;) {
          const j = random.u32() % this.topologies.length
          if (this.topologies[j] && !this.adversary[j] && (!server || this.isServer(j))) return j
        }
      },
      topology: (i) => this.topologies[i] ?? null,
      dht: (i) => this.dhts[i] ?? null,
      rttBetween: (i, j) => this.rttBetween(i, j),
      nodeIndex: nodeIndexOf,
      ping: (i, address) => new Promise((resolve) => {
        const rpc = this.rpcs[i]
        if (!rpc) { resolve(false); return }
        rpc.request(address, { type: MessageType.PING }, expectedPongBytes(address), (err) => resolve(!err))
      }),
      isLive: (i) => this.topologies[i] !== null && this.topologies[i] !== undefined,
      settle: (p) => this.world.settle(p, Infinity),
      advance: (ms) => this.advance(ms, 'objects held'),
      progress: (phase, done, total) => this.progress(phase, done, total),
      now: () => this.world.now(),
    }
  }

  /**
   * Follows nextHop from node `from` toward target through the live nodes' own tables: where the
   * route ends and in how many steps, or null if it reaches a dead or unknown node or loops.
   */
  private route(from: number, target: Uint8Array): { end: number; hops: number } | null {
    let at = from
    for (let hops = 0; hops <= 64; hops++) {
      const next = this.topologies[at]?.nextHop(target)
      if (!next) return { end: at, hops }
      const i = nodeIndexOf(next.address)
      if (i < 0 || i >= this.topologies.length || !this.topologies[i] || i === at) return null
      at = i
    }
    return null
  }

  /** The n live, honest, reachable nodes nearest target: what a lookup should find. */
  private honestClosest(target: Uint8Array, n: number): number[] {
    const out: number[] = []
    for (let want = n; out.length < n; want *= 2) {
      out.length = 0
      const all = this.oracle.closestBy(this.metric, target, want)
      for (const h of all) if (this.honest[h] && out.length < n) out.push(h)
      if (all.length < want) break
    }
    return out
  }

  get departures(): number { return this.churned }

  /** Node i's topology and rpc (null once it has left), for tests and tools that drive one node by hand. */
  node(i: number): { topology: Topology; rpc: Rpc } | null {
    const topology = this.topologies[i], rpc = this.rpcs[i]
    return topology && rpc ? { topology, rpc } : null
  }

  /** Whether node i was made an adversary. */
  isAdversary(i: number): boolean { return this.adversary[i] === 1 }

  /** Addresses of the live nodes behind NAT. */
  nattedAddresses(): Set<string> {
    const out = new Set<string>()
    this.rpcs.forEach((rpc, i) => { if (rpc?.readOnly) out.add(this.pool.address(this.handles[i])) })
    return out
  }

  /** Nodes ever made, live or not: node indices run 0..nodeCount − 1. */
  get nodeCount(): number { return this.topologies.length }

  /** Node i's contacts as node indices, in table order (null once it has left): what a broadcast over the tables can reach (sim/broadcast-cost.ts). */
  contactIndices(i: number): number[] | null {
    const t = this.topologies[i]
    return t ? t.entries().map((e) => nodeIndexOf(e.address)) : null
  }

  /** Every live node's routing table, as people would see it. */
  tables(): TableEntry[][] {
    return this.topologies.filter((t): t is Topology => t !== null).map((t) => t.entries())
  }

  close(): void {
    for (let i = 0; i < this.topologies.length; i++) if (this.topologies[i]) this.fail(i)
  }
}

/** Node i lives at 10.x.y.z:PORT with x.y.z = i in base 256 (see spawn): its index back from its address. */
function nodeIndexOf(address: string): number {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+):/.exec(address)
  return m ? (Number(m[1]) - 10) * 16_777_216 + Number(m[2]) * 65536 + Number(m[3]) * 256 + Number(m[4]) : -1
}

/** An identity whose key is made only when first used: most simulated nodes never sign anything. */
function lazyIdentity(id: Uint8Array, seed: string): Identity {
  let real: Identity | null = null
  const get = (): Identity => (real ??= identityFromSeed(createHash('sha256').update(seed).digest()))
  return { id, get publicKey() { return get().publicKey }, get privateKey() { return get().privateKey } }
}

function grown<T extends Int32Array | Uint8Array>(a: T, n: number): T {
  const b = new (a.constructor as new (n: number) => T)(Math.max(n, a.length * 2))
  b.set(a)
  return b
}


function round(x: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}

function sortedCopy(xs: number[]): number[] { return Float64Array.from(xs).sort() as unknown as number[] }

export function distribution(xs: number[]): Distribution {
  if (xs.length === 0) return { mean: 0, p50: 0, p95: 0, max: 0 }
  const s = sortedCopy(xs)
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]
  let sum = 0
  for (const x of xs) sum += x
  return { mean: round(sum / xs.length, 3), p50: round(at(0.5), 3), p95: round(at(0.95), 3), max: round(s[s.length - 1], 3) }
}

/** Counts per integer value (hops): index i holds how many were i. */
export function histogram(xs: number[]): number[] {
  const h: number[] = []
  for (const x of xs) { while (h.length <= x) h.push(0); h[x]++ }
  return h
}

/** The 0th..100th percentiles (a CDF for plots). */
export function percentiles(xs: number[]): number[] {
  if (xs.length === 0) return []
  const s = sortedCopy(xs)
  return Array.from({ length: 101 }, (_, i) => round(s[Math.min(s.length - 1, Math.floor((i / 100) * (s.length - 1)))], 3))
}
