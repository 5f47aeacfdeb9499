// The answering side of a Mainline node: one function per KRPC method, from a validated query to
// a reply or the KRPC error its BEP names (with the Weft code it is counted under). State lives
// in the routing table, the store and the write tokens the server is given.
import { WeftError, type ErrorCode } from '../../errors.js'
import type { Runtime } from '../../runtime/runtime.js'
import type { Address } from '../../wire/address.js'
import { MAX_SALT_BYTES, MAX_VALUE_BYTES, mutableTarget, sha1, signedBytes } from './items.js'
import { decodeValue, encodeValue, hostOf, KrpcCode, type Query, type QueryArgs, type Reply } from './krpc.js'
import type { MainlineStore, StoredItem } from './store.js'
import type { KTable } from './table.js'
import type { WriteTokens } from './tokens.js'

/** A query answered with a KRPC error: the Weft code it is counted under, the KRPC code and text. */
export interface Refusal { code: ErrorCode; krpc: number; text: string }
const refuse = (code: ErrorCode, krpc: number, text: string): Refusal => ({ code, krpc, text })
export const isRefusal = (o: Reply | Refusal): o is Refusal => 'krpc' in o

export interface ServerContext {
  runtime: Runtime
  id: Uint8Array
  table: KTable
  store: MainlineStore
  tokens: WriteTokens
  /** Contacts in a `nodes` answer, and peers in a `values` answer. */
  k: number
  maxValuesPerReply: number
}

const EMPTY = new Uint8Array(0)

/** The answer to a query from `from`: a reply, a refusal, or (put: signatures are checked off-thread) a promise of one. */
export function answerQuery(ctx: ServerContext, from: Address, q: Query): Reply | Refusal | Promise<Reply | Refusal> {
  const a = q.a
  const now = ctx.runtime.now()
  const ip = hostOf(from)
  const nodes = (target: Uint8Array) => ctx.table.closest(target, ctx.k)
  switch (q.q) {
    case 'ping': return { id: ctx.id }
    case 'find_node': return { id: ctx.id, nodes: nodes(a.target!) }
    case 'get_peers': {
      const values = ctx.store.peers(a.infoHash!, now, ctx.maxValuesPerReply)
      return { id: ctx.id, token: ctx.tokens.issue(ip, now), nodes: nodes(a.infoHash!), values: values.length ? values : undefined }
    }
    case 'announce_peer': {
      if (!ctx.tokens.valid(ip, a.token!, now)) return refuse('ERR_BAD_TOKEN', KrpcCode.PROTOCOL, 'Protocol Error: bad token')
      const port = a.impliedPort ? Number(from.slice(from.lastIndexOf(':') + 1)) : a.port!
      try {
        ctx.store.addPeer(a.infoHash!, from.startsWith('[') ? `[${ip}]:${port}` : `${ip}:${port}`, now)
      } catch (err) {
        return serverError(err)
      }
      return { id: ctx.id }
    }
    case 'get': return answerGet(ctx, a, ip, now, nodes(a.target!))
    case 'put': return answerPut(ctx, a, ip, now)
  }
}

function answerGet(ctx: ServerContext, a: QueryArgs, ip: string, now: number, nodes: Reply['nodes']): Reply {
  const r: Reply = { id: ctx.id, token: ctx.tokens.issue(ip, now), nodes }
  const item = ctx.store.getItem(a.target!, now)
  if (item) {
    if (item.seq !== undefined) { r.k = item.k; r.sig = item.sig; r.seq = item.seq }
    // BEP 44: a get that names a seq wants the value only when a newer one is held.
    const v = decodeValue(item.v)
    if (v.ok && (item.seq === undefined || a.seq === undefined || item.seq > a.seq)) r.v = v.value
  }
  return r
}

async function answerPut(ctx: ServerContext, a: QueryArgs, ip: string, now: number): Promise<Reply | Refusal> {
  if (!ctx.tokens.valid(ip, a.token!, now)) return refuse('ERR_BAD_TOKEN', KrpcCode.PROTOCOL, 'Protocol Error: bad token')
  const vBytes = encodeValue(a.v!)
  if (vBytes.length > MAX_VALUE_BYTES) return refuse('ERR_VALUE_TOO_LARGE', KrpcCode.VALUE_TOO_BIG, 'Message (v field) too big')
  let item: Omit<StoredItem, 'expiresAt'>
  if (a.k) {
    const salt = a.salt ?? EMPTY
    if (salt.length > MAX_SALT_BYTES) return refuse('ERR_VALUE_TOO_LARGE', KrpcCode.SALT_TOO_BIG, 'salt (salt field) too big')
    if (!(await ctx.runtime.verifySignature(a.k, signedBytes(salt, a.seq!, vBytes), a.sig!))) {
      return refuse('ERR_BAD_SIGNATURE', KrpcCode.BAD_SIGNATURE, 'invalid signature')
    }
    item = { target: mutableTarget(a.k, salt), v: vBytes, k: a.k, sig: a.sig, seq: a.seq, salt: salt.length ? salt : undefined }
  } else {
    item = { target: sha1(vBytes), v: vBytes }
  }
  try {
    ctx.store.putItem(item, ctx.runtime.now(), a.k ? a.cas : undefined)
  } catch (err) {
    const code = (err as WeftError).code
    if (code === 'ERR_CAS_MISMATCH') return refuse(code, KrpcCode.CAS_MISMATCH, 'CAS mismatch, re-read value and try again')
    if (code === 'ERR_STALE_SEQ') return refuse(code, KrpcCode.SEQ_TOO_LOW, 'sequence number less than current')
    return serverError(err)
  }
  return { id: ctx.id }
}

/** A failure of this node (a full store, a bug): KRPC 202. */
export function serverError(err: unknown): Refusal {
  const code: ErrorCode = err instanceof WeftError ? err.code : 'ERR_BUSY'
  return refuse(code, KrpcCode.SERVER, `Server Error: ${(err as Error)?.message ?? String(err)}`)
}
