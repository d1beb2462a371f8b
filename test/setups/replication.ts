// A primary and a hot standby streaming from it, both private to the test file.
//
// Two ways to make the standby's data dir:
//   - 'pg_basebackup': the real tool, from a Debian/Ubuntu PostgreSQL install (/usr/lib/postgresql/<major>/bin)
//     whose server binaries also run the pair (pg_basebackup only copies servers of its own major or
//     older, and the embedded npm binaries ship no pg_basebackup).
//   - 'copy': the embedded binaries the rest of the suite uses (PG_BINARIES_PACKAGE in the version
//     matrix): the primary is stopped cleanly, its data dir copied, then both are started. A cold copy
//     of a cleanly stopped primary is a valid base backup; this covers every major of the matrix.
// Either way the primary has wal_level=replica, max_wal_senders and a `host replication` trust line,
// and the standby has standby.signal, primary_conninfo and hot_standby=on.

import { execFileSync } from 'node:child_process'
import {
  accessSync,
  appendFileSync,
  chownSync,
  constants,
  existsSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { cleanupOnExit } from './cleanup.js'
import {
  defaultBinaries,
  runAsServerAccount,
  serverAccount,
  startPostgres,
  type PgBinaries,
  type PgServer,
} from '../support/postgres.js'

export type StandbyMethod = 'pg_basebackup' | 'copy'

export interface ReplicationPair {
  readonly method: StandbyMethod
  readonly primary: PgServer
  readonly standby: PgServer
  /** Stops both servers and removes every dir. Idempotent. */
  stop(): Promise<void>
}

export interface DebianTools extends PgBinaries {
  readonly major: number
  readonly pg_basebackup: string
}

const DEBIAN_ROOT = '/usr/lib/postgresql'

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/**
 * The newest /usr/lib/postgresql/<major>/bin holding initdb, pg_ctl, postgres and pg_basebackup
 * (PG_BASEBACKUP_BIN_DIR overrides the search), or a reason why there is none.
 */
export function findDebianTools(): DebianTools | string {
  const override = process.env.PG_BASEBACKUP_BIN_DIR
  const candidates: string[] = []
  if (override !== undefined && override !== '') candidates.push(override)
  else if (existsSync(DEBIAN_ROOT)) {
    const majors = readdirSync(DEBIAN_ROOT)
      .filter((name) => /^\d+$/.test(name))
      .sort((a, b) => Number(b) - Number(a))
    candidates.push(...majors.map((major) => join(DEBIAN_ROOT, major, 'bin')))
  }
  if (candidates.length === 0) {
    return `no PostgreSQL server install in ${DEBIAN_ROOT} (Debian's postgresql-<major> package) and PG_BASEBACKUP_BIN_DIR is not set`
  }
  const missing: string[] = []
  for (const dir of candidates) {
    const tools = {
      initdb: join(dir, 'initdb'),
      pg_ctl: join(dir, 'pg_ctl'),
      postgres: join(dir, 'postgres'),
      pg_basebackup: join(dir, 'pg_basebackup'),
    }
    const absent = Object.values(tools).filter((path) => !executable(path))
    if (absent.length === 0) {
      const version = execFileSync(tools.postgres, ['--version'], { encoding: 'utf8' })
      const major = Number(/(\d+)/.exec(version)?.[1])
      return { ...tools, major }
    }
    missing.push(...absent)
  }
  return `no complete PostgreSQL install with pg_basebackup found (missing: ${missing.join(', ')})`
}

/** Polls `check` until it returns true; throws `what` on timeout. */
export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

async function query<T extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url })
  client.on('error', () => undefined)
  await client.connect()
  try {
    return (await client.query<T>(text, values)).rows
  } finally {
    await client.end().catch(() => undefined)
  }
}

const PRIMARY_CONF = { wal_level: 'replica', max_wal_senders: '5' }
const STANDBY_CONF = { hot_standby: 'on' }
const HBA_REPLICATION = '\n# replication connections of the test standby\nhost replication all 127.0.0.1/32 trust\n'

/** A dir for the standby's data, owned by the account the servers run as. */
function standbyDir(): { root: string; dataDir: string } {
  const root = mkdtempSync(join(tmpdir(), 'typed-pg-ipc-standby-'))
  const account = serverAccount()
  if (account !== undefined) chownSync(root, account.uid, account.gid)
  return { root, dataDir: join(root, 'data') }
}

/**
 * Starts a primary and a streaming hot standby, and proves the standby replays the primary's WAL
 * (a row written on the primary shows up on the standby) before returning.
 */
export async function startReplicationPair(method: StandbyMethod, tools?: DebianTools): Promise<ReplicationPair> {
  if (method === 'pg_basebackup' && tools === undefined) throw new Error('pg_basebackup needs the Debian tools')
  const binaries: PgBinaries = tools ?? (await defaultBinaries())
  const { root, dataDir } = standbyDir()
  let primary: PgServer | undefined
  let standby: PgServer | undefined
  let untrack: (() => void) | undefined
  let stopping: Promise<void> | undefined
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await Promise.allSettled([standby?.stop(), primary?.stop()])
      await rm(root, { recursive: true, force: true, maxRetries: 5 })
      untrack?.()
    })())

  try {
    primary = await startPostgres({ binaries, extraConf: PRIMARY_CONF })
    // The servers have their own safety net (test/support/postgres.ts), installed by the start above:
    // registered after it, ours runs after it, once the standby no longer uses this dir.
    untrack = cleanupOnExit(() => rmSync(root, { recursive: true, force: true }))
    // initdb's pg_hba.conf already trusts local replication; say it explicitly rather than rely on that.
    appendFileSync(join(primary.dataDir, 'pg_hba.conf'), HBA_REPLICATION)
    const primaryConninfo = `host=${primary.host} port=${primary.port} user=${primary.user} application_name=test_standby`

    if (method === 'pg_basebackup') {
      await query(primary.connectionString, 'SELECT pg_reload_conf()')
      // -R writes standby.signal and primary_conninfo (postgresql.auto.conf); -X stream brings the WAL along.
      await runAsServerAccount(
        tools!.pg_basebackup,
        [
          '-h',
          primary.host,
          '-p',
          String(primary.port),
          '-U',
          primary.user,
          '-D',
          dataDir,
          '-X',
          'stream',
          '-R',
          '-c',
          'fast',
          '--no-sync',
        ],
        root,
      )
      // -R writes the conninfo it used; ours adds application_name so pg_stat_replication names the standby.
      appendFileSync(join(dataDir, 'postgresql.auto.conf'), `primary_conninfo = '${primaryConninfo}'\n`)
    } else {
      await primary.stopServerOnly('fast') // a clean shutdown checkpoint: the copy is consistent
      // cp -a as root keeps the owner and the 0700 mode PostgreSQL insists on.
      execFileSync('cp', ['-a', primary.dataDir, dataDir])
      writeFileSync(join(dataDir, 'standby.signal'), '')
      appendFileSync(join(dataDir, 'postgresql.auto.conf'), `primary_conninfo = '${primaryConninfo}'\n`)
      const account = serverAccount()
      if (account !== undefined) {
        chownSync(join(dataDir, 'standby.signal'), account.uid, account.gid)
      }
      await primary.start()
    }

    standby = await startPostgres({ binaries, dataDir, extraConf: STANDBY_CONF })

    const standbyUrl = standby.connectionString
    const primaryUrl = primary.connectionString
    await until('the standby streams from the primary', async () => {
      const rows = await query<{ status: string }>(standbyUrl, 'SELECT status FROM pg_stat_wal_receiver')
      return rows[0]?.status === 'streaming'
    })
    const marker = `replicated ${method} ${Date.now()}`
    await query(primaryUrl, 'CREATE TABLE IF NOT EXISTS replication_check (note text)')
    await query(primaryUrl, 'INSERT INTO replication_check VALUES ($1)', [marker])
    await until('a row written on the primary is visible on the standby', async () => {
      // Fails (table not there yet) until the CREATE is replayed.
      const rows = await query<{ n: number }>(standbyUrl, 'SELECT count(*)::int AS n FROM replication_check WHERE note = $1', [
        marker,
      ]).catch(() => [{ n: 0 }])
      return rows[0]?.n === 1
    })
    return { method, primary, standby, stop }
  } catch (error) {
    await stop()
    throw error
  }
}
