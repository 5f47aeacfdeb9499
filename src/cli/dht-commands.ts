// `weft put`, `get`, `announce`, `providers`, `keygen`, and Tapestry's `publish` and `locate`: from the command line, through
// a running node's API. Mutable records are signed here, so the key file never leaves this process.
import { createHash } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import type { Command } from 'commander'
import { callApi, type ApiTarget } from '../api/server.js'
import { WeftError } from '../errors.js'
import { generateIdentity, loadIdentity, saveIdentity } from '../identity/keys.js'
import { idToHex } from '../identity/node-id.js'
import { encodeRecord, signMutable } from '../services/dht/records.js'
import { table } from './format.js'
import { publishToTopic } from './pubsub-commands.js'

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64')
const json = (v: unknown): void => console.log(JSON.stringify(v, null, 2))

/** A key as 64 hex digits, or the SHA-256 of a topic name. */
export function topicKey(topicOrKey: string): string {
  return /^[0-9a-fA-F]{64}$/.test(topicOrKey) ? topicOrKey.toLowerCase() : createHash('sha256').update(topicOrKey).digest('hex')
}

function readValue(value: string | undefined, file: string | undefined): Uint8Array {
  if (file !== undefined) {
    try {
      return new Uint8Array(readFileSync(file))
    } catch (err) {
      throw new WeftError('ERR_BAD_ARGUMENT', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
    }
  }
  if (value === undefined) throw new WeftError('ERR_BAD_ARGUMENT', 'give a value, or --file FILE')
  return new Uint8Array(Buffer.from(value))
}

const seqArg = (name: string) => (v: string): number => {
  const n = Number(v)
  if (!Number.isSafeInteger(n) || n < 0) throw new WeftError('ERR_BAD_ARGUMENT', `${name} must be a whole number >= 0`)
  return n
}

/** `withApi` adds --api and --api-token to a command; `target` reads them back. */
export function addDhtCommands(program: Command, withApi: (cmd: Command) => Command, target: (o: { api: string; apiToken?: string }) => ApiTarget): void {
  withApi(program.command('put'))
    .description('store a value in the DHT and print its key (immutable: the key is its SHA-256)')
    .argument('[value]', 'the value (or --file)')
    .option('--file <file>', 'read the value from a file')
    .option('--mutable', 'a mutable record under --key-file\'s public key (and --salt)')
    .option('--key-file <file>', 'Ed25519 key (PEM) that signs a mutable record; make one with `weft keygen`')
    .option('--salt <text>', 'lets one key hold several mutable records')
    .option('--seq <n>', 'sequence number (default: one past the newest found)', seqArg('--seq'))
    .option('--cas <n>', 'store only where the newest held sequence number is exactly this', seqArg('--cas'))
    .option('--json', 'print JSON')
    .action(async (value: string | undefined, o) => {
      const bytes = readValue(value, o.file)
      if (!o.mutable) {
        const r = await callApi<{ key: string; stored: number }>(target(o), '/v1/dht/put', { method: 'POST', body: { value: b64(bytes) } })
        return o.json ? json(r) : console.log(`${r.key}\t(stored on ${r.stored} nodes)`)
      }
      if (!o.keyFile) throw new WeftError('ERR_BAD_ARGUMENT', '--mutable needs --key-file FILE (make one with `weft keygen FILE`)')
      const identity = loadIdentity(o.keyFile)
      const salt = o.salt !== undefined ? new Uint8Array(Buffer.from(o.salt)) : undefined
      let seq: number = o.seq
      if (seq === undefined) {
        const q = salt ? `?salt=${encodeURIComponent(b64(salt))}` : ''
        const current = await callApi<{ seq: number }>(target(o), `/v1/dht/mutable/${idToHex(identity.publicKey)}${q}`).catch((err) => {
          if (err instanceof WeftError && err.code === 'ERR_NOT_FOUND') return null
          throw err
        })
        seq = current ? current.seq + 1 : 0
      }
      const record = encodeRecord(signMutable(identity, bytes, seq, salt))
      const r = await callApi<{ key: string; stored: number }>(target(o), '/v1/dht/record', { method: 'POST', body: { record: b64(record), cas: o.cas } })
      const out = { ...r, publicKey: idToHex(identity.publicKey), seq }
      return o.json ? json(out) : console.log(`${out.key}\t(public key ${out.publicKey}, seq ${seq}, stored on ${r.stored} nodes)`)
    })

  withApi(program.command('get'))
    .description('find a value by key (or, with --mutable, the newest record under a public key) and print it')
    .argument('<key>', 'the key (64 hex digits), or with --mutable the public key')
    .option('--mutable', 'get the newest mutable record under this public key')
    .option('--salt <text>', 'the salt the mutable record was published with')
    .option('--out <file>', 'write the value to a file instead of standard output')
    .option('--json', 'print JSON (the value in base64)')
    .action(async (key: string, o) => {
      const q = o.salt !== undefined ? `?salt=${encodeURIComponent(b64(Buffer.from(o.salt)))}` : ''
      const r = o.mutable
        ? await callApi<{ key: string; value: string; seq: number }>(target(o), `/v1/dht/mutable/${key}${q}`)
        : await callApi<{ key: string; value: string }>(target(o), `/v1/dht/get/${key}`)
      if (o.json) return json(r)
      const value = Buffer.from(r.value, 'base64')
      if (o.out) {
        writeFileSync(o.out, value)
        console.log(`wrote ${value.length} bytes to ${o.out}${'seq' in r ? ` (seq ${r.seq})` : ''}`)
      } else {
        process.stdout.write(value)
        if (process.stdout.isTTY) process.stdout.write('\n')
      }
    })

  withApi(program.command('announce'))
    .description('tell the DHT that the node provides a key (a topic name is hashed to one)')
    .argument('<topic-or-key>', 'a topic name, or a key of 64 hex digits')
    .option('--json', 'print JSON')
    .action(async (topic: string, o) => {
      const r = await callApi<{ key: string; stored: number }>(target(o), '/v1/dht/announce', { method: 'POST', body: { key: topicKey(topic) } })
      return o.json ? json(r) : console.log(`${r.key}\t(announced to ${r.stored} nodes)`)
    })

  withApi(program.command('providers'))
    .description('list the live providers of a key (or topic name), with their addresses')
    .argument('<topic-or-key>', 'a topic name, or a key of 64 hex digits')
    .option('--json', 'print JSON')
    .action(async (topic: string, o) => {
      const list = await callApi<{ id: string; addresses: string[]; expiresAt: number }[]>(target(o), `/v1/dht/providers/${topicKey(topic)}`)
      if (o.json) return json(list)
      console.log(table(['provider id', 'addresses', 'expires'], list.map((p) => [p.id, p.addresses.join(' '), new Date(p.expiresAt).toISOString()])))
      console.log(`${list.length} providers`)
    })

  withApi(program.command('publish'))
    .description('pub-sub: publish <topic> <message> on a topic; Tapestry: publish <name-or-object> leaves pointers to the node on the route to an object\'s root (a name is hashed to an id), republished while the node runs')
    .argument('<name-or-object>', 'a topic (with a message), or a name or object id of 64 hex digits (Tapestry)')
    .argument('[message]', 'pub-sub: the message to publish on the topic')
    .option('--json', 'print JSON')
    .option('--owner <hex>', "pub-sub: a restricted topic's owner key (64 hex digits)")
    .option('--authorization <hex>', "pub-sub: the owner's authorization of this node on a restricted topic")
    .option('--private', 'pub-sub: publish through a Dandelion++ stem first (hides where the message entered)')
    .action(async (name: string, message: string | undefined, o) => {
      if (message !== undefined) return publishToTopic(target(o), name, message, o)
      const r = await callApi<{ object: string; pointers: number; hops: number; reachedRoot: boolean }>(target(o), '/v1/tapestry/publish', { method: 'POST', body: { object: topicKey(name) } })
      return o.json ? json(r) : console.log(`${r.object}\t(pointers on ${r.pointers} nodes, ${r.hops} hops${r.reachedRoot ? ', root reached' : ', root not reached'})`)
    })

  withApi(program.command('locate'))
    .description('Tapestry: find the nearest server of an object (a name is hashed to an id)')
    .argument('<name-or-object>', 'a name, or an object id of 64 hex digits')
    .option('--json', 'print JSON')
    .action(async (name: string, o) => {
      const r = await callApi<{ object: string; server: { id: string; address: string } | null; servers: { id: string; address: string }[]; hops: number; durationMs: number }>(target(o), `/v1/tapestry/locate/${topicKey(name)}`)
      if (o.json) return json(r)
      if (!r.server) throw new WeftError('ERR_NOT_FOUND', `no server found for ${r.object} (${r.hops} hops walked)`)
      console.log(table(['server id', 'address'], r.servers.map((c) => [c.id, c.address])))
      console.log(`nearest ${r.server.address}, found in ${r.hops} hops, ${r.durationMs.toFixed(0)} ms`)
    })

  program.command('keygen')
    .description('make an Ed25519 key file (mode 0600) for signing mutable records')
    .argument('<file>', 'where to write it; an existing file is never overwritten')
    .action((file: string) => {
      if (existsSync(file)) throw new WeftError('ERR_KEY_FILE', `${file} already exists; not overwriting it`)
      const identity = generateIdentity()
      saveIdentity(file, identity)
      console.log(`public key ${idToHex(identity.publicKey)}\nwritten to ${file}`)
    })
}
