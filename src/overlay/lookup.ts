// The iterative lookup, Kademlia's, ranked by any topology's metric (Chord and Pastry use it
// too): keep alpha requests in flight to the nearest unasked candidates and stop when the
// `verify` nearest candidates that did not fail have all answered. The result is the k nearest
// candidates: the first `verify` proven live by their answers, the rest as
// reported by those nearest nodes (which know their own neighbourhood best). verify = k is the
// paper's rule; a smaller verify saves most of the datagrams when the table entries are fresh.
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
}

export function iterativeFindNode(p: LookupParams): Promise<LookupResult> {
  return new Promise((resolve, reject) => {
    const started = p.runtime.now()
    const maxCandidates = p.maxCandidates ?? p.k * 3
    const compare = p.compare ?? compareDistance
    const list: Candidate[] = [] // nearest first; bootstrap entries (no id) at the front
    const known = new Set<Address>()
    let inFlight = 0
    const strict = p.verify >= p.k
    let messages = 0
    let failed = 0
    let done = false

    /** Where `id` belongs in distance order (after the bootstrap entries, which have no id). */
    const position = (id: NodeId): number => {
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
    const insert = (id: NodeId | null, address: Address, state: State, hop: number): void => {
      if (id === null) {
        if (known.has(address) || address.endsWith(':0')) return // port 0 reaches nobody
        list.unshift({ id, address, state, hop }); known.add(address); return
      }
      const at = position(id)
      if (at >= maxCandidates) return
      if (at < list.length && list[at].address === address && idEquals(list[at].id!, id)) return // already a candidate
      if (known.has(address) || address.endsWith(':0')) return
      place(at, { id, address, state, hop })
    }
    const place = (at: number, c: Candidate): void => {
      if (at >= maxCandidates) return
      list.splice(at, 0, c)
      known.add(c.address)
      if (list.length > maxCandidates) {
        const dropped = list.pop()!
        known.delete(dropped.address)
      }
    }

    insert(p.self.id, p.self.address, State.ANSWERED, 0)
    for (const a of p.bootstrap ?? []) if (a !== p.self.address) insert(null, a, State.NEW, 1)
    for (const s of p.seeds) insert(s.id, s.address, State.NEW, 1)

    const finish = (err: WeftError | null): void => {
      if (done) return
      done = true
      p.signal?.removeEventListener('abort', onAbort)
      if (err) { reject(err); return }
      const closest: Contact[] = []
      let hops = 0
      for (const c of list) {
        if (c.state === State.FAILED || c.slow || c.id === null) continue // slow: out of consideration
        if (closest.length === 0) hops = c.hop
        closest.push({ id: c.id, address: c.address })
        if (closest.length === p.k) break
      }
      resolve({ target: p.target, closest, hops, messages, failed, durationMs: p.runtime.now() - started })
    }
    const onAbort = (): void => finish(new WeftError('ERR_ABORTED', 'lookup aborted'))
    if (p.signal?.aborted) { onAbort(); return }
    p.signal?.addEventListener('abort', onAbort)

    const ask = (c: Candidate): void => {
      c.state = State.ASKED
      inFlight++
      messages++
      const request = p.query?.request ?? { type: MessageType.FIND_NODE, target: p.target }
      const expect = p.query ? MAX_PACKET : expectedNodesReplyBytes(c.address, p.k)
      // The paper's rule: a node that does not answer quickly is left out of consideration
      // until it does, so a dead node near the target costs two timeouts, not all retries (the
      // first timeout alone is too often a lost datagram or a low first guess of the RTT).
      // A strict lookup (every result must have answered) waits for it to answer or fail.
      const onSlow = strict ? undefined : (): void => {
        if (done || c.state !== State.ASKED || c.slow) return // (a resent request times out anew)
        c.slow = true
        inFlight--
        pump()
      }
      if (c.id !== null) p.rpc.expectPeer(c.address, c.id)
      p.rpc.request(c.address, request, expect, (err, reply) => {
        if (!c.slow) inFlight--
        else c.slow = false
        if (done) return
        const withContacts = reply && (reply.type === MessageType.NODES || reply.type === MessageType.VALUES) ? reply : null
        if (err || !withContacts || (c.id !== null && !idEquals(c.id, withContacts.sender))) {
          // No answer, a refusal, or a different node now at that address.
          c.state = State.FAILED
          failed++
          if (c.id && err?.code === 'ERR_TIMEOUT') p.onFailed?.({ id: c.id, address: c.address })
          pump()
          return
        }
        messages++
        if (c.id === null) {
          // A bootstrap address answered: it now has an id and a place in distance order.
          known.delete(c.address)
          list.splice(list.indexOf(c), 1)
          c.id = withContacts.sender
          place(position(c.id), c)
        }
        c.state = State.ANSWERED
        for (const r of withContacts.contacts) insert(r.id, r.address, State.NEW, c.hop + 1)
        if (p.query?.onReply({ id: c.id!, address: c.address }, withContacts)) { finish(null); return }
        pump()
      }, onSlow)
    }

    const pump = (): void => {
      if (done) return
      let live = 0
      let settled = true // the `verify` nearest live candidates have all answered
      for (const c of list) {
        if (c.state === State.FAILED || c.slow) continue
        if (live++ >= p.verify && c.id !== null) break
        if (c.state !== State.ANSWERED) settled = false
        if (c.state === State.NEW && inFlight < p.alpha) ask(c)
      }
      if (settled || inFlight === 0) finish(null)
    }
    pump()
  })
}
