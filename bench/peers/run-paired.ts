// One half of the encryption comparison (bench/lib/paired.ts): a Weft loopback network, encrypted
// or plaintext, that times a pass of its lookups each time the parent asks. The parent runs the
// two halves' passes in turn, so drift on the machine falls on both alike.
//   started by the parent with an IPC channel:
//   node --expose-gc dist/bench/peers/run-paired.js <encrypted|plaintext> <nodes> <lookups> <seed>
// Messages in: { cmd: 'pass' } | { cmd: 'block', from, count } | { cmd: 'finish', firstContact, sessionsUp: rounds of runs }
// (runs, passes and blocks alike, numbered from 0). Messages out: { ready: setupMs }, { pass: WeftPass }
// (for a block too), { figures: LookupFigures }.
import { usage } from '../lib/child.js'
import { WeftLookupRig, type WeftPass } from './weft.js'

export type PairedCommand =
  | { cmd: 'pass' }
  | { cmd: 'block'; from: number; count: number }
  | { cmd: 'finish'; firstContact: number; sessionsUp: number[][] }

/** Hard bound on the whole child; the parent has its own timeout per step. */
const WATCHDOG_MS = 15 * 60_000

async function main(argv: string[]): Promise<void> {
  const [mode, nodesArg, lookupsArg, seedArg] = argv
  const nodes = Number(nodesArg)
  const lookups = Number(lookupsArg)
  const seed = Number(seedArg ?? 1)
  if ((mode !== 'encrypted' && mode !== 'plaintext') || !Number.isInteger(nodes) || nodes < 2 ||
      !Number.isInteger(lookups) || lookups < 1 || !Number.isInteger(seed) || !process.send) {
    usage('run-paired <encrypted|plaintext> <nodes>=2> <lookups>=1> <seed> (with an IPC channel)')
  }
  const send = (m: unknown): void => void process.send!(m)
  const rig = await WeftLookupRig.start(nodes, lookups, seed, { encrypt: mode === 'encrypted' })
  const passes: WeftPass[] = []
  // One command at a time: the parent waits for each answer before it sends the next.
  process.on('message', (m: PairedCommand) => {
    const step = m.cmd === 'pass' || m.cmd === 'block'
      ? (m.cmd === 'pass' ? rig.pass() : rig.block(m.from, m.count)).then((p) => { passes.push(p); send({ pass: p }) })
      : (async () => {
          const figures = rig.figures(passes[m.firstContact], m.sessionsUp.map((round) => round.map((i) => passes[i])))
          await rig.close()
          send({ figures })
          process.disconnect()
        })()
    step.catch((err: unknown) => {
      process.stderr.write(`run-paired ${mode} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
      process.exit(1)
    })
  })
  send({ ready: rig.setupMs })
}

const watchdog = setTimeout(() => {
  process.stderr.write(`run-paired ${process.argv.slice(2).join(' ')}: watchdog fired after ${WATCHDOG_MS} ms\n`)
  process.exit(3)
}, WATCHDOG_MS)
watchdog.unref()
main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`run-paired failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  process.exit(1)
})
