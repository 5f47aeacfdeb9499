// bittorrent-dht BEP 44 put/get figures: N nodes on 127.0.0.1 bootstrapped only to each other
// (as in the lookup bench), immutable `put({ v })` / `get(hash)` and mutable `put({ k, seq, v,
// sign })` / `get(hash)`, Ed25519 signing and verification with node:crypto.
import { createHash } from 'node:crypto'
import {
  bytesEqual, ed25519FromSeed, ed25519Sign, ed25519Verifier, MUTABLE_SEQ, planPuts, runDhtPhases,
  type DhtAdapter, type DhtFigures, type Ed25519KeyPair
} from '../lib/dht.js'
import { assertLoopbackOnly, datagramCounter } from '../lib/measure.js'
import { createRng } from '../lib/stats.js'
import { BITTORRENT_DHT, destroyBittorrentNetwork, startBittorrentNetwork, type BtDht, type BtDhtCtor } from './bittorrent-dht.js'

interface PutOptions {
  v: Buffer
  k?: Buffer
  seq?: number
  sign?: (buf: Buffer) => Buffer
}
interface GetResult {
  v: Buffer
  k?: Buffer
  seq?: number
}
interface BtDhtStore extends BtDht {
  put(opts: PutOptions, cb: (err: Error | null, hash: Buffer, n: number) => void): Buffer
  get(hash: Buffer, cb: (err: Error | null, res: GetResult | null) => void): void
}

const sha1 = (b: Buffer): Buffer => createHash('sha1').update(b).digest()

function put(dht: BtDhtStore, opts: PutOptions, key: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    dht.put(opts, (err, hash, n) => {
      if (err) return reject(err)
      if (!hash.equals(key)) return reject(new Error(`put stored under ${hash.toString('hex')}, expected ${key.toString('hex')}`))
      resolve(n)
    })
  })
}

function get(dht: BtDhtStore, key: Buffer): Promise<GetResult | null> {
  return new Promise((resolve, reject) => dht.get(key, (err, res) => (err ? reject(err) : resolve(res))))
}

export async function benchBittorrentDhtStore(nodes: number, puts: number, seed: number, progress?: (line: string) => void): Promise<DhtFigures> {
  const { default: DHT } = (await import(BITTORRENT_DHT)) as { default: BtDhtCtor }
  const counter = datagramCounter()
  const rng = createRng(seed)
  const plan = planPuts(rng, nodes, puts)
  const dhts: BtDht[] = []
  const t0 = performance.now()
  try {
    // Every node verifies mutable records (without `verify`, bittorrent-dht refuses them).
    await startBittorrentNetwork(DHT, nodes, rng, dhts, { verify: ed25519Verifier() })
    const setupMs = performance.now() - t0
    const node = (i: number) => dhts[i] as BtDhtStore

    const adapter: DhtAdapter<Buffer, Ed25519KeyPair> = {
      writer: (s) => ed25519FromSeed(s),
      // BEP 44: an immutable key is SHA-1 of the bencoded value; a mutable one SHA-1 of the key (no salt).
      immutableKey: (value) => sha1(Buffer.concat([Buffer.from(`${value.length}:`), value])),
      mutableKey: (kp) => sha1(kp.publicKey),
      putImmutable: (by, value, key) => put(node(by), { v: value }, key),
      async getImmutable(from, key, value) {
        // get() checks that the value hashes to the key and stops at the first such reply.
        const r = await get(node(from), key)
        return r?.v ? { found: true, verified: bytesEqual(r.v, value) } : { found: false, verified: false }
      },
      putMutable: (by, kp, value, key) => put(node(by), { v: value, k: kp.publicKey, seq: MUTABLE_SEQ, sign: (buf) => ed25519Sign(kp, buf) }, key),
      async getMutable(from, kp, key, value) {
        // get() walks the whole query, keeps the highest seq whose signature verifies.
        const r = await get(node(from), key)
        if (!r?.v) return { found: false, verified: false }
        return { found: true, verified: r.seq === MUTABLE_SEQ && r.k !== undefined && bytesEqual(r.k, kp.publicKey) && bytesEqual(r.v, value) }
      }
    }
    const figures = await runDhtPhases('bittorrent-dht', adapter, plan, progress)
    assertLoopbackOnly(counter)
    return { impl: 'bittorrent-dht', nodes, puts, setupMs, ...figures }
  } finally {
    await destroyBittorrentNetwork(dhts)
  }
}
