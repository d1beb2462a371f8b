// Small helpers shared by the fast tier.
import type { PgIpcError } from '../../../src/index.js'

// Captured at import, before a test installs fake timers.
const realSetImmediate = globalThis.setImmediate

/**
 * Lets every queued microtask and one macrotask run. Only for showing that something did NOT
 * happen (nothing was sent): whatever the library does in response to a call, it has done by then,
 * since it never waits on a timer to send.
 */
export function turn(): Promise<void> {
  return new Promise((resolve) => realSetImmediate(resolve))
}

/** Collects what an emitter reports as 'error' (and keeps an unheard error from being thrown later). */
export function errorsOf(emitter: { on(event: 'error', listener: (error: PgIpcError) => void): unknown }): PgIpcError[] {
  const errors: PgIpcError[] = []
  emitter.on('error', (error) => errors.push(error))
  return errors
}

/** A promise's state, readable at any time without waiting for it; `settled` waits. */
export interface Tracked {
  readonly state: 'pending' | 'fulfilled' | 'rejected'
  readonly reason: unknown
  readonly settled: Promise<void>
}

export function track(promise: Promise<unknown>): Tracked {
  const tracked = { state: 'pending' as Tracked['state'], reason: undefined as unknown, settled: Promise.resolve() }
  tracked.settled = promise.then(
    () => {
      tracked.state = 'fulfilled'
    },
    (reason: unknown) => {
      tracked.state = 'rejected'
      tracked.reason = reason
    },
  )
  return tracked
}

/** The next emission of `event` (for the typed instance, which is not a Node EventEmitter). */
export function nextEvent<Args extends unknown[]>(
  emitter: { once(event: never, listener: (...args: Args) => void): unknown },
  event: string,
): Promise<Args> {
  return new Promise((resolve) =>
    (emitter.once as (event: string, listener: (...args: Args) => void) => unknown)(event, (...args) => resolve(args)),
  )
}
