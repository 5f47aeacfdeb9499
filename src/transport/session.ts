// Encrypted sessions: every datagram between two peers is sealed with keys from a Noise handshake
// bound to both peers' Ed25519 identities. It wraps any Transport, so the rpc above sees
// plaintext from an authenticated peer and nothing else changes. spec/wire.md section 13.
//
// Packets (the first byte says which; Weft's plaintext packets start with 0x57 and are dropped):
//   INIT  E1 | pattern (0 XX, 1 IK) | sender index (4) | Noise message 1 [| zeros: XX pads to RESP's size]
//   RESP  E2 | sender index (4) | receiver index (4) | abandoned index (4, 0: none) | Noise message 2
//   FINAL E3 | receiver index (4) | Noise message 3                      (XX only)
//   DATA  E4 | receiver index (4) | counter (8) | ciphertext and tag       (the 13 header bytes are AD)
//   CLOSE E5 | as DATA, sealed empty: the sender dropped the session (evicted it), so should we
// Handshake payloads carry the sender's Ed25519 public key, whose X25519 form must be the static
// key the handshake proved (identity/dh-key.ts), and the first queued packet when it fits:
//   IK 1: key | timestamp (8, ms) | packet    IK 2: the answer to that packet, when given at once
//   XX 1: empty    XX 2: key    XX 3: key | packet
// IK needs the responder's key: known from an earlier session, given by addPeerKey (a peer
// record) or hinted by hintPeerKey (a contact's id is its key); otherwise XX. A replayed IK message 1 is refused by its timestamp (the last one per
// peer is kept); XX cannot be replayed, the responder's ephemeral key is new each time.
// A private network (networkKey) runs XXpsk1 / IKpsk1: the key enters at the end of message 1, so
// a responder authenticates the very first message and does not answer one made without the key.
import { scryptSync } from 'node:crypto'
import { WeftError } from '../errors.js'
import { x25519PrivateFromIdentity, x25519PublicFromEd25519 } from '../identity/dh-key.js'
import type { Identity } from '../identity/keys.js'
import { idEquals, idFromPublicKey, type NodeId } from '../identity/node-id.js'
import { PeerTable } from '../rpc/peer-table.js'
import { hostKey, isLoopback, RateLimiter } from '../rpc/rate-limit.js'
import type { Runtime, TimerHandle } from '../runtime/runtime.js'
import type { Address } from '../wire/address.js'
import { Handshake, keyPairFromPrivate, openInPlace, sealPacket, TAG_BYTES, type KeyPair, type Pattern } from './noise.js'
import type { Transport, TransportStats } from './transport.js'

const enum Kind { INIT = 0xe1, RESP = 0xe2, FINAL = 0xe3, DATA = 0xe4, CLOSE = 0xe5 }
const DATA_HEADER = 13
// One header buffer, reused (calls into libsodium are synchronous): made once over its own
// ArrayBuffer, as V8 would otherwise move a small typed array out of its heap at the first native call.
const DATA_SCRATCH = new Uint8Array(new ArrayBuffer(DATA_HEADER))
/** Bytes a sealed DATA packet adds to the plaintext it carries. */
export const SESSION_OVERHEAD = DATA_HEADER + TAG_BYTES
const PROLOGUE = new TextEncoder().encode('weft session v1')
const KEY_BYTES = 32
/** RESP's header: kind, sender index, receiver index, abandoned index. */
const RESP_HEAD = 13
const XX_INIT_BYTES = 160 // message 1 padded to at least RESP's size: no amplification
const MAX_COUNTER = 2 ** 48 // far more than a session ever sends before it is rekeyed
// A retired session's send counter: seal refuses it. Below 2^31, so the field stays a small integer.
const RETIRED = 2 ** 31 - 1
const FINAL_RESEND_MS = 200
/**
 * IK message 1 is sent again when the layer above sends more while it is unanswered (its own
 * retry, most often), at most this often; a responder answers a repeat with its message 2 again.
 * A datagram that met a congested queue then costs what it costs in plaintext, one retry, not
 * the handshake timeout: the retries of what waits behind the handshake are not sent meanwhile.
 */
const REPEAT_MS = 50
/** Where a network key enters the handshake: the end of message 1 (XXpsk1, IKpsk1), the first the responder reads. */
const PSK_POSITION = 1
const NETWORK_KEY_SALT = 'weft network key v1'

/**
 * A network key from what a user gives: 32 bytes as they are; a string is a passphrase, stretched
 * to 32 bytes with scrypt (N = 2^15, r = 8, p = 1; salt "weft network key v1"), about 0.1 s once.
 */
export function networkKeyFrom(value: Uint8Array | string): Uint8Array {
  if (typeof value === 'string') {
    if (value.length === 0) throw new WeftError('ERR_BAD_ARGUMENT', 'a network passphrase must not be empty')
    return new Uint8Array(scryptSync(value.normalize('NFC'), NETWORK_KEY_SALT, KEY_BYTES, { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 }))
  }
  if (!(value instanceof Uint8Array) || value.length !== KEY_BYTES) throw new WeftError('ERR_BAD_ARGUMENT', `a network key is ${KEY_BYTES} bytes (or a passphrase string)`)
  return new Uint8Array(value)
}

export interface SessionOptions {
  /** Largest packet the layer above sends; sealed packets are at most this plus SESSION_OVERHEAD. */
  maxPacket: number
  /** Sessions kept; past it the least recently used one is closed. */
  maxSessions: number
  /** Handshakes this node answers that wait for their last message (XX). */
  maxHalfOpen: number
  /** Packets waiting per peer while its handshake runs. */
  maxQueued: number
  /** Keys remembered per address (for IK) and last IK timestamps per peer. */
  maxKnownKeys: number
  /** A key by address not used (no session opened, no handshake begun with it) for this long is forgotten. */
  knownKeyIdleMs: number
  /** A handshake message unanswered this long is sent again with a new handshake. */
  handshakeTimeoutMs: number
  /** Handshake attempts before the queued packets are dropped (an IK attempt that fails falls back to XX). */
  handshakeAttempts: number
  /** A session is replaced by a new handshake after this long (fresh keys, forward secrecy). */
  rekeyAfterMs: number
  /** A session nobody sent or received on for this long is closed. */
  idleMs: number
  /**
   * A session we keep sending on (no gap this long) with nothing back from the peer for this long
   * gets a new handshake: the peer may have restarted and lost its keys without a CLOSE (a crash).
   */
  unansweredMs: number
  /**
   * A private network's pre-shared key (32 bytes, see networkKeyFrom): handshakes bind it, and a
   * first message made without it gets no answer at all (counted in networkRefused). null: open.
   */
  networkKey: Uint8Array | null
  /** First handshake messages answered per second from one host (every port of an IP, or an IPv6 /64), and the burst. */
  handshakesPerHostPerSecond: number
  handshakeBurstPerHost: number
  /** Hosts whose handshake buckets are kept (least recently seen reused first). */
  maxHandshakeHosts: number
  /** Loopback sources skip the per-host handshake limit (a devnet puts every node on 127.0.0.1). */
  exemptLoopback: boolean
}

export const DEFAULT_SESSION_OPTIONS: SessionOptions = {
  maxPacket: 1400,
  maxSessions: 1024,
  maxHalfOpen: 256,
  maxQueued: 16,
  maxKnownKeys: 4096,
  knownKeyIdleMs: 15 * 60_000,
  handshakeTimeoutMs: 1000,
  handshakeAttempts: 3,
  rekeyAfterMs: 120_000,
  idleMs: 180_000,
  unansweredMs: 10_000,
  networkKey: null,
  handshakesPerHostPerSecond: 200,
  handshakeBurstPerHost: 400,
  maxHandshakeHosts: 1024,
  exemptLoopback: true,
}

export interface SessionStats {
  handshakesStarted: number
  handshakesAnswered: number
  sessionsOpened: number
  /** Handshake messages that failed: bad crypto, a key that does not match its id, out of turn. */
  handshakeFailures: number
  handshakeTimeouts: number
  /**
   * Handshake messages seen before: IK first messages whose timestamp is not newer than the last,
   * and repeats that came after the session they belong to was in use (message 1 after the
   * handshake timeout or after the initiator's DATA; message 2 after message 2).
   */
  handshakeReplays: number
  /** DATA that failed authentication (tampered, or sealed with other keys). */
  decryptFailures: number
  /** DATA whose counter was seen before or is older than the replay window. */
  replays: number
  /** DATA for a session we do not have, or from an address other than the session's. */
  misdirected: number
  /** Handshakes both sides started at once: the one with the lower initiator index gives way. */
  crossedHandshakes: number
  /** Plaintext whose sender id is not the id the session authenticated. */
  idMismatch: number
  /** Unencrypted or unknown packets. */
  malformed: number
  /** Packets dropped because the queue of a peer whose handshake was running was full, or the handshake failed. */
  queueDropped: number
  halfOpenDropped: number
  evicted: number
  idleClosed: number
  rekeys: number
  /** Sessions the peer closed (an authenticated CLOSE: it evicted its side, or shut down). */
  closedByPeer: number
  /** New handshakes because a session we kept sending on got nothing back for unansweredMs. */
  unansweredReopens: number
  /** XX message 3 sent again: the responder had not yet shown it has the keys. */
  finalResent: number
  /** IK message 1 sent again while unanswered (REPEAT_MS), and message 2 sent again for a repeated message 1. */
  handshakeRepeats: number
  /** First handshake messages made without this node's network key (or with another): not answered. */
  networkRefused: number
  /** Handshakes from peers the authorizePeer hook refused (no session, no answer). */
  peersRefused: number
  /** First handshake messages past their host's rate (handshakesPerHostPerSecond): not answered. */
  handshakesRateLimited: number
}

// The key of the packet being sealed or opened, copied in from its Session's fields just before
// the call (calls into libsodium are synchronous). One hot buffer instead of a typed array per
// key: across thousands of sessions, a key's view, its buffer and its bytes were three cache
// misses a packet (profiled in the lookup bench).
const KEY = new Uint8Array(new ArrayBuffer(KEY_BYTES))
const KEY_WORDS = new Int32Array(KEY.buffer)
// Where Handshake.splitKeys writes a new session's two keys, read from at once and zeroed.
const SPLIT = new Uint8Array(new ArrayBuffer(2 * KEY_BYTES))
const SPLIT_WORDS = new Int32Array(SPLIT.buffer)

// Signed, so that a word kept in a field stays a small integer (an unsigned one past 2^31 is boxed).
function be32(b: Uint8Array, o: number): number { return (b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3] }

/**
 * One set of keys with a peer. Compact on purpose (a node keeps one per peer it talks to, and
 * their size and scatter showed in the lookup bench's speed as well as its memory): its keys and
 * the peer's id are small-integer fields of the object itself (32-bit words), times are whole
 * milliseconds (small integers, not boxed numbers), and the replay window is four fields. The
 * fields a packet reads come first, so they share cache lines.
 */
class Session {
  sendCounter = 0
  lastUsed: number
  /** When we last sealed a packet on it: a peer that only receives answers now and then (keepalive). */
  lastSent: number
  /** When we began sending with nothing back from the peer since (-1: it answered); see unansweredMs. */
  waitingSince = -1
  // The send key, then the receive key, in 32-bit words (the platform's order, as KEY_WORDS reads them).
  private s0: number; private s1: number; private s2: number; private s3: number
  private s4: number; private s5: number; private s6: number; private s7: number
  private r0: number; private r1: number; private r2: number; private r3: number
  private r4: number; private r5: number; private r6: number; private r7: number
  // Which counters have been received, over a sliding window of 96 to 128 (RFC 6479's idea, in
  // 32-bit words): word i of the counter space lives in field w(i mod 4). Reordering on a path
  // rarely goes past a few packets; a DATA packet older than the window is dropped as a replay
  // (what it carried is resent).
  private top = -1
  private w0 = 0
  private w1 = 0
  private w2 = 0
  private w3 = 0
  // The peer's id in big-endian 32-bit words, for the check every packet gets (sentBy).
  private i0: number; private i1: number; private i2: number; private i3: number
  private i4: number; private i5: number; private i6: number; private i7: number
  /**
   * Our last handshake message, until the peer shows it has the keys (any DATA from it). XX
   * initiator: message 3, which is never answered, so its loss would leave the responder unable
   * to read us: it is sent again, at most every FINAL_RESEND_MS, in front of what we send
   * meanwhile. IK responder: message 2, sent again when message 1 comes again (REPEAT_MS); let go
   * once a handshake timeout has passed, at the next answer or sweep (see `answered`).
   */
  final: Uint8Array | null = null
  /** Is the peer's `next`: answered during a rekey, waiting for the initiator to send on it. */
  standby = false
  /**
   * Initiator: the index of the peer's own handshake that it dropped to answer ours (crossed; 0:
   * none). Its message 1 may still arrive, late: it is dropped then too (spec/wire.md 13.3).
   */
  abandoned = 0
  createdAt: number
  finalSentAt: number

  /** `keys`: 16 words as Handshake.splitKeys writes them, initiator to responder first. */
  constructor(
    readonly address: Address,
    readonly localIndex: number,
    readonly remoteIndex: number,
    keys: Int32Array,
    readonly remoteId: NodeId,
    readonly initiator: boolean,
    now: number,
  ) {
    const sendAt = initiator ? 0 : 8, r = 8 - sendAt
    this.s0 = keys[sendAt]; this.s1 = keys[sendAt + 1]; this.s2 = keys[sendAt + 2]; this.s3 = keys[sendAt + 3]
    this.s4 = keys[sendAt + 4]; this.s5 = keys[sendAt + 5]; this.s6 = keys[sendAt + 6]; this.s7 = keys[sendAt + 7]
    this.r0 = keys[r]; this.r1 = keys[r + 1]; this.r2 = keys[r + 2]; this.r3 = keys[r + 3]
    this.r4 = keys[r + 4]; this.r5 = keys[r + 5]; this.r6 = keys[r + 6]; this.r7 = keys[r + 7]
    this.i0 = be32(remoteId, 0); this.i1 = be32(remoteId, 4); this.i2 = be32(remoteId, 8); this.i3 = be32(remoteId, 12)
    this.i4 = be32(remoteId, 16); this.i5 = be32(remoteId, 20); this.i6 = be32(remoteId, 24); this.i7 = be32(remoteId, 28)
    this.createdAt = this.lastUsed = this.lastSent = this.finalSentAt = now
  }

  /** The send key, in the shared KEY buffer: valid until the next call. */
  sendKey(): Uint8Array {
    const k = KEY_WORDS
    k[0] = this.s0; k[1] = this.s1; k[2] = this.s2; k[3] = this.s3; k[4] = this.s4; k[5] = this.s5; k[6] = this.s6; k[7] = this.s7
    return KEY
  }

  /** The receive key, in the shared KEY buffer: valid until the next call. */
  receiveKey(): Uint8Array {
    const k = KEY_WORDS
    k[0] = this.r0; k[1] = this.r1; k[2] = this.r2; k[3] = this.r3; k[4] = this.r4; k[5] = this.r5; k[6] = this.r6; k[7] = this.r7
    return KEY
  }

  /** Whether the 32 bytes of `b` at `o` are the peer's id. */
  sentBy(b: Uint8Array, o: number): boolean {
    return be32(b, o) === this.i0 && be32(b, o + 4) === this.i1 && be32(b, o + 8) === this.i2 && be32(b, o + 12) === this.i3 &&
      be32(b, o + 16) === this.i4 && be32(b, o + 20) === this.i5 && be32(b, o + 24) === this.i6 && be32(b, o + 28) === this.i7
  }

  /** Forgets the keys; seal refuses the session from now on. */
  retire(): void {
    this.sendCounter = RETIRED
    this.s0 = this.s1 = this.s2 = this.s3 = this.s4 = this.s5 = this.s6 = this.s7 = 0
    this.r0 = this.r1 = this.r2 = this.r3 = this.r4 = this.r5 = this.r6 = this.r7 = 0
  }

  /** True when `n` is inside the window and not seen yet (does not record it). */
  fresh(n: number): boolean {
    if (n > this.top) return true
    if (this.top - n >= 3 * 32) return false
    return (this.word(Math.floor(n / 32)) & (1 << (n % 32))) === 0
  }

  mark(n: number): void {
    if (n > this.top) {
      const from = Math.floor(this.top / 32), to = Math.floor(n / 32)
      if (this.top < 0 || to - from >= 4) this.w0 = this.w1 = this.w2 = this.w3 = 0
      else for (let w = from + 1; w <= to; w++) this.setWord(w, 0)
      this.top = n
    }
    const w = Math.floor(n / 32)
    this.setWord(w, this.word(w) | (1 << (n % 32)))
  }

  // `& 3` keeps the low bits of any safe integer.
  private word(i: number): number {
    switch (i & 3) { case 0: return this.w0; case 1: return this.w1; case 2: return this.w2; default: return this.w3 }
  }

  private setWord(i: number, v: number): void {
    switch (i & 3) { case 0: this.w0 = v; break; case 1: this.w1 = v; break; case 2: this.w2 = v; break; default: this.w3 = v }
  }
}

interface Pending {
  hs: Handshake
  pattern: Pattern
  localIndex: number
  attempts: number
  timer: TimerHandle | null
  /**
   * IK: DATA the responder sent on this handshake's index that came before its message 2 (the
   * network reordered them; the responder sends at once, it has the keys). Opened once message 2
   * is in, instead of dropped; at most maxQueued (the bound on what waits for a handshake either way).
   */
  early: Uint8Array[] | null
  /** The packet IK message 1 carried: sent again on the peer's session if the peer drops ours for its own (crossed). */
  first: Uint8Array | null
  /** IK message 1 as sent, and when it was last sent (REPEAT_MS). */
  message: Uint8Array | null
  sentAt: number
}

interface Peer {
  current: Session | null // the one we send on
  previous: Session | null // still accepted for a while after a rekey
  next: Session | null // answered while a session was open: used once the initiator sends on it
  pending: Pending | null
  queue: Uint8Array[] // NO_QUEUE until something waits: most peers never queue
  /** Answering an IK message 1: what the layer above sends now is held for message 2. */
  holding: boolean
}

/** An XX handshake this node answered, waiting for message 3. */
/** The queue of a peer nothing waits for: shared, and frozen so nothing is pushed onto it by mistake. */
const NO_QUEUE: Uint8Array[] = Object.freeze([]) as unknown as Uint8Array[]
/** What an empty DATA (a keepalive, a move to new keys) or a CLOSE seals: read, never written. */
const EMPTY = new Uint8Array(0)

interface HalfOpen { hs: Handshake; address: Address; localIndex: number; remoteIndex: number; expiresAt: number }

function readU32(b: Uint8Array, o: number): number { return be32(b, o) >>> 0 }
function writeU32(b: Uint8Array, o: number, v: number): void { b[o] = v >>> 24; b[o + 1] = v >>> 16; b[o + 2] = v >>> 8; b[o + 3] = v }
function equal(a: Uint8Array, b: Uint8Array): boolean { return a.length === b.length && Buffer.compare(a, b) === 0 }

export class SecureTransport implements Transport {
  readonly sessionStats: SessionStats = {
    handshakesStarted: 0, handshakesAnswered: 0, sessionsOpened: 0, handshakeFailures: 0, handshakeTimeouts: 0, handshakeReplays: 0,
    decryptFailures: 0, replays: 0, misdirected: 0, crossedHandshakes: 0, idMismatch: 0, malformed: 0, queueDropped: 0, halfOpenDropped: 0,
    evicted: 0, idleClosed: 0, closedByPeer: 0, unansweredReopens: 0, rekeys: 0, finalResent: 0, handshakeRepeats: 0, networkRefused: 0, peersRefused: 0, handshakesRateLimited: 0,
  }
  onPacket: (from: Address, bytes: Uint8Array) => void = () => {}
  /**
   * Whether the peer `id` (authenticated by the handshake) at `address` may have a session. Asked
   * when a handshake completes, on either side; refused, the handshake is dropped without a word.
   * Synchronous and cheap: it runs once per handshake.
   */
  authorizePeer: ((id: NodeId, address: Address) => boolean) | null = null
  private readonly o: SessionOptions
  private readonly staticKey: KeyPair
  private readonly peers = new Map<Address, Peer>()
  private readonly byIndex = new Map<number, Session | HalfOpen>()
  // Ed25519 keys by address, for IK, oldest use first; forgotten after knownKeyIdleMs unused (the
  // addresses of peers that left would otherwise pile up to the bound under churn).
  private readonly keys = new Map<Address, { key: Uint8Array; at: number }>()
  // Newest IK timestamp per peer, by the first 48 bits of its id (a number, not a string per peer).
  private readonly lastTimestamp = new Map<number, number>()
  private halfOpen = 0
  private sessions = 0
  /**
   * IK responder sessions that keep their message 2 for a repeat, oldest first: each lets it go
   * after a handshake timeout, and at most maxHalfOpen keep one (a message 2 is up to a packet).
   */
  private answered: Session[] = []
  private readonly psk: { key: Uint8Array; position: number } | undefined
  private readonly hostLimiter: RateLimiter
  private readonly hosts: PeerTable
  private sweeper: TimerHandle | null = null
  private closed = false

  /**
   * `senderAt` finds the sender id a plaintext packet claims (the wire header's: its offset, -1
   * for none), so that a peer cannot speak for another id over its own session.
   */
  constructor(
    private readonly inner: Transport,
    private readonly runtime: Runtime,
    private readonly identity: Identity,
    private readonly senderAt: (packet: Uint8Array) => number,
    options: Partial<SessionOptions> = {},
  ) {
    this.o = { ...DEFAULT_SESSION_OPTIONS, ...options }
    this.psk = this.o.networkKey ? { key: networkKeyFrom(this.o.networkKey), position: PSK_POSITION } : undefined
    this.hosts = new PeerTable(this.o.maxHandshakeHosts)
    this.hostLimiter = new RateLimiter(this.o.handshakesPerHostPerSecond, this.o.handshakeBurstPerHost, this.hosts)
    this.staticKey = keyPairFromPrivate(x25519PrivateFromIdentity(identity))
    inner.onPacket = (from, bytes) => this.receive(from, bytes)
    this.scheduleSweep()
  }

  get address(): Address { return this.inner.address }
  get stats(): TransportStats { return this.inner.stats }
  /** Sessions open now. */
  get sessionCount(): number { return this.sessions }
  /** XX handshakes answered and waiting for message 3. */
  get halfOpenCount(): number { return this.halfOpen }
  /** Peer keys remembered by address (for IK). */
  get knownKeyCount(): number { return this.keys.size }
  /** Hosts with a handshake rate bucket. */
  get handshakeHostCount(): number { return this.hosts.size }
  /** Whether handshakes bind a network key (a private network). */
  get privateNetwork(): boolean { return this.psk !== undefined }
  /** The bounds this transport runs with. */
  get options(): Readonly<SessionOptions> { return this.o }

  /**
   * A key the layers above expect at an address (a contact's id is its key): used for IK when no
   * key is known there yet. A wrong one costs one IK attempt, then XX (the handshake timeout).
   */
  hintPeerKey(address: Address, publicKey: Uint8Array): void {
    if (publicKey.length !== KEY_BYTES || this.keys.has(address) || this.peers.get(address)?.current) return
    try {
      x25519PublicFromEd25519(publicKey) // refuses what cannot be a key; the result is kept for the handshake
    } catch { return }
    this.rememberKey(address, publicKey)
  }

  /** Tells the transport a peer's Ed25519 key (from its signed peer record): the first packet to it goes out sealed (IK). */
  addPeerKey(address: Address, publicKey: Uint8Array): void {
    if (publicKey.length !== KEY_BYTES) throw new WeftError('ERR_BAD_ARGUMENT', 'an Ed25519 public key is 32 bytes')
    this.rememberKey(address, publicKey)
  }

  /** The authenticated id of the peer at `address`, when a session is open. */
  peerId(address: Address): NodeId | null { return this.peers.get(address)?.current?.remoteId ?? null }

  send(to: Address, bytes: Uint8Array): void {
    if (this.closed) return
    const peer = this.peer(to)
    const s = peer.current
    if (s) {
      const now = this.now()
      // The first send after an answer, or after a quiet spell, starts the wait for one.
      const waited = s.waitingSince < 0 || now - s.lastUsed > this.o.unansweredMs ? 0 : now - s.waitingSince
      if (waited === 0) s.waitingSince = now
      this.seal(s, bytes, now)
      if (peer.pending) return
      // The initiator rekeys; the responder only if the initiator has not, so both do not race.
      if (now - s.createdAt > this.o.rekeyAfterMs * (s.initiator ? 1 : 1.25)) {
        this.sessionStats.rekeys++
        this.initiate(to, peer)
      } else if (waited > this.o.unansweredMs) {
        // Nothing back for a while: the peer may have lost these keys (a restart). A new handshake
        // finds out; until it completes we go on sending on these, in case it is only slow.
        this.sessionStats.unansweredReopens++
        s.waitingSince = now
        this.initiate(to, peer)
      }
      return
    }
    if (peer.queue.length >= this.o.maxQueued) { this.sessionStats.queueDropped++; return }
    if (peer.queue === NO_QUEUE) peer.queue = []
    peer.queue.push(bytes)
    const p = peer.pending
    if (!p) { if (!peer.holding) this.initiate(to, peer) }
    else if (p.message && !peer.holding) {
      const now = this.now()
      if (now - p.sentAt < REPEAT_MS) return
      p.sentAt = now
      this.sessionStats.handshakeRepeats++
      this.inner.send(to, p.message)
    }
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true
      if (this.sweeper) this.runtime.clearTimeout(this.sweeper)
      const now = this.now()
      for (const peer of this.peers.values()) {
        if (peer.pending?.timer) this.runtime.clearTimeout(peer.pending.timer)
        // Tell each peer, or what it sends next goes to keys nobody holds (a node restarted on
        // this address would drop it as misdirected until the peer's session ran out).
        if (peer.current) this.seal(peer.current, EMPTY, now, Kind.CLOSE)
      }
      this.peers.clear()
      this.answered = []
      this.byIndex.clear()
    }
    return this.inner.close()
  }

  // ---- sending

  private seal(s: Session, bytes: Uint8Array, now = this.now(), kind = Kind.DATA): void {
    const n = s.sendCounter
    if (n === RETIRED) return // a retired session, whose keys are gone
    s.sendCounter = n + 1
    const header = DATA_SCRATCH // copied into the packet by the seal
    header[0] = kind
    writeU32(header, 1, s.remoteIndex)
    writeU32(header, 5, Math.floor(n / 2 ** 32))
    writeU32(header, 9, n >>> 0)
    s.lastUsed = s.lastSent = now
    if (s.final && s.initiator && now - s.finalSentAt >= FINAL_RESEND_MS) {
      s.finalSentAt = now
      this.sessionStats.finalResent++
      this.inner.send(s.address, s.final)
    }
    this.inner.send(s.address, sealPacket(s.sendKey(), n, header, bytes))
  }

  private initiate(to: Address, peer: Peer, attempt = 1): void {
    const known = this.keys.get(to)
    if (known) this.remember(this.keys, to, { key: known.key, at: this.now() })
    const key = known?.key
    const pattern: Pattern = key ? 'IK' : 'XX'
    const hs = new Handshake({ pattern, initiator: true, prologue: PROLOGUE, s: this.staticKey, e: this.ephemeral(), rs: key ? x25519PublicFromEd25519(key) : undefined, psk: this.psk })
    const localIndex = this.newIndex()
    if (peer.pending) this.dropPending(peer)
    peer.pending = { hs, pattern, localIndex, attempts: attempt, timer: null, early: null, first: null, message: null, sentAt: this.now() }
    this.sessionStats.handshakesStarted++
    const head = new Uint8Array(6)
    head[0] = Kind.INIT
    head[1] = pattern === 'IK' ? 1 : 0
    writeU32(head, 2, localIndex)
    let packet: Uint8Array
    if (pattern === 'IK') {
      const stamp = new Uint8Array(8)
      new DataView(stamp.buffer).setFloat64(0, this.runtime.wallClock())
      const first = this.takeFirstIfFits(peer, 6 + 32 + 48 + 40 + TAG_BYTES)
      if (first.length > 0) peer.pending.first = first
      packet = Buffer.concat([head, hs.writeMessage(Buffer.concat([this.identity.publicKey, stamp, first]))])
      peer.pending.message = packet
    } else {
      const m = hs.writeMessage(new Uint8Array(0))
      packet = new Uint8Array(XX_INIT_BYTES)
      packet.set(head)
      packet.set(m, head.length)
    }
    peer.pending.timer = this.runtime.setTimeout(() => this.handshakeTimedOut(to, peer), this.o.handshakeTimeoutMs)
    this.inner.send(to, packet)
  }

  /** The first queued packet, taken off the queue, when it fits in a handshake message of `fixed` bytes. */
  private takeFirstIfFits(peer: Peer, fixed: number): Uint8Array {
    const first = peer.queue[0]
    if (!first || fixed + first.length > this.o.maxPacket + SESSION_OVERHEAD) return new Uint8Array(0)
    peer.queue.shift()
    return first
  }

  private handshakeTimedOut(to: Address, peer: Peer): void {
    const p = peer.pending
    if (!p || this.peers.get(to) !== peer) return
    p.timer = null
    if (p.pattern === 'IK') this.keys.delete(to) // the key we had may be stale (a new identity there): ask with XX
    if (p.attempts < this.o.handshakeAttempts) { this.initiate(to, peer, p.attempts + 1); return }
    this.sessionStats.handshakeTimeouts++
    this.dropPending(peer)
    this.sessionStats.queueDropped += peer.queue.length
    peer.queue = NO_QUEUE
    if (!peer.current && !peer.previous) this.peers.delete(to)
  }

  private dropPending(peer: Peer): void {
    const p = peer.pending
    if (!p) return
    if (p.timer) this.runtime.clearTimeout(p.timer)
    peer.pending = null
  }

  // ---- receiving

  private receive(from: Address, b: Uint8Array): void {
    if (this.closed) return
    try {
      switch (b[0]) {
        case Kind.DATA:
        case Kind.CLOSE: this.onData(from, b); return
        case Kind.INIT: this.onInit(from, b); return
        case Kind.RESP: this.onResp(from, b); return
        case Kind.FINAL: this.onFinal(from, b); return
        default: this.sessionStats.malformed++
      }
    } catch (err) {
      if (!(err instanceof WeftError)) throw err
      this.sessionStats.handshakeFailures++ // a handshake message that failed to decrypt or parse
    }
  }

  private onData(from: Address, b: Uint8Array): void {
    if (b.length < DATA_HEADER + TAG_BYTES) { this.sessionStats.malformed++; return }
    const index = readU32(b, 1)
    const s = this.byIndex.get(index)
    if (!s || 'hs' in s || s.address !== from) { // a HalfOpen has no keys yet
      if (!s && this.keptEarly(from, index, b)) return
      this.sessionStats.misdirected++
      return
    }
    const n = readU32(b, 5) * 2 ** 32 + readU32(b, 9)
    if (n >= MAX_COUNTER || !s.fresh(n)) { this.sessionStats.replays++; return }
    // The header (the AD) is copied to one reused buffer, and the rest is a plain view: a Buffer's
    // (the datagram's) subarray goes through its slower species constructor.
    const ad = DATA_SCRATCH
    for (let i = 0; i < DATA_HEADER; i++) ad[i] = b[i]
    const plain = openInPlace(s.receiveKey(), n, ad, new Uint8Array(b.buffer, b.byteOffset + DATA_HEADER, b.length - DATA_HEADER))
    if (!plain) { this.sessionStats.decryptFailures++; return }
    s.mark(n)
    const now = this.now()
    s.lastUsed = now
    s.waitingSince = -1
    s.final = null // the responder has the keys
    if (b[0] === Kind.CLOSE) { this.closedByPeer(s); return }
    this.deliver(s, plain)
    // Traffic that only flows our way (a broadcast tree's edge) gets an empty DATA back now and
    // then, so the sender does not take the silence for lost keys (unansweredMs).
    if (now - s.lastSent > this.o.unansweredMs / 2) this.seal(s, EMPTY, now)
  }

  /** Keeps a copy of DATA for the index of our IK handshake with `from`, which came before message 2. */
  private keptEarly(from: Address, index: number, b: Uint8Array): boolean {
    const p = this.peers.get(from)?.pending
    if (!p || p.localIndex !== index || p.pattern !== 'IK' || (p.early !== null && p.early.length >= this.o.maxQueued)) return false
    ;(p.early ??= []).push(Uint8Array.from(b))
    return true
  }

  /**
   * The peer dropped its side (an authenticated CLOSE): ours goes too, so what we send next opens
   * a new session (IK, its first packet inside) instead of vanishing into an index it forgot.
   */
  private closedByPeer(s: Session): void {
    const peer = this.peers.get(s.address)
    if (!peer || (peer.current !== s && peer.previous !== s && peer.next !== s)) return
    this.sessionStats.closedByPeer++
    for (const x of [peer.current, peer.previous, peer.next]) if (x) this.retire(x)
    peer.current = peer.previous = peer.next = null
    if (!peer.pending) this.peers.delete(s.address)
  }

  private deliver(s: Session, plain: Uint8Array): void {
    if (s.standby) { // the initiator has the new keys: move to them
      const peer = this.peers.get(s.address)!
      if (peer.previous) this.retire(peer.previous)
      peer.previous = peer.current
      peer.current = s
      peer.next = null
      s.standby = false
    }
    if (plain.length === 0) return // a keepalive that confirms new keys
    const at = this.senderAt(plain)
    if (at >= 0 && !s.sentBy(plain, at)) { this.sessionStats.idMismatch++; return }
    this.onPacket(s.address, plain)
  }

  private onInit(from: Address, b: Uint8Array): void {
    if (b.length < 6) { this.sessionStats.malformed++; return }
    const ik = b[1] === 1
    if (!ik && (b[1] !== 0 || b.length < XX_INIT_BYTES)) { this.sessionStats.malformed++; return }
    const remoteIndex = readU32(b, 2)
    const known = this.peers.get(from)
    if (ik && known) {
      // A repeat of the message 1 a session of ours answered: its sender lacks our message 2.
      const s = known.next?.remoteIndex === remoteIndex ? known.next : known.current?.remoteIndex === remoteIndex ? known.current : null
      const now = this.now()
      if (s && !s.initiator) {
        // No larger answer than the question: a first contact's message 1 is padded past its message 2.
        if (!s.final || now - s.createdAt > this.o.handshakeTimeoutMs || b.length < s.final.length) this.sessionStats.handshakeReplays++ // no Diffie-Hellman for it
        else if (now - s.finalSentAt >= REPEAT_MS) {
          s.finalSentAt = now
          this.sessionStats.handshakeRepeats++
          this.inner.send(from, s.final)
        }
        return
      }
    }
    const mine = known?.pending
    if (mine && mine.localIndex > remoteIndex) { this.sessionStats.crossedHandshakes++; return } // ours goes on; the peer answers it
    // The same crossing, when the peer's message 1 comes after ours completed: the peer gave way
    // and dropped its handshake (its message 2 named it), so answering would open a session only
    // we hold, and the packet inside would switch us over to it: what we sent next went to keys nobody had.
    const ours = known?.current
    if (ours && ours.initiator && ours.abandoned === remoteIndex) { this.sessionStats.crossedHandshakes++; return }
    const abandoned = mine ? mine.localIndex : 0 // ours, which we give up for the peer's (crossed)
    // Before any Diffie-Hellman: many ports of one host share one bucket (loopback may be exempt).
    if (!(this.o.exemptLoopback && isLoopback(from)) && !this.hostLimiter.allowAt(this.hosts.slot(hostKey(from)), this.runtime.now())) {
      this.sessionStats.handshakesRateLimited++
      return
    }
    const hs = new Handshake({ pattern: ik ? 'IK' : 'XX', initiator: false, prologue: PROLOGUE, s: this.staticKey, e: this.ephemeral(), psk: this.psk })
    if (ik) {
      const payload = this.readFirst(hs, b.subarray(6))
      if (!payload) return
      if (payload.length < KEY_BYTES + 8) throw new WeftError('ERR_HANDSHAKE', 'IK payload too short')
      const key = payload.subarray(0, KEY_BYTES)
      this.checkKey(hs, key)
      if (!this.authorized(key, from)) return
      const id = key[0] * 2 ** 40 + key[1] * 2 ** 32 + readU32(key, 2) // the id is the key
      const stamp = new DataView(payload.buffer, payload.byteOffset + KEY_BYTES, 8).getFloat64(0)
      if (!(stamp > (this.lastTimestamp.get(id) ?? -Infinity))) { this.sessionStats.handshakeReplays++; return }
      this.remember(this.lastTimestamp, id, stamp)
      const localIndex = this.newIndex()
      const peer = this.peer(from)
      let first: Uint8Array | null = payload.subarray(KEY_BYTES + 8)
      let held: Uint8Array[] = []
      if (!peer.current && first.length > 0) {
        // A new peer's first packet is handed up now, and the answer (when the layer above
        // answers at once) rides in message 2: sent apart, it could overtake message 2 and
        // reach a peer with no session to open it.
        const at = this.senderAt(first)
        if (at >= 0 && !idEquals(key, first, at)) this.sessionStats.idMismatch++ // the id is the key
        else {
          const waiting = peer.queue
          peer.queue = NO_QUEUE
          peer.holding = true
          try { this.onPacket(from, first) } finally { peer.holding = false }
          held = peer.queue
          peer.queue = waiting
        }
        first = null
      }
      const answer = held.length > 0 && RESP_HEAD + KEY_BYTES + TAG_BYTES + held[0].length <= this.o.maxPacket + SESSION_OVERHEAD ? held.shift()! : new Uint8Array(0)
      const reply = hs.writeMessage(answer)
      this.sessionStats.handshakesAnswered++
      const message2 = Buffer.concat([this.respHead(localIndex, remoteIndex, abandoned), reply])
      this.inner.send(from, message2)
      const s = this.open(from, hs, localIndex, remoteIndex, Buffer.from(key), false)
      s.final = new Uint8Array(message2) // for a repeated message 1; a copy, not a view pinning the Buffer pool's slab
      s.finalSentAt = s.createdAt - REPEAT_MS // the first repeat is answered whenever it comes
      this.keepAnswer(s)
      for (const h of held) this.seal(s, h)
      if (first) this.deliver(s, first)
      return
    }
    // XX: answer, and keep the state until message 3, within a bound.
    this.sweepHalfOpen()
    if (this.halfOpen >= this.o.maxHalfOpen) { this.sessionStats.halfOpenDropped++; return }
    // Only the ephemeral key (and, in a private network, the tag the network key made); the rest is padding.
    if (!this.readFirst(hs, b.subarray(6, 6 + KEY_BYTES + (this.psk ? TAG_BYTES : 0)))) return
    const localIndex = this.newIndex()
    const reply = hs.writeMessage(this.identity.publicKey)
    this.byIndex.set(localIndex, { hs, address: from, localIndex, remoteIndex, expiresAt: this.runtime.now() + this.o.handshakeTimeoutMs * this.o.handshakeAttempts })
    this.halfOpen++
    this.sessionStats.handshakesAnswered++
    this.inner.send(from, Buffer.concat([this.respHead(localIndex, remoteIndex, abandoned), reply]))
  }

  /**
   * Reads a handshake's first message. In a private network a failure means the sender lacks the
   * network key: it is counted and gets no answer (null), not even a handshake failure's.
   */
  private readFirst(hs: Handshake, message: Uint8Array): Uint8Array | null {
    if (!this.psk) return hs.readMessage(message)
    try {
      return hs.readMessage(message)
    } catch (err) {
      if (!(err instanceof WeftError)) throw err
      this.sessionStats.networkRefused++
      return null
    }
  }

  /** The authorizePeer hook on a proven key; a hook that throws refuses. */
  private authorized(key: Uint8Array, address: Address): boolean {
    if (!this.authorizePeer) return true
    let ok = false
    try { ok = this.authorizePeer(idFromPublicKey(key), address) === true } catch { ok = false }
    if (!ok) this.sessionStats.peersRefused++
    return ok
  }

  private respHead(localIndex: number, remoteIndex: number, abandoned: number): Uint8Array {
    const head = new Uint8Array(RESP_HEAD)
    head[0] = Kind.RESP
    writeU32(head, 1, localIndex)
    writeU32(head, 5, remoteIndex)
    writeU32(head, 9, abandoned)
    return head
  }

  private onResp(from: Address, b: Uint8Array): void {
    if (b.length < RESP_HEAD) { this.sessionStats.malformed++; return }
    const peer = this.peers.get(from)
    const p = peer?.pending
    if (!peer || !p || p.localIndex !== readU32(b, 5)) {
      const s = peer?.current
      // A message 2 again (the answer to our repeated message 1) for a handshake already done.
      if (s && s.initiator && s.localIndex === readU32(b, 5) && s.remoteIndex === readU32(b, 1)) this.sessionStats.handshakeReplays++
      else this.sessionStats.misdirected++
      return
    }
    const remoteIndex = readU32(b, 1)
    const payload = p.hs.readMessage(b.subarray(RESP_HEAD))
    let key: Uint8Array
    let final: Uint8Array | null = null
    let ikAnswer: Uint8Array | null = null
    if (p.pattern === 'IK') {
      key = this.keys.get(from)!.key // touched when this handshake began
      if (payload.length > 0) ikAnswer = payload
    } else {
      if (payload.length !== KEY_BYTES) throw new WeftError('ERR_HANDSHAKE', 'XX message 2 must carry the responder key')
      key = Buffer.from(payload)
      this.checkKey(p.hs, key)
    }
    if (!this.authorized(key, from)) { // a peer we refuse: no message 3, nothing sent to it
      this.dropPending(peer)
      this.sessionStats.queueDropped += peer.queue.length
      peer.queue = NO_QUEUE
      if (!peer.current && !peer.previous) this.peers.delete(from)
      return
    }
    if (p.pattern === 'XX') {
      const head = new Uint8Array(5)
      head[0] = Kind.FINAL
      writeU32(head, 1, remoteIndex)
      const first = this.takeFirstIfFits(peer, 5 + 48 + 32 + TAG_BYTES)
      final = Buffer.concat([head, p.hs.writeMessage(Buffer.concat([this.identity.publicKey, first]))])
      this.inner.send(from, final)
    }
    const hs = p.hs
    this.dropPending(peer)
    const rekey = peer.current !== null
    const s = this.open(from, hs, p.localIndex, remoteIndex, key, true)
    s.final = final
    s.abandoned = readU32(b, 9)
    if (rekey && peer.queue.length === 0) this.seal(s, EMPTY) // tells the responder to move to the new keys
    for (const q of peer.queue) this.seal(s, q)
    peer.queue = NO_QUEUE
    if (ikAnswer) this.deliver(s, ikAnswer) // the answer to our first packet, carried in message 2
    if (p.early) for (const e of p.early) this.onData(from, e) // checked now as any DATA is
  }

  private onFinal(from: Address, b: Uint8Array): void {
    if (b.length < 5) { this.sessionStats.malformed++; return }
    const h = this.byIndex.get(readU32(b, 1))
    if (!h || !('hs' in h) || h.address !== from) { this.sessionStats.misdirected++; return }
    this.byIndex.delete(h.localIndex) // one try: a failed message 3 ends this handshake
    this.halfOpen--
    const payload = h.hs.readMessage(b.subarray(5))
    if (payload.length < KEY_BYTES) throw new WeftError('ERR_HANDSHAKE', 'XX message 3 must carry the initiator key')
    const key = Buffer.from(payload.subarray(0, KEY_BYTES))
    this.checkKey(h.hs, key)
    if (!this.authorized(key, from)) return
    const s = this.open(from, h.hs, h.localIndex, h.remoteIndex, key, false)
    this.deliver(s, payload.subarray(KEY_BYTES))
    // The initiator resends message 3 until it hears from us under the new keys: when what it
    // carried got no answer at once (one-way traffic), an empty DATA tells it we have them.
    if (s.sendCounter === 0 && this.byIndex.get(s.localIndex) === s) this.seal(s, EMPTY)
  }

  /** The static key the handshake proved must be the X25519 form of the Ed25519 key the peer names. */
  private checkKey(hs: Handshake, key: Uint8Array): void {
    let expected: Uint8Array
    try { expected = x25519PublicFromEd25519(key) } catch { throw new WeftError('ERR_HANDSHAKE', 'the peer named an invalid key') }
    if (!hs.remoteStatic || !equal(hs.remoteStatic, expected)) throw new WeftError('ERR_HANDSHAKE', 'the peer named a key it did not prove')
  }

  private open(address: Address, hs: Handshake, localIndex: number, remoteIndex: number, remoteKey: Uint8Array, initiator: boolean): Session {
    hs.splitKeys(SPLIT)
    const now = this.now()
    const remoteId = idFromPublicKey(remoteKey) // a copy: the key may be a view into a datagram
    const s = new Session(address, localIndex, remoteIndex, SPLIT_WORDS, remoteId, initiator, now)
    SPLIT.fill(0)
    const peer = this.peer(address)
    if (!peer.current && this.sessions >= this.o.maxSessions) this.evictOne()
    this.byIndex.set(localIndex, s)
    this.sessions++
    this.sessionStats.sessionsOpened++
    this.remember(this.keys, address, { key: remoteId, at: now }) // the id is the key: one copy serves both
    if (initiator || !peer.current) {
      if (peer.previous) this.retire(peer.previous)
      peer.previous = peer.current
      peer.current = s
    } else {
      // We answered while a session was open (the peer rekeys): keep sending on the old keys
      // until the peer sends on the new ones, which it can only do once our answer arrived.
      if (peer.next) this.retire(peer.next)
      peer.next = s
      s.standby = true
    }
    if (!initiator && peer.pending) {
      // The peer's handshake serves (we gave way, or started ours after answering). When ours
      // crossed it, the peer dropped our IK message 1 and the packet inside: it goes first on this session.
      const lost = peer.pending.first
      this.dropPending(peer)
      if (lost) peer.queue = peer.queue === NO_QUEUE ? [lost] : [lost, ...peer.queue]
    }
    if (peer.current === s && peer.queue.length) {
      for (const q of peer.queue) this.seal(s, q)
      peer.queue = NO_QUEUE
    }
    return s
  }

  private keepAnswer(s: Session): void {
    this.answered.push(s)
    this.pruneAnswers(this.now())
  }

  private pruneAnswers(now: number): void {
    const a = this.answered
    let drop = 0
    while (drop < a.length && (a.length - drop > this.o.maxHalfOpen || now - a[drop].createdAt > this.o.handshakeTimeoutMs)) {
      if (!a[drop].initiator) a[drop].final = null
      drop++
    }
    if (drop > 0) a.splice(0, drop)
  }

  private retire(s: Session): void {
    if (this.byIndex.get(s.localIndex) !== s) return
    this.byIndex.delete(s.localIndex)
    this.sessions--
    s.retire()
  }

  /** Whole milliseconds: a session's times stay small integers (V8 boxes other numbers in an object's fields). */
  private now(): number { return Math.floor(this.runtime.now()) }

  // ---- bounds and upkeep

  private peer(address: Address): Peer {
    let peer = this.peers.get(address)
    if (!peer) { peer = { current: null, previous: null, next: null, pending: null, queue: NO_QUEUE, holding: false }; this.peers.set(address, peer) }
    return peer
  }

  /** From the runtime's random source: crypto randomness on UDP, a seeded stream in the simulator (runs replay). */
  private ephemeral(): KeyPair { return keyPairFromPrivate(this.runtime.random.bytes(32), true) }

  // 31 bits: an index below 2^31 is a small integer to V8, so the map lookup every DATA packet
  // makes hashes it directly instead of boxing it as a heap number first (profiled on loopback).
  private newIndex(): number {
    for (;;) {
      const i = this.runtime.random.u32() >>> 1
      if (i !== 0 && !this.byIndex.has(i)) return i // 0 stands for none in RESP
    }
  }

  private remember<K, V>(map: Map<K, V>, key: K, value: V): void {
    map.delete(key)
    map.set(key, value)
    if (map.size > this.o.maxKnownKeys) map.delete(map.keys().next().value as K)
  }

  // A copy, not the key given: that is often a view into a decrypted datagram, whose buffer (an
  // 8 KiB Buffer pool slab) the entry would otherwise pin for as long as it is remembered. Seen
  // in the soak (bench/soak.ts): slabs held by this map grew with churn, ~4 KiB per session opened.
  private rememberKey(address: Address, key: Uint8Array): void {
    this.remember(this.keys, address, { key: new Uint8Array(key), at: this.now() })
  }

  private evictOne(): void {
    let idlest: [Address, Peer] | null = null
    for (const entry of this.peers) {
      const s = entry[1].current
      if (s && (!idlest || s.lastUsed < idlest[1].current!.lastUsed)) idlest = entry
    }
    if (!idlest) return
    this.seal(idlest[1].current!, EMPTY, this.now(), Kind.CLOSE) // tell the peer, or what it sends is lost
    this.closePeer(idlest[0], idlest[1])
    this.sessionStats.evicted++
  }

  private closePeer(address: Address, peer: Peer): void {
    for (const s of [peer.current, peer.previous, peer.next]) if (s) this.retire(s)
    this.dropPending(peer)
    this.peers.delete(address)
  }

  private sweepHalfOpen(): void {
    const now = this.runtime.now()
    for (const [i, h] of this.byIndex) {
      if ('hs' in h && h.expiresAt <= now) { this.byIndex.delete(i); this.halfOpen-- }
    }
  }

  private scheduleSweep(): void {
    this.sweeper = this.runtime.setTimeout(() => {
      if (this.closed) return
      const now = this.runtime.now()
      this.sweepHalfOpen()
      this.pruneAnswers(now)
      for (const [address, k] of this.keys) { // oldest use first
        if (now - k.at <= this.o.knownKeyIdleMs) break
        this.keys.delete(address)
      }
      for (const [address, peer] of this.peers) {
        if (peer.previous && now - peer.current!.createdAt > this.o.handshakeTimeoutMs * this.o.handshakeAttempts * 4) {
          this.retire(peer.previous) // the peer has had time to move to the new keys
          peer.previous = null
        }
        const s = peer.current
        if (s && !peer.pending && now - s.lastUsed > this.o.idleMs) { this.closePeer(address, peer); this.sessionStats.idleClosed++ }
        else if (s && now - s.createdAt > this.o.rekeyAfterMs * 3) { this.closePeer(address, peer); this.sessionStats.idleClosed++ } // too old to use
      }
      this.scheduleSweep()
    }, Math.max(1000, Math.min(this.o.idleMs, this.o.rekeyAfterMs) / 4))
  }
}
