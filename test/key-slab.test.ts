import { test } from 'node:test'
import assert from 'node:assert/strict'
import { KeySlab } from '../src/transport/key-slab.js'

test('a key slab hands out distinct 64-byte slots, zeroes a released one and reuses it', () => {
  const slab = new KeySlab()
  const slots = Array.from({ length: 130 }, () => slab.take()) // past two chunks
  assert.equal(new Set(slots).size, 130)
  assert.equal(slab.used, 130)
  // Each slot's bytes are its own: writing one leaves its neighbours alone.
  slots.forEach((s, i) => slab.view(s).fill(i + 1))
  slots.forEach((s, i) => assert.ok(slab.view(s).every((b) => b === i + 1), `slot ${s}`))
  assert.equal(slab.view(slots[0]).length, 64)
  slab.release(slots[70])
  assert.equal(slab.used, 129)
  const again = slab.take()
  assert.equal(again, slots[70], 'a released slot is taken before a new one')
  assert.ok(slab.view(again).every((b) => b === 0), 'a released slot comes back zeroed')
  assert.ok(slab.view(slots[71]).every((b) => b === 72), 'its neighbour is untouched')
})
