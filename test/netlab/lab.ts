// The NAT lab: hosts in Linux network namespaces behind real kernel NATs (root only).
//
// Topology (see /work/shared/notes/nat-lab.md): one "internet" router namespace (ip_forward=1)
// with one veth link per public host, NAT or firewall; no bridge on the public side, so there is a
// router hop between any two NATs and a TTL-2 datagram dies there.
//
//   open host       eth0 203.0.113.(4k+2)/30 ---- inet e<i> 203.0.113.(4k+1)
//   NAT             pub  198.51.100.(4k+2)/30 ---- inet e<i> 198.51.100.(4k+1)
//                   lan  10.<n>.0.1/24 (a bridge); hosts behind it eth0 10.<n>.0.2, .3, ...
//   firewall        pub  198.51.100.(4k+2)/30; lan 203.0.113.(128+4k+1)/30; host 203.0.113.(128+4k+2)
//   double NAT      outer NAT (pub 198.51.100.x, lan 172.16.<n>.1/24) -> inner NAT (pub 172.16.<n>.2,
//                   lan 10.<n>.0.1/24) -> host 10.<n>.0.2
//
// NAT kinds:
//   open       a host with a public address straight on the internet router
//   cone       iptables MASQUERADE: endpoint-independent mapping, port kept when free, port-restricted
//              filtering (inbound only from an ip:port the host has sent to)
//   symmetric  MASQUERADE --random-fully: a random public port per destination
//   firewall   no translation; the router drops inbound NEW UDP (a stateful firewall)
//   double     a cone NAT behind another cone NAT; the internet sees the outer NAT's address
//   hairpin    `behind: <host>` puts a host on the same LAN behind the same NAT as another host.
//              Linux MASQUERADE does not hairpin: a datagram from the LAN to the NAT's own public
//              address matches no DNAT and is delivered to the NAT itself (UDP NoPorts). Hosts
//              behind one NAT reach each other through their private addresses.
//
// Every namespace is named `<prefix>-<role>` with prefix `wl<pid%1000><letters>`; the prefix is
// claimed by an exclusive marker file /run/weft-netlab/<prefix>.pid that holds the owner's pid, so
// two labs never collide and a later lab can delete the namespaces of a crashed one (marker missing
// or owner pid dead). close() kills what the lab spawned and deletes every namespace (veths go
// with them). Every command goes through run(), which throws an Error naming the command and its
// stderr.
import { execFile, execFileSync, spawn as spawnChild, type ChildProcess } from 'node:child_process'
import { mkdir, readFile, unlink, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'

export type NatKind = 'open' | 'cone' | 'symmetric' | 'firewall' | 'double'

export interface HostSpec {
  /** [a-z][a-z0-9]{0,11}; also the last part of the host's namespace name. */
  name: string
  nat: NatKind
  /** Put this host on the LAN of another host's NAT (two hosts behind one NAT: hairpin). */
  behind?: string
}

export interface LabHost {
  name: string
  /** The host's network namespace. */
  ns: string
  /** The host's own IPv4 address (private behind a NAT). */
  address: string
  natKind: NatKind
  /** The IPv4 address the internet sees for this host (the outermost NAT's, or its own). */
  publicAddress: string
  /** Namespaces of the NAT/firewall routers between the host and the internet, innermost first. */
  routers: string[]
}

/** The udp-probe script (compiled next to this file). */
export const PROBE_SCRIPT = fileURLToPath(new URL('./udp-probe.js', import.meta.url))

const MARKER_DIR = '/run/weft-netlab'
const NS_RE = /^(wl\d{1,3}[a-z]+)-/
const TOOLS: Array<[bin: string, pkg: string]> = [['ip', 'iproute2'], ['iptables', 'iptables'], ['conntrack', 'conntrack']]
const DEFAULT_TIMEOUT_MS = 10_000

export interface RunOptions {
  timeoutMs?: number
  env?: NodeJS.ProcessEnv
}

/** Runs one command (no shell); resolves with stdout, or throws an Error with the command and stderr. */
export function run(argv: string[], opts: RunOptions = {}): Promise<string> {
  const timeout = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS
  return new Promise((resolve, reject) => {
    execFile(argv[0], argv.slice(1), { timeout, maxBuffer: 16 << 20, env: opts.env ?? process.env, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout)
      const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: number | string }
      const why = e.killed ? `timed out after ${timeout} ms` : e.code !== undefined ? `exit code ${e.code}` : e.message
      const detail = String(stderr).trim() || String(stdout).trim() || e.message
      reject(new Error(`netlab: command failed (${why}): ${argv.join(' ')}\n${detail}`))
    })
  })
}

async function has(bin: string): Promise<boolean> {
  try {
    await run(['sh', '-c', `command -v ${bin}`])
    return true
  } catch {
    return false
  }
}

/** Installs iproute2, iptables and conntrack with apt-get when any of them is missing. */
export async function ensureTools(): Promise<void> {
  const missing: string[] = []
  for (const [bin, pkg] of TOOLS) if (!(await has(bin))) missing.push(pkg)
  if (missing.length === 0) return
  if (!(await has('apt-get'))) throw new Error(`netlab: missing ${missing.join(', ')} and no apt-get to install them`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  await run(['apt-get', 'update'], { timeoutMs: 300_000, env })
  await run(['apt-get', 'install', '-y', '--no-install-recommends', ...missing], { timeoutMs: 300_000, env })
  for (const [bin, pkg] of TOOLS) if (!(await has(bin))) throw new Error(`netlab: "${bin}" still not on PATH after apt-get install ${pkg} (PATH=${process.env.PATH})`)
}

let availability: Promise<{ ok: true } | { ok: false; why: string }> | undefined

/**
 * Whether the lab can run here: Linux, root, the tools (installed when missing), and a namespace in
 * which iptables NAT rules can be added. Tests skip with `why` otherwise. Cached per process.
 */
export function netlabAvailable(): Promise<{ ok: true } | { ok: false; why: string }> {
  availability ??= (async () => {
    if (process.platform !== 'linux') return { ok: false as const, why: `NAT lab needs Linux (this is ${process.platform})` }
    if (process.getuid?.() !== 0) return { ok: false as const, why: 'NAT lab needs root (network namespaces, iptables)' }
    const probe = `weftprobe${process.pid}`
    try {
      await ensureTools()
      await run(['ip', 'netns', 'add', probe])
      try {
        await run(['ip', 'netns', 'exec', probe, 'iptables', '-t', 'nat', '-A', 'POSTROUTING', '-o', 'lo', '-j', 'MASQUERADE'])
      } finally {
        await run(['ip', 'netns', 'del', probe])
      }
      return { ok: true as const }
    } catch (err) {
      return { ok: false as const, why: `network namespaces or iptables NAT unusable: ${(err as Error).message}` }
    }
  })()
  return availability
}

function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

async function markerOwner(prefix: string): Promise<number | undefined> {
  try {
    return Number((await readFile(`${MARKER_DIR}/${prefix}.pid`, 'utf8')).trim())
  } catch {
    return undefined
  }
}

async function listNamespaces(): Promise<string[]> {
  const out = await run(['ip', 'netns', 'list'])
  return out.split('\n').map((l) => l.trim().split(/\s+/)[0]).filter((n): n is string => !!n)
}

async function deleteNamespace(ns: string): Promise<void> {
  const pids = await run(['ip', 'netns', 'pids', ns]).catch(() => '')
  for (const p of pids.split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(p), 'SIGKILL')
    } catch {
      /* already gone */
    }
  }
  await run(['ip', 'netns', 'del', ns])
}

/** Deletes namespaces of labs whose owner is gone (marker missing or its pid dead). */
export async function cleanupStaleLabs(): Promise<string[]> {
  const removed: string[] = []
  const groups = new Map<string, string[]>()
  for (const ns of await listNamespaces()) {
    const m = NS_RE.exec(ns)
    if (m) groups.set(m[1], [...(groups.get(m[1]) ?? []), ns])
  }
  for (const [prefix, names] of groups) {
    const owner = await markerOwner(prefix)
    if (owner !== undefined && pidAlive(owner)) continue
    for (const ns of names) {
      try {
        await deleteNamespace(ns)
      } catch (err) {
        if ((await listNamespaces()).includes(ns)) throw err // else another lab's cleanup got it first
      }
      removed.push(ns)
    }
    await unlink(`${MARKER_DIR}/${prefix}.pid`).catch(() => {})
  }
  return removed
}

function letters(i: number): string {
  const a = 'abcdefghijklmnopqrstuvwxyz'
  return i < 26 ? a[i] : a[Math.floor(i / 26) - 1] + a[i % 26]
}

async function claimPrefix(): Promise<string> {
  await mkdir(MARKER_DIR, { recursive: true })
  const base = `wl${process.pid % 1000}`
  for (let i = 0; i < 26 * 27; i++) {
    const prefix = base + letters(i)
    const file = `${MARKER_DIR}/${prefix}.pid`
    try {
      await writeFile(file, `${process.pid}\n`, { flag: 'wx' })
      return prefix
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const owner = await markerOwner(prefix)
      if (owner === undefined || pidAlive(owner)) continue // in use (by a live lab, maybe this process)
      await unlink(file).catch(() => {}) // stale marker: a crashed lab
      i--
    }
  }
  throw new Error(`netlab: no free namespace prefix under ${base}`)
}

/** A UDP agent (udp-probe `agent`) running in a lab host: send datagrams, watch what arrives. */
export class UdpAgent {
  /** Every JSON line the agent printed, in order. */
  readonly events: Array<Record<string, unknown>> = []
  private waiters: Array<{ pred: (e: Record<string, unknown>) => boolean; resolve: (e: Record<string, unknown>) => void }> = []
  private seq = 0
  private stderr = ''

  constructor(
    readonly host: LabHost,
    readonly port: number,
    private readonly child: ChildProcess,
  ) {
    let buf = ''
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buf += chunk
      let nl: number
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        if (!line.trim()) continue
        let e: Record<string, unknown>
        try {
          e = JSON.parse(line) as Record<string, unknown>
        } catch {
          e = { ev: 'junk', line }
        }
        this.events.push(e)
        this.waiters = this.waiters.filter((w) => (w.pred(e) ? (w.resolve(e), false) : true))
      }
    })
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-4000)
    })
  }

  /** "ip:port" of this agent's socket on its host's own address. */
  get address(): string {
    return `${this.host.address}:${this.port}`
  }

  /** Resolves with the first event (past or future) matching pred; rejects after timeoutMs. */
  waitFor(pred: (e: Record<string, unknown>) => boolean, timeoutMs = 3000, what = 'event'): Promise<Record<string, unknown>> {
    const seen = this.events.find(pred)
    if (seen) return Promise.resolve(seen)
    return new Promise((resolve, reject) => {
      const waiter = { pred, resolve: (e: Record<string, unknown>) => (clearTimeout(timer), resolve(e)) }
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter)
        reject(new Error(`netlab: ${this.host.name}:${this.port} got no ${what} within ${timeoutMs} ms; stderr: ${this.stderr.trim() || '(none)'}`))
      }, timeoutMs)
      this.waiters.push(waiter)
    })
  }

  /** Sends one datagram; resolves when it has left (send callback). `ttl` applies to it alone. */
  async send(to: string, data: string, opts: { ttl?: number } = {}): Promise<void> {
    const id = ++this.seq
    this.child.stdin!.write(JSON.stringify({ op: 'send', id, to, data, ...(opts.ttl ? { ttl: opts.ttl } : {}) }) + '\n')
    const e = await this.waitFor((x) => x.ev === 'sent' && x.id === id, 3000, `send confirmation #${id}`)
    if (e.error) throw new Error(`netlab: ${this.host.name} failed to send to ${to}: ${String(e.error)}`)
  }

  /** Datagrams received so far. */
  received(): Array<{ from: string; data: string }> {
    return this.events.filter((e) => e.ev === 'recv').map((e) => ({ from: String(e.from), data: String(e.data) }))
  }

  /** Waits for a datagram whose payload is `data`; resolves with its source "ip:port". */
  async waitForData(data: string, timeoutMs = 3000): Promise<string> {
    const e = await this.waitFor((x) => x.ev === 'recv' && x.data === data, timeoutMs, `datagram "${data}"`)
    return String(e.from)
  }

  /** Asks a reflector (an `echo` agent at ip:port) which "ip:port" it sees this socket as. */
  async whoami(reflector: string, timeoutMs = 3000): Promise<string> {
    const tag = `whoami-${this.seq + 1}-${reflector}`
    const match = (x: Record<string, unknown>): boolean => x.ev === 'recv' && x.from === reflector && String(x.data).includes(`"data":${JSON.stringify(tag)}`)
    const deadline = Date.now() + timeoutMs
    for (;;) {
      await this.send(reflector, tag)
      try {
        const e = await this.waitFor(match, Math.min(500, Math.max(1, deadline - Date.now())), `reply from reflector ${reflector}`)
        return String((JSON.parse(String(e.data)) as { seen: string }).seen)
      } catch (err) {
        if (Date.now() >= deadline) throw err
      }
    }
  }

  close(): void {
    this.child.stdin?.end()
  }
}

interface Plan {
  open: number
  nat: number
  fw: number
  link: number
  lanHosts: Map<string, { ns: string; bridge: string; net: string; next: number }>
}

export class NatLab {
  private readonly hosts = new Map<string, LabHost>()
  private readonly namespaces: string[] = []
  private readonly children = new Set<ChildProcess>()
  private closed = false
  private readonly onExit = (): void => this.closeSync()

  private constructor(readonly prefix: string) {
    process.once('exit', this.onExit)
  }

  /**
   * Builds a lab: the internet router plus one or more namespaces per host. Cleans up the
   * namespaces of crashed labs first. On failure everything created so far is deleted.
   */
  static async create(spec: { hosts: HostSpec[] }): Promise<NatLab> {
    await ensureTools()
    await cleanupStaleLabs()
    const lab = new NatLab(await claimPrefix())
    try {
      await lab.build(spec.hosts)
      return lab
    } catch (err) {
      await lab.close().catch(() => {})
      throw err
    }
  }

  host(name: string): LabHost {
    const h = this.hosts.get(name)
    if (!h) throw new Error(`netlab: no host "${name}" (have ${[...this.hosts.keys()].join(', ')})`)
    return h
  }

  /** Runs a command in a host's namespace; resolves with stdout; bounded by a timeout. */
  exec(host: string, argv: string[], opts: { timeoutMs?: number } = {}): Promise<string> {
    return run(['ip', 'netns', 'exec', this.host(host).ns, ...argv], opts)
  }

  /** Runs a command in the namespace of the NAT or firewall router serving a host (the innermost
   * one, or the outermost with `outer`, for double NAT). */
  routerExec(host: string, argv: string[], opts: { timeoutMs?: number; outer?: boolean } = {}): Promise<string> {
    const h = this.host(host)
    const ns = opts.outer ? h.routers[h.routers.length - 1] : h.routers[0]
    if (!ns) throw new Error(`netlab: host "${host}" is not behind a NAT or firewall`)
    return run(['ip', 'netns', 'exec', ns, ...argv], opts)
  }

  /** Spawns a long-running process in a host's namespace; it is killed on close(). */
  spawn(host: string, argv: string[]): ChildProcess {
    if (this.closed) throw new Error('netlab: lab is closed')
    const child = spawnChild('ip', ['netns', 'exec', this.host(host).ns, ...argv], { stdio: ['pipe', 'pipe', 'pipe'] })
    this.children.add(child)
    child.on('exit', () => this.children.delete(child))
    child.on('error', () => this.children.delete(child))
    return child
  }

  /** Starts a udp-probe agent bound to `port` in a host (an `echo` agent is a reflector). */
  async agent(host: string, port: number, opts: { echo?: boolean } = {}): Promise<UdpAgent> {
    const child = this.spawn(host, [process.execPath, PROBE_SCRIPT, 'agent', String(port), ...(opts.echo ? ['echo'] : [])])
    const a = new UdpAgent(this.host(host), port, child)
    const bound = await a.waitFor((e) => e.ev === 'bound' || e.ev === 'error', 5000, 'bind')
    if (bound.ev === 'error') throw new Error(`netlab: agent in ${host} failed to bind ${port}: ${String(bound.message)}`)
    return a
  }

  /** Runs udp-probe with args in a host to completion; resolves with the JSON lines it printed. */
  async probe(host: string, args: string[], opts: { timeoutMs?: number } = {}): Promise<Array<Record<string, unknown>>> {
    const out = await this.exec(host, [process.execPath, PROBE_SCRIPT, ...args], { timeoutMs: opts.timeoutMs ?? 15_000 })
    return out.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Record<string, unknown>)
  }

  /** `conntrack -L -p udp` in each NAT/firewall namespace serving a host (innermost first), for debugging. */
  async conntrack(host: string): Promise<string> {
    const parts: string[] = []
    for (const ns of this.host(host).routers) parts.push(`# ${ns}\n${await run(['ip', 'netns', 'exec', ns, 'conntrack', '-L', '-p', 'udp'])}`)
    return parts.join('\n')
  }

  /** Kills spawned processes and deletes every namespace of the lab. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    process.removeListener('exit', this.onExit)
    await Promise.all(
      [...this.children].map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve()
            const t = setTimeout(resolve, 2000)
            c.once('exit', () => (clearTimeout(t), resolve()))
            c.kill('SIGKILL')
          }),
      ),
    )
    const errors: string[] = []
    for (const ns of [...this.namespaces].reverse()) {
      try {
        await deleteNamespace(ns)
      } catch (err) {
        errors.push((err as Error).message)
      }
    }
    this.namespaces.length = 0
    await unlink(`${MARKER_DIR}/${this.prefix}.pid`).catch(() => {})
    if (errors.length) throw new Error(`netlab: teardown incomplete:\n${errors.join('\n')}`)
  }

  /** Last resort when the process exits without close(): synchronous best effort. */
  private closeSync(): void {
    for (const c of this.children) c.kill('SIGKILL')
    for (const ns of this.namespaces) {
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' })
      } catch {
        /* the next lab's cleanupStaleLabs() gets it */
      }
    }
  }

  // ---- building ----

  private async addNs(role: string): Promise<string> {
    const ns = `${this.prefix}-${role}`
    await run(['ip', 'netns', 'add', ns])
    this.namespaces.push(ns)
    await this.ip(ns, 'link', 'set', 'lo', 'up')
    return ns
  }

  private ip(ns: string, ...args: string[]): Promise<string> {
    return run(['ip', '-n', ns, ...args])
  }

  private in(ns: string, ...argv: string[]): Promise<string> {
    return run(['ip', 'netns', 'exec', ns, ...argv])
  }

  private async forwarding(ns: string): Promise<void> {
    await this.in(ns, 'sh', '-c', 'echo 1 > /proc/sys/net/ipv4/ip_forward')
  }

  /** A veth pair with one end in each namespace, addressed and up. */
  private async veth(nsA: string, ifA: string, cidrA: string | undefined, nsB: string, ifB: string, cidrB: string | undefined): Promise<void> {
    await run(['ip', 'link', 'add', 'name', ifA, 'netns', nsA, 'type', 'veth', 'peer', 'name', ifB, 'netns', nsB])
    if (cidrA) await this.ip(nsA, 'addr', 'add', cidrA, 'dev', ifA)
    if (cidrB) await this.ip(nsB, 'addr', 'add', cidrB, 'dev', ifB)
    await this.ip(nsA, 'link', 'set', ifA, 'up')
    await this.ip(nsB, 'link', 'set', ifB, 'up')
  }

  /** Links a namespace to the internet router as `pub`; returns its public address. */
  private async attachPublic(ns: string, plan: Plan, kind: 'host' | 'router'): Promise<string> {
    const i = plan.link++
    let base: string
    if (kind === 'host') {
      if (plan.open >= 32) throw new Error('netlab: at most 32 open hosts')
      base = `203.0.113.${4 * plan.open++}`
    } else {
      if (plan.nat >= 64) throw new Error('netlab: at most 64 NATs and firewalls')
      base = `198.51.100.${4 * plan.nat++}`
    }
    const net = base.slice(0, base.lastIndexOf('.') + 1)
    const last = Number(base.slice(base.lastIndexOf('.') + 1))
    const router = `${net}${last + 1}`
    const addr = `${net}${last + 2}`
    const inet = `${this.prefix}-inet`
    await this.veth(inet, `e${i}`, `${router}/30`, ns, kind === 'host' ? 'eth0' : 'pub', `${addr}/30`)
    await this.ip(ns, 'route', 'add', 'default', 'via', router)
    return addr
  }

  /** A NAT namespace with a LAN bridge; `up` links it to the internet or to an outer NAT's LAN. */
  private async addNat(role: string, lanNet: string, plan: Plan, kind: 'cone' | 'symmetric', outer?: { hostKey: string }): Promise<{ ns: string; pub: string }> {
    const ns = await this.addNs(role)
    await this.forwarding(ns)
    let pub: string
    if (outer) pub = await this.joinLan(outer.hostKey, ns, 'pub')
    else pub = await this.attachPublic(ns, plan, 'router')
    await this.ip(ns, 'link', 'add', 'lan', 'type', 'bridge')
    await this.ip(ns, 'addr', 'add', `${lanNet}.1/24`, 'dev', 'lan')
    await this.ip(ns, 'link', 'set', 'lan', 'up')
    await this.in(ns, 'iptables', '-t', 'nat', '-A', 'POSTROUTING', '-o', 'pub', '-j', 'MASQUERADE', ...(kind === 'symmetric' ? ['--random-fully'] : []))
    plan.lanHosts.set(role, { ns, bridge: 'lan', net: lanNet, next: 2 })
    return { ns, pub }
  }

  /** Connects namespace `ns` (interface `ifName`) to the LAN of NAT `lanKey`; returns its address. */
  private async joinLan(lanKey: string, ns: string, ifName: string): Promise<string> {
    const lan = this.plan.lanHosts.get(lanKey)
    if (!lan) throw new Error(`netlab: no LAN "${lanKey}"`)
    const n = lan.next++
    if (n > 250) throw new Error('netlab: LAN full')
    const addr = `${lan.net}.${n}`
    await this.veth(ns, ifName, `${addr}/24`, lan.ns, `h${n}`, undefined)
    await this.ip(lan.ns, 'link', 'set', `h${n}`, 'master', lan.bridge)
    await this.ip(ns, 'route', 'add', 'default', 'via', `${lan.net}.1`)
    return addr
  }

  private plan: Plan = { open: 0, nat: 0, fw: 0, link: 0, lanHosts: new Map() }

  private async build(specs: HostSpec[]): Promise<void> {
    const names = new Set<string>()
    for (const s of specs) {
      if (!/^[a-z][a-z0-9]{0,11}$/.test(s.name) || s.name === 'inet') throw new Error(`netlab: bad host name "${s.name}" (want [a-z][a-z0-9]{0,11}, not "inet")`)
      if (names.has(s.name)) throw new Error(`netlab: duplicate host name "${s.name}"`)
      names.add(s.name)
    }
    const inet = await this.addNs('inet')
    await this.forwarding(inet)
    const plan = this.plan
    // Hosts that share another host's NAT come after the hosts they join.
    const ordered = [...specs.filter((s) => !s.behind), ...specs.filter((s) => s.behind)]
    for (const s of ordered) {
      if (s.behind) {
        const other = this.hosts.get(s.behind)
        if (!other) throw new Error(`netlab: host "${s.name}" is behind unknown host "${s.behind}" (or one that is itself behind another)`)
        if (!['cone', 'symmetric', 'double'].includes(other.natKind)) throw new Error(`netlab: "${s.behind}" is ${other.natKind}; only NATed hosts can share their NAT`)
        if (s.nat !== other.natKind) throw new Error(`netlab: host "${s.name}" is behind "${s.behind}" so its nat must be "${other.natKind}"`)
        const ns = await this.addNs(s.name)
        const address = await this.joinLan(`n-${s.behind}`, ns, 'eth0')
        this.hosts.set(s.name, { name: s.name, ns, address, natKind: other.natKind, publicAddress: other.publicAddress, routers: [...other.routers] })
        continue
      }
      switch (s.nat) {
        case 'open': {
          const ns = await this.addNs(s.name)
          const address = await this.attachPublic(ns, plan, 'host')
          this.hosts.set(s.name, { name: s.name, ns, address, natKind: 'open', publicAddress: address, routers: [] })
          break
        }
        case 'cone':
        case 'symmetric': {
          const idx = plan.nat + 1
          const nat = await this.addNat(`n-${s.name}`, `10.${idx}.0`, plan, s.nat)
          const ns = await this.addNs(s.name)
          const address = await this.joinLan(`n-${s.name}`, ns, 'eth0')
          this.hosts.set(s.name, { name: s.name, ns, address, natKind: s.nat, publicAddress: nat.pub, routers: [nat.ns] })
          break
        }
        case 'double': {
          const idx = plan.nat + 1
          const outer = await this.addNat(`o-${s.name}`, `172.16.${idx}`, plan, 'cone')
          const inner = await this.addNat(`n-${s.name}`, `10.${idx}.0`, plan, 'cone', { hostKey: `o-${s.name}` })
          const ns = await this.addNs(s.name)
          const address = await this.joinLan(`n-${s.name}`, ns, 'eth0')
          this.hosts.set(s.name, { name: s.name, ns, address, natKind: 'double', publicAddress: outer.pub, routers: [inner.ns, outer.ns] })
          break
        }
        case 'firewall': {
          if (plan.fw >= 32) throw new Error('netlab: at most 32 firewalled hosts')
          const fw = await this.addNs(`f-${s.name}`)
          await this.forwarding(fw)
          const fwPub = await this.attachPublic(fw, plan, 'router')
          const base = 128 + 4 * plan.fw++
          const ns = await this.addNs(s.name)
          const address = `203.0.113.${base + 2}`
          await this.veth(fw, 'lan', `203.0.113.${base + 1}/30`, ns, 'eth0', `${address}/30`)
          await this.ip(ns, 'route', 'add', 'default', 'via', `203.0.113.${base + 1}`)
          await this.ip(inet, 'route', 'add', `203.0.113.${base}/30`, 'via', fwPub)
          await this.in(fw, 'iptables', '-A', 'FORWARD', '-i', 'pub', '-p', 'udp', '-m', 'conntrack', '--ctstate', 'NEW', '-j', 'DROP')
          this.hosts.set(s.name, { name: s.name, ns, address, natKind: 'firewall', publicAddress: address, routers: [fw] })
          break
        }
        default:
          throw new Error(`netlab: unknown NAT kind "${String(s.nat)}"`)
      }
    }
  }
}
