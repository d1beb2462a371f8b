/**
 * typed-pg-ipc: typed messages between Node services over PostgreSQL LISTEN/NOTIFY.
 *
 * - `pgIPC(client)`: the untyped core, a drop-in for pg-ipc 1.0.5.
 * - `defineChannels({ name: zodSchema })`: the typed layer.
 *
 * This file is the package's only entry point; everything else is internal.
 * @packageDocumentation
 */
import { pgIPC } from './core/pg-ipc.js'

export { pgIPC }
export type { PgIPC, PgIPCEvents, PgIPCOptions } from './core/pg-ipc.js'
export type { Message } from './core/message.js'
export type {
  ReconnectOptions,
  RetryOptions,
  HealthCheckOptions,
  WhileDisconnectedOptions,
  ConnectInfo,
  PgClientConfig,
} from './core/reconnector.js'
export { RESERVED_EVENTS, type ReservedEvent } from './core/events.js'
export type { PgClient, PgNotification } from './pg/client.js'
export { MAX_CHANNEL_BYTES, MAX_PAYLOAD_BYTES } from './wire/limits.js'
export {
  ErrorCode,
  PgIpcError,
  InvalidChannelError,
  ReservedChannelError,
  PayloadNotEncodableError,
  PayloadTooLargeError,
  EndedError,
  NotListeningError,
  QueryFailedError,
  ConnectionLostError,
  NotifyOutcomeUnknownError,
  ListenerError,
  HookError,
  InvalidPayloadError,
  UnknownChannelError,
  InvalidMessageError,
  SchemaNotEncodableError,
  BufferOverflowError,
  NotConnectedError,
  BackpressureError,
  UnsupportedSetupError,
  NotInstalledError,
  CursorExpiredError,
  InvalidCursorError,
  type PgIpcErrorOptions,
  type LibraryCommand,
  type ValidationIssue,
} from './errors/index.js'

export { defineChannels, type ChannelSet, type DefineChannelsOptions, type NotifyQuery } from './typed/define-channels.js'
export { durable, type Durable, type DurableBrand, type DurableOptions, type RetentionOptions } from './durable/durable.js'
export type { TypedIPC, AttachOptions, TypedEvents, TypedEventName, TypedListener } from './typed/typed-ipc.js'
export type { MessageIterator, MessagesOptions } from './typed/messages.js'
export type {
  ChannelSchema,
  ChannelSchemas,
  CheckChannels,
  ChannelName,
  PayloadOf,
  WirePayloadOf,
  MessageOf,
  TypedMessage,
  DurableMessage,
  PayloadArgs,
  NotifyPayloadArgs,
} from './typed/types.js'

export default pgIPC
