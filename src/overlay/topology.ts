// The one interface every topology implements: Kademlia here; Chord, Pastry, Tapestry and the
// polyring beside it. The node and the services talk only to this.
import type { NodeId } from '../identity/node-id.js'
import type { RequestBody, Rpc } from '../rpc/rpc.js'
import type { Reply } from '../wire/messages.js'
import type { Random, Runtime } from '../runtime/runtime.js'
import type { Address } from '../wire/address.js'
import type { Arena } from './arena.js'
import type { ContactPool } from './contact-pool.js'
import type { Metric } from './metric.js'

export interface Contact {
  id: NodeId
  address: Address
}

/** What a lookup asks each node on its way, for services that ride on lookups (the DHT). */
export interface LookupQuery {
  /** Sent instead of the topology's own find-node request; its reply must carry contacts. */
  request: RequestBody
  /** Called with each answer; true ends the lookup there (e.g. a value was found). */
  onReply(from: Contact, reply: Reply): boolean
}

export interface LookupOptions {
  signal?: AbortSignal
  query?: LookupQuery
  /** How many of the nearest nodes must answer before the lookup ends (default: the topology's). */
  verify?: number
  /** Disjoint paths for this lookup (S/Kademlia; default: the topology's, where it has the option). */
  disjoint?: number
}

export interface LookupResult {
  target: NodeId
  /** The nodes responsible for the target by this topology's rule, nearest first. */
  closest: Contact[]
  /** Steps from this node to the node nearest the target. */
  hops: number
  /** Requests sent and replies received for this lookup. */
  messages: number
  /** Peers that did not answer. */
  failed: number
  durationMs: number
}

/** A row of the routing table as people see it: where it sits (bucket, finger, level) and its state. */
export interface TableEntry extends Contact {
  slot: string
  lastSeenMs: number
  failures: number
}

export interface Topology {
  readonly name: string
  /** Which nodes are responsible for a key here: lookups, the DHT and the oracle rank by it. */
  readonly metric: Metric
  /** Joins through the bootstrap addresses; with none, this node starts a new network. */
  join(bootstrap: Address[], options?: LookupOptions): Promise<void>
  /** Findability: asks ever-closer peers for the nodes responsible for `target`. */
  lookup(target: NodeId, options?: LookupOptions): Promise<LookupResult>
  /** Routability: the next hop toward `target`, or null when this node is the end of the route. */
  nextHop(target: NodeId): Contact | null
  /** Up to n known contacts nearest `target`, from the local table only. */
  closest(target: NodeId, n: number): Contact[]
  /** Every contact with its place in the table, for people and the dashboard. */
  entries(): TableEntry[]
  size(): number
  /** Called when a contact enters or leaves the table. */
  onPeer: (event: 'added' | 'removed', contact: Contact) => void
  /** Called when a node joining the network makes itself known here (Kademlia: its self-lookup). */
  onJoin: (contact: Contact) => void
  /**
   * Graceful leave: tells the neighbours that need to know (Chord: predecessor and successor) so
   * they repair at once. Optional: Kademlia has nothing to say and just stops.
   */
  leave?(): Promise<void>
  /** Stops timers and forgets nothing; the node closes the rpc under it. */
  close(): void
  /**
   * Simulator only: fills the table from the true set of nodes, as the protocol would leave it
   * in a network without churn (how a million-node network is built in minutes, not days).
   */
  fill?(nodes: NodeSet, random: Random, now: number): void
}

/** Every node of a simulated network in id order, for filling tables from the truth. */
export interface NodeSet {
  readonly size: number
  /** For [lo, hi), whose ids share their first `bit` bits: the first index whose bit `bit` is 1 (hi if none). */
  split(lo: number, hi: number, bit: number): number
  /** The contact-pool handle of the i-th node in id order. */
  at(i: number): number
  /** The id of the i-th node in id order (a view: copy it to keep it). */
  idAt(i: number): Uint8Array
  /** The index of the first node whose id is at or after `id` in id order (size if none). */
  search(id: Uint8Array): number
  /** The typical round-trip time in ms between two nodes (pool handles), where the network has a model of it. */
  rtt?(a: number, b: number): number
}

export interface TopologyContext {
  runtime: Runtime
  rpc: Rpc
  id: NodeId
  /** This node's address as others reach it (the bound one until a peer reports another). */
  address(): Address
  /** Where the routing table keeps its contacts: the simulator shares one among all its nodes. */
  contacts?: ContactPool
  /** Where tables get their arrays: the simulator's comes from shared slabs. */
  arena?: Arena
}
