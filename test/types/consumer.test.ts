// The package's declarations as users compile them: without zod installed (it is an optional peer),
// without skipLibCheck, and with the oldest TypeScript they support. Each consumer is a folder
// outside the repository (so nothing resolves from the project's node_modules by accident) holding
// a copy of the built package (package.json + dist/) and links to pg and its types only.
//
// The oldest versions are installed on first use into .tmp/typescript-versions (not devDependencies:
// an aliased `typescript` would take over node_modules/.bin/tsc).
import { execFile, spawnSync } from 'node:child_process'
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../../', import.meta.url))

/**
 * The oldest TypeScript the package's declarations compile with (4.7: `infer X extends Y`, and the
 * `node16`/`nodenext` resolution of `exports`), and the oldest for the typed layer, which is zod 4's
 * own minimum. Keep in step with the README's Support section.
 */
const MINIMUM_TYPESCRIPT = '4.7.4'
const MINIMUM_TYPESCRIPT_WITH_ZOD = '5.5.4'

const versionsDir = join(root, '.tmp', 'typescript-versions')
const tscOf = (version: string): string => join(versionsDir, 'node_modules', `typescript-${version}`, 'bin', 'tsc')
const projectTsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')

function installTypeScripts(versions: readonly string[]): void {
  const missing = versions.filter((version) => !existsSync(tscOf(version)))
  if (missing.length === 0) return
  mkdirSync(versionsDir, { recursive: true })
  writeFileSync(join(versionsDir, 'package.json'), JSON.stringify({ name: 'typescript-versions', private: true }, null, 2))
  // All of them in one command: npm removes from the folder what the command does not name.
  const specs = versions.map((version) => `typescript-${version}@npm:typescript@${version}`)
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
  const result = spawnSync(npm, ['install', '--no-audit', '--no-fund', '--no-package-lock', ...specs], {
    cwd: versionsDir,
    encoding: 'utf8',
    timeout: 120_000,
  })
  if (result.status !== 0) {
    throw new Error(`could not install ${specs.join(' ')} into ${versionsDir} (needs the npm registry once):\n${result.stderr}`)
  }
}

const core = `
import pg from 'pg'
import { pgIPC, type Message, type PgIpcError } from 'typed-pg-ipc'

const client = new pg.Client(process.env.DATABASE_URL)
const ipc = pgIPC(client)
ipc.on('jobs', (message: Message) => console.log(message.channel, message.payload))
ipc.on('error', (error: PgIpcError) => console.error(error.code))
ipc.notify('jobs', { id: 1 })
await ipc.end()
`

const typed = `
import pg from 'pg'
import { z } from 'zod'
import { defineChannels, type MessageOf, type PayloadOf } from 'typed-pg-ipc'

const isoDate = z.codec(z.iso.datetime(), z.date(), { decode: (text) => new Date(text), encode: (date) => date.toISOString() })
const channels = defineChannels({ orderPlaced: z.object({ orderId: z.uuid(), placedAt: isoDate }), cacheCleared: z.void() })
const ipc = channels.attach(new pg.Client(process.env.DATABASE_URL))
ipc.on('orderPlaced', (message) => console.log(message.payload.placedAt.getTime()))
ipc.on('error', (error) => console.error(error.code))
const onOrder = (message: MessageOf<typeof channels, 'orderPlaced'>): string => message.payload.orderId
ipc.off('orderPlaced', onOrder)
const order: PayloadOf<typeof channels, 'orderPlaced'> = { orderId: crypto.randomUUID(), placedAt: new Date() }
await ipc.notify('orderPlaced', order)
await ipc.notify('cacheCleared')
// @ts-expect-error a misspelt channel
ipc.on('orderPlacd', (message) => console.log(message))
// @ts-expect-error a misspelt channel
await ipc.notify('orderPlacd', order)
// @ts-expect-error a wire-form Date
await ipc.notify('orderPlaced', { ...order, placedAt: order.placedAt.toISOString() })
// @ts-expect-error a Date without a codec
defineChannels({ when: z.date() })
// @ts-expect-error a reserved name
defineChannels({ error: z.string() })
await ipc.end()
`

interface Consumer {
  readonly dir: string
  readonly withZod: boolean
}

/** A consumer folder: the built package copied in, pg's types (and zod) linked from the project. */
function makeConsumer(parent: string, name: string, source: string, withZod: boolean): Consumer {
  // The core-only consumer checks every declaration file, the package's included (index.d.ts
  // brings in the typed layer's too); the typed one checks its own code only, since checking zod's
  // declarations and @types/node's again would double the test's time and test nothing of ours.
  const dir = join(parent, name)
  const modules = join(dir, 'node_modules')
  const pkg = join(modules, 'typed-pg-ipc')
  mkdirSync(join(modules, '@types'), { recursive: true })
  mkdirSync(pkg)
  cpSync(join(root, 'package.json'), join(pkg, 'package.json'))
  cpSync(join(root, 'dist'), join(pkg, 'dist'), { recursive: true, filter: (file) => !file.endsWith('.map') })
  // Links resolve to the project's copies, whose own imports (pg-types, pg-protocol) resolve there.
  const links = ['pg', '@types/pg', '@types/node', ...(withZod ? ['zod'] : [])]
  for (const link of links) symlinkSync(join(root, 'node_modules', link), join(modules, link), 'dir')
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, private: true, type: 'module' }))
  writeFileSync(join(dir, 'index.ts'), source)
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        target: 'es2022',
        module: 'nodenext',
        moduleResolution: 'nodenext',
        noEmit: true,
        skipLibCheck: withZod,
      },
      files: ['index.ts'],
    }),
  )
  return { dir, withZod }
}

interface Diagnostic {
  readonly file: string
  readonly line: string
}

/** Runs a tsc on the consumer; returns its errors, each with the file it is in (relative to the consumer). */
function typeCheck(consumer: Consumer, tsc: string): Promise<Diagnostic[]> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [tsc, '-p', consumer.dir, '--pretty', 'false'],
      { cwd: consumer.dir, timeout: 120_000 },
      (error, stdout) => {
        if (error !== null && typeof error.code !== 'number') {
          reject(new Error(`tsc could not run: ${error.message}`, { cause: error }))
          return
        }
        const lines = stdout.split('\n').filter((line) => /error TS\d+/.test(line))
        resolve(lines.map((line) => ({ file: line.replace(/\(\d+,\d+\).*$/, ''), line })))
      },
    )
  })
}

/** Errors in the consumer's code or in the package's declarations (not in pg's, @types/node's or zod's). */
function ours(diagnostics: readonly Diagnostic[]): string[] {
  return diagnostics
    .filter((diagnostic) => diagnostic.file === 'index.ts' || diagnostic.file.startsWith(join('node_modules', 'typed-pg-ipc')))
    .map((diagnostic) => diagnostic.line)
}

describe('the package as consumers compile it', () => {
  let parent: string
  let coreOnly: Consumer
  let withZod: Consumer

  beforeAll(() => {
    if (!existsSync(join(root, 'dist', 'index.d.ts'))) {
      throw new Error('dist/index.d.ts is missing: run `npm run build` first (`npm test` builds before running vitest)')
    }
    parent = mkdtempSync(join(tmpdir(), 'typed-pg-ipc-consumers-'))
    coreOnly = makeConsumer(parent, 'core-only', core, false)
    withZod = makeConsumer(parent, 'typed', typed, true)
  })

  afterAll(() => {
    if (parent !== undefined) rmSync(parent, { recursive: true, force: true })
  })

  it('the declarations import neither zod nor type-fest', () => {
    const found: string[] = []
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name)
        if (entry.isDirectory()) walk(path)
        else if (/\.d\.[cm]?ts$/.test(entry.name)) {
          // What the compiler reads as imports (import/export from, import types, references), not comments.
          const { importedFiles, referencedFiles, typeReferenceDirectives } = ts.preProcessFile(
            readFileSync(path, 'utf8'),
            true,
            true,
          )
          for (const { fileName } of [...importedFiles, ...referencedFiles, ...typeReferenceDirectives]) {
            if (/^(zod|type-fest)(\/|$)/.test(fileName)) found.push(`${relative(root, path)}: ${fileName}`)
          }
        }
      }
    }
    walk(join(root, 'dist'))
    expect(found).toEqual([])
  })

  it('a project with only pg and @types/pg compiles `pgIPC` without skipLibCheck', { timeout: 120_000 }, async () => {
    expect(existsSync(join(coreOnly.dir, 'node_modules', 'zod'))).toBe(false)
    expect((await typeCheck(coreOnly, projectTsc)).map((diagnostic) => diagnostic.line)).toEqual([])
  })

  it('a project with zod compiles the typed layer, and its mistakes are errors', { timeout: 120_000 }, async () => {
    expect((await typeCheck(withZod, projectTsc)).map((diagnostic) => diagnostic.line)).toEqual([])
  })

  it(
    `the declarations compile with TypeScript ${MINIMUM_TYPESCRIPT}, and the typed layer with ${MINIMUM_TYPESCRIPT_WITH_ZOD}`,
    { timeout: 240_000 },
    async () => {
      installTypeScripts([MINIMUM_TYPESCRIPT, MINIMUM_TYPESCRIPT_WITH_ZOD])
      const [oldest, oldestWithZod] = await Promise.all([
        typeCheck(coreOnly, tscOf(MINIMUM_TYPESCRIPT)),
        typeCheck(withZod, tscOf(MINIMUM_TYPESCRIPT_WITH_ZOD)),
      ])
      // Only errors in the consumer's code and in this package count. Older compilers also report
      // errors in other packages' declarations (pg 8.23's need TypeScript 5.7+ without
      // skipLibCheck), which are not ours to fix.
      expect(ours(oldest), `TypeScript ${MINIMUM_TYPESCRIPT}, core only`).toEqual([])
      expect(ours(oldestWithZod), `TypeScript ${MINIMUM_TYPESCRIPT_WITH_ZOD}, typed layer`).toEqual([])
      expect(dirname(tscOf(MINIMUM_TYPESCRIPT))).toContain('typescript-4.7.4')
    },
  )
})
