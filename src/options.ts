// Options merged over defaults, once per options object: nodes built alike (a million in the
// simulator) share one merged object instead of a copy each.

export function withDefaults<T extends object>(defaults: T): (options: Partial<T>) => T {
  const merged = new WeakMap<Partial<T>, T>()
  return (options) => {
    let o = merged.get(options)
    if (!o) { o = { ...defaults, ...options }; merged.set(options, o) }
    return o
  }
}
