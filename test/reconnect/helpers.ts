// Shared helpers of the reconnect tests. Every test here runs against a private server of its own
// (privateServer()): these tests stop, restart and cut off servers, never the shared one.
import { EventEmitter } from 'node:events'
import pg from 'pg'
import { expect, onTestFinished } from 'vitest'
import type { ConnectInfo, PgIPC } from '../../src/index.js'
import { listeningChannels, waitFor, type Emitter } from '../support/db.js'

export { listeningChannels, waitFor }

/**
 * A `connect` factory whose clients the test keeps: the library owns the connection, so this is the
 * only honest way to run `SELECT pg_listening_channels()` on the session it actually uses.
 * `events` emits 'made' (client) on each call, 'failed' (error) when a client's connect() fails,
 * and 'query' ({ client, text, values }) once pg has taken a query of the library (submitted at
 * once when the client was idle, which is how the library sends).
 */
export interface OwnedClients {
  readonly connect: () => pg.Client
  readonly clients: pg.Client[]
  readonly events: EventEmitter
  /** The newest client the library asked for. */
  latest(): pg.Client
  /** Resolves once pg has taken a query whose bind values include `value`. */
  queried(value: string): Promise<void>
  /** Resolves on the next call of the factory. */
  nextMade(): Promise<pg.Client>
  /** Resolves once `count` factory calls have been made in total. */
  made(count: number): Promise<void>
}

export function ownedClients(url: string | (() => string), config: pg.ClientConfig = {}): OwnedClients {
  const clients: pg.Client[] = []
  const events = new EventEmitter()
  const factory = (): pg.Client => {
    const client = new pg.Client({ ...config, connectionString: typeof url === 'string' ? url : url() })
    const connect = client.connect.bind(client) as unknown as () => Promise<void>
    // Observes a failed attempt without changing what the library sees.
    ;(client as unknown as { connect: () => Promise<void> }).connect = () =>
      connect().catch((error: unknown) => {
        events.emit('failed', error)
        throw error
      })
    const query = client.query.bind(client) as (...args: unknown[]) => unknown
    ;(client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      const result = query(...args)
      const config = args[0] as
        { text?: string; values?: unknown[]; statements?: readonly { text: string; values?: readonly unknown[] }[] } | string
      if (typeof config === 'object' && config.statements !== undefined) {
        // The library's own exchanges: several statements in one round trip.
        for (const statement of config.statements)
          events.emit('query', { client, text: statement.text, values: statement.values })
        return result
      }
      const text = typeof config === 'string' ? config : config.text
      const values = typeof config === 'string' ? (args[1] as unknown[] | undefined) : config.values
      events.emit('query', { client, text, values })
      return result
    }
    clients.push(client)
    events.emit('made', client)
    return client
  }
  return {
    connect: factory,
    clients,
    events,
    latest: () => {
      const client = clients.at(-1)
      if (client === undefined) throw new Error('the factory was never called')
      return client
    },
    queried: (value) =>
      new Promise((resolve) => {
        const onQuery = (query: { values?: unknown[] }): void => {
          if (!(query.values ?? []).some((item) => item === value || (Array.isArray(item) && item.includes(value)))) return
          events.off('query', onQuery)
          resolve()
        }
        events.on('query', onQuery)
      }),
    nextMade: () => new Promise((resolve) => events.once('made', resolve)),
    made: (count) =>
      new Promise((resolve) => {
        if (clients.length >= count) return resolve()
        const onMade = (): void => {
          if (clients.length < count) return
          events.off('made', onMade)
          resolve()
        }
        events.on('made', onMade)
      }),
  }
}

/** The channels a library-owned session LISTENs on (one extra query on it; the library serialises its own). */
export async function listeningOn(client: pg.Client): Promise<string[]> {
  return listeningChannels(client)
}

/** An admin client for a private server: ended after the test, survives the server's death quietly. */
export async function adminClient(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url })
  client.on('error', () => undefined) // pg emits 'error' (twice) when its server stops
  onTestFinished(async () => {
    await client.end().catch(() => undefined)
  })
  await client.connect()
  return client
}

/** Records every event of an emitter in order, with the first argument. */
export function recordEvents(emitter: Emitter, names: readonly string[]): { name: string; value: unknown }[] {
  const log: { name: string; value: unknown }[] = []
  for (const name of names) emitter.on(name, (value: unknown) => log.push({ name, value }))
  return log
}

/** Raw payloads received on a channel, in order. */
export function collect(ipc: PgIPC, channel: string): string[] {
  const got: string[] = []
  ipc.on(channel, (message) => got.push(message.rawPayload))
  return got
}

/** Resolves on the next message on `channel` with this raw payload. */
export function nextPayload(emitter: Emitter, channel: string, payload: string, timeoutMs = 10_000): Promise<unknown> {
  return waitFor(emitter, channel, {
    timeoutMs,
    filter: (message: { rawPayload: string }) => message.rawPayload === payload,
  })
}

/** Counts how many times each value occurs. */
export function countOf(values: readonly string[], value: string): number {
  return values.filter((item) => item === value).length
}

/** Waits for the next 'reconnect' (not failing on an 'error' the outage may cause). */
export function nextReconnect(emitter: Emitter, timeoutMs = 20_000): Promise<ConnectInfo> {
  return waitFor<ConnectInfo>(emitter, 'reconnect', { timeoutMs, rejectOnError: false })
}

export function nextDisconnect(emitter: Emitter, timeoutMs = 20_000): Promise<Error> {
  return waitFor<Error>(emitter, 'disconnect', { timeoutMs, rejectOnError: false })
}

// ---- handles ------------------------------------------------------------------------------------

/** The resource kinds a connection or a timer of the library would leave behind. */
const WATCHED = ['TCPSocketWrap', 'TCPServerWrap', 'Timeout'] as const

export type HandleCounts = Record<(typeof WATCHED)[number], number>

export function handleCounts(): HandleCounts {
  const all = process.getActiveResourcesInfo()
  const counts = Object.fromEntries(WATCHED.map((kind) => [kind, 0])) as HandleCounts
  for (const kind of all) if ((WATCHED as readonly string[]).includes(kind)) counts[kind as keyof HandleCounts]++
  return counts
}

/**
 * No socket, server or timer more than at `baseline` (taken before the instance was created, with
 * the test's own clients already open), once the current turn of the event loop has run its close
 * callbacks: a socket destroyed just before (say, a refused attempt) releases its handle in libuv's
 * close phase, a turn after `destroyed` is set; that is not a leak. Anything still there after that
 * is: end() must not leave anything to close later.
 */
export async function expectNoNewHandles(baseline: HandleCounts, what = 'after end()'): Promise<void> {
  for (let turn = 0; turn < 2; turn++) await new Promise((resolve) => setImmediate(resolve))
  const now = handleCounts()
  for (const kind of WATCHED) {
    expect(
      now[kind],
      `${kind} ${what} (baseline ${baseline[kind]}; all: ${process.getActiveResourcesInfo().join(', ')})`,
    ).toBeLessThanOrEqual(baseline[kind])
  }
}

/** Errors an instance emits, for asserting none (or only expected ones) happened. */
export function recordErrors(emitter: Emitter): Error[] {
  const errors: Error[] = []
  emitter.on('error', (error: unknown) => errors.push(error as Error))
  return errors
}

/**
 * After an outage: a message from another session and one from the instance itself each arrive
 * exactly once. A duplicate would be dispatched no later than the second message, which is sent
 * after the first one was received.
 */
export async function expectExactlyOnce(
  ipc: PgIPC,
  admin: pg.Client,
  channel: string,
  got: readonly string[],
  tag: string,
): Promise<void> {
  const fromAdmin = `${tag}-admin`
  const fromSelf = `${tag}-self`
  const sentinel = `${tag}-sentinel`
  let arrived = nextPayload(ipc, channel, fromAdmin)
  await admin.query('SELECT pg_notify($1, $2)', [channel, fromAdmin])
  await arrived
  arrived = nextPayload(ipc, channel, fromSelf)
  ipc.notify(channel, fromSelf)
  await arrived
  arrived = nextPayload(ipc, channel, sentinel)
  await admin.query('SELECT pg_notify($1, $2)', [channel, sentinel])
  await arrived
  expect(countOf(got, fromAdmin), `${fromAdmin} received`).toBe(1)
  expect(countOf(got, fromSelf), `${fromSelf} received`).toBe(1)
  expect(countOf(got, sentinel), `${sentinel} received`).toBe(1)
}

/** A promise with its settle functions, for events the test triggers itself. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: unknown) => void } {
  let resolve!: (value: T) => void
  let reject!: (error: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}
