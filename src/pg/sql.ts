// Every SQL statement the library sends. Values always travel as bind parameters; identifiers are
// quoted by quoteIdentifier (client.ts), the only place SQL text is built from a name.

/** Schema-qualified: a pg_notify earlier on the user's search_path must not be called instead. */
export const NOTIFY_SQL = 'SELECT pg_catalog.pg_notify($1, $2)'

/** Many notifications in one statement, in array order. */
export const NOTIFY_MANY_SQL =
  'SELECT pg_catalog.pg_notify(c, p) FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(c, p, n) ORDER BY n'
