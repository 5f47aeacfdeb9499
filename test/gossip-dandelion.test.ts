// Dandelion++ (src/gossip/dandelion.ts): the module's rules one by one, then networks in the
// simulator: every message fluffs and reaches every node, the embargo saves messages a stem node
// drops, and the first-spy adversary does worse against Dandelion++ than against diffusion.
// WEFT_SEED replays a run; every failure names it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { WeftError } from '../src/errors.js'
import { MemoryWorld } from '../src/runtime/memory.js'
import { Dandelion, type DandelionConfig } from '../src/gossip/dandelion.js'
import { runDandelionSim } from '../src/gossip/dandelion-sim.js'

const SEED = process.env.WEFT_SEED ?? 'dandelion-1'

function node(peers: number[], config: Partial<DandelionConfig> = {}, label = 'n') {
  const world = new MemoryWorld(`${SEED}:${label}`)
  const stems: [number, number][] = []
  const fluffs: number[] = []
  const d = new Dandelion<number>({
    runtime: world.runtime(0), peers: () => peers, key: (m) => m, config,
    sendStem: (to, m) => stems.push([to, m]), fluff: (m) => fluffs.push(m),
  })
  const run = (ms: number) => { let done = false; world.schedule(ms, () => { done = true }); while (!done && world.step()) { /* run */ } }
  return { d, world, stems, fluffs, run }
}

test(`routes are fixed per inbound peer within an epoch; own messages take one edge; redrawn each epoch (seed ${SEED})`, () => {
  const { d, stems } = node([1, 2, 3, 4, 5, 6, 7, 8], { fluffProbability: 0 })
  d.start()
  assert.equal(d.mode, 'stem')
  assert.equal(d.stemSuccessors.length, 2)
  let m = 0
  const routeOf = (from: number): Set<number> => {
    const to = new Set<number>()
    for (let i = 0; i < 20; i++) { d.onStem(from, ++m); to.add(stems[stems.length - 1][0]) }
    return to
  }
  for (const from of [1, 3, 5, 7, 9]) {
    const to = routeOf(from)
    assert.equal(to.size, 1, `messages from ${from} left on ${[...to]} (seed ${SEED})`)
    assert.ok(d.stemSuccessors.includes([...to][0]))
  }
  const own = new Set<number>()
  for (let i = 0; i < 20; i++) { d.send(++m); own.add(stems[stems.length - 1][0]) }
  assert.equal(own.size, 1, 'own messages always on the same edge')
  // Over many epochs both successors get used for own messages, and the successors change.
  const owns = new Set<number>(), succs = new Set<string>()
  for (let e = 0; e < 50; e++) { d.newEpoch(); d.send(++m); owns.add(stems[stems.length - 1][0]); succs.add([...d.stemSuccessors].sort().join()) }
  assert.ok(owns.size >= 4, `own edges over 50 epochs: ${[...owns]} (seed ${SEED})`)
  assert.ok(succs.size >= 10)
  d.stop()
})

test(`a diffuser fluffs stem messages but stems its own; about q of epochs are fluff epochs (seed ${SEED})`, () => {
  const { d, stems, fluffs } = node([1, 2, 3], { fluffProbability: 1 })
  d.start()
  assert.equal(d.mode, 'fluff')
  d.onStem(1, 100)
  assert.deepEqual(fluffs, [100])
  d.send(101)
  assert.deepEqual(stems.map(([, m]) => m), [101], 'own message goes on the stem even in fluff mode')
  d.stop()
  const q = node([1, 2, 3], { fluffProbability: 0.1 }, 'q')
  let fluffEpochs = 0
  for (let e = 0; e < 4000; e++) { q.d.newEpoch(); if (q.d.mode === 'fluff') fluffEpochs++ }
  assert.ok(fluffEpochs > 320 && fluffEpochs < 480, `${fluffEpochs} fluff epochs of 4000 at q = 0.1 (seed ${SEED})`)
})

test(`embargo: a stem message not seen in the broadcast is fluffed by its holder; seeing it cancels the embargo (seed ${SEED})`, () => {
  const { d, fluffs, run } = node([1, 2], { fluffProbability: 0, embargoBaseMs: 1000, embargoMeanMs: 500 })
  d.start()
  d.onStem(1, 7)
  d.onStem(1, 8)
  d.send(9)
  assert.equal(d.pendingCount, 3)
  d.onFluffed(8) // the broadcast brought 8 back
  run(60_000)
  assert.deepEqual(fluffs.sort(), [7, 9])
  assert.equal(d.stats.embargoFired, 2)
  assert.equal(d.pendingCount, 0)
  // A stem that comes back (a loop) is fluffed at once.
  d.onStem(2, 20)
  d.onStem(1, 20)
  assert.equal(d.stats.loops, 1)
  assert.ok(fluffs.includes(20))
  d.onStem(2, 20) // after the fluff: ignored
  assert.equal(fluffs.filter((x) => x === 20).length, 1)
  d.stop()
})

test('bounds and bad options', () => {
  const { d, fluffs, stems } = node([1, 2], { fluffProbability: 0, maxPending: 2, maxSeen: 3 })
  d.start()
  d.onStem(1, 1); d.onStem(1, 2); d.onStem(1, 3)
  assert.equal(d.pendingCount, 2)
  assert.deepEqual(fluffs, [3], 'past maxPending, fluffed at once')
  assert.equal(d.stats.refusedPending, 1)
  assert.equal(stems.length, 2)
  const alone = node([], {}, 'alone')
  alone.d.start()
  alone.d.send(5)
  assert.deepEqual(alone.fluffs, [5], 'no peer: fluffed at once')
  // A successor going down is replaced by another peer.
  const p = node([1, 2, 3, 4], { fluffProbability: 0 }, 'down')
  p.d.start()
  const gone = p.d.stemSuccessors[0]
  p.d.peerDown(gone)
  assert.ok(!p.d.stemSuccessors.includes(gone) && p.d.stemSuccessors.length === 2)
  const world = new MemoryWorld(SEED)
  const bad = (config: Partial<DandelionConfig>) => assert.throws(() => new Dandelion<number>({ runtime: world.runtime(0), peers: () => [], key: (m) => m, sendStem: () => {}, fluff: () => {}, config }), (e: unknown) => e instanceof WeftError && e.code === 'ERR_BAD_ARGUMENT')
  bad({ fluffProbability: 1.5 })
  bad({ successors: 0 })
  bad({ epochMs: 0 })
  bad({ maxPending: 0 })
})

test(`every message fluffs and reaches every node (400 nodes, seed ${SEED})`, () => {
  const r = runDandelionSim({ nodes: 400, seed: SEED, spies: 0, epochs: 2, protocol: 'dandelion', deliverAll: true })
  assert.equal(r.messages, 800)
  assert.equal(r.deliveredToAll, r.messages, `${r.deliveredToAll}/${r.messages} reached every node (seed ${SEED})`)
  assert.ok(r.meanStemHops > 4 && r.meanStemHops < 16, `mean stem ${r.meanStemHops} hops at q = 0.1 (seed ${SEED})`)
  assert.equal(r.embargoFired, 0, `no stem node drops, no embargo fires (seed ${SEED})`)
})

test(`stem nodes that drop messages: the last holder's embargo fluffs them, and all are delivered (seed ${SEED})`, () => {
  const r = runDandelionSim({ nodes: 400, seed: SEED, spies: 0, epochs: 1, protocol: 'dandelion', deliverAll: true, blackholes: 0.1 })
  assert.equal(r.deliveredToAll, r.messages, `${r.deliveredToAll}/${r.messages} reached every node (seed ${SEED})`)
  assert.ok(r.embargoFired > 0.2 * r.messages, `${r.embargoFired} embargoes fired for ${r.messages} messages (seed ${SEED})`)
})

test(`first spy at 10 % spies: Dandelion++'s precision is well below diffusion's (1,000 nodes, seed ${SEED})`, () => {
  const o = { nodes: 1000, seed: SEED, spies: 0.1, epochs: 2 }
  const diff = runDandelionSim({ ...o, protocol: 'diffusion' })
  const dand = runDandelionSim({ ...o, protocol: 'dandelion' })
  const msg = `precision: diffusion ${diff.precision.toFixed(3)}, Dandelion++ ${dand.precision.toFixed(3)}; recall ${diff.recall.toFixed(3)} vs ${dand.recall.toFixed(3)} (seed ${SEED})`
  assert.ok(dand.precision < 0.6 * diff.precision, msg)
  assert.ok(dand.recall < diff.recall, msg)
  // Replays exactly.
  assert.deepEqual(runDandelionSim({ ...o, protocol: 'dandelion' }), dand)
})
