// Link models for the simulated network: how long a datagram takes from one node to another.
// 'geo' places peers over the globe where people live and derives delay from distance;
// 'uniform' is a flat 10-50 ms, for tests that want no geography.
import { WeftError } from '../errors.js'
import type { LinkModel } from '../runtime/memory.js'
import type { SeededRandom } from '../runtime/prng.js'

export interface PlacedLinks extends LinkModel {
  readonly name: string
  /** Gives endpoint `index` its place (call once per endpoint, in bind order). */
  place(index: number, random: SeededRandom): void
  /** The typical round trip between two endpoints in ms (without queueing or the tail): what proximity routing and stretch are judged by. */
  rtt(a: number, b: number): number
}

// Where peers are: population-weighted regions (centre latitude and longitude in degrees, spread).
const REGIONS: [weight: number, lat: number, lon: number, spread: number][] = [
  [0.20, 40, -95, 12], // North America
  [0.06, -15, -55, 12], // South America
  [0.24, 50, 10, 8], // Europe
  [0.06, 5, 20, 15], // Africa
  [0.16, 25, 80, 10], // South Asia
  [0.22, 33, 115, 10], // East Asia
  [0.06, -30, 140, 10], // Oceania
]
const KM_PER_RAD = 6371
/** Light in fibre covers about 200 km per ms; routes are about 1.5 times the great circle. */
const KM_PER_MS = 200 / 1.5

class GeoLinks implements PlacedLinks {
  readonly name = 'geo'
  private lat = new Float32Array(1024)
  private lon = new Float32Array(1024)
  /** Each peer's last-mile delay, one way, in ms. */
  private access = new Float32Array(1024)

  constructor(public loss: number) {}

  place(index: number, random: SeededRandom): void {
    if (index >= this.lat.length) this.grow(index + 1)
    let pick = random.float()
    let region = REGIONS[REGIONS.length - 1]
    for (const r of REGIONS) { if (pick < r[0]) { region = r; break } pick -= r[0] }
    const [, lat, lon, spread] = region
    this.lat[index] = (Math.max(-85, Math.min(85, lat + gaussian(random) * spread)) * Math.PI) / 180
    this.lon[index] = ((lon + gaussian(random) * spread * 1.5) * Math.PI) / 180
    // Access links: mostly a few ms (fibre, cable), some tens (DSL, mobile): log-normal.
    this.access[index] = Math.min(150, Math.exp(1.2 + 0.8 * gaussian(random)))
  }

  /** One way, without queueing or the tail. */
  private base(a: number, b: number): number {
    const dLat = this.lat[b] - this.lat[a], dLon = this.lon[b] - this.lon[a]
    const h = Math.sin(dLat / 2) ** 2 + Math.cos(this.lat[a]) * Math.cos(this.lat[b]) * Math.sin(dLon / 2) ** 2
    const km = 2 * KM_PER_RAD * Math.asin(Math.min(1, Math.sqrt(h)))
    return km / KM_PER_MS + this.access[a] + this.access[b]
  }

  rtt(a: number, b: number): number { return 2 * this.base(a, b) }

  latency(_f: string, _t: string, random: SeededRandom, a: number, b: number): number {
    let ms = this.base(a, b) + random.float() // plus up to 1 ms of queueing
    // The long tail: one datagram in fifty meets a congested queue (Pareto, capped at 2 s).
    if (random.float() < 0.02) ms += Math.min(2000, 10 / Math.pow(1 - random.float(), 1 / 1.5))
    return ms
  }

  private grow(n: number): void {
    const cap = Math.max(n, this.lat.length * 2)
    for (const key of ['lat', 'lon', 'access'] as const) {
      const next = new Float32Array(cap)
      next.set(this[key])
      this[key] = next
    }
  }
}

class UniformLinks implements PlacedLinks {
  readonly name = 'uniform'
  constructor(public loss: number) {}
  place(): void {}
  rtt(): number { return 60 } // every pair alike: 2 x the mean of 10-50 ms
  latency(_f: string, _t: string, random: SeededRandom): number { return 10 + random.float() * 40 }
}

function gaussian(random: SeededRandom): number {
  const u = 1 - random.float(), v = random.float()
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)
}

export const latencyModels = ['geo', 'uniform'] as const

export function linkModel(name: string, loss = 0): PlacedLinks {
  if (!(loss >= 0 && loss < 1)) throw new WeftError('ERR_BAD_ARGUMENT', `--loss must be at least 0 and below 1, got ${loss}`)
  if (name === 'geo') return new GeoLinks(loss)
  if (name === 'uniform') return new UniformLinks(loss)
  throw new WeftError('ERR_BAD_ARGUMENT', `unknown latency model ${JSON.stringify(name)} (known: ${latencyModels.join(', ')})`)
}
