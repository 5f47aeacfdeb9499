// `npm run netlab`: Weft's NAT traversal behind real Linux NATs, over every ordered pair of NAT
// kinds (open, cone, symmetric, firewall, double). Builds a NAT lab (test/netlab/lab.ts; root on
// Linux) with three open hosts for bootstrap, observers and relays, one initiator host and one
// target host of each kind. Each round starts a fresh Weft node (test/netlab/weft-peer.ts, nat: true)
// on every initiator and target host, on a port of its own and with the NATs' conntrack tables
// emptied, so that no attempt inherits another's mappings; then every initiator connects to every
// target (five disjoint pairs at a time) at the target's relayed address (its own when it has none),
// pings it there, and reads the conntrack tables of both sides' outermost NAT or firewall for a
// two-way flow between the two public addresses (a direct path, not one through the relay).
// Writes docs/nat-traversal.md and bench/results/netlab.json.
//
//   npm run netlab [-- --attempts=5]
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { NatLab, netlabAvailable, type NatKind } from '../test/netlab/lab.js'
import { WeftPeer, directFlow, flushConntrack } from '../test/netlab/weft-client.js'
import type { NatStatus } from '../src/node/connectivity.js'
import { percentile } from './lib/stats.js'
import { currentSection } from './lib/doc-sections.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const RESULTS = `${ROOT}bench/results/netlab.json`
const DOC = `${ROOT}docs/nat-traversal.md`

const arg = (name: string): string | undefined => process.argv.slice(2).find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
const attempts = Number(arg('attempts') ?? 5)
if (!Number.isInteger(attempts) || attempts < 1 || attempts > 50) {
  console.error(`netlab: --attempts must be an integer from 1 to 50 (got ${arg('attempts')})`)
  process.exit(2)
}

const KINDS: NatKind[] = ['open', 'cone', 'symmetric', 'firewall', 'double']
const PUBLICS = ['p1', 'p2', 'p3']
const FIRST_PORT = 4600
/** A whole round (start, 25 connects, stop) must end within this, or the run stops. */
const ROUND_BUDGET_MS = 90_000
/** One-way (UNREPLIED) conntrack lines kept per side of an attempt that did not go direct. */
const CONNTRACK_LINES_KEPT = 8

interface Attempt {
  round: number
  from: NatKind
  to: NatKind
  ok: boolean
  path: 'direct' | 'relayed' | 'plain' | null
  connectMs: number | null
  pingMs: number | null
  /** A two-way flow between the public addresses on each side's outermost NAT/firewall (null: no router there). */
  conntrack: { initiator: boolean | null; target: boolean | null }
  /** The conntrack entries between the two public addresses, when the path is not direct (for diagnosis). */
  conntrackLines?: { initiator: string[]; target: string[]; entries: { initiator: number; target: number } }
  error?: string
}

interface Verdict { round: number; role: 'initiator' | 'target'; kind: NatKind; type: string; reachable: boolean | null; openerTtl: number; relayed: boolean }

const hostOf = (role: 'i' | 't', kind: NatKind): string => `${role}${kind}`
const t0 = Date.now()
const log = (s: string): void => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${s}`)

async function main(): Promise<void> {
  const avail = await netlabAvailable()
  if (!avail.ok) {
    console.error(`netlab: ${avail.why}`)
    process.exit(1)
  }
  const lab = await NatLab.create({
    hosts: [
      ...PUBLICS.map((name) => ({ name, nat: 'open' as const })),
      ...KINDS.flatMap((nat) => [{ name: hostOf('i', nat), nat }, { name: hostOf('t', nat), nat }]),
    ],
  })
  const onSignal = (): void => { void lab.close().finally(() => process.exit(130)) }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  const results: Attempt[] = []
  const verdicts: Verdict[] = []
  const publics: WeftPeer[] = []
  try {
    log(`lab up (${lab.prefix}); starting the public nodes`)
    const boot: string[] = []
    for (const name of PUBLICS) {
      const p = await WeftPeer.start(lab, name, { bootstrap: [...boot] })
      publics.push(p)
      boot.push(p.address)
    }
    const natHosts = KINDS.flatMap((k) => [hostOf('i', k), hostOf('t', k)])
    for (let round = 0; round < attempts; round++) {
      const deadline = Date.now() + ROUND_BUDGET_MS
      await flushConntrack(lab, natHosts)
      const port = FIRST_PORT + round
      const nodes = new Map<string, WeftPeer>()
      try {
        const started = await Promise.all(natHosts.map((h) => WeftPeer.start(lab, h, { port, bootstrap: boot, nat: true }, 30_000)))
        natHosts.forEach((h, i) => nodes.set(h, started[i]))
        for (const kind of KINDS) {
          for (const role of ['i', 't'] as const) {
            const s = nodes.get(hostOf(role, kind))!.nat as unknown as NatStatus
            verdicts.push({ round, role: role === 'i' ? 'initiator' : 'target', kind, type: s.type, reachable: s.reachable, openerTtl: s.openerTtl, relayed: s.relayedAddress !== null })
          }
        }
        log(`round ${round + 1}/${attempts}: 10 nodes up on port ${port}; ${KINDS.map((k) => { const s = nodes.get(hostOf('t', k))!.nat as unknown as NatStatus; return `${k}=${s.type}${s.relayedAddress ? '+relay' : ''}${s.openerTtl !== 2 ? ` ttl ${s.openerTtl}` : ''}` }).join(', ')}`)
        // Five steps of five disjoint pairs: initiator k meets target k + step.
        for (let step = 0; step < KINDS.length; step++) {
          if (Date.now() > deadline) throw new Error(`round ${round + 1} ran past its ${ROUND_BUDGET_MS / 1000} s budget`)
          const pairs = KINDS.map((from, k) => [from, KINDS[(k + step) % KINDS.length]] as const)
          const done = await Promise.all(pairs.map(([from, to]) => attempt(lab, round, from, to, nodes.get(hostOf('i', from))!, nodes.get(hostOf('t', to))!)))
          for (const a of done) {
            results.push(a)
            const ct = [a.conntrack.initiator, a.conntrack.target].map((x) => (x === null ? '-' : x ? 'yes' : 'no')).join('/')
            log(`  ${a.from.padEnd(9)} -> ${a.to.padEnd(9)} ${a.ok ? 'ok  ' : 'FAIL'} ${(a.path ?? '').padEnd(7)} ${a.connectMs === null ? '' : `${a.connectMs.toFixed(1)} ms`}  conntrack ${ct}${a.error ? `  ${a.error}` : ''}`)
          }
        }
      } finally {
        await Promise.all([...nodes.values()].map((n) => n.stop()))
      }
    }
  } finally {
    await Promise.all(publics.map((p) => p.stop()))
    await lab.close()
    process.removeListener('SIGINT', onSignal)
    process.removeListener('SIGTERM', onSignal)
  }
  report(results, verdicts)
}

async function attempt(lab: NatLab, round: number, from: NatKind, to: NatKind, initiator: WeftPeer, target: WeftPeer): Promise<Attempt> {
  const a: Attempt = { round, from, to, ok: false, path: null, connectMs: null, pingMs: null, conntrack: { initiator: null, target: null } }
  const address = (target.nat.relayedAddress as string | null) ?? target.address
  try {
    const c = await initiator.call('connect', { address }, 10_000)
    if (!c.ok) throw new Error(`connect: ${c.code} ${c.message}`)
    const r = c.result as { path: Attempt['path']; ms: number; id: string }
    if (r.id !== target.id) throw new Error(`connect reached ${r.id}, not the target ${target.id}`)
    a.path = r.path
    a.connectMs = r.ms
    const p = await initiator.call('ping', { address }, 10_000)
    if (!p.ok) throw new Error(`ping after connect: ${p.code} ${p.message}`)
    a.pingMs = (p.result as { rttMs: number }).rttMs
    a.ok = true
  } catch (err) {
    a.error = (err as Error).message
  }
  const [i, t] = [lab.host(hostOf('i', from)), lab.host(hostOf('t', to))]
  const [fi, ft] = [await directFlow(lab, i.name, t.publicAddress), await directFlow(lab, t.name, i.publicAddress)]
  a.conntrack = { initiator: fi.seen, target: ft.seen }
  // A birthday attempt leaves over a thousand one-way entries: keep the two-way ones and a few others.
  const some = (lines: string[]): string[] => [...lines.filter((l) => !l.includes('[UNREPLIED]')), ...lines.filter((l) => l.includes('[UNREPLIED]')).slice(0, CONNTRACK_LINES_KEPT)]
  if (a.path !== 'direct') a.conntrackLines = { initiator: some(fi.lines), target: some(ft.lines), entries: { initiator: fi.lines.length, target: ft.lines.length } }
  return a
}

const fmt = (ms: number): string => (Number.isNaN(ms) ? '–' : ms < 10 ? ms.toFixed(1) : String(Math.round(ms)))

function report(results: Attempt[], verdicts: Verdict[]): void {
  const pairs = KINDS.flatMap((from) => KINDS.map((to) => {
    const as = results.filter((a) => a.from === from && a.to === to)
    const ok = as.filter((a) => a.ok)
    const ms = ok.map((a) => a.connectMs!).sort((x, y) => x - y)
    const paths = { direct: 0, relayed: 0, plain: 0 }
    for (const a of ok) paths[a.path!]++
    const sides = as.map((a) => [a.conntrack.initiator, a.conntrack.target].filter((x): x is boolean => x !== null))
    const conntrackSeen = sides.every((s) => s.length === 0) ? null : sides.filter((s) => s.length > 0 && s.every(Boolean)).length
    return { from, to, attempts: as.length, connected: ok.length, paths, connectMs: { p50: percentile(ms, 50), p95: percentile(ms, 95) }, conntrackSeen, errors: [...new Set(as.map((a) => a.error).filter(Boolean))] }
  }))
  const classification = KINDS.map((kind) => {
    const vs = verdicts.filter((v) => v.kind === kind)
    const count = (f: (v: Verdict) => string): Record<string, number> => vs.reduce<Record<string, number>>((m, v) => { m[f(v)] = (m[f(v)] ?? 0) + 1; return m }, {})
    return { kind, nodes: vs.length, type: count((v) => v.type), reachable: count((v) => (v.reachable === null ? 'no stranger to test with' : v.reachable ? 'yes' : 'no')), openerTtl: count((v) => String(v.openerTtl)), relayed: vs.filter((v) => v.relayed).length }
  })
  // The birthday method's rates: pairs where it ran (a symmetric side, a target that needs a punch).
  const rate = (f: (p: (typeof pairs)[number]) => boolean): { direct: number; attempts: number } => {
    const ps = pairs.filter(f)
    return { direct: ps.reduce((n, p) => n + p.paths.direct, 0), attempts: ps.reduce((n, p) => n + p.attempts, 0) }
  }
  const birthday = {
    oneSide: rate((p) => (p.from === 'symmetric') !== (p.to === 'symmetric') && p.to !== 'open'),
    bothSides: rate((p) => p.from === 'symmetric' && p.to === 'symmetric'),
  }
  mkdirSync(`${ROOT}bench/results`, { recursive: true })
  const json = {
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, kernel: os.release() },
    command: `npm run netlab -- --attempts=${attempts}`,
    attempts,
    durationS: Math.round((Date.now() - t0) / 1000),
    classification,
    birthday,
    pairs,
    results,
  }
  writeFileSync(RESULTS, JSON.stringify(json, null, 2) + '\n')

  const share = (m: Record<string, number>): string => Object.entries(m).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}/${Object.values(m).reduce((s, x) => s + x, 0)}`).join(', ')
  const cell = (p: (typeof pairs)[number]): string => {
    if (p.connected === 0) return `**failed** 0/${p.attempts}`
    const main = (Object.entries(p.paths) as [string, number][]).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ')
    return p.connected === p.attempts ? main : `${main}; failed ${p.attempts - p.connected}`
  }
  const grid = [
    `| initiator ↓ target → | ${KINDS.join(' | ')} |`,
    `|---|${KINDS.map(() => '---').join('|')}|`,
    ...KINDS.map((from) => `| **${from}** | ${KINDS.map((to) => cell(pairs.find((p) => p.from === from && p.to === to)!)).join(' | ')} |`),
  ].join('\n')
  const rows = [
    '| initiator → target | connected | path | connect p50 ms | connect p95 ms | direct flow in conntrack |',
    '|---|---|---|---|---|---|',
    ...pairs.map((p) => `| ${p.from} → ${p.to} | ${p.connected}/${p.attempts} | ${cell(p)} | ${fmt(p.connectMs.p50)} | ${fmt(p.connectMs.p95)} | ${p.conntrackSeen === null ? 'n/a (no NAT on either side)' : `${p.conntrackSeen}/${p.attempts}`} |`),
  ].join('\n')
  const verdictRows = [
    '| kind | NAT verdict | reachable by strangers | opener TTL | relayed address |',
    '|---|---|---|---|---|',
    ...classification.map((c) => `| ${c.kind} | ${share(c.type)} | ${share(c.reachable)} | ${share(c.openerTtl)} | ${c.relayed}/${c.nodes} |`),
  ].join('\n')
  const direct = pairs.filter((p) => p.paths.direct > 0).length
  const doc = `# NAT traversal behind real NATs

Generated by \`npm run netlab\` (bench/netlab.ts) on ${json.date.slice(0, 10)}: ${attempts} attempt${attempts === 1 ? '' : 's'} per
ordered pair of NAT kinds, ${json.durationS} s in all (Linux ${json.machine.kernel}, ${json.machine.cpus} CPUs, Node ${json.machine.node}).
Raw figures: bench/results/netlab.json.

## The lab

Every host is a Linux network namespace; the "internet" is one router namespace, so two NATs are
one router apart (the hardest case for a low-TTL opener). Three open hosts run the bootstrap
nodes, which are also the observers and the relays. For each kind there is an initiator host and a
second, target host of the same kind:

- **open**: a public address on the internet router.
- **cone**: iptables \`MASQUERADE\`: one public port for every destination (kept when free), and
  inbound datagrams only from an ip:port the host has sent to (port-restricted).
- **symmetric**: \`MASQUERADE --random-fully\`: a new random public port per destination.
- **firewall**: a public address behind a stateful firewall that drops inbound UDP it has not
  seen go out (\`--ctstate NEW -j DROP\`).
- **double**: a cone NAT behind another cone NAT.

Each round starts a fresh Weft node on each of the ten hosts (\`nat: true\`, bootstrapping through the
open hosts, encrypted sessions), on a new port and with the NATs' conntrack tables emptied, so no
attempt inherits mappings from another. Every initiator then calls \`node.connect()\` on every
target's relayed address (an open target has none and is called at its own address), five disjoint
pairs at a time, and pings the target at that address. *Connected* means the connect and the ping
both answered, from the target's identity (the Noise session proves it). *Direct flow in
conntrack* means that on each side's outermost NAT or firewall the kernel holds a two-way UDP flow
between the two public addresses: the traffic really went direct, not through the relay. The
connect time is \`connect()\`'s own measure: the PUNCH round trip through the relay plus the probes
until the first PROBE_ACK (with a symmetric side: its 256 sockets opening, and for a symmetric
initiator the SPRAY round trip, then the probes until one hits). For a relayed pair it is the PUNCH round trip plus the punch timeout
(2 s) after which \`connect()\` settles for the relay; the relay carried the session from the
PUNCH on. Five pairs run at once on 2 CPUs, so a few ms of the direct times are queueing.

## What each node found out about its NAT

${verdictRows}

## The matrix

Paths: **direct** a punched path; **relayed** through the target's relay (the punch failed and the
relay carries on under the same session); **plain** the target was reachable at the address given.
${direct} of ${pairs.length} ordered pairs punched a direct path, ${pairs.filter((p) => p.paths.plain > 0).length} needed no punch (an open target), ${pairs.filter((p) => p.paths.relayed > 0).length} stayed on the relay.

${grid}

The birthday method (step 5 below) made a direct path in ${birthday.oneSide.direct} of ${birthday.oneSide.attempts} attempts with a symmetric NAT on one side
(the other cone, firewall, double or open), and in ${birthday.bothSides.direct} of ${birthday.bothSides.attempts} with symmetric NATs on both sides.

${rows}

## How it works

1. **Classify.** At start a node with \`nat: true\` asks three peers how they see it (PONG's
   observed address). Another address than its own means a NAT: the same public port for every
   observer is a *consistent* NAT (a cone), different ports a *random* one (symmetric). Then a
   reachability test: a peer asks one of its contacts that we never talked to (REACH) to probe us
   from a port bound for the purpose (DIAL). In a small network every server is somebody we
   talked to while joining, so a node without NAT asks a peer to *dial back* from a new port (a
   stateful firewall lets in only the exact ip:port it has sent to); that tells open from
   firewalled. A node behind NAT with no stranger to test with counts as private.
2. **Relay first.** A private node (behind NAT, or firewalled) takes a relayed address from a public
   peer (TURN-like: the relay binds a port for it and forwards both ways; the payloads stay sealed
   in the Noise session) and stays out of routing tables. Anyone reaches it there at once.
3. **Then punch.** \`connect(relayed address)\` sends PUNCH through the relay with the initiator's
   public address. The target sends one PROBE toward it (and one toward the address the PUNCH came
   from, if another) with a low IP TTL: enough to leave the target's own NAT(s) and create the
   mapping there, too little to reach the initiator's NAT (which would otherwise record an inbound
   flow and remap the initiator's port: the naive simultaneous open fails every time on Linux).
   Then it answers with its public address, and the initiator probes that address; the first
   PROBE_ACK moves the peer's traffic to the direct path under the same session and address. No
   answer within \`punchTimeoutMs\` (2 s): the relay carries on.
4. **Opener TTL.** 2 passes one NAT; behind a double NAT it dies at the outer NAT. A node behind a
   consistent NAT measures its TTL at start: for TTL 2, 3 and 4 it sends one datagram with that TTL
   to a new port of a peer, which then probes back from that port; the smallest TTL whose probes
   get in opened every NAT on the way (2 behind one NAT, 3 behind two).
5. **Birthday method, for a symmetric side.** Behind a NAT that picks a new random port per
   destination, no port can be named in advance. That side binds 256 fresh sockets and sends a
   low-TTL opener from each toward the other side's public address (256 mappings on its NAT,
   nothing reaching the other NAT); the other side then sends 1024 PROBEs from its own socket to
   distinct random ports (1024..65535) of the symmetric side's IP. All miss with probability
   about exp(-256 × 1024 / 64512) ≈ 2%. The probe that hits a mapped port reaches its socket,
   which answers; from then on that socket carries the peer's traffic (the session above still
   sees the same address), and the other 255 are closed. The order comes from the relay: when
   the *target* is symmetric it opens its sockets on PUNCH, answers once the openers left and
   names itself twice (the hint "probe random ports of my IP"), and the initiator sprays; when
   the *initiator* is symmetric it reads the target's public address from the PUNCH answer,
   opens its sockets, and asks the target through the relay to spray (CONNECT SPRAY: only at
   the asker's own IP, so nobody can aim the probes at a third party). The spraying side sends
   only outbound datagrams through its own NAT. With symmetric NATs on both sides the same is
   tried, but the spraying side's NAT gives each probe a new random port, which the port-
   restricted NAT in front of the sockets does not let in: it is expected to fail.

## What the real NATs taught (and the code now handles)

- **The socket's TTL is shared.** The opener lowers the socket's TTL until the datagram has left;
  the PUNCH answer sent in the same tick left with TTL 2 as well and died on the way, so every
  connect timed out. Datagrams are now held back while a low-TTL one is leaving
  (src/runtime/udp.ts).
- **A stranger's datagram moves a Linux NAT's port for good.** A datagram from an address the
  host never sent to leaves an UNREPLIED entry on its NAT; when the host later sends to that
  address, the NAT gives it another public port, and (on this kernel) every *new* flow from that
  socket gets the new port too, while old flows keep the old one. The reachability test used to
  be such a datagram (the helper pinged from its own address, a server the node would soon talk
  to): afterwards the node's public address, learned at start, was wrong for every punch. The
  helpers now probe from a port bound for two seconds, and the target of a PUNCH also opens toward
  the address the PUNCH came from (a new flow, so the initiator's current port).
- **A contact that is gone is not a stranger who failed.** The reachability helper used to be
  named before it had done anything; a node stopped minutes before made open nodes look
  firewalled. REACH is now answered only after the helper answered its DIAL.
- **TTL 2 is one NAT.** See step 4.

## Known gaps

- **Symmetric on both sides** stays relayed: a probe gets in only if the sprayer's NAT happens to
  pick the very port the sockets opened toward (about 1 in 64512) *and* the probe hits one of the
  256 mapped ports; Tailscale's "birthday" figures assume one side keeps its port per
  destination. Port prediction (NATs that allocate ports in sequence) would not help against
  \`--random-fully\`. The relay keeps these pairs connected.
- **The birthday method is costly**: 256 sockets for up to 3 s on the symmetric side, 1024 probes
  (9 bytes each, in 64 ms) from the other, up to four attempts at once per node. Its misses land
  on unmapped ports of the symmetric side's NAT as unsolicited datagrams, each leaving a
  one-way (UNREPLIED) conntrack entry there for 30 s: harmless for a NAT that randomises every
  new flow anyway. All probes miss about 1.7% of the time in theory (exp(-256 × 1024 / 64512));
  five attempts per pair is a small sample of that.
- **open → symmetric** uses the birthday method too; the cheaper peer-reflexive way (the
  symmetric target sends a full-TTL PROBE to the open initiator, which adopts the port it came
  from, as in ICE) is not done.
- **Hairpinning** is not relied on (Linux MASQUERADE does not hairpin): two nodes behind one NAT
  swap their LAN addresses in the PUNCH and its answer (spec/wire.md 14.4) and probe them; the
  first that answers is the direct path, host to host over the LAN (\`test/netlab-hairpin.test.ts\`:
  connected in 12 to 22 ms). Only private and link-local addresses (at most 4) are probed, only
  with a peer whose PUNCH left our own public IP. Not covered: two nodes behind one *outer* NAT
  but different inner NATs (a double NAT's LAN addresses are not reachable from the other inner
  LAN: the LAN probes fail and the relay carries on), and a second connect in the other direction
  (B to A's relayed address after A punched to B) re-labels A's LAN address under A's relayed
  address on B, and A's pings to B then timed out (one physical address maps to one logical
  address; punched public paths share that mapping, not tried there). B reaches A at the
  address A's PUNCH came from.
- **A moved port on the target's side** is not noticed: if unsolicited traffic (say, the probes of
  an earlier failed punch) made the target's NAT move its port, the target still names the old
  public address and punches to it fail until the NAT's entries for the moved flow expire (30 s
  for a one-way flow, 120 s for a two-way one, from its last datagram); the relay carries on
  meanwhile.
- The opener TTL assumes at least one router between the two NATs that is not a NAT of either
  side; a TTL that is just enough for our NATs cannot be told from one that also reaches a peer's
  NAT sitting right behind ours. The measurement assumes the probes back start after our datagram
  has passed our NATs (they start 250 ms after the peer answers the DIAL).
- Dial-back from a known peer as a reachability test trusts filtering by ip:port. A firewall that
  filters by IP alone would let a known peer's new port in; so it is used only without NAT, and
  a real stranger (another IP) is always tried first.
`
  // The 50-node network's section (bench/netlab-network.ts, run next) is carried over.
  const network = existsSync(DOC) ? currentSection(readFileSync(DOC, 'utf8'), 'network') : ''
  writeFileSync(DOC, network ? `${doc.trimEnd()}\n\n${network}` : doc)
  log(`wrote ${DOC.slice(ROOT.length)} and ${RESULTS.slice(ROOT.length)}`)
  console.log('\n' + grid)
}

main().catch((err) => {
  console.error(`netlab: ${(err as Error).stack ?? err}`)
  process.exit(1)
})
