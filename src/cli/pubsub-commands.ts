// `weft subscribe <topic>` and `weft publish <topic> <message>` (pub-sub through a running node's
// API; `weft publish` with one argument is Tapestry's object publish), restricted topics' authorizations are made with the library (node.pubsub.authorize).
import type { Command } from 'commander'
import { callApi, type ApiTarget } from '../api/server.js'
import { WeftError, type ErrorCode } from '../errors.js'

const json = (v: unknown): void => console.log(JSON.stringify(v))

export interface PublishCliOptions { api: string; apiToken?: string; json?: boolean; owner?: string; authorization?: string; private?: boolean }

/** `weft publish <topic> <message>`. */
export async function publishToTopic(target: ApiTarget, topic: string, message: string, o: PublishCliOptions): Promise<void> {
  const r = await callApi<{ id: string; topic: string; peers: number }>(target, '/v1/pubsub/publish', {
    method: 'POST', body: { topic, data: Buffer.from(message, 'utf8').toString('base64'), owner: o.owner, authorization: o.authorization, private: o.private },
  })
  if (o.json) return json(r)
  console.log(`${r.id}\t(published on ${JSON.stringify(r.topic)}, ${r.peers} neighbours in its overlay)`)
}

/** Reads a server-sent event stream, calling back once per event. */
async function readEvents(res: Response, onEvent: (event: string, data: string) => void): Promise<void> {
  const reader = res.body!.getReader()
  const decoder = new TextDecoder()
  let buffer = ''
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return
    buffer += decoder.decode(value, { stream: true })
    let end: number
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      let event = 'message', data = ''
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7)
        else if (line.startsWith('data: ')) data += line.slice(6)
      }
      if (data) onEvent(event, data)
    }
  }
}

export function addPubSubCommands(program: Command, withApi: (c: Command) => Command, target: (o: { api: string; apiToken?: string }) => ApiTarget): void {
  withApi(program.command('subscribe'))
    .description('print the messages of a pub-sub topic as they arrive, through a running node (Ctrl-C to stop)')
    .argument('<topic>', 'the topic name')
    .option('--owner <hex>', "a restricted topic's owner key (64 hex digits)")
    .option('--json', 'print one JSON object a line (data as base64)')
    .option('--count <n>', 'exit after this many messages')
    .action(async (topic: string, o) => {
      const t = target(o)
      const { address, token } = typeof t === 'string' ? { address: t, token: undefined } : t
      const q = new URLSearchParams({ topic, ...(o.owner ? { owner: o.owner } : {}) })
      let res: Response
      try {
        res = await fetch(`http://${address}/v1/pubsub/subscribe?${q}`, { headers: token ? { authorization: `Bearer ${token}` } : {} })
      } catch (err) {
        throw new WeftError('ERR_API', `no Weft node API at ${address} (is \`weft node\` running? pass --api HOST:PORT)`, { cause: err })
      }
      if (!res.ok) {
        const e = ((await res.json().catch(() => null)) as { error?: { code: ErrorCode; message: string } } | null)?.error
        throw new WeftError(e?.code ?? 'ERR_API', e?.message ?? `API answered HTTP ${res.status}`)
      }
      const limit = o.count === undefined ? Infinity : Number(o.count)
      if (!(limit >= 1)) throw new WeftError('ERR_BAD_ARGUMENT', '--count must be at least 1')
      let n = 0
      const done = new AbortController()
      await Promise.race([
        readEvents(res, (event, data) => {
          if (event === 'ready') { process.stderr.write(`subscribed to ${JSON.stringify(topic)}\n`); return }
          if (event !== 'message' || n >= limit) return
          const m = JSON.parse(data) as { data: string; author: string; id: string }
          if (o.json) json(m)
          else console.log(Buffer.from(m.data, 'base64').toString('utf8'))
          if (++n >= limit) done.abort()
        }),
        new Promise<void>((resolve) => done.signal.addEventListener('abort', () => resolve())),
      ])
    })
}
