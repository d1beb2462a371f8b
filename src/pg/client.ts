import type { EventEmitter } from 'node:events'
import type { Statement } from './sql.js'

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
  /** The reconnecting mode connects the clients its `connect` factory returns unconnected. */
  connect(): Promise<unknown>
  /** The reconnecting mode ends the clients it owns. */
  end(): Promise<void>
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

/**
 * node-postgres (8.23+) exposes no public "is it usable, is it busy" state; these are the fields it
 * keeps. This file and exchange.ts are the only places that read or write them, so a pg upgrade has
 * one place to check (the shared-client tests fail loudly if a field changes meaning).
 */
export interface PgClientInternals {
  _connected?: boolean
  _connecting?: boolean
  _ending?: boolean
  _ended?: boolean
  _queryable?: boolean
  _queryQueue?: unknown[]
  _sentQueryQueue?: unknown[]
  _activeQuery?: unknown
  readyForQuery?: boolean
  pipeline?: boolean
  getTransactionStatus?: () => string | null
  connection?: {
    stream?: { destroy?: () => void; setKeepAlive?: (enable: boolean, delay: number) => void }
  }
}

/** @internal */
export function internals(client: PgClient): PgClientInternals {
  return client as unknown as PgClientInternals
}

/** Where a client is in its life, as far as the library cares. */
export type ClientPhase =
  /** `connect()` was never called: queries would wait until it is. */
  | 'unstarted'
  /** `connect()` is under way. */
  | 'connecting'
  /** Connected and usable. */
  | 'open'
  /** Closed, closing or broken: nothing sent on it will ever run. */
  | 'closed'

export function phaseOf(client: PgClient): ClientPhase {
  const state = internals(client)
  if (state._ending === true || state._ended === true || state._queryable === false) return 'closed'
  if (state._connected === true) return 'open'
  if (state._connecting === true) return 'connecting'
  return 'unstarted'
}

/** The user called `client.end()`: a deliberate close, not a failure. */
export function isClosedByUser(client: PgClient): boolean {
  return internals(client)._ending === true
}

/** A client that pipelines queries (`new pg.Client({ pipeline: true })`). */
export function isPipelining(client: PgClient): boolean {
  return internals(client).pipeline === true
}

/**
 * True when a query handed to pg now is sent at once, ahead of anything the user sends later, and
 * runs outside any transaction: pg runs nothing and queues nothing, and the last ReadyForQuery said
 * the session is idle ('I'), not inside a transaction block ('T') or a failed one ('E'). This is
 * exact because pg runs one query at a time: nothing can change the session between this check
 * and the server reading what we send.
 */
export function canSendNow(client: PgClient): boolean {
  const state = internals(client)
  if (state._connected !== true || phaseOf(client) === 'closed') return false
  if ((state._queryQueue?.length ?? 0) > 0 || state._activeQuery != null) return false
  if (state.pipeline === true) {
    if ((state._sentQueryQueue?.length ?? 0) > 0) return false
  } else if (state.readyForQuery !== true) {
    return false
  }
  return state.getTransactionStatus?.() === 'I'
}

/** Connects a client (pg's promise form). */
export function connectClient(client: PgClient): Promise<unknown> {
  return client.connect()
}

/**
 * Runs one of the library's statements straight on a client (one the hub does not have yet: the
 * reconnecting mode's setup check), rows as arrays of text.
 */
export async function rowsOf(client: PgClient, statement: Statement): Promise<readonly (readonly unknown[])[]> {
  const query = client.query.bind(client) as unknown as (config: {
    text: string
    values: unknown[]
    rowMode: 'array'
  }) => Promise<{ rows: unknown[][] }>
  const result = await query({ text: statement.text, values: [...(statement.values ?? [])], rowMode: 'array' })
  return result.rows
}

/** Destroys the socket under a client: for a connection that stopped answering. */
export function destroySocket(client: PgClient): void {
  internals(client).connection?.stream?.destroy?.()
}

/** TCP keepalive on the client's socket, so the OS notices a peer that vanished. */
export function enableKeepAlive(client: PgClient, initialDelayMs: number): void {
  internals(client).connection?.stream?.setKeepAlive?.(true, initialDelayMs)
}

/**
 * A connection that failed goes on reporting: pg emits an 'error' for the server's FATAL message
 * (a terminated backend), then another when the socket closes ("Connection terminated
 * unexpectedly"). The first is the loss, reported to the instances; the later ones say nothing new,
 * and with no 'error' listener left on the client each would crash the process of a user who
 * handles the instance's `error` event, as the docs say to. One shared no-op listener takes them.
 */
export function quietAfterLoss(client: PgClient): void {
  if (!client.listeners('error').includes(ignore)) client.on('error', ignore)
}

/** Destroys a client we own (and give up on): for a connection that stopped answering. */
export function destroyClient(client: PgClient): void {
  // pg reports the destroyed socket as an 'error'; nobody needs it, and unheard it would crash.
  client.on('error', ignore)
  destroySocket(client)
}

/**
 * Ends a client we own politely (the server ends its session before the socket closes), or destroys
 * its socket if it does not answer within a second. pg's own end() destroys the socket of a client
 * that is running a query, which leaves the server's session behind until it notices: a query of
 * ours still running (a setup check) is let finish first.
 */
export async function closeClient(client: PgClient): Promise<void> {
  client.on('error', ignore)
  let timer: NodeJS.Timeout | undefined
  const state = internals(client)
  if (phaseOf(client) === 'open' && (state._activeQuery != null || (state._queryQueue?.length ?? 0) > 0)) {
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        client.off('drain', done)
        client.off('end', done)
        resolve()
      }
      client.on('drain', done)
      client.on('end', done)
      timer = setTimeout(done, 1_000)
    })
  }
  const ending = client.end().catch(ignore)
  await Promise.race([
    ending,
    new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        destroyClient(client)
        resolve()
      }, 1_000)
    }),
  ])
  clearTimeout(timer)
}

function ignore(): void {}
