// spec/openapi.yaml for tests: its routes, and a check that an answer matches the schema the
// document gives for that route and status.
import { readFileSync } from 'node:fs'
import { parse } from 'yaml'
import { Ajv2020 } from 'ajv/dist/2020.js'

const SPEC_ID = 'weft-openapi'
export const spec = parse(readFileSync(new URL('../../../spec/openapi.yaml', import.meta.url), 'utf8')) as {
  paths: Record<string, Record<string, { responses: Record<string, { $ref?: string; content?: Record<string, { schema: object }> }> }>>
  components: { responses: Record<string, { content?: Record<string, { schema: object }> }> }
}

const ajv = new Ajv2020({ strict: false, allErrors: true })
ajv.addSchema({ $id: SPEC_ID, ...spec })

/** Every route in the document as "GET /v1/lookup/:id" (fastify's form). */
export function specRoutes(): string[] {
  const out: string[] = []
  for (const [path, ops] of Object.entries(spec.paths)) {
    for (const method of Object.keys(ops)) out.push(`${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`)
  }
  return out.sort()
}

/** The operation a concrete request path belongs to ("/v1/lookup/ab12" → "/v1/lookup/{id}"). */
function operation(method: string, url: string): [string, string] {
  const path = url.split('?')[0]
  for (const p of Object.keys(spec.paths)) {
    const re = new RegExp(`^${p.replace(/\{\w+\}/g, '[^/]+')}$`)
    if (re.test(path) && spec.paths[p][method.toLowerCase()]) return [p, method.toLowerCase()]
  }
  throw new Error(`${method} ${path} is not in spec/openapi.yaml`)
}

/**
 * Throws unless the document lists `status` for this route and `body` matches its schema.
 * (Unknown routes have no operation: their errors are checked against the Error schema.)
 */
export function checkAnswer(method: string, url: string, status: number, body: unknown, contentType = 'application/json'): void {
  const [path, op] = operation(method, url)
  let response = spec.paths[path][op].responses[String(status)]
  if (!response) throw new Error(`spec/openapi.yaml lists no ${status} answer for ${method} ${path}`)
  const ref = response.$ref?.split('/').pop()
  const pointer = ref
    ? `${SPEC_ID}#/components/responses/${ref}/content/${jsonPointer(contentType)}/schema`
    : `${SPEC_ID}#/paths/${jsonPointer(path)}/${op}/responses/${status}/content/${jsonPointer(contentType)}/schema`
  if (ref) response = spec.components.responses[ref]
  if (!response.content?.[contentType]) throw new Error(`spec/openapi.yaml: ${method} ${path} ${status} has no ${contentType} body`)
  checkSchema(pointer, body)
}

export function checkError(body: unknown): void {
  checkSchema(`${SPEC_ID}#/components/schemas/Error`, body)
}

function checkSchema(pointer: string, body: unknown): void {
  const validate = ajv.getSchema(pointer)
  if (!validate) throw new Error(`no schema at ${pointer}`)
  if (!validate(body)) throw new Error(`answer does not match ${pointer}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(body).slice(0, 500)}`)
}

const jsonPointer = (s: string): string => s.replace(/~/g, '~0').replace(/\//g, '~1')
