// `npm run bench:sessions`: what encrypted sessions cost a lookup in time on the wire, measured in
// the simulator's virtual time, where the link latency is that of a real network and CPU is free.
// (`npm run bench` measures the other side: CPU on one core, loopback, where the wire is free.)
// For each N: the same seeded network twice, encrypt off then on, each in a MemoryWorld with the
// geo latency model (src/sim/latency.ts); 200 lookups from random nodes for random ids ("first
// contact": most peers asked have no session yet, so each new one costs a handshake), then the
// same 200 lookups again ("sessions up": every session they need is open). Writes
// bench/results/session-cost.json and the "session-cost" section of docs/benchmarks.md.
//
//   node dist/bench/session-cost.js [--nodes=200,1000] [--lookups=200] [--seed=1]
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createTestnet, measureLookups, type LookupBatch } from '../src/node/testnet.js'
import { MemoryWorld } from '../src/runtime/memory.js'
import { linkModel } from '../src/sim/latency.js'
import { section, spliceSection } from './lib/doc-sections.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const arg = (name: string, def: string): string => process.argv.slice(2).find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? def
const sizes = arg('nodes', '200,1000').split(',').map(Number)
const lookups = Number(arg('lookups', '200'))
const seed = Number(arg('seed', '1'))
if (sizes.some((n) => !Number.isInteger(n) || n < 20 || n > 5000) || !Number.isInteger(lookups) || lookups < 1 || !Number.isInteger(seed)) {
  console.error('session-cost: --nodes=N,... (20 to 5000), --lookups=N, --seed=N')
  process.exit(2)
}
const t0 = performance.now()
const log = (s: string): void => console.log(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${s}`)

interface Pass { p50Ms: number; p95Ms: number; messagesPerLookup: number; exact: number; failed: number; cpuMsPerLookup: number }
interface Run { nodes: number; encrypt: boolean; firstContact: Pass; sessionsUp: Pass; handshakes: number }

const pass = (b: LookupBatch, cpuMs: number): Pass => ({
  p50Ms: b.latencyMs.p50, p95Ms: b.latencyMs.p95, messagesPerLookup: b.messagesPerLookup, exact: b.exact / b.lookups, failed: b.failed, cpuMsPerLookup: cpuMs / b.lookups,
})

async function one(nodes: number, encrypt: boolean): Promise<Run> {
  const world = new MemoryWorld(`session-cost:${seed}`, linkModel('geo'))
  const net = await createTestnet({ nodes, seed: `session-cost:${seed}`, world, node: { encrypt } })
  try {
    const timed = async (): Promise<Pass> => {
      const c = performance.now()
      const b = await measureLookups(net, lookups, seed)
      return pass(b, performance.now() - c)
    }
    const firstContact = await timed()
    const sessionsUp = await timed() // the same seed: the same nodes look up the same ids
    const handshakes = net.nodes.reduce((s, n) => s + (n.status().sessions?.handshakesStarted ?? 0), 0)
    return { nodes, encrypt, firstContact, sessionsUp, handshakes }
  } finally {
    await net.close()
  }
}

const runs: Run[] = []
for (const n of sizes) {
  for (const encrypt of [false, true]) {
    const r = await one(n, encrypt)
    runs.push(r)
    log(`N=${n} ${encrypt ? 'encrypted' : 'plaintext'}: first contact p50 ${r.firstContact.p50Ms.toFixed(0)} ms, p95 ${r.firstContact.p95Ms.toFixed(0)} ms; sessions up p50 ${r.sessionsUp.p50Ms.toFixed(0)} ms, p95 ${r.sessionsUp.p95Ms.toFixed(0)} ms; ${r.firstContact.messagesPerLookup.toFixed(1)} / ${r.sessionsUp.messagesPerLookup.toFixed(1)} messages`)
  }
}

mkdirSync(`${ROOT}bench/results`, { recursive: true })
writeFileSync(`${ROOT}bench/results/session-cost.json`, JSON.stringify({ date: new Date().toISOString(), command: `node dist/bench/session-cost.js --nodes=${sizes.join(',')} --lookups=${lookups} --seed=${seed}`, latency: 'geo', runs }, null, 2) + '\n')
const pct = (a: number, b: number): string => `${a >= b ? '+' : ''}${((a / b - 1) * 100).toFixed(1)} %`
const rows = sizes.flatMap((n) => {
  const plain = runs.find((r) => r.nodes === n && !r.encrypt)!
  const enc = runs.find((r) => r.nodes === n && r.encrypt)!
  return (['firstContact', 'sessionsUp'] as const).map((k) => {
    const p = plain[k], e = enc[k]
    return `| ${n} | ${k === 'firstContact' ? 'first contact' : 'sessions up'} | ${e.p50Ms.toFixed(0)} / ${p.p50Ms.toFixed(0)} | ${pct(e.p50Ms, p.p50Ms)} | ${e.p95Ms.toFixed(0)} / ${p.p95Ms.toFixed(0)} | ${e.messagesPerLookup.toFixed(1)} / ${p.messagesPerLookup.toFixed(1)} | ${(e.exact * 100).toFixed(1)} / ${(p.exact * 100).toFixed(1)} % |`
  })
})
const body = `## Encrypted sessions on the wire (virtual time)

\`npm run bench:sessions\`: lookup latency with sessions against plaintext, in the simulator (the
geo latency model, so the wire costs what a real network's does and CPU costs nothing). Each N is
one seeded network built twice, encrypt on and off; ${lookups} lookups, then the same ${lookups} again with
every session they need already open. "First contact" pays a handshake for each peer it has no
session with: as a node id is its key, the request rides in a Noise IK message 1 and the answer
in message 2, so no round trip is added (with XX, before ids were keys: p50 +140 % at N=200).
CPU on one core is the other half of the cost: the encryption table of \`npm run bench\` (loopback).
${new Date().toISOString().slice(0, 10)}, seed ${seed}; figures in \`bench/results/session-cost.json\`.

| N | lookups | p50 ms (encrypted / plaintext) | p50 cost | p95 ms | messages / lookup | exact k closest |
|---:|:---|---:|---:|---:|---:|---:|
${rows.join('\n')}
`
const docPath = `${ROOT}docs/benchmarks.md`
writeFileSync(docPath, spliceSection(readFileSync(docPath, 'utf8'), 'session-cost', section('session-cost', body)))
log('wrote bench/results/session-cost.json and docs/benchmarks.md (session-cost section)')
