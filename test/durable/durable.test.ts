// Durable channels against a real PostgreSQL: stored and announced in one transaction, delivered
// once per instance in commit order whatever order transactions commit in, replayed after a
// reconnect before 'reconnect' is emitted, resumed from a stored cursor after a restart, payloads
// far past NOTIFY's limit, retention, and the install step. Each test uses a table of its own.
import type pg from 'pg'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  CursorExpiredError,
  ErrorCode,
  InvalidCursorError,
  NotInstalledError,
  PayloadTooLargeError,
  defineChannels,
  durable,
  type DurableMessage,
  type PgIpcError,
} from '../../src/index.js'
import { connect, freshDatabase, privateServer, uniqueChannel } from '../support/db.js'
import { adminClient, nextDisconnect, nextReconnect, ownedClients } from '../reconnect/helpers.js'
import { endAfterTest, within } from '../shared-client/helpers.js'

const item = z.object({ n: z.number().int(), text: z.string().optional() })

/** A channel map with one durable channel and one plain one, on a table of the test's own. */
function setup(options: Parameters<typeof defineChannels>[1] = {}) {
  const name = uniqueChannel('dur')
  const plain = uniqueChannel('plain')
  const table = `m_${name}`
  const channels = defineChannels(
    { [name]: durable(item), [plain]: z.string() } as {
      durableItems: ReturnType<typeof durable<typeof item>>
      plainText: z.ZodString
    },
    { ...options, durable: { table, ...options.durable } },
  )
  const dur = name as 'durableItems'
  const txt = plain as 'plainText'
  return { channels, dur, txt, table }
}

/** Collects the messages of a durable channel; `until(n)` resolves once n arrived. */
function collector(
  ipc: { on(name: 'durableItems', listener: (message: DurableMessage<'durableItems', z.output<typeof item>>) => void): unknown },
  dur: 'durableItems',
) {
  const got: DurableMessage<'durableItems', z.output<typeof item>>[] = []
  const waiters: { n: number; resolve: () => void }[] = []
  ipc.on(dur, (message) => {
    got.push(message)
    for (const waiter of waiters.splice(0)) {
      if (got.length >= waiter.n) waiter.resolve()
      else waiters.push(waiter)
    }
  })
  return {
    got,
    numbers: (): number[] => got.map((message) => message.payload.n),
    until: (n: number, what = `${n} messages`): Promise<void> =>
      within(got.length >= n ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ n, resolve })), what),
  }
}

async function rowCount(client: pg.Client, table: string): Promise<number> {
  const { rows } = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM typed_pg_ipc."${table}"`)
  return rows[0]?.n ?? -1
}

describe('install', () => {
  it('is idempotent and versioned, and safe from several connections at once', async () => {
    const { channels, table } = setup()
    const [a, b] = await Promise.all([connect(), connect()])
    await Promise.all([channels.install(a), channels.install(b)])
    await channels.install(a)
    const { rows } = await a.query(`SELECT value FROM typed_pg_ipc."${table}_meta" WHERE key = 'version'`)
    expect(rows).toEqual([{ value: '1' }])
    expect(channels.installSql()).toContain(`CREATE TABLE IF NOT EXISTS "typed_pg_ipc"."${table}"`)
  })

  it('a missing table is a NotInstalledError that names the install step, for senders and for listeners', async () => {
    const { channels, dur } = setup()
    const client = await connect()
    const ipc = endAfterTest(channels.attach(client))
    const errors: PgIpcError[] = []
    ipc.on('error', (error) => errors.push(error))
    const refused = await ipc.notify(dur, { n: 1 }).catch((error: unknown) => error)
    expect(refused).toBeInstanceOf(NotInstalledError)
    expect((refused as PgIpcError).code).toBe(ErrorCode.NotInstalled)
    expect((refused as Error).message).toMatch(/channels\.install\(client\)/)
    ipc.on(dur, () => undefined)
    await within(
      new Promise<void>((resolve) => ipc.on('error', (error) => error instanceof NotInstalledError && resolve())),
      "the listener's NotInstalledError",
    )
  })
})

describe('delivery', () => {
  it('commit order, not id order: a message whose transaction commits later is delivered then, and never skipped', async () => {
    const { channels, dur } = setup()
    const [sender, slow, listenerClient] = await Promise.all([connect(), connect(), connect()])
    await channels.install(sender)
    const ipc = endAfterTest(channels.attach(listenerClient))
    const received = collector(ipc, dur)
    await ipc.listening(dur)
    const sending = endAfterTest(channels.attach(sender))
    // The slow transaction takes id 1 first and stays open; another commits id 2.
    await slow.query('BEGIN')
    await slow.query(channels.notifyQuery(dur, { n: 1 }))
    await sending.notify(dur, { n: 2 })
    await received.until(1, 'the message committed first')
    expect(received.numbers()).toEqual([2])
    await slow.query('COMMIT')
    await received.until(2, 'the message committed later')
    await sending.notify(dur, { n: 3 })
    await received.until(3)
    expect(received.numbers()).toEqual([2, 1, 3])
    expect(received.got.map((message) => message.id)).toEqual(['2', '1', '3'])
    expect(received.got.every((message) => message.sentAt instanceof Date && Object.isFrozen(message))).toBe(true)
  })

  it('a transaction that writes before it publishes, and one that rolls back: delivered once and never', async () => {
    const { channels, dur, table } = setup()
    const [sender, writer, listenerClient] = await Promise.all([connect(), connect(), connect()])
    await channels.install(sender)
    const ipc = endAfterTest(channels.attach(listenerClient))
    const received = collector(ipc, dur)
    await ipc.listening(dur)
    await writer.query('CREATE TEMP TABLE side (x int)')
    await writer.query('BEGIN')
    await writer.query('INSERT INTO side VALUES (1)') // takes its transaction id before the message id
    await writer.query(channels.notifyQuery(dur, { n: 1 }))
    await sender.query('BEGIN')
    await sender.query(channels.notifyQuery(dur, { n: 99 }))
    await sender.query('ROLLBACK')
    await sender.query(channels.notifyQuery(dur, { n: 2 }))
    await received.until(1)
    await writer.query('COMMIT')
    await received.until(2)
    await sender.query(channels.notifyQuery(dur, { n: 3 }))
    await received.until(3)
    expect(received.numbers()).toEqual([2, 1, 3])
    expect(await rowCount(sender, table)).toBe(3)
  })

  it('a transaction open in another database that wrote does not hold delivery back', async () => {
    const { channels, dur } = setup()
    const [sender, listenerClient] = await Promise.all([connect(), connect()])
    await channels.install(sender)
    const elsewhere = await connect(await freshDatabase('durother'))
    await elsewhere.query('CREATE TABLE held (x int)')
    await elsewhere.query('BEGIN')
    await elsewhere.query('INSERT INTO held VALUES (1)') // an xid, held open
    const ipc = endAfterTest(channels.attach(listenerClient))
    const received = collector(ipc, dur)
    await ipc.listening(dur)
    await endAfterTest(channels.attach(sender)).notify(dur, { n: 1 })
    await received.until(1, 'delivery while a writing transaction stays open elsewhere')
    await elsewhere.query('ROLLBACK')
  })

  it('1,200 messages of one transaction arrive in id order, in pages', async () => {
    const { channels, dur } = setup()
    const [sender, listenerClient] = await Promise.all([connect(), connect()])
    await channels.install(sender)
    const ipc = endAfterTest(channels.attach(listenerClient))
    const received = collector(ipc, dur)
    await ipc.listening(dur)
    await sender.query('BEGIN')
    for (let n = 0; n < 1_200; n++) await sender.query(channels.notifyQuery(dur, { n }))
    await sender.query('COMMIT')
    await received.until(1_200)
    expect(received.numbers()).toEqual([...Array(1_200).keys()])
  })

  it('payloads of 8 KB and 1 MB are stored and delivered; one byte past the limit is refused and nothing is stored', async () => {
    const { channels, dur, txt, table } = setup({ durable: { maxPayloadBytes: 1_048_576 } })
    const [sender, listenerClient] = await Promise.all([connect(), connect()])
    await channels.install(sender)
    const ipc = endAfterTest(channels.attach(listenerClient))
    const received = collector(ipc, dur)
    await ipc.listening(dur)
    const sending = endAfterTest(channels.attach(sender))
    const wrapper = JSON.stringify({ n: 1, text: '' }).length // {"n":1,"text":""}
    const eightK = 'a'.repeat(8 * 1024)
    const oneMiB = 'b'.repeat(1_048_576 - wrapper)
    await sending.notify(dur, { n: 1, text: eightK })
    await sending.notify(dur, { n: 2, text: oneMiB })
    const tooLarge = await sending.notify(dur, { n: 3, text: `${oneMiB}c` }).catch((error: unknown) => error)
    expect(tooLarge).toBeInstanceOf(PayloadTooLargeError)
    expect(tooLarge).toMatchObject({ bytes: 1_048_577, limit: 1_048_576 })
    expect((tooLarge as Error).message).toMatch(/durable\.maxPayloadBytes/)
    await received.until(2)
    expect(received.got.map((message) => message.payload.text?.length)).toEqual([8 * 1024, oneMiB.length])
    expect(await rowCount(sender, table)).toBe(2)
    // A plain channel keeps NOTIFY's limit.
    await expect(sending.notify(txt, 'x'.repeat(8_000))).rejects.toBeInstanceOf(PayloadTooLargeError)
  })

  it('a plain channel of the same map is plain LISTEN/NOTIFY, side by side', async () => {
    const { channels, dur, txt, table } = setup()
    const [sender, listenerClient] = await Promise.all([connect(), connect()])
    await channels.install(sender)
    const ipc = endAfterTest(channels.attach(listenerClient))
    const received = collector(ipc, dur)
    const plain: string[] = []
    ipc.on(txt, (message) => plain.push(message.payload))
    await Promise.all([ipc.listening(dur), ipc.listening(txt)])
    const sending = endAfterTest(channels.attach(sender))
    await sending.notify(txt, 'hello')
    await sending.notify(dur, { n: 1 })
    await received.until(1)
    expect(plain).toEqual(['hello'])
    expect(await rowCount(sender, table)).toBe(1)
  })

  it('ignoreOwn skips the messages this connection stored', async () => {
    const { channels, dur } = setup()
    const [client, other] = await Promise.all([connect(), connect()])
    await channels.install(client)
    const ipc = endAfterTest(channels.attach(client, { ignoreOwn: true }))
    const received = collector(ipc, dur)
    await ipc.listening(dur)
    await ipc.notify(dur, { n: 1 })
    await endAfterTest(channels.attach(other)).notify(dur, { n: 2 })
    await received.until(1)
    expect(received.numbers()).toEqual([2])
  })
})

describe('sending', () => {
  it('concurrent sends travel together: one transaction (one commit) for a batch, not one each', async () => {
    const { channels, dur, table } = setup()
    const client = await connect()
    await channels.install(client)
    const sending = endAfterTest(channels.attach(client))
    // The first goes at once (the connection is idle); the 199 sent meanwhile share round trips.
    await Promise.all([...Array(200).keys()].map((n) => sending.notify(dur, { n })))
    const { rows } = await client.query<{ transactions: number; messages: number }>(
      `SELECT count(DISTINCT xid)::int AS transactions, count(*)::int AS messages FROM typed_pg_ipc."${table}"`,
    )
    expect(rows[0]?.messages).toBe(200)
    expect(rows[0]?.transactions).toBeLessThanOrEqual(3)
  })
})

describe('resuming from a stored cursor', () => {
  it('a restarted listener gets exactly what came after its last message, even what committed late', async () => {
    const { channels, dur } = setup()
    const [sender, slow, first, second] = await Promise.all([connect(), connect(), connect(), connect()])
    await channels.install(sender)
    const sending = endAfterTest(channels.attach(sender))
    const before = endAfterTest(channels.attach(first))
    const received = collector(before, dur)
    await before.listening(dur)
    await slow.query('BEGIN')
    await slow.query(channels.notifyQuery(dur, { n: 1 })) // still open when the listener "crashes"
    await sending.notify(dur, { n: 2 })
    await received.until(1)
    const stored = received.got[0]?.cursor as string
    await before.end() // the process stops
    await slow.query('COMMIT')
    await sending.notify(dur, { n: 3 })
    const after = endAfterTest(channels.attach(second))
    const loop = after.messages(dur, { after: stored })
    const resumed: number[] = []
    for await (const message of loop) {
      resumed.push(message.payload.n)
      if (resumed.length === 2) break
    }
    expect(resumed).toEqual([1, 3])
  })

  it('a cursor that is not ours, or on a plain channel, is refused at once', async () => {
    const { channels, dur, txt } = setup()
    const ipc = endAfterTest(channels.attach(await connect()))
    expect(() => ipc.messages(dur, { after: 'nonsense' })).toThrow(InvalidCursorError)
    expect(() => ipc.messages(txt, { after: 'tpi1|1:1:' })).toThrow(/durable/)
  })

  it('a cursor older than what retention kept is a CursorExpiredError, not a silent gap', async () => {
    const { channels, dur } = setup({ durable: { retention: { maxAgeMs: null, maxPerChannel: 1, pruneEveryMs: false } } })
    const [sender, listenerClient, later] = await Promise.all([connect(), connect(), connect()])
    await channels.install(sender)
    const ipc = endAfterTest(channels.attach(listenerClient))
    const received = collector(ipc, dur)
    await ipc.listening(dur)
    const sending = endAfterTest(channels.attach(sender))
    await sending.notify(dur, { n: 1 })
    await received.until(1)
    const stored = received.got[0]?.cursor as string
    await ipc.end()
    await sending.notify(dur, { n: 2 })
    await sending.notify(dur, { n: 3 })
    expect(await channels.prune(sender)).toBe(2) // keeps the newest one
    const resumed = endAfterTest(channels.attach(later))
    const errors: PgIpcError[] = []
    resumed.on('error', (error) => errors.push(error))
    const loop = resumed.messages(dur, { after: stored })
    const outcome = await within(
      new Promise<PgIpcError>((resolve) => resumed.on('error', (error) => resolve(error))),
      'the expired cursor',
    )
    expect(outcome).toBeInstanceOf(CursorExpiredError)
    expect(outcome.code).toBe(ErrorCode.CursorExpired)
    await loop.return()
  })
})

describe('retention', () => {
  it('prune by count, from several connections at once: one does the work, none waits for the other', async () => {
    const { channels, dur, table } = setup({ durable: { retention: { maxAgeMs: null, maxPerChannel: 10, pruneEveryMs: false } } })
    const [a, b] = await Promise.all([connect(), connect()])
    await channels.install(a)
    const sending = endAfterTest(channels.attach(a))
    await Promise.all([...Array(50).keys()].map((n) => sending.notify(dur, { n })))
    const deleted = await Promise.all([channels.prune(a), channels.prune(b)])
    expect(deleted.reduce((sum, count) => sum + count, 0)).toBe(40)
    expect(await rowCount(a, table)).toBe(10)
    const { rows } = await a.query(`SELECT min(id)::int AS first FROM typed_pg_ipc."${table}"`)
    expect(rows[0].first).toBe(41)
  })
})

describe('reconnecting mode', () => {
  it('what was stored during the outage is delivered before reconnect is emitted, each once', async () => {
    const server = await privateServer()
    const admin = await adminClient(server.connectionString)
    const { channels, dur } = setup()
    await channels.install(admin)
    const owned = ownedClients(server.connectionString)
    const ipc = endAfterTest(channels.attach({ connect: owned.connect, retry: { initialDelayMs: 20, maxDelayMs: 100 } }))
    const events: string[] = []
    ipc.on('error', (error) => events.push(`error ${error.message}`))
    const received = collector(ipc, dur)
    ipc.on(dur, (message) => events.push(`message ${message.payload.n}`))
    ipc.on('reconnect', () => events.push('reconnect'))
    await within(new Promise<void>((resolve) => ipc.once('connect', () => resolve())), 'connect')
    await ipc.listening(dur)
    const sending = endAfterTest(channels.attach(admin))
    await sending.notify(dur, { n: 1 })
    await received.until(1)
    const disconnected = nextDisconnect(ipc)
    const reconnected = nextReconnect(ipc)
    await admin.query('SELECT pg_terminate_backend($1)', [ipc.processId])
    await disconnected
    for (let n = 2; n <= 4; n++) await sending.notify(dur, { n }) // stored during the gap
    await reconnected
    expect(events.slice(0, 5)).toEqual(['message 1', 'message 2', 'message 3', 'message 4', 'reconnect'])
    await sending.notify(dur, { n: 5 })
    await received.until(5)
    expect(received.numbers()).toEqual([1, 2, 3, 4, 5])
  })
})

describe('docs/durable.md', () => {
  it('shows exactly the SQL that install() runs, for migration tools', async () => {
    const { readFile } = await import('node:fs/promises')
    const page = await readFile(new URL('../../docs/durable.md', import.meta.url), 'utf8')
    const block = /<!-- install-sql -->\n```sql\n([\s\S]*?)```/.exec(page)?.[1]
    expect(block).toBe(defineChannels({ c: durable(z.string()) }).installSql())
  })
})
