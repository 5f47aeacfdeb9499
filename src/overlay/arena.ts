// Where routing tables get their typed arrays. A real node allocates each one on its own; the
// simulator hands out views into large shared slabs, so a million tables cost a handful of
// ArrayBuffers instead of millions (each one a malloc, a V8 object and external-memory upkeep).
// A slab arena never frees: a table that outgrows its array leaves the old space behind.

export interface Arena {
  words(n: number): Uint32Array
  bytes(n: number): Uint8Array
}

export const heapArena: Arena = {
  words: (n) => new Uint32Array(n),
  bytes: (n) => new Uint8Array(n),
}

export class SlabArena implements Arena {
  private slab = new ArrayBuffer(0)
  private used = 0

  constructor(private readonly slabBytes = 16 * 1024 * 1024) {}

  private take(bytes: number, align: number): [ArrayBuffer, number] {
    let at = Math.ceil(this.used / align) * align
    if (at + bytes > this.slab.byteLength) {
      this.slab = new ArrayBuffer(Math.max(this.slabBytes, bytes))
      at = 0
    }
    this.used = at + bytes
    return [this.slab, at]
  }

  words(n: number): Uint32Array {
    const [buf, at] = this.take(n * 4, 4)
    return new Uint32Array(buf, at, n)
  }

  bytes(n: number): Uint8Array {
    const [buf, at] = this.take(n, 1)
    return new Uint8Array(buf, at, n)
  }
}
