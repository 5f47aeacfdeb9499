// The iterative lookup of BEP 5: ask the nearest known nodes, alpha at a time, and every node
// they name, until the k nearest that answered have all been asked. Candidates are ranked by
// XOR distance to the target and bounded (8k); a lookup sends at most maxQueries requests and
// ends by its deadline whatever happens.
import type { Runtime } from '../../runtime/runtime.js'
import type { Address } from '../../wire/address.js'
import type { Reply } from './krpc.js'
import { compareXor, type MainlineContact } from './table.js'

/** A contact a lookup asked, with the write token it answered with. */
export interface LookupContact extends MainlineContact { token?: Uint8Array }

export interface LookupParams {
  runtime: Runtime
  self: Uint8Array
  target: Uint8Array
  k: number
  alpha: number
  maxQueries: number
  timeoutMs: number
  /** The nearest contacts of the routing table. */
  seeds: MainlineContact[]
  /** Known only by address (bootstrap nodes): asked at once, ranked once they answer with an id. At most 16. */
  unranked?: Address[]
  /** Sends the lookup's query; `id` (when known) must be the id that answers. */
  ask(address: Address, id: Uint8Array | null): Promise<Reply>
  /** Whether a named contact may be used (BEP 42). */
  admissible?(c: MainlineContact): boolean
  /** Sees each answer; false ends the lookup at once. */
  onReply?(from: LookupContact, r: Reply): boolean | void
}

type State = 'new' | 'asked' | 'answered' | 'failed'
type Candidate = LookupContact & { state: State }
const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')
const equal = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i])

/** Resolves (never rejects) with the k nearest contacts that answered, nearest first. */
export function iterativeLookup(p: LookupParams): Promise<LookupContact[]> {
  const { k, alpha, target } = p
  const cands: Candidate[] = []
  const known = new Set<string>()
  const maxCandidates = k * 8
  const add = (c: MainlineContact): Candidate | null => {
    if (equal(c.id, p.self)) return null
    const key = hex(c.id)
    if (known.has(key)) return cands.find((x) => equal(x.id, c.id)) ?? null
    known.add(key)
    let i = cands.length
    while (i > 0 && compareXor(target, c.id, cands[i - 1].id) < 0) i--
    if (i >= maxCandidates) return null
    const cand: Candidate = { id: c.id, address: c.address, state: 'new' }
    cands.splice(i, 0, cand)
    if (cands.length > maxCandidates) cands.length = maxCandidates
    return cand
  }
  for (const c of p.seeds) add(c)
  return new Promise((resolve) => {
    let inflight = 0
    let sent = 0
    let done = false
    const finish = (): void => {
      if (done) return
      done = true
      p.runtime.clearTimeout(timer)
      resolve(cands.filter((c) => c.state === 'answered').slice(0, k).map(({ id, address, token }) => ({ id, address, token })))
    }
    const timer = p.runtime.setTimeout(finish, p.timeoutMs)
    const answered = (c: LookupContact, r: Reply): void => {
      if (done) return
      if (p.onReply?.(c, r) === false) return finish()
      for (const n of r.nodes ?? []) if (!p.admissible || p.admissible(n)) add(n)
    }
    const ask = (address: Address, cand: Candidate | null): void => {
      inflight++
      sent++
      p.ask(address, cand?.id ?? null).then((r) => {
        // A bootstrap node now has an id: it takes its place in the ranking, as answered.
        const c = cand ?? add({ id: r.id, address })
        if (c) { c.state = 'answered'; c.token = r.token }
        answered(c ?? { id: r.id, address, token: r.token }, r)
      }, () => { if (cand) cand.state = 'failed' }).finally(() => { inflight--; pump() })
    }
    const pump = (): void => {
      if (done) return
      let window = 0
      for (const c of cands) {
        if (inflight >= alpha || window >= k) break
        if (c.state === 'failed') continue
        window++
        if (c.state === 'new' && sent < p.maxQueries) { c.state = 'asked'; ask(c.address, c) }
      }
      if (inflight === 0) finish()
    }
    for (const address of new Set(p.unranked?.slice(0, 16))) ask(address, null)
    pump()
  })
}
