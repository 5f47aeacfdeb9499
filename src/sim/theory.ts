// The hop counts that theory expects, to draw beside the measured ones.

export interface HopModel {
  hops: number
  model: string
}

/** Pastry's and Tapestry's default digit size when none is given. */
const PASTRY_B = 4

/**
 * Kademlia: each step goes to the best of k contacts in the target's bucket, which shares about
 * log2(k) more bits with the target than the bucket guarantees, plus that bucket's own bit: a step
 * gains about log2(k) + 1 bits, and a lookup must gain log2(N) of them.
 * Chord: each finger halves the distance left, and on average half the bits are already right:
 * ½ log2(N) (the Chord paper).
 * Pastry and Tapestry: each step fixes one digit of b bits: log base 2^b of N (the papers' bound).
 */
export function theoreticalHops(topology: string, n: number, o: { k: number; b?: number }): HopModel {
  const bits = Math.log2(Math.max(2, n))
  switch (topology) {
    case 'kademlia': {
      const perStep = Math.log2(o.k) + 1
      return { hops: bits / perStep, model: `log2(N) / (log2(k) + 1), k = ${o.k}` }
    }
    case 'pastry':
    case 'tapestry': {
      const b = o.b ?? PASTRY_B
      return { hops: bits / b, model: `log2(N) / b, b = ${b}` }
    }
    default:
      return { hops: bits / 2, model: '½ log2(N)' }
  }
}
