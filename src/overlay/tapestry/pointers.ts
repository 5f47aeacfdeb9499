// Tapestry's object pointers: every node on a publish route toward an object's root keeps
// "object -> server" here, so a locate walking toward the same root stops at the first node that
// has one. Bounded in objects and in servers per object, and in memory only: pointers expire
// unless their server publishes again, so a restarted node relearns them within one period.
import { WeftError } from '../../errors.js'
import { idEquals } from '../../identity/node-id.js'
import type { Contact } from '../topology.js'

export interface Pointer {
  server: Contact
  /** Hops from the server to this node on the publish route: a lower one is nearer the server. */
  hop: number
  expiresAt: number
}

export interface PointerStoreOptions {
  maxObjects: number
  maxServersPerObject: number
}

export const defaultPointerStoreOptions: PointerStoreOptions = { maxObjects: 10_000, maxServersPerObject: 8 }

/** The Map key of an id: its bytes as a one-byte-per-char string (32 chars; hex would be 64). */
function keyOf(id: Uint8Array): string {
  return Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('latin1')
}

function positive(n: number, name: string): number {
  if (!Number.isSafeInteger(n) || n <= 0) throw new WeftError('ERR_BAD_ARGUMENT', `${name} must be a positive integer`)
  return n
}

/** Nearest the server first: the lowest hop, then the latest expiry. */
function nearerFirst(a: Pointer, b: Pointer): number {
  return a.hop - b.hop || b.expiresAt - a.expiresAt
}

export class PointerStore {
  readonly options: PointerStoreOptions
  private readonly byObject = new Map<string, Pointer[]>()
  private count = 0
  /**
   * No pointer expires before this (a lower bound: a refresh may have pushed the real one later).
   * A full store is asked to expire on every new object it is offered; this makes that free
   * until something can actually have expired.
   */
  private earliestExpiry = Infinity

  constructor(options: Partial<PointerStoreOptions> = {}) {
    this.options = {
      maxObjects: positive(options.maxObjects ?? defaultPointerStoreOptions.maxObjects, 'maxObjects'),
      maxServersPerObject: positive(options.maxServersPerObject ?? defaultPointerStoreOptions.maxServersPerObject, 'maxServersPerObject'),
    }
  }

  /** Objects with at least one pointer (expired ones included until expire() runs). */
  get objects(): number { return this.byObject.size }

  /** Pointers in all (expired ones included until expire() runs). */
  get size(): number { return this.count }

  /**
   * Adds or refreshes (same server id) a pointer; returns false (and stores nothing) when full of
   * other objects' live pointers, when the object's servers are all at least as near as this one,
   * or when the pointer has already expired. Copies the id bytes (they may be views into a datagram).
   */
  put(object: Uint8Array, server: Contact, hop: number, expiresAt: number, now: number): boolean {
    if (expiresAt <= now) return false // nothing to keep; an older live pointer of the server stays
    const key = keyOf(object)
    let list = this.byObject.get(key)
    if (list) {
      this.dropExpired(list, now) // frees room held by the dead before any live one is refused
      const same = list.find((p) => idEquals(p.server.id, server.id))
      if (same) {
        // The server published again, maybe from elsewhere (another address, another route).
        same.server = { id: same.server.id, address: server.address }
        same.hop = hop
        same.expiresAt = expiresAt
        this.earliestExpiry = Math.min(this.earliestExpiry, expiresAt)
        return true
      }
      if (list.length >= this.options.maxServersPerObject) {
        // Full: keep the servers nearest this node, so a locate that stops here finds a near copy.
        let worst = 0
        for (let i = 1; i < list.length; i++) if (nearerFirst(list[i], list[worst]) > 0) worst = i
        if (hop >= list[worst].hop) return false
        list[worst] = this.pointer(server, hop, expiresAt)
        return true
      }
    } else {
      // A new object: never evict another object's live pointers for it; the dead may go.
      if (this.byObject.size >= this.options.maxObjects) {
        this.expire(now)
        if (this.byObject.size >= this.options.maxObjects) return false
      }
      list = []
      this.byObject.set(key, list)
    }
    list.push(this.pointer(server, hop, expiresAt))
    this.count++
    return true
  }

  /** Removes one server's pointer for the object (UNPUBLISH); with `address`, only if the pointer names that address. */
  remove(object: Uint8Array, serverId: Uint8Array, address?: string): void {
    const key = keyOf(object)
    const list = this.byObject.get(key)
    if (!list) return
    const i = list.findIndex((p) => idEquals(p.server.id, serverId) && (address === undefined || p.server.address === address))
    if (i < 0) return
    list.splice(i, 1)
    this.count--
    if (list.length === 0) this.byObject.delete(key)
  }

  /**
   * Live pointers for the object, nearest the server first (lowest hop, then the latest expiry),
   * at most n. The store's own objects: read them, do not change them.
   */
  get(object: Uint8Array, now: number, n = Infinity): Pointer[] {
    const list = this.byObject.get(keyOf(object))
    if (!list) return []
    return list.filter((p) => p.expiresAt > now).sort(nearerFirst).slice(0, n)
  }

  /** Drops expired pointers; returns how many. */
  expire(now: number): number {
    if (now < this.earliestExpiry) return 0
    let dropped = 0
    let earliest = Infinity
    for (const [key, list] of this.byObject) {
      dropped += this.dropExpired(list, now)
      if (list.length === 0) { this.byObject.delete(key); continue }
      for (const p of list) if (p.expiresAt < earliest) earliest = p.expiresAt
    }
    this.earliestExpiry = earliest
    return dropped
  }

  /** Removes the expired pointers of one list in place (the caller deletes an emptied list). */
  private dropExpired(list: Pointer[], now: number): number {
    let kept = 0
    for (const p of list) if (p.expiresAt > now) list[kept++] = p
    const dropped = list.length - kept
    list.length = kept
    this.count -= dropped
    return dropped
  }

  private pointer(server: Contact, hop: number, expiresAt: number): Pointer {
    this.earliestExpiry = Math.min(this.earliestExpiry, expiresAt)
    return { server: { id: server.id.slice(), address: server.address }, hop, expiresAt }
  }
}
