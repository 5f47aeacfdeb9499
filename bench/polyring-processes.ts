// `npm run bench:polyring-processes`: a real loopback polyring with every peer in its own process
// (issue 5, must-show 5). Spawns `weft node --topology polyring` N times (a centre ring, then each
// centre peer's children under it, by address), waits for every peer's GUID through its API, then
// drives the ring only with the CLI as further processes (`weft send/broadcast/multicast --api`):
//   (a) a routed message from every peer to a random other GUID, (b) a broadcast from a leaf,
//   (c) a multicast from one peer to 10 random GUIDs, (d) SIGKILL of one parent process, the heir
//   takeover, then a routed message from every survivor to a random surviving GUID;
// reads every peer's inbox through its API (GET /v1/polyring/messages) and checks each message
// arrived exactly once, exactly where. Writes bench/results/polyring-processes.json and the
// `processes` section of docs/polyring.md; exits 1 when a check fails, 3 when the watchdog fires.
//
//   npm run bench:polyring-processes [-- --shape 10x9] [--seed polyring-processes-1]
//       [--spawn-concurrency 8] [--cli-concurrency 4] [--minutes 15] [--no-write]
//
// Every child process (peers and CLI calls) is SIGKILLed at the end, on failure, on Ctrl-C and
// when the watchdog fires.
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { callApi } from '../src/api/client.js'
import { parseShape, shapePeers } from '../src/cli/polyring-devnet.js'
import type { PolyringStatus } from '../src/overlay/polyring/service.js'
import { SeededRandom } from '../src/runtime/prng.js'
import { arg, flag, num } from './lib/args.js'
import { currentSection, section, spliceSection } from './lib/doc-sections.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url)) // dist-*/bench/ -> repository root
/** The CLI of the same build as this bench (dist/ under npm run, dist-NAME/ for a helper's build). */
const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url))
const RESULTS = `${ROOT}bench/results/polyring-processes.json`
const DOC = `${ROOT}docs/polyring.md`
const DOC_SECTION = 'processes'
const DOC_BEFORE = '\n## What is left'

/** One peer's start (process up, Kademlia and polyring joined, API serving), at most. */
const START_TIMEOUT_MS = 120_000
/** One CLI call, at most. */
const CLI_TIMEOUT_MS = 60_000
/** Waiting for every GUID and complete tables, for messages to arrive, and for the takeover, at most. */
const TABLES_TIMEOUT_MS = 90_000
const ARRIVAL_TIMEOUT_MS = 60_000
const TAKEOVER_TIMEOUT_MS = 60_000
/** After everything expected arrived: room for a duplicate to show up. */
const DUPLICATE_GRACE_MS = 2_000
const POLL_MS = 250
const MULTICAST_RECEIVERS = 10
/** Lines of a peer's stderr kept for the failure report. */
const STDERR_TAIL = 4000

const shapeText = arg('shape') ?? '10x9'
let shape: number[]
try { shape = parseShape(shapeText) } catch (err) { console.error(`--shape: ${(err as Error).message}`); process.exit(2) }
if (shape.length < 2 || shape[0] < 2) { console.error('--shape: needs at least 2 levels and 2 centre peers (a parent to kill, an heir to take over)'); process.exit(2) }
const total = shapePeers(shape)
const seed = arg('seed') ?? 'polyring-processes-1'
const spawnConcurrency = num('spawn-concurrency', 8, (x) => Number.isInteger(x) && x >= 1 && x <= 64)
const cliConcurrency = num('cli-concurrency', 4, (x) => Number.isInteger(x) && x >= 1 && x <= 64)
const minutes = num('minutes', 15, (x) => x > 0 && x <= 60)
const write = !flag('no-write')

const t0 = Date.now()
const elapsed = (): string => `${((Date.now() - t0) / 1000).toFixed(1)} s`
const log = (line: string): void => console.log(`[${elapsed()}] ${line}`)
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

// ---- child processes ---------------------------------------------------------------------------

const children = new Set<ChildProcess>()
function killAll(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
}
process.on('exit', killAll)
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => { killAll(); process.exit(130) })

/** The peers' environment: no inherited API address or token (loopback APIs take none). */
const childEnv = (): NodeJS.ProcessEnv => {
  const env = { ...process.env }
  delete env.WEFT_API; delete env.WEFT_API_TOKEN
  return env
}

interface Peer {
  index: number
  level: number
  /** Index of the parent peer (-1 in the centre ring). */
  parent: number
  proc: ChildProcess | null
  address: string
  api: string
  /** The GUID as the peer reported it through its API. */
  guid: string
  startMs: number
  stderr: string
  killed: boolean
}

/** Starts one `weft node --topology polyring` and resolves once its API prints its address. */
function startPeer(p: Peer, role: string[]): Promise<void> {
  const args = [MAIN, 'node', '--topology', 'polyring', ...role, '--host', '127.0.0.1', '--port', '0', '--api', '127.0.0.1:0', '--log-level', 'warn', '--no-nat-check']
  const started = Date.now()
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv() })
  children.add(proc)
  p.proc = proc
  return new Promise((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`peer ${p.index} did not start within ${START_TIMEOUT_MS} ms\n${p.stderr}`)) }, START_TIMEOUT_MS)
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => { p.stderr = (p.stderr + d).slice(-STDERR_TAIL) })
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d
      const address = /^address\s+(\S+)/m.exec(out), api = /^api\s+http:\/\/([^/\s]+)\//m.exec(out)
      if (address && api && !p.api) {
        p.address = address[1]; p.api = api[1]; p.startMs = Date.now() - started
        clearTimeout(timer)
        resolve()
      }
    })
    proc.on('exit', (code, signal) => {
      children.delete(proc)
      if (!p.api) { clearTimeout(timer); reject(new Error(`peer ${p.index} exited (${signal ?? code}) before serving its API\n${p.stderr}`)) }
    })
  })
}

interface CliResult { ok: boolean; ms: number; stdout: string; stderr: string }

/** One `weft <args>` call as its own process. */
function cli(args: string[]): Promise<CliResult> {
  const started = Date.now()
  const proc = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv() })
  children.add(proc)
  let stdout = '', stderr = ''
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d))
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-STDERR_TAIL)))
  return new Promise((resolve) => {
    const timer = setTimeout(() => proc.kill('SIGKILL'), CLI_TIMEOUT_MS)
    proc.on('exit', (code) => {
      clearTimeout(timer)
      children.delete(proc)
      resolve({ ok: code === 0, ms: Date.now() - started, stdout, stderr })
    })
  })
}

/** Runs fn(0..n-1) with at most `width` in flight. */
async function pool(n: number, width: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: Math.min(width, n) }, async () => { while (next < n) await fn(next++) }))
}

/** Polls until ok() or the bound; true when ok() held. */
async function until(ok: () => Promise<boolean> | boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  for (;;) {
    if (await ok()) return true
    if (Date.now() > end) return false
    await sleep(POLL_MS)
  }
}

// ---- the ring ----------------------------------------------------------------------------------

/** Peer layout: the centre ring first, then each level's children grouped by parent (as the devnet). */
function layout(): Peer[] {
  const peers: Peer[] = []
  const add = (level: number, parent: number): void => { peers.push({ index: peers.length, level, parent, proc: null, address: '', api: '', guid: '', startMs: 0, stderr: '', killed: false }) }
  for (let i = 0; i < shape[0]; i++) add(0, -1)
  let parents = peers.map((p) => p.index)
  for (let l = 1; l < shape.length; l++) {
    const level: number[] = []
    for (const parent of parents) for (let k = 0; k < shape[l]; k++) { add(l, parent); level.push(peers.length - 1) }
    parents = level
  }
  return peers
}

async function startRing(peers: Peer[]): Promise<void> {
  let up = 0
  const report = (): void => { up++; if (up % 10 === 0 || up === peers.length) log(`started ${up}/${peers.length} peer processes`) }
  await startPeer(peers[0], ['--centre'])
  report()
  const centre = peers.filter((p) => p.level === 0 && p.index > 0)
  await pool(centre.length, spawnConcurrency, async (i) => {
    await startPeer(centre[i], ['--centre', '--bootstrap', peers[0].address])
    report()
  })
  for (let l = 1; l < shape.length; l++) {
    const level = peers.filter((p) => p.level === l)
    await pool(level.length, spawnConcurrency, async (i) => {
      const parent = peers[level[i].parent].address
      await startPeer(level[i], ['--parent', parent, '--bootstrap', parent])
      report()
    })
  }
}

const status = (p: Peer): Promise<PolyringStatus | null> => callApi<PolyringStatus>(p.api, '/v1/polyring').catch(() => null)

/** Tables as the shape says: siblings, children and a parent where expected. */
function complete(p: Peer, s: PolyringStatus): boolean {
  return s.guid !== null && s.siblings.length === shape[p.level] - 1 && s.children.length === (shape[p.level + 1] ?? 0) && (s.parent !== null) === (p.level > 0)
}

interface Inbox { seq: number; kind: string; from: string; text: string }
async function inbox(p: Peer): Promise<Inbox[]> {
  const r = await callApi<{ messages: { seq: number; kind: string; from: string; data: string }[] }>(p.api, '/v1/polyring/messages?since=0')
  return r.messages.map((m) => ({ seq: m.seq, kind: m.kind, from: m.from, text: Buffer.from(m.data, 'base64').toString('utf8') }))
}

/** Every live peer's messages whose text starts with `tag`, as [peer index, message]. */
async function arrivals(peers: Peer[], tag: string): Promise<[number, Inbox][]> {
  const all = await Promise.all(peers.filter((p) => !p.killed).map(async (p) => (await inbox(p).catch(() => [])).map((m): [number, Inbox] => [p.index, m])))
  return all.flat().filter(([, m]) => m.text.startsWith(tag))
}

interface Check { name: string; ok: boolean; detail: string }

/** A routed message per sender; checks each arrived exactly once, at the right peer, from the right GUID. */
async function routedRound(peers: Peer[], tag: string, random: SeededRandom): Promise<{ checks: Check[]; figures: Record<string, number> }> {
  const live = peers.filter((p) => !p.killed)
  const plan = live.map((from) => {
    const others = live.filter((p) => p !== from)
    const to = others[random.u32() % others.length]
    return { from, to, text: `${tag}${from.index}->${to.index}` }
  })
  const start = Date.now()
  let cliFailed = 0, cliMs = 0, done = 0
  await pool(plan.length, cliConcurrency, async (i) => {
    const { from, to, text } = plan[i]
    const r = await cli(['send', '--api', from.api, to.guid, text, '--json'])
    cliMs += r.ms
    if (!r.ok) { cliFailed++; log(`  weft send from ${from.guid} to ${to.guid} failed: ${r.stderr.trim().split('\n').pop()}`) }
    if (++done % 25 === 0 || done === plan.length) log(`  ${done}/${plan.length} weft send processes done`)
  })
  const sentMs = Date.now() - start
  const seen = async () => arrivals(peers, tag)
  let got: [number, Inbox][] = []
  await until(async () => (got = await seen()).length >= plan.length - cliFailed, ARRIVAL_TIMEOUT_MS)
  const allArrivedMs = Date.now() - start
  await sleep(DUPLICATE_GRACE_MS)
  got = await seen()
  const byText = new Map<string, [number, Inbox][]>()
  for (const a of got) byText.set(a[1].text, [...(byText.get(a[1].text) ?? []), a])
  let once = 0, right = 0, missing = 0, duplicated = 0
  for (const { from, to, text } of plan) {
    const a = byText.get(text) ?? []
    if (a.length === 0) missing++
    if (a.length > 1) duplicated++
    if (a.length === 1) { once++; if (a[0][0] === to.index && a[0][1].kind === 'send' && a[0][1].from === from.guid) right++ }
  }
  const stray = got.filter(([, m]) => !plan.some((x) => x.text === m.text)).length
  const ok = cliFailed === 0 && once === plan.length && right === plan.length && stray === 0
  return {
    checks: [{ name: `${tag} routed`, ok, detail: `${plan.length} sent by ${plan.length} weft send processes (${cliFailed} failed); ${once} arrived exactly once, ${right} at the right GUID from the right sender; ${missing} missing, ${duplicated} duplicated, ${stray} stray` }],
    figures: { messages: plan.length, cliFailed, arrivedOnce: once, rightPlace: right, missing, duplicated, cliMeanMs: Math.round(cliMs / plan.length), sendPhaseMs: sentMs, allArrivedMs },
  }
}

// ---- the run -----------------------------------------------------------------------------------

interface Result {
  shape: string; peers: number; seed: string; cores: number; ok: boolean
  startMs: number; perPeerStartMedianMs: number; tablesCompleteMs: number; tablesComplete: number
  rssMiB: { total: number; perPeerMedian: number; perPeerMax: number }
  routed: Record<string, number>; broadcast: Record<string, number | string>; multicast: Record<string, number | string>
  failover: Record<string, number | string>; checks: Check[]; totalMs: number; error?: string
}

function rssKiB(pid: number | undefined): number {
  if (pid === undefined) return 0
  try { return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) } catch { return 0 }
}
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.floor(s.length / 2)] : 0 }

async function run(result: Result): Promise<void> {
  const random = new SeededRandom(`polyring-processes:${seed}`)
  const peers = layout()
  log(`starting ${peers.length} peer processes (shape ${shapeText}: ${shape[0]} centre peers, ${shape.slice(1).join(' then ')} children each), ${spawnConcurrency} at a time, with ${MAIN}`)
  await startRing(peers)
  result.startMs = Date.now() - t0
  result.perPeerStartMedianMs = median(peers.map((p) => p.startMs))
  log(`all ${peers.length} processes serve their API; waiting for every GUID and complete tables (at most ${TABLES_TIMEOUT_MS / 1000} s)`)

  const tablesStart = Date.now()
  let statuses: (PolyringStatus | null)[] = []
  const allComplete = await until(async () => {
    statuses = await Promise.all(peers.map(status))
    return statuses.every((s, i) => s !== null && complete(peers[i], s))
  }, TABLES_TIMEOUT_MS)
  result.tablesCompleteMs = Date.now() - tablesStart
  result.tablesComplete = statuses.filter((s, i) => s !== null && complete(peers[i], s)).length
  statuses.forEach((s, i) => { peers[i].guid = s?.guid ?? '' })
  const guids = new Set(peers.map((p) => p.guid).filter((g) => g !== ''))
  const withGuid = peers.filter((p) => p.guid !== '').length
  const shapeOk = peers.every((p) => p.level === 0 ? /^\[\d+\]$/.test(p.guid) : p.guid.startsWith(peers[p.parent].guid.slice(0, -1) + '.'))
  result.checks.push({ name: 'guids', ok: withGuid === peers.length && guids.size === peers.length && shapeOk, detail: `${withGuid}/${peers.length} report a GUID through their API, ${guids.size} distinct, ${shapeOk ? 'each child under its parent' : 'NOT each child under its parent'}` })
  result.checks.push({ name: 'tables', ok: allComplete, detail: `${result.tablesComplete}/${peers.length} tables complete (parent, ${shape[0] - 1} or ${shape[1] - 1} siblings, children) ${(result.tablesCompleteMs / 1000).toFixed(1)} s after the last start` })
  const incomplete = statuses.flatMap((s, i) => s !== null && complete(peers[i], s) ? [] : [`${s?.guid ?? '?'} (${s ? `${s.siblings.length} siblings, ${s.children.length} children, ${s.parent ? 'a' : 'no'} parent, ${s.stats.failures} dropped` : 'no answer'})`])
  if (incomplete.length) result.checks.at(-1)!.detail += `; incomplete: ${incomplete.join(', ')}`
  log(`${withGuid}/${peers.length} GUIDs, ${result.tablesComplete}/${peers.length} tables complete after ${(result.tablesCompleteMs / 1000).toFixed(1)} s${incomplete.length ? `; incomplete: ${incomplete.join(', ')}` : ''}`)
  if (withGuid < peers.length) throw new Error('not every peer reported a GUID')
  const rss = peers.map((p) => rssKiB(p.proc?.pid))
  result.rssMiB = { total: Math.round(rss.reduce((a, b) => a + b, 0) / 1024), perPeerMedian: Math.round(median(rss) / 1024), perPeerMax: Math.round(Math.max(...rss) / 1024) }
  log(`RSS of the ${peers.length} peer processes: ${result.rssMiB.total} MiB (median ${result.rssMiB.perPeerMedian} MiB a peer)`)

  // (a) routed
  log(`(a) ${peers.length} routed messages, one from every peer to a random other GUID, each by its own weft send process (${cliConcurrency} at a time)`)
  const a = await routedRound(peers, 'pp:send:', random)
  result.routed = a.figures
  result.checks.push(...a.checks)
  log(`(a) ${a.checks[0].ok ? 'ok' : 'FAILED'}: ${a.checks[0].detail}; all arrived ${(a.figures.allArrivedMs / 1000).toFixed(1)} s after the first weft send began`)

  // (b) broadcast from a leaf
  const leaves = peers.filter((p) => p.level === shape.length - 1)
  const leaf = leaves[random.u32() % leaves.length]
  log(`(b) weft broadcast from the leaf ${leaf.guid}`)
  const bText = `pp:broadcast:${leaf.index}`
  const bStart = Date.now()
  const b = await cli(['broadcast', '--api', leaf.api, bText, '--json'])
  let bGot: [number, Inbox][] = []
  await until(async () => (bGot = await arrivals(peers, bText)).length >= peers.length - 1, ARRIVAL_TIMEOUT_MS)
  const bMs = Date.now() - bStart
  await sleep(DUPLICATE_GRACE_MS)
  bGot = await arrivals(peers, bText)
  const bPeers = new Set(bGot.map(([i]) => i))
  const bOk = b.ok && bGot.length === peers.length - 1 && bPeers.size === peers.length - 1 && !bPeers.has(leaf.index) && bGot.every(([, m]) => m.kind === 'broadcast' && m.from === leaf.guid)
  result.broadcast = { from: leaf.guid, deliveries: bGot.length, peersReached: bPeers.size, others: peers.length - 1, cliMs: b.ms, allArrivedMs: bMs }
  result.checks.push({ name: 'broadcast', ok: bOk, detail: `from ${leaf.guid}: ${bGot.length} deliveries at ${bPeers.size}/${peers.length - 1} other peers${bPeers.has(leaf.index) ? ', one at the sender' : ''}${b.ok ? '' : '; weft broadcast failed: ' + b.stderr.trim()}` })
  log(`(b) ${bOk ? 'ok' : 'FAILED'}: ${result.checks.at(-1)!.detail}, all within ${(bMs / 1000).toFixed(1)} s of starting weft broadcast`)

  // (c) multicast to 10 random GUIDs
  const mFrom = peers[random.u32() % peers.length]
  const receivers: Peer[] = []
  while (receivers.length < Math.min(MULTICAST_RECEIVERS, peers.length - 1)) {
    const r = peers[random.u32() % peers.length]
    if (r !== mFrom && !receivers.includes(r)) receivers.push(r)
  }
  const mText = `pp:multicast:${mFrom.index}`
  log(`(c) weft multicast from ${mFrom.guid} to ${receivers.map((r) => r.guid).join(',')}`)
  const mStart = Date.now()
  const m = await cli(['multicast', '--api', mFrom.api, receivers.map((r) => r.guid).join(','), mText, '--json'])
  let mGot: [number, Inbox][] = []
  await until(async () => (mGot = await arrivals(peers, mText)).length >= receivers.length, ARRIVAL_TIMEOUT_MS)
  const mMs = Date.now() - mStart
  await sleep(DUPLICATE_GRACE_MS)
  mGot = await arrivals(peers, mText)
  const mPeers = new Set(mGot.map(([i]) => i))
  const mOk = m.ok && mGot.length === receivers.length && mPeers.size === receivers.length && receivers.every((r) => mPeers.has(r.index)) && mGot.every(([, x]) => x.kind === 'multicast' && x.from === mFrom.guid)
  result.multicast = { from: mFrom.guid, receivers: receivers.length, deliveries: mGot.length, atReceivers: receivers.filter((r) => mPeers.has(r.index)).length, cliMs: m.ms, allArrivedMs: mMs }
  result.checks.push({ name: 'multicast', ok: mOk, detail: `from ${mFrom.guid} to ${receivers.length} GUIDs: ${mGot.length} deliveries, ${mOk ? 'exactly the receivers, once each' : 'NOT exactly the receivers once each'}${m.ok ? '' : '; weft multicast failed: ' + m.stderr.trim()}` })
  log(`(c) ${mOk ? 'ok' : 'FAILED'}: ${result.checks.at(-1)!.detail}`)

  // Before the kill: nobody should have dropped a neighbour (a false failure under CPU starvation
  // is permanent: the dropped peer is never taken back, and its GUID may be handed out again).
  const health = await Promise.all(peers.map(status))
  const held = new Map<string, number>()
  for (const s of health) if (s?.guid) held.set(s.guid, (held.get(s.guid) ?? 0) + 1)
  const dupes = [...held].filter(([, n]) => n > 1).map(([g, n]) => `${g} x${n}`)
  const dropped = health.reduce((a, s) => a + (s?.stats.failures ?? 0), 0)
  const takeovers = health.reduce((a, s) => a + (s?.stats.takeovers ?? 0), 0)
  const changedEarly = peers.filter((p, i) => health[i]?.guid !== p.guid).map((p, i) => `${p.guid}->${health[i]?.guid}`)
  result.checks.push({ name: 'no false failures', ok: dropped === 0 && dupes.length === 0 && changedEarly.length === 0, detail: `before the kill: ${dropped} neighbours dropped as failed (heartbeat silence or channel failure) over all peers, ${takeovers} takeovers, GUIDs held twice: ${dupes.join(', ') || 'none'}, GUIDs changed since the start: ${changedEarly.join(', ') || 'none'}` })
  log(`${result.checks.at(-1)!.ok ? 'ok' : 'FAILED'}: ${result.checks.at(-1)!.detail}`)

  // (d) SIGKILL a parent of leaves (its heir is a leaf: one GUID moves, one is vacated), never [0]
  // (the centre peers' join point): in 10x9 a centre peer, in 10x3x3 a level-1 peer.
  const parents = peers.filter((p) => p.level === shape.length - 2 && p.index !== 0)
  const victim = parents[random.u32() % parents.length]
  const heirGuid = victim.guid.slice(0, -1) + '.0]'
  const heir = peers.find((p) => p.guid === heirGuid)!
  const before = new Map(peers.map((p) => [p.index, p.guid]))
  log(`(d) SIGKILL the parent ${victim.guid} (pid ${victim.proc?.pid}); its heir ${heir.guid} should take ${victim.guid} over and ${heirGuid} be vacated`)
  const killAt = Date.now()
  victim.proc?.kill('SIGKILL')
  victim.killed = true
  const live = peers.filter((p) => !p.killed)
  let takeoverMs = -1
  let last: (PolyringStatus | null)[] = []
  // Settled: the heir holds the victim's GUID, every other survivor its own, and every table
  // entry names a live process's address holding that GUID (none names the dead one).
  const settled = await until(async () => {
    last = await Promise.all(live.map(status))
    const guidAt = new Map(live.map((p, i) => [p.address, last[i]?.guid]))
    if (takeoverMs < 0 && last[live.indexOf(heir)]?.guid === victim.guid) takeoverMs = Date.now() - killAt
    return last.every((s, i) => {
      if (!s) return false
      const want = live[i] === heir ? victim.guid : before.get(live[i].index)
      const entries = [...(s.parent ? [s.parent] : []), ...s.siblings, ...s.children]
      return s.guid === want && entries.every((e) => guidAt.get(e.address) === e.guid)
    })
  }, TAKEOVER_TIMEOUT_MS)
  const settledMs = Date.now() - killAt
  live.forEach((p, i) => { if (last[i]?.guid) p.guid = last[i]!.guid! })
  const changed = live.filter((p) => p.guid !== before.get(p.index)).map((p) => `${before.get(p.index)}->${p.guid}`)
  const vacated = !live.some((p) => p.guid === heirGuid)
  const takeoverOk = settled && changed.length === 1 && heir.guid === victim.guid && vacated
  result.checks.push({ name: 'takeover', ok: takeoverOk, detail: `${victim.guid} killed: ${takeoverMs >= 0 ? `${heirGuid} took it over within ${takeoverMs} ms (as seen by polling its API every ${POLL_MS} ms)` : 'no takeover seen'}; every table consistent ${settled ? `${settledMs} ms` : 'NOT within ' + TAKEOVER_TIMEOUT_MS + ' ms'} after the kill; GUIDs changed: ${changed.join(', ') || 'none'}; ${heirGuid} ${vacated ? 'vacated' : 'still held'}` })
  log(`(d) ${takeoverOk ? 'ok' : 'FAILED'}: ${result.checks.at(-1)!.detail}`)
  log(`(d) ${live.length} routed messages, one from every survivor to a random surviving GUID`)
  const d = await routedRound(peers, 'pp:after-kill:', random)
  result.checks.push(...d.checks)
  result.failover = { killed: victim.guid, heir: heirGuid, takeoverMs, settledMs, guidsChanged: changed.join(', '), vacated: vacated ? heirGuid : '', ...d.figures }
  log(`(d) ${d.checks[0].ok ? 'ok' : 'FAILED'}: ${d.checks[0].detail}`)
}

function markdown(r: Result): string {
  const f = (ms: number): string => `${(ms / 1000).toFixed(1)} s`
  const lines = [
    '### Every peer in its own process (`npm run bench:polyring-processes`)',
    '',
    `\`node dist/bench/polyring-processes.js --shape ${r.shape} --seed ${r.seed}\` (\`bench/polyring-processes.ts\`): ${r.peers} \`weft node --topology polyring\` processes on 127.0.0.1, each its own UDP port and API (port 0, read back from its output), encrypted, Kademlia underneath: \`[0]\` alone, the other centre peers \`--centre --bootstrap <[0]>\`, each child \`--parent <its centre peer's address>\`, ${spawnConcurrency} starts at a time. Every message below was sent by a separate \`weft send/broadcast/multicast --api\` process and read back from every peer's \`GET /v1/polyring/messages\`. ${r.cores}-core machine shared with other jobs. Result: **${r.ok ? 'every check passed' : 'a check FAILED'}**.`,
    '',
    '| step | outcome |',
    '|---|---|',
    `| start | ${r.peers} processes serving their API ${f(r.startMs)} after the first spawn (median ${f(r.perPeerStartMedianMs)} a process, joins included); ${r.tablesComplete}/${r.peers} tables complete ${f(r.tablesCompleteMs)} later; ${r.rssMiB.total} MiB RSS in all (median ${r.rssMiB.perPeerMedian} MiB a peer) |`,
    ...r.checks.map((c) => `| ${c.name} | ${c.ok ? '' : '**FAILED**: '}${c.detail} |`),
    `| timing | routed: ${r.routed.messages} \`weft send\` processes (${cliConcurrency} at a time, ${r.routed.cliMeanMs} ms each on average, mostly Node start-up) took ${f(r.routed.sendPhaseMs)}, all arrived by ${f(r.routed.allArrivedMs)}; broadcast all arrived ${f(Number(r.broadcast.allArrivedMs))} after \`weft broadcast\` began (${r.broadcast.cliMs} ms of it the CLI process); multicast ${f(Number(r.multicast.allArrivedMs))} |`,
    '',
    `Figures are wall time as seen by polling the APIs every ${POLL_MS} ms, so they bound the delivery time from above; raw figures in \`bench/results/polyring-processes.json\`. The takeover uses the default heartbeats (1 s × 3 misses: a window of 4 s).`,
  ]
  return lines.join('\n')
}

function writeOut(r: Result): void {
  writeFileSync(RESULTS, JSON.stringify(r, null, 2) + '\n')
  const doc = readFileSync(DOC, 'utf8')
  const body = section(DOC_SECTION, markdown(r))
  const at = doc.indexOf(DOC_BEFORE)
  const next = currentSection(doc, DOC_SECTION) === '' && at >= 0
    ? doc.slice(0, at) + '\n' + body + doc.slice(at)
    : spliceSection(doc, DOC_SECTION, body)
  writeFileSync(DOC, next)
  log(`wrote ${RESULTS} and the ${DOC_SECTION} section of ${DOC}`)
}

const result: Result = {
  shape: shapeText, peers: total, seed, cores: os.cpus().length, ok: false, startMs: 0, perPeerStartMedianMs: 0, tablesCompleteMs: 0, tablesComplete: 0,
  rssMiB: { total: 0, perPeerMedian: 0, perPeerMax: 0 }, routed: {}, broadcast: {}, multicast: {}, failover: {}, checks: [], totalMs: 0,
}
const watchdog = setTimeout(() => {
  console.error(`[${elapsed()}] watchdog: the run took over ${minutes} min; killing every child process`)
  killAll()
  process.exit(3)
}, minutes * 60_000)
watchdog.unref()

run(result).then(
  () => { result.ok = result.checks.length > 0 && result.checks.every((c) => c.ok) },
  (err: unknown) => { result.error = err instanceof Error ? err.message : String(err); console.error(`[${elapsed()}] failed: ${result.error}`) },
).finally(() => {
  killAll()
  result.totalMs = Date.now() - t0
  for (const c of result.checks) console.log(`${c.ok ? 'ok    ' : 'FAILED'} ${c.name}: ${c.detail}`)
  console.log(`${result.ok ? 'all checks passed' : 'NOT all checks passed'} in ${(result.totalMs / 1000).toFixed(0)} s`)
  if (write && result.error === undefined) writeOut(result)
  process.exit(result.ok ? 0 : 1)
})
