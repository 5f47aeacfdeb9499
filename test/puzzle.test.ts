// S/Kademlia's static crypto puzzle: the check against a direct double SHA-256, the bound on
// difficulty, a node that makes its own valid identity and refuses a key that fails, and a
// table (and a real loopback network) that admits only ids that solve it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { checkPuzzle, MAX_PUZZLE_BITS, puzzleZeroBits, solvePuzzle, validatePuzzleBits } from '../src/identity/puzzle.js'
import { identityFromSeed, saveIdentity } from '../src/identity/keys.js'
import { RoutingTable } from '../src/overlay/kademlia/routing-table.js'
import { Kademlia } from '../src/overlay/kademlia/kademlia.js'
import { SeededRandom } from '../src/runtime/prng.js'
import { Node, isWeftError } from '../src/index.js'

const SEED = process.env.WEFT_SEED ?? 'puzzle'
const BITS = 8
const note = `(WEFT_SEED=${SEED})`

/** Leading zero bits of SHA-256(SHA-256(id)), counted bit by bit. */
function naiveZeros(id: Uint8Array): number {
  const h = createHash('sha256').update(createHash('sha256').update(id).digest()).digest()
  let n = 0
  while (n < 256 && !(h[n >> 3] & (0x80 >> (n & 7)))) n++
  return n
}

/** A seeded identity that fails the puzzle of `bits` bits. */
function failingIdentity(random: SeededRandom, bits: number) {
  for (;;) {
    const identity = identityFromSeed(random.bytes(32))
    if (!checkPuzzle(identity.id, bits)) return identity
  }
}

test('checkPuzzle counts leading zero bits of the double SHA-256 of the id', () => {
  const random = new SeededRandom(SEED)
  let valid = 0
  for (let i = 0; i < 4000; i++) {
    const id = random.bytes(32)
    const zeros = naiveZeros(id)
    assert.equal(puzzleZeroBits(id), zeros, note)
    assert.equal(checkPuzzle(id, 4), zeros >= 4, note)
    assert.equal(checkPuzzle(id, 0), true)
    if (checkPuzzle(id, 4)) valid++
  }
  // About one id in 16 solves 4 bits.
  assert.ok(valid > 150 && valid < 350, `${valid} of 4000 valid at 4 bits ${note}`)
})

test('difficulty is bounded: 0..MAX_PUZZLE_BITS whole numbers only', () => {
  for (const bad of [-1, 1.5, MAX_PUZZLE_BITS + 1, Number.NaN]) {
    assert.throws(() => validatePuzzleBits(bad), (e) => isWeftError(e, 'ERR_BAD_ARGUMENT'))
    assert.throws(() => solvePuzzle(bad), (e) => isWeftError(e, 'ERR_BAD_ARGUMENT'))
    assert.throws(() => new Node({ puzzleBits: bad }), (e) => isWeftError(e, 'ERR_BAD_ARGUMENT'))
  }
  assert.equal(validatePuzzleBits(MAX_PUZZLE_BITS), MAX_PUZZLE_BITS)
})

test('solvePuzzle returns a valid identity and counts its tries', () => {
  const random = new SeededRandom(SEED)
  let progress = 0
  const { identity, tries } = solvePuzzle(BITS, { generate: () => identityFromSeed(random.bytes(32)), onProgress: () => progress++ })
  assert.ok(checkPuzzle(identity.id, BITS), note)
  assert.ok(tries >= 1 && tries < 2 ** BITS * 64, note)
  assert.equal(progress, Math.floor((tries - 1) / 4096))
})

test('a node with puzzleBits generates an id that solves it, and refuses a given key that does not', () => {
  const random = new SeededRandom(SEED)
  const node = new Node({ puzzleBits: BITS })
  assert.ok(checkPuzzle(node.identity.id, BITS))
  const bad = failingIdentity(random, BITS)
  assert.throws(() => new Node({ puzzleBits: BITS, identity: bad }), (e) => isWeftError(e, 'ERR_BAD_ARGUMENT') && /does not solve the 8-bit crypto puzzle/.test((e as Error).message))
  const dir = mkdtempSync(join(tmpdir(), 'weft-puzzle-'))
  try {
    const keyFile = join(dir, 'bad.pem')
    saveIdentity(keyFile, bad)
    assert.throws(() => new Node({ puzzleBits: BITS, keyFile }), (e) => isWeftError(e, 'ERR_BAD_ARGUMENT'))
    // A data directory's first start makes a valid key, and the next start reuses it.
    const first = new Node({ puzzleBits: BITS, dataDir: join(dir, 'data') })
    assert.ok(checkPuzzle(first.identity.id, BITS))
    const again = new Node({ puzzleBits: BITS, dataDir: join(dir, 'data') })
    assert.deepEqual(Buffer.from(again.identity.id), Buffer.from(first.identity.id))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  // Without the puzzle the same key is fine.
  assert.ok(new Node({ identity: bad }).identity)
})

test('a table with the puzzle admits only ids that solve it, and counts the others', () => {
  const random = new SeededRandom(SEED)
  const t = new RoutingTable(random.bytes(32), 20)
  t.admit({ acceptId: (id) => checkPuzzle(id, 4) })
  let valid = 0
  for (let i = 0; i < 400; i++) {
    const id = random.bytes(32)
    if (checkPuzzle(id, 4)) valid++
    t.observe(id, `10.1.${i >> 8}.${i & 255}:1`, 0)
  }
  for (const e of t.entries(0)) assert.ok(checkPuzzle(e.id, 4), note)
  assert.equal(t.size, valid, note) // 400 random ids fill no bucket beyond 20 valid ones
  assert.equal(t.refusedIds, 400 - valid)
})

test('loopback: puzzle nodes ignore a node whose id fails the puzzle', async () => {
  const random = new SeededRandom(SEED)
  const a = new Node({ puzzleBits: BITS, encrypt: false })
  const b = new Node({ puzzleBits: BITS, encrypt: false })
  // An intruder runs without the puzzle, with an id that fails it.
  const intruder = new Node({ identity: failingIdentity(random, BITS), encrypt: false })
  await a.start()
  b.options.bootstrap = [a.address]
  intruder.options.bootstrap = [a.address]
  await b.start()
  await intruder.start()
  try {
    await b.lookup(b.idHex)
    const peers = a.peers().map((p) => p.id)
    assert.ok(peers.includes(b.idHex))
    assert.ok(!peers.includes(intruder.idHex), 'the intruder entered a puzzle table')
    assert.ok(!b.peers().some((p) => p.id === intruder.idHex), 'a lookup learned the intruder')
    assert.ok((a.topology as Kademlia).refused.puzzle >= 1)
  } finally {
    await intruder.stop()
    await b.stop()
    await a.stop()
  }
})
