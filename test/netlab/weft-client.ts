// The lab side of weft-peer.ts: starts a Weft node in a lab host and sends it commands.
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import type { ChildProcess } from 'node:child_process'
import { run, type NatLab } from './lab.js'
import type { NodeOptions } from '../../src/node/node.js'
import type { ConnectResult, NatStatus } from '../../src/node/connectivity.js'

export const PEER_SCRIPT = fileURLToPath(new URL('./weft-peer.js', import.meta.url))
/** The UDP port every lab node binds (each host has its own address, so one port fits all). */
export const WEFT_PORT = 4500

/** A `connect` reply (ids travel as hex). */
export type Connected = Omit<ConnectResult, 'id'> & { id: string }
/** The part of a `status` reply the lab tests read. */
export interface Status { nat: NatStatus & { paths: { relayedIn: number; relayedOut: number; directPaths: number } } }

/** Lookups into a test's peers by host name, failing the test when one is missing. */
export function peerAccess(peers: Map<string, WeftPeer>) {
  const P = (name: string): WeftPeer => {
    const p = peers.get(name)
    assert.ok(p, `no node in ${name}`)
    return p
  }
  const nat = (name: string): NatStatus => P(name).nat as unknown as NatStatus
  const relayedOf = (name: string): string => {
    const a = nat(name).relayedAddress
    assert.ok(typeof a === 'string', `${name} has no relayed address: ${JSON.stringify(nat(name))}`)
    return a
  }
  return { P, nat, relayedOf }
}

export interface Reply { id?: number; ok: boolean; result?: unknown; code?: string; message?: string }

export class WeftPeer {
  id = ''
  address = ''
  nat: Record<string, unknown> = {}
  private seq = 0
  private buf = ''
  private stderr = ''
  private readonly waiting = new Map<number, (r: Reply) => void>()
  private started!: Promise<Record<string, unknown>>

  private constructor(readonly host: string, private readonly child: ChildProcess) {}

  /** Spawns weft-peer in `host` with `options` (host and port filled in) and waits for it to start. */
  static async start(lab: NatLab, host: string, options: NodeOptions, timeoutMs = 20_000): Promise<WeftPeer> {
    const opts = { host: lab.host(host).address, port: WEFT_PORT, ...options }
    const child = lab.spawn(host, [process.execPath, PEER_SCRIPT, JSON.stringify(opts)])
    const p = new WeftPeer(host, child)
    p.started = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`weft-peer in ${host} did not start within ${timeoutMs} ms; stderr: ${p.stderr.trim() || '(none)'}`)), timeoutMs)
      child.stdout!.setEncoding('utf8').on('data', (s: string) => {
        p.buf += s
        const lines = p.buf.split('\n')
        p.buf = lines.pop() ?? ''
        for (const l of lines) {
          if (!l.trim()) continue
          const m = JSON.parse(l) as Record<string, unknown>
          if (m.ev === 'started') { clearTimeout(timer); resolve(m) } else if (m.ev === 'error') { clearTimeout(timer); reject(new Error(`weft-peer in ${host}: ${String(m.message)}`)) } else if (typeof m.id === 'number') p.waiting.get(m.id)?.(m as unknown as Reply)
        }
      })
      child.stderr!.setEncoding('utf8').on('data', (s: string) => { p.stderr = (p.stderr + s).slice(-4000) })
      child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`weft-peer in ${host} exited (${code}); stderr: ${p.stderr.trim() || '(none)'}`)) })
    })
    const m = await p.started
    p.id = String(m.id)
    p.address = String(m.address)
    p.nat = m.nat as Record<string, unknown>
    return p
  }

  /** Sends one command; resolves with its reply (ok or not), or rejects after `timeoutMs`. */
  call(op: string, args: Record<string, unknown> = {}, timeoutMs = 15_000): Promise<Reply> {
    const id = ++this.seq
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.waiting.delete(id); reject(new Error(`weft-peer in ${this.host}: no answer to ${op} within ${timeoutMs} ms`)) }, timeoutMs)
      this.waiting.set(id, (r) => { clearTimeout(timer); this.waiting.delete(id); resolve(r) })
      this.child.stdin!.write(JSON.stringify({ id, op, ...args }) + '\n')
    })
  }

  /** As call(), but throws when the reply is an error; resolves with the result. */
  async must<T = unknown>(op: string, args: Record<string, unknown> = {}, timeoutMs?: number): Promise<T> {
    const r = await this.call(op, args, timeoutMs)
    if (!r.ok) throw new Error(`${this.host}: ${op} ${JSON.stringify(args)} failed: ${r.code} ${r.message}`)
    return r.result as T
  }

  close(): void { this.child.stdin?.end() }

  /** Closes stdin (the node stops and the process exits) and waits for the exit; kills it after `timeoutMs`. */
  async stop(timeoutMs = 3000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()))
    this.close()
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs)
    await exited
    clearTimeout(timer)
  }
}

export interface CtEntry { orig: { src: string; dst: string; sport: number; dport: number }; reply: { src: string; dst: string; sport: number; dport: number }; unreplied: boolean; line: string }

/** Parses `conntrack -L` lines: the first src/dst/sport/dport set is the original direction. */
export function ctEntries(text: string): CtEntry[] {
  const out: CtEntry[] = []
  for (const line of text.split('\n')) {
    const kv = [...line.matchAll(/(src|dst|sport|dport)=(\S+)/g)].map((m) => [m[1], m[2]] as const)
    if (kv.length < 8) continue
    const tuple = (part: ReadonlyArray<readonly [string, string]>): CtEntry['orig'] => {
      const o = Object.fromEntries(part)
      return { src: o.src, dst: o.dst, sport: Number(o.sport), dport: Number(o.dport) }
    }
    out.push({ orig: tuple(kv.slice(0, 4)), reply: tuple(kv.slice(4, 8)), unreplied: line.includes('[UNREPLIED]'), line: line.trim() })
  }
  return out
}

/**
 * Whether the outermost NAT or firewall of `host` holds a two-way UDP flow with `peerIp` (the
 * peer's public address: a direct path, not one through a relay); null when the host has no
 * router (an open host). Returns the matching conntrack lines too.
 */
export async function directFlow(lab: NatLab, host: string, peerIp: string): Promise<{ seen: boolean | null; lines: string[] }> {
  const h = lab.host(host)
  if (h.routers.length === 0) return { seen: null, lines: [] }
  const text = await lab.routerExec(host, ['conntrack', '-L', '-p', 'udp'], { outer: true }).catch(() => '')
  const all = ctEntries(text).filter((e) => e.orig.dst === peerIp || e.orig.src === peerIp)
  return { seen: all.some((e) => !e.unreplied), lines: all.map((e) => e.line) }
}

/** Empties the conntrack tables of every NAT and firewall serving `hosts`. */
export async function flushConntrack(lab: NatLab, hosts: string[]): Promise<void> {
  const routers = new Set(hosts.flatMap((h) => lab.host(h).routers))
  for (const ns of routers) await run(['ip', 'netns', 'exec', ns, 'conntrack', '-F']).catch(() => {})
}

/**
 * Starts the public peers one after another (each bootstraps from those before it), then the
 * NATed ones at once with `nat: true` behind them, into `peers`. If one fails, every peer
 * started is closed and the error thrown (the caller tears down its lab).
 */
export async function startPeers(lab: NatLab, publics: string[], nated: string[], peers: Map<string, WeftPeer>): Promise<void> {
  try {
    const boot: string[] = []
    for (const name of publics) {
      const p = await WeftPeer.start(lab, name, { bootstrap: [...boot] })
      peers.set(name, p)
      boot.push(p.address)
    }
    const started = await Promise.all(nated.map((name) => WeftPeer.start(lab, name, { bootstrap: boot, nat: true })))
    nated.forEach((name, i) => peers.set(name, started[i]))
  } catch (err) {
    for (const p of peers.values()) p.close()
    throw err
  }
}
