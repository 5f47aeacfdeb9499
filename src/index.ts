// The public library API: `import { Node } from 'weft'`.
export { Node, lookupReport, type NodeOptions, type NodeStatus, type PeerInfo, type NodeEvents, type LookupReport } from './node/node.js'
export { WeftError, isWeftError, type ErrorCode } from './errors.js'
export { idFromHex, idToHex, type NodeId } from './identity/node-id.js'
export { generateIdentity, identityFromSeed, loadIdentity, loadOrCreateIdentity, type Identity } from './identity/keys.js'
export { signPeerRecord, verifyPeerRecord, encodePeerRecord, decodePeerRecord, type PeerRecord } from './identity/peer-record.js'
export type { Contact, LookupResult, Topology } from './overlay/topology.js'
export type { Tapestry, TapestryOptions } from './overlay/tapestry/tapestry.js'
export type { LocateResult, PublishResult } from './overlay/tapestry/location.js'
export type { Runtime, Network, Endpoint, Random } from './runtime/runtime.js'
export { MemoryWorld } from './runtime/memory.js'
export { SeededRandom } from './runtime/prng.js'
export { startApi, type ApiOptions, type ApiServer } from './api/server.js'
export { createLogger } from './node/log.js'
export { Simulation, type SimOptions } from './sim/simulation.js'
export { runSimulations, type RunOptions } from './sim/run.js'
export { plotReports } from './sim/plot.js'
export type { SimReport, SimResult, SimMachine } from './sim/report.js'
export {
  Mainline, mainlineRendezvous, immutableTarget, mutableTarget, signedBytes, decodeKrpc, checkBencode, bep42Id, bep42Valid,
  KRPC_LIMITS, KrpcCode, MAX_VALUE_BYTES, MAX_SALT_BYTES,
  type MainlineOptions, type MainlineStats, type MainlineItem, type MainlineKeys, type MainlineContact, type PutOptions as MainlinePutOptions,
  type PutResult as MainlinePutResult, type RendezvousRound, type BValue,
} from './services/mainline/index.js'
export { DEFAULT_MAINLINE_PORT, type MainlineNodeOptions } from './services/mainline/attach.js'
export type { Membership, MembershipOptions, MembershipEvents, MembershipStats, Member, MemberEvent } from './gossip/membership.js'
