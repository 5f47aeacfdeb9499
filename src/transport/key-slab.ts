// Session keys, 64 bytes a session (both ways), in off-heap chunks that many sessions share. A
// buffer of its own per session cost more than the keys: V8 keeps an ArrayBuffer object and a
// native backing store for each, and a node keeps a session per peer it talks to.
const SLOT_BYTES = 64
const SLOTS_PER_CHUNK = 64

export class KeySlab {
  private readonly chunks: ArrayBuffer[] = []
  private readonly free: number[] = []
  private next = 0

  /** A free slot; its 64 bytes (view) are the session's until release. */
  take(): number {
    const slot = this.free.pop()
    if (slot !== undefined) return slot
    if (this.next === this.chunks.length * SLOTS_PER_CHUNK) this.chunks.push(new ArrayBuffer(SLOT_BYTES * SLOTS_PER_CHUNK))
    return this.next++
  }

  /** The slot's 64 bytes (libsodium reads keys where they are: off-heap, no copy). */
  view(slot: number): Uint8Array {
    return new Uint8Array(this.chunks[Math.floor(slot / SLOTS_PER_CHUNK)], (slot % SLOTS_PER_CHUNK) * SLOT_BYTES, SLOT_BYTES)
  }

  /** Zeroes the slot and gives it back; the caller no longer uses views of it. */
  release(slot: number): void {
    this.view(slot).fill(0)
    this.free.push(slot)
  }

  /** Slots in use. */
  get used(): number { return this.next - this.free.length }
}
