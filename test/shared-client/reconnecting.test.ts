// Issue 8's guarantees in the reconnecting mode (the library owns the connection): through repeated
// outages every notification resolved is delivered exactly once, one with an unknown outcome at most
// once, a rejected one never, and what is delivered is in call order; and a busy connection is
// never taken for a dead one by the health check. Private servers only (test/reconnect's rule).
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { ErrorCode, type PgIpcError } from '../../src/index.js'
import { privateServer, waitFor } from '../support/db.js'
import { adminClient, nextDisconnect, nextReconnect, ownedClients } from '../reconnect/helpers.js'
import { Observer, count, endAfterTest, handled, settledWithin, typedChannels, within, type Settled } from './helpers.js'

/** Is `delivered` a subsequence of `calls` (each delivered payload matched to a later call than the one before)? */
function firstOutOfOrder(delivered: readonly string[], calls: readonly string[]): number {
  let at = 0
  for (let index = 0; index < delivered.length; index++) {
    while (at < calls.length && calls[at] !== delivered[index]) at++
    if (at === calls.length) return index
    at++
  }
  return -1
}

describe('reconnecting mode: the same guarantees through outages', () => {
  it('reconnecting: three outages with notifications in flight, waiting, and sent right after the re-LISTEN: each outcome honoured, call order kept', async () => {
    const server = await privateServer()
    const admin = await adminClient(server.connectionString)
    const { channels, names } = typedChannels(1, z.string())
    const channel = names[0] as string
    const observer = await Observer.start([channel], server.connectionString)
    const owned = ownedClients(server.connectionString)
    const typed = endAfterTest(channels.attach({ connect: owned.connect, retry: { initialDelayMs: 20, maxDelayMs: 100 } }))
    const errors: PgIpcError[] = []
    typed.on('error', (error) => errors.push(error))
    typed.on(channel, () => {})
    await waitFor(typed, 'connect', { rejectOnError: false })
    await within(typed.listening(channel), 'typed.listening()')

    const calls: string[] = []
    const outcomes: Promise<Settled<void>>[] = []
    const send = (tag: string, n: number): void => {
      for (let index = 0; index < n; index++) {
        const payload = `${tag}-${index}`
        calls.push(payload)
        outcomes.push(settledWithin(typed.notify(channel, payload), `notify(${payload})`, 30_000))
      }
    }
    for (let outage = 1; outage <= 3; outage++) {
      send(`o${outage}-before`, 5) // in flight when the connection dies
      const disconnected = handled(nextDisconnect(typed))
      const reconnected = handled(nextReconnect(typed))
      await admin.query('SELECT pg_terminate_backend($1)', [typed.processId])
      send(`o${outage}-dying`, 5) // the death not noticed yet
      await disconnected
      send(`o${outage}-down`, 5) // waiting for a connection
      typed.once('listen', () => send(`o${outage}-relisten`, 5)) // the first moment LISTEN is back
      await reconnected
      send(`o${outage}-after`, 5)
    }
    const settled = await Promise.all(outcomes)
    await observer.settle(admin)
    const got = observer.payloads(channel).map((raw) => JSON.parse(raw) as string)
    const problems: string[] = []
    calls.forEach((payload, index) => {
      const outcome = settled[index] as Settled<void>
      const delivered = count(got, payload)
      const code = outcome.status === 'rejected' ? (outcome.reason as PgIpcError).code : 'sent'
      if (code === 'sent' && delivered !== 1) problems.push(`${payload}: resolved, delivered ${delivered}`)
      else if (code === ErrorCode.OutcomeUnknown && delivered > 1)
        problems.push(`${payload}: outcome unknown, delivered ${delivered}`)
      else if (code !== 'sent' && code !== ErrorCode.OutcomeUnknown && delivered !== 0)
        problems.push(`${payload}: rejected ${code}, delivered ${delivered}`)
    })
    expect(problems).toEqual([])
    const wrong = firstOutOfOrder(got, calls)
    expect(wrong, `delivered out of call order at #${wrong}: ${got.slice(Math.max(0, wrong - 3), wrong + 3).join(', ')}`).toBe(-1)
    // Sent while connected (after each reconnect): resolved, unless the next outage's kill caught it
    // on the wire (then its outcome is unknown, never another failure). After the last outage,
    // nothing can catch it: all resolved.
    calls.forEach((payload, index) => {
      if (!/-(relisten|after)-/.test(payload)) return
      const outcome = settled[index] as Settled<void>
      if (payload.startsWith('o3-')) expect(outcome.status, payload).toBe('fulfilled')
      else if (outcome.status === 'rejected') expect((outcome.reason as PgIpcError).code, payload).toBe(ErrorCode.OutcomeUnknown)
    })
    expect(errors).toEqual([])
    await within(typed.end(), 'typed.end()')
  }, 60_000)

  it('reconnecting: no false health-check kill under a 10,000-notify backlog (typed, healthCheck { intervalMs: 50, timeoutMs: 200 })', async () => {
    const server = await privateServer()
    const { channels, names } = typedChannels(1, z.enum(['even', 'odd']))
    const channel = names[0] as string
    const observer = await Observer.start([channel], server.connectionString)
    const owned = ownedClients(server.connectionString)
    const typed = endAfterTest(channels.attach({ connect: owned.connect, healthCheck: { intervalMs: 50, timeoutMs: 200 } }))
    const errors: PgIpcError[] = []
    typed.on('error', (error) => errors.push(error))
    const disconnects: string[] = []
    typed.on('disconnect', (error) => disconnects.push(error.message))
    await waitFor(typed, 'connect', { rejectOnError: false })
    const total = 10_000
    const killed = new Promise<never>((_, reject) =>
      typed.once('disconnect', (error) => reject(new Error(`'disconnect' while the backlog drained: ${error.message}`))),
    )
    const sent = Promise.all(Array.from({ length: total }, (_, index) => typed.notify(channel, index % 2 === 0 ? 'even' : 'odd')))
    await within(Promise.race([sent, killed]), `${total} typed notify() calls`, 120_000)
    await observer.settle()
    expect(disconnects).toEqual([])
    expect(observer.payloads(channel).length).toBe(total)
    expect(owned.clients.length, 'connections made').toBe(1)
    expect(errors).toEqual([])
    await within(typed.end(), 'typed.end()')
  }, 180_000)
})
