// Object location in the simulator: each object is published by a few random servers, then
// random clients ask where one is, and the server they are given is judged by the link model.
//   tapestry     publish / locate: pointers on the route to the object's root (the first met wins)
//   any other    the DHT's provider records: announce / providers, and the client takes the first
//                provider named that answers a ping (it has no measure of which is near)
// Stretch = RTT from the client to the server it was given / RTT to the nearest of the servers:
// 1 is the best any scheme can do.
import type { Topology } from '../overlay/topology.js'
import type { Tapestry } from '../overlay/tapestry/tapestry.js'
import { SeededRandom } from '../runtime/prng.js'
import type { Dht } from '../services/dht/dht.js'
import type { Distribution } from './report.js'

export interface LocationReport {
  /** 'tapestry pointers' or 'dht providers'. */
  via: string
  objects: number
  serversPerObject: number
  queries: number
  /** Publishes (one per server and object) that reached the root / stored on at least one node. */
  publishSuccessRate: number
  /** Queries that were given a live server of the object (of those asking for an object with one). */
  successRate: number
  /** Tapestry: hops walked to the first pointer (null for the DHT, whose calls do not report them). */
  hops: Distribution | null
  /** Virtual ms from asking to knowing a server. */
  latencyMs: Distribution
  /** RTT to the server given / RTT to the nearest server of the object; cdf[i] = the i-th percentile. */
  stretch: Distribution & { cdf: number[] }
  messagesPerQuery: number
  /** Virtual ms between publishing and the queries. */
  holdMs: number
}

/** What the experiment needs of a simulation. */
export interface LocationHost {
  readonly topologyName: string
  /** A random live honest node that others can reach (servers) or any live honest node (clients). */
  randomNode(random: SeededRandom, server: boolean): number
  topology(i: number): Topology | null
  dht(i: number): Dht | null
  rttBetween(i: number, j: number): number
  nodeIndex(address: string): number
  /** Whether node i hears back from the node at this address (a ping from i). */
  ping(i: number, address: string): Promise<boolean>
  isLive(i: number): boolean
  settle<T>(p: Promise<T>): Promise<T>
  /** Progress of a phase, for the terminal. */
  progress(phase: string, done: number, total: number): void
  /** Runs the network (upkeep, churn, republishing) for ms of virtual time. */
  advance(ms: number): Promise<void>
  now(): number
}

export interface LocationOptions {
  objects: number
  servers: number
  queries: number
  concurrency: number
  seed: string
  /** Virtual ms between publishing and the queries (with churn: servers and route nodes come and go meanwhile). */
  holdMs: number
}

/** How often the DHT's servers announce again while objects are held (provider records live an hour). */
const REANNOUNCE_MS = 30 * 60_000

type Stats = { distribution(xs: number[]): Distribution; percentiles(xs: number[]): number[]; round(x: number, d: number): number }

export async function measureLocation(host: LocationHost, o: LocationOptions, stats: Stats): Promise<LocationReport> {
  const random = new SeededRandom(`${o.seed}:location`)
  const tapestry = host.topologyName === 'tapestry'
  const objects: { id: Uint8Array; servers: number[] }[] = []
  for (let n = 0; n < o.objects; n++) {
    const servers: number[] = []
    for (let tries = 0; servers.length < o.servers && tries < 100; tries++) {
      const s = host.randomNode(random, true)
      if (!servers.includes(s)) servers.push(s)
    }
    objects.push({ id: random.bytes(32), servers })
  }

  let published = 0, publishes = 0
  const publishAll = async (count: boolean): Promise<void> => {
    const jobs: (() => Promise<void>)[] = []
    let done = 0
    for (const obj of objects) {
      for (const s of obj.servers) {
        if (!host.isLive(s)) continue
        jobs.push(async () => {
          let ok = false
          try {
            if (tapestry) ok = (await (host.topology(s) as Tapestry).publish(obj.id)).reachedRoot
            else ok = (await host.dht(s)!.announce(obj.id)).stored > 0
          } catch { /* not published */ }
          if (count) { publishes++; if (ok) published++ }
          if (++done % 100 === 0 || done === jobs.length) host.progress(tapestry ? 'publishing' : 'announcing', done, jobs.length)
        })
      }
    }
    await host.settle(pool(jobs, o.concurrency))
  }
  await publishAll(true)
  // Tapestry servers publish again on their own (republishMs). Provider records live an hour and
  // the DHT leaves renewing them to the announcer: its servers announce again every half hour.
  for (let held = 0; held < o.holdMs;) {
    const step = tapestry ? o.holdMs - held : Math.min(REANNOUNCE_MS, o.holdMs - held)
    await host.advance(step)
    held += step
    if (!tapestry && held < o.holdMs) await publishAll(false)
  }

  const hops: number[] = [], latency: number[] = [], stretch: number[] = []
  let found = 0, messages = 0, asked = o.queries, answered = 0
  const queries: (() => Promise<void>)[] = []
  for (let q = 0; q < o.queries; q++) {
    queries.push(async () => {
      // An object whose servers have all left cannot be found: ask for another.
      let obj = objects[random.u32() % objects.length]
      for (let tries = 0; !obj.servers.some((x) => host.isLive(x)) && tries < 1000; tries++) obj = objects[random.u32() % objects.length]
      if (!obj.servers.some((x) => host.isLive(x))) { asked--; return }
      // A client that is itself a server of the object would be at distance 0 from the nearest.
      let client = host.randomNode(random, false)
      while (obj.servers.includes(client)) client = host.randomNode(random, false)
      const started = host.now()
      let given: number = -1
      try {
        if (tapestry) {
          const r = await (host.topology(client) as Tapestry).locate(obj.id)
          given = r.server ? host.nodeIndex(r.server.address) : -1
          hops.push(r.hops)
          messages += r.messages
        } else {
          // As a Tapestry locate does: the first provider named that answers a ping.
          const providers = await host.dht(client)!.providers(obj.id)
          for (const p of providers) {
            if (p.addresses.length > 0 && await host.ping(client, p.addresses[0])) { given = host.nodeIndex(p.addresses[0]); break }
          }
        }
      } catch { given = -1 }
      latency.push(host.now() - started)
      if (++answered % 100 === 0 || answered === o.queries) host.progress('locating', answered, o.queries)
      if (given < 0 || !obj.servers.includes(given) || !host.isLive(given)) return
      found++
      const live = obj.servers.filter((s) => host.isLive(s))
      const nearest = Math.min(...live.map((s) => host.rttBetween(client, s)))
      stretch.push(host.rttBetween(client, given) / nearest)
    })
  }
  await host.settle(pool(queries, o.concurrency))
  return {
    via: tapestry ? 'tapestry pointers' : 'dht providers',
    objects: o.objects, serversPerObject: o.servers, queries: o.queries,
    publishSuccessRate: stats.round(published / Math.max(1, publishes), 6),
    successRate: stats.round(found / Math.max(1, asked), 6),
    hops: tapestry ? stats.distribution(hops) : null, latencyMs: stats.distribution(latency),
    stretch: { ...stats.distribution(stretch), cdf: stats.percentiles(stretch) },
    messagesPerQuery: stats.round(messages / Math.max(1, asked), 3),
    holdMs: o.holdMs,
  }
}

async function pool(jobs: (() => Promise<void>)[], concurrency: number): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => { while (next < jobs.length) await jobs[next++]() }
  await Promise.all(Array.from({ length: Math.min(concurrency, jobs.length) }, worker))
}
