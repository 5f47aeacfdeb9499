// /metrics on a node of a multi-node loopback network, scraped over real HTTP before and after
// lookups, DHT puts and gets and a malformed datagram: the text parses as Prometheus exposition
// and the counters moved by what happened.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { callApi, startApi } from '../src/api/server.js'
import { parseAddress } from '../src/wire/address.js'
import { Node } from '../src/node/node.js'
import { createTestnet } from '../src/node/testnet.js'
import { SeededRandom } from '../src/runtime/prng.js'
import { WeftError } from '../src/errors.js'
import { identityFromSeed } from '../src/identity/keys.js'
import { expectedPongBytes, type Rpc } from '../src/rpc/rpc.js'
import { encodeRecord, signMutable } from '../src/services/dht/records.js'
import { MessageType } from '../src/wire/messages.js'

type Samples = Map<string, number>

/** Parses the text format strictly: every sample belongs to a family with a # TYPE line. */
export function parseMetrics(text: string): Samples {
  const samples: Samples = new Map()
  const types = new Map<string, string>()
  for (const line of text.split('\n')) {
    if (line === '') continue
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line)
    if (meta) {
      if (meta[1] === 'TYPE') {
        assert.match(meta[3], /^(counter|gauge|histogram|summary|untyped)$/, line)
        types.set(meta[2], meta[3])
      }
      continue
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*)\})? (\S+)$/.exec(line)
    assert.ok(m, `not a sample line: ${JSON.stringify(line)}`)
    const family = m[1].replace(/_(bucket|sum|count)$/, '')
    assert.ok(types.has(m[1]) || types.get(family) === 'histogram', `no # TYPE for ${m[1]}`)
    const value = Number(m[4] === '+Inf' ? Infinity : m[4])
    assert.ok(!Number.isNaN(value), line)
    const key = m[2] ? `${m[1]}{${m[3].replace(/,$/, '')}}` : m[1]
    assert.ok(!samples.has(key), `duplicate sample ${key}`)
    samples.set(key, value)
  }
  return samples
}

const get = (s: Samples, key: string): number => s.get(key) ?? 0
/** The sum of every sample of a metric, whatever its labels. */
const sum = (s: Samples, name: string): number => {
  let total = 0
  for (const [k, v] of s) if (k === name || k.startsWith(`${name}{`)) total += v
  return total
}

test('/metrics during a multi-node run: parses, and the counters move', async () => {
  const net = await createTestnet({ nodes: 8, seed: 'metrics-test' })
  const node = net.nodes[0]
  const api = await startApi(node, '127.0.0.1:0')
  const scrape = async (): Promise<Samples> => {
    const res = await fetch(`http://${api.address}/metrics`)
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
    return parseMetrics(await res.text())
  }
  try {
    const before = await scrape()
    assert.equal(get(before, 'weft_routing_table_size'), 7)
    assert.equal(sum(before, 'weft_routing_table_contacts'), 7)
    assert.equal(get(before, 'weft_lookups_total{outcome="ok"}'), 0)

    const rnd = new SeededRandom('metrics-test')
    for (let i = 0; i < 10; i++) await node.lookup(rnd.bytes(32))
    const keys = []
    for (let i = 0; i < 3; i++) keys.push((await node.dht.put(rnd.bytes(50))).key)
    for (const key of keys) assert.ok(await node.dht.get(key)) // found in node 0's own store: no GET goes out
    await net.nodes[1].dht.put(rnd.bytes(60)) // node 0 is among the k nearest of every key here: it stores this
    // One malformed datagram at node 0.
    const sock = createSocket('udp4')
    const { host, port } = parseAddress(node.address)
    await new Promise<void>((resolve, reject) => sock.send(Buffer.from('not a weft message'), port, host, (err) => (err ? reject(err) : resolve())))
    sock.close()
    const deadline = Date.now() + 2000
    // The node encrypts: an unsealed datagram is dropped by the session layer, before the decoder.
    while (node.status().sessions!.malformed === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))

    const after = await scrape()
    const moved = (key: string): number => get(after, key) - get(before, key)
    assert.equal(moved('weft_lookups_total{outcome="ok"}'), 10)
    assert.equal(moved('weft_lookup_duration_seconds_count'), 10)
    assert.equal(get(after, 'weft_lookup_duration_seconds_bucket{le="+Inf"}'), get(after, 'weft_lookup_duration_seconds_count'))
    assert.ok(moved('weft_lookup_duration_seconds_sum') > 0)
    assert.equal(moved('weft_lookup_hops_count'), 10)
    assert.ok(moved('weft_rpc_requests_sent_total{type="find_node",outcome="ok"}') >= 10)
    assert.ok(moved('weft_rpc_requests_sent_total{type="put",outcome="ok"}') >= 3 * 7, 'a put goes to every other node here')
    assert.ok(moved('weft_rpc_requests_received_total{type="put",outcome="ok"}') >= 1)
    assert.ok(moved('weft_bytes_total{direction="out"}') > 0)
    assert.ok(moved('weft_bytes_total{direction="in"}') > 0)
    assert.ok(moved('weft_packets_total{direction="in"}') > 0)
    assert.equal(moved('weft_packets_dropped_total{reason="not_sealed"}'), 1)
    assert.ok(get(after, 'weft_sessions') >= 1)
    assert.ok(get(after, 'weft_session_handshakes_total{outcome="opened"}') >= 1)
    assert.ok(moved('weft_dht_records') >= 1)
    assert.equal(get(after, 'weft_dht_records'), node.status().records.count)
    assert.ok(get(after, 'weft_dht_record_bytes') > 0)

    // Each node has its own registry: node 1's metrics know nothing of node 0's lookups.
    const other = parseMetrics(await net.nodes[1].metrics.text())
    assert.equal(get(other, 'weft_lookups_total{outcome="ok"}'), 0)
    assert.equal(get(other, 'weft_routing_table_size'), 7)

    // With `metrics: true` a node counts from its start: its join's requests are there.
    const late = new Node({ metrics: true, bootstrap: [net.bootstrap] })
    await late.start()
    try {
      const joined = parseMetrics(await late.metrics.text())
      assert.ok(get(joined, 'weft_rpc_requests_sent_total{type="find_node",outcome="ok"}') >= 7)
      assert.equal(get(joined, 'weft_routing_table_size'), 8)
    } finally {
      await late.stop()
    }
  } finally {
    await api.close()
    await net.close()
  }
})

test('/metrics scraped during `weft devnet`: the counters move as the devnet works', async () => {
  const cli = new URL('../src/cli/main.js', import.meta.url).pathname
  const proc = spawn(process.execPath, [cli, 'devnet', '--nodes', '16', '--lookups', '40', '--api', '127.0.0.1:0', '--seed', 'metrics-devnet'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  proc.stdout.on('data', (d) => { out += d })
  proc.stderr.on('data', (d) => { out += d })
  const waitFor = async (re: RegExp): Promise<RegExpExecArray> => {
    const deadline = Date.now() + 60_000
    for (;;) {
      const m = re.exec(out)
      if (m) return m
      if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`devnet: no ${re} in:\n${out}`)
      await new Promise((r) => setTimeout(r, 20))
    }
  }
  try {
    const api = (await waitFor(/at http:\/\/(\S+)\/v1\/status/))[1]
    await waitFor(/the network stays up/)
    const scrape = async (): Promise<Samples> => parseMetrics(await (await fetch(`http://${api}/metrics`)).text())
    const before = await scrape()
    assert.ok(get(before, 'weft_rpc_requests_received_total{type="find_node",outcome="ok"}') > 0, 'node 0 answered the joins and lookups')
    assert.ok(get(before, 'weft_dht_records') >= 20, 'node 0 is among the 20 nearest of every key in a 16-node devnet')
    // Work through node 0's API while the devnet runs.
    const status = await callApi<{ id: string }>(api, '/v1/status')
    await callApi(api, `/v1/lookup/${status.id}`)
    await callApi(api, '/v1/dht/put', { method: 'POST', body: { value: Buffer.from('during the devnet').toString('base64') } })
    const after = await scrape()
    const moved = (key: string): number => get(after, key) - get(before, key)
    // At least: the devnet's own rounds every 5 s may also look up from node 0.
    assert.ok(moved('weft_lookups_total{outcome="ok"}') >= 1)
    assert.ok(moved('weft_lookup_duration_seconds_count') >= 1)
    assert.ok(moved('weft_rpc_requests_sent_total{type="put",outcome="ok"}') >= 15)
    assert.ok(moved('weft_packets_total{direction="in"}') > 0)
    assert.ok(moved('weft_bytes_total{direction="out"}') > 0)
    assert.equal(moved('weft_dht_records'), 1)
  } finally {
    proc.kill('SIGINT')
    await new Promise((r) => proc.once('exit', r))
  }
})

test('a request answered later (a signature checked off the event loop) is counted by how it ended', async () => {
  const net = await createTestnet({ nodes: 2, seed: 'metrics-async', node: { metrics: true } })
  try {
    const [a, b] = net.nodes
    const rpc = (a as unknown as { rpc: Rpc }).rpc
    const good = signMutable(identityFromSeed(new Uint8Array(32).fill(9)), Buffer.from('signed'), 1)
    const forged = { ...good, value: Buffer.from('forged') }
    await rpc.requestAsync(b.address, { type: MessageType.PING }, expectedPongBytes(b.address)) // a token first
    await rpc.requestAsync(b.address, { type: MessageType.PUT, record: encodeRecord(good) })
    await assert.rejects(rpc.requestAsync(b.address, { type: MessageType.PUT, record: encodeRecord(forged) }), (e: unknown) => e instanceof WeftError && e.code === 'ERR_BAD_SIGNATURE')
    const s = parseMetrics(await b.metrics.text())
    assert.equal(get(s, 'weft_rpc_requests_received_total{type="put",outcome="ok"}'), 1)
    assert.equal(get(s, 'weft_rpc_requests_received_total{type="put",outcome="ERR_BAD_SIGNATURE"}'), 1)
  } finally {
    await net.close()
  }
})
