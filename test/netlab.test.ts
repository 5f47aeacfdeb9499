// The NAT lab: hosts in network namespaces behind real Linux NATs. Proves each NAT kind maps and
// filters as intended, and that the low-TTL hole punch of /work/shared/notes/nat-lab.md connects
// two hosts behind two port-restricted cone NATs while the naive simultaneous send does not.
// Needs root on Linux (skipped with the reason otherwise); installs iproute2/iptables/conntrack
// with apt-get when missing.
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import { NatLab, PROBE_SCRIPT, netlabAvailable, run, type UdpAgent } from './netlab/lab.js'

const avail = await netlabAvailable()

type Tuple = { src: string; dst: string; sport: number; dport: number }
type CtEntry = { orig: Tuple; reply: Tuple; unreplied: boolean }

/** Parses `conntrack -L` lines: the first src/dst/sport/dport set is the original direction. */
function ctEntries(text: string): CtEntry[] {
  const out: CtEntry[] = []
  for (const line of text.split('\n')) {
    const kv = [...line.matchAll(/(src|dst|sport|dport)=(\S+)/g)].map((m) => [m[1], m[2]] as const)
    if (kv.length < 8) continue
    const tuple = (part: ReadonlyArray<readonly [string, string]>): Tuple => {
      const o = Object.fromEntries(part)
      return { src: o.src, dst: o.dst, sport: Number(o.sport), dport: Number(o.dport) }
    }
    out.push({ orig: tuple(kv.slice(0, 4)), reply: tuple(kv.slice(4, 8)), unreplied: line.includes('[UNREPLIED]') })
  }
  return out
}

/** Udp NoPorts from /proc/net/snmp: datagrams addressed to this namespace with no socket. */
function udpNoPorts(snmp: string): number {
  const [head, vals] = snmp.split('\n').filter((l) => l.startsWith('Udp:'))
  return Number(vals.split(/\s+/)[head.split(/\s+/).indexOf('NoPorts')])
}

/** Packets counted by the firewall's DROP rule in FORWARD. */
function fwDrops(listing: string): number {
  // iptables-nft prints the protocol as 17, iptables-legacy as udp
  const line = listing.split('\n').find((l) => /\bDROP\s+(udp|17)\b/.test(l))
  assert.ok(line, `no DROP rule in:\n${listing}`)
  return Number(line.trim().split(/\s+/)[0])
}

async function until<T>(what: string, fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 3000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (ok(v)) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(v)})`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

const port = (addr: string): number => Number(addr.slice(addr.lastIndexOf(':') + 1))
const ip = (addr: string): string => addr.slice(0, addr.lastIndexOf(':'))

describe('NAT lab: hosts behind real Linux NATs in network namespaces', { skip: avail.ok ? false : avail.why, timeout: 60_000 }, () => {
  let lab: NatLab | undefined
  let r1: UdpAgent // reflector on public host r1
  let r2: UdpAgent // reflector on public host r2
  const L = (): NatLab => {
    assert.ok(lab, 'lab not created')
    return lab
  }

  before(async () => {
    lab = await NatLab.create({
      hosts: [
        { name: 'r1', nat: 'open' },
        { name: 'r2', nat: 'open' },
        { name: 'op', nat: 'open' },
        { name: 'cone', nat: 'cone' },
        { name: 'cone2', nat: 'cone', behind: 'cone' },
        { name: 'peer', nat: 'cone' },
        { name: 'sym', nat: 'symmetric' },
        { name: 'fw', nat: 'firewall' },
        { name: 'dbl', nat: 'double' },
      ],
    })
    r1 = await lab.agent('r1', 5000, { echo: true })
    r2 = await lab.agent('r2', 5000, { echo: true })
  })

  after(async () => {
    await lab?.close()
  })

  test('mapping: one socket, two reflectors on two public hosts', async (t) => {
    const lab = L()
    const seen: Record<string, [string, string]> = {}
    for (const [h, p] of [['op', 4000], ['fw', 4000], ['cone', 4000], ['cone2', 4001], ['sym', 4000], ['dbl', 4000]] as const) {
      const a = await lab.agent(h, p)
      seen[h] = [await a.whoami(r1.address), await a.whoami(r2.address)]
      a.close()
      t.diagnostic(`${h} (${lab.host(h).natKind}, ${lab.host(h).address}:${p}) seen as ${seen[h].join(' / ')}`)
    }
    const { op, fw, cone, cone2, sym, dbl } = Object.fromEntries(Object.keys(seen).map((h) => [h, lab.host(h)]))
    // open and firewall: no translation, the host's own address
    assert.deepEqual(seen.op, [`${op.address}:4000`, `${op.address}:4000`])
    assert.deepEqual(seen.fw, [`${fw.address}:4000`, `${fw.address}:4000`])
    // cone: endpoint-independent mapping on the NAT's address, port preserved
    assert.deepEqual(seen.cone, [`${cone.publicAddress}:4000`, `${cone.publicAddress}:4000`])
    assert.notEqual(cone.publicAddress, cone.address)
    // a second host behind the same NAT shares its public address
    assert.equal(cone2.publicAddress, cone.publicAddress)
    assert.deepEqual(seen.cone2, [`${cone.publicAddress}:4001`, `${cone.publicAddress}:4001`])
    // symmetric: the NAT's address, a different port per destination
    assert.equal(ip(seen.sym[0]), sym.publicAddress)
    assert.equal(ip(seen.sym[1]), sym.publicAddress)
    assert.notEqual(port(seen.sym[0]), port(seen.sym[1]), 'symmetric NAT used one port for two destinations')
    // double: the internet sees the outer NAT's address (cone over cone: still endpoint-independent)
    assert.match(dbl.address, /^10\./)
    assert.match(dbl.publicAddress, /^198\.51\.100\./)
    assert.deepEqual(seen.dbl, [`${dbl.publicAddress}:4000`, `${dbl.publicAddress}:4000`])
  })

  test('filtering: unsolicited datagrams reach open hosts only', async (t) => {
    const lab = L()
    const c = await lab.agent('cone', 4100)
    const o = await lab.agent('op', 4100)
    const f = await lab.agent('fw', 4100)
    const x2 = await lab.agent('r2', 5100) // a stranger
    const x1 = await lab.agent('r1', 5101) // the reflector's host, another port
    try {
      // cone: mapping exists toward r1:5000 only
      const mapped = await c.whoami(r1.address)
      const natSnmp = (): Promise<string> => lab.routerExec('cone', ['cat', '/proc/net/snmp'])
      const np0 = udpNoPorts(await natSnmp())
      await x2.send(mapped, 'u-cone-stranger')
      await x1.send(mapped, 'u-cone-otherport')
      // both reached the NAT and were consumed by it (no socket there): never forwarded
      await until('the NAT to count 2 datagrams without a socket', async () => udpNoPorts(await natSnmp()), (n) => n >= np0 + 2)
      await r1.send(mapped, 'from-mapped-peer') // positive control: the address the host sent to gets in
      assert.equal(await c.waitForData('from-mapped-peer'), r1.address)
      assert.deepEqual(c.received().filter((d) => d.data.startsWith('u-')), [], 'cone NAT let an unsolicited datagram in')
      // The stranger's attempt left an UNREPLIED inbound entry on the NAT, so when the host now
      // sends to the stranger, conntrack must pick another public port (the root of the naive
      // simultaneous-open failure).
      await c.send(x2.address, 'c-to-stranger')
      const fromC = await x2.waitForData('c-to-stranger')
      t.diagnostic(`cone host seen by r1 as ${mapped}; after the stranger's unsolicited datagram its datagram to the stranger came from ${fromC}`)
      assert.equal(ip(fromC), ip(mapped))
      assert.notEqual(port(fromC), port(mapped), 'expected conntrack to remap the port taken by the inbound UNREPLIED entry')

      // open: delivered, from the stranger's own address
      await x2.send(`${lab.host('op').address}:4100`, 'u-open')
      assert.equal(await o.waitForData('u-open'), x2.address)

      // firewall: dropped by the FORWARD rule; replies to the host's own traffic still get in
      const fwList = (): Promise<string> => lab.routerExec('fw', ['iptables', '-L', 'FORWARD', '-v', '-x', '-n'])
      const d0 = fwDrops(await fwList())
      await x2.send(f.address, 'u-fw')
      await until('the firewall to drop 1 datagram', async () => fwDrops(await fwList()), (n) => n >= d0 + 1)
      await f.send(x2.address, 'fw-to-stranger')
      assert.equal(await x2.waitForData('fw-to-stranger'), f.address, 'firewall host should be seen untranslated')
      await x2.send(f.address, 'reply-to-fw')
      assert.equal(await f.waitForData('reply-to-fw'), x2.address)
      assert.deepEqual(f.received().filter((d) => d.data.startsWith('u-')), [], 'firewall let an unsolicited datagram in')
    } finally {
      for (const a of [c, o, f, x2, x1]) a.close()
    }
  })

  test('hairpin: two hosts behind one cone NAT', async (t) => {
    const lab = L()
    const a = await lab.agent('cone', 4400)
    const b = await lab.agent('cone2', 4401)
    try {
      const mappedA = await a.whoami(r1.address)
      const natSnmp = (): Promise<string> => lab.routerExec('cone', ['cat', '/proc/net/snmp'])
      const np0 = udpNoPorts(await natSnmp())
      await b.send(mappedA, 'via-public')
      // Linux MASQUERADE has no hairpin for dynamic mappings: the datagram to the NAT's own
      // public address matches no DNAT and ends in the NAT namespace (NoPorts).
      await until('the NAT to swallow the hairpin datagram', async () => udpNoPorts(await natSnmp()), (n) => n >= np0 + 1)
      await b.send(a.address, 'via-lan')
      assert.equal(await a.waitForData('via-lan'), b.address, 'private addresses reach each other on the LAN')
      assert.deepEqual(a.received().filter((d) => d.data === 'via-public'), [])
      t.diagnostic(`no hairpin: ${b.address} -> ${mappedA} ended in the NAT; ${b.address} -> ${a.address} delivered directly`)
    } finally {
      a.close()
      b.close()
    }
  })

  test('a low-TTL datagram opens the local NAT and dies before the peer NAT', async (t) => {
    const lab = L()
    const peerPub = lab.host('peer').publicAddress
    const a = await lab.agent('cone', 4250)
    const d2 = await lab.agent('dbl', 4250)
    const d3 = await lab.agent('dbl', 4251)
    try {
      await a.send(`${peerPub}:4250`, 'ttl2', { ttl: 2 })
      await d2.send(`${peerPub}:4251`, 'ttl2', { ttl: 2 })
      await d3.send(`${peerPub}:4252`, 'ttl3', { ttl: 3 })
      await new Promise((r) => setTimeout(r, 200)) // the packets have died by now (sub-ms links)
      const to = (e: CtEntry, dport: number): boolean => e.orig.dst === peerPub && e.orig.dport === dport
      const coneNat = ctEntries(await lab.routerExec('cone', ['conntrack', '-L', '-p', 'udp']))
      const peerNat = ctEntries(await lab.routerExec('peer', ['conntrack', '-L', '-p', 'udp']))
      const inner = ctEntries(await lab.routerExec('dbl', ['conntrack', '-L', '-p', 'udp']))
      const outer = ctEntries(await lab.routerExec('dbl', ['conntrack', '-L', '-p', 'udp'], { outer: true }))
      assert.ok(coneNat.some((e) => to(e, 4250) && e.orig.src === lab.host('cone').address), 'TTL 2 should create the mapping on the local NAT')
      assert.ok(!peerNat.some((e) => e.orig.dport >= 4250 && e.orig.dport <= 4252), 'a low-TTL datagram reached the peer NAT')
      // Behind a double NAT, TTL 2 dies at the outer NAT (no mapping there); TTL 3 opens both.
      assert.ok(inner.some((e) => to(e, 4251)), 'TTL 2 should pass the inner NAT')
      assert.ok(!outer.some((e) => e.orig.dport === 4251), 'TTL 2 should die at the outer NAT')
      assert.ok(inner.some((e) => to(e, 4252)) && outer.some((e) => to(e, 4252)), 'TTL 3 should open both NATs')
      t.diagnostic('low TTL must be (NATs on the path) + 1: 2 behind one NAT, 3 behind a double NAT')
    } finally {
      for (const x of [a, d2, d3]) x.close()
    }
  })

  test('hole punch between two cone NATs: low-TTL open + rendezvous confirmation works, naive send does not', async (t) => {
    const lab = L()
    const rvChild = lab.spawn('r1', [process.execPath, PROBE_SCRIPT, 'rendezvous', '7000'])
    const rvLog: Array<Record<string, unknown>> = []
    let buf = ''
    rvChild.stdout!.setEncoding('utf8').on('data', (s: string) => {
      buf += s
      const lines = buf.split('\n')
      buf = lines.pop() ?? ''
      for (const l of lines) if (l.trim()) rvLog.push(JSON.parse(l) as Record<string, unknown>)
    })
    await until('the rendezvous to listen', async () => rvLog.some((e) => e.ev === 'listening'), (v) => v, 5000)
    const rv = `${lab.host('r1').address}:7000`
    const cone = lab.host('cone')
    const peer = lab.host('peer')
    const result = (events: Array<Record<string, unknown>>): Record<string, unknown> => {
      const r = events.find((e) => e.ev === 'result')
      assert.ok(r, `no result in ${JSON.stringify(events)}`)
      return r
    }
    const trial = async (ids: string, p: number, argsA: string[], argsB: string[]): Promise<[Record<string, unknown>, Record<string, unknown>]> => {
      const [a, b] = await Promise.all([
        lab.probe('cone', ['punch', String(p), rv, `${ids}a`, `${ids}b`, ...argsA]),
        lab.probe('peer', ['punch', String(p), rv, `${ids}b`, `${ids}a`, ...argsB]),
      ])
      return [result(a), result(b)]
    }

    // The notes' method: both directions deliver, from the addresses the rendezvous saw.
    const [a, b] = await trial('ok', 4200, [], [])
    t.diagnostic(`low-TTL punch: cone ${JSON.stringify(a)}; peer ${JSON.stringify(b)}`)
    assert.equal(a.ok, true, `cone side did not connect: ${JSON.stringify(a)}`)
    assert.equal(b.ok, true, `peer side did not connect: ${JSON.stringify(b)}`)
    assert.deepEqual(a.recvFrom, [`${peer.publicAddress}:4200`])
    assert.deepEqual(b.recvFrom, [`${cone.publicAddress}:4200`])
    assert.ok(rvLog.some((e) => e.ev === 'reg' && e.id === 'oka' && e.from === `${cone.publicAddress}:4200`))

    // Naive: both send as soon as they know the peer. With one side 500 ms late the early side's
    // datagram always reaches the late side's NAT first, which records it as an inbound flow and
    // remaps the late side's port: deterministic failure. Without the delay: only reported.
    const [[na, nb], [za, zb]] = await Promise.all([
      trial('nv', 4300, ['--naive', '--timeout', '1500'], ['--naive', '--delay', '500', '--timeout', '1500']),
      trial('nz', 4310, ['--naive', '--timeout', '1500'], ['--naive', '--timeout', '1500']),
    ])
    t.diagnostic(`naive, peer 500 ms late: cone ok=${na.ok} got ${JSON.stringify(na.recvFrom)}, peer ok=${nb.ok} got ${JSON.stringify(nb.recvFrom)}`)
    t.diagnostic(`naive, no delay (not asserted): cone ok=${za.ok} got ${JSON.stringify(za.recvFrom)}, peer ok=${zb.ok} got ${JSON.stringify(zb.recvFrom)}`)
    assert.equal(na.ok, false)
    assert.equal(nb.ok, false)
    assert.deepEqual(na.recvFrom, [])
    assert.deepEqual(nb.recvFrom, [])
    const peerNat = ctEntries(await lab.conntrack('peer'))
    const inbound = peerNat.find((e) => e.orig.src === cone.publicAddress && e.orig.sport === 4300 && e.orig.dport === 4300)
    const outbound = peerNat.find((e) => e.orig.src === peer.address && e.orig.sport === 4300 && e.orig.dst === cone.publicAddress)
    assert.ok(inbound?.unreplied, `expected an UNREPLIED inbound entry from the early side on the late side's NAT:\n${await lab.conntrack('peer')}`)
    assert.ok(outbound, 'no entry for the late side toward the early side')
    assert.notEqual(outbound.reply.dport, 4300, 'expected the late side to be remapped off port 4300')
    t.diagnostic(`late side remapped 4300 -> ${outbound.reply.dport} by its NAT`)
  })

  test('teardown deletes every namespace; a new lab removes crashed labs but not live ones', async () => {
    const lab = L()
    const ownPrefix = lab.prefix
    await lab.close()
    const nsList = async (): Promise<string[]> => (await run(['ip', 'netns', 'list'])).split('\n').map((l) => l.split(' ')[0]).filter(Boolean)
    assert.deepEqual((await nsList()).filter((n) => n.startsWith(`${ownPrefix}-`)), [])
    assert.equal(existsSync(`/run/weft-netlab/${ownPrefix}.pid`), false)

    // Leftovers: one without a marker, one whose owner pid is dead, one whose owner is alive (us).
    const deadPid = spawnSync('true').pid
    assert.ok(deadPid)
    await run(['ip', 'netns', 'add', 'wl999zz-orphan'])
    await run(['ip', 'netns', 'add', 'wl998zz-crashed'])
    writeFileSync('/run/weft-netlab/wl998zz.pid', `${deadPid}\n`)
    await run(['ip', 'netns', 'add', 'wl997zz-live'])
    writeFileSync('/run/weft-netlab/wl997zz.pid', `${process.pid}\n`)
    let solo: NatLab | undefined
    try {
      solo = await NatLab.create({ hosts: [{ name: 'solo', nat: 'open' }] })
      const mid = await nsList()
      assert.ok(!mid.includes('wl999zz-orphan') && !mid.includes('wl998zz-crashed'), `stale namespaces survived: ${mid.join(' ')}`)
      assert.ok(mid.includes('wl997zz-live'), 'a live lab was deleted')
      assert.ok(mid.some((n) => n.startsWith(`${solo!.prefix}-`)))
      await solo.close()
      assert.deepEqual((await nsList()).filter((n) => n.startsWith(`${solo!.prefix}-`)), [])
    } finally {
      await solo?.close()
      for (const ns of ['wl999zz-orphan', 'wl998zz-crashed', 'wl997zz-live']) await run(['ip', 'netns', 'del', ns]).catch(() => {})
      for (const m of ['wl998zz', 'wl997zz']) await run(['rm', '-f', `/run/weft-netlab/${m}.pid`])
    }
  })
})
