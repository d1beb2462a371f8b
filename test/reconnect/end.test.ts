// end() at any moment of the reconnecting mode (connected, waiting in backoff, connecting, during the
// setup query, during onConnect, with notifications waiting) resolves promptly and leaves no socket
// or timer behind. Checked twice: in-process with process.getActiveResourcesInfo() against a
// baseline, and in a child process that must exit by itself.
import { spawn, execFile } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { z } from 'zod'
import { defineChannels, EndedError, pgIPC, type PgIPC } from '../../src/index.js'
import { privateServer, uniqueChannel } from '../support/db.js'
import { TcpProxy } from '../support/tcp-proxy.js'
import {
  adminClient,
  deferred,
  expectNoNewHandles,
  handleCounts,
  nextDisconnect,
  ownedClients,
  recordErrors,
  waitFor,
} from './helpers.js'

/** end() must not wait for backoff or connect timeouts: a generous bound for "promptly". */
const PROMPT_MS = 2_000

async function timedEnd(ipc: { end(): Promise<void> }): Promise<number> {
  const at = performance.now()
  await ipc.end()
  return performance.now() - at
}

async function pausedProxy(): Promise<{ proxy: TcpProxy; url: string }> {
  const server = await privateServer()
  const proxy = new TcpProxy({ host: server.host, port: server.port })
  onTestFinished(() => proxy.close())
  await proxy.start()
  proxy.pause()
  return { proxy, url: proxy.url(server.connectionString) }
}

function tcpConnected(client: unknown): Promise<void> {
  const stream = (client as { connection: { stream: { once(event: string, listener: () => void): void } } }).connection.stream
  return new Promise((resolve) => stream.once('connect', resolve))
}

describe('end() in every state, in-process', () => {
  it('while connected', async () => {
    const server = await privateServer()
    const baseline = handleCounts()
    const ipc = pgIPC({ connect: server.connectionString, healthCheck: { intervalMs: 50, timeoutMs: 50 } })
    recordErrors(ipc)
    ipc.on(uniqueChannel('a'), () => undefined)
    await waitFor(ipc, 'connect')
    const ended = waitFor(ipc, 'end')
    expect(await timedEnd(ipc)).toBeLessThan(PROMPT_MS)
    await ended
    expect(ipc.ended).toBe(true)
    await expectNoNewHandles(baseline)
    expect(await timedEnd(ipc)).toBeLessThan(PROMPT_MS) // twice is fine
  })

  it('while waiting in backoff, the server down from the start', async () => {
    const server = await privateServer()
    await server.stopServerOnly('fast')
    const owned = ownedClients(server.connectionString)
    const baseline = handleCounts()
    const ipc = pgIPC({ connect: owned.connect, retry: { initialDelayMs: 60_000, maxDelayMs: 60_000 } })
    const errors = recordErrors(ipc)
    ipc.on(uniqueChannel('a'), () => undefined)
    await new Promise((resolve) => owned.events.once('failed', resolve))
    expect(await timedEnd(ipc)).toBeLessThan(PROMPT_MS)
    expect(owned.clients).toHaveLength(1)
    expect(errors).toEqual([])
    await expectNoNewHandles(baseline)
  })

  it('while waiting in backoff after an outage, with a notification waiting for the connection', async () => {
    const server = await privateServer()
    const owned = ownedClients(server.connectionString)
    const baseline = handleCounts()
    const ipc = pgIPC({
      connect: owned.connect,
      retry: { initialDelayMs: 60_000, maxDelayMs: 60_000 },
      whileDisconnected: { maxWaitMs: 60_000 },
    })
    const errors = recordErrors(ipc)
    const a = uniqueChannel('a')
    ipc.on(a, () => undefined)
    await waitFor(ipc, 'connect')
    const disconnected = nextDisconnect(ipc)
    await server.stopServerOnly('fast')
    await disconnected
    // Every new attempt waits a backoff step (30 to 60 s here): none has been made yet.
    ipc.notify(a, 'waiting')
    expect(await timedEnd(ipc)).toBeLessThan(PROMPT_MS)
    expect(owned.clients).toHaveLength(1)
    // The waiting notification is settled, not dropped silently: it was not sent.
    expect(errors.map((error) => error.constructor.name)).toEqual(['EndedError'])
    await expectNoNewHandles(baseline)
  })

  it('while connecting (TCP up, the server never answers: a paused proxy)', async () => {
    const { proxy, url } = await pausedProxy()
    const owned = ownedClients(url)
    const baseline = handleCounts()
    const ipc = pgIPC({ connect: owned.connect, connectTimeoutMs: 30_000 })
    recordErrors(ipc)
    ipc.on(uniqueChannel('a'), () => undefined)
    // The factory runs inside pgIPC() already: wait for its first client's socket to be up.
    await owned.made(1)
    await tcpConnected(owned.latest())
    expect(await timedEnd(ipc)).toBeLessThan(PROMPT_MS)
    await proxy.close() // its own sockets stay open while paused
    await expectNoNewHandles(baseline)
  })

  it('while connecting, with a config (the library makes the client itself)', async () => {
    const { proxy, url } = await pausedProxy()
    const baseline = handleCounts()
    const accepted = proxy.nextAccepted()
    const ipc = pgIPC({ connect: url, connectTimeoutMs: 30_000 })
    recordErrors(ipc)
    // The proxy accepting a connection is the only sign from outside that the attempt has begun.
    await accepted
    expect(await timedEnd(ipc)).toBeLessThan(PROMPT_MS)
    await proxy.close()
    await expectNoNewHandles(baseline)
  })

  it('while an async connect factory has not returned its client yet', async () => {
    const { url } = await pausedProxy()
    const owned = ownedClients(url)
    const factoryCalled = deferred()
    const release = deferred()
    const baseline = handleCounts()
    const ipc = pgIPC({
      connect: async () => {
        factoryCalled.resolve()
        await release.promise
        return owned.connect()
      },
      connectTimeoutMs: 6_000, // end() must not wait for this
    })
    recordErrors(ipc)
    ipc.on(uniqueChannel('a'), () => undefined)
    await factoryCalled.promise
    const ending = timedEnd(ipc)
    release.resolve() // the factory returns after end() was called
    expect(await ending).toBeLessThan(PROMPT_MS)
    await expectNoNewHandles(baseline)
  })

  it('while the setup query (standby/pooler check) is in flight', async () => {
    const server = await privateServer()
    const admin = await adminClient(server.connectionString)
    const owned = ownedClients(server.connectionString)
    let ending: Promise<number> | undefined
    const endCalled = deferred()
    owned.events.on('query', (query: { text?: string }) => {
      if (ending !== undefined || !/pg_is_in_recovery/.test(query.text ?? '')) return
      ending = timedEnd(ipc) // right after pg took the setup query
      endCalled.resolve()
    })
    const baseline = handleCounts()
    const ipc: PgIPC = pgIPC({ connect: owned.connect })
    recordErrors(ipc)
    ipc.on(uniqueChannel('a'), () => undefined)
    await endCalled.promise
    expect(await ending).toBeLessThan(PROMPT_MS)
    // The server still has a session for it if end() left the connection open.
    const { rows } = await admin.query(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
    )
    expect(rows[0].n, 'sessions left on the server after end()').toBe(0)
    await expectNoNewHandles(baseline)
  })

  it('during onConnect (the hook never finishes)', async () => {
    const server = await privateServer()
    const hookStarted = deferred()
    const baseline = handleCounts()
    const ipc = pgIPC({
      connect: server.connectionString,
      onConnect: () => {
        hookStarted.resolve()
        return new Promise<void>(() => undefined)
      },
    })
    recordErrors(ipc)
    ipc.on(uniqueChannel('a'), () => undefined)
    await hookStarted.promise
    expect(await timedEnd(ipc)).toBeLessThan(PROMPT_MS)
    await expectNoNewHandles(baseline)
  })

  it('typed layer: end() while waiting in backoff rejects waiting notifies with EndedError', async () => {
    const server = await privateServer()
    await server.stopServerOnly('fast')
    const owned = ownedClients(server.connectionString)
    const channels = defineChannels({ ping: z.object({ n: z.number() }) })
    const baseline = handleCounts()
    const typed = channels.attach({
      connect: owned.connect,
      retry: { initialDelayMs: 60_000 },
      whileDisconnected: { maxWaitMs: 60_000 },
    })
    typed.on('error', () => undefined)
    typed.on('ping', () => undefined)
    await new Promise((resolve) => owned.events.once('failed', resolve))
    const waiting = typed.notify('ping', { n: 1 })
    const outcome = waiting.then(
      () => 'resolved',
      (error: unknown) => error,
    )
    expect(await timedEnd(typed)).toBeLessThan(PROMPT_MS)
    expect(await outcome).toBeInstanceOf(EndedError)
    await expectNoNewHandles(baseline)
  })
})

// ---- in a child process that must exit by itself -------------------------------------------------

const root = fileURLToPath(new URL('../../', import.meta.url))
const TSC = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
const OUT = join(root, '.tmp', 'reconnect-fixtures')
const CHILD = join(OUT, 'test', 'reconnect', 'fixtures', 'end-child.js')

interface ChildRun {
  code: number | null
  signal: NodeJS.Signals | null
  lines: Record<string, unknown>[]
  stderr: string
  /** From the child's report line (end() resolved) to its exit. */
  exitAfterEndMs: number
}

function runChild(mode: string, url: string): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--enable-source-maps', CHILD, mode, url], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    let reportedAt: number | undefined
    const killer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk
      if (reportedAt === undefined && /"endMs"/.test(stdout)) reportedAt = performance.now()
    })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(killer)
      const lines = stdout
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>)
      resolve({
        code,
        signal,
        lines,
        stderr,
        exitAfterEndMs: reportedAt === undefined ? Number.NaN : performance.now() - reportedAt,
      })
    })
  })
}

describe('end() in every state, in a child process that must exit by itself', () => {
  beforeAll(async () => {
    // Compiled like `npm run demo` compiles the demo: tsc into .tmp, then plain node.
    await new Promise<void>((resolve, reject) => {
      execFile(
        process.execPath,
        [
          TSC,
          'test/reconnect/fixtures/end-child.ts',
          '--ignoreConfig',
          ...['--outDir', OUT, '--rootDir', '.', '--target', 'ES2022', '--lib', 'ES2023', '--module', 'NodeNext'],
          ...['--moduleResolution', 'NodeNext', '--types', 'node', '--strict', '--skipLibCheck', '--sourceMap'],
        ],
        { cwd: root },
        (error, stdout, stderr) => (error === null ? resolve() : reject(new Error(`tsc failed:\n${stdout}${stderr}`))),
      )
    })
  })

  const expectCleanExit = (run: ChildRun): void => {
    const detail = JSON.stringify({ ...run, stderr: run.stderr.slice(0, 2_000) })
    expect(
      run.lines.some((line) => 'stillAlive' in line),
      detail,
    ).toBe(false)
    expect(run.code, detail).toBe(0)
    const report = run.lines.find((line) => 'endMs' in line)
    expect(report, detail).toBeDefined()
    expect(report?.endMs as number, detail).toBeLessThan(PROMPT_MS)
    // Exiting needs nothing but an empty event loop: well under a few seconds.
    expect(run.exitAfterEndMs, detail).toBeLessThan(3_000)
  }

  it('connected (core) and connected (typed)', async () => {
    const server = await privateServer()
    const [core, typed] = await Promise.all([
      runChild('connected', server.connectionString),
      runChild('typed-connected', server.connectionString),
    ])
    expectCleanExit(core)
    expectCleanExit(typed)
  })

  it('waiting in backoff (connections refused), with and without a notification waiting', async () => {
    const server = await privateServer()
    const proxy = new TcpProxy({ host: server.host, port: server.port })
    onTestFinished(() => proxy.close())
    await proxy.start()
    proxy.refuse(true)
    const url = proxy.url(server.connectionString)
    const [backoff, waiting] = await Promise.all([runChild('backoff', url), runChild('waiting-notify', url)])
    expectCleanExit(backoff)
    expectCleanExit(waiting)
    expect(waiting.lines.find((line) => 'endMs' in line)?.errors).toEqual(['EndedError'])
  })

  it('connecting (TCP up, the server never answers)', async () => {
    const { url } = await pausedProxy()
    expectCleanExit(await runChild('connecting', url))
  })
})
