// The durable reader's logic without a database: where a cursor resumes, paging through a large
// interval with a pinned snapshot, coalescing wake-ups into one more read, and the start (after
// the LISTEN, from the current snapshot). The SQL itself runs against PostgreSQL in test/durable.
import { describe, expect, it } from 'vitest'
import { decodeCursor, encodeCursor } from '../../src/durable/cursor.js'
import { DurableReader, type StoredMessage } from '../../src/durable/reader.js'
import { READ_PAGE } from '../../src/pg/durable-sql.js'
import type { PgIpcError } from '../../src/index.js'
import type { Statement } from '../../src/pg/sql.js'

type Row = readonly (string | null)[]

/** A host whose queries the test answers, in order. */
function host() {
  const queries: Statement[] = []
  const answers: ((statement: Statement) => Row[])[] = []
  const delivered: StoredMessage[] = []
  const failures: PgIpcError[] = []
  let listened = 0
  return {
    queries,
    delivered,
    failures,
    get listened(): number {
      return listened
    },
    answer(next: (statement: Statement) => Row[]): void {
      answers.push(next)
    },
    reader: {
      query: (statement: Statement) => {
        queries.push(statement)
        const next = answers.shift()
        return next === undefined
          ? Promise.reject(new Error(`unexpected query ${statement.text.slice(0, 40)}`))
          : Promise.resolve(next(statement))
      },
      listening: () => {
        listened++
        return Promise.resolve()
      },
      deliver: (message: StoredMessage) => void delivered.push(message),
      fail: (error: PgIpcError) => void failures.push(error),
    },
  }
}

const storage = { schema: 'typed_pg_ipc', table: 'messages' }
const message = (cur: string, id: number, xid = 700): Row => [cur, String(id), String(xid), `{"n":${id}}`, '42', '1700000000000']
const empty = (cur: string): Row => [cur, null, null, null, null, null]

describe('cursors', () => {
  it('round-trip a position, with or without a page, and refuse anything else', () => {
    expect(decodeCursor(encodeCursor({ prev: '10:12:10' }))).toEqual({ prev: '10:12:10' })
    const page = { cur: '12:15:', xid: '11', id: '7' }
    expect(decodeCursor(encodeCursor({ prev: '10:12:10', page }))).toEqual({ prev: '10:12:10', page })
    for (const bad of ['', 'tpi1', 'tpi1|x', 'tpi2|1:1:', 'tpi1|1:1:|2:2:|a|1', 'tpi1|1:1:|2:2:|1'])
      expect(decodeCursor(bad)).toBeUndefined()
  })
})

describe('the reader', () => {
  it('starts after the LISTEN, from the current snapshot; then reads from it and moves on to the new one', async () => {
    const h = host()
    h.answer(() => [['100:100:']]) // the start snapshot
    h.answer(() => [message('100:105:', 1, 101), message('100:105:', 2, 102)])
    const reader = new DurableReader(h.reader, storage, 'c', undefined, 60_000)
    await reader.read()
    expect(h.listened).toBe(1)
    expect(h.queries[1]?.values?.slice(0, 3)).toEqual(['c', '100:100:', null]) // prev, no pinned snapshot
    expect(h.delivered.map((m) => m.id)).toEqual(['1', '2'])
    expect(h.delivered[1]?.cursor).toBe('tpi1|100:100:|100:105:|102|2')
    h.answer(() => [empty('105:106:')])
    await reader.read()
    expect(h.queries[2]?.values?.[1]).toBe('100:105:') // the next read starts where the last one ended
    reader.close()
  })

  it('reads a large interval in pages at its own snapshot, then continues from it', async () => {
    const h = host()
    h.answer(() => [['1:1:']])
    h.answer(() => [...Array(READ_PAGE).keys()].map((n) => message('1:9:', n + 1)))
    h.answer(() => [message('1:9:', READ_PAGE + 1)])
    const reader = new DurableReader(h.reader, storage, 'c', undefined, 60_000)
    await reader.read()
    expect(h.delivered).toHaveLength(READ_PAGE + 1)
    // The second page: same prev, the pinned snapshot, after the last message of the first page.
    expect(h.queries[2]?.values?.slice(0, 5)).toEqual(['c', '1:1:', '1:9:', '700', String(READ_PAGE)])
    h.answer(() => [empty('9:9:')])
    await reader.read()
    expect(h.queries[3]?.values?.slice(1, 3)).toEqual(['1:9:', null]) // from the batch's snapshot, to now
    reader.close()
  })

  it('resumes from a cursor: checks it is not expired, finishes its batch, then reads on to now', async () => {
    const h = host()
    h.answer(() => [['true']]) // the cursor is still valid
    h.answer(() => [message('5:9:5', 8, 5)]) // the rest of the batch, at its pinned snapshot
    h.answer(() => [message('9:12:', 10, 10)]) // then from its snapshot to now
    const from = decodeCursor('tpi1|5:5:|5:9:5|7|3')
    const reader = new DurableReader(h.reader, storage, 'c', from, 60_000)
    await reader.read()
    expect(h.queries[1]?.values?.slice(0, 5)).toEqual(['c', '5:5:', '5:9:5', '7', '3'])
    expect(h.queries[2]?.values?.slice(0, 3)).toEqual(['c', '5:9:5', null])
    expect(h.delivered.map((m) => m.id)).toEqual(['8', '10'])
    reader.close()
  })

  it('an expired cursor is reported, and nothing is delivered', async () => {
    const h = host()
    h.answer(() => [['false']])
    const reader = new DurableReader(h.reader, storage, 'c', decodeCursor('tpi1|5:5:'), 60_000)
    await reader.read()
    expect(h.failures.map((error) => error.code)).toEqual(['ERR_PG_IPC_CURSOR_EXPIRED'])
    expect(h.delivered).toEqual([])
    reader.close()
  })

  it('wake-ups during a read ask for one more read, not one each', async () => {
    const h = host()
    let release: (() => void) | undefined
    h.answer(() => [['1:1:']])
    h.answer(() => [message('1:2:', 1)])
    h.answer(() => [empty('2:3:')])
    const reader = new DurableReader(
      {
        ...h.reader,
        query: async (statement) => {
          if (h.queries.length === 1) await new Promise<void>((resolve) => (release = resolve))
          return h.reader.query(statement)
        },
      },
      storage,
      'c',
      undefined,
      60_000,
    )
    const reading = reader.read()
    for (let n = 0; n < 10; n++) reader.wake()
    await new Promise((resolve) => setImmediate(resolve))
    release?.()
    await reading
    expect(h.queries).toHaveLength(3) // start, the read, and one more for all ten wake-ups
    reader.close()
  })
})
