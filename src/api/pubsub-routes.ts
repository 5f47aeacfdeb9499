// The pub-sub routes of the control API: POST /v1/pubsub/publish, and GET /v1/pubsub/subscribe as
// server-sent events (one `message` event per message; a `ready` event once the node is in the
// topic's overlay; a comment line every 15 s keeps proxies from closing an idle stream).
import type { FastifyInstance } from 'fastify'
import { WeftError } from '../errors.js'
import type { Node } from '../node/node.js'
import type { Subscription } from '../services/pubsub/pubsub.js'

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
const KEEPALIVE_MS = 15_000

function str(body: unknown, name: string, required: boolean): string | undefined {
  const v = body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>)[name] : undefined
  if (v === undefined && !required) return undefined
  if (typeof v !== 'string') throw new WeftError('ERR_BAD_ARGUMENT', `"${name}" must be a string`)
  return v
}

export function registerPubSub(app: FastifyInstance, node: Node): void {
  const open = new Set<Subscription>()
  app.addHook('onClose', async () => { for (const s of open) s.close() })

  app.post<{ Body: unknown }>('/v1/pubsub/publish', async (req) => {
    const topic = str(req.body, 'topic', true)!
    const data = str(req.body, 'data', true)!
    if (!BASE64.test(data)) throw new WeftError('ERR_BAD_ARGUMENT', '"data" must be a base64 string')
    const priv = (req.body as Record<string, unknown>).private
    if (priv !== undefined && typeof priv !== 'boolean') throw new WeftError('ERR_BAD_ARGUMENT', '"private" must be true or false')
    return node.pubsub.publish(topic, new Uint8Array(Buffer.from(data, 'base64')), {
      owner: str(req.body, 'owner', false), authorization: str(req.body, 'authorization', false), private: priv as boolean | undefined,
    })
  })

  app.get<{ Querystring: { topic?: unknown; owner?: unknown } }>('/v1/pubsub/subscribe', async (req, reply) => {
    const topic = str(req.query, 'topic', true)!
    const sub = node.pubsub.subscribe(topic, { owner: str(req.query, 'owner', false) }) // refusals answer as JSON errors, before the stream starts
    open.add(sub)
    const raw = reply.raw
    reply.hijack()
    raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' })
    raw.write(`: subscribed to ${JSON.stringify(topic)}\n\n`)
    const keepalive = setInterval(() => raw.write(': keepalive\n\n'), KEEPALIVE_MS)
    keepalive.unref()
    req.raw.on('close', () => sub.close())
    void sub.ready.then(() => { if (!raw.writableEnded) raw.write(`event: ready\ndata: ${JSON.stringify({ topic })}\n\n`) })
    try {
      for await (const m of sub) {
        raw.write(`event: message\ndata: ${JSON.stringify({ topic: m.topic, id: m.id, author: m.author, time: m.time, hops: m.hops, data: Buffer.from(m.data).toString('base64') })}\n\n`)
      }
    } finally {
      clearInterval(keepalive)
      open.delete(sub)
      raw.end()
    }
  })
}
