// Parts of docs/benchmarks.md that one bench writes and the others carry over: each lies
// between `<!-- NAME:start -->` and `<!-- NAME:end -->`.

const markers = (name: string): [string, string] => [`<!-- ${name}:start -->`, `<!-- ${name}:end -->`]

/** Puts the section in place of the old one of that name, or at the end. */
export function spliceSection(doc: string, name: string, section: string): string {
  const [START, END] = markers(name)
  const a = doc.indexOf(START), b = doc.indexOf(END)
  if (a >= 0 && b > a) return doc.slice(0, a) + section.trimEnd() + doc.slice(b + END.length)
  return doc.trimEnd() + '\n\n' + section
}

/** The section of that name as it stands in a document (to carry over a regeneration), or ''. */
export function currentSection(doc: string, name: string): string {
  const [START, END] = markers(name)
  const a = doc.indexOf(START), b = doc.indexOf(END)
  return a >= 0 && b > a ? doc.slice(a, b + END.length) + '\n' : ''
}

/** The names of every marked section in a document, in order. */
export function sectionNames(doc: string): string[] {
  return [...doc.matchAll(/<!-- ([a-z0-9-]+):start -->/g)].map((m) => m[1])
}

/** Wraps a body in the markers of `name`. */
export function section(name: string, body: string): string {
  const [START, END] = markers(name)
  return `${START}\n${body.trim()}\n${END}\n`
}
