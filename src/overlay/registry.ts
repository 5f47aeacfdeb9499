// Topologies by name: adding one is a folder and a line here.
import { WeftError } from '../errors.js'
import { Kademlia, type KademliaOptions } from './kademlia/kademlia.js'
import type { Topology, TopologyContext } from './topology.js'

export type TopologyOptions = Partial<KademliaOptions>

const topologies = {
  kademlia: (ctx: TopologyContext, o: TopologyOptions) => new Kademlia(ctx, o),
} satisfies Record<string, (ctx: TopologyContext, o: TopologyOptions) => Topology>

export type TopologyName = keyof typeof topologies
export const topologyNames = Object.keys(topologies) as TopologyName[]

export function createTopology(name: string, ctx: TopologyContext, options: TopologyOptions = {}): Topology {
  const make = (topologies as Record<string, (ctx: TopologyContext, o: TopologyOptions) => Topology>)[name]
  if (!make) throw new WeftError('ERR_BAD_ARGUMENT', `unknown topology ${JSON.stringify(name)} (known: ${topologyNames.join(', ')})`)
  return make(ctx, options)
}
