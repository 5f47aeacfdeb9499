// Noise (XX and IK over 25519, ChaChaPoly, SHA256): published test vectors, round trips, and the ways it must fail.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { WeftError } from '../src/errors.js'
import {
  CipherState, generateKeyPair, Handshake, keyPairFromPrivate, TAG_BYTES, type KeyPair, type Pattern,
} from '../src/transport/noise.js'

interface Vector {
  name: string
  init_prologue: string
  init_static: string
  init_ephemeral: string
  init_remote_static?: string
  resp_prologue: string
  resp_static: string
  resp_ephemeral: string
  handshake_hash?: string
  messages: { payload: string; ciphertext: string }[]
}
// Tests run from dist/test/, the fixture stays in the source tree.
const fixture = JSON.parse(readFileSync(new URL('../../test/fixtures/noise-vectors.json', import.meta.url), 'utf8')) as {
  source: string
  vectors: Vector[]
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')
const unhex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'))
const text = (s: string) => new TextEncoder().encode(s)
const code = (c: string) => (err: unknown) => err instanceof WeftError && err.code === c

test('the fixture holds the published XX and IK vectors, and nothing else', () => {
  assert.match(fixture.source, /noise-c/)
  assert.deepEqual(fixture.vectors.map((v) => v.name).sort(), ['Noise_IK_25519_ChaChaPoly_SHA256', 'Noise_XX_25519_ChaChaPoly_SHA256'])
})

for (const v of fixture.vectors) {
  test(`published vector ${v.name}`, () => {
    const pattern = v.name.split('_')[1] as Pattern
    const initiator = new Handshake({
      pattern, initiator: true, prologue: unhex(v.init_prologue), s: keyPairFromPrivate(unhex(v.init_static)),
      e: keyPairFromPrivate(unhex(v.init_ephemeral)), rs: v.init_remote_static ? unhex(v.init_remote_static) : undefined,
    })
    const responder = new Handshake({
      pattern, initiator: false, prologue: unhex(v.resp_prologue), s: keyPairFromPrivate(unhex(v.resp_static)),
      e: keyPairFromPrivate(unhex(v.resp_ephemeral)),
    })
    let i = 0
    for (; !initiator.complete; i++) {
      const [from, to] = i % 2 === 0 ? [initiator, responder] : [responder, initiator]
      const { payload, ciphertext } = v.messages[i]
      const sent = from.writeMessage(unhex(payload))
      assert.equal(hex(sent), ciphertext, `handshake message ${i}`)
      assert.equal(hex(to.readMessage(sent)), payload)
    }
    assert.ok(responder.complete)
    if (v.handshake_hash) assert.equal(hex(initiator.handshakeHash), v.handshake_hash)
    assert.equal(hex(responder.handshakeHash), hex(initiator.handshakeHash))
    assert.equal(hex(initiator.remoteStatic!), hex(keyPairFromPrivate(unhex(v.resp_static)).publicKey))
    assert.equal(hex(responder.remoteStatic!), hex(keyPairFromPrivate(unhex(v.init_static)).publicKey))
    // Transport messages go on alternating from where the handshake left off, with implicit nonces.
    const ini = initiator.split()
    const res = responder.split()
    const transport = v.messages.length - i
    for (; i < v.messages.length; i++) {
      const [send, receive] = i % 2 === 0 ? [ini.send, res.receive] : [res.send, ini.receive]
      const { payload, ciphertext } = v.messages[i]
      const sent = send.encryptWithAd(new Uint8Array(0), unhex(payload))
      assert.equal(hex(sent), ciphertext, `transport message ${i}`)
      assert.equal(hex(receive.decryptWithAd(new Uint8Array(0), sent)), payload)
    }
    assert.ok(transport >= 3, 'the vector carries transport messages')
  })
}

function handshake(pattern: Pattern, a: KeyPair, b: KeyPair, prologue = text('weft/1')) {
  const initiator = new Handshake({ pattern, initiator: true, prologue, s: a, rs: pattern === 'IK' ? b.publicKey : undefined })
  const responder = new Handshake({ pattern, initiator: false, prologue, s: b })
  return { initiator, responder }
}

function run(initiator: Handshake, responder: Handshake): string[] {
  const got: string[] = []
  for (let i = 0; !initiator.complete; i++) {
    const [from, to] = i % 2 === 0 ? [initiator, responder] : [responder, initiator]
    got.push(new TextDecoder().decode(to.readMessage(from.writeMessage(text(`payload ${i}`)))))
  }
  return got
}

for (const pattern of ['XX', 'IK'] as const) {
  test(`${pattern} round trip with generated keys`, () => {
    const a = generateKeyPair()
    const b = generateKeyPair()
    const { initiator, responder } = handshake(pattern, a, b)
    const got = run(initiator, responder)
    assert.deepEqual(got, pattern === 'XX' ? ['payload 0', 'payload 1', 'payload 2'] : ['payload 0', 'payload 1'])
    assert.ok(initiator.complete && responder.complete)
    assert.deepEqual(initiator.handshakeHash, responder.handshakeHash)
    assert.deepEqual(initiator.remoteStatic, b.publicKey)
    assert.deepEqual(responder.remoteStatic, a.publicKey)
    const ini = initiator.split()
    const res = responder.split()
    const ad = text('header')
    assert.deepEqual(res.receive.decryptWithAd(ad, ini.send.encryptWithAd(ad, text('hello'))), text('hello'))
    assert.deepEqual(ini.receive.decryptWithAd(ad, res.send.encryptWithAd(ad, text('back'))), text('back'))
    // Explicit nonces: out of order is fine.
    const c7 = ini.send.encrypt(7, ad, text('seven'))
    const c3 = ini.send.encrypt(3, ad, text('three'))
    assert.deepEqual(res.receive.decrypt(3, ad, c3), text('three'))
    assert.deepEqual(res.receive.decrypt(7, ad, c7), text('seven'))
    assert.throws(() => initiator.split(), code('ERR_HANDSHAKE'), 'a second split would reuse nonces')
    assert.throws(() => initiator.writeMessage(text('more')), code('ERR_HANDSHAKE'))
    assert.throws(() => responder.readMessage(new Uint8Array(64)), code('ERR_HANDSHAKE'))
  })

  test(`${pattern}: a tampered handshake message throws ERR_HANDSHAKE and changes nothing`, () => {
    const { initiator, responder } = handshake(pattern, generateKeyPair(), generateKeyPair())
    const first = initiator.writeMessage(text('hi'))
    const second = pattern === 'XX' ? responder.readMessage(first) && responder.writeMessage(text('there')) : null
    const [message, reader] = second ? [second, initiator] : [first, responder]
    const before = reader.handshakeHash
    for (const at of [0, 33, message.length - 1]) {
      const bad = Uint8Array.from(message)
      bad[at] ^= 1
      assert.throws(() => reader.readMessage(bad), code('ERR_HANDSHAKE'), `bit flipped at ${at}`)
      assert.deepEqual(reader.handshakeHash, before)
    }
    assert.throws(() => reader.readMessage(message.subarray(0, 20)), code('ERR_HANDSHAKE'), 'short')
    assert.throws(() => reader.readMessage(message.subarray(0, message.length - 1)), code('ERR_HANDSHAKE'), 'one byte short')
    // The genuine message still goes through: a forged datagram does not kill the handshake.
    assert.deepEqual(reader.readMessage(message), text(second ? 'there' : 'hi'))
  })
}

test('IK: an initiator with the wrong responder key fails at the responder', () => {
  const responderKey = generateKeyPair()
  const initiator = new Handshake({ pattern: 'IK', initiator: true, s: generateKeyPair(), rs: generateKeyPair().publicKey })
  const responder = new Handshake({ pattern: 'IK', initiator: false, s: responderKey })
  assert.throws(() => responder.readMessage(initiator.writeMessage(text('hi'))), code('ERR_HANDSHAKE'))
  assert.equal(responder.remoteStatic, null)
})

test('a different prologue on each side fails the handshake', () => {
  const a = generateKeyPair()
  const initiator = new Handshake({ pattern: 'XX', initiator: true, prologue: text('one'), s: a })
  const responder = new Handshake({ pattern: 'XX', initiator: false, prologue: text('two'), s: generateKeyPair() })
  responder.readMessage(initiator.writeMessage(new Uint8Array(0))) // message 1 has no encryption yet
  assert.throws(() => initiator.readMessage(responder.writeMessage(new Uint8Array(0))), code('ERR_HANDSHAKE'))
})

test('an all-zero (low-order) ephemeral key from the peer is refused', () => {
  const b = generateKeyPair()
  const initiator = new Handshake({ pattern: 'IK', initiator: true, s: generateKeyPair(), rs: b.publicKey })
  const message = initiator.writeMessage(text('hi'))
  message.fill(0, 0, 32)
  const responder = new Handshake({ pattern: 'IK', initiator: false, s: b })
  assert.throws(() => responder.readMessage(message), code('ERR_HANDSHAKE'))
  // XX: the initiator refuses a zero ephemeral in message 2 (the ee DH).
  const xi = new Handshake({ pattern: 'XX', initiator: true, s: generateKeyPair() })
  const xr = new Handshake({ pattern: 'XX', initiator: false, s: generateKeyPair() })
  xr.readMessage(xi.writeMessage(new Uint8Array(0)))
  const m2 = xr.writeMessage(new Uint8Array(0))
  m2.fill(0, 0, 32)
  assert.throws(() => xi.readMessage(m2), code('ERR_HANDSHAKE'))
})

test('messages out of turn throw ERR_HANDSHAKE', () => {
  const { initiator, responder } = handshake('XX', generateKeyPair(), generateKeyPair())
  assert.throws(() => responder.writeMessage(text('me first')), code('ERR_HANDSHAKE'))
  assert.throws(() => initiator.readMessage(new Uint8Array(32)), code('ERR_HANDSHAKE'))
  assert.throws(() => initiator.split(), code('ERR_HANDSHAKE'), 'split before completion')
  const m1 = initiator.writeMessage(new Uint8Array(0))
  assert.throws(() => initiator.writeMessage(new Uint8Array(0)), code('ERR_HANDSHAKE'))
  responder.readMessage(m1)
  assert.throws(() => responder.readMessage(m1), code('ERR_HANDSHAKE'), 'a replay is out of turn')
})

test('bad arguments throw ERR_BAD_ARGUMENT', () => {
  const s = generateKeyPair()
  const bad = code('ERR_BAD_ARGUMENT')
  assert.throws(() => new Handshake({ pattern: 'IK', initiator: true, s }), bad, 'IK initiator without rs')
  assert.throws(() => new Handshake({ pattern: 'IK', initiator: true, s, rs: new Uint8Array(31) }), bad)
  assert.throws(() => new Handshake({ pattern: 'XX', initiator: true, s, rs: s.publicKey }), bad, 'rs where it is not used')
  assert.throws(() => new Handshake({ pattern: 'NN' as Pattern, initiator: true, s }), bad)
  assert.throws(() => new Handshake({ pattern: 'XX', initiator: true, s: { publicKey: s.publicKey, privateKey: new Uint8Array(16) } }), bad)
  assert.throws(() => new Handshake({ pattern: 'XX', initiator: true, s: { publicKey: generateKeyPair().publicKey, privateKey: s.privateKey } }), bad, 'mismatched pair')
  assert.throws(() => keyPairFromPrivate(new Uint8Array(33)), bad)
  assert.throws(() => new CipherState(new Uint8Array(16)), bad)
  const c = new CipherState(new Uint8Array(32))
  for (const n of [-1, 1.5, Number.MAX_SAFE_INTEGER + 1, NaN]) assert.throws(() => c.encrypt(n, new Uint8Array(0), new Uint8Array(0)), bad)
})

test('keys: generated pairs and pairs from a private key agree', () => {
  const pair = generateKeyPair()
  assert.equal(pair.publicKey.length, 32)
  assert.equal(pair.privateKey.length, 32)
  assert.deepEqual(keyPairFromPrivate(pair.privateKey), pair)
  assert.notDeepEqual(generateKeyPair().publicKey, pair.publicKey)
  // RFC 7748 section 6.1: Alice's key pair.
  const alice = keyPairFromPrivate(unhex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a'))
  assert.equal(hex(alice.publicKey), '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a')
})

test('CipherState: explicit nonces authenticate the nonce, the data and every bit', () => {
  const key = unhex('00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff')
  const send = new CipherState(key)
  const receive = new CipherState(key)
  const ad = text('ad')
  const sealed = send.encrypt(2 ** 40 + 5, ad, text('datagram'))
  assert.equal(sealed.length, 8 + TAG_BYTES)
  assert.deepEqual(receive.decrypt(2 ** 40 + 5, ad, sealed), text('datagram'))
  assert.equal(receive.decrypt(5, ad, sealed), null, 'wrong nonce (high bits)')
  assert.equal(receive.decrypt(2 ** 40 + 4, ad, sealed), null, 'wrong nonce')
  assert.equal(receive.decrypt(2 ** 40 + 5, text('AD'), sealed), null, 'wrong ad')
  for (let bit = 0; bit < sealed.length * 8; bit += 13) {
    const bad = Uint8Array.from(sealed)
    bad[bit >> 3] ^= 1 << (bit & 7)
    assert.equal(receive.decrypt(2 ** 40 + 5, ad, bad), null, `bit ${bit}`)
  }
  assert.equal(receive.decrypt(0, ad, sealed.subarray(0, TAG_BYTES - 1)), null, 'shorter than a tag')
  // Implicit and explicit nonces meet: encryptWithAd uses n = 0, 1, 2...
  assert.deepEqual(send.encryptWithAd(ad, text('x')), receive.encrypt(0, ad, text('x')))
  assert.equal(send.nonce, 1)
})

test('CipherState: decryptWithAd throws ERR_DECRYPT and keeps its counter on failure', () => {
  const key = new Uint8Array(32).fill(7)
  const send = new CipherState(key)
  const receive = new CipherState(key)
  const good = send.encryptWithAd(new Uint8Array(0), text('one'))
  const bad = Uint8Array.from(good)
  bad[0] ^= 0x80
  assert.throws(() => receive.decryptWithAd(new Uint8Array(0), bad), code('ERR_DECRYPT'))
  assert.equal(receive.nonce, 0)
  assert.deepEqual(receive.decryptWithAd(new Uint8Array(0), good), text('one'))
  assert.equal(receive.nonce, 1)
})

test('CipherState: rekey changes the key the same way on both sides', () => {
  const key = generateKeyPair().privateKey // any 32 bytes
  const a = new CipherState(key)
  const b = new CipherState(key)
  const ad = new Uint8Array(0)
  const before = a.encrypt(1, ad, text('same'))
  a.rekey()
  const after = a.encrypt(1, ad, text('same'))
  assert.notDeepEqual(after, before)
  assert.equal(b.decrypt(1, ad, after), null, 'the other side has not rekeyed yet')
  b.rekey()
  assert.deepEqual(b.decrypt(1, ad, after), text('same'))
  assert.equal(b.decrypt(1, ad, before), null, 'the old key is gone')
  // Rekey leaves the implicit counter alone (spec section 4.2).
  a.encryptWithAd(ad, text('n0'))
  a.rekey()
  b.rekey()
  assert.equal(a.nonce, 1)
  assert.deepEqual(b.decrypt(1, ad, a.encryptWithAd(ad, text('n1'))), text('n1'))
})
