// The dashboard: its API routes over real HTTP against a 64-node devnet on loopback (every answer
// checked against spec/openapi.yaml, bad input refused with a code), then the page itself in
// Debian's headless Chromium through playwright-core: all 64 nodes on the picture, a lookup
// started from the page and its path, a DHT put then get, a simulator report opened. Each
// browser step leaves a screenshot in test-artifacts/. Without /usr/bin/chromium the browser
// test is skipped when not root (as root, .ci/run installs it, and its absence is a failure).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import { chromium, type Browser, type Page } from 'playwright-core'
import { createDevnet, type Devnet } from '../src/api/devnet.js'
import { WEB_ROOT } from '../src/api/dashboard.js'
import { buildApi, startApi, type ApiServer } from '../src/api/server.js'
import { runSimulations } from '../src/sim/run.js'
import { checkAnswer, checkError } from './helpers/openapi.js'

const NODES = 64
const CHROMIUM = '/usr/bin/chromium'
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url))
const SEED = process.env.WEFT_SEED ?? `dashboard-${randomBytes(4).toString('hex')}`

let devnet: Devnet
let server: ApiServer
let lone: FastifyInstance

before(async () => {
  console.log(`# seed ${SEED} (rerun with WEFT_SEED=${SEED})`)
  devnet = await createDevnet({ nodes: NODES, seed: SEED })
  server = await startApi(devnet.nodes[0], '127.0.0.1:0', { devnet })
  lone = buildApi(devnet.nodes[1]) // the same routes, without a devnet behind them
  await lone.ready()
})
after(async () => {
  await lone?.close()
  await server?.close()
  await devnet?.close()
})

async function http(path: string, headers: Record<string, string> = {}, base = server.address) {
  const res = await fetch(`http://${base}${path}`, { headers })
  const type = (res.headers.get('content-type') ?? '').split(';')[0]
  const body = type === 'application/json' ? await res.json() : await res.text()
  checkAnswer('GET', path, res.status, body, type)
  return { status: res.status, type, headers: res.headers, body: body as any }
}

async function refused(app: FastifyInstance, url: string, code: string, status: number) {
  const res = await app.inject({ method: 'GET', url })
  assert.equal(res.statusCode, status, `${url}: ${res.body}`)
  const body = res.json()
  assert.equal(body.error?.code, code, `${url}: ${res.body}`)
  checkError(body)
  checkAnswer('GET', url, status, body)
}

test('the dashboard routes answer as spec/openapi.yaml says', async () => {
  const [served, other] = [devnet.nodes[0], devnet.nodes[40]]
  const info = await http('/v1/dashboard')
  assert.deepEqual(info.body, { id: served.idHex, topology: 'kademlia', devnet: { nodes: NODES, traffic: true }, pubsub: true })

  const nodes = await http('/v1/devnet/nodes')
  assert.equal(nodes.body.nodes.length, NODES)
  assert.equal(nodes.body.served, served.idHex)
  assert.deepEqual(nodes.body.nodes.map((n: { id: string }) => n.id), devnet.nodes.map((n) => n.idHex))
  assert.ok(nodes.body.nodes.every((n: { running: boolean; peers: number; packetsIn: number }) => n.running && n.peers > 0 && n.packetsIn > 0))

  const one = await http(`/v1/devnet/nodes/${other.idHex}`)
  assert.equal(one.body.status.id, other.idHex)
  assert.equal(one.body.peers.length, one.body.status.peers)

  // A lookup for a node's own id ends at that node; each hop was named by the one before.
  const trace = await http(`/v1/lookup/${other.idHex}/trace?from=${devnet.nodes[7].idHex}`)
  const t = trace.body
  assert.equal(t.from.id, devnet.nodes[7].idHex)
  assert.equal(t.closest[0].id, other.idHex)
  assert.equal(t.path[0].id, devnet.nodes[7].idHex)
  assert.equal(t.path.at(-1).id, other.idHex)
  const byId = new Map(t.steps.map((s: { id: string }) => [s.id, s]))
  for (let i = 1; i < t.path.length; i++) {
    const step = byId.get(t.path[i].id) as { via: string | null } | undefined
    assert.ok(step, `hop ${i} answered the lookup`)
    assert.equal(step.via, i === 1 ? null : t.path[i - 1].id, `hop ${i} was named by hop ${i - 1}`)
  }
  assert.ok(t.steps.length >= 1 && t.steps.every((s: { hop: number; atMs: number }) => s.hop >= 1 && s.atMs >= 0))
  assert.ok(t.steps.length <= t.messages)

  // Traffic is counted per link, in windows: run lookups, then the next window shows them.
  const before = (await http('/v1/devnet/traffic')).body.seq
  await Promise.all(devnet.nodes.slice(0, 16).map((n) => n.lookup(randomBytes(32))))
  await new Promise((r) => setTimeout(r, 1100))
  const traffic = await http(`/v1/devnet/traffic?since=${before}`)
  assert.ok(traffic.body.windows.length >= 1)
  assert.ok(traffic.body.windows.every((w: { seq: number }) => w.seq > before))
  const sent = traffic.body.windows.reduce((s: number, w: { links: number[][] }) => s + w.links.reduce((a, l) => a + l[2], 0), 0)
  assert.ok(sent > 0, 'lookups were counted on links')
  assert.ok(traffic.body.windows.every((w: { links: number[][] }) => w.links.every(([a, b]) => a < NODES && b < NODES && a !== b)))

  // The page and its files.
  if (!existsSync(`${WEB_ROOT}index.html`)) assert.fail(`the dashboard is not built in ${WEB_ROOT}: run npm run build`)
  const page = await http('/')
  assert.equal(page.type, 'text/html')
  assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'self'/)
  const script = /src="\/assets\/([^"]+\.js)"/.exec(page.body)?.[1]
  assert.ok(script, 'the page loads a script from /assets/')
  const js = await http(`/assets/${script}`)
  assert.equal(js.type, 'text/javascript')
})

test('bad input to the dashboard routes: a coded JSON error, the right status', async () => {
  const app = buildApi(devnet.nodes[0], { devnet })
  try {
    const id = devnet.nodes[3].idHex
    await refused(app, '/v1/lookup/xyz/trace', 'ERR_BAD_ID', 400)
    await refused(app, `/v1/lookup/${id}/trace?from=nope`, 'ERR_BAD_ID', 400)
    await refused(app, `/v1/lookup/${id}/trace?from=${'00'.repeat(32)}`, 'ERR_NOT_FOUND', 404)
    await refused(app, '/v1/devnet/nodes/12', 'ERR_BAD_ID', 400)
    await refused(app, `/v1/devnet/nodes/${'00'.repeat(32)}`, 'ERR_NOT_FOUND', 404)
    await refused(app, '/v1/devnet/traffic?since=-1', 'ERR_BAD_ARGUMENT', 400)
    await refused(app, '/v1/devnet/traffic?since=abc', 'ERR_BAD_ARGUMENT', 400)
    await refused(app, '/assets/nope.js', 'ERR_NOT_FOUND', 404)
    await refused(app, '/assets/..%2F..%2Fpackage.json', 'ERR_NOT_FOUND', 404)
    await refused(app, '/assets/.hidden', 'ERR_NOT_FOUND', 404)
    // A lone node (no devnet): the devnet routes say so; a trace from another node is refused.
    await refused(lone, '/v1/devnet/nodes', 'ERR_NOT_FOUND', 404)
    await refused(lone, `/v1/devnet/nodes/${id}`, 'ERR_NOT_FOUND', 404)
    await refused(lone, '/v1/devnet/traffic', 'ERR_NOT_FOUND', 404)
    await refused(lone, `/v1/lookup/${id}/trace?from=${id}`, 'ERR_NOT_FOUND', 404)
    const info = await lone.inject({ method: 'GET', url: '/v1/dashboard' })
    assert.equal(info.json().devnet, null)
  } finally {
    await app.close()
  }
  // With a token (a non-loopback bind): the page's files need none, its data does.
  const token = 'dashboard-test-token-0123456789'
  const open = await startApi(devnet.nodes[0], '0.0.0.0:0', { token, devnet })
  try {
    const local = `127.0.0.1:${open.address.split(':').pop()}`
    assert.equal((await http('/', {}, local)).status, 200)
    for (const path of ['/v1/dashboard', '/v1/devnet/nodes', '/v1/devnet/traffic']) {
      const res = await http(path, {}, local)
      assert.equal(res.status, 401, path)
      assert.equal(res.body.error.code, 'ERR_UNAUTHORIZED')
      assert.equal((await http(path, { authorization: `Bearer ${token}` }, local)).status, 200)
    }
  } finally {
    await open.close()
  }
})

const isRoot = process.getuid?.() === 0
const noBrowser = !existsSync(CHROMIUM) && !isRoot
  ? `${CHROMIUM} is missing and we are not root: install Debian's chromium (apt-get install chromium) to run the browser test`
  : false

test('the dashboard in headless Chromium: 64 nodes, a lookup, put then get, publish and see it arrive, a report', { skip: noBrowser, timeout: 180_000 }, async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: .ci/run installs it (apt-get install -y --no-install-recommends chromium)`)
  mkdirSync(ARTIFACTS, { recursive: true })
  const browser: Browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  })
  const problems: string[] = []
  try {
    const page: Page = await browser.newPage({ viewport: { width: 1280, height: 1000 } })
    page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`) })
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`))
    const shot = (name: string) => page.screenshot({ path: `${ARTIFACTS}dashboard-${name}.png`, fullPage: true })
    const served = devnet.nodes[0].idHex

    // 1. Every node of the devnet on the picture, the served node's identity and table.
    await page.goto(`http://${server.address}/`)
    await page.waitForFunction((n) => document.querySelectorAll('svg.devnet circle.node').length === n, NODES, { timeout: 20_000 })
    const ids = await page.$$eval('svg.devnet circle.node', (cs) => cs.map((c) => c.getAttribute('data-id')))
    assert.deepEqual(ids, devnet.nodes.map((n) => n.idHex))
    await page.waitForFunction((id) => document.querySelector('[data-testid=node-id]')?.textContent === id, served)
    await page.waitForFunction(() => /64 nodes · 64 running/.test(document.querySelector('[data-testid=devnet-summary]')?.textContent ?? ''))
    assert.equal(await page.textContent('[data-testid=node-id]'), served)
    assert.match(await page.textContent('[data-testid=node-nat]') ?? '', /^(unknown|open|firewalled|consistent|random) · /)
    assert.match(await page.textContent('[data-testid=node-sessions]') ?? '', /^\d+ open/)
    const contacts = await page.$$eval('#table-picture .contact[data-id]', (cs) => cs.map((c) => c.getAttribute('data-id')))
    assert.deepEqual(contacts.sort(), devnet.nodes[0].peers().map((p) => p.id).sort())
    // Traffic as it happens: a window with datagrams reaches the page.
    await Promise.all(devnet.nodes.slice(0, 8).map((n) => n.lookup(randomBytes(32))))
    await page.waitForFunction(() => Number(document.getElementById('devnet-picture')?.dataset.traffic ?? 0) > 0, undefined, { timeout: 10_000 })
    await shot('1-devnet')

    // 2. A lookup from the page, for another node's id: the path ends at that node.
    const target = devnet.nodes[40].idHex
    await page.fill('#lookup-target', target)
    await page.click('#lookup-run')
    await page.waitForSelector('#lookup-result[data-state=done]', { timeout: 20_000 })
    const path = await page.$$eval('[data-testid=lookup-path] li', (lis) => lis.map((li) => li.getAttribute('data-id')))
    assert.ok(path.length >= 2, `a path of at least one hop: ${path.join(' > ')}`)
    assert.equal(path[0], served)
    assert.equal(path.at(-1), target)
    assert.match(await page.textContent('[data-testid=lookup-summary]') ?? '', /^\d+ hops · \d+ nodes answered/)
    assert.equal(await page.locator('svg.lookup-ring .route line.hop').count(), path.length - 1)
    assert.equal(await page.locator('svg.devnet .route polyline.hop').count(), 1)
    await shot('2-lookup')

    // 3. Put a value from the page: the key is its SHA-256.
    const value = `hello from the dashboard ${SEED}`
    await page.fill('#put-value', value)
    await page.click('#put-run')
    await page.waitForSelector('#put-result[data-state=done]', { timeout: 20_000 })
    assert.equal(await page.textContent('[data-testid=put-key]'), createHash('sha256').update(value).digest('hex'))
    assert.match(await page.textContent('[data-testid=put-result]') ?? '', /^stored on [1-9]\d* nodes/)
    await shot('3-put')

    // 4. Get it back (the form was filled with the key).
    await page.click('#get-run')
    await page.waitForSelector('#get-result[data-state=done]', { timeout: 20_000 })
    assert.equal(await page.textContent('[data-testid=got-value]'), value)
    await page.fill('#get-key', '00'.repeat(32))
    await page.click('#get-run')
    await page.waitForSelector('#get-result[data-state=error]', { timeout: 20_000 })
    assert.match(await page.textContent('[data-testid=get-result]') ?? '', /^ERR_NOT_FOUND: /)
    assert.equal(await page.getAttribute('[data-testid=error]', 'data-code'), 'ERR_NOT_FOUND')
    await shot('4-get')

    // 5. Pub-sub: subscribe to a topic from the page, publish to it, see the message arrive.
    const topic = `dashboard-${SEED}`
    const message = `hello subscribers ${SEED}`
    await page.fill('#pubsub-topic', topic)
    await page.click('#pubsub-subscribe')
    await page.waitForSelector('#pubsub-status[data-state=ready]', { timeout: 20_000 })
    await page.fill('#pubsub-message', message)
    await page.click('#pubsub-publish')
    await page.waitForSelector('#pubsub-published[data-state=done]', { timeout: 20_000 })
    await page.waitForSelector('[data-testid=pubsub-message]', { timeout: 20_000 })
    assert.equal(await page.textContent('[data-testid=pubsub-message] q'), message)
    assert.match(await page.textContent('[data-testid=pubsub-message]') ?? '', new RegExp(`on ${topic} from ${devnet.nodes[0].idHex.slice(0, 8)}`))
    await shot('5-pubsub')

    // 6. Another node, picked on the picture: its identity and table.
    const pick = devnet.nodes[17]
    // Dispatched on the circle itself: a neighbour on the ring may overlap it on the picture.
    await page.locator(`svg.devnet circle.node[data-id="${pick.idHex}"]`).dispatchEvent('click')
    await page.waitForFunction((id) => document.querySelector('[data-testid=node-id]')?.textContent === id, pick.idHex)
    await page.waitForFunction((n) => document.querySelectorAll('#table-picture .contact[data-id]').length === n, pick.peers().length)
    await shot('6-other-node')

    // 7. A simulator report, opened from a file.
    const reports = await runSimulations({ sizes: [100, 300], lookups: 50, seed: SEED, build: 'oracle' })
    const file = `${ARTIFACTS}sim-report.json`
    writeFileSync(file, JSON.stringify(reports.map((r) => r.simulated), null, 2))
    await page.setInputFiles('[data-testid=report-file]', file)
    await page.waitForSelector('#report-view[data-runs="2"]')
    const rows = await page.$$eval('[data-testid=report-table] tbody tr', (trs) => trs.map((tr) => tr.children[2].textContent))
    assert.deepEqual(rows, ['100', '300'])
    assert.equal(await page.locator('#report-view svg.chart').count(), 2)
    assert.equal(await page.getAttribute('[data-testid=pubsub-panel]', 'aria-disabled'), null, 'the pub-sub panel is on')
    assert.equal(await page.locator('#pubsub-fields').isDisabled(), false)
    await shot('7-report')

    // The expected ERR_NOT_FOUND above is the only error the page met (a 404 logs one console line).
    assert.deepEqual(problems.filter((p) => !/404/.test(p)), [])
  } finally {
    await browser.close()
  }
})
