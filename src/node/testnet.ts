// Many nodes in one process, joined into one network: for `weft devnet`, tests and benchmarks.
// On real UDP (loopback) by default, or inside a MemoryWorld for deterministic runs.
import { createHash } from 'node:crypto'
import { identityFromSeed } from '../identity/keys.js'
import { compareDistance, type NodeId } from '../identity/node-id.js'
import type { MemoryWorld } from '../runtime/memory.js'
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
  oracle(target: NodeId, k: number, among: Node[] = this.nodes.filter((n) => n.running_)): NodeId[] {
    return among.map((n) => n.id).sort((a, b) => compareDistance(target, a, b)).slice(0, k)
  }

  async close(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()))
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
        await node.start({}).catch((err) => { throw err })
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
