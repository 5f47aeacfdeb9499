// Who may use the API: anyone on this machine when it is bound to loopback and no token is set;
// otherwise only requests that carry the bearer token.
import { createHash, timingSafeEqual } from 'node:crypto'
import { isIP } from 'node:net'
import { WeftError } from '../errors.js'

/** 127.0.0.0/8 and ::1 (also as ::ffff:127.x.y.z) reach only this machine; 0.0.0.0 and :: reach every interface. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase()
  if (h === '::1' || h === 'localhost') return true
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h
  return isIP(v4) === 4 && v4.startsWith('127.')
}

/** A token must be long enough not to be guessed; the check refuses a short or blank one. */
export const MIN_TOKEN_LENGTH = 16

/** Refuses to serve a non-loopback address without a token, and refuses weak tokens. */
export function checkBind(host: string, token: string | undefined): void {
  if (token !== undefined && token.length < MIN_TOKEN_LENGTH) {
    throw new WeftError('ERR_BAD_ARGUMENT', `the API token must be at least ${MIN_TOKEN_LENGTH} characters`)
  }
  if (token === undefined && !isLoopback(host)) {
    throw new WeftError('ERR_BAD_ARGUMENT', `the control API on ${host} would be reachable from other machines: set a token with --api-token or WEFT_API_TOKEN, or bind to 127.0.0.1`)
  }
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest()

/** Compares in constant time (hashing first, so the length of the token does not leak either). */
export function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer (.+)$/.exec(header ?? '')
  return timingSafeEqual(digest(m ? m[1] : ''), digest(token)) && m !== null
}
