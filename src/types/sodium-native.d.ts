// The part of sodium-native (libsodium's bindings) that Weft uses; the package ships no types.
declare module 'sodium-native' {
  interface Sodium {
    randombytes_buf(out: Uint8Array): void
    crypto_scalarmult_base(publicKey: Uint8Array, secretKey: Uint8Array): void
    /** Throws when the result is all zero (a low-order public key). */
    crypto_scalarmult(shared: Uint8Array, secretKey: Uint8Array, publicKey: Uint8Array): void
    crypto_hash_sha256(out: Uint8Array, input: Uint8Array): void
    /** Returns the bytes written: input length + 16. */
    crypto_aead_chacha20poly1305_ietf_encrypt(out: Uint8Array, plaintext: Uint8Array, ad: Uint8Array | null, nsec: null, nonce: Uint8Array, key: Uint8Array): number
    /** Throws when the tag does not match. */
    crypto_aead_chacha20poly1305_ietf_decrypt(out: Uint8Array, nsec: null, ciphertext: Uint8Array, ad: Uint8Array | null, nonce: Uint8Array, key: Uint8Array): number
  }
  const sodium: Sodium
  export default sodium
}

// The native functions themselves, under sodium-native's argument-checking wrappers. The AEAD's
// per-packet path calls them directly: the wrappers' checks cost about a tenth of a packet's
// sealing, and the callers here always pass the sizes libsodium needs (the native side asserts
// them too). Each returns the bytes written; a failed decryption returns a status that is not the
// plaintext's length (libsodium's -1, through an unsigned 64-bit return).
declare module 'sodium-native/binding.js' {
  interface Binding {
    crypto_aead_chacha20poly1305_ietf_encrypt(out: Uint8Array, plaintext: Uint8Array, ad: Uint8Array | undefined, nonce: Uint8Array, key: Uint8Array): number
    crypto_aead_chacha20poly1305_ietf_decrypt(out: Uint8Array, ciphertext: Uint8Array, ad: Uint8Array | undefined, nonce: Uint8Array, key: Uint8Array): number
  }
  const binding: Binding
  export default binding
}
