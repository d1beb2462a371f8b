// The messages() iterator (src/typed/messages.ts) on its own, over a source the test drives:
// pending next() calls answered in order, throw()/return() settling them, the buffer limit, and
// the abort signal. (Through the typed layer it is the same object; see test/typed for that.)
import { getEventListeners } from 'node:events'
import { describe, expect, it } from 'vitest'
import { createMessageIterator } from '../../src/typed/messages.js'
import { BufferOverflowError } from '../../src/index.js'
import { track } from './support/helpers.js'

/** A source whose subscription the test can see and push through. */
function source(): {
  push(item: number): void
  readonly subscribed: boolean
  readonly subscriptions: number
  subscribe(listener: (item: number) => void): () => void
} {
  let listener: ((item: number) => void) | undefined
  let subscriptions = 0
  return {
    push: (item) => listener?.(item),
    get subscribed() {
      return listener !== undefined
    },
    get subscriptions() {
      return subscriptions
    },
    subscribe(next) {
      listener = next
      subscriptions++
      return () => {
        listener = undefined
      }
    },
  }
}

const value = (item: number): IteratorResult<number, undefined> => ({ value: item, done: false })
const done: IteratorResult<number, undefined> = { value: undefined, done: true }

describe('messages() iterator', () => {
  it('subscribes at creation, not at the first next(): nothing sent after the call is missed', async () => {
    const messages = source()
    const iterator = createMessageIterator('c', messages)
    expect(messages.subscribed).toBe(true)
    messages.push(1)
    await expect(iterator.next()).resolves.toEqual(value(1))
  })

  it('several pending next() calls are answered in call order', async () => {
    const messages = source()
    const iterator = createMessageIterator('c', messages)
    const pending = [iterator.next(), iterator.next(), iterator.next()]
    messages.push(1)
    messages.push(2)
    messages.push(3)
    await expect(Promise.all(pending)).resolves.toEqual([value(1), value(2), value(3)])
  })

  it('buffers for a busy consumer, in order', async () => {
    const messages = source()
    const iterator = createMessageIterator('c', messages)
    for (const item of [1, 2, 3]) messages.push(item)
    const received: number[] = []
    for (let index = 0; index < 3; index++) received.push((await iterator.next()).value as number)
    expect(received).toEqual([1, 2, 3])
  })

  it('return() settles every pending next() as done, unsubscribes, and drops the buffer', async () => {
    const messages = source()
    const iterator = createMessageIterator('c', messages)
    const pending = [iterator.next(), iterator.next()]
    await expect(iterator.return()).resolves.toEqual(done)
    await expect(Promise.all(pending)).resolves.toEqual([done, done])
    expect(messages.subscribed).toBe(false)
    messages.push(1)
    await expect(iterator.next()).resolves.toEqual(done)
  })

  it('throw() settles every pending next() as done, unsubscribes, and rejects with its error', async () => {
    const messages = source()
    const iterator = createMessageIterator('c', messages)
    const pending = [iterator.next(), iterator.next()]
    const error = new Error('consumer failed')
    await expect(iterator.throw(error)).rejects.toBe(error)
    await expect(Promise.all(pending)).resolves.toEqual([done, done])
    expect(messages.subscribed).toBe(false)
    await expect(iterator.next()).resolves.toEqual(done)
  })

  it('break in for await unsubscribes', async () => {
    const messages = source()
    const iterator = createMessageIterator('c', messages)
    messages.push(1)
    for await (const item of iterator) {
      expect(item).toBe(1)
      break
    }
    expect(messages.subscribed).toBe(false)
  })

  it('one message past bufferSize: the buffered ones first, then BufferOverflowError, then done', async () => {
    const messages = source()
    const iterator = createMessageIterator('c', messages, { bufferSize: 2 })
    for (const item of [1, 2, 3, 4]) messages.push(item)
    expect(messages.subscribed).toBe(false) // stopped listening at the overflow
    await expect(iterator.next()).resolves.toEqual(value(1))
    await expect(iterator.next()).resolves.toEqual(value(2))
    const overflow = await iterator.next().catch((error: unknown) => error)
    expect(overflow).toBeInstanceOf(BufferOverflowError)
    expect(overflow).toMatchObject({ channel: 'c', code: 'ERR_PG_IPC_BUFFER_OVERFLOW' })
    await expect(iterator.next()).resolves.toEqual(done)
  })

  it('exactly bufferSize waiting messages is no overflow', async () => {
    const messages = source()
    const iterator = createMessageIterator('c', messages, { bufferSize: 2 })
    messages.push(1)
    messages.push(2)
    expect(messages.subscribed).toBe(true)
    await expect(iterator.next()).resolves.toEqual(value(1))
    messages.push(3)
    await expect(iterator.next()).resolves.toEqual(value(2))
    await expect(iterator.next()).resolves.toEqual(value(3))
  })

  it('refuses a bufferSize that is not a positive integer', () => {
    for (const bufferSize of [0, -1, 1.5, Number.NaN]) {
      expect(() => createMessageIterator('c', source(), { bufferSize })).toThrow(RangeError)
    }
  })

  it('abort: the first pending next() rejects with an AbortError (the reason as cause), the others end, the buffer is dropped', async () => {
    const messages = source()
    const controller = new AbortController()
    const iterator = createMessageIterator('c', messages, { signal: controller.signal })
    const first = track(iterator.next())
    const second = iterator.next()
    const reason = new Error('shutting down')
    controller.abort(reason)
    await first.settled
    expect(first.reason).toMatchObject({ name: 'AbortError', code: 'ABORT_ERR', cause: reason })
    await expect(second).resolves.toEqual(done)
    expect(messages.subscribed).toBe(false)
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0)

    const buffered = source()
    const later = new AbortController()
    const other = createMessageIterator('c', buffered, { signal: later.signal })
    buffered.push(1)
    later.abort()
    await expect(other.next()).rejects.toMatchObject({ name: 'AbortError' })
    await expect(other.next()).resolves.toEqual(done)
  })

  it('an already aborted signal throws at once and subscribes to nothing', () => {
    const messages = source()
    expect(() => createMessageIterator('c', messages, { signal: AbortSignal.abort() })).toThrow(
      expect.objectContaining({ name: 'AbortError' }) as Error,
    )
    expect(messages.subscriptions).toBe(0)
  })

  it('leaving the loop removes its abort listener (no leak across many loops on one signal)', async () => {
    const controller = new AbortController()
    for (let index = 0; index < 20; index++) {
      const iterator = createMessageIterator('c', source(), { signal: controller.signal })
      await iterator.return()
    }
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0)
  })

  it('fail() (a lost connection): buffered messages first, then the error; finish(): buffered first, then done', async () => {
    const messages = source()
    const iterator = createMessageIterator('c', messages)
    messages.push(1)
    const error = new Error('connection lost')
    iterator.fail(error)
    await expect(iterator.next()).resolves.toEqual(value(1))
    await expect(iterator.next()).rejects.toBe(error)
    await expect(iterator.next()).resolves.toEqual(done)

    const waiting = createMessageIterator('c', source())
    const pending = [waiting.next(), waiting.next()]
    waiting.fail(error)
    await expect(pending[0]).rejects.toBe(error)
    await expect(pending[1]).resolves.toEqual(done)

    const finishing = source()
    const finished = createMessageIterator('c', finishing)
    finishing.push(1)
    const pendingAfter = finished.next()
    finished.finish()
    await expect(pendingAfter).resolves.toEqual(value(1))
    await expect(finished.next()).resolves.toEqual(done)
  })
})
