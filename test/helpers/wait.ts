// Waiting on real nodes in tests: poll a condition until it holds or a deadline passes.

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Resolves once `ok()` holds; throws after `ms` naming what was awaited and the seed that replays the run. */
export async function waitUntil(what: string, ok: () => boolean, ms: number, seed: string, pollMs = 20): Promise<void> {
  const end = Date.now() + ms
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (seed ${seed})`)
    await sleep(pollMs)
  }
}
