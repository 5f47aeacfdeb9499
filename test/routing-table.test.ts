// The k-bucket table: nearest-first selection equals a brute-force sort; buckets stay bounded;
// a full bucket keeps its old contact unless that one fails.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { check } from './helpers/property.js'
import { RoutingTable } from '../src/overlay/kademlia/routing-table.js'
import { compareDistance, idEquals } from '../src/identity/node-id.js'

const id = fc.uint8Array({ minLength: 32, maxLength: 32 })

test('closest() equals a brute-force sort of the table', () => {
  check('closest', fc.tuple(id, fc.array(id, { maxLength: 300 }), id, fc.integer({ min: 1, max: 40 })), ([self, others, target, n]) => {
    const t = new RoutingTable(self, 8)
    others.forEach((o, i) => t.observe(o, `10.0.${i >> 8}.${i & 255}:1`, i))
    const all = t.entries(0).map((e) => e.id)
    const want = all.sort((a, b) => compareDistance(target, a, b)).slice(0, n)
    const got = t.closest(target, n).map((c) => c.id)
    assert.equal(got.length, want.length)
    got.forEach((g, i) => assert.ok(idEquals(g, want[i])))
    for (let b = 0; b < t.bucketCount; b++) assert.ok(t.bucketSize(b) <= 8)
  }, 200)
})

test('a full bucket keeps the old contact while it answers pings, and replaces it when it fails', () => {
  const self = new Uint8Array(32)
  const t = new RoutingTable(self, 2, 2, 4, 1000)
  const mk = (b: number) => { const x = new Uint8Array(32); x[0] = 0x80; x[31] = b; return x }
  let alive = true
  const probed: number[] = []
  t.probe = (c, done) => { probed.push(c.id[31]); done(alive) }
  t.observe(mk(1), '10.0.0.1:1', 0)
  t.observe(mk(2), '10.0.0.2:1', 1)
  t.observe(mk(3), '10.0.0.3:1', 500) // full, but 1 was seen 500 ms ago: alive, no ping
  assert.deepEqual(probed, [])
  t.observe(mk(3), '10.0.0.3:1', 2000) // 1 is now stale: ping it; it answers and stays
  assert.deepEqual(probed, [1])
  assert.ok(t.has(mk(1)) && !t.has(mk(3)))
  alive = false
  t.observe(mk(4), '10.0.0.4:1', 3000) // pings 2 (now least recently seen), which fails: 4 takes its place
  assert.deepEqual(probed, [1, 2])
  assert.ok(!t.has(mk(2)) && t.has(mk(4)))
  assert.equal(t.size, 2)
})
