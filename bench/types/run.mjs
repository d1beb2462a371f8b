#!/usr/bin/env node
// Type-check cost of the typed layer: `npm run bench:types` (builds first: consumers read dist/*.d.ts).
//
// For each size it generates a map of N channels, each
//   z.object({ id: z.uuid(), nI: z.number(), tags: z.array(z.string()), at: <Date <-> ISO string codec> })
// with 50 typed `on` and 50 `notify` calls (cycling over the channels when there are fewer than 50),
// twice: through `defineChannels` ("ours"), and behind a hand-written two-method generic emitter over
// the same zod map ("naive", the floor any zod-typed emitter pays). Each file is checked by the
// project's own `tsc --extendedDiagnostics`, runs interleaved; instantiations are deterministic, the
// check time is the best of the runs (2 shared cores drift 10-20% between runs).
//
// Usage: node bench/types/run.mjs [sizes...] [--runs N] [--out file.json]
//   node bench/types/run.mjs                 10, 200 and 1000 channels, 5 runs each
//   node bench/types/run.mjs 1 200 --runs 5  other sizes
// Writes bench/results/types.json (unless --out says otherwise). Exit code 0 even when a target is
// missed: this measures, the tsd suite is what fails on a broken type.

import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
// Inside the package, so `typed-pg-ipc` resolves by self-reference through package.json `exports`
// (to dist/index.d.ts, as for a consumer) and zod, pg and @types/pg from the project's node_modules.
const work = join(root, '.tmp', 'bench-types')
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')

/** The targets of the type-check cost, at the size they apply to. */
export const TARGETS = {
  /** At 200 channels: ours / naive instantiations. */
  instantiationRatio200: 2.5,
  /** At 200 channels: ours / naive check time. */
  checkTimeRatio200: 2,
  /** At 1,000 channels: ours, check time in seconds. */
  checkSeconds1000: 5,
}

const CALLS = 50

// ---- arguments -----------------------------------------------------------------------------------

const argv = process.argv.slice(2)
let runs = 5
let out = join(root, 'bench', 'results', 'types.json')
const sizes = []
for (let index = 0; index < argv.length; index++) {
  const arg = argv[index]
  if (arg === '--runs') runs = Number(argv[++index])
  else if (arg === '--out') out = resolve(argv[++index] ?? '')
  else if (/^\d+$/.test(arg ?? '')) sizes.push(Number(arg))
  else {
    console.error(
      `bench:types: unknown argument "${arg}". Usage: node bench/types/run.mjs [sizes...] [--runs N] [--out file.json]`,
    )
    process.exit(2)
  }
}
if (sizes.length === 0) sizes.push(10, 200, 1000)
if (!Number.isInteger(runs) || runs < 1) {
  console.error('bench:types: --runs takes a positive integer')
  process.exit(2)
}

// ---- the generated programs ----------------------------------------------------------------------

const isoDate = `z.codec(z.iso.datetime(), z.date(), { decode: (text) => new Date(text), encode: (date) => date.toISOString() })`
const schema = (i) => `z.object({ id: z.uuid(), n${i}: z.number(), tags: z.array(z.string()), at: ${isoDate} })`
const map = (n) => `{\n${Array.from({ length: n }, (_, i) => `  ch${i}: ${schema(i)},\n`).join('')}}`
const calls = (n) =>
  Array.from({ length: CALLS }, (_, call) => {
    const i = call % n
    return (
      `ipc.on('ch${i}', (m) => { const x: number = m.payload.n${i}; void x })\n` +
      `void ipc.notify('ch${i}', { id: '6f1c0b9e-6a2b-4c57-9f59-1f0a3e5b8c11', n${i}: 1, tags: ['a'], at: new Date() })\n`
    )
  }).join('')

const ours = (n) => `import { z } from 'zod'
import pg from 'pg'
import { defineChannels } from 'typed-pg-ipc'

export const channels = defineChannels(${map(n)})
const ipc = channels.attach(new pg.Client())
${calls(n)}`

const naive = (n) => `import { z } from 'zod'

export const channels = ${map(n)}
type C = typeof channels
const ipc = {
  on: <K extends keyof C>(k: K, f: (m: { payload: z.output<C[K]> }) => void) => void [k, f],
  notify: <K extends keyof C>(k: K, p: z.output<C[K]>) => Promise.resolve(void [k, p]),
}
${calls(n)}`

function generate() {
  rmSync(work, { recursive: true, force: true })
  mkdirSync(work, { recursive: true })
  writeFileSync(
    join(work, 'tsconfig.json'),
    JSON.stringify(
      {
        compilerOptions: {
          strict: true,
          target: 'es2022',
          module: 'nodenext',
          moduleResolution: 'nodenext',
          noEmit: true,
          skipLibCheck: true,
          types: [],
        },
      },
      null,
      2,
    ),
  )
  for (const n of sizes) {
    for (const [kind, source] of [
      ['ours', ours(n)],
      ['naive', naive(n)],
    ]) {
      writeFileSync(join(work, `${kind}${n}.ts`), source)
      writeFileSync(join(work, `${kind}${n}.json`), JSON.stringify({ extends: './tsconfig.json', files: [`${kind}${n}.ts`] }))
    }
  }
}

// ---- measuring -----------------------------------------------------------------------------------

/** One `tsc --extendedDiagnostics` run; throws with the compiler's output when the file has errors. */
function check(project) {
  let output
  try {
    output = execFileSync(process.execPath, [tsc, '-p', join(work, project), '--extendedDiagnostics'], {
      cwd: work,
      encoding: 'utf8',
      maxBuffer: 64 * 2 ** 20,
    })
  } catch (error) {
    throw new Error(`${project}: tsc reported errors (the generated program must compile):\n${error.stdout ?? error}`)
  }
  const field = (name) => {
    const match = new RegExp(`^${name}:\\s+([\\d.]+)`, 'm').exec(output)
    if (match === null) throw new Error(`${project}: no "${name}" in tsc's diagnostics:\n${output}`)
    return Number(match[1])
  }
  return {
    instantiations: field('Instantiations'),
    types: field('Types'),
    memoryKB: field('Memory used'),
    checkSeconds: field('Check time'),
    totalSeconds: field('Total time'),
  }
}

function measure(n) {
  const samples = { ours: [], naive: [] }
  for (let run = 0; run < runs; run++) {
    // Interleaved, so a burst of load on the shared machine hits both alike.
    for (const kind of ['naive', 'ours']) samples[kind].push(check(`${kind}${n}.json`))
  }
  const summary = (list) => ({
    instantiations: list[0].instantiations,
    types: list[0].types,
    checkSeconds: Math.min(...list.map((sample) => sample.checkSeconds)),
    totalSeconds: Math.min(...list.map((sample) => sample.totalSeconds)),
    memoryKB: Math.max(...list.map((sample) => sample.memoryKB)),
    checkSecondsRuns: list.map((sample) => sample.checkSeconds),
  })
  const result = { channels: n, ours: summary(samples.ours), naive: summary(samples.naive) }
  result.instantiationRatio = result.ours.instantiations / result.naive.instantiations
  result.checkTimeRatio = result.ours.checkSeconds / result.naive.checkSeconds
  return result
}

// ---- report --------------------------------------------------------------------------------------

const int = (value) => Math.round(value).toLocaleString('en-US')
const sec = (value) => `${value.toFixed(2)} s`
const ratio = (value) => `${value.toFixed(2)}x`

function table(header, rows) {
  const widths = header.map((cell, index) => Math.max(cell.length, ...rows.map((row) => row[index].length)))
  const line = (cells) =>
    `| ${cells.map((cell, index) => (index === 0 ? cell.padEnd(widths[index]) : cell.padStart(widths[index]))).join(' | ')} |`
  const rule = `|${widths.map((width, index) => (index === 0 ? '-'.repeat(width + 2) : `${'-'.repeat(width + 1)}:`)).join('|')}|`
  return [line(header), rule, ...rows.map(line)].join('\n')
}

function verdicts(results) {
  const at = (n) => results.find((result) => result.channels === n)
  const list = []
  const r200 = at(200)
  if (r200 !== undefined) {
    list.push({
      target: `200 channels: instantiations at most ${TARGETS.instantiationRatio200}x naive`,
      measured: ratio(r200.instantiationRatio),
      met: r200.instantiationRatio <= TARGETS.instantiationRatio200,
    })
    list.push({
      target: `200 channels: check time at most ${TARGETS.checkTimeRatio200}x naive`,
      measured: ratio(r200.checkTimeRatio),
      met: r200.checkTimeRatio <= TARGETS.checkTimeRatio200,
    })
  }
  const r1000 = at(1000)
  if (r1000 !== undefined) {
    list.push({
      target: `1,000 channels: check time under ${TARGETS.checkSeconds1000} s`,
      measured: `${sec(r1000.ours.checkSeconds)} (total ${sec(r1000.ours.totalSeconds)})`,
      met: r1000.ours.checkSeconds < TARGETS.checkSeconds1000,
    })
  }
  return list
}

function machine() {
  const cpus = os.cpus()
  return {
    platform: os.platform(),
    arch: os.arch(),
    cpuModel: cpus[0]?.model ?? 'unknown',
    cpus: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    typescript: JSON.parse(readFileSync(join(root, 'node_modules', 'typescript', 'package.json'), 'utf8')).version,
    zod: JSON.parse(readFileSync(join(root, 'node_modules', 'zod', 'package.json'), 'utf8')).version,
  }
}

// ---- main ----------------------------------------------------------------------------------------

const started = Date.now()
const loadAverageStart = os.loadavg().map((value) => Number(value.toFixed(2)))
generate()
const results = []
for (const n of sizes) {
  process.stdout.write(`bench:types: ${n} channels, ${runs} interleaved runs of each ...`)
  const result = measure(n)
  results.push(result)
  process.stdout.write(` ours ${sec(result.ours.checkSeconds)}, naive ${sec(result.naive.checkSeconds)}\n`)
}

const rows = results.map((result) => [
  int(result.channels),
  int(result.ours.instantiations),
  sec(result.ours.checkSeconds),
  int(result.naive.instantiations),
  sec(result.naive.checkSeconds),
  ratio(result.instantiationRatio),
  ratio(result.checkTimeRatio),
])
console.log()
console.log(
  table(
    [
      'channels',
      'ours: instantiations',
      'ours: check time',
      'naive: instantiations',
      'naive: check time',
      'instantiations ratio',
      'check time ratio',
    ],
    rows,
  ),
)
console.log()
const checked = verdicts(results)
for (const verdict of checked) console.log(`${verdict.met ? 'met   ' : 'MISSED'}  ${verdict.target}: ${verdict.measured}`)

const report = {
  meta: {
    date: new Date().toISOString(),
    command:
      process.env.npm_lifecycle_event === 'bench:types' && process.argv.length === 2
        ? 'npm run bench:types'
        : `node bench/types/run.mjs ${process.argv.slice(2).join(' ')}`.trim(),
    runsPerProgram: runs,
    callsPerProgram: { on: CALLS, notify: CALLS },
    seconds: Math.round((Date.now() - started) / 1000),
    machine: { ...machine(), loadAverageStart, loadAverageEnd: os.loadavg().map((value) => Number(value.toFixed(2))) },
    note: 'instantiations are deterministic; check and total times are the best of the runs (all check times in checkSecondsRuns)',
  },
  targets: TARGETS,
  results,
  verdicts: checked,
}
mkdirSync(dirname(out), { recursive: true })
writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`)
console.log(`\nwrote ${relative(process.cwd(), out) || out}`)
