// Weft's NAT traversal behind real kernel NATs: Weft nodes (test/netlab/weft-peer.ts) in the
// network namespaces of the NAT lab (test/netlab/lab.ts). Three open hosts are the bootstrap
// peers, observers and relays; every other node starts with nat: true behind its NAT. Checked:
// each node's NAT verdict, relayed addresses, a punched direct path between two cone NATs (and to
// a double NAT, which needs a measured opener TTL of 3), the birthday method between a cone and a
// symmetric NAT (both ways), the relay between two symmetric NATs,
// and lookups and a DHT put/get from NATed nodes. The matrix over all NAT pairs is
// `npm run netlab` (bench/netlab.ts). Needs root on Linux; skipped with the reason otherwise.
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { NatLab, netlabAvailable } from './netlab/lab.js'
import { peerAccess, startPeers, WeftPeer, type Connected, type Status, WEFT_PORT, directFlow } from './netlab/weft-client.js'

const avail = await netlabAvailable()


describe('Weft behind real Linux NATs', { skip: avail.ok ? false : avail.why, timeout: 90_000 }, () => {
  let lab: NatLab | undefined
  const peers = new Map<string, WeftPeer>()
  const { P, nat, relayedOf } = peerAccess(peers)
  const publics = ['p1', 'p2', 'p3']
  const nated = ['op', 'ca', 'cb', 'sa', 'sb', 'fw', 'db']

  before(async () => {
    lab = await NatLab.create({
      hosts: [
        ...publics.map((name) => ({ name, nat: 'open' as const })),
        { name: 'op', nat: 'open' },
        { name: 'ca', nat: 'cone' },
        { name: 'cb', nat: 'cone' },
        { name: 'sa', nat: 'symmetric' },
        { name: 'sb', nat: 'symmetric' },
        { name: 'fw', nat: 'firewall' },
        { name: 'db', nat: 'double' },
      ],
    })
    try {
      await startPeers(lab, publics, nated, peers)
    } catch (err) {
      await lab.close()
      lab = undefined
      throw err
    }
  })

  after(async () => {
    for (const p of peers.values()) p.close()
    await lab?.close()
  })

  test('each node classifies its NAT; NATed nodes get a relayed address', (t) => {
    const l = lab!
    for (const name of nated) {
      const s = nat(name)
      t.diagnostic(`${name} (${l.host(name).natKind}, public ${l.host(name).publicAddress}): ${s.type} reachable=${s.reachable} public=${s.publicAddress} relayed=${s.relayedAddress} openerTtl=${s.openerTtl}`)
    }
    assert.equal(nat('op').type, 'open')
    assert.equal(nat('op').reachable, true)
    assert.equal(nat('op').relayedAddress, null, 'an open node needs no relay')
    for (const name of ['ca', 'cb', 'db']) {
      assert.equal(nat(name).type, 'consistent', `${name}: ${JSON.stringify(nat(name))}`)
      assert.equal(nat(name).publicAddress, `${l.host(name).publicAddress}:${WEFT_PORT}`)
    }
    for (const name of ['sa', 'sb']) {
      assert.equal(nat(name).type, 'random', `${name}: ${JSON.stringify(nat(name))}`)
      assert.equal(nat(name).publicAddress, null)
    }
    // The firewall: no translation, no stranger gets in.
    assert.ok(nat('fw').type === 'firewalled' || nat('fw').reachable !== true, JSON.stringify(nat('fw')))
    assert.equal(nat('fw').publicAddress, P('fw').address)
    // Opener TTL measured: past one NAT 2, past two 3.
    assert.equal(nat('ca').openerTtl, 2)
    assert.equal(nat('db').openerTtl, 3)
    for (const name of ['ca', 'cb', 'sa', 'sb', 'fw', 'db']) {
      const relayed = relayedOf(name)
      assert.ok(publics.some((p) => relayed.startsWith(`${l.host(p).address}:`)), `${name}'s relayed address ${relayed} is not on a public host`)
    }
  })

  test('cone -> cone: connect(relayed address) punches a direct path between the two public addresses', async (t) => {
    const l = lab!
    const r = await P('ca').must<Connected>('connect', { address: relayedOf('cb') })
    t.diagnostic(`ca -> cb: ${r.path} in ${r.ms.toFixed(1)} ms`)
    assert.equal(r.path, 'direct')
    assert.equal(r.id, P('cb').id)
    const [ca, cb] = [l.host('ca').publicAddress, l.host('cb').publicAddress]
    const onA = await directFlow(l, 'ca', cb)
    const onB = await directFlow(l, 'cb', ca)
    t.diagnostic(`ca's NAT: ${onA.lines.join(' | ')}`)
    t.diagnostic(`cb's NAT: ${onB.lines.join(' | ')}`)
    assert.equal(onA.seen, true, `no two-way flow to ${cb} on ca's NAT:\n${await l.conntrack('ca')}`)
    assert.equal(onB.seen, true, `no two-way flow to ${ca} on cb's NAT:\n${await l.conntrack('cb')}`)
    // The same address now goes straight: the relay carries nothing more for this pair.
    const relayServer = String(P('cb').nat.relay)
    const relay = [...peers.values()].find((p) => p.address === relayServer)
    assert.ok(relay, `cb's relay ${relayServer} is not one of the public nodes`)
    const before = (await relay.must<Status>('status')).nat.paths.relayedIn
    const pong = await P('ca').must<{ id: string }>('ping', { address: relayedOf('cb') })
    assert.equal(pong.id, P('cb').id)
    assert.equal((await relay.must<Status>('status')).nat.paths.relayedIn, before, 'the ping went through the relay')
  })

  test('cone -> double NAT: the target opens with its measured TTL of 3, and the punch works', async (t) => {
    const l = lab!
    const r = await P('ca').must<Connected>('connect', { address: relayedOf('db') })
    t.diagnostic(`ca -> db: ${r.path} in ${r.ms.toFixed(1)} ms`)
    assert.equal(r.path, 'direct')
    assert.equal((await directFlow(l, 'db', l.host('ca').publicAddress)).seen, true, `no two-way flow on db's outer NAT:\n${await l.conntrack('db')}`)
  })

  // The birthday method (spec/wire.md 14.3): the side behind the symmetric NAT opens 256 ports,
  // the other probes 1024 random ports of its IP; all miss about 2% of the time. A missed punch
  // leaves the relay carrying the connection, and a later connect punches again (as a user
  // would): so a second attempt is allowed, and two misses in a row (about 0.04%) fail the test.
  for (const [from, to] of [['ca', 'sa'], ['sb', 'cb']] as const) {
    test(`${from} -> ${to} (${from[0] === 'c' ? 'cone -> symmetric' : 'symmetric -> cone'}): the birthday method punches a direct path`, async (t) => {
      const l = lab!
      let r = await P(from).must<Connected>('connect', { address: relayedOf(to) })
      t.diagnostic(`${from} -> ${to}: ${r.path} in ${r.ms.toFixed(1)} ms`)
      if (r.path !== 'direct') {
        r = await P(from).must<Connected>('connect', { address: relayedOf(to) })
        t.diagnostic(`${from} -> ${to}, second attempt: ${r.path} in ${r.ms.toFixed(1)} ms`)
      }
      assert.equal(r.path, 'direct')
      assert.equal(r.id, P(to).id)
      const pong = await P(from).must<{ id: string }>('ping', { address: relayedOf(to) })
      assert.equal(pong.id, P(to).id)
      const onFrom = await directFlow(l, from, l.host(to).publicAddress)
      const onTo = await directFlow(l, to, l.host(from).publicAddress)
      assert.equal(onFrom.seen, true, `no two-way flow on ${from}'s NAT:\n${onFrom.lines.filter((x) => !x.includes('UNREPLIED')).join('\n')}`)
      assert.equal(onTo.seen, true, `no two-way flow on ${to}'s NAT:\n${onTo.lines.filter((x) => !x.includes('UNREPLIED')).join('\n')}`)
    })
  }

  test('symmetric -> symmetric: the punch fails, the relay carries the connection', async (t) => {
    const l = lab!
    const r = await P('sa').must<Connected>('connect', { address: relayedOf('sb') })
    t.diagnostic(`sa -> sb: ${r.path} in ${r.ms.toFixed(1)} ms`)
    assert.equal(r.path, 'relayed')
    assert.equal(r.id, P('sb').id)
    const relayServer = String(P('sb').nat.relay)
    const relay = [...peers.values()].find((p) => p.address === relayServer)
    assert.ok(relay)
    const before = (await relay.must<Status>('status')).nat.paths.relayedIn
    const pong = await P('sa').must<{ id: string; rttMs: number }>('ping', { address: relayedOf('sb') })
    assert.equal(pong.id, P('sb').id, 'the session through the relay proves who answers')
    assert.ok((await relay.must<Status>('status')).nat.paths.relayedIn > before, 'the ping did not go through the relay')
    assert.equal((await directFlow(l, 'sa', l.host('sb').publicAddress)).seen, false, 'a two-way flow between two symmetric NATs?')
  })

  test('lookups and a DHT put/get from NATed nodes', async () => {
    for (const name of ['ca', 'sa', 'fw', 'db']) {
      const r = await P(name).must<{ closest: { id: string }[] }>('lookup', { target: P('p2').id })
      assert.ok(r.closest.length > 0, `${name}: empty lookup`)
      assert.equal(r.closest[0].id, P('p2').id, `${name}: the nearest node to p2's id is p2`)
    }
    const value = `hello from behind a symmetric NAT ${Date.now()}`
    const put = await P('sa').must<{ key: string; stored: number }>('put', { value })
    assert.ok(put.stored > 0, JSON.stringify(put))
    assert.equal(await P('db').must<string>('get', { key: put.key }), value)
    assert.equal(await P('cb').must<string>('get', { key: put.key }), value)
  })
})
