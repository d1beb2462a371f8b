import { EventEmitter } from 'node:events'
import type { Message } from '../core/message.js'
import { LISTENER_METHODS, bindMethods, deliverGuarded, emitGuarded, escalate } from '../core/emit.js'
import { FORWARDED_EVENTS, TYPED_LAYER_EVENTS, type EmitterEvents, type TypedLayerEvent } from '../core/events.js'
import { PgIPCEmitter } from '../core/pg-ipc.js'
import type { ReconnectOptions } from '../core/reconnector.js'
import {
  EndedError,
  ErrorCode,
  UnknownChannelError,
  ConnectionLostError,
  InvalidCursorError,
  NotInstalledError,
  QueryFailedError,
  type InvalidMessageError,
  type PgIpcError,
} from '../errors/index.js'
import type { PgClient } from '../pg/client.js'
import { decodeJsonPayload, type WireSchema } from '../wire/json-payload.js'
import { decodeCursor, type Position } from '../durable/cursor.js'
import type { DurableConfig } from '../durable/durable.js'
import { DurableReader } from '../durable/reader.js'
import { pruneStatement } from '../pg/durable-sql.js'
import type { NotifyKind } from '../pg/sql.js'
import { createMessageIterator, type MessageIterator, type MessagesOptions } from './messages.js'
import type {
  ChannelName,
  ChannelSchemas,
  MessageOf,
  ChannelMessageOf,
  DurableMessage,
  NotifyArgs,
  NotifyName,
  PayloadOf,
  TypedMessage,
  Uninferred,
} from './types.js'

/** Options of `attach()`. */
export interface AttachOptions {
  /** Skip notifications sent by this same connection (its backend pid). Default `false`. */
  readonly ignoreOwn?: boolean | undefined
  /**
   * With neither an `invalid` nor an `error` listener, invalid incoming messages become process
   * warnings: at most one per channel per this many milliseconds (the rest are counted). Default 10 000.
   */
  readonly invalidWarningIntervalMs?: number | undefined
  /**
   * Most notifications waiting to be sent; one more rejects with a `BackpressureError` instead of
   * queueing. Default: no limit.
   */
  readonly maxPending?: number | undefined
}

/** The events of a typed instance besides its channels. */
export interface TypedEvents<Name extends string> extends Pick<EmitterEvents<Name>, TypedLayerEvent> {}

/** Every event name of a typed instance: its channels and {@link TypedEvents}. */
export type TypedEventName<Schemas extends ChannelSchemas> = ChannelName<Schemas> | keyof TypedEvents<string>

/**
 * The listener type for a channel or an event. For a union of names it is one function that takes
 * any of their messages (or event arguments), as it will be called with any of them.
 */
export type TypedListener<Schemas extends ChannelSchemas, Event extends TypedEventName<Schemas>> =
  // Events first: a channel can never be named like one (defineChannels rejects it).
  [Event] extends [keyof TypedEvents<string>]
    ? (...args: TypedEvents<ChannelName<Schemas>>[Event]) => unknown
    : [Event] extends [ChannelName<Schemas>]
      ? (message: ChannelMessage<Schemas, Event>) => unknown
      : (...args: ListenerArgs<Schemas, Event>) => unknown

/** The message of each channel of a union of names. */
type ChannelMessage<Schemas extends ChannelSchemas, Name extends ChannelName<Schemas>> = Name extends unknown
  ? ChannelMessageOf<Schemas[Name], Name, PayloadOf<Schemas, Name>>
  : never

/** The arguments of each channel or event of a union of names. */
type ListenerArgs<Schemas extends ChannelSchemas, Event> = Event extends keyof TypedEvents<string>
  ? TypedEvents<ChannelName<Schemas>>[Event]
  : Event extends ChannelName<Schemas>
    ? [message: ChannelMessageOf<Schemas[Event], Event, PayloadOf<Schemas, Event>>]
    : never

/**
 * The event parameter of `on()` and its kin: the name itself when it is a channel or an event, else
 * the valid names, as a union written here rather than the {@link TypedEventName} alias. The compiler
 * then reports a misspelt name with the list of channel names, `'"orderPlacd"' is not assignable to
 * parameter of type '"orderPlaced" | "cacheCleared" | keyof TypedEvents<string>'`, instead of with
 * the alias and the whole schema map. Not distributive, so that in generic code (a `TypedIPC<S>` of
 * an unknown `S`) an event name or a `ChannelName<S>` fits both branches and is accepted.
 */
type EventParameter<Schemas extends ChannelSchemas, Event extends string> = [Event] extends [TypedEventName<Schemas>]
  ? Event
  : ChannelName<Schemas> | keyof TypedEvents<string>

/**
 * The listener parameter of `on()` and its kin, for an `Event` inferred from the event argument
 * only (see {@link Uninferred}). Events are tested first, without the schema map, so that they
 * resolve in generic code too. For a name that is not valid, an error already reported at the name,
 * the listener's arguments are `any`: the compiler's own recovery type, so that one error is not
 * followed by others in the listener (an implicit `any` for `(msg) =>`, or every use of `msg`).
 * Valid names never get there.
 */
type ListenerParameter<Schemas extends ChannelSchemas, Event extends string> = [Event] extends [keyof TypedEvents<string>]
  ? TypedListener<Schemas, Event>
  : [Event] extends [TypedEventName<Schemas>]
    ? TypedListener<Schemas, Event>
    : // eslint-disable-next-line @typescript-eslint/no-explicit-any
      (...args: any[]) => unknown

// Node's own listener type, for the internal maps; the public signatures are typed per event.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyFunction = (...args: any[]) => unknown
type CoreListener = (message: Message) => unknown

/** The public methods, bound to each instance so they work detached (`process.on('SIGTERM', ipc.end)`). */
const BOUND_METHODS = [...LISTENER_METHODS, 'notify', 'send', 'messages', 'listening', 'queueUsage', 'end'] as const

/**
 * What the typed layer needs to know of a channel map: each channel's wire directions, which
 * channels are durable, and where durable messages are stored.
 * @internal
 */
export interface ChannelPlan {
  readonly wire: Readonly<Record<string, WireSchema>>
  readonly durable: ReadonlySet<string>
  readonly durableConfig: DurableConfig
  /** How durable messages are sent (one object per map: the hub batches messages of one kind together). */
  readonly durableNotify: NotifyKind
  /** Validates and encodes a payload for `name` (a channel of the map, else UnknownChannelError), within its size limit. */
  readonly encode: (name: string, value: unknown) => string
}

/** A running `messages()` loop, as the instance sees it. */
interface RunningLoop {
  readonly channel: string
  fail(error: Error): void
  finish(): void
}

/**
 * A typed emitter over one pg client, made by `channels.attach(client)`. Channel names and payload
 * types come from the channel map; every payload is validated on the way out and on the way in.
 */
export class TypedIPC<Schemas extends ChannelSchemas> {
  /** The wire directions of each channel's schema, by channel name. */
  readonly #wire: Readonly<Record<string, WireSchema>>
  readonly #plan: ChannelPlan
  readonly #core: PgIPCEmitter
  /** Durable channels: the reader feeding the channel's listeners, and the readers of loops resuming from a cursor. */
  readonly #readers = new Map<string, DurableReader>()
  readonly #cursorReaders = new Map<string, Set<DurableReader>>()
  /** Reads every durable channel after a reconnect, before `reconnect` is emitted. */
  readonly #catchUp = (): Promise<void> => this.#readAll()
  #pruneTimer: NodeJS.Timeout | undefined
  /** The typed layer's own events (`error`, `invalid`, `connect`...). */
  readonly #events = new EventEmitter()
  /** The typed listeners (and `messages()` loops) of each channel, by channel name. */
  readonly #channels = new EventEmitter()
  /**
   * One core listener per channel that has typed listeners: it decodes each notification once for
   * this instance and hands the result to every typed listener of the channel.
   */
  readonly #dispatchers = new Map<string, CoreListener>()
  readonly #iterators = new Set<RunningLoop>()
  readonly #ignoreOwn: boolean
  readonly #warnEveryMs: number
  readonly #lastWarning = new Map<string, { at: number; suppressed: number }>()
  #endPromise: Promise<void> | undefined

  /** @internal Use `channels.attach(client)`. */
  constructor(plan: ChannelPlan, client: PgClient | ReconnectOptions, options: AttachOptions = {}) {
    this.#plan = plan
    this.#wire = plan.wire
    this.#ignoreOwn = options.ignoreOwn ?? false
    this.#warnEveryMs = options.invalidWarningIntervalMs ?? 10_000
    bindMethods(this, BOUND_METHODS)
    this.#channels.setMaxListeners(0)
    this.#core = new PgIPCEmitter(client, { maxPending: options.maxPending })
    this.#core.on('error', (error: PgIpcError) => {
      if (error.code === ErrorCode.ConnectionLost) for (const iterator of this.#iterators) iterator.fail(error)
      this.#fail(error)
    })
    for (const event of FORWARDED_EVENTS) this.#core.on(event, (argument: unknown) => this.#emit(event, argument))
    if (plan.durable.size > 0) {
      this.#core.catchUps.add(this.#catchUp)
      this.#schedulePruning()
    }
  }

  /** The pg client this instance listens on (in the reconnecting mode: the live one, if any). */
  get client(): PgClient | undefined {
    return this.#core.client
  }

  /** Backend pid of the current connection: messages with this `processId` are your own. */
  get processId(): number | undefined {
    return this.#core.processId
  }

  /** True once `end()` was called. */
  get ended(): boolean {
    return this.#core.ended
  }

  /** Adds a listener for a channel (its message is typed by the schema) or for an event. */
  on<Event extends string>(event: EventParameter<Schemas, Event>, listener: Uninferred<ListenerParameter<Schemas, Event>>): this {
    return this.#add(event, listener as AnyFunction, false, false)
  }

  /** Alias of `on`. */
  addListener<Event extends string>(
    event: EventParameter<Schemas, Event>,
    listener: Uninferred<ListenerParameter<Schemas, Event>>,
  ): this {
    return this.#add(event, listener as AnyFunction, false, false)
  }

  /** Like `on`, but runs before the listeners already there. */
  prependListener<Event extends string>(
    event: EventParameter<Schemas, Event>,
    listener: Uninferred<ListenerParameter<Schemas, Event>>,
  ): this {
    return this.#add(event, listener as AnyFunction, false, true)
  }

  /** A listener for the next valid message on a channel (invalid ones do not use it up), or the next event. */
  once<Event extends string>(
    event: EventParameter<Schemas, Event>,
    listener: Uninferred<ListenerParameter<Schemas, Event>>,
  ): this {
    return this.#add(event, listener as AnyFunction, true, false)
  }

  /** Like `once`, but runs before the listeners already there. */
  prependOnceListener<Event extends string>(
    event: EventParameter<Schemas, Event>,
    listener: Uninferred<ListenerParameter<Schemas, Event>>,
  ): this {
    return this.#add(event, listener as AnyFunction, true, true)
  }

  /** Removes a listener; the channel's LISTEN is released when its last listener leaves. */
  off<Event extends string>(
    event: EventParameter<Schemas, Event>,
    listener: Uninferred<ListenerParameter<Schemas, Event>>,
  ): this {
    return this.removeListener(event, listener)
  }

  /** Alias of `off`. */
  removeListener<Event extends string>(
    event: EventParameter<Schemas, Event>,
    listener: Uninferred<ListenerParameter<Schemas, Event>>,
  ): this {
    if (!this.#isChannel(event)) {
      this.#events.removeListener(event, listener as AnyFunction)
      return this
    }
    this.#channels.removeListener(event, listener as AnyFunction)
    this.#releaseIfIdle(event)
    return this
  }

  /** Removes every listener of one channel or event, or of all of them; `messages()` loops on them end. */
  removeAllListeners(event?: ChannelName<Schemas> | keyof TypedEvents<string>): this {
    if (event === undefined) {
      for (const channel of [...this.#dispatchers.keys()]) this.#removeChannel(channel)
      this.#events.removeAllListeners()
    } else if (this.#isChannel(event)) {
      this.#removeChannel(event)
    } else {
      this.#events.removeAllListeners(event)
    }
    return this
  }

  /** How many listeners a channel or event has. */
  listenerCount(event: ChannelName<Schemas> | keyof TypedEvents<string>): number {
    return this.#isChannel(event) ? this.#channels.listenerCount(event) : this.#events.listenerCount(event)
  }

  /**
   * Validates, encodes and sends a notification. Resolves when the server accepted it; rejects with
   * a typed error (invalid payload, too large, unknown channel, ended, server or connection error)
   * and then nothing was sent. A rejected notify is not also emitted as `error`.
   */
  notify<Name extends string>(name: NotifyName<Schemas, Name>, ...payload: Uninferred<NotifyArgs<Schemas, Name>>): Promise<void> {
    try {
      if (this.#core.ended) throw new EndedError({ action: 'notify', channel: name })
      const text = this.#plan.encode(name, (payload as unknown[])[0])
      if (this.#plan.durable.has(name)) {
        return this.#core
          .notifyVia(name, text, this.#plan.durableNotify)
          .catch((error: unknown) => Promise.reject(this.#explainDurable(name, error)))
      }
      return this.#core.notifyText(name, text, true) // encode above: a channel of the map, checked by defineChannels
    } catch (error) {
      return Promise.reject(error)
    }
  }

  /** Alias of `notify`. */
  send<Name extends string>(name: NotifyName<Schemas, Name>, ...payload: Uninferred<NotifyArgs<Schemas, Name>>): Promise<void> {
    return this.notify(name, ...payload)
  }

  /**
   * An async iterator over one channel. It subscribes now, buffers up to `bufferSize` messages for a
   * busy consumer, and unsubscribes when the loop is left (break, return, throw) or `signal` aborts.
   *
   * @example
   * ```ts
   * import pg from 'pg'
   * import { z } from 'zod'
   * import { defineChannels } from 'typed-pg-ipc'
   *
   * const channels = defineChannels({ orderPlaced: z.object({ orderId: z.uuid() }) })
   * const client = new pg.Client(process.env.DATABASE_URL)
   * await client.connect()
   * const ipc = channels.attach(client)
   * const signal = AbortSignal.timeout(60_000)
   * for await (const message of ipc.messages('orderPlaced', { signal })) console.log(message.payload.orderId)
   * ```
   */
  messages<Name extends ChannelName<Schemas>>(name: Name, options?: MessagesOptions): MessageIterator<MessageOf<Schemas, Name>> {
    this.#schema(name)
    if (this.#core.ended) throw new EndedError({ action: 'iterate messages', channel: name })
    type Item = MessageOf<Schemas, Name>
    const after = options?.after
    let from: Position | undefined
    if (after !== undefined) {
      if (!this.#plan.durable.has(name)) {
        throw new TypeError(
          `messages("${name}", { after }): only a durable channel has cursors to resume from. Mark it with durable() in defineChannels().`,
        )
      }
      from = decodeCursor(after)
      if (from === undefined) throw new InvalidCursorError({ channel: name, cursor: after })
    }
    const iterator = createMessageIterator<Item>(
      name,
      {
        subscribe: (listener) => {
          if (from === undefined) {
            this.#channels.on(name, listener)
            this.#subscribe(name)
            return () => {
              this.#channels.removeListener(name, listener)
              this.#releaseIfIdle(name)
              this.#iterators.delete(loop)
            }
          }
          // Resuming from a cursor: a reader of its own, from there, for this loop only.
          const reader = this.#newReader(name, from, listener as (message: DurableMessage<string, unknown>) => void)
          let readers = this.#cursorReaders.get(name)
          if (readers === undefined) this.#cursorReaders.set(name, (readers = new Set()))
          readers.add(reader)
          this.#subscribe(name)
          reader.wake()
          return () => {
            reader.close()
            readers.delete(reader)
            if (readers.size === 0) this.#cursorReaders.delete(name)
            this.#releaseIfIdle(name)
            this.#iterators.delete(loop)
          }
        },
      },
      options,
    )
    // (Declared after the iterator it refers to: the unsubscribe above runs only once the loop ends.)
    const loop: RunningLoop = { channel: name, fail: (error) => iterator.fail(error), finish: () => iterator.finish() }
    this.#iterators.add(loop)
    if (this.#core.connectionClosed) {
      // Nothing will ever arrive: the loop ends at its first next(), rather than waiting for ever.
      iterator.fail(
        new ConnectionLostError(
          `messages() on channel "${name}": the PostgreSQL connection is closed. Connect a new client (or use the reconnecting mode).`,
          {
            channel: name,
          },
        ),
      )
    }
    return iterator
  }

  /**
   * Resolves once the server LISTENs on the channel (it needs a listener or a `messages()` loop):
   * then read the state you care about, and nothing sent after that read is missed.
   */
  listening(name: ChannelName<Schemas>): Promise<void> {
    try {
      this.#schema(name)
    } catch (error) {
      return Promise.reject(error)
    }
    const listening = this.#core.listening(name)
    const reader = this.#readers.get(name)
    if (reader === undefined) return listening
    // A durable channel: also the reader's start, so that whatever commits from now on is delivered.
    return listening.then(() => reader.ready().catch((error: unknown) => Promise.reject(this.#explainDurable(name, error))))
  }

  /** The fraction of the server's notification queue in use (0 to 1): alert well before 1. */
  queueUsage(): Promise<number> {
    return this.#core.queueUsage()
  }

  /**
   * Ends the instance: notifications already handed to `notify` settle first, then the channels no
   * other instance on the client needs are UNLISTENed, `messages()` loops finish, `end` is emitted
   * and every listener is removed. Does not end the client.
   */
  end(): Promise<void> {
    if (this.#endPromise !== undefined) return this.#endPromise
    for (const iterator of [...this.#iterators]) iterator.finish()
    clearTimeout(this.#pruneTimer)
    this.#core.catchUps.delete(this.#catchUp)
    for (const reader of this.#readers.values()) reader.close()
    this.#readers.clear()
    this.#endPromise = this.#core.end().then(() => {
      this.#channels.removeAllListeners()
      this.#dispatchers.clear()
      this.#emit('end')
      this.#events.removeAllListeners()
    })
    return this.#endPromise
  }

  /** `await using ipc = channels.attach(client)`: ends the instance when the scope is left. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.end()
  }

  #schema(name: string): WireSchema {
    const schema = this.#isChannel(name) ? this.#wire[name] : undefined
    if (schema === undefined) throw new UnknownChannelError({ channel: name, known: Object.keys(this.#wire) })
    return schema
  }

  #isChannel(event: string): boolean {
    return Object.hasOwn(this.#wire, event)
  }

  #add(event: string, listener: AnyFunction, once: boolean, prepend: boolean): this {
    if (!this.#isChannel(event)) {
      if (!TYPED_LAYER_EVENTS.has(event as TypedLayerEvent))
        throw new UnknownChannelError({ channel: event, known: Object.keys(this.#wire) })
      if (once) this.#events.once(event, listener)
      else if (prepend) this.#events.prependListener(event, listener)
      else this.#events.on(event, listener)
      return this
    }
    if (this.#core.ended) throw new EndedError({ action: 'listen', channel: event })
    if (once) {
      if (prepend) this.#channels.prependOnceListener(event, listener)
      else this.#channels.once(event, listener)
    } else if (prepend) this.#channels.prependListener(event, listener)
    else this.#channels.on(event, listener)
    this.#subscribe(event)
    return this
  }

  /**
   * The channel has typed listeners: one core listener for it (the core LISTENs on its first). On a
   * plain channel it decodes each notification and delivers it; on a durable one a notification is
   * only a wake-up: its readers read the table, and deliver what they find.
   */
  #subscribe(channel: string): void {
    if (!this.#dispatchers.has(channel)) {
      const fail = (error: PgIpcError): void => this.#fail(error)
      const dispatcher = this.#plan.durable.has(channel)
        ? (): void => {
            this.#readers.get(channel)?.wake()
            for (const reader of this.#cursorReaders.get(channel) ?? []) reader.wake()
          }
        : (message: Message): void => {
            const typed = this.#decode(message)
            // Invalid and own messages reach no listener, so they do not use up a `once`.
            if (typed === undefined) return
            deliverGuarded(this.#channels, channel, typed, fail)
            this.#releaseIfIdle(channel) // `once` listeners leave as they run
          }
      this.#dispatchers.set(channel, dispatcher)
      this.#core.on(channel, dispatcher)
    }
    if (this.#plan.durable.has(channel) && this.#channels.listenerCount(channel) > 0 && !this.#readers.has(channel)) {
      const reader = this.#newReader(channel, undefined, (message) => {
        deliverGuarded(this.#channels, channel, message, (error) => this.#fail(error))
        this.#releaseIfIdle(channel) // `once` listeners leave as they run
      })
      this.#readers.set(channel, reader)
      reader.wake()
    }
  }

  /** The channel's last typed listener (and loop) left: its reader and core listener go (and the core UNLISTENs). */
  #releaseIfIdle(channel: string): void {
    if (this.#channels.listenerCount(channel) > 0) return
    const reader = this.#readers.get(channel)
    if (reader !== undefined) {
      reader.close()
      this.#readers.delete(channel)
    }
    const dispatcher = this.#dispatchers.get(channel)
    if (dispatcher === undefined || this.#cursorReaders.has(channel)) return
    this.#dispatchers.delete(channel)
    this.#core.removeListener(channel, dispatcher)
  }

  /** A reader of a durable channel, from `from` (or from now), whose valid messages go to `deliver`. */
  #newReader(
    channel: string,
    from: Position | undefined,
    deliver: (message: DurableMessage<string, unknown>) => void,
  ): DurableReader {
    const schema = this.#schema(channel)
    return new DurableReader(
      {
        query: (statement) => this.#core.runStatement(statement),
        listening: (name) => this.#core.listening(name),
        fail: (error) => this.#fail(error),
        deliver: (stored) => {
          if (this.#ignoreOwn && stored.processId === this.#core.processId) return
          const result = decodeJsonPayload(channel, schema, stored.payload, stored.processId, stored.payload)
          if (!result.ok) {
            this.#invalid(result.error)
            return
          }
          deliver(
            Object.freeze({
              channel,
              payload: result.value,
              processId: stored.processId,
              rawPayload: stored.payload,
              id: stored.id,
              sentAt: stored.sentAt,
              cursor: stored.cursor,
            }),
          )
        },
      },
      this.#plan.durableConfig.storage,
      channel,
      from,
      this.#plan.durableConfig.safetyReadMs,
    )
  }

  /** Every reader reads what it has not seen (after a reconnect). Rejects only if the connection went meanwhile. */
  async #readAll(): Promise<void> {
    const readers = [...this.#readers.values(), ...[...this.#cursorReaders.values()].flatMap((set) => [...set])]
    await Promise.all(readers.map((reader) => reader.read()))
  }

  /** A durable failure explained: a missing table names the install step. */
  #explainDurable(channel: string, error: unknown): unknown {
    if (error instanceof QueryFailedError && error.sqlState === '42P01') {
      const { storage } = this.#plan.durableConfig
      return new NotInstalledError({ channel, table: `${storage.schema}.${storage.table}`, cause: error })
    }
    return error
  }

  /** Now and then, prune the durable table (many instances may try; one at a time does the work). */
  #schedulePruning(): void {
    const config = this.#plan.durableConfig
    if (config.pruneEveryMs === false || (config.maxAgeMs === undefined && config.maxPerChannel === undefined)) return
    const every = config.pruneEveryMs
    const next = (): void => {
      // Jittered, so instances started together do not all try at once.
      this.#pruneTimer = setTimeout(
        () => {
          void this.#pruneOnce().finally(() => {
            if (!this.#core.ended) next()
          })
        },
        every / 2 + Math.random() * every,
      )
      this.#pruneTimer.unref()
    }
    next()
  }

  async #pruneOnce(): Promise<void> {
    const config = this.#plan.durableConfig
    const statement = pruneStatement(
      config.storage,
      { maxAgeMs: config.maxAgeMs, maxPerChannel: config.maxPerChannel },
      PRUNE_BATCH,
    )
    try {
      for (let round = 0; round < 20; round++) {
        const rows = await this.#core.runStatement(statement)
        if (Number(rows[0]?.[0]) < PRUNE_BATCH) return
      }
    } catch (error) {
      if (error instanceof ConnectionLostError) return
      const channel = [...this.#plan.durable][0] ?? ''
      this.#fail(this.#explainDurable(channel, error) as PgIpcError)
    }
  }

  #removeChannel(channel: string): void {
    for (const iterator of [...this.#iterators]) if (iterator.channel === channel) iterator.finish()
    this.#channels.removeAllListeners(channel)
    this.#releaseIfIdle(channel)
  }

  /** Own messages (with `ignoreOwn`) and invalid ones become undefined; the decode is shared across instances. */
  #decode(message: Message): TypedMessage<string, unknown> | undefined {
    if (this.#ignoreOwn && message.processId === this.#core.processId) return undefined
    const outcome = decodeOnce(message, this.#schema(message.channel))
    if (outcome.ok) return outcome.message
    this.#invalid(outcome.error)
    return undefined
  }

  /** Incoming data never throws: `invalid`, else `error`, else a (rate-limited) process warning. */
  #invalid(error: InvalidMessageError): void {
    if (this.#events.listenerCount('invalid') > 0) this.#emit('invalid', error)
    else if (this.#events.listenerCount('error') > 0) this.#emit('error', error)
    else this.#warn(error)
  }

  #warn(error: InvalidMessageError): void {
    const channel = error.channel ?? ''
    const now = Date.now()
    const last = this.#lastWarning.get(channel)
    if (last !== undefined && now - last.at < this.#warnEveryMs) {
      last.suppressed++
      return
    }
    const suppressed = last?.suppressed ?? 0
    this.#lastWarning.set(channel, { at: now, suppressed: 0 })
    const more = suppressed > 0 ? ` (${suppressed} more invalid messages on this channel were not reported)` : ''
    process.emitWarning(`${error.message}${more} Add an 'invalid' listener to handle these.`, {
      type: 'InvalidMessageWarning',
      code: error.code,
    })
  }

  /** A failure the user must hear about: the same policy as the core's (see escalate). */
  #fail(error: PgIpcError): void {
    escalate(error, {
      hasErrorListener: this.#events.listenerCount('error') > 0,
      ending: this.#endPromise !== undefined,
      emit: (failure) => this.#emit('error', failure),
    })
  }

  #emit(event: keyof TypedEvents<string>, ...args: unknown[]): void {
    emitGuarded(
      (name, ...values) => this.#events.emit(name, ...values),
      event,
      args,
      (error) => this.#fail(error),
    )
  }
}

/** Messages one pruning statement deletes at most. */
const PRUNE_BATCH = 5_000

type DecodeOutcome = { ok: true; message: TypedMessage<string, unknown> } | { ok: false; error: InvalidMessageError }

/**
 * The decode cache: the last decode per schema. The core hands every instance on a client the same
 * message object, one notification at a time and synchronously, and each instance decodes it once
 * (one core listener per channel), so one slot per schema is enough for a notification to be parsed
 * and validated once however many instances listen (cheaper than a WeakMap entry per message).
 */
const lastDecode = new WeakMap<WireSchema, { message: Message; outcome: DecodeOutcome }>()

function decodeOnce(message: Message, schema: WireSchema): DecodeOutcome {
  const last = lastDecode.get(schema)
  if (last !== undefined && last.message === message) return last.outcome
  const result = decodeJsonPayload(message.channel, schema, message.rawPayload, message.processId, message.payload)
  const outcome: DecodeOutcome = result.ok
    ? {
        ok: true,
        message: Object.freeze({
          channel: message.channel,
          payload: result.value,
          processId: message.processId,
          rawPayload: message.rawPayload,
        }),
      }
    : result
  if (last === undefined) lastDecode.set(schema, { message, outcome })
  else {
    last.message = message
    last.outcome = outcome
  }
  return outcome
}
