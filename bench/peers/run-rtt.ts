// Runs ONE round-trip measurement in its own process and prints one JSON line on stdout.
//   node dist/bench/peers/run-rtt.js <dgram|weft> <durationMs> <window>
import { pathToFileURL } from 'node:url'
import { benchDgramPingPong, type RoundTripFigures } from './dgram-pingpong.js'
import { benchWeftRpc } from './weft-rpc.js'

export const RTT_IMPLS: Record<string, (durationMs: number, window: number) => Promise<RoundTripFigures>> = {
  dgram: benchDgramPingPong,
  weft: benchWeftRpc
}

const WATCHDOG_MS = 2 * 60_000

async function main(argv: string[]): Promise<void> {
  const [impl, durationArg, windowArg] = argv
  const bench = impl === undefined ? undefined : RTT_IMPLS[impl]
  const durationMs = Number(durationArg)
  const window = Number(windowArg)
  if (!bench || !(durationMs > 0) || !Number.isInteger(window) || window < 1) {
    process.stderr.write(`usage: run-rtt <${Object.keys(RTT_IMPLS).join('|')}> <durationMs> <window>=1>\n`)
    process.exit(2)
  }
  const watchdog = setTimeout(() => {
    process.stderr.write(`run-rtt ${impl}: watchdog fired after ${WATCHDOG_MS} ms\n`)
    process.exit(3)
  }, WATCHDOG_MS)
  watchdog.unref()

  const figures = await bench(durationMs, window)
  process.stdout.write(JSON.stringify({ impl, window, durationMs, ...figures }) + '\n')
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`run-rtt failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
      process.exit(1)
    }
  )
}
