import {
  InvalidMessageError,
  InvalidPayloadError,
  PayloadNotEncodableError,
  SchemaNotEncodableError,
  messageOf,
  toIssues,
  type ValidationIssue,
} from '../errors/index.js'
import { assertPayloadText, type PayloadLimit } from './core-payload.js'

/**
 * The typed layer's wire format: JSON text, always (strings too, so they round-trip exactly), and
 * the empty payload for `undefined` (payload-less channels). The value on the wire is what the
 * schema's `encode` produces; the listener gets what its `decode` produces.
 */

interface SafeResult {
  readonly success: boolean
  readonly data?: unknown
  readonly error?: { readonly issues: readonly { code: string; message: string; path: readonly PropertyKey[] }[] } | undefined
}

/** The two directions the wire format needs, from a zod (v4 classic) schema. */
export interface WireSchema {
  safeEncode(value: unknown): SafeResult
  safeDecode(value: unknown): SafeResult
}

interface ZodMethods extends WireSchema {
  safeParse(value: unknown): SafeResult
}

/**
 * The wire directions of a schema. When encoding cannot change the value (no codec, transform,
 * default, catch, coercion or overwrite anywhere in the schema), both directions are plain
 * validation: zod's `safeParse`, several times cheaper than `safeEncode`, which walks the schema
 * backwards and then checks it again.
 */
export function wireSchemaOf(schema: unknown, encodesAsIs: boolean): WireSchema {
  const zod = schema as ZodMethods
  if (!encodesAsIs) return { safeEncode: (value) => zod.safeEncode(value), safeDecode: (value) => zod.safeDecode(value) }
  const validate = (value: unknown): SafeResult => zod.safeParse(value)
  return { safeEncode: validate, safeDecode: validate }
}

/** Validates and encodes a domain value to the payload text. Throws a typed error; sends nothing. */
export function encodeJsonPayload(channel: string, schema: WireSchema, value: unknown, limit?: PayloadLimit): string {
  let result: SafeResult
  try {
    result = schema.safeEncode(value)
  } catch (error) {
    // zod throws (rather than reporting an issue) for a one-way .transform() or an async schema;
    // anything else (a codec's encode that throws, a stack overflow on absurd nesting) is reported as is.
    const text = messageOf(error)
    const hint = /transform/i.test(text)
      ? ' A .transform() only works one way; use z.codec() with both decode and encode.'
      : /promise|async/i.test(text)
        ? ' Schemas on channels must be synchronous.'
        : " Check the value and the schema's encode functions."
    throw new SchemaNotEncodableError({ channel, reason: `encoding the payload failed: ${text}.${hint}`, cause: error })
  }
  if (!result.success) throw new InvalidPayloadError({ channel, issues: toIssues(result.error?.issues ?? []) })
  const wire = result.data
  let text: string | undefined
  try {
    text = wire === undefined ? '' : JSON.stringify(wire)
  } catch (error) {
    // A schema that lets anything through (z.unknown(), z.any()) can hand JSON a BigInt or a cycle.
    throw new PayloadNotEncodableError(
      `Payload for channel "${channel}" cannot be encoded as JSON: ${messageOf(error)}. ` +
        "Send plain data (convert BigInt to string, break cycles), or tighten the channel's schema.",
      { channel, cause: error },
    )
  }
  if (text === undefined) {
    throw new SchemaNotEncodableError({
      channel,
      reason: 'its encoded value has no JSON form. Encode to JSON data (a z.codec can do it).',
    })
  }
  assertPayloadText(channel, text, 'json', limit)
  return text
}

/**
 * Parses and validates an incoming payload. Returns the decoded value or the reason it is invalid.
 * `lenient` is the core's decode of the same text (JSON.parse, or the text itself when that failed),
 * so the JSON is parsed once: a parse that succeeded never gives back its own input text, because
 * JSON strings are quoted.
 */
export function decodeJsonPayload(
  channel: string,
  schema: WireSchema,
  rawPayload: string,
  processId: number,
  lenient: unknown,
): { ok: true; value: unknown } | { ok: false; error: InvalidMessageError } {
  let parsed: unknown
  if (rawPayload !== '') {
    if (lenient !== rawPayload) {
      parsed = lenient
    } else {
      try {
        parsed = JSON.parse(rawPayload) // throws: the SyntaxError is the cause we report
      } catch (error) {
        return { ok: false, error: new InvalidMessageError({ channel, rawPayload, processId, issues: [], cause: error }) }
      }
    }
  }
  let result: SafeResult
  try {
    result = schema.safeDecode(parsed)
  } catch (error) {
    return { ok: false, error: new InvalidMessageError({ channel, rawPayload, processId, issues: [], cause: error }) }
  }
  if (!result.success) {
    const issues: ValidationIssue[] = toIssues(result.error?.issues ?? [])
    return { ok: false, error: new InvalidMessageError({ channel, rawPayload, processId, issues, cause: result.error }) }
  }
  return { ok: true, value: result.data }
}
