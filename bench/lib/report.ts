// Turns one benchmark run into target verdicts, console tables and docs/benchmarks.md.
import { DHT_KINDS, type DhtFigures, type DhtKind, type DhtKindFigures } from './dht.js'
import type { LookupFigures } from './measure.js'
import { median } from './stats.js'
import type { RoundTripRun } from './spawn.js'

export { median }

/** Weft's default build: every datagram sealed in a Noise session. The peer targets are about it. */
export const WEFT = 'weft'
/** The same Weft with `encrypt: false`: only the reference for what encryption costs, never a peer. */
export const WEFT_PLAINTEXT = 'weft-plaintext'
export const PEERS = ['hyperdht', 'bittorrent-dht'] as const
export const IMPL_ORDER = [WEFT, WEFT_PLAINTEXT, ...PEERS]
/** The DHT put/get section measures the default Weft build only. */
export const DHT_IMPL_ORDER = [WEFT, ...PEERS]
/** Encryption may make Weft's lookups at most this much slower (p50) than plaintext. */
export const ENCRYPTION_MAX_SLOWDOWN = 0.25

/** Peers are the other libraries: comparing Weft with its own plaintext build is not a peer target. */
const isPeer = (impl: string): boolean => (PEERS as readonly string[]).includes(impl)

/** A lookup measurement, or the error that stopped it. */
export type LookupEntry = LookupFigures | { impl: string; nodes: number; error: string }

export function isFigures(e: LookupEntry | undefined): e is LookupFigures {
  return e !== undefined && !('error' in e)
}

export interface RoundTripSummary {
  window: number
  /** Median round trips per second over the repeats. */
  dgram: number
  /** Weft's default (encrypted) build. */
  weft: number
  /** weft / dgram. */
  ratio: number
  /** Weft with encrypt: false, when it was run (absent in older results). */
  weftPlaintext?: number
}

export interface Verdict {
  target: string
  requirement: string
  /** One row per N (lookup targets) or per window (round trips). */
  rows: { at: string; weft: number; reference: number; referenceName: string; ratio: number; pass: boolean; text?: string }[]
  pass: boolean
}

export interface MachineInfo {
  node: string
  cpu: string
  cores: number
  memMiB: number
  platform: string
  release: string
  date: string
  /** The commit measured, with "+dirty" if the working tree had changes under src/. */
  commit: string
}

export interface RunParams {
  nodes: number[]
  lookups: number
  seed: number
  quick: boolean
  /** Times the sessions-up phase goes over the lookups per Weft build, in blocks taking turns (absent: 1 pass). */
  sessionRounds?: number
  /** Encrypted/plaintext process pairs per N (older results: one). */
  pairs?: number
  rtt: { durationMs: number; windows: number[]; repeats: number; pinnedCpu: number | null }
}

export interface BenchResults {
  machine: MachineInfo
  params: RunParams
  lookup: LookupEntry[]
  roundTrips: { samples: (RoundTripRun | { impl: string; window: number; error: string })[]; summary: RoundTripSummary[] }
  verdicts: Verdict[]
  /** Encrypted against plaintext Weft per N (absent in results recorded before it was added). */
  encryption?: EncryptionCost[]
  elapsedMs: number
}

const LOOKUP_TARGETS: { key: 'p50Ms' | 'datagramsPerLookup' | 'rssKiBPerNode'; target: string }[] = [
  { key: 'p50Ms', target: 'p50 lookup latency' },
  { key: 'datagramsPerLookup', target: 'datagrams per lookup' },
  { key: 'rssKiBPerNode', target: 'memory (RSS) per node' }
]

/**
 * Lookup targets: at every N, Weft's figure must be at most half of the BEST (lowest) peer
 * figure for that metric in the same run (the best peer may differ per metric and per N).
 * Round trips: at every window, Weft's rate must be at least half the bare dgram rate.
 */
export function verdicts(lookup: LookupEntry[], rtt: RoundTripSummary[], nodes: number[]): Verdict[] {
  const out: Verdict[] = []
  for (const { key, target } of LOOKUP_TARGETS) {
    const rows: Verdict['rows'] = []
    for (const n of nodes) {
      const weft = lookup.find((e) => e.impl === WEFT && e.nodes === n)
      const peers = lookup.filter((e): e is LookupFigures => isFigures(e) && isPeer(e.impl) && e.nodes === n)
      if (peers.length === 0) continue // nothing to compare against at this N
      const best = peers.reduce((a, b) => (b[key] < a[key] ? b : a))
      const w = isFigures(weft) ? weft[key] : NaN
      const ratio = w / best[key]
      rows.push({ at: `N=${n}`, weft: w, reference: best[key], referenceName: best.impl, ratio, pass: ratio <= 0.5 })
    }
    out.push({ target, requirement: '≤ 0.5 × best peer', rows, pass: rows.length > 0 && rows.every((r) => r.pass) })
  }
  const rows = rtt.map((s) => ({
    at: `window ${s.window}`, weft: s.weft, reference: s.dgram, referenceName: 'bare dgram', ratio: s.ratio, pass: s.ratio >= 0.5
  }))
  out.push({ target: 'RPC round trips per second', requirement: '≥ 0.5 × bare dgram', rows, pass: rows.length > 0 && rows.every((r) => r.pass) })
  out.push(encryptionVerdict(encryptionCosts(lookup, nodes)))
  return out
}

// ---- Encryption cost ------------------------------------------------------------------------------

/** One build's figures in the encryption comparison. */
export interface CostFigures {
  p50Ms: number
  p95Ms: number
  /** NaN when the results predate the throughput figure. */
  lookupsPerSec: number
  datagramsPerLookup: number
  /** Process CPU per lookup, ms (absent in older results). */
  cpuMsPerLookup?: number
  /** Noise handshakes started per lookup (absent in older results). */
  handshakesPerLookup?: number
}

/** Encrypted (default) against plaintext Weft at one N, from the same run. */
export interface EncryptionCost {
  nodes: number
  encrypted: CostFigures
  plaintext: CostFigures
  /** encrypted p50 / plaintext p50 − 1: 0.25 means 25 % slower. */
  slowdown: number
  /** encrypted lookups/s / plaintext lookups/s: below 1 means fewer lookups per second. */
  throughputRatio: number
  /** slowdown ≤ ENCRYPTION_MAX_SLOWDOWN. */
  pass: boolean
  /** The same lookups run again with every session open: what sealing alone costs. */
  sessionsUp?: { encrypted: CostFigures; plaintext: CostFigures; slowdown: number; throughputRatio: number; pass: boolean }
}

const costFigures = (f: LookupFigures): CostFigures => ({
  p50Ms: f.p50Ms, p95Ms: f.p95Ms, lookupsPerSec: f.lookupsPerSec ?? NaN, datagramsPerLookup: f.datagramsPerLookup,
  cpuMsPerLookup: f.cpuMsPerLookup, handshakesPerLookup: f.handshakesPerLookup
})

/** One entry per N at which both builds produced figures. */
export function encryptionCosts(lookup: LookupEntry[], nodes: number[]): EncryptionCost[] {
  const out: EncryptionCost[] = []
  for (const n of nodes) {
    const enc = lookup.find((e) => e.impl === WEFT && e.nodes === n)
    const plain = lookup.find((e) => e.impl === WEFT_PLAINTEXT && e.nodes === n)
    if (!isFigures(enc) || !isFigures(plain)) continue
    const slowdown = enc.p50Ms / plain.p50Ms - 1
    const encrypted = costFigures(enc)
    const plaintext = costFigures(plain)
    const warm = enc.sessionsUp && plain.sessionsUp
      ? (() => {
          const [e, p] = [enc.sessionsUp!, plain.sessionsUp!]
          // Rounds taken in turn: the median of the per-round ratios (a round is measured under
          // one speed of the machine; pooling rounds of different speeds skews the ratio of p50s).
          const er = e.roundP50Ms, pr = p.roundP50Ms
          const sd = er && pr && er.length === pr.length && er.length > 0 ? median(er.map((x, i) => x / pr[i])) - 1 : e.p50Ms / p.p50Ms - 1
          return { encrypted: e, plaintext: p, slowdown: sd, throughputRatio: e.lookupsPerSec / p.lookupsPerSec, pass: sd <= ENCRYPTION_MAX_SLOWDOWN }
        })()
      : undefined
    out.push({ nodes: n, encrypted, plaintext, slowdown, throughputRatio: encrypted.lookupsPerSec / plaintext.lookupsPerSec, pass: slowdown <= ENCRYPTION_MAX_SLOWDOWN, ...(warm ? { sessionsUp: warm } : {}) })
  }
  return out
}

function encryptionVerdict(costs: EncryptionCost[]): Verdict {
  const rows = costs.flatMap((c) => [
    { at: `N=${c.nodes}, first contact`, weft: c.encrypted.p50Ms, reference: c.plaintext.p50Ms, referenceName: WEFT_PLAINTEXT, ratio: c.slowdown + 1, pass: c.pass },
    ...(c.sessionsUp ? [{ at: `N=${c.nodes}, sessions up`, weft: c.sessionsUp.encrypted.p50Ms, reference: c.sessionsUp.plaintext.p50Ms, referenceName: WEFT_PLAINTEXT, ratio: c.sessionsUp.slowdown + 1, pass: c.sessionsUp.pass }] : []),
  ])
  const requirement = `≤ ${fmt(1 + ENCRYPTION_MAX_SLOWDOWN, 2)} × plaintext (≤ ${fmt(ENCRYPTION_MAX_SLOWDOWN * 100, 0)} % slower)`
  return { target: 'encryption cost: p50 lookup latency', requirement, rows, pass: rows.length > 0 && rows.every((r) => r.pass) }
}

const pct = (x: number): string => (Number.isFinite(x) ? `${x >= 0 ? '+' : ''}${fmt(x * 100, 1)} %` : '–')
const pair = (a: number, b: number, digits: number): string => `${fmt(a, digits)} / ${fmt(b, digits)}`

export function encryptionTable(costs: EncryptionCost[]): string {
  if (costs.length === 0) return `No figures: run both \`${WEFT}\` and \`${WEFT_PLAINTEXT}\` (the default \`--impls\`).`
  const row = (label: string, e: CostFigures, p: CostFigures, slowdown: number, ratio: number, ok: boolean): string[] => [
    label, pair(e.p50Ms, p.p50Ms, 2), pair(e.p95Ms, p.p95Ms, 2), pair(e.lookupsPerSec, p.lookupsPerSec, 0),
    pair(e.datagramsPerLookup, p.datagramsPerLookup, 1), pair(e.cpuMsPerLookup ?? NaN, p.cpuMsPerLookup ?? NaN, 2), fmt(e.handshakesPerLookup, 1),
    pct(slowdown), fmt(ratio, 2), ok ? 'PASS' : 'MISS'
  ]
  const rows = costs.flatMap((c) => [
    row(`${c.nodes}, first contact`, c.encrypted, c.plaintext, c.slowdown, c.throughputRatio, c.pass),
    ...(c.sessionsUp ? [row(`${c.nodes}, sessions up`, c.sessionsUp.encrypted, c.sessionsUp.plaintext, c.sessionsUp.slowdown, c.sessionsUp.throughputRatio, c.sessionsUp.pass)] : []),
  ])
  return table(
    ['N, lookups', 'p50 ms (encrypted / plaintext)', 'p95 ms (encrypted / plaintext)', 'Lookups / s (encrypted / plaintext)',
      'Datagrams / lookup (encrypted / plaintext)', 'CPU ms / lookup (encrypted / plaintext)', 'Handshakes / lookup',
      'Slowdown (p50)', 'Throughput encrypted / plaintext', `≤ ${fmt(ENCRYPTION_MAX_SLOWDOWN * 100, 0)} % slower`],
    rows,
    ['r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l']
  )
}

const fmt = (x: number | undefined, digits: number): string =>
  x === undefined || !Number.isFinite(x) ? '–' : x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })

function table(head: string[], rows: string[][], align: ('l' | 'r')[]): string {
  const sep = align.map((a) => (a === 'r' ? '---:' : ':---'))
  return [head, sep, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n')
}

export function lookupTable(lookup: LookupEntry[], n: number): string {
  const rows = IMPL_ORDER.map((impl) => {
    const e = lookup.find((x) => x.impl === impl && x.nodes === n)
    if (!e) return [impl, 'not run', '', '', '', '', '', '', '']
    if (!isFigures(e)) return [impl, `failed: ${e.error.split('\n')[0].slice(0, 80)}`, '', '', '', '', '', '', '']
    const success = `${fmt(e.success * 100, 1)} %` + (e.exact !== undefined ? ` (exact ${fmt(e.exact * 100, 1)} %)` : '')
    const m = e.memoryKiBPerNode
    const split = m ? `${fmt(m.heapTotal, 0)} / ${fmt(m.heapUsed, 0)} / ${fmt(m.external, 0)}` : '–'
    return [impl, success, fmt(e.p50Ms, 2), fmt(e.p95Ms, 2), fmt(e.p99Ms, 2), fmt(e.datagramsPerLookup, 1), fmt(e.rssKiBPerNode, 0), split, fmt(e.setupMs / 1000, 1)]
  })
  return table(
    ['Implementation', 'Success', 'p50 ms', 'p95 ms', 'p99 ms', 'Datagrams / lookup', 'KiB / node (RSS)', 'V8 heap / live / external KiB', 'Setup s'],
    rows,
    ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r']
  )
}

export function roundTripTable(summary: RoundTripSummary[]): string {
  // Older results have no plaintext figure: '–' in its columns.
  return table(
    ['Requests in flight', 'Bare node:dgram (round trips/s)', 'Weft RPC ping (round trips/s)', 'Weft / bare',
      'Weft plaintext (round trips/s)', 'Weft encrypted / plaintext'],
    summary.map((s) => [
      String(s.window), fmt(s.dgram, 0), fmt(s.weft, 0), fmt(s.ratio, 2),
      fmt(s.weftPlaintext, 0), fmt(s.weftPlaintext === undefined ? undefined : s.weft / s.weftPlaintext, 2)
    ]),
    ['r', 'r', 'r', 'r', 'r', 'r']
  )
}

export function verdictTable(vs: Verdict[]): string {
  return table(
    ['Target', 'Requirement', 'Weft / reference (reference)', 'Result'],
    vs.map((v) => [
      v.target,
      v.requirement,
      v.rows.length === 0
        ? 'no reference figures'
        : v.rows.map((r) => r.text ?? `${r.at}: ${fmt(r.ratio, 2)} (${r.referenceName})`).join('; '),
      v.rows.length === 0 ? 'n/a' : v.pass ? 'PASS' : 'MISS'
    ]),
    ['l', 'l', 'l', 'l']
  )
}

export function renderMarkdown(r: BenchResults, d: DhtResults | null = null): string {
  const p = r.params
  const m = r.machine
  const pin = p.rtt.pinnedCpu === null ? 'not pinned (taskset unavailable)' : `pinned to CPU ${p.rtt.pinnedCpu} with \`taskset\``
  const parts: string[] = []
  parts.push(`# Benchmarks

<!-- Generated by \`npm run bench\` (bench/lookup.ts). Edits here are overwritten on the next run. -->

\`npm run bench\` compares Weft's lookups and DHT puts and gets with [hyperdht](https://github.com/holepunchto/hyperdht)
and [bittorrent-dht](https://github.com/webtorrent/bittorrent-dht) in the same run, on the same machine, all on
loopback, Weft's RPC layer with a bare \`node:dgram\` ping-pong, and Weft encrypted (the default) with Weft in
plaintext. Raw figures: \`bench/results/lookup.json\` (lookups, round trips, encryption cost) and
\`bench/results/dht.json\` (DHT put/get).

\`\`\`sh
npm run bench                 # N = ${p.nodes.join(', ')}, ${p.lookups} lookups each; DHT put/get; a few minutes
npm run bench -- --quick      # fewer lookups, puts and shorter round-trip runs, for a smoke test
npm run bench -- --only=dht   # only the DHT put/get section (--only=lookup: only lookups and round trips)
npm run bench -- --only=lookup --impls=weft,weft-plaintext   # only the encryption cost
\`\`\`

## How it is measured

- **Networks.** Each implementation at each N runs in a fresh child process (\`node --expose-gc\`) holding all N nodes,
  each with its own UDP socket on 127.0.0.1. Weft: \`createTestnet\` (node 0 starts the network, the others join
  through it). hyperdht: its \`hyperdht/testnet\` helper. bittorrent-dht: N instances, node 0 with \`bootstrap: false\`,
  every other node bootstrapped to node 0 and two random earlier nodes. No implementation is given a public bootstrap
  node, and every send to a non-loopback address is blocked and fails the run.
- **Weft, twice.** \`weft\` is the default build: every datagram sealed in a Noise session; a lookup that reaches a
  node it has no session with yet pays for the handshake, and the handshake datagrams count. \`weft-plaintext\` is
  the same network, same seed, same lookups, with \`encrypt: false\`. It is only the reference for the encryption
  cost: the targets against hyperdht and bittorrent-dht are about the encrypted \`weft\`. The two run as a pair
  (bench/lib/paired.ts): two child processes, pinned to the same CPU, that never run at once, and whose timed phases
  take turns (below).
- **Lookups.** ${p.lookups} lookups per run, strictly one after another, each for a random target from a random node,
  both drawn from the same seeded PRNG (seed ${p.seed}). Targets are 32 bytes (20 for bittorrent-dht, its id size).
  Weft: \`node.lookup(target)\` (iterative FIND_NODE, k = 20, α = 3); hyperdht: \`findNode(target)\` until the query
  finishes; bittorrent-dht: \`lookup(target)\` (its iterative \`get_peers\` walk). Latency is the wall time of each
  lookup; p50/p95/p99 are nearest-rank percentiles. A lookup succeeds if it completes and returns at least one other
  node; for Weft, "exact" is the share of lookups whose result is exactly the true 20 nearest nodes.
- **Datagrams per lookup.** Every datagram sent by anything in the process during the lookup phase (requests,
  replies, retries, table maintenance), divided by the number of lookups. A reply is itself a sent datagram, so both
  directions count. Counted by wrapping \`dgram.Socket.prototype.send\` (Weft and bittorrent-dht use \`node:dgram\`) and
  \`UDXSocket.prototype.trySend\`/\`send\` (hyperdht uses udx-native), one count per datagram.
- **Memory per node.** (RSS once all N nodes have joined − RSS before the first node was created) / N, each RSS
  read after a full garbage collection, with the library already loaded for the baseline. RSS includes the JS heap,
  native allocations and buffers, not kernel socket buffers. The split column gives the same deltas from
  \`process.memoryUsage()\`: V8 heap committed, V8 heap live, and memory outside the V8 heap (buffers, native). The
  committed heap (reserved, not necessarily resident) includes V8's young generation, which grows to up to 32 MiB
  with how much a process allocates and keeps, not with N: at small N it is most of every implementation's figure.
- **RPC round trips.** Each measurement runs in its own child process, ${pin}, with client and server in
  that one process (one JS thread). ${p.rtt.windows.join(' and ')} requests are kept in flight for
  ${fmt(p.rtt.durationMs / 1000, 1)} s; the figure is the median of ${p.rtt.repeats} run(s), bare and Weft (encrypted, then
  plaintext) alternating. Bare: a \`node:dgram\` echo of a 40-byte datagram matched by a counter. Weft:
  \`client.ping(server.address)\` between two Weft nodes (the full RPC: codec, transaction ids, retransmission timers,
  round-trip tokens, rate limits, and sealing when encrypted; the server's rate limit is raised out of the way; one
  warm-up ping first, which also completes the handshake).
- **Targets.** For each N, Weft's p50 latency, datagrams per lookup and memory per node must each be at most half of
  the best (lowest) peer's figure for that metric in the same run; RPC round trips must reach at least half the bare
  \`node:dgram\` rate at every window. Encryption may make Weft's p50 lookup latency at most
  ${fmt(ENCRYPTION_MAX_SLOWDOWN * 100, 0)} % higher than plaintext's at every N. A target is PASS only if it holds at every N (every window).
- **Encryption cost.** Slowdown = encrypted p50 / plaintext p50 − 1. Lookups / s is the throughput of the timed
  phase (lookups, one after another, over its wall time); the ratio below 1 is the share of plaintext's rate kept.
  CPU per lookup is the process's user + system time over the phase, divided by its lookups: every node's work.
  "First contact": the lookups right after the network formed and went quiet (under 20 datagrams in 250 ms), when
  most peers a lookup asks have no session with the asker yet, so each pays an IK handshake (eight X25519s at first
  contact, about 1 ms of CPU here for its two sides, on the one core all nodes share); encrypted first, then plaintext. Then one
  untimed pass each (the first taught the nodes new contacts, which still open sessions). "Sessions up": the same
  lookups ${p.sessionRounds ?? 1} more time(s) per build (rounds), in blocks of 20 that alternate between the builds
  (E P, P E, ...); each figure is the median over rounds, and the slowdown is the median of the rounds' p50 ratios.
  The pair runs ${p.pairs ?? 1} time(s) per N, each time in two new processes: the sessions-up rounds of all pairs
  count (the figures are medians over pairs, the slowdown the median of every round's ratio), and the first-contact
  figures are those of the pair with the median first-contact ratio. A new pair of processes draws its own JIT
  decisions and heap layout, which moved one pair's slowdown by several points from run to run.
  On this kind of VM the machine's speed swings by half within a second or two: builds measured a minute apart, or
  even whole passes in turn, differed more from run to run than from each other; blocks in turn put both under the
  same swings, and the per-round ratios printed while the bench runs agree within a few points. (Pooling the rounds
  instead mixes rounds run at different speeds, which moved the ratio of the two p50s by up to ten points.)
- **Noise.** All nodes of a run share one process, so lookup latency is mostly CPU time, and on a small or shared
  machine latency and round-trip figures move by 20–30 % from run to run; datagram counts are stable.

## Results

${m.date} · commit ${m.commit} · Node ${m.node} · ${m.cpu} (${m.cores} cores, ${fmt(m.memMiB / 1024, 1)} GiB) · ${m.platform} ${m.release}${p.quick ? ' · **quick run**' : ''}
`)
  parts.push('### Targets\n\n' + verdictTable([...r.verdicts, ...(d?.verdicts ?? [])]) + '\n')
  for (const n of p.nodes) parts.push(`### Lookups, N = ${n}\n\n` + lookupTable(r.lookup, n) + '\n')
  // Older results files have no encryption field: derive it from their lookups.
  parts.push('### Encryption cost (Weft encrypted against plaintext)\n\n' + encryptionTable(r.encryption ?? encryptionCosts(r.lookup, p.nodes)) + '\n')
  parts.push('### RPC round trips (one core)\n\n' + roundTripTable(r.roundTrips.summary) + '\n')
  if (d) parts.push(renderDht(d))
  return parts.join('\n')
}

// ---- DHT put/get ----------------------------------------------------------------------------------

/** A DHT measurement, or the error that stopped it. */
export type DhtEntry = DhtFigures | { impl: string; nodes: number; error: string }

export function isDhtFigures(e: DhtEntry | undefined): e is DhtFigures {
  return e !== undefined && !('error' in e)
}

export interface DhtParams {
  nodes: number
  puts: number
  seed: number
  quick: boolean
  minValueBytes: number
  maxValueBytes: number
}

/** What bench/results/dht.json holds. */
export interface DhtResults {
  machine: MachineInfo
  params: DhtParams
  dht: DhtEntry[]
  verdicts: Verdict[]
  elapsedMs: number
}

export type DhtOp = 'put' | 'get'
const DHT_OPS: DhtOp[] = ['put', 'get']

/** Weft's p50 against the best (lowest) peer p50 for one kind and operation. */
export interface DhtComparison {
  kind: DhtKind
  op: DhtOp
  weft: number
  best: number
  bestName: string
  ratio: number
  pass: boolean
}

export function dhtComparisons(entries: DhtEntry[]): DhtComparison[] {
  const weft = entries.find((e) => e.impl === WEFT)
  const peers = entries.filter((e): e is DhtFigures => isDhtFigures(e) && isPeer(e.impl))
  const out: DhtComparison[] = []
  if (peers.length === 0) return out
  for (const kind of DHT_KINDS) {
    for (const op of DHT_OPS) {
      const p50 = (f: DhtFigures): number => f[kind][op].p50Ms
      const best = peers.reduce((a, b) => (p50(b) < p50(a) ? b : a))
      const w = isDhtFigures(weft) ? p50(weft) : NaN
      const ratio = w / p50(best)
      out.push({ kind, op, weft: w, best: p50(best), bestName: best.impl, ratio, pass: ratio <= 0.5 })
    }
  }
  return out
}

/**
 * DHT targets: every Weft put stored and every get found and verified (immutable and mutable);
 * Weft's p50 for each kind and operation at most half of the best peer's p50 for the same one.
 */
export function dhtVerdicts(entries: DhtEntry[], nodes: number): Verdict[] {
  const weft = entries.find((e) => e.impl === WEFT)
  const correct: Verdict['rows'] = isDhtFigures(weft)
    ? DHT_KINDS.map((kind) => {
      const f = weft[kind]
      const pass = f.putsOk === f.puts && f.found === f.puts && f.verified === f.puts
      const text = `${kind}: ${f.verified}/${f.puts} verified` + (f.putsOk < f.puts ? `, ${f.putsOk} put` : '') + (f.found > f.verified ? `, ${f.found} found` : '')
      return { at: kind, weft: f.verified, reference: f.puts, referenceName: 'puts', ratio: f.puts === 0 ? NaN : f.verified / f.puts, pass, text }
    })
    : []
  const latency = dhtComparisons(entries).map((c) => ({
    at: `${c.kind} ${c.op}`, weft: c.weft, reference: c.best, referenceName: c.bestName, ratio: c.ratio, pass: c.pass
  }))
  return [
    { target: `DHT gets found and verified (N=${nodes})`, requirement: '100 % of puts', rows: correct, pass: correct.length > 0 && correct.every((r) => r.pass) },
    { target: `DHT put/get p50 latency (N=${nodes})`, requirement: '≤ 0.5 × best peer', rows: latency, pass: latency.length > 0 && latency.every((r) => r.pass) }
  ]
}

export function dhtTable(entries: DhtEntry[], kind: DhtKind): string {
  const rows = DHT_IMPL_ORDER.map((impl) => {
    const e = entries.find((x) => x.impl === impl)
    const blank: string[] = Array(13).fill('')
    if (!e) return [impl, 'not run', ...blank]
    if (!isDhtFigures(e)) return [impl, `failed: ${e.error.split('\n')[0].slice(0, 80)}`, ...blank]
    const f: DhtKindFigures = e[kind]
    return [
      impl, `${f.putsOk}/${f.puts}`, `${f.found}/${f.puts}`, `${f.verified}/${f.puts}`,
      fmt(f.put.p50Ms, 2), fmt(f.put.p95Ms, 2), fmt(f.put.p99Ms, 2),
      fmt(f.get.p50Ms, 2), fmt(f.get.p95Ms, 2), fmt(f.get.p99Ms, 2),
      fmt(f.replicasPerPut, 1), fmt(f.datagramsPerPut, 1), fmt(f.datagramsPerGet, 1), fmt(f.cpuMsPerPut, 2), fmt(f.cpuMsPerGet, 2)
    ]
  })
  return table(
    ['Implementation', 'Puts stored', 'Gets found', 'Verified', 'Put p50 ms', 'Put p95 ms', 'Put p99 ms', 'Get p50 ms', 'Get p95 ms', 'Get p99 ms',
      'Nodes / put', 'Datagrams / put', 'Datagrams / get', 'CPU ms / put', 'CPU ms / get'],
    rows,
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r']
  )
}

export function dhtComparisonTable(entries: DhtEntry[]): string {
  const rows = dhtComparisons(entries).map((c) => [
    `${c.kind} ${c.op}`, fmt(c.weft, 2), `${fmt(c.best, 2)} (${c.bestName})`, fmt(c.ratio, 2), c.pass ? 'PASS' : 'MISS'
  ])
  return table(['Operation', 'Weft p50 ms', 'Best peer p50 ms', 'Weft / best', '≤ 0.5'], rows, ['l', 'r', 'r', 'r', 'l'])
}

function renderDht(d: DhtResults): string {
  const p = d.params
  const m = d.machine
  return `## DHT put/get

N = ${p.nodes} nodes on 127.0.0.1 per implementation, each implementation in its own child process (\`npm run bench --
--only=dht\` runs just this section). ${p.puts} puts of random values (${p.minValueBytes}–${p.maxValueBytes} bytes), each from a random node,
one after another; then a get of every key from another random node (never the writer), one after another. Then
the same with mutable records: one Ed25519 key pair per record, seq 1, no salt. Writers, readers, values and key
seeds come from one seeded PRNG (seed ${p.seed}), the same for every implementation. The 1,000-put version of this
check for Weft alone is in the test suite (\`test/dht.test.ts\`).

- **Weft:** \`node.dht.put(value)\` / \`node.dht.get(key)\`, \`node.dht.putMutable(identity, value, { seq: 1 })\` /
  \`node.dht.getMutable(publicKey)\` (k = 20). A get stops at the first immutable value that hashes to its key; a
  mutable get runs its lookup to the end and keeps the newest valid record.
- **hyperdht:** \`immutablePut\` / \`immutableGet\`, \`mutablePut(DHT.keyPair(seed), value, { seq: 1 })\` /
  \`mutableGet(publicKey)\` (default options: the newest seq the query finds). "Nodes / put" is the size of the
  commit set (\`closestNodes\`): hyperdht does not report confirmations.
- **bittorrent-dht:** BEP 44 \`put({ v })\` / \`get(hash)\`, \`put({ k, seq: 1, v, sign })\` / \`get(hash)\`, Ed25519 signing and
  \`verify\` from \`node:crypto\` (public key objects cached). "Nodes / put" is the count of nodes that accepted the put.
- **Found** = the get returned a value for the key; **verified** = that value is byte for byte the one put (and, for
  mutable records, seq 1 under the right key). Each library also checks hashes and signatures itself.
- Latency is the wall time of each call, p50/p95/p99 nearest-rank; a failed call counts with its time. Datagrams
  are every datagram the process sent during the phase, divided by the number of calls; CPU ms is the process's
  CPU time (user + system) during the phase over the number of calls: with the whole network in one process, the
  work all nodes did for one call, and steadier than latency on a shared machine. Each implementation also
  keeps its own shortcuts: a get answered from the asking node's own store (Weft, and bittorrent-dht for immutable
  values) sends nothing.
- **Target:** Weft's p50 for each kind and operation at most half of the best peer's p50 for the same one, and
  every Weft get found and verified.
- **Noise and profiles.** With every node in one process, latency is mostly CPU time, and it moves by 20–50 % when
  something else runs on the machine; the CPU columns move less. \`node dist/bench/peers/run-dht.js weft 200 200 1
  --profile=DIR\` writes a CPU profile of each timed phase, and \`node dist/bench/lib/profile-summary.js FILE\` sums
  one up by file and function.

${m.date} · commit ${m.commit} · Node ${m.node} · ${m.cpu} (${m.cores} cores)${p.quick ? ' · **quick run**' : ''}

### Weft against the best peer (p50)

${dhtComparisonTable(d.dht)}

### Immutable values, N = ${p.nodes}

${dhtTable(d.dht, 'immutable')}

### Mutable records, N = ${p.nodes}

${dhtTable(d.dht, 'mutable')}
`
}
