// Progress for long work: a bar on a terminal, a line every 10% otherwise (logs, CI).
import { SingleBar, Presets } from 'cli-progress'

export interface Progress {
  /** `note`: a short live figure shown after the bar (e.g. events per second). */
  update(done: number, note?: string): void
  stop(): void
}

export function progress(label: string, total: number): Progress {
  if (process.stderr.isTTY) {
    const bar = new SingleBar({ format: `${label} [{bar}] {value}/{total} {percentage}% ({duration}s) {note}`, stream: process.stderr, hideCursor: true }, Presets.shades_classic)
    bar.start(total, 0, { note: '' })
    return { update: (d, note = '') => bar.update(d, { note }), stop: () => bar.stop() }
  }
  let shown = -1
  return {
    update: (d, note) => {
      const step = Math.floor((d / total) * 10)
      if (step > shown) { shown = step; process.stderr.write(`${label}: ${d}/${total}${note ? ` ${note}` : ''}\n`) }
    },
    stop: () => {},
  }
}
