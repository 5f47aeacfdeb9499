// One error class for the whole stack: a stable `code` for programs, a message for people.

export type ErrorCode =
  | 'ERR_BAD_MESSAGE' // bytes from the network that do not decode
  | 'ERR_TRUNCATED'
  | 'ERR_TOO_LARGE'
  | 'ERR_VERSION' // a wire version this node does not speak
  | 'ERR_UNKNOWN_TYPE'
  | 'ERR_BAD_ID' // a node id that is not 64 hex digits
  | 'ERR_BAD_ADDRESS'
  | 'ERR_BAD_ARGUMENT'
  | 'ERR_KEY_FILE' // a key file that is missing, unreadable or corrupt
  | 'ERR_BAD_SIGNATURE'
  | 'ERR_PORT_IN_USE'
  | 'ERR_BIND'
  | 'ERR_TIMEOUT'
  | 'ERR_BUSY' // a bounded queue is full
  | 'ERR_RATE_LIMITED'
  | 'ERR_BOOTSTRAP_FAILED'
  | 'ERR_NOT_FOUND'
  | 'ERR_NOT_RUNNING'
  | 'ERR_ABORTED'
  | 'ERR_CLOSED'
  | 'ERR_API'
  | 'ERR_UNAUTHORIZED' // an API request without the right bearer token
  | 'ERR_UNKNOWN_ROUTE' // an API path or method that does not exist
  | 'ERR_BAD_TOKEN' // a write without a valid round-trip token from this node
  | 'ERR_VALUE_TOO_LARGE' // a DHT value over the configured maximum
  | 'ERR_HASH_MISMATCH' // a record whose content does not hash to its key
  | 'ERR_STALE_SEQ' // a mutable record not newer than the one held
  | 'ERR_CAS_MISMATCH' // compare-and-swap: the held seq is not the expected one
  | 'ERR_STORE_FULL' // a node's record or byte bound is reached
  | 'ERR_EXPIRED' // a record past its expiry (or with an expiry too far ahead)
  | 'ERR_STORE_CORRUPT' // the on-disk store cannot be opened or read
  | 'ERR_HANDSHAKE' // a session handshake message that fails its checks
  | 'ERR_DECRYPT' // a sealed message that does not authenticate
  | 'ERR_BAD_KEY' // bytes that are not a usable public key
  | 'ERR_BAD_BENCODE' // bytes that are not canonical bencode (Mainline KRPC)
  | 'ERR_UNSUPPORTED' // a feature this node does not have (yet)
  | 'ERR_FORBIDDEN' // a pub-sub publisher the topic's owner has not authorized

export class WeftError extends Error {
  readonly code: ErrorCode
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'WeftError'
    this.code = code
  }
  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message }
  }
}

export function isWeftError(err: unknown, code?: ErrorCode): err is WeftError {
  return err instanceof WeftError && (code === undefined || err.code === code)
}
