// A Mainline node's options (every bound named, with its default) and its counters.
import type { ErrorCode } from '../../errors.js'
import type { Address } from '../../wire/address.js'
import type { MainlineStoreLimits } from './store.js'

export interface MainlineOptions {
  /** This node's 20-byte id; default random (with bep42, derived from a public bind address). */
  id?: Uint8Array
  /** Bucket size and the number of nearest nodes a lookup settles on (BEP 5: 8). */
  k: number
  /** Requests in flight per lookup. */
  alpha: number
  /** Nodes to join through ("host:port"). */
  bootstrap: Address[]
  /** BEP 42: contacts whose id does not fit their (non-local) IP are kept out of the table. */
  bep42: boolean
  /** BEP 43: ask but never answer, and ask others not to list this node. */
  readOnly: boolean
  queryTimeoutMs: number
  /** Requests in flight per node; more wait in a queue of maxQueued, past which ERR_BUSY. */
  maxInFlight: number
  maxQueued: number
  /** Requests one lookup may send, and how long it may take. */
  maxLookupQueries: number
  lookupTimeoutMs: number
  /** Queries accepted per source address (token bucket), in a table of rateTable addresses. */
  ratePerSecond: number
  rateBurst: number
  rateTable: number
  /** Write token secrets rotate this often; a token lives one to two periods. */
  tokenPeriodMs: number
  /** Peers in one get_peers answer, and peers one getPeers call collects. */
  maxValuesPerReply: number
  maxPeersFound: number
  /** Signatures one get checks (one per distinct newer item seen). */
  maxVerifications: number
  /** Queriers being checked by a ping before they enter the table. */
  maxVerifying: number
  /** Buckets no lookup went through in this long are refreshed; a contact this old is pinged before it keeps its place. */
  refreshIntervalMs: number
  upkeepIntervalMs: number
  store: Partial<MainlineStoreLimits>
}

export const defaultMainlineOptions: Omit<MainlineOptions, 'id'> = {
  k: 8,
  alpha: 3,
  bootstrap: [],
  bep42: false,
  readOnly: false,
  queryTimeoutMs: 2000,
  maxInFlight: 128,
  maxQueued: 2048,
  maxLookupQueries: 256,
  lookupTimeoutMs: 30_000,
  ratePerSecond: 250,
  rateBurst: 500,
  rateTable: 1024,
  tokenPeriodMs: 5 * 60_000,
  maxValuesPerReply: 50,
  maxPeersFound: 500,
  maxVerifications: 32,
  maxVerifying: 64,
  refreshIntervalMs: 15 * 60_000,
  upkeepIntervalMs: 60_000,
  store: {},
}

export interface MainlineStats {
  packetsIn: number
  packetsOut: number
  bytesIn: number
  bytesOut: number
  queriesIn: number
  responsesIn: number
  errorsIn: number
  queriesOut: number
  timeouts: number
  /** Datagrams dropped unanswered (not bencode, too large, not KRPC), by code. */
  dropped: number
  droppedByCode: Partial<Record<ErrorCode, number>>
  /** Queries answered with a KRPC error, by code. */
  refused: number
  refusedByCode: Partial<Record<ErrorCode, number>>
  /** Replies nobody was waiting for (unknown transaction id, or from another address). */
  unexpected: number
  rateLimited: number
  bep42Rejected: number
  handlerErrors: number
}
