// The shared shape of a measurement child process (run-one, run-dht, run-rtt): run only when
// executed directly, a watchdog that bounds the run, one JSON line on stdout, and an explicit
// exit (libraries may leave timers and sockets behind after destroy).
import { pathToFileURL } from 'node:url'

export function runChild(name: string, moduleUrl: string, watchdogMs: number, main: (argv: string[]) => Promise<unknown>): void {
  if (!process.argv[1] || moduleUrl !== pathToFileURL(process.argv[1]).href) return // imported, not run
  const watchdog = setTimeout(() => {
    process.stderr.write(`${name} ${process.argv.slice(2).join(' ')}: watchdog fired after ${watchdogMs} ms\n`)
    process.exit(3)
  }, watchdogMs)
  watchdog.unref()
  main(process.argv.slice(2)).then(
    (figures) => {
      process.stdout.write(JSON.stringify(figures) + '\n')
      process.exit(0)
    },
    (err: unknown) => {
      process.stderr.write(`${name} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
      process.exit(1)
    },
  )
}

/** Prints the usage line and exits 2. */
export function usage(line: string): never {
  process.stderr.write(`usage: ${line}\n`)
  process.exit(2)
}
