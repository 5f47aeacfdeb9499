// Issue 6, hairpin: two Weft nodes behind ONE cone NAT (the lab's `behind:`), three open hosts as
// bootstrap peers, observers and relays. Linux MASQUERADE does not hairpin (test/netlab.test.ts),
// so a punch toward the peer's public address ends in the NAT; the nodes must find each other's
// LAN addresses in the PUNCH (spec/wire.md 14.4) and talk host to host over the LAN, the same
// session going on at the relayed address. Needs root on Linux; skipped with the reason otherwise.
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { NatLab, netlabAvailable } from './netlab/lab.js'
import { peerAccess, startPeers, WeftPeer, type Connected, type Status, WEFT_PORT } from './netlab/weft-client.js'

const avail = await netlabAvailable()


describe('two Weft nodes behind one NAT (hairpin)', { skip: avail.ok ? false : avail.why, timeout: 90_000 }, () => {
  let lab: NatLab | undefined
  const peers = new Map<string, WeftPeer>()
  const { P, nat, relayedOf } = peerAccess(peers)
  const publics = ['p1', 'p2', 'p3']
  const relayOf = (name: string): WeftPeer => {
    const relay = [...peers.values()].find((p) => p.address === String(nat(name).relay))
    assert.ok(relay, `${name}'s relay ${String(nat(name).relay)} is not one of the public nodes`)
    return relay
  }
  /** UDP datagrams `host` received from `from`'s private address (an iptables counter in `host`'s namespace). */
  const lanDatagrams = async (host = 'hb', from = 'ha'): Promise<number> => {
    const out = await lab!.exec(host, ['iptables', '-nvxL', 'INPUT'])
    const line = out.split('\n').find((l) => l.includes(` ${lab!.host(from).address} `))
    assert.ok(line, `no counting rule in ${host}:\n${out}`)
    return Number(line.trim().split(/\s+/)[0])
  }
  /** Datagrams `name` sent and received through its own relay. */
  const viaRelay = async (name: string): Promise<number> => {
    const { relayedIn, relayedOut } = (await P(name).must<Status>('status')).nat.paths
    return relayedIn + relayedOut
  }

  before(async () => {
    lab = await NatLab.create({
      hosts: [
        ...publics.map((name) => ({ name, nat: 'open' as const })),
        { name: 'ha', nat: 'cone' },
        { name: 'hb', nat: 'cone', behind: 'ha' },
      ],
    })
    try {
      // Count what reaches each straight from the other over their LAN (ACCEPT: the policy anyway).
      for (const [host, from] of [['hb', 'ha'], ['ha', 'hb']]) await lab.exec(host, ['iptables', '-I', 'INPUT', '-s', lab.host(from).address, '-p', 'udp', '-j', 'ACCEPT'])
      await startPeers(lab, publics, ['ha', 'hb'], peers)
    } catch (err) {
      for (const p of peers.values()) p.close()
      await lab.close()
      lab = undefined
      throw err
    }
  })

  after(async () => {
    for (const p of peers.values()) p.close()
    await lab?.close()
  })

  test('both nodes see one public IP (the same NAT) and take relayed addresses', (t) => {
    const l = lab!
    for (const name of ['ha', 'hb']) {
      const s = nat(name)
      t.diagnostic(`${name} (${l.host(name).address}): ${s.type} public=${s.publicAddress} relayed=${s.relayedAddress}`)
      assert.equal(s.type, 'consistent', JSON.stringify(s))
      assert.ok(s.publicAddress?.startsWith(`${l.host('ha').publicAddress}:`), `${name}: ${JSON.stringify(s)}`)
      relayedOf(name)
    }
    assert.equal(l.host('ha').publicAddress, l.host('hb').publicAddress)
  })

  test('ha -> hb: connect(relayed address) finds a direct path over the LAN; pings go host to host', async (t) => {
    const l = lab!
    const before = await lanDatagrams()
    const r = await P('ha').must<Connected>('connect', { address: relayedOf('hb') })
    t.diagnostic(`ha -> hb: ${r.path} via ${r.lan ?? '(public)'} in ${r.ms.toFixed(1)} ms`)
    assert.equal(r.path, 'direct', JSON.stringify(r))
    assert.equal(r.id, P('hb').id)
    assert.equal(r.lan, `${l.host('hb').address}:${WEFT_PORT}`, 'the direct path goes to hb\'s LAN address')
    assert.ok(await lanDatagrams() > before, 'no datagram from ha\'s LAN address reached hb')

    // The same session, at the same (relayed) address, now straight over the LAN: the relay
    // carries nothing, hb's counter of datagrams from ha's private address grows.
    const relay = relayOf('hb')
    const relayedIn = (await relay.must<Status>('status')).nat.paths.relayedIn
    const lanBefore = await lanDatagrams()
    const hbRelayed = await viaRelay('hb')
    for (let i = 0; i < 3; i++) {
      const pong = await P('ha').must<{ id: string; rttMs: number }>('ping', { address: relayedOf('hb') })
      assert.equal(pong.id, P('hb').id, 'the session proves who answers')
      if (i === 0) t.diagnostic(`ping ha -> hb over the LAN: ${pong.rttMs.toFixed(2)} ms`)
    }
    assert.equal((await relay.must<Status>('status')).nat.paths.relayedIn, relayedIn, 'a ping went through the relay')
    assert.equal(await viaRelay('hb'), hbRelayed, 'hb answered through its relay')
    assert.ok(await lanDatagrams() >= lanBefore + 3, 'the pings did not go host to host')
  })

  test('hb -> ha: pings at the address hb knows ha by go over the LAN too; lookups from both nodes', async (t) => {
    // hb knows ha at ha's public address (where ha's requests came from through the relay): the
    // NAT swallows datagrams to it from the LAN, so only the LAN path can carry these pings.
    const at = String(nat('ha').publicAddress)
    const [relayed, lan] = [await viaRelay('hb'), await lanDatagrams('ha', 'hb')]
    for (let i = 0; i < 3; i++) {
      const pong = await P('hb').must<{ id: string; rttMs: number }>('ping', { address: at })
      assert.equal(pong.id, P('ha').id, 'the session proves who answers')
      if (i === 0) t.diagnostic(`ping hb -> ha (${at}) over the LAN: ${pong.rttMs.toFixed(2)} ms`)
    }
    assert.equal(await viaRelay('hb'), relayed, 'hb\'s pings went through its relay')
    assert.ok(await lanDatagrams('ha', 'hb') >= lan + 3, 'the pings did not go host to host')
    assert.equal((await P('ha').must<{ id: string }>('ping', { address: relayedOf('hb') })).id, P('hb').id)
    for (const name of ['ha', 'hb']) {
      const found = await P(name).must<{ closest: { id: string }[] }>('lookup', { target: P('p2').id })
      assert.equal(found.closest[0]?.id, P('p2').id, `${name}: the nearest node to p2's id is p2`)
    }
  })
})
