// A lookup started from the page and drawn hop by hop: every node that answered on the id ring,
// a line from the node that named it, and the route to the nearest node, one hop at a time.
import { api, ApiError, type LookupTrace } from '../api.js'
import { byId, el, svg, titled } from '../dom.js'
import { isId, onCircle, randomId, ringPos, short } from '../ids.js'

const HOP_DELAY_MS = 250

export interface LookupHooks {
  /** The node the lookup starts from (the one shown), and whether the API serves a devnet. */
  from(): { id: string; devnet: boolean }
  onError(err: unknown): void
  /** Draws the path on the devnet picture too. */
  onTrace(trace: LookupTrace): void
}

export function mountLookup(hooks: LookupHooks): void {
  const input = byId<HTMLInputElement>('lookup-target')
  byId('lookup-random').addEventListener('click', () => { input.value = randomId() })
  byId('lookup-form').addEventListener('submit', (e) => {
    e.preventDefault()
    const target = input.value.trim().toLowerCase()
    if (!isId(target)) { hooks.onError(new Error('a target is 64 hex digits')); return }
    const from = hooks.from()
    const result = byId('lookup-result')
    result.dataset.state = 'running'
    result.replaceChildren(el('p', { text: `looking up ${short(target)} from ${short(from.id)}…` }))
    const button = byId<HTMLButtonElement>('lookup-run')
    button.disabled = true
    const query = from.devnet ? `?from=${from.id}` : ''
    api<LookupTrace>(`/v1/lookup/${target}/trace${query}`)
      .then((t) => { draw(t); hooks.onTrace(t) })
      .catch((err) => { result.dataset.state = 'error'; result.replaceChildren(el('p', { class: 'error', text: err instanceof ApiError ? `${err.code}: ${err.message}` : String(err) })); hooks.onError(err) })
      .finally(() => { button.disabled = false })
  })
}

function draw(t: LookupTrace): void {
  const result = byId('lookup-result')
  const size = 380, c = size / 2, r = 150
  const pic = svg('svg', { viewBox: `0 0 ${size} ${size}`, class: 'ring lookup-ring', role: 'img', 'aria-label': 'lookup on the id ring' })
  pic.append(svg('circle', { cx: c, cy: c, r, class: 'ring-line' }))
  const at = (id: string) => onCircle(ringPos(id), c, c, r)
  const [fx, fy] = at(t.from.id)
  // Who named whom: the query tree, faint.
  for (const s of t.steps) {
    const [x1, y1] = s.via ? at(s.via) : [fx, fy]
    const [x2, y2] = at(s.id)
    pic.append(svg('line', { x1, y1, x2, y2, class: 'asked-line' }))
  }
  for (const s of t.steps) {
    const [x, y] = at(s.id)
    pic.append(titled(svg('circle', { cx: x, cy: y, r: 4, class: 'asked', 'data-id': s.id }), `${s.id}\nhop ${s.hop} · answered at ${s.atMs.toFixed(1)} ms · ${s.returned} contacts, ${s.learned} new`))
  }
  const [tx, ty] = at(t.target)
  pic.append(titled(svg('path', { d: `M ${tx} ${ty - 9} l 7 12 l -14 0 z`, class: 'target' }), `target ${t.target}`))
  pic.append(titled(svg('circle', { cx: fx, cy: fy, r: 7, class: 'self' }), `from ${t.from.id}`))
  const route = svg('g', { class: 'route' })
  pic.append(route)

  const list = el('ol', { class: 'path', 'data-testid': 'lookup-path' })
  const summary = el('p', { 'data-testid': 'lookup-summary' },
    `${t.hops} hops · ${t.steps.length} nodes answered · ${t.messages} messages · ${t.failed} failed · ${t.durationMs.toFixed(1)} ms · nearest ${t.closest[0] ? short(t.closest[0].id) : 'none'}`)
  const steps = el('details', {}, el('summary', { text: `every answer (${t.steps.length})` }),
    el('table', { class: 'list' }, el('thead', {}, el('tr', {}, ...['ms', 'hop', 'node', 'named by', 'contacts', 'new'].map((h) => el('th', { text: h })))),
      el('tbody', {}, ...t.steps.map((s) => el('tr', {}, el('td', { class: 'num', text: s.atMs.toFixed(1) }), el('td', { class: 'num', text: String(s.hop) }),
        el('td', { class: 'mono', text: short(s.id) }), el('td', { class: 'mono', text: s.via ? short(s.via) : 'own table' }),
        el('td', { class: 'num', text: String(s.returned) }), el('td', { class: 'num', text: String(s.learned) }))))))
  result.replaceChildren(el('div', {}, pic), el('div', {}, summary, list, steps))
  result.dataset.state = 'drawing'

  // The route, hop by hop.
  let i = 0
  const next = (): void => {
    const hop = t.path[i]
    const [x, y] = at(hop.id)
    if (i > 0) {
      const [px, py] = at(t.path[i - 1].id)
      route.append(svg('line', { x1: px, y1: py, x2: x, y2: y, class: 'hop' }))
    }
    route.append(svg('circle', { cx: x, cy: y, r: 5, class: 'hop-node' }))
    route.append(svg('text', { x: x + 8, y: y - 8, class: 'hop-label', text: String(i) }))
    list.append(el('li', { 'data-id': hop.id }, el('span', { class: 'mono', text: short(hop.id) }), ` ${hop.address}`, i === 0 ? ' (start)' : i === t.path.length - 1 ? ' (nearest)' : ''))
    if (++i < t.path.length) setTimeout(next, HOP_DELAY_MS)
    else result.dataset.state = 'done'
  }
  next()
}
