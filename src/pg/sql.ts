// Every SQL statement the library sends. Values always travel as bind parameters; identifiers are
// quoted by quoteIdentifier, the only place SQL text is built from a name.

/** A statement and its bind parameters: text, a Buffer (sent in binary format), or null for SQL NULL. */
export interface Statement {
  readonly text: string
  readonly values?: readonly (string | Buffer | null)[] | undefined
  /**
   * The name of a prepared statement for `text`: the exchange parses it once per connection, and
   * then each use is Bind/Execute only (no parse and plan on the server). Versioned, so that two
   * versions of the library sharing a connection never take each other's statement.
   */
  readonly name?: string | undefined
}

/** Quotes an identifier for SQL: the one place identifiers are turned into SQL text. */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}

/** Schema-qualified: a pg_notify earlier on the user's search_path must not be called instead. */
export const NOTIFY_SQL = 'SELECT pg_catalog.pg_notify($1, $2)'
export const NOTIFY_NAME = 'typed_pg_ipc.notify.1'

/**
 * Many notifications in one statement, in array order, from two text arrays (channels, payloads)
 * sent in binary format: no escaping on either side, where a JSON or text-array literal would escape
 * every quote of a JSON payload on the client and parse it again on the server. One row back, not
 * one per notification.
 */
export const NOTIFY_MANY_SQL =
  'SELECT count(pg_catalog.pg_notify(c, p)) FROM ROWS FROM ' +
  '(pg_catalog.unnest($1::pg_catalog.text[]), pg_catalog.unnest($2::pg_catalog.text[])) AS t(c, p)'
export const NOTIFY_MANY_NAME = 'typed_pg_ipc.notify_many.1'

export function notifyStatement(channel: string, payload: string): Statement {
  return { text: NOTIFY_SQL, values: [channel, payload], name: NOTIFY_NAME }
}

/** One statement for several notifications, `channels[i]` and `payloads[i]` each (kept in order; identical pairs would be folded). */
export function notifyManyStatement(channels: readonly string[], payloads: readonly string[]): Statement {
  return {
    text: NOTIFY_MANY_SQL,
    values: [textArray(channels), textArray(payloads)],
    name: NOTIFY_MANY_NAME,
  }
}

/** The OID of PostgreSQL's `text` type, the element type of a binary `text[]`. */
const TEXT_OID = 25

/**
 * A one-dimensional `text[]` in PostgreSQL's binary array format (array_recv): dimensions, flags,
 * element type, length and lower bound, then each element as its byte length and UTF-8 bytes.
 */
export function textArray(items: readonly string[]): Buffer {
  const lengths: number[] = []
  let size = 20
  for (const item of items) {
    const length = Buffer.byteLength(item, 'utf8')
    lengths.push(length)
    size += 4 + length
  }
  const buffer = Buffer.allocUnsafe(size)
  buffer.writeInt32BE(1, 0) // dimensions
  buffer.writeInt32BE(0, 4) // no NULLs
  buffer.writeInt32BE(TEXT_OID, 8)
  buffer.writeInt32BE(items.length, 12)
  buffer.writeInt32BE(1, 16) // lower bound
  let offset = 20
  for (let index = 0; index < items.length; index++) {
    offset = buffer.writeInt32BE(lengths[index] as number, offset)
    offset += buffer.write(items[index] as string, offset, 'utf8')
  }
  return buffer
}

/**
 * How a kind of notification is sent: alone, or several in one statement (one transaction), and
 * whether PostgreSQL folds identical (channel, payload) pairs of one transaction into one (plain
 * NOTIFY does; a durable message, stored with an id of its own, never does).
 */
export interface NotifyKind {
  one(channel: string, payload: string): Statement
  /** Several, in order, in one statement: the channels and the payloads, index by index. */
  many(channels: readonly string[], payloads: readonly string[]): Statement
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
