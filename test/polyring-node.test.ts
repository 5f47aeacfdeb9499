// The polyring on real nodes (src/overlay/polyring/service.ts, wire.ts): 20 nodes on
// 127.0.0.1 in this process, encrypted sessions, reliable channels between ring neighbours. A
// centre ring of 4 and 4 children under each (one of them joined by its parent's GUID, routed
// through the ring). Send, broadcast and multicast arrive exactly where and as often as they
// should. Plus the codec: round trips, and every malformed input refused as ERR_BAD_MESSAGE.
// WEFT_SEED replays a run; every failure names it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Node } from '../src/node/node.js'
import { SeededRandom } from '../src/runtime/prng.js'
import { formatGuid, guid, parseGuid } from '../src/overlay/polyring/guid.js'
import type { PolyringMessage } from '../src/overlay/polyring/service.js'
import { decodePayload, decodeWire, encodePayload, encodeWire, MAX_WIRE_RECEIVERS, type WireMessage } from '../src/overlay/polyring/wire.js'
import { isWeftError } from '../src/errors.js'
import { waitUntil } from './helpers/wait.js'

const SEED = process.env.WEFT_SEED ?? 'polyring-node-1'
const CENTRE = 4
const CHILDREN = 4
const WAIT_MS = 15_000

const text = (b: Uint8Array): string => Buffer.from(b).toString('utf8')
const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'utf8'))

const until = (what: string, ok: () => boolean, ms = WAIT_MS): Promise<void> => waitUntil(what, ok, ms, SEED)

test('polyring codec: round trips, and every malformed input is ERR_BAD_MESSAGE', () => {
  const random = new SeededRandom(`${SEED}:codec`)
  const samples: WireMessage[] = [
    { kind: 'join', req: 7, centre: true, hosted: true, region: 'eu-west', target: null },
    { kind: 'join', req: 0xffffffff, centre: false, hosted: false, region: '', target: guid([4, 2]) },
    { kind: 'welcome', req: 9, guid: guid([3, 1]), members: [{ guid: guid([3, 0]), address: '127.0.0.1:4000' }, { guid: guid([3, 2]), address: '[::1]:5' }] },
    { kind: 'refuse', req: 1, reason: 'not a centre peer' },
    { kind: 'hello', guid: guid([1, 200, 70000]), hosted: false, region: 'zürich' },
    { kind: 'leave', guid: guid([0]) },
    { kind: 'heartbeat' },
    { kind: 'route', dest: guid([5, 5]), data: random.bytes(300), hops: 3 },
    { kind: 'broadcast', id: Number.MAX_SAFE_INTEGER, up: true, data: random.bytes(10), hops: 64 },
    { kind: 'multicast', receivers: Array.from({ length: MAX_WIRE_RECEIVERS }, (_, i) => guid([i, i * 1000])), data: new Uint8Array(0), hops: 0 },
  ]
  for (const m of samples) {
    const b = encodeWire(m)
    assert.deepEqual(decodeWire(b), m, `${m.kind} round trip`)
    // Every truncation (of the header: routed data runs to the end) and a trailing byte are refused, and only as ERR_BAD_MESSAGE.
    const header = 'data' in m ? b.length - m.data.length : b.length
    for (let n = 0; n < header; n++) assert.throws(() => decodeWire(b.subarray(0, n)), (e) => isWeftError(e, 'ERR_BAD_MESSAGE'), `${m.kind} cut at ${n}`)
    if (m.kind !== 'route' && m.kind !== 'broadcast' && m.kind !== 'multicast') {
      assert.throws(() => decodeWire(Uint8Array.of(...b, 0)), (e) => isWeftError(e, 'ERR_BAD_MESSAGE'), `${m.kind} + trailing`)
    }
  }
  const p = { kind: 'join' as const, origin: guid([2]), joiner: '127.0.0.1:9', join: { req: 5, centre: false, hosted: false, region: 'x', target: guid([2, 1]) } }
  assert.deepEqual(decodePayload(encodePayload(p)), p)
  assert.deepEqual(decodePayload(encodePayload({ kind: 'data', origin: guid([1, 2]), data: bytes('hi') })), { kind: 'data', origin: guid([1, 2]), data: bytes('hi') })
  // Random and mutated bytes: each decodes or throws ERR_BAD_MESSAGE, nothing else.
  const encoded = samples.map(encodeWire)
  for (let i = 0; i < 20_000; i++) {
    let b: Uint8Array
    if (i % 2) b = random.bytes(random.u32() % 40)
    else {
      b = encoded[random.u32() % encoded.length].slice()
      for (let k = 0; k < 3; k++) if (b.length) b[random.u32() % b.length] = random.u32() & 0xff
    }
    try { decodeWire(b) } catch (e) { assert.ok(isWeftError(e, 'ERR_BAD_MESSAGE'), `input ${Buffer.from(b).toString('hex')}: ${String(e)} (seed ${SEED})`) }
    try { decodePayload(b) } catch (e) { assert.ok(isWeftError(e, 'ERR_BAD_MESSAGE'), `payload ${Buffer.from(b).toString('hex')}: ${String(e)} (seed ${SEED})`) }
  }
})

test('a polyring of 20 real nodes: send, broadcast and multicast arrive exactly once, exactly where sent', async (t) => {
  const random = new SeededRandom(SEED)
  const nodes: Node[] = []
  const inbox = new Map<Node, PolyringMessage[]>()
  t.after(async () => { await Promise.all(nodes.map((n) => n.stop({ leave: false }))) })
  const listen = (n: Node): void => {
    const got: PolyringMessage[] = []
    inbox.set(n, got)
    void (async () => { for await (const m of n.polyring.messages()) got.push(m) })()
  }

  // The centre ring: [0] first, then three more through it.
  const first = new Node({ polyring: { centre: true } })
  nodes.push(first)
  await first.start()
  listen(first)
  assert.equal(formatGuid(first.polyring.guid!), '[0]')
  const centre = [first]
  await Promise.all(Array.from({ length: CENTRE - 1 }, async () => {
    const n = new Node({ bootstrap: [first.address], polyring: { centre: true } })
    nodes.push(n)
    centre.push(n)
    await n.start()
    listen(n)
  }))
  // Children: by the parent's address, and one per parent by its GUID (routed there from [0]).
  await Promise.all(centre.flatMap((parent, pi) => Array.from({ length: CHILDREN }, async (_, ci) => {
    const byGuid = ci === 0 && pi > 0
    const n = new Node({ bootstrap: [first.address], polyring: { parent: byGuid ? formatGuid(parent.polyring.guid!) : parent.address, region: `r${pi}` } })
    nodes.push(n)
    await n.start()
    listen(n)
  })))
  assert.equal(nodes.length, CENTRE + CENTRE * CHILDREN)
  const guids = nodes.map((n) => formatGuid(n.polyring.guid!))
  assert.equal(new Set(guids).size, nodes.length, `every GUID distinct: ${guids.join(' ')}`)
  assert.deepEqual(centre.map((n) => formatGuid(n.polyring.guid!)).sort(), ['[0]', '[1]', '[2]', '[3]'])
  for (const [pi, parent] of centre.entries()) {
    const kids = nodes.filter((n) => n.options.polyring !== true && typeof n.options.polyring === 'object' && n.options.polyring.region === `r${pi}`)
    assert.deepEqual(kids.map((k) => formatGuid(k.polyring.guid!)).sort(), [0, 1, 2, 3].map((c) => `${formatGuid(parent.polyring.guid!).slice(0, -1)}.${c}]`), `children of centre ${pi}`)
  }
  // Every table complete: HELLOs and welcomes travel on the channels, so wait for them to land.
  await until('complete tables', () => nodes.every((n) => {
    const s = n.polyring.status()
    return s.centre ? s.siblings.length === CENTRE - 1 && s.children.length === CHILDREN : s.parent !== null && s.siblings.length === CHILDREN - 1
  }))

  // Routed: from every peer to a random GUID (itself included).
  const expected = new Map<string, string>() // payload -> destination GUID
  for (const [i, n] of nodes.entries()) {
    const dest = guids[random.u32() % guids.length]
    const payload = `send:${i}:${dest}`
    expected.set(payload, dest)
    n.polyring.send(parseGuid(dest), bytes(payload))
  }
  const sends = (): PolyringMessage[][] => nodes.map((n) => inbox.get(n)!.filter((m) => m.kind === 'send'))
  await until('every routed message', () => sends().reduce((a, l) => a + l.length, 0) >= nodes.length)
  // Broadcast from three peers; multicast from two to 6 random GUIDs each.
  const origins = [0, 5 + (random.u32() % 15), 4 + (random.u32() % 16)]
  for (const o of origins) nodes[o].polyring.broadcast(bytes(`broadcast:${o}`))
  const multicasts: { from: number; to: string[] }[] = []
  for (let k = 0; k < 2; k++) {
    const to = [...new Set(Array.from({ length: 6 }, () => guids[random.u32() % guids.length]))]
    const from = random.u32() % nodes.length
    multicasts.push({ from, to })
    nodes[from].polyring.multicast(to, bytes(`multicast:${k}`))
  }
  const count = (kind: string): number => nodes.reduce((a, n) => a + inbox.get(n)!.filter((m) => m.kind === kind).length, 0)
  const wantMulticast = multicasts.reduce((a, m) => a + m.to.length, 0)
  await until('every broadcast and multicast', () => count('broadcast') >= origins.length * (nodes.length - 1) && count('multicast') >= wantMulticast)
  await new Promise((r) => setTimeout(r, 300)) // any duplicate would have arrived by now

  for (const [i, n] of nodes.entries()) {
    const got = inbox.get(n)!
    const me = guids[i]
    for (const m of got.filter((x) => x.kind === 'send')) {
      assert.equal(expected.get(text(m.data)), me, `${text(m.data)} delivered at ${me} (seed ${SEED})`)
    }
    const b = got.filter((x) => x.kind === 'broadcast').map((x) => text(x.data)).sort()
    assert.deepEqual(b, origins.filter((o) => o !== i).map((o) => `broadcast:${o}`).sort(), `broadcasts at ${me} (seed ${SEED})`)
    for (const x of got.filter((x) => x.kind === 'broadcast')) assert.equal(formatGuid(x.from), guids[Number(text(x.data).split(':')[1])], 'broadcast origin')
    const mc = got.filter((x) => x.kind === 'multicast').map((x) => text(x.data)).sort()
    assert.deepEqual(mc, multicasts.flatMap((m, k) => (m.to.includes(me) ? [`multicast:${k}`] : [])).sort(), `multicasts at ${me} (seed ${SEED})`)
  }
  const all = sends().flat().map((m) => text(m.data)).sort()
  assert.deepEqual(all, [...expected.keys()].sort(), `every routed message exactly once (seed ${SEED})`)
  const stats = nodes.map((n) => n.polyring.status().stats)
  assert.equal(stats.reduce((a, s) => a + s.noRoute + s.malformed + s.strangers + s.duplicates, 0), 0, 'no drops, no duplicates')
  console.log(`# 20 nodes: ${expected.size} routed, ${origins.length} broadcasts (${count('broadcast')} deliveries), ${multicasts.length} multicasts (${count('multicast')} deliveries); ` +
    `forwarded ${stats.reduce((a, s) => a + s.forwarded, 0)} copies`)

  // Graceful leave: a child's parent and siblings drop its slot.
  const leaver = nodes[nodes.length - 1]
  const leaverGuid = formatGuid(leaver.polyring.guid!)
  await leaver.stop()
  nodes.pop()
  await until('the leave to be seen', () => nodes.every((n) => {
    const s = n.polyring.status()
    return ![s.parent, ...s.siblings, ...s.children].some((x) => x?.guid === leaverGuid)
  }))
})
