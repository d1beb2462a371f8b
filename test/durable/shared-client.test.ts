// Durable channels on the client the user's own queries and transactions share, as pg-ipc's README
// uses one client for everything: the user's statements fired without awaiting while the library
// stores, reads and announces; a notifyQuery inside the user's transaction that commits and one
// that rolls back; then the connection killed with work in flight. Checked: the user's rows, each
// accepted message delivered exactly once, nothing rolled back delivered, no transaction notice
// (the library never ran BEGIN/COMMIT inside the user's transaction), and every promise settled.
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { ConnectionLostError, NotifyOutcomeUnknownError, defineChannels, durable, type DurableMessage } from '../../src/index.js'
import { connect, uniqueChannel } from '../support/db.js'
import {
  endAfterTest,
  handled,
  pidOf,
  recordNotices,
  settledWithin,
  transactionNotices,
  userQuery,
  userTable,
  within,
} from '../shared-client/helpers.js'

const item = z.object({ n: z.number().int() })

function setup() {
  const name = uniqueChannel('dshared')
  const channels = defineChannels({ [name]: durable(item) } as { items: ReturnType<typeof durable<typeof item>> }, {
    durable: { table: `m_${name}` },
  })
  return { channels, dur: name as 'items' }
}

describe('durable channels on a client shared with the user', () => {
  it("the user's unawaited transactions interleave with sends and reads: rows kept, each message once, rollbacks never", async () => {
    const { channels, dur } = setup()
    const client = await connect()
    await channels.install(client)
    const notices = recordNotices(client)
    const table = await userTable(client)
    const ipc = endAfterTest(channels.attach(client))
    const got: DurableMessage<'items', { n: number }>[] = []
    let expected = 0
    let arrived: () => void = () => undefined
    ipc.on(dur, (message) => {
      got.push(message)
      if (got.length >= expected) arrived()
    })
    await ipc.listening(dur)

    const pending: Promise<unknown>[] = []
    const sent: number[] = []
    for (let round = 0; round < 20; round++) {
      // The user's transaction, not awaited, with the library's sends queued in the middle of it.
      pending.push(userQuery(client, 'BEGIN'))
      pending.push(userQuery(client, `INSERT INTO ${table.name} VALUES ($1)`, [round]))
      pending.push(ipc.notify(dur, { n: 1000 + round }).then(() => sent.push(1000 + round)))
      const inside = channels.notifyQuery(dur, { n: 2000 + round })
      pending.push(userQuery(client, inside.text, [...inside.values]))
      pending.push(ipc.notify(dur, { n: 3000 + round }).then(() => sent.push(3000 + round)))
      pending.push(userQuery(client, round % 2 === 0 ? 'COMMIT' : 'ROLLBACK'))
      if (round % 2 === 0) sent.push(2000 + round)
    }
    await within(Promise.all(pending), 'every query and notify settled')
    expected = sent.length
    await within(
      got.length >= expected ? Promise.resolve() : new Promise<void>((resolve) => (arrived = resolve)),
      `${expected} messages`,
    )

    expect(await table.rows()).toEqual([0, 2, 4, 6, 8, 10, 12, 14, 16, 18])
    const numbers = got.map((message) => message.payload.n)
    expect([...numbers].sort((a, b) => a - b)).toEqual([...sent].sort((a, b) => a - b))
    expect(new Set(got.map((message) => message.id)).size).toBe(got.length)
    expect(numbers.filter((n) => n >= 2000 && n < 3000 && n % 2 === 1)).toEqual([])
    expect(transactionNotices(notices)).toEqual([])
    expect((await userQuery(client, 'SELECT 1 AS one')).rows).toEqual([{ one: 1 }])
  })

  it('killed with sends and the user’s transaction in flight: every promise settles, nothing accepted is lost, nothing twice', async () => {
    const { channels, dur } = setup()
    const client = await connect()
    const admin = await connect()
    await channels.install(client)
    const ipc = endAfterTest(channels.attach(client))
    ipc.on('error', () => undefined)
    const got: number[] = []
    ipc.on(dur, (message) => got.push(message.payload.n))
    await ipc.listening(dur)
    const receiver = await connect()
    const watcher = endAfterTest(channels.attach(receiver))
    const seen: number[] = []
    watcher.on(dur, (message) => seen.push(message.payload.n))
    await watcher.listening(dur)

    const sends = Array.from({ length: 200 }, (_, n) => ipc.notify(dur, { n }))
    const user = ['BEGIN', 'SELECT pg_sleep(0.05)', 'COMMIT'].map((text) => handled(userQuery(client, text)))
    void admin.query('SELECT pg_terminate_backend($1)', [pidOf(client)])
    const outcomes = await Promise.all(sends.map((send, n) => settledWithin(send, `send ${n}`)))
    await Promise.all(user.map((query, n) => settledWithin(query, `user query ${n}`)))

    const accepted = outcomes.flatMap((outcome, n) => (outcome.status === 'fulfilled' ? [n] : []))
    for (const outcome of outcomes) {
      if (outcome.status === 'rejected') {
        expect(outcome.reason instanceof ConnectionLostError || outcome.reason instanceof NotifyOutcomeUnknownError).toBe(true)
      }
    }
    // What the server stored is what a listener on another connection gets: each once, at least everything accepted.
    const stored = (
      await admin.query<{ n: number }>(`SELECT (payload::json->>'n')::int AS n FROM typed_pg_ipc."m_${dur}" ORDER BY id`)
    ).rows.map((row) => row.n)
    await within(
      (async () => {
        while (seen.length < stored.length) await new Promise((resolve) => watcher.once(dur, resolve))
      })(),
      `${stored.length} messages on the other connection`,
    )
    expect(seen).toEqual(stored)
    expect(new Set(stored).size).toBe(stored.length)
    for (const n of accepted) expect(stored).toContain(n)
    await admin.end()
  })
})
