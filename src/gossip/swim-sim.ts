// SWIM in the simulator: N real Swim instances (src/gossip/swim.ts, the module a node runs) on one
// MemoryWorld (its seeded clock, timers and per-node random streams), joined by a light send
// function instead of the rpc stack: a message object is handed to the receiver after the link's
// latency unless the link loses it (world.random, the same draw MemoryWorld.transmit makes).
// Nothing is encoded (swim-codec.ts is tested on its own), which keeps 10,000 members fast.
//
// Scenario: every member starts knowing every other (a converged group); after `warmupMs` a
// fraction of members crash silently; the run goes on for `afterMs`. Measured: for each crashed
// member, when it was first suspected, first declared dead, and when the last live member marked
// it dead; and every suspicion or death declared about a member that is alive (false positives).
// Optionally some members are "slow" (Lifeguard's threat model: a starved process): every message
// to them waits an extra uniform 0..slowDelayMs before they handle it.
import { MemoryWorld } from '../runtime/memory.js'
import { SeededRandom } from '../runtime/prng.js'
import { Swim, type SwimConfig, type SwimMessage } from './swim.js'

export interface SwimSimOptions {
  nodes: number
  seed: number | string
  /** Probability a message is lost. */
  loss: number
  lifeguard: boolean
  /** Share of members that crash at warmupMs. */
  killFraction: number
  warmupMs: number
  afterMs: number
  /** One-way latency, uniform in [min, max] ms. */
  latencyMs?: [number, number]
  slowFraction?: number
  slowDelayMs?: number
  config?: Partial<SwimConfig>
  /** Called every progressEveryMs of virtual time. */
  onProgress?: (p: SwimProgress) => void
  progressEveryMs?: number
}

export interface SwimProgress {
  virtualMs: number
  events: number
  messages: number
  suspicions: number
  deaths: number
  detectedByAll: number
  killed: number
}

export interface VictimTimes {
  member: number
  /** ms after the crash; null when it did not happen within the run. */
  firstSuspect: number | null
  firstDead: number | null
  allDead: number | null
  /** Live members that marked it dead by the end. */
  markedBy: number
}

export interface SwimSimResult {
  nodes: number
  seed: number | string
  loss: number
  lifeguard: boolean
  killed: number
  live: number
  slow: number
  virtualMs: number
  victims: VictimTimes[]
  /** Suspicions / deaths declared (by any live member) about members that were alive. */
  falseSuspicions: number
  falseDeaths: number
  /** Distinct live members ever suspected / declared dead by anyone, split healthy / slow. */
  falselySuspected: { healthy: number; slow: number }
  falselyDead: { healthy: number; slow: number }
  refutations: number
  messages: number
  lost: number
  messagesPerMemberPerSecond: number
  maxLocalHealth: number
  meanLocalHealth: number
  events: number
  config: SwimConfig
}

export function runSwimSim(o: SwimSimOptions): SwimSimResult {
  const n = o.nodes
  const [latMin, latMax] = o.latencyMs ?? [10, 50]
  const world = new MemoryWorld(o.seed, { latency: () => 0, loss: 0 })
  const pick = new SeededRandom(`${o.seed}:choices`)
  const dead = new Uint8Array(n)
  const slow = new Uint8Array(n)
  const slowCount = Math.round((o.slowFraction ?? 0) * n)
  const slowDelay = o.slowDelayMs ?? 0
  const victims: number[] = []
  {
    const perm = Array.from({ length: n }, (_, i) => i)
    for (let i = n - 1; i > 0; i--) { const j = pick.u32() % (i + 1); [perm[i], perm[j]] = [perm[j], perm[i]] }
    const kills = Math.round(o.killFraction * n)
    for (let i = 0; i < kills; i++) victims.push(perm[i])
    for (let i = kills; i < kills + slowCount; i++) slow[perm[i]] = 1
  }
  const isVictim = new Uint8Array(n)
  for (const v of victims) isVictim[v] = 1

  let crashAt = -1
  const firstSuspect = new Float64Array(n).fill(-1)
  const firstDead = new Float64Array(n).fill(-1)
  const lastDead = new Float64Array(n).fill(-1)
  const markedBy = new Uint32Array(n)
  let detectedByAll = 0
  let falseSuspicions = 0, falseDeaths = 0, suspicions = 0, deaths = 0
  const everSuspected = new Uint8Array(n)
  const everDead = new Uint8Array(n)
  let messages = 0, lost = 0

  const r = world.random
  const swims: Swim[] = new Array(n)
  for (let i = 0; i < n; i++) {
    const from = i
    swims[i] = new Swim({
      self: i,
      runtime: world.runtime(i),
      config: { ...o.config, lifeguard: o.lifeguard },
      send: (to: number, msg: SwimMessage) => {
        messages++
        if (o.loss > 0 && r.float() < o.loss) { lost++; return }
        let delay = latMin + r.float() * (latMax - latMin)
        if (slow[to]) delay += r.float() * slowDelay
        world.schedule(delay, () => { if (!dead[to]) swims[to].receive(from, msg) })
      },
      onEvent: (e) => {
        const m = e.member
        const now = world.now()
        if (e.kind === 'suspect') {
          suspicions++
          if (isVictim[m] && crashAt >= 0) { if (firstSuspect[m] < 0) firstSuspect[m] = now - crashAt }
          else { falseSuspicions++; everSuspected[m] = 1 }
        } else if (e.kind === 'fail') {
          deaths++
          if (isVictim[m] && crashAt >= 0) {
            if (firstDead[m] < 0) firstDead[m] = now - crashAt
            if (++markedBy[m] === n - victims.length) { lastDead[m] = now - crashAt; detectedByAll++ }
          } else { falseDeaths++; everDead[m] = 1 }
        }
      },
    })
  }
  const all = Array.from({ length: n }, (_, i) => i)
  for (let i = 0; i < n; i++) { swims[i].addMembers(all); swims[i].start() }

  world.schedule(o.warmupMs, () => {
    crashAt = world.now()
    for (const v of victims) { dead[v] = 1; swims[v].stop() }
  })
  const end = o.warmupMs + o.afterMs
  let done = false
  world.schedule(end, () => { done = true })
  const every = o.progressEveryMs ?? 10_000
  const progress = (): void => {
    o.onProgress?.({ virtualMs: world.now(), events: world.stats.events, messages, suspicions, deaths, detectedByAll, killed: victims.length })
    if (world.now() + every <= end) world.schedule(every, progress)
  }
  if (o.onProgress) world.schedule(every, progress)
  while (!done && world.step()) { /* run */ }

  let maxHealth = 0, sumHealth = 0, refutations = 0, live = 0
  for (let i = 0; i < n; i++) {
    if (dead[i]) continue
    live++
    const s = swims[i]
    maxHealth = Math.max(maxHealth, s.localHealth)
    sumHealth += s.localHealth
    refutations += s.stats.refutations
    s.stop()
  }
  const count = (a: Uint8Array, want: number): number => { let c = 0; for (let i = 0; i < n; i++) if (a[i] && slow[i] === want && !isVictim[i]) c++; return c }
  const t = (x: number): number | null => (x < 0 ? null : x)
  return {
    nodes: n, seed: o.seed, loss: o.loss, lifeguard: o.lifeguard,
    killed: victims.length, live, slow: slowCount, virtualMs: world.now(),
    victims: victims.map((v) => ({ member: v, firstSuspect: t(firstSuspect[v]), firstDead: t(firstDead[v]), allDead: t(lastDead[v]), markedBy: markedBy[v] })),
    falseSuspicions, falseDeaths,
    falselySuspected: { healthy: count(everSuspected, 0), slow: count(everSuspected, 1) },
    falselyDead: { healthy: count(everDead, 0), slow: count(everDead, 1) },
    refutations, messages, lost,
    messagesPerMemberPerSecond: messages / n / (world.now() / 1000),
    maxLocalHealth: maxHealth, meanLocalHealth: live ? sumHealth / live : 0,
    events: world.stats.events,
    config: swims[0].config,
  }
}
