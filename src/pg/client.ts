import type { EventEmitter } from 'node:events'

/** What node-postgres hands to `client.on('notification')`. */
export interface PgNotification {
  readonly processId: number
  readonly channel: string
  readonly payload?: string | undefined
}

/** The part of a pg query result the library reads. */
export interface PgQueryResult {
  readonly rows: readonly Record<string, unknown>[]
}

/**
 * The part of a node-postgres `Client` this library uses. A `pg.Client` fits; a `pg.Pool` does not
 * (LISTEN needs one session), and neither does a pool client you release while listening.
 */
export interface PgClient extends EventEmitter {
  query(config: { text: string; values?: unknown[] }): Promise<PgQueryResult>
  /** Backend process id of this connection once connected (pg names it `processID`). */
  readonly processID?: number | null | undefined
  /** A `pg.Pool` has this; a client must not: LISTEN needs one session, and a pool has many. */
  readonly totalCount?: never
}

/** Refuses a `pg.Pool` at run time too (for JavaScript callers and casts). */
export function assertClient(client: unknown): asserts client is PgClient {
  if (typeof client !== 'object' || client === null || typeof (client as { query?: unknown }).query !== 'function') {
    throw new TypeError('Expected a pg.Client (new pg.Client(config)), or options with `connect` for the reconnecting mode.')
  }
  if ('totalCount' in client && 'idleCount' in client) {
    throw new TypeError(
      'Got a pg.Pool: LISTEN needs one dedicated session, and a pool hands out a different one each time. ' +
        'Pass a pg.Client (or `await pool.connect()` kept for as long as you listen), or use the reconnecting mode.',
    )
  }
}

/** Quotes an identifier for SQL: the one place identifiers are turned into SQL text. */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}

/**
 * node-postgres exposes no public "is it usable" state; these are the fields pg 8.x keeps.
 * Kept in one place so a pg upgrade has one thing to check.
 */
interface PgClientInternals {
  _connected?: boolean
  _connecting?: boolean
  _ending?: boolean
  _ended?: boolean
  _queryable?: boolean
  _queryQueue?: unknown[]
  getTransactionStatus?: () => string | null
  connection?: { stream?: { destroy?: () => void; setKeepAlive?: (enable: boolean, delay: number) => void } }
}

function internals(client: PgClient): PgClientInternals {
  return client as unknown as PgClientInternals
}

/** The client is closed, closing, or broken: nothing sent on it will ever run. */
export function isUnusable(client: PgClient): boolean {
  const state = internals(client)
  return state._ending === true || state._ended === true || state._queryable === false
}

/** The client finished its start-up and can run queries now. */
export function isConnected(client: PgClient): boolean {
  const state = internals(client)
  return state._connected === true && !isUnusable(client)
}

/**
 * Safe to hand a query to pg without pg queueing it behind another queued one (which prints
 * pg's "already executing a query" deprecation warning) and outside a user's transaction.
 */
export function isIdle(client: PgClient): boolean {
  if (!isConnected(client)) return false
  const state = internals(client)
  if ((state._queryQueue?.length ?? 0) > 0) return false
  return !inTransaction(client)
}

/** The session is inside a transaction block (open or failed). */
export function inTransaction(client: PgClient): boolean {
  const status = internals(client).getTransactionStatus?.()
  return status === 'T' || status === 'E'
}

/** The user called `client.end()`: a deliberate close, not a failure. */
export function isClosedByUser(client: PgClient): boolean {
  return internals(client)._ending === true
}

/** `client.connect()` was called and has not finished. */
export function isConnecting(client: PgClient): boolean {
  return internals(client)._connecting === true
}

/** Destroys the socket under a client: for a connection that stopped answering. */
export function destroySocket(client: PgClient): void {
  internals(client).connection?.stream?.destroy?.()
}

/** TCP keepalive on the client's socket, so the OS notices a peer that vanished. */
export function enableKeepAlive(client: PgClient, initialDelayMs: number): void {
  internals(client).connection?.stream?.setKeepAlive?.(true, initialDelayMs)
}
