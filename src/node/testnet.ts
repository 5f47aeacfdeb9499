// Many nodes in one process, joined into one network: for `weft devnet`, tests and benchmarks.
// On real UDP (loopback) by default, or inside a MemoryWorld for deterministic runs.
import { createHash } from 'node:crypto'
import { identityFromSeed } from '../identity/keys.js'
import { idEquals, type NodeId } from '../identity/node-id.js'
import { SeededRandom } from '../runtime/prng.js'
import type { MemoryWorld } from '../runtime/memory.js'
import { topologyMetric } from '../overlay/registry.js'
import { Node, type NodeOptions } from './node.js'

export interface TestnetOptions {
  nodes: number
  /** Seeds the node identities (and, in a world, everything else). */
  seed?: string | number
  host?: string
  /** Nodes joining at once. */
  joinConcurrency?: number
  node?: Partial<NodeOptions>
  /** Run inside this simulated world instead of on UDP. */
  world?: MemoryWorld
  onProgress?: (joined: number, total: number) => void
}

export class Testnet {
  constructor(readonly nodes: Node[], private readonly world?: MemoryWorld) {}

  get bootstrap(): string { return this.nodes[0].address }

  /** Awaits a promise, driving the simulated world when there is one. */
  wait<T>(p: Promise<T>): Promise<T> {
    return this.world ? this.world.settle(p) : p
  }

  /** The true k nearest ids to target among the given (default: running) nodes. */
  oracle(target: NodeId, k: number, among: Node[] = this.nodes.filter((n) => n.isRunning)): NodeId[] {
    const { topology = 'kademlia', topologyOptions, kademlia } = this.nodes[0].options
    const metric = topologyMetric(topology, { ...kademlia, ...topologyOptions })
    return among.map((n) => n.id).sort((a, b) => metric.compare(target, a, b)).slice(0, k)
  }

  async close(): Promise<void> {
    // A graceful leave talks to neighbours: in a world, the world must run for it to finish.
    await this.wait(Promise.all(this.nodes.map((n) => n.stop())))
  }
}

export function seededIdentity(seed: string | number, index: number) {
  return identityFromSeed(createHash('sha256').update(`weft-testnet:${seed}:${index}`).digest())
}

export async function createTestnet(o: TestnetOptions): Promise<Testnet> {
  const world = o.world
  const nodes: Node[] = []
  for (let i = 0; i < o.nodes; i++) {
    nodes.push(new Node({
      host: o.host ?? '127.0.0.1',
      port: 0,
      ...o.node,
      identity: o.seed !== undefined ? seededIdentity(o.seed, i) : undefined,
      ...(world ? { runtime: world.runtime(i), network: world } : {}),
    }))
  }
  const net = new Testnet(nodes, world)
  let joined = 0
  try {
    await net.wait(nodes[0].start())
    o.onProgress?.(++joined, o.nodes)
    const bootstrap = [nodes[0].address]
    let next = 1
    const worker = async (): Promise<void> => {
      while (next < nodes.length) {
        const node = nodes[next++]
        await node.start()
        o.onProgress?.(++joined, o.nodes)
      }
    }
    for (const n of nodes.slice(1)) n.options.bootstrap = bootstrap
    const workers = Array.from({ length: Math.min(o.joinConcurrency ?? 8, nodes.length - 1) }, worker)
    await net.wait(Promise.all(workers))
  } catch (err) {
    await net.close()
    throw err
  }
  return net
}

export interface LookupBatch {
  lookups: number
  /** Lookups that returned exactly the true k nearest running nodes, in order. */
  exact: number
  failed: number
  hops: Record<number, number>
  meanHops: number
  latencyMs: { p50: number; p95: number; p99: number; max: number }
  messagesPerLookup: number
}

/** Runs `count` lookups for random ids from random nodes and checks each against the oracle. */
export async function measureLookups(net: Testnet, count: number, seed: string | number, concurrency = 1, k = 20): Promise<LookupBatch> {
  const rnd = new SeededRandom(`lookups:${seed}`)
  const live = net.nodes.filter((n) => n.isRunning)
  const hops: Record<number, number> = {}
  const latencies: number[] = []
  let exact = 0, failed = 0, messages = 0, next = 0
  const worker = async (): Promise<void> => {
    while (next < count) {
      next++
      const from = live[rnd.u32() % live.length]
      const target = rnd.bytes(32)
      try {
        const r = await from.lookup(target)
        const want = net.oracle(target, k, live)
        if (r.closest.length === want.length && r.closest.every((c, j) => idEquals(c.id, want[j]))) exact++
        hops[r.hops] = (hops[r.hops] ?? 0) + 1
        latencies.push(r.durationMs)
        messages += r.messages
      } catch {
        failed++
      }
    }
  }
  await net.wait(Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker)))
  latencies.sort((a, b) => a - b)
  const q = (p: number): number => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] : NaN)
  const done = latencies.length
  return {
    lookups: count, exact, failed, hops,
    meanHops: done ? Object.entries(hops).reduce((s, [h, n]) => s + Number(h) * n, 0) / done : NaN,
    latencyMs: { p50: q(0.5), p95: q(0.95), p99: q(0.99), max: latencies[done - 1] ?? NaN },
    messagesPerLookup: done ? messages / done : NaN,
  }
}
