// Every SQL statement the library sends. Values always travel as bind parameters; identifiers are
// quoted by quoteIdentifier (client.ts), the only place SQL text is built from a name.

/** Schema-qualified: a pg_notify earlier on the user's search_path must not be called instead. */
export const NOTIFY_SQL = 'SELECT pg_catalog.pg_notify($1, $2)'

/**
 * Many notifications in one statement, in array order, from one JSON parameter `[[channel, payload], ...]`
 * (one row back, not one per notification).
 */
export const NOTIFY_MANY_SQL =
  'SELECT count(pg_catalog.pg_notify(n->>0, n->>1)) FROM pg_catalog.json_array_elements($1::json) AS n'
