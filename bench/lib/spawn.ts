// Runs one lookup measurement in a fresh child process (clean RSS) and parses its result.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { LookupFigures } from './measure.js'

const RUN_ONE = fileURLToPath(new URL('../peers/run-one.js', import.meta.url))
const FIELDS: (keyof LookupFigures)[] = [
  'impl', 'nodes', 'lookups', 'success', 'p50Ms', 'p95Ms', 'p99Ms', 'datagramsPerLookup', 'rssKiBPerNode', 'setupMs'
]

export function runIsolated(
  impl: string,
  nodes: number,
  lookups: number,
  seed: number,
  timeoutMs = 5 * 60_000
): Promise<LookupFigures> {
  const what = `${impl} N=${nodes}`
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', RUN_ONE, impl, String(nodes), String(lookups), String(seed)], {
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    // Keep only the tail of stderr for the error message.
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)))

    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${what}: no result within ${timeoutMs} ms (killed)\n${stderr}`))
    }, timeoutMs)

    child.on('error', (err) => {
      clearTimeout(timer)
      reject(new Error(`${what}: could not start ${RUN_ONE}: ${err.message}`))
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      if (code !== 0) {
        reject(new Error(`${what}: run-one exited with ${signal ?? code}\n${stderr}`))
        return
      }
      const line = stdout.trim().split('\n').pop() ?? ''
      try {
        const figures = JSON.parse(line) as LookupFigures
        const missing = FIELDS.filter((f) => !(f in figures))
        if (missing.length > 0) throw new Error(`missing fields ${missing.join(', ')}`)
        resolve(figures)
      } catch (err) {
        reject(new Error(`${what}: unparsable result line ${JSON.stringify(line)}: ${(err as Error).message}\n${stderr}`))
      }
    })
  })
}
