// The node's local control API: JSON over HTTP, bound to loopback. The `weft` client commands
// and (later) the dashboard use it.
import Fastify, { type FastifyInstance } from 'fastify'
import { isIP } from 'node:net'
import { WeftError, type ErrorCode } from '../errors.js'
import { lookupReport, type Node } from '../node/node.js'
import { parseAddress } from '../wire/address.js'
import { idFromHex } from '../identity/node-id.js'
import { decodeRecord } from '../services/dht/records.js'

export const DEFAULT_API = '127.0.0.1:7400'

const STATUS_BY_CODE: Partial<Record<ErrorCode, number>> = {
  ERR_BAD_ID: 400, ERR_BAD_ADDRESS: 400, ERR_BAD_ARGUMENT: 400, ERR_NOT_FOUND: 404,
  ERR_TIMEOUT: 504, ERR_NOT_RUNNING: 503, ERR_BUSY: 503, ERR_CLOSED: 503,
  ERR_VALUE_TOO_LARGE: 413, ERR_HASH_MISMATCH: 400, ERR_BAD_SIGNATURE: 400, ERR_BAD_MESSAGE: 400, ERR_EXPIRED: 400,
  ERR_STALE_SEQ: 409, ERR_CAS_MISMATCH: 409, ERR_STORE_FULL: 507, ERR_RATE_LIMITED: 429,
  ERR_TRUNCATED: 400, ERR_VERSION: 400, ERR_UNKNOWN_TYPE: 400, ERR_TOO_LARGE: 413,
}

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64')
function bytesField(v: unknown, name: string): Uint8Array {
  if (typeof v !== 'string') throw new WeftError('ERR_BAD_ARGUMENT', `body field "${name}" must be a base64 string`)
  return new Uint8Array(Buffer.from(v, 'base64'))
}

function isLoopback(host: string): boolean {
  return host === '::1' || (isIP(host) === 4 && host.startsWith('127.'))
}

export interface ApiServer {
  address: string
  close(): Promise<void>
}

/** Serves `node` at HOST:PORT. Only loopback hosts are allowed until the API has authentication. */
export async function startApi(node: Node, listen: string): Promise<ApiServer> {
  const { host, port } = parseAddress(listen)
  if (!isLoopback(host)) throw new WeftError('ERR_BAD_ARGUMENT', `the control API binds to loopback only (got ${host}); use 127.0.0.1 or ::1`)
  const app: FastifyInstance = Fastify({ logger: false, bodyLimit: 64 * 1024 })
  app.setErrorHandler((err, _req, reply) => {
    const e = err instanceof WeftError ? err : new WeftError('ERR_API', (err as Error).message)
    const status = err instanceof WeftError ? STATUS_BY_CODE[e.code] ?? 500 : (err as { statusCode?: number }).statusCode ?? 500
    void reply.status(status).send({ error: e.toJSON() })
  })
  app.get('/v1/status', async () => node.status())
  app.get('/v1/peers', async () => node.peers())
  app.get<{ Params: { id: string } }>('/v1/lookup/:id', async (req) => lookupReport(await node.lookup(req.params.id)))
  // The DHT. Values travel as base64; keys and public keys as hex.
  type Body = Record<string, unknown> | undefined
  app.post<{ Body: Body }>('/v1/dht/put', async (req) => node.dht.put(bytesField(req.body?.value, 'value')))
  app.get<{ Params: { key: string } }>('/v1/dht/get/:key', async (req) => {
    const value = await node.dht.get(req.params.key)
    return { key: req.params.key, value: b64(value), size: value.length }
  })
  app.get<{ Params: { publicKey: string }; Querystring: { salt?: string } }>('/v1/dht/mutable/:publicKey', async (req) => {
    const r = await node.dht.getMutable(idFromHex(req.params.publicKey), { salt: req.query.salt ? Buffer.from(req.query.salt, 'base64') : undefined })
    return { key: r.key, seq: r.seq, value: b64(r.value), size: r.value.length }
  })
  app.post<{ Body: Body }>('/v1/dht/record', async (req) => {
    const cas = req.body?.cas
    if (cas !== undefined && (typeof cas !== 'number' || !Number.isSafeInteger(cas) || cas < 0)) throw new WeftError('ERR_BAD_ARGUMENT', '"cas" must be a sequence number')
    return node.dht.putRecord(decodeRecord(bytesField(req.body?.record, 'record')), { cas: cas as number | undefined })
  })
  app.post<{ Body: Body }>('/v1/dht/announce', async (req) => {
    if (typeof req.body?.key !== 'string') throw new WeftError('ERR_BAD_ARGUMENT', 'body must be {"key": "<64 hex digits>"}')
    return node.dht.announce(req.body.key)
  })
  app.get<{ Params: { key: string } }>('/v1/dht/providers/:key', async (req) => node.dht.providers(req.params.key))
  app.post<{ Body: { address?: unknown } }>('/v1/ping', async (req) => {
    const address = req.body?.address
    if (typeof address !== 'string') throw new WeftError('ERR_BAD_ARGUMENT', 'body must be {"address": "HOST:PORT"}')
    return node.ping(address)
  })
  try {
    await app.listen({ host, port })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EADDRINUSE') throw new WeftError('ERR_PORT_IN_USE', `API port ${port} on ${host} is already in use (choose another with --api HOST:PORT)`)
    throw new WeftError('ERR_BIND', `cannot serve the API on ${listen}: ${(err as Error).message}`)
  }
  const a = app.server.address()
  const bound = a && typeof a === 'object' ? (a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`) : listen
  return { address: bound, close: () => app.close() }
}

/** Calls a node's API; errors come back as WeftError with the node's code. */
export async function callApi<T>(api: string, path: string, init?: { method?: string; body?: unknown }): Promise<T> {
  parseAddress(api)
  let res: Response
  try {
    res = await fetch(`http://${api}${path}`, {
      method: init?.method ?? 'GET',
      headers: init?.body ? { 'content-type': 'application/json' } : undefined,
      body: init?.body ? JSON.stringify(init.body) : undefined,
      signal: AbortSignal.timeout(30_000),
    })
  } catch (err) {
    throw new WeftError('ERR_API', `no Weft node API at ${api} (is \`weft node\` running? pass --api HOST:PORT)`, { cause: err })
  }
  const body = (await res.json().catch(() => null)) as { error?: { code: ErrorCode; message: string } } | null
  if (!res.ok) {
    const e = body?.error
    throw new WeftError(e?.code ?? 'ERR_API', e?.message ?? `API answered HTTP ${res.status}`)
  }
  return body as T
}
