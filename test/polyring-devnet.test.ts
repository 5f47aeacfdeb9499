// `weft devnet --topology polyring --shape 4x3` (16 real peers on loopback, encrypted, each with
// its own API) in a child process, and `weft send`, `weft broadcast`, `weft multicast` and
// `weft polyring` as further child processes against its peers' APIs: every message arrives
// exactly where it should, exactly once (checked in each peer's GET /v1/polyring/messages).
// WEFT_SEED replays a run; every failure names it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { SeededRandom } from '../src/runtime/prng.js'

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url))
const SEED = process.env.WEFT_SEED ?? 'polyring-devnet-1'
const PEERS = 4 + 4 * 3

function weft(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = '', err = ''
  child.stdout.on('data', (d) => { out += d })
  child.stderr.on('data', (d) => { err += d })
  const timer = setTimeout(() => child.kill(), 30_000)
  return new Promise((resolve) => child.on('close', (code) => { clearTimeout(timer); resolve({ code, out, err }) }))
}

interface Peer { guid: string; api: string }
interface Received { seq: number; kind: string; from: string; data: string }

async function received(p: Peer): Promise<Received[]> {
  const res = await fetch(`http://${p.api}/v1/polyring/messages`)
  assert.equal(res.status, 200)
  const body = (await res.json()) as { guid: string; messages: Received[] }
  assert.equal(body.guid, p.guid)
  return body.messages.filter((m) => Buffer.from(m.data, 'base64').toString().startsWith('cli:'))
}

test('weft devnet --topology polyring: send, broadcast and multicast between processes', { timeout: 120_000 }, async (t) => {
  const random = new SeededRandom(SEED)
  const devnet: ChildProcess = spawn(process.execPath, [CLI, 'devnet', '--topology', 'polyring', '--shape', '4x3', '--api', '127.0.0.1:0', '--seed', SEED], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = '', err = ''
  devnet.stderr!.on('data', (d) => { err += d })
  const exited = new Promise<number | null>((resolve) => devnet.on('close', (code) => resolve(code)))
  t.after(async () => { if (devnet.exitCode === null) { devnet.kill('SIGINT'); await exited } })
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`devnet not ready in 60 s (seed ${SEED}):\n${out}\n${err}`)), 60_000)
    devnet.stdout!.on('data', (d) => {
      out += d
      if (out.includes('polyring devnet ready')) { clearTimeout(timer); resolve() }
    })
    devnet.on('close', (code) => reject(new Error(`devnet exited ${code} (seed ${SEED}):\n${out}\n${err}`)))
  })
  assert.match(out, /self-check: all delivered/, out)
  const peers: Peer[] = [...out.matchAll(/^peer (\[[0-9.]+\]) udp \S+ api (\S+)$/gm)].map((m) => ({ guid: m[1], api: m[2] }))
  assert.equal(peers.length, PEERS, out)
  assert.equal(new Set(peers.map((p) => p.guid)).size, PEERS)

  // The status through `weft polyring`: a centre peer has 3 siblings and 3 children.
  const status = await weft(['polyring', '--json', '--api', peers[0].api])
  assert.equal(status.code, 0, status.err)
  const s = JSON.parse(status.out) as { guid: string; siblings: unknown[]; children: unknown[] }
  assert.deepEqual([s.guid, s.siblings.length, s.children.length], [peers[0].guid, 3, 3])

  // Four routed messages, one broadcast from a leaf, one multicast to 5 GUIDs: each a process.
  const sends = Array.from({ length: 4 }, (_, i) => ({ from: peers[random.u32() % PEERS], to: peers[random.u32() % PEERS], text: `cli:send:${i}` }))
  const leaf = peers[4 + (random.u32() % (PEERS - 4))]
  const mcFrom = peers[random.u32() % PEERS]
  const mcTo = [...new Set(Array.from({ length: 5 }, () => peers[random.u32() % PEERS].guid))]
  const runs = await Promise.all([
    ...sends.map((x) => weft(['send', x.to.guid, x.text, '--api', x.from.api, '--json'])),
    weft(['broadcast', 'cli:broadcast', '--api', leaf.api]),
    weft(['multicast', mcTo.join(','), 'cli:multicast', '--api', mcFrom.api, '--json']),
  ])
  for (const r of runs) assert.equal(r.code, 0, r.err)
  assert.equal(JSON.parse(runs[0].out).from, sends[0].from.guid)
  assert.match(runs[4].out, new RegExp(`broadcast from ${leaf.guid.replace(/[[\].]/g, '\\$&')}`))

  // Poll every peer until all arrived, then once more after a pause (a duplicate would show).
  const want = sends.length + (PEERS - 1) + mcTo.length
  const end = Date.now() + 15_000
  let got: Received[][] = []
  for (;;) {
    got = await Promise.all(peers.map(received))
    if (got.flat().length >= want || Date.now() > end) break
    await new Promise((r) => setTimeout(r, 100))
  }
  await new Promise((r) => setTimeout(r, 300))
  got = await Promise.all(peers.map(received))
  for (const [i, p] of peers.entries()) {
    const texts = got[i].map((m) => Buffer.from(m.data, 'base64').toString()).sort()
    const expect = [
      ...sends.filter((x) => x.to.guid === p.guid).map((x) => x.text),
      ...(p.guid === leaf.guid ? [] : ['cli:broadcast']),
      ...(mcTo.includes(p.guid) ? ['cli:multicast'] : []),
    ].sort()
    assert.deepEqual(texts, expect, `messages at ${p.guid} (seed ${SEED})`)
    for (const m of got[i]) {
      const text = Buffer.from(m.data, 'base64').toString()
      const origin = text === 'cli:broadcast' ? leaf.guid : text === 'cli:multicast' ? mcFrom.guid : sends[Number(text.split(':')[2])].from.guid
      assert.equal(m.from, origin, `origin of ${text} at ${p.guid}`)
    }
  }

  // A bad GUID is refused by the CLI before it asks the node.
  const bad = await weft(['send', '[1..2]', 'x', '--api', peers[0].api])
  assert.notEqual(bad.code, 0)
  assert.match(bad.err, /ERR_BAD_ARGUMENT/)

  devnet.kill('SIGINT')
  assert.equal(await exited, 0, `devnet exit (seed ${SEED}): ${err}`)
})
