// The Weft dashboard: one node's identity, table and lookups, DHT forms, the devnet on one
// picture when the API serves one, and the simulator's reports. Served by the node at `/`.
import './style.css'
import { api, ApiError, setToken, setUnauthorizedHandler, type DashboardInfo, type Peer, type Status } from './api.js'
import { byId } from './dom.js'
import { short } from './ids.js'
import { mountDht } from './panels/dht.js'
import { DevnetPicture } from './panels/devnet.js'
import { renderIdentity } from './panels/identity.js'
import { mountLookup } from './panels/lookup.js'
import { mountPubsub } from './panels/pubsub.js'
import { mountReports } from './panels/reports.js'
import { renderTable } from './panels/table.js'

const NODE_EVERY_MS = 3000

let errorTimer = 0
function showError(err: unknown): void {
  const box = byId('error')
  const code = err instanceof ApiError ? err.code : ''
  box.textContent = code ? `${code}: ${(err as Error).message}` : (err as Error).message ?? String(err)
  box.dataset.code = code
  clearTimeout(errorTimer)
  errorTimer = window.setTimeout(() => { box.textContent = ''; box.dataset.code = '' }, 15_000)
}

setUnauthorizedHandler(() => { byId('token-form').hidden = false })
byId('token-form').addEventListener('submit', (e) => {
  e.preventDefault()
  setToken(byId<HTMLInputElement>('token').value)
  location.reload()
})

async function main(): Promise<void> {
  let info: DashboardInfo
  try {
    info = await api<DashboardInfo>('/v1/dashboard')
  } catch (err) {
    byId('where').textContent = 'no answer from the node'
    showError(err)
    return
  }
  byId('where').textContent = `${info.topology} · node ${short(info.id)}${info.devnet ? ` · devnet of ${info.devnet.nodes}` : ''}`
  let selected = info.id
  let tableKey = ''

  const refreshNode = async (): Promise<void> => {
    const id = selected
    const { status, peers } = info.devnet
      ? await api<{ status: Status; peers: Peer[] }>(`/v1/devnet/nodes/${id}`)
      : { status: await api<Status>('/v1/status'), peers: await api<Peer[]>('/v1/peers') }
    if (id !== selected) return
    renderIdentity(status, id === info.id)
    const key = `${id}|${peers.map((p) => `${p.slot}=${p.id}`).join(',')}`
    if (key !== tableKey) { tableKey = key; renderTable(status.topology, id, peers) }
  }
  const refresh = (): void => { refreshNode().catch(showError) }

  let picture: DevnetPicture | null = null
  if (info.devnet) {
    byId('devnet').hidden = false
    picture = new DevnetPicture({
      select: (id) => { selected = id; picture?.select(id); refresh(); byId('identity').scrollIntoView({ behavior: 'smooth', block: 'nearest' }) },
      onError: showError,
    }, info.devnet.traffic)
    picture.select(selected)
    picture.start()
  }
  refresh()
  window.setInterval(refresh, NODE_EVERY_MS)
  mountLookup({ from: () => ({ id: selected, devnet: info.devnet !== null }), onError: showError, onTrace: (t) => picture?.showTrace(t) })
  mountDht(showError)
  mountPubsub(info, showError)
  mountReports(showError)
  document.body.dataset.ready = 'true'
}

void main()
