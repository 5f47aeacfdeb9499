// webtorrent's bittorrent-dht (untyped, ESM-only) for interop tests: the shape we use, and a
// starter that never lets it near the public routers it bootstraps from by default.
import assert from 'node:assert/strict'
import { verifyBytes } from '../../src/identity/keys.js'

export interface BtPeer { host: string; port: number }
export interface BtGetResult { v: Buffer; k?: Buffer; sig?: Buffer; seq?: number; id: Buffer }
export interface BtDht {
  nodeId: Buffer
  listen(port: number, host: string, cb?: () => void): void
  address(): { address: string; port: number }
  announce(infoHash: Buffer, port: number, cb: (err: Error | null) => void): void
  lookup(infoHash: Buffer, cb: (err: Error | null, visited: number) => void): () => void
  put(opts: { v: Buffer; k?: Buffer; seq?: number; salt?: Buffer; cas?: number; sign?: (b: Buffer) => Buffer }, cb: (err: Error | null, hash: Buffer, n: number) => void): void
  get(key: Buffer, opts: { salt?: Buffer; cache?: boolean }, cb: (err: Error | null, res: BtGetResult | null) => void): void
  on(event: 'peer', fn: (peer: BtPeer, infoHash: Buffer) => void): void
  on(event: 'error' | 'warning', fn: (err: Error) => void): void
  once(event: 'ready', fn: () => void): void
  destroy(cb?: () => void): void
  nodes: { count(): number }
  /** k-rpc underneath: its iterative walk, to see which nodes a lookup reaches. */
  _rpc: {
    id: Buffer
    closest(target: Buffer, message: object, visit: (res: { r?: { id?: Buffer } }, peer: BtPeer) => boolean | void, cb: (err: Error | null) => void): void
  }
}
type BtCtor = new (opts: { bootstrap: false | BtPeer[]; verify?: (sig: Buffer, msg: Buffer, pk: Buffer) => boolean }) => BtDht

// A non-literal specifier keeps tsc from looking for the type declarations the package lacks.
const SPECIFIER: string = 'bittorrent-dht'
let ctor: BtCtor | null = null

/** BEP 44 verification for bittorrent-dht, on node:crypto Ed25519. */
export const btVerify = (sig: Buffer, msg: Buffer, pk: Buffer): boolean => verifyBytes(pk, msg, sig)

/**
 * A bittorrent-dht node on 127.0.0.1 (port 0), joined through the given loopback nodes (or none:
 * `false`), resolved once it has bootstrapped. Never started with its default bootstrap list.
 */
export async function startBt(bootstrap: string[] | false): Promise<BtDht> {
  if (bootstrap !== false) {
    assert.ok(bootstrap.length > 0, 'an empty list would mean the public routers')
    for (const a of bootstrap) assert.ok(a.startsWith('127.0.0.1:'), `bittorrent-dht may only bootstrap on loopback, not ${a}`)
  }
  ctor ??= ((await import(SPECIFIER)) as { default: BtCtor }).default
  const dht = new ctor({
    bootstrap: bootstrap === false ? false : bootstrap.map((a) => ({ host: '127.0.0.1', port: Number(a.split(':')[1]) })),
    verify: btVerify,
  })
  dht.on('error', (err) => process.stderr.write(`bittorrent-dht: ${err.message}\n`))
  dht.on('warning', () => {}) // unanswered queries and the like
  // Bind at once: the bootstrap query goes out on the next tick, and dgram queues it until bound.
  const listening = new Promise<void>((resolve) => dht.listen(0, '127.0.0.1', resolve))
  const ready = new Promise<void>((resolve) => dht.once('ready', resolve))
  await Promise.all([listening, ready])
  return dht
}

export const btAddress = (d: BtDht): string => `127.0.0.1:${d.address().port}`

export function btDestroy(d: BtDht): Promise<void> {
  return new Promise((resolve) => d.destroy(() => resolve()))
}

/** A bittorrent-dht call with a node-style callback as a promise. */
export function cb<T>(call: (done: (err: Error | null, value?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => call((err, value) => (err ? reject(err) : resolve(value as T))))
}
