// Peer clusters: several peers share one GUID. A routing table's slots hold *cluster* handles
// (one per GUID), so the five-case decision is unchanged; a cluster handle names a short list of
// member peer handles. The directory holds every cluster's members as they were at join, in
// one Int32Array (CSR layout: no object per cluster); each peer keeps a sparse view on top of
// it with only the clusters whose membership it has seen change (a member it detected dead, a
// takeover it was told about), so a peer with no failures around it holds nothing extra.
import { WeftError } from '../../errors.js'

/** Most peers one cluster (one GUID) may hold. */
export const MAX_CLUSTER = 16

export class ClusterDirectory {
  /** Members of cluster c are members[start[c] .. start[c + 1]). */
  readonly start: Int32Array
  /** Peer handles, cluster after cluster: peers are numbered in cluster order from 0. */
  readonly members: Int32Array
  /** The cluster each peer joined (build time; a peer that later takes over a GUID moves). */
  readonly clusterOf: Int32Array

  constructor(sizes: ArrayLike<number>) {
    this.start = new Int32Array(sizes.length + 1)
    for (let c = 0; c < sizes.length; c++) {
      const n = sizes[c]
      if (!Number.isInteger(n) || n < 1 || n > MAX_CLUSTER) throw new WeftError('ERR_BAD_ARGUMENT', `cluster size ${n} not in 1..${MAX_CLUSTER}`)
      this.start[c + 1] = this.start[c] + n
    }
    const peers = this.start[sizes.length]
    this.members = new Int32Array(peers)
    this.clusterOf = new Int32Array(peers)
    for (let c = 0; c < sizes.length; c++) {
      for (let p = this.start[c]; p < this.start[c + 1]; p++) { this.members[p] = p; this.clusterOf[p] = c }
    }
  }

  get clusters(): number { return this.start.length - 1 }
  get peers(): number { return this.members.length }
  size(c: number): number { return this.start[c + 1] - this.start[c] }
  membersOf(c: number): Int32Array { return this.members.subarray(this.start[c], this.start[c + 1]) }
  /** Bytes of the directory's arrays. */
  bytes(): number { return this.start.byteLength + this.members.byteLength + this.clusterOf.byteLength }
}

/** A view's marker for a cluster whose GUID was left empty (no member, no heir): routes to it are dropped. */
export const GONE: Int32Array = new Int32Array(0)
const NOBODY = new Int32Array(0)

/** One peer's view of the clusters around it: the directory, overridden where it saw a change. */
export class ClusterView {
  private overrides: Map<number, Int32Array> | null = null

  constructor(readonly directory: ClusterDirectory) {}

  /** The members this peer believes alive (empty: all dead, a takeover is awaited; GONE: left empty). */
  members(c: number): Int32Array {
    const o = this.overrides?.get(c)
    return o ?? (c >= 0 && c < this.directory.clusters ? this.directory.membersOf(c) : NOBODY)
  }

  isGone(c: number): boolean { return this.overrides?.get(c) === GONE }

  /** Replaces a cluster's member list (a takeover or leave notice); GONE marks it empty for good. */
  set(c: number, members: Int32Array): void {
    if (members !== GONE && members.length > MAX_CLUSTER) throw new WeftError('ERR_TOO_LARGE', `cluster of ${members.length} members, over ${MAX_CLUSTER}`)
    ;(this.overrides ??= new Map()).set(c, members)
  }

  /** Drops one member (detected dead); true when it was in the view. */
  drop(c: number, peer: number): boolean {
    const v = this.members(c)
    const i = v.indexOf(peer)
    if (i < 0) return false
    const next = new Int32Array(v.length - 1)
    next.set(v.subarray(0, i))
    next.set(v.subarray(i + 1), i)
    this.set(c, next)
    return true
  }

  /** Clusters this peer holds an override for (its extra state). */
  get changed(): number { return this.overrides?.size ?? 0 }
}

/**
 * How links between two clusters are shared out: member `i` of a cluster of `a` members links
 * the members at positions j ≡ i (mod min(a, b)) of a neighbour cluster of `b`. A single peer
 * (a = 1) links every member; two clusters of 3 pair member i with member i; a cluster of 3 and
 * one of 2 pair 0-0, 1-1, 2-0. Every member on each side has at least one link, and when a
 * member dies the view shrinks and the same rule spreads the links over the survivors.
 */
export function isLinked(i: number, a: number, j: number, b: number): boolean {
  const m = a < b ? a : b
  return m <= 1 || j % m === i % m
}
