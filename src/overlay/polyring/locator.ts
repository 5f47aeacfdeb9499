// Identity -> location (open problem 2, docs/polyring.md "Identity and location"): every
// polyring node publishes its GUID (its location) in the DHT under its node id (its identity),
// as a mutable record signed by its own key with a fixed salt, so only it can say where it is;
// `send` then takes a node id as well as a GUID: the id is looked up in the DHT (Kademlia over the
// same nodes) and the GUID it names is routed to by the polyring. Lookups are cached with an
// expiry, in a bounded map (least recently used out).
import { WeftError } from '../../errors.js'
import type { Identity } from '../../identity/keys.js'
import { idToHex, type NodeId } from '../../identity/node-id.js'
import type { Runtime } from '../../runtime/runtime.js'
import type { Address } from '../../wire/address.js'
import { decodeGuid, encodeGuid, formatGuid, type Guid } from './guid.js'

/** The salt of the location record: key = SHA-256(public key || salt) (the DHT's mutable key). */
export const LOCATION_SALT = new TextEncoder().encode('weft/polyring/guid')
/** How long a resolved location is trusted before it is looked up again. */
export const LOCATION_TTL_MS = 60_000
/** Resolved locations kept at most. */
export const MAX_LOCATIONS = 1024

/** What the polyring needs of the DHT (src/services/dht/dht.ts's Dht has it). */
export interface PolyringDht {
  putMutable(identity: Identity, value: Uint8Array, options: { salt?: Uint8Array; seq?: number }): Promise<{ stored: number; seq: number }>
  getMutable(publicKey: Uint8Array, options: { salt?: Uint8Array }): Promise<{ value: Uint8Array; seq: number }>
  announce(key: Uint8Array): Promise<unknown>
  providers(key: Uint8Array): Promise<{ id: string; addresses: Address[] }[]>
}

export interface LocatorStats { published: number; publishFailures: number; resolved: number; cacheHits: number; notFound: number }

export class Locator {
  private readonly cache = new Map<string, { guid: Guid; expiresAt: number }>()
  private lastSeq = -1
  readonly stats: LocatorStats = { published: 0, publishFailures: 0, resolved: 0, cacheHits: 0, notFound: 0 }
  /** The GUID last published and whether the DHT took it. */
  publishedGuid: string | null = null

  constructor(private readonly runtime: Runtime, private readonly dht: PolyringDht, private readonly identity: Identity, private readonly ttlMs = LOCATION_TTL_MS) {}

  /**
   * Publishes `g` under this node's id. The seq is the wall clock in ms (and above the last one),
   * so a newer location always wins without a lookup first; the DHT republishes it as its author.
   */
  async publish(g: Guid): Promise<void> {
    const seq = this.lastSeq = Math.max(this.lastSeq + 1, Math.floor(this.runtime.wallClock()))
    try {
      await this.dht.putMutable(this.identity, encodeGuid(g), { salt: LOCATION_SALT, seq })
      this.stats.published++
      this.publishedGuid = formatGuid(g)
    } catch (err) {
      this.stats.publishFailures++
      throw err
    }
  }

  /** The GUID node `id` last published (cached up to ttlMs). ERR_NOT_FOUND when it has none. */
  async resolve(id: NodeId): Promise<Guid> {
    const hex = idToHex(id)
    const now = this.runtime.now()
    const hit = this.cache.get(hex)
    if (hit && hit.expiresAt > now) {
      this.cache.delete(hex)
      this.cache.set(hex, hit)
      this.stats.cacheHits++
      return hit.guid
    }
    let g: Guid
    try {
      const r = await this.dht.getMutable(id, { salt: LOCATION_SALT }) // a node id is its public key
      g = decodeGuid(r.value)
    } catch (err) {
      this.stats.notFound++
      if (err instanceof WeftError && err.code !== 'ERR_NOT_FOUND' && err.code !== 'ERR_BAD_MESSAGE') throw err
      throw new WeftError('ERR_NOT_FOUND', `node ${hex.slice(0, 16)}... has published no polyring location`)
    }
    this.stats.resolved++
    this.cache.delete(hex)
    if (this.cache.size >= MAX_LOCATIONS) this.cache.delete(this.cache.keys().next().value!)
    this.cache.set(hex, { guid: g, expiresAt: this.runtime.now() + this.ttlMs })
    return g
  }

  /** Forgets a cached location (e.g. a send to it found no route). */
  forget(id: NodeId): void { this.cache.delete(idToHex(id)) }

  get cached(): number { return this.cache.size }
}
