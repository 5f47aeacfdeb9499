// Options merged over defaults, once per options object: nodes built alike (a million in the
// simulator) share one merged object instead of a copy each. An option given as undefined (the
// simulator passes on what it was given) means the default.

export function withDefaults<T extends object>(defaults: T): (options: Partial<T>) => T {
  const merged = new WeakMap<Partial<T>, T>()
  return (options) => {
    let o = merged.get(options)
    if (!o) {
      o = { ...defaults }
      for (const [key, value] of Object.entries(options)) if (value !== undefined) (o as Record<string, unknown>)[key] = value
      merged.set(options, o)
    }
    return o
  }
}
