// The library never makes pg 8.x warn "Calling client.query() when the client is already executing
// a query is deprecated": the built package is driven hard in a child process run with
// `node --throw-deprecation`, where any DeprecationWarning kills the process. A control run of a
// script that does queue queries that way proves the detection works, so this cannot pass vacuously.
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { databaseUrl } from '../support/db.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
const fixture = (name: string): string => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url))

const PG_WARNING = 'Calling client.query() when the client is already executing a query is deprecated'

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

function runNode(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      args,
      { cwd: root, env: { ...process.env, DATABASE_URL: databaseUrl() }, timeout: 30_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null
        resolve({ code, stdout, stderr })
      },
    )
  })
}

describe('no DeprecationWarning from pg', () => {
  it('LISTENs, notify bursts, a user transaction and end() under --throw-deprecation', async () => {
    if (!existsSync(new URL('../../dist/index.js', import.meta.url))) {
      throw new Error('dist/index.js is missing: run `npm run build` first (`npm test` builds before running vitest)')
    }
    // The control and the real run go in parallel: they use separate connections and channels.
    const [control, run] = await Promise.all([
      runNode(['--throw-deprecation', fixture('deprecation-control.mjs')]),
      runNode(['--throw-deprecation', fixture('no-deprecation.mjs')]),
    ])

    // CONTROL: queueing queries the forbidden way must be caught, or the real run proves nothing.
    expect(control.code, `the control exited ${String(control.code)}:\n${control.stdout}${control.stderr}`).not.toBe(0)
    expect(control.stderr).toContain('DeprecationWarning')
    expect(control.stderr).toContain(PG_WARNING)

    expect(run.stderr, 'stderr of the no-deprecation fixture').not.toContain('DeprecationWarning')
    expect(run.code, `the fixture exited ${String(run.code)}:\n${run.stderr}`).toBe(0)
    expect(run.stderr).toBe('')
    const summary = JSON.parse(run.stdout.trim()) as { sent: number; confirmed: number; received: number; errors: number }
    // 60 + 400 + 2 messages were sent while their channel was LISTENed; the 100 sent during end() were not.
    expect(summary).toEqual({ sent: 562, confirmed: 562, received: 462, errors: 0 })
  })
})
