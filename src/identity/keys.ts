// Ed25519 identity keys: generated with node:crypto, stored as PKCS#8 PEM with mode 0600.
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto'
import { chmodSync, mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { WeftError } from '../errors.js'
import { idFromPublicKey, idToHex, type NodeId } from './node-id.js'

export const KEY_FILE_NAME = 'identity.pem'
// DER prefixes that wrap a raw 32-byte Ed25519 seed or public key (RFC 8410).
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

export interface Identity {
  readonly id: NodeId
  readonly publicKey: Uint8Array // raw 32 bytes
  readonly privateKey: KeyObject
}

function identityFromPrivate(privateKey: KeyObject): Identity {
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' })
  const publicKey = new Uint8Array(spki.subarray(spki.length - 32))
  return { id: idFromPublicKey(publicKey), publicKey, privateKey }
}

export function generateIdentity(): Identity {
  return identityFromPrivate(generateKeyPairSync('ed25519').privateKey)
}

/** A deterministic identity from a 32-byte seed: for seeded devnets, tests and the simulator. */
export function identityFromSeed(seed: Uint8Array): Identity {
  if (seed.length !== 32) throw new WeftError('ERR_BAD_ARGUMENT', 'an identity seed must be 32 bytes')
  const der = Buffer.concat([PKCS8_PREFIX, seed])
  return identityFromPrivate(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }))
}

export function loadIdentity(path: string): Identity {
  let pem: string
  try {
    pem = readFileSync(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const why = code === 'ENOENT' ? 'does not exist' : `cannot be read (${code})`
    throw new WeftError('ERR_KEY_FILE', `key file ${path} ${why}`, { cause: err })
  }
  let key: KeyObject
  try {
    key = createPrivateKey({ key: pem, format: 'pem' })
  } catch (err) {
    throw new WeftError('ERR_KEY_FILE', `key file ${path} is corrupt: not a PEM private key`, { cause: err })
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new WeftError('ERR_KEY_FILE', `key file ${path} holds a ${key.asymmetricKeyType} key, not ed25519`)
  }
  return identityFromPrivate(key)
}

export function saveIdentity(path: string, identity: Identity): void {
  const pem = identity.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
  writeFileSync(path, pem, { mode: 0o600 })
  chmodSync(path, 0o600) // writeFileSync keeps the mode of an existing file
}

/** The identity kept in a data directory: reused when present, made on first start. */
export function loadOrCreateIdentity(dataDir: string, generate: () => Identity = generateIdentity): Identity {
  const path = join(dataDir, KEY_FILE_NAME)
  if (existsSync(path)) return loadIdentity(path)
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 })
  } catch (err) {
    throw new WeftError('ERR_KEY_FILE', `cannot create data directory ${dataDir}: ${(err as Error).message}`, { cause: err })
  }
  const identity = generate()
  saveIdentity(path, identity)
  return identity
}

export function signBytes(identity: Identity, data: Uint8Array): Uint8Array {
  return new Uint8Array(sign(null, data, identity.privateKey))
}

// Making a KeyObject costs more than the check itself, and the same keys sign again and again.
const publicKeys = new Map<string, KeyObject>()
const PUBLIC_KEY_CACHE = 1024

function publicKeyObject(publicKey: Uint8Array): KeyObject {
  const hex = idToHex(publicKey) // an id is the key (and .buffer would move a small key out of V8's heap)
  let key = publicKeys.get(hex)
  if (!key) {
    key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' })
    if (publicKeys.size >= PUBLIC_KEY_CACHE) publicKeys.clear() // a cheap bound; refills from use
    publicKeys.set(hex, key)
  }
  return key
}

export function verifyBytes(publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== 32 || signature.length !== 64) return false
  try {
    return verify(null, data, publicKeyObject(publicKey), signature)
  } catch {
    return false
  }
}

/** verifyBytes on libuv's thread pool: the event loop goes on serving while the check runs. */
export function verifyBytesOffThread(publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array): Promise<boolean> {
  if (publicKey.length !== 32 || signature.length !== 64) return Promise.resolve(false)
  return new Promise((resolve) => {
    try {
      verify(null, data, publicKeyObject(publicKey), signature, (err, ok) => resolve(!err && ok))
    } catch {
      resolve(false)
    }
  })
}
