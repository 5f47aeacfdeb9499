// DHT put and get through the node serving the page: values are text here, base64 on the API.
import { api, ApiError } from '../api.js'
import { byId, el } from '../dom.js'
import { isId } from '../ids.js'

const toBase64 = (bytes: Uint8Array): string => btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join(''))
const fromBase64 = (s: string): Uint8Array => Uint8Array.from(atob(s), (ch) => ch.charCodeAt(0))

const failure = (err: unknown): string => err instanceof ApiError ? `${err.code}: ${err.message}` : String((err as Error).message ?? err)

export function mountDht(onError: (err: unknown) => void): void {
  const putOut = byId('put-result'), getOut = byId('get-result'), keyInput = byId<HTMLInputElement>('get-key')
  byId('put-form').addEventListener('submit', (e) => {
    e.preventDefault()
    const value = new TextEncoder().encode(byId<HTMLTextAreaElement>('put-value').value)
    putOut.textContent = 'storing…'
    putOut.dataset.state = 'running'
    api<{ key: string; stored: number }>('/v1/dht/put', { method: 'POST', body: { value: toBase64(value) } })
      .then((r) => {
        putOut.replaceChildren(`stored on ${r.stored} nodes under `, el('code', { 'data-testid': 'put-key', text: r.key }))
        putOut.dataset.state = 'done'
        keyInput.value = r.key
      })
      .catch((err) => { putOut.textContent = failure(err); putOut.dataset.state = 'error'; onError(err) })
  })
  byId('get-form').addEventListener('submit', (e) => {
    e.preventDefault()
    const key = keyInput.value.trim().toLowerCase()
    if (!isId(key)) { onError(new Error('a key is 64 hex digits')); return }
    getOut.textContent = 'finding…'
    getOut.dataset.state = 'running'
    api<{ key: string; value: string; size: number }>(`/v1/dht/get/${key}`)
      .then((r) => {
        const text = new TextDecoder('utf-8', { fatal: false }).decode(fromBase64(r.value))
        getOut.replaceChildren(`${r.size} bytes, checked against the key: `, el('q', { 'data-testid': 'got-value', text }))
        getOut.dataset.state = 'done'
      })
      .catch((err) => { getOut.textContent = failure(err); getOut.dataset.state = 'error'; onError(err) })
  })
}
