// Issue 8: one regression test (or a few, one per symptom) per numbered item, named after it. Each
// shares ONE pg.Client between the user's own queries/transactions and the library, as pg-ipc's
// README does, and checks the outcome against a separate observer connection (what the server
// really delivered) and the server's own state (rows, pg_listening_channels(), notices).
import { chownSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import pg from 'pg'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  ConnectionLostError,
  ErrorCode,
  InvalidChannelError,
  PayloadNotEncodableError,
  PgIpcError,
  QueryFailedError,
  defineChannels,
  pgIPC,
  type PgIPC,
  type PgIpcError as PgIpcErrorType,
} from '../../src/index.js'
import { connect, databaseUrl, listeningChannels, privateServer, uniqueChannel, waitFor } from '../support/db.js'
import { freePort, serverAccount } from '../support/postgres.js'
import { adminClient, nextDisconnect, ownedClients } from '../reconnect/helpers.js'
import {
  Observer,
  busyWait,
  connectWith,
  count,
  endAfterTest,
  handled,
  latin1Database,
  nextTurn,
  pidOf,
  recordNotices,
  rejectionOf,
  settledWithin,
  transactionNotices,
  typedChannels,
  userQuery,
  userTable,
  watchLibraryQueries,
  whenClosed,
  within,
} from './helpers.js'

/** Every `error` event of a core instance. */
function errorsOf(ipc: { on(event: 'error', listener: (error: PgIpcErrorType) => void): unknown }): PgIpcErrorType[] {
  const errors: PgIpcErrorType[] = []
  ipc.on('error', (error) => errors.push(error))
  return errors
}

/** Resolves once the core instance emitted `n` 'notify' events. */
function notifyEvents(ipc: PgIPC, n: number, what: string): Promise<void> {
  let seen = 0
  return within(
    new Promise<void>((resolve) => {
      ipc.on('notify', () => {
        seen += 1
        if (seen === n) resolve()
      })
    }),
    what,
  )
}

describe("8.1 a notify never runs inside the user's transaction", () => {
  for (const layer of ['core', 'typed'] as const) {
    it(`8.1 a notify never runs inside the user's transaction: the user's ROLLBACK does not drop a notification reported sent (${layer})`, async () => {
      const client = await connect()
      const notices = recordNotices(client)
      const table = await userTable(client)
      const { channels, names } = typedChannels(1, z.string())
      const channel = names[0] as string
      const observer = await Observer.start([channel])
      const core = pgIPC(client)
      const typed = channels.attach(client)
      const coreErrors = errorsOf(core)
      const typedErrors = errorsOf(typed)

      // The library is handed a notification, and the user starts a transaction in the same tick
      // (pg sends the BEGIN at once: pg's queue is empty and the last status was idle).
      const coreSent = handled(layer === 'core' ? waitFor(core, 'notify') : Promise.resolve())
      const typedSent = handled(layer === 'typed' ? typed.notify(channel, 'x') : Promise.resolve())
      if (layer === 'core') core.notify(channel, 'x')
      await userQuery(client, 'BEGIN')
      await userQuery(client, `INSERT INTO ${table.name} VALUES (1)`)
      await userQuery(client, 'ROLLBACK')
      await within(Promise.all([coreSent, typedSent]), 'the notification to be reported sent')

      const raw = layer === 'core' ? 'x' : '"x"'
      await observer.settle(client)
      expect(observer.payloads(channel), 'delivered (reported sent, so exactly once)').toEqual([raw])
      expect(await table.rows(), "the user's rolled back rows").toEqual([])
      expect(transactionNotices(notices), 'notices about the transaction state').toEqual([])
      expect([...coreErrors, ...typedErrors]).toEqual([])
      await within(Promise.all([core.end(), typed.end()]), 'end() of both instances')
    })

    it(`8.1 a notify never runs inside the user's transaction: identical payloads never COMMIT the user's transaction (${layer})`, async () => {
      const client = await connect()
      const notices = recordNotices(client)
      const table = await userTable(client)
      const { channels, names } = typedChannels(1, z.string())
      const channel = names[0] as string
      const observer = await Observer.start([channel])
      const core = pgIPC(client)
      const typed = channels.attach(client)
      const coreErrors = errorsOf(core)
      const typedErrors = errorsOf(typed)

      // Identical (channel, payload) pairs must travel in separate transactions: the library's own
      // BEGIN ... COMMIT. Handed to pg behind the user's BEGIN, its COMMIT would commit the user's work.
      const sent = handled<unknown>(
        layer === 'core'
          ? notifyEvents(core, 3, 'three notify events')
          : Promise.all([typed.notify(channel, 'same'), typed.notify(channel, 'same'), typed.notify(channel, 'same')]),
      )
      if (layer === 'core') for (let index = 0; index < 3; index++) core.notify(channel, 'same')
      await userQuery(client, 'BEGIN')
      await userQuery(client, `INSERT INTO ${table.name} VALUES (1)`)
      await userQuery(client, `INSERT INTO ${table.name} VALUES (2)`)
      await userQuery(client, 'ROLLBACK')
      await within(sent, 'the three notifications to be reported sent')

      const raw = layer === 'core' ? 'same' : '"same"'
      await observer.settle(client)
      expect(await table.rows(), "the user's rolled back rows").toEqual([])
      expect(transactionNotices(notices), 'notices about the transaction state').toEqual([])
      expect(observer.payloads(channel), 'three identical notifications, each delivered').toEqual([raw, raw, raw])
      expect([...coreErrors, ...typedErrors]).toEqual([])
      await within(Promise.all([core.end(), typed.end()]), 'end() of both instances')
    })
  }

  it("8.1 a notify never runs inside the user's transaction: it waits for the user's COMMIT and ROLLBACK, also of a failed transaction", async () => {
    const client = await connect()
    const notices = recordNotices(client)
    const table = await userTable(client)
    const { channels, names } = typedChannels(2, z.string())
    const [a, b] = names as [string, string]
    const observer = await Observer.start(names)
    const core = pgIPC(client)
    const typed = channels.attach(client)
    const coreErrors = errorsOf(core)
    const typedErrors = errorsOf(typed)

    // Inside an open transaction: nothing is delivered before the user's COMMIT, and the
    // notification is delivered even though the user rolled back.
    await userQuery(client, 'BEGIN')
    const coreSent = handled(waitFor(core, 'notify'))
    core.notify(a, 'during-rollback')
    const typedSent = handled(typed.notify(b, 'during-rollback'))
    await userQuery(client, `INSERT INTO ${table.name} VALUES (1)`)
    await userQuery(client, 'ROLLBACK')
    await within(Promise.all([coreSent, typedSent]), 'the notifications sent during a rolled back transaction')

    // Inside a FAILED transaction: the library's statements must not fail with it (or fail the user's).
    await userQuery(client, 'BEGIN')
    await expect(userQuery(client, 'SELECT 1/0')).rejects.toThrow(/division by zero/)
    const coreSent2 = handled(waitFor(core, 'notify'))
    core.notify(a, 'during-failed')
    const typedSent2 = handled(typed.notify(b, 'during-failed'))
    await nextTurn()
    const rollback = await userQuery(client, 'ROLLBACK')
    expect(rollback.command).toBe('ROLLBACK')
    await within(Promise.all([coreSent2, typedSent2]), 'the notifications sent during a failed transaction')

    // And inside a committed one, with the user's rows kept.
    await userQuery(client, 'BEGIN')
    const coreSent3 = handled(waitFor(core, 'notify'))
    core.notify(a, 'during-commit')
    const typedSent3 = handled(typed.notify(b, 'during-commit'))
    await userQuery(client, `INSERT INTO ${table.name} VALUES (3)`)
    await userQuery(client, 'COMMIT')
    await within(Promise.all([coreSent3, typedSent3]), 'the notifications sent during a committed transaction')

    await observer.settle(client)
    expect(observer.payloads(a)).toEqual(['during-rollback', 'during-failed', 'during-commit'])
    expect(observer.payloads(b)).toEqual(['"during-rollback"', '"during-failed"', '"during-commit"'])
    expect(await table.rows()).toEqual([3])
    expect(transactionNotices(notices)).toEqual([])
    expect([...coreErrors, ...typedErrors]).toEqual([])
    await within(Promise.all([core.end(), typed.end()]), 'end() of both instances')
  })

  it("8.1 a notify never runs inside the user's transaction: LISTEN/UNLISTEN neither, and they survive the user's ROLLBACK", async () => {
    const client = await connect()
    const notices = recordNotices(client)
    const core = pgIPC(client)
    const errors = errorsOf(core)
    const [a, b] = [uniqueChannel('l'), uniqueChannel('l')]

    // The LISTEN is handed over in the same tick as the user's BEGIN; the user then rolls back.
    core.on(a, () => {})
    const listened = core.listening(a)
    await userQuery(client, 'BEGIN')
    await userQuery(client, 'ROLLBACK')
    await within(listened, `listening(${a})`)
    expect(await listeningChannels(client), 'after the user rolled back').toEqual([a])

    // And the UNLISTEN ('unlisten': this instance no longer listens), with a LISTEN of another channel.
    const unlistened = handled(waitFor(core, 'unlisten', { filter: (channel: unknown) => channel === a }))
    core.removeAllListeners(a)
    core.on(b, () => {})
    const listenedB = core.listening(b)
    await userQuery(client, 'BEGIN')
    await userQuery(client, 'ROLLBACK')
    await within(listenedB, `listening(${b})`)
    await unlistened
    expect(await listeningChannels(client), 'after the user rolled back again').toEqual([b])
    expect(transactionNotices(notices)).toEqual([])
    expect(errors).toEqual([])
    await within(core.end(), 'core.end()')
    expect(await listeningChannels(client)).toEqual([])
  })
})

describe('8.2 a client-side query_timeout never makes the library resend what the server committed', () => {
  const QUERY_TIMEOUT_MS = 100
  const STALL_MS = 300

  /**
   * A client with `query_timeout`, and an event-loop stall that starts right after the library
   * handed its statement to pg: the statement runs and commits on the server meanwhile, and pg's
   * timer fires (timers run before the socket is read) although the answer is already there.
   */
  async function setup() {
    const client = await connectWith({ query_timeout: QUERY_TIMEOUT_MS })
    const library = watchLibraryQueries(client)
    const stallAfterNextLibraryQuery = async (): Promise<void> => {
      await within(library.next(), 'the library to hand its statement to pg')
      busyWait(STALL_MS)
    }
    return { client, stallAfterNextLibraryQuery }
  }

  it('8.2 query_timeout: a single core notification is never reported failed when it was delivered', async () => {
    const { client, stallAfterNextLibraryQuery } = await setup()
    const channel = uniqueChannel('qt')
    const observer = await Observer.start([channel])
    const core = pgIPC(client)
    const outcome = new Promise<string>((resolve) => {
      core.on('notify', () => resolve('sent'))
      core.on('error', (error) => resolve(error.code))
    })
    const stalled = stallAfterNextLibraryQuery()
    core.notify(channel, 'once')
    await stalled
    const reported = await within(outcome, 'the notification to be reported sent or failed')
    await observer.settle(client)
    const delivered = count(observer.payloads(channel), 'once')
    if (reported === 'sent') expect(delivered, 'reported sent: delivered exactly once').toBe(1)
    else if (reported === ErrorCode.OutcomeUnknown) expect(delivered, 'outcome unknown: at most once').toBeLessThanOrEqual(1)
    else expect(delivered, `reported failed (${reported}): never delivered`).toBe(0)
    await within(core.end(), 'core.end()')
  })

  it('8.2 query_timeout: a typed notification is never reported failed when it was delivered', async () => {
    const { client, stallAfterNextLibraryQuery } = await setup()
    const { channels, names } = typedChannels(1, z.string())
    const channel = names[0] as string
    const observer = await Observer.start([channel])
    const typed = channels.attach(client)
    errorsOf(typed)
    const stalled = stallAfterNextLibraryQuery()
    const sent = typed.notify(channel, 'once')
    await stalled
    const outcome = await settledWithin(sent, 'the typed notify() to settle')
    await observer.settle(client)
    const delivered = count(observer.payloads(channel), '"once"')
    if (outcome.status === 'fulfilled') expect(delivered, 'resolved: delivered exactly once').toBe(1)
    else if ((outcome.reason as PgIpcError).code === ErrorCode.OutcomeUnknown) expect(delivered).toBeLessThanOrEqual(1)
    else expect(delivered, `rejected with ${String(outcome.reason)}: never delivered`).toBe(0)
    await within(typed.end(), 'typed.end()')
  })

  const batches = {
    distinct: ['p0', 'p1', 'p2', 'p3', 'p4', 'p5'],
    identical: ['same', 'same', 'same', 'same', 'same', 'same'],
    mixed: ['a', 'a', 'b', 'c', 'b', 'a'],
  }
  for (const [kind, payloads] of Object.entries(batches)) {
    it(`8.2 query_timeout: a batch of ${kind} notifications is never delivered twice (typed, each call's outcome checked)`, async () => {
      const { client, stallAfterNextLibraryQuery } = await setup()
      const { channels, names } = typedChannels(1, z.string())
      const channel = names[0] as string
      const observer = await Observer.start([channel])
      const typed = channels.attach(client)
      errorsOf(typed)
      // Called in one tick: they travel together (identical pairs in separate transactions).
      const stalled = stallAfterNextLibraryQuery()
      const calls = payloads.map((payload) => typed.notify(channel, payload))
      await stalled
      const outcomes = await Promise.all(calls.map((promise, index) => settledWithin(promise, `notify #${index}`)))
      await observer.settle(client)
      const got = observer.payloads(channel)
      for (const payload of new Set(payloads)) {
        const mine = payloads.flatMap((item, index) => (item === payload ? [outcomes[index]] : []))
        const sent = mine.filter((outcome) => outcome?.status === 'fulfilled').length
        const unknown = mine.filter(
          (outcome) => outcome?.status === 'rejected' && (outcome.reason as PgIpcError).code === ErrorCode.OutcomeUnknown,
        ).length
        const delivered = count(got, JSON.stringify(payload))
        const summary = `"${payload}": ${mine.length} calls, ${sent} resolved, ${unknown} outcome unknown, delivered ${delivered}; outcomes ${JSON.stringify(
          mine.map((outcome) => (outcome?.status === 'fulfilled' ? 'sent' : (outcome?.reason as PgIpcError).code)),
        )}`
        expect(delivered, summary).toBeGreaterThanOrEqual(sent)
        expect(delivered, summary).toBeLessThanOrEqual(sent + unknown)
      }
      await within(typed.end(), 'typed.end()')
    })
  }

  it('8.2 query_timeout: a batch of core notifications is never delivered twice', async () => {
    const { client, stallAfterNextLibraryQuery } = await setup()
    // One channel per notification: a core error event names the channel, so each call's outcome is known.
    const channels = Array.from({ length: 6 }, () => uniqueChannel('qtb'))
    const observer = await Observer.start(channels)
    const core = pgIPC(client)
    const outcomes = new Map<string, string[]>()
    const record = (channel: string | undefined, what: string): void => {
      if (channel === undefined) return
      outcomes.set(channel, [...(outcomes.get(channel) ?? []), what])
    }
    let settled = 0
    const allSettled = within(
      new Promise<void>((resolve) => {
        const one = (): void => {
          settled += 1
          if (settled === channels.length) resolve()
        }
        core.on('notify', (channel) => {
          record(channel, 'sent')
          one()
        })
        core.on('error', (error) => {
          record(error.channel, error.code)
          one()
        })
      }),
      'every core notification to be reported sent or failed',
    )
    const stalled = stallAfterNextLibraryQuery()
    for (const channel of channels) core.notify(channel, 'p')
    await stalled
    await allSettled
    await observer.settle(client)
    for (const channel of channels) {
      const reported = outcomes.get(channel) ?? []
      const delivered = observer.payloads(channel).length
      const summary = `channel #${channels.indexOf(channel)}: reported ${JSON.stringify(reported)}, delivered ${delivered}`
      expect(reported.length, summary).toBe(1)
      if (reported[0] === 'sent') expect(delivered, summary).toBe(1)
      else if (reported[0] === ErrorCode.OutcomeUnknown) expect(delivered, summary).toBeLessThanOrEqual(1)
      else expect(delivered, summary).toBe(0)
    }
    await within(core.end(), 'core.end()')
  })
})

/** A private server restarted as a hot standby with no primary: it accepts connections, and LISTEN fails there. */
async function standbyServer(): Promise<string> {
  const server = await privateServer()
  await server.stopServerOnly('fast')
  const signal = join(server.dataDir, 'standby.signal')
  writeFileSync(signal, '')
  const account = serverAccount()
  if (account !== undefined) chownSync(signal, account.uid, account.gid)
  await server.start()
  return server.connectionString
}

describe('8.3 listening() always settles; nothing waits forever after a connection loss', () => {
  it('8.3 listening() settles when the connection dies before the LISTEN became active', async () => {
    const admin = await connect()
    const client = await connect()
    const closed = whenClosed(client)
    const core = pgIPC(client)
    const errors = errorsOf(core)
    const channel = uniqueChannel('l')
    // The user's long query holds the session, so the LISTEN waits behind it.
    const sleeping = userQuery(client, 'SELECT pg_sleep(30)').catch((error: unknown) => error)
    core.on(channel, () => {})
    const listened = settledWithin(core.listening(channel), `listening(${channel}) after the connection died`)
    await nextTurn()
    await admin.query('SELECT pg_terminate_backend($1)', [pidOf(client)])
    await within(closed, 'the connection to close')
    await sleeping
    const outcome = await listened
    expect(outcome.status, 'listening() of a LISTEN that never ran').toBe('rejected')
    expect((outcome as { reason: unknown }).reason).toBeInstanceOf(PgIpcError)
    expect(errors.some((error) => error instanceof ConnectionLostError)).toBe(true)
    await within(core.end(), 'end()')
  })

  it('8.3 listening() rejects when the LISTEN fails on the server (a hot standby)', async () => {
    const url = await standbyServer()
    const client = await connect(url)
    expect((await client.query('SELECT pg_is_in_recovery() AS standby')).rows[0]?.standby).toBe(true)
    const core = pgIPC(client)
    const errors = errorsOf(core)
    const channel = uniqueChannel('l')
    core.on(channel, () => {})
    const reason = await rejectionOf(core.listening(channel), `listening(${channel}) on a standby`)
    expect(reason).toBeInstanceOf(PgIpcError)
    expect(errors.find((error) => error instanceof QueryFailedError)?.sqlState).toBe('25006')
    await within(core.end(), 'end()')
  })

  it('8.3 on()/listening()/messages() after a connection loss: an error, a rejection, a rejecting next(); nothing waits forever', async () => {
    const admin = await connect()
    const client = await connect()
    const closed = whenClosed(client)
    const { channels, names } = typedChannels(2, z.string())
    const [a, b] = names as [string, string]
    const core = pgIPC(client)
    const typed = channels.attach(client)
    const coreErrors = errorsOf(core)
    const typedErrors = errorsOf(typed)
    const coreLost = handled(waitFor(core, 'error', { filter: (error: unknown) => error instanceof ConnectionLostError }))
    await admin.query('SELECT pg_terminate_backend($1)', [pidOf(client)])
    await within(closed, 'the connection to close')
    await within(coreLost, 'the ConnectionLostError of the loss')

    // Core: on() still registers (EventEmitter semantics), and says the connection is gone.
    const before = coreErrors.length
    const again = within(
      new Promise<PgIpcErrorType>((resolve) => core.on('error', resolve)),
      "an 'error' for on() after the loss",
    )
    core.on(a, () => {})
    expect(core.listenerCount(a)).toBe(1)
    expect((await again).code).toBe(ErrorCode.ConnectionLost)
    expect(coreErrors.length).toBeGreaterThan(before)
    await rejectionOf(core.listening(a), `core listening(${a}) after the loss`)

    // Typed: the same for on(), and a messages() loop whose next() rejects.
    const typedAgain = within(
      new Promise<PgIpcErrorType>((resolve) => typed.on('error', resolve)),
      "a typed 'error' for on() after the loss",
    )
    typed.on(b, () => {})
    expect((await typedAgain).code).toBe(ErrorCode.ConnectionLost)
    await rejectionOf(typed.listening(b), `typed listening(${b}) after the loss`)
    const iterator = typed.messages(a)
    const reason = await rejectionOf(iterator.next(), 'next() of a messages() loop started after the loss')
    expect(reason).toBeInstanceOf(ConnectionLostError)
    expect(typedErrors.every((error) => error.code === ErrorCode.ConnectionLost)).toBe(true)
    await within(Promise.all([core.end(), typed.end()]), 'end() of both instances')
  })

  it('8.3 listening() settles when the last listener leaves, or the instance ends, before the LISTEN is active (both layers)', async () => {
    const client = await connect()
    const { channels, names } = typedChannels(2, z.string())
    const [a, b] = names as [string, string]
    const core = pgIPC(client)
    const typed = channels.attach(client)
    const errors = [...[core, typed].map((instance) => errorsOf(instance))]
    const fn = (): void => {}
    core.on(a, fn)
    const coreOff = settledWithin(core.listening(a), 'core listening() after off()')
    core.off(a, fn)
    typed.on(b, fn)
    const typedOff = settledWithin(typed.listening(b), 'typed listening() after off()')
    typed.off(b, fn)
    for (const outcome of [await coreOff, await typedOff]) {
      if (outcome.status === 'rejected') expect((outcome.reason as PgIpcError).code).toBe(ErrorCode.NotListening)
    }
    core.on(a, fn)
    typed.on(b, fn)
    const coreEnd = settledWithin(core.listening(a), 'core listening() after end()')
    const typedEnd = settledWithin(typed.listening(b), 'typed listening() after end()')
    const ended = within(Promise.all([core.end(), typed.end()]), 'end() of both instances')
    for (const outcome of [await coreEnd, await typedEnd]) {
      if (outcome.status === 'rejected') expect((outcome.reason as PgIpcError).code).toBe(ErrorCode.NotListening)
    }
    await ended
    expect(await listeningChannels(client)).toEqual([])
    expect(errors.flat()).toEqual([])
  })

  it("8.3 a user's removeAllListeners() does not strand a pending listening()", async () => {
    const client = await connect()
    const channel = uniqueChannel('l')
    const core = pgIPC(client)
    core.on(channel, () => {})
    const pending = settledWithin(core.listening(channel), `listening(${channel}) after removeAllListeners()`)
    core.removeAllListeners()
    const outcome = await pending
    if (outcome.status === 'rejected') expect((outcome.reason as PgIpcError).code).toBe(ErrorCode.NotListening)

    // Also once the LISTEN is on its way, and for the typed layer.
    const other = uniqueChannel('l')
    core.on(other, () => {})
    const pending2 = settledWithin(core.listening(other), `listening(${other}) after removeAllListeners() a turn later`)
    await nextTurn()
    core.removeAllListeners()
    await pending2

    const { channels, names } = typedChannels(1, z.string())
    const typed = channels.attach(client)
    typed.on(names[0] as string, () => {})
    const pending3 = settledWithin(typed.listening(names[0] as string), 'typed listening() after removeAllListeners()')
    typed.removeAllListeners()
    await pending3

    // Whatever settled how, the bookkeeping is right: nobody listens.
    await within(Promise.all([core.end(), typed.end()]), 'end()')
    expect(await listeningChannels(client)).toEqual([])
  })
})

describe('8.4 order through an outage (reconnecting mode)', () => {
  // "Right after the reconnect": the first moments a user can see, from the earliest on.
  const moments = ["in the 'listen' event of the re-LISTEN", 'after await listening()', "in the 'reconnect' event"] as const
  for (const moment of moments) {
    it(`8.4 notifications that waited through the outage arrive before ones sent right after the reconnect (${moment}), in call order`, async () => {
      const server = await privateServer()
      const admin = await adminClient(server.connectionString)
      const channel = uniqueChannel('order')
      const observer = await Observer.start([channel], server.connectionString)
      const owned = ownedClients(server.connectionString)
      const ipc = endAfterTest(pgIPC({ connect: owned.connect, retry: { initialDelayMs: 20, maxDelayMs: 200 } }))
      const errors = errorsOf(ipc)
      ipc.on(channel, () => {})
      await waitFor(ipc, 'connect', { rejectOnError: false })
      await within(ipc.listening(channel), 'ipc.listening()')

      const sent: string[] = []
      ipc.on('notify', (_channel, payload) => sent.push(String(payload)))
      const disconnected = handled(nextDisconnect(ipc))
      await admin.query('SELECT pg_terminate_backend($1)', [ipc.processId])
      await disconnected
      const waited = ['w1', 'w2', 'w3', 'w4', 'w5']
      for (const payload of waited) ipc.notify(channel, payload) // no connection: they wait
      const after = ['a1', 'a2', 'a3']
      const sendAfter = (): void => {
        for (const payload of after) ipc.notify(channel, payload)
      }
      if (moment === "in the 'listen' event of the re-LISTEN") {
        ipc.once('listen', sendAfter)
      } else if (moment === "in the 'reconnect' event") {
        ipc.once('reconnect', sendAfter)
      } else {
        const listened = ipc.listening(channel) // no extra hops: the user's own await
        void listened.then(sendAfter)
        await within(listened, 'listening() after the reconnect')
      }
      await within(
        new Promise<void>((resolve) => {
          const check = (): void => {
            if (sent.length + errors.length >= waited.length + after.length) resolve()
          }
          check()
          ipc.on('notify', check)
          ipc.on('error', check)
        }),
        'all eight notifications to be reported sent',
      )
      await observer.settle(admin)
      expect(errors).toEqual([])
      expect(observer.payloads(channel), 'delivery order').toEqual([...waited, ...after])
      expect(sent, "order of the 'notify' events").toEqual([...waited, ...after])
      await within(ipc.end(), 'ipc.end()')
    })
  }
})

describe('8.5 messages(): every next() settles, in order', () => {
  it('8.5 two pending next() calls both resolve, in order', async () => {
    const client = await connect()
    const { channels, names } = typedChannels(1, z.string())
    const channel = names[0] as string
    const typed = channels.attach(client)
    const iterator = typed.messages(channel)
    const both = Promise.all([iterator.next(), iterator.next()])
    await within(typed.listening(channel), 'typed.listening()')
    await within(typed.notify(channel, 'one'), 'typed.notify()')
    await within(typed.notify(channel, 'two'), 'typed.notify()')
    const [first, second] = await within(both, 'Promise.all([it.next(), it.next()])')
    expect([first.value?.payload, second.value?.payload]).toEqual(['one', 'two'])
    await within(typed.end(), 'typed.end()')
  })

  it('8.5 throw() settles a pending next() with done, and rejects with its error', async () => {
    const client = await connect()
    const { channels, names } = typedChannels(1, z.string())
    const channel = names[0] as string
    const typed = channels.attach(client)
    const iterator = typed.messages(channel)
    const pending = settledWithin(iterator.next(), 'the pending next() after throw()')
    const error = new Error('stop')
    await expect(iterator.throw(error)).rejects.toBe(error)
    const outcome = await pending
    expect(outcome).toEqual({ status: 'fulfilled', value: { value: undefined, done: true } })
    await within(typed.end(), 'typed.end()')
    expect(await listeningChannels(client)).toEqual([])
  })

  for (const form of ['removeAllListeners(name)', 'removeAllListeners()'] as const) {
    it(`8.5 the typed ${form} ends running loops and releases the LISTEN`, async () => {
      const client = await connect()
      const { channels, names } = typedChannels(1, z.string())
      const channel = names[0] as string
      const typed = channels.attach(client)
      const iterator = typed.messages(channel)
      const looped: string[] = []
      const loop = (async () => {
        for await (const message of typed.messages(channel)) looped.push(message.payload as string)
        return 'ended'
      })()
      const pending = iterator.next()
      await within(typed.listening(channel), 'typed.listening()')
      await within(typed.notify(channel, 'one'), 'typed.notify()')
      expect((await within(pending, 'the first message')).value?.payload).toBe('one')
      const next = settledWithin(iterator.next(), `a pending next() after ${form}`)
      if (form === 'removeAllListeners()') typed.removeAllListeners()
      else typed.removeAllListeners(channel)
      // Registered after the call (removeAllListeners() removes event listeners too); the UNLISTEN takes a round trip.
      const unlistened = within(
        new Promise<void>((resolve) => typed.on('unlisten', (name) => name === channel && resolve())),
        "the typed 'unlisten' event",
      )
      expect(await next).toEqual({ status: 'fulfilled', value: { value: undefined, done: true } })
      expect(await within(loop, `the for await loop to end after ${form}`)).toBe('ended')
      expect(looped).toEqual(['one'])
      expect(await within(iterator.next(), 'next() after the end')).toEqual({ value: undefined, done: true })
      expect(typed.listenerCount(channel)).toBe(0)
      await unlistened
      expect(await listeningChannels(client)).toEqual([])
      await within(typed.end(), 'typed.end()')
    })
  }
})

describe('8.6 a payload arrives exactly as sent or is refused; one bad payload fails nothing else', () => {
  it('8.6 a core payload with a lone surrogate: raw text is refused synchronously; inside JSON it arrives exactly', async () => {
    const client = await connect()
    const channel = uniqueChannel('bad')
    const observer = await Observer.start([channel])
    const core = pgIPC(client)
    const errors = errorsOf(core)
    const sent = notifyEvents(core, 4, 'the two good notifications and the two JSON ones')
    core.notify(channel, 'good 1')
    let thrown: unknown
    try {
      core.notify(channel, 'bad \ud800')
    } catch (error) {
      thrown = error
    }
    expect(thrown, "core.notify(channel, 'bad \\ud800') throws").toBeInstanceOf(PayloadNotEncodableError)
    expect((thrown as PgIpcError).code).toBe(ErrorCode.PayloadNotEncodable)
    // JSON carries a lone surrogate as an escape (pure ASCII on the wire): it arrives as sent.
    const inJson = [{ text: 'lone \udc00 in JSON' }, ['\ud83d']]
    for (const payload of inJson) core.notify(channel, payload)
    // The user's query queued meanwhile succeeds.
    const users = userQuery(client, 'SELECT 1 AS one')
    core.notify(channel, 'good 2')
    expect((await users).rows).toEqual([{ one: 1 }])
    await sent
    await observer.settle(client)
    const delivered = observer.payloads(channel)
    expect(delivered).toEqual(['good 1', JSON.stringify(inJson[0]), JSON.stringify(inJson[1]), 'good 2'])
    expect(JSON.parse(delivered[1] as string)).toEqual(inJson[0])
    expect(JSON.parse(delivered[2] as string)).toEqual(inJson[1])
    expect(errors).toEqual([])
    await within(core.end(), 'core.end()')
  })

  it('8.6 a typed payload with a lone surrogate (a string, or inside a JSON value) arrives exactly as sent', async () => {
    const client = await connect()
    const { channels, names } = typedChannels(1, z.unknown())
    const channel = names[0] as string
    const observer = await Observer.start([channel])
    const typed = channels.attach(client)
    const errors = errorsOf(typed)
    const results = [
      typed.notify(channel, 'good'),
      typed.notify(channel, 'bad \ud800'),
      typed.notify(channel, { nested: ['x', 'bad \udfff'] }),
      typed.notify(channel, 'good'),
    ].map((promise, index) => settledWithin(promise, `typed notify #${index}`))
    const settled = await Promise.all(results)
    expect(settled.map((result) => result?.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled'])
    await observer.settle(client)
    // The typed layer always sends JSON, which escapes a lone surrogate: the receiver gets it back as is.
    const delivered = observer.payloads(channel)
    expect(delivered.map((raw) => JSON.parse(raw) as unknown)).toEqual([
      'good',
      'bad \ud800',
      { nested: ['x', 'bad \udfff'] },
      'good',
    ])
    expect(errors).toEqual([])
    await within(typed.end(), 'typed.end()')
  })

  it('8.6 a channel name with a lone surrogate is an InvalidChannelError', async () => {
    const client = await connect()
    const core = pgIPC(client)
    const errors = errorsOf(core)
    const bad = `bad_\ud800_${uniqueChannel('x')}`
    expect(() => core.notify(bad, 'x'), 'notify() on a channel with a lone surrogate').toThrow(InvalidChannelError)
    expect(() => core.on(bad, () => {})).toThrow(InvalidChannelError)
    expect(core.listenerCount(bad)).toBe(0)
    expect(() => defineChannels({ [bad]: z.string() })).toThrow(InvalidChannelError)
    await within(core.end(), 'core.end()')
    expect(errors).toEqual([])
    expect(await listeningChannels(client)).toEqual([])
  })

  for (const layer of ['core', 'typed'] as const) {
    it(`8.6 a payload the database encoding cannot hold ('€' in LATIN1) fails alone; the batch and the user's queries go through (${layer})`, async () => {
      const url = await latin1Database()
      const client = await connect(url)
      const notices = recordNotices(client)
      const { channels, names } = typedChannels(1, z.string())
      const channel = names[0] as string
      const observer = await Observer.start([channel], url)
      const core = pgIPC(client)
      const typed = channels.attach(client)
      const coreErrors = errorsOf(core)
      errorsOf(typed)
      // Identical pairs make the library use transactions of its own; '€' sits in the middle.
      const payloads = ['a', 'a', 'b', '€', 'c', 'a', 'é']
      const good = payloads.filter((payload) => payload !== '€')
      const coreSent: string[] = []
      core.on('notify', (_channel, payload) => coreSent.push(String(payload)))
      const typedOutcomes =
        layer === 'typed'
          ? payloads.map((payload) => settledWithin(typed.notify(channel, payload), `typed notify(${payload})`))
          : []
      if (layer === 'core') for (const payload of payloads) core.notify(channel, payload)
      // The user's queries, queued behind the library's statements at several moments.
      const users = [userQuery(client, 'SELECT 1 AS n')]
      await Promise.resolve()
      users.push(userQuery(client, 'SELECT 2 AS n'))
      await nextTurn()
      users.push(userQuery(client, 'SELECT 3 AS n'))
      const userOutcomes = await Promise.all(users.map((query, index) => settledWithin(query, `user query #${index}`)))
      expect(
        userOutcomes.map((outcome) => (outcome.status === 'fulfilled' ? outcome.value.rows[0] : String(outcome.reason))),
        "the user's queries queued behind the library's statements",
      ).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }])

      if (layer === 'core') {
        await within(
          new Promise<void>((resolve) => {
            const check = (): void => {
              if (coreSent.length + coreErrors.length >= payloads.length) resolve()
            }
            check()
            core.on('notify', check)
            core.on('error', check)
          }),
          'every core notification to be reported',
        )
        expect(coreSent).toEqual(good)
        expect(coreErrors).toHaveLength(1)
        expect(coreErrors[0]).toBeInstanceOf(QueryFailedError)
        expect(coreErrors[0]?.code).toBe(ErrorCode.QueryFailed)
      } else {
        const outcomes = await Promise.all(typedOutcomes)
        payloads.forEach((payload, index) => {
          const outcome = outcomes[index]
          if (payload === '€') {
            expect(outcome?.status, payload).toBe('rejected')
            expect((outcome as { reason: unknown }).reason).toBeInstanceOf(QueryFailedError)
          } else {
            expect(outcome, payload).toEqual({ status: 'fulfilled', value: undefined })
          }
        })
      }
      await observer.settle(client)
      expect(observer.payloads(channel)).toEqual(layer === 'core' ? good : good.map((payload) => JSON.stringify(payload)))
      expect((await userQuery(client, 'SELECT 4 AS n')).rows).toEqual([{ n: 4 }])
      expect(transactionNotices(notices)).toEqual([])
      await within(Promise.all([core.end(), typed.end()]), 'end() of both instances')
    })
  }
})

describe('8.7 notifications queued on a client that never connects settle', () => {
  it("8.7 core: end() emits an 'error' (ERR_PG_IPC_ENDED) for each before 'end', and resolves after", async () => {
    const client = new pg.Client({ connectionString: databaseUrl() }) // never connected
    const core = pgIPC(client)
    const log: string[] = []
    core.on('error', (error) => log.push(`error ${error.code} ${error.channel ?? ''}`))
    core.on('end', () => log.push('end'))
    const [a, b] = [uniqueChannel('n'), uniqueChannel('n')]
    core.notify(a, 'x')
    core.notify(b, 'y')
    await within(core.end(), 'end()')
    log.push('end() resolved')
    // One error per notification (in either order), both before 'end', and end() resolves last.
    expect(log.slice(0, 2).sort(), "events of a never-connected client's end()").toEqual(
      [`error ${ErrorCode.Ended} ${a}`, `error ${ErrorCode.Ended} ${b}`].sort(),
    )
    expect(log.slice(2)).toEqual(['end', 'end() resolved'])
  })

  it('8.7 typed: the notify() promises reject with ERR_PG_IPC_ENDED before end() resolves', async () => {
    const client = new pg.Client({ connectionString: databaseUrl() })
    const { channels, names } = typedChannels(1, z.string())
    const typed = channels.attach(client)
    const log: string[] = []
    const sent = typed.notify(names[0] as string, 'x').then(
      () => log.push('resolved'),
      (error: PgIpcError) => log.push(`rejected ${error.code}`),
    )
    await within(typed.end(), 'end()')
    log.push('end() resolved')
    await within(sent, 'the notify() promise')
    expect(log).toEqual([`rejected ${ErrorCode.Ended}`, 'end() resolved'])
  })

  it('8.7 a client whose connect() fails: queued notifications fail with ERR_PG_IPC_CONNECTION_LOST', async () => {
    const port = await freePort() // nothing listens there
    const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' })
    const { channels, names } = typedChannels(1, z.string())
    const core = pgIPC(client)
    const typed = channels.attach(client)
    const coreFailed = within(
      new Promise<PgIpcErrorType>((resolve) => core.on('error', resolve)),
      "the core's 'error' for its queued notification",
    )
    errorsOf(typed)
    core.notify(names[0] as string, 'core')
    const typedSent = handled(settledWithin(typed.notify(names[0] as string, 'typed'), 'the typed notify()'))
    await expect(client.connect()).rejects.toThrow()
    expect((await coreFailed).code).toBe(ErrorCode.ConnectionLost)
    const outcome = await typedSent
    expect(outcome.status).toBe('rejected')
    expect(((outcome as { reason: unknown }).reason as PgIpcError).code).toBe(ErrorCode.ConnectionLost)
    await within(Promise.all([core.end(), typed.end()]), 'end()')
  })
})

describe('8.8 a health check never kills a healthy, busy connection', () => {
  it('8.8 10,000 queued notifies with healthCheck { intervalMs: 50, timeoutMs: 200 }: no disconnect, all delivered', async () => {
    const server = await privateServer()
    const channel = uniqueChannel('busy')
    const observer = await Observer.start([channel], server.connectionString)
    const owned = ownedClients(server.connectionString)
    const ipc = endAfterTest(pgIPC({ connect: owned.connect, healthCheck: { intervalMs: 50, timeoutMs: 200 } }))
    const errors = errorsOf(ipc)
    const disconnects: string[] = []
    ipc.on('disconnect', (error) => disconnects.push(error.message))
    await waitFor(ipc, 'connect', { rejectOnError: false })
    const total = 10_000
    const sent = notifyEvents(ipc, total, `${total} notify events`)
    const killed = new Promise<never>((_, reject) =>
      ipc.once('disconnect', (error) => reject(new Error(`'disconnect' while the backlog drained: ${error.message}`))),
    )
    // A cache-invalidation burst: identical payloads, each its own transaction on the server.
    for (let index = 0; index < total; index++) ipc.notify(channel, index % 2 === 0 ? 'even' : 'odd')
    await within(Promise.race([sent, killed]), `${total} notify events`, 120_000)
    await observer.settle()
    expect(disconnects, 'disconnect events').toEqual([])
    expect(observer.payloads(channel).length).toBe(total)
    expect(owned.clients.length, 'connections made').toBe(1)
    expect(errors).toEqual([])
    await within(ipc.end(), 'ipc.end()')
  }, 180_000)
})

describe('8.9 end() releases every channel, whatever the user does with transactions meanwhile', () => {
  const timings = ['same tick', 'next microtask', 'next turn', 'already open'] as const
  for (const timing of timings) {
    it(`8.9 end() with two channels and the user's BEGIN ... ROLLBACK (${timing}): pg_listening_channels() is empty`, async () => {
      const client = await connect()
      const notices = recordNotices(client)
      const core = pgIPC(client)
      const errors = errorsOf(core)
      const [a, b] = [uniqueChannel('e'), uniqueChannel('e')]
      core.on(a, () => {})
      core.on(b, () => {})
      await within(Promise.all([core.listening(a), core.listening(b)]), 'the LISTENs')
      expect(await listeningChannels(client)).toEqual([a, b].sort())

      if (timing === 'already open') await userQuery(client, 'BEGIN')
      const ended = settledWithin(core.end(), 'end()')
      if (timing === 'next microtask') await Promise.resolve()
      if (timing === 'next turn') await nextTurn()
      if (timing !== 'already open') await userQuery(client, 'BEGIN')
      await userQuery(client, 'SELECT 1')
      await userQuery(client, 'ROLLBACK')
      // And once more while end() may still be working.
      await userQuery(client, 'BEGIN')
      await userQuery(client, 'ROLLBACK')
      expect((await ended).status).toBe('fulfilled')
      expect(await listeningChannels(client), 'after end()').toEqual([])
      expect(transactionNotices(notices)).toEqual([])
      expect(errors).toEqual([])
    })
  }

  it("8.9 end() of one instance keeps the channel another instance on the client still needs, through the user's ROLLBACK", async () => {
    const client = await connect()
    const first = pgIPC(client)
    const second = pgIPC(client)
    const [shared, own] = [uniqueChannel('e'), uniqueChannel('e')]
    first.on(shared, () => {})
    first.on(own, () => {})
    second.on(shared, () => {})
    await within(Promise.all([first.listening(shared), first.listening(own), second.listening(shared)]), 'the LISTENs')
    const ended = settledWithin(first.end(), 'end()')
    await userQuery(client, 'BEGIN')
    await userQuery(client, 'ROLLBACK')
    expect((await ended).status).toBe('fulfilled')
    expect(await listeningChannels(client)).toEqual([shared])
    await within(second.end(), 'second.end()')
    expect(await listeningChannels(client)).toEqual([])
  })
})
