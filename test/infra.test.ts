// Proves the test infrastructure itself: shared server, raw LISTEN/NOTIFY, helpers, private servers.
import type pg from 'pg'
import { describe, expect, inject, test } from 'vitest'
import { connect, listeningChannels, privateServer, uniqueChannel, waitFor } from './support/db.js'

describe('shared server', () => {
  test('answers a query', async () => {
    expect(['env', 'docker', 'embedded']).toContain(inject('databaseSource'))
    const client = await connect()
    const { rows } = await client.query<{ one: number }>('SELECT 1::int AS one')
    expect(rows).toEqual([{ one: 1 }])
  })

  test('LISTEN/NOTIFY round trip with raw pg', async () => {
    const [listener, sender] = await Promise.all([connect(), connect()])
    const senderPid = (await sender.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid
    const channel = uniqueChannel()
    await listener.query(`LISTEN ${listener.escapeIdentifier(channel)}`)
    // Subscribe before sending so the notification cannot slip by.
    const received = waitFor<pg.Notification>(listener, 'notification', { filter: (n) => n.channel === channel })
    await sender.query('SELECT pg_notify($1, $2)', [channel, 'hello'])
    // toMatchObject: pg hands over its own message object, which carries extra fields.
    expect(await received).toMatchObject({ channel, payload: 'hello', processId: senderPid })
  })

  test('listeningChannels reports LISTEN and UNLISTEN', async () => {
    const client = await connect()
    const [a, b] = [uniqueChannel('b'), uniqueChannel('a')]
    expect(await listeningChannels(client)).toEqual([])
    await client.query(`LISTEN ${client.escapeIdentifier(a)}; LISTEN ${client.escapeIdentifier(b)}`)
    expect(await listeningChannels(client)).toEqual([a, b].sort())
    await client.query(`UNLISTEN ${client.escapeIdentifier(a)}`)
    expect(await listeningChannels(client)).toEqual([b])
    await client.query('UNLISTEN *')
    expect(await listeningChannels(client)).toEqual([])
  })

  test('uniqueChannel never repeats', () => {
    const names = Array.from({ length: 1000 }, () => uniqueChannel())
    expect(new Set(names).size).toBe(names.length)
  })

  test('waitFor rejects with a message naming the event', async () => {
    const client = await connect()
    await expect(waitFor(client, 'never-emitted', { timeoutMs: 50 })).rejects.toThrow(
      "timed out after 50 ms waiting for 'never-emitted'",
    )
  })
})

describe('private server', () => {
  test('stops and starts again on the same port with the same data', async () => {
    const server = await privateServer()
    expect(server.version).toMatch(/^\d+\.\d+/)
    const before = await connect(server.connectionString)
    await before.query('CREATE TABLE survives (x int)')

    // A fast shutdown tells connected clients FATAL 57P01, like a real server restart. pg then emits
    // a second 'error' (Connection terminated unexpectedly) when the socket closes: a client whose
    // server is stopped needs an 'error' listener for its whole life, or the worker sees it uncaught.
    const errors: unknown[] = []
    before.on('error', (error) => errors.push(error))
    const dropped = waitFor<Error & { code?: string }>(before, 'error')
    const ended = waitFor(before, 'end', { rejectOnError: false })
    await server.stopServerOnly()
    expect((await dropped).code).toBe('57P01')
    await ended
    expect(errors.length).toBeGreaterThan(0)
    await expect(connect(server.connectionString)).rejects.toThrow(/ECONNREFUSED/)

    await server.start()
    const after = await connect(server.connectionString)
    const { rows } = await after.query<{ port: string }>("SELECT current_setting('port') AS port")
    expect(Number(rows[0]?.port)).toBe(server.port)
    await after.query('SELECT * FROM survives') // same data dir
  })

  test('stop is idempotent', async () => {
    const server = await privateServer()
    await Promise.all([server.stop(), server.stop()])
    await server.stop()
    await expect(server.start()).rejects.toThrow(/gone/)
  })
})
