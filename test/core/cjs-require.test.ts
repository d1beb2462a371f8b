// A CommonJS user's `require('typed-pg-ipc')` against the built package (dist/), in a child process
// so that Node's own resolution and module loader run, not vitest's.
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { databaseUrl } from '../support/db.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
const fixture = fileURLToPath(new URL('../fixtures/cjs-require.cjs', import.meta.url))

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

function runNode(args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd: root, env, timeout: 20_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null
      resolve({ code, stdout, stderr })
    })
  })
}

function assertBuilt(): void {
  if (!existsSync(new URL('../../dist/index.js', import.meta.url))) {
    throw new Error('dist/index.js is missing: run `npm run build` first (`npm test` builds before running vitest)')
  }
}

describe('CommonJS consumers', () => {
  it("require('typed-pg-ipc') is pgIPC itself, with every export as a property, sharing the ES module's classes", async () => {
    assertBuilt()
    const run = await runNode([fixture], { ...process.env, DATABASE_URL: databaseUrl() })
    expect(run.stderr, 'stderr of the CommonJS fixture').toBe('')
    expect(run.code, `fixture failed:\n${run.stderr}`).toBe(0)
    expect(JSON.parse(run.stdout.trim())).toEqual({
      pgIPC: 'function',
      moduleIsFactory: true,
      defaultIsPgIPC: true,
      roundTrip: true,
    })
  })
})
