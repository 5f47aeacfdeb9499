// What a Mainline node keeps for others: announced peers per infohash (BEP 5) and BEP 44 items,
// in memory, every entry with an expiry, every collection bounded.
//
// Peers: a swarm keeps its most recent announces; past maxPeersPerSwarm the oldest announce
// goes (a busy swarm stays fresh). Past maxSwarms a new infohash is refused (ERR_STORE_FULL).
// Items: past maxItems a new target is refused (ERR_STORE_FULL) after the expired are purged.
// Mutable items only move forward: cas must name the seq held (ERR_CAS_MISMATCH), a lower seq is
// refused (ERR_STALE_SEQ), and so is the same seq with a different value (it would let anyone
// who saw both signed values flip the item back and forth).
import { WeftError } from '../../errors.js'
import type { Address } from '../../wire/address.js'

export interface MainlineStoreLimits {
  maxSwarms: number
  maxPeersPerSwarm: number
  /** An announce is kept this long (BEP 5 leaves it open; clients re-announce every 15-30 min). */
  peerTtlMs: number
  maxItems: number
  /** BEP 44: items live at least 2 hours after their last put. */
  itemTtlMs: number
}

export const DEFAULT_STORE_LIMITS: MainlineStoreLimits = {
  maxSwarms: 10_000,
  maxPeersPerSwarm: 100,
  peerTtlMs: 30 * 60_000,
  maxItems: 5_000,
  itemTtlMs: 2 * 3600_000,
}

export interface StoredItem {
  target: Uint8Array
  /** The value as its bencoded bytes (what the target or the signature covers). */
  v: Uint8Array
  /** Mutable items: public key, signature, seq and the salt they were put with. */
  k?: Uint8Array
  sig?: Uint8Array
  seq?: number
  salt?: Uint8Array
  expiresAt: number
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')
const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i])

export class MainlineStore {
  readonly limits: MainlineStoreLimits
  /** infohash hex -> (peer address -> expiry), oldest announce first. */
  private readonly swarms = new Map<string, Map<Address, number>>()
  private readonly items = new Map<string, StoredItem>()

  constructor(limits: Partial<MainlineStoreLimits> = {}) {
    this.limits = { ...DEFAULT_STORE_LIMITS, ...limits }
  }

  get swarmCount(): number { return this.swarms.size }
  get itemCount(): number { return this.items.size }

  addPeer(infoHash: Uint8Array, peer: Address, now: number): void {
    const key = hex(infoHash)
    let swarm = this.swarms.get(key)
    if (!swarm) {
      if (this.swarms.size >= this.limits.maxSwarms) this.sweep(now)
      if (this.swarms.size >= this.limits.maxSwarms) throw new WeftError('ERR_STORE_FULL', `${this.limits.maxSwarms} swarms held`)
      this.swarms.set(key, swarm = new Map())
    }
    swarm.delete(peer) // a re-announce moves to the back
    swarm.set(peer, now + this.limits.peerTtlMs)
    if (swarm.size > this.limits.maxPeersPerSwarm) swarm.delete(swarm.keys().next().value!)
  }

  /** Live peers of a swarm, most recent announce first, at most `max`. */
  peers(infoHash: Uint8Array, now: number, max: number): Address[] {
    const swarm = this.swarms.get(hex(infoHash))
    if (!swarm) return []
    const out: Address[] = []
    for (const [peer, expiresAt] of swarm) {
      if (expiresAt <= now) swarm.delete(peer)
      else out.push(peer)
    }
    if (swarm.size === 0) this.swarms.delete(hex(infoHash))
    return out.reverse().slice(0, max)
  }

  getItem(target: Uint8Array, now: number): StoredItem | undefined {
    const item = this.items.get(hex(target))
    if (item && item.expiresAt <= now) { this.items.delete(hex(target)); return undefined }
    return item
  }

  /**
   * Stores an item whose target, size and signature the caller has checked. `cas`: the seq the
   * writer expects held (mutable only). Throws ERR_CAS_MISMATCH, ERR_STALE_SEQ or ERR_STORE_FULL.
   */
  putItem(item: Omit<StoredItem, 'expiresAt'>, now: number, cas?: number): void {
    const key = hex(item.target)
    const held = this.getItem(item.target, now)
    if (held && item.seq !== undefined) {
      const heldSeq = held.seq ?? 0
      if (cas !== undefined && cas !== heldSeq) throw new WeftError('ERR_CAS_MISMATCH', `cas ${cas} but seq ${heldSeq} is held`)
      if (item.seq < heldSeq) throw new WeftError('ERR_STALE_SEQ', `seq ${item.seq} is lower than the ${heldSeq} held`)
      if (item.seq === heldSeq && !sameBytes(item.v, held.v)) throw new WeftError('ERR_STALE_SEQ', `seq ${item.seq} is held with another value`)
    }
    if (!held && this.items.size >= this.limits.maxItems) this.sweep(now)
    if (!held && this.items.size >= this.limits.maxItems) throw new WeftError('ERR_STORE_FULL', `${this.limits.maxItems} items held`)
    this.items.set(key, { ...item, expiresAt: now + this.limits.itemTtlMs })
  }

  /** Drops what has expired. */
  sweep(now: number): void {
    for (const [key, item] of this.items) if (item.expiresAt <= now) this.items.delete(key)
    for (const [key, swarm] of this.swarms) {
      for (const [peer, expiresAt] of swarm) if (expiresAt <= now) swarm.delete(peer)
      if (swarm.size === 0) this.swarms.delete(key)
    }
  }
}
