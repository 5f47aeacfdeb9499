// Plumtree across a link that goes down between an IHAVE and its GRAFT (the 1-in-30,000 loss of
// test/pubsub-loopback.test.ts): IHAVE and GRAFT are taken only from neighbours, so when the
// announcer dropped the link (its view took a newcomer) before the GRAFT came, every GRAFT was
// dropped and the id never arrived. Former neighbours now count for as long as a GRAFT may follow;
// strangers, and former neighbours past that, are still ignored (no amplification).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryWorld } from '../src/runtime/memory.js'
import { ContactPool } from '../src/overlay/contact-pool.js'
import { defaultPlumtreeOptions, Plumtree } from '../src/gossip/plumtree.js'
import { newGossipStats, type ChannelLink } from '../src/gossip/link.js'
import { BroadcastOp, MessageType, type BroadcastRequest } from '../src/wire/messages.js'

const SEED = process.env.WEFT_SEED ?? 'plumtree-former-1'

/** Plumtree peers on one world, 20 ms apart; a peer's handle of another is pool.acquire of its address. */
function world() {
  const w = new MemoryWorld(SEED)
  const pool = new ContactPool()
  const peers = new Map<string, { tree: Plumtree; got: Uint8Array[] }>()
  const add = (address: string) => {
    const runtime = w.runtime(address)
    const got: Uint8Array[] = []
    const link: ChannelLink = {
      id: new Uint8Array(32), address: () => address,
      send: (to, body) => {
        if (body.type !== MessageType.BROADCAST) return
        const req = { ...body, type: MessageType.BROADCAST, txid: 0, sender: new Uint8Array(32), flags: 0, channel: new Uint8Array(32), pad: 0 } as BroadcastRequest
        w.schedule(20, () => peers.get(to)?.tree.handle(address, req))
      },
      request: () => {}, ping: () => {},
    }
    const stats = newGossipStats()
    const tree = new Plumtree(runtime, link, pool, defaultPlumtreeOptions, stats, (_id, payload) => got.push(payload))
    peers.set(address, { tree, got })
    return { tree, got, stats, h: pool.acquire(new Uint8Array(32), address) }
  }
  return { w, add }
}

test('an id announced just before the link went down is still pulled by GRAFT', async () => {
  const { w, add } = world()
  const x = add('10.0.0.1:1'), z = add('10.0.0.2:1')
  x.tree.neighborUp(z.h)
  z.tree.neighborUp(x.h)
  // A lazy link (a PRUNE made it so), as most links are once the tree has settled.
  x.tree.handle('10.0.0.2:1', { type: MessageType.BROADCAST, txid: 0, sender: new Uint8Array(32), flags: 0, channel: new Uint8Array(32), op: BroadcastOp.PRUNE, round: 0, ids: [], payload: new Uint8Array(0), pad: 0 })
  assert.deepEqual([x.tree.eager.length, x.tree.lazy.length], [0, 1])
  const payload = new TextEncoder().encode('from an outsider')
  x.tree.broadcast(payload)
  await w.run(w.now() + 100) // the IHAVE reached z; its GRAFT is due 1 s later
  // x's view takes a newcomer and drops z (DISCONNECT): both ends forget the link.
  x.tree.neighborDown(z.h)
  z.tree.neighborDown(x.h)
  await w.run(w.now() + 10_000)
  assert.deepEqual(z.got.map((p) => Buffer.from(p).toString()), ['from an outsider'], `the GRAFT to the former neighbour was answered (seed ${SEED})`)
})

test('a stranger, or a neighbour gone longer than a GRAFT may follow, still gets nothing', async () => {
  const { w, add } = world()
  const x = add('10.0.0.1:1'), z = add('10.0.0.2:1'), s = add('10.0.0.3:1')
  const payload = new TextEncoder().encode('cached')
  x.tree.neighborUp(z.h)
  const id = x.tree.broadcast(payload)!
  x.tree.neighborDown(z.h)
  await w.run(w.now() + 100)
  const graft = { type: MessageType.BROADCAST, txid: 0, sender: new Uint8Array(32), flags: 0, channel: new Uint8Array(32), op: BroadcastOp.GRAFT, round: 0, ids: [id], payload: new Uint8Array(0), pad: 0 } as BroadcastRequest
  x.tree.handle('10.0.0.3:1', graft) // never a neighbour
  await w.run(w.now() + 100)
  assert.equal(s.got.length + x.stats.graftAnswers, 0, 'a GRAFT from a stranger is dropped')
  x.tree.handle('10.0.0.2:1', graft) // a former neighbour, within the window
  await w.run(w.now() + 100)
  assert.equal(x.stats.graftAnswers, 1, 'a GRAFT from a neighbour that just left is answered')
  const o = defaultPlumtreeOptions
  await w.run(w.now() + o.graftTimeoutMs + (o.maxGraftTries + 1) * o.graftRetryMs)
  x.tree.handle('10.0.0.2:1', graft) // a former neighbour, past the window
  await w.run(w.now() + 100)
  assert.equal(x.stats.graftAnswers, 1, 'a GRAFT from a neighbour gone past the window is dropped')
})
