import { PayloadNotEncodableError, PayloadTooLargeError, messageOf } from '../errors/index.js'
import { MAX_PAYLOAD_BYTES } from './limits.js'

/** How large a payload may be: NOTIFY's limit, or a durable channel's own. */
export interface PayloadLimit {
  readonly bytes: number
  readonly durable: boolean
}

const NOTIFY_LIMIT: PayloadLimit = { bytes: MAX_PAYLOAD_BYTES, durable: false }

/**
 * pg-ipc's encoding, kept for compatibility: no payload for `null`/`undefined`, strings as raw
 * text, everything else as JSON. Returns `undefined` for "send no payload".
 */
export function encodeCorePayload(channel: string, payload: unknown): string | undefined {
  if (payload === null || payload === undefined) return undefined
  let text: string | undefined
  if (typeof payload === 'string') {
    text = payload
  } else {
    try {
      text = JSON.stringify(payload)
    } catch (error) {
      throw new PayloadNotEncodableError(
        `Payload for channel "${channel}" cannot be encoded as JSON: ${messageOf(error)}. ` +
          'Send plain data (convert BigInt to string, break cycles).',
        { channel, cause: error },
      )
    }
    if (text === undefined) {
      throw new PayloadNotEncodableError(
        `Payload for channel "${channel}" of type ${typeof payload} has no JSON form. Send plain data instead.`,
        { channel },
      )
    }
  }
  assertPayloadText(channel, text, typeof payload === 'string' ? 'text' : 'json')
  return text
}

/**
 * Checks what the server would reject or alter, so a payload arrives exactly as sent or not at all:
 * a NUL byte fails on the server; raw text with a lone surrogate (half of a UTF-16 pair, as a string
 * cut inside an emoji has) has no UTF-8 form and would arrive with U+FFFD in its place. (JSON text
 * carries a lone surrogate as a `\ud800` escape, which arrives exactly: `form` says which it is.)
 */
export function assertPayloadText(
  channel: string,
  text: string,
  form: 'text' | 'json',
  limit: PayloadLimit = NOTIFY_LIMIT,
): void {
  // JSON.stringify escapes U+0000 (as \u0000): only raw text can hold one.
  if (form === 'text' && text.includes('\u0000')) {
    throw new PayloadNotEncodableError(
      `Payload for channel "${channel}" contains a NUL byte, which PostgreSQL cannot carry. Remove it or send JSON (which escapes it).`,
      { channel },
    )
  }
  if (form === 'text' && !(text as string & { isWellFormed(): boolean }).isWellFormed()) {
    throw new PayloadNotEncodableError(
      `Payload for channel "${channel}" contains a lone surrogate (half of a UTF-16 character pair, e.g. a string cut inside an emoji), ` +
        'which has no UTF-8 form: PostgreSQL would receive U+FFFD instead. Fix the text (toWellFormed() replaces it), ' +
        'or send it inside JSON (an object or array), which escapes it and delivers it exactly.',
      { channel },
    )
  }
  // Fast path: a UTF-16 string of n units is at most 3n UTF-8 bytes.
  if (text.length * 3 <= limit.bytes) return
  const bytes = Buffer.byteLength(text, 'utf8')
  if (bytes > limit.bytes) throw new PayloadTooLargeError({ channel, bytes, limit: limit.bytes, durable: limit.durable })
}

/** pg-ipc's decoding: JSON when it parses, the raw text otherwise (so `''` stays `''`). */
export function decodeCorePayload(raw: string): unknown {
  if (raw === '') return raw
  try {
    return JSON.parse(raw)
  } catch {
    return raw
  }
}
