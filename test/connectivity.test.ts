// NAT traversal's control and path layers on a seeded MemoryWorld: a node whose endpoint accepts
// only replies (a stateful firewall) finds out it is unreachable, takes a relayed address, is
// reached there through encrypted sessions, and a punch moves the path to direct without the
// session above noticing. The real kernel NATs are in test/netlab.test.ts and npm run netlab.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Node, type NodeOptions } from '../src/node/node.js'
import { MemoryWorld } from '../src/runtime/memory.js'
import type { Network } from '../src/runtime/runtime.js'
import { seededIdentity } from '../src/node/testnet.js'
import { ConnectOp, decode, encode, HEADER_BYTES, MAX_LOCAL_ADDRESSES, MessageType, type ConnectRequest } from '../src/wire/messages.js'
import { isLanAddress, localAddresses } from '../src/node/connectivity.js'
import type { Rpc } from '../src/rpc/rpc.js'

const SEED = process.env.WEFT_SEED ?? 'connectivity-1'
const SMALL: NodeOptions = { topologyOptions: { k: 6 } }
const rpcOf = (node: Node) => (node as unknown as { rpc: Rpc }).rpc

test(`a node that strangers cannot reach gets a relay, is reached there, and a punch makes it direct (seed ${SEED})`, async () => {
  const world = new MemoryWorld(SEED)
  // Binds like the world does, but the endpoint accepts only datagrams from where it sent lately.
  const behindFirewall: Network = { bind: (host, port) => Promise.resolve(world.bindNow(host, port, true)) }
  let n = 0
  const make = (host: string, extra: NodeOptions = {}) => new Node({
    host, identity: seededIdentity(SEED, n), runtime: world.runtime(n++), network: world, encrypt: true, ...extra,
  })
  const relay = make('198.51.100.1', SMALL)
  await world.settle(relay.start())
  // Enough peers that the reachability test finds one the hidden node never talked to.
  const publics = Array.from({ length: 24 }, (_, i) => make(`198.51.100.${i + 2}`, { ...SMALL, bootstrap: [relay.address] }))
  for (const p of publics) await world.settle(p.start())
  const hidden = make('10.0.0.5', { ...SMALL, network: behindFirewall, bootstrap: [relay.address, publics[0].address], nat: true })
  const nodes = [relay, ...publics, hidden]
  try {
    await world.settle(hidden.start())
    const s = hidden.nat
    assert.equal(s.type, 'firewalled', JSON.stringify(s))
    assert.equal(s.reachable, false)
    assert.equal(s.publicAddress, hidden.address, 'no address translation here')
    assert.ok(s.relayedAddress, 'a relay granted an address')
    assert.ok(hidden.status().rpc.requestsOut > 0)
    assert.equal(relay.status().nat.paths.allocations, 1)

    // Hidden asks as a client: nobody lists it.
    await world.settle(Promise.all(publics.map((p) => p.lookup(hidden.id))))
    assert.ok(publics.every((p) => p.peers().every((e) => e.id !== hidden.idHex)), 'a private node is nobody\'s routing-table entry')

    // A stranger cannot reach the hidden node directly, but can at its relayed address.
    const strangers = publics.filter((p) => !rpcOf(hidden).knows(p.address))
    assert.ok(strangers.length >= 2, `only ${strangers.length} peers never heard from the hidden node`)
    const stranger = strangers[0]
    await assert.rejects(world.settle(stranger.ping(hidden.address)), (e: { code?: string }) => e.code === 'ERR_TIMEOUT')
    const pong = await world.settle(stranger.ping(s.relayedAddress!))
    assert.equal(pong.id, hidden.idHex, 'the session through the relay proves who answers')
    assert.ok(relay.status().nat.paths.relayedIn > 0 && relay.status().nat.paths.relayedOut > 0)

    // A punch: the hidden node opens toward the stranger, whose probe then gets in directly.
    const other = strangers[1]
    const r = await world.settle(other.connect(s.relayedAddress!))
    assert.equal(r.path, 'direct')
    assert.equal(Buffer.from(r.id).toString('hex'), hidden.idHex)
    const relayedBefore = relay.status().nat.paths.relayedIn
    const again = await world.settle(other.ping(s.relayedAddress!)) // the same address, now a direct path
    assert.equal(again.id, hidden.idHex)
    assert.equal(relay.status().nat.paths.relayedIn, relayedBefore, 'nothing went through the relay after the punch')
    assert.equal(other.status().sessions!.handshakeFailures, 0)
  } finally {
    await world.settle(Promise.all(nodes.map((x) => x.stop({ leave: false }))))
  }
})

test('a public node is classified open; a relay refuses past its bound; bad CONNECT input is refused', async () => {
  const world = new MemoryWorld(`${SEED}-b`)
  let n = 0
  const make = (host: string, extra: NodeOptions = {}) => new Node({ host, identity: seededIdentity(`${SEED}-b`, n), runtime: world.runtime(n++), network: world, ...extra })
  const first = make('198.51.100.1', { ...SMALL, paths: { maxAllocations: 1 } })
  await world.settle(first.start())
  const others = Array.from({ length: 24 }, (_, i) => make(`198.51.100.${i + 2}`, { ...SMALL, bootstrap: [first.address] }))
  try {
    for (const o of others) await world.settle(o.start())
    const s = await world.settle(others[0].checkNat())
    assert.equal(s.type, 'open', JSON.stringify(s))
    assert.equal(s.reachable, true)
    assert.equal(s.publicAddress, others[0].address)
    assert.equal(s.observed.length, 3)
    assert.equal((others[0] as unknown as { connectivity: { private: boolean } }).connectivity.private, false)
    // Ask for relays directly: the first is granted, the second refused (maxAllocations 1).
    const ask = (node: Node) => world.settle(rpcOf(node).requestAsync(first.address, { type: MessageType.CONNECT, op: ConnectOp.ALLOCATE, address: node.address }, 200))
    const granted = await ask(others[1])
    assert.equal(granted.reply.type, MessageType.NODES)
    await assert.rejects(ask(others[2]), (e: { code?: string }) => e.code === 'ERR_BUSY')
    assert.equal(first.status().nat.paths.relayRefused, 1)
  } finally {
    await world.settle(Promise.all([first, ...others].map((x) => x.stop({ leave: false }))))
  }
})

test(`when its relay stops answering, a private node takes another and is reached at the new relayed address (seed ${SEED})`, async () => {
  const world = new MemoryWorld(`${SEED}:relay-lost`)
  const behindFirewall: Network = { bind: (host, port) => Promise.resolve(world.bindNow(host, port, true)) }
  let n = 0
  const make = (host: string, extra: NodeOptions = {}) => new Node({
    host, identity: seededIdentity(`${SEED}:relay-lost`, n), runtime: world.runtime(n++), network: world, encrypt: true, ...extra,
  })
  const first = make('198.51.100.1', SMALL)
  await world.settle(first.start())
  const publics = Array.from({ length: 12 }, (_, i) => make(`198.51.100.${i + 2}`, { ...SMALL, bootstrap: [first.address] }))
  for (const p of publics) await world.settle(p.start())
  const refreshMs = 5_000
  const hidden = make('10.0.0.5', { ...SMALL, network: behindFirewall, bootstrap: [first.address], nat: true, connectivity: { refreshMs } })
  const nodes = [first, ...publics, hidden]
  const changes: (string | null)[] = []
  hidden.on('nat:relayed', (a) => changes.push(a))
  try {
    await world.settle(hidden.start())
    const oldRelay = hidden.nat.relay!
    const oldRelayed = hidden.nat.relayedAddress!
    assert.ok(oldRelay && oldRelayed, JSON.stringify(hidden.nat))
    const relayNode = nodes.find((x) => x.address === oldRelay)!
    await world.settle(relayNode.stop({ leave: false }))
    // The next refresh goes unanswered (with the rpc layer's retries), then another relay takes over.
    await world.settle(new Promise((resolve) => world.schedule(refreshMs + 10_000, () => resolve(null))))
    const s = hidden.status().nat
    assert.equal(s.relayLost, 1)
    assert.equal(s.relayReplaced, 1)
    assert.ok(s.relay && s.relay !== oldRelay, `relay ${s.relay} (old ${oldRelay})`)
    assert.ok(s.relayedAddress && s.relayedAddress !== oldRelayed)
    assert.deepEqual(changes, [s.relayedAddress])
    // Another node reaches the hidden one at its new relayed address (through the new relay).
    const stranger = publics.find((p) => p.isRunning && p.address !== s.relay)
    assert.ok(stranger, 'no public node left')
    const pong = await world.settle(stranger.ping(s.relayedAddress))
    assert.equal(pong.id, hidden.idHex)
  } finally {
    await world.settle(Promise.all(nodes.filter((x) => x.isRunning).map((x) => x.stop({ leave: false }))))
  }
})

test('LAN candidates for a peer behind the same NAT: private ranges only, at most 4, and a PUNCH carries them', () => {
  for (const a of ['10.1.0.3:4500', '172.16.0.1:1', '172.31.255.255:9', '192.168.1.2:80', '169.254.3.4:5', '[fd12:3456::1]:4500']) assert.ok(isLanAddress(a), a)
  for (const a of ['198.51.100.2:4500', '172.32.0.1:1', '127.0.0.1:4500', '8.8.8.8:53', '[fe80::1]:4500', '[2001:db8::1]:1', '10.0.0.1:0', 'nonsense']) assert.ok(!isLanAddress(a), a)
  assert.deepEqual(localAddresses('10.1.0.2:4500', () => assert.fail('interfaces asked for a bound host')), ['10.1.0.2:4500'])
  assert.deepEqual(localAddresses('198.51.100.2:4500', () => []), [], 'a public bound address is no LAN candidate')
  const ifaces = ['192.168.1.5', 'fd00::5', '203.0.113.9', '10.0.0.5', '10.0.0.6', '10.0.0.7', '10.0.0.8']
  assert.deepEqual(localAddresses('0.0.0.0:4500', () => ifaces), ['192.168.1.5:4500', '10.0.0.5:4500', '10.0.0.6:4500', '10.0.0.7:4500'])
  assert.deepEqual(localAddresses('[::]:4500', () => ifaces).slice(0, 2), ['192.168.1.5:4500', '[fd00::5]:4500'])
  // The codec: locals round-trip on a PUNCH, and more than MAX_LOCAL_ADDRESSES are refused both ways.
  const punch = { type: MessageType.CONNECT, txid: 1, sender: new Uint8Array(32), flags: 0, op: ConnectOp.PUNCH, address: '198.51.100.2:4500', locals: ['10.1.0.2:4500', '[fd00::5]:4500'] } as const
  const back = decode(encode({ ...punch, locals: [...punch.locals] }))
  assert.ok(back.ok && back.message.type === MessageType.CONNECT)
  assert.deepEqual((back.message as ConnectRequest).locals, punch.locals)
  const five = Array.from({ length: MAX_LOCAL_ADDRESSES + 1 }, (_, i) => `10.0.0.${i + 1}:1`)
  assert.throws(() => encode({ ...punch, locals: five }), (e: { code?: string }) => e.code === 'ERR_BAD_ARGUMENT')
  const bytes = encode({ ...punch, locals: five.slice(0, MAX_LOCAL_ADDRESSES) })
  bytes[HEADER_BYTES + 1 + 7] = MAX_LOCAL_ADDRESSES + 1 // the count byte, after op and the IPv4 address
  const bad = decode(bytes)
  assert.ok(!bad.ok && bad.error.code === 'ERR_BAD_MESSAGE', JSON.stringify(bad))
})
