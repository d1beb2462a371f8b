// Issue 8's "suspected from reading the code" items: each confirmed or refuted by a test. A refuted
// one stays, passing, as a guard of the behaviour.
import { EventEmitter } from 'node:events'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  ErrorCode,
  PayloadNotEncodableError,
  type PgIpcError,
  pgIPC,
  type ChannelSchemas,
  type PgIpcError as PgIpcErrorType,
  type TypedIPC,
} from '../../src/index.js'
import { connect, listeningChannels, privateServer, uniqueChannel, waitFor } from '../support/db.js'
import { adminClient, nextReconnect, ownedClients, recordEvents } from '../reconnect/helpers.js'
import { Observer, cuttingProxy, endAfterTest, handled, settledWithin, typedChannels, whenClosed, within } from './helpers.js'

describe('suspected: a connection lost while (re)connecting is a disconnect, retried with backoff', () => {
  it("suspected: a connection lost during onConnect emits 'disconnect', drops the dead connection, and retries with backoff", async () => {
    const server = await privateServer()
    const admin = await adminClient(server.connectionString)
    const channel = uniqueChannel('hook')
    const observer = await Observer.start([channel], server.connectionString)
    const owned = ownedClients(server.connectionString)
    const made: number[] = []
    owned.events.on('made', () => made.push(performance.now()))
    const retry = { initialDelayMs: 100, maxDelayMs: 100 }
    let hookCalls = 0
    let killedPid: number | undefined
    const ipc = endAfterTest(
      pgIPC({
        connect: owned.connect,
        retry,
        onConnect: async (info) => {
          hookCalls += 1
          if (hookCalls !== 2) return
          // The first reconnection dies while its hook runs.
          killedPid = info.processId
          const gone = whenClosed(owned.latest())
          await admin.query('SELECT pg_terminate_backend($1)', [info.processId])
          await gone
        },
      }),
    )
    const errors: PgIpcErrorType[] = []
    ipc.on('error', (error) => errors.push(error))
    const events = recordEvents(ipc, ['connect', 'disconnect', 'reconnect'])
    const clientAtDisconnect: (number | undefined)[] = []
    ipc.on('disconnect', () => clientAtDisconnect.push(ipc.processId))
    ipc.on(channel, () => {})
    await waitFor(ipc, 'connect', { rejectOnError: false })
    await within(ipc.listening(channel), 'ipc.listening()')

    const reconnected = handled(nextReconnect(ipc))
    await admin.query('SELECT pg_terminate_backend($1)', [ipc.processId])
    const info = await reconnected
    expect(
      events.map((event) => event.name),
      'events',
    ).toEqual(['connect', 'disconnect', 'disconnect', 'reconnect'])
    expect(clientAtDisconnect.includes(killedPid), 'the dead connection is not kept as the current one').toBe(false)
    expect(hookCalls).toBe(3)
    expect(owned.clients.length).toBe(3)
    const gap = (made[2] ?? 0) - (made[1] ?? 0)
    expect(gap, 'ms between the dead attempt and the next one').toBeGreaterThanOrEqual(retry.initialDelayMs / 2)
    // And it works: LISTENed on the new session, our notifications go out.
    expect(info.processId).toBe(ipc.processId)
    expect(await listeningChannels(owned.latest())).toEqual([channel])
    ipc.notify(channel, 'after')
    await waitFor(ipc, 'notify', { rejectOnError: false })
    await observer.settle(admin)
    expect(observer.payloads(channel)).toEqual(['after'])
    expect(errors).toEqual([])
    await within(ipc.end(), 'ipc.end()')
  })

  it("suspected: a connection lost during the re-LISTEN emits 'disconnect' and retries with backoff", async () => {
    const server = await privateServer()
    const admin = await adminClient(server.connectionString)
    const channel = uniqueChannel('relisten')
    // The second connection (the first reconnection) is cut when its LISTEN is on the wire.
    const proxy = await cuttingProxy(server, (chunk, index) => index === 1 && chunk.includes('LISTEN'))
    const owned = ownedClients(proxy.url(server.connectionString))
    const made: number[] = []
    owned.events.on('made', () => made.push(performance.now()))
    const retry = { initialDelayMs: 100, maxDelayMs: 100 }
    const ipc = endAfterTest(pgIPC({ connect: owned.connect, retry }))
    const errors: PgIpcErrorType[] = []
    ipc.on('error', (error) => errors.push(error))
    const events = recordEvents(ipc, ['connect', 'disconnect', 'reconnect'])
    ipc.on(channel, () => {})
    await waitFor(ipc, 'connect', { rejectOnError: false })
    await within(ipc.listening(channel), 'ipc.listening()')

    const reconnected = handled(nextReconnect(ipc))
    await admin.query('SELECT pg_terminate_backend($1)', [ipc.processId])
    await reconnected
    expect(proxy.cuts, 'the re-LISTEN was cut').toBe(1)
    expect(
      events.map((event) => event.name),
      'events',
    ).toEqual(['connect', 'disconnect', 'disconnect', 'reconnect'])
    expect(owned.clients.length).toBe(3)
    expect((made[2] ?? 0) - (made[1] ?? 0), 'ms between the cut attempt and the next one').toBeGreaterThanOrEqual(
      retry.initialDelayMs / 2,
    )
    expect(await listeningChannels(owned.latest())).toEqual([channel])
    expect(errors).toEqual([])
    await within(ipc.end(), 'ipc.end()')
  })

  it('suspected: a connection that dies right after connecting is retried with backoff, not in a tight loop', async () => {
    const server = await privateServer()
    // Every session is closed by the server once idle for 30 ms: it connects fine, then dies.
    const owned = ownedClients(server.connectionString, { options: '-c idle_session_timeout=30' })
    const made: number[] = []
    owned.events.on('made', () => made.push(performance.now()))
    const retry = { initialDelayMs: 200, maxDelayMs: 200 }
    const ipc = endAfterTest(pgIPC({ connect: owned.connect, retry, healthCheck: false }))
    ipc.on('error', () => undefined)
    const disconnects: number[] = []
    ipc.on('disconnect', () => disconnects.push(performance.now()))
    await waitFor(ipc, 'connect', { rejectOnError: false })
    // Event-driven: wait for the 8th factory call, then look at the gaps between the calls.
    const calls = 8
    await within(owned.made(calls), `${calls} factory calls`, 20_000)
    await within(ipc.end(), 'ipc.end()')
    expect(disconnects.length, 'the connections did die').toBeGreaterThan(0)
    const gaps = made.slice(1, calls).map((at, index) => Math.round(at - (made[index] ?? 0)))
    // Each retry waits at least half its delay (equal jitter); a tight loop makes one every ~40 ms.
    expect(Math.min(...gaps), `smallest gap between factory calls (gaps ${gaps.join(', ')} ms)`).toBeGreaterThanOrEqual(
      retry.initialDelayMs / 2 - 5,
    )
    const span = (made[calls - 1] ?? 0) - (made[0] ?? 0)
    expect(span, `ms for ${calls} factory calls`).toBeGreaterThanOrEqual(((calls - 1) * retry.initialDelayMs) / 2)
  })
})

/** The listener surface shared by Node's EventEmitter and a typed instance, for a side-by-side run. */
interface Surface {
  on(event: string, listener: (value: unknown) => void): unknown
  once(event: string, listener: (value: unknown) => void): unknown
  off(event: string, listener: (value: unknown) => void): unknown
  listenerCount(event: string): number
}

type Scenario = (emitter: Surface, channel: string, log: string[]) => void

/** Same function registered with on() and once(), or two functions; one removes a listener during the delivery. */
const scenarios: Record<string, Scenario> = {
  'on(f), once(f); f calls off(f)': (e, ch, log) => {
    const f = (value: unknown): void => {
      log.push(`f${String(value)}`)
      e.off(ch, f)
    }
    e.on(ch, f)
    e.once(ch, f)
  },
  'once(f), on(f); f calls off(f)': (e, ch, log) => {
    const f = (value: unknown): void => {
      log.push(`f${String(value)}`)
      e.off(ch, f)
    }
    e.once(ch, f)
    e.on(ch, f)
  },
  'on(f), once(g); f calls off(g)': (e, ch, log) => {
    const g = (value: unknown): void => {
      log.push(`g${String(value)}`)
    }
    const f = (value: unknown): void => {
      log.push(`f${String(value)}`)
      e.off(ch, g)
    }
    e.on(ch, f)
    e.once(ch, g)
  },
  'once(g), on(f); f calls off(g)': (e, ch, log) => {
    const g = (value: unknown): void => {
      log.push(`g${String(value)}`)
    }
    const f = (value: unknown): void => {
      log.push(`f${String(value)}`)
      e.off(ch, g)
    }
    e.once(ch, g)
    e.on(ch, f)
  },
  'once(f), once(f), on(f); f calls off(f) once': (e, ch, log) => {
    let removed = false
    const f = (value: unknown): void => {
      log.push(`f${String(value)}`)
      if (!removed) {
        removed = true
        e.off(ch, f)
      }
    }
    e.once(ch, f)
    e.once(ch, f)
    e.on(ch, f)
  },
}

describe('suspected: typed once() + off() during the same delivery', () => {
  for (const [name, scenario] of Object.entries(scenarios)) {
    it(`suspected: typed once + off in one delivery behaves as Node's EventEmitter: ${name}`, async () => {
      const client = await connect()
      const { channels, names } = typedChannels(1, z.number())
      const channel = names[0] as string
      const typed: TypedIPC<ChannelSchemas> = channels.attach(client)
      const errors: PgIpcErrorType[] = []
      typed.on('error', (error) => errors.push(error))
      const reference = new EventEmitter()
      const log: string[] = []
      const expected: string[] = []
      // Typed messages carry { payload }; the reference emits the bare value. One adapter per user
      // function, so off(f) names the same function the typed instance got from on(f)/once(f).
      const adapters = new Map<(value: unknown) => void, (message: { payload: unknown }) => void>()
      const adapt = (listener: (value: unknown) => void): ((message: { payload: unknown }) => void) => {
        let adapted = adapters.get(listener)
        if (adapted === undefined) {
          adapted = (message) => listener(message.payload)
          adapters.set(listener, adapted)
        }
        return adapted
      }
      const typedSurface: Surface = {
        on: (event, listener) => typed.on(event, adapt(listener)),
        once: (event, listener) => typed.once(event, adapt(listener)),
        off: (event, listener) => typed.off(event, adapt(listener)),
        listenerCount: (event) => typed.listenerCount(event),
      }
      // Another instance on the client keeps the channel LISTENed when the scenario leaves it with
      // no listener, so the later messages still reach the client.
      const keeper = channels.attach(client)
      keeper.on(channel, () => {})
      await within(keeper.listening(channel), 'keeper.listening()')
      scenario(typedSurface, channel, log)
      scenario(reference, channel, expected)
      // Registered after the library's own: pg calls 'notification' listeners in order, so this one
      // runs once the library has dispatched the message.
      const seen: string[] = []
      const waiters = new Map<string, () => void>()
      client.on('notification', (message) => {
        if (message.channel !== channel) return
        seen.push(message.payload ?? '')
        waiters.get(message.payload ?? '')?.()
      })
      for (const value of [1, 2, 3]) {
        const dispatched = within(
          new Promise<void>((resolve) => waiters.set(String(value), resolve)),
          `message ${value} dispatched`,
        )
        await within(typed.notify(channel, value), 'typed.notify()')
        await dispatched
        reference.emit(channel, value)
        expect(log, `calls after message ${value}`).toEqual(expected)
        expect(typed.listenerCount(channel), `listeners after message ${value}`).toBe(reference.listenerCount(channel))
      }
      // Whatever is left can be removed, and then the LISTEN is released.
      // The keeper leaves last: its 'unlisten' comes once the channel is released on the server.
      const released = within(
        new Promise<void>((resolve) => keeper.on('unlisten', (name) => name === channel && resolve())),
        "the keeper's 'unlisten'",
      )
      typed.removeAllListeners(channel)
      keeper.removeAllListeners(channel)
      await released
      expect(await listeningChannels(client)).toEqual([])
      expect(errors).toEqual([])
      await within(Promise.all([typed.end(), keeper.end()]), 'end() of both instances')
    })
  }
})

describe('suspected: a BigInt under z.unknown()', () => {
  it('suspected: a BigInt under z.unknown() rejects with PayloadNotEncodableError, not a raw TypeError; nothing is sent', async () => {
    const client = await connect()
    const { channels, names } = typedChannels(1, z.unknown())
    const channel = names[0] as string
    const observer = await Observer.start([channel])
    const typed = channels.attach(client)
    for (const value of [1n, { amount: 10n }, [1, 2n]]) {
      const outcome = await settledWithin(typed.notify(channel, value), `notify(${typeof value})`)
      expect(outcome.status).toBe('rejected')
      const reason = (outcome as { reason: unknown }).reason
      expect(reason, String(reason)).toBeInstanceOf(PayloadNotEncodableError)
      expect((reason as PgIpcError).code).toBe(ErrorCode.PayloadNotEncodable)
    }
    await within(typed.notify(channel, { ok: true }), 'typed.notify()')
    await observer.settle(client)
    expect(observer.payloads(channel)).toEqual(['{"ok":true}'])
    await within(typed.end(), 'typed.end()')
  })

  it('guard: the core refuses a BigInt synchronously with PayloadNotEncodableError', async () => {
    const client = await connect()
    const core = pgIPC(client)
    expect(() => core.notify(uniqueChannel('big'), { amount: 1n })).toThrow(PayloadNotEncodableError)
    await within(core.end(), 'core.end()')
  })
})
