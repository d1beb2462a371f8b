/**
 * Type tests of the typed layer: `defineChannels`, `TypedIPC` and the helper types derived from a
 * channel map. tsd checks these against the built declarations (package.json `types`).
 */
import type { Client, Pool } from 'pg'
import { expectAssignable, expectError, expectNotAssignable, expectType } from 'tsd'
import {
  defineChannels,
  type AttachOptions,
  type ChannelName,
  type ChannelSchema,
  type ChannelSchemas,
  type ChannelSet,
  type CheckChannels,
  type ConnectInfo,
  type ConnectionLostError,
  type InvalidMessageError,
  type MessageIterator,
  type MessageOf,
  type MessagesOptions,
  type NotifyPayloadArgs,
  type NotifyQuery,
  type PayloadArgs,
  type PayloadOf,
  type PgClient,
  type PgIpcError,
  type TypedEventName,
  type TypedIPC,
  type TypedListener,
  type TypedMessage,
  type WirePayloadOf,
} from 'typed-pg-ipc'
import { z } from 'zod'
import * as zm from 'zod/mini'

declare const client: Client
declare const signal: AbortSignal

const isoDate = z.codec(z.iso.datetime(), z.date(), {
  decode: (text) => new Date(text),
  encode: (date) => date.toISOString(),
})

const channels = defineChannels({
  orderPlaced: z.object({ orderId: z.uuid(), total: z.number().positive(), placedAt: isoDate }),
  cacheCleared: z.void(),
  note: z.string().optional(),
})
type Channels = typeof channels
type Schemas = Channels extends ChannelSet<infer Map> ? Map : never
type Order = { orderId: string; total: number; placedAt: Date }
const order: Order = { orderId: '6f1c0b9e-6a2b-4c57-9f59-1f0a3e5b8c11', total: 12.5, placedAt: new Date() }

// defineChannels ---------------------------------------------------------------------------------

expectAssignable<ChannelSet<Channels['schemas']>>(channels)
expectType<'orderPlaced' | 'cacheCleared' | 'note'>(channels.names[0]!)
expectType<readonly ('orderPlaced' | 'cacheCleared' | 'note')[]>(channels.names)
expectAssignable<z.ZodVoid>(channels.schemas.cacheCleared)
expectError((channels.schemas.note = z.string().optional()))

expectError(defineChannels())
expectError(defineChannels('orderPlaced'))
expectError(defineChannels({ orderPlaced: 'not a schema' }))
expectError(defineChannels({ orderPlaced: { type: 'object' } }))
// zod/mini schemas have no safeEncode/safeDecode, which the layer calls: refused, as at run time.
expectError(defineChannels({ mini: zm.string() }))

// ChannelSchema: the structural shape of a zod 4 (classic) schema; the package's types do not import zod.
expectAssignable<ChannelSchema>(z.string())
expectAssignable<ChannelSchema>(isoDate)
expectAssignable<ChannelSchema>(z.object({ a: z.array(z.string()) }))
expectAssignable<ChannelSchemas>(channels.schemas)
expectNotAssignable<ChannelSchema>('not a schema')
expectNotAssignable<ChannelSchema>({ _zod: { output: 1, input: 1 } })
expectNotAssignable<ChannelSchema>(zm.string())

// Reserved names: every event of the emitter is rejected as a channel name.
expectError(defineChannels({ error: z.string() }))
expectError(defineChannels({ end: z.string() }))
expectError(defineChannels({ listen: z.string() }))
expectError(defineChannels({ unlisten: z.string() }))
expectError(defineChannels({ notify: z.string() }))
expectError(defineChannels({ newListener: z.string() }))
expectError(defineChannels({ removeListener: z.string() }))
expectError(defineChannels({ invalid: z.string() }))
expectError(defineChannels({ connect: z.string() }))
expectError(defineChannels({ reconnect: z.string() }))
expectError(defineChannels({ disconnect: z.string() }))
expectError(defineChannels({ fine: z.string(), error: z.void() })) // one bad key among good ones
// Near misses are fine.
defineChannels({ errors: z.string(), onError: z.string(), Error: z.string(), ended: z.void() })

// Wire forms JSON cannot carry are rejected ...
expectError(defineChannels({ when: z.date() }))
expectError(defineChannels({ big: z.bigint() }))
expectError(defineChannels({ map: z.map(z.string(), z.number()) }))
expectError(defineChannels({ set: z.set(z.string()) }))
expectError(defineChannels({ nested: z.object({ at: z.date() }) }))
expectError(defineChannels({ deep: z.object({ items: z.array(z.object({ at: z.date() })) }) }))
expectError(defineChannels({ maybeDate: z.date().optional() }))
expectError(defineChannels({ dateOrString: z.union([z.date(), z.string()]) }))
expectError(defineChannels({ symbol: z.symbol() }))
expectError(defineChannels({ fn: z.function() }))
expectError(defineChannels({ unknown: z.unknown() }))
expectError(defineChannels({ unknownField: z.object({ data: z.unknown() }) }))
expectError(defineChannels({ record: z.record(z.string(), z.date()) }))
// A payload-less channel beside a bad one: the bad one is still found.
expectError(defineChannels({ ping: z.void(), when: z.date() }))
// A wire form that is a string or nothing is refused (the run-time check would take it).
expectError(defineChannels({ stringOrVoid: z.union([z.string(), z.void()]) }))
// The wire side is what counts: a codec whose domain side is void but whose wire side is a Date.
expectError(defineChannels({ voidDate: z.codec(z.date(), z.void(), { decode: () => undefined, encode: () => new Date() }) }))
// A codec whose wire side is not JSON either.
expectError(defineChannels({ badCodec: z.codec(z.date(), z.string(), { decode: String, encode: (text) => new Date(text) }) }))

// ... while JSON wire forms are accepted.
defineChannels({ payloadless: z.void() })
defineChannels({ ping: z.void(), gone: z.undefined(), note: z.string().optional(), codec: isoDate })
defineChannels({ undef: z.undefined() })
defineChannels({ codec: isoDate })
defineChannels({ nestedCodec: z.object({ at: isoDate, history: z.array(isoDate) }) })
defineChannels({ json: z.json() })
defineChannels({ optionalField: z.object({ a: z.string().optional(), b: z.number() }) })
defineChannels({ nullableField: z.object({ a: z.string().nullable() }) })
defineChannels({ nullable: z.string().nullable() })
defineChannels({ nullish: z.string().nullish() })
defineChannels({ null: z.null() })
defineChannels({ literal: z.literal('ping') })
defineChannels({ enum: z.enum(['a', 'b']) })
defineChannels({ tuple: z.tuple([z.string(), z.number()]) })
defineChannels({ record: z.record(z.string(), z.number()) })
defineChannels({
  union: z.discriminatedUnion('kind', [z.object({ kind: z.literal('a') }), z.object({ kind: z.literal('b'), n: z.number() })]),
})
defineChannels({ withDefault: z.object({ n: z.number().default(1) }) })
defineChannels({ any: z.any() })
defineChannels({})

// CheckChannels names the problem in the type of the offending key.
type Checked = CheckChannels<{ ok: z.ZodString; error: z.ZodString; when: z.ZodDate }>
expectType<z.ZodString>({} as Checked['ok'])
expectAssignable<string>({} as Checked['error'])
expectAssignable<string>({} as Checked['when'])
expectType<'Channel name "error" is reserved: it is an event of the emitter. Rename the channel.'>({} as Checked['error'])

// Helper types -----------------------------------------------------------------------------------

expectType<'orderPlaced' | 'cacheCleared' | 'note'>({} as ChannelName<Channels>)
expectType<'orderPlaced' | 'cacheCleared' | 'note'>({} as ChannelName<Channels['schemas']>)
expectType<Order>({} as PayloadOf<Channels, 'orderPlaced'>)
expectType<Date>({} as PayloadOf<Channels, 'orderPlaced'>['placedAt'])
expectType<void>(undefined as PayloadOf<Channels, 'cacheCleared'>)
expectType<string | undefined>({} as PayloadOf<Channels, 'note'>)
expectType<{ orderId: string; total: number; placedAt: string }>({} as WirePayloadOf<Channels, 'orderPlaced'>)
expectType<string>({} as WirePayloadOf<Channels, 'orderPlaced'>['placedAt'])
expectType<Order>({} as PayloadOf<Channels['schemas'], 'orderPlaced'>)
expectError({} as PayloadOf<Channels, 'nope'>)
expectError({} as WirePayloadOf<Channels, 'nope'>)
expectError({} as MessageOf<Channels, 'nope'>)

// The message type, pinned field by field: what an editor hover shows.
expectType<{
  readonly channel: 'orderPlaced'
  readonly payload: Order
  readonly processId: number
  readonly rawPayload: string
}>({} as MessageOf<Channels, 'orderPlaced'>)
expectType<{
  readonly channel: 'cacheCleared'
  readonly payload: void
  readonly processId: number
  readonly rawPayload: string
}>({} as MessageOf<Channels, 'cacheCleared'>)
expectType<TypedMessage<'orderPlaced', Order>>({} as MessageOf<Channels, 'orderPlaced'>)
expectType<TypedMessage<'note', string | undefined>>({} as MessageOf<Channels, 'note'>)

expectType<[payload: Order]>({} as PayloadArgs<Channels['schemas']['orderPlaced']>)
expectType<[]>({} as PayloadArgs<Channels['schemas']['cacheCleared']>)
expectType<[payload?: string | undefined]>({} as PayloadArgs<Channels['schemas']['note']>)

expectType<
  | 'orderPlaced'
  | 'cacheCleared'
  | 'note'
  | 'listen'
  | 'unlisten'
  | 'error'
  | 'invalid'
  | 'end'
  | 'connect'
  | 'reconnect'
  | 'disconnect'
>({} as TypedEventName<Channels['schemas']>)

// attach -----------------------------------------------------------------------------------------

const ipc = channels.attach(client)
expectType<TypedIPC<Schemas>>(ipc)
expectType<TypedIPC<Schemas>>(channels.attach(client, {}))
expectType<TypedIPC<Schemas>>(channels.attach(client, { ignoreOwn: true, invalidWarningIntervalMs: 1_000, maxPending: 100 }))
expectType<TypedIPC<Schemas>>(channels.attach({ connect: 'postgres://localhost/db', ignoreOwn: true }))
expectType<TypedIPC<Schemas>>(channels.attach({ connect: () => client, retry: { maxAttempts: 3 } }))
// What a user writes to name the instance type (`schemas` is Readonly<...>) fits both ways.
expectAssignable<TypedIPC<Channels['schemas']>>(ipc)
expectAssignable<TypedIPC<Schemas>>({} as TypedIPC<Channels['schemas']>)
expectAssignable<TypedIPC<Schemas>>({} as ReturnType<Channels['attach']>)
expectAssignable<AttachOptions>({ ignoreOwn: undefined })

expectError(channels.attach())
expectError(channels.attach(123))
expectError(channels.attach('postgres://localhost/db'))
expectError(channels.attach(client, { ignoreOwn: 'yes' }))
expectError(channels.attach(client, { invalidWarningIntervalMs: '10s' }))
expectError(channels.attach(client, { maxPending: '100' }))
expectError(channels.attach(client, { unknownOption: true }))
expectError(channels.attach({ ignoreOwn: true })) // no connect
// A pg.Pool is refused: LISTEN needs one session (PgClient has `totalCount?: never`).
declare const pool: Pool
expectError(channels.attach(pool))

expectType<PgClient | undefined>(ipc.client)
expectType<number | undefined>(ipc.processId)
expectType<boolean>(ipc.ended)
expectError((ipc.ended = true))

// on / once / addListener / prependListener: channels --------------------------------------------

expectType<typeof ipc>(
  ipc.on('orderPlaced', (msg) => {
    expectType<MessageOf<Channels, 'orderPlaced'>>(msg)
    expectType<{
      readonly channel: 'orderPlaced'
      readonly payload: { orderId: string; total: number; placedAt: Date }
      readonly processId: number
      readonly rawPayload: string
    }>(msg)
    expectType<'orderPlaced'>(msg.channel)
    expectType<Order>(msg.payload)
    expectType<Date>(msg.payload.placedAt)
    expectType<string>(msg.payload.orderId)
    expectType<number>(msg.payload.total)
    expectType<number>(msg.processId)
    expectType<string>(msg.rawPayload)
    expectError((msg.payload = order))
    expectError(msg.payload.missing)
  }),
)
ipc.on('cacheCleared', (msg) => {
  expectType<'cacheCleared'>(msg.channel)
  expectType<void>(msg.payload)
})
ipc.on('note', (msg) => expectType<string | undefined>(msg.payload))
ipc.on('orderPlaced', async (msg) => {
  await Promise.resolve(msg)
})
ipc.on('orderPlaced', () => {})
ipc.once('orderPlaced', (msg) => expectType<Date>(msg.payload.placedAt))
ipc.addListener('orderPlaced', (msg) => expectType<'orderPlaced'>(msg.channel))
ipc.prependListener('note', (msg) => expectType<'note'>(msg.channel))
ipc.prependOnceListener('orderPlaced', (msg) => expectType<Date>(msg.payload.placedAt))
expectError(ipc.prependOnceListener('nope', () => {}))

// await using ipc = channels.attach(client): end() when the scope is left
expectAssignable<AsyncDisposable>(ipc)
expectType<Promise<void>>(ipc[Symbol.asyncDispose]())

expectError(ipc.on('nope', () => {}))
expectError(ipc.on('orderplaced', () => {}))
expectError(ipc.on('orderPlaced', (msg: MessageOf<Channels, 'note'>) => msg))
expectError(ipc.on('orderPlaced', (msg: { payload: { placedAt: string } }) => msg))
expectError(ipc.on('cacheCleared', (msg: MessageOf<Channels, 'orderPlaced'>) => msg))
expectError(ipc.once('nope', () => {}))
expectError(ipc.on('orderPlaced'))
expectError(ipc.on(123, () => {}))
// A wrong name is the one error: the listener of a wrong name is not checked further
// (test/types/type-errors.test.ts checks that exactly one error, with the list of names, is reported).
expectError(ipc.on('nope', (msg) => msg.payload.orderId))
expectError(ipc.once('nope', (msg: number) => msg))
expectError(ipc.on('orderPlaced' as 'orderPlaced' | 'nope', () => {}))

// The name is inferred from the name argument only, never from the listener's annotation.
declare const orderOrNote: 'orderPlaced' | 'note'
ipc.on(orderOrNote, (msg: MessageOf<Channels, 'orderPlaced' | 'note'>) => msg)
// A listener on a union of names takes any of their messages, told apart by `channel`.
expectError(ipc.on(orderOrNote, (msg: MessageOf<Channels, 'note'>) => msg))
ipc.on(orderOrNote, (msg) => {
  expectType<MessageOf<Channels, 'orderPlaced'> | MessageOf<Channels, 'note'>>(msg)
  if (msg.channel === 'orderPlaced') expectType<Date>(msg.payload.placedAt)
  else expectType<string | undefined>(msg.payload)
})
declare const listenOrError: 'listen' | 'error'
ipc.on(listenOrError, (argument) => expectType<ChannelName<Channels> | PgIpcError>(argument))
declare const orderOrError: 'orderPlaced' | 'error'
ipc.on(orderOrError, (...args) => expectType<[message: MessageOf<Channels, 'orderPlaced'>] | [error: PgIpcError]>(args))
expectError(ipc.on(orderOrError, (msg: MessageOf<Channels, 'orderPlaced'>) => msg))

// TypedListener: what a listener of one channel or event is.
expectType<(message: TypedMessage<'orderPlaced', Order>) => unknown>({} as TypedListener<Schemas, 'orderPlaced'>)
expectType<(error: PgIpcError) => unknown>({} as TypedListener<Schemas, 'error'>)
expectError({} as TypedListener<Schemas, 'nope'>)

// Generic code over any channel map: events keep their types.
function onEvents<Map extends ChannelSchemas>(instance: TypedIPC<Map>): void {
  instance.on('error', (error) => expectType<PgIpcError>(error))
  instance.on('listen', (channel) => expectType<ChannelName<Map>>(channel))
  instance.off('end', () => {})
  expectError(instance.on('nope', () => {}))
}
void onEvents

// Generic wrappers over the public helper types keep compiling.
function sendOn<Map extends ChannelSchemas, Name extends ChannelName<Map>>(
  instance: TypedIPC<Map>,
  name: Name,
  ...payload: NotifyPayloadArgs<Map, Name>
): Promise<void> {
  return instance.notify(name, ...payload)
}
function listenOn<Map extends ChannelSchemas, Name extends ChannelName<Map>>(
  instance: TypedIPC<Map>,
  name: Name,
  listener: TypedListener<Map, Name>,
): () => void {
  instance.on(name, listener)
  return () => void instance.off(name, listener)
}
expectType<Promise<void>>(sendOn(ipc, 'orderPlaced', order))
expectType<Promise<void>>(sendOn(ipc, 'cacheCleared'))
expectError(sendOn(ipc, 'orderPlaced', 'text'))
expectError(sendOn(ipc, 'nope', order))
listenOn(ipc, 'orderPlaced', (msg) => expectType<Date>(msg.payload.placedAt))
expectError(listenOn(ipc, 'nope', () => {}))

// A map typed only as ChannelSchemas: every string is a channel, payloads are unknown.
declare const dynamic: TypedIPC<ChannelSchemas>
dynamic.on('anything', (msg) => expectType<TypedMessage<'anything', unknown>>(msg))
expectType<Promise<void>>(dynamic.notify('anything', { any: 'payload' }))

// on: events -------------------------------------------------------------------------------------

ipc.on('listen', (channel) => expectType<'orderPlaced' | 'cacheCleared' | 'note'>(channel))
ipc.on('unlisten', (channel) => expectType<ChannelName<Channels>>(channel))
ipc.on('error', (error) => expectType<PgIpcError>(error))
ipc.on('invalid', (error) => {
  expectType<InvalidMessageError>(error)
  expectType<string>(error.rawPayload)
  expectType<number>(error.processId)
})
ipc.on('end', () => {})
ipc.on('connect', (info) => expectType<ConnectInfo>(info))
ipc.on('reconnect', (info) => expectType<ConnectInfo>(info))
ipc.on('disconnect', (error) => expectType<ConnectionLostError>(error))
ipc.once('invalid', (error) => expectType<InvalidMessageError>(error))

expectError(ipc.on('listen', (channel: number) => channel))
expectError(ipc.on('listen', (channel: 'orderPlaced') => channel)) // narrower than the union
expectError(ipc.on('invalid', (error: string) => error))
expectError(ipc.on('end', (reason: string) => reason))
expectError(ipc.on('notify', () => {})) // the core's event, not the typed layer's

// off / removeListener / removeAllListeners / listenerCount --------------------------------------

const onOrder = (msg: MessageOf<Channels, 'orderPlaced'>): void => void msg
expectType<typeof ipc>(ipc.off('orderPlaced', onOrder))
expectType<typeof ipc>(ipc.removeListener('orderPlaced', onOrder))
expectType<typeof ipc>(ipc.removeAllListeners())
expectType<typeof ipc>(ipc.removeAllListeners('orderPlaced'))
expectType<typeof ipc>(ipc.removeAllListeners('error'))
expectType<number>(ipc.listenerCount('orderPlaced'))
expectType<number>(ipc.listenerCount('invalid'))

expectError(ipc.off('note', onOrder))
expectError(ipc.off('nope', onOrder))
expectError(ipc.removeAllListeners('nope'))
expectError(ipc.listenerCount('nope'))
expectError(ipc.listenerCount())

// notify / send ----------------------------------------------------------------------------------

expectType<Promise<void>>(ipc.notify('orderPlaced', order))
expectType<Promise<void>>(ipc.notify('orderPlaced', { orderId: 'x', total: 1, placedAt: new Date() }))
expectType<Promise<void>>(ipc.notify('cacheCleared'))
expectType<Promise<void>>(ipc.notify('note'))
expectType<Promise<void>>(ipc.notify('note', 'hello'))
expectType<Promise<void>>(ipc.notify('note', undefined))
expectType<Promise<void>>(ipc.send('orderPlaced', order))
expectType<Promise<void>>(ipc.send('cacheCleared'))

expectError(ipc.notify('nope', order)) // unknown channel
expectError(ipc.notify('orderplaced', order)) // case matters
expectError(ipc.notify('orderPlaced')) // missing payload
expectError(ipc.notify('orderPlaced', undefined))
expectError(ipc.notify('orderPlaced', { orderId: 'x', total: 1 })) // missing field
expectError(ipc.notify('orderPlaced', { orderId: 'x', total: '1', placedAt: new Date() })) // wrong field type
expectError(ipc.notify('orderPlaced', { orderId: 'x', total: 1, placedAt: '2024-01-01T00:00:00Z' })) // wire form, not domain
expectError(ipc.notify('orderPlaced', { ...order, extra: true })) // excess property
expectError(ipc.notify('orderPlaced', 'text'))
expectError(ipc.notify('orderPlaced', order, order))
expectError(ipc.notify('cacheCleared', undefined)) // extra payload on a payload-less channel
expectError(ipc.notify('cacheCleared', {}))
expectError(ipc.notify('note', 42))
expectError(ipc.notify('note', null))
expectError(ipc.notify())
expectError(ipc.notify('nope')) // a wrong name without a payload: the name's error, not the argument count
expectError(ipc.send('nope', order))
expectError(ipc.send('orderPlaced'))
expectError(ipc.send('cacheCleared', 1))

// notifyQuery ------------------------------------------------------------------------------------

expectType<NotifyQuery>(channels.notifyQuery('orderPlaced', order))
expectType<NotifyQuery>(channels.notifyQuery('cacheCleared'))
expectType<NotifyQuery>(channels.notifyQuery('note'))
expectType<string>(channels.notifyQuery('note', 'x').text)
expectType<[channel: string, payload: string]>(channels.notifyQuery('note', 'x').values)
// A NotifyQuery is a pg query config.
expectType<Promise<unknown>>(client.query(channels.notifyQuery('orderPlaced', order)).then(() => undefined as unknown))

expectError(channels.notifyQuery('nope', order))
expectError(channels.notifyQuery('nope'))
expectError(channels.notifyQuery('orderPlaced'))
expectError(channels.notifyQuery('orderPlaced', { orderId: 'x', total: 1 }))
expectError(channels.notifyQuery('orderPlaced', { orderId: 'x', total: 1, placedAt: 'today' }))
expectError(channels.notifyQuery('cacheCleared', undefined))
expectError(channels.notifyQuery('note', 1))

// messages ---------------------------------------------------------------------------------------

const orders = ipc.messages('orderPlaced')
expectType<MessageIterator<MessageOf<Channels, 'orderPlaced'>>>(orders)
expectAssignable<AsyncIterable<MessageOf<Channels, 'orderPlaced'>>>(orders)
expectAssignable<AsyncIterableIterator<MessageOf<Channels, 'orderPlaced'>>>(orders)
expectNotAssignable<AsyncIterable<MessageOf<Channels, 'note'>>>(orders)
expectType<Promise<IteratorResult<MessageOf<Channels, 'orderPlaced'>, undefined>>>(orders.next())
expectType<Promise<IteratorResult<MessageOf<Channels, 'orderPlaced'>, undefined>>>(orders.return())
expectType<MessageIterator<MessageOf<Channels, 'note'>>>(ipc.messages('note', { signal, bufferSize: 10 }))
expectType<MessageIterator<MessageOf<Channels, 'cacheCleared'>>>(ipc.messages('cacheCleared', {}))
expectAssignable<MessagesOptions>({ signal: undefined, bufferSize: undefined })

async function consume(): Promise<void> {
  for await (const msg of ipc.messages('orderPlaced', { signal })) {
    expectType<'orderPlaced'>(msg.channel)
    expectType<Date>(msg.payload.placedAt)
  }
}
void consume

expectError(ipc.messages())
expectError(ipc.messages('nope'))
expectError(ipc.messages('orderPlaced', { bufferSize: '10' }))
expectError(ipc.messages('orderPlaced', { signal: 'abort' }))
expectError(ipc.messages('orderPlaced', { unknownOption: 1 }))

// listening / queueUsage / end -------------------------------------------------------------------

expectType<Promise<void>>(ipc.listening('orderPlaced'))
expectError(ipc.listening('nope'))
expectError(ipc.listening())
expectType<Promise<number>>(ipc.queueUsage())
expectType<Promise<void>>(ipc.end())
expectError(ipc.end('now'))

// Edge cases: any, unknown, never, unions --------------------------------------------------------

// z.any(): the wire form cannot be checked, so the map is accepted (the runtime check still runs),
// and listeners get `any`.
const loose = defineChannels({ anything: z.any(), data: z.json() })
const looseIpc = loose.attach(client)
looseIpc.on('anything', (msg) => expectType<any>(msg.payload))
// A z.any() channel takes a payload (any is not "payload-less").
expectType<Promise<void>>(looseIpc.notify('anything', { a: 1 }))
expectType<[payload?: any]>({} as PayloadArgs<z.ZodAny>)
looseIpc.on('data', (msg) => expectType<z.core.util.JSONType>(msg.payload))
looseIpc.notify('data', { a: [1, 'two', null] })
expectError(looseIpc.notify('data', new Date()))
expectError(looseIpc.notify('data', 1n))

// z.unknown() is rejected (above): its wire form could be anything.

// A union of channel names is refused: the payload could be checked against the wrong schema.
declare const someName: 'orderPlaced' | 'note'
expectError(ipc.notify(someName, 'text for orderPlaced'))
expectError(channels.notifyQuery(someName, 'text for orderPlaced'))

// Known gap: a one-way .transform() passes the compile-time check (its input is JSON); defineChannels
// throws SchemaNotEncodableError for it when it runs (tested in test/typed/typed.test.ts).
defineChannels({ length: z.string().transform((text) => text.length) })

// A map typed only as ZodType: its wire form is unknown, so it is rejected.
expectError(defineChannels({ a: z.string() } as Record<string, z.ZodType>))

// Helper types on loose input.
expectType<string>({} as ChannelName<any>)
expectType<never>({} as ChannelName<unknown>)
expectType<never>({} as ChannelName<never>)
expectType<never>({} as ChannelName<{ names: string[] }>)
expectType<never>({} as ChannelName<typeof defineChannels>)
expectType<never>({} as ChannelName<ChannelSet<{}>>)
