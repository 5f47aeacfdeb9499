// Reliable channels between nodes (transport/channels.ts over transport/channel.ts), inside the
// encrypted sessions: real UDP on loopback, then a seeded MemoryWorld that loses a fifth of all
// datagrams, handshakes included. Every message arrives once, whole and in order; the bounds on
// channels per peer hold and bad channel packets are counted.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { Node, type NodeOptions } from '../src/node/node.js'
import { MemoryWorld } from '../src/runtime/memory.js'
import { seededIdentity } from '../src/node/testnet.js'
import type { PeerChannel } from '../src/transport/channels.js'
import { SeededRandom } from '../src/runtime/prng.js'

const SEED = process.env.WEFT_SEED ?? 'channels-1'

/** Messages of seeded sizes (0 to 9,000 bytes: many span several segments), each naming its index. */
function messages(seed: string, count: number): Uint8Array[] {
  const r = new SeededRandom(seed)
  return Array.from({ length: count }, (_, i) => {
    const m = r.bytes(r.u32() % 9000)
    if (m.length >= 4) new DataView(m.buffer, m.byteOffset).setUint32(0, i)
    return m
  })
}
const digest = (ms: Uint8Array[]): string[] => ms.map((m) => createHash('sha256').update(m).digest('hex'))

/** Sends every message, waiting while the send buffer is full; resolves when the peer acknowledged all. */
async function sendAll(c: PeerChannel, ms: Uint8Array[], wait: (ms: number) => Promise<void>): Promise<void> {
  for (const m of ms) {
    for (;;) {
      try { c.send(m); break } catch (err) {
        if ((err as { code?: string }).code !== 'ERR_BUSY') throw err
        await wait(20)
      }
    }
  }
  while (c.pending > 0 && !c.closed) await wait(20)
}

/** Collects what arrives on the first channel a node accepts. */
function accept(node: Node): { got: Uint8Array[]; channel: Promise<PeerChannel> } {
  const got: Uint8Array[] = []
  const channel = new Promise<PeerChannel>((resolve) => node.once('channel', (c) => {
    c.onMessage = (m) => got.push(m)
    resolve(c)
  }))
  return { got, channel }
}

test('a channel over real UDP on loopback, encrypted: 300 messages each way, once and in order', async () => {
  const a = new Node({ host: '127.0.0.1', port: 0, identity: seededIdentity(SEED, 0) })
  const b = new Node({ host: '127.0.0.1', port: 0, identity: seededIdentity(SEED, 1) })
  const wait = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
  try {
    await a.start()
    b.options.bootstrap = [a.address]
    await b.start()
    const atA = accept(a)
    const toA = b.channel(a.address, 7)
    const fromA: Uint8Array[] = []
    toA.onMessage = (m) => fromA.push(m)
    const out = messages(`${SEED}:b->a`, 300)
    await sendAll(toA, out, wait)
    const back = await atA.channel
    assert.equal(back.stream, 7)
    assert.equal(back.address, b.address)
    assert.deepEqual(digest(atA.got), digest(out), `seed ${SEED}`)
    const replies = messages(`${SEED}:a->b`, 300)
    await sendAll(back, replies, wait)
    assert.deepEqual(digest(fromA), digest(replies), `seed ${SEED}`)
    assert.ok(a.status().sessions!.decryptFailures === 0 && b.status().sessions!.open >= 1, 'inside a session')
    assert.equal(a.status().channels.accepted, 1)
    assert.equal(b.status().channels.opened, 1)
  } finally {
    await Promise.all([a.stop({ leave: false }), b.stop({ leave: false })])
  }
})

test(`a channel through 20 % datagram loss (handshakes too): everything arrives once and in order (seed ${SEED})`, async () => {
  const world = new MemoryWorld(`${SEED}:lossy`)
  world.links = { latency: (_f, _t, r) => 20 + r.float() * 30, loss: 0.2 }
  const make = (i: number, extra: NodeOptions = {}) => new Node({ host: `10.0.0.${i + 1}`, identity: seededIdentity(SEED, i), runtime: world.runtime(i), network: world, encrypt: true, ...extra })
  const a = make(0)
  const b = make(1, { rpc: { maxRetries: 6 } })
  const wait = (ms: number) => new Promise<void>((resolve) => world.schedule(ms, () => resolve()))
  try {
    // No join: at this loss a bootstrap may well fail, and a channel needs only the peer's address.
    await world.settle(a.start())
    await world.settle(b.start())
    const atA = accept(a)
    const c = b.channel(a.address)
    const out = messages(`${SEED}:lossy`, 200)
    await world.settle(sendAll(c, out, wait))
    await world.settle(atA.channel)
    assert.equal(c.closed, false, 'the channel did not fail')
    assert.deepEqual(digest(atA.got), digest(out), `seed ${SEED}`)
    assert.ok(c.stats.retransmits > 0, 'losses were repaired by retransmission')
    assert.ok(world.stats.lost > 100, `only ${world.stats.lost} datagrams lost`)
  } finally {
    await world.settle(Promise.all([a.stop({ leave: false }), b.stop({ leave: false })]))
  }
})

test('bounds: channels per peer past the limit are refused, bad channel packets are counted', async () => {
  const world = new MemoryWorld(`${SEED}:bounds`)
  const make = (i: number, extra: NodeOptions = {}) => new Node({ host: `10.0.1.${i + 1}`, identity: seededIdentity(`${SEED}:bounds`, i), runtime: world.runtime(i), network: world, encrypt: true, ...extra })
  const a = make(0, { channels: { maxChannelsPerPeer: 2, channel: { maxRetransmits: 2, initialRtoMs: 200, maxRtoMs: 400 } } })
  const b = make(1, { channels: { channel: { maxRetransmits: 2, initialRtoMs: 200, maxRtoMs: 400 } } })
  try {
    await world.settle(a.start())
    b.options.bootstrap = [a.address]
    await world.settle(b.start())
    const accepted: number[] = []
    a.on('channel', (c) => accepted.push(c.stream))
    const failed: string[] = []
    for (const stream of [1, 2, 3]) {
      const c = b.channel(a.address, stream)
      c.onError = (e) => failed.push(`${stream}:${e.code}`)
      c.send(new Uint8Array([stream]))
    }
    await world.settle(new Promise((resolve) => world.schedule(10_000, () => resolve(null))))
    // Which two get in depends on arrival order (the world's links reorder datagrams).
    assert.equal(accepted.length, 2, `accepted ${accepted}`)
    assert.ok(a.status().channels.refused >= 1)
    const refused = [1, 2, 3].find((x) => !accepted.includes(x))
    assert.deepEqual(failed, [`${refused}:ERR_TIMEOUT`], 'the refused channel fails on the sender side')
    assert.equal(b.status().channels.open, 2)
    // A channel packet too short to name a stream, sealed in the session like any other: counted, dropped.
    const sealed = (b as unknown as { transport: { send(to: string, bytes: Uint8Array): void } }).transport
    sealed.send(a.address, Uint8Array.of(0x43, 0, 0))
    await world.settle(new Promise((resolve) => world.schedule(500, () => resolve(null))))
    assert.equal(a.status().channels.malformed, 1)
    assert.throws(() => b.channel(a.address, -1), (e: { code?: string }) => e.code === 'ERR_BAD_ARGUMENT')
  } finally {
    await world.settle(Promise.all([a.stop({ leave: false }), b.stop({ leave: false })]))
  }
})

test('restart: a channel reopened while the far end holds the old one starts a new stream; a stale sender is reset at once', async () => {
  const a = new Node({ host: '127.0.0.1', port: 0, identity: seededIdentity(`${SEED}:restart`, 0) })
  const b = new Node({ host: '127.0.0.1', port: 0, identity: seededIdentity(`${SEED}:restart`, 1) })
  const wait = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
  const until = async (what: string, ok: () => boolean): Promise<void> => {
    const end = Date.now() + 5000
    while (!ok()) { if (Date.now() > end) throw new Error(`timed out waiting for ${what} (seed ${SEED})`); await wait(10) }
  }
  const msg = (s: string): Uint8Array => new Uint8Array(Buffer.from(s))
  const txt = (m: Uint8Array): string => Buffer.from(m).toString()
  try {
    await a.start()
    b.options.bootstrap = [a.address]
    await b.start()
    const accepted: PeerChannel[] = []
    const got = new Map<PeerChannel, string[]>()
    a.on('channel', (c) => { accepted.push(c); const l: string[] = []; got.set(c, l); c.onMessage = (m) => l.push(txt(m)) })
    // First incarnation: five messages, then b drops its end (a is not told).
    const first = b.channel(a.address, 9)
    for (let i = 0; i < 5; i++) first.send(msg(`old ${i}`))
    await until('the first stream', () => accepted.length === 1 && got.get(accepted[0])!.length === 5)
    const old = accepted[0]
    const oldErrors: { code: string; reset: boolean }[] = []
    old.onError = (e) => oldErrors.push({ code: e.code, reset: old.reset })
    first.close()
    // Second incarnation on the same stream, from sequence 0: a must take it as a new stream (before the
    // restart signal, a took its segments for duplicates of the old stream's and delivered nothing).
    const second = b.channel(a.address, 9)
    for (let i = 0; i < 5; i++) second.send(msg(`new ${i}`))
    await until('the restarted stream', () => accepted.length === 2 && got.get(accepted[1])!.length === 5)
    assert.deepEqual(got.get(accepted[1]), ['new 0', 'new 1', 'new 2', 'new 3', 'new 4'], `seed ${SEED}`)
    assert.deepEqual(oldErrors, [{ code: 'ERR_CLOSED', reset: true }], 'the old incarnation ended as reset')
    assert.ok(old.closed)
    const restarts = (a as unknown as { transport: { restartStats: { restarted: number } } }).transport.restartStats
    assert.equal(restarts.restarted, 1)
    // The other way: b drops its end again; a, still sending on its channel, learns it from a RESET at once
    // (not after its eight resends, about 30 s).
    const live = accepted[1]
    let failedAt = 0
    let resetFlag = false
    live.onError = () => { failedAt = Date.now(); resetFlag = live.reset }
    second.close()
    const sentAt = Date.now()
    live.send(msg('to nobody'))
    await until('the stale sender to be reset', () => failedAt > 0)
    assert.ok(resetFlag, 'failed by a RESET, not a timeout')
    assert.ok(failedAt - sentAt < 2000, `reset after ${failedAt - sentAt} ms`)
    // And a third incarnation from a works: b accepts it as new.
    const atB: string[] = []
    b.once('channel', (c) => { c.onMessage = (m) => atB.push(txt(m)) })
    a.channel(b.address, 9).send(msg('again'))
    await until('a fresh channel from a', () => atB.length === 1)
    assert.deepEqual(atB, ['again'])
  } finally {
    await Promise.all([a.stop({ leave: false }), b.stop({ leave: false })])
  }
})
