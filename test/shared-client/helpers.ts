// Helpers of the shared-client tests (issue 8): one pg.Client used by the user's own queries and
// transactions AND by the library, as pg-ipc's README does. Everything here goes through pg and a
// real PostgreSQL; nothing is mocked. Waits never sleep: they await an event or a query, and every
// one of them has a timeout whose message says what it waited for.
import { createServer, connect as tcpConnect, type AddressInfo, type Socket } from 'node:net'
import pg from 'pg'
import { onTestFinished } from 'vitest'
import { type z } from 'zod'
import { defineChannels, type ChannelSchemas, type ChannelSet, type CheckChannels, type PgClient } from '../../src/index.js'
import { connect, databaseUrl, uniqueChannel } from '../support/db.js'

export const WAIT_MS = 10_000

/** Resolves or rejects like `promise`; rejects with "timed out ... waiting for <what>" after `ms`. */
export function within<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
  })
  return handled(Promise.race([promise, timeout]).finally(() => clearTimeout(timer)))
}

/**
 * Marks a promise as handled and returns it unchanged: awaiting it still throws. For waits created
 * before the step that triggers them: if the test fails before awaiting one, its later timeout must
 * not surface as an unhandled rejection in whatever test runs then.
 */
export function handled<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined)
  return promise
}

export type Settled<T> = { status: 'fulfilled'; value: T } | { status: 'rejected'; reason: unknown }

/** How `promise` settled, within `ms` (else the timeout's rejection, naming `what`). */
export async function settledWithin<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<Settled<T>> {
  const outcome = promise.then(
    (value): Settled<T> => ({ status: 'fulfilled', value }),
    (reason: unknown): Settled<T> => ({ status: 'rejected', reason }),
  )
  return within(outcome, what, ms)
}

/** The error a promise rejects with (fails, naming `what`, if it resolves or hangs). */
export async function rejectionOf(promise: Promise<unknown>, what: string, ms = WAIT_MS): Promise<unknown> {
  const outcome = await settledWithin(promise, what, ms)
  if (outcome.status === 'fulfilled') throw new Error(`expected ${what} to reject, it resolved with ${String(outcome.value)}`)
  return outcome.reason
}

/** A synchronous stall of the event loop: what a long computation or a GC pause does to pg's timers. */
export function busyWait(ms: number): void {
  const end = performance.now() + ms
  while (performance.now() < end) {
    // spin
  }
}

/** One turn of the event loop (after the current microtasks). */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

/** A connected pg.Client with any config (e.g. query_timeout), ended after the test. */
export async function connectWith(config: pg.ClientConfig = {}): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: databaseUrl(), ...config })
  onTestFinished(async () => {
    await client.end().catch(() => undefined)
  })
  await client.connect()
  return client
}

/** Backend pid of a pg client (@types/pg does not declare pg's processID). */
export function pidOf(client: pg.Client): number {
  const pid = (client as unknown as PgClient).processID
  if (typeof pid !== 'number') throw new Error('the client has no backend pid (not connected)')
  return pid
}

/** The server's notices on a client (its 'notice' events), in order. */
export function recordNotices(client: pg.Client): string[] {
  const notices: string[] = []
  client.on('notice', (notice) => {
    notices.push(String(notice.message))
  })
  return notices
}

/** Notices about the transaction state: the sign that someone else's BEGIN/COMMIT/ROLLBACK hit the session. */
export function transactionNotices(notices: readonly string[]): string[] {
  return notices.filter((message) => /transaction/i.test(message))
}

/**
 * The user's own query, as an application runs it on the shared client. A per-query timeout far above
 * the test's lifetime keeps a client-level `query_timeout` (meant for the library) off the user's queries.
 */
export function userQuery<Row extends pg.QueryResultRow = pg.QueryResultRow>(
  client: pg.Client,
  text: string,
  values: unknown[] = [],
): Promise<pg.QueryResult<Row>> {
  return client.query<Row>({ text, values, query_timeout: 600_000 } as pg.QueryConfig)
}

/** A table of the user's, private to the session: what their transactions write. */
export async function userTable(client: pg.Client): Promise<{ readonly name: string; rows(): Promise<number[]> }> {
  const name = uniqueChannel('rows')
  await userQuery(client, `CREATE TEMP TABLE ${name} (n int)`)
  return {
    name,
    rows: async () => (await userQuery<{ n: number }>(client, `SELECT n FROM ${name} ORDER BY n`)).rows.map((row) => row.n),
  }
}

export interface Delivered {
  readonly channel: string
  readonly payload: string
  readonly processId: number
}

/**
 * A separate connection that LISTENs (raw SQL, outside the library) on the channels under test: what
 * the server really delivered, in commit order. `settle()` sends a unique sentinel after everything
 * else and resolves once it arrived: commit order across connections is delivery order, so by then
 * every notification committed before the sentinel was sent is in `received`.
 */
export class Observer {
  readonly received: Delivered[] = []
  readonly client: pg.Client
  readonly #sentinel = uniqueChannel('sentinel')
  #count = 0
  readonly #waiters = new Map<string, () => void>()

  private constructor(client: pg.Client) {
    this.client = client
    client.on('notification', (message) => {
      const payload = message.payload ?? ''
      if (message.channel === this.#sentinel) {
        this.#waiters.get(payload)?.()
        return
      }
      this.received.push({ channel: message.channel, payload, processId: message.processId })
    })
  }

  /** An observer on the shared server (or `url`), LISTENing on `channels`; ended after the test. */
  static async start(channels: readonly string[], url: string = databaseUrl()): Promise<Observer> {
    const client = await connect(url)
    client.on('error', () => undefined) // a private server of the test may stop under it
    const observer = new Observer(client)
    await observer.listen([...channels, observer.#sentinel])
    return observer
  }

  async listen(channels: readonly string[]): Promise<void> {
    for (const channel of channels) await this.client.query(`LISTEN ${this.client.escapeIdentifier(channel)}`)
  }

  /**
   * Sends the sentinel through `via` (default: the observer's own connection) and resolves with
   * everything received before it. Send it through the client under test while it is alive: it then
   * runs after every statement that client had queued.
   */
  async settle(via: pg.Client = this.client, ms = WAIT_MS): Promise<Delivered[]> {
    this.#count += 1
    const token = `sentinel-${this.#count}`
    const arrived = new Promise<void>((resolve) => this.#waiters.set(token, resolve))
    await within(userQuery(via, 'SELECT pg_notify($1, $2)', [this.#sentinel, token]), `the sentinel ${token} to be sent`, ms)
    await within(arrived, `the sentinel ${token} to arrive at the observer`, ms)
    this.#waiters.delete(token)
    return [...this.received]
  }

  /** Raw payloads received on one channel, in order. */
  payloads(channel: string): string[] {
    return this.received.filter((message) => message.channel === channel).map((message) => message.payload)
  }
}

/** How many times `value` occurs in `values`. */
export function count(values: readonly string[], value: string): number {
  return values.filter((item) => item === value).length
}

/** A typed channel set of `n` channels with unique names, all with one schema. */
export function typedChannels<Schema extends z.ZodType>(
  n: number,
  schema: Schema,
  prefix = 'tc',
): { channels: ChannelSet<ChannelSchemas>; names: string[] } {
  const names = Array.from({ length: n }, () => uniqueChannel(prefix))
  const map: ChannelSchemas = {}
  for (const name of names) map[name] = schema
  return { channels: defineChannels<ChannelSchemas>(map as ChannelSchemas & CheckChannels<ChannelSchemas>), names }
}

/**
 * Watches the calls the library makes on a client's `query` (observing only: the call goes through
 * unchanged). Install it BEFORE attaching the library, in case the library keeps a reference.
 * The test's own queries go through `own` so they are not counted.
 */
export function watchLibraryQueries(client: pg.Client): {
  readonly calls: number
  next(): Promise<void>
  own: <Row extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]) => Promise<pg.QueryResult<Row>>
} {
  const original = client.query.bind(client) as (...args: unknown[]) => unknown
  let calls = 0
  let waiters: (() => void)[] = []
  let mine = false
  ;(client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
    const result = original(...args)
    if (!mine) {
      calls += 1
      const current = waiters
      waiters = []
      for (const resolve of current) resolve()
    }
    return result
  }
  return {
    get calls() {
      return calls
    },
    next: () => new Promise<void>((resolve) => waiters.push(resolve)),
    own: (text, values = []) => {
      mine = true
      try {
        return userQuery(client, text, values)
      } finally {
        mine = false
      }
    },
  }
}

/**
 * A database on the shared test server whose encoding cannot hold '€' (LATIN1), dropped after the
 * test. Returns its connection string.
 */
export async function latin1Database(): Promise<string> {
  const admin = await connect()
  const name = uniqueChannel('latin1')
  await admin.query(`CREATE DATABASE ${name} ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0`)
  onTestFinished(async () => {
    const dropper = new pg.Client({ connectionString: databaseUrl() })
    await dropper.connect()
    await dropper.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined)
    await dropper.end()
  })
  const url = new URL(databaseUrl())
  url.pathname = `/${name}`
  return url.toString()
}

/**
 * Resolves when a pg client's connection has closed (its 'end'), e.g. after pg_terminate_backend. Call
 * it before the kill. Also keeps pg's 'error' for the dead connection from crashing the test.
 */
export function whenClosed(client: pg.Client): Promise<void> {
  client.on('error', () => undefined)
  return new Promise((resolve) => client.once('end', () => resolve()))
}

/**
 * A loopback TCP proxy in front of a (private) server that cuts a connection, both ways and with
 * nothing forwarded, at the first chunk the client sends for which `cut(chunk, index)` is true
 * (`index`: 0 for the first connection through the proxy, 1 for the second...). The way to lose a
 * connection at an exact point of the protocol (say, while its LISTEN is in flight) without touching
 * pg or the library. Closed after the test.
 */
export async function cuttingProxy(
  target: { host: string; port: number },
  cut: (chunk: Buffer, index: number) => boolean,
): Promise<{ url(url: string): string; readonly cuts: number }> {
  const sockets = new Set<Socket>()
  let connections = 0
  let cuts = 0
  const track = (socket: Socket): void => {
    sockets.add(socket)
    socket.on('error', () => undefined)
    socket.once('close', () => sockets.delete(socket))
  }
  const server = createServer((client) => {
    const index = connections++
    track(client)
    const upstream = tcpConnect({ host: target.host, port: target.port })
    track(upstream)
    const killBoth = (): void => {
      for (const socket of [client, upstream]) if (!socket.destroyed) socket.resetAndDestroy()
    }
    client.on('data', (chunk: Buffer) => {
      if (cut(chunk, index)) {
        cuts += 1
        killBoth()
        return
      }
      upstream.write(chunk)
    })
    upstream.on('data', (chunk: Buffer) => client.write(chunk))
    client.once('close', killBoth)
    upstream.once('close', killBoth)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  onTestFinished(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  const address = server.address() as AddressInfo
  return {
    url: (url) => {
      const parsed = new URL(url)
      parsed.hostname = '127.0.0.1'
      parsed.port = String(address.port)
      return parsed.toString()
    },
    get cuts() {
      return cuts
    },
  }
}

/**
 * Ends a library instance after the test even when the test failed half-way (registered after the
 * server and clients it uses, so it runs before they go: onTestFinished hooks run in reverse order).
 * Bounded, and quiet: a cleanup must not mask the test's own result.
 */
export function endAfterTest<
  Instance extends { end(): Promise<void>; on(event: 'error', listener: (error: never) => void): unknown },
>(instance: Instance): Instance {
  onTestFinished(async () => {
    instance.on('error', () => undefined)
    await within(instance.end(), 'end() in the cleanup', 5_000).catch(() => undefined)
  })
  return instance
}
