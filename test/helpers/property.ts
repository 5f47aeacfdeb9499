// Seeded fast-check for every property test: runs replay from WEFT_SEED (default 42), and a
// failure names the seed to rerun with.
import fc from 'fast-check'

export const SEED = seedNumber(process.env.WEFT_SEED ?? '42')

/** fast-check wants a 32-bit integer; a non-numeric WEFT_SEED (other files use strings) is hashed. */
function seedNumber(text: string): number {
  const n = Number(text)
  if (Number.isSafeInteger(n)) return n | 0
  let h = 2166136261
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619)
  return h | 0
}

export function check<T>(name: string, arb: fc.Arbitrary<T>, predicate: (v: T) => void, numRuns = 300): void {
  try {
    fc.assert(fc.property(arb, predicate), { seed: SEED, numRuns })
  } catch (err) {
    const cause = (err as Error).cause instanceof Error ? `\n${((err as Error).cause as Error).message}` : ''
    throw new Error(`${name} failed with WEFT_SEED=${SEED} (rerun with that variable set)\n${(err as Error).message}${cause}`, { cause: err })
  }
}
