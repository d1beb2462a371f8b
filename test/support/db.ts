// Helpers for test files. connect() and privateServer() clean up through onTestFinished, so they
// must be called inside a test body (vitest forbids onTestFinished in beforeAll/beforeEach hooks;
// use startPostgres / new pg.Client with afterAll there).

import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { inject, onTestFinished } from 'vitest'
import './context.js'
import { startPostgres, type PgServer, type StartPostgresOptions } from './postgres.js'

export type { PgServer, StartPostgresOptions } from './postgres.js'

/** Connection string of the shared server started by the global setup. */
export function databaseUrl(): string {
  return inject('databaseUrl')
}

/** A connected pg.Client, ended after the current test. */
export async function connect(url: string = databaseUrl()): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url })
  // Registered before connecting so a client whose connect() fails is cleaned up too. end() on a
  // client whose server went away is fine; errors here must not mask the test's own result.
  onTestFinished(async () => {
    await client.end().catch(() => undefined)
  })
  await client.connect()
  return client
}

let counter = 0
// Random per module instance: pid and counter alone repeat when a worker process re-runs the module.
const instanceTag = randomBytes(3).toString('hex')

/** A channel name unique across parallel test files and runs; lower case, so quoting does not matter. */
export function uniqueChannel(prefix = 'ch'): string {
  counter += 1
  const worker = process.env.VITEST_POOL_ID ?? '0'
  const name = `${prefix}_${process.pid}_${worker}_${instanceTag}_${counter}`
  // LISTEN silently truncates names over 63 bytes, which would make a test hang instead of fail.
  if (Buffer.byteLength(name) > 63) throw new Error(`channel name over 63 bytes: ${name}`)
  return name
}

/** The channels this session listens on, sorted: the ground truth for LISTEN/UNLISTEN bookkeeping. */
export async function listeningChannels(client: pg.ClientBase): Promise<string[]> {
  const result = await client.query<{ channel: string }>('SELECT pg_listening_channels() AS channel')
  return result.rows.map((row) => row.channel).sort()
}

/** A server of the test's own, for tests that stop and restart it; stopped after the test. */
export function privateServer(options?: StartPostgresOptions): Promise<PgServer> {
  const starting = startPostgres(options)
  // Registered before the start finishes so a test that times out while starting still cleans up.
  onTestFinished(async () => {
    const server = await starting.catch(() => undefined)
    await server?.stop()
  })
  return starting
}

/** The listener surface waitFor needs; Node's EventEmitter and pg.Client fit it. */
export interface Emitter {
  on(event: string, listener: (...args: unknown[]) => void): unknown
  off(event: string, listener: (...args: unknown[]) => void): unknown
}

type AnyListener = (...args: unknown[]) => void

export interface WaitForOptions<T> {
  /** Default 10 s: generous, yet well below testTimeout so this message is what a hang reports. */
  timeoutMs?: number
  /** Only resolve on an event whose first argument passes this check (e.g. a given channel). */
  filter?: (value: T) => boolean
  /** Default true. False to wait for e.g. 'end' on a client that is expected to emit 'error' first. */
  rejectOnError?: boolean
}

/**
 * Resolves with the first argument of the next `event` (passing `filter`). Rejects with a message
 * naming the event on timeout, or (unless rejectOnError is false) if the emitter emits 'error' meanwhile.
 */
export function waitFor<T = unknown>(emitter: Emitter, event: string, options: WaitForOptions<T> = {}): Promise<T> {
  const { timeoutMs = 10_000, filter, rejectOnError = true } = options
  const watchErrors = rejectOnError && event !== 'error'
  return new Promise<T>((resolve, reject) => {
    // The casts only widen our own listeners to the emitter's untyped signature.
    const onEvent = ((value: T): void => {
      if (filter !== undefined && !filter(value)) return
      cleanup()
      resolve(value)
    }) as AnyListener
    const onError = ((error: Error): void => {
      cleanup()
      reject(new Error(`'error' emitted while waiting for '${event}': ${error.message}`, { cause: error }))
    }) as AnyListener
    const timer = setTimeout(() => {
      cleanup()
      reject(new Error(`timed out after ${timeoutMs} ms waiting for '${event}'`))
    }, timeoutMs)
    const cleanup = (): void => {
      clearTimeout(timer)
      emitter.off(event, onEvent)
      if (watchErrors) emitter.off('error', onError)
    }
    emitter.on(event, onEvent)
    if (watchErrors) emitter.on('error', onError)
  })
}

/**
 * A database of its own on the shared server, dropped after the current test: notifications never
 * cross databases, so a program given this URL (a documentation example, a consumer test) hears only
 * itself, whatever channel names other tests use at the same time, and may create its own tables.
 */
export async function freshDatabase(prefix = 'db'): Promise<string> {
  const name = `${prefix}_${process.pid}_${instanceTag}_${(counter += 1)}`.toLowerCase()
  const admin = new pg.Client({ connectionString: databaseUrl() })
  await admin.connect()
  try {
    await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(name)}`)
  } finally {
    await admin.end()
  }
  onTestFinished(async () => {
    const dropper = new pg.Client({ connectionString: databaseUrl() })
    await dropper.connect()
    try {
      // FORCE: a program killed by its timeout may have left a connection behind.
      await dropper.query(`DROP DATABASE IF EXISTS ${dropper.escapeIdentifier(name)} WITH (FORCE)`)
    } finally {
      await dropper.end()
    }
  })
  const url = new URL(databaseUrl())
  url.pathname = `/${name}`
  return url.toString()
}
