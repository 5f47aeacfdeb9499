// `weft devnet --topology polyring --shape 10x9`: real peers on loopback in one process (each its
// own UDP socket, encrypted sessions, Kademlia underneath), joined into a polyring level by
// level: the centre ring through [0], then each peer's children through it. Every peer serves
// its own API (so `weft send/broadcast/multicast --api ...` can start anywhere), and a
// self-check sends from every peer, broadcasts and multicasts, and reports what arrived.
import { InvalidArgumentError } from 'commander'
import { startApi, type ApiServer } from '../api/server.js'
import { createDevnet, type Devnet } from '../api/devnet.js'
import { isWeftError } from '../errors.js'
import type { Node } from '../node/node.js'
import { formatGuid, parseGuid } from '../overlay/polyring/guid.js'
import { SeededRandom } from '../runtime/prng.js'
import { formatAddress, parseAddress } from '../wire/address.js'
import { progress } from './progress.js'

/** Levels a devnet shape may have. */
export const MAX_SHAPE_LEVELS = 4
/** Peers a polyring devnet may have (all in one process). */
export const MAX_SHAPE_PEERS = 2000
/** How long the devnet waits for tables to fill and for the self-check's messages. */
const SETTLE_MS = 20_000
/** Joins in flight at once. */
const JOIN_CONCURRENCY = 8

/** "10x9" -> [10, 9]: ring sizes from the centre outward (each peer of level i has shape[i+1] children). */
export function parseShape(v: string): number[] {
  const parts = v.split('x')
  const shape = parts.map(Number)
  if (parts.length < 1 || parts.length > MAX_SHAPE_LEVELS || shape.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new InvalidArgumentError(`a shape is 1..${MAX_SHAPE_LEVELS} ring sizes of at least 1 joined by x, e.g. 10x9`)
  }
  if (shapePeers(shape) > MAX_SHAPE_PEERS) throw new InvalidArgumentError(`shape ${v} has ${shapePeers(shape)} peers, over ${MAX_SHAPE_PEERS}`)
  return shape
}

/** Peers of a shape: 10x9 is 10 + 10 × 9 = 100. */
export function shapePeers(shape: number[]): number {
  let total = 0, level = 1
  for (const n of shape) { level *= n; total += level }
  return total
}

export interface PolyringDevnetOptions {
  shape: number[]
  seed: string
  encrypt?: boolean
  /** HOST:PORT of peer 0's API; peer i serves at PORT + i (port 0: each a free port); false: no APIs. */
  api: string | false
  apiToken?: string
  exit: boolean
}

export interface PolyringDevnet {
  devnet: Devnet
  nodes: Node[]
  /** Each peer's level (0: the centre ring). */
  levels: number[]
  close(): Promise<void>
}

async function pool(n: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: Math.min(JOIN_CONCURRENCY, n) }, async () => { while (next < n) await fn(next++) }))
}

async function settle(what: string, ok: () => boolean, ms = SETTLE_MS): Promise<boolean> {
  const end = Date.now() + ms
  while (!ok()) {
    if (Date.now() > end) { console.log(`(gave up waiting for ${what} after ${ms / 1000} s)`); return false }
    await new Promise((r) => setTimeout(r, 25))
  }
  return true
}

/** Starts the peers (Kademlia joined through peer 0) and joins them into the polyring, level by level. */
export async function createPolyringDevnet(o: { shape: number[]; seed: string; encrypt?: boolean; onProgress?: (joined: number, total: number) => void }): Promise<PolyringDevnet> {
  const total = shapePeers(o.shape)
  const devnet = await createDevnet({ nodes: total, seed: o.seed, node: { encrypt: o.encrypt, polyring: { join: false } } })
  const nodes = devnet.net.nodes
  const levels: number[] = []
  let joined = 0
  try {
    // Level 0: [0], then the rest of the centre ring through it.
    await nodes[0].polyring.join({ centre: true, via: [] })
    levels.push(0)
    o.onProgress?.(++joined, total)
    await pool(o.shape[0] - 1, async (i) => {
      await nodes[1 + i].polyring.join({ centre: true, via: [nodes[0].address] })
      o.onProgress?.(++joined, total)
    })
    for (let i = 1; i < o.shape[0]; i++) levels.push(0)
    // Each further level: every peer of the level above takes shape[l] children.
    let parents = nodes.slice(0, o.shape[0])
    let next = o.shape[0]
    for (let l = 1; l < o.shape.length; l++) {
      const kids = parents.flatMap((p, pi) => Array.from({ length: o.shape[l] }, (_, k) => ({ parent: p, node: nodes[next + pi * o.shape[l] + k] })))
      await pool(kids.length, async (i) => {
        await kids[i].node.polyring.join({ parent: kids[i].parent.address })
        o.onProgress?.(++joined, total)
      })
      for (let i = 0; i < kids.length; i++) levels.push(l)
      next += kids.length
      parents = kids.map((k) => k.node)
    }
  } catch (err) {
    await devnet.close()
    throw err
  }
  // Tables are complete once every HELLO has landed.
  const want = (i: number): [number, number, boolean] => [o.shape[levels[i]] - 1, o.shape[levels[i] + 1] ?? 0, levels[i] > 0]
  await settle('complete polyring tables', () => nodes.every((n, i) => {
    const s = n.polyring.status(), [sib, kids, parent] = want(i)
    return s.siblings.length === sib && s.children.length === kids && (s.parent !== null) === parent
  }))
  return { devnet, nodes, levels, close: () => devnet.close() }
}

interface Arrival { node: number; kind: string; text: string; at: number }

/** Sends from every peer to a random GUID, one broadcast, one multicast; reports what arrived where, and how fast. */
async function selfCheck(net: PolyringDevnet, seed: string): Promise<boolean> {
  const { nodes } = net
  const random = new SeededRandom(`polyring-devnet:${seed}`)
  const guids = nodes.map((n) => formatGuid(n.polyring.guid!))
  const arrivals: Arrival[] = []
  const iterators = nodes.map((n, i) => {
    const it = n.polyring.messages()
    void (async () => { for await (const m of it) arrivals.push({ node: i, kind: m.kind, text: Buffer.from(m.data).toString('utf8'), at: performance.now() }) })()
    return it
  })
  try {
    const sends = new Map<string, number>() // payload -> receiver index
    const t0 = performance.now()
    nodes.forEach((n, i) => {
      const to = random.u32() % nodes.length
      const text = `check:send:${i}:${to}`
      sends.set(text, to)
      n.polyring.send(parseGuid(guids[to]), Buffer.from(text))
    })
    const leaf = nodes.length - 1 - (random.u32() % Math.max(1, nodes.length - net.levels.filter((l) => l === 0).length))
    const tb = performance.now()
    nodes[leaf].polyring.broadcast(Buffer.from(`check:broadcast:${leaf}`))
    const receivers = [...new Set(Array.from({ length: Math.min(10, nodes.length) }, () => random.u32() % nodes.length))]
    const from = random.u32() % nodes.length
    nodes[from].polyring.multicast(receivers.map((r) => guids[r]), Buffer.from(`check:multicast:${from}`))
    const of = (kind: string) => arrivals.filter((a) => a.kind === kind)
    await settle('the self-check messages', () => of('send').length >= sends.size && of('broadcast').length >= nodes.length - 1 && of('multicast').length >= receivers.length)
    await new Promise((r) => setTimeout(r, 300)) // room for any duplicate
    const sent = of('send')
    const rightPlace = sent.filter((a) => sends.get(a.text) === a.node).length
    const distinct = new Set(sent.map((a) => a.text)).size
    const bc = of('broadcast')
    const bcPeers = new Set(bc.map((a) => a.node))
    const mc = of('multicast')
    const mcOk = mc.length === receivers.length && mc.every((a) => receivers.includes(a.node)) && new Set(mc.map((a) => a.node)).size === receivers.length
    const sendMs = sent.length ? Math.max(...sent.map((a) => a.at)) - t0 : NaN
    const bcMs = bc.length ? Math.max(...bc.map((a) => a.at)) - tb : NaN
    const stats = nodes.map((n) => n.polyring.status().stats)
    const sum = (k: keyof (typeof stats)[0]) => stats.reduce((a, s) => a + s[k], 0)
    console.log(`routed:    ${sent.length}/${sends.size} arrived (${distinct} distinct, ${rightPlace} at the right GUID), all within ${sendMs.toFixed(0)} ms`)
    console.log(`broadcast: from ${guids[leaf]} reached ${bcPeers.size}/${nodes.length - 1} peers in ${bc.length} deliveries, complete in ${bcMs.toFixed(0)} ms`)
    console.log(`multicast: from ${guids[from]} to ${receivers.length} GUIDs: ${mc.length} deliveries, ${mcOk ? 'exactly the receivers' : 'NOT exactly the receivers'}`)
    console.log(`counters:  forwarded ${sum('forwarded')} copies, no route ${sum('noRoute')}, duplicates ${sum('duplicates')}, malformed ${sum('malformed')}, strangers ${sum('strangers')}, channel failures ${sum('channelFailures')}`)
    return sent.length === sends.size && distinct === sends.size && rightPlace === sends.size && bc.length === nodes.length - 1 && bcPeers.size === nodes.length - 1 && mcOk
  } finally {
    for (const it of iterators) void it.return?.()
  }
}

export async function runPolyringDevnet(o: PolyringDevnetOptions): Promise<void> {
  const total = shapePeers(o.shape)
  const bar = progress('joining', total)
  const started = Date.now()
  const net = await createPolyringDevnet({ shape: o.shape, seed: o.seed, encrypt: o.encrypt, onProgress: (d) => bar.update(d) })
  bar.stop()
  const { nodes } = net
  console.log(`polyring devnet: ${total} peers (shape ${o.shape.join('x')}, ${o.shape.length} levels, over kademlia) on 127.0.0.1 joined in ${((Date.now() - started) / 1000).toFixed(1)} s (seed ${o.seed})`)
  const apis: (ApiServer | null)[] = []
  if (o.api) {
    const { host, port } = parseAddress(o.api)
    for (const [i, n] of nodes.entries()) {
      const at = formatAddress(host, port === 0 ? 0 : port + i)
      const options = { token: o.apiToken, devnet: i === 0 ? net.devnet : undefined }
      apis.push(await startApi(n, at, options).catch((err) => {
        if (!isWeftError(err, 'ERR_PORT_IN_USE')) throw err
        return startApi(n, formatAddress(host, 0), options)
      }))
    }
  }
  for (const [i, n] of nodes.entries()) {
    console.log(`peer ${formatGuid(n.polyring.guid!)} udp ${n.address}${apis[i] ? ` api ${apis[i]!.address}` : ''}`)
  }
  const ok = await selfCheck(net, o.seed)
  console.log(`self-check: ${ok ? 'all delivered' : 'NOT all delivered'}`)
  if (apis[0]) console.log(`try: weft polyring --api ${apis[0].address}; weft send --api ${apis[0].address} ${formatGuid(nodes[nodes.length - 1].polyring.guid!)} hello`)
  console.log(`polyring devnet ready: ${total} peers`)
  if (!o.exit) await new Promise<void>((resolve) => { process.once('SIGINT', resolve); process.once('SIGTERM', resolve) })
  console.log('stopping the polyring devnet...')
  await Promise.all(apis.map((a) => a?.close()))
  await net.close()
  if (!ok) process.exitCode = 1
}
