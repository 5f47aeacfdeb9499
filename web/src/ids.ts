// Node ids as people see them: short hex, and a place on the id ring.
export const short = (id: string): string => `${id.slice(0, 8)}…`

/** Where an id sits on the ring, in [0, 1): its first 52 bits as a fraction. */
export function ringPos(id: string): number {
  return parseInt(id.slice(0, 13), 16) / 2 ** 52
}

/** A point on a circle of radius r around (cx, cy) for a ring position (0 at the top, clockwise). */
export function onCircle(pos: number, cx: number, cy: number, r: number): [number, number] {
  const a = pos * 2 * Math.PI - Math.PI / 2
  return [cx + r * Math.cos(a), cy + r * Math.sin(a)]
}

export function randomId(): string {
  const b = new Uint8Array(32)
  crypto.getRandomValues(b)
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join('')
}

export const isId = (s: string): boolean => /^[0-9a-fA-F]{64}$/.test(s)

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`
  return `${(n / 1024 ** 2).toFixed(1)} MiB`
}

export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`
  const s = ms / 1000
  if (s < 120) return `${s.toFixed(1)} s`
  const m = s / 60
  return m < 120 ? `${m.toFixed(1)} min` : `${(m / 60).toFixed(1)} h`
}
