// Which code a bench measured: written into its results.
import { execFileSync } from 'node:child_process'

/** The commit at `root`, "+dirty" when src/ has uncommitted changes; "unknown" outside git. */
export function gitCommit(root: string): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: root, encoding: 'utf8' }).trim()
    return dirty ? `${head}+dirty` : head
  } catch {
    return 'unknown'
  }
}
