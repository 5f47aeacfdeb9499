// Structured logs (pino). A library node is silent unless given a logger; `weft node` logs to
// stderr: pretty on a terminal, one JSON object a line otherwise (for log collectors).
import { pino, type Logger, type LevelWithSilent } from 'pino'
import pinoPretty from 'pino-pretty'
import { WeftError } from '../errors.js'

export type { Logger }

export const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

/** A logger that writes nothing: the default for nodes made in code and in tests. */
export const silentLogger: Logger = pino({ level: 'silent' })

export function parseLogLevel(v: string): LevelWithSilent {
  if (!(LOG_LEVELS as string[]).includes(v)) throw new WeftError('ERR_BAD_ARGUMENT', `log level must be one of ${LOG_LEVELS.join(', ')} (got "${v}")`)
  return v as LevelWithSilent
}

export interface LoggerOptions {
  level?: LevelWithSilent
  /** Human-readable lines instead of JSON; default: whether stderr is a terminal. */
  pretty?: boolean
}

/** A logger writing to stderr (fd 2), so standard output stays for a command's results. */
export function createLogger(o: LoggerOptions = {}): Logger {
  const level = o.level ?? 'info'
  const pretty = o.pretty ?? process.stderr.isTTY === true
  if (pretty) return pino({ level }, pinoPretty({ destination: 2, colorize: process.stderr.isTTY === true, ignore: 'pid,hostname' }))
  return pino({ level }, pino.destination({ fd: 2, sync: true }))
}
