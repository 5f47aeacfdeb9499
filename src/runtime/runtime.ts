// The sans-IO seam: everything protocol code may use from the outside world.
// Two implementations: UDP with Node timers (udp.ts) and a seeded virtual world (memory.ts).
import type { Address } from '../wire/address.js'

export type TimerHandle = { readonly __timer: unique symbol } | object

export interface Random {
  /** Uniform 32-bit unsigned integer. */
  u32(): number
  /** Uniform float in [0, 1). */
  float(): number
  bytes(n: number): Uint8Array
}

export interface Runtime {
  /** Milliseconds on a monotonic clock (virtual in the simulator). */
  now(): number
  /** Unix time in ms, for what other nodes must agree on (record expiry). Virtual in the simulator. */
  wallClock(): number
  setTimeout(fn: () => void, ms: number): TimerHandle
  clearTimeout(handle: TimerHandle): void
  readonly random: Random
  /**
   * Checks an Ed25519 signature. The real runtime runs it on the thread pool, so a node keeps
   * serving while it verifies; the simulator answers at once, so runs stay deterministic.
   */
  verifySignature(publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array): Promise<boolean>
}

/** One bound datagram socket (or its simulated stand-in). */
export interface Endpoint {
  readonly address: Address
  send(to: Address, bytes: Uint8Array): void
  /** Sends with this IP time-to-live (a hole punch's opener); endpoints that cannot, send normally. */
  sendWithTtl?(to: Address, bytes: Uint8Array, ttl: number): void
  /** Set by the layer above; called for each datagram that arrives. */
  onPacket: (from: Address, bytes: Uint8Array) => void
  close(): Promise<void>
}

/** Binds endpoints; the real runtime opens UDP sockets, the memory one joins its network. */
export interface Network {
  bind(host: string, port: number): Promise<Endpoint>
}
