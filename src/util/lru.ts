// A Map with a size bound: the least recently used entry goes first.
export class LruMap<K, V> {
  private readonly map = new Map<K, V>()
  constructor(readonly capacity: number) {}
  get size(): number { return this.map.size }
  get(key: K): V | undefined {
    const v = this.map.get(key)
    if (v !== undefined) { this.map.delete(key); this.map.set(key, v) }
    return v
  }
  peek(key: K): V | undefined { return this.map.get(key) }
  set(key: K, value: V): void {
    this.map.delete(key)
    this.map.set(key, value)
    if (this.map.size > this.capacity) this.map.delete(this.map.keys().next().value as K)
  }
  delete(key: K): boolean { return this.map.delete(key) }
  clear(): void { this.map.clear() }
}
