// An eclipse attack on one victim's Kademlia routing table (issue 10, must-show 2). The table is
// the real RoutingTable with the real admission rules; around it, a seeded model of the network:
//
// - honest nodes with random ids at random public IPv4 addresses; the victim's table starts as a
//   join and refreshes would leave it (every honest node observed once, in random order); then
//   each round (an hour) a share of them leaves and as many new ones join, a sample of them
//   contact the victim, and the victim's lookups notice the contacts that left (two failures);
// - attackers who spend a budget of key generations on ids and keep, per bucket of the victim,
//   up to `perBucket` of them; they run from a few /24 subnets and all contact the victim every
//   round (so they are always the newest candidates when a slot frees up).
//
// The puzzle acts on the attacker's supply: each try solves it with probability 2^-bits, so a
// budget of T tries yields about T / 2^bits valid ids (`attackerIds` draws how many fall in each
// bucket from that binomial law instead of making 2^40 keys; test/eclipse.test.ts checks the
// draw against real key generation at a small budget). Honest ids are taken as solved (each
// honest node pays 2^bits tries once). A table admits only valid ids (unit-tested in
// test/puzzle.test.ts); here no invalid id is ever offered, so the puzzle check is not repeated.
import { randomIdWithPrefix, ID_BITS, type NodeId } from '../identity/node-id.js'
import { RoutingTable } from '../overlay/kademlia/routing-table.js'
import { addressPrefixes, defaultDiversity, type DiversityOptions } from '../overlay/kademlia/diversity.js'
import { SeededRandom } from '../runtime/prng.js'
import { WeftError } from '../errors.js'

export type Defence = 'none' | 'puzzle' | 'diversity' | 'both'
export const defences: Defence[] = ['none', 'puzzle', 'diversity', 'both']

export interface EclipseOptions {
  seed: string
  /** Honest nodes in the network. */
  honest: number
  /** Bucket size (and the victim's "k nearest" that matter most). */
  k: number
  /** Key generations the attacker spends on ids. */
  budget: number
  /** The network's puzzle difficulty where the puzzle is on. */
  puzzleBits: number
  /** /24 subnets the attacker runs from. */
  subnets: number
  /** Attacker ids kept (and run) per bucket of the victim. */
  perBucket: number
  /** Rounds of one hour after the attackers arrive. */
  rounds: number
  /** Share of honest nodes that leave each round (as many new ones join). */
  churn: number
  /** Honest nodes that contact the victim each round. */
  honestContacts: number
  /** Limits where diversity is on (the exemption of private addresses makes no difference here: all are public). */
  diversity: DiversityOptions
}

export const defaultEclipseOptions: EclipseOptions = {
  seed: '1', honest: 10_000, k: 20, budget: 2 ** 20, puzzleBits: 16, subnets: 3, perBucket: 40,
  rounds: 24, churn: 0.1, honestContacts: 100, diversity: { ...defaultDiversity, exemptPrivate: false },
}

/** Bounds on one run (a bench may sweep many). */
export const MAX_ECLIPSE_HONEST = 1_000_000
export const MAX_ECLIPSE_ROUNDS = 10_000
const ROUND_MS = 3600_000
const PORT = 4000

export interface EclipseResult {
  defence: Defence
  budget: number
  /** Attacker ids that solve the puzzle (all of them without it). */
  validIds: number
  /** Attacker ids run (at most perBucket per bucket). */
  attackerNodes: number
  /** Deepest bucket of the victim an attacker id falls in. */
  deepestAttackerBucket: number
  table: { size: number; attackers: number; share: number }
  nearest: { k: number; attackers: number; share: number }
  /** Contacts the table kept out by the diversity limit (attempts, honest and attacker). */
  refusedDiversity: number
}

/** A binomial draw (exact for small n, Poisson or normal where those approximations are tight). */
export function binomial(n: number, p: number, random: SeededRandom): number {
  if (n <= 0 || p <= 0) return 0
  if (p >= 1) return n
  if (n <= 64) {
    let x = 0
    for (let i = 0; i < n; i++) if (random.float() < p) x++
    return x
  }
  const mean = n * p
  if (mean < 30) return Math.min(n, poisson(mean, random))
  if (n * (1 - p) < 30) return n - Math.min(n, poisson(n * (1 - p), random))
  const sd = Math.sqrt(mean * (1 - p))
  const u = Math.max(random.float(), 1e-12), v = random.float()
  const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)
  return Math.min(n, Math.max(0, Math.round(mean + sd * z)))
}

function poisson(mean: number, random: SeededRandom): number {
  const limit = Math.exp(-mean)
  let k = 0, p = random.float()
  while (p > limit) { k++; p *= random.float() }
  return k
}

/**
 * The ids an attacker gets from `budget` tries at `bits` of puzzle, up to `perBucket` in each
 * bucket of the victim. Of the valid ids not in buckets 0..b-1, each lies in bucket b (shares
 * exactly b bits with the victim) with probability 1/2: so the counts are drawn bucket by bucket.
 */
export function attackerIds(victim: NodeId, budget: number, bits: number, perBucket: number, random: SeededRandom): { ids: NodeId[]; valid: number } {
  const valid = binomial(budget, 2 ** -bits, random)
  const ids: NodeId[] = []
  let left = valid
  for (let b = 0; b < ID_BITS - 1 && left > 0; b++) {
    const here = binomial(left, 0.5, random)
    left -= here
    for (let j = 0; j < Math.min(here, perBucket); j++) ids.push(randomIdWithPrefix(victim, b, random.bytes(32)))
  }
  return { ids, valid }
}

/** A random public IPv4 address (not private, loopback, CGNAT or multicast). */
function publicHost(random: SeededRandom, out: Float64Array): string {
  for (;;) {
    const v = random.u32()
    const a = v >>> 24
    if (a === 0 || a >= 224) continue
    const host = `${a}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`
    if (addressPrefixes(`${host}:1`, true, out)) return host
  }
}

/** One run: the victim's table after the attack, under one defence. */
export function runEclipse(options: Partial<EclipseOptions>, defence: Defence): EclipseResult {
  const o = { ...defaultEclipseOptions, ...options }
  if (!Number.isInteger(o.honest) || o.honest < o.k || o.honest > MAX_ECLIPSE_HONEST) throw new WeftError('ERR_BAD_ARGUMENT', `honest must be between k and ${MAX_ECLIPSE_HONEST}`)
  if (!Number.isInteger(o.rounds) || o.rounds < 0 || o.rounds > MAX_ECLIPSE_ROUNDS) throw new WeftError('ERR_BAD_ARGUMENT', `rounds must be between 0 and ${MAX_ECLIPSE_ROUNDS}`)
  if (!(o.budget >= 0) || !(o.subnets >= 1) || !(o.churn >= 0 && o.churn <= 1)) throw new WeftError('ERR_BAD_ARGUMENT', 'budget >= 0, subnets >= 1 and churn in [0, 1] please')
  const puzzle = defence === 'puzzle' || defence === 'both'
  const diverse = defence === 'diversity' || defence === 'both'
  // The same honest network and victim under every defence; the attacker's draw depends on the budget.
  const random = new SeededRandom(`${o.seed}:eclipse`)
  const scratch = new Float64Array(2)
  const victim = random.bytes(32)
  const table = new RoutingTable(victim, o.k)
  table.admit({ diversity: diverse ? o.diversity : null })
  const alive = new Set<string>()
  table.probe = (c, done) => done(alive.has(c.address))

  // Honest nodes: slot i holds the current node there (a new one replaces one that leaves).
  const honestIds = new Uint8Array(o.honest * 32)
  const honestAddresses: string[] = []
  const honestRandom = random.fork('honest')
  const newHonest = (i: number): void => {
    honestIds.set(honestRandom.bytes(32), i * 32)
    const address = `${publicHost(honestRandom, scratch)}:${PORT}`
    honestAddresses[i] = address
    alive.add(address)
  }
  for (let i = 0; i < o.honest; i++) newHonest(i)
  const honestId = (i: number): NodeId => honestIds.subarray(i * 32, i * 32 + 32)
  const order = Array.from({ length: o.honest }, (_, i) => i)
  shuffle(order, honestRandom)
  for (const i of order) table.observe(honestId(i), honestAddresses[i], 0)

  // Attackers: ids from the budget, addresses in a few /24s (many ports per host).
  const attackRandom = new SeededRandom(`${o.seed}:attack:${o.budget}`)
  const { ids, valid } = attackerIds(victim, o.budget, puzzle ? o.puzzleBits : 0, o.perBucket, attackRandom)
  const subnets = Array.from({ length: o.subnets }, () => publicHost(attackRandom, scratch).replace(/\.\d+$/, ''))
  const attackers = ids.map((id, i) => {
    const host = `${subnets[i % o.subnets]}.${1 + (Math.floor(i / o.subnets) % 254)}`
    const address = `${host}:${PORT + Math.floor(i / (o.subnets * 254))}`
    alive.add(address)
    return { id, address }
  })
  const attackerAddresses = new Set(attackers.map((a) => a.address))
  const trafficRandom = random.fork('traffic')
  for (let r = 1; r <= o.rounds; r++) {
    const now = r * ROUND_MS
    for (let i = 0; i < o.honest; i++) {
      if (trafficRandom.float() >= o.churn) continue
      alive.delete(honestAddresses[i])
      newHonest(i)
    }
    // The victim's lookups find out which contacts left (a contact leaves after two failures).
    for (const e of table.entries(now)) {
      if (alive.has(e.address)) continue
      table.failed(e.id, now)
      table.failed(e.id, now)
    }
    for (let j = 0; j < o.honestContacts; j++) {
      const i = trafficRandom.u32() % o.honest
      table.observe(honestId(i), honestAddresses[i], now)
    }
    for (const a of attackers) table.observe(a.id, a.address, now)
  }

  const entries = table.entries(o.rounds * ROUND_MS)
  const inTable = entries.filter((e) => attackerAddresses.has(e.address)).length
  const nearest = table.closest(victim, o.k)
  const inNearest = nearest.filter((c) => attackerAddresses.has(c.address)).length
  let deepest = -1
  for (const a of attackers) deepest = Math.max(deepest, table.bucketIndex(a.id))
  return {
    defence, budget: o.budget, validIds: valid, attackerNodes: attackers.length, deepestAttackerBucket: deepest,
    table: { size: entries.length, attackers: inTable, share: entries.length ? inTable / entries.length : 0 },
    nearest: { k: nearest.length, attackers: inNearest, share: nearest.length ? inNearest / nearest.length : 0 },
    refusedDiversity: table.refusedDiversity,
  }
}

function shuffle(a: number[], random: SeededRandom): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = random.u32() % (i + 1)
    const t = a[i]; a[i] = a[j]; a[j] = t
  }
}
