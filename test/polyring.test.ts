// The polyring's foundation (src/overlay/polyring): GUID text and wire forms, the routing table,
// the seed's five routing cases against an independent tree oracle, and the static-shape
// simulator: routing delivers within 2 × depth hops, broadcast reaches every peer exactly once,
// multicast copies carry only the receivers of the part of the tree they go to.
// WEFT_SEED replays a run; every failure names it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { check } from './helpers/property.js'
import { isWeftError } from '../src/errors.js'
import { SeededRandom } from '../src/runtime/prng.js'
import {
  MAX_COORD, MAX_DEPTH, childGuid, commonPrefix, compareGuid, decodeGuid, encodeGuid, encodedGuidLength, formatGuid,
  guid, guidEquals, isInSubtree, parentGuid, parseGuid, type Guid,
} from '../src/overlay/polyring/guid.js'
import { DELIVER, NO_ROUTE, RouteCase, nextHop, routeCase } from '../src/overlay/polyring/route.js'
import { MAX_RING, NONE, PolyringTable } from '../src/overlay/polyring/table.js'
import { StaticPolyring, parseShape } from '../src/overlay/polyring/sim.js'
import { MAX_HOPS, MAX_MULTICAST_RECEIVERS, PolyringPeer, type PolyMessage } from '../src/overlay/polyring/peer.js'

const SEED = process.env.WEFT_SEED ?? 'polyring-1'
const coordArb = fc.oneof(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: MAX_COORD }))
const guidArb = fc.array(coordArb, { minLength: 1, maxLength: MAX_DEPTH }).map((c) => guid(c))

test(`GUID text and wire forms round-trip (seed ${SEED})`, () => {
  check('format/parse and encode/decode', guidArb, (g) => {
    const text = formatGuid(g)
    assert.match(text, /^\[\d+(\.\d+)*\]$/)
    assert.deepEqual(parseGuid(text), g, text)
    const bytes = encodeGuid(g)
    assert.equal(bytes.length, encodedGuidLength(g))
    assert.deepEqual(decodeGuid(bytes), g, text)
  })
  assert.equal(formatGuid(parseGuid('[4.2.17]')), '[4.2.17]')
  assert.deepEqual([...parseGuid('[0]')], [0])
  assert.deepEqual([...parseGuid(`[${MAX_COORD}]`)], [MAX_COORD])
})

test('bad GUID text is refused with ERR_BAD_ARGUMENT, bad bytes with ERR_BAD_MESSAGE', () => {
  const badText = ['', '[]', '4.2', '[4.2', '4.2]', '[4..2]', '[.4]', '[4.]', '[04]', '[4,2]', '[ 4]', '[-1]', '[+1]', '[1e3]',
    `[${MAX_COORD + 1}]`, '[99999999999]', `[${Array(MAX_DEPTH + 1).fill(1).join('.')}]`, '['.padEnd(1000, '1') + ']', '[४]']
  for (const t of badText) assert.throws(() => parseGuid(t), (e: unknown) => isWeftError(e, 'ERR_BAD_ARGUMENT'), JSON.stringify(t))
  check('random text parses or throws ERR_BAD_ARGUMENT', fc.string({ maxLength: 30 }).map((s) => (s.length % 2 ? `[${s}]` : s)), (t) => {
    try { const g = parseGuid(t); assert.equal(formatGuid(g), t) } catch (e) { assert.ok(isWeftError(e, 'ERR_BAD_ARGUMENT'), String(e)) }
  })
  for (const c of [[], Array(MAX_DEPTH + 1).fill(0), [-1], [1.5], [MAX_COORD + 1]]) {
    assert.throws(() => guid(c), (e: unknown) => isWeftError(e, 'ERR_BAD_ARGUMENT'), JSON.stringify(c))
  }
  const badBytes = [[], [0], [MAX_DEPTH + 1, ...Array(MAX_DEPTH + 1).fill(0)], [2, 1], [1, 0x80], [1, 0x80, 0x00], [1, 0xff, 0xff, 0xff, 0xff, 0x7f],
    [1, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], [1, 5, 0]]
  for (const b of badBytes) assert.throws(() => decodeGuid(Uint8Array.from(b)), (e: unknown) => isWeftError(e, 'ERR_BAD_MESSAGE'), JSON.stringify(b))
  check('random bytes decode or throw ERR_BAD_MESSAGE', fc.uint8Array({ maxLength: 40 }), (b) => {
    try { const g = decodeGuid(b); assert.deepEqual(encodeGuid(g), b) } catch (e) { assert.ok(isWeftError(e, 'ERR_BAD_MESSAGE'), String(e)) }
  })
})

test('GUID helpers: common prefix, parent, child, subtree, order', () => {
  const g = parseGuid('[4.2.17]')
  assert.equal(commonPrefix(g, parseGuid('[4.2.3]')), 2)
  assert.equal(commonPrefix(g, parseGuid('[5]')), 0)
  assert.equal(commonPrefix(g, parseGuid('[4.2.17.9]')), 3)
  assert.equal(formatGuid(parentGuid(g)!), '[4.2]')
  assert.equal(parentGuid(parseGuid('[4]')), null)
  assert.equal(formatGuid(childGuid(g, 0)), '[4.2.17.0]')
  assert.ok(isInSubtree(parseGuid('[4.2.17.1.1]'), g) && isInSubtree(g, g) && !isInSubtree(parseGuid('[4.2]'), g) && !isInSubtree(parseGuid('[4.2.18]'), g))
  assert.throws(() => childGuid(guid(Array(MAX_DEPTH).fill(0)), 0), (e: unknown) => isWeftError(e, 'ERR_BAD_ARGUMENT'))
  check('compareGuid is a total order consistent with equality; a parent sorts before its children', fc.tuple(guidArb, guidArb), ([a, b]) => {
    const ab = compareGuid(a, b), ba = compareGuid(b, a)
    assert.equal(Math.sign(ab) + Math.sign(ba), 0, `${formatGuid(a)} vs ${formatGuid(b)}`)
    assert.equal(ab === 0, guidEquals(a, b))
    if (a.length < MAX_DEPTH) assert.ok(compareGuid(a, childGuid(a, 0)) < 0)
  })
})

test('the table: slots by coordinate, counts, bounds, next free child', () => {
  const t = new PolyringTable(parseGuid('[4.2]'))
  assert.equal(t.parent, NONE)
  t.setParent(9)
  t.setSibling(0, 10); t.setSibling(5, 15); t.setSibling(5, 16)
  assert.equal(t.siblingCount, 2)
  assert.equal(t.sibling(5), 16)
  assert.equal(t.sibling(1), NONE)
  assert.equal(t.sibling(1_000_000), NONE)
  assert.throws(() => t.setSibling(2, 12), (e: unknown) => isWeftError(e, 'ERR_BAD_ARGUMENT'), 'own coordinate')
  assert.throws(() => t.setChild(MAX_RING, 1), (e: unknown) => isWeftError(e, 'ERR_BAD_ARGUMENT'))
  assert.throws(() => t.setChild(-1, 1), (e: unknown) => isWeftError(e, 'ERR_BAD_ARGUMENT'))
  assert.equal(t.nextFreeChild(), 0)
  t.setChild(0, 20); t.setChild(1, 21); t.setChild(3, 23)
  assert.equal(t.nextFreeChild(), 2)
  t.removeChild(1)
  assert.equal(t.childCount, 2)
  assert.equal(t.nextFreeChild(), 1)
  const seen: number[] = []
  t.forEachSibling((c, h) => seen.push(c, h))
  assert.deepEqual(seen, [0, 10, 5, 16])
  t.removeSibling(5)
  assert.equal(t.siblingCount, 1)
  assert.ok(t.arrayBytes() < 100, `${t.arrayBytes()} bytes`)
})

// A table for [4.2]: parent 100, siblings [4.x] = 200 + x, children [4.2.x] = 300 + x.
function fourTwo(): PolyringTable {
  const t = new PolyringTable(parseGuid('[4.2]'))
  t.setParent(100)
  for (let x = 0; x < 8; x++) if (x !== 2) t.setSibling(x, 200 + x)
  for (let x = 0; x < 8; x++) t.setChild(x, 300 + x)
  return t
}

test('the five routing cases, one by one', () => {
  const t = fourTwo()
  const hop = (d: string) => nextHop(t, parseGuid(d))
  const kind = (d: string) => routeCase(t.self, parseGuid(d))
  // M <= LR-2: another branch: to the parent.
  assert.equal(kind('[5.2]'), RouteCase.OtherBranch); assert.equal(hop('[5.2]'), 100)
  assert.equal(kind('[7]'), RouteCase.OtherBranch); assert.equal(hop('[7]'), 100)
  assert.equal(hop('[3.2.1.1]'), 100)
  // M == LR-1, LD == LR-1: D is the parent: to the parent.
  assert.equal(kind('[4]'), RouteCase.Parent); assert.equal(hop('[4]'), 100)
  // M == LR-1, LD >= LR: a sibling or below one: to sibling D[LR-1].
  assert.equal(kind('[4.5]'), RouteCase.Sibling); assert.equal(hop('[4.5]'), 205)
  assert.equal(kind('[4.6.1.2]'), RouteCase.Sibling); assert.equal(hop('[4.6.1.2]'), 206)
  // M == LR, LD == LR: deliver.
  assert.equal(kind('[4.2]'), RouteCase.Self); assert.equal(hop('[4.2]'), DELIVER)
  // M == LR, LD > LR: below: to child D[LR].
  assert.equal(kind('[4.2.3]'), RouteCase.Child); assert.equal(hop('[4.2.3]'), 303)
  assert.equal(kind('[4.2.7.9.9]'), RouteCase.Child); assert.equal(hop('[4.2.7.9.9]'), 307)
  // Empty slots: no such peer known.
  assert.equal(hop('[4.99]'), NO_ROUTE)
  assert.equal(hop('[4.2.99]'), NO_ROUTE)
  // A private sibling is reached through the shared parent.
  t.setSibling(5, 205, true)
  assert.equal(hop('[4.5.1]'), 100)
  assert.equal(hop('[4.6]'), 206)
  // The centre ring: no parent; another centre peer's subtree is a sibling case.
  const c = new PolyringTable(parseGuid('[4]'))
  c.setSibling(7, 7); c.setChild(1, 41)
  assert.equal(nextHop(c, parseGuid('[7.1.1]')), 7)
  assert.equal(nextHop(c, parseGuid('[4.1.3]')), 41)
  assert.equal(nextHop(c, parseGuid('[4]')), DELIVER)
})

test(`routeCase agrees with a tree oracle on random pairs (seed ${SEED})`, () => {
  const small = fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 1, maxLength: 5 }).map((c) => guid(c))
  const oracle = (r: Guid, d: Guid): RouteCase => {
    if (guidEquals(r, d)) return RouteCase.Self
    if (isInSubtree(d, r)) return RouteCase.Child
    const p = parentGuid(r)
    if (p && guidEquals(d, p)) return RouteCase.Parent
    // A sibling is a peer with the same parent (centre peers share the empty root).
    const sameParent = (s: Guid) => s.length === r.length && commonPrefix(s, r) === r.length - 1
    if (sameParent(d.slice(0, r.length)) && d.length >= r.length) return RouteCase.Sibling
    return RouteCase.OtherBranch
  }
  check('routeCase = oracle', fc.tuple(small, small), ([r, d]) => {
    assert.equal(routeCase(r, d), oracle(r, d), `${formatGuid(r)} -> ${formatGuid(d)}`)
  }, 2000)
})

test(`routing on a seeded random shape delivers every message within 2 x depth hops (seed ${SEED})`, () => {
  const random = new SeededRandom(`${SEED}:route`)
  const p = new StaticPolyring({ shape: [12, 8, 6, 5], random, fill: 0.8 })
  assert.ok(p.peers > 30 && p.tables.some((t) => t.depth === 4), `only ${p.peers} peers (seed ${SEED})`)
  for (let i = 0; i < 20_000; i++) {
    const a = p.randomPeer(random), b = p.randomPeer(random)
    const r = p.route(a, p.guidOf(b))
    const ctx = `${formatGuid(p.guidOf(a))} -> ${formatGuid(p.guidOf(b))} (seed ${SEED})`
    assert.ok(r.delivered && r.at === b, `not delivered: ${ctx}`)
    assert.ok(r.hops <= 2 * p.depth, `${r.hops} hops: ${ctx}`)
    // Up to the common ancestor's ring, one hop across, then down.
    const m = commonPrefix(p.guidOf(a), p.guidOf(b)), la = p.guidOf(a).length, lb = p.guidOf(b).length
    const expected = m === la || m === lb ? Math.abs(la - lb) : la + lb - 2 * m - 1
    assert.equal(r.hops, expected, `hops: ${ctx}`)
  }
  const s = p.routeRandom(5000, random)
  assert.deepEqual([s.delivered, s.wrong, s.overBound], [5000, 0, 0], `seed ${SEED}`)
  assert.equal(parseShape('10x10x10').join(), '10,10,10')
  for (const bad of ['', '10x', '0x5', 'x', '10x-1', '1.5', `${MAX_RING + 1}`]) assert.throws(() => parseShape(bad), (e: unknown) => isWeftError(e, 'ERR_BAD_ARGUMENT'), bad)
})

test(`the protocol (PolyringPeer on a MemoryWorld) delivers routed messages all in flight at once (seed ${SEED})`, () => {
  const random = new SeededRandom(`${SEED}:send`)
  const p = new StaticPolyring({ shape: [9, 7, 5, 4], random, fill: 0.85 })
  const r = p.sendRandom(5000, random)
  assert.deepEqual([r.delivered, r.wrong, r.overBound], [5000, 0, 0], `${JSON.stringify(r)} (seed ${SEED})`)
  assert.ok(r.maxHops <= 2 * p.depth - 1 && r.virtualMs > 0, JSON.stringify(r))
})

test('PolyringPeer: duplicate broadcasts dropped, hop bound, multicast bound, sends only to its table', () => {
  const t = fourTwo()
  const sent: [number, PolyMessage][] = []
  const got: PolyMessage[] = []
  const peer = new PolyringPeer({ table: t, send: (to, m) => sent.push([to, m]), deliver: (m) => got.push(m) })
  const data = new Uint8Array(0)
  // From a child (up): to the parent first, then the 7 siblings; not to the children.
  peer.receive(300, { kind: 'broadcast', id: 5, up: true, data, hops: 1 })
  assert.deepEqual(sent.map(([to]) => to), [100, 200, 201, 203, 204, 205, 206, 207])
  assert.ok(sent[0][1].kind === 'broadcast' && sent[0][1].up && sent.slice(1).every(([, m]) => m.kind === 'broadcast' && !m.up))
  assert.equal(got.length, 1)
  // The same broadcast again: dropped and counted.
  peer.receive(201, { kind: 'broadcast', id: 5, up: false, data, hops: 3 })
  assert.equal(peer.stats.duplicates, 1)
  assert.equal(sent.length, 8)
  // From a sibling: the 8 children only.
  sent.length = 0
  peer.receive(201, { kind: 'broadcast', id: 6, up: false, data, hops: 1 })
  assert.deepEqual(sent.map(([to]) => to), [300, 301, 302, 303, 304, 305, 306, 307])
  // Sideways first: siblings, then children (origin only), then the parent.
  sent.length = 0
  peer.order = 'sideways-first'
  peer.broadcast(data, 7)
  assert.deepEqual(sent.map(([to]) => to), [200, 201, 203, 204, 205, 206, 207, 300, 301, 302, 303, 304, 305, 306, 307, 100])
  // Past MAX_HOPS a message is dropped.
  sent.length = 0
  peer.receive(100, { kind: 'route', dest: parseGuid('[4.2.1]'), data, hops: MAX_HOPS + 1 })
  assert.equal(sent.length, 0)
  assert.equal(peer.stats.tooManyHops, 1)
  peer.receive(100, { kind: 'route', dest: parseGuid('[4.2.1]'), data, hops: 2 })
  assert.deepEqual(sent.map(([to, m]) => [to, m.hops]), [[301, 3]])
  assert.throws(() => peer.multicast(Array(MAX_MULTICAST_RECEIVERS + 1).fill(parseGuid('[1]')), data), (e: unknown) => isWeftError(e, 'ERR_TOO_LARGE'))
})

test(`broadcast reaches every peer exactly once, messages sent = peers - 1, both orders (seed ${SEED})`, () => {
  const random = new SeededRandom(`${SEED}:broadcast`)
  const p = new StaticPolyring({ shape: [10, 7, 5, 4], random, fill: 0.9 })
  for (let k = 0; k < 8; k++) {
    const origin = k === 0 ? 0 : k === 1 ? p.peers - 1 : p.randomPeer(random)
    for (const order of ['up-first', 'sideways-first'] as const) {
      const b = p.broadcast(origin, { order, seed: SEED })
      const ctx = `from ${formatGuid(p.guidOf(origin))} ${order}, ${p.peers} peers (seed ${SEED})`
      assert.equal(b.reached, p.peers, ctx)
      assert.equal(b.duplicates, 0, ctx)
      assert.equal(b.sent, p.peers - 1, ctx)
      assert.ok(b.maxHops <= 2 * p.depth, ctx)
    }
  }
  // On the regular 10x10x10 shape from a leaf, sending up first finishes sooner (fixed link latencies).
  const q = new StaticPolyring({ shape: [10, 10, 10] })
  const up = q.broadcast(q.peers - 1, { order: 'up-first' }), side = q.broadcast(q.peers - 1, { order: 'sideways-first' })
  assert.equal(up.sent, 1109)
  assert.ok(up.completionMs < side.completionMs, `up-first ${up.completionMs} ms, sideways-first ${side.completionMs} ms`)
})

test(`multicast reaches exactly its receivers; each copy carries only its part of the tree (seed ${SEED})`, () => {
  const random = new SeededRandom(`${SEED}:multicast`)
  const p = new StaticPolyring({ shape: [10, 8, 6, 5], random, fill: 0.9 })
  for (let k = 0; k < 10; k++) {
    const want = new Set<number>()
    const count = 1 + Math.floor(random.float() * Math.min(200, p.peers))
    while (want.size < count) want.add(p.randomPeer(random))
    const origin = p.randomPeer(random)
    const delivered = new Set<number>()
    const visitedBy = new Map<number, number>()
    const ctx = `from ${formatGuid(p.guidOf(origin))}, ${count} receivers (seed ${SEED})`
    const s = p.multicast(origin, [...want].map((h) => p.guidOf(h)), {
      onDeliver: (h) => delivered.add(h),
      onCopy: (from, to, list) => {
        assert.ok(list.length > 0, `empty copy ${ctx}`)
        assert.ok(!visitedBy.has(to), `peer ${formatGuid(p.guidOf(to))} got two copies ${ctx}`)
        visitedBy.set(to, from)
        const toG = p.guidOf(to)
        if (p.tables[from].parent === to) {
          // Up: only the parent itself or receivers outside the parent's subtree.
          for (const d of list) assert.ok(guidEquals(d, toG) || !isInSubtree(d, toG), `up copy to ${formatGuid(toG)} carries ${formatGuid(d)} ${ctx}`)
        } else {
          // Down or across: only receivers in the subtree of the peer it goes to.
          for (const d of list) assert.ok(isInSubtree(d, toG), `copy to ${formatGuid(toG)} carries ${formatGuid(d)} ${ctx}`)
        }
      },
    })
    assert.deepEqual([...delivered].sort((a, b) => a - b), [...want].sort((a, b) => a - b), ctx)
    assert.equal(s.violations, 0, ctx)
    assert.equal(s.unroutable, 0, ctx)
    // Every peer that got a copy is a receiver or lies on a route to one (no branch without receivers).
    for (const h of visitedBy.keys()) {
      const g = p.guidOf(h)
      assert.ok([...want].some((w) => isInSubtree(p.guidOf(w), g) || p.route(origin, p.guidOf(w)).hops >= 0 && onRoute(p, origin, w, h)), `copy to ${formatGuid(g)} leads to no receiver ${ctx}`)
    }
  }
  const none = p.multicast(0, [])
  assert.equal(none.copies, 0)
})

/** Whether `h` is on the route from `a` to `b`. */
function onRoute(p: StaticPolyring, a: number, b: number, h: number): boolean {
  let x = a
  for (let i = 0; i <= 2 * MAX_DEPTH; i++) {
    if (x === h) return true
    const n = nextHop(p.tables[x], p.guidOf(b))
    if (n < 0) return false
    x = n
  }
  return false
}
