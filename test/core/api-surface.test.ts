// What a user meets at the surface of both layers: methods called unbound (as pg-ipc's closures
// allowed, and as `process.on('SIGTERM', ipc.end)` does), `await using`, prependOnceListener.
import pg from 'pg'
import { describe, expect, it, onTestFinished } from 'vitest'
import { z } from 'zod'
import { defineChannels, pgIPC, type Message } from '../../src/index.js'
import { connect, databaseUrl, listeningChannels, uniqueChannel } from '../support/db.js'

describe('every public method works unbound', () => {
  it('core', async () => {
    const client = await connect()
    const ipc = pgIPC(client)
    const { on, once, off, notify, send, listening, queueUsage, end, removeAllListeners, listenerCount, emit } = ipc
    const channel = uniqueChannel()
    const got: unknown[] = []
    const listener = (message: Message): void => void got.push(message.payload)
    on('error', () => undefined)
    on(channel, listener)
    await listening(channel)
    const arrived = new Promise((resolve) => once(channel, resolve))
    notify(channel, { n: 1 })
    send(channel, { n: 2 })
    await arrived
    expect(typeof (await queueUsage())).toBe('number')
    expect(listenerCount(channel)).toBe(1)
    expect(emit('nothing-listens')).toBe(false)
    off(channel, listener)
    removeAllListeners('error')
    await end()
    expect(await listeningChannels(client)).toEqual([])
  })

  it('typed', async () => {
    const client = await connect()
    const name = uniqueChannel('typed')
    const channels = defineChannels({ [name]: z.object({ n: z.number() }) } as Record<'ch', z.ZodObject<{ n: z.ZodNumber }>>)
    const ipc = channels.attach(client)
    const {
      on,
      once,
      off,
      notify,
      send,
      listening,
      queueUsage,
      end,
      messages,
      removeAllListeners,
      listenerCount,
      prependListener,
    } = ipc
    const got: number[] = []
    const listener = (message: { payload: { n: number } }): void => void got.push(message.payload.n)
    on(name as 'ch', listener)
    prependListener(name as 'ch', () => undefined)
    await listening(name as 'ch')
    const loop = messages(name as 'ch')
    const arrived = new Promise((resolve) => once(name as 'ch', resolve))
    await notify(name as 'ch', { n: 1 })
    await send(name as 'ch', { n: 2 })
    await arrived
    expect((await loop.next()).value?.payload).toEqual({ n: 1 })
    expect(typeof (await queueUsage())).toBe('number')
    expect(listenerCount(name as 'ch')).toBe(3)
    off(name as 'ch', listener)
    removeAllListeners()
    // removeAllListeners() ends the loop: the message it had buffered, then done.
    expect((await loop.next()).value?.payload).toEqual({ n: 2 })
    expect((await loop.next()).done).toBe(true)
    await end()
    expect(got).toContain(1)
    expect(await listeningChannels(client)).toEqual([])
  })
})

describe('await using', () => {
  it('ends both kinds of instance when the scope is left', async () => {
    const client = await connect()
    const channel = uniqueChannel()
    const channels = defineChannels({ note: z.string() })
    let coreEnded = false
    let typedEnded = false
    {
      await using core = pgIPC(client)
      await using typed = channels.attach(client)
      core.on('end', () => (coreEnded = true))
      typed.on('end', () => (typedEnded = true))
      core.on(channel, () => undefined)
      typed.on('note', () => undefined)
      await core.listening(channel)
      await typed.listening('note')
      expect(await listeningChannels(client)).toEqual([channel, 'note'].sort())
    }
    expect(coreEnded).toBe(true)
    expect(typedEnded).toBe(true)
    expect(await listeningChannels(client)).toEqual([])
  })
})

describe('typed prependOnceListener', () => {
  it('runs once, before the listeners already there', async () => {
    const client = await connect()
    const channels = defineChannels({ note: z.string() })
    const ipc = channels.attach(client)
    const order: string[] = []
    ipc.on('note', (message) => order.push(`on:${message.payload}`))
    ipc.prependOnceListener('note', (message) => order.push(`first-once:${message.payload}`))
    await ipc.listening('note')
    const second = new Promise((resolve) => ipc.on('note', (message) => message.payload === 'b' && resolve(undefined)))
    await ipc.notify('note', 'a')
    await ipc.notify('note', 'b')
    await second
    expect(order).toEqual(['first-once:a', 'on:a', 'on:b'])
    expect(ipc.listenerCount('note')).toBe(2)
    await ipc.end()
  })
})

describe('a pipelining client (new pg.Client({ pipeline: true }))', () => {
  it('LISTENs, sends identical notifications as separate transactions, and waits for the user transaction', async () => {
    const client = new pg.Client({ connectionString: databaseUrl(), pipeline: true })
    onTestFinished(() => client.end().catch(() => undefined))
    await client.connect()
    await client.query('CREATE TEMP TABLE t (n int)')
    const channel = uniqueChannel()
    const ipc = pgIPC(client)
    const got: unknown[] = []
    ipc.on('error', (error) => got.push(error))
    ipc.on(channel, (message) => got.push(message.payload))
    await ipc.listening(channel)
    const begun = client.query('BEGIN')
    for (let n = 0; n < 3; n++) ipc.notify(channel, 'same')
    ipc.notify(channel, 'last')
    await begun
    await client.query('INSERT INTO t VALUES (1)')
    await client.query('ROLLBACK') // the notifications are not part of it: they go after
    const last = new Promise((resolve) => ipc.on(channel, (message) => message.payload === 'last' && resolve(undefined)))
    await last
    expect(got).toEqual(['same', 'same', 'same', 'last'])
    expect((await client.query('SELECT count(*)::int AS n FROM t')).rows[0].n).toBe(0)
    await ipc.end()
    expect(await listeningChannels(client)).toEqual([])
  })
})
