/**
 * Type tests of the untyped core: `pgIPC(client)` and the `PgIPC` interface.
 * tsd checks these against the built declarations (package.json `types`: ./dist/index.d.ts).
 */
import type { EventEmitter } from 'node:events'
import type { Client, Pool, PoolClient } from 'pg'
import { expectAssignable, expectError, expectNotAssignable, expectType } from 'tsd'
import pgIPCDefault, {
  MAX_CHANNEL_BYTES,
  MAX_PAYLOAD_BYTES,
  RESERVED_EVENTS,
  pgIPC,
  type ConnectInfo,
  type ConnectionLostError,
  type HealthCheckOptions,
  type Message,
  type PgClient,
  type PgClientConfig,
  type PgIPC,
  type PgIPCEvents,
  type PgIPCOptions,
  type PgIpcError,
  type PgNotification,
  type ReconnectOptions,
  type ReservedEvent,
  type RetryOptions,
  type WhileDisconnectedOptions,
} from 'typed-pg-ipc'

declare const client: Client
declare const pool: Pool
declare const poolClient: PoolClient
declare const someChannel: string

const ipc = pgIPC(client)

// pgIPC(client) ----------------------------------------------------------------------------------

expectType<PgIPC>(ipc)
expectType<PgIPC>(pgIPC(poolClient)) // a checked-out pool client is a Client
expectType<PgIPC>(pgIPC(client, {}))
expectType<PgIPC>(pgIPC(client, { maxPending: 100 }))
expectAssignable<PgIPCOptions>({ maxPending: undefined })
expectType<typeof pgIPC>(pgIPCDefault)
expectAssignable<EventEmitter>(ipc)
expectAssignable<PgClient>(client)

expectError(pgIPC())
expectError(pgIPC(123))
expectError(pgIPC('postgres://localhost/db'))
expectError(pgIPC({}))
expectError(pgIPC(client, { maxPending: '100' }))
expectError(pgIPC(client, { unknownOption: 1 }))
expectError(pgIPC(client, 'options'))
expectError(pgIPC({ connect: 123 }))
expectError(pgIPC({ connect: 'postgres://localhost/db', retry: { maxAttempts: '3' } }))
expectError(pgIPC({ connect: 'postgres://localhost/db', healthCheck: true }))
expectError(pgIPC({ connect: 'postgres://localhost/db', onConnect: (info: string) => info }))
expectError(pgIPC({ connect: 'postgres://localhost/db', unknownOption: 1 }))
expectNotAssignable<PgClient>({ query: () => Promise.resolve({ rows: [] }) }) // not an EventEmitter

// pgIPC(options): the reconnecting mode -----------------------------------------------------------

expectType<PgIPC>(pgIPC({ connect: 'postgres://localhost/db' }))
expectType<PgIPC>(pgIPC({ connect: { host: 'localhost', database: 'db' } }))
expectType<PgIPC>(pgIPC({ connect: () => client }))
expectType<PgIPC>(pgIPC({ connect: async () => client }))
expectType<PgIPC>(
  pgIPC({
    connect: 'postgres://localhost/db',
    retry: { initialDelayMs: 100, maxDelayMs: 10_000, factor: 2, maxAttempts: 5 },
    healthCheck: { intervalMs: 5_000, timeoutMs: 2_000 },
    onConnect: async (info) => {
      expectType<ConnectInfo>(info)
      expectType<boolean>(info.reconnected)
      expectType<number>(info.attempts)
      expectType<number>(info.downtimeMs)
      expectType<number>(info.processId)
      await Promise.resolve()
    },
    whileDisconnected: { maxWaitMs: 5_000, maxQueued: 1_000 },
    connectTimeoutMs: 10_000,
    probeTimeoutMs: 2_000,
  }),
)
expectType<PgIPC>(pgIPC({ connect: 'postgres://localhost/db', healthCheck: false }))
expectType<PgIPC>(pgIPC({ connect: 'postgres://localhost/db', maxPending: 100 }))
expectAssignable<ReconnectOptions>({ connect: 'postgres://localhost/db' })
expectAssignable<RetryOptions>({})
expectAssignable<HealthCheckOptions>({})
expectAssignable<WhileDisconnectedOptions>({})
expectAssignable<PgClientConfig>('postgres://localhost/db')
expectNotAssignable<ReconnectOptions>({})

// client / ended ---------------------------------------------------------------------------------

// In the reconnecting mode there may be no live client, so both are `| undefined`.
expectType<PgClient | undefined>(ipc.client)
expectType<number | undefined>(ipc.processId)
expectType<boolean>(ipc.ended)
expectError((ipc.ended = true))
expectError((ipc.client = client))
expectError((ipc.processId = 1))

// on(channel, listener): any string that is not an event is a channel ----------------------------

expectType<PgIPC>(
  ipc.on('orders', (msg) => {
    expectType<Message>(msg)
    expectType<Message<unknown>>(msg)
    expectType<string>(msg.channel)
    expectType<unknown>(msg.payload)
    expectType<number>(msg.processId)
    expectType<string>(msg.rawPayload)
  }),
)
ipc.on(someChannel, (msg) => expectType<Message>(msg))
ipc.on('orders', async (msg) => {
  expectType<Message>(msg)
  await Promise.resolve()
})
ipc.on('orders', () => {}) // fewer parameters are fine
// The message is frozen and shared: its fields are read-only.
ipc.on('orders', (msg) => expectError((msg.payload = 1)))
ipc.on('orders', (msg) => expectError((msg.channel = 'x')))

expectError(ipc.on('orders', (msg: string) => msg))
expectError(ipc.on('orders', (msg: Message, extra: string) => [msg, extra]))
expectError(ipc.on(123, () => {}))
// Symbols are Node's, never channels: allowed, untyped.
ipc.on(Symbol('internal'), (...args) => expectType<unknown[]>(args))
expectError(ipc.on('orders'))

// Message<Payload>: the payload type parameter, and the exact shape (as a hover shows it).
declare const numberMessage: Message<number>
expectType<number>(numberMessage.payload)
expectType<{
  readonly channel: string
  readonly payload: unknown
  readonly processId: number
  readonly rawPayload: string
}>({} as { [Key in keyof Message]: Message[Key] })

// on(event, listener): the events of PgIPCEvents -------------------------------------------------

ipc.on('listen', (channel) => expectType<string>(channel))
ipc.on('unlisten', (channel) => expectType<string>(channel))
ipc.on('error', (error) => expectType<PgIpcError>(error))
ipc.on('notify', (channel, payload) => {
  expectType<string>(channel)
  expectType<unknown>(payload)
})
ipc.on('end', () => {})
expectType<PgIPC>(ipc.on('end', () => {}))
ipc.on('connect', (info) => expectType<ConnectInfo>(info))
ipc.on('reconnect', (info) => expectType<ConnectInfo>(info))
ipc.on('disconnect', (error) => expectType<ConnectionLostError>(error))

expectError(ipc.on('listen', (channel: number) => channel))
expectError(ipc.on('listen', (msg: Message) => msg))
expectError(ipc.on('error', (error: string) => error))
expectError(ipc.on('notify', (channel: string, payload: string) => [channel, payload]))
expectError(ipc.on('end', (reason: string) => reason))
expectError(ipc.on('reconnect', (info: string) => info))
expectError(ipc.on('disconnect', (error: Message) => error))

expectType<[channel: string]>({} as PgIPCEvents['listen'])
expectType<[error: PgIpcError]>({} as PgIPCEvents['error'])
expectType<[channel: string, payload: unknown]>({} as PgIPCEvents['notify'])
expectType<[]>({} as PgIPCEvents['end'])
expectType<[info: ConnectInfo]>({} as PgIPCEvents['reconnect'])
expectType<[error: ConnectionLostError]>({} as PgIPCEvents['disconnect'])

// The other listener methods share on's signature ------------------------------------------------

expectType<PgIPC>(ipc.addListener('orders', (msg) => expectType<Message>(msg)))
expectType<PgIPC>(ipc.prependListener('orders', (msg) => expectType<Message>(msg)))
expectType<PgIPC>(ipc.once('orders', (msg) => expectType<Message>(msg)))
expectType<PgIPC>(ipc.prependOnceListener('orders', (msg) => expectType<Message>(msg)))
expectAssignable<AsyncDisposable>(ipc)
expectType<Promise<void>>(ipc[Symbol.asyncDispose]())
expectType<PgIPC>(ipc.once('error', (error) => expectType<PgIpcError>(error)))
expectType<PgIPC>(ipc.once('listen', (channel) => expectType<string>(channel)))
const onOrder = (msg: Message): void => void msg
expectType<PgIPC>(ipc.off('orders', onOrder))
expectType<PgIPC>(ipc.removeListener('orders', onOrder))

expectError(ipc.once('orders', (msg: number) => msg))
expectError(ipc.prependListener('error', (error: string) => error))
expectError(ipc.off('listen', onOrder))
expectError(ipc.removeListener('end', onOrder))

// emit stays Node's: untyped, returns boolean ----------------------------------------------------

expectType<boolean>(ipc.emit('orders', { any: 'thing' }))

// notify / send ----------------------------------------------------------------------------------

expectType<void>(ipc.notify('orders'))
expectType<void>(ipc.notify('orders', { id: 1 }))
expectType<void>(ipc.notify('orders', 'raw text'))
expectType<void>(ipc.notify('orders', null))
expectType<void>(ipc.notify(someChannel, 42))
expectType<void>(ipc.send('orders'))
expectType<void>(ipc.send('orders', [1, 2, 3]))

expectError(ipc.notify())
expectError(ipc.notify(123))
expectError(ipc.notify(123, 'payload'))
expectError(ipc.notify(Symbol('orders')))
expectError(ipc.notify('orders', 'payload', 'extra'))
expectError(ipc.send())
expectError(ipc.send(123))

// listening(channel) / end() ---------------------------------------------------------------------

expectType<Promise<void>>(ipc.listening('orders'))
expectError(ipc.listening())
expectError(ipc.listening(123))
expectType<Promise<number>>(ipc.queueUsage())
expectError(ipc.queueUsage('orders'))
expectType<Promise<void>>(ipc.end())
expectError(ipc.end('now'))

// PgNotification, constants ----------------------------------------------------------------------

expectAssignable<PgNotification>({ processId: 1, channel: 'orders' })
expectAssignable<PgNotification>({ processId: 1, channel: 'orders', payload: 'x' })
expectNotAssignable<PgNotification>({ channel: 'orders' })

expectType<63>(MAX_CHANNEL_BYTES)
expectType<7999>(MAX_PAYLOAD_BYTES)
expectType<ReservedEvent | undefined>(RESERVED_EVENTS[0])
expectType<ReservedEvent>(RESERVED_EVENTS[RESERVED_EVENTS.length - 1]!)
expectAssignable<readonly string[]>(RESERVED_EVENTS)
expectError(RESERVED_EVENTS.push('x'))
expectType<
  | 'newListener'
  | 'removeListener'
  | 'notify'
  | 'unlisten'
  | 'listen'
  | 'error'
  | 'end'
  | 'invalid'
  | 'connect'
  | 'reconnect'
  | 'disconnect'
>({} as ReservedEvent)

// A pg.Pool is not a client (LISTEN needs one session): PgClient's `totalCount?: never` refuses it.
expectNotAssignable<PgClient>(pool)
expectError(pgIPC(pool))
