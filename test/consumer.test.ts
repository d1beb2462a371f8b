// The package as a new user gets it: `npm pack`, then the tarball installed with npm into fresh folders
// outside the project, next to the versions of pg, zod, TypeScript and the @types packages this project
// pins (so npm takes them from its cache: fast, and no network needed after `npm ci`). Each consumer
// is type-checked WITHOUT skipLibCheck, compiled, and run against the test server:
//   - ESM, module NodeNext;
//   - bundler resolution;
//   - CommonJS, module node16 and module nodenext;
//   - core only, in a folder without zod (zod is an optional peer dependency);
//   - pg-ipc 1.0.5's README program, in CommonJS JavaScript.
// `npm test` builds dist/ before vitest runs; run `npm run build` first when running this file alone.

import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { describeChild, runChild, type ChildRun } from './support/child.js'
import { freshDatabase } from './support/db.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  name: string
  devDependencies: Record<string, string>
}
/** The exact versions this project is tested with (and that `npm ci` put in npm's cache). */
const pinned = (name: string): string => {
  const version = manifest.devDependencies[name]
  if (version === undefined) throw new Error(`${name} is not a devDependency`)
  return `${name}@${version}`
}

let work = ''
let tarball = ''
/** Folder with typed-pg-ipc, pg, zod, typescript, @types/pg, @types/node. */
let full = ''
/** Folder with typed-pg-ipc, pg, typescript, @types/pg, @types/node: no zod. */
let coreOnly = ''

async function npmInstall(dir: string, packages: readonly string[]): Promise<void> {
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true }, null, 2))
  const run = await runChild(
    'npm',
    ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', tarball, ...packages],
    {
      cwd: dir,
      timeoutMs: 120_000,
    },
  )
  if (run.code !== 0) throw new Error(`npm install failed in ${dir}\n${describeChild(run)}`)
}

/** Writes `files` into `dir` (a consumer project inside an install folder). */
function project(dir: string, files: Record<string, string>): string {
  mkdirSync(dir, { recursive: true })
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text)
  return dir
}

function tsconfig(compilerOptions: Record<string, unknown>): string {
  return JSON.stringify(
    {
      compilerOptions: {
        strict: true,
        skipLibCheck: false, // the package's declarations are checked as a user's compiler would
        types: ['node'],
        target: 'ES2022',
        outDir: 'out',
        ...compilerOptions,
      },
      include: ['*.ts', '*.mts', '*.cts'],
    },
    null,
    2,
  )
}

/** tsc -p on a consumer project, with the TypeScript installed in its folder. */
function compile(installDir: string, projectDir: string): Promise<ChildRun> {
  return runChild(process.execPath, [join(installDir, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', projectDir], {
    cwd: projectDir,
    timeoutMs: 90_000,
  })
}

function runNode(file: string, cwd: string, url: string): Promise<ChildRun> {
  const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: url }
  delete env.NODE_OPTIONS
  return runChild(process.execPath, [file], { cwd, env, timeoutMs: 20_000 })
}

/** Runs `tasks` with at most `limit` at a time (tsc is CPU-bound: two cores here). */
async function pool<T>(limit: number, tasks: readonly (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = []
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < tasks.length) {
      const index = next++
      results[index] = await (tasks[index] as () => Promise<T>)()
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker))
  return results
}

/** One TypeScript project in an install folder: one tsc run. */
interface Unit {
  /** Which install folder: with zod, or without. */
  readonly folder: 'full' | 'coreOnly'
  readonly dir: string
  readonly files: Record<string, string>
}

/** A program of a unit, run after it compiled. */
interface Scenario {
  readonly unit: string
  /** The compiled file, relative to the unit's dir. */
  readonly entry: string
  readonly expected: string
}

const units = new Map<string, Unit>()
const scenarios = new Map<string, Scenario>()
const compiled = new Map<string, ChildRun>()

function installDir(unit: Unit): string {
  return unit.folder === 'full' ? full : coreOnly
}

/** A scenario's unit compiled, its program run: exit 0, nothing on stderr, exactly the expected output. */
async function expectCompilesAndRuns(name: string): Promise<void> {
  const scenario = scenarios.get(name)
  const unit = units.get(scenario?.unit ?? '')
  const typeCheck = compiled.get(scenario?.unit ?? '')
  if (scenario === undefined || unit === undefined || typeCheck === undefined) throw new Error(`no compiled scenario ${name}`)
  expect(typeCheck.code, `type errors:\n${describeChild(typeCheck)}`).toBe(0)
  const projectDir = join(installDir(unit), unit.dir)
  const run = await runNode(join(projectDir, scenario.entry), projectDir, await freshDatabase('consumer'))
  expect(run.code, describeChild(run)).toBe(0)
  expect(run.stderr, describeChild(run)).toBe('')
  expect(run.stdout).toBe(scenario.expected)
}

// The same program in each module setup: the typed layer and the core, a message both ways through
// the server, an invalid payload rejected, and a misspelt channel refused by the compiler.
const typedProgram = (label: string, imports: string, wrap: (body: string) => string): string => `${imports}

${wrap(`const client = new Client({ connectionString: process.env.DATABASE_URL })
await client.connect()
const channels = defineChannels({ orderPlaced: z.object({ orderId: z.string(), total: z.number().positive() }) })
const ipc = channels.attach(client)
const received = new Promise<PayloadOf<typeof channels, 'orderPlaced'>>((resolve) => ipc.once('orderPlaced', (msg) => resolve(msg.payload)))
await ipc.listening('orderPlaced')
await ipc.notify('orderPlaced', { orderId: 'o-1', total: 12.5 })
const order = await received
const invalid = await ipc.notify('orderPlaced', { orderId: 'o-2', total: -1 }).then(() => 'sent', (error: unknown) => error instanceof InvalidPayloadError)
// @ts-expect-error: a misspelt channel is a compile error (so the types are real, not any)
await ipc.notify('orderPlacd', { orderId: 'o-3', total: 1 }).catch(() => undefined)
const core: PgIPC = factory(client)
const coreMessage = new Promise<unknown>((resolve) => core.once('corechannel', (msg) => resolve(msg.payload)))
await core.listening('corechannel')
core.notify('corechannel', { hello: 'core' })
const fromCore = await coreMessage
await ipc.end()
await core.end()
await client.end()
console.log(\`${label}: \${order.orderId} \${order.total}; invalid payload rejected: \${String(invalid)}; core: \${JSON.stringify(fromCore)}\`)`)}
`

const asyncMain = (body: string): string =>
  `async function main(): Promise<void> {\n${body.replace(/^/gm, '  ')}\n}\n\nmain().catch((error: unknown) => {\n  console.error(error)\n  process.exitCode = 1\n})`
const topLevel = (body: string): string => body

const expectedTyped = (label: string): string => `${label}: o-1 12.5; invalid payload rejected: true; core: {"hello":"core"}\n`

const cjsImports = `import factory = require('typed-pg-ipc')
import { defineChannels, InvalidPayloadError, type PayloadOf, type PgIPC } from 'typed-pg-ipc'
import { Client } from 'pg'
import { z } from 'zod'`

const esmImports = `import pg from 'pg'
import { z } from 'zod'
import factory, { defineChannels, InvalidPayloadError, type PayloadOf, type PgIPC } from 'typed-pg-ipc'
const { Client } = pg`

// ESM and CommonJS under module NodeNext in one project (.mts and .cts files): one tsc run for both.
units.set('nodenext', {
  folder: 'full',
  dir: 'nodenext',
  files: {
    'tsconfig.json': tsconfig({ module: 'NodeNext', moduleResolution: 'NodeNext' }),
    'esm.mts': typedProgram('esm nodenext', esmImports, topLevel),
    'cjs.cts': typedProgram('cjs nodenext', cjsImports, asyncMain),
  },
})
scenarios.set('esm nodenext', { unit: 'nodenext', entry: 'out/esm.mjs', expected: expectedTyped('esm nodenext') })
scenarios.set('cjs nodenext', { unit: 'nodenext', entry: 'out/cjs.cjs', expected: expectedTyped('cjs nodenext') })

units.set('node16', {
  folder: 'full',
  dir: 'node16',
  files: {
    'package.json': JSON.stringify({ type: 'commonjs' }),
    'tsconfig.json': tsconfig({ module: 'Node16', moduleResolution: 'Node16' }),
    'index.ts': typedProgram('cjs node16', cjsImports, asyncMain),
  },
})
scenarios.set('cjs node16', { unit: 'node16', entry: 'out/index.js', expected: expectedTyped('cjs node16') })

units.set('bundler', {
  folder: 'full',
  dir: 'bundler',
  files: {
    'package.json': JSON.stringify({ type: 'module' }),
    'tsconfig.json': tsconfig({ module: 'ESNext', moduleResolution: 'Bundler' }),
    'index.ts': typedProgram(
      'bundler',
      `import { Client } from 'pg'
import { z } from 'zod'
import { pgIPC as factory, defineChannels, InvalidPayloadError, type PayloadOf, type PgIPC } from 'typed-pg-ipc'`,
      topLevel,
    ),
  },
})
scenarios.set('bundler', { unit: 'bundler', entry: 'out/index.js', expected: expectedTyped('bundler') })

// Core only, no zod in the folder: ESM and CommonJS (NodeNext), one tsc run.
const coreBody = (label: string): string => `const client = new Client({ connectionString: process.env.DATABASE_URL })
await client.connect()
const ipc: PgIPC = pgIPC(client)
const received = new Promise<unknown>((resolve) => ipc.once('coreonly', (msg) => resolve(msg.payload)))
await ipc.listening('coreonly')
ipc.notify('coreonly', { hello: 'without zod' })
console.log(\`${label}: \${JSON.stringify(await received)}\`)
await ipc.end()
await client.end()`
units.set('core only', {
  folder: 'coreOnly',
  dir: 'core',
  files: {
    'tsconfig.json': tsconfig({ module: 'NodeNext', moduleResolution: 'NodeNext' }),
    'esm.mts': `import pg from 'pg'
import { pgIPC, type PgIPC } from 'typed-pg-ipc'
const { Client } = pg

${coreBody('core only esm')}
`,
    'cjs.cts': `import pgIPC = require('typed-pg-ipc')
import type { PgIPC } from 'typed-pg-ipc'
import { Client } from 'pg'

${asyncMain(coreBody('core only cjs'))}
`,
  },
})
scenarios.set('core only esm', { unit: 'core only', entry: 'out/esm.mjs', expected: 'core only esm: {"hello":"without zod"}\n' })
scenarios.set('core only cjs', { unit: 'core only', entry: 'out/cjs.cjs', expected: 'core only cjs: {"hello":"without zod"}\n' })

describe('the packed tarball, installed into fresh folders', () => {
  beforeAll(async () => {
    if (!existsSync(join(root, 'dist', 'index.js')) || !existsSync(join(root, 'dist', 'index.cjs'))) {
      throw new Error('dist/ is missing: run `npm run build` first (`npm test` builds before running vitest)')
    }
    work = mkdtempSync(join(tmpdir(), 'typed-pg-ipc-consumer-'))
    const packed = JSON.parse(
      execFileSync('npm', ['pack', '--json', '--pack-destination', work], {
        cwd: root,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    ) as { filename: string }[]
    tarball = join(work, packed[0]?.filename ?? '')
    full = join(work, 'full')
    coreOnly = join(work, 'core-only')
    const tools = [pinned('pg'), pinned('typescript'), pinned('@types/pg'), pinned('@types/node')]
    await Promise.all([npmInstall(full, [...tools, pinned('zod')]), npmInstall(coreOnly, tools)])
    // Type-checking without skipLibCheck reads all of @types/node (and zod): seconds per project, so
    // the projects compile here, two at a time, and each test below looks at its own result.
    const entries = [...units.entries()]
    for (const [, unit] of entries) project(join(installDir(unit), unit.dir), unit.files)
    const runs = await pool(
      2,
      entries.map(
        ([, unit]) =>
          () =>
            compile(installDir(unit), join(installDir(unit), unit.dir)),
      ),
    )
    entries.forEach(([name], index) => compiled.set(name, runs[index] as ChildRun))
  }, 300_000)

  afterAll(() => {
    if (work !== '') rmSync(work, { recursive: true, force: true })
  })

  it('the tarball holds the build, README, LICENSE and package.json, nothing else', () => {
    const files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).trim().split('\n').sort()
    expect(files.filter((file) => !file.startsWith('package/dist/'))).toEqual([
      'package/LICENSE',
      'package/README.md',
      'package/package.json',
    ])
    for (const entry of ['index.js', 'index.cjs', 'index.d.ts', 'index.d.cts']) expect(files).toContain(`package/dist/${entry}`)
    expect(files.filter((file) => file.endsWith('.map'))).toEqual([])
  })

  it('ESM, module NodeNext (a .mts file): type-checks without skipLibCheck and runs', () => expectCompilesAndRuns('esm nodenext'))

  it('bundler resolution: type-checks without skipLibCheck and runs', () => expectCompilesAndRuns('bundler'))

  it('CommonJS, module Node16: import = require() gives the factory; type-checks without skipLibCheck and runs', () =>
    expectCompilesAndRuns('cjs node16'))

  it('CommonJS, module NodeNext (a .cts file): the same program type-checks without skipLibCheck and runs', () =>
    expectCompilesAndRuns('cjs nodenext'))

  it('core only, in a folder without zod, ESM and CommonJS: type-checks without skipLibCheck and runs', async () => {
    const noZod = await runChild(process.execPath, ['-e', "require.resolve('zod')"], { cwd: coreOnly, timeoutMs: 10_000 })
    expect(noZod.code, 'zod must not be resolvable in the core-only folder').not.toBe(0)
    await expectCompilesAndRuns('core only esm')
    await expectCompilesAndRuns('core only cjs')
  })

  it("pg-ipc 1.0.5's README program, in CommonJS: prints the message and exits by itself", async () => {
    // The program of pg-ipc's README (Usage), changed only where marked: the README leaves out the
    // connection and connecting, its `new require('pg').Client(...)` throws on today's pg (it calls
    // the class without new), and its listener ignores messages from its own connection, so the
    // message it prints comes from a second connection, as from another service.
    const dir = project(join(full, 'pg-ipc-readme'), {
      'package.json': JSON.stringify({ type: 'commonjs' }),
      'readme.js': `var pgIPC = require('typed-pg-ipc') // was: require('pg-ipc')
var pg = require('pg') // added
var client = new pg.Client(process.env.DATABASE_URL) // was: new require('pg').Client({ ... })
client.connect() // added
var ipc = pgIPC(client)
ipc.on('error', console.error)
ipc.on('end', function () {
  client.end()
})

ipc.on('someChannel', function (msg) {
  // Ignore messages from this process
  if (msg.processId === client.processID) return
  console.log(msg.payload.currentTime)
  // some time later ... (moved here: once the message from the other service arrived)
  ipc.end()
})

ipc.notify('someChannel', {currentTime: Date.now()})

// added: another service, on its own connection, sends once the listener's LISTEN is active.
var otherClient = new pg.Client(process.env.DATABASE_URL)
otherClient.connect()
var other = pgIPC(otherClient)
other.on('error', console.error)
other.on('end', function () {
  otherClient.end()
})
ipc.once('listen', function () {
  other.notify('someChannel', {currentTime: 1700000000000})
})
other.on('notify', function () {
  other.end()
})
`,
    })
    const run = await runNode(join(dir, 'readme.js'), dir, await freshDatabase('consumer'))
    expect(run.code, describeChild(run)).toBe(0)
    expect(run.stderr, describeChild(run)).toBe('')
    expect(run.stdout).toBe('1700000000000\n')
  }, 60_000)
})
