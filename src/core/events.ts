import type { ConnectionLostError, InvalidMessageError, PgIpcError } from '../errors/index.js'
import type { ConnectInfo } from './reconnector.js'

/**
 * Every event the emitters emit besides channels, with its arguments: the one declaration that the
 * reserved names, both layers' event maps ({@link PgIPCEvents}, `TypedEvents`) and their run-time
 * sets are derived from. `Name` is the type of a channel name: `string` in the core, the channel
 * map's names in the typed layer.
 */
export interface EmitterEvents<Name extends string = string> {
  /** A LISTEN for the channel is active on the server. */
  listen: [channel: Name]
  /** The channel's last listener left and this instance no longer listens to it. */
  unlisten: [channel: Name]
  /** Core: a notification was accepted by the server. `payload` is what was passed to `notify`. */
  notify: [channel: string, payload: unknown]
  /** A failed LISTEN/UNLISTEN (or core NOTIFY), a lost connection, a listener that threw or rejected. */
  error: [error: PgIpcError]
  /** Typed layer: an incoming notification that is not JSON or does not match its schema; no listener saw it. */
  invalid: [error: InvalidMessageError]
  /** The instance has ended; emitted before all its listeners are removed. */
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

/**
 * Who emits each reserved name: Node's EventEmitter itself, both layers, or one of them. Checked
 * against {@link EmitterEvents} by `satisfies`: an event added there without a line here (or the
 * reverse) does not compile.
 */
const EMITTED_BY = {
  // pg-ipc 1.0.5's seven, in its order
  newListener: 'node',
  removeListener: 'node',
  notify: 'core',
  unlisten: 'both',
  listen: 'both',
  error: 'both',
  end: 'both',
  // ours
  invalid: 'typed',
  connect: 'both',
  reconnect: 'both',
  disconnect: 'both',
} as const satisfies Record<keyof EmitterEvents | 'newListener' | 'removeListener', 'node' | 'both' | 'core' | 'typed'>

type EmittedBy = typeof EMITTED_BY

/** An event name the emitters use themselves: never a channel (a typed channel cannot be named so). */
export type ReservedEvent = keyof EmittedBy

type EmittedByLayer<Layer> = { [Event in ReservedEvent]: EmittedBy[Event] extends Layer ? Event : never }[ReservedEvent]

/** The events of the core besides channels. */
export type CoreLayerEvent = EmittedByLayer<'both' | 'core'>

/** The events of the typed layer besides channels. */
export type TypedLayerEvent = EmittedByLayer<'both' | 'typed'>

/** The core's events the typed layer passes on as they are (it emits `error` and `end` itself). */
export type ForwardedEvent = Exclude<EmittedByLayer<'both'>, 'error' | 'end'>

/**
 * Every event name the emitters use themselves. pg-ipc reserved the first seven; `invalid`,
 * `connect`, `reconnect` and `disconnect` are reserved for the typed layer and the reconnecting
 * mode. A channel with one of these names is never LISTENed by adding a listener, and an incoming
 * notification on such a channel is never emitted as that event.
 */
export const RESERVED_EVENTS = Object.freeze(Object.keys(EMITTED_BY)) as readonly ReservedEvent[]

const reserved: ReadonlySet<string> = new Set(RESERVED_EVENTS)

function namesEmittedBy<Name extends ReservedEvent>(layer: 'core' | 'typed'): ReadonlySet<Name> {
  return new Set(RESERVED_EVENTS.filter((name) => EMITTED_BY[name] === 'both' || EMITTED_BY[name] === layer) as Name[])
}

/** The typed layer's own events, at run time. */
export const TYPED_LAYER_EVENTS: ReadonlySet<TypedLayerEvent> = namesEmittedBy<TypedLayerEvent>('typed')

/** {@link ForwardedEvent}, at run time. */
export const FORWARDED_EVENTS = RESERVED_EVENTS.filter(
  (name): name is ForwardedEvent => EMITTED_BY[name] === 'both' && name !== 'error' && name !== 'end',
)

/** True for a name that is a channel (a string that is not a reserved event). */
export function isChannelEvent(name: string | symbol): name is string {
  return typeof name === 'string' && !reserved.has(name)
}

export function isReservedEvent(name: string): name is ReservedEvent {
  return reserved.has(name)
}
