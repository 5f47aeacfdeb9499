// Small DOM and SVG builders (no framework: the page is a few panels).
const SVG_NS = 'http://www.w3.org/2000/svg'

type Attrs = Record<string, string | number | boolean | undefined>

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue
    if (k === 'text') e.textContent = String(v)
    else e.setAttribute(k, v === true ? '' : String(v))
  }
  e.append(...children)
  return e
}

export function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: (Node | string)[]): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG_NS, tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue
    if (k === 'text') e.textContent = String(v)
    else e.setAttribute(k, String(v))
  }
  e.append(...children)
  return e
}

export const byId = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const e = document.getElementById(id)
  if (!e) throw new Error(`#${id} is missing from the page`)
  return e as T
}

/** A titled SVG element: the title is the tooltip. */
export function titled<T extends SVGElement>(e: T, title: string): T {
  e.append(svg('title', { text: title }))
  return e
}
