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
    else fail(new ListenerError(event, error))
  }
}
