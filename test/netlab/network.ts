// A whole Weft network in the NAT lab: 50 nodes, each in its own namespace, spread behind every
// kind of NAT (some sharing one NAT), with a few open hosts as bootstrap peers and relays. Every
// node then looks up random ids, stores a value and reads another node's value, and connects to
// another node at the address that node publishes (its relayed address when it has one). Shared
// by test/netlab-network.test.ts (which asserts 100 %) and `npm run netlab` (which reports it).
import { idFromHex, compareDistance, idToHex } from '../../src/identity/node-id.js'
import type { NatStatus } from '../../src/node/connectivity.js'
import { createRng } from '../../bench/lib/stats.js'
import type { HostSpec, NatLab } from './lab.js'
import { WeftPeer } from './weft-client.js'

/** 6 open, 16 behind cone NATs (4 of them sharing a NAT with another), 12 behind symmetric NATs (2 sharing), 8 firewalled, 8 behind a double NAT. */
export function networkHosts(): HostSpec[] {
  const hosts: HostSpec[] = []
  const add = (prefix: string, nat: HostSpec['nat'], n: number, behind: number): void => {
    for (let i = 1; i <= n; i++) hosts.push({ name: `${prefix}${i}`, nat })
    for (let i = 1; i <= behind; i++) hosts.push({ name: `${prefix}${n + i}`, nat, behind: `${prefix}${i}` })
  }
  add('o', 'open', 6, 0)
  add('c', 'cone', 12, 4)
  add('s', 'symmetric', 10, 2)
  add('f', 'firewall', 8, 0)
  add('d', 'double', 8, 0)
  return hosts
}

export interface NetworkOptions {
  seed: number
  /** Lookups per node, each for a random id. */
  lookupsPerNode: number
  /** Nodes started at once (50 Node.js processes on a small machine: start them in batches). */
  batch?: number
  log?: (line: string) => void
}

export interface Outcome { ok: boolean; ms: number; error?: string }

export interface NetworkResult {
  seed: number
  nodes: number
  /** Nodes that serve the DHT (publicly reachable): lookups are judged against them. */
  servers: number
  kinds: Record<string, number>
  startMs: number
  lookups: Outcome[]
  /** Lookups that returned every server, in order. */
  exactLookups: number
  puts: Outcome[]
  gets: Outcome[]
  connects: (Outcome & { path?: string; from: string; to: string })[]
}

interface Lookup { closest: { id: string }[]; failed: unknown; hops: number }
interface Connected { path: string; ms: number; id: string }

/** Starts a node in every lab host (the open ones first, as each other's bootstrap), runs the trial, stops them all. */
export async function runNetwork(lab: NatLab, hosts: HostSpec[], o: NetworkOptions): Promise<NetworkResult> {
  const log = o.log ?? (() => {})
  const rng = createRng(o.seed)
  const peers: WeftPeer[] = []
  const t0 = performance.now()
  try {
    const boot: string[] = []
    for (const h of hosts.filter((x) => x.nat === 'open')) {
      const p = await WeftPeer.start(lab, h.name, { bootstrap: [...boot].slice(-3) })
      peers.push(p)
      boot.push(p.address)
    }
    const nated = hosts.filter((x) => x.nat !== 'open')
    const batch = o.batch ?? 10
    for (let i = 0; i < nated.length; i += batch) {
      const started = await Promise.all(nated.slice(i, i + batch).map((h) => WeftPeer.start(lab, h.name, { bootstrap: boot, nat: true }, 60_000)))
      peers.push(...started)
      log(`started ${peers.length}/${hosts.length} nodes`)
    }
    const startMs = performance.now() - t0

    // The DHT's servers are the open hosts (started without a NAT check) and the nodes whose check
    // found them publicly reachable; private ones are clients (they stay out of routing tables), so
    // a lookup's answer is judged against the servers only.
    const natOf = (p: WeftPeer): NatStatus => p.nat as unknown as NatStatus
    const open = new Set(hosts.filter((h) => h.nat === 'open').map((h) => h.name))
    const servers = peers.filter((p) => open.has(p.host) || natOf(p).reachable === true)
    if (servers.length < 3) throw new Error(`only ${servers.length} servers: too few to judge lookups`)
    const kinds: Record<string, number> = {}
    for (const p of peers) kinds[natOf(p).type] = (kinds[natOf(p).type] ?? 0) + 1

    const timed = async <T>(f: () => Promise<T>): Promise<{ value?: T; outcome: Outcome }> => {
      const s = performance.now()
      try {
        const value = await f()
        return { value, outcome: { ok: true, ms: performance.now() - s } }
      } catch (err) {
        return { outcome: { ok: false, ms: performance.now() - s, error: (err as Error).message } }
      }
    }

    // Lookups: ten nodes at a time (50 Node.js processes share two cores here: all at once, a
    // busy server answers past the lookup's slow-node threshold), each doing its lookups in turn.
    let exact = 0
    const targets = peers.map(() => Array.from({ length: o.lookupsPerNode }, () => idToHex(rng.bytes(32))))
    const lookups = (await inWaves(peers, WAVE, async (p, i) => {
      const out: Outcome[] = []
      for (const target of targets[i]) {
        const r = await timed(() => p.must<Lookup>('lookup', { target }, 30_000))
        if (r.outcome.ok) {
          const want = servers.map((s) => s.id).sort((a, b) => compareDistance(idFromHex(target), idFromHex(a), idFromHex(b)))
          // A node's own lookup may list itself; it is not a server unless it is one.
          const got = r.value!.closest.map((c) => c.id).filter((id) => id !== p.id || servers.includes(p)).slice(0, want.length)
          // Success: the owner of the target (the nearest server) comes first and the rest are
          // servers in distance order. A server that answers too slowly under load may be left
          // out (the lookup's rule for slow nodes), so "exact" (all of them) is counted apart.
          const rank = got.map((id) => want.indexOf(id))
          if (got[0] !== want[0] || rank.some((x, j) => x < 0 || (j > 0 && x <= rank[j - 1]))) {
            const name = (id: string): string => peers.find((q) => q.id === id)?.host ?? id.slice(0, 8)
            r.outcome.ok = false
            r.outcome.error = `${p.host}: lookup ${target.slice(0, 8)} returned ${got.map(name).join(' ')}, want ${want.map(name).join(' ')} (hops ${r.value!.hops}, failed ${JSON.stringify(r.value!.failed)})`
          } else if (got.length === want.length) exact++
        }
        out.push(r.outcome)
      }
      return out
    })).flat()
    log(`lookups: ${lookups.filter((x) => x.ok).length}/${lookups.length} found the owner, ${exact} every server`)

    // Puts: every node stores a value of its own; then every node reads the value of another.
    const values = peers.map((p, i) => `seed ${o.seed}: value ${i} from ${p.host}`)
    const putResults = await inWaves(peers, WAVE, (p, i) => timed(() => p.must<{ key: string; stored: number }>('put', { value: values[i] }, 30_000)))
    const puts = putResults.map((r, i) => {
      if (r.outcome.ok && !(r.value!.stored > 0)) return { ...r.outcome, ok: false, error: `${peers[i].host}: stored on no node` }
      return r.outcome
    })
    const readers = derangement(peers.length, rng)
    const gets = await inWaves(peers, WAVE, async (_p, i) => {
      const key = putResults[i].value?.key
      if (!key) return { ok: false, ms: 0, error: `${peers[i].host}'s put failed, nothing to get` }
      const reader = peers[readers[i]]
      const r = await timed(() => reader.must<string>('get', { key }, 30_000))
      if (r.outcome.ok && r.value !== values[i]) return { ...r.outcome, ok: false, error: `${reader.host} read ${JSON.stringify(r.value)} for ${peers[i].host}'s value` }
      return r.outcome
    })
    log(`puts: ${puts.filter((x) => x.ok).length}/${puts.length}, gets: ${gets.filter((x) => x.ok).length}/${gets.length}`)

    // Connects: every node to another one, at the address that node publishes.
    const targetsOf = derangement(peers.length, rng)
    const connects = await inWaves(peers, WAVE, async (p, i) => {
      const to = peers[targetsOf[i]]
      const address = String(natOf(to).relayedAddress ?? to.address)
      const r = await timed(() => p.must<Connected>('connect', { address }, 30_000))
      const base = { from: p.host, to: to.host }
      if (!r.outcome.ok) return { ...r.outcome, ...base }
      if (r.value!.id !== to.id) return { ...r.outcome, ...base, ok: false, error: `${p.host} -> ${to.host}: reached ${r.value!.id.slice(0, 8)}, not ${to.id.slice(0, 8)}` }
      return { ...r.outcome, ...base, path: r.value!.path }
    })
    log(`connects: ${connects.filter((x) => x.ok).length}/${connects.length}`)

    return { seed: o.seed, nodes: peers.length, servers: servers.length, kinds, startMs, lookups, exactLookups: exact, puts, gets, connects }
  } finally {
    await Promise.all(peers.map((p) => p.stop().catch(() => {})))
  }
}

/** Nodes working at once in each phase. */
const WAVE = 10

/** f over every item, at most `width` at a time; results in item order. */
async function inWaves<T, R>(items: T[], width: number, f: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      out[i] = await f(items[i], i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker))
  return out
}

/** A seeded permutation with no fixed point: reader i != writer i. */
function derangement(n: number, rng: ReturnType<typeof createRng>): number[] {
  const order = Array.from({ length: n }, (_, i) => i)
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1)
    ;[order[i], order[j]] = [order[j], order[i]]
  }
  return order.map((_, i) => order[(order.indexOf(i) + 1) % n])
}
