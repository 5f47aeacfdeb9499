// The orders of responsibility (overlay/metric.ts) against plain BigInt arithmetic, and the
// oracle's closestBy against a brute-force ranking.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { check } from './helpers/property.js'
import { numericMetric, successorMetric, surrogateMetric, xorMetric, rank, type Metric } from '../src/overlay/metric.js'
import { ContactPool } from '../src/overlay/contact-pool.js'
import { Oracle } from '../src/sim/oracle.js'
import { SeededRandom } from '../src/runtime/prng.js'

const RING = 1n << 256n
const big = (b: Uint8Array): bigint => BigInt(`0x${Buffer.from(b).toString('hex')}`)
const sign = (x: bigint): number => (x < 0n ? -1 : x > 0n ? 1 : 0)

// The definitions, in arithmetic: what the byte-wise code must agree with.
const reference: Record<string, (t: bigint, a: bigint) => bigint> = {
  xor: (t, a) => t ^ a,
  successor: (t, a) => (((a - t) % RING) + RING) % RING,
  numeric: (t, a) => { const cw = (((a - t) % RING) + RING) % RING; return cw < RING - cw ? cw : RING - cw },
}
/** Surrogate order: the ids padded with zero bits to whole digits, then (digit - key's digit) mod 2^b per digit. */
function surrogateDistance(b: number, t: bigint, a: bigint): bigint {
  const digits = Math.ceil(256 / b), pad = BigInt(digits * b - 256), mask = (1n << BigInt(b)) - 1n
  const tp = t << pad, ap = a << pad
  let out = 0n
  for (let i = digits - 1; i >= 0; i--) {
    const shift = BigInt(i * b)
    out = (out << BigInt(b)) | ((((ap >> shift) & mask) - ((tp >> shift) & mask)) & mask)
  }
  return out
}
const distance = (m: Metric, t: bigint, a: bigint): bigint => m.name === 'surrogate' ? surrogateDistance(m.b!, t, a) : reference[m.name](t, a)
const metrics: Metric[] = [xorMetric, successorMetric, numericMetric, surrogateMetric(4), surrogateMetric(3), surrogateMetric(1)]

// Ids that are often near each other or at the ring's ends, where wrap-round bugs live.
const id = fc.oneof(
  fc.uint8Array({ minLength: 32, maxLength: 32 }),
  fc.constantFrom(new Uint8Array(32), new Uint8Array(32).fill(255)),
  fc.tuple(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.integer({ min: 0, max: 31 })).map(([b, n]) => { const c = b.slice(); c.fill(0x80, 0, n); return c }),
)

test('each metric orders ids as its arithmetic definition does (ties: numeric prefers the clockwise side)', () => {
  for (const m of metrics) {
    check(`${m.name}${m.b ? ` b=${m.b}` : ''} order`, fc.tuple(id, id, id), ([t, a, b]) => {
      const da = distance(m, big(t), big(a)), db = distance(m, big(t), big(b))
      const got = Math.sign(m.compare(t, a, b))
      if (da !== db) assert.equal(got, sign(da - db), `${m.name}: wrong order`)
      else if (big(a) === big(b)) assert.equal(got, 0)
      else assert.notEqual(got, 0, `${m.name}: a tie between different ids must still be broken`)
    })
  }
})

test('the numeric metric breaks an exact tie toward the id clockwise of the key', () => {
  const t = new Uint8Array(32).fill(0); t[31] = 10
  const below = new Uint8Array(32); below[31] = 8
  const above = new Uint8Array(32); above[31] = 12
  assert.ok(numericMetric.compare(t, above, below) < 0)
  assert.ok(numericMetric.compare(t, below, above) > 0)
})

test('the successor metric puts the key itself first and the id just below it last', () => {
  const t = new Uint8Array(32).fill(0x40)
  const below = t.slice(); below[31] -= 1
  const ids = [below, new Uint8Array(32), t.slice(), new Uint8Array(32).fill(0xff)]
  const ranked = rank(successorMetric, t, ids.map((i) => ({ id: i })))
  assert.deepEqual(ranked.map((c) => big(c.id)), [big(t), big(ids[3]), 0n, big(below)])
})

test('the oracle ranks live nodes by any metric as a brute-force sort does (seeded)', () => {
  const rnd = new SeededRandom('metric-oracle')
  const pool = new ContactPool()
  const oracle = new Oracle(pool)
  const handles: number[] = []
  for (let i = 0; i < 400; i++) handles.push(pool.acquire(rnd.bytes(32), `10.0.${i >> 8}.${i & 255}:4000`))
  oracle.addAll(handles)
  for (const h of handles) if (rnd.u32() % 4 === 0) oracle.setAlive(h, false)
  const live = handles.filter((h) => oracle.isAlive(h))
  for (const m of metrics) {
    for (let q = 0; q < 50; q++) {
      const target = rnd.bytes(32)
      const want = live.slice().sort((a, b) => m.compare(target, pool.id(a), pool.id(b))).slice(0, 20)
      assert.deepEqual(oracle.closestBy(m, target, 20), want, `${m.name}: query ${q} (seed metric-oracle)`)
    }
  }
})
