// The hop counts that theory expects, to draw beside the measured ones.

export interface HopModel {
  hops: number
  model: string
}

/**
 * Kademlia: each step goes to the best of k contacts in the target's bucket, which shares about
 * log2(k) more bits with the target than the bucket guarantees, plus that bucket's own bit: a step
 * gains about log2(k) + 1 bits, and a lookup must gain log2(N) of them.
 */
export function theoreticalHops(topology: string, n: number, k: number): HopModel {
  const bits = Math.log2(Math.max(2, n))
  switch (topology) {
    case 'kademlia': {
      const perStep = Math.log2(k) + 1
      return { hops: bits / perStep, model: `log2(N) / (log2(k) + 1), k = ${k}` }
    }
    default:
      return { hops: bits / 2, model: '½ log2(N)' }
  }
}
