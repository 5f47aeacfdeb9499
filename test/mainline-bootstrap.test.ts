// Bootstrapping Weft through Mainline: two Weft nodes that know nothing of each other (no Weft
// bootstrap) find each other through a small Mainline network on 127.0.0.1 (bittorrent-dht nodes
// and Weft's own Mainline nodes), then talk Weft: ping and lookup over Weft's encrypted protocol.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { resolve } from 'node:path'
import { Node } from '../src/node/node.js'
import { realRuntime, udpNetwork } from '../src/runtime/udp.js'
import { Mainline } from '../src/services/mainline/mainline.js'
import { mainlineRendezvous } from '../src/services/mainline/rendezvous.js'
import { btAddress, btDestroy, startBt, type BtDht } from './helpers/bittorrent-dht.js'

const CLI = resolve(import.meta.dirname, '../src/cli/main.js')

/** A Mainline network on loopback: bittorrent-dht nodes and two library Mainline nodes, all through the first. */
async function mainlineNetwork(bts: BtDht[], own: Mainline[]): Promise<string> {
  const first = await startBt(false) // nobody to join: the first node of this little network
  bts.push(first)
  const boot = btAddress(first)
  for (let i = 0; i < 5; i++) bts.push(await startBt([boot]))
  for (let i = 0; i < 2; i++) {
    const m = new Mainline({ runtime: realRuntime, endpoint: await udpNetwork.bind('127.0.0.1', 0) }, { bootstrap: [boot] })
    own.push(m)
    await m.bootstrap()
  }
  return boot
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

test('two Weft nodes with no Weft bootstrap meet through Mainline, then ping and look each other up over Weft', { timeout: 40_000 }, async () => {
  const bts: BtDht[] = []
  const own: Mainline[] = []
  const nodes: Node[] = []
  try {
    const boot = await mainlineNetwork(bts, own)
    const network = `test-${process.pid}-${Date.now()}`
    const mainline = { port: 0, bootstrap: [boot], network }
    const a = new Node({ mainline })
    nodes.push(a)
    await a.start()
    assert.deepEqual(a.mainlineRendezvous?.found, [], 'the first node finds nobody')
    assert.ok(a.mainlineRendezvous!.announced > 0, 'and announces itself')
    assert.equal(a.topology.size(), 0)

    const b = new Node({ mainline })
    nodes.push(b)
    await b.start()
    const round = b.mainlineRendezvous!
    assert.deepEqual(round.found, [a.address], 'the second finds the first through Mainline')
    assert.ok(round.joined)
    assert.ok(round.announced > 0)

    // Now they talk Weft: sessions, rpc and the overlay, nothing of Mainline.
    const pong = await b.ping(a.address)
    assert.equal(pong.id, a.idHex)
    assert.equal((await a.ping(b.address)).id, b.idHex)
    const found = await b.lookup(a.id)
    assert.equal(Buffer.from(found.closest[0].id).toString('hex'), a.idHex)
    assert.equal(found.closest[0].address, a.address)
    assert.ok(a.peers().some((p) => p.id === b.idHex), 'the first node learned the second over Weft')
    assert.ok(a.status().sessions!.open > 0, 'over an encrypted session')

    // The rendezvous infohash holds both, for anyone on Mainline (bittorrent-dht included).
    const listed = await own[0].getPeers(mainlineRendezvous(network))
    assert.deepEqual(listed.sort(), [a.address, b.address].sort())
    // A node's Weft identity signs BEP 44 items as it is (Ed25519 both).
    const { target } = await a.mainline.put({ v: 'signed by a weft identity', keys: a.identity, seq: 1, salt: 'card' })
    const item = await b.mainline.get(target, { salt: 'card' })
    assert.equal(Buffer.from(item!.v as Uint8Array).toString(), 'signed by a weft identity')
    assert.deepEqual(item!.k, a.identity.publicKey)

    // /metrics shows the Mainline node's traffic and table beside Weft's.
    const text = await b.metrics.text()
    const value = (name: string) => Number(text.match(new RegExp(`^${name.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm'))?.[1] ?? NaN)
    assert.ok(value('weft_mainline_packets_total{direction="out"}') > 0, text)
    assert.ok(value('weft_mainline_queries_total{direction="out"}') > 0)
    assert.equal(value('weft_mainline_routing_table_size'), b.mainline.table.size)
    assert.ok(b.mainline.table.size > 0)
  } finally {
    await Promise.all(nodes.map((n) => n.stop()))
    await Promise.all(own.map((m) => m.close()))
    await Promise.all(bts.map(btDestroy))
  }
})

test('two Weft nodes that start at the same moment still meet: the lonely retry', { timeout: 40_000 }, async () => {
  const bts: BtDht[] = []
  const own: Mainline[] = []
  const nodes: Node[] = []
  try {
    const boot = await mainlineNetwork(bts, own)
    const mainline = { port: 0, bootstrap: [boot], network: `race-${process.pid}-${Date.now()}`, rendezvous: { retryAloneMs: 300 } }
    const a = new Node({ mainline })
    const b = new Node({ mainline })
    nodes.push(a, b)
    await Promise.all([a.start(), b.start()])
    await until(() => a.topology.size() > 0 && b.topology.size() > 0, 15_000, 'the two nodes to meet')
    assert.equal((await a.ping(b.address)).id, b.idHex)
    assert.equal((await b.ping(a.address)).id, a.idHex)
  } finally {
    await Promise.all(nodes.map((n) => n.stop()))
    await Promise.all(own.map((m) => m.close()))
    await Promise.all(bts.map(btDestroy))
  }
})

/** Starts `weft node` and resolves with its output once it printed the line matching `ready`. */
function startCli(args: string[], ready: RegExp): Promise<{ proc: ChildProcess; out: string }> {
  const proc = spawn(process.execPath, [CLI, 'node', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`weft node did not get ready: ${out}`)) }, 20_000)
    const onData = (d: Buffer) => {
      out += d
      if (ready.test(out)) { clearTimeout(timer); resolve({ proc, out }) }
    }
    proc.stdout!.on('data', onData)
    proc.stderr!.on('data', onData)
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`weft node exited with ${code}: ${out}`)) })
  })
}

function stopCli(proc: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null) return resolve()
    proc.removeAllListeners('exit')
    proc.once('exit', () => resolve())
    proc.kill('SIGINT')
  })
}

test('weft node --mainline --network: the second process joins the first through Mainline', { timeout: 40_000 }, async () => {
  const bts: BtDht[] = []
  const own: Mainline[] = []
  const procs: ChildProcess[] = []
  try {
    const boot = await mainlineNetwork(bts, own)
    const args = ['--port', '0', '--no-api', '--log-level', 'silent', '--mainline', '--mainline-port', '0', '--mainline-bootstrap', boot, '--network', `cli-${process.pid}`]
    const a = await startCli(args, /network .* announced to \d+ nodes/)
    procs.push(a.proc)
    assert.match(a.out, /started\s+a new network/)
    assert.match(a.out, /0 weft peers found, announced to [1-9]\d* nodes/)
    const b = await startCli(args, /network .* announced to \d+ nodes/)
    procs.push(b.proc)
    assert.match(b.out, /joined\s+through mainline: 1 peers known/)
    assert.match(b.out, /1 weft peers found, joined through them/)
    assert.match(b.out, /mainline 127\.0\.0\.1:\d+ +\(node id [0-9a-f]{40}/)
  } finally {
    await Promise.all(procs.map(stopCli))
    await Promise.all(own.map((m) => m.close()))
    await Promise.all(bts.map(btDestroy))
  }
})

test('weft node: --network without --mainline is one clear line and a non-zero exit', { timeout: 20_000 }, async () => {
  const proc = spawn(process.execPath, [CLI, 'node', '--port', '0', '--no-api', '--network', 'x'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let err = ''
  proc.stderr!.on('data', (d) => { err += d })
  const code = await new Promise<number | null>((res) => proc.on('exit', res))
  assert.equal(code, 1)
  assert.match(err, /^weft: --network, --mainline-bootstrap and --mainline-bep42 need --mainline \[ERR_BAD_ARGUMENT\]\n$/)
})
