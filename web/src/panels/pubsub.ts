// Pub-sub through the node serving the page: subscribe to a topic (server-sent events from
// GET /v1/pubsub/subscribe) and publish to it (POST /v1/pubsub/publish); what arrives is listed
// with its author and the hops it took. Values are text here, base64 on the API.
import { api, ApiError, type DashboardInfo } from '../api.js'
import { byId, el } from '../dom.js'

const toBase64 = (text: string): string => btoa(Array.from(new TextEncoder().encode(text), (b) => String.fromCharCode(b)).join(''))
const fromBase64 = (s: string): string => new TextDecoder('utf-8', { fatal: false }).decode(Uint8Array.from(atob(s), (ch) => ch.charCodeAt(0)))
const failure = (err: unknown): string => err instanceof ApiError ? `${err.code}: ${err.message}` : String((err as Error).message ?? err)
/** Messages kept on the page; older ones scroll away. */
const SHOWN = 50

interface Arrived { topic: string; id: string; author: string; hops: number; data: string }

export function mountPubsub(info: DashboardInfo, onError: (err: unknown) => void): void {
  if (!info.pubsub) return // stays disabled: this node has no pub-sub
  const panel = byId('pubsub'), fields = byId<HTMLFieldSetElement>('pubsub-fields')
  panel.classList.remove('disabled')
  panel.removeAttribute('aria-disabled')
  byId('pubsub-state').textContent = ''
  byId('pubsub-note').textContent = 'Messages are signed by this node and delivered to every subscriber of the topic once.'
  fields.disabled = false
  const topicInput = byId<HTMLInputElement>('pubsub-topic'), status = byId('pubsub-status'), list = byId('pubsub-received')
  let stream: EventSource | null = null

  byId('pubsub-subscribe').addEventListener('click', () => {
    const topic = topicInput.value.trim()
    if (!topic) { onError(new Error('name a topic')); return }
    stream?.close()
    status.textContent = `subscribing to ${topic}…`
    status.dataset.state = 'running'
    stream = new EventSource(`/v1/pubsub/subscribe?topic=${encodeURIComponent(topic)}`)
    stream.addEventListener('ready', () => { status.textContent = `subscribed to ${topic}`; status.dataset.state = 'ready' })
    stream.addEventListener('message', (e) => {
      const m = JSON.parse((e as MessageEvent<string>).data) as Arrived
      list.prepend(el('li', { 'data-testid': 'pubsub-message', 'data-id': m.id },
        el('q', { text: fromBase64(m.data) }), ` on ${m.topic} from ${m.author.slice(0, 8)}…, ${m.hops} hop${m.hops === 1 ? '' : 's'}`))
      while (list.children.length > SHOWN) list.lastElementChild!.remove()
    })
    stream.onerror = () => {
      if (stream?.readyState === EventSource.CLOSED) { status.textContent = 'the subscription was refused or closed'; status.dataset.state = 'error' }
    }
  })

  byId('pubsub-form').addEventListener('submit', (e) => {
    e.preventDefault()
    const topic = topicInput.value.trim()
    const out = byId('pubsub-published')
    out.textContent = 'publishing…'
    out.dataset.state = 'running'
    api<{ id: string }>('/v1/pubsub/publish', { method: 'POST', body: { topic, data: toBase64(byId<HTMLInputElement>('pubsub-message').value) } })
      .then((r) => { out.textContent = `published ${r.id.slice(0, 12)}…`; out.dataset.state = 'done' })
      .catch((err) => { out.textContent = failure(err); out.dataset.state = 'error'; onError(err) })
  })
}
