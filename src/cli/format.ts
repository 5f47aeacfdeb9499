// Printing for people: tables, short ids, durations; and the one-line error format.
import Table from 'cli-table3'
import { WeftError } from '../errors.js'

export function table(head: string[], rows: (string | number)[][]): string {
  const t = new Table({ head, style: { head: [], border: [], compact: true } })
  for (const r of rows) t.push(r.map(String))
  return t.toString()
}

export const ms = (v: number): string => (Number.isFinite(v) ? `${v.toFixed(v < 10 ? 2 : 1)} ms` : '-')

/** Prints one clear line for an error and exits non-zero. */
export function fail(err: unknown): never {
  if (err instanceof WeftError) console.error(`weft: ${err.message} [${err.code}]`)
  else console.error(`weft: ${(err as Error)?.message ?? String(err)}`)
  process.exit(1)
}
