// The resource manager's view: every bound a node runs with, in one place, with its current use
// and what it has refused. The bounds themselves live where they are enforced (sessions, rpc,
// store, paths, channels, gossip); this module only reads them, so there is one source of truth
// for each number. docs/security.md (section "resources") lists them with their defaults.
import type { Rpc } from '../rpc/rpc.js'
import type { SecureTransport } from '../transport/session.js'
import { DEFAULT_PATH_OPTIONS, type PathOptions, type PathTransport } from '../transport/paths.js'
import { DEFAULT_CHANNELS_OPTIONS, type ChannelsOptions, type ChannelTransport } from '../transport/channels.js'
import type { RecordStore } from '../services/dht/store.js'
import type { Gossip } from '../gossip/gossip.js'

export interface Resource {
  /** The bound: a count, or for a rate (use null) requests per second. */
  limit: number
  /** How much is held now; null for a rate (a token bucket per source has no single level). */
  use: number | null
  /** Times the bound refused, dropped or evicted something since the node started; null: not counted. */
  refused: number | null
  /** The option that sets the limit (a NodeOptions path). */
  option: string
}

/** The parts of a running node whose bounds are reported; absent parts (plaintext: no sessions) are left out. */
export interface ResourceParts {
  rpc: Rpc
  sessions: SecureTransport | null
  paths: PathTransport
  channels: ChannelTransport
  /** The options the node gave paths and channels (those layers keep their merged copy private). */
  pathOptions?: Partial<PathOptions>
  channelOptions?: Partial<ChannelsOptions>
  store: RecordStore | null
  gossip: Gossip | null
}

/** Every bound of a node by name (stable names: they are part of the status API). */
export function resourceReport(p: ResourceParts): Record<string, Resource> {
  const r: Record<string, Resource> = {}
  const ro = p.rpc.options
  const rs = p.rpc.stats
  const s = p.sessions
  if (s) {
    const so = s.options
    const st = s.sessionStats
    r.sessions = { limit: so.maxSessions, use: s.sessionCount, refused: st.evicted, option: 'sessions.maxSessions' }
    r.halfOpenHandshakes = { limit: so.maxHalfOpen, use: s.halfOpenCount, refused: st.halfOpenDropped, option: 'sessions.maxHalfOpen' }
    r.handshakeHosts = { limit: so.maxHandshakeHosts, use: s.handshakeHostCount, refused: null, option: 'sessions.maxHandshakeHosts' }
    r.handshakeRatePerHost = { limit: so.handshakesPerHostPerSecond, use: null, refused: st.handshakesRateLimited, option: 'sessions.handshakesPerHostPerSecond' }
    r.sessionQueuePerPeer = { limit: so.maxQueued, use: null, refused: st.queueDropped, option: 'sessions.maxQueued' }
    r.knownKeys = { limit: so.maxKnownKeys, use: s.knownKeyCount, refused: null, option: 'sessions.maxKnownKeys' }
  }
  r.requestsInFlight = { limit: ro.maxInFlight, use: p.rpc.inFlight, refused: null, option: 'rpc.maxInFlight' }
  r.requestQueue = { limit: ro.maxQueued, use: p.rpc.queued, refused: rs.queueFull, option: 'rpc.maxQueued' }
  r.requestRatePerAddress = { limit: ro.ratePerSecond, use: null, refused: rs.rateLimited, option: 'rpc.ratePerSecond' }
  r.requestRatePerHost = { limit: ro.hostRatePerSecond, use: null, refused: rs.hostRateLimited, option: 'rpc.hostRatePerSecond' }
  r.addressTable = { limit: ro.addressTableSize, use: p.rpc.addressCount, refused: null, option: 'rpc.addressTableSize' }
  r.hostTable = { limit: ro.hostTableSize, use: p.rpc.hostCount, refused: null, option: 'rpc.hostTableSize' }
  if (p.store) {
    r.records = { limit: p.store.maxRecords, use: p.store.size, refused: null, option: 'store.maxRecords' }
    r.recordBytes = { limit: p.store.maxBytes, use: p.store.bytes, refused: null, option: 'store.maxBytes' }
  }
  const po = { ...DEFAULT_PATH_OPTIONS, ...p.pathOptions }
  const co = { ...DEFAULT_CHANNELS_OPTIONS, ...p.channelOptions }
  r.relayAllocations = { limit: po.maxAllocations, use: p.paths.allocationCount, refused: p.paths.pathStats.relayRefused, option: 'paths.maxAllocations' }
  r.channels = { limit: co.maxChannels, use: p.channels.open, refused: p.channels.channelStats.evicted, option: 'channels.maxChannels' }
  if (p.gossip) r.gossipChannels = { limit: p.gossip.options.maxChannels, use: p.gossip.size, refused: null, option: 'gossip.maxChannels' }
  return r
}
