// `weft devnet`: N real peers on loopback in one process, joined into one network, measured,
// and kept up with a live summary until Ctrl-C.
import type { TopologyName } from '../overlay/registry.js'
import { startApi } from '../api/server.js'
import { createDevnet } from '../api/devnet.js'
import { isWeftError } from '../errors.js'
import { measureLookups, type LookupBatch, type Testnet } from '../node/testnet.js'
import { SeededRandom } from '../runtime/prng.js'
import { ms, table } from './format.js'
import { progress } from './progress.js'

export interface DevnetOptions {
  nodes: number
  seed: string
  topology?: TopologyName
  /** Sealed sessions between the peers (default true). */
  encrypt?: boolean
  lookups: number
  api: string | false
  apiToken?: string
  exit: boolean
  summaryEveryMs: number
}

export function printBatch(b: LookupBatch): void {
  const hops = Object.entries(b.hops).map(([h, n]) => `${h}:${n}`).join(' ')
  console.log(table(
    ['lookups', 'exact (true 20 closest)', 'failed', 'mean hops', 'hops (count)', 'p50', 'p95', 'p99', 'messages/lookup'],
    [[b.lookups, `${b.exact} (${((100 * b.exact) / b.lookups).toFixed(1)}%)`, b.failed, b.meanHops.toFixed(2), hops,
      ms(b.latencyMs.p50), ms(b.latencyMs.p95), ms(b.latencyMs.p99), b.messagesPerLookup.toFixed(1)]],
  ))
}

/** Puts values from random nodes and gets each from another one: the DHT at a glance. */
async function dhtRound(net: Testnet, count: number, seed: string): Promise<void> {
  const rnd = new SeededRandom(`dht:${seed}`)
  const n = net.nodes.length
  const putMs: number[] = []
  const getMs: number[] = []
  let found = 0
  for (let i = 0; i < count; i++) {
    const value = rnd.bytes(100)
    let t = performance.now()
    const { key } = await net.nodes[rnd.u32() % n].dht.put(value)
    putMs.push(performance.now() - t)
    t = performance.now()
    const got = await net.nodes[rnd.u32() % n].dht.get(key).catch(() => null)
    getMs.push(performance.now() - t)
    if (got && Buffer.compare(Buffer.from(got), Buffer.from(value)) === 0) found++
  }
  const p50 = (xs: number[]): number => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]
  console.log(`DHT: ${count} puts from random nodes, ${found}/${count} found and verified from other nodes; put p50 ${ms(p50(putMs))}, get p50 ${ms(p50(getMs))}`)
}

export async function runDevnet(o: DevnetOptions): Promise<void> {
  const bar = progress('joining', o.nodes)
  const started = Date.now()
  // Traffic between the nodes is counted per link for the dashboard.
  const devnet = await createDevnet({ nodes: o.nodes, seed: o.seed, node: { topology: o.topology, encrypt: o.encrypt }, onProgress: (d) => bar.update(d) })
  const { net } = devnet
  bar.stop()
  const peers = net.nodes.map((n) => n.topology.size())
  console.log(`devnet: ${o.nodes} nodes on 127.0.0.1 joined in ${((Date.now() - started) / 1000).toFixed(1)} s (seed ${o.seed}); ` +
    `routing table sizes ${Math.min(...peers)}..${Math.max(...peers)}; bootstrap ${net.bootstrap}`)
  // The API (and node 0's metrics) from before the first batch, so /metrics shows it happen.
  const api = o.api ? await startApi(net.nodes[0], o.api, { token: o.apiToken, devnet }).catch((err) => {
    if (!isWeftError(err, 'ERR_PORT_IN_USE')) throw err
    console.log(`${err.message}; serving the API on a free port instead`)
    return startApi(net.nodes[0], '127.0.0.1:0', { token: o.apiToken, devnet })
  }) : null
  if (api) console.log(`API of node ${net.nodes[0].idHex.slice(0, 16)}… at http://${api.address}/v1/status, metrics at /metrics (try: weft peers --api ${api.address})`)
  if (api) console.log(`dashboard: http://${api.address}/`)
  console.log(`running ${o.lookups} lookups for random ids from random nodes...`)
  printBatch(await measureLookups(net, o.lookups, o.seed))
  await dhtRound(net, Math.min(50, o.lookups), o.seed)
  if (o.exit) {
    await api?.close()
    await devnet.close()
    return
  }
  console.log('the network stays up; a summary every few seconds; Ctrl-C to stop')
  let round = 0
  const timer = setInterval(() => {
    round++
    void measureLookups(net, 20, `${o.seed}:live:${round}`).then((b) => {
      const s = net.nodes.map((n) => n.status())
      const pkts = s.reduce((a, x) => a + x.transport.packetsIn, 0)
      console.log(`[${new Date().toISOString().slice(11, 19)}] ${s.length} nodes · ${(s.reduce((a, x) => a + x.peers, 0) / s.length).toFixed(1)} peers/node · ` +
        `lookups ${b.exact}/${b.lookups} exact · p50 ${ms(b.latencyMs.p50)} · ${b.meanHops.toFixed(2)} hops · ${pkts} packets in so far`)
    })
  }, o.summaryEveryMs)
  await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()))
  clearInterval(timer)
  console.log('\nstopping devnet...')
  await api?.close()
  await net.close()
}
