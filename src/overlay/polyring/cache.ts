// The content cache each polyring peer keeps for routed fetches (docs/polyring.md, "Caching
// along the route"): answers that pass this peer on their way back to the asker are kept, so a
// later fetch of the same content whose route passes here is answered here. Bounded in bytes
// (least recently used first out) and in entries, and every entry expires (the TTL its home
// gave it, capped). A Map keeps insertion order: re-inserting on a hit makes it the LRU order.
import { WeftError } from '../../errors.js'

/** Default bytes of content one peer caches. */
export const DEFAULT_CACHE_BYTES = 1 << 20
/** Entries one cache holds at most, whatever their size (each costs a Map entry and a key string). */
export const MAX_CACHE_ENTRIES = 4096
/** Longest a cached answer is kept, whatever its home said. */
export const MAX_CACHE_TTL_MS = 10 * 60_000
/** Bytes counted per entry besides its data (key string, Map entry, object): keeps tiny entries honest. */
export const ENTRY_OVERHEAD_BYTES = 100

interface Entry { data: Uint8Array; expiresAt: number; bytes: number }

export interface CacheStats { entries: number; bytes: number; maxBytes: number; hits: number; misses: number; stored: number; evicted: number; expired: number }

export class ContentCache {
  private readonly entries = new Map<string, Entry>()
  private bytes = 0
  readonly stats = { hits: 0, misses: 0, stored: 0, evicted: 0, expired: 0 }

  constructor(private readonly now: () => number, readonly maxBytes = DEFAULT_CACHE_BYTES) {
    if (!Number.isInteger(maxBytes) || maxBytes < 0) throw new WeftError('ERR_BAD_ARGUMENT', `cache bytes must be an integer >= 0, not ${maxBytes}`)
  }

  /** The cached data under `key` (a hit makes it the most recently used), or null. */
  get(key: string): Uint8Array | null {
    const e = this.entries.get(key)
    if (!e) { this.stats.misses++; return null }
    if (e.expiresAt <= this.now()) { this.drop(key, e); this.stats.expired++; this.stats.misses++; return null }
    this.entries.delete(key)
    this.entries.set(key, e)
    this.stats.hits++
    return e.data
  }

  /** Remaining lifetime of a cached entry in ms (0 when absent or expired). */
  ttlLeft(key: string): number {
    const e = this.entries.get(key)
    return e ? Math.max(0, e.expiresAt - this.now()) : 0
  }

  /** Keeps `data` under `key` for `ttlMs` (capped at MAX_CACHE_TTL_MS), evicting the least recently used past the bounds. */
  put(key: string, data: Uint8Array, ttlMs: number): void {
    const old = this.entries.get(key)
    if (old) this.drop(key, old)
    const bytes = data.length + key.length + ENTRY_OVERHEAD_BYTES
    const ttl = Math.min(ttlMs, MAX_CACHE_TTL_MS)
    if (bytes > this.maxBytes || ttl <= 0) return
    const now = this.now()
    // Expired entries go first, then the least recently used, until the new one fits.
    for (const [k, e] of this.entries) {
      if (this.bytes + bytes <= this.maxBytes && this.entries.size < MAX_CACHE_ENTRIES) break
      this.drop(k, e)
      if (e.expiresAt <= now) this.stats.expired++
      else this.stats.evicted++
    }
    this.entries.set(key, { data: data.slice(), expiresAt: now + ttl, bytes })
    this.bytes += bytes
    this.stats.stored++
  }

  private drop(key: string, e: Entry): void {
    this.entries.delete(key)
    this.bytes -= e.bytes
  }

  status(): CacheStats {
    return { entries: this.entries.size, bytes: this.bytes, maxBytes: this.maxBytes, ...this.stats }
  }
}
