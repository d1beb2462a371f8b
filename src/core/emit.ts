import type { EventEmitter } from 'node:events'
import { ListenerError, type PgIpcError } from '../errors/index.js'

/**
 * Node's convention for an 'error' nobody listens to is to throw it. We do, but from a fresh stack:
 * never inside pg's callbacks, where an exception would corrupt the connection.
 */
export function throwLater(error: unknown): void {
  setImmediate(() => {
    throw error
  })
}

/**
 * The one escalation policy of both layers for a failure the user must hear about: the `error`
 * event when someone listens to it; else, once `end()` was called, a process warning (a late
 * failure while shutting down is worth a line, not a crash); else thrown, as Node does with an
 * unheard `error`, from a fresh stack.
 */
export function escalate(
  error: PgIpcError,
  to: { readonly hasErrorListener: boolean; readonly ending: boolean; emit(error: PgIpcError): void },
): void {
  if (to.hasErrorListener) to.emit(error)
  else if (to.ending) process.emitWarning(error)
  else throwLater(error)
}

/**
 * Emits an event so that a listener that throws cannot unwind into pg or the hub: its exception
 * becomes a ListenerError passed to `fail` (an 'error' listener that throws is thrown later).
 */
export function emitGuarded(
  emit: (event: string, ...args: unknown[]) => boolean,
  event: string,
  args: readonly unknown[],
  fail: (error: PgIpcError) => void,
): void {
  try {
    emit(event, ...args)
  } catch (error) {
    if (event === 'error') throwLater(error)
    else fail(new ListenerError({ event, cause: error }))
  }
}

/**
 * Calls the listeners of a channel as `emitter.emit` would (in order, `once` ones removed as they
 * run), except that each one is guarded: one that throws, or returns a promise that rejects, is
 * reported through `fail` as a ListenerError, and the others still run.
 */
export function deliverGuarded(
  emitter: EventEmitter,
  channel: string,
  message: unknown,
  fail: (error: PgIpcError) => void,
): void {
  for (const listener of emitter.rawListeners(channel) as ((message: unknown) => unknown)[]) {
    try {
      const result = listener.call(emitter, message)
      if (isThenable(result))
        result.then(undefined, (error: unknown) => fail(new ListenerError({ event: channel, cause: error })))
    } catch (error) {
      fail(new ListenerError({ event: channel, cause: error }))
    }
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function'
}

/** The listener methods both layers share, bound to each instance (see {@link bindMethods}). */
export const LISTENER_METHODS = [
  'on',
  'addListener',
  'prependListener',
  'once',
  'prependOnceListener',
  'off',
  'removeListener',
  'removeAllListeners',
  'listenerCount',
] as const

/**
 * Binds `names` to `instance` as own properties, so the methods work detached, as pg-ipc's
 * closures did (`process.on('SIGTERM', ipc.end)`, `afterAll(ipc.end)`).
 */
export function bindMethods<Instance extends object>(instance: Instance, names: readonly (keyof Instance & string)[]): void {
  for (const name of names) {
    const method = (instance as Record<string, unknown>)[name] as (...args: unknown[]) => unknown
    Object.defineProperty(instance, name, { value: method.bind(instance), writable: true, configurable: true })
  }
}
