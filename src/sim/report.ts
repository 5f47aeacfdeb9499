// What a simulation run reports. `simulated` depends only on the seed and the arguments, so two
// runs of the same command give byte-identical JSON for it; `machine` (wall time, memory) does not.

export interface Distribution {
  mean: number
  p50: number
  p95: number
  max: number
}

import type { LocationReport } from './location.js'

export interface SimResult {
  topology: string
  nodes: number
  seed: string
  /** 'joins': every node joined by the protocol; 'oracle': tables filled from the true node set, then maintained; 'static': the polyring's fixed shape (no joins). */
  build: 'joins' | 'oracle' | 'static'
  /** Bucket size (Kademlia's k) and requests in flight per lookup. */
  k: number
  alpha: number
  /** Bucket refresh interval in ms, or null for the topology's default. */
  refreshMs: number | null
  /** Pastry's or Tapestry's bits per digit, or null (other topologies, or the default). */
  b: number | null
  /** Virtual ms of protocol upkeep (and churn) between the build and the lookups. */
  warmupMs: number
  /** Share of nodes that crashed at once after the build, before the warm-up. */
  failAtOnce: number
  latencyModel: string
  loss: number
  /** Median session length in virtual ms, or null without churn. */
  churnMedianMs: number | null
  adversaries: number
  lookups: number
  /** Lookups whose results held the true closest live node to the target. */
  succeeded: number
  successRate: number
  /** Mean share of the true k closest live nodes that the lookup returned. */
  recall: number
  /** Steps from the asking node to the node nearest the target. histogram[h] = lookups with h hops. */
  hops: Distribution & { histogram: number[] }
  /** Virtual ms from start to end of a lookup. cdf[i] = the i-th percentile, i = 0..100. */
  latencyMs: Distribution & { cdf: number[] }
  /** Recursive routing (routability): nextHop followed from the asking node; success = it ends at the true closest live node. */
  routing: { successRate: number; hops: Distribution }
  messagesPerLookup: number
  bytesPerLookup: number
  /** Contacts in a node's routing table, over all live nodes. */
  tableSize: Distribution
  /** The expected mean hop count for this topology at this size, from its model. */
  theoreticalHops: number
  /** The model behind theoreticalHops, in words. */
  theory: string
  virtualTimeMs: number
  events: number
  datagrams: number
  /** Object location (with --objects): how servers were found and how near they were; null without. */
  location: LocationReport | null
  /** The cost of one broadcast from a random node to every live node (with --compare, --broadcast, or the polyring); absent when not asked for, null when the tables were too large to flood (sim/broadcast-cost.ts MAX_FLOOD_ENTRIES). */
  broadcast?: BroadcastCost | null
  /** Polyring rows only: the shape and the route checks. */
  polyring?: PolyringFigures
}

/** One broadcast to every live node: how many messages, how many nodes it reached, how long it took. */
export interface BroadcastCost {
  /** How it spreads: the polyring's rules, or flooding over each node's routing table. */
  method: string
  /** The originating node (index or polyring handle), drawn from the seed. */
  origin: number
  /** Live nodes, nodes that got it (the origin included) and their share. */
  nodes: number
  reached: number
  reachedShare: number
  /** Copies sent (every one, also those to dead nodes or to nodes that already had it), and per live node. */
  messages: number
  messagesPerNode: number
  /** Copies that reached a node that already had it. */
  duplicates: number
  /** Virtual ms until the last reached node had it, and until half of them had. */
  completionMs: number
  medianMs: number
  /** Uplink time per copy: a node sends its copies one after another. */
  sendMs: number
}

export interface PolyringFigures {
  /** Ring sizes per level (centre first). */
  shape: number[]
  depth: number
  /** 2 × depth − 1: no route may be longer. */
  hopBound: number
  /** Routed messages over the bound, delivered to the wrong peer, or never delivered. */
  overBound: number
  wrong: number
  lost: number
}

export interface SimMachine {
  wallMs: number
  eventsPerSecond: number
  peakRssBytes: number
  /** (heap + external + array buffers after the build, less before) / nodes. */
  bytesPerNode: number
}

export interface SimReport {
  simulated: SimResult
  machine: SimMachine
}
