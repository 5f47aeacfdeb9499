// The routing table, drawn for its topology: Kademlia's k-buckets, Chord's ring with its
// fingers, the prefix table of Pastry and Tapestry (with Pastry's leaf set); any other topology
// (the polyring, when it lands) as a list by slot.
import type { Peer } from '../api.js'
import { byId, el, svg, titled } from '../dom.js'
import { duration, onCircle, ringPos, short } from '../ids.js'

const tip = (p: Peer): string => `${p.id}\n${p.address}\n${p.slot} · seen ${duration(p.lastSeenMs)} ago · ${p.failures} failures`
const freshness = (p: Peer): string => p.failures > 0 ? 'failing' : p.lastSeenMs < 60_000 ? 'fresh' : p.lastSeenMs < 15 * 60_000 ? 'seen' : 'stale'

export function renderTable(topology: string, selfId: string, peers: Peer[]): void {
  byId('table-summary').textContent = `${topology} · ${peers.length} contacts`
  const box = byId('table-picture')
  box.dataset.topology = topology
  box.replaceChildren(topology === 'kademlia' ? buckets(peers)
    : topology === 'chord' ? ring(selfId, peers)
      : topology === 'pastry' || topology === 'tapestry' ? prefixTable(selfId, peers)
        : bySlot(peers))
}

function buckets(peers: Peer[]): HTMLElement {
  const by = new Map<number, Peer[]>()
  for (const p of peers) {
    const m = /^bucket (\d+)$/.exec(p.slot)
    const b = m ? Number(m[1]) : -1
    let list = by.get(b)
    if (!list) by.set(b, list = [])
    list.push(p)
  }
  const rows = [...by.keys()].sort((a, b) => a - b).map((b) => el('tr', { 'data-bucket': b },
    el('th', { text: b < 0 ? '?' : String(b), title: b < 0 ? '' : `contacts whose ids share ${b} leading bits with this node's` }),
    el('td', {}, ...by.get(b)!.map((p) => el('span', { class: `contact ${freshness(p)}`, title: tip(p), 'data-id': p.id }))),
    el('td', { class: 'num', text: String(by.get(b)!.length) }),
  ))
  return el('div', {},
    el('p', { class: 'hint', text: 'k-buckets by shared prefix length (far buckets at the top); one square per contact, least recently seen first.' }),
    el('table', { class: 'buckets' }, el('thead', {}, el('tr', {}, el('th', { text: 'bucket' }), el('th', { text: 'contacts' }), el('th', { text: '#' }))), el('tbody', {}, ...rows)),
    legend())
}

function legend(): HTMLElement {
  return el('p', { class: 'legend' }, ...['fresh', 'seen', 'stale', 'failing'].map((c) => el('span', {}, el('span', { class: `contact ${c}` }), ` ${c} `)))
}

function ring(selfId: string, peers: Peer[]): SVGSVGElement {
  const size = 360, c = size / 2, r = 140
  const root = svg('svg', { viewBox: `0 0 ${size} ${size}`, class: 'ring', role: 'img', 'aria-label': 'Chord ring' })
  root.append(svg('circle', { cx: c, cy: c, r, class: 'ring-line' }))
  const [sx, sy] = onCircle(ringPos(selfId), c, c, r)
  for (const p of peers) {
    const [x, y] = onCircle(ringPos(p.id), c, c, r)
    const kind = p.slot.startsWith('finger') ? 'finger' : p.slot.startsWith('successor') ? 'successor' : p.slot === 'predecessor' ? 'predecessor' : 'other'
    root.append(svg('line', { x1: sx, y1: sy, x2: x, y2: y, class: `chord ${kind}` }))
    root.append(titled(svg('circle', { cx: x, cy: y, r: 5, class: `peer ${kind}`, 'data-id': p.id }), tip(p)))
    if (kind === 'finger') {
      const [lx, ly] = onCircle(ringPos(p.id), c, c, r + 16)
      root.append(svg('text', { x: lx, y: ly, class: 'label', 'text-anchor': 'middle', 'dominant-baseline': 'middle', text: p.slot.slice(7) }))
    }
  }
  root.append(titled(svg('circle', { cx: sx, cy: sy, r: 7, class: 'self' }), `this node ${selfId}`))
  root.append(svg('text', { x: c, y: size - 4, 'text-anchor': 'middle', class: 'caption', text: 'fingers (numbered by bit) in blue; successors and predecessor in green' }))
  return root
}

function prefixTable(selfId: string, peers: Peer[]): HTMLElement {
  const cells = new Map<string, Peer[]>()
  const leaves: Peer[] = []
  let rows = 0, cols = 0
  for (const p of peers) {
    const m = /^row (\d+) col ([0-9a-f]+)/.exec(p.slot)
    if (!m) { leaves.push(p); continue }
    const r = Number(m[1]), col = parseInt(m[2], 16)
    rows = Math.max(rows, r + 1); cols = Math.max(cols, col + 1)
    const key = `${r}:${col}`
    let list = cells.get(key)
    if (!list) cells.set(key, list = [])
    list.push(p)
  }
  cols = cols <= 2 ? 2 : cols <= 4 ? 4 : cols <= 16 ? 16 : 256
  // The node's own id in digits of the table's width (b = log2 cols bits each).
  const bits = Math.log2(cols)
  const selfBits = [...selfId].map((h) => parseInt(h, 16).toString(2).padStart(4, '0')).join('')
  const selfDigits = Array.from({ length: Math.ceil(256 / bits) }, (_, i) => parseInt(selfBits.slice(i * bits, i * bits + bits), 2).toString(16))
  const head = el('tr', {}, el('th', { text: 'row' }), ...Array.from({ length: cols }, (_, i) => el('th', { text: i.toString(16) })))
  const body = Array.from({ length: rows }, (_, r) => el('tr', { 'data-row': r }, el('th', { text: String(r) }),
    ...Array.from({ length: cols }, (_, col) => {
      const list = cells.get(`${r}:${col}`) ?? []
      const own = parseInt(selfDigits[r] ?? '', 16) === col // this node's own digit: the next row refines it
      return el('td', { class: `${list.length ? 'filled' : 'empty'}${own ? ' own' : ''}`, title: own ? `this node's digit ${col.toString(16)} at row ${r}` : list.map(tip).join('\n\n') },
        ...list.map((p, i) => el('span', { class: `cell-id ${i > 0 ? 'backup' : ''}`, 'data-id': p.id, text: p.id.slice(0, 3) })))
    })))
  return el('div', {},
    el('p', { class: 'hint', text: `Prefix table: row r holds nodes sharing r digits with ${short(selfId)}, column = their next digit${leaves.length ? '; then the leaf set' : ''}.` }),
    el('div', { class: 'scroll' }, el('table', { class: 'prefix' }, el('thead', {}, head), el('tbody', {}, ...body))),
    leaves.length ? el('p', { class: 'leaves' }, 'Leaf set: ', ...leaves.map((p) => el('span', { class: 'leaf', title: tip(p), 'data-id': p.id, text: `${p.slot.slice(5)} ${short(p.id)} ` }))) : '')
}

function bySlot(peers: Peer[]): HTMLElement {
  return el('table', { class: 'list' }, el('tbody', {}, ...peers.map((p) => el('tr', {}, el('td', { text: p.slot }), el('td', { class: 'mono', text: short(p.id) }), el('td', { text: p.address })))))
}
