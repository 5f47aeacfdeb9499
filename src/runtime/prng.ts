// A seeded random source (sfc32): fast, small state, and identical on every machine.
import type { Random } from './runtime.js'

export class SeededRandom implements Random {
  private a: number
  private b: number
  private c: number
  private d: number

  constructor(seed: number | string) {
    // Spread the seed over the state with a string hash, then discard the first outputs.
    let h = 1779033703 ^ String(seed).length
    const s = String(seed)
    for (let i = 0; i < s.length; i++) {
      h = Math.imul(h ^ s.charCodeAt(i), 3432918353)
      h = (h << 13) | (h >>> 19)
    }
    const next = (): number => {
      h = Math.imul(h ^ (h >>> 16), 2246822507)
      h = Math.imul(h ^ (h >>> 13), 3266489909)
      return (h ^= h >>> 16) >>> 0
    }
    this.a = next(); this.b = next(); this.c = next(); this.d = next()
    for (let i = 0; i < 15; i++) this.u32()
  }

  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0
    this.d = (this.d + 1) | 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) | 0
    this.c = (this.c << 21) | (this.c >>> 11)
    this.c = (this.c + t) | 0
    return t >>> 0
  }

  float(): number {
    return this.u32() / 4294967296
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n)
    for (let i = 0; i < n; i += 4) {
      const v = this.u32()
      out[i] = v & 0xff
      if (i + 1 < n) out[i + 1] = (v >>> 8) & 0xff
      if (i + 2 < n) out[i + 2] = (v >>> 16) & 0xff
      if (i + 3 < n) out[i + 3] = v >>> 24
    }
    return out
  }

  /** A child source for one node or component, so adding one does not shift the others. */
  fork(label: string | number): SeededRandom {
    return new SeededRandom(`${this.u32()}:${label}`)
  }
}
