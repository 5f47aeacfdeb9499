// UPnP IGD and NAT-PMP port mapping (an option, off by default): ask the home router in front of
// us to forward our UDP port, so the node is publicly reachable with no relay and no punching.
// UPnP first (SSDP discovery on the LAN), then NAT-PMP to the default gateway. The protocols are
// not Weft's own, so a well-kept library speaks them (@achingbrain/nat-port-mapper, js-libp2p's).
// The NAT check that follows finds out whether the mapping works: strangers reach us or not.
import { readFile } from 'node:fs/promises'
import { pmpNat, upnpNat, type Gateway } from '@achingbrain/nat-port-mapper'
import { WeftError } from '../errors.js'

export interface PortMappingOptions {
  /** How long discovery and the mapping request may take, each protocol. */
  timeoutMs: number
  /** Lease asked for; the library renews it before it runs out. */
  ttlMs: number
}

export const DEFAULT_PORT_MAPPING: PortMappingOptions = { timeoutMs: 5000, ttlMs: 3_600_000 }

export interface PortMapping {
  protocol: 'upnp' | 'nat-pmp'
  /** Where the internet reaches us: the router's external address and the mapped port. */
  externalAddress: string
  /** Removes the mapping (on stop). */
  close(): Promise<void>
}

/**
 * Maps UDP `port` of `host` (our LAN address) on the router. Rejects with ERR_NOT_FOUND when no
 * gateway answers in time or none grants the mapping; the node runs on without it.
 */
export async function mapPort(host: string, port: number, options: Partial<PortMappingOptions> = {}): Promise<PortMapping> {
  const o = { ...DEFAULT_PORT_MAPPING, ...options }
  const mapOptions = { protocol: 'udp' as const, externalPort: port, description: 'weft', ttl: o.ttlMs }
  const errors: string[] = []
  const attempt = async (protocol: PortMapping['protocol'], gateway: Gateway): Promise<PortMapping> => {
    try {
      const m = await gateway.map(port, host, { ...mapOptions, signal: AbortSignal.timeout(o.timeoutMs) })
      return { protocol, externalAddress: `${m.externalHost}:${m.externalPort}`, close: () => gateway.stop({ signal: AbortSignal.timeout(o.timeoutMs) }).catch(() => {}) }
    } catch (err) {
      await gateway.stop().catch(() => {})
      throw err
    }
  }

  try {
    for await (const gateway of upnpNat({ ttl: o.ttlMs }).findGateways({ signal: AbortSignal.timeout(o.timeoutMs) })) {
      if (gateway.family !== 'IPv4') continue
      return await attempt('upnp', gateway)
    }
    errors.push('UPnP: no gateway answered')
  } catch (err) {
    errors.push(`UPnP: ${(err as Error).message}`)
  }
  const router = await defaultGateway()
  if (router) {
    try {
      return await attempt('nat-pmp', pmpNat(router, { ttl: o.ttlMs }))
    } catch (err) {
      errors.push(`NAT-PMP (${router}): ${(err as Error).message}`)
    }
  } else errors.push('NAT-PMP: no default IPv4 route')
  throw new WeftError('ERR_NOT_FOUND', `no port mapping for UDP ${host}:${port}: ${errors.join('; ')}`)
}

/** The IPv4 default gateway from /proc/net/route (Linux), or null. */
async function defaultGateway(): Promise<string | null> {
  const text = await readFile('/proc/net/route', 'utf8').catch(() => '')
  for (const line of text.split('\n').slice(1)) {
    const [, destination, gateway, flags] = line.trim().split(/\s+/)
    if (destination !== '00000000' || !gateway || !(Number.parseInt(flags, 16) & 2)) continue
    const n = Number.parseInt(gateway, 16) // little-endian hex
    return [n & 255, (n >> 8) & 255, (n >> 16) & 255, (n >>> 24) & 255].join('.')
  }
  return null
}
