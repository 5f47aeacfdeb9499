// Pub-sub: not in the node yet (another change builds node.pubsub). The panel in index.html is
// disabled and says so. When it lands: have GET /v1/dashboard report `pubsub: true`
// (src/api/dashboard.ts), add the publish/subscribe routes, and wire the fields here.
import type { DashboardInfo } from '../api.js'
import { byId } from '../dom.js'

export function mountPubsub(info: DashboardInfo): void {
  if (!info.pubsub) return // stays disabled: nothing to publish to
  byId('pubsub-note').textContent = 'The node reports pub-sub, but this dashboard has no forms for it yet.'
}
