// Property-based tests of the typed layer against a real PostgreSQL.
//
// 1. Round trip: random VALID values for several schemas go out with `notify` on one connection and
//    must arrive on another connection equal (deep, strict equality; Dates as Dates) and in order,
//    or, when their JSON text is 8000 bytes or more, be rejected with PayloadTooLargeError. Nothing
//    may be dropped silently.
// 2. Hostile input: random raw payloads sent by SQL (`SELECT pg_notify($1, $2)` from a plain pg
//    client), interleaved with valid typed messages. Every raw payload is reported exactly once: as
//    'invalid' with its exact text when it does not decode, as a message when it happens to match
//    the schema. Valid typed messages in between still arrive, in order, and the process never crashes.
//
// The value arbitraries are HAND-BUILT to match each schema (fast-check knows nothing of zod): if a
// generator and its schema disagree, `notify` rejects with InvalidPayloadError and the test fails,
// which is a bug in this file, not in the library.
//
// Decisions worth knowing:
// - -0: JSON has no negative zero (JSON.stringify(-0) === '0'), so the generators do produce -0 and
//   the test asserts it arrives as +0 (checked with Object.is semantics via toStrictEqual).
// - `undefined` in an optional property: JSON drops it, so it arrives as an absent key (asserted
//   strictly: the key must not exist, not merely be undefined).
// - NUL: the typed layer always sends JSON text, and JSON.stringify escapes U+0000 as `\u0000`, so a
//   string containing NUL round-trips like any other (asserted). Only a raw NUL byte in the payload
//   text is something PostgreSQL cannot carry: the hostile test asserts the SQL error for those.
// - z.json() decodes recursively, so a deeply nested payload (thousands of levels, still under
//   8000 bytes) can exhaust the stack inside zod, at a depth that moves with V8's JIT state. Such
//   raw payloads may be either delivered or reported 'invalid' (never crash, never vanish); every
//   other payload has exactly one expected outcome.
// - A "__proto__" key is left out of the z.json() generator: zod drops it on both encode and decode
//   (a zod behaviour, reported separately), so such a value does not arrive equal.
//
// Synchronisation, without sleeping: every run ends with a marker message on its own channel from
// the producer connection. Notifications are delivered in commit order and every send has settled
// before the marker is sent, so when the consumer sees the marker, everything sent before it (by
// either connection) has been dispatched. The round trip also has a concurrent mode (a batch of
// notifies started without awaiting each one, which the core batches into one round trip, repeats
// as separate transactions); order must hold there too.
import fc from 'fast-check'
import type pg from 'pg'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  defineChannels,
  ErrorCode,
  InvalidMessageError,
  MAX_PAYLOAD_BYTES,
  PayloadTooLargeError,
  type ChannelSchemas,
  type ChannelSet,
  type CheckChannels,
  type PgIpcError,
  type TypedIPC,
  type TypedMessage,
} from '../../src/index.js'
import { connect, uniqueChannel, waitFor } from '../support/db.js'

const NUM_RUNS = Number(process.env.PROPERTY_RUNS ?? 100)
const MARKER_TIMEOUT_MS = 5_000
/** Stop shrinking a failure after this long, so the counterexample is reported before the test times out. */
const FC_TIME_LIMIT_MS = 50_000
const TEST_TIMEOUT_MS = 60_000

// ---------------------------------------------------------------------------------------------
// Schemas

const isoDate = z.codec(z.iso.datetime(), z.date(), {
  decode: (text) => new Date(text),
  encode: (date) => date.toISOString(),
})

const order = z.object({ orderId: z.uuid(), total: z.number().positive(), placedAt: isoDate })

const nested = z.object({
  id: z.number().int(),
  label: z.string().optional(),
  note: z.string().nullable(),
  tags: z.array(z.string()),
  parent: z
    .object({ id: z.number().int(), path: z.array(z.string()).optional() })
    .nullable()
    .optional(),
  lines: z.array(
    z.object({
      sku: z.string(),
      qty: z.number().int().nonnegative(),
      price: z.number().nullable(),
      meta: z
        .object({
          color: z.string().nullable().optional(),
          dims: z.array(z.array(z.number())).optional(),
        })
        .optional(),
    }),
  ),
})

const event = z.discriminatedUnion('type', [
  z.object({ type: z.literal('created'), id: z.uuid(), at: isoDate }),
  z.object({ type: z.literal('renamed'), id: z.uuid(), from: z.string(), to: z.string() }),
  z.object({ type: z.literal('deleted'), id: z.uuid(), hard: z.boolean(), reason: z.string().nullable().optional() }),
])

const roundTripSchemas = {
  order,
  nested,
  text: z.string(),
  num: z.number(),
  event,
  flag: z.boolean(),
  doc: z.json(),
  marker: z.number().int(),
}
type RoundTripKey = Exclude<keyof typeof roundTripSchemas, 'marker'>

const hostileSchemas = {
  order,
  num: z.number(),
  text: z.string(),
  doc: z.json(),
  marker: z.number().int(),
}
type HostileKey = Exclude<keyof typeof hostileSchemas, 'marker'>

// ---------------------------------------------------------------------------------------------
// Value arbitraries, hand-built to match the schemas above

/** z.uuid(): RFC 9562 versions 1-8 (either case), plus the nil and max UUIDs (lower case only). */
const uuidArb: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc
      .tuple(fc.uuid({ version: [1, 2, 3, 4, 5, 6, 7, 8] }), fc.boolean())
      .map(([id, upper]) => (upper ? id.toUpperCase() : id)),
  },
  { weight: 1, arbitrary: fc.constantFrom('00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff') },
)

/** Dates whose toISOString() z.iso.datetime() accepts: four-digit years only (no ±YYYYYY form). */
const dateArb = fc.date({
  min: new Date('0000-01-01T00:00:00.000Z'),
  max: new Date('9999-12-31T23:59:59.999Z'),
  noInvalidDate: true,
})

/**
 * z.number(): any finite double. fc.double yields -0 only about once in 250 values, so the edge
 * cases (-0 first) are also drawn on purpose.
 */
const finiteArb: fc.Arbitrary<number> = fc.oneof(
  { weight: 4, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      -0,
      0,
      Number.MIN_VALUE,
      -Number.MIN_VALUE,
      Number.MAX_VALUE,
      -Number.MAX_VALUE,
      Number.EPSILON,
      2 ** 53 + 2,
      0.1 + 0.2,
      1e21,
      1e-7,
    ),
  },
)
/** z.number().positive(): finite and > 0. */
const positiveArb = fc.double({ min: Number.MIN_VALUE, noNaN: true, noDefaultInfinity: true })
/** z.number().int(): zod 4 accepts safe integers only. */
const intArb = fc.maxSafeInteger()

/** Characters that tend to break hand-written encoders (a lone surrogate and NUL among them). */
const nastyUnit = fc.constantFrom(
  '"',
  '\\',
  "'",
  '\u0000',
  '\n',
  '\r',
  '\t',
  '\b',
  '\f',
  '\u001f',
  '\u007f',
  '\u2028',
  '\u2029',
  '\uFEFF',
  '\uD800',
  '\uDFFF',
  '😀',
  '👩‍👩‍👧',
  'é',
  'e\u0301',
  '{',
  '}',
  '[',
  ']',
  ':',
  ',',
  'null',
  '\\u0000',
  '$1',
  '%s',
  ' ',
)

/** A string whose JSON text is exactly `bytes` UTF-8 bytes long, ending in `tail`: the 8000-byte boundary. */
const boundaryTextArb = fc
  .tuple(
    fc.integer({ min: MAX_PAYLOAD_BYTES - 8, max: MAX_PAYLOAD_BYTES + 8 }),
    fc.constantFrom('a', '"', '\\', 'é', '€', '😀', '\u0001'),
  )
  .map(([bytes, tail]) => {
    const tailBytes = Buffer.byteLength(JSON.stringify(tail)) - 2
    return 'a'.repeat(bytes - 2 - tailBytes) + tail
  })

const smallTextArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
  { weight: 3, arbitrary: fc.string({ unit: nastyUnit, maxLength: 40 }) },
  { weight: 1, arbitrary: fc.constant('') },
)

/** z.string(): any UTF-16 string, including '', quotes, backslashes, emoji, lone surrogates, NUL. */
const textArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 12, arbitrary: smallTextArb },
  // Mostly astral code points (4 UTF-8 bytes, 6 JSON bytes when escaped): straddles the limit.
  { weight: 2, arbitrary: fc.string({ unit: 'binary', minLength: 1500, maxLength: 2600 }) },
  { weight: 2, arbitrary: boundaryTextArb },
)

/** An optional property: absent (via requiredKeys), present, or present as `undefined`. */
function optional<T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> {
  return fc.option(arb, { nil: undefined, freq: 4 })
}
function nullable<T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | null> {
  return fc.option(arb, { nil: null, freq: 4 })
}

const orderArb = fc.record({ orderId: uuidArb, total: positiveArb, placedAt: dateArb })

const nestedArb = fc.record(
  {
    id: intArb,
    label: optional(smallTextArb),
    note: nullable(smallTextArb),
    tags: fc.array(smallTextArb, { maxLength: 5 }),
    parent: optional(
      nullable(fc.record({ id: intArb, path: optional(fc.array(smallTextArb, { maxLength: 3 })) }, { requiredKeys: ['id'] })),
    ),
    lines: fc.array(
      fc.record(
        {
          sku: smallTextArb,
          qty: fc.nat(),
          price: nullable(finiteArb),
          meta: optional(
            fc.record(
              {
                color: optional(nullable(smallTextArb)),
                dims: optional(fc.array(fc.array(finiteArb, { maxLength: 3 }), { maxLength: 3 })),
              },
              { requiredKeys: [] },
            ),
          ),
        },
        { requiredKeys: ['sku', 'qty', 'price'] },
      ),
      { maxLength: 4 },
    ),
  },
  { requiredKeys: ['id', 'note', 'tags', 'lines'] },
)

const eventArb = fc.oneof(
  fc.record({ type: fc.constant('created' as const), id: uuidArb, at: dateArb }),
  fc.record({ type: fc.constant('renamed' as const), id: uuidArb, from: smallTextArb, to: smallTextArb }),
  fc.record(
    { type: fc.constant('deleted' as const), id: uuidArb, hard: fc.boolean(), reason: optional(nullable(smallTextArb)) },
    { requiredKeys: ['type', 'id', 'hard'] },
  ),
)

function hasProtoKey(value: unknown): boolean {
  if (Array.isArray(value)) return value.some(hasProtoKey)
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).some(([key, child]) => key === '__proto__' || hasProtoKey(child))
  }
  return false
}

/** z.json(): any JSON value (fc.jsonValue never yields NaN or ±Infinity; it does yield -0). */
const docArb: fc.Arbitrary<unknown> = fc
  .oneof(
    { weight: 6, arbitrary: fc.jsonValue({ maxDepth: 5 }) },
    // Long arrays of JSON: some go over the 8000-byte limit.
    { weight: 1, arbitrary: fc.array(fc.jsonValue({ maxDepth: 2 }), { minLength: 50, maxLength: 400 }) },
  )
  .filter((value) => !hasProtoKey(value))

const roundTripArbs: { [Key in RoundTripKey]: fc.Arbitrary<unknown> } = {
  order: orderArb,
  nested: nestedArb,
  text: textArb,
  num: finiteArb,
  event: eventArb,
  flag: fc.boolean(),
  doc: docArb,
}

// ---------------------------------------------------------------------------------------------
// Helpers

/** Channel sets keyed by unique names, so parallel test files never hear each other (as in typed.test.ts). */
function channelSet<Schemas extends ChannelSchemas>(
  schemas: Schemas,
): { channels: ChannelSet<ChannelSchemas>; name: { [Key in keyof Schemas]: string } } {
  const name = {} as { [Key in keyof Schemas]: string }
  const map: ChannelSchemas = {}
  for (const key of Object.keys(schemas) as (keyof Schemas & string)[]) {
    name[key] = uniqueChannel(`p${key.slice(0, 10)}`)
    map[name[key]] = schemas[key] as z.ZodType
  }
  return { channels: defineChannels<ChannelSchemas>(map as ChannelSchemas & CheckChannels<ChannelSchemas>), name }
}

/**
 * What a value looks like after JSON: -0 becomes 0 and properties holding `undefined` disappear.
 * Dates stay Dates (the codec turns the ISO string back into one).
 */
function afterJson(value: unknown): unknown {
  if (typeof value === 'number') return Object.is(value, -0) ? 0 : value
  if (value instanceof Date) return new Date(value.getTime())
  if (Array.isArray(value)) return value.map(afterJson)
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, child]) => child !== undefined)
        .map(([key, child]) => [key, afterJson(child)]),
    )
  }
  return value
}

/** Bytes of the JSON text of a domain value. Date#toJSON is toISOString, which is what the codec sends. */
function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value), 'utf8')
}

/** Resolves when the consumer receives marker `id` on the marker channel. */
function markerSeen(consumer: TypedIPC<ChannelSchemas>, channel: string, id: number): Promise<unknown> {
  return waitFor<TypedMessage<string, unknown>>(consumer, channel, {
    timeoutMs: MARKER_TIMEOUT_MS,
    filter: (message) => message.payload === id,
  })
}

type Received = { kind: 'message'; message: TypedMessage<string, unknown> } | { kind: 'invalid'; error: InvalidMessageError }

/** Why a message was invalid, as the error tells it. */
type Reason = 'json' | 'schema' | 'threw'
function reasonOf(error: InvalidMessageError): Reason {
  if (error.issues.length > 0) return 'schema'
  return error.cause instanceof SyntaxError ? 'json' : 'threw'
}

function messageView(message: TypedMessage<string, unknown>): Record<string, unknown> {
  return {
    kind: 'message',
    channel: message.channel,
    processId: message.processId,
    payload: message.payload,
    rawPayload: message.rawPayload,
    wire: message.rawPayload === '' ? undefined : (JSON.parse(message.rawPayload) as unknown),
  }
}

function invalidView(error: InvalidMessageError): Record<string, unknown> {
  return {
    kind: 'invalid',
    isInvalidMessageError: error instanceof InvalidMessageError,
    code: error.code,
    channel: error.channel,
    processId: error.processId,
    rawPayload: error.rawPayload,
    reason: reasonOf(error),
  }
}

function view(received: Received): Record<string, unknown> {
  return received.kind === 'message' ? messageView(received.message) : invalidView(received.error)
}

const fcParameters = {
  numRuns: NUM_RUNS,
  interruptAfterTimeLimit: FC_TIME_LIMIT_MS,
  markInterruptAsFailure: true,
} as const

// ---------------------------------------------------------------------------------------------

describe('typed layer, property-based', () => {
  it(
    'random valid values arrive equal and in order, or are rejected as too large (never dropped)',
    async () => {
      const { channels, name } = channelSet(roundTripSchemas)
      const keys = Object.keys(roundTripArbs) as RoundTripKey[]
      const producer = channels.attach(await connect())
      const consumer = channels.attach(await connect())
      const producerErrors: PgIpcError[] = []
      const consumerErrors: PgIpcError[] = []
      producer.on('error', (error) => producerErrors.push(error))
      consumer.on('error', (error) => consumerErrors.push(error))
      const invalid: InvalidMessageError[] = []
      consumer.on('invalid', (error) => invalid.push(error))
      let log: Received[] = []
      for (const key of keys) consumer.on(name[key], (message) => log.push({ kind: 'message', message }))
      consumer.on(name.marker, () => {}) // keeps the marker channel LISTENed between runs
      await Promise.all([...keys, 'marker' as const].map((key) => consumer.listening(name[key])))
      const producerPid = producer.processId

      const sendArb = fc.oneof(...keys.map((key) => roundTripArbs[key].map((value) => ({ key, value }))))
      // A pool and picks into it, so a batch often repeats a value: PostgreSQL folds identical
      // notifications inside one transaction, and the concurrent mode batches notifies.
      const batchArb = fc
        .record({
          pool: fc.array(sendArb, { minLength: 1, maxLength: 8 }),
          picks: fc.array(fc.nat(), { minLength: 1, maxLength: 14 }),
          concurrent: fc.boolean(),
        })
        .map(({ pool, picks, concurrent }) => ({
          concurrent,
          batch: picks.map((pick) => pool[pick % pool.length] as { key: RoundTripKey; value: unknown }),
        }))

      let runId = 0
      let tooLarge = 0
      let delivered = 0
      await fc.assert(
        fc.asyncProperty(batchArb, async ({ concurrent, batch }) => {
          runId++
          log = []
          invalid.length = 0
          const expected: Record<string, unknown>[] = []
          const outcomes: Promise<unknown>[] = []
          const expectedOutcomes: unknown[] = []
          for (const { key, value } of batch) {
            const bytes = jsonBytes(value)
            const sent = producer.notify(name[key], value).then(
              () => 'sent',
              (error: unknown) =>
                error instanceof PayloadTooLargeError
                  ? { tooLarge: true, code: error.code, channel: error.channel, bytes: error.bytes, limit: error.limit }
                  : error,
            )
            if (bytes > MAX_PAYLOAD_BYTES) {
              tooLarge++
              expectedOutcomes.push({
                tooLarge: true,
                code: ErrorCode.PayloadTooLarge,
                channel: name[key],
                bytes,
                limit: MAX_PAYLOAD_BYTES,
              })
            } else {
              delivered++
              expectedOutcomes.push('sent')
              expected.push({
                kind: 'message',
                channel: name[key],
                processId: producerPid,
                payload: afterJson(value),
                rawPayload: expect.any(String),
                wire: JSON.parse(JSON.stringify(value)) as unknown,
              })
            }
            outcomes.push(sent)
            if (!concurrent) await sent
          }
          expect(await Promise.all(outcomes)).toEqual(expectedOutcomes)
          const marker = markerSeen(consumer, name.marker, runId)
          await producer.notify(name.marker, runId)
          await marker
          expect(invalid).toEqual([])
          expect(log.map(view)).toStrictEqual(expected)
          for (const received of log) {
            if (received.kind === 'message') expect(Object.isFrozen(received.message)).toBe(true)
          }
        }),
        fcParameters,
      )
      expect(producerErrors).toEqual([])
      expect(consumerErrors).toEqual([])
      // The generators must actually reach both outcomes, or the size half of the property is vacuous.
      expect(delivered).toBeGreaterThan(0)
      if (NUM_RUNS >= 50) expect(tooLarge).toBeGreaterThan(0)
      await producer.end()
      await consumer.end()
    },
    TEST_TIMEOUT_MS,
  )

  it('the 8000-byte boundary: 7999 bytes of JSON arrive, 8000 are rejected with PayloadTooLargeError', async () => {
    const { channels, name } = channelSet({ text: z.string(), marker: z.number() })
    const producer = channels.attach(await connect())
    const consumer = channels.attach(await connect())
    const got: string[] = []
    consumer.on(name.text, (message) => got.push(message.payload as string))
    consumer.on(name.marker, () => {})
    await Promise.all([consumer.listening(name.text), consumer.listening(name.marker)])
    const fits = `${'a'.repeat(MAX_PAYLOAD_BYTES - 2 - 4)}😀` // "…😀": exactly 7999 bytes
    // "…é\"": 8000 bytes but 7999 UTF-16 units, so a limit counted in characters would let it through.
    const over = `${'a'.repeat(MAX_PAYLOAD_BYTES - 5)}é"`
    expect(jsonBytes(fits)).toBe(MAX_PAYLOAD_BYTES)
    expect(jsonBytes(over)).toBe(MAX_PAYLOAD_BYTES + 1)
    expect(JSON.stringify(over).length).toBe(MAX_PAYLOAD_BYTES)
    await producer.notify(name.text, fits)
    const error = await producer.notify(name.text, over).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(PayloadTooLargeError)
    expect(error).toMatchObject({ channel: name.text, bytes: MAX_PAYLOAD_BYTES + 1, limit: MAX_PAYLOAD_BYTES })
    const marker = markerSeen(consumer, name.marker, 1)
    await producer.notify(name.marker, 1)
    await marker
    expect(got).toEqual([fits])
    await producer.end()
    await consumer.end()
  })

  it('a NUL byte: the typed layer carries it (JSON escapes it); PostgreSQL rejects a raw one', async () => {
    const { channels, name } = channelSet({ text: z.string(), marker: z.number() })
    const producer = channels.attach(await connect())
    const consumer = channels.attach(await connect())
    const sender = await connect()
    const got: TypedMessage<string, unknown>[] = []
    consumer.on(name.text, (message) => got.push(message))
    consumer.on(name.marker, () => {})
    await Promise.all([consumer.listening(name.text), consumer.listening(name.marker)])
    expect(channels.notifyQuery(name.text, 'a\u0000b').values[1]).toBe('"a\\u0000b"')
    await producer.notify(name.text, 'a\u0000b')
    const rejected = await sender.query('SELECT pg_notify($1, $2)', [name.text, '"a\u0000b"']).catch((e: unknown) => e)
    expect(rejected).toMatchObject({ code: '22021' }) // invalid byte sequence for encoding "UTF8": 0x00
    const marker = markerSeen(consumer, name.marker, 1)
    await producer.notify(name.marker, 1)
    await marker
    expect(got.map((m) => [m.payload, m.rawPayload])).toEqual([['a\u0000b', '"a\\u0000b"']])
    await producer.end()
    await consumer.end()
  })
})

// ---------------------------------------------------------------------------------------------
// Hostile input

/** JSON-ish fragments; joined at random they make near-JSON garbage. */
const fragmentArb = fc.constantFrom(
  '{',
  '}',
  '[',
  ']',
  '"',
  ':',
  ',',
  'null',
  'true',
  'false',
  'tru',
  'nul',
  '1',
  '-',
  '+',
  '.',
  'e',
  'E',
  '0x1F',
  '01',
  '1e400',
  'NaN',
  'Infinity',
  '-Infinity',
  'undefined',
  '"a"',
  '"\\u',
  '\\',
  '"\\ud800"',
  '{"a":',
  '"orderId"',
  '"total"',
  '"placedAt"',
  '"__proto__"',
  ' ',
  '\n',
  '\t',
  '\uFEFF',
  '//',
  '/*',
  '*/',
  "'",
  '😀',
  '\u2028',
)

/** Bracket depth of JSON-ish text, ignoring brackets inside strings. */
function nestingDepth(text: string): number {
  let depth = 0
  let max = 0
  let inString = false
  for (let index = 0; index < text.length; index++) {
    const char = text[index]
    if (inString) {
      if (char === '\\') index++
      else if (char === '"') inString = false
    } else if (char === '"') inString = true
    else if (char === '[' || char === '{') max = Math.max(max, ++depth)
    else if (char === ']' || char === '}') depth--
  }
  return max
}

/** Any raw text: arbitrary unicode, near-JSON, JSON of any shape, huge numbers, deep nesting, ''... */
const garbageArb: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc.string({ unit: 'grapheme', maxLength: 60 }),
  fc.array(fragmentArb, { maxLength: 20 }).map((parts) => parts.join('')),
  fc.json({ maxDepth: 4 }),
  fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify({ payload: value })),
  fc.bigInt({ min: -(10n ** 400n), max: 10n ** 400n }).map(String),
  fc.constantFrom('1e309', '-1e309', '1e-400', '-0', '1E2', '0.1e1', '123456789012345678901234567890', '9007199254740993'),
  fc.integer({ min: 1, max: 3999 }).map((depth) => '['.repeat(depth) + ']'.repeat(depth)),
  fc.integer({ min: 1, max: 1332 }).map((depth) => '{"a":'.repeat(depth) + 'null' + '}'.repeat(depth)),
  fc.integer({ min: 1, max: 5000 }).map((depth) => '['.repeat(depth)),
  fc.constantFrom('', ' ', '\n', '\t\r\n ', 'null', '""', '[]', '{}', 'true', '"\\u0000"'),
  // Over the server's limit: the SQL error is asserted for these.
  fc.integer({ min: MAX_PAYLOAD_BYTES - 3, max: MAX_PAYLOAD_BYTES + 3 }).map((bytes) => JSON.stringify('x'.repeat(bytes - 2))),
)

/** Text that is (or nearly is) a valid payload of one channel, so some raw payloads do match. */
function nearlyValidArb(key: HostileKey): fc.Arbitrary<string> {
  switch (key) {
    case 'order': {
      const fieldArb = fc.constantFrom('orderId', 'total', 'placedAt', 'extra', '__proto__')
      const badValueArb = fc.oneof(
        fc.jsonValue({ maxDepth: 2 }),
        fc.constantFrom(
          0,
          -1,
          '12.5',
          'not-a-uuid',
          '2026-11-26',
          '2026-11-26T10:00:00+01:00',
          '2026-13-01T00:00:00Z',
          '2026-11-26T10:00:00.123456789Z',
        ),
      )
      return fc.oneof(
        orderArb.map((value) => JSON.stringify(value)),
        fc.tuple(orderArb, fieldArb).map(([value, field]) => {
          const wire: Record<string, unknown> = JSON.parse(JSON.stringify(value))
          delete wire[field]
          return JSON.stringify(wire)
        }),
        fc.tuple(orderArb, fieldArb, badValueArb).map(([value, field, bad]) => {
          const wire: Record<string, unknown> = JSON.parse(JSON.stringify(value))
          Object.defineProperty(wire, field, { value: bad, enumerable: true, writable: true, configurable: true })
          return JSON.stringify(wire)
        }),
      )
    }
    case 'num':
      return fc.oneof(
        fc.double().map((value) => JSON.stringify(value)), // NaN and ±Infinity stringify to "null"
        fc.double({ noNaN: true }).map(String), // "Infinity", "-0"... not JSON or not the same
        fc.maxSafeInteger().map((value) => ` ${value}\n`),
      )
    case 'text':
      return fc.oneof(
        smallTextArb.map((value) => JSON.stringify(value)),
        smallTextArb, // raw, unquoted: JSON only by accident
      )
    case 'doc':
      return fc.oneof(
        fc.json({ maxDepth: 5 }),
        fc.jsonValue({ maxDepth: 3 }).map((value) => `\t${JSON.stringify(value)} `),
      )
  }
}

const hostileValueArbs: { [Key in HostileKey]: fc.Arbitrary<unknown> } = {
  order: orderArb,
  num: finiteArb,
  text: smallTextArb,
  doc: fc.jsonValue({ maxDepth: 3 }).filter((value) => !hasProtoKey(value)),
}

type HostileOp =
  | { readonly kind: 'raw'; readonly key: HostileKey; readonly payload: string }
  | { readonly kind: 'typed'; readonly key: HostileKey; readonly value: unknown }

function hostileOpArb(keys: readonly HostileKey[]): fc.Arbitrary<HostileOp> {
  const keyArb = fc.constantFrom(...keys)
  return fc
    .oneof(
      { weight: 4, arbitrary: fc.record({ kind: fc.constant('raw' as const), key: keyArb, payload: garbageArb }) },
      {
        weight: 3,
        arbitrary: keyArb.chain((key) => nearlyValidArb(key).map((payload): HostileOp => ({ kind: 'raw', key, payload }))),
      },
      {
        weight: 3,
        arbitrary: keyArb.chain((key) => hostileValueArbs[key].map((value): HostileOp => ({ kind: 'typed', key, value }))),
      },
    )
    .map((op): HostileOp =>
      // pg sends text as UTF-8, where a lone surrogate becomes U+FFFD: send what can arrive unchanged.
      op.kind === 'raw' ? { ...op, payload: op.payload.replace(/\p{Cs}/gu, '\uFFFD') } : op,
    )
}

/**
 * The expected outcome of a raw payload, computed with the schema itself, as the wire format says:
 * '' decodes as `undefined`, anything else is JSON.parse'd, then schema.safeDecode'd.
 */
type RawExpectation =
  | { readonly outcome: 'message'; readonly payload: unknown }
  | { readonly outcome: 'invalid'; readonly reason: Reason }
  /** zod may run out of stack on deep nesting, at a depth that varies: either outcome is fine. */
  | { readonly outcome: 'either'; readonly payload: unknown }

const DEEP = 1000

function expectRaw(schema: z.ZodType, key: HostileKey, raw: string): RawExpectation {
  let parsed: unknown
  if (raw !== '') {
    try {
      parsed = JSON.parse(raw)
    } catch {
      return { outcome: 'invalid', reason: 'json' }
    }
  }
  const recursive = key === 'doc' && nestingDepth(raw) > DEEP
  let result: ReturnType<z.ZodType['safeDecode']>
  try {
    result = schema.safeDecode(parsed)
  } catch {
    return recursive ? { outcome: 'either', payload: parsed } : { outcome: 'invalid', reason: 'threw' }
  }
  if (recursive) return { outcome: 'either', payload: result.success ? result.data : parsed }
  return result.success ? { outcome: 'message', payload: result.data } : { outcome: 'invalid', reason: 'schema' }
}

function serverRejects(raw: string): boolean {
  return raw.includes('\u0000') || Buffer.byteLength(raw, 'utf8') >= MAX_PAYLOAD_BYTES + 1
}

describe('typed layer, hostile input from SQL', () => {
  it(
    'random raw payloads: each reported once (invalid with its exact text, or delivered if it matches); typed messages in between arrive in order',
    async () => {
      const { channels, name } = channelSet(hostileSchemas)
      const keys = Object.keys(hostileValueArbs) as HostileKey[]
      const consumerClient = await connect()
      const consumer = channels.attach(consumerClient)
      const producer = channels.attach(await connect())
      const sender: pg.Client = await connect()
      const senderPid = (sender as unknown as { processID: number }).processID
      const producerPid = producer.processId
      const errors: PgIpcError[] = []
      consumer.on('error', (error) => errors.push(error))
      producer.on('error', (error) => errors.push(error))
      let log: Received[] = []
      // Two listeners per channel: a message is decoded once and reaches both; an invalid one neither.
      let second: TypedMessage<string, unknown>[] = []
      for (const key of keys) {
        consumer.on(name[key], (message) => log.push({ kind: 'message', message }))
        consumer.on(name[key], (message) => second.push(message))
      }
      consumer.on('invalid', (error) => log.push({ kind: 'invalid', error }))
      consumer.on(name.marker, () => {})
      await Promise.all([...keys, 'marker' as const].map((key) => consumer.listening(name[key])))

      let runId = 0
      const seen = { message: 0, invalid: 0, either: 0, serverRejected: 0, typed: 0 }
      await fc.assert(
        fc.asyncProperty(fc.array(hostileOpArb(keys), { minLength: 1, maxLength: 30, size: 'medium' }), async (ops) => {
          runId++
          log = []
          second = []
          const expected: Record<string, unknown>[] = []
          const eitherSlots = new Map<number, { payload: unknown; raw: string; channel: string }>()
          for (const op of ops) {
            const channel = name[op.key]
            if (op.kind === 'typed') {
              await producer.notify(channel, op.value)
              seen.typed++
              expected.push({
                kind: 'message',
                channel,
                processId: producerPid,
                payload: afterJson(op.value),
                rawPayload: expect.any(String),
                wire: JSON.parse(JSON.stringify(op.value)) as unknown,
              })
              continue
            }
            const raw = op.payload
            const result = await sender.query('SELECT pg_notify($1, $2)', [channel, raw]).then(
              () => undefined,
              (error: unknown) => error,
            )
            if (serverRejects(raw)) {
              seen.serverRejected++
              // 22021: NUL is an invalid byte sequence for UTF8; 22023: payload string too long.
              expect(result, 'the server must reject this payload').toMatchObject({ code: expect.stringMatching(/^2202[13]$/) })
              continue
            }
            expect(result, 'pg_notify failed for a payload the server should accept').toBeUndefined()
            const expectation = expectRaw(hostileSchemas[op.key], op.key, raw)
            seen[expectation.outcome]++
            if (expectation.outcome === 'either') {
              eitherSlots.set(expected.length, { payload: expectation.payload, raw, channel })
              expected.push({ kind: 'either' })
            } else if (expectation.outcome === 'message') {
              expected.push({
                kind: 'message',
                channel,
                processId: senderPid,
                payload: expectation.payload,
                rawPayload: raw,
                wire: raw === '' ? undefined : (JSON.parse(raw) as unknown),
              })
            } else {
              expected.push({
                kind: 'invalid',
                isInvalidMessageError: true,
                code: ErrorCode.InvalidMessage,
                channel,
                processId: senderPid,
                rawPayload: raw,
                reason: expectation.reason,
              })
            }
          }
          const marker = markerSeen(consumer, name.marker, runId)
          await producer.notify(name.marker, runId)
          await marker

          const actual = log.map(view)
          // An 'either' slot takes the form of whatever arrived there, when that is one of its two.
          const resolved = expected.map((slot, index) => {
            const either = eitherSlots.get(index)
            if (either === undefined) return slot
            const common = { channel: either.channel, processId: senderPid, rawPayload: either.raw }
            return actual[index]?.kind === 'message'
              ? { kind: 'message', ...common, payload: either.payload, wire: JSON.parse(either.raw) as unknown }
              : { kind: 'invalid', isInvalidMessageError: true, code: ErrorCode.InvalidMessage, ...common, reason: 'threw' }
          })
          expect(actual).toStrictEqual(resolved)
          const messages = log.flatMap((received) => (received.kind === 'message' ? [received.message] : []))
          expect(second).toHaveLength(messages.length)
          second.forEach((message, index) => expect(message).toBe(messages[index]))
          expect(errors).toEqual([])
        }),
        fcParameters,
      )
      // Each kind of outcome must actually have been exercised, or the property is weaker than it reads.
      if (NUM_RUNS >= 50) {
        expect(seen.message).toBeGreaterThan(0)
        expect(seen.invalid).toBeGreaterThan(0)
        expect(seen.serverRejected).toBeGreaterThan(0)
        expect(seen.typed).toBeGreaterThan(0)
      }
      // Still alive: the connection answers and the channels are still LISTENed.
      expect((await consumerClient.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }])
      await Promise.all(keys.map((key) => consumer.listening(name[key])))
      expect(errors).toEqual([])
      await producer.end()
      await consumer.end()
    },
    TEST_TIMEOUT_MS,
  )
})
