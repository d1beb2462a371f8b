import { EventEmitter } from 'node:events'
import {
  BackpressureError,
  ConnectionLostError,
  EndedError,
  ErrorCode,
  NotListeningError,
  QueryFailedError,
  type PgIpcError,
} from '../errors/index.js'
import { assertClient, type PgClient } from '../pg/client.js'
import { QUEUE_USAGE, type NotifyKind, type Statement } from '../pg/sql.js'
import { assertChannelName } from '../wire/channel.js'
import { encodeCorePayload } from '../wire/core-payload.js'
import { LISTENER_METHODS, bindMethods, deliverGuarded, emitGuarded, escalate } from './emit.js'
import { Hub, type HubMember, type LossKind } from './hub.js'
import type { Message } from './message.js'
import { Reconnector, isReconnectOptions, type ConnectInfo, type ReconnectOptions } from './reconnector.js'
import { isChannelEvent, type CoreLayerEvent, type EmitterEvents } from './events.js'

// Node's own listener type; the public PgIPC interface narrows it per event.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Listener = (...args: any[]) => unknown

/**
 * The events of a {@link PgIPC} instance besides channels. Any other string event name is a
 * channel: its listeners receive a {@link Message}.
 */
export interface PgIPCEvents extends Pick<EmitterEvents, CoreLayerEvent> {}

/** Options of {@link pgIPC}. */
export interface PgIPCOptions {
  /**
   * Most notifications waiting to be sent; one more is refused with a `BackpressureError` (thrown by
   * the core's `notify`, a rejection for the typed layer) instead of queueing. Default: no limit,
   * like pg-ipc and pg themselves (watch `queueUsage()` and your own memory instead).
   */
  readonly maxPending?: number | undefined
}

/** A listener for a channel or for one of {@link PgIPCEvents}. */
type ListenerFor<Event extends string | symbol, Events> = Event extends symbol
  ? (...args: unknown[]) => unknown
  : Event extends keyof Events
    ? Events[Event] extends unknown[]
      ? (...args: Events[Event]) => unknown
      : never
    : (message: Message) => unknown

/**
 * An EventEmitter over one pg client: the first listener on a channel issues LISTEN, the last one
 * leaving issues UNLISTEN. Any string event that is not one of {@link PgIPCEvents} is a channel.
 * Create it with {@link pgIPC}. Every method works unbound (`process.on('SIGTERM', ipc.end)`).
 */
export interface PgIPC extends EventEmitter, AsyncDisposable {
  /** The pg client this instance listens on (in the reconnecting mode: the live one, if any). */
  readonly client: PgClient | undefined
  /** True once `end()` was called. */
  readonly ended: boolean
  /** Backend pid of the connection (`client.processID`): compare with `message.processId` to skip your own. */
  readonly processId: number | undefined
  on<Event extends string | symbol>(event: Event, listener: ListenerFor<Event, PgIPCEvents>): this
  addListener<Event extends string | symbol>(event: Event, listener: ListenerFor<Event, PgIPCEvents>): this
  prependListener<Event extends string | symbol>(event: Event, listener: ListenerFor<Event, PgIPCEvents>): this
  once<Event extends string | symbol>(event: Event, listener: ListenerFor<Event, PgIPCEvents>): this
  prependOnceListener<Event extends string | symbol>(event: Event, listener: ListenerFor<Event, PgIPCEvents>): this
  off<Event extends string | symbol>(event: Event, listener: ListenerFor<Event, PgIPCEvents>): this
  removeListener<Event extends string | symbol>(event: Event, listener: ListenerFor<Event, PgIPCEvents>): this
  emit(event: string | symbol, ...args: unknown[]): boolean
  /**
   * Sends a notification. `payload` is sent as is when it is a string, as JSON otherwise, and not
   * at all when it is `null` or `undefined` (received as `''`). Throws synchronously for a bad
   * channel name or a payload that cannot arrive exactly as sent (8000 bytes or more, a NUL byte, a
   * lone surrogate, no JSON form), and past `maxPending` when you set it. Success is emitted as
   * `notify`, failure as `error` (see docs/sharing.md for "not sent" and "outcome unknown"). After
   * `end()` it sends nothing and warns once, as pg-ipc's own tests expect.
   */
  notify(channel: string, payload?: unknown): void
  /** Alias of `notify`. */
  send(channel: string, payload?: unknown): void
  /**
   * Resolves once the server LISTENs on `channel` for this instance: the moment to read the state
   * you care about ("LISTEN first, then read"). Rejects if the channel has no listener here, its
   * LISTEN fails, its last listener leaves, the instance ends or a client you passed in is lost.
   */
  listening(channel: string): Promise<void>
  /**
   * The fraction of the server's notification queue in use (`pg_notification_queue_usage()`, 0 to 1).
   * NOTIFY starts failing when it reaches 1: alert well before.
   */
  queueUsage(): Promise<number>
  /**
   * Stops listening: once the notifications already handed over settled, UNLISTENs what no other
   * instance on the client needs, emits `end`, then removes every listener. Does not end a client
   * you passed in; in the reconnecting mode it closes the connection it owns, and leaves no timer or
   * socket behind. Safe in any state and when called twice.
   */
  end(): Promise<void>
  /** `await using ipc = pgIPC(client)`: `end()` when the scope is left. */
  [Symbol.asyncDispose](): Promise<void>
}

/** The public methods, bound to each instance so they work detached (`process.on('SIGTERM', ipc.end)`). */
const BOUND_METHODS = [
  ...LISTENER_METHODS,
  'emit',
  'listeners',
  'rawListeners',
  'eventNames',
  'setMaxListeners',
  'getMaxListeners',
  'notify',
  'send',
  'listening',
  'queueUsage',
  'end',
] as const

interface Waiter {
  readonly resolve: () => void
  readonly reject: (error: PgIpcError) => void
}

/** The implementation behind {@link PgIPC}; layers above use its internal methods. */
export class PgIPCEmitter extends EventEmitter implements HubMember {
  /** The connection seam: a client you passed in and the reconnecting mode look the same from here. */
  readonly #hub: Hub
  /** Stops what the instance owns (the reconnecting mode's connection); nothing for a client you passed in. */
  readonly #stop: () => Promise<void>
  readonly #maxPending: number
  /** Notifications handed to notify() and not settled yet. */
  #pending = 0
  /** Channels this instance holds a LISTEN reference for. */
  readonly #subscribed = new Set<string>()
  /** Channels whose LISTEN the server has confirmed for this instance. */
  readonly #active = new Set<string>()
  /** Pending `listening()` calls by channel: kept here, not as event listeners a user could remove. */
  readonly #waiters = new Map<string, Set<Waiter>>()
  /** `end()` was called. */
  #endCalled = false
  /** `end()` finished: `end` was emitted and the listeners removed. */
  #finished = false
  #endPromise: Promise<void> | undefined
  #warnedLateNotify = false

  constructor(source: PgClient | (ReconnectOptions & PgIPCOptions), options: PgIPCOptions = {}) {
    super()
    const maxPending =
      options.maxPending ?? (isReconnectOptions(source) ? source.maxPending : undefined) ?? Number.POSITIVE_INFINITY
    if (maxPending !== Number.POSITIVE_INFINITY && (!Number.isInteger(maxPending) || maxPending < 1)) {
      throw new RangeError(`maxPending must be a positive integer, got ${String(maxPending)}.`)
    }
    this.#maxPending = maxPending
    bindMethods(this, BOUND_METHODS)
    if (isReconnectOptions(source)) {
      const manager = new Reconnector(source)
      this.#hub = manager.hub
      this.#stop = () => manager.stop()
      this.#hub.join(this)
      manager.start()
    } else {
      assertClient(source)
      this.#hub = Hub.forClient(source)
      this.#stop = () => Promise.resolve()
      this.#hub.join(this)
    }
  }

  /** The pg client this instance listens on (in the reconnecting mode: the live one, if any). */
  get client(): PgClient | undefined {
    return this.#hub.client
  }

  /** Backend pid of the current connection. */
  get processId(): number | undefined {
    return this.#hub.processId
  }

  /** True once `end()` was called. */
  get ended(): boolean {
    return this.#endCalled
  }

  /**
   * The connection is gone for good (a client you passed in was lost or closed): nothing more will
   * arrive. Never true in the reconnecting mode until it gives up.
   * @internal
   */
  get connectionClosed(): boolean {
    return this.#hub.closed
  }

  override on(event: string | symbol, listener: Listener): this {
    this.#beforeAdd(event)
    super.on(event, listener)
    this.#sync(event)
    return this
  }

  override addListener(event: string | symbol, listener: Listener): this {
    return this.on(event, listener)
  }

  override prependListener(event: string | symbol, listener: Listener): this {
    this.#beforeAdd(event)
    super.prependListener(event, listener)
    this.#sync(event)
    return this
  }

  // once/prependOnceListener go through on/prependListener; their wrappers remove themselves
  // through removeListener, so every path ends in #sync.

  override removeListener(event: string | symbol, listener: Listener): this {
    super.removeListener(event, listener)
    this.#sync(event)
    return this
  }

  override off(event: string | symbol, listener: Listener): this {
    return this.removeListener(event, listener)
  }

  override removeAllListeners(event?: string | symbol): this {
    const affected = event === undefined ? [...this.#subscribed] : [event]
    // Node tells "all events" from "event undefined" by the argument count.
    if (event === undefined) super.removeAllListeners()
    else super.removeAllListeners(event)
    for (const name of affected) this.#sync(name)
    return this
  }

  /**
   * Sends a notification. `payload` is sent as is when it is a string, as JSON otherwise, and not
   * at all when it is `null` or `undefined` (received as `''`). Throws synchronously for a bad
   * channel name or a payload that cannot be sent exactly (8000 bytes or more, a NUL byte, a lone
   * surrogate, no JSON form); a server error is emitted as `error`, success as `notify`. After
   * `end()` it sends nothing and warns once (pg-ipc's own tests notify from an `end` listener).
   */
  notify(channel: string, payload?: unknown): void {
    assertChannelName(channel)
    if (this.#endCalled) {
      this.#warnLateNotify(channel)
      return
    }
    const text = encodeCorePayload(channel, payload) ?? ''
    this.#send(channel, text, (error) => {
      if (error === undefined) this.#emitSafely('notify', channel, payload)
      else this.#fail(error)
    })
  }

  /** Alias of {@link PgIPC.notify}. */
  send(channel: string, payload?: unknown): void {
    this.notify(channel, payload)
  }

  /**
   * Like `notify`, for layers above: validates synchronously, then returns a promise that settles
   * with the server's answer. Emits neither `notify` nor `error`. Throws after `end()`.
   * `nameChecked`: the caller already checked the channel name (the typed layer, whose names are
   * checked once by defineChannels).
   * @internal
   */
  notifyText(channel: string, text: string, nameChecked = false): Promise<void> {
    if (!nameChecked) assertChannelName(channel)
    if (this.#endCalled) throw new EndedError({ action: 'notify', channel })
    return new Promise<void>((resolve, reject) => {
      this.#send(channel, text, (error) => (error === undefined ? resolve() : reject(error)))
    })
  }

  /**
   * Like `notifyText`, sent another way than plain NOTIFY (a durable channel stores the message and
   * announces it, in one statement, batched like notifications). Same outcomes: sent, not sent, unknown.
   * @internal
   */
  notifyVia(channel: string, text: string, via: NotifyKind): Promise<void> {
    assertChannelName(channel)
    if (this.#endCalled) throw new EndedError({ action: 'notify', channel })
    return new Promise<void>((resolve, reject) => {
      this.#send(channel, text, (error) => (error === undefined ? resolve() : reject(error)), via)
    })
  }

  /**
   * Runs a statement of the library's own through the hub (never inside the user's transaction).
   * @internal
   */
  runStatement(statement: Statement): Promise<readonly (readonly (string | null)[])[]> {
    return this.#hub.query(statement)
  }

  /**
   * Work to run on each new connection of the reconnecting mode before `reconnect` is emitted.
   * @internal
   */
  get catchUps(): Set<() => Promise<void>> {
    return this.#hub.catchUps
  }

  /** Hands one notification on; `settle` runs once with its outcome (callbacks: no promise per message). */
  #send(channel: string, text: string, settle: (error: PgIpcError | undefined) => void, via?: NotifyKind): void {
    if (this.#pending >= this.#maxPending) throw new BackpressureError({ channel, limit: this.#maxPending })
    this.#pending++
    this.#hub.send(
      this,
      channel,
      text,
      (error) => {
        this.#pending--
        settle(error)
      },
      via,
    )
  }

  #warnLateNotify(channel: string): void {
    if (this.#warnedLateNotify) return
    this.#warnedLateNotify = true
    process.emitWarning(
      `notify() on channel "${channel}" after end() was ignored: this instance has ended and sends nothing more. ` +
        'Create a new instance to keep sending (this warning is shown once per instance).',
      { type: 'PgIpcWarning', code: ErrorCode.Ended },
    )
  }

  /** The notification queue usage, 0 to 1 (`pg_notification_queue_usage()`). */
  async queueUsage(): Promise<number> {
    const rows = await this.#hub.query(QUEUE_USAGE)
    return Number(rows[0]?.[0] ?? 0)
  }

  /**
   * Resolves once the server LISTENs on `channel` for this instance: the moment to read the state
   * you care about ("LISTEN first, then read"). Rejects if the channel has no listener here, when
   * its LISTEN fails, its last listener is removed, the instance ends, or a client you passed in is
   * lost. In the reconnecting mode it waits through an outage for the next connection's LISTEN.
   */
  listening(channel: string): Promise<void> {
    assertChannelName(channel)
    if (!this.#subscribed.has(channel)) {
      return Promise.reject(
        new NotListeningError({ channel, reason: this.#endCalled ? 'the instance has ended' : 'it has no listener' }),
      )
    }
    if (this.#active.has(channel)) return Promise.resolve()
    if (this.#hub.closed) {
      return Promise.reject(
        new ConnectionLostError(
          `Cannot LISTEN on channel "${channel}": the PostgreSQL connection is closed. Connect a new client (or use the reconnecting mode).`,
          {
            channel,
          },
        ),
      )
    }
    return new Promise<void>((resolve, reject) => {
      let waiters = this.#waiters.get(channel)
      if (waiters === undefined) this.#waiters.set(channel, (waiters = new Set()))
      waiters.add({ resolve, reject })
    })
  }

  /** Settles the `listening()` calls waiting on `channel` (all channels when undefined). */
  #settleWaiters(channel: string | undefined, error: (channel: string) => PgIpcError | undefined): void {
    const channels = channel === undefined ? [...this.#waiters.keys()] : [channel]
    for (const name of channels) {
      const waiters = this.#waiters.get(name)
      if (waiters === undefined) continue
      this.#waiters.delete(name)
      const failure = error(name)
      for (const waiter of waiters) {
        if (failure === undefined) waiter.resolve()
        else waiter.reject(failure)
      }
    }
  }

  /**
   * Stops listening: once the notifications already handed to `notify` settled, UNLISTENs what no
   * other instance on the client needs, emits `end`, then removes every listener. Does not end a
   * client you passed in; in the reconnecting mode it closes the connection it owns and leaves no
   * timer or socket behind. Safe in any state and when called twice. (Inside your own open
   * transaction on a shared client, it completes after your COMMIT or ROLLBACK.)
   */
  end(): Promise<void> {
    if (this.#endPromise !== undefined) return this.#endPromise
    this.#endCalled = true
    const channels = [...this.#subscribed]
    this.#subscribed.clear()
    this.#active.clear()
    this.#settleWaiters(undefined, (channel) => new NotListeningError({ channel, reason: 'the instance ended' }))
    this.#endPromise = this.#hub
      .release(this, channels)
      .then(() => this.#stop())
      .then(() => {
        this.#finished = true
        this.#emitSafely('end')
        super.removeAllListeners()
        this.#hub.leave(this)
      })
    return this.#endPromise
  }

  /** `await using ipc = pgIPC(client)`: ends the instance when the scope is left. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.end()
  }

  #beforeAdd(event: string | symbol): void {
    if (!isChannelEvent(event)) return
    assertChannelName(event)
    if (this.#endCalled) throw new EndedError({ action: 'listen', channel: event })
  }

  /** Brings the LISTEN reference for `event` in line with whether it has listeners. */
  #sync(event: string | symbol): void {
    if (!isChannelEvent(event) || this.#endCalled) return
    const has = super.listenerCount(event) > 0
    if (has && !this.#subscribed.has(event)) {
      this.#subscribed.add(event)
      this.#hub.want(this, event)
    } else if (!has && this.#subscribed.has(event)) {
      this.#subscribed.delete(event)
      this.#active.delete(event)
      this.#settleWaiters(event, (channel) => new NotListeningError({ channel, reason: 'its last listener was removed' }))
      this.#hub.unwant(this, event)
    }
  }

  /** @internal */
  hubListened(channel: string): void {
    if (this.#endCalled) return
    if (this.#subscribed.has(channel)) {
      this.#active.add(channel)
      this.#settleWaiters(channel, () => undefined)
    }
    this.#emitSafely('listen', channel)
  }

  /** @internal */
  hubUnlistened(channel: string): void {
    if (this.#endCalled) return
    this.#emitSafely('unlisten', channel)
  }

  /** @internal */
  hubDeliver(message: Message): void {
    // Reserved names are never subscribed, so a notification on "error" is never emitted as one.
    if (this.#endCalled || !this.#subscribed.has(message.channel)) return
    deliverGuarded(this, message.channel, message, this.#failListener)
  }

  /** @internal */
  hubFailed(error: PgIpcError): void {
    const channel = error.channel
    if (channel !== undefined && !this.#active.has(channel)) {
      if (error instanceof ConnectionLostError || (error instanceof QueryFailedError && error.command === 'LISTEN')) {
        this.#settleWaiters(channel, () => error)
      }
    }
    this.#fail(error)
  }

  /** @internal */
  hubLost(error: ConnectionLostError | undefined, kind: LossKind): void {
    this.#active.clear()
    if (kind === 'disconnected') {
      // The reconnecting mode recovers: listening() waits for the next connection's LISTEN.
      if (error !== undefined) this.#emitSafely('disconnect', error)
      return
    }
    const failure =
      error ?? new ConnectionLostError('The PostgreSQL client was closed (client.end()): nothing more is received on it.')
    this.#settleWaiters(
      undefined,
      (channel) =>
        new ConnectionLostError(`Not listening on channel "${channel}": ${failure.message}`, { channel, cause: failure }),
    )
    if (error !== undefined && !this.#finished) this.#fail(error)
    if (kind === 'gave-up') void this.end()
  }

  /** @internal */
  hubConnected(info: ConnectInfo): void {
    if (this.#endCalled) return
    this.#emitSafely(info.reconnected ? 'reconnect' : 'connect', info)
  }

  /** {@link PgIPCEmitter.#fail}, made once: the receive path passes it for every message. */
  readonly #failListener = (error: PgIpcError): void => this.#fail(error)

  /** A failure the user must hear about: see {@link escalate}. */
  #fail(error: PgIpcError): void {
    escalate(error, {
      hasErrorListener: super.listenerCount('error') > 0,
      ending: this.#endCalled,
      emit: (failure) => this.#emitSafely('error', failure),
    })
  }

  /** Emits an event; a listener that throws cannot unwind into pg or the hub. */
  #emitSafely(event: string, ...args: unknown[]): void {
    emitGuarded(
      (name, ...values) => super.emit(name, ...values),
      event,
      args,
      (error) => this.#fail(error),
    )
  }
}

/**
 * Creates an EventEmitter over one pg client that LISTENs on a channel when its first listener is
 * added and UNLISTENs when the last one leaves (pg-ipc's API).
 *
 * @example
 * ```ts
 * import pg from 'pg'
 * import { pgIPC } from 'typed-pg-ipc'
 *
 * const client = new pg.Client(process.env.DATABASE_URL)
 * await client.connect()
 * const ipc = pgIPC(client)
 * ipc.on('error', console.error)
 * ipc.on('someChannel', (msg) => console.log(msg.payload, msg.processId))
 * ipc.notify('someChannel', { currentTime: Date.now() })
 * await ipc.end()
 * await client.end()
 * ```
 */
export function pgIPC(client: PgClient, options?: PgIPCOptions): PgIPC
export function pgIPC(options: ReconnectOptions & PgIPCOptions): PgIPC
export function pgIPC(source: PgClient | (ReconnectOptions & PgIPCOptions), options?: PgIPCOptions): PgIPC {
  return new PgIPCEmitter(source, options)
}
