// The control API: every route over real HTTP against a node in a small loopback network, each
// answer checked against spec/openapi.yaml; bad input of every kind (one coded JSON error with
// the documented status); the bearer token on a non-loopback bind; and spec/server drift.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { apiRoutes, buildApi, callApi, startApi, type ApiServer } from '../src/api/server.js'
import { isLoopback, tokenMatches } from '../src/api/auth.js'
import { httpStatus } from '../src/api/errors.js'
import { idToHex } from '../src/identity/node-id.js'
import { identityFromSeed } from '../src/identity/keys.js'
import { Node } from '../src/node/node.js'
import { createTestnet, type Testnet } from '../src/node/testnet.js'
import { encodeRecord, signMutable } from '../src/services/dht/records.js'
import { rejectsWith } from './helpers/errors.js'
import { checkAnswer, checkError, specRoutes } from './helpers/openapi.js'

let net: Testnet
let node: Node
let server: ApiServer
let app: FastifyInstance

before(async () => {
  net = await createTestnet({ nodes: 6, seed: 'api-test' })
  node = net.nodes[0]
  server = await startApi(node, '127.0.0.1:0')
  app = buildApi(node)
  await app.ready()
})
after(async () => {
  await app?.close()
  await server?.close()
  await net?.close()
})

/** A real HTTP request; the answer is checked against the document before it is returned. */
async function http(method: string, path: string, body?: unknown, headers: Record<string, string> = {}, base = server.address) {
  const res = await fetch(`http://${base}${path}`, {
    method, body: body === undefined ? undefined : JSON.stringify(body),
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
  })
  const type = (res.headers.get('content-type') ?? '').split(';')[0]
  const json = type === 'application/json' ? await res.json() : await res.text()
  checkAnswer(method, path, res.status, json, type)
  return { status: res.status, body: json as any }
}

/** A bad request through fastify's inject: one coded error, the right status, a documented answer. */
async function refused(method: string, url: string, code: string, status: number, payload?: string | object, headers: Record<string, string> = {}) {
  const res = await app.inject({
    method: method as 'GET', url, payload,
    headers: typeof payload === 'object' ? { 'content-type': 'application/json', ...headers } : headers,
  })
  const body = res.json()
  assert.equal(res.statusCode, status, `${method} ${url}: ${res.body}`)
  assert.equal(body.error?.code, code, `${method} ${url}: ${res.body}`)
  assert.equal(httpStatus(code as never), status)
  checkError(body)
  if (code !== 'ERR_UNKNOWN_ROUTE') checkAnswer(method, url, status, body)
}

test('the routes the server registers are exactly the routes in spec/openapi.yaml', () => {
  const served = apiRoutes(app).map((r) => `${r.method} ${r.url}`).sort()
  assert.ok(served.length >= 12, served.join(', '))
  assert.deepEqual(served, specRoutes())
})

test('every route answers over real HTTP as the document says', async () => {
  const other = net.nodes[1]
  const status = await http('GET', '/v1/status')
  assert.equal(status.status, 200)
  assert.equal(status.body.id, node.idHex)
  assert.ok(status.body.peers >= 5)

  const peers = await http('GET', '/v1/peers')
  assert.equal(peers.body.length, status.body.peers)
  const table = await http('GET', '/v1/routing-table')
  assert.equal(table.body.size, status.body.peers)
  assert.equal(table.body.slots.reduce((s: number, x: { contacts: number }) => s + x.contacts, 0), table.body.size)

  const lookup = await http('GET', `/v1/lookup/${other.idHex}`)
  assert.equal(lookup.body.closest[0].id, other.idHex)
  const ping = await http('POST', '/v1/ping', { address: other.address })
  assert.equal(ping.body.id, other.idHex)
  // On loopback nobody is behind NAT: the peer answers from the address we used.
  const connect = await http('POST', '/v1/connect', { address: other.address })
  assert.deepEqual([connect.body.id, connect.body.path, connect.body.address], [other.idHex, 'plain', other.address])

  const value = Buffer.from('a value through the API')
  const put = await http('POST', '/v1/dht/put', { value: value.toString('base64') })
  assert.equal(put.body.key, createHash('sha256').update(value).digest('hex'))
  assert.ok(put.body.stored >= 1)
  const got = await http('GET', `/v1/dht/get/${put.body.key}`)
  assert.equal(Buffer.from(got.body.value, 'base64').toString(), value.toString())

  const author = identityFromSeed(createHash('sha256').update('api-test-author').digest())
  const salt = Buffer.from('app')
  const record = encodeRecord(signMutable(author, new TextEncoder().encode('v1'), 3, salt))
  const stored = await http('POST', '/v1/dht/record', { record: Buffer.from(record).toString('base64') })
  assert.ok(stored.body.stored >= 1)
  const mutable = await http('GET', `/v1/dht/mutable/${idToHex(author.publicKey)}?salt=${encodeURIComponent(salt.toString('base64'))}`)
  assert.equal(mutable.body.seq, 3)
  assert.equal(Buffer.from(mutable.body.value, 'base64').toString(), 'v1')
  const cas = await http('POST', '/v1/dht/record', { record: Buffer.from(encodeRecord(signMutable(author, new TextEncoder().encode('v2'), 4, salt))).toString('base64'), cas: 0 })
  assert.equal(cas.status, 409) // the held seq is 3, not 0
  assert.equal(cas.body.error.code, 'ERR_CAS_MISMATCH')

  const topic = createHash('sha256').update('api-test-topic').digest('hex')
  await http('POST', '/v1/dht/announce', { key: topic })
  const providers = await http('GET', `/v1/dht/providers/${topic}`)
  assert.deepEqual(providers.body.map((p: { id: string }) => p.id), [node.idHex])

  const metrics = await http('GET', '/metrics')
  assert.match(metrics.body, /^weft_lookups_total\{outcome="ok"\} [1-9]/m)

  const missing = await http('GET', `/v1/dht/get/${'00'.repeat(32)}`)
  assert.equal(missing.status, 404)
  assert.equal(missing.body.error.code, 'ERR_NOT_FOUND')
})

test('bad input: one coded JSON error with the right status, never a crash', async () => {
  const id = net.nodes[1].idHex
  await refused('GET', '/v1/nope', 'ERR_UNKNOWN_ROUTE', 404)
  await refused('DELETE', '/v1/status', 'ERR_UNKNOWN_ROUTE', 404)
  await refused('GET', '/v1/lookup/not-an-id', 'ERR_BAD_ID', 400)
  await refused('GET', `/v1/lookup/${id}00`, 'ERR_BAD_ID', 400)
  await refused('GET', '/v1/dht/get/xyz', 'ERR_BAD_ID', 400)
  await refused('GET', '/v1/dht/providers/12', 'ERR_BAD_ID', 400)
  await refused('GET', '/v1/dht/mutable/zz', 'ERR_BAD_ID', 400)
  await refused('GET', `/v1/dht/mutable/${id}?salt=%%%`, 'ERR_BAD_ARGUMENT', 400)
  // Values: too large for the DHT, too large for the API, not base64, missing, not JSON.
  await refused('POST', '/v1/dht/put', 'ERR_VALUE_TOO_LARGE', 413, { value: Buffer.alloc(1001).toString('base64') })
  await refused('POST', '/v1/dht/put', 'ERR_TOO_LARGE', 413, { value: Buffer.alloc(100_000).toString('base64') })
  await refused('POST', '/v1/dht/put', 'ERR_BAD_ARGUMENT', 400, { value: 'not base64!' })
  await refused('POST', '/v1/dht/put', 'ERR_BAD_ARGUMENT', 400, { value: 42 })
  await refused('POST', '/v1/dht/put', 'ERR_BAD_ARGUMENT', 400, {})
  await refused('POST', '/v1/dht/put', 'ERR_BAD_ARGUMENT', 400, '{"value": ', { 'content-type': 'application/json' })
  await refused('POST', '/v1/dht/put', 'ERR_BAD_ARGUMENT', 400, '[1,2]', { 'content-type': 'application/json' })
  await refused('POST', '/v1/dht/put', 'ERR_BAD_ARGUMENT', 400, '<value/>', { 'content-type': 'application/xml' })
  await refused('POST', '/v1/dht/put', 'ERR_BAD_ARGUMENT', 400)
  await refused('POST', '/v1/dht/record', 'ERR_VERSION', 400, { record: 'AAAA' })
  await refused('POST', '/v1/dht/record', 'ERR_TRUNCATED', 400, { record: '' })
  await refused('POST', '/v1/dht/record', 'ERR_BAD_ARGUMENT', 400, { record: 'AAAA', cas: -1 })
  await refused('POST', '/v1/dht/record', 'ERR_BAD_ARGUMENT', 400, { record: 'AAAA', cas: '3' })
  await refused('POST', '/v1/dht/announce', 'ERR_BAD_ARGUMENT', 400, { topic: 'x' })
  await refused('POST', '/v1/dht/announce', 'ERR_BAD_ID', 400, { key: 'x' })
  await refused('POST', '/v1/ping', 'ERR_BAD_ARGUMENT', 400, {})
  await refused('POST', '/v1/ping', 'ERR_BAD_ADDRESS', 400, { address: 'nowhere' })
  await refused('POST', '/v1/connect', 'ERR_BAD_ADDRESS', 400, { address: 'nowhere' })
  // The node still answers.
  assert.equal((await app.inject({ method: 'GET', url: '/v1/status' })).statusCode, 200)
})

test('a node that is not running answers 503 ERR_NOT_RUNNING', async () => {
  const idle = buildApi(new Node())
  try {
    const res = await idle.inject({ method: 'GET', url: '/v1/peers' })
    assert.equal(res.statusCode, 503)
    assert.equal(res.json().error.code, 'ERR_NOT_RUNNING')
  } finally {
    await idle.close()
  }
})

test('loopback is 127.0.0.0/8 and ::1; everything else needs a token', () => {
  for (const h of ['127.0.0.1', '127.0.0.2', '127.255.0.9', '::1', '[::1]', '::ffff:127.0.0.1']) assert.ok(isLoopback(h), h)
  for (const h of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.2', '128.0.0.1', '::2', 'fe80::1']) assert.ok(!isLoopback(h), h)
  assert.ok(tokenMatches('Bearer a-long-enough-token', 'a-long-enough-token'))
  for (const h of [undefined, '', 'a-long-enough-token', 'Bearer a-long-enough-toke', 'Bearer a-long-enough-tokenX', 'Basic a-long-enough-token', 'bearer']) {
    assert.ok(!tokenMatches(h, 'a-long-enough-token'), String(h))
  }
})

test('a non-loopback bind refuses to start without a token, and then demands it', async () => {
  await rejectsWith(startApi(node, '0.0.0.0:0'), 'ERR_BAD_ARGUMENT')
  await rejectsWith(startApi(node, '0.0.0.0:0', { token: 'short' }), 'ERR_BAD_ARGUMENT')
  const token = 'test-token-0123456789abcdef'
  const open = await startApi(node, '0.0.0.0:0', { token })
  try {
    const local = `127.0.0.1:${open.address.split(':').pop()}` // bound to every interface: reach it over loopback
    for (const [method, path, body] of [['GET', '/v1/status'], ['GET', '/metrics'], ['POST', '/v1/dht/put', { value: 'AAAA' }], ['GET', '/v1/nope']] as const) {
      for (const auth of [{}, { authorization: 'Bearer wrong-token-0123456789' }, { authorization: token }] as Record<string, string>[]) {
        const res = await fetch(`http://${local}${path}`, { method, headers: { ...auth, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined })
        assert.equal(res.status, 401, `${method} ${path} ${JSON.stringify(auth)}`)
        const err = await res.json()
        assert.equal(err.error.code, 'ERR_UNAUTHORIZED')
        checkError(err)
      }
    }
    const ok = await http('GET', '/v1/status', undefined, { authorization: `Bearer ${token}` }, local)
    assert.equal(ok.body.id, node.idHex)
    const metrics = await http('GET', '/metrics', undefined, { authorization: `Bearer ${token}` }, local)
    assert.match(metrics.body, /weft_routing_table_size/)
    // The client sends it, and says so when it is wrong.
    assert.equal((await callApi<{ id: string }>({ address: local, token }, '/v1/status')).id, node.idHex)
    await rejectsWith(callApi({ address: local }, '/v1/status'), 'ERR_UNAUTHORIZED')
  } finally {
    await open.close()
  }
})
