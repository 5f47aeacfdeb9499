// `weft subscribe` and `weft publish <topic> <message>` through real nodes' control APIs (the
// server-sent event stream and the publish route), and the API's coded refusals.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { startApi } from '../src/api/server.js'
import { createTestnet } from '../src/node/testnet.js'

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url))

function weft(args: string[]): { done: Promise<{ code: number | null; out: string; err: string }>; onErr(fn: (s: string) => void): void } {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = '', err = ''
  const listeners: ((s: string) => void)[] = []
  child.stdout.on('data', (d) => { out += d })
  child.stderr.on('data', (d) => { err += d; for (const l of listeners) l(err) })
  const timer = setTimeout(() => child.kill(), 30_000)
  return {
    done: new Promise((resolve) => child.on('close', (code) => { clearTimeout(timer); resolve({ code, out, err }) })),
    onErr: (fn) => listeners.push(fn),
  }
}

test('weft subscribe and weft publish through the API; coded refusals', { timeout: 90_000 }, async () => {
  const net = await createTestnet({ nodes: 6, seed: 'pubsub-cli', node: { encrypt: false } })
  const apis = await Promise.all([startApi(net.nodes[0], '127.0.0.1:0'), startApi(net.nodes[1], '127.0.0.1:0')])
  try {
    const sub = weft(['subscribe', 'chat', '--api', apis[0].address, '--json', '--count', '2'])
    await new Promise<void>((resolve) => sub.onErr((e) => { if (e.includes('subscribed')) resolve() }))
    for (const text of ['hello', 'wörld']) {
      const pub = await weft(['publish', 'chat', text, '--api', apis[1].address, '--json']).done
      assert.equal(pub.code, 0, pub.err)
      assert.match(JSON.parse(pub.out).id, /^[0-9a-f]{32}$/)
    }
    const r = await sub.done
    assert.equal(r.code, 0, r.err)
    const lines = r.out.trim().split('\n').map((l) => JSON.parse(l) as { data: string; author: string })
    assert.deepEqual(lines.map((m) => Buffer.from(m.data, 'base64').toString()).sort(), ['hello', 'wörld'])
    assert.equal(lines[0].author, Buffer.from(net.nodes[1].identity.publicKey).toString('hex'))

    // Refusals: one clear line and a non-zero exit from the CLI; a coded body from the API.
    const priv = await weft(['publish', 'chat', 'psst', '--private', '--api', apis[1].address, '--json']).done
    assert.equal(priv.code, 0, priv.err) // Dandelion++ stem first
    const bad = await weft(['publish', 'chat', 'x'.repeat(2000), '--api', apis[1].address]).done
    assert.notEqual(bad.code, 0)
    assert.match(bad.err, /ERR_TOO_LARGE/)
    const res = await fetch(`http://${apis[0].address}/v1/pubsub/subscribe?topic=x&owner=nothex`)
    assert.equal(res.status, 400)
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'ERR_BAD_ARGUMENT')
    const big = await fetch(`http://${apis[0].address}/v1/pubsub/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ topic: 'chat', data: Buffer.alloc(2000).toString('base64') }) })
    assert.equal(big.status, 413)
    assert.equal(((await big.json()) as { error: { code: string } }).error.code, 'ERR_TOO_LARGE')
  } finally {
    await Promise.all(apis.map((a) => a.close()))
    await net.close()
  }
})
