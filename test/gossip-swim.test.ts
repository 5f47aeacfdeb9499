// SWIM with Lifeguard (src/gossip/swim.ts) in the simulator: real failures found by every live
// member within a bound, no live member declared dead at 1 % loss, refutation, graceful leave,
// bounds, replay by seed, and the codec (round trips, size bound, malformed input refused).
// WEFT_SEED replays a run; every failure names it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { check } from './helpers/property.js'
import { WeftError } from '../src/errors.js'
import { MemoryWorld } from '../src/runtime/memory.js'
import { LAN_DEFAULTS, MAX_PIGGYBACK, MemberState, Swim, SwimType, UpdateKind, type SwimEvent, type SwimMessage, type SwimConfig } from '../src/gossip/swim.js'
import { runSwimSim } from '../src/gossip/swim-sim.js'
import { decodeSwim, encodeSwim, MAX_HEAD_BYTES, MAX_SWIM_PAYLOAD, MAX_UPDATE_BYTES, type SwimContact } from '../src/gossip/swim-codec.js'

const SEED = process.env.WEFT_SEED ?? 'swim-1'

/** A small group on a MemoryWorld whose links the test can cut. */
function group(n: number, config: Partial<SwimConfig> = {}, seed: string = SEED) {
  const world = new MemoryWorld(seed)
  const cut = new Set<number>() // members whose inbound and outbound messages are dropped
  const events: (SwimEvent & { at: number; by: number })[] = []
  const down = new Uint8Array(n)
  const swims: Swim[] = []
  for (let i = 0; i < n; i++) {
    swims.push(new Swim({
      self: i, runtime: world.runtime(i), config,
      send: (to, msg) => {
        if (cut.has(i) || cut.has(to)) return
        world.schedule(10 + world.random.float() * 20, () => { if (!down[to]) swims[to].receive(i, msg) })
      },
      onEvent: (e) => events.push({ ...e, at: world.now(), by: i }),
    }))
  }
  const all = Array.from({ length: n }, (_, i) => i)
  for (const s of swims) { s.addMembers(all); s.start() }
  const runUntil = (ms: number): void => {
    let done = false
    world.schedule(ms - world.now(), () => { done = true })
    while (!done && world.step()) { /* run */ }
  }
  return { world, swims, cut, events, down, runUntil }
}

test(`300 members, 1 % loss, Lifeguard: every crash is found by every live member, no live member declared dead (seed ${SEED})`, () => {
  const r = runSwimSim({ nodes: 300, seed: SEED, loss: 0.01, lifeguard: true, killFraction: 0.01, warmupMs: 10_000, afterMs: 50_000 })
  const min = LAN_DEFAULTS.suspicionMult * Math.log10(300) * LAN_DEFAULTS.probeIntervalMs
  assert.equal(r.killed, 3)
  for (const v of r.victims) {
    assert.equal(v.markedBy, r.live, `member ${v.member} marked dead by ${v.markedBy}/${r.live} (seed ${SEED})`)
    assert.ok(v.allDead !== null && v.allDead <= min + 10_000, `member ${v.member} dead everywhere after ${v.allDead} ms, bound ${min + 10_000} (seed ${SEED})`)
    assert.ok(v.firstSuspect !== null && v.firstSuspect <= 8_000, `first suspicion of ${v.member} after ${v.firstSuspect} ms (seed ${SEED})`)
    // The suspicion timeout is never shorter than min.
    assert.ok(v.firstDead! - v.firstSuspect! >= min - 1, `dead ${v.firstDead! - v.firstSuspect!} ms after the first suspicion (seed ${SEED})`)
  }
  assert.equal(r.falseDeaths, 0, `live members declared dead: ${JSON.stringify(r.falselyDead)} (seed ${SEED})`)
  assert.ok(r.messagesPerMemberPerSecond < 10, `${r.messagesPerMemberPerSecond} messages per member per second (seed ${SEED})`)
})

test(`without Lifeguard the crashes are found too, and a run replays exactly by seed (seed ${SEED})`, () => {
  const o = { nodes: 200, seed: SEED, loss: 0.01, lifeguard: false, killFraction: 0.02, warmupMs: 5_000, afterMs: 40_000 }
  const a = runSwimSim(o)
  for (const v of a.victims) assert.equal(v.markedBy, a.live, `member ${v.member} marked dead by ${v.markedBy}/${a.live} (seed ${SEED})`)
  const b = runSwimSim(o)
  assert.deepEqual(b.victims, a.victims, `replay differs (seed ${SEED})`)
  assert.equal(b.messages, a.messages)
  assert.equal(b.events, a.events)
  const c = runSwimSim({ ...o, seed: `${SEED}-other` })
  assert.notDeepEqual(c.victims, a.victims, 'another seed, another run')
})

test(`slow members: Lifeguard cuts false suspicions and false deaths of healthy members (seed ${SEED})`, () => {
  const o = { nodes: 300, seed: SEED, loss: 0.01, killFraction: 0, warmupMs: 60_000, afterMs: 0, slowFraction: 0.03, slowDelayMs: 1500 }
  const off = runSwimSim({ ...o, lifeguard: false })
  const on = runSwimSim({ ...o, lifeguard: true })
  const msg = `healthy falsely suspected off ${off.falselySuspected.healthy} on ${on.falselySuspected.healthy}; dead off ${off.falselyDead.healthy} on ${on.falselyDead.healthy} (seed ${SEED})`
  assert.ok(on.falselySuspected.healthy < off.falselySuspected.healthy, msg)
  assert.ok(on.falselyDead.healthy <= off.falselyDead.healthy, msg)
  assert.ok(on.maxLocalHealth > 0, `the slow members' local health rose (seed ${SEED})`)
})

test(`a suspected member refutes with a higher incarnation and is not declared dead (seed ${SEED})`, () => {
  const g = group(20)
  g.runUntil(3_000)
  g.cut.add(7) // member 7 hears nothing and is heard by no one...
  g.runUntil(5_500)
  assert.ok(g.events.some((e) => e.kind === 'suspect' && e.member === 7), `7 suspected (seed ${SEED})`)
  g.cut.delete(7) // ...then comes back well within the suspicion timeout (4 × log10 20 s = 5.2 s min, Lifeguard starts at 6×)
  g.runUntil(30_000)
  assert.ok(g.swims[7].incarnation >= 1, `7 refuted (incarnation ${g.swims[7].incarnation}, seed ${SEED})`)
  assert.ok(!g.events.some((e) => e.kind === 'fail' && e.member === 7), `7 declared dead (seed ${SEED})`)
  for (let i = 0; i < 20; i++) if (i !== 7) {
    assert.equal(g.swims[i].stateOf(7), MemberState.ALIVE, `member ${i} sees 7 alive (seed ${SEED})`)
    assert.equal(g.swims[i].incarnationOf(7), g.swims[7].incarnation)
  }
})

test(`a member cut off for longer than the suspicion timeout is declared dead, then comes back by refuting (seed ${SEED})`, () => {
  const g = group(20)
  g.runUntil(2_000)
  g.cut.add(3)
  g.runUntil(25_000)
  for (let i = 0; i < 20; i++) if (i !== 3) assert.equal(g.swims[i].stateOf(3), MemberState.DEAD, `member ${i} (seed ${SEED})`)
  assert.ok(g.events.filter((e) => e.kind === 'fail' && e.member === 3).length >= 19)
  g.cut.delete(3) // it probes the others; an ack from one that holds it dead says so; it refutes
  g.runUntil(35_000)
  const back = new Set(g.events.filter((e) => e.kind === 'join' && e.member === 3 && e.at > 25_000).map((e) => e.by))
  assert.equal(back.size, 19, `3 rejoined at ${back.size}/19 members (seed ${SEED})`)
  assert.ok(g.swims[3].incarnation >= 1)
})

test(`graceful leave is reported as leave, not fail (seed ${SEED})`, () => {
  const g = group(30)
  g.runUntil(2_000)
  g.swims[5].leave()
  g.runUntil(8_000)
  g.down[5] = 1
  g.swims[5].stop()
  g.runUntil(20_000)
  const leaves = new Set(g.events.filter((e) => e.kind === 'leave' && e.member === 5).map((e) => e.by))
  assert.equal(leaves.size, 29, `leave seen by ${leaves.size}/29 (seed ${SEED})`)
  assert.ok(!g.events.some((e) => e.kind === 'fail' && e.member === 5), `5 reported failed (seed ${SEED})`)
  for (let i = 0; i < 30; i++) if (i !== 5) assert.equal(g.swims[i].liveMembers, 28)
})

test(`a newcomer joins through one member; anti-entropy (snapshot and merge) fills any gap (seed ${SEED})`, () => {
  const g = group(40)
  g.runUntil(1_000)
  const world = g.world
  const swims = g.swims
  // Member 40 arrives knowing only member 0, and syncs state with it (memberlist's push-pull on join).
  const late = new Swim({
    self: 40, runtime: world.runtime(40),
    send: (to, msg) => world.schedule(15, () => swims[to].receive(40, msg)),
  })
  for (let i = 0; i < 40; i++) {
    const s = swims[i] as unknown as { sendFn: (to: number, m: SwimMessage) => void }
    const orig = s.sendFn
    s.sendFn = (to, m) => (to === 40 ? world.schedule(15, () => late.receive(i, m)) : orig(to, m))
  }
  late.start()
  late.join([0])
  late.merge(swims[0].snapshot())
  assert.equal(late.liveMembers, 40)
  g.runUntil(15_000)
  const knowing = (): number => swims.filter((s) => s.stateOf(40) === MemberState.ALIVE).length
  assert.ok(knowing() >= 38, `${knowing()}/40 know the newcomer by gossip alone (seed ${SEED})`)
  // One anti-entropy round: every member merges a random other's snapshot.
  for (let i = 0; i < 40; i++) swims[i].merge((i === 0 ? late : swims[(i + 1 + (world.random.u32() % 39)) % 40]).snapshot())
  // A member whose partner had missed the newcomer too: a second round, with the newcomer's own view.
  for (let i = 0; i < 40; i++) if (swims[i].stateOf(40) !== MemberState.ALIVE) swims[i].merge(late.snapshot())
  assert.equal(knowing(), 40, `${knowing()}/40 know the newcomer after a sync (seed ${SEED})`)
  assert.equal(new Set(g.events.filter((e) => e.kind === 'join' && e.member === 40).map((e) => e.by)).size, 40)
})

test('Lifeguard suspicion timeouts: 6 × min alone, min after k = 2 independent confirmations; min without Lifeguard', () => {
  const timeoutOf = (lifeguard: boolean, confirmers: number[]): number => {
    const world = new MemoryWorld(SEED)
    let s: Swim
    let deadAt = -1
    s = new Swim({
      self: 0, runtime: world.runtime(0), config: { lifeguard },
      // Everyone answers our pings at once, so only the suspicion we inject runs.
      send: (to, m) => { if (m.type === SwimType.PING) world.schedule(1, () => s.receive(to, { type: SwimType.ACK, seq: m.seq, updates: [] })) },
      onEvent: (e) => { if (e.kind === 'fail' && e.member === 5) deadAt = world.now() },
    })
    s.addMembers(Array.from({ length: 100 }, (_, i) => i + 1))
    s.start()
    const suspect = (from: number) => s.receive(from, { type: SwimType.GOSSIP, seq: 0, updates: [{ kind: UpdateKind.SUSPECT, member: 5, incarnation: 0, from }] })
    suspect(1)
    world.schedule(1000, () => { for (const c of confirmers) suspect(c) })
    // The member probes 5 too and gets its ack, which does not clear a suspicion (only "alive" from 5 does).
    let done = false
    world.schedule(200_000, () => { done = true })
    while (!done && world.step()) { /* run */ }
    return deadAt
  }
  const min = 4 * Math.log10(101) * 1000
  const near = (a: number, b: number) => Math.abs(a - b) < 2
  assert.ok(near(timeoutOf(true, []), 6 * min), `alone: ${timeoutOf(true, [])} vs ${6 * min}`)
  assert.ok(near(timeoutOf(true, [1, 1, 1]), 6 * min), 'the same suspector again is not a confirmation')
  const one = 6 * min - (Math.log(2) / Math.log(3)) * (5 * min)
  assert.ok(near(timeoutOf(true, [2]), one), `one confirmation: ${timeoutOf(true, [2])} vs ${one}`)
  assert.ok(near(timeoutOf(true, [2, 3]), min), `two: ${timeoutOf(true, [2, 3])} vs ${min}`)
  assert.ok(near(timeoutOf(true, [2, 3, 4, 6]), min), 'never below min')
  assert.ok(near(timeoutOf(false, []), min), `without Lifeguard: ${timeoutOf(false, [])} vs ${min}`)
})

test('bounds: members, ping-reqs served, options', () => {
  const world = new MemoryWorld(SEED)
  const sent: SwimMessage[] = []
  const s = new Swim({ self: 0, runtime: world.runtime(0), send: (_to, m) => sent.push(m), config: { maxMembers: 10, maxIndirect: 2 } })
  s.addMembers(Array.from({ length: 50 }, (_, i) => i))
  assert.equal(s.liveMembers, 10)
  assert.equal(s.stats.refused.members, 39) // 50 less ourselves, less 10 admitted
  s.start()
  const alive = (m: number) => ({ kind: UpdateKind.ALIVE, member: m, incarnation: 1, from: m })
  s.receive(1, { type: SwimType.GOSSIP, seq: 0, updates: [alive(100)] })
  assert.equal(s.stateOf(100), MemberState.NONE, 'past maxMembers, refused')
  assert.equal(s.stats.refused.members, 40)
  for (let i = 0; i < 5; i++) s.receive(1, { type: SwimType.PING_REQ, seq: 1000 + i, target: 2, updates: [] })
  assert.equal(s.stats.refused.indirect, 3)
  s.receive(1, { type: SwimType.PING, seq: 1, target: 9, updates: [] })
  assert.equal(s.stats.refused.misdirected, 1)
  s.receive(1, { type: SwimType.GOSSIP, seq: 0, updates: Array.from({ length: MAX_PIGGYBACK + 1 }, (_, i) => alive(i + 1)) })
  assert.equal(s.stats.refused.oversized, 1)
  const bad = (config: Partial<SwimConfig>) => assert.throws(() => new Swim({ self: 0, runtime: world.runtime(1), send: () => {}, config }), (e: unknown) => e instanceof WeftError && e.code === 'ERR_BAD_ARGUMENT')
  bad({ probeTimeoutMs: 2000 })
  bad({ indirectChecks: 99 })
  bad({ suspicionMult: 0 })
  assert.throws(() => new Swim({ self: -1, runtime: world.runtime(1), send: () => {} }), (e: unknown) => e instanceof WeftError && e.code === 'ERR_BAD_ARGUMENT')
  // Updates with handles out of range are ignored, not a crash.
  s.receive(1, { type: SwimType.GOSSIP, seq: 0, updates: [alive(-5), alive(2 ** 30), alive(1.5)] })
})

// ---- codec ---------------------------------------------------------------------------------

const contacts = new Map<number, SwimContact>()
function contactOf(h: number): SwimContact {
  let c = contacts.get(h)
  if (!c) {
    const id = new Uint8Array(32)
    new DataView(id.buffer).setUint32(0, h)
    c = { id, address: h % 2 ? `10.${(h >> 16) & 255}.${(h >> 8) & 255}.${h & 255}:${1000 + (h % 60000)}` : `[fd00::${(h >>> 16).toString(16)}:${(h & 0xffff).toString(16)}]:${1000 + (h % 60000)}` }
    contacts.set(h, c)
  }
  return c
}
const handleOf = (id: Uint8Array): number => new DataView(id.buffer, id.byteOffset).getUint32(0)

test('codec: every message round-trips and the largest fits one datagram', () => {
  assert.ok(MAX_HEAD_BYTES + MAX_PIGGYBACK * MAX_UPDATE_BYTES <= MAX_SWIM_PAYLOAD, 'MAX_PIGGYBACK updates fit')
  const handle = fc.integer({ min: 0, max: 1_000_000 })
  const update = fc.record({ kind: fc.constantFrom(UpdateKind.ALIVE, UpdateKind.SUSPECT, UpdateKind.DEAD), member: handle, incarnation: fc.integer({ min: 0, max: 0xffffffff }), from: handle })
  const msg = fc.record({
    type: fc.constantFrom(SwimType.PING, SwimType.ACK, SwimType.PING_REQ, SwimType.NACK, SwimType.GOSSIP),
    seq: fc.integer({ min: 0, max: 0xffffffff }), target: handle,
    updates: fc.array(update, { maxLength: MAX_PIGGYBACK }),
  })
  check('swim codec', msg, (m) => {
    const message = (m.type === SwimType.PING || m.type === SwimType.PING_REQ ? m : { type: m.type, seq: m.seq, updates: m.updates }) as SwimMessage
    const bytes = encodeSwim(message, contactOf)
    assert.ok(bytes.length <= MAX_SWIM_PAYLOAD)
    const back = decodeSwim(bytes, handleOf)
    // ALIVE carries no "from" (it is the member); DEAD only whether the member left.
    const expect = message.updates.map((u) => ({ ...u, from: u.kind === UpdateKind.SUSPECT ? u.from : u.kind === UpdateKind.DEAD ? (u.from === u.member ? u.member : -1) : u.member }))
    assert.deepEqual(back, { ...message, updates: expect })
  })
  assert.throws(() => encodeSwim({ type: SwimType.ACK, seq: 1, updates: Array.from({ length: MAX_PIGGYBACK + 1 }, (_, i) => ({ kind: UpdateKind.ALIVE, member: i, incarnation: 0, from: i })) }, contactOf),
    (e: unknown) => e instanceof WeftError && e.code === 'ERR_TOO_LARGE')
})

test('codec: malformed bytes are refused with a code, never a crash', () => {
  const good = encodeSwim({ type: SwimType.PING, seq: 7, target: 3, updates: [{ kind: UpdateKind.SUSPECT, member: 4, incarnation: 2, from: 5 }, { kind: UpdateKind.DEAD, member: 6, incarnation: 1, from: 6 }] }, contactOf)
  const codes = new Set(['ERR_BAD_MESSAGE', 'ERR_TRUNCATED', 'ERR_TOO_LARGE', 'ERR_BAD_ADDRESS'])
  for (let cut = 0; cut < good.length; cut++) assert.throws(() => decodeSwim(good.subarray(0, cut), handleOf), (e: unknown) => e instanceof WeftError && codes.has(e.code), `cut at ${cut}`)
  assert.throws(() => decodeSwim(new Uint8Array([...good, 0]), handleOf), (e: unknown) => e instanceof WeftError && e.code === 'ERR_BAD_MESSAGE')
  const badType = good.slice(); badType[0] = 9
  assert.throws(() => decodeSwim(badType, handleOf), (e: unknown) => e instanceof WeftError && e.code === 'ERR_BAD_MESSAGE')
  check('swim decode fuzz', fc.uint8Array({ maxLength: 400 }), (b) => {
    try { decodeSwim(b, handleOf) } catch (e) { assert.ok(e instanceof WeftError && codes.has(e.code), String(e)) }
  }, 2000)
  check('swim decode mutations', fc.tuple(fc.integer({ min: 0, max: good.length - 1 }), fc.integer({ min: 0, max: 255 })), ([i, v]) => {
    const b = good.slice(); b[i] = v
    try { decodeSwim(b, handleOf) } catch (e) { assert.ok(e instanceof WeftError && codes.has(e.code), String(e)) }
  }, 1000)
})
