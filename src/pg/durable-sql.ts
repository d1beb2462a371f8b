// The SQL of durable channels: the table messages are stored in, the statement that stores one and
// wakes the listeners in the same transaction, the statement that reads what a listener has not
// seen, and pruning. Identifiers (the schema and table, configurable) are quoted by quoteIdentifier;
// values travel as bind parameters. docs/durable.md explains the ordering argument behind `read`.
import { quoteIdentifier, textArray, type NotifyKind, type Statement } from './sql.js'

/** Where durable messages are stored. */
export interface DurableStorage {
  /** Schema of the table. Default `typed_pg_ipc`. */
  readonly schema: string
  /** Table name. Default `messages`. */
  readonly table: string
}

/** The version of the storage layout that `install` creates; stored in the meta table. */
export const STORAGE_VERSION = 1

interface Names {
  readonly schema: string
  readonly messages: string
  readonly meta: string
  readonly lockKey: string
}

function names(storage: DurableStorage): Names {
  const schema = quoteIdentifier(storage.schema)
  return {
    schema,
    messages: `${schema}.${quoteIdentifier(storage.table)}`,
    meta: `${schema}.${quoteIdentifier(`${storage.table}_meta`)}`,
    // One advisory lock key per table, for install and pruning (hashtext is stable across versions).
    lockKey: `pg_catalog.hashtext(${quoteLiteral(`typed-pg-ipc:${storage.schema}.${storage.table}`)})`,
  }
}

/** A literal for DDL, where bind parameters cannot go (only our own constant text reaches it). */
function quoteLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`
}

/**
 * The install step: idempotent (every object IF NOT EXISTS), versioned (the meta table records the
 * layout), and safe to run from many processes at once (an advisory lock for the transaction).
 * One string, to run as it is (`psql -f`, a migration tool, or `client.query`).
 */
export function installSql(storage: DurableStorage): string {
  const { schema, messages, meta, lockKey } = names(storage)
  const index = (suffix: string): string => quoteIdentifier(`${storage.table}_${suffix}`)
  return `BEGIN;
SELECT pg_catalog.pg_advisory_xact_lock(${lockKey});
CREATE SCHEMA IF NOT EXISTS ${schema};
CREATE TABLE IF NOT EXISTS ${messages} (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  xid xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
  channel text NOT NULL,
  payload text NOT NULL,
  pid integer NOT NULL DEFAULT pg_catalog.pg_backend_pid(),
  sent_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);
CREATE INDEX IF NOT EXISTS ${index('channel_xid_id')} ON ${messages} (channel, xid, id);
CREATE INDEX IF NOT EXISTS ${index('sent_at')} ON ${messages} USING brin (sent_at);
CREATE TABLE IF NOT EXISTS ${meta} (key text PRIMARY KEY, value text NOT NULL);
INSERT INTO ${meta} (key, value) VALUES ('version', '${STORAGE_VERSION}') ON CONFLICT (key) DO NOTHING;
COMMIT;
`
}

/**
 * Stores one message and wakes the listeners, in one statement (so in one transaction: the
 * caller's, when it runs inside one). The NOTIFY carries the message's id and its transaction id,
 * and the payload itself when the whole fits in a notification; listeners read the table anyway,
 * so a wake-up is all it has to be. Parameters: channel, payload. Returns the message's id.
 */
export function publishStatement(storage: DurableStorage, channel: string, payload: string): Statement {
  const { messages } = names(storage)
  return {
    text: `WITH m AS (INSERT INTO ${messages} (channel, payload) VALUES ($1, $2) RETURNING id, xid, channel, payload)
SELECT m.id::text AS id, ${WAKE_UP} ${WAKE_UP_FROM}`,
    values: [channel, payload],
  }
}

/** The NOTIFY of each stored message `m`: its id and transaction id, and the payload when it all fits. */
const WAKE_UP = 'pg_catalog.pg_notify(m.channel, CASE WHEN pg_catalog.octet_length(w.whole) < 8000 THEN w.whole ELSE w.bare END)'
const WAKE_UP_FROM = `FROM m, LATERAL (SELECT pg_catalog.json_build_object('i', m.id::text, 'x', m.xid::text, 'p', m.payload)::text AS whole,
                        pg_catalog.json_build_object('i', m.id::text, 'x', m.xid::text)::text AS bare) AS w`

/**
 * Several messages stored and announced in one statement (one transaction, one commit), in array
 * order: ids are drawn in that order. The channels and payloads travel as two binary `text[]`
 * parameters (no escaping on either side).
 */
export function publishManyStatement(
  storage: DurableStorage,
  channels: readonly string[],
  payloads: readonly string[],
): Statement {
  const { messages } = names(storage)
  return {
    text: `WITH input AS (
  SELECT i.channel, i.payload, i.o
  FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.text[]), pg_catalog.unnest($2::pg_catalog.text[])) WITH ORDINALITY AS i(channel, payload, o)
), m AS (INSERT INTO ${messages} (channel, payload) SELECT channel, payload FROM input ORDER BY o RETURNING id, xid, channel, payload)
SELECT count(${WAKE_UP}) ${WAKE_UP_FROM}`,
    values: [textArray(channels), textArray(payloads)],
  }
}

/** How durable messages of one table are sent (the hub batches them like notifications). */
export function durableNotifyKind(storage: DurableStorage): NotifyKind {
  return {
    one: (channel, payload) => publishStatement(storage, channel, payload),
    many: (channels, payloads) => publishManyStatement(storage, channels, payloads),
    folds: false,
  }
}

/** Most messages one read returns; a fuller interval is read in pages. */
export const READ_PAGE = 500

/**
 * What a listener has not seen on a channel: the messages of every transaction that is visible in
 * the statement's own snapshot (`cur`, or the pinned one of a batch read in pages) and was not
 * visible in the listener's previous snapshot (`prev`), in (transaction id, message id) order.
 * Every committed transaction is visible in exactly one (prev, cur] interval, so consecutive reads
 * never skip a message and never return one twice, whatever order transactions commit in.
 * Always returns at least one row (the snapshot), with null message columns when there is nothing.
 * Columns: cur, id, xid, payload, pid, sent_at (epoch milliseconds).
 */
export function readStatement(
  storage: DurableStorage,
  channel: string,
  prev: string,
  page: { readonly cur: string; readonly xid: string; readonly id: string } | undefined,
): Statement {
  const { messages } = names(storage)
  // Not visible in prev means: began at or after prev's xmax, or was running at prev (its xip,
  // the third field of the snapshot's text). Each arm is a probe of the (channel, xid, id) index in
  // index order, so the merge stops after a page however large the table has grown; with no
  // transaction running at prev (the common case) there is one arm.
  const running = prev.split(':')[2] ?? ''
  const arm = (which: string): string => `SELECT t.id, t.xid, t.payload, t.pid, t.sent_at FROM ${messages} AS t, s
    WHERE t.channel = $1 AND ${which}
      AND pg_catalog.pg_visible_in_snapshot(t.xid, s.cur)
      AND ($4::xid8 IS NULL OR (t.xid, t.id) > ($4::xid8, $5::bigint))`
  const arms =
    running === ''
      ? `(${arm('t.xid >= pg_catalog.pg_snapshot_xmax($2::pg_snapshot)')})`
      : `(${arm('t.xid >= pg_catalog.pg_snapshot_xmax($2::pg_snapshot)')})
  UNION ALL
  (${arm('t.xid = ANY ($6::xid8[])')})`
  return {
    text: `WITH s AS (SELECT coalesce($3::pg_snapshot, pg_catalog.pg_current_snapshot()) AS cur)
SELECT s.cur::text, m.id::text, m.xid::text, m.payload, m.pid::text,
       (pg_catalog.date_part('epoch', m.sent_at) * 1000)::bigint::text
FROM s LEFT JOIN LATERAL (
  ${arms}
  ORDER BY xid, id
  LIMIT ${READ_PAGE}
) AS m ON true`,
    values: [channel, prev, page?.cur ?? null, page?.xid ?? null, page?.id ?? null, ...(running === '' ? [] : [`{${running}}`])],
  }
}

/** The snapshot a new subscription starts from ("only what commits from now on"). */
export const CURRENT_SNAPSHOT: Statement = { text: 'SELECT pg_catalog.pg_current_snapshot()::text' }

/**
 * Whether a stored cursor's snapshot still finds everything it has not seen: false when pruning
 * deleted a message of a transaction the snapshot did not see yet.
 */
export function cursorValidStatement(storage: DurableStorage, prev: string): Statement {
  return {
    text: `SELECT coalesce((SELECT value::xid8 < pg_catalog.pg_snapshot_xmin($1::pg_snapshot) FROM ${names(storage).meta} WHERE key = 'pruned_xid'), true)::text`,
    values: [prev],
  }
}

/**
 * One round of pruning: deletes up to `batch` messages older than `maxAgeMs` (when given) or beyond
 * the newest `maxPerChannel` of their channel (when given), under an advisory lock taken with
 * `try`, so many processes may prune at once and all but one return at once. Records the highest
 * transaction id it deleted, so an expired cursor is detected rather than silently skipping.
 * Returns how many it deleted, or -1 when another process held the lock.
 */
export function pruneStatement(
  storage: DurableStorage,
  limits: { readonly maxAgeMs: number | undefined; readonly maxPerChannel: number | undefined },
  batch: number,
): Statement {
  const { messages, meta, lockKey } = names(storage)
  return {
    text: `WITH lock AS (SELECT pg_catalog.pg_try_advisory_xact_lock(${lockKey}) AS got),
cut AS (
  SELECT c.channel, (SELECT n.id FROM ${messages} AS n WHERE n.channel = c.channel ORDER BY n.id DESC OFFSET $2::bigint LIMIT 1) AS upto
  FROM (SELECT DISTINCT channel FROM ${messages} WHERE $2::bigint IS NOT NULL AND (SELECT got FROM lock)) AS c
),
doomed AS (
  SELECT t.id FROM ${messages} AS t LEFT JOIN cut ON cut.channel = t.channel
  WHERE (SELECT got FROM lock)
    AND (($1::bigint IS NOT NULL AND t.sent_at < pg_catalog.clock_timestamp() - $1::bigint * interval '1 millisecond')
      OR t.id <= cut.upto)
  ORDER BY t.id
  LIMIT $3
),
gone AS (DELETE FROM ${messages} WHERE id IN (SELECT id FROM doomed) RETURNING xid),
top AS (SELECT xid FROM gone ORDER BY xid DESC LIMIT 1),
mark AS (
  INSERT INTO ${meta} (key, value) SELECT 'pruned_xid', xid::text FROM top
  ON CONFLICT (key) DO UPDATE SET value = GREATEST(${meta}.value::xid8, excluded.value::xid8)::text
)
SELECT CASE WHEN (SELECT got FROM lock) THEN (SELECT count(*) FROM gone) ELSE -1 END::text`,
    values: [
      limits.maxAgeMs === undefined ? null : String(Math.floor(limits.maxAgeMs)),
      limits.maxPerChannel === undefined ? null : String(Math.floor(limits.maxPerChannel)),
      String(batch),
    ],
  }
}
