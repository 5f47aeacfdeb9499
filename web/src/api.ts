// Calls to the node's control API (spec/openapi.yaml). Errors come back as ApiError with the
// node's code; a 401 asks for the bearer token, kept for this tab only.
export class ApiError extends Error {
  constructor(readonly code: string, message: string, readonly status: number) { super(message) }
}

const TOKEN_KEY = 'weft-api-token'
let onUnauthorized: () => void = () => {}
export const setUnauthorizedHandler = (fn: () => void): void => { onUnauthorized = fn }
export const setToken = (t: string): void => sessionStorage.setItem(TOKEN_KEY, t)

export async function api<T>(path: string, init: { method?: string; body?: unknown; timeoutMs?: number } = {}): Promise<T> {
  const headers: Record<string, string> = {}
  const token = sessionStorage.getItem(TOKEN_KEY)
  if (token) headers.authorization = `Bearer ${token}`
  if (init.body !== undefined) headers['content-type'] = 'application/json'
  let res: Response
  try {
    res = await fetch(path, {
      method: init.method ?? 'GET', headers,
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      signal: AbortSignal.timeout(init.timeoutMs ?? 30_000),
    })
  } catch (err) {
    throw new ApiError('ERR_API', `the node does not answer (${(err as Error).message})`, 0)
  }
  const body = await res.json().catch(() => null) as { error?: { code: string; message: string } } | null
  if (!res.ok) {
    if (res.status === 401) onUnauthorized()
    throw new ApiError(body?.error?.code ?? 'ERR_API', body?.error?.message ?? `HTTP ${res.status}`, res.status)
  }
  return body as T
}

/** What the API serves (GET /v1/dashboard). */
export interface DashboardInfo { id: string; topology: string; devnet: { nodes: number; traffic: boolean } | null; pubsub: boolean }
export interface Contact { id: string; address: string }
export interface Peer extends Contact { slot: string; lastSeenMs: number; failures: number }
export interface Status {
  id: string; address: string; observedAddress: string | null; topology: string; peers: number; uptimeMs: number; rttMs: number | null
  transport: { packetsIn: number; packetsOut: number; bytesIn: number; bytesOut: number; oversizeDropped: number }
  sessions: ({ open: number; sessionsOpened: number; handshakeFailures: number; decryptFailures: number } & Record<string, number>) | null
  nat: { type: string; reachable: boolean | null; publicAddress: string | null; relay: string | null; relayedAddress: string | null; observed: { by: string; as: string }[] }
  rpc: Record<string, unknown>
  records: { count: number; bytes: number }
}
export interface DevnetNode { index: number; id: string; address: string | null; running: boolean; peers: number; packetsIn: number; packetsOut: number; bytesIn: number; bytesOut: number; records: number }
export interface DevnetNodes { topology: string; served: string; atMs: number; nodes: DevnetNode[] }
export interface TrafficWindow { seq: number; atMs: number; packets: number; links: [number, number, number][]; otherPackets: number }
export interface Traffic { windowMs: number; seq: number; windows: TrafficWindow[] }
export interface TraceStep { id: string; address: string; hop: number; via: string | null; atMs: number; returned: number; learned: number }
export interface LookupTrace {
  target: string; from: Contact; closest: Contact[]; hops: number; messages: number; failed: number; durationMs: number
  steps: TraceStep[]; path: Contact[]
}
