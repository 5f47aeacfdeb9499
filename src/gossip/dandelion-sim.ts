// Dandelion++ against a first-spy adversary, in the simulator. N real Dandelion instances
// (src/gossip/dandelion.ts) on one MemoryWorld, over a random graph of average degree 8 (each node
// links to 4 random others). A fraction of the nodes are spies: they relay honestly but note, for
// every message, which neighbour they first got it from. The first-spy estimator guesses that the
// message came from the neighbour that handed it to the first spy to see it.
//
// Stem hops go through the real module (uniform 10-50 ms links). When a node fluffs, the message
// spreads by diffusion: each node passes it to each neighbour after an independent exponential
// delay (Bitcoin's diffusion), computed as shortest paths with those delays (Dijkstra) up to the
// first spy, which is all the estimator needs (or, with `deliverAll`, to every node).
// The baseline, plain diffusion, starts that spread at the origin itself.
import { MemoryWorld } from '../runtime/memory.js'
import { SeededRandom } from '../runtime/prng.js'
import { Dandelion, type DandelionConfig } from './dandelion.js'

export interface DandelionSimOptions {
  nodes: number
  seed: number | string
  /** Share of spies. */
  spies: number
  /** Each epoch every honest node publishes one message (the paper's model). */
  epochs: number
  /** 'dandelion' (stem, then diffusion) or 'diffusion' (diffusion from the origin). */
  protocol: 'dandelion' | 'diffusion'
  /** Average degree (each node links to degree/2 random others). */
  degree?: number
  /** Mean per-hop diffusion delay, ms. */
  diffusionMeanMs?: number
  /** Share of honest nodes that drop every stem message (to exercise the embargo). */
  blackholes?: number
  /** Spread every fluffed message to all nodes and check; needed to see delivery, slower. */
  deliverAll?: boolean
  config?: Partial<DandelionConfig>
}

export interface DandelionSimResult {
  nodes: number
  spies: number
  protocol: string
  messages: number
  /** Share of messages whose first-spy guess is the true origin. */
  recall: number
  /** The paper's precision: per message, 1/(messages the guess was given for) if right, averaged. */
  precision: number
  /** Messages caught by a spy on the stem (before any fluff). */
  caughtOnStem: number
  /** Stem length (hops) until fluff, mean, for messages not caught on the stem. */
  meanStemHops: number
  embargoFired: number
  loops: number
  /** With deliverAll: messages that reached every node. */
  deliveredToAll: number
  /** ms from publishing to the fluff, mean. */
  meanTimeToFluffMs: number
}

class MinHeap {
  private k: number[] = []
  private v: number[] = []
  get size(): number { return this.k.length }
  push(key: number, val: number): void {
    const k = this.k, v = this.v
    k.push(key); v.push(val)
    let i = k.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (k[p] <= k[i]) break
      ;[k[p], k[i]] = [k[i], k[p]]; [v[p], v[i]] = [v[i], v[p]]
      i = p
    }
  }
  pop(): [number, number] {
    const k = this.k, v = this.v
    const top: [number, number] = [k[0], v[0]]
    const lk = k.pop()!, lv = v.pop()!
    if (k.length > 0) {
      k[0] = lk; v[0] = lv
      let i = 0
      for (;;) {
        const l = 2 * i + 1, r = l + 1
        let m = i
        if (l < k.length && k[l] < k[m]) m = l
        if (r < k.length && k[r] < k[m]) m = r
        if (m === i) break
        ;[k[m], k[i]] = [k[i], k[m]]; [v[m], v[i]] = [v[i], v[m]]
        i = m
      }
    }
    return top
  }
}

/** A random graph: each node links to degree/2 distinct random others; links are undirected. */
export function randomGraph(n: number, degree: number, random: SeededRandom): number[][] {
  const adj: Set<number>[] = Array.from({ length: n }, () => new Set())
  const out = Math.max(1, Math.floor(degree / 2))
  for (let v = 0; v < n; v++) {
    let made = 0
    for (let t = 0; made < out && t < 50 * out; t++) {
      const w = random.u32() % n
      if (w === v || adj[v].has(w)) continue
      adj[v].add(w); adj[w].add(v); made++
    }
  }
  return adj.map((s) => [...s])
}

export function runDandelionSim(o: DandelionSimOptions): DandelionSimResult {
  const n = o.nodes
  const world = new MemoryWorld(o.seed, { latency: () => 0, loss: 0 })
  const rnd = new SeededRandom(`${o.seed}:graph`)
  const graph = randomGraph(n, o.degree ?? 8, rnd)
  const spy = new Uint8Array(n)
  const hole = new Uint8Array(n)
  {
    const perm = Array.from({ length: n }, (_, i) => i)
    for (let i = n - 1; i > 0; i--) { const j = rnd.u32() % (i + 1); [perm[i], perm[j]] = [perm[j], perm[i]] }
    const s = Math.round(o.spies * n)
    for (let i = 0; i < s; i++) spy[perm[i]] = 1
    const h = Math.round((o.blackholes ?? 0) * n)
    for (let i = s; i < s + h; i++) hole[perm[i]] = 1
  }
  const diffMean = o.diffusionMeanMs ?? 100
  const diffRandom = new SeededRandom(`${o.seed}:diffusion`)

  // Per message: origin, guess (-1 until caught), when published and fluffed, stem hops, nodes holding it.
  const origin: number[] = []
  const guess: number[] = []
  const published: number[] = []
  const fluffedAt: number[] = []
  const hops: number[] = []
  const holders: number[][] = []
  const caughtStem: boolean[] = []
  let deliveredToAll = 0

  /** Diffusion from `from` (exp delays per edge): the first spy reached and who handed it over; everyone, with deliverAll. */
  function diffuse(msg: number, from: number): void {
    const dist = new Map<number, number>()
    const pred = new Map<number, number>()
    const heap = new MinHeap()
    dist.set(from, 0)
    heap.push(0, from)
    const done = new Set<number>()
    while (heap.size > 0) {
      const [d, v] = heap.pop()
      if (done.has(v)) continue
      done.add(v)
      if (spy[v] && v !== from && guess[msg] < 0) {
        guess[msg] = pred.get(v)!
        if (!o.deliverAll) return
      }
      for (const w of graph[v]) {
        if (done.has(w)) continue
        const nd = d + -Math.log(1 - diffRandom.float()) * diffMean
        if (nd < (dist.get(w) ?? Infinity)) { dist.set(w, nd); pred.set(w, v); heap.push(nd, w) }
      }
    }
    if (done.size === n) deliveredToAll++
  }

  function fluffed(msg: number, at: number): void {
    if (fluffedAt[msg] >= 0) return // fluffed once already (a late embargo, a loop)
    fluffedAt[msg] = world.now()
    if (guess[msg] < 0 || o.deliverAll) diffuse(msg, at)
    // The broadcast reaches everyone who held it on the stem: their embargoes are off.
    for (const h of holders[msg]) nodes[h].onFluffed(msg)
  }

  const nodes: Dandelion<number>[] = new Array(n)
  for (let i = 0; i < n; i++) {
    const me = i
    nodes[i] = new Dandelion<number>({
      runtime: world.runtime(i),
      peers: () => graph[me],
      key: (m) => m,
      config: o.config,
      fluff: (m) => fluffed(m, me),
      sendStem: (to, m) => {
        world.schedule(10 + world.random.float() * 40, () => {
          if (fluffedAt[m] >= 0 && !o.deliverAll) return // settled: nothing more to learn
          if (spy[to] && guess[m] < 0) {
            guess[m] = me
            caughtStem[m] = true
            if (!o.deliverAll) { fluffedAt[m] = world.now(); for (const h of holders[m]) nodes[h].onFluffed(m); return }
          }
          if (hole[to]) return // drops stem messages: the last holder's embargo will fire
          hops[m]++
          holders[m].push(to)
          nodes[to].onStem(me, m)
        })
      },
    })
    nodes[i].newEpoch() // epochs are drawn by hand (start() would also arm the 10-minute epoch timer)
  }

  const honest: number[] = []
  for (let i = 0; i < n; i++) if (!spy[i] && !hole[i]) honest.push(i)
  for (let e = 0; e < o.epochs; e++) {
    if (e > 0) for (const d of nodes) d.newEpoch()
    for (const v of honest) {
      const m = origin.length
      origin.push(v); guess.push(-1); published.push(-1); fluffedAt.push(-1); hops.push(0); holders.push([v]); caughtStem.push(false)
      world.schedule(world.random.float() * 1000, () => {
        published[m] = world.now()
        if (o.protocol === 'diffusion') { fluffedAt[m] = world.now(); diffuse(m, v) } else nodes[v].send(m)
      })
    }
    while (world.step()) { /* run the epoch out: stems, fluffs, embargoes */ }
  }
  for (const d of nodes) d.stop()

  const m = origin.length
  const perEpoch = honest.length
  // Precision as in the paper, per epoch (each honest node published one message): the mean over
  // messages of [guess right] / (messages of that epoch given the same guess); then over epochs.
  let right = 0, prec = 0, stemHops = 0, notCaught = 0, ttf = 0, fl = 0
  for (let e = 0; e < o.epochs; e++) {
    const perGuess = new Map<number, number>()
    for (let i = e * perEpoch; i < (e + 1) * perEpoch; i++) if (guess[i] >= 0) perGuess.set(guess[i], (perGuess.get(guess[i]) ?? 0) + 1)
    for (let i = e * perEpoch; i < (e + 1) * perEpoch; i++) if (guess[i] === origin[i]) { right++; prec += 1 / perGuess.get(guess[i])! }
  }
  for (let i = 0; i < m; i++) {
    if (!caughtStem[i]) { stemHops += hops[i]; notCaught++ }
    if (fluffedAt[i] >= 0 && !caughtStem[i]) { ttf += fluffedAt[i] - published[i]; fl++ }
  }
  let embargoFired = 0, loops = 0
  for (const d of nodes) { embargoFired += d.stats.embargoFired; loops += d.stats.loops }
  return {
    nodes: n, spies: o.spies, protocol: o.protocol, messages: m,
    recall: right / m, precision: prec / m,
    caughtOnStem: caughtStem.filter(Boolean).length,
    meanStemHops: notCaught ? stemHops / notCaught : 0,
    embargoFired, loops, deliveredToAll,
    meanTimeToFluffMs: fl ? ttf / fl : 0,
  }
}
