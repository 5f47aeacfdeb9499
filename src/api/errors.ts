// How the API answers an error: one JSON body, {"error": {"code", "message"}}, and the HTTP
// status for its code. This table is the only place codes meet HTTP statuses.
import { WeftError, type ErrorCode } from '../errors.js'

const STATUS_BY_CODE: Partial<Record<ErrorCode, number>> = {
  ERR_BAD_ID: 400, ERR_BAD_ADDRESS: 400, ERR_BAD_ARGUMENT: 400, ERR_HASH_MISMATCH: 400, ERR_BAD_SIGNATURE: 400,
  ERR_BAD_MESSAGE: 400, ERR_EXPIRED: 400, ERR_TRUNCATED: 400, ERR_VERSION: 400, ERR_UNKNOWN_TYPE: 400,
  ERR_UNAUTHORIZED: 401,
  ERR_FORBIDDEN: 403,
  ERR_NOT_FOUND: 404, ERR_UNKNOWN_ROUTE: 404,
  ERR_STALE_SEQ: 409, ERR_CAS_MISMATCH: 409,
  ERR_VALUE_TOO_LARGE: 413, ERR_TOO_LARGE: 413,
  ERR_RATE_LIMITED: 429,
  ERR_UNSUPPORTED: 501,
  ERR_NOT_RUNNING: 503, ERR_BUSY: 503, ERR_CLOSED: 503, ERR_BOOTSTRAP_FAILED: 503,
  ERR_TIMEOUT: 504,
  ERR_STORE_FULL: 507,
}

/** The HTTP status for an error code; 500 for codes that mean the node itself failed. */
export function httpStatus(code: ErrorCode): number {
  return STATUS_BY_CODE[code] ?? 500
}

/** Fastify's own errors (bad JSON, body too large, wrong content type) as Weft errors. */
export function toWeftError(err: unknown): WeftError {
  if (err instanceof WeftError) return err
  const e = err as { code?: string; statusCode?: number; message?: string }
  const message = e?.message ?? String(err)
  if (e?.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new WeftError('ERR_TOO_LARGE', message)
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) return new WeftError('ERR_BAD_ARGUMENT', message)
  return new WeftError('ERR_API', message)
}

export interface ErrorBody { error: { code: ErrorCode; message: string } }

export const errorBody = (e: WeftError): ErrorBody => ({ error: e.toJSON() })
