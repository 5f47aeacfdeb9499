// Issue 6, must-show 4: a network of 50 Weft nodes spread behind every kind of NAT in the lab
// (test/netlab/network.ts) runs lookups, DHT puts and gets, and connects between its nodes, all
// of them successful. Needs root on Linux; skipped with the reason otherwise.
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { NatLab, netlabAvailable } from './netlab/lab.js'
import { networkHosts, runNetwork, type NetworkResult, type Outcome } from './netlab/network.js'

const avail = await netlabAvailable()
const SEED = Number(process.env.WEFT_SEED ?? 6)

describe('50 Weft nodes behind real Linux NATs', { skip: avail.ok ? false : avail.why, timeout: 240_000 }, () => {
  let lab: NatLab | undefined
  let result: NetworkResult

  before(async () => {
    const hosts = networkHosts()
    lab = await NatLab.create({ hosts })
    result = await runNetwork(lab, hosts, { seed: SEED, lookupsPerNode: 2 })
  })

  after(async () => { await lab?.close() })

  const failures = (xs: Outcome[]): string => xs.filter((x) => !x.ok).map((x) => x.error).slice(0, 5).join('\n')

  test('every node started, with the DHT served by the publicly reachable ones', (t) => {
    t.diagnostic(`seed ${SEED}: ${result.nodes} nodes in ${(result.startMs / 1000).toFixed(1)} s; NAT verdicts ${JSON.stringify(result.kinds)}; ${result.servers} servers`)
    assert.equal(result.nodes, 50)
    assert.ok(result.servers >= 6, `only ${result.servers} servers`)
  })

  test('every lookup finds the owner of its target first, then servers in distance order', (t) => {
    t.diagnostic(`${result.exactLookups}/${result.lookups.length} lookups returned every server`)
    assert.equal(result.lookups.filter((x) => x.ok).length, result.lookups.length, `seed ${SEED}:\n${failures(result.lookups)}`)
  })

  test('every put is stored and every value is read back by another node', () => {
    assert.equal(result.puts.filter((x) => x.ok).length, 50, `seed ${SEED}:\n${failures(result.puts)}`)
    assert.equal(result.gets.filter((x) => x.ok).length, 50, `seed ${SEED}:\n${failures(result.gets)}`)
  })

  test('every node connects to another at the address it publishes', (t) => {
    const paths: Record<string, number> = {}
    for (const c of result.connects) if (c.path) paths[c.path] = (paths[c.path] ?? 0) + 1
    t.diagnostic(`paths: ${JSON.stringify(paths)}`)
    assert.equal(result.connects.filter((x) => x.ok).length, 50, `seed ${SEED}:\n${failures(result.connects)}`)
  })
})
