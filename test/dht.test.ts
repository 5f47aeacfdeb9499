// The DHT on real UDP: puts and gets across a 200-node loopback network, mutable records under
// many writers, the bounds and their codes, and a restart from the data directory.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { rejectsWith } from './helpers/errors.js'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import { createTestnet } from '../src/node/testnet.js'
import { Node } from '../src/node/node.js'
import { WeftError } from '../src/errors.js'
import { identityFromSeed } from '../src/identity/keys.js'
import { SeededRandom } from '../src/runtime/prng.js'
import { signMutable, encodeRecord } from '../src/services/dht/records.js'
import { decode, encode, ErrorReplyCode, Flag, MessageType } from '../src/wire/messages.js'
import { createSocket } from 'node:dgram'

const SEED = process.env.WEFT_SEED ?? 'dht-1'

test(`200 nodes on loopback: 1,000 puts from random nodes, every get from another node finds and verifies it (seed ${SEED})`, { timeout: 300_000 }, async () => {
  const net = await createTestnet({ nodes: 200, seed: SEED })
  try {
    const rnd = new SeededRandom(SEED)
    const puts: { key: string; value: Uint8Array; by: number }[] = []
    for (let i = 0; i < 1000; i++) {
      const by = rnd.u32() % 200
      const value = rnd.bytes(1 + (rnd.u32() % 1000))
      const r = await net.nodes[by].dht.put(value)
      assert.equal(r.key, createHash('sha256').update(value).digest('hex'))
      assert.ok(r.stored >= 15, `put ${i} reached only ${r.stored} nodes (seed ${SEED})`)
      puts.push({ key: r.key, value, by })
    }
    let found = 0
    for (const p of puts) {
      let from = rnd.u32() % 200
      if (from === p.by) from = (from + 1) % 200
      const v = await net.nodes[from].dht.get(p.key)
      if (Buffer.compare(Buffer.from(v), Buffer.from(p.value)) === 0) found++
    }
    assert.equal(found, 1000, `only ${found}/1000 values found (seed ${SEED})`)
  } finally {
    await net.close()
  }
})

test(`a mutable record updated 100 times from different nodes: every get returns the newest (seed ${SEED})`, { timeout: 120_000 }, async () => {
  const net = await createTestnet({ nodes: 40, seed: `${SEED}:mutable` })
  try {
    const rnd = new SeededRandom(`${SEED}:mutable`)
    const owner = identityFromSeed(new Uint8Array(32).fill(9))
    const salt = Buffer.from('profile')
    for (let seq = 1; seq <= 100; seq++) {
      const writer = net.nodes[rnd.u32() % 40]
      await writer.dht.putMutable(owner, Buffer.from(`v${seq}`), { salt, seq })
      const reader = net.nodes[rnd.u32() % 40]
      const got = await reader.dht.getMutable(owner.publicKey, { salt })
      assert.equal(got.seq, seq, `after seq ${seq}, a get returned ${got.seq} (seed ${SEED})`)
      assert.equal(Buffer.from(got.value).toString(), `v${seq}`)
    }
    // Sequence numbers only move forward; compare-and-swap on the expected seq.
    await rejectsWith(net.nodes[1].dht.putMutable(owner, Buffer.from('old'), { salt, seq: 50 }), 'ERR_STALE_SEQ')
    await rejectsWith(net.nodes[2].dht.putMutable(owner, Buffer.from('again'), { salt, seq: 100 }), 'ERR_STALE_SEQ')
    await rejectsWith(net.nodes[3].dht.putMutable(owner, Buffer.from('cas'), { salt, seq: 101, cas: 99 }), 'ERR_CAS_MISMATCH')
    const swapped = await net.nodes[3].dht.putMutable(owner, Buffer.from('cas ok'), { salt, seq: 101, cas: 100 })
    assert.equal(swapped.seq, 101)
    // Without a seq, the next one after the newest.
    assert.equal((await net.nodes[4].dht.putMutable(owner, Buffer.from('next'), { salt })).seq, 102)
    // A forged record (signed by another key, or tampered) is refused by the storing nodes.
    const forger = identityFromSeed(new Uint8Array(32).fill(10))
    const forged = { ...signMutable(forger, Buffer.from('forged'), 500, salt), publicKey: owner.publicKey }
    const target = net.nodes[5]
    const near = (await target.lookup(createHash('sha256').update(owner.publicKey).update(salt).digest())).closest.find((c) => c.address !== target.address)!
    await rejectsWith(target.ping(near.address).then(() => rpcPut(target, near.address, encodeRecord(forged))), 'ERR_BAD_SIGNATURE')
    const latest = await net.nodes[6].dht.getMutable(owner.publicKey, { salt })
    assert.equal(latest.seq, 102)
  } finally {
    await net.close()
  }
})

/** Sends one raw PUT (after a ping, so we hold the peer's token). */
async function rpcPut(node: Node, to: string, record: Uint8Array): Promise<unknown> {
  const rpc = (node as unknown as { rpc: { requestAsync: (to: string, body: unknown) => Promise<unknown> } }).rpc
  return rpc.requestAsync(to, { type: MessageType.PUT, record })
}

test('every DHT bound is enforced with its own code', { timeout: 60_000 }, async () => {
  // Plaintext: a raw socket below plays an unproven peer (sealed sessions are test/session.test.ts's).
  const net = await createTestnet({ nodes: 8, seed: `${SEED}:bounds`, node: { encrypt: false, store: { maxRecords: 5 }, dht: { putsPerSourcePerMinute: 30 } } })
  const outsider = new Node({ encrypt: false, bootstrap: [net.bootstrap] })
  try {
    const a = net.nodes[1]
    await rejectsWith(a.dht.put(new Uint8Array(1001)), 'ERR_VALUE_TOO_LARGE')
    await rejectsWith(a.dht.get('zz'), 'ERR_BAD_ID')
    await rejectsWith(a.dht.get('11'.repeat(32)), 'ERR_NOT_FOUND')
    // A PUT without the node's round-trip token is refused with an ERROR reply.
    const sock = createSocket('udp4')
    try {
      const put = encode({ type: MessageType.PUT, txid: 9, sender: new Uint8Array(32), flags: Flag.READ_ONLY, record: encodeRecord({ kind: 'immutable', value: Buffer.from('x') }), pad: 0 })
      const [host, port] = net.nodes[2].address.split(':')
      const reply = await new Promise<Buffer>((resolve) => { sock.once('message', resolve); sock.send(put, Number(port), host) })
      const m = decode(reply)
      assert.ok(m.ok && m.message.type === MessageType.ERROR && m.message.code === ErrorReplyCode.BAD_TOKEN, 'expected an ERROR reply with BAD_TOKEN')
      assert.ok(reply.length <= put.length, `an ERROR of ${reply.length} bytes to an unproven ${put.length}-byte request`)
    } finally {
      sock.close()
    }
    // Records per node: the 6th distinct value finds every store full.
    for (let i = 0; i < 5; i++) await a.dht.put(Buffer.from(`value ${i}`))
    await rejectsWith(a.dht.put(Buffer.from('one too many')), 'ERR_STORE_FULL')
    await outsider.start()
    // A request its handler cannot take (cas on an immutable record) is refused; the node lives on.
    await outsider.ping(net.nodes[4].address)
    const casOnImmutable = (outsider as unknown as { rpc: { requestAsync: (to: string, body: unknown) => Promise<unknown> } }).rpc
      .requestAsync(net.nodes[4].address, { type: MessageType.PUT, record: encodeRecord({ kind: 'immutable', value: Buffer.from('y') }), cas: 1 })
    await rejectsWith(casOnImmutable, 'ERR_BAD_MESSAGE')
    assert.equal((await outsider.ping(net.nodes[4].address)).id, net.nodes[4].idHex)
    // Puts per source per minute: a node that keeps writing to one peer is refused.
    await outsider.ping(net.nodes[3].address)
    let refused: unknown = null
    for (let i = 0; i < 40 && !refused; i++) {
      await rpcPut(outsider, net.nodes[3].address, encodeRecord({ kind: 'immutable', value: Buffer.from('value 0') })).catch((e) => { refused = e })
    }
    assert.ok(refused instanceof WeftError && refused.code === 'ERR_RATE_LIMITED', `expected ERR_RATE_LIMITED, got ${String(refused)}`)
  } finally {
    await outsider.stop()
    await net.close()
  }
})

test('a node restarted on its data directory with no bootstrap rejoins through its saved table and serves its records', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-dht-'))
  const net = await createTestnet({ nodes: 20, seed: `${SEED}:restart` })
  let node = new Node({ dataDir: dir, bootstrap: [net.bootstrap] })
  try {
    await node.start()
    // A value whose 20 nearest nodes include this one (of 21, one is left out), so it holds a copy.
    let value = ''
    for (let i = 0; i < 100 && !value; i++) {
      const v = `kept across restarts ${i}`
      if (net.oracle(createHash('sha256').update(v).digest(), 20, [...net.nodes, node]).some((id) => Buffer.from(id).equals(Buffer.from(node.id)))) value = v
    }
    const { key } = await node.dht.put(Buffer.from(value))
    const held = node.status().peers
    assert.ok(held >= 19)
    await node.stop()
    node = new Node({ dataDir: dir }) // no bootstrap peers
    await node.start()
    assert.ok(node.status().peers >= held - 1, `rejoined with ${node.status().peers} peers, had ${held}`)
    // It serves the record from its own store (SQLite) to a node that asks it directly.
    const asker = net.nodes[7]
    const rpc = (asker as unknown as { rpc: { requestAsync: (to: string, body: unknown, expect: number) => Promise<{ reply: { type: number; records?: Uint8Array[] } }> } }).rpc
    const { reply } = await rpc.requestAsync(node.address, { type: MessageType.GET, target: Buffer.from(key, 'hex') }, 1400)
    assert.equal(reply.type, MessageType.VALUES)
    assert.equal(reply.records?.length, 1)
    assert.equal(Buffer.from(await asker.dht.get(key)).toString(), value)
  } finally {
    await node.stop()
    await net.close()
    rmSync(dir, { recursive: true, force: true })
  }
})
