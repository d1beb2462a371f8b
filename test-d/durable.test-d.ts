/**
 * Type tests of durable channels: `durable(schema)` in a channel map keeps every compile-time check
 * of the map, and its listeners receive a DurableMessage (id, sentAt, cursor); plain channels keep
 * TypedMessage.
 */
import type { Client } from 'pg'
import { expectAssignable, expectError, expectNotAssignable, expectType } from 'tsd'
import {
  defineChannels,
  durable,
  type ChannelSet,
  type DefineChannelsOptions,
  type Durable,
  type DurableMessage,
  type DurableOptions,
  type MessageIterator,
  type MessageOf,
  type TypedMessage,
} from 'typed-pg-ipc'
import { z } from 'zod'

declare const client: Client

const order = z.object({ orderId: z.uuid(), total: z.number() })
const channels = defineChannels(
  { orderPlaced: durable(order), cacheCleared: z.void(), note: z.string() },
  { durable: { schema: 'app', table: 'events', maxPayloadBytes: 4 * 1024 * 1024, retention: { maxAgeMs: 86_400_000 } } },
)
type Channels = typeof channels

expectType<Durable<typeof order>>(durable(order))
expectAssignable<typeof order>(durable(order)) // still the schema, for zod and for the map

// Listeners of a durable channel get its id, sentAt and cursor; plain channels do not.
const ipc = channels.attach(client)
ipc.on('orderPlaced', (message) => {
  expectType<DurableMessage<'orderPlaced', { orderId: string; total: number }>>(message)
  expectType<string>(message.id)
  expectType<Date>(message.sentAt)
  expectType<string>(message.cursor)
  expectType<number>(message.payload.total)
})
ipc.on('note', (message) => {
  expectType<TypedMessage<'note', string>>(message)
  expectError(message.cursor)
})
expectType<MessageIterator<MessageOf<Channels, 'orderPlaced'>>>(ipc.messages('orderPlaced', { after: 'cursor' }))
expectAssignable<DurableMessage<'orderPlaced', { orderId: string; total: number }>>({} as MessageOf<Channels, 'orderPlaced'>)
expectNotAssignable<DurableMessage<'note', string>>({} as MessageOf<Channels, 'note'>)

// The compile-time checks still hold on a durable channel.
expectError(ipc.notify('orderPlaced', { orderId: 'x', total: 'not a number' }))
expectError(defineChannels({ end: durable(order) }))
expectError(defineChannels({ at: durable(z.date()) }))
expectError(ipc.on('orderPlacd', () => undefined))

// The storage steps.
expectType<Promise<void>>(channels.install(client))
expectType<string>(channels.installSql())
expectType<Promise<number>>(channels.prune(client))
expectError(channels.install('postgres://localhost'))

// Options.
expectAssignable<DefineChannelsOptions>({ durable: { retention: { maxAgeMs: null, maxPerChannel: 100, pruneEveryMs: false } } })
expectNotAssignable<DurableOptions>({ maxPayloadBytes: '1MB' })
expectAssignable<ChannelSet<{ orderPlaced: Durable<typeof order> }>>(defineChannels({ orderPlaced: durable(order) }))
