// The node's identity, addresses, NAT status, sessions and counters.
import type { Status } from '../api.js'
import { byId, el } from '../dom.js'
import { bytes, duration } from '../ids.js'

export function renderIdentity(s: Status, served: boolean): void {
  byId('selected').textContent = served ? '(serving this page)' : '(a devnet node)'
  const nat = s.nat
  const reach = nat.reachable === null ? 'not tested' : nat.reachable ? 'reachable' : 'not reachable from strangers'
  const rows: [string, string, string?][] = [
    ['Id', s.id, 'node-id'],
    ['Address', s.address, 'node-address'],
    ['Observed as', s.observedAddress ?? '—'],
    ['Topology', s.topology, 'node-topology'],
    ['NAT', `${nat.type} · ${reach}`, 'node-nat'],
    ['Public address', nat.publicAddress ?? '—'],
    ['Relay', nat.relay ? `${nat.relay} (relayed as ${nat.relayedAddress ?? '?'})` : 'none'],
    ['Sessions', s.sessions ? `${s.sessions.open} open · ${s.sessions.sessionsOpened} opened · ${s.sessions.handshakeFailures} failed handshakes · ${s.sessions.decryptFailures} bad seals` : 'plaintext (no sessions)', 'node-sessions'],
    ['Peers', String(s.peers), 'node-peers'],
    ['Uptime', duration(s.uptimeMs)],
    ['RTT', s.rttMs === null ? '—' : `${s.rttMs.toFixed(2)} ms`],
    ['Datagrams', `${s.transport.packetsIn} in · ${s.transport.packetsOut} out`, 'node-packets'],
    ['Bytes', `${bytes(s.transport.bytesIn)} in · ${bytes(s.transport.bytesOut)} out`],
    ['DHT records', `${s.records.count} (${bytes(s.records.bytes)})`],
  ]
  byId('identity-list').replaceChildren(...rows.flatMap(([k, v, testid]) => [el('dt', { text: k }), el('dd', { text: v, 'data-testid': testid, class: k === 'Id' ? 'mono' : undefined })]))
}
