// The iterative lookup, Kademlia's, ranked by any topology's metric (Chord and Pastry use it
// too): keep alpha requests in flight to the nearest unasked candidates and stop when the
// `verify` nearest candidates that did not fail have all answered. The result is the k nearest
// candidates: the first `verify` proven live by their answers, the rest as
// reported by those nearest nodes (which know their own neighbourhood best). verify = k is the
// paper's rule; a smaller verify saves most of the datagrams when the table entries are fresh.
//
// With d > 1 disjoint paths (S/Kademlia, Baumgart and Mizrak 2007) the seeds are dealt out to d
// walks, each with its own candidates, its own share of alpha and the ending rule above; a node
// asked by one path is never asked by another (nor waited for by it), so a path that meets a
// liar stays stuck with the liars it names while the others go round them. The result merges
// the paths' results, nearest first. d = 1 is the plain lookup, step for step.
import { WeftError } from '../errors.js'
import { compareDistance, idEquals, type NodeId } from '../identity/node-id.js'
import type { Rpc } from '../rpc/rpc.js'
import { expectedNodesReplyBytes } from '../rpc/rpc.js'
import type { Runtime } from '../runtime/runtime.js'
import type { Address } from '../wire/address.js'
import { MAX_PACKET, MessageType } from '../wire/messages.js'
import type { Contact, LookupQuery, LookupResult } from './topology.js'

const enum State { NEW, ASKED, ANSWERED, FAILED }

interface Candidate {
  id: NodeId | null // null for a bootstrap address whose id is not known yet
  address: Address
  state: State
  hop: number
  /** Asked, and its first attempt timed out: not waited for (nor counted in flight) unless it answers. */
  slow?: boolean
}

export interface LookupParams {
  runtime: Runtime
  rpc: Rpc
  self: Contact
  target: NodeId
  k: number
  alpha: number
  /** Nearest candidates that must answer before the lookup ends (1..k). */
  verify: number
  seeds: Contact[]
  /** Addresses with no known id (bootstrap): asked first. */
  bootstrap?: Address[]
  signal?: AbortSignal
  query?: LookupQuery
  onFailed?: (c: Contact) => void
  /** Bound on candidates kept, nearest first. */
  maxCandidates?: number
  /** The order of responsibility for the target (default: XOR distance, Kademlia's). */
  compare?: (target: Uint8Array, a: Uint8Array, b: Uint8Array) => number
  /** Disjoint paths (1..MAX_DISJOINT_PATHS, default 1): each keeps max(1, floor(alpha / d)) requests in flight. */
  disjoint?: number
  /** Contacts in replies whose id fails this are ignored (e.g. a crypto-puzzle check). */
  acceptId?: (id: NodeId) => boolean
}

/** The most disjoint paths one lookup may walk (S/Kademlia measured up to 8 or so; each costs its own requests). */
export const MAX_DISJOINT_PATHS = 16

/** One walk of a lookup: its candidates nearest first (bootstrap entries, with no id, at the front). */
interface Path {
  index: number
  list: Candidate[]
  known: Set<Address>
  inFlight: number
  done: boolean
}

export function iterativeFindNode(p: LookupParams): Promise<LookupResult> {
  return new Promise((resolve, reject) => {
    const started = p.runtime.now()
    const maxCandidates = p.maxCandidates ?? p.k * 3
    const compare = p.compare ?? compareDistance
    const d = p.disjoint ?? 1
    if (!Number.isInteger(d) || d < 1 || d > MAX_DISJOINT_PATHS) {
      reject(new WeftError('ERR_BAD_ARGUMENT', `disjoint paths must be a whole number from 1 to ${MAX_DISJOINT_PATHS}, got ${d}`))
      return
    }
    const alpha = Math.max(1, Math.floor(p.alpha / d))
    const paths: Path[] = Array.from({ length: d }, (_, index) => ({ index, list: [], known: new Set<Address>(), inFlight: 0, done: false }))
    /** With several paths: which path asked each address (a node is asked by one path at most). */
    const claimed = d > 1 ? new Map<Address, number>() : null
    let running = d
    const strict = p.verify >= p.k
    let messages = 0
    let failed = 0
    let done = false

    /** Where `id` belongs in distance order (after the bootstrap entries, which have no id). */
    const position = (list: Candidate[], id: NodeId): number => {
      let lo = 0, hi = list.length
      while (lo < hi) {
        const mid = (lo + hi) >> 1
        const m = list[mid]
        if (m.id === null || compare(p.target, m.id, id) < 0) lo = mid + 1
        else hi = mid
      }
      return lo
    }

    // Most contacts in a reply are already candidates, or too far to keep: those are refused
    // before any object is made for them.
    const insert = (path: Path, id: NodeId | null, address: Address, state: State, hop: number): void => {
      const { list, known } = path
      if (id === null) {
        if (known.has(address) || address.endsWith(':0')) return // port 0 reaches nobody
        list.unshift({ id, address, state, hop }); known.add(address); return
      }
      const at = position(list, id)
      if (at >= maxCandidates) return
      if (at < list.length && list[at].address === address && idEquals(list[at].id!, id)) return // already a candidate
      if (known.has(address) || address.endsWith(':0')) return
      place(path, at, { id, address, state, hop })
    }
    const place = (path: Path, at: number, c: Candidate): void => {
      if (at >= maxCandidates) return
      const { list, known } = path
      list.splice(at, 0, c)
      known.add(c.address)
      if (list.length > maxCandidates) {
        const dropped = list.pop()!
        known.delete(dropped.address)
      }
    }

    for (const path of paths) insert(path, p.self.id, p.self.address, State.ANSWERED, 0)
    // S/Kademlia: the starting contacts are dealt out to the paths in turn, nearest first.
    let dealt = 0
    for (const a of p.bootstrap ?? []) if (a !== p.self.address) insert(paths[dealt++ % d], null, a, State.NEW, 1)
    dealt = 0
    for (const s of p.seeds) insert(paths[dealt++ % d], s.id, s.address, State.NEW, 1)

    /** A path's result as the plain lookup gives it: up to k candidates that did not fail, nearest first. */
    const resultOf = (path: Path, out: { c: Candidate; path: number }[]): void => {
      let n = 0
      for (const c of path.list) {
        if (c.state === State.FAILED || c.slow || c.id === null) continue // slow: out of consideration
        out.push({ c, path: path.index })
        if (++n === p.k) break
      }
    }

    const finish = (err: WeftError | null): void => {
      if (done) return
      done = true
      p.signal?.removeEventListener('abort', onAbort)
      if (err) { reject(err); return }
      const merged: { c: Candidate; path: number }[] = []
      for (const path of paths) resultOf(path, merged)
      // Several paths: nearest first over all of them, each node once (every path holds self),
      // leaving out a node that failed (or is slow) on the path that asked it.
      let seen: Set<Address> | null = null
      if (d > 1) {
        merged.sort((x, y) => compare(p.target, x.c.id!, y.c.id!) || x.path - y.path)
        seen = new Set<Address>()
        for (const path of paths) for (const c of path.list) if (c.state === State.FAILED || c.slow) seen.add(c.address)
      }
      const closest: Contact[] = []
      let hops = 0
      for (const { c } of merged) {
        if (seen) { if (seen.has(c.address)) continue; seen.add(c.address) }
        if (closest.length === 0) hops = c.hop
        closest.push({ id: c.id!, address: c.address })
        if (closest.length === p.k) break
      }
      resolve({ target: p.target, closest, hops, messages, failed, durationMs: p.runtime.now() - started })
    }
    const onAbort = (): void => finish(new WeftError('ERR_ABORTED', 'lookup aborted'))
    if (p.signal?.aborted) { onAbort(); return }
    p.signal?.addEventListener('abort', onAbort)

    const ask = (path: Path, c: Candidate): void => {
      c.state = State.ASKED
      path.inFlight++
      messages++
      claimed?.set(c.address, path.index)
      const request = p.query?.request ?? { type: MessageType.FIND_NODE, target: p.target }
      const expect = p.query ? MAX_PACKET : expectedNodesReplyBytes(c.address, p.k)
      // The paper's rule: a node that does not answer quickly is left out of consideration
      // until it does, so a dead node near the target costs two timeouts, not all retries (the
      // first timeout alone is too often a lost datagram or a low first guess of the RTT).
      // A strict lookup (every result must have answered) waits for it to answer or fail.
      const onSlow = strict ? undefined : (): void => {
        if (done || path.done || c.state !== State.ASKED || c.slow) return // (a resent request times out anew)
        c.slow = true
        path.inFlight--
        pump(path)
      }
      if (c.id !== null) p.rpc.expectPeer(c.address, c.id)
      p.rpc.request(c.address, request, expect, (err, reply) => {
        if (!c.slow) path.inFlight--
        else c.slow = false
        if (done || path.done) return
        const withContacts = reply && (reply.type === MessageType.NODES || reply.type === MessageType.VALUES) ? reply : null
        if (err || !withContacts || (c.id !== null && !idEquals(c.id, withContacts.sender))) {
          // No answer, a refusal, or a different node now at that address.
          c.state = State.FAILED
          failed++
          if (c.id && err?.code === 'ERR_TIMEOUT') p.onFailed?.({ id: c.id, address: c.address })
          pump(path)
          return
        }
        messages++
        if (c.id === null) {
          // A bootstrap address answered: it now has an id and a place in distance order.
          path.known.delete(c.address)
          path.list.splice(path.list.indexOf(c), 1)
          c.id = withContacts.sender
          place(path, position(path.list, c.id), c)
        }
        c.state = State.ANSWERED
        for (const r of withContacts.contacts) {
          if (p.acceptId && !p.acceptId(r.id)) continue
          insert(path, r.id, r.address, State.NEW, c.hop + 1)
        }
        if (p.query?.onReply({ id: c.id!, address: c.address }, withContacts)) { finish(null); return }
        pump(path)
      }, onSlow)
    }

    const pump = (path: Path): void => {
      if (done || path.done) return
      let live = 0
      let settled = true // the `verify` nearest live candidates of this path have all answered
      for (const c of path.list) {
        if (c.state === State.FAILED || c.slow) continue
        if (claimed !== null && c.state === State.NEW) {
          // Another path asked it: not this path's to ask, nor to wait for.
          const owner = claimed.get(c.address)
          if (owner !== undefined && owner !== path.index) continue
        }
        if (live++ >= p.verify && c.id !== null) break
        if (c.state !== State.ANSWERED) settled = false
        if (c.state === State.NEW && path.inFlight < alpha) ask(path, c)
      }
      if (settled || path.inFlight === 0) {
        path.done = true
        if (--running === 0) finish(null)
      }
    }
    for (const path of paths) pump(path)
  })
}
