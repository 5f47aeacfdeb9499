// Contacts as small integer handles: each (id, address) pair is stored once, and routing tables
// keep 4-byte handles to it instead of an object per contact. A node has its own pool; the
// simulator gives all its nodes one, so a million tables share one copy of each id.
import { ID_BYTES, idEquals } from '../identity/node-id.js'
import type { Address } from '../wire/address.js'

export class ContactPool {
  private ids: Uint8Array
  private addresses: (Address | undefined)[] = []
  private refs: Uint32Array
  private readonly free: number[] = []
  private used = 0
  /** The newest handle for each address, so that a contact seen again gets the same handle. */
  private readonly byAddress = new Map<Address, number>()

  constructor(initial = 64) {
    this.ids = new Uint8Array(initial * ID_BYTES)
    this.refs = new Uint32Array(initial)
  }

  /** A handle for (id, address) that holds one reference; release it when done. */
  acquire(id: Uint8Array, address: Address): number {
    const known = this.byAddress.get(address)
    if (known !== undefined && idEquals(id, this.ids, known * ID_BYTES)) { this.refs[known]++; return known }
    let h = this.free.pop()
    if (h === undefined) {
      if (this.used === this.refs.length) this.grow()
      h = this.used++
    }
    this.ids.set(id.subarray(0, ID_BYTES), h * ID_BYTES)
    this.addresses[h] = address
    this.refs[h] = 1
    this.byAddress.set(address, h)
    return h
  }

  retain(h: number): void { this.refs[h]++ }

  release(h: number): void {
    if (--this.refs[h] > 0) return
    const a = this.addresses[h]!
    if (this.byAddress.get(a) === h) this.byAddress.delete(a)
    this.addresses[h] = undefined
    this.free.push(h)
  }

  address(h: number): Address { return this.addresses[h]! }

  /** A copy of the id: handles are reused once released, so callers must not keep a view. */
  id(h: number): Uint8Array { return this.ids.slice(h * ID_BYTES, (h + 1) * ID_BYTES) }

  /** The id array and the offset of h's id in it, for comparisons without a copy. */
  idArray(): Uint8Array { return this.ids }

  hasId(h: number, id: Uint8Array): boolean { return idEquals(id, this.ids, h * ID_BYTES) }

  private grow(): void {
    const cap = Math.max(16, Math.ceil(this.refs.length * 1.5))
    const ids = new Uint8Array(cap * ID_BYTES)
    ids.set(this.ids)
    const refs = new Uint32Array(cap)
    refs.set(this.refs)
    this.ids = ids
    this.refs = refs
  }
}
