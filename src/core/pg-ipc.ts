import { EventEmitter } from 'node:events'
import {
  EndedError,
  ListenerError,
  NotListeningError,
  type ConnectionLostError,
  type PgIpcError,
} from '../errors/index.js'
import type { PgClient } from '../pg/client.js'
import { assertChannelName } from '../wire/channel.js'
import { encodeCorePayload } from '../wire/core-payload.js'
import { ClientHub, type HubMember } from './hub.js'
import type { Message } from './message.js'
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
}

/** A listener for a channel or for one of {@link PgIPCEvents}. */
type ListenerFor<Event extends string, Events> = Event extends keyof Events
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
  /** The pg client this instance listens on. */
  readonly client: PgClient
  /** True once `end()` was called. */
  readonly ended: boolean
  on<Event extends string>(event: Event, listener: ListenerFor<Event, PgIPCEvents>): this
  addListener<Event extends string>(event: Event, listener: ListenerFor<Event, PgIPCEvents>): this
  prependListener<Event extends string>(event: Event, listener: ListenerFor<Event, PgIPCEvents>): this
  once<Event extends string>(event: Event, listener: ListenerFor<Event, PgIPCEvents>): this
  prependOnceListener<Event extends string>(event: Event, listener: ListenerFor<Event, PgIPCEvents>): this
  off<Event extends string>(event: Event, listener: ListenerFor<Event, PgIPCEvents>): this
  removeListener<Event extends string>(event: Event, listener: ListenerFor<Event, PgIPCEvents>): this
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
   * Stops listening: UNLISTENs what no other instance on the client needs, emits `end`, then removes
   * every listener. Does not end the client. Safe in any client state and when called twice.
   */
  end(): Promise<void>
}

/** The implementation behind {@link PgIPC}; layers above use its internal methods. */
export class PgIPCEmitter extends EventEmitter implements HubMember {
  readonly #hub: ClientHub
  /** Channels this instance holds a LISTEN reference for. */
  readonly #subscribed = new Set<string>()
  /** Channels whose LISTEN the server has confirmed for this instance. */
  readonly #active = new Set<string>()
  #ending = false
  #ended = false
  #endPromise: Promise<void> | undefined

  constructor(client: PgClient) {
    super()
    this.#hub = ClientHub.for(client)
    this.#hub.join(this)
  }

  /** The pg client this instance listens on. */
  get client(): PgClient {
    return this.#hub.client
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
    this.#send(channel, payload).then(
      () => this.#emitSafely('notify', channel, payload),
      (error: PgIpcError) => this.#fail(error),
    )
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
    return this.#hub.notify(channel, text)
  }

  #send(channel: string, payload: unknown): Promise<void> {
    assertChannelName(channel)
    if (this.#ending) throw new EndedError('notify', channel)
    return this.#hub.notify(channel, encodeCorePayload(channel, payload) ?? '')
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
        if (name !== channel) return
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
    this.#endPromise = this.#hub.release(this, channels).then(() => {
      this.#ended = true
      this.#emitSafely('end')
      super.removeAllListeners()
      this.#hub.leave(this)
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
    if (has && !this.#subscribed.has(event)) {
      this.#subscribed.add(event)
      this.#hub.want(this, event)
    } else if (!has && this.#subscribed.has(event)) {
      this.#subscribed.delete(event)
      this.#active.delete(event)
      this.#hub.unwant(this, event)
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
      setImmediate(() => {
        throw error
      })
      return
    }
    this.#emitSafely('error', error)
  }

  /** Emits an event; a listener that throws cannot unwind into pg or the hub. */
  #emitSafely(event: string, ...args: unknown[]): void {
    try {
      super.emit(event, ...args)
    } catch (error) {
      if (event === 'error') {
        setImmediate(() => {
          throw error
        })
      } else {
        this.#fail(new ListenerError(event, error))
      }
    }
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
export function pgIPC(client: PgClient): PgIPC {
  return new PgIPCEmitter(client)
}
