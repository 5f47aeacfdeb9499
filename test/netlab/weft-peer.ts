// weft-peer: one Weft node inside a NAT lab namespace, driven by JSON lines.
//   node dist/test/netlab/weft-peer.js '<json NodeOptions>'
// Starts a Node with those options (host: the lab address; nat: true behind NATs), prints
//   {"ev":"started","id","address","nat":{...}}   (or {"ev":"error","message"} and exits 1)
// then answers each command line {"id":n,"op":...} with {"id":n,"ok":true,"result":...} or
// {"id":n,"ok":false,"code","message"}. Ops: status, connect {address}, ping {address},
// lookup {target?}, put {value}, get {key}, stop. Exits when stdin closes (or after stop).
import readline from 'node:readline'
import { Node, lookupReport, type NodeOptions } from '../../src/node/node.js'

const out = (o: unknown): void => { process.stdout.write(JSON.stringify(o) + '\n') }
const options = JSON.parse(process.argv[2] ?? '{}') as NodeOptions
const node = new Node(options)

async function run(cmd: Record<string, unknown>): Promise<unknown> {
  const s = (k: string): string => String(cmd[k])
  switch (cmd.op) {
    case 'status': return node.status()
    case 'peers': return node.peers().map((p) => ({ ...p, id: typeof p.id === 'string' ? p.id : Buffer.from(p.id).toString('hex') }))
    case 'connect': return node.connect(s('address')).then((r) => ({ ...r, id: Buffer.from(r.id).toString('hex') }))
    case 'ping': return node.ping(s('address'))
    case 'lookup': {
      const r = lookupReport(await node.lookup(typeof cmd.target === 'string' ? cmd.target : node.idHex))
      return { closest: r.closest, hops: r.hops, failed: r.failed, durationMs: r.durationMs }
    }
    case 'put': return node.dht.put(Buffer.from(s('value')))
    case 'get': return Buffer.from(await node.dht.get(s('key'))).toString()
    case 'stop': await node.stop({ leave: false }); setImmediate(() => process.exit(0)); return null
    default: throw new Error(`unknown op ${String(cmd.op)}`)
  }
}

try {
  await node.start()
} catch (err) {
  out({ ev: 'error', message: (err as Error).message })
  process.exit(1)
}
out({ ev: 'started', id: node.idHex, address: node.address, nat: node.nat })
const rl = readline.createInterface({ input: process.stdin })
rl.on('line', (line) => {
  if (!line.trim()) return
  let cmd: Record<string, unknown>
  try { cmd = JSON.parse(line) as Record<string, unknown> } catch { return out({ ok: false, code: 'ERR_BAD_INPUT', message: `not JSON: ${line}` }) }
  run(cmd).then(
    (result) => out({ id: cmd.id, ok: true, result }),
    (err: { code?: string; message?: string }) => out({ id: cmd.id, ok: false, code: err.code ?? 'ERR', message: err.message }),
  )
})
rl.on('close', () => { void node.stop({ leave: false }).finally(() => process.exit(0)) })
