// The `weft` command as a user runs it: two node processes, a lookup through the API, and one
// clear line with a non-zero exit for each kind of bad input.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createSocket } from 'node:dgram'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

const CLI = resolve(import.meta.dirname, '../src/cli/main.js')

function weft(args: string[], timeout = 30_000) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout })
  return { code: r.status, out: r.stdout, err: r.stderr }
}

/** Starts `weft node` and resolves once it prints its API address. */
function startNode(args: string[]): Promise<{ proc: ChildProcess; id: string; address: string; api: string; output: () => string }> {
  const proc = spawn(process.execPath, [CLI, 'node', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node did not start: ${out}`)), 20_000)
    const onData = (d: Buffer) => {
      out += d
      const id = /node id\s+([0-9a-f]{64})/.exec(out)?.[1]
      const address = /address\s+(\S+)/.exec(out)?.[1]
      const api = /api\s+http:\/\/(\S+)\/v1/.exec(out)?.[1]
      if (id && address && api) { clearTimeout(timer); resolve({ proc, id, address, api, output: () => out }) }
    }
    proc.stdout!.on('data', onData)
    proc.stderr!.on('data', onData)
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`node exited with ${code}: ${out}`)) })
  })
}

function stop(proc: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null) return resolve(proc.exitCode)
    proc.removeAllListeners('exit')
    proc.once('exit', (code) => resolve(code))
    proc.kill('SIGINT')
  })
}

test('two weft node processes: the second joins through the first and weft lookup finds it', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-cli-'))
  const procs: ChildProcess[] = []
  try {
    const a = await startNode(['--port', '0', '--api', '127.0.0.1:0', '--data', join(dir, 'a')])
    procs.push(a.proc)
    assert.equal(statSync(join(dir, 'a', 'identity.pem')).mode & 0o777, 0o600)
    const b = await startNode(['--port', '0', '--api', '127.0.0.1:0', '--data', join(dir, 'b'), '--bootstrap', a.address])
    procs.push(b.proc)
    const r = weft(['lookup', b.id, '--api', a.api, '--json'])
    assert.equal(r.code, 0, r.err)
    const found = JSON.parse(r.out)
    assert.equal(found.closest[0].id, b.id)
    assert.equal(found.closest[0].address, b.address)
    const peers = weft(['peers', '--api', a.api])
    assert.equal(peers.code, 0, peers.err)
    assert.match(peers.out, new RegExp(b.id))
    const status = weft(['status', '--api', b.api, '--json'])
    assert.equal(JSON.parse(status.out).peers, 1)
    // Ctrl-C leaves cleanly, and the identity is reused on restart.
    assert.equal(await stop(b.proc), 0)
    assert.match(b.output(), /left the network/)
    const again = await startNode(['--port', '0', '--api', '127.0.0.1:0', '--data', join(dir, 'b'), '--bootstrap', a.address])
    procs.push(again.proc)
    assert.equal(again.id, b.id)
  } finally {
    await Promise.all(procs.map(stop))
    rmSync(dir, { recursive: true, force: true })
  }
})

test('bad input from a person is one clear line and a non-zero exit', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-cli-'))
  const sock = createSocket('udp4')
  try {
    const badId = weft(['lookup', 'not-an-id', '--api', '127.0.0.1:9'])
    assert.notEqual(badId.code, 0)
    assert.match(badId.err, /ERR_BAD_ID/)
    assert.equal(badId.err.trim().split('\n').length, 1)

    const noApi = weft(['status', '--api', '127.0.0.1:9'])
    assert.notEqual(noApi.code, 0)
    assert.match(noApi.err, /no Weft node API at 127\.0\.0\.1:9/)

    // Nobody answers on this port: the bootstrap fails after its retries.
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()))
    const silent = `127.0.0.1:${sock.address().port}`
    const noBoot = weft(['node', '--port', '0', '--no-api', '--bootstrap', silent])
    assert.notEqual(noBoot.code, 0)
    assert.match(noBoot.err, /ERR_BOOTSTRAP_FAILED/)

    const inUse = weft(['node', '--port', String(sock.address().port), '--no-api'])
    assert.notEqual(inUse.code, 0)
    assert.match(inUse.err, /already in use.*ERR_PORT_IN_USE/)

    const missing = weft(['node', '--port', '0', '--no-api', '--key-file', join(dir, 'nope.pem')])
    assert.notEqual(missing.code, 0)
    assert.match(missing.err, /does not exist.*ERR_KEY_FILE/)

    writeFileSync(join(dir, 'corrupt.pem'), '-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n')
    const corrupt = weft(['node', '--port', '0', '--no-api', '--key-file', join(dir, 'corrupt.pem')])
    assert.notEqual(corrupt.code, 0)
    assert.match(corrupt.err, /corrupt.*ERR_KEY_FILE/)

    const badAddr = weft(['node', '--bootstrap', 'nowhere'])
    assert.notEqual(badAddr.code, 0)
    assert.match(badAddr.err, /not an address/)
  } finally {
    sock.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('weft put / get / announce / providers / keygen through two node processes', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-cli-'))
  const procs: ChildProcess[] = []
  try {
    const a = await startNode(['--port', '0', '--api', '127.0.0.1:0'])
    procs.push(a.proc)
    const b = await startNode(['--port', '0', '--api', '127.0.0.1:0', '--bootstrap', a.address])
    procs.push(b.proc)
    const put = weft(['put', 'a value from the command line', '--api', a.api, '--json'])
    assert.equal(put.code, 0, put.err)
    const { key } = JSON.parse(put.out)
    const got = weft(['get', key, '--api', b.api])
    assert.equal(got.code, 0, got.err)
    assert.equal(got.out, 'a value from the command line')
    // A file in, a file out.
    writeFileSync(join(dir, 'in.bin'), Buffer.from([0, 1, 2, 250, 255]))
    const fileKey = JSON.parse(weft(['put', '--file', join(dir, 'in.bin'), '--api', b.api, '--json']).out).key
    assert.equal(weft(['get', fileKey, '--out', join(dir, 'out.bin'), '--api', a.api]).code, 0)
    assert.deepEqual(readFileSync(join(dir, 'out.bin')), Buffer.from([0, 1, 2, 250, 255]))
    // Mutable: signed here with a key file, newest wins, stale refused.
    const keyFile = join(dir, 'signer.pem')
    const gen = weft(['keygen', keyFile])
    assert.equal(gen.code, 0, gen.err)
    const publicKey = /public key ([0-9a-f]{64})/.exec(gen.out)![1]
    assert.equal(statSync(keyFile).mode & 0o777, 0o600)
    for (const v of ['first', 'second']) assert.equal(weft(['put', '--mutable', '--key-file', keyFile, '--salt', 'app', v, '--api', a.api]).code, 0)
    const latest = JSON.parse(weft(['get', '--mutable', publicKey, '--salt', 'app', '--api', b.api, '--json']).out)
    assert.equal(latest.seq, 1)
    assert.equal(Buffer.from(latest.value, 'base64').toString(), 'second')
    const stale = weft(['put', '--mutable', '--key-file', keyFile, '--salt', 'app', '--seq', '0', 'old', '--api', a.api])
    assert.notEqual(stale.code, 0)
    assert.match(stale.err, /ERR_STALE_SEQ/)
    // Announce a topic from one node; the other lists it as a provider at its address.
    assert.equal(weft(['announce', 'weft-test-topic', '--api', b.api]).code, 0)
    const providers = JSON.parse(weft(['providers', 'weft-test-topic', '--api', a.api, '--json']).out)
    assert.equal(providers.length, 1)
    assert.equal(providers[0].id, b.id)
    assert.deepEqual(providers[0].addresses, [b.address])
    // Bad input: one line, a code, a non-zero exit.
    const big = weft(['put', 'x'.repeat(1001), '--api', a.api])
    assert.notEqual(big.code, 0)
    assert.match(big.err, /ERR_VALUE_TOO_LARGE/)
    const missing = weft(['get', 'ab'.repeat(32), '--api', a.api])
    assert.notEqual(missing.code, 0)
    assert.match(missing.err, /no value for key.*ERR_NOT_FOUND/)
    const noKey = weft(['put', '--mutable', 'v', '--api', a.api])
    assert.match(noKey.err, /--key-file/)
  } finally {
    await Promise.all(procs.map(stop))
    rmSync(dir, { recursive: true, force: true })
  }
})

test('weft node --topology tapestry: weft publish on one node, weft locate from the others finds it', { timeout: 60_000 }, async () => {
  const procs: ChildProcess[] = []
  try {
    const a = await startNode(['--port', '0', '--api', '127.0.0.1:0', '--topology', 'tapestry'])
    procs.push(a.proc)
    const others = []
    for (let i = 0; i < 3; i++) {
      const n = await startNode(['--port', '0', '--api', '127.0.0.1:0', '--topology', 'tapestry', '--bootstrap', a.address])
      procs.push(n.proc)
      others.push(n)
    }
    const server = others[2]
    const pub = weft(['publish', 'a film', '--api', server.api, '--json'])
    assert.equal(pub.code, 0, pub.err)
    const published = JSON.parse(pub.out)
    assert.equal(published.reachedRoot, true, pub.out)
    assert.ok(published.pointers >= 1, pub.out)
    for (const client of [a, others[0], others[1]]) {
      const loc = weft(['locate', 'a film', '--api', client.api, '--json'])
      assert.equal(loc.code, 0, loc.err)
      const found = JSON.parse(loc.out)
      assert.equal(found.object, published.object)
      assert.deepEqual(found.server, { id: server.id, address: server.address }, loc.out)
    }
    // Nothing published under that name: a clear answer and a non-zero exit.
    const none = weft(['locate', 'nobody has this', '--api', a.api])
    assert.notEqual(none.code, 0)
    assert.match(none.err, /no server found.*ERR_NOT_FOUND/)
  } finally {
    await Promise.all(procs.map(stop))
  }
})

test('weft locate against a node of another topology is one clear error', { timeout: 30_000 }, async () => {
  const a = await startNode(['--port', '0', '--api', '127.0.0.1:0'])
  try {
    const r = weft(['locate', 'a film', '--api', a.api])
    assert.notEqual(r.code, 0)
    assert.match(r.err, /ERR_BAD_ARGUMENT/)
    assert.match(r.err, /tapestry/)
  } finally {
    await stop(a.proc)
  }
})
