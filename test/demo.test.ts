// `npm run demo`, run the way the script runs it: tsc -p examples/tsconfig.json, then node on the
// compiled demo as a child process. Once against the shared test server (DATABASE_URL), once on its
// own embedded PostgreSQL, which it must stop.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { connect as tcpConnect } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { beforeAll, describe, expect, it } from 'vitest'
import { databaseUrl } from './support/db.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const COMPILE = ['-p', 'examples/tsconfig.json']
const RUN = ['--enable-source-maps', '.tmp/demo/examples/demo.js']
const TSC = join(root, 'node_modules', 'typescript', 'bin', 'tsc')

interface Run {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/** Runs node with `args` in the project root; kills it (and fails) after `timeoutMs`. */
function node(args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    // SIGINT: the demo's server safety net stops an embedded PostgreSQL on it.
    const timer = setTimeout(() => child.kill('SIGINT'), timeoutMs)
    child.on('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
  })
}

/** The environment without DATABASE_URL (and with it, when given). */
function env(url?: string): NodeJS.ProcessEnv {
  const { DATABASE_URL: _ignored, ...rest } = process.env
  return url === undefined ? rest : { ...rest, DATABASE_URL: url }
}

function describeRun(run: Run): string {
  return `exit ${String(run.code)} ${run.signal ?? ''}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`
}

/** Fails unless every pattern matches, each on a later line than the one before. */
function expectInOrder(transcript: string, patterns: RegExp[]): void {
  const lines = transcript.split('\n')
  let at = 0
  for (const pattern of patterns) {
    const found = lines.findIndex((line, index) => index >= at && pattern.test(line))
    expect(found, `${String(pattern)} after line ${at + 1} of:\n${transcript}`).toBeGreaterThanOrEqual(0)
    at = found + 1
  }
}

/** The key lines of each step, in order. */
function expectTranscript(stdout: string): void {
  // 1. typed messages both ways; the Date goes out as an ISO string and arrives as a Date
  expectInOrder(stdout, [
    /^1\. Typed messages flow both ways$/,
    /^ {2}orders {2}→ orderPlaced {3}order [0-9a-f]{8} {2}total 42\.50 {2}placedAt Date\(\d{4}-\d\d-\d\dT[\d:.]+Z\)$/,
    /^ {26}on the wire: \{"orderId":"[0-9a-f-]{36}","total":42\.5,"placedAt":"\d{4}-\d\d-\d\dT[\d:.]+Z"\}$/,
    /^ {2}billing ← orderPlaced {3}order [0-9a-f]{8} .*placedAt Date\(.*\) {2}\(a Date again\)$/,
    /^ {2}billing → invoiceSent {3}invoice INV-1001 for order [0-9a-f]{8}$/,
    /^ {2}orders {2}← invoiceSent {3}invoice INV-1001 for order [0-9a-f]{8}$/,
    /^ {2}orders {2}→ cacheCleared {2}no payload/,
    /^ {2}billing ← cacheCleared {2}payload undefined \(raw payload ""\)$/,
  ])
  // 2. rejected before sending, with zod's issues, and nothing sent
  expectInOrder(stdout, [
    /^2\. An invalid payload is rejected before anything is sent$/,
    /^ {2}orders {2}✗ orderPlaced {3}notify\('orderPlaced', \{ orderId: 'not-a-uuid', total: -5/,
    /^ {26}InvalidPayloadError \(ERR_PG_IPC_INVALID_PAYLOAD\), 2 issues:$/,
    /^ {28}orderId: Invalid UUID$/,
    /^ {28}total: Too small: expected number to be >0$/,
    /^ {2}orders {2}→ orderPlaced .*\(valid follow-up\)$/,
    /^ {2}billing ← orderPlaced {3}order [0-9a-f]{8} is the next thing from orders: the rejected one was never sent$/,
  ])
  // 3. malformed SQL notifications reported as `invalid`; the next valid message still arrives
  expectInOrder(stdout, [
    /^3\. Malformed notifications from plain SQL are reported as 'invalid'/,
    /^ {2}sql {5}→ orderPlaced {3}SELECT pg_notify\('orderPlaced', 'not json'\)$/,
    /^ {2}billing ! invalid {7}InvalidMessageError from sql: not JSON \(.+\)$/,
    /^ {2}sql {5}→ orderPlaced {3}SELECT pg_notify\('orderPlaced', '\{"orderId":42,"total":"lots"\}'\)$/,
    /^ {2}billing ! invalid {7}InvalidMessageError from sql: 3 issues:$/,
    /^ {28}orderId: Invalid input: expected string, received number$/,
    /^ {2}orders {2}→ orderPlaced {3}order [0-9a-f]{8}/,
    /^ {2}billing ← orderPlaced {3}order [0-9a-f]{8}: still running, and its listener never saw the bad ones$/,
  ])
  // 4. notifyQuery: held until COMMIT (a later marker overtakes it), never delivered after ROLLBACK
  expectInOrder(stdout, [
    /^4\. notifyQuery in a transaction: delivered at COMMIT, never after ROLLBACK$/,
    /^ {2}orders {2}· BEGIN$/,
    /^ {2}orders {2}→ orderPlaced .*\(notifyQuery\)$/,
    /^ {2}sql {5}→ cacheCleared {2}SELECT pg_notify\('cacheCleared', ''\) {2}\(marker\)$/,
    /^ {2}billing ← cacheCleared {2}marker arrived; order [0-9a-f]{8} has not \(not committed yet\)$/,
    /^ {2}orders {2}· COMMIT$/,
    /^ {2}billing ← orderPlaced .*\(at COMMIT\)$/,
    /^ {2}orders {2}· BEGIN$/,
    /^ {2}orders {2}→ orderPlaced .*\(notifyQuery\)$/,
    /^ {2}orders {2}· ROLLBACK$/,
    /^ {2}sql {5}→ cacheCleared .*\(marker\)$/,
    /^ {2}billing ← cacheCleared {2}marker arrived; order [0-9a-f]{8} never will \(rolled back\)$/,
    /^All 4 steps OK in [\d.]+ s; connections closed/,
  ])
}

/** Resolves true when something accepts TCP connections on the port. */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host, port })
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

describe('npm run demo', () => {
  beforeAll(async () => {
    const script = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts
      .demo
    // What this file runs is what the script runs.
    expect(script).toBe(`tsc ${COMPILE.join(' ')} && node ${RUN.join(' ')}`)
    const compiled = await node([TSC, ...COMPILE], env(), 110_000)
    expect(compiled.code, describeRun(compiled)).toBe(0)
  }, 120_000)

  it('runs against DATABASE_URL: exit 0, the transcript of all four steps, nothing on stderr', async () => {
    const run = await node(RUN, env(databaseUrl()), 25_000)
    expect(run.code, describeRun(run)).toBe(0)
    expect(run.stderr).toBe('')
    expect(run.stdout).toMatch(/^ {2}database {2}PostgreSQL [\d.]+\S* .*at DATABASE_URL postgres(ql)?:\/\//m)
    expectTranscript(run.stdout)
    expect(run.stdout).toMatch(/^All 4 steps OK in [\d.]+ s; connections closed\.$/m)
  }, 30_000)

  it('runs without DATABASE_URL on an embedded PostgreSQL, and stops it', async () => {
    const run = await node(RUN, env(), 40_000)
    expect(run.code, describeRun(run)).toBe(0)
    expect(run.stderr).toBe('')
    const server = /^ {2}database {2}embedded PostgreSQL [\d.]+ on ([\d.]+):(\d+) \(started in [\d.]+ s\)$/m.exec(run.stdout)
    expect(server, run.stdout).not.toBeNull()
    expectTranscript(run.stdout)
    expect(run.stdout).toMatch(/^All 4 steps OK in [\d.]+ s; connections closed, embedded PostgreSQL stopped\.$/m)
    // Nothing listens on its port any more.
    expect(await accepts(server?.[1] ?? '', Number(server?.[2]))).toBe(false)
  }, 45_000)
})
