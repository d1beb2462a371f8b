import { SchemaNotEncodableError } from '../errors/index.js'

/**
 * Runtime twin of the compile-time checks, for JavaScript callers and for schemas whose types are
 * too loose to tell: walks a zod schema's definition and fails early for a one-way `.transform()`
 * (zod cannot encode it) or a wire form that JSON cannot carry.
 */

interface SchemaLike {
  readonly _zod: { readonly def: Record<string, unknown> & { readonly type: string } }
}

/** zod types whose values JSON cannot carry, when they are on the wire side of a schema. */
const NOT_JSON: Readonly<Record<string, string>> = {
  date: 'a Date',
  bigint: 'a bigint',
  map: 'a Map',
  set: 'a Set',
  symbol: 'a symbol',
  nan: 'NaN',
  function: 'a function',
  promise: 'a Promise',
  file: 'a File',
}

/**
 * The values in a schema definition that may be schemas, with the path suffix each stands at: an
 * object's fields, array items (tuple, union options), single children (element, innerType, ...),
 * and a lazy schema's target.
 */
function* childrenOf(def: SchemaLike['_zod']['def']): Generator<[unknown, string]> {
  if (def.type === 'lazy' && typeof def.getter === 'function') {
    yield [(def.getter as () => unknown)(), '']
    return
  }
  for (const [field, value] of Object.entries(def)) {
    if (field === 'type' || field === 'checks') continue
    if (field === 'shape' && typeof value === 'object' && value !== null) {
      for (const [name, child] of Object.entries(value)) yield [child, `.${name}`]
    } else if (Array.isArray(value)) {
      for (const [index, child] of value.entries()) yield [child, `[${index}]`]
    } else {
      yield [value, '']
    }
  }
}

export function isZodSchema(value: unknown): value is SchemaLike {
  if (typeof value !== 'object' || value === null || !('_zod' in value)) return false
  const internals = value._zod
  return typeof internals === 'object' && internals !== null && 'def' in internals
}

export function assertWireSchema(channel: string, schema: unknown): void {
  if (
    !isZodSchema(schema) ||
    typeof (schema as { safeEncode?: unknown }).safeEncode !== 'function' ||
    typeof (schema as { safeDecode?: unknown }).safeDecode !== 'function'
  ) {
    throw new SchemaNotEncodableError({
      channel,
      reason: 'it is not a zod 4 schema. Pass a schema made with `z` from "zod" (v4).',
    })
  }
  const seen = new Set<string>()
  const ids = new WeakMap<object, number>()
  let nextId = 0
  const visit = (node: SchemaLike, wire: boolean, path: string): void => {
    let id = ids.get(node)
    if (id === undefined) ids.set(node, (id = nextId++))
    const key = `${id}:${wire}`
    if (seen.has(key)) return // recursive schemas (z.lazy, z.json)
    seen.add(key)
    const def = node._zod.def
    if (def.type === 'transform') {
      throw new SchemaNotEncodableError({
        channel,
        reason:
          `it uses .transform() at ${path}, which zod can only run one way, so the payload could not be encoded. ` +
          'Use z.codec(wireSchema, domainSchema, { decode, encode }) instead.',
      })
    }
    const notJson = NOT_JSON[def.type]
    if (wire && notJson !== undefined) {
      throw new SchemaNotEncodableError({
        channel,
        reason:
          `its wire form holds ${notJson} at ${path}, which JSON cannot carry. ` +
          'Use a z.codec from a JSON type (for a Date: an ISO string) to the value you want.',
      })
    }
    if (def.type === 'pipe') {
      // A codec or pipe: only its input side travels; its output side is the domain value.
      visitChild(def.in, wire, path)
      visitChild(def.out, false, path)
      return
    }
    for (const [child, suffix] of childrenOf(def)) visitChild(child, wire, `${path}${suffix}`)
  }
  const visitChild = (value: unknown, wire: boolean, path: string): void => {
    if (isZodSchema(value)) visit(value, wire, path)
  }
  visit(schema, true, 'the payload')
}

/** zod types whose parse can give back something else than it was given. */
const CHANGES_VALUE = new Set(['pipe', 'transform', 'default', 'prefault', 'catch', 'success', 'custom'])

/**
 * True when encoding a value with this schema can only validate it, never change it: then
 * `safeParse` gives what `safeEncode` would, much faster. Conservative: anything unknown is "no".
 */
export function encodesAsIs(schema: unknown): boolean {
  const seen = new Set<object>()
  const visit = (node: unknown): boolean => {
    if (!isZodSchema(node)) return true
    if (seen.has(node)) return true
    seen.add(node)
    const def = node._zod.def
    if (CHANGES_VALUE.has(def.type) || def.coerce === true) return false
    if (Array.isArray(def.checks)) {
      for (const check of def.checks as { _zod?: { def?: { check?: string } } }[]) {
        if (check._zod?.def?.check === 'overwrite') return false
      }
    }
    for (const [child] of childrenOf(def)) if (!visit(child)) return false
    return true
  }
  return visit(schema)
}
