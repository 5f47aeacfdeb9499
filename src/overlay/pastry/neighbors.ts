// NEIGHBORS requests as Pastry sends them (spec/wire.md 3.10): RING and NOTIFY for the leaf set,
// ROW for a routing-table row, LEAVING for a graceful leave. Each is answered by NODES.
import { expectedNodesReplyBytes, type RequestBody } from '../../rpc/rpc.js'
import type { Address } from '../../wire/address.js'
import { MAX_CONTACTS, MessageType, Neighbors } from '../../wire/messages.js'

export { Neighbors }

/** The request body: `what` a Neighbors constant, `arg` the row for ROW. */
export function neighborsRequest(what: number, arg = 0): RequestBody {
  return { type: MessageType.NEIGHBORS, what, arg }
}

/** The largest reply to expect: a leaf set, or a row of at most 2^b - 1 contacts. */
export function expectedNeighborsReply(to: Address, contacts: number): number {
  return expectedNodesReplyBytes(to, Math.min(MAX_CONTACTS, contacts))
}
