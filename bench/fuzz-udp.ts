// Fuzzing a live node's UDP port (issue 10, must-show 3): random datagrams and mutations of real
// traffic (valid requests and replies of every type, Noise handshake messages and sealed DATA
// captured from real sessions, relay frames, channel segments) fired from a few sockets at two live
// nodes in a child process: one encrypted (the default) and one plaintext (`encrypt: false`, so the
// fuzz reaches the rpc decoder). Bounded by --datagrams and --max-seconds, whichever comes first.
// The child reports every second its RSS and the nodes' counters, and any 'unhandledRejection' or
// 'uncaughtException' (to a file), and the nodes' packet counters every COUNTS_EVERY_MS over IPC (for
// the pacing). After a warm-up (the first --warmup share of the flood), RSS must stay within
// 10 % of its value at the end of the warm-up; at the end both nodes must still answer a real ping.
//
//   npm run bench:fuzz -- [--datagrams 10000000] [--per-node] [--max-seconds 1500] [--senders 4] [--window 1024] [--no-paced] [--seed S]
//
// Paced (the default): --datagrams counts datagrams the nodes received (their own transport counters),
// in total or, with --per-node, at each; the sender keeps at most --window in flight per node (see
// bench/lib/fuzz-pace.ts). --no-paced floods as fast as the sockets go: --datagrams then counts sends.
//
// Writes bench/results/fuzz-udp.json, docs/fuzz-rss.svg and the fuzz section of docs/security.md.
import { fork, type ChildProcess } from 'node:child_process'
import { createSocket, type Socket } from 'node:dgram'
import { createHash } from 'node:crypto'
import { appendFileSync, closeSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { cpus } from 'node:os'
import { fileURLToPath, pathToFileURL } from 'node:url'
import * as vega from 'vega'
import { compile, type TopLevelSpec } from 'vega-lite'
import { Node, type NodeStatus } from '../src/node/node.js'
import { identityFromSeed } from '../src/identity/keys.js'
import { SeededRandom } from '../src/runtime/prng.js'
import { realRuntime, udpNetwork } from '../src/runtime/udp.js'
import { PacketTransport, type Transport, type TransportStats } from '../src/transport/transport.js'
import { SecureTransport, SESSION_OVERHEAD } from '../src/transport/session.js'
import { ChannelTransport } from '../src/transport/channels.js'
import { packAddress } from '../src/wire/address.js'
import { encodeSwim } from '../src/gossip/swim-codec.js'
import { SwimType, UpdateKind } from '../src/gossip/swim.js'
import { broadcastId } from '../src/gossip/plumtree.js'
import { encodeRecord } from '../src/services/dht/records.js'
import {
  BroadcastOp, ConnectOp, encode, encodedSize, Flag, LocateOp, MAX_PACKET, MembershipOp, MessageType, senderIdOffset, type Message,
} from '../src/wire/messages.js'
import { arg, flag, num } from './lib/args.js'
import { currentSection, section, spliceSection } from './lib/doc-sections.js'
import { kernelUdpDrops, Pacer } from './lib/fuzz-pace.js'

/** Share of datagrams that are random bytes; the rest are mutations of captured traffic. */
const RANDOM_SHARE = 0.25
/** Of the mutations, this share goes out unmutated (valid traffic keeps the handlers busy too). */
const VALID_SHARE = 0.05
/** Datagrams in flight per sender socket: enough to keep the kernel busy, few enough not to pile up in the parent. */
const IN_FLIGHT = 64
/** RSS after the warm-up must stay within this share of its value at the end of the warm-up. */
const RSS_BAND = 0.10
const PING_EVERY_MS = 5000
/** Datagrams in flight per target when paced: below what the node's socket buffer holds (1 MiB asked, about 1.3 kB of kernel memory per average datagram). */
const WINDOW = 1024
/** How often the node process reports its counters (the pacer's clock). */
const COUNTS_EVERY_MS = 50
/** A paced flood ends if the nodes received nothing new for this long. */
const STALL_MS = 15_000

// ---- mutations -----------------------------------------------------------------------------------

const BOUNDARY = [0, 1, 0x7f, 0x80, 0xfe, 0xff]

/** One mutation of `b` chosen by `r`: bit flips, truncation, extension, boundary values, insertion, deletion, overwrites. */
export function mutate(b: Uint8Array, r: SeededRandom): Uint8Array {
  const n = b.length
  const c = new Uint8Array(b)
  const i = r.u32(), j = r.u32()
  switch (j % 7) {
    case 0: { const flips = 1 + (i % 4); for (let k = 0; k < flips && n; k++) c[(i + k * 7919) % n] ^= 1 << ((j >>> (3 + k)) & 7) } return c
    case 1: return c.slice(0, n ? i % n : 0)
    case 2: { const out = new Uint8Array(n + 1 + (i % 64)); out.set(c); out.set(r.bytes(out.length - n), n); return out }
    case 3: if (n) c[i % n] = BOUNDARY[(j >>> 3) % BOUNDARY.length]; if (n > 1 && j & 0x100) c[(i + 1) % n] = BOUNDARY[(j >>> 9) % BOUNDARY.length]; return c
    case 4: { const at = n ? i % n : 0; const ins = r.bytes(1 + (j >>> 3) % 16); const out = new Uint8Array(n + ins.length); out.set(c.subarray(0, at)); out.set(ins, at); out.set(c.subarray(at), at + ins.length); return out }
    case 5: { const at = n ? i % n : 0; const cut = Math.min(n - at, 1 + (j >>> 3) % 8); const out = new Uint8Array(n - cut); out.set(c.subarray(0, at)); out.set(c.subarray(at + cut), at); return out }
    default: { const k = 1 + (i % 8); for (let m = 0; m < k && n; m++) c[r.u32() % n] = r.u32() & 0xff } return c
  }
}

// ---- captured traffic ------------------------------------------------------------------------------

export interface FuzzTarget { address: string; publicKey: Uint8Array; encrypt: boolean }
/** A datagram and the node it is for. */
export interface Seed { to: number; bytes: Uint8Array; kind: string }

/** Valid requests and replies of every wire type, as a stranger or a peer would send them. */
function validMessages(r: SeededRandom, self: { id: Uint8Array; address: string }, targetId: Uint8Array): { kind: string; m: Message }[] {
  const h = () => ({ txid: r.u32(), sender: self.id, flags: r.u32() % 2 ? Flag.READ_ONLY : 0, token: r.u32() % 3 ? undefined : r.u32(), pad: r.u32() % 3 ? 0 : r.u32() % 200 })
  const contacts = (n: number) => Array.from({ length: n }, (_, i) => ({ id: r.bytes(32), address: `127.0.0.${1 + (i % 3)}:${1024 + (r.u32() % 60000)}` }))
  const channel = r.bytes(32)
  const payload = r.bytes(r.u32() % 600)
  const swim = (type: number, target: boolean) => encodeSwim(
    target ? { type: type as 1, seq: r.u32(), target: 1, updates: [{ kind: UpdateKind.ALIVE, member: 0, incarnation: 1, from: 0 }] } : { type: type as 2, seq: r.u32(), updates: [{ kind: UpdateKind.SUSPECT, member: 1, incarnation: 2, from: 0 }] },
    (x) => (x === 0 ? self : { id: targetId, address: '127.0.0.1:9' }))
  const reply = () => ({ txid: r.u32(), sender: self.id, flags: 0, token: r.u32(), observed: self.address })
  const list: { kind: string; m: Message }[] = [
    { kind: 'PING', m: { ...h(), type: MessageType.PING } },
    { kind: 'FIND_NODE', m: { ...h(), type: MessageType.FIND_NODE, target: r.bytes(32) } },
    { kind: 'GET', m: { ...h(), type: MessageType.GET, target: r.bytes(32) } },
    { kind: 'PUT', m: { ...h(), type: MessageType.PUT, record: encodeRecord({ kind: 'immutable', value: r.bytes(r.u32() % 300) }), ttlMs: 60_000 } },
    { kind: 'NEIGHBORS', m: { ...h(), type: MessageType.NEIGHBORS, what: r.u32() % 4, arg: r.u32() % 8 } },
    { kind: 'LOCATE', m: { ...h(), type: MessageType.LOCATE, op: r.u32() % 3 as 0, object: r.bytes(32), hop: 1, ttlSec: 60 } },
    { kind: 'CONNECT', m: { ...h(), type: MessageType.CONNECT, op: r.u32() % 5 as 0, address: self.address } },
    { kind: 'MEMBERSHIP', m: { ...h(), type: MessageType.MEMBERSHIP, op: r.u32() % 6 as 0, channel, ttl: 3, priority: 0, contacts: contacts(r.u32() % 5) } },
    { kind: 'BROADCAST', m: { ...h(), type: MessageType.BROADCAST, op: BroadcastOp.GOSSIP, channel, round: 1, ids: [broadcastId(payload)], payload } },
    { kind: 'BROADCAST', m: { ...h(), type: MessageType.BROADCAST, op: BroadcastOp.IHAVE, channel, round: 1, ids: [r.bytes(16), r.bytes(16)], payload: new Uint8Array(0) } },
    { kind: 'SWIM', m: { ...h(), txid: 0, type: MessageType.SWIM, payload: swim(SwimType.PING, true) } },
    { kind: 'SWIM', m: { ...h(), txid: 0, type: MessageType.SWIM, payload: swim(SwimType.ACK, false) } },
    { kind: 'reply', m: { ...reply(), type: MessageType.PONG } },
    { kind: 'reply', m: { ...reply(), type: MessageType.NODES, contacts: contacts(r.u32() % 20) } },
    { kind: 'reply', m: { ...reply(), type: MessageType.VALUES, contacts: contacts(3), records: [r.bytes(40)] } },
    { kind: 'reply', m: { ...reply(), type: MessageType.POINTERS, next: contacts(2), servers: contacts(3) } },
    { kind: 'reply', m: { txid: r.u32(), sender: self.id, flags: 0, type: MessageType.ERROR, code: 2, reason: 'bad request' } },
  ]
  void MembershipOp; void LocateOp; void ConnectOp
  return list.filter((x) => encodedSize(x.m) <= MAX_PACKET)
}

function relayFrame(kind: number, address: string, payload: Uint8Array): Uint8Array {
  const b = new Uint8Array(1 + 19 + payload.length)
  b[0] = kind
  const o = packAddress(address, b, 1)
  b.set(payload, o)
  return b.subarray(0, o + payload.length)
}

/** A transport that keeps what is sent through it (for channel segments). */
class Capture implements Transport {
  readonly stats: TransportStats = { packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, oversizeDropped: 0 }
  onPacket: (from: string, bytes: Uint8Array) => void = () => {}
  readonly sent: Uint8Array[] = []
  constructor(readonly address: string) {}
  send(_to: string, bytes: Uint8Array): void { this.sent.push(new Uint8Array(bytes)) }
  close(): Promise<void> { return Promise.resolve() }
}

/**
 * Real traffic to mutate: for each target, valid messages (plaintext), relay frames around them,
 * channel segments; for an encrypted target also handshakes (IK with a request in it, XX) and
 * sealed DATA, captured from real sessions with it.
 */
export async function captureCorpus(targets: FuzzTarget[], seed: string, perTarget = 8): Promise<Seed[]> {
  const r = new SeededRandom(`${seed}:corpus`)
  const seeds: Seed[] = []
  for (let t = 0; t < targets.length; t++) {
    const target = targets[t]
    for (let round = 0; round < perTarget; round++) {
      const id = identityFromSeed(createHash('sha256').update(`${seed}:stranger:${t}:${round}`).digest())
      const endpoint = await udpNetwork.bind('127.0.0.1', 0)
      const self = { id: id.id, address: endpoint.address }
      const messages = validMessages(r, self, target.publicKey)
      for (const { kind, m } of messages) {
        const bytes = encode(m)
        seeds.push({ to: t, bytes, kind })
        if (round === 0) seeds.push({ to: t, bytes: relayFrame(0xd1 - (r.u32() & 1), self.address, bytes), kind: 'relay' })
      }
      if (round === 0) {
        const probe = new Uint8Array(9); probe.set(r.bytes(8), 1)
        seeds.push({ to: t, bytes: Uint8Array.of(0xd2, ...probe.subarray(1)), kind: 'relay' }, { to: t, bytes: Uint8Array.of(0xd3, ...probe.subarray(1)), kind: 'relay' })
        const cap = new Capture(self.address)
        const ch = new ChannelTransport(cap, realRuntime)
        const c = ch.channel(target.address, r.u32())
        for (let i = 0; i < 3; i++) c.send(r.bytes(50 + i * 900))
        for (const s of cap.sent) seeds.push({ to: t, bytes: s, kind: 'channel' })
        await ch.close()
      }
      if (!target.encrypt) { await endpoint.close(); continue }
      // Real sessions with the encrypted target: every packet of ours is a seed.
      const send = endpoint.send.bind(endpoint)
      endpoint.send = (to, b) => { seeds.push({ to: t, bytes: new Uint8Array(b), kind: `session-${(b[0] ?? 0).toString(16)}` }); send(to, b) }
      const sec = new SecureTransport(new PacketTransport(endpoint, MAX_PACKET + SESSION_OVERHEAD + 20), realRuntime, id, senderIdOffset, { maxPacket: MAX_PACKET })
      sec.onPacket = () => {}
      if (round % 2 === 0) sec.addPeerKey(target.address, target.publicKey) // IK, else XX
      for (const { m } of messages.slice(0, 4)) { sec.send(target.address, encode(m)); await new Promise((res) => setTimeout(res, 30)) }
      await sec.close()
    }
  }
  return seeds
}

/** The next datagram: random bytes, or a mutation of a seed. */
export function nextDatagram(seeds: Seed[], targets: number, r: SeededRandom): Seed {
  const x = r.float()
  if (x < RANDOM_SHARE) {
    const len = r.u32() % 40 === 0 ? MAX_PACKET + r.u32() % 2000 : r.u32() % (MAX_PACKET + 60)
    const bytes = r.bytes(len)
    // A random datagram with a known first byte now and then, so it gets past the first switch.
    if (len && r.u32() % 2) bytes[0] = [0x57, 0xe1, 0xe2, 0xe3, 0xe4, 0xd0, 0xd1, 0xd2, 0xd3, 0x43][r.u32() % 10]
    return { to: r.u32() % targets, bytes, kind: 'random' }
  }
  const s = seeds[r.u32() % seeds.length]
  return x < RANDOM_SHARE + VALID_SHARE ? s : { to: s.to, bytes: mutate(s.bytes, r), kind: s.kind }
}

/** As nextDatagram, for one target: `seeds` are that target's seeds. */
export function nextDatagramFor(seeds: Seed[], to: number, r: SeededRandom): Seed {
  const d = nextDatagram(seeds, 1, r)
  return d.to === to ? d : { ...d, to }
}

// ---- firing ----------------------------------------------------------------------------------------

export interface FireResult { sent: number; bytes: number; byKind: Record<string, number>; elapsedMs: number; sendErrors: number }

/** Where each target listens, split for dgram's send(). */
function destinations(targets: FuzzTarget[]): { host: string; port: number }[] {
  return targets.map((t) => ({ host: t.address.slice(0, t.address.lastIndexOf(':')), port: Number(t.address.slice(t.address.lastIndexOf(':') + 1)) }))
}

/** The sending sockets, bound on loopback (send errors are counted by the callers, not thrown). */
function openSenders(senders: number): Promise<Socket[]> {
  return Promise.all(Array.from({ length: senders }, () => new Promise<Socket>((resolve) => {
    const s = createSocket({ type: 'udp4', sendBufferSize: 1 << 20 })
    s.on('error', () => {})
    s.bind(0, '127.0.0.1', () => resolve(s))
  })))
}

/**
 * Fires `count` datagrams (or until `deadline`, a performance.now() value) from `senders` sockets,
 * keeping IN_FLIGHT sends outstanding per socket. `onProgress` runs now and then.
 */
export async function fire(targets: FuzzTarget[], seeds: Seed[], count: number, seed: string, senders: number, deadline = Infinity, onProgress?: (sent: number) => void): Promise<FireResult> {
  const r = new SeededRandom(`${seed}:fire`)
  const dest = destinations(targets)
  const sockets = await openSenders(senders)
  const started = performance.now()
  const result: FireResult = { sent: 0, bytes: 0, byKind: {}, elapsedMs: 0, sendErrors: 0 }
  let issued = 0
  let lastProgress = started
  await new Promise<void>((resolve) => {
    let open = senders
    const pump = (s: Socket, state: { inFlight: number; done: boolean }): void => {
      while (state.inFlight < IN_FLIGHT && !state.done) {
        if (issued >= count || (issued % 256 === 0 && performance.now() >= deadline)) {
          state.done = true
          break
        }
        issued++
        const d = nextDatagram(seeds, targets.length, r)
        result.byKind[d.kind] = (result.byKind[d.kind] ?? 0) + 1
        result.bytes += d.bytes.length
        state.inFlight++
        s.send(d.bytes, dest[d.to].port, dest[d.to].host, (err) => {
          state.inFlight--
          if (err) result.sendErrors++
          else result.sent++
          if (!state.done) setImmediate(() => pump(s, state))
          else if (state.inFlight === 0 && --open === 0) resolve()
        })
      }
      if (state.done && state.inFlight === 0 && --open === 0) resolve()
      const now = performance.now()
      if (onProgress && now - lastProgress >= 1000) { lastProgress = now; onProgress(issued) }
    }
    for (const s of sockets) pump(s, { inFlight: 0, done: false })
  })
  result.elapsedMs = performance.now() - started
  for (const s of sockets) s.close()
  return result
}

export interface PacedResult extends FireResult {
  /** What ended the flood: every node received its quota, the time bound, or no progress for STALL_MS. */
  endedBy: 'datagrams' | 'max-seconds' | 'stalled'
  /** Datagrams sent to each target. */
  sentTo: number[]
}

/**
 * Paced firing: datagrams go to a target only while the pacer's window for it has room (see
 * bench/lib/fuzz-pace.ts), until every target has received its quota or `deadline` passes.
 * Sockets that find no room wait for the next counter update; the event loop is free meanwhile.
 */
export async function firePaced(targets: FuzzTarget[], seeds: Seed[], pacer: Pacer, seed: string, senders: number, deadline: number, onProgress?: () => void): Promise<PacedResult> {
  const r = new SeededRandom(`${seed}:fire`)
  const seedsOf = targets.map((_, t) => seeds.filter((s) => s.to === t))
  const dest = destinations(targets)
  const sockets = await openSenders(senders)
  const started = performance.now()
  const result: PacedResult = { sent: 0, bytes: 0, byKind: {}, elapsedMs: 0, sendErrors: 0, endedBy: 'datagrams', sentTo: targets.map(() => 0) }
  let stopping = false
  let next = 0
  let lastReceived = 0
  let lastProgressAt = started
  let lastReport = started
  const states = sockets.map((s) => ({ s, inFlight: 0 }))
  let finish: () => void = () => {}
  const finished = new Promise<void>((resolve) => { finish = resolve })
  const settle = (): void => { if (stopping && states.every((x) => x.inFlight === 0)) finish() }
  const pump = (st: { s: Socket; inFlight: number }): void => {
    while (!stopping && st.inFlight < IN_FLIGHT) {
      const t = pacer.pick(next++)
      if (t < 0) break // no room anywhere: the next counter update calls us again
      pacer.issued[t]++
      result.sentTo[t]++
      const d = nextDatagramFor(seedsOf[t], t, r)
      result.byKind[d.kind] = (result.byKind[d.kind] ?? 0) + 1
      result.bytes += d.bytes.length
      st.inFlight++
      st.s.send(d.bytes, dest[t].port, dest[t].host, (err) => {
        st.inFlight--
        if (err) result.sendErrors++
        else result.sent++
        if (stopping) settle()
        else if (st.inFlight === IN_FLIGHT >> 1) setImmediate(() => pump(st)) // it may have stopped at IN_FLIGHT
      })
    }
  }
  pacer.onUpdate(() => {
    if (stopping) return
    const now = performance.now()
    const got = pacer.totalReceived()
    if (got !== lastReceived) { lastReceived = got; lastProgressAt = now }
    if (pacer.allReceived()) result.endedBy = 'datagrams'
    else if (now >= deadline) result.endedBy = 'max-seconds'
    else if (now - lastProgressAt > STALL_MS) result.endedBy = 'stalled'
    else {
      for (const st of states) pump(st)
      if (onProgress && now - lastReport >= 1000) { lastReport = now; onProgress() }
      return
    }
    stopping = true
    settle()
  })
  for (const st of states) pump(st)
  await finished
  result.elapsedMs = performance.now() - started
  for (const s of sockets) s.close()
  return result
}

// ---- the node side (a child process) ------------------------------------------------------------------

interface Sample { t: number; rss: number; heapUsed: number; status: NodeStatus[] }
type FromChild =
  | { kind: 'ready'; targets: { address: string; publicKey: string; encrypt: boolean }[] }
  | { kind: 'sample'; sample: Sample }
  | { kind: 'fatal'; what: 'unhandledRejection' | 'uncaughtException'; message: string }
  | { kind: 'final'; sample: Sample }
  /** The nodes' transport counters, every COUNTS_EVERY_MS (the pacer's input); t in the child's seconds. */
  | { kind: 'counts'; t: number; packetsIn: number[] }

async function serve(): Promise<void> {
  // Samples and fatal events go to a file, one JSON line each: under the flood, IPC messages from
  // this process stopped reaching the parent (seen in the first full run); 'ready' and 'stop' stay on IPC.
  const file = process.argv[process.argv.indexOf('--samples') + 1]
  const send = (m: FromChild): void => {
    if (m.kind === 'ready' || m.kind === 'final') process.send?.(m)
    if (m.kind !== 'ready') appendFileSync(file, JSON.stringify(m) + '\n')
  }
  process.on('unhandledRejection', (e) => send({ kind: 'fatal', what: 'unhandledRejection', message: String((e as Error)?.stack ?? e) }))
  process.on('uncaughtException', (e) => { send({ kind: 'fatal', what: 'uncaughtException', message: String(e?.stack ?? e) }); setTimeout(() => process.exit(70), 100) })
  // Defaults but for SWIM membership, so the fuzz reaches that handler as well.
  const nodes = [new Node({ encrypt: true, membership: true }), new Node({ encrypt: false, membership: true })]
  for (const n of nodes) await n.start()
  const t0 = performance.now()
  const sample = (): Sample => ({ t: (performance.now() - t0) / 1000, rss: process.memoryUsage.rss(), heapUsed: process.memoryUsage().heapUsed, status: nodes.map((n) => n.status()) })
  send({ kind: 'ready', targets: nodes.map((n) => ({ address: n.address, publicKey: Buffer.from(n.identity.publicKey).toString('hex'), encrypt: n.status().sessions !== null })) })
  const timer = setInterval(() => send({ kind: 'sample', sample: sample() }), 1000)
  const counts = setInterval(() => process.send?.({ kind: 'counts', t: (performance.now() - t0) / 1000, packetsIn: nodes.map((n) => n.status().transport.packetsIn) } satisfies FromChild), COUNTS_EVERY_MS)
  process.on('disconnect', () => process.exit(0)) // the parent is gone: never outlive it
  process.on('message', (m) => {
    if (m !== 'stop') return
    clearInterval(timer)
    clearInterval(counts)
    const last = sample()
    void Promise.all(nodes.map((n) => n.stop({ leave: false }))).finally(() => { send({ kind: 'final', sample: last }); setTimeout(() => process.exit(0), 50) })
  })
}

// ---- the run -------------------------------------------------------------------------------------------

interface Report {
  params: { datagrams: number; perNode: boolean; paced: boolean; window: number | null; maxSeconds: number; senders: number; seed: string; warmup: number; machine: string }
  fired: FireResult & { ratePerSec: number }
  /** Paced runs: what ended the flood, and the fuzz datagrams each node counted in (its own transport counter, our pings' datagrams excluded). */
  endedBy: 'datagrams' | 'max-seconds' | 'stalled'
  received: { total: number; perNode: number[]; ratePerSec: number; kernelDrops: number[] | null; unaccounted: number[] }
  crashed: boolean
  exitCode: number | null
  fatal: { what: string; message: string }[]
  rss: { t: number; mb: number; heapMb: number }[]
  /** The flood's start and end on the rss series' clock (seconds). */
  flood: { from: number; to: number }
  warmupRssMb: number
  maxDeviation: number
  rssFlat: boolean
  pingsDuring: { due: number; sent: number; ok: number; failed: number; maxRttMs: number | null }
  pingAtEnd: { address: string; encrypt: boolean; ok: boolean; rttMs: number | null; error?: string }[]
  nodes: { encrypt: boolean; received: number; oversize: number; drops: Record<string, number>; rpc: NodeStatus['rpc']; sessions: NodeStatus['sessions']; paths: NodeStatus['nat']['paths']; channels: NodeStatus['channels'] }[]
  pass: boolean
}

function drops(s: NodeStatus): Record<string, number> {
  const out: Record<string, number> = { oversize: s.transport.oversizeDropped, rpcRateLimited: s.rpc.rateLimited, rpcUnmatchedReplies: s.rpc.unmatchedReplies, rpcHandlerErrors: s.rpc.handlerErrors, rpcRefusedAmplification: s.rpc.refusedAmplification, pathsMalformed: s.nat.paths.malformed, channelsMalformed: s.channels.malformed }
  for (const [code, n] of Object.entries(s.rpc.malformedByCode)) out[`rpc ${code}`] = n ?? 0
  if (s.sessions) for (const k of ['malformed', 'misdirected', 'handshakeFailures', 'decryptFailures', 'replays', 'handshakeReplays', 'halfOpenDropped', 'idMismatch'] as const) out[`session ${k}`] = s.sessions[k]
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v > 0))
}

const fmt = (x: number): string => x.toLocaleString('en-US')

async function main(): Promise<void> {
  const datagrams = num('datagrams', 10_000_000, (x) => Number.isInteger(x) && x > 0)
  const maxSeconds = num('max-seconds', 1500, (x) => x > 0)
  const senders = num('senders', 4, (x) => Number.isInteger(x) && x >= 1 && x <= 64)
  const warmup = num('warmup', 0.1, (x) => x > 0 && x < 1)
  const window = num('window', WINDOW, (x) => Number.isInteger(x) && x >= 1)
  const paced = !flag('no-paced')
  const perNode = flag('per-node') // --datagrams at each node, not in total
  const seed = arg('seed') ?? process.env.WEFT_SEED ?? 'fuzz-udp-1'
  const samplesFile = `${tmpdir()}/weft-fuzz-udp-${process.pid}.jsonl`
  writeFileSync(samplesFile, '')
  const child = fork(fileURLToPath(import.meta.url), ['--serve', '--samples', samplesFile], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const samples: Sample[] = []
  const fatal: { what: string; message: string }[] = []
  const readSamples = (): void => {
    for (const line of readFileSync(samplesFile, 'utf8').split('\n')) {
      if (!line) continue
      const m = JSON.parse(line) as FromChild
      if (m.kind === 'sample') samples.push(m.sample)
      else if (m.kind === 'fatal') fatal.push({ what: m.what, message: m.message })
    }
  }
  const lastSample = (): Sample | null => {
    const lines = readFileSync(samplesFile, 'utf8').trimEnd().split('\n')
    for (let i = lines.length - 1; i >= 0; i--) {
      try { const m = JSON.parse(lines[i]) as FromChild; if (m.kind === 'sample') return m.sample } catch { /* a cut line */ }
    }
    return null
  }
  let final: Sample | null = null
  let exitCode: number | null = null
  let exited = false
  let lastCounts: { t: number; packetsIn: number[] } | null = null
  let onCounts: (() => void) | null = null
  const ready = new Promise<FuzzTarget[]>((resolve, reject) => {
    child.on('message', (m: FromChild) => {
      if (m.kind === 'counts') { lastCounts = m; onCounts?.() }
      else if (m.kind === 'ready') resolve(m.targets.map((t) => ({ address: t.address, publicKey: new Uint8Array(Buffer.from(t.publicKey, 'hex')), encrypt: t.encrypt })))
      else if (m.kind === 'final') final = m.sample
    })
    child.on('exit', (code) => { exited = true; exitCode = code; reject(new Error(`node process exited (${code}) before it was ready`)) })
  })
  const targets = await ready
  console.log(`nodes up: ${targets.map((t) => `${t.address} (${t.encrypt ? 'encrypted' : 'plaintext'})`).join(', ')}`)
  const seeds = await captureCorpus(targets, seed)
  const kinds = seeds.reduce<Record<string, number>>((a, s) => { a[s.kind] = (a[s.kind] ?? 0) + 1; return a }, {})
  console.log(`corpus: ${seeds.length} captured datagrams (${Object.entries(kinds).map(([k, n]) => `${k} ${n}`).join(', ')})`)

  const clients = await Promise.all(targets.map(async (t) => { const c = new Node({ encrypt: t.encrypt, readOnly: true }); await c.start(); return c }))
  const ports = targets.map((t) => Number(t.address.slice(t.address.lastIndexOf(':') + 1)))
  const quota = targets.map((_, t) => perNode ? datagrams : Math.floor(datagrams / targets.length) + (t < datagrams % targets.length ? 1 : 0))
  const pacer = new Pacer(quota, window)
  const clientOut = (): number[] => clients.map((c) => c.status().transport.packetsOut)
  const updatePacer = (): void => { if (lastCounts) pacer.update(lastCounts, clientOut(), kernelUdpDrops(ports)) }
  const firstCounts = new Promise<void>((resolve) => { onCounts = () => { onCounts = updatePacer; resolve() } })
  await firstCounts
  updatePacer() // the baseline: what the nodes got before the flood (corpus capture) does not count
  const floodFromChild = lastCounts!.t

  // Real pings from a client of each kind, one every PING_EVERY_MS at each node while the flood runs,
  // on a schedule anchored to the start (a late timer still sends every ping due); and at the end.
  const pingsDuring = { due: 0, sent: 0, ok: 0, failed: 0, maxRttMs: 0 }
  const pending = new Set<Promise<void>>()
  const started = performance.now()
  let pingTimer: NodeJS.Timeout | null = null
  const pingRound = (k: number): void => {
    pingsDuring.due += targets.length
    targets.forEach((t, i) => {
      pingsDuring.sent++
      const p = clients[i].ping(t.address).then((r) => { pingsDuring.ok++; pingsDuring.maxRttMs = Math.max(pingsDuring.maxRttMs, r.rttMs) }, () => { pingsDuring.failed++ })
      pending.add(p); void p.finally(() => pending.delete(p))
    })
    pingTimer = setTimeout(() => pingRound(k + 1), Math.max(0, started + (k + 1) * PING_EVERY_MS - performance.now()))
  }
  pingTimer = setTimeout(() => pingRound(1), PING_EVERY_MS)

  const deadline = started + maxSeconds * 1000
  const progress = (): void => {
    const secs = (performance.now() - started) / 1000
    const s = lastSample()
    const got = pacer.totalReceived()
    console.log(`${secs.toFixed(0)} s: nodes received ${quota.map((_, t) => fmt(pacer.received(t))).join(' + ')} = ${fmt(got)} of ${fmt(datagrams)} (${fmt(Math.round(got / secs))}/s), sent ${fmt(pacer.issued.reduce((a, b) => a + b, 0))}, in flight ${quota.map((_, t) => pacer.inFlight(t)).join('/')}, kernel drops ${pacer.kernelDrops?.join('/') ?? '?'}, pings ${pingsDuring.ok} ok ${pingsDuring.failed} failed, RSS ${s ? (s.rss / 2 ** 20).toFixed(1) : '?'} MB`)
  }
  let fired: PacedResult
  if (paced) {
    let lastLog = started
    fired = await firePaced(targets, seeds, pacer, seed, senders, deadline, () => { if (performance.now() - lastLog >= 10_000) { lastLog = performance.now(); progress() } })
  } else {
    const flood = await fire(targets, seeds, datagrams, seed, senders, deadline, () => { if (Math.floor((performance.now() - started) / 1000) % 10 === 0) progress() })
    fired = { ...flood, endedBy: flood.sent + flood.sendErrors >= datagrams ? 'datagrams' : 'max-seconds', sentTo: [] }
  }
  if (pingTimer) clearTimeout(pingTimer)
  await new Promise((r) => setTimeout(r, 2000)) // the last datagrams drain
  await Promise.all([...pending])
  await new Promise((r) => setTimeout(r, 300)) // a datagram our client sent after its last ping lands
  await new Promise<void>((resolve) => { onCounts = () => { updatePacer(); onCounts = updatePacer; resolve() } }) // counts taken after the last ping
  const floodToChild = lastCounts!.t
  progress()
  const pingAtEnd: Report['pingAtEnd'] = []
  for (let i = 0; i < targets.length; i++) {
    try {
      const p = await clients[i].ping(targets[i].address)
      pingAtEnd.push({ address: targets[i].address, encrypt: targets[i].encrypt, ok: true, rttMs: Math.round(p.rttMs * 1000) / 1000 })
    } catch (err) {
      pingAtEnd.push({ address: targets[i].address, encrypt: targets[i].encrypt, ok: false, rttMs: null, error: (err as Error).message })
    }
  }
  const received = { total: pacer.totalReceived(), perNode: quota.map((_, t) => pacer.received(t)), ratePerSec: 0, kernelDrops: pacer.kernelDrops?.slice() ?? null, unaccounted: pacer.unaccounted.slice() }
  received.ratePerSec = Math.round(received.total / (fired.elapsedMs / 1000))
  for (const c of clients) await c.stop({ leave: false })
  const crashedBeforeStop = exited
  if (!exited) {
    child.send('stop')
    await new Promise<void>((resolve) => { child.once('exit', (code) => { exitCode = code; resolve() }); setTimeout(resolve, 10_000) })
  }
  readSamples()
  for (const f of fatal) console.error(`node process: ${f.what}: ${f.message}`)
  const last: Sample | null = final ?? samples[samples.length - 1] ?? null
  const fireSecs = fired.elapsedMs / 1000
  // RSS: the samples of the flood; the warm-up is its first `warmup` share of the time.
  const during = samples.filter((s) => s.t >= floodFromChild && s.t <= floodToChild)
  const warmEnd = floodFromChild + (floodToChild - floodFromChild) * warmup
  const warmSample = during.filter((s) => s.t <= warmEnd).at(-1) ?? during[0]
  const warm = warmSample?.rss ?? 0
  const after = during.filter((s) => s.t >= (warmSample?.t ?? 0))
  const maxDeviation = warm && after.length ? Math.max(...after.map((s) => Math.abs(s.rss - warm) / warm)) : 1
  const t0 = samples[0]?.t ?? 0
  const report: Report = {
    params: { datagrams, perNode, paced, window: paced ? window : null, maxSeconds, senders, seed, warmup, machine: `${cpus().length} x ${cpus()[0]?.model ?? '?'}, Node ${process.version}` },
    fired: { sent: fired.sent, bytes: fired.bytes, byKind: fired.byKind, elapsedMs: Math.round(fired.elapsedMs), sendErrors: fired.sendErrors, ratePerSec: Math.round(fired.sent / fireSecs) },
    endedBy: fired.endedBy,
    received,
    crashed: crashedBeforeStop || fatal.some((f) => f.what === 'uncaughtException'),
    exitCode: exitCode as number | null,
    fatal,
    rss: samples.map((s) => ({ t: Math.round((s.t - t0) * 10) / 10, mb: Math.round(s.rss / 2 ** 20 * 10) / 10, heapMb: Math.round(s.heapUsed / 2 ** 20 * 10) / 10 })),
    flood: { from: Math.round((floodFromChild - t0) * 10) / 10, to: Math.round((floodToChild - t0) * 10) / 10 },
    warmupRssMb: Math.round(warm / 2 ** 20 * 10) / 10,
    maxDeviation: Math.round(maxDeviation * 10000) / 10000,
    rssFlat: maxDeviation <= RSS_BAND,
    pingsDuring: { ...pingsDuring, maxRttMs: pingsDuring.ok ? Math.round(pingsDuring.maxRttMs * 10) / 10 : null },
    pingAtEnd,
    nodes: (last?.status ?? []).map((s) => ({
      encrypt: s.sessions !== null, received: s.transport.packetsIn, oversize: s.transport.oversizeDropped, drops: drops(s),
      rpc: s.rpc, sessions: s.sessions, paths: s.nat.paths, channels: s.channels,
    })),
    pass: false,
  }
  report.pass = !report.crashed && fatal.length === 0 && report.rssFlat && pingAtEnd.every((p) => p.ok)
  const root = fileURLToPath(new URL('../..', import.meta.url))
  mkdirSync(`${root}/bench/results`, { recursive: true })
  writeFileSync(`${root}/bench/results/fuzz-udp.json`, JSON.stringify(report, null, 2) + '\n')
  writeFileSync(`${root}/docs/fuzz-rss.svg`, await plotRss(report))
  const doc = `${root}/docs/security.md`
  const text = readFileSync(doc, 'utf8')
  writeFileSync(doc, spliceSection(text, 'fuzz', fuzzSection(text, report)))
  console.log(`${paced ? `paced (window ${window})` : 'not paced'}: nodes received ${received.perNode.map(fmt).join(' + ')} = ${fmt(received.total)} fuzz datagrams of ${fmt(datagrams)} asked (ended by ${fired.endedBy}); sent ${fmt(fired.sent)} in ${fireSecs.toFixed(0)} s (received ${fmt(received.ratePerSec)}/s); kernel drops ${received.kernelDrops?.map(fmt).join(' + ') ?? 'unknown'}, unaccounted ${received.unaccounted.map(fmt).join(' + ')}`)
  console.log(`crashed: ${report.crashed}; fatal events: ${fatal.length}; RSS ${report.warmupRssMb} MB after warm-up, max deviation ${(maxDeviation * 100).toFixed(1)} %; pings during: ${pingsDuring.sent} sent of ${pingsDuring.due} due, ${pingsDuring.ok} answered, ${pingsDuring.failed} failed; pings at end: ${pingAtEnd.map((p) => (p.ok ? `ok ${p.rttMs} ms` : `FAILED ${p.error}`)).join(', ')}`)
  console.log(report.pass ? 'PASS' : 'FAIL')
  console.log('wrote bench/results/fuzz-udp.json, docs/fuzz-rss.svg, docs/security.md (fuzz section)')
  process.exit(report.pass ? 0 : 1)
}

async function plotRss(r: Report): Promise<string> {
  const values = r.rss.map((s) => ({ s: s.t, MB: s.mb, series: 'RSS' })).concat(r.rss.map((s) => ({ s: s.t, MB: s.heapMb, series: 'heap used' })))
  const band = [{ lo: r.warmupRssMb * (1 - RSS_BAND), hi: r.warmupRssMb * (1 + RSS_BAND) }]
  const what = r.params.paced ? `${fmt(r.received.total)} fuzzed datagrams received` : `${fmt(r.fired.sent)} fuzzed datagrams sent`
  const spec = {
    width: 520, height: 220, title: `Node process memory, ${what} (band: warm-up RSS ± 10 %; dashed: the flood)`,
    config: { font: 'DejaVu Sans, Helvetica, Arial, sans-serif' },
    layer: [
      { data: { values: band }, mark: { type: 'rect', opacity: 0.15, color: '#4c78a8' }, encoding: { y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' } } },
      { data: { values: [{ s: r.flood.from }, { s: r.flood.to }] }, mark: { type: 'rule', strokeDash: [4, 4], color: 'grey' }, encoding: { x: { field: 's', type: 'quantitative' } } },
      { data: { values }, mark: { type: 'line' }, encoding: { x: { field: 's', type: 'quantitative', title: 'seconds' }, y: { field: 'MB', type: 'quantitative', title: 'MB' }, color: { field: 'series', type: 'nominal', title: null, legend: { orient: 'bottom' } } } },
    ],
  }
  const view = new vega.View(vega.parse(compile(spec as unknown as TopLevelSpec).spec), { renderer: 'none' })
  try { return await view.toSVG() } finally { view.finalize() }
}

/** The live-node part of the fuzz section (the rest of the section is carried over from the document). */
function liveNodePart(r: Report): string {
  const n = (x: number) => x.toLocaleString('en-US')
  const secs = (r.fired.elapsedMs / 1000).toFixed(0)
  const nodeRows = r.nodes.map((x, i) => `| ${x.encrypt ? 'encrypted' : 'plaintext'} | ${n(r.received.perNode[i] ?? x.received)} | ${r.received.kernelDrops ? n(r.received.kernelDrops[i]) : '?'} | ${Object.entries(x.drops).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${n(v)}`).join(', ')} |`).join('\n')
  const ended = r.endedBy === 'datagrams' ? 'the datagram count (the time bound did not end it)' : r.endedBy === 'max-seconds' ? `**the time bound (${r.params.maxSeconds} s), before the datagram count**` : '**a stall (the nodes received nothing for 15 s)**'
  const flood = r.params.paced
    ? `**${n(r.received.total)} datagrams received** by the nodes (${r.received.perNode.map(n).join(' + ')}, counted by each node's own
transport counter, our pings excluded; asked: ${r.params.perNode ? `${n(r.params.datagrams)} at each node` : `${n(r.params.datagrams)} in total, half at each`}) in ${secs} s
(${n(r.received.ratePerSec)}/s received), sent from ${r.params.senders} sockets. Paced: the sender keeps at most
${n(r.params.window ?? 0)} datagrams in flight per node (sent, less what the node counted in and what the kernel
dropped at its socket, from counters the node process reports every ${COUNTS_EVERY_MS} ms), below what the node's 1 MiB
socket buffer holds, so the kernel drops almost nothing: ${n(r.fired.sent)} sent, kernel drops
${r.received.kernelDrops ? r.received.kernelDrops.map(n).join(' + ') : 'not readable'} (\`/proc/net/udp\`), neither counted in nor dropped: ${r.received.unaccounted.map(n).join(' + ')}
(in flight 2 s without progress, written off and sent again). Ended by ${ended}.`
    : `${n(r.fired.sent)} datagrams sent from ${r.params.senders} sockets in ${secs} s (${n(r.fired.ratePerSec)}/s), not paced
(\`--no-paced\`): the sender outruns the nodes and the kernel drops what a full socket buffer cannot take; the
nodes received ${r.received.perNode.map(n).join(' + ')}. Ended by ${ended}.`
  return `**A live node's UDP port** (\`npm run bench:fuzz\`, defaults \`--datagrams 10000000 --max-seconds 1500 --senders 4
--window ${WINDOW}\`, paced, \`--datagrams\` received in total; \`--per-node\`: at each node; \`--no-paced\` floods
instead and \`--datagrams\` then counts datagrams sent):
two nodes in a child process (encrypted, the default; plaintext, so the datagrams reach the rpc
decoder). ${flood} ${(RANDOM_SHARE * 100).toFixed(0)} % random bytes, the rest mutations of captured traffic:
valid requests and replies of every type, IK and XX handshakes and sealed DATA from real sessions,
relay frames, channel segments. Bounded by whichever of the two limits comes first.
Run: ${r.params.machine}, shared with other jobs; seed \`${r.params.seed}\`.

| result | |
|---|---|
| crash | ${r.crashed ? 'yes' : 'no'} |
| unhandledRejection / uncaughtException | ${r.fatal.length} |
| RSS at the end of the warm-up (first ${(r.params.warmup * 100).toFixed(0)} % of the flood) | ${r.warmupRssMb} MB |
| largest RSS deviation after it, to the end of the flood | ${(r.maxDeviation * 100).toFixed(1)} % (bound: ${RSS_BAND * 100} %) |
| real pings during the flood (every ${PING_EVERY_MS / 1000} s at each node) | ${r.pingsDuring.sent} sent of ${r.pingsDuring.due} due: ${r.pingsDuring.ok} answered${r.pingsDuring.maxRttMs !== null ? ` (slowest ${r.pingsDuring.maxRttMs} ms)` : ''}, ${r.pingsDuring.failed} failed |
| real ping at the end | ${r.pingAtEnd.map((p) => `${p.encrypt ? 'encrypted' : 'plaintext'}: ${p.ok ? `${p.rttMs} ms` : 'failed'}`).join('; ')} |
| verdict | ${r.pass ? 'pass' : 'FAIL'} |

What each node received of the fuzz, what the kernel dropped before it, and what the node dropped, by reason
(a datagram can count at more than one layer):

| node | received | kernel drops | drops by reason |
|---|---|---|---|
${nodeRows}

![RSS of the node process during the run](fuzz-rss.svg)

Raw figures: \`bench/results/fuzz-udp.json\`. A short version runs in the tests
(\`test/fuzz.test.ts\`: 20,000 datagrams at both nodes, which still answer a ping).`
}

/** The fuzz section: the document's own, with the live-node part replaced (the whole template if the document has none). */
function fuzzSection(doc: string, r: Report): string {
  const cur = currentSection(doc, 'fuzz')
  const a = cur.indexOf(LIVE_START), b = cur.indexOf(LIVE_END)
  if (a >= 0 && b > a) return cur.slice(0, a) + liveNodePart(r) + '\n\n' + cur.slice(b)
  return section('fuzz', markdown(r))
}
const LIVE_START = "**A live node's UDP port**"
const LIVE_END = '**Coverage-guided fuzzing.**'

function markdown(r: Report): string {
  const live = liveNodePart(r)
  return `## Fuzzing

**Decoders** (\`test/fuzz.test.ts\`, fast-check, seeded by WEFT_SEED, about 10 s): every decoder of network
or file input gets random bytes and mutations of valid encodings (bit flips, truncation, extension,
boundary values in length and count fields, insertion, deletion): the wire codec (every message type,
MEMBERSHIP, BROADCAST and SWIM frames included), packed and text addresses, SWIM payloads, DHT
records, pub-sub messages and authorizations, the Mainline bencode gate and KRPC, signed peer
records, every Noise handshake step, the session, relay and channel packet parsers, polyring GUIDs.
Each must return a value or throw a WeftError with a code, and a value must encode back to the same
bytes. It found two decoder faults, both fixed in \`src/wire/messages.ts\`: an ERROR reason that is
not UTF-8 was decoded leniently (U+FFFD), so it did not encode back to its bytes and could outgrow
the 200-byte limit; and a reply with the request-only HAS_TOKEN flag was accepted, two encodings of
one reply. Both are now ERR_BAD_MESSAGE.

${live}

**Coverage-guided fuzzing.** Jazzer.js (\`@jazzer.js/core\` 2.x) installs here but does not run: its
prebuilt native fuzzer needs glibc 2.38 and this machine (Debian 12) has 2.36 (ERR_DLOPEN_FAILED), so
the harness is fast-check only.

## Amplification

\`test/amplification.test.ts\`: a stranger without a round-trip token sends one request of every
type and op (PING, FIND_NODE, FIND_NODE of its own id, GET, PUT, NEIGHBORS x4, LOCATE x3, CONNECT
x5, MEMBERSHIP x6, BROADCAST x5, SWIM x5), each at its smallest valid size and padded by 64 and 400
bytes, over real UDP to a live node with 23 peers, DHT records, a gossip channel with a cached
broadcast, SWIM members and Tapestry pointers (Kademlia, Tapestry and Chord, plaintext; Kademlia
encrypted, the request riding in an IK handshake, and an XX handshake). Everything that reaches the
stranger's socket within 2.6 s counts as the reply (dial-back probes from other ports too). Asserted:
reply bytes <= request bytes for each, RESP <= INIT for each handshake (XX: 137 <= 160 bytes), and
that the node does answer big when the asker is proven (a GET of 74 bytes: 55 bytes to a stranger,
835 to a proven asker). Before the fixes it found these, now refused to unproven askers:

| request | a stranger sent | got back (2.6 s) | fix |
|---|---|---|---|
| CONNECT DIAL / REACH | 50 bytes | 63 (seven dial-back probes, aimed at any address) | every CONNECT op needs a token; askers use requestProven |
| CONNECT SPRAY (found by the UDP fuzz) | 50 | 1,024 probes at random ports of the asker's IP | the same |
| MEMBERSHIP JOIN / NEIGHBOR | 78 | 1,952 / 1,801 (in the active view: shuffles, broadcasts) | needs a token; Channel.request uses requestProven |
| MEMBERSHIP FORWARD_JOIN | 117 | 234 (our NEIGHBOR requests to the named contact) | only from an active neighbour |
| MEMBERSHIP SHUFFLE | 181 | 273 (NEIGHBOR requests later, to the contact it put in our passive view) | only from an active neighbour; a SHUFFLE_REPLY only while a shuffle of ours is out |
| BROADCAST GRAFT | 95 | 1,095 (a cached payload; 64 ids: 64 of them) | only from a tree neighbour, or one that was one in the last 5.5 s (256 remembered) |
| BROADCAST IHAVE | 95 | 380 (our GRAFTs) | only from a tree neighbour, or one that was one in the last 5.5 s (256 remembered) |
| SWIM GOSSIP naming itself alive | 94 | about 2.4 kB in 2.6 s (it became a member: probes, gossip) | a non-member's SWIM message is dropped unless it carries a round-trip token (a join's sync request does); a member's address moves only on proof (\`membership.stats.unproven\`) |
`
}

// Run as a script (the parent), or as the node process (--serve).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv.includes('--serve')) void serve()
  else main().catch((err: unknown) => { console.error(err); process.exit(1) })
}
export type { ChildProcess }
