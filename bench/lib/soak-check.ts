// The soak's verdicts: is a figure flat (the last third of the measured run against its first
// third; the warm-up before it is not measured), and did every operation settle by its deadline.
import type { Sample } from './soak-probe.js'

/** Largest change, either way, between the first and last thirds' medians that still counts as flat. */
export const FLAT_TOLERANCE = 0.1

export interface Check {
  name: string
  /** What was compared, in words (for the report). */
  what: string
  first: number | null
  last: number | null
  /** (last - first) / first, or null for a count check. */
  change: number | null
  limit: string
  pass: boolean
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

/** The samples after warm-up, split into the first and last thirds (null when too few to say). */
export function thirds(samples: Sample[], warmupSeconds: number): { first: Sample[]; last: Sample[] } | null {
  const after = samples.filter((s) => s.t >= warmupSeconds)
  const n = Math.floor(after.length / 3)
  if (n < 2) return null
  return { first: after.slice(0, n), last: after.slice(after.length - n) }
}

/** Flat when the medians of the two thirds differ by at most FLAT_TOLERANCE. */
export function flatCheck(name: string, what: string, samples: Sample[], warmupSeconds: number, value: (s: Sample) => number): Check {
  const th = thirds(samples, warmupSeconds)
  const limit = `within ±${FLAT_TOLERANCE * 100} %`
  if (!th) return { name, what, first: null, last: null, change: null, limit, pass: false }
  const first = median(th.first.map(value)), last = median(th.last.map(value))
  const change = first === 0 ? (last === 0 ? 0 : Infinity) : (last - first) / first
  return { name, what, first, last, change, limit, pass: Math.abs(change) <= FLAT_TOLERANCE }
}

/** A count that must not exceed `max`. */
export function countCheck(name: string, what: string, value: number, max: number): Check {
  return { name, what, first: null, last: value, change: null, limit: `≤ ${max}`, pass: value <= max }
}

/** A share that must reach `min` (reported in per cent). */
export function shareCheck(name: string, what: string, share: number, min: number): Check {
  return { name, what: `${what}, %`, first: null, last: Math.round(share * 1000) / 10, change: null, limit: `≥ ${(min * 100).toFixed(0)} %`, pass: share >= min }
}
