// The reconnecting mode's connection manager, through pgIPC({ connect, ... }) over fake sessions and
// vitest's fake clock. Its states (src/core/reconnector.ts) show on the wire and in the events:
// opening (the factory was called, connect() under way), checking (the set-up check on the wire),
// attaching (the re-LISTENs), hook (onConnect runs), connected ('connect'/'reconnect'), backoff (a
// timer before the next attempt), stopped (end()), gave-up (maxAttempts).
//
// Sessions answer after 1 ms of fake time (replyDelayMs), so the whole run is driven by the fake
// clock and every time below is exact.
import type pg from 'pg'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  ConnectionLostError,
  NotifyOutcomeUnknownError,
  pgIPC,
  type ConnectInfo,
  type PgIPC,
  type ReconnectOptions,
} from '../../src/index.js'
import { FakeConnection, FakeServer } from './support/fake-pg.js'
import { errorsOf, nextEvent, track } from './support/helpers.js'

const SETUP_CHECK = 'SELECT pg_catalog.pg_is_in_recovery()::text, pg_catalog.pg_backend_pid()::text'
const noop = (): void => {}

let server: FakeServer
/** Fake-clock time of each factory call, relative to the test's start. */
let made: number[]
let start: number

beforeEach(() => {
  vi.useFakeTimers()
  server = new FakeServer()
  server.replyDelayMs = 1
  made = []
  start = Date.now()
})

afterEach(() => {
  vi.restoreAllMocks()
  vi.useRealTimers()
})

function factory(): pg.Client {
  made.push(Date.now() - start)
  return server.client()
}

function reconnecting(options: Partial<ReconnectOptions> = {}): { ipc: PgIPC; errors: unknown[] } {
  const ipc = pgIPC({ connect: factory, ...options })
  return { ipc, errors: errorsOf(ipc) }
}

/** Stops answering a session from the first round trip `matches` picks. */
function silenceFrom(session: FakeConnection, matches: (labels: string[]) => boolean): void {
  session.wire.on('unit', (unit: FakeConnection['units'][number]) => {
    if (matches(FakeConnection.labels(unit))) session.auto = false
  })
}

describe('connecting', () => {
  it('walks opening → checking → attaching → hook → connected, one step at a time', async () => {
    vi.useRealTimers()
    server.replyDelayMs = undefined
    server.autoAccept = false
    server.autoReply = false
    let hookInfo: (info: ConnectInfo) => void = noop
    const hookCalled = new Promise<ConnectInfo>((resolve) => (hookInfo = resolve))
    let finishHook: () => void = noop
    const { ipc, errors } = reconnecting({
      healthCheck: false,
      onConnect: (info) => {
        hookInfo(info)
        return new Promise<void>((resolve) => (finishHook = resolve))
      },
    })
    const connected = track(nextEvent(ipc, 'connect'))
    ipc.on('ch', noop)
    const session = await server.nextSession() // opening
    expect(session.units).toEqual([])
    const check = session.nextUnit()
    session.accept()
    expect(FakeConnection.labels(await check)).toEqual([SETUP_CHECK]) // checking
    const listen = session.nextUnit()
    session.reply()
    expect(FakeConnection.labels(await listen)).toEqual(['LISTEN "ch"']) // attaching
    session.reply()
    const info = await hookCalled // hook: LISTENs are in place before it runs
    expect(session.listening.has('ch')).toBe(true)
    expect(info).toEqual({ reconnected: false, attempts: 1, downtimeMs: 0, processId: session.pid })
    expect(connected.state).toBe('pending')
    finishHook()
    await connected.settled // connected
    expect(ipc.processId).toBe(session.pid)
    expect(errors).toEqual([])
    const ended = ipc.end()
    session.auto = true
    session.reply()
    await ended
  })

  it('a failing onConnect is reported (HookError) and the connection is kept', async () => {
    const { ipc, errors } = reconnecting({
      healthCheck: false,
      onConnect: () => {
        throw new Error('cache warm-up failed')
      },
    })
    const connected = track(nextEvent(ipc, 'connect'))
    await vi.advanceTimersByTimeAsync(10)
    expect(connected.state).toBe('fulfilled')
    expect(errors.map((error) => (error as { name: string }).name)).toEqual(['HookError'])
    expect(made).toHaveLength(1)
    await end(ipc)
  })
})

describe('backoff', () => {
  /** Attempt times when every attempt fails at once (the factory throws). */
  async function failingAttempts(random: number, count: number): Promise<number[]> {
    vi.spyOn(Math, 'random').mockReturnValue(random)
    const { ipc } = reconnecting({
      connect: () => {
        made.push(Date.now() - start)
        throw new Error('no server')
      },
      retry: { initialDelayMs: 100, factor: 2, maxDelayMs: 1_000 },
    })
    while (made.length < count) await vi.advanceTimersToNextTimerAsync()
    await end(ipc)
    return made.slice(0, count)
  }

  const gaps = (times: number[]): number[] => times.slice(1).map((time, index) => time - (times[index] as number))
  // Delays before attempts 2..7: 100 ms growing by 2, capped at 1,000 ms, of which 50 to 100 % ("equal jitter").
  const bases = [100, 200, 400, 800, 1_000, 1_000]

  it('grows by the factor up to maxDelayMs; the jitter keeps at least half of each delay', async () => {
    expect(gaps(await failingAttempts(0, 7))).toEqual(bases.map((base) => base / 2))
  })

  it('and at most all of it', async () => {
    const measured = gaps(await failingAttempts(0.999_999, 7))
    measured.forEach((gap, index) => {
      const base = bases[index] as number
      expect(gap).toBeGreaterThanOrEqual(Math.floor(base * 0.99)) // the fake clock counts whole milliseconds
      expect(gap).toBeLessThanOrEqual(base)
    })
  })

  it('after a connection that stayed up, the steps start over: the first retry waits the first step', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0)
    const { ipc } = reconnecting({ healthCheck: false, retry: { initialDelayMs: 100, maxDelayMs: 1_000 } })
    await vi.advanceTimersByTimeAsync(1_000) // connected for maxDelayMs: stable
    expect(made).toEqual([0])
    server.autoAccept = false
    server.events.on('connect', (session: FakeConnection) => setTimeout(() => session.refuse(), 1))
    const lostAt = Date.now() - start
    server.latest.drop()
    await vi.advanceTimersByTimeAsync(50 - 1)
    expect(made).toEqual([0]) // every attempt waits a step, the first one too
    await vi.advanceTimersByTimeAsync(1)
    expect(made).toEqual([0, lostAt + 50])
    await vi.advanceTimersByTimeAsync(1 + 100)
    expect(made).toEqual([0, lostAt + 50, lostAt + 50 + 1 + 100]) // refused after 1 ms, then the next step
    await end(ipc)
  })

  it('connections that die young are not retried in a tight loop', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0)
    const { ipc } = reconnecting({ healthCheck: false, retry: { initialDelayMs: 100, maxDelayMs: 1_000 } })
    const lost: number[] = []
    const dropSoon = (): void => {
      setTimeout(() => {
        lost.push(Date.now() - start)
        server.latest.drop()
      }, 0)
    }
    ipc.on('connect', dropSoon)
    ipc.on('reconnect', dropSoon)
    await vi.advanceTimersByTimeAsync(3_000)
    // A connection that died young does not start the steps over: each loss waits the next
    // backoff step (50, 100, 200, ... with random 0).
    const waits = made.slice(1).map((time, index) => time - (lost[index] as number))
    expect(waits.slice(0, 6)).toEqual([50, 100, 200, 400, 500, 500])
    expect(made.length).toBeLessThan(12)
    await end(ipc)
  })
})

describe('giving up', () => {
  it('after maxAttempts failed attempts: an error, then the instance ends; waiting notifications are rejected', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0)
    const { ipc, errors } = reconnecting({
      connect: () => {
        made.push(Date.now() - start)
        throw new Error('no server')
      },
      retry: { maxAttempts: 3, initialDelayMs: 100 },
    })
    const ended = track(nextEvent(ipc, 'end'))
    ipc.on('ch', noop)
    const listening = track(ipc.listening('ch'))
    await vi.advanceTimersByTimeAsync(60_000)
    expect(made).toEqual([0, 50, 150])
    expect(errors).toHaveLength(1)
    expect(errors[0]).toBeInstanceOf(ConnectionLostError)
    expect((errors[0] as Error).message).toMatch(/Gave up connecting to PostgreSQL after 3 attempts \(last error: no server\)/)
    expect(ended.state).toBe('fulfilled')
    expect(listening.reason).toBeInstanceOf(ConnectionLostError)
    expect(ipc.ended).toBe(true)
    expect(vi.getTimerCount()).toBe(0)
  })

  it('counts attempts per outage: a connection that came up resets the count', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0)
    const { ipc, errors } = reconnecting({ healthCheck: false, retry: { maxAttempts: 2, initialDelayMs: 100 } })
    await vi.advanceTimersByTimeAsync(10)
    expect(made).toEqual([0])
    server.autoAccept = false
    server.events.on('connect', (session: FakeConnection) => setTimeout(() => session.refuse(), 1))
    const disconnected = track(nextEvent(ipc, 'disconnect'))
    server.latest.drop()
    await vi.advanceTimersByTimeAsync(60_000)
    expect(disconnected.state).toBe('fulfilled')
    expect(made).toHaveLength(3) // the first connection, then two failed attempts
    expect((errors.at(-1) as Error).message).toMatch(/after 2 attempts/)
    expect(vi.getTimerCount()).toBe(0)
  })
})

/** Ends the instance while the fake clock runs; resolves once end() did. */
async function end(ipc: PgIPC): Promise<void> {
  const ended = track(ipc.end())
  await vi.advanceTimersByTimeAsync(5_000)
  expect(ended.state).toBe('fulfilled')
}

describe('stop() in every state leaves no timer, socket or attempt behind', () => {
  /** Ends in the state the scenario set up, then checks that nothing is left and nothing happens later. */
  async function endAndCheck(ipc: PgIPC): Promise<void> {
    const ended = track(ipc.end())
    await vi.advanceTimersByTimeAsync(5_000)
    expect(ended.state).toBe('fulfilled')
    expect(vi.getTimerCount()).toBe(0)
    // Every socket closed: ended politely (connected) or destroyed (still connecting).
    for (const session of server.sessions) expect(session.closed, `session ${session.pid}`).toBe(true)
    const calls = made.length
    await vi.advanceTimersByTimeAsync(60_000)
    expect(made).toHaveLength(calls)
  }

  it('opening: connect() never answered', async () => {
    server.autoAccept = false
    const { ipc } = reconnecting()
    await vi.advanceTimersByTimeAsync(100)
    expect(server.sessions).toHaveLength(1)
    await endAndCheck(ipc)
  })

  it('opening: the factory itself has not returned', async () => {
    const { ipc } = reconnecting({
      connect: () => {
        made.push(Date.now() - start)
        return new Promise<pg.Client>(noop)
      },
    })
    await vi.advanceTimersByTimeAsync(100)
    expect(made).toEqual([0])
    await endAndCheck(ipc)
  })

  it('checking: the set-up check unanswered', async () => {
    server.events.on('connect', (session: FakeConnection) => silenceFrom(session, (labels) => labels[0] === SETUP_CHECK))
    const { ipc } = reconnecting()
    await vi.advanceTimersByTimeAsync(100)
    expect(server.latest.rounds()).toEqual([[SETUP_CHECK]])
    await endAndCheck(ipc)
  })

  it('attaching: the re-LISTEN unanswered', async () => {
    server.events.on('connect', (session: FakeConnection) => silenceFrom(session, (labels) => labels[0] === 'LISTEN "ch"'))
    const { ipc } = reconnecting()
    ipc.on('ch', noop)
    await vi.advanceTimersByTimeAsync(100)
    expect(server.latest.rounds()).toEqual([[SETUP_CHECK], ['LISTEN "ch"']])
    await endAndCheck(ipc)
  })

  it('hook: onConnect never settles, and the server stops answering', async () => {
    const { ipc } = reconnecting({
      onConnect: () => {
        server.latest.auto = false
        return new Promise<void>(noop)
      },
    })
    ipc.on('ch', noop)
    await vi.advanceTimersByTimeAsync(100)
    expect(server.latest.listening.has('ch')).toBe(true)
    await endAndCheck(ipc)
  })

  it('hook: onConnect never settles', async () => {
    const { ipc } = reconnecting({ onConnect: () => new Promise<void>(noop) })
    ipc.on('ch', noop)
    await vi.advanceTimersByTimeAsync(100)
    expect(server.latest.listening.has('ch')).toBe(true)
    await endAndCheck(ipc)
  })

  it('connected, with the health check running', async () => {
    const { ipc } = reconnecting()
    ipc.on('ch', noop)
    const connected = track(nextEvent(ipc, 'connect'))
    await vi.advanceTimersByTimeAsync(12_000) // a few pings
    expect(connected.state).toBe('fulfilled')
    expect(server.latest.rounds().filter(([label]) => label === 'SELECT 1').length).toBeGreaterThanOrEqual(2)
    await endAndCheck(ipc)
    expect(server.latest.rounds().at(-1)).toEqual(['UNLISTEN "ch"'])
  })

  it('connected, and the server stops answering: end() completes once the health check gives the connection up', async () => {
    const { ipc } = reconnecting({ healthCheck: { intervalMs: 1_000, timeoutMs: 500 } })
    ipc.on('ch', noop)
    await vi.advanceTimersByTimeAsync(100)
    server.latest.auto = false
    await endAndCheck(ipc) // its UNLISTEN never answered: the health check ends the wait
  })

  it('backoff: waiting before the next attempt', async () => {
    const { ipc } = reconnecting({
      connect: () => {
        made.push(Date.now() - start)
        throw new Error('no server')
      },
      retry: { initialDelayMs: 10_000 },
    })
    await vi.advanceTimersByTimeAsync(100)
    expect(made).toEqual([0])
    expect(vi.getTimerCount()).toBe(1)
    await endAndCheck(ipc)
  })

  it('stopped: end() again, and concurrently', async () => {
    const { ipc } = reconnecting()
    await vi.advanceTimersByTimeAsync(100)
    const first = ipc.end()
    expect(ipc.end()).toBe(first)
    await endAndCheck(ipc)
    await endAndCheck(ipc)
  })

  it('gave up', async () => {
    const { ipc } = reconnecting({
      connect: () => {
        throw new Error('no server')
      },
      retry: { maxAttempts: 1 },
    })
    await vi.advanceTimersByTimeAsync(100)
    expect(ipc.ended).toBe(true)
    await endAndCheck(ipc)
  })
})

describe('health check', () => {
  it('pings when idle, every intervalMs', async () => {
    const { ipc } = reconnecting({ healthCheck: { intervalMs: 1_000, timeoutMs: 500 } })
    await vi.advanceTimersByTimeAsync(3_500)
    expect(server.latest.rounds()).toEqual([[SETUP_CHECK], ['SELECT 1'], ['SELECT 1'], ['SELECT 1']])
    await end(ipc)
  })

  it('does not kill a connection that works through a 10,000-notification backlog for longer than timeoutMs', async () => {
    const { ipc, errors } = reconnecting({ healthCheck: { intervalMs: 1_000, timeoutMs: 500 } })
    await vi.advanceTimersByTimeAsync(10)
    server.replyDelayMs = 400 // each round trip takes 400 ms: the backlog takes seconds
    let confirmed = 0
    ipc.on('notify', () => confirmed++)
    const disconnected = track(nextEvent(ipc, 'disconnect'))
    for (let index = 0; index < 10_000; index++) ipc.notify('bulk', String(index))
    await vi.advanceTimersByTimeAsync(6_000)
    expect(confirmed).toBe(10_000)
    expect(server.latest.units.length).toBeGreaterThanOrEqual(11) // 1 + 10 x 1,000: at least 4.4 s
    expect(disconnected.state).toBe('pending')
    expect(made).toHaveLength(1)
    expect(errors).toEqual([])
    await end(ipc)
  })

  it('does not kill an exchange whose answer keeps coming, even for longer than timeoutMs', async () => {
    const { ipc, errors } = reconnecting({ healthCheck: { intervalMs: 60_000, timeoutMs: 500 } })
    await vi.advanceTimersByTimeAsync(10)
    const session = server.latest
    session.auto = false
    let confirmed = 0
    ipc.on('notify', () => confirmed++)
    ipc.notify('c', 'first') // on the wire; the 100 below queue behind it and go as one exchange
    for (let index = 0; index < 100; index++) ipc.notify('c', 'same')
    session.reply()
    await vi.advanceTimersByTimeAsync(0)
    expect(FakeConnection.labels(session.units.at(-1) ?? [])).toHaveLength(300)
    for (let step = 0; step < 10; step++) {
      await vi.advanceTimersByTimeAsync(300) // 3 s in all, never 500 ms without a word
      session.reply({ executes: 29 }) // 290 of the 300 answers
    }
    await vi.advanceTimersByTimeAsync(300)
    session.reply() // the last ten, and ReadyForQuery
    await vi.advanceTimersByTimeAsync(0)
    expect(confirmed).toBe(101)
    expect(made).toHaveLength(1)
    expect(errors).toEqual([])
    session.auto = true
    await end(ipc)
  })

  it('kills the connection when an exchange waits silently past timeoutMs, and reconnects', async () => {
    const { ipc, errors } = reconnecting({ healthCheck: { intervalMs: 60_000, timeoutMs: 500 } })
    await vi.advanceTimersByTimeAsync(10)
    const session = server.latest
    session.auto = false
    const disconnected = track(nextEvent<[ConnectionLostError]>(ipc, 'disconnect'))
    const outcome = track(
      new Promise<void>((resolve, reject) => {
        ipc.once('notify', () => resolve())
        ipc.once('error', reject)
      }),
    )
    ipc.notify('c', 'x')
    await vi.advanceTimersByTimeAsync(500)
    expect(disconnected.state).toBe('pending')
    await vi.advanceTimersByTimeAsync(200) // past timeoutMs, within one watch period (125 ms)
    expect(disconnected.state).toBe('fulfilled')
    expect(disconnected.state === 'fulfilled' && (await disconnected.settled, true)).toBe(true)
    expect(outcome.reason).toBeInstanceOf(NotifyOutcomeUnknownError)
    expect(errors).toEqual([outcome.reason]) // the loss itself is the 'disconnect' event, not an error
    expect(session.stream.destroyed).toBe(true)
    await vi.advanceTimersByTimeAsync(200)
    expect(made.length).toBe(2)
    await end(ipc)
  })
})

describe('a server that goes silent before the connection is up', () => {
  // Once connected, a statement waiting on the wire past timeoutMs gets the connection replaced
  // (above). The set-up check and the re-LISTENs are statements of the library's on the wire too:
  // a server (or a black-holing proxy) that stops answering then must not leave the instance
  // waiting forever, with no 'connect' and every notification queued behind.
  for (const [state, first] of [
    ['checking', SETUP_CHECK],
    ['attaching', 'LISTEN "ch"'],
  ] as const) {
    it(`${state}: the silent connection is replaced`, async () => {
      server.events.on('connect', (session: FakeConnection) => {
        if (server.sessions.length === 1) silenceFrom(session, (labels) => labels[0] === first)
      })
      const { ipc } = reconnecting({ healthCheck: { intervalMs: 1_000, timeoutMs: 500 } })
      ipc.on('ch', noop)
      const connected = track(nextEvent(ipc, 'connect'))
      // A wide bound: connectTimeoutMs (10 s by default) plus the health check's timeoutMs.
      await vi.advanceTimersByTimeAsync(30_000)
      expect(server.sessions[0]?.rounds().at(-1)).toEqual([first])
      expect(made).toHaveLength(2)
      expect(connected.state).toBe('fulfilled')
      await end(ipc)
    })
  }
})
