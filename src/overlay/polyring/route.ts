// The seed's routing decision (../shared/seed/NOTES.md, "The Polymorph polyring"), recursive:
// each peer forwards a message one hop toward its destination GUID. With R this peer, D the
// destination, M the number of leading coordinates they share, LR and LD their lengths, there
// are five cases. The decision costs one prefix scan bounded by the GUIDs' depth (MAX_DEPTH),
// at most four comparisons and one array lookup: it does not depend on how many siblings or
// children the table holds.
import type { Guid } from './guid.js'
import { NONE, type PolyringTable } from './table.js'

export const enum RouteCase {
  /** M <= LR-2: D is in another branch: forward to the parent. */
  OtherBranch = 1,
  /** M == LR-1 and LD == LR-1: D is the parent: forward to the parent. */
  Parent = 2,
  /** M == LR-1 and LD >= LR: D is a sibling or below one: forward to sibling D[LR-1]. */
  Sibling = 3,
  /** M == LR and LD == LR: D is R: deliver. */
  Self = 4,
  /** M == LR and LD > LR: D is below R: forward to child D[LR]. */
  Child = 5,
}

/** nextHop's answer when the message is for this peer. */
export const DELIVER = -2
/** nextHop's answer when the slot the rule names is empty (no such peer known): the message is dropped and counted. */
export const NO_ROUTE = NONE

/** Which of the five cases a destination falls in, seen from `self`. */
export function routeCase(self: Guid, dest: Guid): RouteCase {
  const lr = self.length, ld = dest.length
  const n = lr < ld ? lr : ld
  let m = 0
  while (m < n && self[m] === dest[m]) m++
  if (m === lr) return ld === lr ? RouteCase.Self : RouteCase.Child
  if (m === lr - 1) return ld === m ? RouteCase.Parent : RouteCase.Sibling
  return RouteCase.OtherBranch
}

/**
 * The handle to forward a message for `dest` to, DELIVER, or NO_ROUTE. A sibling marked private
 * (NATed: the parent said so) is reached through the shared parent, which holds it as a child.
 */
export function nextHop(table: PolyringTable, dest: Guid): number {
  const self = table.self
  const lr = self.length, ld = dest.length
  const n = lr < ld ? lr : ld
  let m = 0
  while (m < n && self[m] === dest[m]) m++
  if (m === lr) {
    // M == LR and LD == LR: D is R: deliver.
    if (ld === lr) return DELIVER
    // M == LR and LD > LR: D is below R: forward to child D[LR].
    const c = dest[lr]
    return c < table.children.length ? table.children[c] : NO_ROUTE
  }
  if (m === lr - 1) {
    // M == LR-1 and LD == LR-1: D is the parent: forward to the parent.
    if (ld === m) return table.parent
    // M == LR-1 and LD >= LR: D is a sibling or below one: forward to sibling D[LR-1]
    // (through the parent when that sibling is private).
    const s = dest[m]
    if (s >= table.siblings.length) return NO_ROUTE
    const p = table.privateSiblings
    if (p !== null && p[s] === 1 && table.parent !== NONE) return table.parent
    return table.siblings[s]
  }
  // M <= LR-2: D is in another branch: forward to the parent.
  return table.parent
}
