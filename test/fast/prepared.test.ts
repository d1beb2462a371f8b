// The notification statements are named prepared statements: parsed once per connection (a Close of
// the name first), then Bind/Execute only. A session that lost them (the user's DEALLOCATE ALL or
// DISCARD ALL) answers the Bind with 26000 before anything ran: the notifications are sent again,
// re-prepared, delivered once, and nobody hears of it.
import type pg from 'pg'
import { beforeEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { defineChannels, pgIPC, QueryFailedError, type PgIPC } from '../../src/index.js'
import { FakeServer, sessionOf, type FakeConnection, type Frontend } from './support/fake-pg.js'
import { errorsOf, track, turn } from './support/helpers.js'

const NOTIFY_NAME = 'typed_pg_ipc.notify.1'
const NOTIFY_MANY_NAME = 'typed_pg_ipc.notify_many.1'

let server: FakeServer
let client: pg.Client
let session: FakeConnection
let ipc: PgIPC
let errors: unknown[]

beforeEach(async () => {
  server = new FakeServer()
  server.autoReply = false
  client = await server.connected()
  session = sessionOf(client)
  ipc = pgIPC(client)
  errors = errorsOf(ipc)
})

/** Answers every round trip until the library has nothing left on the wire. */
async function answerAll(): Promise<void> {
  while (session.waiting > 0) {
    session.reply()
    await turn()
  }
}

/** The messages of a unit, with the statement names of Parse, Bind and Close. */
function shape(unit: readonly Frontend[] | undefined): string[] {
  return (unit ?? []).map((message) =>
    message.type === 'parse' || message.type === 'close'
      ? `${message.type} ${message.name}`
      : message.type === 'bind'
        ? `bind ${message.statement}`
        : message.type,
  )
}

/** Holds pg busy with a user query while `queue` runs, then answers it: the queued work goes out together. */
async function whileBusy(queue: () => void): Promise<void> {
  const user = client.query('SELECT 40')
  queue()
  session.reply()
  await user
}

describe('named prepared statements', () => {
  it('one notification: parsed on first use, recorded where pg records its own, then bound by name', async () => {
    ipc.notify('c', 'x')
    expect(shape(session.units.at(-1))).toEqual([
      `close ${NOTIFY_NAME}`,
      `parse ${NOTIFY_NAME}`,
      `bind ${NOTIFY_NAME}`,
      'execute',
      'sync',
    ])
    const connection = (client as unknown as { connection: { parsedStatements: Record<string, string> } }).connection
    expect(connection.parsedStatements[NOTIFY_NAME]).toBeUndefined() // not before the server ran it
    await answerAll()
    expect(connection.parsedStatements[NOTIFY_NAME]).toBe('SELECT pg_catalog.pg_notify($1, $2)')
    for (const payload of ['y', 'z']) {
      ipc.notify('c', payload)
      expect(shape(session.units.at(-1))).toEqual([`bind ${NOTIFY_NAME}`, 'execute', 'sync'])
      await answerAll()
    }
    expect(server.delivered.map((message) => message.payload)).toEqual(['x', 'y', 'z'])
    expect(errors).toEqual([])
  })

  it('many notifications in one statement: their own named statement, binary text arrays', async () => {
    for (let round = 0; round < 2; round++) {
      await whileBusy(() => {
        for (const payload of ['1', '2', '3']) ipc.notify('c', `${round}:${payload}`)
      })
      expect(session.rounds().at(-1)).toEqual([`NOTIFY c:${round}:1,c:${round}:2,c:${round}:3`])
      await answerAll()
    }
    const units = session.units.filter((unit) => unit.some((message) => message.type === 'bind'))
    expect(shape(units[0])).toEqual([
      `close ${NOTIFY_MANY_NAME}`,
      `parse ${NOTIFY_MANY_NAME}`,
      `bind ${NOTIFY_MANY_NAME}`,
      'execute',
      'sync',
    ])
    expect(shape(units[1])).toEqual([`bind ${NOTIFY_MANY_NAME}`, 'execute', 'sync'])
    expect(server.delivered.map((message) => message.payload)).toEqual(['0:1', '0:2', '0:3', '1:1', '1:2', '1:3'])
  })

  it("after the user's DEALLOCATE ALL: the Bind fails with 26000, nothing ran; re-prepared, resent, delivered once, no error", async () => {
    const first = track(new Promise((resolve) => ipc.once('notify', resolve)))
    ipc.notify('c', 'before')
    await answerAll()
    await first.settled
    const deallocate = client.query('DEALLOCATE ALL')
    session.reply()
    await deallocate
    expect(session.prepared.has(NOTIFY_NAME)).toBe(false)

    const sent = new Promise((resolve) => ipc.once('notify', (_channel, payload) => resolve(payload)))
    ipc.notify('c', 'after')
    expect(shape(session.units.at(-1))).toEqual([`bind ${NOTIFY_NAME}`, 'execute', 'sync']) // pg's record says parsed
    session.reply() // 26000
    await turn()
    expect(shape(session.units.at(-1))).toEqual([
      `close ${NOTIFY_NAME}`,
      `parse ${NOTIFY_NAME}`,
      `bind ${NOTIFY_NAME}`,
      'execute',
      'sync',
    ])
    await answerAll()
    expect(await sent).toBe('after')
    expect(server.delivered.map((message) => message.payload)).toEqual(['before', 'after'])
    expect(errors).toEqual([])
    expect(session.status).toBe('I')
  })

  it('lost inside a block (BEGIN/statement/COMMIT triples): what committed before stays, the rest is resent in order', async () => {
    const typed = defineChannels({ c: z.string(), d: z.string() }).attach(client)
    errorsOf(typed)
    const warmUp = [track(typed.notify('c', 'a')), track(typed.notify('d', 'b'))]
    await answerAll()
    await Promise.all(warmUp.map((outcome) => outcome.settled))
    const deallocate = client.query('DISCARD ALL')
    session.reply()
    await deallocate
    // A repeat of "x" starts a second group: two triples in one exchange, each a named statement.
    const outcomes: ReturnType<typeof track>[] = []
    await whileBusy(() => {
      for (const payload of ['x', 'x', 'y']) outcomes.push(track(typed.notify('c', payload)))
    })
    expect(session.rounds().at(-1)).toEqual(['BEGIN', 'NOTIFY c:"x"', 'COMMIT', 'BEGIN', 'NOTIFY c:"x",c:"y"', 'COMMIT'])
    session.reply() // the first Bind fails: 26000, the block is failed
    expect(session.rounds().at(-1)).toEqual(['ROLLBACK'])
    await answerAll()
    await Promise.all(outcomes.map((outcome) => outcome.settled))
    expect(outcomes.map((outcome) => outcome.state)).toEqual(['fulfilled', 'fulfilled', 'fulfilled'])
    expect(server.delivered.map((message) => message.payload)).toEqual(['"a"', '"b"', '"x"', '"x"', '"y"'])
    expect(session.status).toBe('I')
  })

  it('a notification the server rejects in the exchange that parsed: a QueryFailedError; the next exchange parses again without a clash', async () => {
    server.rule = ({ text, values }) =>
      text.includes('pg_notify') && values[1] === 'bad'
        ? { error: { code: '22023', message: 'payload string too long' } }
        : undefined
    ipc.notify('c', 'bad')
    await answerAll()
    expect(errors).toHaveLength(1)
    expect(errors[0]).toBeInstanceOf(QueryFailedError)
    // The server kept the statement (its Parse succeeded); the library could not know, so it closes it first.
    expect(session.prepared.has(NOTIFY_NAME)).toBe(true)
    ipc.notify('c', 'good')
    expect(shape(session.units.at(-1))).toEqual([
      `close ${NOTIFY_NAME}`,
      `parse ${NOTIFY_NAME}`,
      `bind ${NOTIFY_NAME}`,
      'execute',
      'sync',
    ])
    await answerAll()
    expect(server.delivered.map((message) => message.payload)).toEqual(['good'])
    expect(errors).toHaveLength(1)
  })

  it('a new connection starts with nothing prepared', async () => {
    ipc.notify('c', 'x')
    await answerAll()
    const other = await server.connected()
    const otherSession = sessionOf(other)
    const second = pgIPC(other)
    errorsOf(second)
    second.notify('c', 'y')
    expect(shape(otherSession.units.at(-1))[1]).toBe(`parse ${NOTIFY_NAME}`)
    otherSession.reply()
    await turn()
    expect(server.delivered.map((message) => message.payload)).toEqual(['x', 'y'])
  })
})
