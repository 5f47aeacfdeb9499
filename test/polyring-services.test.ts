// The polyring's services on real nodes (src/overlay/polyring/service.ts, cache.ts, locator.ts,
// ratelimit.ts; docs/polyring.md): identity -> location through the DHT (send by node id),
// caching along the route, rate limiting at the entry peer, join policies (region, load),
// private peers, side polyrings and hosted/autonomous placement. Real nodes on 127.0.0.1 in
// this process, encrypted sessions, reliable channels. WEFT_SEED replays a run; failures name it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Node, type NodeOptions } from '../src/node/node.js'
import { SeededRandom } from '../src/runtime/prng.js'
import { isWeftError } from '../src/errors.js'
import { formatGuid, guid } from '../src/overlay/polyring/guid.js'
import type { Polyring, PolyringMessage, PolyringOptions } from '../src/overlay/polyring/service.js'
import { decodePayload, decodeWire, encodePayload, encodeWire, type Payload, type WireMessage } from '../src/overlay/polyring/wire.js'
import { sleep, waitUntil } from './helpers/wait.js'

const SEED = process.env.WEFT_SEED ?? 'polyring-services-1'
const WAIT_MS = 15_000

const text = (b: Uint8Array): string => Buffer.from(b).toString('utf8')
const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'utf8'))
const g = (n: Node): string => formatGuid(n.polyring.guid!)

const until = (what: string, ok: () => boolean, ms = WAIT_MS): Promise<void> => waitUntil(what, ok, ms, SEED)

/** Nodes started one after another (each join sees the last), stopped after the test; inboxes kept. */
class Ring {
  readonly nodes: Node[] = []
  readonly inbox = new Map<Node, PolyringMessage[]>()
  first: Node | null = null
  async add(polyring: PolyringOptions, extra: Partial<NodeOptions> = {}): Promise<Node> {
    const n = new Node({ ...(this.first ? { bootstrap: [this.first.address] } : {}), ...extra, polyring })
    this.nodes.push(n)
    await n.start()
    this.first ??= n
    this.listen(n.polyring, n)
    return n
  }
  listen(ring: Polyring, key: Node): PolyringMessage[] {
    const got: PolyringMessage[] = []
    this.inbox.set(key, got)
    void (async () => { for await (const m of ring.messages()) got.push(m) })()
    return got
  }
  /** Waits until every node's table holds the neighbours it should (HELLOs travel on channels). */
  async settle(): Promise<void> {
    const byGuid = new Map(this.nodes.filter((n) => n.polyring.guid).map((n) => [g(n), n]))
    const want = (n: Node): number => {
      const me = g(n), depth = n.polyring.guid!.length
      let k = 0
      for (const other of byGuid.keys()) {
        if (other === me) continue
        const od = other.split('.').length
        const parentOf = (x: string): string => x.slice(0, x.lastIndexOf('.')) + ']'
        if (od === depth && (depth === 1 || parentOf(other) === parentOf(me))) k++ // sibling
        else if (od === depth + 1 && parentOf(other) === me) k++ // child
        else if (od === depth - 1 && parentOf(me) === other) k++ // parent
      }
      return k
    }
    await until('complete tables', () => this.nodes.every((n) => {
      const s = n.polyring.status()
      return s.siblings.length + s.children.length + (s.parent ? 1 : 0) === want(n)
    }))
  }
  async stop(): Promise<void> { await Promise.all(this.nodes.map((n) => n.stop({ leave: false }))) }
}

test('identity -> location: send takes a node id, resolved through the DHT (cached)', async (t) => {
  const r = new Ring()
  t.after(() => r.stop())
  const c0 = await r.add({ centre: true })
  const c1 = await r.add({ centre: true })
  const a = await r.add({ parent: c0.address })
  const b = await r.add({ parent: c1.address })
  await r.settle()
  await until('every location published', () => r.nodes.every((n) => n.polyring.status().location?.guid === g(n)))
  // By id as hex, then as bytes: the first looks it up, the second is a cache hit.
  assert.equal(formatGuid(await a.polyring.send(b.idHex, bytes('by-hex'))), g(b))
  assert.equal(formatGuid(await c0.polyring.send(b.id, bytes('by-bytes'))), g(b))
  assert.equal(formatGuid(await a.polyring.send(b.id, bytes('again'))), g(b))
  await until('three messages at b', () => r.inbox.get(b)!.length >= 3)
  assert.deepEqual(r.inbox.get(b)!.map((m) => text(m.data)).sort(), ['again', 'by-bytes', 'by-hex'], `seed ${SEED}`)
  const loc = a.polyring.status().location!
  assert.equal(loc.resolved, 1, 'a looked b up once')
  assert.equal(loc.cacheHits, 1, 'and found it cached the second time')
  // Its own id needs no lookup; an id that published nothing is ERR_NOT_FOUND; junk is the caller's error.
  assert.equal(formatGuid(await b.polyring.send(b.id, bytes('self'))), g(b))
  const nobody = new SeededRandom(SEED).bytes(32)
  await assert.rejects(a.polyring.send(nobody, bytes('x')), (e) => isWeftError(e, 'ERR_NOT_FOUND'))
  assert.throws(() => a.polyring.send('4.2', bytes('x')), (e) => isWeftError(e, 'ERR_BAD_ID'))
  // fetch takes a node id too.
  b.polyring.serve('k', bytes('v'))
  const f = await a.polyring.fetch(b.idHex, 'k')
  assert.equal(text(f.data), 'v')
  console.log(`# identity -> location: 4 nodes; a resolved b once (${loc.resolved}), ${loc.cacheHits} cache hit; published ${r.nodes.map((n) => n.polyring.status().location!.guid).join(' ')}`)
})

test('caching along the route: a second fetch is answered by a cache on the path; expiry and the byte bound hold', async (t) => {
  const r = new Ring()
  t.after(() => r.stop())
  const CACHE = 3000
  const c0 = await r.add({ centre: true, cacheBytes: CACHE })
  const c1 = await r.add({ centre: true })
  const a = await r.add({ parent: c0.address })
  const a2 = await r.add({ parent: c0.address })
  const home = await r.add({ parent: c1.address })
  await r.settle()
  const random = new SeededRandom(`${SEED}:cache`)
  const content = random.bytes(1000)
  home.polyring.serve('k', content, 60_000)
  // [0.0] -> [0] -> [1] -> [1.0]: the home answers, 3 hops back; [1], [0] and the asker keep a copy.
  const first = await a.polyring.fetch(home.polyring.guid!, 'k')
  assert.deepEqual(first.data, content)
  assert.equal(formatGuid(first.from), g(home))
  assert.equal(first.hops, 3)
  assert.equal(first.cached, false)
  // From [0.1]: its route passes [0], which answers: one hop, the home not asked.
  const second = await a2.polyring.fetch(g(home), 'k')
  assert.deepEqual(second.data, content)
  assert.equal(formatGuid(second.from), g(c0), `answered by the cache at [0] (seed ${SEED})`)
  assert.equal(second.hops, 1)
  assert.equal(second.cached, true)
  assert.equal(c0.polyring.status().stats.cacheAnswers, 1)
  assert.equal(home.polyring.status().stats.served, 1, 'the home answered once')
  // The asker's own copy: no hop at all.
  const third = await a.polyring.fetch(g(home), 'k')
  assert.equal(third.hops, 0)
  assert.equal(formatGuid(third.from), g(a))

  // Expiry: a 300 ms answer is not served from a cache 400 ms later.
  home.polyring.serve('short', bytes('brief'), 300)
  assert.equal(formatGuid((await a.polyring.fetch(g(home), 'short')).from), g(home))
  assert.equal(formatGuid((await a2.polyring.fetch(g(home), 'short')).from), g(c0), 'fresh: from the cache')
  await sleep(400)
  const late = await a2.polyring.fetch(g(home), 'short')
  assert.equal(formatGuid(late.from), g(home), `expired: from the home again (seed ${SEED})`)

  // The byte bound: six 1,000-byte answers through [0] (3,000 bytes of cache): it never holds more.
  for (let i = 0; i < 6; i++) home.polyring.serve(`big${i}`, random.bytes(1000))
  for (let i = 0; i < 6; i++) {
    await a.polyring.fetch(g(home), `big${i}`)
    assert.ok(c0.polyring.status().cache.bytes <= CACHE, `cache bytes ${c0.polyring.status().cache.bytes} <= ${CACHE}`)
  }
  const cs = c0.polyring.status().cache
  assert.ok(cs.evicted >= 4, `evicted ${cs.evicted}`)
  // big0 left [0]'s cache (least recently used) but not [1]'s (1 MiB): [1] answers, 2 hops from [0.1].
  const old = await a2.polyring.fetch(g(home), 'big0')
  assert.equal(formatGuid(old.from), g(c1), `big0 from [1]'s cache (seed ${SEED})`)
  assert.equal(old.hops, 2)
  await assert.rejects(a.polyring.fetch(g(home), 'missing'), (e) => isWeftError(e, 'ERR_NOT_FOUND'))
  console.log(`# cache: fetch 1 from the home in ${first.hops} hops, fetch 2 from [0]'s cache in ${second.hops}; [0]'s cache ${cs.bytes}/${CACHE} bytes, ${cs.entries} entries, ${cs.evicted} evicted, ${cs.expired} expired`)
})

test('rate limiting at the entry peer: a burst past the bucket is refused there, counted, and the sender told', async (t) => {
  const r = new Ring()
  t.after(() => r.stop())
  const rateLimit = { messagesPerSecond: 2, bytesPerSecond: 1_000_000 }
  const c0 = await r.add({ centre: true, rateLimit })
  const c1 = await r.add({ centre: true, rateLimit })
  const a = await r.add({ parent: c0.address, rateLimit })
  const b = await r.add({ parent: c1.address, rateLimit })
  const a2 = await r.add({ parent: c0.address, rateLimit })
  await r.settle()
  const BURST = 30
  for (let i = 0; i < BURST; i++) void a.polyring.send(g(b), bytes(`m${i}`.padEnd(100, '.')))
  const got = r.inbox.get(b)!
  await until('every message delivered or refused', () => got.length + c0.polyring.status().stats.rateLimited === BURST)
  // Told at once: the next send throws while the entry peer's back-off (about 1/2 s: one token at 2/s) lasts.
  await until('the sender told', () => a.polyring.status().stats.rateLimitedNotices > 0)
  assert.throws(() => a.polyring.send(g(b), bytes('more')), (e) => isWeftError(e, 'ERR_RATE_LIMITED'))
  assert.ok(a.polyring.status().stats.refusedLocally >= 1)
  const refused = c0.polyring.status().stats.rateLimited
  // The bucket holds one second's worth (2) and refills at 2/s while the burst arrives.
  assert.ok(got.length >= 2 && refused >= 10, `delivered ${got.length}, refused ${refused} of ${BURST} (seed ${SEED})`)
  assert.equal(got.length + refused, BURST)
  assert.equal(c1.polyring.status().stats.rateLimited, 0, 'only the entry peer limits ([1] forwards what [0] let in)')
  assert.equal(b.polyring.status().stats.rateLimited, 0)
  // Other senders through the same entry peer are not affected (a bucket per sender).
  await a2.polyring.send(g(b), bytes('other'))
  await until('the other sender delivered', () => got.some((m) => text(m.data) === 'other'))
  // After the back-off and a refill, the sender gets through again.
  await sleep(1100)
  await a.polyring.send(g(b), bytes('later'))
  await until('the later message', () => got.some((m) => text(m.data) === 'later'))
  console.log(`# rate limit 2 msg/s: burst of ${BURST}: ${got.length - 2} delivered, ${refused} refused at the entry peer, ${a.polyring.status().stats.rateLimitedNotices} notices to the sender`)
})

test('join policy: by region label, then by load (fewest children)', async (t) => {
  const r = new Ring()
  t.after(() => r.stop())
  const us = await r.add({ centre: true, region: 'us' })
  const eu1 = await r.add({ centre: true, region: 'eu' })
  const eu2 = await r.add({ centre: true, region: 'eu' })
  await r.settle()
  const placed: string[] = []
  for (const region of ['eu', 'eu', 'eu', undefined, 'ap']) {
    const n = await r.add(region ? { region } : {}) // neither centre nor parent: the asked peer ([0]) places it
    placed.push(`${region ?? '-'}:${g(n)}`)
    await r.settle()
    await sleep(50) // the LOAD notices the next placement reads
  }
  assert.deepEqual(r.nodes.slice(0, 3).map(g), ['[0]', '[1]', '[2]'])
  // eu -> [1] (eu, 0 children), eu -> [2] (eu, [1] has 1), eu -> [1] (tie, lowest coordinate),
  // no label -> [0] (fewest of all), ap (nobody) -> the fewest of all: [0] and [2] have 1, [0] first.
  assert.deepEqual(placed, ['eu:[1.0]', 'eu:[2.0]', 'eu:[1.1]', '-:[0.0]', 'ap:[0.1]'], `seed ${SEED}`)
  assert.ok(us.polyring.status().stats.joinsPlaced >= 3, 'the asked peer passed joins on to siblings')
  assert.equal(eu1.polyring.status().children.length, 2)
  assert.equal(eu2.polyring.status().children.length, 1)
  console.log(`# join policy: ${placed.join(' ')}`)
})

test('private peers: the parent tells its children, which reach the private sibling through it', async (t) => {
  const r = new Ring()
  t.after(() => r.stop())
  const p = await r.add({ centre: true })
  const a = await r.add({ parent: p.address })
  const hidden = await r.add({ parent: p.address, private: true })
  const c = await r.add({ parent: p.address }) // joins after: told as a newcomer
  await r.settle()
  const sees = (n: Node): boolean => n.polyring.status().siblings.some((s) => s.guid === g(hidden) && s.private === true)
  await until('both siblings told', () => sees(a) && sees(c))
  assert.equal(hidden.polyring.status().private, true)
  await a.polyring.send(g(hidden), bytes('a->hidden'))
  await c.polyring.send(g(hidden), bytes('c->hidden'))
  await a.polyring.send(g(c), bytes('a->c'))
  await hidden.polyring.send(g(a), bytes('hidden->a'))
  const at = (n: Node, s: string): PolyringMessage | undefined => r.inbox.get(n)!.find((m) => text(m.data) === s)
  await until('all four', () => !!(at(hidden, 'a->hidden') && at(hidden, 'c->hidden') && at(c, 'a->c') && at(a, 'hidden->a')))
  assert.equal(at(hidden, 'a->hidden')!.hops, 2, 'to the private sibling: through the parent')
  assert.equal(at(hidden, 'c->hidden')!.hops, 2)
  assert.equal(at(c, 'a->c')!.hops, 1, 'to a public sibling: direct')
  assert.equal(at(a, 'hidden->a')!.hops, 1, 'the private peer itself sends direct (it opens the path)')
  console.log(`# private: ${g(hidden)} reached in 2 hops through ${g(p)}, public siblings in 1`)
})

test('side polyrings: created by a service peer, found through the DHT, joined as its children', async (t) => {
  const r = new Ring()
  t.after(() => r.stop())
  const c0 = await r.add({ centre: true })
  const svc = await r.add({ centre: true })
  const a = await r.add({ parent: c0.address })
  const b = await r.add({ parent: svc.address })
  await r.settle()
  const side = await svc.polyring.createSide('video')
  assert.equal(formatGuid(side.guid!), '[0]', 'the creator is the side ring\'s centre')
  const sa = await a.polyring.joinSide('video')
  const sb = await b.polyring.joinSide('video')
  const s0 = await c0.polyring.joinSide('video')
  assert.deepEqual([sa, sb, s0].map((s) => formatGuid(s.guid!)), ['[0.0]', '[0.1]', '[0.2]'])
  const inbox = new Map<Polyring, PolyringMessage[]>()
  for (const s of [side, sa, sb, s0]) {
    const got: PolyringMessage[] = []
    inbox.set(s, got)
    void (async () => { for await (const m of s.messages()) got.push(m) })()
  }
  await until('side tables', () => [sa, sb, s0].every((s) => s.status().siblings.length === 2 && s.status().parent !== null) && side.status().children.length === 3)
  sa.broadcast(bytes('side-bcast'))
  await sb.send('[0]', bytes('to-svc'))
  await until('side traffic', () => [side, sb, s0].every((s) => inbox.get(s)!.some((m) => text(m.data) === 'side-bcast')) && inbox.get(side)!.some((m) => text(m.data) === 'to-svc'))
  await sleep(100)
  for (const n of r.nodes) assert.ok(!r.inbox.get(n)!.some((m) => text(m.data) === 'side-bcast'), 'nothing leaks into the main ring')
  assert.deepEqual(svc.polyring.status().sides.map((s) => [s.name, s.guid]), [['video', '[0]']])
  await assert.rejects(a.polyring.joinSide('no-such-ring'), (e) => isWeftError(e, 'ERR_NOT_FOUND'))
  assert.equal(g(a), '[0.0]', 'the main ring is unchanged')
  console.log(`# side polyring "video": creator ${g(svc)} is side [0]; 3 children; a side broadcast reached the 3 others, none in the main ring`)
})

test('pub-sub on side rings: subscribe = join the topic\'s side ring (the first creates it), publish = its broadcast', async (t) => {
  const r = new Ring()
  t.after(() => r.stop())
  const c0 = await r.add({ centre: true })
  const c1 = await r.add({ centre: true })
  const a = await r.add({ parent: c0.address })
  const b = await r.add({ parent: c1.address })
  const outsider = await r.add({ parent: c1.address })
  await r.settle()
  const subs = [] as Polyring[]
  for (const n of [c1, a, b]) subs.push(await n.polyring.topic('news')) // c1 creates it, a and b join
  assert.deepEqual(subs.map((s) => formatGuid(s.guid!)), ['[0]', '[0.0]', '[0.1]'])
  assert.equal(await a.polyring.topic('news'), subs[1], 'subscribing twice is the same ring')
  const got = subs.map((s) => { const l: PolyringMessage[] = []; void (async () => { for await (const m of s.messages()) l.push(m) })(); return l })
  await until('topic tables', () => subs[0].status().children.length === 2 && subs[1].status().siblings.length === 1)
  subs[2].broadcast(bytes('headline'))
  await until('published to every other subscriber', () => got[0].length === 1 && got[1].length === 1)
  await sleep(100)
  assert.equal(got[2].length, 0, 'the publisher does not get its own')
  assert.ok(!r.inbox.get(outsider)!.length, 'a non-subscriber gets nothing')
  console.log('# topic "news": 3 subscribers on a side ring; one publish reached the 2 others, no one else')
})

test('codec of the services\' messages: round trips; malformed payloads are ERR_BAD_MESSAGE', () => {
  const samples: WireMessage[] = [
    { kind: 'join', req: 3, centre: false, hosted: true, region: 'eu', target: null, place: true, private: true },
    { kind: 'hello', guid: guid([1, 2]), hosted: false, region: 'eu', private: true, reply: true },
    { kind: 'load', children: 70_000 },
    { kind: 'private', coords: [0, 5, 4_000_000] },
    { kind: 'rate-limited', req: 9, retryAfterMs: 500 },
  ]
  for (const m of samples) assert.deepEqual(decodeWire(encodeWire(m)), m, m.kind)
  const payloads: Payload[] = [
    { kind: 'fetch', origin: guid([0, 1]), req: 77, key: bytes('k') },
    { kind: 'fetched', origin: guid([0]), home: guid([1, 0]), req: 77, ttlMs: 1000, key: bytes('k'), data: bytes('value') },
    { kind: 'fetched', origin: guid([1, 0]), home: guid([1, 0]), req: 1, ttlMs: 0, key: new Uint8Array(64), data: null },
  ]
  const random = new SeededRandom(`${SEED}:codec`)
  for (const p of payloads) {
    const b = encodePayload(p)
    assert.deepEqual(decodePayload(b), p, p.kind)
    for (let i = 0; i < 2000; i++) {
      const x = b.slice(0, random.u32() % (b.length + 1))
      if (x.length) x[random.u32() % x.length] = random.u32() & 0xff
      try { decodePayload(x) } catch (e) { assert.ok(isWeftError(e, 'ERR_BAD_MESSAGE'), `${Buffer.from(x).toString('hex')}: ${String(e)} (seed ${SEED})`) }
    }
  }
  assert.throws(() => encodePayload({ kind: 'fetch', origin: guid([0]), req: 1, key: new Uint8Array(65) }), (e) => isWeftError(e, 'ERR_TOO_LARGE'))
})

test('hosted and autonomous peers: the hosted centre refuses autonomous peers; hosted peers need hosted parents', async (t) => {
  const r = new Ring()
  t.after(() => r.stop())
  const h0 = await r.add({ centre: true, hosted: true })
  const auto = await r.add({ parent: h0.address }) // an autonomous peer under a hosted parent: fine
  await assert.rejects(r.add({ centre: true }, { }), (e) => isWeftError(e, 'ERR_BOOTSTRAP_FAILED') && /hosted/.test((e as Error).message))
  r.nodes.pop()
  await assert.rejects(r.add({ parent: auto.address, hosted: true }), (e) => isWeftError(e, 'ERR_BOOTSTRAP_FAILED') && /hosted parent/.test((e as Error).message))
  r.nodes.pop()
  const h1 = await r.add({ centre: true, hosted: true })
  await r.settle()
  // Placement: an autonomous joiner goes under the least loaded (hosted) centre peer: [1].
  const placed = await r.add({})
  await r.settle()
  await sleep(50) // [1]'s LOAD reaches [0]
  const hostedKid = await r.add({ hosted: true })
  assert.deepEqual([auto, h1, placed, hostedKid].map(g), ['[0.0]', '[1]', '[1.0]', '[0.1]'], `seed ${SEED}`)
  console.log(`# hosted: centre [0],[1] hosted; autonomous centre join refused; hosted under autonomous refused; placed ${g(placed)}, ${g(hostedKid)}`)
})
