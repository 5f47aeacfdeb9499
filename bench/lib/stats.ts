// Small statistics helpers and a seeded PRNG so benchmark runs are repeatable.

/** Nearest-rank percentile (p in 0..100). Accepts unsorted input; does not mutate it. NaN for empty input. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN
  const sorted = isSorted(values) ? values : [...values].sort((a, b) => a - b)
  const rank = Math.ceil((Math.min(Math.max(p, 0), 100) / 100) * sorted.length)
  return sorted[Math.max(rank, 1) - 1]
}

export interface Summary {
  n: number
  min: number
  mean: number
  p50: number
  p95: number
  p99: number
  max: number
}

export function summarize(values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b)
  const n = sorted.length
  const mean = n === 0 ? NaN : sorted.reduce((s, v) => s + v, 0) / n
  return {
    n,
    min: n === 0 ? NaN : sorted[0],
    mean,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: n === 0 ? NaN : sorted[n - 1]
  }
}

/** Round to `digits` decimals, for printing. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

export function round(x: number, digits = 2): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}

function isSorted(values: readonly number[]): boolean {
  for (let i = 1; i < values.length; i++) if (values[i - 1] > values[i]) return false
  return true
}

export interface Rng {
  /** Uniform float in [0, 1). */
  next(): number
  /** Uniform integer in [0, n). */
  int(n: number): number
  /** `len` random bytes (e.g. a lookup target). */
  bytes(len: number): Buffer
}

/** sfc32 seeded from one 32-bit number (expanded with splitmix32 so nearby seeds diverge). */
export function createRng(seed: number): Rng {
  let s = seed >>> 0
  const splitmix = (): number => {
    s = (s + 0x9e3779b9) >>> 0
    let z = s
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
    return (z ^ (z >>> 16)) >>> 0
  }
  let a = splitmix()
  let b = splitmix()
  let c = splitmix()
  let d = splitmix()

  const u32 = (): number => {
    const t = (((a + b) >>> 0) + d) >>> 0
    d = (d + 1) >>> 0
    a = b ^ (b >>> 9)
    b = (c + (c << 3)) >>> 0
    c = (c << 21) | (c >>> 11)
    c = (c + t) >>> 0
    return t
  }
  for (let i = 0; i < 12; i++) u32() // warm up, as recommended for sfc32

  return {
    next: () => u32() / 4294967296,
    int: (n) => Math.floor((u32() / 4294967296) * n),
    bytes: (len) => {
      const buf = Buffer.alloc(len)
      for (let i = 0; i < len; i += 4) {
        const v = u32()
        for (let j = 0; j < 4 && i + j < len; j++) buf[i + j] = (v >>> (8 * j)) & 0xff
      }
      return buf
    }
  }
}
