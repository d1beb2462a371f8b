// LISTEN cannot work on a hot standby: the library must say so, loudly and with what to do.
// Against the real thing: a private primary and a hot standby streaming from it (see replication.ts),
// made two ways:
//   - with pg_basebackup, using a Debian PostgreSQL install (skipped, with the reason printed, where
//     there is none);
//   - with the suite's embedded binaries (the matrix's major), as a copy of a cleanly stopped primary.

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  pgIPC,
  ErrorCode,
  QueryFailedError,
  UnsupportedSetupError,
  type ConnectInfo,
  type Message,
  type PgIpcError,
} from '../../src/index.js'
import { connect, uniqueChannel, waitFor } from '../support/db.js'
import {
  findDebianTools,
  startReplicationPair,
  until,
  type DebianTools,
  type ReplicationPair,
  type StandbyMethod,
} from './replication.js'

/** Client backends on a server besides the asking one and `except`: what an ended instance must not leave. */
async function otherClientBackends(url: string, except: readonly number[] = []): Promise<number> {
  const admin = await connect(url)
  const { rows } = await admin.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND NOT pid = ANY($1::int[])",
    [except],
  )
  await admin.end()
  return rows[0]?.n ?? -1
}

function standbySuite(
  title: string,
  method: StandbyMethod,
  tools: DebianTools | undefined,
  skipReason: string | undefined,
): void {
  describe.skipIf(skipReason !== undefined)(title, () => {
    let pair: ReplicationPair | undefined
    const servers = (): ReplicationPair => {
      if (pair === undefined) throw new Error('the primary/standby pair did not start')
      return pair
    }

    beforeAll(async () => {
      pair = await startReplicationPair(method, tools)
      console.log(
        `[standby] ${method}: primary and standby PostgreSQL ${pair.standby.version} on ports ${pair.primary.port} and ${pair.standby.port}`,
      )
    })
    afterAll(async () => {
      await pair?.stop()
    })

    it('is a real hot standby, streaming from the primary', async () => {
      const { primary, standby } = servers()
      const onStandby = await connect(standby.connectionString)
      const recovery = await onStandby.query<{ standby: boolean }>('SELECT pg_is_in_recovery() AS standby')
      expect(recovery.rows[0]?.standby).toBe(true)
      const onPrimary = await connect(primary.connectionString)
      const senders = await onPrimary.query<{ state: string }>(
        "SELECT state FROM pg_stat_replication WHERE application_name = 'test_standby'",
      )
      expect(senders.rows.map((row) => row.state)).toEqual(['streaming'])
    })

    it('a plain client: LISTEN fails with SQLSTATE 25006, reported as an error that says what to do', async () => {
      const client = await connect(servers().standby.connectionString)
      const ipc = pgIPC(client)
      const channel = uniqueChannel('standby')
      const failed = waitFor<PgIpcError>(ipc, 'error')
      const received: Message[] = []
      ipc.on(channel, (message) => received.push(message))
      const error = await failed

      expect(error).toBeInstanceOf(QueryFailedError)
      expect(error.code).toBe(ErrorCode.QueryFailed)
      const queryError = error as QueryFailedError
      expect(queryError.command).toBe('LISTEN')
      expect(queryError.channel).toBe(channel)
      expect(queryError.sqlState).toBe('25006') // read_only_sql_transaction: "cannot execute LISTEN during recovery"
      expect(queryError.message).toMatch(/recovery/i)
      // "What to do": on a standby that is to connect to the primary.
      expect(queryError.message).toMatch(/primary/i)

      // The client is the user's: still usable, not listening on anything.
      const listening = await client.query('SELECT pg_listening_channels()')
      expect(listening.rows).toEqual([])
      await ipc.end()
      expect(received).toEqual([])
    })

    it('the reconnecting mode reports UnsupportedSetupError("standby"), keeps retrying, and connects once the server is promoted', async () => {
      const { standby } = servers()
      const ipc = pgIPC({ connect: standby.connectionString, retry: { initialDelayMs: 50, maxDelayMs: 200 } })
      const errors: PgIpcError[] = []
      const connects: ConnectInfo[] = []
      ipc.on('error', (error) => errors.push(error))
      ipc.on('connect', (info) => connects.push(info))
      const channel = uniqueChannel('standby')
      const received: string[] = []
      ipc.on(channel, (message) => received.push(message.rawPayload))
      const admin = await connect(standby.connectionString)
      const adminPid = (await admin.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid ?? 0

      try {
        // More than one report: it does not give up on a standby (it may be promoted).
        await until('two setup errors were reported', () => errors.length >= 2, 10_000)
        const [first] = errors
        expect(first).toBeInstanceOf(UnsupportedSetupError)
        expect(first?.code).toBe(ErrorCode.UnsupportedSetup)
        expect((first as UnsupportedSetupError).setup).toBe('standby')
        expect(first?.message).toMatch(/standby/)
        expect(first?.message).toMatch(/primary/)
        expect(first?.message).toMatch(/target_session_attrs/)
        for (const error of errors) expect((error as UnsupportedSetupError).setup).toBe('standby')
        expect(connects).toEqual([])
        expect(ipc.processId).toBeUndefined()

        // A failover: the standby becomes a primary; the next attempt connects and LISTENs.
        await admin.query('SELECT pg_promote(true, 30)')
        // Not waitFor: the next attempt may connect before pg_promote's answer arrives here.
        await until("'connect' after the promotion", () => connects.length > 0, 15_000)
        const [info] = connects as [ConnectInfo]
        expect(connects).toHaveLength(1)
        // The first connection of this instance, however many attempts it took: 'connect', not 'reconnect'.
        expect.soft(info.reconnected).toBe(false)
        expect(info.attempts).toBeGreaterThanOrEqual(2)
        await ipc.listening(channel)
        const arrived = new Promise<void>((resolve) => ipc.once(channel, () => resolve()))
        await admin.query('SELECT pg_notify($1, $2)', [channel, 'after promotion'])
        await arrived
        expect(received).toEqual(['after promotion'])
        const errorsBefore = errors.length
        await ipc.end()
        expect(errors.length).toBe(errorsBefore)
      } finally {
        await ipc.end()
      }
      const leftover = async (): Promise<number> => otherClientBackends(standby.connectionString, [adminPid])
      await until('the ended instance left no connection on the server', async () => (await leftover()) === 0, 5_000)
    })
  })
}

const debian = findDebianTools()
const debianSkip = typeof debian === 'string' ? `no pg_basebackup: ${debian}` : undefined
if (debianSkip !== undefined) console.warn(`[standby] SKIPPING the pg_basebackup standby tests: ${debianSkip}`)

standbySuite(
  typeof debian === 'string'
    ? 'hot standby made with pg_basebackup'
    : `hot standby made with pg_basebackup (PostgreSQL ${debian.major} from ${debian.pg_basebackup})`,
  'pg_basebackup',
  typeof debian === 'string' ? undefined : debian,
  debianSkip,
)

standbySuite(
  `hot standby copied from a cleanly stopped primary (embedded binaries${process.env.PG_BINARIES_PACKAGE === undefined ? '' : `, ${process.env.PG_BINARIES_PACKAGE}`})`,
  'copy',
  undefined,
  undefined,
)
