// `npm run bench:latency`: single-message latency of each library in its own fresh process, the
// libraries interleaved.
//
// Each library runs in a Node process of its own that loads that library only
// (bench/latency-child.ts). The parent asks the processes in turn for one block each, rotating which
// one starts each round, so a slow spell of the machine lands on all of them alike. For a block, a
// process connects a sender and a listener (two connections, one process, like most services),
// warms them up (those samples are kept apart as "cold"), takes `samples` single-message round
// trips (send one, wait for its delivery, repeat) and disconnects: only the measured library's
// listener is connected, as PostgreSQL wakes every listening backend at each notifying commit. Reported: p50/p90/p99 of the warm samples per library, and each
// library's p50 over raw pg's one-round-trip `pg_notify` (the target is <= 1.1x).
// LATENCY_PER_BLOCK=1 starts a new process for every block instead (colder: V8 has optimised less).
//
//   npm run bench:latency                      # embedded PostgreSQL, 20 rounds x 250 samples per library
//   LATENCY_BLOCKS=4 npm run bench:latency     # fewer rounds (a rough look)
//   DATABASE_URL=postgres://... npm run bench:latency
//
// Writes bench/results/latency.json and regenerates docs/benchmarks.md (its "fresh processes" section).

import { fork, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { startPostgres, type PgServer } from '../test/support/postgres.js'
import type { ChildRequest, ChildResult } from './latency-child.js'
import { freshLatencyBeside, renderMarkdown } from './report.js'
import { percentile, type BenchResults } from './results.js'
import { target, type SenderKind } from './targets.js'

/** What bench/results/latency.json holds. */
export interface FreshLatencyResults {
  readonly meta: {
    readonly date: string
    readonly command: string
    readonly seconds: number
    readonly blocks: number
    readonly samplesPerBlock: number
    readonly warmupPerBlock: number
    readonly machine: {
      readonly cpus: number
      readonly cpuModel: string
      readonly loadAverageStart: number[]
      readonly loadAverageEnd: number[]
    }
    readonly server: string
    readonly method: string
  }
  readonly points: readonly FreshLatencyPoint[]
}

export interface FreshLatencyPoint {
  readonly target: SenderKind
  readonly label: string
  readonly samples: number
  readonly p50Ms: number
  readonly p90Ms: number
  readonly p99Ms: number
  /** p50 over raw pg's one-round-trip p50. */
  readonly vsRaw: number
  readonly coldSamples: number
  readonly coldP50Ms: number
}

const LIBRARIES: readonly { readonly target: SenderKind; readonly listener: ChildRequest['listener'] }[] = [
  { target: 'raw-rt', listener: 'raw' },
  { target: 'core', listener: 'core' },
  { target: 'typed-small', listener: 'typed-small' },
  { target: 'pg-ipc', listener: 'pg-ipc' },
]

function root(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let index = 0; index < 5; index++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'src'))) return dir
    dir = dirname(dir)
  }
  return process.cwd()
}

const ROOT = root()

function loadAverage(): number[] {
  return os.loadavg().map((value) => Number(value.toFixed(2)))
}

function runChild(request: ChildRequest): Promise<ChildResult> {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'latency-child.js')
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--no-deprecation', script], {
      env: { ...process.env, LATENCY_REQUEST: JSON.stringify(request) },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let output = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
    child.on('error', reject)
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`latency child for ${request.target} exited with ${code}`))
      else resolve(JSON.parse(output.trim()) as ChildResult)
    })
  })
}

/** A child kept for the whole run: it warmed up, then takes one block per request. */
interface Kept {
  readonly child: ChildProcess
  block(): Promise<{ samples: number[]; cold: number[] }>
  stop(): Promise<void>
}

async function keepChild(request: ChildRequest): Promise<Kept> {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'latency-child.js')
  const child = fork(script, [], {
    env: { ...process.env, LATENCY_REQUEST: JSON.stringify(request) },
    execArgv: ['--no-deprecation'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  let waiting:
    | { resolve: (value: { type: string; cold?: number[]; samples?: number[] }) => void; reject: (error: Error) => void }
    | undefined
  child.on('message', (message: { type: string; cold?: number[]; samples?: number[] }) => {
    const next = waiting
    waiting = undefined
    next?.resolve(message)
  })
  child.on('exit', (code) => waiting?.reject(new Error(`latency child for ${request.target} exited with ${code}`)))
  const next = () =>
    new Promise<{ type: string; cold?: number[]; samples?: number[] }>((resolve, reject) => (waiting = { resolve, reject }))
  await next() // ready
  return {
    child,
    block: async () => {
      const answer = next()
      child.send({ type: 'block' })
      const result = await answer
      return { samples: result.samples ?? [], cold: result.cold ?? [] }
    },
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve())
        child.send({ type: 'stop' })
      }),
  }
}

async function main(): Promise<void> {
  const blocks = Number(process.env.LATENCY_BLOCKS ?? 20)
  const samplesPerBlock = Number(process.env.LATENCY_SAMPLES ?? 250)
  const warmupPerBlock = Number(process.env.LATENCY_WARMUP ?? 200)
  const started = new Date()
  const startedAt = performance.now()
  const loadAverageStart = loadAverage()
  let server: PgServer | undefined
  let url = process.env.DATABASE_URL ?? ''
  if (url === '') {
    process.stderr.write('starting an embedded PostgreSQL...\n')
    server = await startPostgres()
    url = server.connectionString
  }
  try {
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    const version = (await client.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version ?? '?'
    await client.end()
    const warm = new Map<SenderKind, number[]>()
    const cold = new Map<SenderKind, number[]>()
    const perBlock = process.env.LATENCY_PER_BLOCK === '1'
    const request = (library: (typeof LIBRARIES)[number], block: number): ChildRequest => ({
      url,
      target: library.target,
      listener: library.listener,
      warmup: warmupPerBlock,
      samples: samplesPerBlock,
      tag: `lat${process.pid}_${block}_${library.target.replace(/\W/g, '')}`,
    })
    const kept = new Map<SenderKind, Kept>()
    if (!perBlock) {
      for (const library of LIBRARIES) {
        kept.set(library.target, await keepChild(request(library, 0)))
      }
    }
    for (let block = 0; block < blocks; block++) {
      const order = LIBRARIES.map((_, index) => LIBRARIES[(block + index) % LIBRARIES.length] as (typeof LIBRARIES)[number])
      for (const library of order) {
        const child = kept.get(library.target)
        const result = child === undefined ? await runChild(request(library, block)) : await child.block()
        warm.set(library.target, [...(warm.get(library.target) ?? []), ...result.samples])
        cold.set(library.target, [...(cold.get(library.target) ?? []), ...result.cold])
      }
      const p50 = (id: SenderKind) =>
        percentile(
          [...(warm.get(id) ?? [])].sort((a, b) => a - b),
          0.5,
        )
      process.stderr.write(
        `  block ${block + 1}/${blocks}: ` +
          LIBRARIES.map((library) => `${library.target} ${p50(library.target).toFixed(3)}`).join(', ') +
          ` ms (load ${loadAverage()[0]})\n`,
      )
    }
    for (const child of kept.values()) await child.stop()
    const sorted = (list: number[] | undefined) => [...(list ?? [])].sort((a, b) => a - b)
    const rawP50 = percentile(sorted(warm.get('raw-rt')), 0.5)
    const points: FreshLatencyPoint[] = LIBRARIES.map((library) => {
      const samples = sorted(warm.get(library.target))
      const coldSamples = sorted(cold.get(library.target))
      const p50 = percentile(samples, 0.5)
      return {
        target: library.target,
        label: target(library.target).label,
        samples: samples.length,
        p50Ms: p50,
        p90Ms: percentile(samples, 0.9),
        p99Ms: percentile(samples, 0.99),
        vsRaw: p50 / rawP50,
        coldSamples: coldSamples.length,
        coldP50Ms: percentile(coldSamples, 0.5),
      }
    })
    const results: FreshLatencyResults = {
      meta: {
        date: started.toISOString(),
        command: [
          process.env.LATENCY_BLOCKS === undefined ? '' : `LATENCY_BLOCKS=${blocks}`,
          perBlock ? 'LATENCY_PER_BLOCK=1' : '',
          'npm run bench:latency',
        ]
          .filter((part) => part !== '')
          .join(' '),
        seconds: Math.round((performance.now() - startedAt) / 1000),
        blocks,
        samplesPerBlock,
        warmupPerBlock,
        machine: {
          cpus: os.cpus().length,
          cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
          loadAverageStart,
          loadAverageEnd: loadAverage(),
        },
        server: `PostgreSQL ${version} (${server === undefined ? 'DATABASE_URL' : 'embedded, fsync off, loopback'})`,
        method: perBlock
          ? `each block a new Node process loading one library only, sender and listener on two connections of that process; ` +
            `${warmupPerBlock} cold samples, then ${samplesPerBlock} measured; blocks rotated across the libraries, ${blocks} rounds`
          : `each library in a Node process of its own that loads that library only; ${blocks} rounds in which the processes ` +
            `take a block each in turn, the first of each round rotating; for a block, a process connects a sender and a ` +
            `listener (two connections of that process), takes ${warmupPerBlock} cold samples, then ${samplesPerBlock} ` +
            `measured ones, and disconnects (only the measured library's listener is connected)`,
      },
      points,
    }
    for (const point of points) {
      process.stdout.write(
        `${point.label.padEnd(28)} p50 ${point.p50Ms.toFixed(3)} ms (${point.vsRaw.toFixed(2)}x raw)  p90 ${point.p90Ms.toFixed(3)}  ` +
          `p99 ${point.p99Ms.toFixed(3)}  cold p50 ${point.coldP50Ms.toFixed(3)}  (${point.samples} samples)\n`,
      )
    }
    const outFile = process.env.LATENCY_OUT ?? join(ROOT, 'bench/results/latency.json')
    mkdirSync(dirname(outFile), { recursive: true })
    writeFileSync(outFile, `${JSON.stringify(results, null, 2)}\n`)
    const latest = join(ROOT, 'bench/results/latest.json')
    const docs = process.env.LATENCY_DOCS ?? join(ROOT, 'docs/benchmarks.md')
    if (process.env.LATENCY_OUT === undefined && existsSync(latest)) {
      const bench = JSON.parse(readFileSync(latest, 'utf8')) as BenchResults
      writeFileSync(docs, renderMarkdown(bench, relative(dirname(docs), latest), freshLatencyBeside(latest)))
      process.stderr.write(`wrote ${relative(process.cwd(), outFile)} and ${relative(process.cwd(), docs)}\n`)
    }
  } finally {
    await server?.stop()
  }
}

main().catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
