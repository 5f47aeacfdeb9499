// The library as a program uses it: `import { Node } from 'weft'`, typed errors with codes,
// events, abort, and a restart that keeps the identity.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { rejectsWith } from './helpers/errors.js'
import { createSocket } from 'node:dgram'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Node, WeftError, isWeftError, type Contact } from '../src/index.js'

test('start, join, lookup, ping, events and stop', async () => {
  const a = new Node()
  const b = new Node()
  const added: Contact[] = []
  a.on('peer:added', (c) => added.push(c))
  await a.start()
  b.options.bootstrap = [a.address]
  await b.start()
  try {
    assert.equal(added.length, 1)
    assert.deepEqual(Buffer.from(added[0].id), Buffer.from(b.id))
    const r = await a.lookup(b.idHex)
    assert.equal(r.closest[0].address, b.address)
    const pong = await b.ping(a.address)
    assert.equal(pong.id, a.idHex)
    assert.equal(a.status().peers, 1)
    assert.equal(b.peers()[0].id, a.idHex)
  } finally {
    await b.stop()
    await a.stop()
  }
  await rejectsWith(a.lookup(b.idHex), 'ERR_NOT_RUNNING')
})

test('every failure is a WeftError with a stable code', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-node-'))
  const silent = createSocket('udp4')
  await new Promise<void>((r) => silent.bind(0, '127.0.0.1', () => r()))
  const node = new Node()
  try {
    assert.throws(() => new Node({ keyFile: join(dir, 'missing.pem') }), (e) => isWeftError(e, 'ERR_KEY_FILE'))
    await rejectsWith(new Node({ port: silent.address().port }).start(), 'ERR_PORT_IN_USE')
    await rejectsWith(new Node({ bootstrap: [`127.0.0.1:${silent.address().port}`], rpc: { maxRetries: 1 } }).start(), 'ERR_BOOTSTRAP_FAILED')
    await rejectsWith(new Node({ bootstrap: ['not-an-address'] }).start(), 'ERR_BAD_ADDRESS')
    await node.start()
    await rejectsWith(node.lookup('xyz'), 'ERR_BAD_ID')
    await rejectsWith(node.lookup('00'.repeat(32), { signal: AbortSignal.abort() }), 'ERR_ABORTED')
    await rejectsWith(node.ping(`127.0.0.1:${silent.address().port}`), 'ERR_TIMEOUT')
  } finally {
    silent.close()
    await node.stop()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a node started again from its data directory keeps its id', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-node-'))
  try {
    const first = new Node({ dataDir: dir })
    await first.start()
    const id = first.idHex
    await first.stop()
    const again = new Node({ dataDir: dir })
    assert.equal(again.idHex, id)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a start refused for bad topology options releases its UDP port', async () => {
  const probe = createSocket('udp4')
  await new Promise<void>((resolve) => probe.bind(0, '127.0.0.1', resolve))
  const port = probe.address().port
  probe.close()
  await rejectsWith(new Node({ port, topologyOptions: { k: 99 } }).start(), 'ERR_BAD_ARGUMENT')
  // The port is free again: a second node binds it (before the fix the failed start kept it open).
  const again = new Node({ port })
  await again.start()
  assert.equal(again.address, `127.0.0.1:${port}`)
  await again.stop()
})
