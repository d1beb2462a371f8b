// Every SQL statement the library sends. Values always travel as bind parameters; identifiers are
// quoted by quoteIdentifier, the only place SQL text is built from a name.

/** A statement and its bind parameters (text, or null for SQL NULL). */
export interface Statement {
  readonly text: string
  readonly values?: readonly (string | null)[] | undefined
}

/** Quotes an identifier for SQL: the one place identifiers are turned into SQL text. */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}

/** Schema-qualified: a pg_notify earlier on the user's search_path must not be called instead. */
export const NOTIFY_SQL = 'SELECT pg_catalog.pg_notify($1, $2)'

/**
 * Many notifications in one statement, in array order, from one JSON parameter `[[channel, payload], ...]`
 * (one row back, not one per notification).
 */
export const NOTIFY_MANY_SQL =
  'SELECT count(pg_catalog.pg_notify(n->>0, n->>1)) FROM pg_catalog.json_array_elements($1::json) AS n'

export function notifyStatement(channel: string, payload: string): Statement {
  return { text: NOTIFY_SQL, values: [channel, payload] }
}

/** One statement for several notifications (kept in order; identical pairs would be folded). */
export function notifyManyStatement(pairs: readonly (readonly [channel: string, payload: string])[]): Statement {
  return { text: NOTIFY_MANY_SQL, values: [JSON.stringify(pairs)] }
}

/**
 * How a kind of notification is sent: alone, or several in one statement (one transaction), and
 * whether PostgreSQL folds identical (channel, payload) pairs of one transaction into one (plain
 * NOTIFY does; a durable message, stored with an id of its own, never does).
 */
export interface NotifyKind {
  one(channel: string, payload: string): Statement
  many(pairs: readonly (readonly [channel: string, payload: string])[]): Statement
  readonly folds: boolean
}

/** Plain LISTEN/NOTIFY. */
export const PLAIN_NOTIFY: NotifyKind = { one: notifyStatement, many: notifyManyStatement, folds: true }

export function listenStatement(channel: string): Statement {
  return { text: `LISTEN ${quoteIdentifier(channel)}` }
}

export function unlistenStatement(channel: string): Statement {
  return { text: `UNLISTEN ${quoteIdentifier(channel)}` }
}

/** The cheapest round trip: the health check. */
export const PING: Statement = { text: 'SELECT 1' }

/** The fraction of the server's notification queue in use. */
export const QUEUE_USAGE: Statement = { text: 'SELECT pg_catalog.pg_notification_queue_usage()' }

/** Run on each new connection of the reconnecting mode: LISTEN cannot work on a standby. */
export const SETUP_CHECK: Statement = {
  text: 'SELECT pg_catalog.pg_is_in_recovery()::text, pg_catalog.pg_backend_pid()::text',
}

/** Used inside an exchange only, to close a transaction block one of its statements failed in. */
export const BEGIN: Statement = { text: 'BEGIN' }
export const COMMIT: Statement = { text: 'COMMIT' }
export const ROLLBACK: Statement = { text: 'ROLLBACK' }
