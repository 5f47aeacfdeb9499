// Round trips per second on one core: a bare node:dgram echo as the ceiling for any
// UDP RPC, plus a generic harness so Weft's RPC ping can be measured the same way.
import dgram from 'node:dgram'

export interface RoundTripFigures {
  roundTripsPerSec: number
  roundTrips: number
  /** Requests that failed or timed out (not counted as round trips). */
  failed: number
  elapsedMs: number
}

/**
 * Keeps `window` calls of `sendOne` in flight for `durationMs` and counts completions.
 * Bounded: stops issuing at the deadline and waits at most `graceMs` for stragglers
 * (which are then ignored), so a lost datagram cannot hang the run. `sendOne` should
 * reject on its own timeout.
 */
export async function measureRoundTrips(
  durationMs: number,
  window: number,
  sendOne: () => Promise<void>,
  graceMs = 2_000
): Promise<RoundTripFigures> {
  let roundTrips = 0
  let failed = 0
  const start = performance.now()
  const deadline = start + durationMs
  let end = deadline

  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      try {
        await sendOne()
        if (performance.now() <= deadline) roundTrips++
      } catch {
        failed++
      }
    }
  }
  const workers = Promise.all(Array.from({ length: Math.max(1, window) }, worker)).then(() => {
    end = Math.min(performance.now(), deadline)
  })
  let timer: NodeJS.Timeout | undefined
  await Promise.race([workers, new Promise<void>((resolve) => (timer = setTimeout(resolve, durationMs + graceMs)))])
  clearTimeout(timer)

  const elapsedMs = end - start
  return { roundTripsPerSec: roundTrips / (elapsedMs / 1000), roundTrips, failed, elapsedMs }
}

/** Bare node:dgram ping-pong on 127.0.0.1: one socket echoes, the other measures. */
export async function benchDgramPingPong(durationMs: number, window: number): Promise<RoundTripFigures> {
  const server = dgram.createSocket('udp4')
  const client = dgram.createSocket('udp4')
  server.on('message', (msg, rinfo) => server.send(msg, rinfo.port, rinfo.address))
  await Promise.all([bind(server), bind(client)])
  const serverPort = server.address().port

  // Pending requests keyed by a counter carried in the first 4 bytes of a 40-byte payload.
  const pending = new Map<number, { resolve: () => void; timer: NodeJS.Timeout }>()
  client.on('message', (msg) => {
    if (msg.length < 4) return
    const p = pending.get(msg.readUInt32BE(0))
    if (!p) return
    pending.delete(msg.readUInt32BE(0))
    clearTimeout(p.timer)
    p.resolve()
  })

  let seq = 0
  const sendOne = () =>
    new Promise<void>((resolve, reject) => {
      const id = seq++ >>> 0
      const buf = Buffer.alloc(40)
      buf.writeUInt32BE(id, 0)
      const timer = setTimeout(() => {
        pending.delete(id)
        reject(new Error('ping timeout'))
      }, 1_000)
      pending.set(id, { resolve, timer })
      client.send(buf, serverPort, '127.0.0.1')
    })

  try {
    return await measureRoundTrips(durationMs, window, sendOne)
  } finally {
    for (const p of pending.values()) clearTimeout(p.timer)
    await Promise.all([close(client), close(server)])
  }
}

function bind(s: dgram.Socket): Promise<void> {
  return new Promise((resolve) => s.bind(0, '127.0.0.1', resolve))
}

function close(s: dgram.Socket): Promise<void> {
  return new Promise((resolve) => s.close(() => resolve()))
}
