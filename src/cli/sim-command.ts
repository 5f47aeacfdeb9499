// `weft sim`: the real protocol code on a simulated network of up to millions of nodes.
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { totalmem } from 'node:os'
import { getHeapStatistics } from 'node:v8'
import { Option, InvalidArgumentError, type Command } from 'commander'
import { UNSTRUCTURED_LIMITS } from '../gossip/unstructured.js'
import { UnstructuredNetwork, type UnstructuredResult } from '../gossip/unstructured-sim.js'
import { defaultKademliaOptions } from '../overlay/kademlia/kademlia.js'
import { MAX_DISJOINT_PATHS } from '../overlay/lookup.js'
import { topologyNames } from '../overlay/registry.js'
import { parseShape } from '../overlay/polyring/sim.js'
import { WeftError } from '../errors.js'
import { latencyModels } from '../sim/latency.js'
import { plotLocation, plotReports } from '../sim/plot.js'
import type { SimReport } from '../sim/report.js'
import { runSimulations } from '../sim/run.js'
import { runPolyring } from '../sim/polyring-run.js'
import { MAX_FLOOD_ENTRIES } from '../sim/broadcast-cost.js'
import { MAX_SIM_NODES } from '../sim/simulation.js'
import { table } from './format.js'
import { progress, type Progress } from './progress.js'

const sizes = (v: string): number[] => v.split(',').map((s) => {
  const n = Number(s.trim())
  if (!Number.isInteger(n) || n < 2 || n > MAX_SIM_NODES) throw new InvalidArgumentError(`each size must be a whole number from 2 to ${MAX_SIM_NODES} (1e6 is fine), got ${JSON.stringify(s)}`)
  return n
})
/** What --compare and --topology take: the registry's topologies and the polyring (src/sim/polyring-run.ts). */
const simTopologies = [...topologyNames, 'polyring']
const topologyList = (v: string): string[] => v.split(',').map((s) => {
  const t = s.trim()
  if (!simTopologies.includes(t)) throw new InvalidArgumentError(`unknown topology ${JSON.stringify(t)} (known: ${simTopologies.join(', ')})`)
  return t
})
const shapeList = (v: string): number[][] => v.split(',').map((s) => {
  try { return parseShape(s.trim()) } catch (err) { throw new InvalidArgumentError((err as Error).message) }
})
const digitBits = (v: string): number[] => v.split(',').map((s) => {
  const n = Number(s.trim())
  if (!Number.isInteger(n) || n < 1 || n > 8) throw new InvalidArgumentError(`--b takes bits per digit from 1 to 8, got ${JSON.stringify(s)}`)
  return n
})
const fraction = (name: string) => (v: string): number => {
  const n = Number(v)
  if (!(n >= 0 && n < 1)) throw new InvalidArgumentError(`${name} must be a fraction at least 0 and below 1`)
  return n
}
const count = (name: string, min: number, max: number) => (v: string): number => {
  const n = Number(v)
  if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}`)
  return n
}
const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000 }
export const duration = (v: string): number => {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|min|h|d)$/.exec(v.trim())
  if (!m) throw new InvalidArgumentError(`expected a duration such as 30m, 1h or 90s, got ${JSON.stringify(v)}`)
  return Number(m[1]) * UNITS[m[2]]
}

/** A million nodes need several GiB of heap: re-run this command in a Node with room for it. */
function ensureHeap(): boolean {
  const wantMb = Math.floor((totalmem() / 1048576) * 0.75)
  if (process.env.WEFT_SIM_CHILD || getHeapStatistics().heap_size_limit / 1048576 >= wantMb * 0.9) return false
  const r = spawnSync(process.execPath, [`--max-old-space-size=${wantMb}`, '--expose-gc', ...process.argv.slice(1)], { stdio: 'inherit', env: { ...process.env, WEFT_SIM_CHILD: '1' } })
  process.exit(r.status ?? 1)
}

export function addSimCommand(program: Command): void {
  program.command('sim')
    .description('run the real protocol code on a simulated network (virtual time, seeded) and report lookups against an oracle')
    .addOption(new Option('--topology <name>', 'overlay to simulate (unstructured: flooding or random walks on a random graph, see --search)').choices([...simTopologies, 'unstructured']).default('kademlia'))
    .option('--nodes <n[,n...]>', 'network size, or several sizes (1e3,1e4,1e5,1e6)', sizes, [1000])
    .option('--lookups <n>', 'lookups to measure, each from a random node to a random key', count('lookups', 1, 10_000_000), 1000)
    .option('--seed <s>', 'seed: the same seed and arguments give the same simulated results', '1')
    .addOption(new Option('--latency <model>', 'link model: geo (peers over the globe) or uniform (10-50 ms)').choices([...latencyModels]).default('geo'))
    .option('--loss <p>', 'share of datagrams lost', fraction('--loss'), 0)
    .option('--churn <median>', 'churn: median session length (e.g. 1h); a new node replaces each one that fails', duration)
    .addOption(new Option('--churn-distribution <d>', 'session lengths').choices(['exponential', 'weibull']).default('exponential'))
    .option('--adversaries <fraction>', 'share of nodes that misbehave', fraction('--adversaries'), 0)
    .addOption(new Option('--adversary-mode <mode>', 'what they do: drop requests, misroute (farthest contacts), collude (name only each other)').choices(['drop', 'misroute', 'collude']).default('drop'))
    .option('--nat <fraction>', 'share of nodes behind a NAT that takes only replies', fraction('--nat'), 0)
    .addOption(new Option('--build <how>', 'joins: every node joins by the protocol; oracle: tables filled from the true node set; auto: joins up to 20,000 nodes').choices(['auto', 'joins', 'oracle']).default('auto'))
    .option('--fail <fraction>', 'a massive failure: this share of nodes crash at once after the build (before --warmup)', fraction('--fail'), 0)
    .option('--warmup <duration>', 'virtual time of protocol upkeep between the build and the lookups (e.g. 10m)', duration, 0)
    .option('--refresh <duration>', 'refresh a bucket after this long without a lookup in it (default 15m, as BEP 5; the Kademlia paper says 1h)', duration)
    .option('--compare <topologies>', 'run each of these topologies (e.g. kademlia,chord,pastry,polyring) at every size: one table, one plot; also measures one broadcast on each', topologyList)
    .option('--shape <AxBxC[,...]>', 'polyring: ring sizes per level (centre first), one run per shape instead of --nodes (default: a balanced 3-level shape of about --nodes peers, docs/polyring.md)', shapeList)
    .option('--broadcast', 'also measure one broadcast from a random node (uniring: flooding over the routing tables; always on with --compare and for the polyring)')
    .option('--b <bits[,bits...]>', 'Pastry and Tapestry: bits per digit, 1 to 8 (default 4); several: one run each', digitBits)
    .option('--objects <n>', 'object location: publish this many objects, then ask --lookups times where one is (Tapestry: its pointers; others: DHT provider records)', count('objects', 0, 1_000_000), 0)
    .option('--servers <n>', 'servers publishing each object', count('servers', 1, 64), 3)
    .option('--hold <duration>', 'virtual time between publishing the objects and asking for them (with --churn: servers and routes change meanwhile)', duration, 0)
    .option('--k <n>', 'bucket size', count('k', 1, 25), 20)
    .option('--alpha <n>', 'requests in flight per lookup', count('alpha', 1, 16), 3)
    .option('--disjoint <d>', `kademlia: S/Kademlia lookups over d disjoint paths, each with alpha/d requests in flight (default: the topology's, ${defaultKademliaOptions.disjoint})`, count('disjoint', 1, MAX_DISJOINT_PATHS))
    .option('--concurrency <n>', 'lookups in flight at once', count('concurrency', 1, 10_000), 32)
    .option('--out <file>', 'write the simulated results as JSON (byte-identical for the same seed); wall time and memory go to <file>.machine.json')
    .addOption(new Option('--search <how>', 'unstructured: flood (Gnutella: every neighbour, once per query) or walk (random walkers)').choices(['flood', 'walk']).default('flood'))
    .option('--ttl <n>', 'unstructured: hops a query may travel (default 7 flooding, 1024 walking)', count('ttl', 1, UNSTRUCTURED_LIMITS.maxTtl))
    .option('--walkers <n>', 'unstructured: random walkers per search', count('walkers', 1, UNSTRUCTURED_LIMITS.maxWalkers), 16)
    .option('--replicas <r>', 'unstructured: peers holding the item searched for: a count, or a share of the nodes below 1 (e.g. 0.001)', replicaCount, 1)
    .option('--degree <n>', 'unstructured: neighbours per peer (a random graph, regular-ish)', count('degree', 1, 64), 5)
    .option('--plot <file>', 'write an SVG chart of hops and latency (and hops against size for several sizes); with --objects also <file>.location.svg (stretch)')
    .action(async (o) => {
      if (ensureHeap()) return
      if (o.topology === 'unstructured' && !o.compare) return simUnstructured(o)
      let bar: Progress | null = null
      let barKey = ''
      const runs: { topology: string; b?: number }[] = []
      for (const topology of (o.compare as string[] | undefined) ?? [o.topology as string]) {
        if ((topology === 'pastry' || topology === 'tapestry') && o.b) for (const b of o.b as number[]) runs.push({ topology, b })
        else runs.push({ topology })
      }
      if (runs.some((r) => r.topology === 'polyring')) checkPolyringOptions(o)
      else if (o.shape) throw new WeftError('ERR_BAD_ARGUMENT', '--shape needs the polyring (--topology polyring or polyring in --compare)')
      const reports: SimReport[] = []
      const onProgress = (label: string) => (size: number, phase: string, done: number, total: number, eps: number) => {
        const key = `${label}${size}:${phase}`
        if (key !== barKey) { bar?.stop(); bar = progress(`${label}${size.toLocaleString('en')} nodes: ${phase}`, total); barKey = key }
        bar!.update(done, eps > 0 ? `${Math.round(eps).toLocaleString('en')} events/s` : '')
      }
      try {
        for (const run of runs) {
          const label = runs.length > 1 ? `${run.topology}${run.b ? ` b=${run.b}` : ''}, ` : ''
          if (run.topology === 'polyring') {
            reports.push(...await runPolyring({ sizes: o.nodes, shapes: o.shape, lookups: o.lookups, seed: String(o.seed), concurrency: o.concurrency, onProgress: onProgress(label) }))
            continue
          }
          reports.push(...await runSimulations({
            topology: run.topology, b: run.b, sizes: o.nodes, lookups: o.lookups, seed: String(o.seed), latency: o.latency, loss: o.loss,
            churnMedianMs: o.churn ?? null, churnDistribution: o.churnDistribution, adversaries: o.adversaries, adversaryMode: o.adversaryMode,
            nat: o.nat, build: o.build, warmupMs: o.warmup, failAtOnce: o.fail, concurrency: o.concurrency, joinConcurrency: 16, k: o.k, alpha: o.alpha, disjoint: o.disjoint, refreshMs: o.refresh,
            objects: o.objects, servers: o.servers, holdMs: o.hold, broadcast: !!(o.compare || o.broadcast),
            onProgress: onProgress(label),
          }))
        }
      } finally {
        (bar as Progress | null)?.stop()
      }
      console.log(table(['topology', 'nodes', 'build', 'success', 'recall', 'hops mean', 'p50', 'p95', 'max', 'theory', 'routed', 'route hops', 'latency p50', 'p95', 'msgs/lookup', 'table', 'bytes/node', 'wall', 'bcast msgs/N', 'bcast reached', 'bcast time'],
        reports.map(({ simulated: s, machine: m }) => [
          s.b ? `${s.topology} b=${s.b}` : s.topology, s.nodes.toLocaleString('en'), s.build, `${(s.successRate * 100).toFixed(2)} %`, s.recall.toFixed(3), s.hops.mean.toFixed(2), s.hops.p50, s.hops.p95, s.hops.max,
          s.theoreticalHops.toFixed(2), `${(s.routing.successRate * 100).toFixed(1)} %`, s.routing.hops.mean.toFixed(2), `${s.latencyMs.p50.toFixed(0)} ms`, `${s.latencyMs.p95.toFixed(0)} ms`, s.messagesPerLookup.toFixed(1), s.tableSize.mean.toFixed(0),
          m.bytesPerNode.toLocaleString('en'), `${(m.wallMs / 1000).toFixed(1)} s`,
          ...(s.broadcast ? [s.broadcast.messagesPerNode.toFixed(2), `${(s.broadcast.reachedShare * 100).toFixed(2)} %`, `${s.broadcast.completionMs.toFixed(0)} ms`] : ['-', '-', '-']),
        ])))
      const located = reports.filter((r) => r.simulated.location)
      if (located.length > 0) {
        console.log(table(['topology', 'nodes', 'located via', 'objects × servers', 'published', 'found', 'stretch mean', 'p50', 'p95', 'hops mean', 'latency p50', 'p95'],
          located.map(({ simulated: s }) => {
            const l = s.location!
            return [s.b ? `${s.topology} b=${s.b}` : s.topology, s.nodes.toLocaleString('en'), l.via, `${l.objects} × ${l.serversPerObject}`, `${(l.publishSuccessRate * 100).toFixed(2)} %`, `${(l.successRate * 100).toFixed(2)} %`,
              l.stretch.mean.toFixed(2), l.stretch.p50.toFixed(2), l.stretch.p95.toFixed(2), l.hops ? l.hops.mean.toFixed(2) : '-', `${l.latencyMs.p50.toFixed(0)} ms`, `${l.latencyMs.p95.toFixed(0)} ms`]
          })))
      }
      for (const r of reports) {
        const p = r.simulated.polyring
        if (p) console.log(`polyring ${r.simulated.nodes.toLocaleString('en')}: shape ${p.shape.join('x')} (depth ${p.depth}); routed messages over ${p.hopBound} hops: ${p.overBound}, to a wrong peer: ${p.wrong}, lost: ${p.lost}`)
      }
      if (reports.some((r) => r.simulated.polyring)) console.log(`polyring: msgs/lookup = messages per routed message (recursive: one per hop); latency on its own link model (${reports.find((r) => r.simulated.polyring)!.simulated.latencyModel}), not --latency`)
      const methods = [...new Set(reports.flatMap((r) => r.simulated.broadcast ? [r.simulated.broadcast.method] : []))]
      if (methods.length > 0) console.log(`broadcast (one, from a random node; time in virtual ms, 1 ms per copy sent): ${methods.join('; ')}`)
      if (reports.some((r) => r.simulated.broadcast === null)) console.log(`broadcast '-': flooding not measured, the tables hold over ${MAX_FLOOD_ENTRIES.toLocaleString('en')} entries in all`)
      console.log(`theory: ${[...new Set(reports.map((r) => r.simulated.theory))].join('; ')}; peak RSS ${(Math.max(...reports.map((r) => r.machine.peakRssBytes)) / 1073741824).toFixed(2)} GiB; seed ${o.seed}`)
      if (o.out) {
        writeFileSync(o.out, JSON.stringify(reports.length === 1 ? reports[0].simulated : reports.map((r) => r.simulated), null, 2) + '\n')
        writeFileSync(`${o.out}.machine.json`, JSON.stringify(reports.map((r) => ({ nodes: r.simulated.nodes, ...r.machine })), null, 2) + '\n')
        console.log(`wrote ${o.out} and ${o.out}.machine.json`)
      }
      if (o.plot) {
        writeFileSync(o.plot, await plotReports(reports))
        console.log(`wrote ${o.plot}`)
        if (located.length > 0) {
          const file = String(o.plot).replace(/(\.svg)?$/, '.location.svg')
          writeFileSync(file, await plotLocation(located))
          console.log(`wrote ${file}`)
        }
      }
    })
}

const replicaCount = (v: string): number => {
  const n = Number(v)
  if (!(n > 0) || (n >= 1 && !Number.isInteger(n))) throw new InvalidArgumentError('--replicas must be a whole number of at least 1, or a share of the nodes above 0 and below 1')
  return n
}

/** `weft sim --topology unstructured`: searches for a rare item by flooding or random walks (src/gossip/unstructured-sim.ts). */
function simUnstructured(o: Record<string, unknown>): void {
  const mode = o.search as 'flood' | 'walk'
  const ttl = (o.ttl as number | undefined) ?? (mode === 'flood' ? 7 : 1024)
  if (o.plot) console.error('--plot: no chart for one unstructured setting (npm run bench:unstructured draws docs/unstructured.svg)')
  const rows: UnstructuredResult[] = [], walls: number[] = []
  for (const nodes of o.nodes as number[]) {
    const started = Date.now()
    const r = o.replicas as number
    const replicas = r < 1 ? Math.max(1, Math.round(r * nodes)) : r
    if (replicas >= nodes) throw new InvalidArgumentError(`--replicas must be below the number of nodes (${nodes})`)
    const net = new UnstructuredNetwork({ nodes, seed: String(o.seed), degree: o.degree as number })
    const bar = progress(`${nodes.toLocaleString('en')} nodes: searching`, o.lookups as number)
    try {
      rows.push(net.run({ mode, ttl, walkers: o.walkers as number, replicas, searches: o.lookups as number, onProgress: (d) => bar.update(d) }))
    } finally { bar.stop() }
    walls.push(Date.now() - started)
  }
  console.log(table(['search', 'nodes', 'degree', 'replicas', 'searches', 'success', 'msgs/search', 'queries', 'hits', 'hops mean', 'p95', 'reached', 'wall'],
    rows.map((s, i) => [s.method, s.nodes.toLocaleString('en'), s.degree.toFixed(2), s.replicas, s.searches, `${(s.successRate * 100).toFixed(2)} %`, s.messagesPerSearch.toFixed(1),
      s.queryMessagesPerSearch.toFixed(1), s.hitMessagesPerSearch.toFixed(1), s.hops.mean.toFixed(2), s.hops.p95, s.mode === 'flood' ? s.reachedPerSearch.toFixed(0) : '-', `${(walls[i] / 1000).toFixed(1)} s`])))
  console.log(`unstructured: ${mode === 'flood' ? 'flooding with a TTL, once per query id' : 'random walkers with a TTL, no checking back'}; seed ${o.seed}`)
  if (o.out) {
    writeFileSync(o.out as string, JSON.stringify(rows.length === 1 ? rows[0] : rows, null, 2) + '\n')
    writeFileSync(`${o.out}.machine.json`, JSON.stringify(rows.map((r, i) => ({ nodes: r.nodes, wallMs: walls[i] })), null, 2) + '\n')
    console.log(`wrote ${o.out} and ${o.out}.machine.json`)
  }
}

/** The polyring simulator (StaticPolyring) has a fixed shape: no churn, loss, NAT, adversaries, failures or objects. */
function checkPolyringOptions(o: Record<string, unknown>): void {
  const unsupported: [string, boolean][] = [
    ['--churn', o.churn !== undefined], ['--loss', (o.loss as number) > 0], ['--adversaries', (o.adversaries as number) > 0], ['--nat', (o.nat as number) > 0],
    ['--fail', (o.fail as number) > 0], ['--warmup', (o.warmup as number) > 0], ['--objects', (o.objects as number) > 0],
  ]
  const bad = unsupported.filter(([, on]) => on).map(([name]) => name)
  if (bad.length > 0) throw new WeftError('ERR_BAD_ARGUMENT', `${bad.join(', ')}: not modelled for the polyring (a static shape, no loss or churn); drop polyring from the run or the option`)
}
