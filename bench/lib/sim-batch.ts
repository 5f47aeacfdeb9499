// Runs one `weft sim` in a child process and reads back its reports (one per topology and size):
// what the benches that drive the simulator share.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { SimMachine, SimReport, SimResult } from '../../src/sim/report.js'

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))

/** A command as a person would type it, and what it reported. */
export interface Batch { command: string; runs: SimReport[] }

export function simBatch(args: string[]): Batch {
  const dir = mkdtempSync(join(os.tmpdir(), 'weft-bench-'))
  const out = join(dir, 'r.json')
  const command = `weft sim ${args.join(' ')}`
  console.log(command)
  try {
    const r = spawnSync(process.execPath, [CLI, 'sim', ...args, '--out', out], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 3 * 3600_000 })
    if (r.status !== 0) throw new Error(`${command} failed (exit ${r.status ?? r.signal})`)
    const simulated = [JSON.parse(readFileSync(out, 'utf8')) as SimResult | SimResult[]].flat()
    const machine = JSON.parse(readFileSync(`${out}.machine.json`, 'utf8')) as SimMachine[]
    return { command, runs: simulated.map((s, i) => ({ simulated: s, machine: machine[i] })) }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
