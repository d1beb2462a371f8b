import { EventEmitter } from 'node:events'
import {
  BackpressureError,
  ConnectionLostError,
  EndedError,
  ListenerError,
  NotConnectedError,
  NotListeningError,
  type PgIpcError,
} from '../errors/index.js'
import { assertClient, type PgClient } from '../pg/client.js'
import { assertChannelName } from '../wire/channel.js'
import { encodeCorePayload } from '../wire/core-payload.js'
import { emitGuarded, throwLater } from './emit.js'
import { ClientHub, type HubMember } from './hub.js'
import type { Message } from './message.js'
import {
  Reconnector,
  isReconnectOptions,
  type ConnectInfo,
  type ReconnectHost,
  type ReconnectOptions,
} from './reconnector.js'
import { isChannelEvent } from './reserved.js'

// Node's own listener type; the public PgIPC interface narrows it per event.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Listener = (...args: any[]) => unknown

/**
 * The events of a {@link PgIPC} instance besides channels. Any other string event name is a
 * channel: its listeners receive a {@link Message}.
 */
export interface PgIPCEvents {
  /** A LISTEN for the channel is active on the server. */
  listen: [channel: string]
  /** The channel is no longer listened to by this instance. */
  unlisten: [channel: string]
  /** A notification was accepted by the server. `payload` is what was passed to `notify`. */
  notify: [channel: string, payload: unknown]
  /** A failed LISTEN/UNLISTEN/NOTIFY, a lost connection, or a listener that threw or rejected. */
  error: [error: PgIpcError]
  /** The instance stopped listening; emitted before all its listeners are removed. */
  end: []
  /** Reconnecting mode: the first connection is up and every channel with listeners is LISTENed. */
  connect: [info: ConnectInfo]
  /**
   * Reconnecting mode: a new connection is up after an outage, every channel is LISTENed again and
   * `onConnect` has run. Messages sent during `downtimeMs` may have been missed: catch up now.
   */
  reconnect: [info: ConnectInfo]
  /** Reconnecting mode: the connection was lost; a new one is being made. */
  disconnect: [error: ConnectionLostError]
}

/** Options of {@link pgIPC}. */
export interface PgIPCOptions {
  /**
   * Most notifications waiting to be sent; one more is refused with a `BackpressureError` (thrown by
   * the core's `notify`, a rejection for the typed layer) instead of queueing without limit.
   * Default 10 000.
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
 * Create it with {@link pgIPC}.
 */
export interface PgIPC extends EventEmitter {
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
   * channel name, a payload that cannot be encoded or is 8000 bytes or more, or after `end()`;
   * a server error is emitted as `error`, success as `notify`.
   */
  notify(channel: string, payload?: unknown): void
  /** Alias of `notify`. */
  send(channel: string, payload?: unknown): void
  /**
   * Resolves once the server LISTENs on `channel` for this instance: the moment to read the state
   * you care about ("LISTEN first, then read"). Rejects if the channel has no listener here.
   */
  listening(channel: string): Promise<void>
  /**
   * The fraction of the server's notification queue in use (`pg_notification_queue_usage()`, 0 to 1).
   * NOTIFY starts failing when it reaches 1: alert well before.
   */
  queueUsage(): Promise<number>
  /**
   * Stops listening: UNLISTENs what no other instance on the client needs, emits `end`, then removes
   * every listener. Does not end a client you passed in; in the reconnecting mode it closes the
   * connection it owns, and leaves no timer or socket behind. Safe in any state and when called twice.
   */
  end(): Promise<void>
}

/** The implementation behind {@link PgIPC}; layers above use its internal methods. */
export class PgIPCEmitter extends EventEmitter implements HubMember {
  /** The hub of the current client; undefined while the reconnecting mode has no connection. */
  #hub: ClientHub | undefined
  readonly #reconnector: Reconnector | undefined
  readonly #maxWaitMs: number
  readonly #maxQueued: number
  /** Notifications waiting for a connection (reconnecting mode). */
  readonly #waiting: { resolve: (hub: ClientHub) => void; reject: (error: unknown) => void; timer: NodeJS.Timeout }[] = []
  #connectedOnce = false
  readonly #maxPending: number
  /** Notifications handed to notify() and not settled yet. */
  #pending = 0
  /** Channels this instance holds a LISTEN reference for. */
  readonly #subscribed = new Set<string>()
  /** Channels whose LISTEN the server has confirmed for this instance. */
  readonly #active = new Set<string>()
  #ending = false
  #ended = false
  #endPromise: Promise<void> | undefined

  constructor(source: PgClient | (ReconnectOptions & PgIPCOptions), options: PgIPCOptions = {}) {
    super()
    const maxPending = options.maxPending ?? (isReconnectOptions(source) ? source.maxPending : undefined) ?? 10_000
    if (!Number.isInteger(maxPending) || maxPending < 1) {
      throw new RangeError(`maxPending must be a positive integer, got ${String(maxPending)}.`)
    }
    this.#maxPending = maxPending
    if (isReconnectOptions(source)) {
      this.#maxWaitMs = source.whileDisconnected?.maxWaitMs ?? 5_000
      this.#maxQueued = source.whileDisconnected?.maxQueued ?? 1_000
      this.#reconnector = new Reconnector(source, this.#reconnectHost())
      this.#reconnector.start()
    } else {
      assertClient(source)
      this.#maxWaitMs = 0
      this.#maxQueued = 0
      this.#hub = ClientHub.for(source)
      this.#hub.join(this)
    }
  }

  /** The pg client this instance listens on (in the reconnecting mode: the live one, if any). */
  get client(): PgClient | undefined {
    return this.#hub?.client
  }

  /** Backend pid of the current connection. */
  get processId(): number | undefined {
    return this.#hub?.processId
  }

  /** True once `end()` was called. */
  get ended(): boolean {
    return this.#ending
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
   * channel name, a payload that cannot be encoded or is 8000 bytes or more, or after `end()`;
   * a server error is emitted as `error`, success as `notify`.
   */
  notify(channel: string, payload?: unknown): void {
    assertChannelName(channel)
    if (this.#ending) throw new EndedError('notify', channel)
    const text = encodeCorePayload(channel, payload) ?? ''
    this.#deliver(channel, text, (error) => {
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
   * with the server's answer. Emits neither `notify` nor `error`.
   * @internal
   */
  notifyText(channel: string, text: string): Promise<void> {
    assertChannelName(channel)
    if (this.#ending) throw new EndedError('notify', channel)
    return new Promise<void>((resolve, reject) => {
      this.#deliver(channel, text, (error) => (error === undefined ? resolve() : reject(error)))
    })
  }

  /** Hands one notification on; `settle` runs once with its outcome (callbacks: no promise per message). */
  #deliver(channel: string, text: string, settle: (error: PgIpcError | undefined) => void): void {
    // Backpressure: a producer that never awaits must not grow the queue without limit.
    if (this.#pending >= this.#maxPending) throw new BackpressureError(channel, this.#maxPending)
    this.#pending++
    const done = (error: PgIpcError | undefined): void => {
      this.#pending--
      settle(error)
    }
    if (this.#reconnector === undefined) (this.#hub as ClientHub).send(channel, text, done)
    else this.#deliverReconnecting(channel, text).then(() => done(undefined), done)
  }

  /**
   * The reconnecting mode's notify policy: wait (bounded in time and count) for a connection; resend
   * only what provably never left the process, so nothing is lost silently or sent twice.
   */
  async #deliverReconnecting(channel: string, text: string): Promise<void> {
    for (;;) {
      const hub = await this.#connectedHub(channel)
      try {
        await hub.notify(channel, text)
        return
      } catch (error) {
        if (error instanceof ConnectionLostError && error.notSent && !this.#ending) continue
        throw error
      }
    }
  }

  #connectedHub(channel: string): Promise<ClientHub> {
    const hub = this.#hub
    if (hub !== undefined && !hub.dead) return Promise.resolve(hub)
    if (this.#waiting.length >= this.#maxQueued) {
      return Promise.reject(
        new NotConnectedError(channel, `the connection is down and ${this.#maxQueued} notifications are already waiting for it`),
      )
    }
    return new Promise<ClientHub>((resolve, reject) => {
      const waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiting.splice(this.#waiting.indexOf(waiter), 1)
          reject(new NotConnectedError(channel, `no connection came back within ${this.#maxWaitMs} ms`))
        }, this.#maxWaitMs),
      }
      this.#waiting.push(waiter)
    })
  }

  /** The notification queue usage, 0 to 1 (`pg_notification_queue_usage()`). */
  async queueUsage(): Promise<number> {
    const hub = this.#hub
    if (hub === undefined || hub.dead) {
      throw new ConnectionLostError('Cannot read the notification queue usage: there is no connection right now. Try again after the next connect.')
    }
    const rows = await hub.query('SELECT pg_catalog.pg_notification_queue_usage() AS usage')
    return Number(rows[0]?.usage ?? 0)
  }

  /** How the reconnector drives this instance. */
  #reconnectHost(): ReconnectHost {
    return {
      attach: async (client, processId) => {
        const hub = ClientHub.for(client)
        hub.backendPid = processId
        hub.join(this)
        this.#hub = hub
        this.#reconnector?.setPing(() => hub.query('SELECT 1'))
        for (const channel of this.#subscribed) hub.want(this, channel)
        await hub.query(undefined) // every LISTEN above has run
        for (const waiter of this.#waiting.splice(0)) {
          clearTimeout(waiter.timer)
          waiter.resolve(hub)
        }
      },
      connected: (info) => {
        const first = !this.#connectedOnce
        this.#connectedOnce = true
        this.#emitSafely(first ? 'connect' : 'reconnect', info)
      },
      lost: (error) => {
        this.#active.clear()
        const hub = this.#hub
        this.#hub = undefined
        hub?.leave(this)
        this.#emitSafely('disconnect', error)
      },
      report: (error) => this.#fail(error as PgIpcError),
      gaveUp: (error) => {
        this.#fail(error)
        void this.end()
      },
    }
  }

  /**
   * Resolves once the server LISTENs on `channel` for this instance: the moment to read the state
   * you care about ("LISTEN first, then read"). Rejects if the channel has no listener here.
   */
  listening(channel: string): Promise<void> {
    assertChannelName(channel)
    if (this.#active.has(channel) && this.#subscribed.has(channel)) return Promise.resolve()
    if (!this.#subscribed.has(channel)) {
      return Promise.reject(
        new NotListeningError(channel, this.#ending ? 'the instance has ended' : 'it has no listener'),
      )
    }
    return new Promise<void>((resolve, reject) => {
      const cleanup = (): void => {
        super.removeListener('listen', onListen)
        super.removeListener('end', onEnd)
        super.removeListener('unlisten', onUnlisten)
      }
      const onListen = (name: string): void => {
        if (name !== channel) return
        cleanup()
        resolve()
      }
      const onUnlisten = (name: string): void => {
        // An 'unlisten' for a listener that left while a new one arrived does not end the wait.
        if (name !== channel || this.#subscribed.has(channel)) return
        cleanup()
        reject(new NotListeningError(channel, 'its last listener was removed'))
      }
      const onEnd = (): void => {
        cleanup()
        reject(new NotListeningError(channel, 'the instance ended'))
      }
      super.on('listen', onListen)
      super.on('unlisten', onUnlisten)
      super.on('end', onEnd)
    })
  }

  /**
   * Stops listening: UNLISTENs what no other instance on the client needs, emits `end`, then removes
   * every listener. Does not end the client. Safe in any client state and when called twice.
   */
  end(): Promise<void> {
    if (this.#endPromise !== undefined) return this.#endPromise
    this.#ending = true
    const channels = [...this.#subscribed]
    this.#subscribed.clear()
    this.#active.clear()
    for (const waiter of this.#waiting.splice(0)) {
      clearTimeout(waiter.timer)
      waiter.reject(new EndedError('notify'))
    }
    const hub = this.#hub
    // In the reconnecting mode the connection closes anyway; release() still lets queued
    // notifications settle first.
    const released = hub === undefined ? Promise.resolve() : hub.release(this, channels)
    this.#endPromise = released
      .then(() => this.#reconnector?.stop())
      .then(() => {
        this.#ended = true
        this.#emitSafely('end')
        super.removeAllListeners()
        hub?.leave(this)
      })
    return this.#endPromise
  }

  #beforeAdd(event: string | symbol): void {
    if (!isChannelEvent(event)) return
    assertChannelName(event)
    if (this.#ending) throw new EndedError(`listen on channel "${event}"`, event)
  }

  /** Brings the LISTEN reference for `event` in line with whether it has listeners. */
  #sync(event: string | symbol): void {
    if (!isChannelEvent(event) || this.#ending) return
    const has = super.listenerCount(event) > 0
    // While the reconnecting mode has no connection, only #subscribed changes; the next
    // connection LISTENs whatever it holds then.
    if (has && !this.#subscribed.has(event)) {
      this.#subscribed.add(event)
      this.#hub?.want(this, event)
    } else if (!has && this.#subscribed.has(event)) {
      this.#subscribed.delete(event)
      this.#active.delete(event)
      if (this.#hub !== undefined) this.#hub.unwant(this, event)
      else {
        // No connection, so nothing to UNLISTEN: the subscription ends here (never inside the
        // user's off() call).
        queueMicrotask(() => {
          if (!this.#ending && !this.#subscribed.has(event)) this.#emitSafely('unlisten', event)
        })
      }
    }
  }

  /** @internal */
  hubListened(channel: string): void {
    if (this.#ending) return
    if (this.#subscribed.has(channel)) this.#active.add(channel)
    this.#emitSafely('listen', channel)
  }

  /** @internal */
  hubUnlistened(channel: string): void {
    if (this.#ending) return
    this.#emitSafely('unlisten', channel)
  }

  /** @internal */
  hubDeliver(message: Message): void {
    const channel = message.channel
    // Reserved names are never subscribed, so a notification on "error" is never emitted as one.
    if (this.#ending || !this.#subscribed.has(channel)) return
    for (const listener of super.rawListeners(channel) as Listener[]) {
      try {
        const result = (listener as (message: Message) => unknown).call(this, message)
        if (isThenable(result)) result.then(undefined, (error: unknown) => this.#fail(new ListenerError(channel, error)))
      } catch (error) {
        this.#fail(new ListenerError(channel, error))
      }
    }
  }

  /** @internal */
  hubFailed(error: PgIpcError): void {
    this.#fail(error)
  }

  /** @internal */
  hubLost(error: ConnectionLostError | undefined): void {
    this.#active.clear()
    // The reconnecting mode reports a loss as 'disconnect' and recovers; a client you passed in is
    // gone for good, so that is an 'error'.
    if (this.#reconnector !== undefined) return
    if (error !== undefined && !this.#ended) this.#fail(error)
  }

  /**
   * Emits `error`. With no `error` listener, Node's convention applies (the error is thrown), but
   * from a fresh stack, never inside pg's callbacks where it would corrupt the connection.
   */
  #fail(error: PgIpcError): void {
    if (this.#ended) {
      // The user is done with this instance; a late failure (say, an async listener rejecting
      // after end()) is worth a warning, not a crash.
      process.emitWarning(error)
      return
    }
    if (super.listenerCount('error') === 0) {
      throwLater(error)
      return
    }
    this.#emitSafely('error', error)
  }

  /** Emits an event; a listener that throws cannot unwind into pg or the hub. */
  #emitSafely(event: string, ...args: unknown[]): void {
    emitGuarded((name, ...values) => super.emit(name, ...values), event, args, (error) => this.#fail(error))
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function'
  )
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
