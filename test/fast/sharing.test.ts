// The sharing rule (docs/sharing.md), checked on the wire: a statement of the library's is never
// sent while pg runs or queues a query of the user's, nor while the last ReadyForQuery said 'T' or
// 'E'; it goes right after the user's COMMIT/ROLLBACK, and nothing of the library's is ever sent
// between a user's BEGIN and its end. Every session here answers only when the test says so.
import { once } from 'node:events'
import type pg from 'pg'
import { beforeEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { defineChannels, pgIPC, type PgIPC } from '../../src/index.js'
import { type FakeConnection, FakeServer, sessionOf } from './support/fake-pg.js'
import { errorsOf, track, turn } from './support/helpers.js'

let server: FakeServer
let client: pg.Client
let session: FakeConnection

beforeEach(async () => {
  server = new FakeServer()
  server.autoReply = false
  client = await server.connected()
  session = sessionOf(client)
})

/** A core instance whose errors fail the test at the end rather than crash it. */
function core(): { ipc: PgIPC; errors: unknown[] } {
  const ipc = pgIPC(client)
  return { ipc, errors: errorsOf(ipc) }
}

describe('the sharing rule', () => {
  it('waits while pg runs a user query, and goes right after it', async () => {
    const { ipc, errors } = core()
    const user = client.query('SELECT 42')
    ipc.notify('c', 'x')
    await turn()
    expect(session.rounds()).toEqual([['SELECT 42']])
    session.reply() // the user's answer: pg is idle again ('drain'), so the exchange goes at once
    expect(session.rounds()).toEqual([['SELECT 42'], ['NOTIFY c:x']])
    await user
    const sent = once(ipc, 'notify')
    session.reply()
    expect(await sent).toEqual(['c', 'x'])
    expect(errors).toEqual([])
  })

  it('sends nothing between BEGIN and COMMIT, in either protocol; goes after the COMMIT', async () => {
    const { ipc, errors } = core()
    const begun = client.query('BEGIN')
    session.reply()
    await begun
    ipc.on('l', () => {})
    ipc.notify('c', 'x')
    const usage = track(ipc.queueUsage())
    await turn()
    const insert = client.query('INSERT INTO t VALUES ($1)', [1]) // extended protocol, in the block
    await turn()
    expect(session.rounds()).toEqual([['BEGIN'], ['INSERT INTO t VALUES ($1)']])
    session.reply()
    await insert
    await turn()
    expect(session.rounds()).toHaveLength(2) // still inside the block ('T'): nothing
    const commit = client.query('COMMIT')
    await turn()
    expect(session.rounds()).toHaveLength(3)
    session.reply()
    await commit
    // Right after the COMMIT's ReadyForQuery('I'): one exchange with all three, in call order.
    expect(session.rounds()[3]).toEqual([
      'BEGIN',
      'LISTEN "l"',
      'COMMIT',
      'BEGIN',
      'NOTIFY c:x',
      'COMMIT',
      'BEGIN',
      'SELECT pg_catalog.pg_notification_queue_usage()',
      'COMMIT',
    ])
    session.reply()
    expect(session.executed.at(-9)).toMatchObject({ text: 'BEGIN', status: 'I' })
    await ipc.listening('l')
    await turn()
    expect(usage.state).toBe('fulfilled')
    expect(errors).toEqual([])
  })

  it('sends nothing inside a failed block (E) either, and goes after the ROLLBACK', async () => {
    const { ipc, errors } = core()
    server.rule = ({ text }) => (text.startsWith('INSERT') ? { error: { code: '23505', message: 'duplicate key' } } : undefined)
    const begun = client.query('BEGIN')
    session.reply()
    await begun
    const insert = client.query('INSERT INTO t VALUES (1)')
    session.reply()
    await expect(insert).rejects.toMatchObject({ code: '23505' })
    expect(session.status).toBe('E')
    ipc.notify('c', 'x')
    await turn()
    expect(session.rounds()).toHaveLength(2)
    const rollback = client.query('ROLLBACK')
    session.reply()
    await rollback
    expect(session.rounds()).toEqual([['BEGIN'], ['INSERT INTO t VALUES (1)'], ['ROLLBACK'], ['NOTIFY c:x']])
    const sent = once(ipc, 'notify')
    session.reply()
    await sent
    expect(session.executed.at(-1)).toMatchObject({ text: 'SELECT pg_catalog.pg_notify($1, $2)', status: 'I' })
    expect(errors).toEqual([])
  })

  it('a user query issued while an exchange is on the wire runs right after it, before later library work', async () => {
    const { ipc } = core()
    ipc.notify('c', 'x')
    expect(session.rounds()).toEqual([['NOTIFY c:x']]) // pg was idle: sent within the call
    const user = client.query('SELECT 43') // pg queues it behind the exchange
    ipc.notify('c', 'y') // the library's next work waits for pg's queue to empty
    await turn()
    expect(session.rounds()).toHaveLength(1)
    session.reply()
    expect(session.rounds()).toEqual([['NOTIFY c:x'], ['SELECT 43']])
    session.reply()
    await user
    expect(session.executed.at(-1)).toMatchObject({ text: 'SELECT 43', status: 'I' })
    await turn() // x was delivered: y waits until the microtasks of those who awaited x have run
    expect(session.rounds()).toEqual([['NOTIFY c:x'], ['SELECT 43'], ['NOTIFY c:y']])
  })

  it('the typed layer keeps the rule too: notify() settles only after the user COMMITs', async () => {
    const channels = defineChannels({ orders: z.object({ id: z.number() }) })
    const ipc = channels.attach(client)
    errorsOf(ipc)
    const begun = client.query('BEGIN')
    session.reply()
    await begun
    const sent = track(ipc.notify('orders', { id: 1 }))
    await turn()
    expect(session.rounds()).toEqual([['BEGIN']])
    const commit = client.query('COMMIT')
    session.reply()
    await commit
    expect(session.rounds()[2]).toEqual(['NOTIFY orders:{"id":1}'])
    expect(sent.state).toBe('pending')
    session.reply()
    await turn()
    expect(sent.state).toBe('fulfilled')
    expect(server.delivered).toEqual([{ channel: 'orders', payload: '{"id":1}', processId: session.pid }])
  })

  it('end() inside the user transaction completes after the COMMIT (its UNLISTEN waits)', async () => {
    const { ipc } = core()
    ipc.on('l', () => {})
    session.reply()
    await ipc.listening('l')
    const begun = client.query('BEGIN')
    session.reply()
    await begun
    const ended = track(ipc.end())
    await turn()
    expect(session.rounds()).toEqual([['LISTEN "l"'], ['BEGIN']])
    const commit = client.query('COMMIT')
    session.reply()
    await commit
    expect(session.rounds()[3]).toEqual(['UNLISTEN "l"'])
    expect(ended.state).toBe('pending')
    session.reply()
    await turn()
    expect(ended.state).toBe('fulfilled')
    expect(session.listening.size).toBe(0)
  })
})
