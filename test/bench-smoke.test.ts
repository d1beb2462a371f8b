// Keeps `npm run bench` working: compiles the benchmark the way the script does and runs it with
// tiny counts (BENCH_SCALE=smoke) against the shared test server, writing to a temp dir (never to
// bench/results). It checks that the run exits 0 and produced numbers, never how fast anything is.
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import type { BenchResults } from '../bench/results.js'
import { databaseUrl } from './support/db.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const TSC = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
// Its own output dir, so a developer's `npm run bench` (in .tmp/bench) is never overwritten mid-run.
const OUT_DIR = '.tmp/bench-smoke'

interface Run {
  code: number | null
  signal: NodeJS.Signals | null
  output: string
}

function node(args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
    const timer = setTimeout(() => child.kill('SIGINT'), timeoutMs)
    child.on('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, output })
    })
  })
}

const positive = (value: number | null | undefined): boolean => typeof value === 'number' && Number.isFinite(value) && value > 0

describe('npm run bench (smoke scale)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-smoke-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('compiles, runs every section against the test server and writes numbers', async () => {
    const compile = await node([TSC, '-p', 'bench/tsconfig.json', '--outDir', OUT_DIR], process.env, 120_000)
    expect(compile.code, compile.output).toBe(0)

    const jsonFile = join(dir, 'results.json')
    const docsFile = join(dir, 'benchmarks.md')
    const run = await node(
      ['--expose-gc', '--no-deprecation', '--enable-source-maps', `${OUT_DIR}/bench/run.js`],
      {
        ...process.env,
        BENCH_SCALE: 'smoke',
        BENCH_ONLY: '',
        DATABASE_URL: databaseUrl(),
        BENCH_OUT: jsonFile,
        BENCH_DOCS: docsFile,
      },
      150_000,
    )
    expect(run.code, run.output).toBe(0)

    const results = JSON.parse(readFileSync(jsonFile, 'utf8')) as BenchResults
    expect(results.meta.scale).toBe('smoke')
    expect(results.meta.server.source).toBe('DATABASE_URL')
    // 11 targets x 2 layouts x C=1 and C=100
    expect(results.throughput).toHaveLength(44)
    for (const point of results.throughput) {
      expect(positive(point.median.sentPerSec) && positive(point.median.deliveredPerSec), JSON.stringify(point)).toBe(true)
    }
    expect(results.latency).toHaveLength(22)
    for (const point of results.latency) expect(positive(point.p50Ms) && positive(point.p99Ms), JSON.stringify(point)).toBe(true)
    expect(results.receive.length).toBeGreaterThan(0)
    for (const point of results.receive) expect(positive(point.perSec), JSON.stringify(point)).toBe(true)
    expect(results.fanout.length).toBeGreaterThan(0)
    for (const point of results.fanout) expect(positive(point.deliveredPerSec), JSON.stringify(point)).toBe(true)
    expect(results.memory?.samples.length).toBeGreaterThan(1)
    expect(results.burst?.map((burst) => burst.lost)).toEqual([0, 0, 0])
    expect(results.payload?.length).toBeGreaterThan(0)
    for (const step of results.payload ?? []) expect(positive(step.usPerOp), JSON.stringify(step)).toBe(true)
    expect(results.checks.length).toBeGreaterThan(0)

    const docs = readFileSync(docsFile, 'utf8')
    expect(docs).toContain('# Benchmarks')
    expect(docs).toContain('## In short')
    expect(docs).toContain('## How to run it again')
    expect(docs).toContain('xychart-beta')
    // Written for users: no tracker language.
    expect(docs).not.toMatch(/issue \d|\bmissed\b|\btargets? of\b/i)
    // The printed tables
    expect(run.output).toContain('Throughput, listener in a separate process')
  }, 300_000)
})
