// Weft RPC round trips per second: two real Weft nodes on 127.0.0.1 (node:dgram underneath),
// the client pinging the server, measured with the same harness, duration and windows as the
// bare node:dgram ping-pong (dgram-pingpong.ts). Both nodes live in one process, so like the
// bare ping-pong the whole exchange (client, server, both codecs) runs on one JS thread.
// Run encrypted (the default: both nodes seal every datagram in a Noise session) and, with
// `encrypt: false`, in plaintext, to show what the sessions cost per round trip.
import { Node } from '../../src/node/node.js'
import { measureRoundTrips, type RoundTripFigures } from './dgram-pingpong.js'

export async function benchWeftRpc(durationMs: number, window: number, options: { encrypt?: boolean } = {}): Promise<RoundTripFigures> {
  // Generous limits so the server's per-source rate limit and the client's in-flight window
  // never throttle the measurement: what is left is the cost of the RPC layer itself.
  const encrypt = options.encrypt ?? true
  const server = new Node({ host: '127.0.0.1', port: 0, encrypt, rpc: { ratePerSecond: 1e9, rateBurst: 1e9 } })
  const client = new Node({ host: '127.0.0.1', port: 0, encrypt, rpc: { maxInFlight: 1024 } })
  await server.start()
  await client.start()
  try {
    const to = server.address
    // One warm-up ping: the client learns the server's round-trip token, as it would in a
    // real network (later pings carry it and are not padded); encrypted, it also completes the
    // handshake, so the timed pings measure an established session.
    await client.ping(to)
    return await measureRoundTrips(durationMs, window, async () => {
      await client.ping(to)
    })
  } finally {
    await Promise.all([client.stop(), server.stop()])
  }
}
