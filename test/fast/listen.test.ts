// LISTEN/UNLISTEN reference counting across instances sharing one client (the hub's job: one
// LISTEN per channel per connection, UNLISTEN only when no instance needs it), and listening()
// settling in every case: never left pending.
import type pg from 'pg'
import { beforeEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { ConnectionLostError, defineChannels, NotListeningError, pgIPC, QueryFailedError } from '../../src/index.js'
import { FakeServer, sessionOf, type FakeConnection } from './support/fake-pg.js'
import { errorsOf, nextEvent, track, turn } from './support/helpers.js'

let server: FakeServer
let client: pg.Client
let session: FakeConnection

beforeEach(async () => {
  server = new FakeServer()
  client = await server.connected()
  session = sessionOf(client)
})

const noop = (): void => {}
const listens = (): string[] =>
  session.executed.filter((statement) => /^(UN)?LISTEN /.test(statement.text)).map((statement) => statement.text)

describe('LISTEN reference counting on one client', () => {
  it('two instances: one LISTEN, and UNLISTEN only when the last listener of both leaves', async () => {
    const a = pgIPC(client)
    const b = pgIPC(client)
    errorsOf(a)
    errorsOf(b)
    const first = (): void => {}
    a.on('ch', first)
    a.on('ch', noop)
    b.on('ch', noop)
    await Promise.all([a.listening('ch'), b.listening('ch')])
    expect(listens()).toEqual(['LISTEN "ch"'])
    a.off('ch', first)
    a.off('ch', noop)
    await nextEvent(a, 'unlisten')
    expect(listens()).toEqual(['LISTEN "ch"'])
    expect(session.listening.has('ch')).toBe(true)
    b.removeAllListeners('ch')
    await nextEvent(b, 'unlisten')
    expect(listens()).toEqual(['LISTEN "ch"', 'UNLISTEN "ch"'])
    expect(session.listening.has('ch')).toBe(false)
  })

  it('end() of one instance keeps the channel for the other; the last end() UNLISTENs', async () => {
    const a = pgIPC(client)
    const b = pgIPC(client)
    a.on('ch', noop)
    b.on('ch', noop)
    a.on('only-a', noop)
    await Promise.all([a.listening('ch'), b.listening('ch'), a.listening('only-a')])
    await a.end()
    expect(listens()).toEqual(['LISTEN "ch"', 'LISTEN "only-a"', 'UNLISTEN "only-a"'])
    expect([...session.listening]).toEqual(['ch'])
    // Still delivered to b.
    const got = nextEvent<[{ payload: unknown }]>(b, 'ch')
    session.notify('ch', '{"n":1}')
    expect((await got)[0].payload).toEqual({ n: 1 })
    await b.end()
    expect(listens().at(-1)).toBe('UNLISTEN "ch"')
    expect(session.listening.size).toBe(0)
  })

  it('the typed layer and the core count together', async () => {
    const typed = defineChannels({ ch: z.number() }).attach(client)
    const core = pgIPC(client)
    const received: unknown[] = []
    typed.on('ch', (message) => received.push(message.payload))
    core.on('ch', (message: { payload: unknown }) => received.push(message.payload))
    await Promise.all([typed.listening('ch'), core.listening('ch')])
    session.notify('ch', '7')
    await turn()
    expect(received).toEqual([7, 7])
    await typed.end()
    expect(listens()).toEqual(['LISTEN "ch"'])
    await core.end()
    expect(listens()).toEqual(['LISTEN "ch"', 'UNLISTEN "ch"'])
  })
})

describe('listening() settles in every case', () => {
  it('resolves once the server confirmed the LISTEN, not before', async () => {
    session.auto = false
    const ipc = pgIPC(client)
    ipc.on('ch', noop)
    const listening = track(ipc.listening('ch'))
    await turn()
    expect(listening.state).toBe('pending')
    session.reply()
    await listening.settled
    expect(listening.state).toBe('fulfilled')
    await expect(ipc.listening('ch')).resolves.toBeUndefined() // already active: at once
  })

  it('rejects NotListeningError for a channel with no listener', async () => {
    await expect(pgIPC(client).listening('ch')).rejects.toBeInstanceOf(NotListeningError)
  })

  it('rejects NotListeningError when the last listener leaves before the LISTEN completed', async () => {
    session.auto = false
    const ipc = pgIPC(client)
    errorsOf(ipc)
    ipc.on('ch', noop)
    const listening = track(ipc.listening('ch'))
    ipc.off('ch', noop)
    await listening.settled
    expect(listening.reason).toBeInstanceOf(NotListeningError)
  })

  it('rejects NotListeningError when the instance ends meanwhile', async () => {
    session.auto = false
    const ipc = pgIPC(client)
    ipc.on('ch', noop)
    const listening = track(ipc.listening('ch'))
    const ended = ipc.end()
    await listening.settled
    expect(listening.reason).toBeInstanceOf(NotListeningError)
    session.auto = true
    while (session.waiting > 0) session.reply()
    await ended
  })

  it('rejects QueryFailedError when the server refuses the LISTEN', async () => {
    server.rule = ({ text }) =>
      text.startsWith('LISTEN') ? { error: { code: '42501', message: 'permission denied' } } : undefined
    const ipc = pgIPC(client)
    const errors = errorsOf(ipc)
    ipc.on('ch', noop)
    await expect(ipc.listening('ch')).rejects.toBeInstanceOf(QueryFailedError)
    expect(errors).toHaveLength(1)
  })

  it('rejects ConnectionLostError when a client you passed in is lost, or closed by you', async () => {
    client.on('error', noop)
    session.auto = false
    const ipc = pgIPC(client)
    errorsOf(ipc)
    ipc.on('ch', noop)
    const lost = track(ipc.listening('ch'))
    session.drop()
    await lost.settled
    expect(lost.reason).toBeInstanceOf(ConnectionLostError)

    const other = await server.connected()
    const second = pgIPC(other)
    errorsOf(second)
    sessionOf(other).auto = false
    second.on('ch', noop)
    const closed = track(second.listening('ch'))
    await other.end()
    await closed.settled
    expect(closed.reason).toBeInstanceOf(ConnectionLostError)
  })

  it('reconnecting mode: waits through an outage and resolves on the next connection', async () => {
    const ipc = pgIPC({ connect: () => server.client(), healthCheck: false })
    errorsOf(ipc)
    const first = server.nextSession()
    ipc.on('ch', noop)
    const session1 = await first
    session1.auto = false
    // Set-up check, then the LISTEN, which the server never answers: the connection breaks.
    await session1.nextUnit()
    session1.reply()
    await session1.nextUnit()
    const listening = track(ipc.listening('ch'))
    const second = server.nextSession()
    session1.drop()
    await turn()
    expect(listening.state).toBe('pending')
    const session2 = await second
    await listening.settled
    expect(listening.state).toBe('fulfilled')
    expect(session2.listening.has('ch')).toBe(true)
    await ipc.end()
  })

  it('reconnecting mode: rejects when it gives up', async () => {
    let attempts = 0
    const ipc = pgIPC({
      connect: () => {
        attempts++
        throw new Error('no server')
      },
      retry: { maxAttempts: 1 },
    })
    const errors = errorsOf(ipc)
    ipc.on('ch', noop)
    await expect(ipc.listening('ch')).rejects.toBeInstanceOf(ConnectionLostError)
    expect(attempts).toBe(1)
    expect(errors[0]?.message).toMatch(/Gave up/)
  })
})
