// How queued statements travel: one statement alone with no BEGIN; several as BEGIN/statement/COMMIT
// triples under one Sync; identical (channel, payload) pairs in separate transactions (PostgreSQL
// folds identical pairs inside one, and the fake server does too); and the caps per round trip.
// Work piles up while pg runs a user query the test holds; the test then lets it go.
import { once } from 'node:events'
import type pg from 'pg'
import { beforeEach, describe, expect, it } from 'vitest'
import { pgIPC, type PgIPC } from '../../src/index.js'
import { FakeConnection, FakeServer, readTextArray, sessionOf, type Frontend } from './support/fake-pg.js'
import { errorsOf, turn } from './support/helpers.js'

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

/** Holds pg busy with a user query while `queue` runs, then answers it: the queued work goes out. */
async function whileBusy(queue: () => void): Promise<void> {
  const user = client.query('SELECT 40')
  queue()
  session.reply()
  await user
}

/** Answers every round trip until the library has nothing left on the wire. */
async function answerAll(): Promise<void> {
  while (session.waiting > 0) {
    session.reply()
    await turn()
  }
}

const types = (unit: readonly Frontend[] | undefined): string[] => (unit ?? []).map((message) => message.type)

describe('batching', () => {
  it('one statement alone, no BEGIN: a named statement parsed once (Close/Parse/Bind/Execute/Sync), then Bind/Execute/Sync only', async () => {
    ipc.notify('c', 'x')
    expect(types(session.units.at(-1))).toEqual(['close', 'parse', 'bind', 'execute', 'sync'])
    expect(session.rounds()).toEqual([['NOTIFY c:x']])
    await answerAll()
    ipc.notify('c', 'y')
    expect(types(session.units.at(-1))).toEqual(['bind', 'execute', 'sync'])
    await answerAll()
    expect(session.rounds()).toEqual([['NOTIFY c:x'], ['NOTIFY c:y']])
    expect(server.delivered.map((message) => message.payload)).toEqual(['x', 'y'])
  })

  it('several: BEGIN/statement/COMMIT triples under one Sync, in call order', async () => {
    await whileBusy(() => {
      ipc.on('a', () => {})
      ipc.notify('c', '1')
      ipc.notify('c', '2')
      ipc.on('b', () => {})
    })
    expect(session.rounds().slice(1)).toEqual([
      ['BEGIN', 'LISTEN "a"', 'COMMIT', 'BEGIN', 'NOTIFY c:1,c:2', 'COMMIT', 'BEGIN', 'LISTEN "b"', 'COMMIT'],
    ])
    const unit = types(session.units.at(-1))
    expect(unit.filter((type) => type === 'sync')).toHaveLength(1)
    expect(unit.at(-1)).toBe('sync')
    await answerAll()
    expect(server.delivered.map((message) => message.payload)).toEqual(['1', '2'])
    expect([...session.listening].sort()).toEqual(['a', 'b'])
    expect(errors).toEqual([])
  })

  it('identical (channel, payload) pairs go in separate transactions, so each is delivered', async () => {
    let confirmed = 0
    ipc.on('notify', () => confirmed++)
    await whileBusy(() => {
      for (const payload of ['x', 'x', 'x', 'y', 'x']) ipc.notify('c', payload)
    })
    expect(session.rounds()[1]).toEqual([
      'BEGIN',
      'NOTIFY c:x',
      'COMMIT',
      'BEGIN',
      'NOTIFY c:x',
      'COMMIT',
      'BEGIN',
      'NOTIFY c:x,c:y',
      'COMMIT',
      'BEGIN',
      'NOTIFY c:x',
      'COMMIT',
    ])
    await answerAll()
    expect(server.delivered.map((message) => message.payload)).toEqual(['x', 'x', 'x', 'y', 'x'])
    expect(confirmed).toBe(5)
  })

  it('at most 1,000 notifications per round trip', async () => {
    const payloads = Array.from({ length: 2_500 }, (_, index) => String(index))
    await whileBusy(() => {
      for (const payload of payloads) ipc.notify('c', payload)
    })
    await answerAll()
    const trips = session.units.slice(1).map((unit) => FakeConnection.statements(unit))
    // Distinct pairs: one statement per trip, no BEGIN, 1,000 notifications each.
    expect(trips.map((statements) => statements.length)).toEqual([1, 1, 1])
    expect(trips.map(([statement]) => readTextArray(statement?.values[1]).length)).toEqual([1_000, 1_000, 500])
    expect(server.delivered.map((message) => message.payload)).toEqual(payloads)
  })

  it('at most 100 statements per round trip', async () => {
    await whileBusy(() => {
      for (let index = 0; index < 250; index++) ipc.notify('c', 'same') // each its own transaction
    })
    await answerAll()
    const trips = session.rounds().slice(1)
    expect(trips.map((labels) => labels.filter((label) => label.startsWith('NOTIFY')).length)).toEqual([100, 100, 50])
    expect(server.delivered).toHaveLength(250)
  })

  it('at most about 1 MB of payload per round trip', async () => {
    const payloads = Array.from({ length: 200 }, (_, index) => `${index}:`.padEnd(7_000, 'x'))
    await whileBusy(() => {
      for (const payload of payloads) ipc.notify('c', payload)
    })
    await answerAll()
    const counts = session.units
      .slice(1)
      .map((unit) => FakeConnection.statements(unit).map((statement) => readTextArray(statement.values[1]).length))
    expect(counts).toEqual([[142], [58]]) // 142 x 7,000 characters fit in 1,000,000; 143 do not
    expect(server.delivered.map((message) => message.payload)).toEqual(payloads)
  })

  it('LISTEN for a channel another instance already listens on costs no statement', async () => {
    ipc.on('a', () => {})
    session.reply()
    await ipc.listening('a')
    const other = pgIPC(client)
    other.on('a', () => {})
    await other.listening('a')
    expect(session.rounds()).toEqual([['LISTEN "a"']])
    const listened = once(other, 'listen')
    other.on('b', () => {})
    session.reply()
    expect(await listened).toEqual(['b'])
    expect(session.rounds()).toEqual([['LISTEN "a"'], ['LISTEN "b"']])
  })
})
