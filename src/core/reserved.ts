/**
 * Event names the emitter uses itself. pg-ipc reserved the first seven; `invalid`, `connect`,
 * `reconnect` and `disconnect` are reserved for the typed layer and the reconnecting mode.
 * A channel with one of these names is never LISTENed by adding a listener, and an incoming
 * notification on such a channel is never emitted as that event.
 */
export const RESERVED_EVENTS = [
  'newListener',
  'removeListener',
  'notify',
  'unlisten',
  'listen',
  'error',
  'end',
  'invalid',
  'connect',
  'reconnect',
  'disconnect',
] as const

/** One of {@link RESERVED_EVENTS}. */
export type ReservedEvent = (typeof RESERVED_EVENTS)[number]

const reserved: ReadonlySet<string> = new Set(RESERVED_EVENTS)

/** True for a name that is a channel (a string that is not a reserved event). */
export function isChannelEvent(name: string | symbol): name is string {
  return typeof name === 'string' && !reserved.has(name)
}

export function isReservedEvent(name: string): name is ReservedEvent {
  return reserved.has(name)
}
