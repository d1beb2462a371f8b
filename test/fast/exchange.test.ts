// What an exchange does when the server says no, and when pg's own query_timeout fires:
// - a statement failing inside the exchange's own BEGIN leaves the session in a failed block ('E');
//   the exchange sends ROLLBACK + Sync before pg runs the user's next query, so that query runs on
//   an idle session; the failed group is then resent one notification at a time, order kept;
// - pg's client-side query_timeout proves nothing about statements on the wire: the exchange is
//   neither failed nor resent, the server's real answer settles it, and no timer is left behind.
import { once } from 'node:events'
import type pg from 'pg'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { z } from 'zod'
import { defineChannels, pgIPC, QueryFailedError } from '../../src/index.js'
import { FakeServer, sessionOf, type FakeConnection } from './support/fake-pg.js'
import { errorsOf, track, turn } from './support/helpers.js'

async function manualClient(
  config: pg.ClientConfig = {},
): Promise<{ server: FakeServer; client: pg.Client; session: FakeConnection }> {
  const server = new FakeServer()
  server.autoReply = false
  const client = await server.connected(config)
  return { server, client, session: sessionOf(client) }
}

/** The server rejects any notification whose payload contains "bad" (as it would a character the database encoding lacks). */
function rejectBad(server: FakeServer): void {
  server.rule = ({ text, values }) =>
    text.includes('pg_notify') && String(values[1] ?? values[0]).includes('bad')
      ? { error: { code: '22P05', message: 'character with byte sequence 0xe2 0x9c 0x93 has no equivalent' } }
      : undefined
}

describe('a statement failing inside the exchange', () => {
  it('ROLLBACK + Sync go before the user query pg holds, which then runs on an idle session; the group is resent one by one', async () => {
    const { server, client, session } = await manualClient()
    rejectBad(server)
    const channels = defineChannels({ c: z.string() })
    const ipc = channels.attach(client)
    errorsOf(ipc)
    const held = client.query('SELECT 40')
    // Two groups: the repeat of "a" starts the second one, so they travel in BEGIN/COMMIT triples.
    const outcomes = ['a', 'a', 'bad', 'b'].map((text) => track(ipc.notify('c', text)))
    session.reply()
    await held
    expect(session.rounds()[1]).toEqual(['BEGIN', 'NOTIFY c:"a"', 'COMMIT', 'BEGIN', 'NOTIFY c:"a",c:"bad",c:"b"', 'COMMIT'])

    const user = client.query('SELECT 41') // pg holds it: the exchange is its active query
    await turn()
    expect(session.rounds()).toHaveLength(2)
    session.reply() // first group commits; the second fails; ReadyForQuery says 'E'
    expect(session.status).toBe('E')
    expect(session.rounds()[2]).toEqual(['ROLLBACK']) // written before pg could run the user query
    session.reply()
    expect(session.rounds()[3]).toEqual(['SELECT 41'])
    session.reply()
    await user
    expect(session.executed.find((statement) => statement.text === 'SELECT 41')?.status).toBe('I')

    // Then the failed group again, one notification per transaction: only the bad one fails.
    expect(session.rounds()[4]).toEqual([
      'BEGIN',
      'NOTIFY c:"a"',
      'COMMIT',
      'BEGIN',
      'NOTIFY c:"bad"',
      'COMMIT',
      'BEGIN',
      'NOTIFY c:"b"',
      'COMMIT',
    ])
    session.reply()
    expect(session.rounds()[5]).toEqual(['ROLLBACK'])
    session.reply()
    expect(session.rounds()[6]).toEqual(['NOTIFY c:"b"']) // skipped after the failure: sent again, alone
    session.reply()
    await turn()
    expect(outcomes.map((outcome) => outcome.state)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled'])
    expect(outcomes[2]?.reason).toBeInstanceOf(QueryFailedError)
    expect(((outcomes[2]?.reason as QueryFailedError).cause as { code?: string }).code).toBe('22P05')
    expect(server.delivered.map((message) => message.payload)).toEqual(['"a"', '"a"', '"b"'])
    expect(session.status).toBe('I')
  })

  it('a LISTEN the server rejects fails alone: listening() rejects, the skipped LISTEN is sent again', async () => {
    const { server, client, session } = await manualClient()
    server.rule = ({ text }) => (text === 'LISTEN "bad"' ? { error: { code: '42501', message: 'permission denied' } } : undefined)
    const ipc = pgIPC(client)
    const errors = errorsOf(ipc)
    const held = client.query('SELECT 40')
    ipc.on('bad', () => {})
    ipc.on('good', () => {})
    const bad = track(ipc.listening('bad'))
    const good = track(ipc.listening('good'))
    session.reply()
    await held
    expect(session.rounds()[1]).toEqual(['BEGIN', 'LISTEN "bad"', 'COMMIT', 'BEGIN', 'LISTEN "good"', 'COMMIT'])
    session.reply()
    expect(session.rounds()[2]).toEqual(['ROLLBACK'])
    session.reply()
    expect(session.rounds()[3]).toEqual(['LISTEN "good"'])
    session.reply()
    await turn()
    expect(bad.state).toBe('rejected')
    expect(bad.reason).toBeInstanceOf(QueryFailedError)
    expect(good.state).toBe('fulfilled')
    expect([...session.listening]).toEqual(['good'])
    expect(errors.map((error) => error.code)).toEqual(['ERR_PG_IPC_QUERY_FAILED'])
  })

  it('a single statement failing needs no ROLLBACK (its implicit transaction is gone) and is not resent', async () => {
    const { server, client, session } = await manualClient()
    rejectBad(server)
    const ipc = pgIPC(client)
    const failed = once(ipc, 'error')
    ipc.notify('c', 'bad')
    session.reply()
    const [error] = (await failed) as [QueryFailedError]
    expect(error).toBeInstanceOf(QueryFailedError)
    expect(session.rounds()).toEqual([['NOTIFY c:bad']])
    expect(session.waiting).toBe(0)
  })
})

describe("pg's query_timeout", () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('firing while an exchange is on the wire neither fails nor resends it: the real answer settles it', async () => {
    vi.useFakeTimers()
    const { server, client, session } = await manualClient({ query_timeout: 1_000 })
    const ipc = pgIPC(client)
    const errors = errorsOf(ipc)
    ipc.notify('c', 'x')
    expect(session.rounds()).toEqual([['NOTIFY c:x']])
    expect(vi.getTimerCount()).toBe(1) // pg's read timer
    await vi.advanceTimersByTimeAsync(5_000)
    await turn()
    expect(errors).toEqual([])
    expect(session.rounds()).toEqual([['NOTIFY c:x']])
    // A user query meanwhile still waits for the exchange (pg keeps it as its active query).
    const user = client.query('SELECT 41')
    await turn()
    expect(session.rounds()).toHaveLength(1)
    const sent = once(ipc, 'notify')
    session.reply()
    expect(await sent).toEqual(['c', 'x'])
    expect(session.rounds()).toEqual([['NOTIFY c:x'], ['SELECT 41']])
    session.reply()
    await user
    expect(server.delivered).toHaveLength(1)
    expect(errors).toEqual([])
    expect(vi.getTimerCount()).toBe(0)
  })

  it("an answer before the timeout clears pg's timer", async () => {
    vi.useFakeTimers()
    const { client, session } = await manualClient({ query_timeout: 1_000 })
    const ipc = pgIPC(client)
    errorsOf(ipc)
    ipc.notify('c', 'x')
    expect(vi.getTimerCount()).toBe(1)
    const sent = once(ipc, 'notify')
    session.reply()
    await sent
    expect(vi.getTimerCount()).toBe(0)
  })

  it('a timeout while an exchange is in a failed block still lets its ROLLBACK through before the user query', async () => {
    vi.useFakeTimers()
    const { server, client, session } = await manualClient({ query_timeout: 1_000 })
    rejectBad(server)
    const ipc = pgIPC(client)
    const errors = errorsOf(ipc)
    const held = client.query('SELECT 40')
    ipc.notify('c', 'a')
    ipc.notify('c', 'a')
    ipc.notify('c', 'bad')
    session.reply()
    await held
    const user = client.query({ text: 'SELECT 41', query_timeout: 60_000 } as pg.QueryConfig) // the user's own query does not time out here
    session.reply() // ReadyForQuery('E'): ROLLBACK written
    expect(session.rounds()[2]).toEqual(['ROLLBACK'])
    await vi.advanceTimersByTimeAsync(5_000) // the exchange's query_timeout fires while ROLLBACK is out
    await turn()
    expect(session.rounds()).toHaveLength(3)
    session.reply()
    expect(session.rounds()[3]).toEqual(['SELECT 41'])
    session.reply()
    await user
    expect(session.executed.at(-1)).toMatchObject({ text: 'SELECT 41', status: 'I' })
    while (session.waiting > 0) {
      session.reply()
      await turn()
    }
    expect(errors.map((error) => error.code)).toEqual(['ERR_PG_IPC_QUERY_FAILED'])
    expect(server.delivered.map((message) => message.payload)).toEqual(['a', 'a'])
  })
})

describe('a commit that fails, and a session that ends, decide nothing on their own', () => {
  it('a lone statement commits at the Sync: a commit failure after its CommandComplete is a failure, not a delivery', async () => {
    const { server, client, session } = await manualClient()
    const channels = defineChannels({ c: z.string() })
    const ipc = channels.attach(client)
    errorsOf(ipc)
    server.commitError = { code: '54000', message: 'too many notifications in the NOTIFY queue' }
    const outcome = track(ipc.notify('c', 'x'))
    session.reply()
    await turn()
    expect(outcome.state).toBe('rejected')
    expect(outcome.reason).toBeInstanceOf(QueryFailedError)
    expect(server.delivered).toEqual([])
    expect(session.rounds()).toHaveLength(1) // not resent: a lone notification that failed is reported
    expect(session.status).toBe('I')
  })

  it('in a block, the COMMIT that fails marks its own group; the groups before it are delivered, the ones after it resent', async () => {
    const { server, client, session } = await manualClient()
    const channels = defineChannels({ c: z.string() })
    const ipc = channels.attach(client)
    errorsOf(ipc)
    const held = client.query('SELECT 40')
    const outcomes = ['a', 'a', 'a'].map((text) => track(ipc.notify('c', text)))
    session.reply()
    await held
    expect(session.rounds()[1]).toEqual([
      'BEGIN',
      'NOTIFY c:"a"',
      'COMMIT',
      'BEGIN',
      'NOTIFY c:"a"',
      'COMMIT',
      'BEGIN',
      'NOTIFY c:"a"',
      'COMMIT',
    ])
    // The first COMMIT goes through, the second fails (the queue was full for a moment).
    let commits = 0
    server.rule = ({ text }) => {
      if (text !== 'COMMIT' || ++commits !== 2) return undefined
      server.commitError = { code: '54000', message: 'too many notifications in the NOTIFY queue' }
      return undefined
    }
    session.reply()
    await turn()
    expect(session.status).toBe('I') // a failed COMMIT leaves no block open: no ROLLBACK needed
    server.rule = undefined
    session.reply() // the third group, resent alone
    await turn()
    expect(outcomes.map((outcome) => outcome.state)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
    expect(outcomes[1]?.reason).toBeInstanceOf(QueryFailedError)
    expect(server.delivered.map((message) => message.payload)).toEqual(['"a"', '"a"'])
  })

  it('a FATAL error (pg_terminate_backend) in the middle of an exchange: what was not confirmed has an unknown outcome, never resent', async () => {
    const { server, client, session } = await manualClient()
    const channels = defineChannels({ c: z.string() })
    const ipc = channels.attach(client)
    errorsOf(ipc)
    const held = client.query('SELECT 40')
    const outcomes = ['a', 'a', 'b'].map((text) => track(ipc.notify('c', text)))
    session.reply()
    await held
    let statements = 0
    server.rule = ({ text }) =>
      text.includes('pg_notify') && ++statements === 2
        ? { error: { code: '57P01', message: 'terminating connection due to administrator command', severity: 'FATAL' } }
        : undefined
    session.reply()
    await turn()
    expect(outcomes[0]?.state).toBe('fulfilled')
    expect(outcomes.slice(1).map((outcome) => (outcome.reason as Error | undefined)?.constructor.name)).toEqual([
      'NotifyOutcomeUnknownError',
      'NotifyOutcomeUnknownError',
    ])
    expect(server.delivered.map((message) => message.payload)).toEqual(['"a"'])
  })
})
