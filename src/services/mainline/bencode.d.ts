// Types for the `bencode` package (webtorrent/node-bencode 4.x ships none). Only what krpc.ts uses.
declare module 'bencode' {
  /** What bencode holds: byte strings (Uint8Array when decoded), integers, lists and dictionaries. */
  type Value = Uint8Array | string | number | Value[] | { [key: string]: Value | undefined }
  interface Bencode {
    encode(data: Value): Uint8Array
    /** Byte strings come back as Uint8Array; dictionary keys as (UTF-8 decoded) strings. */
    decode(data: Uint8Array): unknown
  }
  const bencode: Bencode
  export default bencode
}
