// Routing-table diversity: one bucket takes at most perSlash24 contacts from one IPv4 /24 (IPv6
// /48) and perSlash16 from one /16 (/32); loopback and private addresses are exempt by default.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { RoutingTable } from '../src/overlay/kademlia/routing-table.js'
import { addressPrefixes, defaultDiversity, type DiversityOptions } from '../src/overlay/kademlia/diversity.js'
import { Kademlia } from '../src/overlay/kademlia/kademlia.js'
import { SeededRandom } from '../src/runtime/prng.js'
import { MemoryWorld } from '../src/runtime/memory.js'
import { Node, isWeftError } from '../src/index.js'

const SEED = process.env.WEFT_SEED ?? 'diversity'
const note = `(WEFT_SEED=${SEED})`
const strict: DiversityOptions = { ...defaultDiversity, exemptPrivate: false }

/** A table whose self is all zeros, and ids that all fall in bucket 0 (first bit set). */
function table(diversity: DiversityOptions | null): RoutingTable {
  const t = new RoutingTable(new Uint8Array(32), 20)
  t.admit({ diversity })
  return t
}
function bucket0Id(random: SeededRandom): Uint8Array {
  const id = random.bytes(32)
  id[0] |= 0x80
  return id
}

test('defaults: a bucket refuses the third contact from one /24 and the fifth from one /16', () => {
  const random = new SeededRandom(SEED)
  const t = table(strict)
  t.observe(bucket0Id(random), '203.0.113.1:4000', 0)
  t.observe(bucket0Id(random), '203.0.113.2:4000', 0)
  t.observe(bucket0Id(random), '203.0.113.3:4000', 0) // third from 203.0.113/24
  assert.equal(t.size, 2, note)
  assert.equal(t.refusedDiversity, 1)
  t.observe(bucket0Id(random), '203.0.114.1:4000', 0)
  t.observe(bucket0Id(random), '203.0.115.1:4000', 0) // fourth from 203.0/16
  t.observe(bucket0Id(random), '203.0.116.1:4000', 0) // fifth: refused
  assert.equal(t.size, 4, note)
  assert.equal(t.refusedDiversity, 2)
  t.observe(bucket0Id(random), '198.51.100.1:4000', 0) // another /16: fine
  assert.equal(t.size, 5)
  // The same ids in another bucket are counted apart: limits are per bucket.
  const deep = bucket0Id(random)
  deep[0] = 0x40
  t.observe(deep, '203.0.113.9:4000', 0)
  assert.equal(t.size, 6)
})

test('a refused contact does not wait as a replacement, and a known contact may not move into a full prefix', () => {
  const random = new SeededRandom(SEED)
  const t = new RoutingTable(new Uint8Array(32), 2, 2, 4, 1000)
  t.admit({ diversity: strict })
  t.probe = (_c, done) => done(true)
  const a = bucket0Id(random), b = bucket0Id(random), c = bucket0Id(random), d = bucket0Id(random)
  t.observe(a, '203.0.113.1:1', 0)
  t.observe(b, '203.0.113.2:1', 0)
  t.observe(c, '203.0.113.3:1', 5000) // full anyway, and the /24 is full too: not queued
  assert.equal(t.refusedDiversity, 1)
  t.failed(a, 6000)
  t.failed(a, 6000) // a leaves; no replacement waited
  assert.ok(!t.has(a) && !t.has(c))
  t.observe(a, '198.51.100.1:1', 7000)
  t.observe(a, '203.0.113.7:1', 7000) // a proven move into 203.0.113/24, which holds b only: allowed
  assert.equal(t.entries(7000).find((e) => Buffer.from(e.id).equals(a))?.address, '203.0.113.7:1')
  t.observe(d, '203.0.113.8:1', 7000) // the /24 now holds two: refused, not even queued
  assert.equal(t.refusedDiversity, 2)
  assert.equal(t.size, 2)
  t.observe(b, '203.0.113.9:1', 8000) // b moving within its own /24 is fine (it is not counted against itself)
  assert.equal(t.refusedDiversity, 2)
})

test('loopback and private addresses are exempt by default; the exemption can be turned off', () => {
  const random = new SeededRandom(SEED)
  const exempt = table(defaultDiversity)
  for (let i = 0; i < 10; i++) exempt.observe(bucket0Id(random), `127.0.0.1:${4000 + i}`, 0)
  for (let i = 0; i < 5; i++) exempt.observe(bucket0Id(random), `192.168.1.${i + 1}:4000`, 0)
  assert.equal(exempt.size, 15)
  assert.equal(exempt.refusedDiversity, 0)
  const off = table(strict)
  for (let i = 0; i < 10; i++) off.observe(bucket0Id(random), `10.0.0.${i + 1}:4000`, 0)
  assert.equal(off.size, 2)
  assert.equal(off.refusedDiversity, 8)
  const none = table(null)
  for (let i = 0; i < 10; i++) none.observe(bucket0Id(random), `203.0.113.${i + 1}:4000`, 0)
  assert.equal(none.size, 10)
})

test('IPv6: /48 and /32 play the parts of /24 and /16; IPv4-mapped addresses count as IPv4', () => {
  const random = new SeededRandom(SEED)
  const t = table(strict)
  t.observe(bucket0Id(random), '[2001:db8:1:1::1]:4000', 0)
  t.observe(bucket0Id(random), '[2001:db8:1:2::1]:4000', 0) // same /48
  t.observe(bucket0Id(random), '[2001:db8:1:ffff::9]:4000', 0) // third in 2001:db8:1::/48: refused
  assert.equal(t.size, 2, note)
  t.observe(bucket0Id(random), '[2001:db8:2::1]:4000', 0)
  t.observe(bucket0Id(random), '[2001:db8:3::1]:4000', 0) // fourth in 2001:db8::/32
  t.observe(bucket0Id(random), '[2001:db8:4::1]:4000', 0) // fifth: refused
  assert.equal(t.size, 4)
  t.observe(bucket0Id(random), '[2001:db9::1]:4000', 0) // another /32
  assert.equal(t.size, 5)
  const out = new Float64Array(2), v4 = new Float64Array(2)
  assert.ok(addressPrefixes('[::ffff:203.0.113.5]:1', false, out) && addressPrefixes('203.0.113.77:2', false, v4))
  assert.deepEqual([...out], [...v4])
  // Exempt by default: ::1, fc00::/7, fe80::/10, private IPv4 and 100.64/10; a global address is not.
  for (const a of ['[::1]:1', '[fd12:3456::1]:1', '[fe80::1]:1', '10.2.3.4:1', '172.20.0.1:1', '192.168.0.1:1', '100.64.0.1:1']) assert.equal(addressPrefixes(a, true, out), false, a)
  for (const a of ['[2001:db8::1]:1', '172.32.0.1:1', '8.8.8.8:1']) assert.equal(addressPrefixes(a, true, out), true, a)
})

test('Kademlia options: diversity merged over the defaults and bounded; a loopback network is unaffected', async () => {
  // On a simulated network: a start refused for its options leaves no socket behind there.
  const world = new MemoryWorld(SEED)
  for (const diversity of [{ perSlash24: -1 }, { perSlash16: 1000 }, { perSlash24: 1.5 }]) {
    await assert.rejects(new Node({ host: '100.64.0.9', runtime: world.runtime('bad'), network: world, topologyOptions: { diversity } }).start(), (e) => isWeftError(e, 'ERR_BAD_ARGUMENT'))
  }
  const nodes = Array.from({ length: 6 }, () => new Node({ encrypt: false }))
  await nodes[0].start()
  try {
    for (const n of nodes.slice(1)) { n.options.bootstrap = [nodes[0].address]; await n.start() }
    assert.equal(nodes[0].status().peers, 5) // six nodes on 127.0.0.1: exempt, all admitted
    assert.equal((nodes[0].topology as Kademlia).refused.diversity, 0)
  } finally {
    for (const n of nodes.reverse()) await n.stop()
  }
})
