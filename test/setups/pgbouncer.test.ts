// LISTEN cannot work through a pooler in transaction mode: the reconnecting mode must say so (a
// self-addressed probe notification never arrives), and must not cry wolf through a session-mode
// pool, where LISTEN works. Against the real thing: Debian's PgBouncer in front of a private server.
// Skipped, with the reason printed, where PgBouncer is not installed (.ci/run installs it).

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pgIPC, ErrorCode, UnsupportedSetupError, type ConnectInfo, type Message, type PgIpcError } from '../../src/index.js'
import { connect, uniqueChannel, waitFor } from '../support/db.js'
import { startPostgres, type PgServer } from '../support/postgres.js'
import { findPgBouncer, startPgBouncer, type PgBouncer } from './pgbouncer.js'
import { until } from './replication.js'

const found = findPgBouncer()
const skipReason = typeof found === 'string' ? undefined : found.missing
if (skipReason !== undefined) console.warn(`[pgbouncer] SKIPPING the PgBouncer tests: ${skipReason}`)

/** Clients PgBouncer still has on the test pools (the admin console's own connection not counted). */
async function poolClients(bouncer: PgBouncer): Promise<number> {
  const admin = await connect(bouncer.adminUrl)
  const { rows } = await admin.query<{ database: string }>('SHOW CLIENTS')
  await admin.end()
  return rows.filter((row) => row.database === 'txn' || row.database === 'sess').length
}

describe.skipIf(skipReason !== undefined)('PgBouncer', () => {
  let server: PgServer | undefined
  let bouncer: PgBouncer | undefined
  const running = (): { server: PgServer; bouncer: PgBouncer } => {
    if (server === undefined || bouncer === undefined) throw new Error('PostgreSQL or PgBouncer did not start')
    return { server, bouncer }
  }

  beforeAll(async () => {
    server = await startPostgres()
    bouncer = await startPgBouncer(found as string, server)
    console.log(
      `[pgbouncer] ${bouncer.version} on port ${bouncer.port} in front of PostgreSQL ${server.version} on port ${server.port}`,
    )
  })
  afterAll(async () => {
    await bouncer?.stop()
    await server?.stop()
  })

  it('transaction-mode pool: the reconnecting mode reports UnsupportedSetupError("pooler") and never connects', async () => {
    const { bouncer } = running()
    const probeTimeoutMs = 1_000
    const started = Date.now()
    const ipc = pgIPC({ connect: bouncer.transactionUrl, probeTimeoutMs, retry: { initialDelayMs: 100, maxDelayMs: 500 } })
    const errors: PgIpcError[] = []
    const connects: ConnectInfo[] = []
    ipc.on('error', (error) => errors.push(error))
    ipc.on('connect', (info) => connects.push(info))
    const received: Message[] = []
    ipc.on(uniqueChannel('pooled'), (message) => received.push(message))
    try {
      await until('a setup error was reported', () => errors.length > 0, 15 * probeTimeoutMs)
      // Wide margin: the probe waits probeTimeoutMs, plus a connection or two.
      expect(Date.now() - started).toBeLessThan(10 * probeTimeoutMs)
      const [error] = errors
      expect(error).toBeInstanceOf(UnsupportedSetupError)
      expect(error?.code).toBe(ErrorCode.UnsupportedSetup)
      expect((error as UnsupportedSetupError).setup).toBe('pooler')
      expect(error?.message).toMatch(/pooler/)
      expect(error?.message).toMatch(/transaction/)
      expect(error?.message).toMatch(/session/) // what to do: a session-mode pool, or no pooler
      expect(connects).toEqual([])
      expect(ipc.processId).toBeUndefined()
    } finally {
      await ipc.end()
    }
    expect(received).toEqual([])
    await until('PgBouncer has no client of the ended instance left', async () => (await poolClients(bouncer)) === 0, 5_000)
  })

  it('session-mode pool: connects with no false alarm, and messages flow both ways', async () => {
    const { server, bouncer } = running()
    const ipc = pgIPC({ connect: bouncer.sessionUrl, probeTimeoutMs: 2_000 })
    const errors: PgIpcError[] = []
    ipc.on('error', (error) => errors.push(error))
    const channel = uniqueChannel('pooled')
    const received: string[] = []
    ipc.on(channel, (message) => received.push(message.rawPayload))
    try {
      const info = await waitFor<ConnectInfo>(ipc, 'connect', { timeoutMs: 15_000 })
      expect(info.reconnected).toBe(false)
      await ipc.listening(channel)

      // From a direct connection to the server...
      const direct = await connect(server.connectionString)
      const fromDirect = new Promise((resolve) => ipc.once(channel, resolve))
      await direct.query('SELECT pg_notify($1, $2)', [channel, 'from a direct connection'])
      await fromDirect
      // ...and from the instance itself, through the pool.
      const fromSelf = new Promise((resolve) => ipc.once(channel, resolve))
      ipc.notify(channel, 'from the instance')
      await fromSelf
      expect(received).toEqual(['from a direct connection', 'from the instance'])
      expect(errors).toEqual([])
    } finally {
      await ipc.end()
    }
    await until('PgBouncer has no client of the ended instance left', async () => (await poolClients(bouncer)) === 0, 5_000)
  })

  it('session-mode pool: processId is the backend pid, so message.processId tells your own notifications', async () => {
    const { bouncer } = running()
    const ipc = pgIPC({ connect: bouncer.sessionUrl })
    const channel = uniqueChannel('pooled')
    const own: Message[] = []
    ipc.on(channel, (message) => own.push(message))
    try {
      const info = await waitFor<ConnectInfo>(ipc, 'connect', { timeoutMs: 15_000 })
      await ipc.listening(channel)
      const arrived = new Promise((resolve) => ipc.once(channel, resolve))
      ipc.notify(channel, 'mine')
      await arrived
      // PgBouncer hands clients a made-up BackendKeyData pid; the sender's pid in a notification is
      // the real backend's. Documented: "compare with message.processId to skip your own".
      expect.soft(own[0]?.processId).toBe(ipc.processId)
      expect.soft(info.processId).toBe(ipc.processId)
    } finally {
      await ipc.end()
    }
  })
})
