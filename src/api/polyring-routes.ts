// The polyring routes of the control API (spec/openapi.yaml, docs/polyring.md "On a real node"):
// POST /v1/polyring/send, /broadcast and /multicast (data as base64), GET /v1/polyring (this
// peer's GUID, parent, siblings, children and counters) and GET /v1/polyring/messages?since=N
// (the last messages it received, for clients that poll). A node without the polyring answers
// ERR_BAD_ARGUMENT (400).
import type { FastifyInstance } from 'fastify'
import { WeftError } from '../errors.js'
import type { Node } from '../node/node.js'
import { formatGuid } from '../overlay/polyring/guid.js'
import { MAX_MULTICAST_GUIDS } from '../overlay/polyring/service.js'

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

function field(body: unknown, name: string): unknown {
  return body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>)[name] : undefined
}

function data(body: unknown): Uint8Array {
  const v = field(body, 'data')
  if (typeof v !== 'string' || !BASE64.test(v)) throw new WeftError('ERR_BAD_ARGUMENT', '"data" must be a base64 string')
  return new Uint8Array(Buffer.from(v, 'base64'))
}

function guidText(v: unknown, name: string): string {
  if (typeof v !== 'string') throw new WeftError('ERR_BAD_ARGUMENT', `"${name}" must be a GUID such as "[4.2.17]"`)
  return v
}

export function registerPolyring(app: FastifyInstance, node: Node): void {
  app.get('/v1/polyring', async () => node.polyring.status())
  app.get<{ Querystring: { since?: unknown } }>('/v1/polyring/messages', async (req) => {
    const since = req.query.since === undefined ? 0 : Number(req.query.since)
    if (!Number.isSafeInteger(since) || since < 0) throw new WeftError('ERR_BAD_ARGUMENT', '"since" must be a message seq (an integer >= 0)')
    const ring = node.polyring
    return {
      guid: ring.guid ? formatGuid(ring.guid) : null,
      messages: ring.recent(since).map((m) => ({ seq: m.seq, kind: m.kind, from: formatGuid(m.from), data: Buffer.from(m.data).toString('base64') })),
    }
  })
  app.post<{ Body: unknown }>('/v1/polyring/send', async (req) => {
    // A GUID, or a node id (64 hex digits) resolved to the GUID it published in the DHT.
    const to = guidText(field(req.body, 'guid'), 'guid')
    const routed = await node.polyring.send(to, data(req.body))
    return { from: formatGuid(node.polyring.guid!), to: [formatGuid(routed)] }
  })
  app.post<{ Body: unknown }>('/v1/polyring/broadcast', async (req) => {
    node.polyring.broadcast(data(req.body))
    return { from: formatGuid(node.polyring.guid!), to: [] }
  })
  app.post<{ Body: unknown }>('/v1/polyring/multicast', async (req) => {
    const list = field(req.body, 'guids')
    if (!Array.isArray(list) || list.length < 1 || list.length > MAX_MULTICAST_GUIDS) {
      throw new WeftError('ERR_BAD_ARGUMENT', `"guids" must be a list of 1..${MAX_MULTICAST_GUIDS} GUIDs`)
    }
    const to = list.map((g) => guidText(g, 'guids'))
    node.polyring.multicast(to, data(req.body))
    return { from: formatGuid(node.polyring.guid!), to }
  })
}
