// `npm run netlab` (second part): 50 Weft nodes spread behind every kind of NAT in the lab
// (test/netlab/network.ts) run lookups, DHT puts and gets, and connects between themselves.
// Writes bench/results/netlab-network.json and the "network" section of docs/nat-traversal.md.
//
//   node dist/bench/netlab-network.js [--seed=6] [--lookups=4]
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { NatLab, netlabAvailable } from '../test/netlab/lab.js'
import { networkHosts, runNetwork, type Outcome } from '../test/netlab/network.js'
import { section, spliceSection } from './lib/doc-sections.js'
import { percentile } from './lib/stats.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const RESULTS = `${ROOT}bench/results/netlab-network.json`
const DOC = `${ROOT}docs/nat-traversal.md`

const arg = (name: string, def: number): number => {
  const a = process.argv.slice(2).find((x) => x.startsWith(`--${name}=`))
  const v = a === undefined ? def : Number(a.slice(name.length + 3))
  if (!Number.isInteger(v) || v < 1 || v > 1000) { console.error(`netlab-network: --${name} must be an integer from 1 to 1000`); process.exit(2) }
  return v
}
const seed = arg('seed', 6)
const lookupsPerNode = arg('lookups', 4)
const t0 = Date.now()
const log = (s: string): void => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${s}`)

async function main(): Promise<void> {
  const avail = await netlabAvailable()
  if (!avail.ok) { console.error(`netlab-network: ${avail.why}`); process.exit(1) }
  const hosts = networkHosts()
  const lab = await NatLab.create({ hosts })
  const onSignal = (): void => { void lab.close().finally(() => process.exit(130)) }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  log(`lab up (${lab.prefix}): ${hosts.length} hosts`)
  let r
  try {
    r = await runNetwork(lab, hosts, { seed, lookupsPerNode, log })
  } finally {
    await lab.close()
  }
  const summary = (xs: Outcome[]): { ok: number; of: number; p50Ms: number; p95Ms: number } => {
    const ms = xs.filter((x) => x.ok).map((x) => x.ms).sort((a, b) => a - b)
    return { ok: ms.length, of: xs.length, p50Ms: percentile(ms, 50), p95Ms: percentile(ms, 95) }
  }
  const paths: Record<string, number> = {}
  for (const c of r.connects) if (c.path) paths[c.path] = (paths[c.path] ?? 0) + 1
  const figures = {
    lookups: { ...summary(r.lookups), everyServer: r.exactLookups },
    puts: summary(r.puts),
    gets: summary(r.gets),
    connects: { ...summary(r.connects), paths },
  }
  const behind: Record<string, number> = {}
  for (const h of hosts) behind[h.nat] = (behind[h.nat] ?? 0) + 1
  mkdirSync(`${ROOT}bench/results`, { recursive: true })
  const json = {
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, kernel: os.release() },
    command: `npm run netlab (node dist/bench/netlab-network.js --seed=${seed} --lookups=${lookupsPerNode})`,
    seed, nodes: r.nodes, behind, natVerdicts: r.kinds, servers: r.servers, startS: r.startMs / 1000,
    ...figures,
    errors: [...r.lookups, ...r.puts, ...r.gets, ...r.connects].filter((x) => !x.ok).map((x) => x.error).slice(0, 20),
  }
  writeFileSync(RESULTS, JSON.stringify(json, null, 2) + '\n')
  const pct = (s: { ok: number; of: number }): string => `${s.ok}/${s.of} (${((100 * s.ok) / s.of).toFixed(1)} %)`
  const ms = (s: { p50Ms: number; p95Ms: number }): string => `${s.p50Ms.toFixed(0)} / ${s.p95Ms.toFixed(0)}`
  const body = `## A network of 50 nodes behind NATs

\`npm run netlab\` also starts ${r.nodes} Weft nodes, one per lab host: ${Object.entries(behind).map(([k, n]) => `${n} ${k}`).join(', ')}
(of the cone and symmetric hosts, ${hosts.filter((h) => h.behind).length} share a NAT with another host). The open hosts are the bootstrap
nodes and relays; every other node runs the NAT check and takes a relay when it is private. The
NAT checks found ${Object.entries(r.kinds).map(([k, n]) => `${k} ${n}`).join(', ')} (open hosts are not checked: "unknown").
Then every node looks up ${lookupsPerNode} random ids, stores a value, reads another node's value and connects to
another node at the address that node publishes (its relayed address when it has one); ten nodes
work at a time. Seed ${seed}; started in ${(r.startMs / 1000).toFixed(1)} s; ${new Date().toISOString().slice(0, 10)}.

| | success | p50 / p95 ms |
|---|---|---|
| lookups (the target's owner first, servers in order) | ${pct(figures.lookups)} | ${ms(figures.lookups)} |
| puts (stored on at least one node) | ${pct(figures.puts)} | ${ms(figures.puts)} |
| gets (another node's value, read back exactly) | ${pct(figures.gets)} | ${ms(figures.gets)} |
| connects | ${pct(figures.connects)} | ${ms(figures.connects)} |

Lookups that returned every one of the ${r.servers} servers: ${r.exactLookups}/${r.lookups.length} (a server that answers past the
lookup's slow-node threshold is left out of the answer). Connect paths: ${Object.entries(paths).map(([k, n]) => `${k} ${n}`).join(', ')}
("plain": the target is an open host). Figures in \`bench/results/netlab-network.json\`; the same
network is a test (\`test/netlab-network.test.ts\`, run as root), which asserts 100 % of each.
`
  const old = (() => { try { return readFileSync(DOC, 'utf8') } catch { return '# NAT traversal\n' } })()
  writeFileSync(DOC, spliceSection(old, 'network', section('network', body)))
  log(`wrote docs/nat-traversal.md (network section) and bench/results/netlab-network.json`)
  console.log(JSON.stringify(figures))
}

main().catch((err) => { console.error(`netlab-network: ${(err as Error).stack ?? err}`); process.exit(1) })
