// The Noise Protocol Framework (revision 34), written by hand for two protocols:
// Noise_XX_25519_ChaChaPoly_SHA256 and Noise_IK_25519_ChaChaPoly_SHA256, and their pskN variants
// (section 9: a pre-shared key; a private network's key). https://noiseprotocol.org/noise.html
// Sans-IO: bytes in, bytes out. libsodium (sodium-native, as hyperdht uses) does X25519,
// ChaCha20-Poly1305 and SHA-256. node:crypto did before: its fixed cost per call (a cipher object
// per datagram, key objects imported from JWK) was most of a datagram's cost on loopback, about
// 6 µs a seal against libsodium's 1.2 µs (bench: `npm run bench`, the encryption table).
import sodium from 'sodium-native'
import aead from 'sodium-native/binding.js' // unchecked: see src/types/sodium-native.d.ts
import { WeftError } from '../errors.js'

export type Pattern = 'XX' | 'IK'
export interface KeyPair { publicKey: Uint8Array; privateKey: Uint8Array } // raw 32-byte X25519 keys

export const KEY_BYTES = 32 // DHLEN, HASHLEN and the cipher key length are all 32 in these suites
export const TAG_BYTES = 16
export const MAX_MESSAGE_BYTES = 65535 // the spec's bound on any Noise message

const EMPTY = new Uint8Array(0)
const NONCE_BYTES = 12
// REKEY encrypts under the one nonce that EncryptWithAd never uses, 2^64-1.
const REKEY_NONCE = Uint8Array.of(0, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255)

function fail(code: 'ERR_HANDSHAKE' | 'ERR_DECRYPT', message: string, cause?: unknown): WeftError {
  return new WeftError(code, message, cause === undefined ? undefined : { cause })
}

function checkKey(key: unknown, what: string): Uint8Array {
  if (!(key instanceof Uint8Array) || key.length !== KEY_BYTES) {
    throw new WeftError('ERR_BAD_ARGUMENT', `${what} must be a ${KEY_BYTES}-byte Uint8Array`)
  }
  return key
}

function checkNonce(nonce: number): number {
  if (!Number.isSafeInteger(nonce) || nonce < 0) throw new WeftError('ERR_BAD_ARGUMENT', `nonce ${nonce} is not a non-negative safe integer`)
  return nonce
}

const bytes = (b: Uint8Array): Uint8Array => new Uint8Array(b) // a plain copy: no Buffer, no shared pool

// Pairs made here are known to match, so a handshake does not check them again. Pairs are not to be mutated.
const madeHere = new WeakSet<KeyPair>()

// A handshake makes about forty short-lived 32-byte values (hashes, DH results, ephemeral keys)
// that libsodium reads or writes. Made by length they would sit in V8's heap, and V8 would move
// each out (a malloc and a copy) at its first native call: a tenth of a handshake's CPU in a
// profile. So they are carved from a shared off-heap pool, as packets are (see packet()). Nothing
// long-lived may keep one: it would pin its pool; values that are kept are copied.
const transient = bumpPool(16 * 1024)
const transient32 = (): Uint8Array => transient(KEY_BYTES)

/** `short`: a handshake's ephemeral pair, from the shared pool; otherwise each key has its own buffer. */
export function keyPairFromPrivate(privateKey: Uint8Array, short = false): KeyPair {
  checkKey(privateKey, 'an X25519 private key')
  const [publicKey, privateCopy] = short ? [transient32(), transient32()] : [offHeap(KEY_BYTES), offHeap(KEY_BYTES)]
  privateCopy.set(privateKey)
  sodium.crypto_scalarmult_base(publicKey, privateCopy)
  const pair = { publicKey, privateKey: privateCopy }
  madeHere.add(pair)
  return pair
}

export function generateKeyPair(short = false): KeyPair {
  const privateKey = transient32()
  sodium.randombytes_buf(privateKey)
  return keyPairFromPrivate(privateKey, short)
}

function sha256(...parts: Uint8Array[]): Uint8Array {
  const out = transient32()
  sodium.crypto_hash_sha256(out, parts.length === 1 ? parts[0] : Buffer.concat(parts))
  return out
}

// HMAC-SHA256 (RFC 2104) over SHA-256; every key here is HASHLEN (32) bytes, below the block size.
const BLOCK = 64
function hmac(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const pad = new Uint8Array(BLOCK)
  pad.set(key)
  for (let i = 0; i < BLOCK; i++) pad[i] ^= 0x36
  const inner = sha256(pad, ...parts)
  for (let i = 0; i < BLOCK; i++) pad[i] ^= 0x36 ^ 0x5c
  return sha256(pad, inner)
}

// The spec's HKDF (section 4.3) with two outputs, all that MixKey and Split need.
function hkdf2(ck: Uint8Array, ikm: Uint8Array): [Uint8Array, Uint8Array] {
  const temp = hmac(ck, ikm)
  const out1 = hmac(temp, Uint8Array.of(1))
  return [out1, hmac(temp, out1, Uint8Array.of(2))]
}

// HKDF with three outputs, for MixKeyAndHash (the psk token).
function hkdf3(ck: Uint8Array, ikm: Uint8Array): [Uint8Array, Uint8Array, Uint8Array] {
  const temp = hmac(ck, ikm)
  const out1 = hmac(temp, Uint8Array.of(1))
  const out2 = hmac(temp, out1, Uint8Array.of(2))
  return [out1, out2, hmac(temp, out2, Uint8Array.of(3))]
}

// Byte arrays handed to libsodium live outside V8's heap: a typed array of 64 bytes or less made
// by length sits inside the heap, and V8 moves it out (an allocation and a copy) the first time
// native code asks for it, which cost more than the cipher. So packets are made over their own
// ArrayBuffer, and the nonce is one reused buffer (the calls are synchronous).
const offHeap = (length: number): Uint8Array => new Uint8Array(new ArrayBuffer(length))

/**
 * Views carved one after another from a shared off-heap ArrayBuffer of `size` bytes, a new one
 * when it is used up (what a view keeps alive is its whole buffer); a request over an eighth of
 * it gets its own buffer. Offsets stay 8-byte aligned, as in Buffer's pool.
 */
function bumpPool(size: number): (length: number) => Uint8Array {
  let buffer = new ArrayBuffer(size)
  let used = 0
  return (length) => {
    if (length > size / 8) return offHeap(length)
    if (used + length > size) { buffer = new ArrayBuffer(size); used = 0 }
    const out = new Uint8Array(buffer, used, length)
    used += (length + 7) & ~7
    return out
  }
}
const NONCE = offHeap(NONCE_BYTES)

// ChaChaPoly's 96-bit nonce is 32 zero bits, then the 64-bit counter little-endian (section 12.3).
function nonceBytes(n: number): Uint8Array {
  const lo = n % 2 ** 32
  const hi = Math.floor(n / 2 ** 32)
  NONCE[4] = lo; NONCE[5] = lo >>> 8; NONCE[6] = lo >>> 16; NONCE[7] = lo >>> 24
  NONCE[8] = hi; NONCE[9] = hi >>> 8; NONCE[10] = hi >>> 16; NONCE[11] = hi >>> 24
  return NONCE
}

// Whole packets (the AD in front) only live until they are sent, so they are carved from a shared
// pool, as Node's Buffer.allocUnsafe does, but as plain Uint8Array views: a Buffer's subarray goes
// through its species constructor, which cost more than the views themselves.
const packet = bumpPool(64 * 1024)

// V8 keeps a typed array of at most this many bytes inside its heap (see offHeap).
const ON_HEAP_MAX = 64

// One buffer per packet: the AD when `adInFront` (a packet's header), then the ciphertext and tag.
// libsodium reads the plaintext where it is and writes the ciphertext into the packet, unless the
// plaintext is small enough to sit in V8's heap: then it is copied in first and sealed in place.
function seal(key: Uint8Array, iv: Uint8Array, ad: Uint8Array, plaintext: Uint8Array, adInFront: boolean): Uint8Array {
  const head = adInFront ? ad.length : 0
  // Anything but a whole packet may be kept, so it gets its own buffer.
  const out = adInFront ? packet(head + plaintext.length + TAG_BYTES) : offHeap(head + plaintext.length + TAG_BYTES)
  const at = out.byteOffset + head
  const body = head === 0 ? out : new Uint8Array(out.buffer, at, plaintext.length + TAG_BYTES)
  let message = plaintext
  if (plaintext.length <= ON_HEAP_MAX) {
    body.set(plaintext)
    message = new Uint8Array(out.buffer, at, plaintext.length)
  }
  if (adInFront) out.set(ad) // the AD given is read by libsodium where it is: reuse one buffer for it
  aead.crypto_aead_chacha20poly1305_ietf_encrypt(body, message, ad, iv, key)
  return out
}

function open(key: Uint8Array, iv: Uint8Array, ad: Uint8Array, ciphertext: Uint8Array): Uint8Array | null {
  if (ciphertext.length < TAG_BYTES) return null
  const plaintext = offHeap(ciphertext.length - TAG_BYTES)
  return aead.crypto_aead_chacha20poly1305_ietf_decrypt(plaintext, ciphertext, ad, iv, key) === plaintext.length ? plaintext : null
}

/**
 * A transport packet under `key` (an off-heap key, as Handshake.splitKeys gives): `ad` (the
 * packet's header) in front of the ciphertext and tag. A session's data path.
 */
export function sealPacket(key: Uint8Array, nonce: number, ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
  return seal(key, nonceBytes(checkNonce(nonce)), ad, plaintext, true)
}

/**
 * Opens `ciphertext` (plaintext and tag) under `key` in place, and returns the plaintext: a plain
 * Uint8Array view (not a Buffer, when the datagram was one), which is what every layer above
 * gets. Null when the tag does not match; then nothing was written.
 */
export function openInPlace(key: Uint8Array, nonce: number, ad: Uint8Array, ciphertext: Uint8Array): Uint8Array | null {
  if (ciphertext.length < TAG_BYTES) return null
  const plaintext = new Uint8Array(ciphertext.buffer, ciphertext.byteOffset, ciphertext.length - TAG_BYTES)
  // Overlapping input and output are allowed when they start at the same byte, as here.
  return aead.crypto_aead_chacha20poly1305_ietf_decrypt(plaintext, ciphertext, ad, nonceBytes(checkNonce(nonce)), key) === plaintext.length ? plaintext : null
}

export class CipherState {
  #key: Uint8Array
  #n = 0
  /** `adopt`: use `key` itself, an off-heap array nobody else writes, instead of a copy. */
  constructor(key: Uint8Array, adopt = false) {
    checkKey(key, 'a cipher key')
    if (adopt) this.#key = key
    else (this.#key = offHeap(KEY_BYTES)).set(key)
  }
  /** Explicit-nonce AEAD for transport messages that may arrive out of order (UDP). */
  encrypt(nonce: number, ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    return seal(this.#key, nonceBytes(checkNonce(nonce)), ad, plaintext, false)
  }
  decrypt(nonce: number, ad: Uint8Array, ciphertext: Uint8Array): Uint8Array | null {
    return open(this.#key, nonceBytes(checkNonce(nonce)), ad, ciphertext)
  }
  /** Noise's implicit-nonce use (n counts up from 0), as in the spec's EncryptWithAd/DecryptWithAd. */
  encryptWithAd(ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    const out = this.encrypt(this.#n, ad, plaintext)
    this.#n++
    return out
  }
  decryptWithAd(ad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    const out = this.decrypt(this.#n, ad, ciphertext)
    if (out === null) throw fail('ERR_DECRYPT', 'a Noise message failed authentication')
    this.#n++ // only on success, so a forged message does not move the counter
    return out
  }
  rekey(): void {
    this.#key = seal(this.#key, REKEY_NONCE, EMPTY, new Uint8Array(KEY_BYTES), false).subarray(0, KEY_BYTES) // stays off the heap
  }
  /** The next implicit nonce. */
  get nonce(): number {
    return this.#n
  }
  clone(): CipherState {
    const key = transient32() // a handshake's saved state, dropped with the handshake
    key.set(this.#key)
    const copy = new CipherState(key, true)
    copy.#n = this.#n
    return copy
  }
}

export interface HandshakeOptions {
  pattern: Pattern
  initiator: boolean
  prologue?: Uint8Array
  s: KeyPair // our static key
  rs?: Uint8Array // the responder's static public key: required for an IK initiator
  e?: KeyPair // a given ephemeral (test vectors, or one drawn from a seeded random source); otherwise generated
  /**
   * A pre-shared key and where it enters (the pskN modifier, section 9.2): 0 at the start of the
   * first message, N >= 1 at the end of message N. Both sides must give the same key and place.
   */
  psk?: { key: Uint8Array; position: number }
}

type Token = 'e' | 's' | 'ee' | 'es' | 'se' | 'ss' | 'psk'
// Each pattern: is the responder's static key a pre-message (IK's "<- s")? Then its messages in turn.
const PATTERNS: Record<Pattern, { responderStaticKnown: boolean; messages: Token[][] }> = {
  XX: { responderStaticKnown: false, messages: [['e'], ['e', 'ee', 's', 'es'], ['s', 'se']] },
  IK: { responderStaticKnown: true, messages: [['e', 'es', 's', 'ss'], ['e', 'ee', 'se']] },
}

interface Local { publicKey: Uint8Array; privateKey: Uint8Array }
interface Remote { raw: Uint8Array }
// Everything a message changes, kept together so a failed message can be undone.
interface State { index: number; ck: Uint8Array; h: Uint8Array; k: CipherState | null; e: Local | null; re: Remote | null; rs: Remote | null }

function local(pair: KeyPair, what: string): Local {
  if (madeHere.has(pair)) return pair
  const derived = keyPairFromPrivate(checkKey(pair?.privateKey, `${what}'s private key`))
  if (!Buffer.from(derived.publicKey).equals(checkKey(pair.publicKey, `${what}'s public key`))) {
    throw new WeftError('ERR_BAD_ARGUMENT', `${what}'s public key does not match its private key`)
  }
  return derived
}

const remote = (raw: Uint8Array): Remote => {
  const copy = transient32()
  copy.set(raw)
  return { raw: copy }
}

// Static-static secrets (IK's ss) repeat in every handshake between two nodes: each static key
// keeps a bounded few, so such a handshake does three X25519s a side instead of four. Few: each
// costs about 300 bytes, first contact never finds one, and a session is rekeyed every 2 min.
const SS_KEPT = 32
const staticSecrets = new WeakMap<Local, Map<string, Uint8Array>>()
function staticDh(mine: Local, theirs: Remote | null): Uint8Array {
  if (!theirs) return dh(mine, theirs)
  let kept = staticSecrets.get(mine)
  if (!kept) staticSecrets.set(mine, (kept = new Map()))
  const id = Buffer.from(theirs.raw.buffer, theirs.raw.byteOffset, KEY_BYTES).toString('hex')
  let shared = kept.get(id)
  if (!shared) {
    shared = bytes(dh(mine, theirs)) // kept: a copy of its own, not a view into the transient pool
    if (kept.size >= SS_KEPT) kept.delete(kept.keys().next().value!)
    kept.set(id, shared)
  }
  return shared
}

// X25519. libsodium refuses an all-zero result (the peer sent a low-order point), and so do we.
function dh(mine: Local | null, theirs: Remote | null): Uint8Array {
  if (!mine || !theirs) throw fail('ERR_HANDSHAKE', 'a DH token before its keys are known')
  const shared = transient32()
  try {
    sodium.crypto_scalarmult(shared, mine.privateKey, theirs.raw)
  } catch (err) {
    throw fail('ERR_HANDSHAKE', 'X25519 with the peer key gave an all-zero secret', err)
  }
  return shared
}

export class Handshake {
  readonly pattern: Pattern
  readonly initiator: boolean
  readonly #messages: Token[][]
  readonly #s: Local
  readonly #fixedE: Local | null
  readonly #psk: Uint8Array | null
  #st: State
  #didSplit = false

  constructor(options: HandshakeOptions) {
    const { pattern, initiator, prologue = EMPTY, s, rs, e, psk } = options
    if (pattern !== 'XX' && pattern !== 'IK') throw new WeftError('ERR_BAD_ARGUMENT', `unknown Noise pattern ${String(pattern)}`)
    if (typeof initiator !== 'boolean') throw new WeftError('ERR_BAD_ARGUMENT', 'initiator must be true or false')
    if (!(prologue instanceof Uint8Array)) throw new WeftError('ERR_BAD_ARGUMENT', 'the prologue must be a Uint8Array')
    const ikInitiator = pattern === 'IK' && initiator
    if (ikInitiator && rs === undefined) throw new WeftError('ERR_BAD_ARGUMENT', "an IK initiator needs the responder's static key (rs)")
    if (!ikInitiator && rs !== undefined) throw new WeftError('ERR_BAD_ARGUMENT', 'rs is only for an IK initiator; others learn it in the handshake')
    this.pattern = pattern
    this.initiator = initiator
    this.#messages = PATTERNS[pattern].messages
    let modifier = ''
    this.#psk = null
    if (psk !== undefined) {
      const { position } = psk
      if (!Number.isInteger(position) || position < 0 || position > this.#messages.length) {
        throw new WeftError('ERR_BAD_ARGUMENT', `a psk position for ${pattern} is 0 to ${this.#messages.length}`)
      }
      this.#psk = bytes(checkKey(psk.key, 'a pre-shared key'))
      this.#messages = this.#messages.map((m, i) => (position === 0 && i === 0 ? ['psk' as Token, ...m] : i === position - 1 ? [...m, 'psk' as Token] : m))
      modifier = `psk${position}`
    }
    this.#s = local(s, 'the static key')
    this.#fixedE = e === undefined ? null : local(e, 'the ephemeral key')
    // A protocol name of at most HASHLEN bytes is h itself, zero-padded; longer ones are hashed (section 5.2).
    const name = Buffer.from(`Noise_${pattern}${modifier}_25519_ChaChaPoly_SHA256`)
    const h = new Uint8Array(KEY_BYTES)
    if (name.length <= KEY_BYTES) h.set(name)
    else h.set(sha256(name))
    this.#st = { index: 0, ck: h, h, k: null, e: null, re: null, rs: rs === undefined ? null : remote(checkKey(rs, 'rs')) }
    this.#mixHash(prologue)
    if (PATTERNS[pattern].responderStaticKnown) this.#mixHash(initiator ? this.#st.rs!.raw : this.#s.publicKey)
  }

  get complete(): boolean {
    return this.#st.index === this.#messages.length
  }
  get remoteStatic(): Uint8Array | null {
    return this.#st.rs ? bytes(this.#st.rs.raw) : null
  }
  get handshakeHash(): Uint8Array {
    return bytes(this.#st.h)
  }

  writeMessage(payload: Uint8Array): Uint8Array {
    this.#checkTurn(true)
    return this.#undoOnError(() => {
      const st = this.#st
      const parts: Uint8Array[] = []
      for (const token of this.#messages[st.index]) {
        if (token === 'e') {
          st.e = this.#fixedE ?? generateKeyPair(true)
          parts.push(st.e.publicKey)
          this.#mixHash(st.e.publicKey)
          if (this.#psk) this.#mixKey(st.e.publicKey) // section 9.2: in a psk handshake, e is also mixed into the key
        } else if (token === 's') parts.push(this.#encryptAndHash(this.#s.publicKey))
        else if (token === 'psk') this.#mixKeyAndHash(this.#psk!)
        else this.#mixKey(this.#dh(token))
      }
      parts.push(this.#encryptAndHash(payload))
      const message = bytes(Buffer.concat(parts))
      if (message.length > MAX_MESSAGE_BYTES) throw new WeftError('ERR_TOO_LARGE', `a Noise message is at most ${MAX_MESSAGE_BYTES} bytes`)
      st.index++
      return message
    })
  }

  readMessage(message: Uint8Array): Uint8Array {
    this.#checkTurn(false)
    if (message.length > MAX_MESSAGE_BYTES) throw fail('ERR_HANDSHAKE', `a Noise message is at most ${MAX_MESSAGE_BYTES} bytes`)
    return this.#undoOnError(() => {
      const st = this.#st
      let at = 0
      const take = (n: number) => {
        if (message.length - at < n) throw fail('ERR_HANDSHAKE', 'a Noise handshake message is too short')
        return message.subarray(at, (at += n))
      }
      for (const token of this.#messages[st.index]) {
        if (token === 'e') {
          st.re = remote(take(KEY_BYTES))
          this.#mixHash(st.re.raw)
          if (this.#psk) this.#mixKey(st.re.raw)
        } else if (token === 's') st.rs = remote(this.#decryptAndHash(take(KEY_BYTES + (st.k ? TAG_BYTES : 0))))
        else if (token === 'psk') this.#mixKeyAndHash(this.#psk!)
        else this.#mixKey(this.#dh(token))
      }
      const payload = this.#decryptAndHash(message.subarray(at))
      st.index++
      return payload
    })
  }

  /** After completion: this side's (send, receive) cipher states. Once only: a second pair would reuse nonces. */
  split(): { send: CipherState; receive: CipherState } {
    const { send, receive } = this.splitKeys()
    return { send: new CipherState(send, true), receive: new CipherState(receive, true) }
  }

  /**
   * As split, the bare keys, for sealPacket and openInPlace (a session's data path needs no
   * implicit nonce), written into `keys` (64 off-heap bytes) when given. Once only, with split: a
   * second pair would reuse nonces.
   */
  splitKeys(keys: Uint8Array = offHeap(2 * KEY_BYTES)): { send: Uint8Array; receive: Uint8Array } {
    if (!this.complete) throw fail('ERR_HANDSHAKE', 'split before the handshake is complete')
    if (this.#didSplit) throw fail('ERR_HANDSHAKE', 'split may be called only once')
    if (keys.length !== 2 * KEY_BYTES) throw fail('ERR_HANDSHAKE', 'the keys go into 64 bytes')
    this.#didSplit = true
    const [k1, k2] = hkdf2(this.#st.ck, EMPTY)
    // Both keys in one off-heap buffer (`keys`: a session copies them out at once): they live and die together.
    keys.set(k1)
    keys.set(k2, KEY_BYTES)
    const c1 = keys.subarray(0, KEY_BYTES) // initiator to responder
    const c2 = keys.subarray(KEY_BYTES)
    return this.initiator ? { send: c1, receive: c2 } : { send: c2, receive: c1 }
  }

  #checkTurn(writing: boolean): void {
    if (this.complete) throw fail('ERR_HANDSHAKE', 'the handshake is already complete')
    const ourTurn = (this.#st.index % 2 === 0) === this.initiator
    if (ourTurn !== writing) throw fail('ERR_HANDSHAKE', writing ? "it is the peer's turn to send" : 'a handshake message out of turn')
  }

  // A message either applies whole or not at all: a forged datagram cannot wreck a handshake in progress.
  #undoOnError<T>(run: () => T): T {
    const saved: State = { ...this.#st, k: this.#st.k?.clone() ?? null }
    try {
      return run()
    } catch (err) {
      this.#st = saved
      throw err
    }
  }

  #dh(token: Token): Uint8Array {
    const { e, re, rs } = this.#st
    const s = this.#s
    switch (token) {
      case 'ee': return dh(e, re)
      case 'ss': return staticDh(s, rs)
      case 'es': return this.initiator ? dh(e, rs) : dh(s, re)
      default: return this.initiator ? dh(s, re) : dh(e, rs) // 'se'
    }
  }

  #mixHash(data: Uint8Array): void {
    this.#st.h = sha256(this.#st.h, data)
  }

  #mixKey(ikm: Uint8Array): void {
    const [ck, k] = hkdf2(this.#st.ck, ikm)
    this.#st.ck = ck
    this.#st.k = new CipherState(k, true) // k is a fresh transient value: no copy needed
  }

  #mixKeyAndHash(psk: Uint8Array): void {
    const [ck, h, k] = hkdf3(this.#st.ck, psk)
    this.#st.ck = ck
    this.#mixHash(h)
    this.#st.k = new CipherState(k, true)
  }

  #encryptAndHash(plaintext: Uint8Array): Uint8Array {
    const out = this.#st.k ? this.#st.k.encryptWithAd(this.#st.h, plaintext) : bytes(plaintext)
    this.#mixHash(out)
    return out
  }

  #decryptAndHash(ciphertext: Uint8Array): Uint8Array {
    let out = bytes(ciphertext)
    if (this.#st.k) {
      try {
        out = this.#st.k.decryptWithAd(this.#st.h, ciphertext)
      } catch (err) {
        throw fail('ERR_HANDSHAKE', 'a Noise handshake message failed authentication', err)
      }
    }
    this.#mixHash(ciphertext)
    return out
  }
}
