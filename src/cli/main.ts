#!/usr/bin/env node
// The `weft` command: run a node, ask a running node through its API, or run a local devnet.
import { Command, Option, InvalidArgumentError } from 'commander'
import { checkBind } from '../api/auth.js'
import { callApi, DEFAULT_API, startApi, type ApiTarget } from '../api/server.js'
import { WeftError } from '../errors.js'
import { idFromHex } from '../identity/node-id.js'
import { topologyNames } from '../overlay/registry.js'
import { createLogger, parseLogLevel } from '../node/log.js'
import { Node, type LookupReport, type NodeStatus, type PeerInfo } from '../node/node.js'
import { parseAddress } from '../wire/address.js'
import { runDevnet } from './devnet.js'
import { addDhtCommands } from './dht-commands.js'
import { addPubSubCommands } from './pubsub-commands.js'
import { addPolyringCommands } from './polyring-commands.js'
import { parseShape, runPolyringDevnet } from './polyring-devnet.js'
import { formatGuid } from '../overlay/polyring/guid.js'
import { addSimCommand } from './sim-command.js'
import { fail, ms, table } from './format.js'
import { readFileSync } from 'node:fs'

const int = (name: string, min: number, max: number) => (v: string): number => {
  const n = Number(v)
  if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`)
  return n
}
const address = (v: string): string => {
  try { parseAddress(v); return v } catch (err) { throw new InvalidArgumentError((err as Error).message) }
}
const collect = (v: string, prev: string[] = []): string[] => [...prev, address(v)]
const apiOption = () => new Option('--api <host:port>', 'address of the node API').default(process.env.WEFT_API ?? DEFAULT_API).argParser(address)
const tokenOption = () => new Option('--api-token <token>', 'bearer token of the node API (needed when it is not on loopback)').env('WEFT_API_TOKEN')
/** The two options every client command has: where the API is, and its token. */
const withApi = (cmd: Command): Command => cmd.addOption(apiOption()).addOption(tokenOption())
const target = (o: { api: string; apiToken?: string }): ApiTarget => ({ address: o.api, token: o.apiToken })
/** --network-key: 64 hex digits, or @FILE holding 64 hex digits or a passphrase (stretched with scrypt). */
const networkKey = (v: string): Uint8Array | string => {
  let text = v
  if (v.startsWith('@')) {
    try { text = readFileSync(v.slice(1), 'utf8').trim() } catch (err) { throw new InvalidArgumentError(`cannot read ${v.slice(1)}: ${(err as Error).message}`) }
    if (!/^[0-9a-fA-F]{64}$/.test(text)) {
      if (text.length === 0) throw new InvalidArgumentError(`${v.slice(1)} is empty`)
      return text // a passphrase
    }
  }
  if (!/^[0-9a-fA-F]{64}$/.test(text)) throw new InvalidArgumentError('a network key is 64 hex digits, or @FILE (64 hex digits or a passphrase)')
  return new Uint8Array(Buffer.from(text, 'hex'))
}
const logLevel = (v: string): string => {
  try { return parseLogLevel(v) } catch (err) { throw new InvalidArgumentError((err as Error).message) }
}

const program = new Command('weft')
  .description('Weft: a peer-to-peer networking stack. Run a node, ask it things, or start a local network.')
  .version('0.1.0')

program.command('node')
  .description('run one peer in the foreground; Ctrl-C leaves cleanly')
  .option('--host <ip>', 'UDP address to bind', '127.0.0.1')
  .option('--port <n>', 'UDP port (0: any free port)', int('port', 0, 65535), 4000)
  .option('--bootstrap <host:port>', 'a peer to join through (repeatable); none starts a new network', collect, [])
  .option('--data <dir>', 'directory for the identity key (reused on restart)')
  .option('--key-file <file>', 'an existing identity key file (PEM, Ed25519)')
  .addOption(apiOption())
  .option('--no-api', 'do not serve the control API')
  .addOption(new Option('--api-token <token>', 'require this bearer token on the API (needed to bind it to a non-loopback address)').env('WEFT_API_TOKEN'))
  .addOption(new Option('--topology <name>', 'how the network is organised (every node of a network must use the same; polyring: a polyring over Kademlia)').choices([...topologyNames, 'polyring']).default('kademlia'))
  .option('--centre', 'with --topology polyring: join the centre ring (through --bootstrap; with none, start it as [0])')
  .option('--parent <host:port|guid>', 'with --topology polyring: join under this parent (its address, or its GUID such as [4.2], reached through --bootstrap)')
  .option('--region <label>', 'with --topology polyring: a region label told to neighbours')
  .option('--hosted', 'with --topology polyring: a hosted peer (run by the operator: inner rings)')
  .option('--heartbeat-ms <n>', 'with --topology polyring: heartbeat interval to neighbours (default 1000)', int('heartbeat ms', 10, 600_000))
  .option('--heartbeat-misses <n>', 'with --topology polyring: silent intervals after which a neighbour is dropped (default 5)', int('heartbeat misses', 1, 1000))
  .option('--k <n>', 'bucket size', int('k', 1, 25), 20)
  .option('--alpha <n>', 'requests in flight per lookup', int('alpha', 1, 16), 3)
  .option('--no-encrypt', 'send plaintext datagrams (every node of a network must agree)')
  .option('--network-key <hex|@file>', 'a private network: only nodes with this key get any answer (64 hex digits, or @FILE with hex or a passphrase)', networkKey)
  .option('--no-nat-check', 'skip the NAT check at start (it finds out whether strangers reach this node, and takes a relay if not)')
  .option('--upnp', 'ask the router to forward the UDP port (UPnP, then NAT-PMP) before the NAT check')
  .option('--relay <host:port>', 'a public peer to ask for a relayed address when behind NAT (repeatable; default: the bootstrap peers)', collect, [])
  .addOption(new Option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent (logs go to stderr: pretty on a terminal, JSON otherwise)').default('info').argParser(logLevel).env('WEFT_LOG_LEVEL'))
  .option('--mainline', 'also run a Mainline (BitTorrent DHT) node on a second UDP port')
  .option('--mainline-port <n>', 'UDP port of the Mainline node (0: any free port)', int('mainline port', 0, 65535), 6881)
  .option('--mainline-bootstrap <host:port>', 'a Mainline node to join through (repeatable)', collect, [])
  .option('--mainline-bep42', 'keep Mainline contacts whose id does not fit their IP (BEP 42) out of the routing table')
  .option('--network <name>', 'with --mainline: meet the Weft network NAME on Mainline (announce there; join through it when no Weft peer answers)')
  .action(async (o) => {
    if (o.api !== false) checkBind(parseAddress(o.api).host, o.apiToken) // before joining: a refused API is a user error
    if (o.networkKey !== undefined && o.encrypt === false) throw new WeftError('ERR_BAD_ARGUMENT', '--network-key needs encryption: drop --no-encrypt')
    if (!o.mainline && (o.network !== undefined || o.mainlineBootstrap.length || o.mainlineBep42)) throw new WeftError('ERR_BAD_ARGUMENT', '--network, --mainline-bootstrap and --mainline-bep42 need --mainline')
    const logger = createLogger({ level: parseLogLevel(o.logLevel) })
    const polyring = o.topology === 'polyring'
    if (!polyring && (o.centre || o.parent !== undefined || o.region !== undefined || o.hosted || o.heartbeatMs !== undefined || o.heartbeatMisses !== undefined)) throw new WeftError('ERR_BAD_ARGUMENT', '--centre, --parent, --region, --hosted, --heartbeat-ms and --heartbeat-misses need --topology polyring')
    const node = new Node({
      polyring: polyring ? { centre: !!o.centre, parent: o.parent, region: o.region, hosted: !!o.hosted, heartbeatMs: o.heartbeatMs, heartbeatMisses: o.heartbeatMisses } : undefined,
      host: o.host, port: o.port, bootstrap: o.bootstrap, dataDir: o.data, keyFile: o.keyFile,
      topology: polyring ? 'kademlia' : o.topology, topologyOptions: { k: o.k, alpha: o.alpha }, encrypt: o.encrypt, networkKey: o.networkKey, nat: o.natCheck && o.bootstrap.length > 0, portMapping: !!o.upnp, relays: o.relay.length ? o.relay : undefined, logger, metrics: o.api !== false,
      mainline: o.mainline ? { port: o.mainlinePort, bootstrap: o.mainlineBootstrap, bep42: !!o.mainlineBep42, network: o.network } : undefined,
    })
    console.log(`node id  ${node.idHex}`)
    await node.start()
    console.log(`address  ${node.address}`)
    if (polyring) console.log(`polyring ${formatGuid(node.polyring.guid!)} (over kademlia)`)
    if (node.nat.type !== 'unknown' || node.nat.relayedAddress) {
      console.log(`nat      ${node.nat.type}, ${node.nat.reachable ? 'reachable' : 'not reachable'} from strangers${node.nat.publicAddress ? `, seen as ${node.nat.publicAddress}` : ''}`)
      if (node.nat.relayedAddress) console.log(`relayed  ${node.nat.relayedAddress} (through ${node.nat.relay})`)
    }
    console.log(o.bootstrap.length ? `joined   through ${o.bootstrap.join(', ')}: ${node.topology.size()} peers known` : o.mainline && node.mainlineRendezvous?.joined ? `joined   through mainline: ${node.topology.size()} peers known` : 'started  a new network (no bootstrap peers given)')
    if (o.mainline) {
      const r = node.mainlineRendezvous
      console.log(`mainline ${node.mainline.address}  (node id ${node.mainline.idHex}, ${node.mainline.table.size} contacts)`)
      if (r) console.log(`network  ${o.network} on mainline: ${r.found.length} weft peers found${r.joined ? ', joined through them' : ''}, announced to ${r.announced} nodes`)
    }
    const api = o.api === false ? null : await startApi(node, o.api, { token: o.apiToken }).catch(async (err) => { await node.stop(); throw err })
    if (api) console.log(`api      http://${api.address}/v1/status  (metrics: http://${api.address}/metrics)`)
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve)
      process.once('SIGTERM', resolve)
    })
    await api?.close()
    await node.stop()
    console.log('left the network')
  })

const json = (v: unknown): void => console.log(JSON.stringify(v, null, 2))

withApi(program.command('connect'))
  .description('reach a peer at its public or relayed address through a running node, punching through NAT where it can')
  .argument('<host:port>', "the peer's address")
  .option('--json', 'print JSON')
  .action(async (address: string, o) => {
    const r = await callApi<{ address: string; path: string; id: string; ms: number }>(target(o), '/v1/connect', { method: 'POST', body: { address } })
    if (o.json) return json(r)
    console.log(`${r.id} at ${r.address}: ${r.path} in ${ms(r.ms)}`)
  })

withApi(program.command('lookup'))
  .description('find the nodes closest to a node id, through a running node')
  .argument('<node-id-hex>', 'the id to look up (64 hex digits)')
  .option('--json', 'print JSON')
  .action(async (id: string, o) => {
    idFromHex(id) // a bad id is the user's error: say so before asking the node
    const r = await callApi<LookupReport>(target(o), `/v1/lookup/${id}`)
    if (o.json) return json(r)
    console.log(`lookup ${r.target}: ${r.closest.length} nodes in ${ms(r.durationMs)}, ${r.hops} hops, ${r.messages} messages, ${r.failed} failed`)
    console.log(table(['#', 'node id', 'address', 'exact'], r.closest.map((c, i) => [i + 1, c.id, c.address, c.id === r.target ? 'yes' : ''])))
  })

withApi(program.command('peers'))
  .description("list a running node's routing table")
  .option('--json', 'print JSON')
  .action(async (o) => {
    const peers = await callApi<PeerInfo[]>(target(o), '/v1/peers')
    if (o.json) return json(peers)
    console.log(table(['node id', 'address', 'slot', 'last seen', 'failures'], peers.map((p) => [p.id, p.address, p.slot, `${(p.lastSeenMs / 1000).toFixed(1)} s ago`, p.failures])))
    console.log(`${peers.length} peers`)
  })

withApi(program.command('status'))
  .description("show a running node's identity, address and counters")
  .option('--json', 'print JSON')
  .action(async (o) => {
    const s = await callApi<NodeStatus>(target(o), '/v1/status')
    if (o.json) return json(s)
    console.log(table(['field', 'value'], [
      ['node id', s.id], ['address', s.address], ['seen as', s.observedAddress ?? '-'], ['topology', s.topology],
      ['peers', s.peers], ['uptime', `${(s.uptimeMs / 1000).toFixed(0)} s`], ['smoothed rtt', s.rttMs === null ? '-' : ms(s.rttMs)],
      ['packets in / out', `${s.transport.packetsIn} / ${s.transport.packetsOut}`],
      ['bytes in / out', `${s.transport.bytesIn} / ${s.transport.bytesOut}`],
      ['requests in / out', `${s.rpc.requestsIn} / ${s.rpc.requestsOut}`],
      ['timeouts / retries', `${s.rpc.timeouts} / ${s.rpc.retries}`],
      ['sessions', s.sessions ? `${s.sessions.open} open, ${s.sessions.sessionsOpened} opened, ${s.sessions.rekeys} rekeys` : 'off (plaintext)'],
      ['malformed dropped', s.rpc.malformed + s.transport.oversizeDropped + (s.sessions ? s.sessions.malformed + s.sessions.decryptFailures + s.sessions.replays + s.sessions.misdirected + s.sessions.idMismatch : 0)],
      ['rate limited', s.rpc.rateLimited],
      ['DHT records held', `${s.records.count} (${s.records.bytes} bytes)`],
    ]))
  })

program.command('devnet')
  .description('start N peers on 127.0.0.1 in this process, join them, run lookups, and keep the network up')
  .option('--nodes <n>', 'number of peers', int('nodes', 2, 5000), 64)
  .option('--seed <s>', 'seed for identities and lookup targets', 'weft')
  .addOption(new Option('--topology <name>', 'how the network is organised (polyring: a polyring over Kademlia, shaped by --shape)').choices([...topologyNames, 'polyring']).default('kademlia'))
  .option('--shape <sizes>', 'with --topology polyring: ring sizes per level, e.g. 10x9 (10 centre peers, 9 children each: 100 peers); default 10x9', parseShape)
  .option('--lookups <n>', 'lookups in the first batch', int('lookups', 1, 100000), 200)
  .addOption(new Option('--api <host:port>', 'serve the first node\'s API here').default('127.0.0.1:7400').argParser(address))
  .option('--no-api', 'do not serve an API')
  .addOption(new Option('--api-token <token>', 'require this bearer token on the API').env('WEFT_API_TOKEN'))
  .option('--exit', 'exit after the first batch instead of running until Ctrl-C')
  .option('--no-encrypt', 'plaintext datagrams between the peers')
  .action(async (o) => {
    if (o.topology === 'polyring') {
      return runPolyringDevnet({ shape: o.shape ?? [10, 9], seed: o.seed, encrypt: o.encrypt, api: o.api, apiToken: o.apiToken, exit: !!o.exit })
    }
    if (o.shape) throw new WeftError('ERR_BAD_ARGUMENT', '--shape needs --topology polyring')
    await runDevnet({ nodes: o.nodes, seed: o.seed, topology: o.topology, encrypt: o.encrypt, lookups: o.lookups, api: o.api, apiToken: o.apiToken, exit: !!o.exit, summaryEveryMs: 5000 })
  })

addDhtCommands(program, withApi, target)
addPubSubCommands(program, withApi, target)
addPolyringCommands(program, withApi, target)
addSimCommand(program)

program.parseAsync().then(() => process.exit(0), (err) => fail(err instanceof WeftError ? err : err))
