// udp-probe: a tiny UDP tool that the NAT lab runs inside network namespaces
// (`ip netns exec <ns> node dist/test/netlab/udp-probe.js <mode> ...`).
// It writes one JSON object per line on stdout; the lab parses them.
//
// Modes:
//   agent <port> [echo]
//       Binds 0.0.0.0:<port> (0 = any) and prints {"ev":"bound","port":p}. Every datagram received
//       is printed as {"ev":"recv","from":"ip:port","data":"..."}. With `echo` it also replies to each
//       datagram with {"seen":"ip:port","data":"..."}: the source address it saw (a reflector).
//       Commands arrive as JSON lines on stdin:
//         {"op":"send","id":n,"to":"ip:port","data":"...","ttl":2?}  ->  {"ev":"sent","id":n}
//       The TTL, when given, is set just for that datagram and restored only in send's callback:
//       setTTL() applies when the datagram actually leaves, which is after send() returns.
//       The agent exits when stdin closes (so it never outlives the lab process).
//   rendezvous <port>
//       A rendezvous server for `punch`: {"t":"reg","id","peer"} registers the sender's public
//       address; once both of a pair have registered, each is told {"t":"peer","id","addr"}.
//       {"t":"opened","id","to"} is relayed to `to` as {"t":"peer-opened","id"}. Logs to stdout.
//   punch <localPort> <rendezvous ip:port> <myId> <peerId> [--naive] [--delay ms] [--ttl n] [--timeout ms]
//       One side of a hole punch. Default method (see the lab notes): learn the peer's public
//       address from the rendezvous, send one datagram to it with a low TTL (it opens the local
//       NAT mapping and dies at the first router), tell the peer through the rendezvous, and only
//       on hearing that the peer has opened too send normal datagrams. `--naive` skips the low-TTL
//       step and the confirmation: it sends normal datagrams as soon as it knows the peer's address
//       (after `--delay` ms). Ends with {"ev":"result","ok":bool,...} and exit code 0 either way.
import dgram from 'node:dgram'
import readline from 'node:readline'

const DEFAULT_TTL = 64

function out(o: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(o) + '\n')
}

function addrOf(r: dgram.RemoteInfo): string {
  return `${r.address}:${r.port}`
}

function splitAddr(s: string): [string, number] {
  const i = s.lastIndexOf(':')
  const port = Number(s.slice(i + 1))
  if (i <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`bad address "${s}" (want ip:port)`)
  return [s.slice(0, i), port]
}

function parseJson(buf: Buffer | string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(buf.toString())
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

function agent(port: number, echo: boolean): void {
  const sock = dgram.createSocket('udp4')
  sock.on('error', (err) => {
    out({ ev: 'error', message: err.message })
    process.exit(1)
  })
  sock.on('message', (msg, r) => {
    const data = msg.toString()
    out({ ev: 'recv', from: addrOf(r), data })
    if (echo) sock.send(JSON.stringify({ seen: addrOf(r), data }), r.port, r.address)
  })
  sock.bind(port, () => {
    out({ ev: 'bound', port: sock.address().port })
    const rl = readline.createInterface({ input: process.stdin })
    rl.on('line', (line) => {
      const cmd = parseJson(line)
      if (cmd?.op !== 'send') return out({ ev: 'error', message: `bad command: ${line}` })
      const [host, p] = splitAddr(String(cmd.to))
      const ttl = typeof cmd.ttl === 'number' ? cmd.ttl : undefined
      if (ttl !== undefined) sock.setTTL(ttl)
      sock.send(String(cmd.data), p, host, (err) => {
        if (ttl !== undefined) sock.setTTL(DEFAULT_TTL)
        out({ ev: 'sent', id: cmd.id, ...(err ? { error: err.message } : {}) })
      })
    })
    rl.on('close', () => process.exit(0))
  })
}

function rendezvous(port: number): void {
  const sock = dgram.createSocket('udp4')
  const peers = new Map<string, { addr: string; peer: string }>()
  const send = (to: string, o: Record<string, unknown>): void => {
    const [h, p] = splitAddr(to)
    sock.send(JSON.stringify(o), p, h)
  }
  sock.on('message', (msg, r) => {
    const m = parseJson(msg)
    const from = addrOf(r)
    if (m?.t === 'reg') {
      const id = String(m.id)
      const peer = String(m.peer)
      if (!peers.has(id)) out({ ev: 'reg', id, from })
      peers.set(id, { addr: from, peer })
      const p = peers.get(peer)
      if (p && p.peer === id) {
        send(from, { t: 'peer', id: peer, addr: p.addr })
        send(p.addr, { t: 'peer', id, addr: from })
      }
    } else if (m?.t === 'opened') {
      const p = peers.get(String(m.to))
      out({ ev: 'opened', id: m.id, to: m.to, relayed: !!p })
      if (p) send(p.addr, { t: 'peer-opened', id: m.id })
    }
  })
  sock.bind(port, () => out({ ev: 'listening', port: sock.address().port }))
  process.stdin.resume()
  process.stdin.on('end', () => process.exit(0))
}

function punch(argv: string[]): void {
  const [portArg, rvArg, myId, peerId] = argv
  if (!portArg || !rvArg || !myId || !peerId) throw new Error('usage: punch <localPort> <rendezvous ip:port> <myId> <peerId> [--naive] [--delay ms] [--ttl n] [--timeout ms]')
  const opt = (name: string, dflt: number): number => {
    const i = argv.indexOf(name)
    return i >= 0 ? Number(argv[i + 1]) : dflt
  }
  const naive = argv.includes('--naive')
  const delayMs = opt('--delay', 0)
  const lowTtl = opt('--ttl', 2)
  const timeoutMs = opt('--timeout', 4000)
  const [rvHost, rvPort] = splitAddr(rvArg)
  const rv = `${rvHost}:${rvPort}`
  const sock = dgram.createSocket('udp4')
  const t0 = Date.now()
  let peerAddr: string | undefined
  let peerOpened = false
  let helloStartedAt = 0
  let helloSent = 0
  let firstRecvMs: number | undefined
  let peerGotOurs = false
  let finished = false
  const recvFrom = new Set<string>()
  const timers: NodeJS.Timeout[] = []
  const every = (ms: number, fn: () => void): void => {
    fn()
    timers.push(setInterval(fn, ms))
  }
  const toRv = (o: Record<string, unknown>): void => {
    sock.send(JSON.stringify(o), rvPort, rvHost)
  }
  const finish = (ok: boolean): void => {
    if (finished) return
    finished = true
    for (const t of timers) clearInterval(t)
    out({ ev: 'result', id: myId, ok, naive, peer: peerAddr, recvFrom: [...recvFrom], firstRecvMs, helloSent, elapsedMs: Date.now() - t0 })
    // Linger briefly so the peer hears a few more hellos that say we got its datagrams.
    setTimeout(() => {
      sock.close()
      process.exit(0)
    }, 150)
  }
  const sayHello = (): void => {
    if (!peerAddr) return
    const [h, p] = splitAddr(peerAddr)
    helloSent++
    sock.send(JSON.stringify({ t: 'hello', id: myId, n: helloSent, got: recvFrom.size > 0 }), p, h)
  }
  const startHello = (): void => {
    if (helloStartedAt) return
    helloStartedAt = Date.now()
    every(50, sayHello)
  }
  const open = (): void => {
    if (!peerAddr) return
    if (naive) return startHello()
    const [h, p] = splitAddr(peerAddr)
    sock.setTTL(lowTtl)
    sock.send(JSON.stringify({ t: 'open', id: myId }), p, h, () => {
      sock.setTTL(DEFAULT_TTL) // only now: the low-TTL datagram has left
      out({ ev: 'opened', ttl: lowTtl, atMs: Date.now() - t0 })
      every(250, () => {
        if (recvFrom.size === 0) toRv({ t: 'opened', id: myId, to: peerId })
      })
    })
  }
  sock.on('message', (msg, r) => {
    const from = addrOf(r)
    const m = parseJson(msg)
    if (!m) return
    if (from === rv) {
      if (m.t === 'peer' && !peerAddr) {
        peerAddr = String(m.addr)
        out({ ev: 'peer', addr: peerAddr, atMs: Date.now() - t0 })
        setTimeout(open, delayMs)
      } else if (m.t === 'peer-opened' && !peerOpened) {
        peerOpened = true
        out({ ev: 'peer-opened', atMs: Date.now() - t0 })
        startHello()
      }
      return
    }
    if (m.t === 'hello' && m.id === peerId) {
      if (recvFrom.size === 0) {
        firstRecvMs = Date.now() - (helloStartedAt || t0)
        out({ ev: 'recv', from, firstRecvMs })
      }
      recvFrom.add(from)
      if (m.got === true) peerGotOurs = true
      if (peerGotOurs) {
        sayHello()
        finish(true)
      }
    }
  })
  sock.on('error', (err) => {
    out({ ev: 'error', message: err.message })
    finish(false)
  })
  sock.bind(Number(portArg), () => {
    out({ ev: 'bound', port: sock.address().port })
    every(200, () => {
      if (!peerAddr) toRv({ t: 'reg', id: myId, peer: peerId })
    })
    setTimeout(() => finish(false), timeoutMs)
  })
}

const [mode, ...rest] = process.argv.slice(2)
if (mode === 'agent') agent(Number(rest[0] ?? 0), rest[1] === 'echo')
else if (mode === 'rendezvous') rendezvous(Number(rest[0] ?? 0))
else if (mode === 'punch') punch(rest)
else {
  process.stderr.write('usage: udp-probe agent <port> [echo] | rendezvous <port> | punch <localPort> <rendezvous> <myId> <peerId> [--naive] [--delay ms] [--ttl n] [--timeout ms]\n')
  process.exit(2)
}
