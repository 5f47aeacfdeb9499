// Summarises a V8 .cpuprofile (from `node --cpu-prof` or run-dht's --profile): where the time
// went by file and by function, self and inclusive (a function's inclusive time counts each
// sample once, however deep the recursion).
//   node dist/bench/lib/profile-summary.js FILE.cpuprofile [TOP=25] [FILTER]
// FILTER keeps only functions whose file path contains it (e.g. "src/") in the function tables.
import { readFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}
interface CpuProfile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples: number[]
  timeDeltas: number[]
}

export interface ProfileSummary {
  totalMs: number
  idleMs: number
  byFile: [string, number][]
  selfByFunction: [string, number][]
  inclusiveByFunction: [string, number][]
}

const ROOT = new URL('../../../', import.meta.url).href // dist/bench/lib/ -> repository root

function shortFile(url: string): string {
  if (!url) return '(native)'
  let u = url.startsWith(ROOT) ? url.slice(ROOT.length) : url
  u = u.replace(/^dist\//, '')
  const nm = u.lastIndexOf('node_modules/')
  if (nm >= 0) u = u.slice(nm)
  return u
}

export function summarise(p: CpuProfile): ProfileSummary {
  const byId = new Map<number, ProfileNode>()
  const parent = new Map<number, number>()
  for (const n of p.nodes) byId.set(n.id, n)
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const key = (n: ProfileNode): string => {
    const f = n.callFrame
    const name = f.functionName || '(anonymous)'
    return f.url ? `${name} ${shortFile(f.url)}:${f.lineNumber + 1}` : name
  }
  const self = new Map<string, number>()
  const incl = new Map<string, number>()
  const files = new Map<string, number>()
  let total = 0
  let idle = 0
  for (let i = 0; i < p.samples.length; i++) {
    const dt = (p.timeDeltas[i + 1] ?? 0) / 1000 // the delta before the next sample is this sample's time
    const n = byId.get(p.samples[i])
    if (!n) continue
    total += dt
    const k = key(n)
    if (k === '(idle)') idle += dt
    self.set(k, (self.get(k) ?? 0) + dt)
    const file = n.callFrame.url ? shortFile(n.callFrame.url) : k
    files.set(file, (files.get(file) ?? 0) + dt)
    const seen = new Set<string>()
    for (let id: number | undefined = n.id; id !== undefined; id = parent.get(id)) {
      const kk = key(byId.get(id)!)
      if (seen.has(kk)) continue
      seen.add(kk)
      incl.set(kk, (incl.get(kk) ?? 0) + dt)
    }
  }
  const sorted = (m: Map<string, number>): [string, number][] => [...m.entries()].sort((a, b) => b[1] - a[1])
  return { totalMs: total, idleMs: idle, byFile: sorted(files), selfByFunction: sorted(self), inclusiveByFunction: sorted(incl) }
}

function main(argv: string[]): void {
  const [file, topArg, filter] = argv
  if (!file) {
    process.stderr.write('usage: profile-summary FILE.cpuprofile [TOP] [FILTER]\n')
    process.exit(2)
  }
  const top = Number(topArg ?? 25)
  const s = summarise(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile)
  const busy = s.totalMs - s.idleMs
  const pct = (ms: number): string => `${((ms / busy) * 100).toFixed(1).padStart(5)} %`
  const row = ([k, ms]: [string, number]): string => `${ms.toFixed(1).padStart(9)} ms ${pct(ms)}  ${k}`
  const keep = (k: string): boolean => !filter || k.includes(filter)
  const out = [
    `${file}: ${s.totalMs.toFixed(0)} ms sampled, ${s.idleMs.toFixed(0)} ms idle, ${busy.toFixed(0)} ms busy (percentages of busy)`,
    '', 'Self time by file:', ...s.byFile.filter(([k]) => k !== '(idle)').slice(0, top).map(row),
    '', 'Self time by function:', ...s.selfByFunction.filter(([k]) => k !== '(idle)' && keep(k)).slice(0, top).map(row),
    '', 'Inclusive time by function:', ...s.inclusiveByFunction.filter(([k]) => k !== '(idle)' && k !== '(root)' && keep(k)).slice(0, top).map(row)
  ]
  process.stdout.write(out.join('\n') + '\n')
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main(process.argv.slice(2))
