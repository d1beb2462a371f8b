// The typed layer against a real PostgreSQL: validation both ways, codecs, payload-less channels,
// ignoreOwn, messages(), notifyQuery in transactions, SQL interop, and hostile input.
import type pg from 'pg'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  BufferOverflowError,
  defineChannels,
  EndedError,
  ErrorCode,
  type InvalidMessageError,
  InvalidPayloadError,
  ListenerError,
  PayloadTooLargeError,
  pgIPC,
  QueryFailedError,
  ReservedChannelError,
  SchemaNotEncodableError,
  UnknownChannelError,
  type ChannelSchemas,
  type CheckChannels,
  type ChannelSet,
  type PgIpcError,
  type TypedIPC,
  type TypedMessage,
} from '../../src/index.js'
import { connect, listeningChannels, uniqueChannel, waitFor } from '../support/db.js'

const isoDate = z.codec(z.iso.datetime(), z.date(), {
  decode: (text) => new Date(text),
  encode: (date) => date.toISOString(),
})
const order = z.object({ orderId: z.uuid(), total: z.number().positive(), placedAt: isoDate })
const orderValue = {
  orderId: '3f0e8a4e-5a8a-4b55-9d0e-0f6f7f0a1b2c',
  total: 12.5,
  placedAt: new Date('2026-11-26T10:00:00.000Z'),
}

/** defineChannels as a JavaScript caller sees it: no compile-time checks. */
const defineChannelsFromJs = defineChannels as unknown as (schemas: unknown) => ChannelSet<ChannelSchemas>

/** Channel sets keyed by unique names, so parallel test files never hear each other. */
function channelSet<Schemas extends ChannelSchemas>(
  schemas: Schemas,
): { channels: ChannelSet<ChannelSchemas>; name: { [Key in keyof Schemas]: string } } {
  const name = {} as { [Key in keyof Schemas]: string }
  const map: ChannelSchemas = {}
  for (const key of Object.keys(schemas) as (keyof Schemas & string)[]) {
    name[key] = uniqueChannel(key.slice(0, 12))
    map[name[key]] = schemas[key] as z.ZodType
  }
  return { channels: defineChannels<ChannelSchemas>(map as ChannelSchemas & CheckChannels<ChannelSchemas>), name }
}

/** The next message on a channel. */
function next(ipc: TypedIPC<ChannelSchemas>, channel: string): Promise<TypedMessage<string, unknown>> {
  return new Promise((resolve) => ipc.once(channel, resolve))
}

async function raw(sender: pg.Client, channel: string, payload: string): Promise<void> {
  await sender.query('SELECT pg_notify($1, $2)', [channel, payload])
}

function errorsOf(ipc: TypedIPC<ChannelSchemas>): PgIpcError[] {
  const errors: PgIpcError[] = []
  ipc.on('error', (error) => errors.push(error))
  return errors
}

describe('round trips', () => {
  it('a codec carries a Date: a Date at both ends, an ISO string on the wire', async () => {
    const { channels, name } = channelSet({ orderPlaced: order })
    const producer = channels.attach(await connect())
    const consumer = channels.attach(await connect())
    const message = next(consumer, name.orderPlaced)
    await consumer.listening(name.orderPlaced)
    await producer.notify(name.orderPlaced, orderValue)
    const received = await message
    expect(received.payload).toEqual(orderValue)
    expect((received.payload as typeof orderValue).placedAt).toBeInstanceOf(Date)
    expect(JSON.parse(received.rawPayload)).toEqual({ ...orderValue, placedAt: '2026-11-26T10:00:00.000Z' })
    expect(received.channel).toBe(name.orderPlaced)
    expect(received.processId).toBe(producer.processId)
    expect(Object.isFrozen(received)).toBe(true)
    await producer.end()
    await consumer.end()
  })

  it('a payload-less channel sends no payload and delivers undefined', async () => {
    const { channels, name } = channelSet({ cacheCleared: z.void() })
    const ipc = channels.attach(await connect())
    const message = next(ipc, name.cacheCleared)
    await ipc.listening(name.cacheCleared)
    await ipc.notify(name.cacheCleared)
    const received = await message
    expect(received.payload).toBeUndefined()
    expect(received.rawPayload).toBe('')
    await ipc.end()
  })

  it('strings travel as JSON, so they round-trip exactly ("5" stays a string)', async () => {
    const { channels, name } = channelSet({ text: z.string() })
    const ipc = channels.attach(await connect())
    const got: unknown[] = []
    ipc.on(name.text, (m) => got.push(m.payload))
    await ipc.listening(name.text)
    for (const value of ['5', '', 'null', '"quoted"', 'ø ✓']) await ipc.notify(name.text, value)
    const last = next(ipc, name.text)
    await ipc.notify(name.text, 'end')
    await last
    expect(got).toEqual(['5', '', 'null', '"quoted"', 'ø ✓', 'end'])
    await ipc.end()
  })

  it('an optional payload may be left out', async () => {
    const { channels, name } = channelSet({ maybe: z.object({ n: z.number() }).optional() })
    const ipc = channels.attach(await connect())
    const got: unknown[] = []
    ipc.on(name.maybe, (m) => got.push(m.payload))
    await ipc.listening(name.maybe)
    await ipc.notify(name.maybe)
    const last = next(ipc, name.maybe)
    await ipc.notify(name.maybe, { n: 1 })
    await last
    expect(got).toEqual([undefined, { n: 1 }])
    await ipc.end()
  })
})

describe('outgoing validation: nothing invalid is sent', () => {
  it('rejects an invalid payload with the channel and zod issues; nothing reaches the wire', async () => {
    const { channels, name } = channelSet({ orderPlaced: order })
    const ipc = channels.attach(await connect())
    const watcher = pgIPC(await connect()) // untyped: sees anything that is sent
    const seen: string[] = []
    watcher.on(name.orderPlaced, (m) => seen.push(m.rawPayload))
    await watcher.listening(name.orderPlaced)
    const bad = { ...orderValue, total: -1, orderId: 'not-a-uuid' }
    const error = await ipc.notify(name.orderPlaced, bad).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(InvalidPayloadError)
    const invalid = error as InvalidPayloadError
    expect(invalid.channel).toBe(name.orderPlaced)
    expect(invalid.issues.map((issue) => issue.path.join('.')).sort()).toEqual(['orderId', 'total'])
    expect(invalid.message).toMatch(/does not match its schema.*Nothing was sent/)
    const marker = new Promise((resolve) => watcher.once(name.orderPlaced, resolve))
    await ipc.notify(name.orderPlaced, orderValue)
    await marker
    expect(seen).toHaveLength(1)
    await ipc.end()
    await watcher.end()
  })

  it('rejects an unknown channel (a JavaScript caller) and an oversized payload', async () => {
    const { channels, name } = channelSet({ text: z.string() })
    const ipc = channels.attach(await connect())
    await expect(ipc.notify('no-such-channel', 'x')).rejects.toBeInstanceOf(UnknownChannelError)
    await expect(ipc.notify(name.text, 'x'.repeat(7998))).rejects.toBeInstanceOf(PayloadTooLargeError) // 8000 with quotes
    await expect(ipc.notify(name.text, 'x'.repeat(7997))).resolves.toBeUndefined() // 7999
    expect(() => ipc.on('no-such-channel', () => {})).toThrow(UnknownChannelError)
    await ipc.end()
  })

  it('a server error rejects that notify only; it is not also emitted as error', async () => {
    const { channels, name } = channelSet({ text: z.string() })
    const client = await connect()
    const ipc = channels.attach(client)
    const errors = errorsOf(ipc)
    await client.query("SET client_encoding = 'EUC_JP'") // the server cannot take "✓" now
    const [bad, good] = await Promise.allSettled([ipc.notify(name.text, '✓'), ipc.notify(name.text, 'plain')])
    expect(bad.status).toBe('rejected')
    expect((bad as PromiseRejectedResult).reason).toBeInstanceOf(QueryFailedError)
    expect(good.status).toBe('fulfilled')
    expect(errors).toEqual([])
    await client.query("SET client_encoding = 'UTF8'")
    await ipc.end()
  })

  it('notifyQuery validates at once and throws the same typed errors', () => {
    const { channels, name } = channelSet({ orderPlaced: order })
    expect(() => channels.notifyQuery(name.orderPlaced, { ...orderValue, total: 0 })).toThrow(InvalidPayloadError)
    const query = channels.notifyQuery(name.orderPlaced, orderValue)
    expect(query.text).toBe('SELECT pg_catalog.pg_notify($1, $2)')
    expect(query.values[0]).toBe(name.orderPlaced)
    expect(JSON.parse(query.values[1]).placedAt).toBe('2026-11-26T10:00:00.000Z')
  })
})

describe('defineChannels rejects what cannot work, early', () => {
  it('a one-way transform, pointing to z.codec', () => {
    const attempt = (): unknown => defineChannels({ count: z.string().transform(Number) })
    expect(attempt).toThrow(SchemaNotEncodableError)
    expect(attempt).toThrow(/\.transform\(\).*z\.codec/)
  })

  it('a nested one-way transform too', () => {
    expect(() => defineChannels({ deep: z.object({ list: z.array(z.object({ n: z.string().transform(Number) })) }) })).toThrow(
      /deep.*\.transform\(\)/,
    )
  })

  for (const [what, schema] of [
    ['a bare z.date()', z.date()],
    ['a nested z.bigint()', z.object({ n: z.bigint() })],
    ['a z.map()', z.map(z.string(), z.number())],
    ['a z.set() inside an array', z.array(z.set(z.string()))],
  ] as const) {
    it(`a wire form that is not JSON: ${what}`, () => {
      expect(() => defineChannelsFromJs({ bad: schema })).toThrow(SchemaNotEncodableError)
      expect(() => defineChannelsFromJs({ bad: schema })).toThrow(/JSON cannot carry.*z\.codec/)
    })
  }

  it('accepts codecs whose domain side is not JSON, recursive JSON, and optional fields', () => {
    const channels = defineChannels({
      at: isoDate,
      json: z.json(),
      partial: z.object({ a: z.string().optional(), b: z.number().nullable() }),
      big: z.codec(z.string(), z.bigint(), { decode: (s) => BigInt(s), encode: (n) => n.toString() }),
    })
    expect(channels.names).toEqual(['at', 'json', 'partial', 'big'])
    expect(Object.isFrozen(channels)).toBe(true)
    expect(Object.isFrozen(channels.schemas)).toBe(true)
  })

  it('reserved and invalid channel names', () => {
    for (const reserved of [
      'error',
      'end',
      'listen',
      'unlisten',
      'notify',
      'newListener',
      'removeListener',
      'invalid',
      'connect',
      'reconnect',
      'disconnect',
    ]) {
      expect(() => defineChannelsFromJs({ [reserved]: z.string() })).toThrow(ReservedChannelError)
    }
    expect(() => defineChannelsFromJs({ ['x'.repeat(64)]: z.string() })).toThrow(/at most 63/)
    expect(() => defineChannelsFromJs({ ok: 'not a schema' })).toThrow(/not a zod 4 schema/)
  })
})

describe('incoming validation: bad messages never reach listeners', () => {
  it('not JSON and not matching are emitted as invalid, with channel, raw text, sender and cause', async () => {
    const { channels, name } = channelSet({ orderPlaced: order })
    const ipc = channels.attach(await connect())
    const sender = await connect()
    const invalid: InvalidMessageError[] = []
    ipc.on('invalid', (error) => invalid.push(error))
    const received: unknown[] = []
    ipc.on(name.orderPlaced, (m) => received.push(m.payload))
    await ipc.listening(name.orderPlaced)
    await raw(sender, name.orderPlaced, 'this is not json')
    await raw(sender, name.orderPlaced, JSON.stringify({ orderId: 'nope' }))
    await raw(sender, name.orderPlaced, '')
    const valid = next(ipc, name.orderPlaced)
    await raw(sender, name.orderPlaced, JSON.stringify({ ...orderValue, placedAt: orderValue.placedAt.toISOString() }))
    await valid
    expect(received).toEqual([orderValue])
    expect(invalid).toHaveLength(3)
    const [notJson, mismatch, empty] = invalid as [InvalidMessageError, InvalidMessageError, InvalidMessageError]
    expect(notJson.channel).toBe(name.orderPlaced)
    expect(notJson.rawPayload).toBe('this is not json')
    expect(notJson.processId).toBe((sender as unknown as { processID: number }).processID)
    expect(notJson.cause).toBeInstanceOf(SyntaxError)
    expect(notJson.issues).toEqual([])
    expect(notJson.message).toMatch(/not valid JSON/)
    expect(mismatch.issues.map((issue) => issue.path[0])).toEqual(expect.arrayContaining(['orderId', 'total', 'placedAt']))
    expect(mismatch.code).toBe(ErrorCode.InvalidMessage)
    expect(empty.rawPayload).toBe('')
    await ipc.end()
  })

  it('without an invalid listener goes to error; with neither, to a process warning', async () => {
    const { channels, name } = channelSet({ n: z.number() })
    const sender = await connect()
    const withError = channels.attach(await connect())
    const errors = errorsOf(withError)
    await withError.listening(name.n).catch(() => undefined)
    withError.on(name.n, () => {})
    await withError.listening(name.n)
    const bare = channels.attach(await connect())
    bare.on(name.n, () => {})
    await bare.listening(name.n)
    const warning = new Promise<Error>((resolve) => {
      const onWarning = (w: Error): void => {
        if (w.name !== 'InvalidMessageWarning') return
        process.off('warning', onWarning)
        resolve(w)
      }
      process.on('warning', onWarning)
    })
    const error = waitFor<PgIpcError>(withError, 'error').catch(() => undefined)
    await raw(sender, name.n, '"not a number"')
    expect((await warning).message).toMatch(/does not match the channel's schema/)
    await error
    expect(errors.map((e) => e.code)).toEqual([ErrorCode.InvalidMessage])
    await withError.end()
    await bare.end()
  })

  it('decodes once per notification however many listeners the channel has', async () => {
    let decodes = 0
    const counted = z.codec(z.string(), z.string(), {
      decode: (text) => {
        decodes++
        return text
      },
      encode: (text) => text,
    })
    const { channels, name } = channelSet({ counted })
    const ipc = channels.attach(await connect())
    const seen: TypedMessage<string, unknown>[] = []
    for (let index = 0; index < 10; index++) ipc.on(name.counted, (m) => seen.push(m))
    await ipc.listening(name.counted)
    const done = next(ipc, name.counted)
    await ipc.notify(name.counted, 'once')
    await done
    expect(seen).toHaveLength(10)
    expect(new Set(seen).size).toBe(1)
    expect(decodes).toBe(1)
    await ipc.end()
  })

  it('an invalid message does not use up a once listener', async () => {
    const { channels, name } = channelSet({ n: z.number() })
    const ipc = channels.attach(await connect())
    ipc.on('invalid', () => {})
    const sender = await connect()
    const got = next(ipc, name.n)
    await ipc.listening(name.n)
    await raw(sender, name.n, 'garbage')
    await raw(sender, name.n, '42')
    expect((await got).payload).toBe(42)
    await ipc.end()
  })

  it('a burst of garbage from raw SQL neither crashes, stalls nor reorders valid messages', async () => {
    const { channels, name } = channelSet({ n: z.number().int() })
    const client = await connect()
    const ipc = channels.attach(client)
    const sender = await connect()
    let invalid = 0
    ipc.on('invalid', () => invalid++)
    const valid: number[] = []
    const allValid = new Promise<void>((resolve) =>
      ipc.on(name.n, (m) => {
        valid.push(m.payload as number)
        if (valid.length === 20) resolve()
      }),
    )
    await ipc.listening(name.n)
    // One statement per batch: 1000 garbage payloads interleaved with 20 valid ones.
    const payloads: string[] = []
    let sequence = 0
    for (let index = 0; index < 1020; index++) payloads.push(index % 51 === 50 ? String(sequence++) : `garbage ${index} {`)
    await sender.query('SELECT pg_notify($1, p) FROM unnest($2::text[]) WITH ORDINALITY AS t(p, n) ORDER BY n', [
      name.n,
      payloads,
    ])
    await allValid
    expect(valid).toEqual([...Array(20).keys()])
    expect(invalid).toBe(1000)
    expect((await client.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }])
    await ipc.end()
  })
})

describe('ignoreOwn', () => {
  it('skips messages from its own connection only', async () => {
    const { channels, name } = channelSet({ text: z.string() })
    const ipc = channels.attach(await connect(), { ignoreOwn: true })
    const other = channels.attach(await connect())
    const got: string[] = []
    ipc.on(name.text, (m) => got.push(m.payload as string))
    await ipc.listening(name.text)
    await ipc.notify(name.text, 'mine')
    const theirs = next(ipc, name.text)
    await other.notify(name.text, 'theirs')
    await theirs
    expect(got).toEqual(['theirs'])
    await ipc.end()
    await other.end()
  })
})

describe('messages()', () => {
  it('subscribes when called, so a message sent before the first next() is not missed', async () => {
    const { channels, name } = channelSet({ n: z.number() })
    const client = await connect()
    const ipc = channels.attach(client)
    const iterator = ipc.messages(name.n)
    await ipc.listening(name.n)
    await ipc.notify(name.n, 1)
    await ipc.notify(name.n, 2)
    const got: unknown[] = []
    for await (const message of iterator) {
      got.push(message.payload)
      if (got.length === 2) break
    }
    expect(got).toEqual([1, 2])
    await waitFor(ipc, 'unlisten')
    expect(await listeningChannels(client)).toEqual([])
    await ipc.end()
  })

  it('an abort ends the loop with an AbortError and releases the LISTEN', async () => {
    const { channels, name } = channelSet({ n: z.number() })
    const client = await connect()
    const ipc = channels.attach(client)
    const controller = new AbortController()
    const got: unknown[] = []
    const loop = (async () => {
      for await (const message of ipc.messages(name.n, { signal: controller.signal })) {
        got.push(message.payload)
        controller.abort(new Error('enough'))
      }
    })()
    await ipc.listening(name.n)
    const unlistened = waitFor(ipc, 'unlisten')
    await ipc.notify(name.n, 7)
    const error = await loop.catch((e: unknown) => e)
    expect((error as Error).name).toBe('AbortError')
    expect(((error as Error).cause as Error).message).toBe('enough')
    expect(got).toEqual([7])
    await unlistened
    expect(await listeningChannels(client)).toEqual([])
    expect(() => ipc.messages(name.n, { signal: controller.signal })).toThrow(/aborted/)
    await ipc.end()
  })

  it('a consumer that falls behind gets the buffered messages, then a BufferOverflowError', async () => {
    const { channels, name } = channelSet({ n: z.number() })
    const client = await connect()
    const ipc = channels.attach(client)
    const iterator = ipc.messages(name.n, { bufferSize: 3 })
    await ipc.listening(name.n)
    const unlistened = waitFor(ipc, 'unlisten')
    for (let n = 1; n <= 5; n++) await ipc.notify(name.n, n)
    await unlistened // the 4th message overflowed: the loop let go of the channel
    const got: unknown[] = []
    const error = await (async () => {
      for await (const message of iterator) got.push(message.payload)
    })().catch((e: unknown) => e)
    expect(got).toEqual([1, 2, 3])
    expect(error).toBeInstanceOf(BufferOverflowError)
    expect((error as BufferOverflowError).limit).toBe(3)
    expect(await listeningChannels(client)).toEqual([])
    await ipc.end()
  })

  it('end() finishes running loops', async () => {
    const { channels, name } = channelSet({ n: z.number() })
    const ipc = channels.attach(await connect())
    const loop = (async () => {
      const got: unknown[] = []
      for await (const message of ipc.messages(name.n)) got.push(message.payload)
      return got
    })()
    await ipc.listening(name.n)
    await ipc.end()
    expect(await loop).toEqual([])
  })
})

describe('notifyQuery inside the caller’s transaction', () => {
  it('delivers at COMMIT, never at ROLLBACK', async () => {
    const { channels, name } = channelSet({ orderPlaced: order })
    const consumer = channels.attach(await connect())
    const got: unknown[] = []
    consumer.on(name.orderPlaced, (m) => got.push((m.payload as typeof orderValue).total))
    await consumer.listening(name.orderPlaced)
    const tx = await connect()
    await tx.query('BEGIN')
    await tx.query(channels.notifyQuery(name.orderPlaced, { ...orderValue, total: 1 }))
    await tx.query('ROLLBACK')
    await tx.query('BEGIN')
    await tx.query(channels.notifyQuery(name.orderPlaced, { ...orderValue, total: 2 }))
    expect(got).toEqual([])
    const arrived = next(consumer, name.orderPlaced)
    await tx.query('COMMIT')
    await arrived
    expect(got).toEqual([2])
    await consumer.end()
  })
})

describe('interop', () => {
  it('receives rows sent by an SQL trigger with row_to_json', async () => {
    const { channels, name } = channelSet({
      orderPlaced: z.object({ id: z.number().int(), total: z.coerce.number(), placed_at: isoDate }),
    })
    const db = await connect()
    const table = uniqueChannel('orders')
    const ipc = channels.attach(await connect())
    await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, total numeric, placed_at text)`)
    await db.query(
      `CREATE FUNCTION ${table}_notify() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN PERFORM pg_notify(TG_ARGV[0], row_to_json(NEW)::text); RETURN NEW; END $$`,
    )
    await db.query(
      `CREATE TRIGGER t AFTER INSERT ON ${table} FOR EACH ROW EXECUTE FUNCTION ${table}_notify('${name.orderPlaced}')`,
    )
    try {
      const message = next(ipc, name.orderPlaced)
      await ipc.listening(name.orderPlaced)
      await db.query(`INSERT INTO ${table} VALUES (1, 12.50, '2026-11-26T10:00:00.000Z')`)
      expect((await message).payload).toEqual({ id: 1, total: 12.5, placed_at: new Date('2026-11-26T10:00:00.000Z') })
    } finally {
      await db.query(`DROP TABLE ${table}`)
      await db.query(`DROP FUNCTION ${table}_notify()`)
      await ipc.end()
    }
  })

  it('untyped pgIPC and typed instances talk when payloads agree; a raw core string is not JSON', async () => {
    const { channels, name } = channelSet({ obj: z.object({ n: z.number() }), text: z.string() })
    const typed = channels.attach(await connect())
    const invalid: InvalidMessageError[] = []
    typed.on('invalid', (error) => invalid.push(error))
    const core = pgIPC(await connect())
    const fromTyped = new Promise((resolve) =>
      core.on(name.obj, (m) => (m.payload as { n: number }).n === 2 && resolve(m.payload)),
    )
    const got: unknown[] = []
    typed.on(name.obj, (m) => got.push(m.payload))
    typed.on(name.text, (m) => got.push(m.payload))
    await Promise.all([typed.listening(name.obj), typed.listening(name.text), core.listening(name.obj)])
    const coreSent = new Promise<void>((resolve) => {
      let sent = 0
      core.on('notify', () => ++sent === 3 && resolve())
    })
    core.notify(name.obj, { n: 1 })
    core.notify(name.text, 'raw text') // the core sends strings raw: not JSON
    core.notify(name.text, JSON.stringify('json text'))
    await coreSent
    await typed.notify(name.obj, { n: 2 })
    expect(await fromTyped).toEqual({ n: 2 })
    const last = next(typed, name.obj)
    const sent = waitFor(core, 'notify')
    core.notify(name.obj, { n: 3 })
    await Promise.all([last, sent])
    expect(got).toEqual([{ n: 1 }, 'json text', { n: 2 }, { n: 3 }])
    expect(invalid.map((e) => e.rawPayload)).toEqual(['raw text'])
    await typed.end()
    await core.end()
  })
})

describe('listeners and errors', () => {
  it('a listener that throws or rejects reaches error; others still run', async () => {
    const { channels, name } = channelSet({ n: z.number() })
    const ipc = channels.attach(await connect())
    const errors = errorsOf(ipc)
    const got: unknown[] = []
    ipc.on(name.n, () => {
      throw new Error('sync boom')
    })
    ipc.on(name.n, async () => {
      throw new Error('async boom')
    })
    ipc.on(name.n, (m) => got.push(m.payload))
    await ipc.listening(name.n)
    const second = waitFor(ipc, 'error', { filter: () => errors.length === 2 })
    await ipc.notify(name.n, 1)
    await second.catch(() => undefined)
    expect(got).toEqual([1])
    expect(errors.map((e) => (e instanceof ListenerError ? (e.cause as Error).message : e.code)).sort()).toEqual([
      'async boom',
      'sync boom',
    ])
    await ipc.end()
  })

  it('off, removeAllListeners and listenerCount follow the typed listeners', async () => {
    const { channels, name } = channelSet({ a: z.number(), b: z.number() })
    const client = await connect()
    const ipc = channels.attach(client)
    const listener = (): void => {}
    ipc.on(name.a, listener)
    ipc.on(name.a, listener)
    ipc.on(name.b, () => {})
    ipc.on('error', () => {})
    expect(ipc.listenerCount(name.a)).toBe(2)
    await Promise.all([ipc.listening(name.a), ipc.listening(name.b)])
    ipc.off(name.a, listener)
    expect(ipc.listenerCount(name.a)).toBe(1)
    const unlistenA = waitFor<string>(ipc, 'unlisten', { filter: (c) => c === name.a })
    ipc.off(name.a, listener)
    await unlistenA
    expect(await listeningChannels(client)).toEqual([name.b])
    const unlistenB = waitFor<string>(ipc, 'unlisten', { filter: (c) => c === name.b })
    ipc.removeAllListeners()
    await unlistenB.catch(() => undefined)
    expect(ipc.listenerCount('error')).toBe(0)
    expect(await listeningChannels(client)).toEqual([])
    await ipc.end()
  })
})

describe('end()', () => {
  it('lets in-flight notifies settle, then ends; notify afterwards rejects', async () => {
    const { channels, name } = channelSet({ n: z.number() })
    const ipc = channels.attach(await connect())
    const watcher = channels.attach(await connect())
    const got: unknown[] = []
    watcher.on(name.n, (m) => got.push(m.payload))
    await watcher.listening(name.n)
    const sends = [1, 2, 3].map((n) => ipc.notify(name.n, n))
    let ends = 0
    ipc.on('end', () => ends++)
    await ipc.end()
    expect(ends).toBe(1)
    await expect(Promise.all(sends)).resolves.toEqual([undefined, undefined, undefined])
    await expect(ipc.notify(name.n, 4)).rejects.toBeInstanceOf(EndedError)
    const last = next(watcher, name.n)
    await watcher.notify(name.n, 5)
    await last
    expect(got).toEqual([1, 2, 3, 5])
    await watcher.end()
  })
})

describe('the encode fast path', () => {
  // Schemas whose encoding can only validate use zod's safeParse instead of safeEncode (several
  // times faster); the wire text must be exactly what zod's encode gives, for every kind of schema.
  const cases: [string, z.ZodType, unknown[]][] = [
    [
      'object with optional and nullable',
      z.object({ a: z.string(), b: z.number().optional(), c: z.boolean().nullable() }),
      [
        { a: 'x', c: null },
        { a: 'y', b: 2, c: true, extra: 1 },
      ],
    ],
    ['enum, literal, union', z.union([z.enum(['a', 'b']), z.literal(3), z.null()]), ['a', 3, null]],
    [
      'array, tuple, record',
      z.object({ list: z.array(z.number()), pair: z.tuple([z.string(), z.number()]), map: z.record(z.string(), z.boolean()) }),
      [{ list: [1, 2], pair: ['p', 1], map: { k: true } }],
    ],
    ['z.json()', z.json(), [{ deep: [1, 'two', { three: null }] }, 'text', 5]],
    ['a default (not as is)', z.object({ n: z.number().default(7) }), [{}, { n: 1 }]],
    ['a trim overwrite (not as is)', z.string().trim(), ['  padded  ']],
    ['a coercion (not as is)', z.object({ n: z.coerce.number() }), [{ n: 3 }]],
    ['a codec (not as is)', isoDate, [new Date(0)]],
  ]
  for (const [what, schema, values] of cases) {
    it(`sends what zod's encode gives: ${what}`, () => {
      const channels = defineChannelsFromJs({ ch: schema })
      for (const value of values) {
        const expected = schema.safeEncode(value)
        if (!expected.success) {
          expect(() => channels.notifyQuery('ch', value)).toThrow(InvalidPayloadError)
          continue
        }
        const wire = expected.data === undefined ? '' : JSON.stringify(expected.data)
        expect(channels.notifyQuery('ch', value).values[1]).toBe(wire)
      }
    })
  }

  it('rejects what zod rejects, on both paths', () => {
    const plain = defineChannelsFromJs({ ch: z.object({ n: z.number().int() }) })
    const coded = defineChannelsFromJs({ ch: z.object({ n: z.number().int(), at: isoDate }) })
    expect(() => plain.notifyQuery('ch', { n: 1.5 })).toThrow(InvalidPayloadError)
    expect(() => coded.notifyQuery('ch', { n: 1.5, at: new Date(0) })).toThrow(InvalidPayloadError)
  })
})
