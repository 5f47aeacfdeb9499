// Command-line options of the benches: `--name value` or `--name=value`; a bad number is one
// line on stderr and exit code 2.
const argv = process.argv.slice(2)

export function arg(name: string): string | undefined {
  const i = argv.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`))
  if (i < 0) return undefined
  return argv[i].includes('=') ? argv[i].slice(name.length + 3) : argv[i + 1]
}

export function num(name: string, dflt: number, ok: (x: number) => boolean): number {
  const v = arg(name)
  const x = v === undefined ? dflt : Number(v)
  if (!Number.isFinite(x) || !ok(x)) { console.error(`--${name}: bad value ${v}`); process.exit(2) }
  return x
}

export const flag = (name: string): boolean => argv.includes(`--${name}`)
