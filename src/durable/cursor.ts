/**
 * A cursor says where a listener is in a durable channel: the snapshot its reads started from
 * (`prev`), the snapshot of the batch the message came in (`cur`), and the message's place in that
 * batch (its transaction id and id). Resuming from it finishes that batch after the message, then
 * goes on from `cur`: nothing committed later is skipped, whatever order transactions commit in.
 * Opaque to users: store it as text, pass it back as it was.
 */

export interface Position {
  /** The snapshot everything up to which was read (pg_snapshot text). */
  readonly prev: string
  /** Inside a batch: its snapshot and the last message taken from it. */
  readonly page?: { readonly cur: string; readonly xid: string; readonly id: string } | undefined
}

const PREFIX = 'tpi1'
const SNAPSHOT = /^\d+:\d+:(\d+(,\d+)*)?$/
const NUMBER = /^\d+$/

export function encodeCursor(position: Position): string {
  const { prev, page } = position
  return page === undefined ? `${PREFIX}|${prev}` : `${PREFIX}|${prev}|${page.cur}|${page.xid}|${page.id}`
}

/** The position of a cursor, or undefined when it is not one of ours. */
export function decodeCursor(cursor: string): Position | undefined {
  const parts = cursor.split('|')
  if (parts[0] !== PREFIX) return undefined
  const [, prev, cur, xid, id] = parts
  if (prev === undefined || !SNAPSHOT.test(prev)) return undefined
  if (parts.length === 2) return { prev }
  if (parts.length !== 5 || cur === undefined || xid === undefined || id === undefined) return undefined
  if (!SNAPSHOT.test(cur) || !NUMBER.test(xid) || !NUMBER.test(id)) return undefined
  return { prev, page: { cur, xid, id } }
}
