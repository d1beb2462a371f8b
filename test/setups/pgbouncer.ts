// PgBouncer (Debian's `pgbouncer` package) in front of a private PostgreSQL, for the pooler tests.
// It runs in the foreground as a child of the test process, as the unprivileged account the servers
// use when we are root (PgBouncer refuses to run as root), from a generated ini in a temp dir.
// Two pools on one PgBouncer: `txn` (pool_mode=transaction, where LISTEN cannot work) and `sess`
// (pool_mode=session, where it does).

import { execFileSync, spawn } from 'node:child_process'
import { accessSync, chownSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { freePort, serverAccount } from '../support/postgres.js'
import { cleanupOnExit } from './cleanup.js'

export interface PgBouncer {
  readonly port: number
  readonly version: string
  /** Through the transaction-mode pool. */
  readonly transactionUrl: string
  /** Through the session-mode pool. */
  readonly sessionUrl: string
  /** PgBouncer's admin console (SHOW CLIENTS, SHOW POOLS...). */
  readonly adminUrl: string
  /** What PgBouncer printed so far: for failure messages. */
  output(): string
  /** Stops PgBouncer (SIGTERM, then SIGKILL) and removes its dir. Idempotent. */
  stop(): Promise<void>
}

/** The pgbouncer binary (PGBOUNCER_BIN, else on PATH or in /usr/sbin), or the reason there is none. */
export function findPgBouncer(): string | { missing: string } {
  const chosen = process.env.PGBOUNCER_BIN
  if (chosen !== undefined && chosen !== '') {
    try {
      accessSync(chosen, constants.X_OK)
      return chosen
    } catch {
      return { missing: `PGBOUNCER_BIN=${chosen} is not an executable file` }
    }
  }
  const candidates = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer', '/usr/local/bin/pgbouncer']
  try {
    candidates.push(
      execFileSync('sh', ['-c', 'command -v pgbouncer'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(),
    )
  } catch {
    // not on PATH
  }
  for (const path of candidates) {
    if (path === '') continue
    try {
      accessSync(path, constants.X_OK)
      return path
    } catch {
      // try the next one
    }
  }
  return {
    missing:
      'no pgbouncer binary (PGBOUNCER_BIN unset, none on PATH or in /usr/sbin). Install it with `apt-get install -y pgbouncer` (.ci/run does) to run these tests',
  }
}

const HOST = '127.0.0.1'

async function canQuery(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1_000 })
  client.on('error', () => undefined)
  try {
    await client.connect()
    await client.query('SELECT 1')
    return true
  } catch {
    return false
  } finally {
    await client.end().catch(() => undefined)
  }
}

/** Starts PgBouncer in front of the server at `server` (trust auth, as the test servers use). */
export async function startPgBouncer(
  binary: string,
  server: { host: string; port: number; user: string; database: string },
): Promise<PgBouncer> {
  const version = execFileSync(binary, ['--version'], { encoding: 'utf8' }).split('\n')[0]?.trim() ?? 'PgBouncer'
  const dir = mkdtempSync(join(tmpdir(), 'typed-pg-ipc-pgbouncer-'))
  const account = serverAccount()
  if (account !== undefined) chownSync(dir, account.uid, account.gid)
  const port = await freePort()
  const target = `host=${server.host} port=${server.port} dbname=${server.database} user=${server.user}`
  writeFileSync(join(dir, 'userlist.txt'), `"${server.user}" ""\n`)
  writeFileSync(
    join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `txn = ${target} pool_mode=transaction`,
      `sess = ${target} pool_mode=session`,
      '',
      '[pgbouncer]',
      `listen_addr = ${HOST}`,
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${join(dir, 'userlist.txt')}`,
      `admin_users = ${server.user}`,
      'pool_mode = session',
      'default_pool_size = 4',
      'max_client_conn = 100',
      `pidfile = ${join(dir, 'pgbouncer.pid')}`,
      'ignore_startup_parameters = extra_float_digits',
      '',
    ].join('\n'),
  )

  // Foreground (no -d): it stays our child, logging to stderr.
  const child = spawn(binary, [join(dir, 'pgbouncer.ini')], {
    cwd: dir,
    uid: account?.uid,
    gid: account?.gid,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('PG'))),
  })
  // A PgBouncer that outlived the test process would keep its port: kill it on every way out.
  const untrack = cleanupOnExit(() => {
    child.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  })
  let output = ''
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
  let exited = false
  const exit = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true
      resolve()
    })
    child.once('error', (error) => {
      output += `\n${error.message}`
      exited = true
      resolve()
    })
  })

  let stopping: Promise<void> | undefined
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      if (!exited) {
        child.kill('SIGTERM') // immediate shutdown in PgBouncer 1.18
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
        await exit
        clearTimeout(timer)
      }
      rmSync(dir, { recursive: true, force: true })
      untrack()
    })())

  const base = `postgresql://${server.user}@${HOST}:${port}`
  const bouncer: PgBouncer = {
    port,
    version,
    transactionUrl: `${base}/txn`,
    sessionUrl: `${base}/sess`,
    adminUrl: `${base}/pgbouncer`,
    output: () => output,
    stop,
  }

  const deadline = Date.now() + 15_000
  while (!(await canQuery(bouncer.sessionUrl))) {
    if (exited || Date.now() > deadline) {
      await stop()
      throw new Error(`PgBouncer did not start (${exited ? 'it exited' : 'timed out'}); its output:\n${output}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return bouncer
}
