// The node's control API: JSON over HTTP (fastify), described by spec/openapi.yaml. The `weft`
// client commands use it, and /metrics serves Prometheus. Bound to loopback by default; bound
// anywhere else it needs a bearer token (and with a token set, every request needs it).
import Fastify, { type FastifyInstance } from 'fastify'
import { WeftError } from '../errors.js'
import { idFromHex, idToHex } from '../identity/node-id.js'
import type { Logger } from '../node/log.js'
import { lookupReport, type Node } from '../node/node.js'
import { decodeRecord } from '../services/dht/records.js'
import { parseAddress } from '../wire/address.js'
import { checkBind, tokenMatches } from './auth.js'
import { isDashboardFile, registerDashboard } from './dashboard.js'
import type { DevnetView } from './devnet.js'
import { errorBody, httpStatus, toWeftError } from './errors.js'
import { registerPubSub } from './pubsub-routes.js'
import { registerPolyring } from './polyring-routes.js'

export { callApi, type ApiTarget } from './client.js'

export const DEFAULT_API = '127.0.0.1:7400'
/** Largest request body: far above any valid request (a DHT value is at most 1,000 bytes). */
export const API_BODY_LIMIT = 64 * 1024

export interface ApiOptions {
  /** Bearer token; required when binding to a non-loopback address. */
  token?: string
  /** Where API errors are logged; default: the node's logger. */
  logger?: Logger
  /** The devnet this node belongs to: the dashboard's /v1/devnet routes show all of it. */
  devnet?: DevnetView
}

export interface ApiServer {
  address: string
  close(): Promise<void>
}

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64')
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/** Standard base64 (padding included); anything else is refused rather than half-decoded. */
function base64(v: unknown, name: string): Uint8Array {
  if (typeof v !== 'string' || !BASE64.test(v)) throw new WeftError('ERR_BAD_ARGUMENT', `"${name}" must be a base64 string`)
  return new Uint8Array(Buffer.from(v, 'base64'))
}

type Body = Record<string, unknown> | undefined
const field = (body: unknown, name: string): unknown =>
  body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>)[name] : undefined

export interface ApiRoute { method: string; url: string }
const routesOf = new WeakMap<FastifyInstance, ApiRoute[]>()
/** Every route `buildApi` registered (fastify's form: "/v1/lookup/:id"), for checking against spec/openapi.yaml. */
export const apiRoutes = (app: FastifyInstance): readonly ApiRoute[] => routesOf.get(app) ?? []

/** The API's routes on a fastify instance that is not yet listening (tests use `inject`). */
export function buildApi(node: Node, options: ApiOptions = {}): FastifyInstance {
  const log = options.logger ?? node.log
  const app: FastifyInstance = Fastify({ logger: false, bodyLimit: API_BODY_LIMIT, exposeHeadRoutes: false })
  const routes: ApiRoute[] = []
  app.addHook('onRoute', (r) => { for (const method of [r.method].flat()) routes.push({ method, url: r.url }) })
  routesOf.set(app, routes)
  const { token } = options
  if (token !== undefined) {
    app.addHook('onRequest', async (req) => {
      if (isDashboardFile(req)) return // the page's own files hold no data; its API calls carry the token
      if (!tokenMatches(req.headers.authorization, token)) {
        throw new WeftError('ERR_UNAUTHORIZED', 'this API needs "Authorization: Bearer <token>" (weft: --api-token or WEFT_API_TOKEN)')
      }
    })
  }
  app.setErrorHandler((err, req, reply) => {
    const e = toWeftError(err)
    const status = httpStatus(e.code)
    const entry = { method: req.method, url: req.url, status, code: e.code }
    if (status >= 500) log.error({ ...entry, err }, 'API request failed')
    else if (status === 401) log.warn({ ...entry, from: req.ip }, 'API request refused')
    else log.info(entry, e.message)
    void reply.status(status).send(errorBody(e))
  })
  app.setNotFoundHandler((req) => {
    throw new WeftError('ERR_UNKNOWN_ROUTE', `no such API route: ${req.method} ${req.url.split('?')[0]}`)
  })

  app.get('/v1/status', async () => node.status())
  app.get('/v1/peers', async () => node.peers())
  app.get('/v1/routing-table', async () => {
    const bySlot = new Map<string, number>()
    for (const e of node.topology.entries()) bySlot.set(e.slot, (bySlot.get(e.slot) ?? 0) + 1)
    return { topology: node.topology.name, size: node.topology.size(), slots: [...bySlot].map(([slot, contacts]) => ({ slot, contacts })) }
  })
  app.get<{ Params: { id: string } }>('/v1/lookup/:id', async (req) => lookupReport(await node.lookup(req.params.id)))
  app.post<{ Body: Body }>('/v1/ping', async (req) => {
    const address = field(req.body, 'address')
    if (typeof address !== 'string') throw new WeftError('ERR_BAD_ARGUMENT', 'body must be {"address": "HOST:PORT"}')
    return node.ping(address)
  })
  app.post<{ Body: Body }>('/v1/connect', async (req) => {
    const address = field(req.body, 'address')
    if (typeof address !== 'string') throw new WeftError('ERR_BAD_ARGUMENT', 'body must be {"address": "HOST:PORT"}')
    const r = await node.connect(address)
    return { ...r, id: idToHex(r.id), ms: Math.round(r.ms * 1000) / 1000 }
  })
  // The DHT. Values travel as base64; keys and public keys as hex.
  app.post<{ Body: Body }>('/v1/dht/put', async (req) => node.dht.put(base64(field(req.body, 'value'), 'value')))
  app.get<{ Params: { key: string } }>('/v1/dht/get/:key', async (req) => {
    const value = await node.dht.get(req.params.key)
    return { key: req.params.key.toLowerCase(), value: b64(value), size: value.length }
  })
  app.get<{ Params: { publicKey: string }; Querystring: { salt?: unknown } }>('/v1/dht/mutable/:publicKey', async (req) => {
    const salt = req.query.salt === undefined ? undefined : base64(req.query.salt, 'salt')
    const r = await node.dht.getMutable(idFromHex(req.params.publicKey), { salt })
    return { key: r.key, seq: r.seq, value: b64(r.value), size: r.value.length }
  })
  app.post<{ Body: Body }>('/v1/dht/record', async (req) => {
    const cas = field(req.body, 'cas')
    if (cas !== undefined && (typeof cas !== 'number' || !Number.isSafeInteger(cas) || cas < 0)) throw new WeftError('ERR_BAD_ARGUMENT', '"cas" must be a sequence number')
    return node.dht.putRecord(decodeRecord(base64(field(req.body, 'record'), 'record')), { cas: cas as number | undefined })
  })
  app.post<{ Body: Body }>('/v1/dht/announce', async (req) => {
    const key = field(req.body, 'key')
    if (typeof key !== 'string') throw new WeftError('ERR_BAD_ARGUMENT', 'body must be {"key": "<64 hex digits>"}')
    return node.dht.announce(key)
  })
  app.get<{ Params: { key: string } }>('/v1/dht/providers/:key', async (req) => node.dht.providers(req.params.key))
  // Tapestry's object location (a node running another topology answers ERR_BAD_ARGUMENT).
  app.post<{ Body: Body }>('/v1/tapestry/publish', async (req) => {
    const object = field(req.body, 'object')
    if (typeof object !== 'string') throw new WeftError('ERR_BAD_ARGUMENT', 'body must be {"object": "<64 hex digits>"}')
    return node.tapestry.publish(object)
  })
  app.get<{ Params: { object: string } }>('/v1/tapestry/locate/:object', async (req) => {
    const r = await node.tapestry.locate(req.params.object)
    const contact = (c: { id: Uint8Array; address: string }) => ({ id: idToHex(c.id), address: c.address })
    return { ...r, server: r.server ? contact(r.server) : null, servers: r.servers.map(contact) }
  })
  app.get('/metrics', async (_req, reply) => {
    const metrics = node.metrics
    return reply.type(metrics.contentType).send(await metrics.text())
  })
  registerDashboard(app, node, options.devnet)
  registerPubSub(app, node)
  registerPolyring(app, node)
  return app
}

/** Serves `node` at HOST:PORT. A non-loopback host needs `options.token`. */
export async function startApi(node: Node, listen: string, options: ApiOptions = {}): Promise<ApiServer> {
  const { host, port } = parseAddress(listen)
  checkBind(host, options.token)
  const app = buildApi(node, options)
  void node.metrics // count from now on, not from the first scrape
  try {
    await app.listen({ host, port })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EADDRINUSE') throw new WeftError('ERR_PORT_IN_USE', `API port ${port} on ${host} is already in use (choose another with --api HOST:PORT)`)
    throw new WeftError('ERR_BIND', `cannot serve the API on ${listen}: ${(err as Error).message}`)
  }
  const a = app.server.address()
  const bound = a && typeof a === 'object' ? (a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`) : listen
  node.log.info({ api: `http://${bound}`, token: options.token !== undefined }, 'control API listening')
  return { address: bound, close: () => app.close() }
}
