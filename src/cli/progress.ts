// Progress for long work: a bar on a terminal, a line every 10% otherwise (logs, CI).
import { SingleBar, Presets } from 'cli-progress'

export interface Progress {
  update(done: number): void
  stop(): void
}

export function progress(label: string, total: number): Progress {
  if (process.stderr.isTTY) {
    const bar = new SingleBar({ format: `${label} [{bar}] {value}/{total} {percentage}% ({duration}s)`, stream: process.stderr, hideCursor: true }, Presets.shades_classic)
    bar.start(total, 0)
    return { update: (d) => bar.update(d), stop: () => bar.stop() }
  }
  let shown = -1
  return {
    update: (d) => {
      const step = Math.floor((d / total) * 10)
      if (step > shown) { shown = step; process.stderr.write(`${label}: ${d}/${total}\n`) }
    },
    stop: () => {},
  }
}
