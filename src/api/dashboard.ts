// The dashboard's side of the control API: the built page (web/ -> dist/web/) at `/`, a lookup
// traced hop by hop, and, when the API serves a devnet, every node, any node's table and the
// traffic between them. Routes are in spec/openapi.yaml like the others.
import { readFile } from 'node:fs/promises'
import { extname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { WeftError } from '../errors.js'
import { idFromHex, idToHex } from '../identity/node-id.js'
import type { Node } from '../node/node.js'
import { MessageType } from '../wire/messages.js'
import type { DevnetView } from './devnet.js'

/** Where the built page is: dist/web/, beside dist/src/ (this file is dist/src/api/dashboard.js). */
export const WEB_ROOT = fileURLToPath(new URL('../../web/', import.meta.url))
/** Traced lookups running at once through the API; more are refused with ERR_BUSY. */
export const MAX_TRACED_LOOKUPS = 8
/** Answers recorded per traced lookup (a lookup asks a few dozen nodes at most). */
export const MAX_TRACE_STEPS = 256

const FILE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$/
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml', '.json': 'application/json', '.map': 'application/json', '.png': 'image/png', '.ico': 'image/x-icon', '.woff2': 'font/woff2',
}
const HEADERS = {
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; frame-ancestors 'none'",
  'cache-control': 'no-cache',
}

/** The page's files carry no data: they are served without the bearer token (the page then asks for it). */
export function isDashboardFile(req: FastifyRequest): boolean {
  if (req.method !== 'GET') return false
  const path = req.url.split('?')[0]
  return path === '/' || path.startsWith('/assets/')
}

export interface TraceStep {
  id: string
  address: string
  /** Steps from the asking node: 1 for what it knew itself, n + 1 for a node it learned from a step-n node. */
  hop: number
  /** The node whose answer named it first; null: from the asking node's own table. */
  via: string | null
  /** Milliseconds from the start of the lookup to this answer. */
  atMs: number
  /** Contacts in the answer, and how many of them were new to the lookup. */
  returned: number
  learned: number
}

export interface Contact { id: string; address: string }

export interface LookupTrace {
  target: string
  from: Contact
  closest: Contact[]
  hops: number
  messages: number
  failed: number
  durationMs: number
  /** Every answer, in the order it came. */
  steps: TraceStep[]
  /** The route to the nearest node found: the asking node, then each node that named the next. */
  path: Contact[]
}

let traced = 0

/** A lookup from `node` with each answer recorded: who answered, at which hop, and who named it. */
export async function traceLookup(node: Node, target: Uint8Array): Promise<LookupTrace> {
  if (traced >= MAX_TRACED_LOOKUPS) throw new WeftError('ERR_BUSY', `${MAX_TRACED_LOOKUPS} traced lookups are running; try again`)
  traced++
  try {
    const self = node.idHex
    const via = new Map<string, string | null>() // id -> the node whose answer named it first
    const hopOf = (id: string): number => { let h = 0; for (let v = via.get(id); v !== undefined && v !== null && h < 64; v = via.get(v)) h++; return h + 1 }
    const steps: TraceStep[] = []
    const addresses = new Map<string, string>()
    const started = performance.now()
    const r = await node.lookup(target, {
      query: {
        request: { type: MessageType.FIND_NODE, target },
        onReply(from, reply) {
          if (reply.type !== MessageType.NODES && reply.type !== MessageType.VALUES) return false
          const id = idToHex(from.id)
          if (!via.has(id)) via.set(id, null)
          addresses.set(id, from.address)
          let learned = 0
          for (const c of reply.contacts) {
            const h = idToHex(c.id)
            if (h === self || via.has(h)) continue
            via.set(h, id)
            addresses.set(h, c.address)
            learned++
          }
          if (steps.length < MAX_TRACE_STEPS) {
            steps.push({ id, address: from.address, hop: hopOf(id), via: via.get(id) ?? null, atMs: round(performance.now() - started), returned: reply.contacts.length, learned })
          }
          return false
        },
      },
    })
    const closest = r.closest.map((c) => ({ id: idToHex(c.id), address: c.address }))
    const path: Contact[] = []
    for (let id: string | null | undefined = closest[0]?.id; id && id !== self && path.length < 64; id = via.get(id)) {
      path.unshift({ id, address: addresses.get(id) ?? '' })
    }
    path.unshift({ id: self, address: node.address })
    return { target: idToHex(r.target), from: { id: self, address: node.address }, closest, hops: r.hops, messages: r.messages, failed: r.failed, durationMs: round(r.durationMs), steps, path }
  } finally {
    traced--
  }
}

const round = (x: number): number => Math.round(x * 1000) / 1000

function nonNegativeInteger(v: unknown, name: string): number {
  if (v === undefined) return 0
  const n = typeof v === 'string' && /^\d{1,15}$/.test(v) ? Number(v) : NaN
  if (!Number.isSafeInteger(n)) throw new WeftError('ERR_BAD_ARGUMENT', `"${name}" must be a non-negative integer`)
  return n
}

/** The dashboard's routes on `app`: the page, traced lookups, and the devnet's when there is one. */
export function registerDashboard(app: FastifyInstance, node: Node, devnet?: DevnetView): void {
  const sendFile = async (name: string, reply: import('fastify').FastifyReply, what: string) => {
    let body: Buffer
    try {
      body = await readFile(join(WEB_ROOT, name))
    } catch {
      throw new WeftError('ERR_NOT_FOUND', what)
    }
    return reply.headers({ ...HEADERS, 'content-type': TYPES[extname(name)] ?? 'application/octet-stream' }).send(body)
  }
  app.get('/', async (_req, reply) => sendFile('index.html', reply, `the dashboard is not built (no ${join(WEB_ROOT, 'index.html')}): run npm run build`))
  app.get<{ Params: { file: string } }>('/assets/:file', async (req, reply) => {
    const { file } = req.params
    if (!FILE_NAME.test(file)) throw new WeftError('ERR_NOT_FOUND', `no dashboard file ${JSON.stringify(file.slice(0, 80))}`)
    return sendFile(join('assets', file), reply, `no dashboard file ${JSON.stringify(file)}`)
  })

  /** What the page can show here. */
  app.get('/v1/dashboard', async () => ({
    id: node.idHex,
    topology: node.topology.name,
    devnet: devnet ? { nodes: devnet.nodes.length, traffic: devnet.traffic !== null } : null,
    // The page's pub-sub panel uses /v1/pubsub/publish and /v1/pubsub/subscribe.
    pubsub: true,
  }))

  const devnetNode = (hex: string): Node => {
    idFromHex(hex) // ERR_BAD_ID unless 64 hex digits
    const id = hex.toLowerCase()
    if (id === node.idHex) return node
    if (!devnet) throw new WeftError('ERR_NOT_FOUND', 'this API serves one node, not a devnet')
    const found = devnet.nodes.find((n) => n.idHex === id)
    if (!found) throw new WeftError('ERR_NOT_FOUND', `no node ${id.slice(0, 16)}… in this devnet`)
    return found
  }
  const needDevnet = (): DevnetView => {
    if (!devnet) throw new WeftError('ERR_NOT_FOUND', 'this API serves one node, not a devnet (weft devnet serves one)')
    return devnet
  }

  app.get<{ Params: { id: string }; Querystring: { from?: string } }>('/v1/lookup/:id/trace', async (req) => {
    const target = idFromHex(req.params.id)
    const from = req.query.from === undefined ? node : devnetNode(req.query.from)
    return traceLookup(from, target)
  })

  app.get('/v1/devnet/nodes', async () => {
    const d = needDevnet()
    return {
      topology: node.topology.name,
      served: node.idHex,
      atMs: Date.now(),
      nodes: d.nodes.map((n, index) => {
        if (!n.isRunning) return { index, id: n.idHex, address: null, running: false, peers: 0, packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, records: 0 }
        const s = n.status()
        return { index, id: s.id, address: s.address, running: true, peers: s.peers, packetsIn: s.transport.packetsIn, packetsOut: s.transport.packetsOut, bytesIn: s.transport.bytesIn, bytesOut: s.transport.bytesOut, records: s.records.count }
      }),
    }
  })
  app.get<{ Params: { id: string } }>('/v1/devnet/nodes/:id', async (req) => {
    needDevnet()
    const n = devnetNode(req.params.id)
    return { status: n.status(), peers: n.peers() }
  })
  app.get<{ Querystring: { since?: string } }>('/v1/devnet/traffic', async (req) => {
    const since = nonNegativeInteger(req.query.since, 'since')
    const { traffic } = needDevnet()
    if (!traffic) throw new WeftError('ERR_NOT_FOUND', 'this devnet does not count its traffic')
    return traffic.since(since)
  })
}
