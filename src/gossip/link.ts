// What a gossip channel needs from below: one-way datagrams, a request with a reply, a liveness
// ping, and counters. `Gossip` (gossip.ts) builds one per channel over the node's rpc and transport.
import type { WeftError } from '../errors.js'
import type { NodeId } from '../identity/node-id.js'
import type { Address } from '../wire/address.js'
import type { BroadcastRequest, MembershipRequest, MessageType } from '../wire/messages.js'

export type MembershipBody = Pick<MembershipRequest, 'op' | 'ttl' | 'priority' | 'contacts'>
export type OneWayBody =
  | ({ type: MessageType.MEMBERSHIP } & MembershipBody)
  | ({ type: MessageType.BROADCAST } & Pick<BroadcastRequest, 'op' | 'round' | 'ids' | 'payload'>)

export interface ChannelLink {
  readonly id: NodeId
  address(): Address
  /** One datagram, no reply, no retry. */
  send(to: Address, body: OneWayBody): void
  /** A MEMBERSHIP request answered with PONG (accepted: the responder's id) or an error (ERR_BUSY: refused). */
  request(to: Address, body: MembershipBody, cb: (err: WeftError | null, sender?: NodeId) => void): void
  /** Is the peer alive: a PING with the rpc's retries. */
  ping(to: Address, cb: (alive: boolean) => void): void
}

/** Counters of one node's gossip (all channels), or of a whole simulation when shared. */
export interface GossipStats {
  /** MEMBERSHIP messages by op (MembershipOp index). */
  membershipOut: number[]
  membershipIn: number[]
  /** BROADCAST datagrams sent by op (BroadcastOp index): GOSSIP carries a payload, the rest are control. */
  broadcastOut: number[]
  broadcastIn: number[]
  /** Message ids announced in IHAVEs (an IHAVE datagram carries up to MAX_BROADCAST_IDS). */
  ihaveIds: number
  /** GOSSIPs sent in answer to a GRAFT (also counted in broadcastOut). */
  graftAnswers: number
  /** Lazy links made eager because their IHAVE's path was shorter (the paper's optimisation). */
  optimized: number
  delivered: number
  duplicates: number
  keepalives: number
  /** Active peers found dead (keepalive unanswered), and passive ones that did not answer a NEIGHBOR. */
  failuresDetected: number
  passiveFailed: number
  neighborUp: number
  neighborDown: number
  /** Dropped input, by reason: unknown channel, refused by a bound, bad payload (counted by the owner). */
  unknownChannel: number
  dropped: number
}

export function newGossipStats(): GossipStats {
  return {
    membershipOut: [0, 0, 0, 0, 0, 0], membershipIn: [0, 0, 0, 0, 0, 0], broadcastOut: [0, 0, 0, 0, 0], broadcastIn: [0, 0, 0, 0, 0],
    ihaveIds: 0, graftAnswers: 0, optimized: 0, delivered: 0, duplicates: 0, keepalives: 0, failuresDetected: 0, passiveFailed: 0,
    neighborUp: 0, neighborDown: 0, unknownChannel: 0, dropped: 0,
  }
}
