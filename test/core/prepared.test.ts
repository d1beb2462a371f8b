// The notification statements are named prepared statements on the real server: parsed once per
// connection, then Bind/Execute only; a session that lost them (DEALLOCATE ALL, DISCARD ALL) gets
// them back without the user hearing of it, and each notification is delivered exactly once.
import pg from 'pg'
import { describe, expect, it, onTestFinished } from 'vitest'
import { z } from 'zod'
import { defineChannels, pgIPC, type Message, type PgIPC } from '../../src/index.js'
import { connect, uniqueChannel } from '../support/db.js'
import { latin1Database } from '../shared-client/helpers.js'

/** Our prepared statements on this session, as the server lists them. */
async function prepared(client: pg.Client): Promise<string[]> {
  const result = await client.query<{ name: string }>(
    "SELECT name FROM pg_prepared_statements WHERE name LIKE 'typed_pg_ipc.%' ORDER BY name",
  )
  return result.rows.map((row) => row.name)
}

/** Collects raw payloads on a channel from a separate connection. */
async function collector(channel: string): Promise<{ got: string[]; until: (count: number) => Promise<string[]> }> {
  const ipc = pgIPC(await connect())
  const got: string[] = []
  const waiters: { count: number; resolve: (value: string[]) => void }[] = []
  ipc.on(channel, (message: Message) => {
    got.push(message.rawPayload)
    for (const waiter of waiters) if (got.length >= waiter.count) waiter.resolve([...got])
  })
  await ipc.listening(channel)
  return {
    got,
    until: (count) =>
      got.length >= count ? Promise.resolve([...got]) : new Promise((resolve) => waiters.push({ count, resolve })),
  }
}

function sent(ipc: PgIPC): Promise<void> {
  return new Promise((resolve, reject) => {
    ipc.once('notify', () => resolve())
    ipc.once('error', reject)
  })
}

describe('named prepared statements on the server', () => {
  it('are prepared once per connection, and come back after DEALLOCATE ALL and DISCARD ALL', async () => {
    const client = await connect()
    const ipc = pgIPC(client)
    const errors: unknown[] = []
    ipc.on('error', (error) => errors.push(error))
    const channel = uniqueChannel()
    const listener = await collector(channel)

    let done = sent(ipc)
    ipc.notify(channel, 'one')
    await done
    expect(await prepared(client)).toEqual(['typed_pg_ipc.notify.1'])

    for (const reset of ['DEALLOCATE ALL', 'DISCARD ALL']) {
      await client.query(reset)
      expect(await prepared(client)).toEqual([])
      done = sent(ipc)
      ipc.notify(channel, `after ${reset}`)
      await done
      expect(await prepared(client)).toEqual(['typed_pg_ipc.notify.1'])
    }
    expect(await listener.until(3)).toEqual(['one', 'after DEALLOCATE ALL', 'after DISCARD ALL'])
    expect(errors).toEqual([])
    await ipc.end()
  })

  it('a batch after DEALLOCATE ALL: every notification delivered once, in order, every promise resolved', async () => {
    const client = await connect()
    const channel = uniqueChannel()
    const ipc = defineChannels({ [channel]: z.object({ n: z.number() }) }).attach(client)
    const listener = await collector(channel)
    const payloads = (from: number) => Array.from({ length: 50 }, (_, index) => ({ n: from + index }))
    await Promise.all(payloads(0).map((payload) => ipc.notify(channel, payload)))
    expect(await prepared(client)).toEqual(['typed_pg_ipc.notify.1', 'typed_pg_ipc.notify_many.1'])
    await client.query('DEALLOCATE ALL')
    // pg is idle: the first one goes alone (its Bind fails: 26000) and the other 49 queue behind it;
    // it is put back in front of them, and the 50 go again together (26000 again, then re-prepared).
    await Promise.all(payloads(50).map((payload) => ipc.notify(channel, payload)))
    const got = await listener.until(100)
    expect(got.map((text) => (JSON.parse(text) as { n: number }).n)).toEqual(Array.from({ length: 100 }, (_, index) => index))
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(listener.got).toHaveLength(100)
    expect(await prepared(client)).toEqual(['typed_pg_ipc.notify_many.1'])
    await ipc.end()
  })

  it("a notification the server rejects fails alone, whether it carried the statement's parse or not; the others go through", async () => {
    const client = new pg.Client({ connectionString: await latin1Database() })
    onTestFinished(() => client.end().catch(() => undefined))
    await client.connect()
    const ipc = pgIPC(client)
    const channel = uniqueChannel()
    const outcomes: string[] = []
    ipc.on('notify', (_channel, payload) => outcomes.push(`sent ${String(payload)}`))
    ipc.on('error', (error) => outcomes.push(`${error.name} ${String((error.cause as { code?: string }).code)}`))
    const settled = (count: number) =>
      new Promise<void>((resolve) => {
        const check = () => (outcomes.length >= count ? resolve() : setTimeout(check, 5))
        check()
      })
    // The first one carries the Parse: it succeeds, then the Bind's conversion fails (22P05).
    ipc.notify(channel, 'euro \u20ac')
    await settled(1)
    ipc.notify(channel, 'plain')
    await settled(2)
    ipc.notify(channel, 'euro again \u20ac') // Bind/Execute only now
    await settled(3)
    ipc.notify(channel, 'plain again')
    await settled(4)
    expect(outcomes).toEqual(['QueryFailedError 22P05', 'sent plain', 'QueryFailedError 22P05', 'sent plain again'])
    expect(await prepared(client)).toEqual(['typed_pg_ipc.notify.1'])
    await ipc.end()
  })

  it('outlive a rolled-back transaction of the user (prepared statements are not transactional)', async () => {
    const client = await connect()
    const ipc = pgIPC(client)
    const channel = uniqueChannel()
    const listener = await collector(channel)
    let done = sent(ipc)
    ipc.notify(channel, 'first')
    await done
    await client.query('BEGIN')
    done = sent(ipc)
    ipc.notify(channel, 'after rollback') // waits for the user's transaction to end
    await client.query('ROLLBACK')
    await done
    expect(await listener.until(2)).toEqual(['first', 'after rollback'])
    expect(await prepared(client)).toEqual(['typed_pg_ipc.notify.1'])
    await ipc.end()
  })
})
