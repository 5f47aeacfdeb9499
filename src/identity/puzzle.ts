// S/Kademlia's static crypto puzzle (Baumgart & Mizrak 2007): an id is valid when
// SHA-256(SHA-256(id)) starts with `bits` zero bits. The id is the Ed25519 public key, so a valid
// id costs about 2^bits key generations to make and one double hash to check: cheap for a node
// that makes one identity, costly for an attacker who wants thousands of ids near a victim.
import { hash } from 'node:crypto'
import { WeftError } from '../errors.js'
import { generateIdentity, type Identity } from './keys.js'

/** The most bits a network may ask: 2^24 key generations take about half an hour on one core. */
export const MAX_PUZZLE_BITS = 24
/** Tries before solvePuzzle gives up: 2^(bits + 6) fails with probability e^-64. */
const GIVE_UP_FACTOR = 64
/** How often solvePuzzle reports progress, in tries. */
const PROGRESS_EVERY = 4096

/** Throws ERR_BAD_ARGUMENT unless bits is an integer in 0..MAX_PUZZLE_BITS. */
export function validatePuzzleBits(bits: number, what = 'puzzleBits'): number {
  if (!Number.isInteger(bits) || bits < 0 || bits > MAX_PUZZLE_BITS) {
    throw new WeftError('ERR_BAD_ARGUMENT', `${what} must be an integer between 0 and ${MAX_PUZZLE_BITS}, got ${bits}`)
  }
  return bits
}

/** Leading zero bits of SHA-256(SHA-256(id)). */
export function puzzleZeroBits(id: Uint8Array): number {
  const h = hash('sha256', hash('sha256', id, 'buffer'), 'buffer')
  let n = 0
  for (let i = 0; i < h.length; i++) {
    if (h[i] !== 0) return n + Math.clz32(h[i]) - 24
    n += 8
  }
  return n
}

/** True when id solves the puzzle of this difficulty (always, for 0 bits). */
export function checkPuzzle(id: Uint8Array, bits: number): boolean {
  return bits <= 0 || puzzleZeroBits(id) >= bits
}

export interface SolveOptions {
  /** Called every few thousand tries (for difficulties that take seconds or more). */
  onProgress?: (tries: number) => void
  /** Makes a candidate identity (default: a fresh Ed25519 key pair). */
  generate?: () => Identity
}

export interface Solution {
  identity: Identity
  /** Key pairs generated, the valid one included (about 2^bits on average). */
  tries: number
}

/** Generates identities until one solves the puzzle; ERR_TIMEOUT past 2^(bits + 6) tries. */
export function solvePuzzle(bits: number, options: SolveOptions = {}): Solution {
  validatePuzzleBits(bits)
  const generate = options.generate ?? generateIdentity
  const limit = 2 ** bits * GIVE_UP_FACTOR
  for (let tries = 1; tries <= limit; tries++) {
    const identity = generate()
    if (checkPuzzle(identity.id, bits)) return { identity, tries }
    if (tries % PROGRESS_EVERY === 0) options.onProgress?.(tries)
  }
  throw new WeftError('ERR_TIMEOUT', `no identity solved the ${bits}-bit puzzle in ${limit} tries`)
}
