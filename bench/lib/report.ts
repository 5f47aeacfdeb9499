// Turns one benchmark run into target verdicts, console tables and docs/benchmarks.md.
import type { LookupFigures } from './measure.js'
import type { RoundTripRun } from './spawn.js'

export const WEFT = 'weft'
export const PEERS = ['hyperdht', 'bittorrent-dht'] as const
export const IMPL_ORDER = [WEFT, ...PEERS]

/** A lookup measurement, or the error that stopped it. */
export type LookupEntry = LookupFigures | { impl: string; nodes: number; error: string }

export function isFigures(e: LookupEntry | undefined): e is LookupFigures {
  return e !== undefined && !('error' in e)
}

export interface RoundTripSummary {
  window: number
  /** Median round trips per second over the repeats. */
  dgram: number
  weft: number
  ratio: number
}

export interface Verdict {
  target: string
  requirement: string
  /** One row per N (lookup targets) or per window (round trips). */
  rows: { at: string; weft: number; reference: number; referenceName: string; ratio: number; pass: boolean }[]
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
  rtt: { durationMs: number; windows: number[]; repeats: number; pinnedCpu: number | null }
}

export interface BenchResults {
  machine: MachineInfo
  params: RunParams
  lookup: LookupEntry[]
  roundTrips: { samples: (RoundTripRun | { impl: string; window: number; error: string })[]; summary: RoundTripSummary[] }
  verdicts: Verdict[]
  elapsedMs: number
}

const LOOKUP_TARGETS: { key: 'p50Ms' | 'datagramsPerLookup' | 'rssKiBPerNode'; target: string }[] = [
  { key: 'p50Ms', target: 'p50 lookup latency' },
  { key: 'datagramsPerLookup', target: 'datagrams per lookup' },
  { key: 'rssKiBPerNode', target: 'memory (RSS) per node' }
]

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

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
      const peers = lookup.filter((e): e is LookupFigures => isFigures(e) && e.impl !== WEFT && e.nodes === n)
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
  return out
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
  return table(
    ['Requests in flight', 'Bare node:dgram (round trips/s)', 'Weft RPC ping (round trips/s)', 'Weft / bare'],
    summary.map((s) => [String(s.window), fmt(s.dgram, 0), fmt(s.weft, 0), fmt(s.ratio, 2)]),
    ['r', 'r', 'r', 'r']
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
        : v.rows.map((r) => `${r.at}: ${fmt(r.ratio, 2)} (${r.referenceName})`).join('; '),
      v.rows.length === 0 ? 'n/a' : v.pass ? 'PASS' : 'MISS'
    ]),
    ['l', 'l', 'l', 'l']
  )
}

export function renderMarkdown(r: BenchResults): string {
  const p = r.params
  const m = r.machine
  const pin = p.rtt.pinnedCpu === null ? 'not pinned (taskset unavailable)' : `pinned to CPU ${p.rtt.pinnedCpu} with \`taskset\``
  const parts: string[] = []
  parts.push(`# Benchmarks

<!-- Generated by \`npm run bench\` (bench/lookup.ts). Edits here are overwritten on the next run. -->

\`npm run bench\` compares Weft's lookups with [hyperdht](https://github.com/holepunchto/hyperdht) and
[bittorrent-dht](https://github.com/webtorrent/bittorrent-dht) in the same run, on the same machine, all on loopback,
and Weft's RPC layer with a bare \`node:dgram\` ping-pong. Raw figures: \`bench/results/lookup.json\`.

\`\`\`sh
npm run bench                 # N = ${p.nodes.join(', ')}, ${p.lookups} lookups each, a few minutes
npm run bench -- --quick      # fewer lookups and shorter round-trip runs, for a smoke test
\`\`\`

## How it is measured

- **Networks.** Each implementation at each N runs in a fresh child process (\`node --expose-gc\`) holding all N nodes,
  each with its own UDP socket on 127.0.0.1. Weft: \`createTestnet\` (node 0 starts the network, the others join
  through it). hyperdht: its \`hyperdht/testnet\` helper. bittorrent-dht: N instances, node 0 with \`bootstrap: false\`,
  every other node bootstrapped to node 0 and two random earlier nodes. No implementation is given a public bootstrap
  node, and every send to a non-loopback address is blocked and fails the run.
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
  ${fmt(p.rtt.durationMs / 1000, 1)} s; the figure is the median of ${p.rtt.repeats} run(s), bare and Weft alternating.
  Bare: a \`node:dgram\` echo of a 40-byte datagram matched by a counter. Weft: \`client.ping(server.address)\` between
  two Weft nodes (the full RPC: codec, transaction ids, retransmission timers, round-trip tokens, rate limits; the
  server's rate limit is raised out of the way).
- **Targets.** For each N, Weft's p50 latency, datagrams per lookup and memory per node must each be at most half of
  the best (lowest) peer's figure for that metric in the same run; RPC round trips must reach at least half the bare
  \`node:dgram\` rate at every window. A target is PASS only if it holds at every N (every window).
- **Noise.** All nodes of a run share one process, so lookup latency is mostly CPU time, and on a small or shared
  machine latency and round-trip figures move by 20–30 % from run to run; datagram counts are stable.

## Results

${m.date} · commit ${m.commit} · Node ${m.node} · ${m.cpu} (${m.cores} cores, ${fmt(m.memMiB / 1024, 1)} GiB) · ${m.platform} ${m.release}${p.quick ? ' · **quick run**' : ''}
`)
  parts.push('### Targets\n\n' + verdictTable(r.verdicts) + '\n')
  for (const n of p.nodes) parts.push(`### Lookups, N = ${n}\n\n` + lookupTable(r.lookup, n) + '\n')
  parts.push('### RPC round trips (one core)\n\n' + roundTripTable(r.roundTrips.summary) + '\n')
  return parts.join('\n')
}
