// Runs ONE round-trip measurement in its own process and prints one JSON line on stdout.
//   node dist/bench/peers/run-rtt.js <dgram|weft|weft-plaintext> <durationMs> <window>
import { runChild, usage } from '../lib/child.js'
import { benchDgramPingPong, type RoundTripFigures } from './dgram-pingpong.js'
import { benchWeftRpc } from './weft-rpc.js'

export const RTT_IMPLS: Record<string, (durationMs: number, window: number) => Promise<RoundTripFigures>> = {
  dgram: benchDgramPingPong,
  weft: (ms, w) => benchWeftRpc(ms, w, { encrypt: true }),
  'weft-plaintext': (ms, w) => benchWeftRpc(ms, w, { encrypt: false })
}

const WATCHDOG_MS = 2 * 60_000

async function main(argv: string[]): Promise<object> {
  const [impl, durationArg, windowArg] = argv
  const bench = impl === undefined ? undefined : RTT_IMPLS[impl]
  const durationMs = Number(durationArg)
  const window = Number(windowArg)
  if (!bench || !(durationMs > 0) || !Number.isInteger(window) || window < 1) {
    usage(`run-rtt <${Object.keys(RTT_IMPLS).join('|')}> <durationMs> <window>=1>`)
  }

  return { impl, window, durationMs, ...(await bench(durationMs, window)) }
}

runChild('run-rtt', import.meta.url, WATCHDOG_MS, main)
