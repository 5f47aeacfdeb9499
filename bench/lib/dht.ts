// DHT put/get measurements: the figures one run reports, the timing loop the three
// implementations share, and the plan (who puts what, who gets it) drawn from one seeded PRNG.
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto'
import { datagramCounter, withTimeout } from './measure.js'
import { percentile, type Rng } from './stats.js'

export type DhtKind = 'immutable' | 'mutable'
export const DHT_KINDS: DhtKind[] = ['immutable', 'mutable']

export interface LatencyFigures {
  p50Ms: number
  p95Ms: number
  p99Ms: number
  meanMs: number
  maxMs: number
}

export interface DhtKindFigures {
  puts: number
  /** Puts that resolved without an error and reached at least one node. */
  putsOk: number
  /** Gets that returned a value for the key. */
  found: number
  /** Gets whose value is byte-for-byte the one put (and, for mutable records, seq 1). */
  verified: number
  put: LatencyFigures
  get: LatencyFigures
  /**
   * Mean nodes a put reached: confirmed stores for Weft and bittorrent-dht; for hyperdht the
   * closest nodes its commit phase wrote to (it does not report confirmations).
   */
  replicasPerPut: number
  datagramsPerPut: number
  datagramsPerGet: number
  /**
   * Process CPU time (user + system, all threads) during the phase over the number of calls.
   * With every node in one process this is the work the whole network did for one call; it
   * moves much less than latency when the machine is shared.
   */
  cpuMsPerPut: number
  cpuMsPerGet: number
}

export interface DhtFigures {
  impl: string
  nodes: number
  puts: number
  setupMs: number
  immutable: DhtKindFigures
  mutable: DhtKindFigures
}

/** One put: which node writes, the value, and which OTHER node reads it back. */
export interface PlannedPut {
  by: number
  from: number
  value: Buffer
  /** 32-byte seed of the mutable record's key pair (one key pair per put). */
  seed: Buffer
}

export const MIN_VALUE_BYTES = 100
/** bittorrent-dht refuses values of 1000 bytes or more; the others allow 1000. */
export const MAX_VALUE_BYTES = 999

/** The same plan for every implementation, given the same seed. */
export function planPuts(rng: Rng, nodes: number, puts: number): PlannedPut[] {
  const plan: PlannedPut[] = []
  for (let i = 0; i < puts; i++) {
    const by = rng.int(nodes)
    let from = rng.int(nodes - 1)
    if (from >= by) from++ // never the writer
    const value = rng.bytes(MIN_VALUE_BYTES + rng.int(MAX_VALUE_BYTES - MIN_VALUE_BYTES + 1))
    plan.push({ by, from, value, seed: rng.bytes(32) })
  }
  return plan
}

export interface PutOutcome {
  /** Nodes that took the record (see DhtKindFigures.replicasPerPut). */
  replicas: number
}
export interface GetOutcome {
  found: boolean
  verified: boolean
}

export interface OpRun<T> {
  latenciesMs: number[]
  outcomes: (T | null)[]
  datagrams: number
  cpuMs: number
}

/**
 * Runs `count` operations strictly one after another, timing each and counting every datagram
 * the process sends in the phase. A rejection or timeout is a failed operation (null outcome);
 * its time is still recorded. `signal` aborts on timeout so the implementation can cancel.
 */
export async function timeOps<T>(
  what: string,
  count: number,
  perOpTimeoutMs: number,
  op: (i: number, signal: AbortSignal) => Promise<T>
): Promise<OpRun<T>> {
  const c = datagramCounter()
  const latenciesMs: number[] = []
  const outcomes: (T | null)[] = []
  let errors = 0
  const cpu0 = process.cpuUsage()
  c.start()
  for (let i = 0; i < count; i++) {
    const ac = new AbortController()
    const t0 = performance.now()
    let out: T | null = null
    try {
      out = await withTimeout(op(i, ac.signal), perOpTimeoutMs, `${what} ${i}`)
    } catch (err) {
      ac.abort()
      if (++errors <= 5) process.stderr.write(`${what} ${i} failed: ${(err as Error).message}\n`)
    }
    latenciesMs.push(performance.now() - t0)
    outcomes.push(out)
  }
  const datagrams = c.stop()
  const cpu = process.cpuUsage(cpu0)
  if (errors > 5) process.stderr.write(`${what}: ${errors} failed in all\n`)
  return { latenciesMs, outcomes, datagrams, cpuMs: (cpu.user + cpu.system) / 1000 }
}

export function latency(ms: readonly number[]): LatencyFigures {
  const sorted = [...ms].sort((a, b) => a - b)
  return {
    p50Ms: percentile(sorted, 50),
    p95Ms: percentile(sorted, 95),
    p99Ms: percentile(sorted, 99),
    meanMs: sorted.length === 0 ? NaN : sorted.reduce((s, x) => s + x, 0) / sorted.length,
    maxMs: sorted.length === 0 ? NaN : sorted[sorted.length - 1]
  }
}

export function kindFigures(puts: OpRun<PutOutcome>, gets: OpRun<GetOutcome>): DhtKindFigures {
  const ok = puts.outcomes.filter((o): o is PutOutcome => o !== null && o.replicas > 0)
  const n = puts.outcomes.length
  const g = gets.outcomes.length
  return {
    puts: n,
    putsOk: ok.length,
    found: gets.outcomes.filter((o) => o?.found).length,
    verified: gets.outcomes.filter((o) => o?.verified).length,
    put: latency(puts.latenciesMs),
    get: latency(gets.latenciesMs),
    replicasPerPut: ok.length === 0 ? 0 : ok.reduce((s, o) => s + o.replicas, 0) / ok.length,
    datagramsPerPut: n === 0 ? 0 : puts.datagrams / n,
    datagramsPerGet: g === 0 ? 0 : gets.datagrams / g,
    cpuMsPerPut: n === 0 ? 0 : puts.cpuMs / n,
    cpuMsPerGet: g === 0 ? 0 : gets.cpuMs / g
  }
}

export const bytesEqual = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), b) === 0

// ---- Ed25519 with node:crypto, for bittorrent-dht's BEP 44 mutable records ----------------------

// DER prefixes that wrap a raw 32-byte Ed25519 seed or public key (RFC 8410).
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

export interface Ed25519KeyPair {
  publicKey: Buffer
  privateKey: KeyObject
}

export function ed25519FromSeed(seed: Uint8Array): Ed25519KeyPair {
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' })
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' })
  return { publicKey: Buffer.from(spki.subarray(spki.length - 32)), privateKey }
}

export const ed25519Sign = (kp: Ed25519KeyPair, msg: Uint8Array): Buffer => sign(null, msg, kp.privateKey)

/**
 * `verify(signature, message, publicKey)` as bittorrent-dht calls it. Public key objects are
 * cached (bounded), so the peer pays for a verification, not for parsing the same key again.
 */
export function ed25519Verifier(maxKeys = 4096): (sig: Uint8Array, msg: Uint8Array, pk: Uint8Array) => boolean {
  const keys = new Map<string, KeyObject>()
  return (sig, msg, pk) => {
    if (!sig || !pk || sig.length !== 64 || pk.length !== 32) return false
    const hex = Buffer.from(pk).toString('hex')
    let key = keys.get(hex)
    if (!key) {
      if (keys.size >= maxKeys) keys.clear()
      key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, pk]), format: 'der', type: 'spki' })
      keys.set(hex, key)
    }
    try {
      return verify(null, msg, key, sig)
    } catch {
      return false
    }
  }
}

// ---- the shared driver --------------------------------------------------------------------------

/** What one implementation provides; the driver does the planning, timing and counting. */
export interface DhtAdapter<Key, Writer> {
  /** A mutable key pair from a 32-byte seed; made before the timed phases. */
  writer(seed: Buffer): Writer
  /** The key an immutable value is stored under, computed locally. */
  immutableKey(value: Buffer): Key
  /** The key of the writer's mutable record (no salt), computed locally. */
  mutableKey(writer: Writer): Key
  /** Stores the value; resolves with the number of nodes that took it. Checks the key it reports. */
  putImmutable(by: number, value: Buffer, key: Key, signal: AbortSignal): Promise<number>
  getImmutable(from: number, key: Key, value: Buffer, signal: AbortSignal): Promise<GetOutcome>
  /** Publishes `value` with seq 1 under the writer's key (no salt). */
  putMutable(by: number, writer: Writer, value: Buffer, key: Key, signal: AbortSignal): Promise<number>
  getMutable(from: number, writer: Writer, key: Key, value: Buffer, signal: AbortSignal): Promise<GetOutcome>
}

export const PER_OP_TIMEOUT_MS = 20_000

/** Called around each timed phase (e.g. to profile just that phase); outside the timings. */
export interface PhaseHooks {
  before(phase: string): Promise<void>
  after(phase: string): Promise<void>
}
/** The hooks runDhtPhases uses by default; run-dht.ts replaces them to profile. */
export const phaseHooks: PhaseHooks = { before: async () => {}, after: async () => {} }
export const MUTABLE_SEQ = 1

/**
 * Immutable puts (each from a random node), then a get of every key from another random node;
 * then the same with mutable records, one key pair per put. A key whose put failed is still
 * asked for (its record may have got out anyway), so every get is a real, timed get.
 */
export async function runDhtPhases<Key, Writer>(
  impl: string,
  a: DhtAdapter<Key, Writer>,
  plan: PlannedPut[],
  progress?: (line: string) => void,
  hooks: PhaseHooks = phaseHooks
): Promise<Pick<DhtFigures, 'immutable' | 'mutable'>> {
  const writers = plan.map((p) => a.writer(p.seed))
  const out: Partial<Pick<DhtFigures, 'immutable' | 'mutable'>> = {}
  for (const kind of DHT_KINDS) {
    const keys = plan.map((p, i) => (kind === 'immutable' ? a.immutableKey(p.value) : a.mutableKey(writers[i])))
    await hooks.before(`${impl}-${kind}-put`)
    const puts = await timeOps<PutOutcome>(`${impl} ${kind} put`, plan.length, PER_OP_TIMEOUT_MS, async (i, signal) => {
      const p = plan[i]
      const replicas = kind === 'immutable'
        ? await a.putImmutable(p.by, p.value, keys[i], signal)
        : await a.putMutable(p.by, writers[i], p.value, keys[i], signal)
      return { replicas }
    })
    await hooks.after(`${impl}-${kind}-put`)
    await hooks.before(`${impl}-${kind}-get`)
    const gets = await timeOps<GetOutcome>(`${impl} ${kind} get`, plan.length, PER_OP_TIMEOUT_MS, (i, signal) => {
      const p = plan[i]
      return kind === 'immutable'
        ? a.getImmutable(p.from, keys[i], p.value, signal)
        : a.getMutable(p.from, writers[i], keys[i], p.value, signal)
    })
    await hooks.after(`${impl}-${kind}-get`)
    const f = kindFigures(puts, gets)
    out[kind] = f
    progress?.(`${impl} ${kind}: ${f.putsOk}/${plan.length} put, ${f.found} found, ${f.verified} verified; ` +
      `put p50 ${f.put.p50Ms.toFixed(2)} ms (${f.cpuMsPerPut.toFixed(2)} ms CPU), get p50 ${f.get.p50Ms.toFixed(2)} ms (${f.cpuMsPerGet.toFixed(2)} ms CPU)`)
  }
  return out as Pick<DhtFigures, 'immutable' | 'mutable'>
}
