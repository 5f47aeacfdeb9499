// `weft send <guid> <message>`, `weft broadcast <message>`, `weft multicast <guid,...> <message>`
// and `weft polyring` (status, or the messages received): the polyring through a running node's
// API (a node started with `weft node --topology polyring`, or a polyring devnet's peers).
import type { Command } from 'commander'
import type { ApiTarget } from '../api/server.js'
import { callApi } from '../api/client.js'
import { idFromHex } from '../identity/node-id.js'
import { parseGuid } from '../overlay/polyring/guid.js'
import type { PolyringStatus } from '../overlay/polyring/service.js'
import { table } from './format.js'

const json = (v: unknown): void => console.log(JSON.stringify(v))
const b64 = (message: string): string => Buffer.from(message, 'utf8').toString('base64')
interface Sent { from: string; to: string[] }

export function addPolyringCommands(program: Command, withApi: (c: Command) => Command, target: (o: { api: string; apiToken?: string }) => ApiTarget): void {
  withApi(program.command('send'))
    .description('route a message through the polyring to the peer holding a GUID (or to a node id, looked up in the DHT), through a running node')
    .argument('<guid>', 'the receiver, e.g. [4.2.17], or its node id (64 hex digits)')
    .argument('<message>', 'the message (UTF-8 text)')
    .option('--json', 'print JSON')
    .action(async (to: string, message: string, o) => {
      if (to.startsWith('[')) parseGuid(to) // a bad GUID is the user's error: say so before asking the node
      else idFromHex(to)
      const r = await callApi<Sent>(target(o), '/v1/polyring/send', { method: 'POST', body: { guid: to, data: b64(message) } })
      if (o.json) return json(r)
      console.log(`sent from ${r.from} to ${r.to[0]}`)
    })

  withApi(program.command('broadcast'))
    .description('send a message to every peer of the polyring, through a running node')
    .argument('<message>', 'the message (UTF-8 text)')
    .option('--json', 'print JSON')
    .action(async (message: string, o) => {
      const r = await callApi<Sent>(target(o), '/v1/polyring/broadcast', { method: 'POST', body: { data: b64(message) } })
      if (o.json) return json(r)
      console.log(`broadcast from ${r.from}`)
    })

  withApi(program.command('multicast'))
    .description('send a message to the peers holding the GUIDs named, through a running node')
    .argument('<guids>', 'the receivers, comma-separated: [1.0],[2.3]')
    .argument('<message>', 'the message (UTF-8 text)')
    .option('--json', 'print JSON')
    .action(async (list: string, message: string, o) => {
      const guids = list.split(',').map((g) => g.trim()).filter((g) => g.length > 0)
      for (const g of guids) parseGuid(g)
      const r = await callApi<Sent>(target(o), '/v1/polyring/multicast', { method: 'POST', body: { guids, data: b64(message) } })
      if (o.json) return json(r)
      console.log(`multicast from ${r.from} to ${r.to.length} peers`)
    })

  withApi(program.command('polyring'))
    .description("show a running node's place in the polyring, or (--messages) what it received")
    .option('--messages', 'print the messages received (the last 256)')
    .option('--json', 'print JSON')
    .action(async (o) => {
      if (o.messages) {
        const r = await callApi<{ messages: { seq: number; kind: string; from: string; data: string }[] }>(target(o), '/v1/polyring/messages')
        if (o.json) return json(r)
        for (const m of r.messages) console.log(`${m.seq}\t${m.kind}\tfrom ${m.from}\t${Buffer.from(m.data, 'base64').toString('utf8')}`)
        return
      }
      const s = await callApi<PolyringStatus>(target(o), '/v1/polyring')
      if (o.json) return json(s)
      console.log(`guid ${s.guid ?? '(not joined)'}${s.centre ? ' (centre ring)' : ''}${s.region ? `, region ${s.region}` : ''}${s.hosted ? ', hosted' : ''}`)
      const rows = [
        ...(s.parent ? [['parent', s.parent.guid, s.parent.address]] : []),
        ...s.siblings.map((n) => ['sibling', n.guid, n.address]),
        ...s.children.map((n) => ['child', n.guid, n.address]),
      ]
      console.log(table(['relation', 'guid', 'address'], rows))
      console.log(`received ${s.stats.received} (send ${s.stats.sends}, broadcast ${s.stats.broadcasts}, multicast ${s.stats.multicasts}); forwarded ${s.stats.forwarded}; no route ${s.stats.noRoute}`)
    })
}
