// A connection lost in the middle of an exchange: the groups whose COMMIT the server confirmed are
// reported sent, the rest of the exchange NotifyOutcomeUnknownError (they may have committed: never
// resent), and what was still queued ConnectionLostError with notSent (a client you passed in) or
// kept for the next connection (the reconnecting mode).
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { ConnectionLostError, defineChannels, NotifyOutcomeUnknownError, pgIPC, type ConnectInfo } from '../../src/index.js'
import { FakeServer, sessionOf, type FakeConnection } from './support/fake-pg.js'
import { errorsOf, nextEvent, track, turn } from './support/helpers.js'

const channels = defineChannels({ c: z.string(), d: z.string() })

/** Three transactions in one exchange (a repeated payload each), then one more notification queued behind it. */
async function exchangeOfThree(
  session: FakeConnection,
  ipc: { notify(name: 'c', payload: string): Promise<void> },
  hold: () => Promise<void>,
) {
  const grouped = ['same', 'same', 'same'].map((text) => track(ipc.notify('c', text)))
  await hold()
  expect(session.rounds().at(-1)).toEqual([
    'BEGIN',
    'NOTIFY c:"same"',
    'COMMIT',
    'BEGIN',
    'NOTIFY c:"same"',
    'COMMIT',
    'BEGIN',
    'NOTIFY c:"same"',
    'COMMIT',
  ])
  const queued = track(ipc.notify('c', 'later'))
  await turn()
  session.reply({ executes: 4 }) // the first COMMIT's answer, and the second BEGIN's; then the connection breaks
  session.drop()
  await turn()
  return { grouped, queued }
}

describe('connection loss mid-exchange', () => {
  it('a client you passed in: committed groups sent, the rest outcome unknown, queued ones not sent', async () => {
    const server = new FakeServer()
    server.autoReply = false
    const client = await server.connected()
    client.on('error', () => {}) // the application's own handler: pg reports the broken socket on the client
    const session = sessionOf(client)
    const ipc = channels.attach(client)
    const errors = errorsOf(ipc)
    const held = client.query('SELECT 40')
    const { grouped, queued } = await exchangeOfThree(session, ipc, async () => {
      session.reply()
      await held
    })
    expect(grouped.map((outcome) => outcome.state)).toEqual(['fulfilled', 'rejected', 'rejected'])
    expect(grouped[1]?.reason).toBeInstanceOf(NotifyOutcomeUnknownError)
    expect(grouped[2]?.reason).toBeInstanceOf(NotifyOutcomeUnknownError)
    expect(queued.state).toBe('rejected')
    expect(queued.reason).toBeInstanceOf(ConnectionLostError)
    expect((queued.reason as ConnectionLostError).notSent).toBe(true)
    expect(server.delivered.map((message) => message.payload)).toEqual(['"same"'])
    expect(errors.map((error) => error.code)).toEqual(['ERR_PG_IPC_CONNECTION_LOST'])
    // Nothing is resent, and later calls are refused as not sent.
    expect(session.rounds()).toHaveLength(2)
    await expect(ipc.notify('c', 'after')).rejects.toMatchObject({ code: 'ERR_PG_IPC_CONNECTION_LOST', notSent: true })
  })

  it('the core reports the same outcomes through its events', async () => {
    const server = new FakeServer()
    server.autoReply = false
    const client = await server.connected()
    client.on('error', () => {})
    const session = sessionOf(client)
    const ipc = pgIPC(client)
    const errors = errorsOf(ipc)
    const sent: unknown[] = []
    ipc.on('notify', (_channel, payload) => sent.push(payload))
    const held = client.query('SELECT 40')
    for (const payload of ['x', 'x', 'x']) ipc.notify('c', payload)
    session.reply()
    await held
    ipc.notify('c', 'queued')
    session.reply({ executes: 3 })
    session.drop()
    await turn()
    expect(sent).toEqual(['x'])
    // The loss itself, two outcomes unknown, and the queued one not sent (the order of the two
    // ConnectionLostErrors is not part of the contract).
    expect(errors.map((error) => error.constructor.name).sort()).toEqual([
      'ConnectionLostError',
      'ConnectionLostError',
      'NotifyOutcomeUnknownError',
      'NotifyOutcomeUnknownError',
    ])
    const lost = errors.filter((error): error is ConnectionLostError => error instanceof ConnectionLostError)
    expect(lost.map((error) => error.notSent).sort()).toEqual([false, true])
  })

  it('the reconnecting mode keeps what was queued for the next connection', async () => {
    const server = new FakeServer()
    const ipc = channels.attach({ connect: () => server.client(), healthCheck: false })
    const errors = errorsOf(ipc)
    const disconnects: unknown[] = []
    ipc.on('disconnect', (error) => disconnects.push(error))
    await nextEvent(ipc, 'connect')
    const session = server.latest
    session.auto = false
    const first = track(ipc.notify('c', 'first')) // on the wire: the next ones wait behind it
    const reconnected = nextEvent<[ConnectInfo]>(ipc, 'reconnect')
    const { grouped, queued } = await exchangeOfThree(session, ipc, async () => {
      session.reply()
      await first.settled
      await turn() // what waited behind a delivered notification goes once its caller has heard
    })
    expect(grouped.map((outcome) => outcome.state)).toEqual(['fulfilled', 'rejected', 'rejected'])
    expect(grouped[1]?.reason).toBeInstanceOf(NotifyOutcomeUnknownError)
    expect(grouped[2]?.reason).toBeInstanceOf(NotifyOutcomeUnknownError)
    const [info] = await reconnected
    expect(info).toMatchObject({ reconnected: true, attempts: 1, processId: server.latest.pid })
    await queued.settled
    expect(queued.state).toBe('fulfilled')
    expect(server.latest).not.toBe(session)
    expect(server.latest.rounds().at(-1)).toEqual(['NOTIFY c:"later"'])
    expect(server.delivered.map((message) => message.payload)).toEqual(['"first"', '"same"', '"later"'])
    expect(disconnects).toHaveLength(1)
    expect(errors).toEqual([])
    await ipc.end()
  })

  it('a client you passed in: what waits for pg at the loss is not sent, and listening() rejects', async () => {
    const server = new FakeServer()
    server.autoReply = false
    const client = await server.connected()
    client.on('error', () => {})
    const session = sessionOf(client)
    const ipc = channels.attach(client)
    const errors = errorsOf(ipc)
    ipc.on('c', () => {})
    const listening = track(ipc.listening('c'))
    session.reply()
    await listening.settled
    const held = client.query('SELECT 40')
    held.catch(() => {})
    const queued = track(ipc.notify('c', 'x'))
    ipc.on('d', () => {})
    const listeningD = track(ipc.listening('d'))
    await turn()
    session.drop()
    await turn()
    expect(queued.state).toBe('rejected')
    expect(queued.reason).toMatchObject({ code: 'ERR_PG_IPC_CONNECTION_LOST', notSent: true })
    expect(listeningD.state).toBe('rejected')
    expect(listeningD.reason).toBeInstanceOf(ConnectionLostError)
    expect(session.rounds()).toEqual([['LISTEN "c"'], ['SELECT 40']])
    // On a lost client, a new listener's LISTEN cannot happen either.
    await expect(ipc.listening('c')).rejects.toBeInstanceOf(ConnectionLostError)
    expect(errors.map((error) => error.code)).toContain('ERR_PG_IPC_CONNECTION_LOST')
  })
})
