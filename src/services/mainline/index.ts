// Mainline (the BitTorrent DHT) for Weft: a full node on its own UDP port, and the rendezvous
// through which Weft nodes that know nothing of each other find each other.
export { Mainline, defaultMainlineOptions, type MainlineOptions, type MainlineStats, type PutOptions, type PutResult, type LookupContact } from './mainline.js'
export { mainlineRendezvous, Rendezvous, type RendezvousOptions, type RendezvousRound } from './rendezvous.js'
export { immutableTarget, mutableTarget, signedBytes, MAX_VALUE_BYTES, MAX_SALT_BYTES, type MainlineItem, type MainlineKeys } from './items.js'
export { decodeKrpc, encodeQuery, encodeResponse, encodeError, checkBencode, KRPC_LIMITS, KrpcCode, type BValue, type Message } from './krpc.js'
export { bep42Id, bep42Valid, isBep42Exempt } from './bep42.js'
export type { MainlineContact } from './table.js'
export { DEFAULT_STORE_LIMITS, type MainlineStoreLimits } from './store.js'
