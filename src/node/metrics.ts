// A node's metrics in Prometheus form (prom-client). Each node has its own Registry, because a
// devnet runs many nodes in one process. Most values already exist as the transport's and rpc's
// counters and are read when scraped (`collect`); what has no counter elsewhere (RPCs by type
// and outcome, lookups and their latency) is counted here through the node's hooks.
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { Node } from './node.js'

/** Wire message types by number (wire/messages.ts), as label values. */
const TYPE_NAMES = ['unknown', 'ping', 'pong', 'find_node', 'nodes', 'error', 'get', 'put', 'values', 'stored', 'neighbors', 'locate', 'pointers', 'connect', 'membership', 'broadcast', 'swim']
export const messageTypeName = (type: number): string => TYPE_NAMES[type] ?? 'unknown'

/** Seconds: from a loopback round trip to a lookup across a slow, lossy network. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

export class NodeMetrics {
  readonly registry = new Registry()
  readonly contentType = this.registry.contentType
  private readonly rpcSent: Counter<'type' | 'outcome'>
  private readonly rpcReceived: Counter<'type' | 'outcome'>
  private readonly lookups: Counter<'outcome'>
  private readonly lookupSeconds: Histogram
  private readonly lookupHops: Histogram

  constructor(node: Node) {
    const registers = [this.registry]
    const status = () => (node.isRunning ? node.status() : null)
    this.rpcSent = new Counter({ name: 'weft_rpc_requests_sent_total', help: 'Requests this node sent, by message type and outcome (ok or the error code).', labelNames: ['type', 'outcome'], registers })
    this.rpcReceived = new Counter({ name: 'weft_rpc_requests_received_total', help: 'Requests this node answered, by message type and outcome (ok, no_reply or the error code).', labelNames: ['type', 'outcome'], registers })
    this.lookups = new Counter({ name: 'weft_lookups_total', help: 'Lookups started through the node, by outcome.', labelNames: ['outcome'], registers })
    this.lookupSeconds = new Histogram({ name: 'weft_lookup_duration_seconds', help: 'Time from a lookup\'s start to its result.', buckets: LATENCY_BUCKETS, registers })
    this.lookupHops = new Histogram({ name: 'weft_lookup_hops', help: 'Hops to the node nearest the target, per successful lookup.', buckets: [0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20], registers })

    new Gauge({
      name: 'weft_routing_table_contacts', help: 'Contacts in the routing table, by slot (Kademlia: bucket).', labelNames: ['slot'], registers,
      collect() {
        this.reset()
        if (!node.isRunning) return
        const bySlot = new Map<string, number>()
        for (const e of node.topology.entries()) bySlot.set(e.slot, (bySlot.get(e.slot) ?? 0) + 1)
        for (const [slot, n] of bySlot) this.set({ slot }, n)
      },
    })
    new Gauge({ name: 'weft_routing_table_size', help: 'Contacts in the routing table.', registers, collect() { this.set(node.isRunning ? node.topology.size() : 0) } })
    // Counters kept by the transport and rpc layers, copied at scrape time.
    // A counter that copies, at scrape time, what `source` (when there is one) already counts.
    const copier = <S>(source: () => S | null) => <L extends string>(name: string, help: string, labelNames: L[], read: (s: S) => [Partial<Record<L, string>>, number][]) =>
      new Counter<L>({
        name, help, labelNames, registers,
        collect() {
          this.reset()
          const s = source()
          if (s) for (const [labels, v] of read(s)) this.inc(labels, v)
        },
      })
    const copy = copier(status)
    copy('weft_bytes_total', 'UDP payload bytes, by direction.', ['direction'], (s) => [[{ direction: 'in' }, s.transport.bytesIn], [{ direction: 'out' }, s.transport.bytesOut]])
    copy('weft_packets_total', 'Datagrams, by direction.', ['direction'], (s) => [[{ direction: 'in' }, s.transport.packetsIn], [{ direction: 'out' }, s.transport.packetsOut]])
    copy('weft_packets_dropped_total', 'Datagrams dropped unanswered, by reason.', ['reason'], (s) => [
      [{ reason: 'oversize' }, s.transport.oversizeDropped], [{ reason: 'rate_limited' }, s.rpc.rateLimited],
      [{ reason: 'unmatched_reply' }, s.rpc.unmatchedReplies], [{ reason: 'amplification' }, s.rpc.refusedAmplification],
      ...(s.sessions ? ([
        [{ reason: 'not_sealed' }, s.sessions.malformed], [{ reason: 'decrypt_failed' }, s.sessions.decryptFailures],
        [{ reason: 'replay' }, s.sessions.replays + s.sessions.handshakeReplays], [{ reason: 'misdirected' }, s.sessions.misdirected],
        [{ reason: 'id_mismatch' }, s.sessions.idMismatch], [{ reason: 'handshake_failed' }, s.sessions.handshakeFailures],
        [{ reason: 'session_queue_full' }, s.sessions.queueDropped],
      ] as [{ reason: string }, number][]) : []),
    ])
    new Gauge({ name: 'weft_sessions', help: 'Encrypted sessions open.', registers, collect() { this.set(status()?.sessions?.open ?? 0) } })
    copy('weft_session_handshakes_total', 'Session handshakes, by role and outcome.', ['outcome'], (s) => s.sessions ? [
      [{ outcome: 'started' }, s.sessions.handshakesStarted], [{ outcome: 'answered' }, s.sessions.handshakesAnswered],
      [{ outcome: 'opened' }, s.sessions.sessionsOpened], [{ outcome: 'timeout' }, s.sessions.handshakeTimeouts],
      [{ outcome: 'rekey' }, s.sessions.rekeys],
    ] : [])
    copy('weft_packets_malformed_total', 'Datagrams that did not decode, by error code.', ['code'], (s) =>
      Object.entries(s.rpc.malformedByCode).map(([code, n]) => [{ code }, n ?? 0]))
    copy('weft_rpc_retries_total', 'Requests sent again after a timeout.', [], (s) => [[{}, s.rpc.retries]])
    copy('weft_rpc_timeouts_total', 'Requests that got no reply after every retry.', [], (s) => [[{}, s.rpc.timeouts]])
    copy('weft_rpc_queue_full_total', 'Requests refused because the request queue was full.', [], (s) => [[{}, s.rpc.queueFull]])
    copy('weft_rpc_handler_errors_total', 'Requests whose handler failed unexpectedly (answered BAD_REQUEST).', [], (s) => [[{}, s.rpc.handlerErrors]])
    // The Mainline node (--mainline), when there is one: its own counters, read at scrape time.
    const mainline = () => (node.isRunning && node.options.mainline ? node.mainline : null)
    const copyMainline = copier(mainline)
    copyMainline('weft_mainline_packets_total', 'Mainline (BitTorrent DHT) datagrams, by direction.', ['direction'], (m) => [[{ direction: 'in' }, m.stats.packetsIn], [{ direction: 'out' }, m.stats.packetsOut]])
    copyMainline('weft_mainline_queries_total', 'Mainline queries, by direction.', ['direction'], (m) => [[{ direction: 'in' }, m.stats.queriesIn], [{ direction: 'out' }, m.stats.queriesOut]])
    copyMainline('weft_mainline_dropped_total', 'Mainline datagrams dropped unanswered, by error code.', ['code'], (m) =>
      Object.entries(m.stats.droppedByCode).map(([code, n]) => [{ code }, n ?? 0]))
    copyMainline('weft_mainline_refused_total', 'Mainline queries answered with a KRPC error, by error code.', ['code'], (m) =>
      Object.entries(m.stats.refusedByCode).map(([code, n]) => [{ code }, n ?? 0]))
    new Gauge({ name: 'weft_mainline_routing_table_size', help: 'Contacts in the Mainline routing table.', registers, collect() { this.set(mainline()?.table.size ?? 0) } })
    new Gauge({ name: 'weft_dht_records', help: 'DHT records held in the local store.', registers, collect() { this.set(status()?.records.count ?? 0) } })
    new Gauge({ name: 'weft_dht_record_bytes', help: 'Encoded bytes of the DHT records held.', registers, collect() { this.set(status()?.records.bytes ?? 0) } })
    new Gauge({ name: 'weft_uptime_seconds', help: 'Seconds since the node started.', registers, collect() { this.set((status()?.uptimeMs ?? 0) / 1000) } })
  }

  /** A request this node sent has finished. */
  rpcOut(type: number, outcome: string): void { this.rpcSent.inc({ type: messageTypeName(type), outcome }) }
  /** A request this node received was handled. */
  rpcIn(type: number, outcome: string): void { this.rpcReceived.inc({ type: messageTypeName(type), outcome }) }
  /** A lookup through the node ended. */
  lookup(durationMs: number, outcome: string, hops?: number): void {
    this.lookups.inc({ outcome })
    this.lookupSeconds.observe(durationMs / 1000)
    if (hops !== undefined) this.lookupHops.observe(hops)
  }

  /** The Prometheus text exposition of every metric. */
  text(): Promise<string> { return this.registry.metrics() }
}
