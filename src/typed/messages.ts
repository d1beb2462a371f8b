import { BufferOverflowError } from '../errors/index.js'

/** Options of `messages()`. */
export interface MessagesOptions {
  /** Ends the loop with an `AbortError`, as Node's `events.on` does. */
  readonly signal?: AbortSignal | undefined
  /**
   * Most messages held for a consumer that is busy; one more ends the loop with a
   * `BufferOverflowError` after the buffered ones. Default 1024.
   */
  readonly bufferSize?: number | undefined
  /**
   * Durable channels only: resume after the message whose `cursor` this is (a cursor you stored),
   * instead of starting with what commits from now on. Nothing committed after that message is
   * skipped; a cursor older than what retention kept fails with `CursorExpiredError`.
   */
  readonly after?: string | undefined
}

/** An async iterator over one channel's messages; `return()` (or `break`) unsubscribes. */
export interface MessageIterator<Item> extends AsyncIterableIterator<Item> {
  next(): Promise<IteratorResult<Item, undefined>>
  return(): Promise<IteratorResult<Item, undefined>>
  throw(error?: unknown): Promise<IteratorResult<Item, undefined>>
}

/** What the iterator needs from its owner. */
export interface MessageSource<Item> {
  /** Adds the listener now; returns the function that removes it. */
  subscribe(listener: (item: Item) => void): () => void
}

const DEFAULT_BUFFER = 1024

function abortError(signal: AbortSignal): Error {
  // The same shape as Node's own AbortError (name and code), with the signal's reason as cause.
  const error = new Error('The operation was aborted', { cause: signal.reason })
  error.name = 'AbortError'
  Object.defineProperty(error, 'code', { value: 'ABORT_ERR', enumerable: true })
  return error
}

/**
 * Subscribes at once (not at the first `next()`), so nothing sent after this call is missed.
 * @internal
 */
export function createMessageIterator<Item>(
  channel: string,
  source: MessageSource<Item>,
  options: MessagesOptions = {},
): MessageIterator<Item> & { fail(error: Error): void; finish(): void } {
  const { signal } = options
  const bufferSize = options.bufferSize ?? DEFAULT_BUFFER
  if (!Number.isInteger(bufferSize) || bufferSize < 1) {
    throw new RangeError(`messages(): bufferSize must be a positive integer, got ${String(bufferSize)}.`)
  }
  if (signal?.aborted === true) throw abortError(signal)

  let buffer: Item[] = []
  /** Pending `next()` calls, answered in order. */
  const waiting: { resolve: (result: IteratorResult<Item, undefined>) => void; reject: (error: unknown) => void }[] = []
  let failure: Error | undefined
  let finished = false

  const done = (): IteratorResult<Item, undefined> => ({ value: undefined, done: true })

  const unsubscribe = source.subscribe((item) => {
    if (finished) return
    const waiter = waiting.shift()
    if (waiter !== undefined) waiter.resolve({ value: item, done: false })
    else if (buffer.length >= bufferSize) fail(new BufferOverflowError({ channel, limit: bufferSize }))
    else buffer.push(item)
  })

  const onAbort = (): void => {
    buffer = []
    if (signal !== undefined) fail(abortError(signal))
  }
  signal?.addEventListener('abort', onAbort, { once: true })

  function stop(): void {
    if (finished) return
    finished = true
    unsubscribe()
    signal?.removeEventListener('abort', onAbort)
  }

  /** Every pending `next()` ends the loop: `{ done: true }`. */
  function releaseWaiting(): void {
    for (const waiter of waiting.splice(0)) waiter.resolve(done())
  }

  /** Ends the loop with `error` once the buffered messages are consumed. */
  function fail(error: Error): void {
    if (finished) return
    stop()
    const first = waiting.shift()
    if (first === undefined) failure = error
    else first.reject(error)
    releaseWaiting()
  }

  /** Ends the loop normally once the buffered messages are consumed. */
  function finish(): void {
    if (finished) return
    stop()
    releaseWaiting()
  }

  return {
    next() {
      if (buffer.length > 0) return Promise.resolve({ value: buffer.shift() as Item, done: false })
      if (failure !== undefined) {
        const error = failure
        failure = undefined
        return Promise.reject(error)
      }
      if (finished) return Promise.resolve(done())
      return new Promise((resolve, reject) => {
        waiting.push({ resolve, reject })
      })
    },
    return() {
      stop()
      buffer = []
      failure = undefined
      releaseWaiting()
      return Promise.resolve(done())
    },
    throw(error?: unknown) {
      stop()
      buffer = []
      failure = undefined
      releaseWaiting()
      return Promise.reject(error)
    },
    [Symbol.asyncIterator]() {
      return this
    },
    fail,
    finish,
  }
}
