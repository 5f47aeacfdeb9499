// Interop with webtorrent's bittorrent-dht, a Mainline implementation nobody here wrote: a mixed
// network of 20 bittorrent-dht nodes and 20 Weft nodes on 127.0.0.1, one Weft node as everyone's
// bootstrap. Announces made on either side are found by get_peers on the other; BEP 44 immutable
// and mutable puts on either side are read on the other; lookups from either side for random
// targets converge on the true closest nodes among all 40 ids.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createPublicKey, generateKeyPairSync, sign } from 'node:crypto'
import { Node } from '../src/node/node.js'
import { SeededRandom } from '../src/runtime/prng.js'
import { compareXor } from '../src/services/mainline/table.js'
import type { MainlineKeys } from '../src/services/mainline/items.js'
import { btAddress, btDestroy, cb, startBt, type BtDht, type BtPeer } from './helpers/bittorrent-dht.js'
import { SEED } from './helpers/property.js'

const EACH = 20
const K = 8
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

function keys(): MainlineKeys {
  const { privateKey } = generateKeyPairSync('ed25519')
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' })
  return { publicKey: new Uint8Array(spki.subarray(spki.length - 32)), privateKey }
}

/** Peers bittorrent-dht finds for an infohash (its 'peer' events during one lookup). */
async function btPeers(d: BtDht, infoHash: Buffer): Promise<string[]> {
  const found = new Set<string>()
  const onPeer = (p: BtPeer, h: Buffer) => { if (Buffer.from(h).equals(infoHash)) found.add(`${p.host}:${p.port}`) }
  d.on('peer', onPeer)
  await cb<number>((done) => d.lookup(infoHash, done))
  return [...found]
}

/** The k nodes nearest `target` that answered a bittorrent-dht lookup (k-rpc's own walk). */
async function btClosest(d: BtDht, target: Buffer): Promise<string[]> {
  const answered: Buffer[] = []
  await cb<void>((done) => d._rpc.closest(target, { q: 'find_node', a: { id: d._rpc.id, target } }, (res) => {
    if (res.r?.id && res.r.id.length === 20) answered.push(Buffer.from(res.r.id))
  }, (err) => done(err)))
  const unique = [...new Map(answered.map((id) => [hex(id), id])).values()]
  return unique.sort((a, b) => compareXor(target, a, b)).slice(0, K).map(hex)
}

test(`mixed network: ${EACH} bittorrent-dht + ${EACH} Weft nodes interoperate (seed ${SEED})`, { timeout: 55_000 }, async () => {
  const rnd = new SeededRandom(`interop-${SEED}`)
  const weft: Node[] = []
  const bt: BtDht[] = []
  const started = performance.now()
  try {
    const first = new Node({ mainline: { port: 0 } })
    weft.push(first)
    await first.start()
    const boot = first.mainline.address
    // Interleaved, so neither side's nodes all arrive before the other's.
    for (let i = 0; i < EACH; i++) {
      bt.push(await startBt([boot]))
      if (i < EACH - 1) {
        const n = new Node({ mainline: { port: 0, bootstrap: [boot] } })
        weft.push(n)
        await n.start()
      }
    }
    assert.equal(weft.length + bt.length, 2 * EACH)
    // Every node knows someone; the bootstrap node's table filled from both sides.
    for (const n of weft) assert.ok(n.mainline.table.size > 0, `weft ${n.mainline.address} knows nobody`)
    for (const d of bt) assert.ok(d.nodes.count() > 0, `bittorrent-dht ${btAddress(d)} knows nobody`)
    const btIds = new Set(bt.map((d) => hex(d.nodeId)))
    assert.ok(first.mainline.contacts().some((c) => btIds.has(hex(c.id))), 'the bootstrap node lists bittorrent-dht nodes')
    console.log(`# ${weft.length + bt.length} nodes up in ${(performance.now() - started).toFixed(0)} ms`)

    const pick = <T>(xs: T[]): T => xs[rnd.u32() % xs.length]

    // ---- announce on one side, get_peers on the other ----
    for (let i = 0; i < 3; i++) {
      const ih = Buffer.from(rnd.bytes(20))
      const port = 20000 + i
      await cb<void>((done) => pick(bt).announce(ih, port, done))
      const reader = pick(weft)
      assert.ok((await reader.mainline.getPeers(ih)).includes(`127.0.0.1:${port}`), `weft found the bittorrent-dht announce ${i}`)
    }
    for (let i = 0; i < 3; i++) {
      const ih = Buffer.from(rnd.bytes(20))
      const port = 21000 + i
      const { stored } = await pick(weft).mainline.announce(ih, port)
      assert.ok(stored >= K / 2, `the weft announce was stored on ${stored} nodes`)
      assert.ok((await btPeers(pick(bt), ih)).includes(`127.0.0.1:${port}`), `bittorrent-dht found the weft announce ${i}`)
    }

    // ---- BEP 44 immutable ----
    const value = Buffer.from(`immutable from bittorrent-dht ${rnd.u32()}`)
    const btHash = await cb<Buffer>((done) => pick(bt).put({ v: value }, (err, hash) => done(err, hash)))
    const gotByWeft = await pick(weft).mainline.get(btHash)
    assert.ok(gotByWeft && Buffer.from(gotByWeft.v as Uint8Array).equals(value), 'weft read the bittorrent-dht immutable item')
    const weftValue = `immutable from weft ${rnd.u32()}`
    const put = await pick(weft).mainline.put({ v: weftValue })
    assert.ok(put.stored >= K / 2)
    const gotByBt = await cb<{ v: Buffer } | null>((done) => pick(bt).get(Buffer.from(put.target), { cache: false }, done))
    assert.equal(gotByBt?.v.toString(), weftValue, 'bittorrent-dht read the weft immutable item')

    // ---- BEP 44 mutable (Ed25519 via node:crypto on both sides), salt, seq and cas ----
    const k = keys()
    const salt = Buffer.from('weft-interop')
    const btSign = (b: Buffer) => Buffer.from(sign(null, b, k.privateKey))
    const target = await cb<Buffer>((done) => pick(bt).put({ k: Buffer.from(k.publicKey), v: Buffer.from('version 1'), seq: 1, salt, sign: btSign }, (err, hash) => done(err, hash)))
    const m1 = await pick(weft).mainline.get(target, { salt })
    assert.ok(m1, 'weft read the bittorrent-dht mutable item')
    assert.equal(Buffer.from(m1.v as Uint8Array).toString(), 'version 1')
    assert.equal(m1.seq, 1)
    const writer = pick(weft) // one writer, so its later puts reach the same nearest nodes
    const m2put = await writer.mainline.put({ v: 'version 2', keys: k, seq: 2, salt, cas: 1 })
    assert.equal(hex(m2put.target), hex(target))
    const m2 = await cb<{ v: Buffer; seq?: number } | null>((done) => pick(bt).get(target, { salt, cache: false }, done))
    assert.equal(m2?.v.toString(), 'version 2', 'bittorrent-dht read the weft update')
    assert.equal(m2?.seq, 2)
    // A writer that did not see version 2 is refused (cas), and so is an old seq.
    await assert.rejects(writer.mainline.put({ v: 'stale', keys: k, seq: 3, salt, cas: 1 }), { code: 'ERR_CAS_MISMATCH' })
    await assert.rejects(writer.mainline.put({ v: 'older', keys: k, seq: 1, salt }), { code: 'ERR_STALE_SEQ' })
    const m3 = await pick(weft).mainline.get(target, { salt })
    assert.equal(m3?.seq, 2)

    // ---- lookups converge across the mix, on the true closest among all 40 ids ----
    const everyone = [...weft.map((n) => n.mainline.id), ...bt.map((d) => new Uint8Array(d.nodeId))]
    const truth = (target: Uint8Array, self: Uint8Array) =>
      everyone.filter((id) => hex(id) !== hex(self)).sort((a, b) => compareXor(target, a, b)).slice(0, K).map(hex)
    let exact = 0
    const lookups = 12
    for (let i = 0; i < lookups; i++) {
      const t = rnd.bytes(20)
      const w = pick(weft)
      const d = pick(bt)
      const byWeft = (await w.mainline.findNode(t)).map((c) => hex(c.id))
      const byBt = await btClosest(d, Buffer.from(t))
      assert.deepEqual(byWeft, truth(t, w.mainline.id), `weft lookup ${i}`)
      assert.deepEqual(byBt, truth(t, d.nodeId), `bittorrent-dht lookup ${i}`)
      exact++
    }
    assert.equal(exact, lookups)
    const dropped = weft.reduce((s, n) => s + n.mainline.stats.dropped + n.mainline.stats.handlerErrors, 0)
    assert.equal(dropped, 0, 'nothing bittorrent-dht sent was refused as malformed')
    console.log(`# interop done in ${(performance.now() - started).toFixed(0)} ms`)
  } finally {
    await Promise.all(bt.map(btDestroy))
    await Promise.all(weft.map((n) => n.stop()))
  }
})
