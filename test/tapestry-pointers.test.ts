// Tapestry's pointer store: order by hop, refresh, expiry, the per-object and object bounds and
// the replacement rule, remove, copied ids, and option checks. Explicit times, no timers.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { WeftError } from '../src/errors.js'
import { defaultPointerStoreOptions, PointerStore } from '../src/overlay/tapestry/pointers.js'
import type { Contact } from '../src/overlay/topology.js'

const NOW = 1_000_000
const id = (n: number) => { const b = new Uint8Array(32); b[0] = n >> 8; b[1] = n & 0xff; return b }
const server = (n: number): Contact => ({ id: id(1000 + n), address: `10.0.0.${n % 250}:${4000 + n}` })
const OBJ = id(1)
/** The server numbers of a get, in order. */
const servers = (store: PointerStore, object = OBJ, now = NOW, n?: number) =>
  store.get(object, now, n).map((p) => (p.server.id[0] << 8 | p.server.id[1]) - 1000)

test('get returns live pointers nearest the server first: lowest hop, then latest expiry, at most n', () => {
  const s = new PointerStore()
  assert.ok(s.put(OBJ, server(1), 3, NOW + 100, NOW))
  assert.ok(s.put(OBJ, server(2), 1, NOW + 100, NOW))
  assert.ok(s.put(OBJ, server(3), 3, NOW + 500, NOW))
  assert.ok(s.put(OBJ, server(4), 0, NOW + 50, NOW))
  assert.deepEqual(servers(s), [4, 2, 3, 1])
  assert.deepEqual(servers(s, OBJ, NOW, 2), [4, 2])
  const first = s.get(OBJ, NOW)[0]
  assert.equal(first.hop, 0)
  assert.equal(first.expiresAt, NOW + 50)
  assert.equal(first.server.address, server(4).address)
  assert.deepEqual(s.get(id(2), NOW), [], 'an object with no pointers')
  assert.equal(s.objects, 1)
  assert.equal(s.size, 4)
})

test('a server that publishes again refreshes its one pointer (hop, expiry, address)', () => {
  const s = new PointerStore()
  assert.ok(s.put(OBJ, server(1), 4, NOW + 100, NOW))
  assert.ok(s.put(OBJ, server(2), 2, NOW + 100, NOW))
  assert.ok(s.put(OBJ, { id: id(1001), address: '192.0.2.9:7' }, 1, NOW + 900, NOW + 10))
  assert.equal(s.size, 2)
  assert.deepEqual(servers(s), [1, 2])
  const p = s.get(OBJ, NOW)[0]
  assert.deepEqual([p.hop, p.expiresAt, p.server.address], [1, NOW + 900, '192.0.2.9:7'])
})

test('expired pointers are not returned, and expire() drops them and counts them', () => {
  const s = new PointerStore()
  s.put(OBJ, server(1), 1, NOW + 100, NOW)
  s.put(OBJ, server(2), 2, NOW + 200, NOW)
  s.put(id(2), server(3), 1, NOW + 100, NOW)
  assert.deepEqual(servers(s, OBJ, NOW + 99), [1, 2])
  assert.deepEqual(servers(s, OBJ, NOW + 100), [2], 'expiresAt is the first instant it is gone')
  assert.equal(s.expire(NOW + 50), 0)
  assert.equal(s.size, 3)
  assert.equal(s.expire(NOW + 100), 2)
  assert.deepEqual([s.objects, s.size], [1, 1])
  assert.equal(s.expire(NOW + 100), 0)
  assert.equal(s.expire(NOW + 200), 1)
  assert.deepEqual([s.objects, s.size], [0, 0])
  assert.equal(s.put(OBJ, server(4), 0, NOW, NOW), false, 'already expired: nothing to keep')
  assert.equal(s.size, 0)
})

test('an object keeps at most maxServersPerObject: a nearer newcomer replaces the farthest, others are refused', () => {
  const s = new PointerStore({ maxServersPerObject: 3 })
  assert.ok(s.put(OBJ, server(1), 2, NOW + 100, NOW))
  assert.ok(s.put(OBJ, server(2), 5, NOW + 300, NOW))
  assert.ok(s.put(OBJ, server(3), 5, NOW + 200, NOW))
  assert.equal(s.put(OBJ, server(4), 5, NOW + 900, NOW), false, 'as far as the farthest: refused')
  assert.equal(s.put(OBJ, server(5), 6, NOW + 900, NOW), false)
  assert.deepEqual(servers(s), [1, 2, 3])
  // The largest hop, then the earliest expiry, goes: server 3 (hop 5, expires first).
  assert.ok(s.put(OBJ, server(6), 4, NOW + 50, NOW))
  assert.deepEqual(servers(s), [1, 6, 2])
  assert.equal(s.size, 3)
  assert.ok(s.put(OBJ, server(2), 5, NOW + 400, NOW), 'a held server still refreshes when the object is full')
  assert.equal(s.size, 3)
  // The dead make room first: once server 6 has expired a far newcomer fits.
  assert.ok(s.put(OBJ, server(7), 9, NOW + 900, NOW + 60))
  assert.deepEqual(servers(s, OBJ, NOW + 60), [1, 2, 7])
  assert.equal(s.size, 3)
})

test('at maxObjects a new object is refused, not let in by evicting live pointers; after expiry it fits', () => {
  const s = new PointerStore({ maxObjects: 2 })
  assert.ok(s.put(id(1), server(1), 1, NOW + 100, NOW))
  assert.ok(s.put(id(2), server(2), 1, NOW + 500, NOW))
  assert.equal(s.put(id(3), server(3), 0, NOW + 900, NOW), false)
  assert.deepEqual([s.objects, s.size], [2, 2])
  assert.ok(s.put(id(2), server(4), 3, NOW + 500, NOW), 'a held object still takes more servers')
  assert.equal(s.put(id(3), server(3), 0, NOW + 900, NOW + 99), false)
  assert.ok(s.put(id(3), server(3), 0, NOW + 900, NOW + 100), 'object 1 has expired and makes room')
  assert.deepEqual([s.objects, s.size], [2, 3])
  assert.deepEqual(s.get(id(1), NOW), [])
  assert.deepEqual(servers(s, id(3), NOW + 100), [3])
})

test('remove drops one server of one object, and the object with its last server', () => {
  const s = new PointerStore()
  s.put(OBJ, server(1), 1, NOW + 100, NOW)
  s.put(OBJ, server(2), 2, NOW + 100, NOW)
  s.put(id(2), server(1), 1, NOW + 100, NOW)
  s.remove(OBJ, server(1).id.slice())
  assert.deepEqual(servers(s), [2])
  assert.deepEqual(servers(s, id(2)), [1], 'other objects keep that server')
  s.remove(OBJ, server(9).id) // not held: nothing happens
  s.remove(id(3), server(1).id)
  assert.deepEqual([s.objects, s.size], [2, 2])
  s.remove(OBJ, server(2).id)
  assert.deepEqual([s.objects, s.size], [1, 1])
})

test('the ids are copied: changing the bytes passed in changes nothing stored', () => {
  const s = new PointerStore()
  const datagram = new Uint8Array(64)
  const object = datagram.subarray(0, 32) // views into one buffer, as the decoder gives them
  const serverId = datagram.subarray(32, 64)
  object.set(OBJ)
  serverId.set(server(1).id)
  assert.ok(s.put(object, { id: serverId, address: '10.0.0.1:1' }, 1, NOW + 100, NOW))
  datagram.fill(0xee)
  assert.deepEqual(servers(s), [1], 'found under the original object id, with the original server id')
  assert.deepEqual(s.get(datagram.subarray(0, 32), NOW), [])
  assert.ok(s.put(OBJ, server(1), 0, NOW + 200, NOW), 'and refreshed by the original server id')
  assert.equal(s.size, 1)
})

test('options: defaults, and non-positive or non-integer limits are ERR_BAD_ARGUMENT', () => {
  assert.deepEqual(new PointerStore().options, { maxObjects: 10_000, maxServersPerObject: 8 })
  assert.deepEqual(defaultPointerStoreOptions, { maxObjects: 10_000, maxServersPerObject: 8 })
  assert.deepEqual(new PointerStore({ maxObjects: 5 }).options, { maxObjects: 5, maxServersPerObject: 8 })
  const bad = [0, -1, 1.5, NaN, Infinity]
  for (const v of bad) {
    for (const options of [{ maxObjects: v }, { maxServersPerObject: v }]) {
      assert.throws(() => new PointerStore(options), (e: unknown) => e instanceof WeftError && e.code === 'ERR_BAD_ARGUMENT', JSON.stringify(options))
    }
  }
})
