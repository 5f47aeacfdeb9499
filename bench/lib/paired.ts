// The encryption comparison of `npm run bench`: Weft encrypted and Weft plaintext at one N, each
// in its own child process (bench/peers/run-paired.ts, its own heap and JIT), both pinned to the
// same CPU when taskset is there, and never running at once.
//   pass 0      first contact (timed: most peers asked need a handshake), encrypted then plaintext
//   pass 1      settling (not reported: new contacts from pass 0 still open sessions)
//   then        sessions up: `rounds` times over the lookups, in blocks of BLOCK lookups that take
//               turns between the builds (E P, then P E, ...)
// The blocks are short (tens of ms) because on this kind of VM the speed of the machine swings by
// half within a second or two: whole passes in turn still differed more between passes than
// between the builds; blocks in turn put both builds under the same swings.
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { LookupFigures } from './measure.js'
import type { PairedCommand } from '../peers/run-paired.js'
import { median } from './stats.js'
import type { WeftPass } from '../peers/weft.js'

const RUN_PAIRED = fileURLToPath(new URL('../peers/run-paired.js', import.meta.url))
const SETTLING = 1
/** Lookups per block in the sessions-up phase. */
const BLOCK = 20

export interface PairedRun {
  encrypted: LookupFigures
  plaintext: LookupFigures
}

type Reply = { ready: number } | { pass: WeftPass } | { figures: LookupFigures }

/** A run-paired child and a way to ask it one thing at a time. */
class Half {
  private readonly child: ChildProcess
  private stderr = ''
  private waiting: { resolve: (r: Reply) => void; reject: (e: Error) => void; timer: NodeJS.Timeout } | null = null
  private exited: Error | null = null

  constructor(readonly mode: 'encrypted' | 'plaintext', nodes: number, lookups: number, seed: number, cpu: number | undefined) {
    const args = ['--expose-gc', RUN_PAIRED, mode, String(nodes), String(lookups), String(seed)]
    const [cmd, argv] = cpu === undefined ? [process.execPath, args] : ['taskset', ['-c', String(cpu), process.execPath, ...args]]
    this.child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr = (this.stderr + d).slice(-4000)))
    this.child.on('message', (m: Reply) => this.settle(null, m))
    this.child.on('error', (err) => this.settle(new Error(`${mode}: could not start ${cmd}: ${err.message}`)))
    this.child.on('exit', (code, signal) => {
      this.exited = new Error(`${mode} N=${nodes}: child exited with ${signal ?? code}\n${this.stderr}`)
      this.settle(this.exited)
    })
  }

  /** The next message from the child (after sending `command`, if given). */
  next(command: PairedCommand | null, timeoutMs: number): Promise<Reply> {
    if (this.exited) return Promise.reject(this.exited)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.settle(new Error(`${this.mode}: no answer within ${timeoutMs} ms\n${this.stderr}`)), timeoutMs)
      this.waiting = { resolve, reject, timer }
      if (command) this.child.send(command)
    })
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL')
  }

  private settle(err: Error | null, reply?: Reply): void {
    const w = this.waiting
    if (!w) return
    this.waiting = null
    clearTimeout(w.timer)
    if (err) w.reject(err)
    else w.resolve(reply!)
  }
}

async function run(h: Half, command: PairedCommand, timeoutMs: number): Promise<WeftPass> {
  const r = await h.next(command, timeoutMs)
  if (!('pass' in r)) throw new Error(`${h.mode}: expected a pass, got ${JSON.stringify(r).slice(0, 200)}`)
  return r.pass
}

const p50 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]

/**
 * Both builds at N = `nodes`, the sessions-up lookups done `rounds` times each. `progress` hears
 * a line per pass and per round. Setup runs one build at a time (encrypted first), so each setup
 * time is its own.
 */
export async function runEncryptionPair(
  nodes: number, lookups: number, seed: number, rounds: number,
  options: { cpu?: number; setupTimeoutMs?: number; passTimeoutMs?: number; progress?: (line: string) => void } = {}
): Promise<PairedRun> {
  const { cpu, setupTimeoutMs = 5 * 60_000, passTimeoutMs = 2 * 60_000, progress = () => {} } = options
  const halves: Half[] = []
  try {
    for (const mode of ['encrypted', 'plaintext'] as const) {
      const h = new Half(mode, nodes, lookups, seed, cpu)
      halves.push(h)
      const r = await h.next(null, setupTimeoutMs)
      if (!('ready' in r)) throw new Error(`${mode}: expected ready, got ${JSON.stringify(r).slice(0, 200)}`)
      progress(`${mode} N=${nodes}: network up in ${(r.ready / 1000).toFixed(1)} s`)
    }
    const [enc, plain] = halves
    for (let i = 0; i <= SETTLING; i++) {
      for (const h of halves) {
        const p = await run(h, { cmd: 'pass' }, passTimeoutMs)
        progress(`${h.mode.padEnd(9)} N=${nodes} ${i === 0 ? 'first contact' : 'settling'}: p50 ${p50(p.latenciesMs).toFixed(2)} ms, ` +
          `CPU ${(p.cpuMs / lookups).toFixed(2)} ms/lookup, ${p.handshakes} handshakes`)
      }
    }
    // Runs 0 .. SETTLING were the passes; the blocks follow.
    let next = SETTLING + 1
    const warm: number[][] = []
    let turn = 0
    for (let round = 0; round < rounds; round++) {
      const got = new Map<Half, WeftPass[]>([[enc, []], [plain, []]])
      for (let from = 0; from < lookups; from += BLOCK) {
        const order = turn++ % 2 === 0 ? [enc, plain] : [plain, enc]
        for (const h of order) got.get(h)!.push(await run(h, { cmd: 'block', from, count: Math.min(BLOCK, lookups - from) }, passTimeoutMs))
      }
      warm.push(got.get(enc)!.map(() => next++))
      const line = [enc, plain].map((h) => {
        const runs = got.get(h)!
        const cpuMs = runs.reduce((a, r) => a + r.cpuMs, 0)
        return `${h.mode} p50 ${p50(runs.flatMap((r) => r.latenciesMs)).toFixed(2)} ms, CPU ${(cpuMs / lookups).toFixed(2)} ms/lookup, ` +
          `${runs.reduce((a, r) => a + r.handshakes, 0)} handshakes`
      })
      progress(`N=${nodes} sessions up, round ${round + 1}/${rounds}: ${line.join('; ')}`)
    }
    const figures: LookupFigures[] = []
    for (const h of halves) {
      const r = await h.next({ cmd: 'finish', firstContact: 0, sessionsUp: warm }, passTimeoutMs)
      if (!('figures' in r)) throw new Error(`${h.mode}: expected figures, got ${JSON.stringify(r).slice(0, 200)}`)
      figures.push(r.figures)
    }
    return { encrypted: figures[0], plaintext: figures[1] }
  } finally {
    for (const h of halves) h.kill()
  }
}

/**
 * Several pairs (each its own two processes) as one: the first-contact figures of the pair whose
 * first-contact ratio is the median, and the sessions-up rounds of all pairs, so the slowdown is
 * the median of every round's ratio. Each new pair of processes draws its own JIT decisions and
 * heap layout, which moved one pair's slowdown by several points from run to run.
 */
export function mergePairs(runs: PairedRun[]): PairedRun {
  if (runs.length === 1) return runs[0]
  const ratio = (r: PairedRun): number => r.encrypted.p50Ms / r.plaintext.p50Ms
  const mid = [...runs].sort((a, b) => ratio(a) - ratio(b))[(runs.length - 1) >> 1]
  const side = (pick: (r: PairedRun) => LookupFigures): LookupFigures => {
    const ups = runs.map((r) => pick(r).sessionsUp).filter((u) => u !== undefined)
    if (ups.length !== runs.length) return pick(mid)
    const m = (f: (u: (typeof ups)[number]) => number | undefined): number => median(ups.map((u) => f(u) ?? NaN))
    const lookups = ups.reduce((a, u) => a + (u.lookups ?? 0), 0)
    return {
      ...pick(mid),
      sessionsUp: {
        p50Ms: m((u) => u.p50Ms), p95Ms: m((u) => u.p95Ms), lookupsPerSec: m((u) => u.lookupsPerSec),
        datagramsPerLookup: m((u) => u.datagramsPerLookup), cpuMsPerLookup: m((u) => u.cpuMsPerLookup),
        handshakesPerLookup: ups.reduce((a, u) => a + (u.handshakesPerLookup ?? 0) * (u.lookups ?? 0), 0) / lookups,
        lookups, roundP50Ms: ups.flatMap((u) => u.roundP50Ms ?? [])
      }
    }
  }
  return { encrypted: side((r) => r.encrypted), plaintext: side((r) => r.plaintext) }
}

