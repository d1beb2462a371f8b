// Issue 8's volume item: the core must not throw on volume by default (pg-ipc, pg and postgres.js
// queue without limit); backpressure is opt-in with `maxPending`, for both layers.
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { BackpressureError, ErrorCode, pgIPC, type PgIpcError } from '../../src/index.js'
import { connect, uniqueChannel } from '../support/db.js'
import { Observer, settledWithin, typedChannels, within } from './helpers.js'

const VOLUME = 20_000

describe('volume: no limit by default, maxPending when asked for', () => {
  it(`volume: ${VOLUME.toLocaleString('en')} core notify() calls without awaiting complete, nothing lost, no BackpressureError by default`, async () => {
    const client = await connect()
    const channel = uniqueChannel('bulk')
    const observer = await Observer.start([channel])
    const core = pgIPC(client)
    const errors: PgIpcError[] = []
    core.on('error', (error) => errors.push(error))
    let sent = 0
    const allSent = within(
      new Promise<void>((resolve) =>
        core.on('notify', () => {
          sent += 1
          if (sent === VOLUME) resolve()
        }),
      ),
      `${VOLUME} notify events`,
      60_000,
    )
    let thrown: unknown
    let calls = 0
    try {
      for (; calls < VOLUME; calls++) core.notify(channel, String(calls)) // a migration, a bulk import
    } catch (error) {
      thrown = error
    }
    expect(thrown, `thrown at call #${calls}`).toBeUndefined()
    await allSent
    await observer.settle(client)
    const got = observer.payloads(channel)
    expect(got.length).toBe(VOLUME)
    expect(
      got.every((payload, index) => payload === String(index)),
      'every payload, in call order',
    ).toBe(true)
    expect(errors).toEqual([])
    await within(core.end(), 'core.end()')
  }, 90_000)

  it(`volume: ${VOLUME.toLocaleString('en')} typed notify() calls without awaiting: none rejects with BackpressureError by default`, async () => {
    const client = await connect()
    const { channels, names } = typedChannels(1, z.number().int())
    const channel = names[0] as string
    const observer = await Observer.start([channel])
    const typed = channels.attach(client)
    const calls = Array.from({ length: VOLUME }, (_, index) => typed.notify(channel, index))
    const outcomes = await within(Promise.allSettled(calls), `${VOLUME} typed notify() promises`, 60_000)
    const rejected = outcomes.flatMap((outcome) => (outcome.status === 'rejected' ? [String(outcome.reason)] : []))
    expect(rejected.slice(0, 3), `${rejected.length} rejected`).toEqual([])
    await observer.settle(client)
    expect(observer.payloads(channel).length).toBe(VOLUME)
    await within(typed.end(), 'typed.end()')
  }, 90_000)

  it('volume: maxPending still works when set (core: notify throws BackpressureError; nothing of it is sent)', async () => {
    const client = await connect()
    const channel = uniqueChannel('bp')
    const observer = await Observer.start([channel])
    const core = pgIPC(client, { maxPending: 5 })
    let sent = 0
    const fiveSent = within(
      new Promise<void>((resolve) =>
        core.on('notify', () => {
          sent += 1
          if (sent === 5) resolve()
        }),
      ),
      'five notify events',
    )
    for (let index = 0; index < 5; index++) core.notify(channel, `ok${index}`)
    let thrown: unknown
    try {
      core.notify(channel, 'refused')
    } catch (error) {
      thrown = error
    }
    expect(thrown).toBeInstanceOf(BackpressureError)
    expect((thrown as PgIpcError).code).toBe(ErrorCode.Backpressure)
    await fiveSent
    // Once they drained, there is room again.
    const more = within(new Promise<void>((resolve) => core.once('notify', () => resolve())), 'the notify after the drain')
    core.notify(channel, 'later')
    await more
    await observer.settle(client)
    expect(observer.payloads(channel)).toEqual(['ok0', 'ok1', 'ok2', 'ok3', 'ok4', 'later'])
    await within(core.end(), 'core.end()')
  })

  it('volume: maxPending still works when set (typed: notify rejects with BackpressureError; nothing of it is sent)', async () => {
    const client = await connect()
    const { channels, names } = typedChannels(1, z.string())
    const channel = names[0] as string
    const observer = await Observer.start([channel])
    const typed = channels.attach(client, { maxPending: 5 })
    const accepted = Array.from({ length: 5 }, (_, index) => typed.notify(channel, `ok${index}`))
    const refused = await settledWithin(typed.notify(channel, 'refused'), 'the sixth notify()')
    expect(refused.status).toBe('rejected')
    const reason = (refused as { reason: unknown }).reason
    expect(reason).toBeInstanceOf(BackpressureError)
    expect((reason as PgIpcError).code).toBe(ErrorCode.Backpressure)
    await within(Promise.all(accepted), 'the five accepted notify() calls')
    await within(typed.notify(channel, 'later'), 'typed.notify()')
    await observer.settle(client)
    expect(observer.payloads(channel)).toEqual(['"ok0"', '"ok1"', '"ok2"', '"ok3"', '"ok4"', '"later"'])
    await within(typed.end(), 'typed.end()')
  })
})
