// Port mapping (NodeOptions.portMapping, `weft node --upnp`) where no router speaks UPnP or
// NAT-PMP: a lab host whose gateway is the lab's internet router. Discovery and the NAT-PMP
// request go unanswered, the node says so in its log, reports no mapping and works on. (No
// router here grants a mapping; the UPnP and NAT-PMP protocols are @achingbrain/nat-port-mapper's.)
// Needs root on Linux; skipped with the reason otherwise.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { NatLab, netlabAvailable } from './netlab/lab.js'
import { WeftPeer } from './netlab/weft-client.js'

const avail = await netlabAvailable()

test('without a UPnP or NAT-PMP router, a node asked to map its port starts anyway and reports no mapping', { skip: avail.ok ? false : avail.why, timeout: 60_000 }, async () => {
  const lab = await NatLab.create({ hosts: [{ name: 'p1', nat: 'open' }, { name: 'c1', nat: 'cone' }] })
  const peers: WeftPeer[] = []
  try {
    const p1 = await WeftPeer.start(lab, 'p1', {})
    peers.push(p1)
    const started = Date.now()
    const c1 = await WeftPeer.start(lab, 'c1', { bootstrap: [p1.address], portMapping: { timeoutMs: 1500 } }, 30_000)
    peers.push(c1)
    assert.ok(Date.now() - started >= 1500, 'it waited for the gateways to answer')
    const status = await c1.must<{ nat: { portMapping: unknown } }>('status')
    assert.equal(status.nat.portMapping, null)
    const pong = await c1.must<{ id: string }>('ping', { address: p1.address })
    assert.equal(pong.id, p1.id, 'the node works on without a mapping')
  } finally {
    for (const p of peers) await p.stop()
    await lab.close()
  }
})
