// Identity: keys and key files, node ids and their XOR arithmetic, signed peer records.
// Deterministic: fast-check runs from WEFT_SEED (default 42); a failure names the seed to replay.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPairSync, sign } from 'node:crypto'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { check, SEED } from './helpers/property.js'
import { WeftError, type ErrorCode } from '../src/errors.js'
import {
  generateIdentity, identityFromSeed, KEY_FILE_NAME, loadIdentity, loadOrCreateIdentity, saveIdentity, signBytes, verifyBytes,
} from '../src/identity/keys.js'
import {
  commonPrefixLength, compareDistance, ID_BITS, idEquals, idFromHex, idFromPublicKey, idToHex, randomIdWithPrefix,
} from '../src/identity/node-id.js'
import {
  decodePeerRecord, encodePeerRecord, MAX_RECORD_ADDRESSES, signPeerRecord, verifyPeerRecord,
} from '../src/identity/peer-record.js'
import { SeededRandom } from '../src/runtime/prng.js'

const isCode = (code: ErrorCode) => (e: unknown) => e instanceof WeftError && e.code === code
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')
const id = fc.uint8Array({ minLength: 32, maxLength: 32 })
const big = (b: Uint8Array) => BigInt(`0x${hex(b) || '0'}`)
const sign3 = (n: number | bigint) => (n > 0 ? 1 : n < 0 ? -1 : 0)

function naivePrefix(a: Uint8Array, b: Uint8Array): number {
  let n = 0
  for (let bit = 0; bit < ID_BITS; bit++) {
    const mask = 0x80 >> (bit & 7)
    if ((a[bit >> 3] & mask) !== (b[bit >> 3] & mask)) break
    n++
  }
  return n
}

function withTempDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'weft-identity-'))
  try { fn(dir) } finally { rmSync(dir, { recursive: true, force: true }) }
}

// ---- keys and ids ---------------------------------------------------------------------------

test('the node id is the raw Ed25519 public key (RFC 8032 test vector 1)', () => {
  const seed = Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex')
  const me = identityFromSeed(seed)
  assert.equal(hex(me.publicKey), 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a')
  assert.equal(hex(me.id), hex(me.publicKey))
  assert.deepEqual(idFromPublicKey(me.publicKey), me.id)
  const sig = signBytes(me, new Uint8Array(0))
  assert.equal(hex(sig), 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b')
  assert.ok(verifyBytes(me.publicKey, new Uint8Array(0), sig))
  assert.equal(verifyBytes(me.publicKey, Uint8Array.of(1), sig), false)
  assert.equal(verifyBytes(me.publicKey.subarray(1), new Uint8Array(0), sig), false)
  assert.equal(verifyBytes(me.publicKey, new Uint8Array(0), sig.subarray(1)), false)
  const fresh = generateIdentity()
  assert.equal(hex(fresh.id), hex(fresh.publicKey))
  assert.notEqual(fresh.id, fresh.publicKey, 'a copy, not the same bytes')
  assert.throws(() => idFromPublicKey(new Uint8Array(31)), (e: { code?: string }) => e.code === 'ERR_BAD_KEY')
})

test('identityFromSeed is deterministic, and refuses a seed that is not 32 bytes', () => {
  const rnd = new SeededRandom(`identity:${SEED}`)
  for (let i = 0; i < 20; i++) {
    const seed = rnd.bytes(32)
    const a = identityFromSeed(seed)
    const b = identityFromSeed(Uint8Array.from(seed))
    assert.deepEqual(a.id, b.id)
    assert.deepEqual(a.publicKey, b.publicKey)
    assert.deepEqual(signBytes(a, seed), signBytes(b, seed)) // Ed25519 signatures are deterministic too
    seed[0] ^= 1
    assert.notDeepEqual(identityFromSeed(seed).id, a.id)
  }
  for (const n of [0, 31, 33, 64]) assert.throws(() => identityFromSeed(new Uint8Array(n)), isCode('ERR_BAD_ARGUMENT'))
})

test(`idToHex and idFromHex round-trip; bad input is ERR_BAD_ID (seed ${SEED})`, () => {
  check('hex round trip', id, (a) => {
    const text = idToHex(a)
    assert.match(text, /^[0-9a-f]{64}$/)
    assert.deepEqual(idFromHex(text), a)
    assert.deepEqual(idFromHex(text.toUpperCase()), a)
    const view = new Uint8Array(40); view.set(a, 5) // a view into a larger buffer
    assert.equal(idToHex(view.subarray(5, 37)), text)
  })
  const bad: unknown[] = [
    '', 'ab', '0'.repeat(63), '0'.repeat(65), 'g'.repeat(64), `0x${'0'.repeat(62)}`, ` ${'0'.repeat(63)}`, `${'0'.repeat(64)}\n`,
    '0'.repeat(128), 123, null, undefined, {}, new Uint8Array(32),
  ]
  for (const b of bad) assert.throws(() => idFromHex(b as string), isCode('ERR_BAD_ID'), JSON.stringify(String(b)))
  check('hex fuzz', fc.string({ unit: 'binary-ascii', maxLength: 70 }), (s) => {
    if (/^[0-9a-fA-F]{64}$/.test(s)) assert.equal(idFromHex(s).length, 32)
    else assert.throws(() => idFromHex(s), isCode('ERR_BAD_ID'))
  })
})

test(`compareDistance is the XOR metric (seed ${SEED})`, () => {
  check('xor metric', fc.tuple(id, id, id), ([t, a, b]) => {
    assert.equal(compareDistance(t, a, a), 0) // d(a, a) = d(a, a)
    assert.equal(compareDistance(a, a, b) <= 0, true) // d(a, a) = 0 is the least distance
    assert.equal(compareDistance(a, a, b) === 0, idEquals(a, b)) // and only a is at distance 0
    assert.equal(sign3(compareDistance(t, a, b)), -sign3(compareDistance(t, b, a))) // antisymmetric
    assert.equal(sign3(compareDistance(t, a, b)), sign3((big(a) ^ big(t)) - (big(b) ^ big(t)))) // the naive answer
    const buf = new Uint8Array(96); buf.set(a, 7); buf.set(b, 50)
    assert.equal(compareDistance(t, buf, buf, 7, 50), compareDistance(t, a, b)) // offsets into a packed table
  }, 1000)
  check('xor metric transitivity', fc.tuple(id, id, id, id), ([t, a, b, c]) => {
    const sorted = [a, b, c].sort((x, y) => compareDistance(t, x, y))
    for (let i = 1; i < 3; i++) assert.ok((big(sorted[i - 1]) ^ big(t)) <= (big(sorted[i]) ^ big(t)))
  }, 500)
})

test(`commonPrefixLength counts the leading equal bits (seed ${SEED})`, () => {
  // Ids that share long prefixes, so every prefix length is reached.
  const related = fc.tuple(id, fc.integer({ min: 0, max: ID_BITS }), id).map(([a, p, r]) => {
    const b = Uint8Array.from(a)
    for (let bit = p; bit < ID_BITS; bit++) if (r[bit >> 3] & (0x80 >> (bit & 7))) b[bit >> 3] ^= 0x80 >> (bit & 7)
    return [a, b] as const
  })
  check('prefix length', fc.tuple(fc.oneof(fc.tuple(id, id), related), id), ([[a, b], c]) => {
    const n = commonPrefixLength(a, b)
    assert.equal(n, naivePrefix(a, b))
    assert.equal(commonPrefixLength(b, a), n)
    assert.equal(n === ID_BITS, idEquals(a, b))
    assert.ok(n >= Math.min(commonPrefixLength(a, c), commonPrefixLength(b, c))) // ultrametric
    const buf = new Uint8Array(64); buf.set(b, 13)
    assert.equal(commonPrefixLength(a, buf, 13), n)
  }, 1000)
  assert.equal(commonPrefixLength(new Uint8Array(32), new Uint8Array(32)), ID_BITS)
})

test(`randomIdWithPrefix shares exactly p leading bits with the base, for every p in 0..255 (seed ${SEED})`, () => {
  const rnd = new SeededRandom(`prefix:${SEED}`)
  for (let round = 0; round < 8; round++) {
    const base = rnd.bytes(32)
    for (let p = 0; p < ID_BITS; p++) {
      const random = rnd.bytes(32)
      const out = randomIdWithPrefix(base, p, random)
      assert.equal(out.length, 32)
      assert.equal(commonPrefixLength(base, out), p, `p=${p} base=${hex(base)} random=${hex(random)} (seed ${SEED})`)
      // The bits after the first differing one are the random ones.
      for (let bit = p + 1; bit < ID_BITS; bit++) {
        const mask = 0x80 >> (bit & 7)
        assert.equal(out[bit >> 3] & mask, random[bit >> 3] & mask, `p=${p} bit=${bit}`)
      }
    }
    assert.deepEqual(randomIdWithPrefix(base, ID_BITS, rnd.bytes(32)), base)
  }
  check('prefix with all-ones and all-zeros random', fc.tuple(id, fc.integer({ min: 0, max: 255 }), fc.constantFrom(0, 0xff)), ([base, p, fill]) => {
    assert.equal(commonPrefixLength(base, randomIdWithPrefix(base, p, new Uint8Array(32).fill(fill))), p)
  })
})

// ---- key files --------------------------------------------------------------------------------

test('loadOrCreateIdentity makes a 0600 key file in a new 0700 directory, and reuses it', () => {
  withTempDir((dir) => {
    const data = join(dir, 'nested', 'data')
    const first = loadOrCreateIdentity(data)
    const file = join(data, KEY_FILE_NAME)
    assert.equal(statSync(file).mode & 0o777, 0o600)
    assert.equal(statSync(data).mode & 0o777, 0o700)
    assert.match(readFileSync(file, 'utf8'), /^-----BEGIN PRIVATE KEY-----\n/)
    const second = loadOrCreateIdentity(data)
    assert.deepEqual(second.id, first.id)
    assert.deepEqual(loadIdentity(file).publicKey, first.publicKey)
    // Saving over a file with loose permissions tightens them.
    const other = join(dir, 'other.pem')
    writeFileSync(other, 'x', { mode: 0o644 })
    chmodSync(other, 0o644)
    saveIdentity(other, first)
    assert.equal(statSync(other).mode & 0o777, 0o600)
    assert.deepEqual(loadIdentity(other).id, first.id)
  })
})

test('loadIdentity refuses a missing, garbage, non-Ed25519 or encrypted key file with ERR_KEY_FILE', () => {
  withTempDir((dir) => {
    const write = (name: string, text: string) => { const p = join(dir, name); writeFileSync(p, text, { mode: 0o600 }); return p }
    const pem = (k: ReturnType<typeof generateKeyPairSync>['privateKey']) => k.export({ type: 'pkcs8', format: 'pem' }) as string
    const cases: Record<string, string> = {
      missing: join(dir, 'nope.pem'),
      directory: (mkdirSync(join(dir, 'sub')), join(dir, 'sub')),
      empty: write('empty.pem', ''),
      garbage: write('garbage.pem', 'this is not a key\n\u0000\u00ff'),
      truncated: write('truncated.pem', pem(generateIdentity().privateKey).slice(0, 60)),
      rsa: write('rsa.pem', pem(generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey)),
      x25519: write('x25519.pem', pem(generateKeyPairSync('x25519').privateKey)),
      publicOnly: write('public.pem', generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }) as string),
      encrypted: write('encrypted.pem', generateIdentity().privateKey.export({
        type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'secret',
      }) as string),
    }
    for (const [what, path] of Object.entries(cases)) {
      assert.throws(() => loadIdentity(path), isCode('ERR_KEY_FILE'), what)
    }
    // A data directory whose key file is garbage is an error, never silently replaced.
    mkdirSync(join(dir, 'data'))
    writeFileSync(join(dir, 'data', KEY_FILE_NAME), 'garbage')
    assert.throws(() => loadOrCreateIdentity(join(dir, 'data')), isCode('ERR_KEY_FILE'))
    // A data directory that cannot be created.
    write('a-file', 'x')
    assert.throws(() => loadOrCreateIdentity(join(dir, 'a-file', 'data')), isCode('ERR_KEY_FILE'))
  })
})

// ---- peer records ----------------------------------------------------------------------------

const port = fc.integer({ min: 0, max: 65535 })
const addr = fc.oneof(
  fc.tuple(fc.uint8Array({ minLength: 4, maxLength: 4 }), port).map(([b, p]) => `${b.join('.')}:${p}`),
  fc.constantFrom('[::1]', '[2001:db8::1]', '[fe80::1:2]', '[::ffff:10.0.0.1]', '[2001:db8:1:2:3:4:5:6]').chain((h) => port.map((p) => `${h}:${p}`)),
)
const recordInput = fc.tuple(
  fc.uint8Array({ minLength: 32, maxLength: 32 }),
  fc.array(addr, { maxLength: MAX_RECORD_ADDRESSES }),
  fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.constant(Number.MAX_SAFE_INTEGER), fc.maxSafeNat()),
)

test(`peer records: sign, encode and decode round-trip (seed ${SEED})`, () => {
  check('peer record round trip', recordInput, ([seed, addresses, seq]) => {
    const me = identityFromSeed(seed)
    const r = signPeerRecord(me, addresses, seq)
    assert.ok(verifyPeerRecord(r))
    const bytes = encodePeerRecord(r)
    const size = 1 + 32 + 8 + 1 + addresses.reduce((n, a) => n + (a.startsWith('[') ? 19 : 7), 0) + 64
    assert.equal(bytes.length, size)
    assert.equal(bytes[0], 1)
    assert.equal(hex(bytes.subarray(1, 33)), hex(me.publicKey))
    assert.equal(Buffer.from(bytes).readBigUInt64BE(33), BigInt(seq))
    assert.equal(bytes[41], addresses.length)
    const back = decodePeerRecord(bytes)
    // (encodePeerRecord returns a Buffer, so the decoded fields are Buffers: compare the bytes.)
    assert.equal(hex(back.id), hex(me.id)) // derived from the key, never carried
    assert.equal(hex(back.publicKey), hex(me.publicKey))
    assert.deepEqual(back.addresses, addresses)
    assert.equal(back.seq, seq)
    assert.equal(hex(back.signature), hex(r.signature))
    assert.ok(verifyPeerRecord(back))
  }, 100)
})

test('the record signature covers "weft peer record v1\\0" followed by the body', () => {
  const me = identityFromSeed(new Uint8Array(32).fill(7))
  const r = signPeerRecord(me, ['192.0.2.1:4000', '[2001:db8::1]:4000'], 3)
  const bytes = encodePeerRecord(r)
  const body = bytes.subarray(0, bytes.length - 64)
  const want = sign(null, Buffer.concat([Buffer.from('weft peer record v1\0'), body]), me.privateKey)
  assert.deepEqual(Buffer.from(r.signature), want)
  // The same key signing the bare body (another protocol's message) does not make a record.
  const bare = Buffer.concat([body, signBytes(me, body)])
  assert.throws(() => decodePeerRecord(bare), isCode('ERR_BAD_SIGNATURE'))
  // A record is bound to its key: someone else's signature does not verify.
  const other = identityFromSeed(new Uint8Array(32).fill(8))
  assert.equal(verifyPeerRecord({ ...r, signature: signPeerRecord(other, r.addresses, 3).signature }), false)
  assert.equal(verifyPeerRecord({ ...r, seq: 4 }), false)
  assert.equal(verifyPeerRecord({ ...r, addresses: ['192.0.2.1:4001', '[2001:db8::1]:4000'] }), false)
})

test(`changing any byte of a peer record, truncating or extending it, is a typed error (seed ${SEED})`, () => {
  const codes = new Set<ErrorCode>(['ERR_BAD_SIGNATURE', 'ERR_BAD_MESSAGE', 'ERR_TRUNCATED', 'ERR_VERSION'])
  const expectTyped = (b: Uint8Array, what: string) => {
    try {
      decodePeerRecord(b)
    } catch (err) {
      assert.ok(err instanceof WeftError, `${what}: untyped ${String(err)} (seed ${SEED})`)
      assert.ok(codes.has(err.code), `${what}: ${err.code} (seed ${SEED})`)
      return
    }
    assert.fail(`${what}: a tampered record decoded (seed ${SEED})`)
  }
  check('tampering', fc.tuple(recordInput, fc.integer({ min: 1, max: 255 })), ([[seed, addresses, seq], x]) => {
    const bytes = encodePeerRecord(signPeerRecord(identityFromSeed(seed), addresses, seq))
    for (let i = 0; i < bytes.length; i++) {
      const t = Uint8Array.from(bytes)
      t[i] ^= x
      expectTyped(t, `byte ${i} ^ ${x}`)
    }
    for (let n = 0; n < bytes.length; n++) expectTyped(bytes.subarray(0, n), `first ${n} bytes`)
    expectTyped(Uint8Array.from([...bytes, 0]), 'one byte appended')
  }, 12)
})

test('peer records refuse more than 8 addresses and a bad seq', () => {
  const me = identityFromSeed(new Uint8Array(32).fill(1))
  assert.throws(() => signPeerRecord(me, Array.from({ length: MAX_RECORD_ADDRESSES + 1 }, (_, i) => `10.0.0.${i}:1`), 1), isCode('ERR_TOO_LARGE'))
  for (const seq of [-1, 1.5, Number.MAX_SAFE_INTEGER + 1, NaN]) assert.throws(() => signPeerRecord(me, [], seq), isCode('ERR_BAD_ARGUMENT'))
  const bytes = encodePeerRecord(signPeerRecord(me, [], 1))
  bytes[33] = 0xff // seq above 2^53 - 1
  assert.throws(() => decodePeerRecord(bytes), isCode('ERR_BAD_MESSAGE'))
  bytes[33] = 0; bytes[41] = MAX_RECORD_ADDRESSES + 1
  assert.throws(() => decodePeerRecord(bytes), isCode('ERR_BAD_MESSAGE'))
  bytes[41] = 0; bytes[0] = 2
  assert.throws(() => decodePeerRecord(bytes), isCode('ERR_VERSION'))
})
