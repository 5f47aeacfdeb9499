// Topologies by name: adding one is a folder and a line here.
import { WeftError } from '../errors.js'
import { Chord, type ChordOptions } from './chord/chord.js'
import { Kademlia, type KademliaOptions } from './kademlia/kademlia.js'
import { numericMetric, successorMetric, surrogateMetric, xorMetric, type Metric } from './metric.js'
import { Pastry, type PastryOptions } from './pastry/pastry.js'
import { defaultTapestryOptions, Tapestry, type TapestryOptions } from './tapestry/tapestry.js'
import type { Topology, TopologyContext } from './topology.js'

/** Options of every topology; each takes the ones it knows. */
export type TopologyOptions = Partial<KademliaOptions & ChordOptions & PastryOptions & TapestryOptions>

interface Entry {
  metric(o: TopologyOptions): Metric
  create(ctx: TopologyContext, o: TopologyOptions): Topology
}

const topologies = {
  kademlia: { metric: () => xorMetric, create: (ctx, o) => new Kademlia(ctx, o) },
  chord: { metric: () => successorMetric, create: (ctx, o) => new Chord(ctx, o) },
  pastry: { metric: () => numericMetric, create: (ctx, o) => new Pastry(ctx, o) },
  tapestry: { metric: (o) => surrogateMetric(o.b ?? defaultTapestryOptions.b), create: (ctx, o) => new Tapestry(ctx, o) },
} satisfies Record<string, Entry>

export type TopologyName = keyof typeof topologies
export const topologyNames = Object.keys(topologies) as TopologyName[]

function entry(name: string): Entry {
  const e = (topologies as Record<string, Entry>)[name]
  if (!e) throw new WeftError('ERR_BAD_ARGUMENT', `unknown topology ${JSON.stringify(name)} (known: ${topologyNames.join(', ')})`)
  return e
}

export function createTopology(name: string, ctx: TopologyContext, options: TopologyOptions = {}): Topology {
  return entry(name).create(ctx, options)
}

/** The order of responsibility of a topology with these options, without making one. */
export function topologyMetric(name: string, options: TopologyOptions = {}): Metric {
  return entry(name).metric(options)
}
