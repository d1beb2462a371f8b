// A user who handles the instance's `error` event, as the docs say, and adds no 'error' listener to
// the pg.Client itself (pg-ipc's README adds none). pg reports a terminated backend twice: the
// server's FATAL message, then "Connection terminated unexpectedly" when the socket closes. The
// first is the loss the instance reports; the second must not reach a client with no 'error'
// listener, where Node's EventEmitter throws it: the process would crash on a killed connection
// the user did handle. Found in the final review (not by the model test, which adds a listener).
import type pg from 'pg'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { ConnectionLostError, defineChannels, pgIPC } from '../../src/index.js'
import { connect, uniqueChannel } from '../support/db.js'
import { handled, pidOf, userQuery, within } from './helpers.js'

/** Records every 'error' pg emits on the client while nobody listens for it (Node would throw it). */
function unheardErrors(client: pg.Client): string[] {
  const unheard: string[] = []
  const emit = client.emit.bind(client)
  client.emit = (event: string | symbol, ...args: unknown[]): boolean => {
    if (event === 'error' && client.listenerCount('error') === 0) {
      unheard.push((args[0] as Error).message)
      return false // recorded instead of thrown: the test reports it
    }
    return emit(event, ...args)
  }
  return unheard
}

async function kill(client: pg.Client): Promise<void> {
  const admin = await connect()
  const closed = whenClosedQuietly(client)
  await admin.query('SELECT pg_terminate_backend($1)', [pidOf(client)])
  await within(closed, "the client's end")
  await admin.end()
}

/** The client's 'end', without adding an 'error' listener (which would hide what the test looks for). */
function whenClosedQuietly(client: pg.Client): Promise<void> {
  return new Promise((resolve) => client.once('end', () => resolve()))
}

describe('a killed connection, handled through the instance only', () => {
  for (const busy of [false, true]) {
    const when = busy ? 'with notifications and a user query in flight' : 'while idle'
    it(`core: the loss is one 'error' event of the instance, and pg's later errors never go unheard (${when})`, async () => {
      const client = await connect()
      const unheard = unheardErrors(client)
      const ipc = pgIPC(client)
      const errors: unknown[] = []
      ipc.on('error', (error) => errors.push(error))
      const channel = uniqueChannel('killed')
      ipc.on(channel, () => undefined)
      await ipc.listening(channel)
      if (busy) {
        for (let n = 0; n < 50; n++) ipc.notify(channel, String(n))
        void handled(userQuery(client, 'SELECT pg_sleep(0.05)'))
      }
      await kill(client)
      await within(
        (async () => {
          while (!errors.some((error) => error instanceof ConnectionLostError)) await new Promise((r) => ipc.once('error', r))
        })(),
        'the ConnectionLostError',
      )
      expect(unheard).toEqual([])
    })

    it(`typed: the same (${when})`, async () => {
      const client = await connect()
      const unheard = unheardErrors(client)
      const channel = uniqueChannel('killedT')
      const channels = defineChannels({ [channel]: z.object({ n: z.number() }) } as { c: z.ZodObject<{ n: z.ZodNumber }> })
      const ipc = channels.attach(client)
      const lost = new Promise<unknown>((resolve) => ipc.on('error', resolve))
      ipc.on(channel as 'c', () => undefined)
      await ipc.listening(channel as 'c')
      if (busy) {
        for (let n = 0; n < 50; n++) void handled(ipc.notify(channel as 'c', { n }))
        void handled(userQuery(client, 'SELECT pg_sleep(0.05)'))
      }
      await kill(client)
      expect(await within(lost, 'the ConnectionLostError')).toBeInstanceOf(ConnectionLostError)
      expect(unheard).toEqual([])
    })
  }
})
