// The API's client, used by every `weft` command that asks a running node.
import { WeftError, type ErrorCode } from '../errors.js'
import { parseAddress } from '../wire/address.js'

/** A node's API: HOST:PORT, or HOST:PORT with the bearer token it wants. */
export type ApiTarget = string | { address: string; token?: string }

/** Calls a node's API; errors come back as WeftError with the node's code. */
export async function callApi<T>(target: ApiTarget, path: string, init?: { method?: string; body?: unknown }): Promise<T> {
  const { address, token } = typeof target === 'string' ? { address: target, token: undefined } : target
  parseAddress(address)
  const headers: Record<string, string> = {}
  if (init?.body !== undefined) headers['content-type'] = 'application/json'
  if (token) headers.authorization = `Bearer ${token}`
  let res: Response
  try {
    res = await fetch(`http://${address}${path}`, {
      method: init?.method ?? 'GET',
      headers,
      body: init?.body !== undefined ? JSON.stringify(init.body) : undefined,
      signal: AbortSignal.timeout(30_000),
    })
  } catch (err) {
    throw new WeftError('ERR_API', `no Weft node API at ${address} (is \`weft node\` running? pass --api HOST:PORT)`, { cause: err })
  }
  const body = (await res.json().catch(() => null)) as { error?: { code: ErrorCode; message: string } } | null
  if (!res.ok) {
    const e = body?.error
    throw new WeftError(e?.code ?? 'ERR_API', e?.message ?? `API answered HTTP ${res.status}`)
  }
  return body as T
}
