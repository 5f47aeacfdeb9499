// The eclipse simulation: the attacker's id supply drawn from the binomial law matches real key
// generation, and in a small seeded run the puzzle and diversity limits together keep the
// attackers' share of the victim's table well below what they take with no defence.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { attackerIds, runEclipse } from '../src/sim/eclipse.js'
import { checkPuzzle } from '../src/identity/puzzle.js'
import { commonPrefixLength } from '../src/identity/node-id.js'
import { identityFromSeed } from '../src/identity/keys.js'
import { SeededRandom } from '../src/runtime/prng.js'

const SEED = process.env.WEFT_SEED ?? 'eclipse'
const note = `(WEFT_SEED=${SEED})`

test('the drawn id supply matches real key generation: valid ids and their buckets', () => {
  const random = new SeededRandom(SEED)
  const victim = random.bytes(32)
  const tries = 2048, bits = 2
  // Real: generate keys, keep those that solve the puzzle, count them by bucket of the victim.
  const real = new Array<number>(8).fill(0)
  let realValid = 0
  for (let i = 0; i < tries; i++) {
    const { id } = identityFromSeed(random.bytes(32)) // a real key pair, from the seed
    if (!checkPuzzle(id, bits)) continue
    realValid++
    const b = Math.min(commonPrefixLength(victim, id), 7)
    real[b]++
  }
  // Drawn: the same budget, means over 20 draws.
  const drawn = new Array<number>(8).fill(0)
  let drawnValid = 0
  for (let d = 0; d < 20; d++) {
    const { ids, valid } = attackerIds(victim, tries, bits, 1e9, random)
    drawnValid += valid / 20
    for (const id of ids) drawn[Math.min(commonPrefixLength(victim, id), 7)] += 1 / 20
  }
  const expected = tries / 2 ** bits // 512, sd about 20
  assert.ok(Math.abs(realValid - expected) < 110, `real ${realValid} valid of ${tries} ${note}`)
  assert.ok(Math.abs(drawnValid - expected) < 25, `drawn ${drawnValid} valid ${note}`)
  for (let b = 0; b < 3; b++) {
    const want = expected / 2 ** (b + 1)
    assert.ok(Math.abs(real[b] - want) < 5 * Math.sqrt(want) + 2, `real bucket ${b}: ${real[b]} vs ${want} ${note}`)
    assert.ok(Math.abs(drawn[b] - want) < 2 * Math.sqrt(want) + 2, `drawn bucket ${b}: ${drawn[b]} vs ${want} ${note}`)
  }
})

test('the puzzle and diversity keep attackers to a far smaller share of the victim\'s table than no defence', () => {
  const o = { seed: SEED, honest: 2000, budget: 2 ** 18, puzzleBits: 12, rounds: 12 }
  const none = runEclipse(o, 'none')
  const puzzle = runEclipse(o, 'puzzle')
  const diversity = runEclipse(o, 'diversity')
  const both = runEclipse(o, 'both')
  const msg = `none ${none.table.attackers}/${none.table.size}, ${none.nearest.attackers}/${none.nearest.k} nearest; ` +
    `both ${both.table.attackers}/${both.table.size}, ${both.nearest.attackers}/${both.nearest.k} nearest ${note}`
  // With no defence a 2^18 budget takes the nearest and most of a churning table.
  assert.ok(none.nearest.share >= 0.9 && none.table.share >= 0.7, msg)
  // Each defence alone takes something off; both together leave the attackers a small share.
  assert.ok(puzzle.table.share < none.table.share && diversity.table.share < none.table.share, msg)
  assert.ok(both.table.share < none.table.share / 2, msg)
  assert.ok(both.nearest.share < none.nearest.share / 2, msg)
  assert.ok(diversity.refusedDiversity > 0 && none.refusedDiversity === 0, msg)
  assert.equal(puzzle.validIds < none.validIds / 1000, true, msg)
  // Same seed, same run.
  assert.deepEqual(runEclipse(o, 'both'), both)
})
