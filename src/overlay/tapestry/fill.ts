// The simulator's oracle fill for Tapestry: the table a node would hold in a network without
// churn. Each slot's range of fitting nodes (forEachSlotRange, shared with Pastry) is sampled and
// the samples nearest by round-trip time become the slot's links, primary first: the
// proximity-aware choice that Tapestry's join makes by probing, found here from the latency model.
import type { Random } from '../../runtime/runtime.js'
import type { NodeSet } from '../topology.js'
import { forEachSlotRange } from '../pastry/fill.js'
import { idEquals } from '../../identity/node-id.js'

export interface LevelFill { slots: number[]; handles: number[] }

export function tapestryFill(self: Uint8Array, b: number, links: number, samples: number, nodes: NodeSet, random: Random): LevelFill[] {
  const levels: LevelFill[] = Array.from({ length: links }, () => ({ slots: [], handles: [] }))
  const at = nodes.search(self)
  const me = at < nodes.size && idEquals(nodes.idAt(at), self) ? nodes.at(at) : -1
  const rtt = me >= 0 && nodes.rtt ? nodes.rtt.bind(nodes) : null
  const cols = 1 << b
  const picked: number[] = []
  forEachSlotRange(self, b, nodes, (r, col, lo, hi) => {
    picked.length = 0
    if (hi - lo <= samples) for (let i = lo; i < hi; i++) picked.push(nodes.at(i))
    else {
      for (let s = 0; s < samples; s++) {
        const h = nodes.at(lo + (random.u32() % (hi - lo)))
        if (!picked.includes(h)) picked.push(h)
      }
    }
    if (rtt) {
      const d = picked.map((h) => rtt(me, h))
      const order = picked.map((_, i) => i).sort((x, y) => d[x] - d[y])
      const sorted = order.map((i) => picked[i])
      picked.splice(0, picked.length, ...sorted)
    }
    for (let j = 0; j < links && j < picked.length; j++) {
      levels[j].slots.push(r * cols + col)
      levels[j].handles.push(picked[j])
    }
  })
  return levels
}
