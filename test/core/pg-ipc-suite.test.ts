// pg-ipc's own test suite against our core. The pg-ipc 1.0.5 package (a devDependency) ships its tape
// tests as test.js; we run that file unchanged except for two substitutions: its `require('.')` (pg-ipc
// itself) becomes `require('typed-pg-ipc')`, and its hard-coded connection string becomes the test
// server's. The copy lives inside the project, so `typed-pg-ipc` resolves to the built package
// (dist/, through package.json "exports" as a self-reference) and tape, after-all and pg to ours.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { describeChild, runChild } from '../support/child.js'
import { databaseUrl } from '../support/db.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
const original = join(root, 'node_modules', 'pg-ipc', 'test.js')
const ORIGINAL_URL = "'postgres://postgres:@localhost:5432/pgipc'"
const ORIGINAL_REQUIRE = "require('.')"

/** test.js with exactly the two substitutions; throws if either is not found exactly once. */
function adapted(url: string): string {
  const text = readFileSync(original, 'utf8')
  for (const needle of [ORIGINAL_URL, ORIGINAL_REQUIRE]) {
    const count = text.split(needle).length - 1
    if (count !== 1) throw new Error(`expected ${needle} once in ${original}, found it ${count} times`)
  }
  return text.replace(ORIGINAL_REQUIRE, "require('typed-pg-ipc')").replace(ORIGINAL_URL, JSON.stringify(url))
}

interface Tap {
  readonly tests: number
  readonly pass: number
  readonly fail: number
  readonly failed: readonly string[]
}

/** The counts of a TAP stream, from its "ok"/"not ok" lines (a crash leaves no "# pass" summary). */
function parseTap(output: string): Tap {
  const lines = output.split('\n')
  const pass = lines.filter((line) => /^ok \d+/.test(line)).length
  const failed = lines.filter((line) => /^not ok \d+/.test(line))
  const tests = lines.filter((line) => /^# (?!tests|pass|fail|ok)/.test(line)).length
  return { tests, pass, fail: failed.length, failed }
}

describe("pg-ipc 1.0.5's own test.js", () => {
  // 14 assertions: client.connect(assert.error) in tests 1 to 5, and 1, 1, 1, 3 and 3 of their own;
  // the sixth test asserts nothing unless an error is emitted. (Against a core that breaks the sixth
  // test, tape adds a 15th line: "not ok 15 test exited without ending".)
  it('passes unchanged against our core: 6 tests, 14 assertions, exit 0', async () => {
    const dir = join(root, '.tmp', 'pg-ipc-suite')
    mkdirSync(dir, { recursive: true })
    const file = join(dir, 'test.cjs')
    writeFileSync(file, adapted(databaseUrl()))
    const run = await runChild(process.execPath, [file], { cwd: root, timeoutMs: 30_000 })
    const tap = parseTap(run.stdout)
    const report = `${describeChild(run)}\n--- failed assertions\n${tap.failed.join('\n')}`
    expect(tap.failed, report).toEqual([])
    expect(run.code, report).toBe(0)
    expect(tap, report).toEqual({ tests: 6, pass: 14, fail: 0, failed: [] })
    expect(run.stdout, report).toMatch(/^# tests 14\n# pass {2}14\n\n# ok/m)
  })
})
