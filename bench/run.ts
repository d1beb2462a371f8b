// `npm run bench`: throughput, latency, receive-path cost, fan-out and memory of typed-pg-ipc, side
// by side with raw pg (the server's ceiling) and the peers (pg-ipc, pg-listen, postgres.js), in one
// run on one PostgreSQL server. Prints tables with ratios, writes a JSON file and regenerates
// docs/benchmarks.md from it.
//
//   npm run bench                                  # embedded PostgreSQL, full run (~6-7 min on 2 cores)
//   BENCH_SCALE=quick npm run bench                # ~1-2 min, rough numbers
//   DATABASE_URL=postgres://... npm run bench      # your server
//   BENCH_ONLY=throughput,latency npm run bench    # some sections only
//   BENCH_OUT=file.json BENCH_DOCS=file.md         # where to write (default: bench/results/latest.json and
//                                                  # docs/benchmarks.md for a full run, .tmp/bench-results/ otherwise)

import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { z } from 'zod'
import { BackpressureError, pgIPC, type ChannelSchemas, type CheckChannels } from '../src/index.js'
import { defineChannels } from '../src/index.js'
import { startPostgres, type PgServer } from '../test/support/postgres.js'
import { sectionsFromEnv, settingsFromEnv, type Section, type Settings } from './config.js'
import {
  benchChannels,
  channelNames,
  large,
  LargeSchema,
  LargeSchemaCompiled,
  largeSchema,
  small,
  SmallSchemaCompiled,
  SmallSchema,
  type ChannelNames,
} from './payloads.js'
import { LocalProbe, RemoteProbe, startProbe, type Probe } from './probe.js'
import { freshLatencyBeside, renderConsole, renderMarkdown } from './report.js'
import { serverCpu, type ServerCpu } from './server-cpu.js'
import {
  median,
  percentile,
  type BenchResults,
  type Check,
  type FanoutPoint,
  type Layout,
  type BurstResult,
  type LatencyPoint,
  type MemoryResult,
  type PayloadStep,
  type MemorySample,
  type ReceivePoint,
  type Round,
  type ThroughputPoint,
} from './results.js'
import { createListener, createSender, sinkValue, TARGETS, target, type Sender, type SenderKind } from './targets.js'

const hrtime = process.hrtime.bigint
const seconds = (from: bigint, to: bigint): number => Number(to - from) / 1e9
const REACH_TIMEOUT_MS = 180_000
/** Latency samples per target between two switches of target. */
const LATENCY_BLOCK = 250

/** The project root: .tmp/bench/bench/run.js -> ../../.. */
function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let index = 0; index < 5; index++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'src'))) return dir
    dir = dirname(dir)
  }
  return process.cwd()
}

const ROOT = projectRoot()

function log(line: string): void {
  process.stderr.write(`${line}\n`)
}

// ---- one sending loop ------------------------------------------------------------------------------

/** Per target and layout: the next sequence number and how many deliveries the probe has counted. */
interface Stream {
  seq: number
  delivered: number
}

/** The server's CPU clock, when the server runs on this machine (set once in main). */
let serverClock: ServerCpu | undefined

/**
 * Sends until `durationMs` is over (or until `count` notifications were issued), then waits for
 * the last delivery. `perNotification` deliveries are expected per notification (fan-out).
 */
async function sendRound(
  sender: Sender,
  probe: Probe,
  stream: Stream,
  stop: { durationMs: number } | { count: number },
  perNotification = 1,
): Promise<Round> {
  let issued = 0
  const limit = 'count' in stop ? stop.count : Number.POSITIVE_INFINITY
  await probe.mark()
  const serverStart = serverClock?.read()
  const cpuStart = process.cpuUsage()
  const deadline = 'durationMs' in stop ? performance.now() + stop.durationMs : Number.POSITIVE_INFINITY
  const start = hrtime()
  const worker = async (): Promise<void> => {
    while (issued < limit && performance.now() < deadline) {
      const seq = stream.seq
      stream.seq += sender.perCall
      issued += sender.perCall
      await sender.send(seq)
    }
  }
  await Promise.all(Array.from({ length: sender.workers }, worker))
  const sentAt = hrtime()
  stream.delivered += issued * perNotification
  const reached = await probe.reach(stream.delivered, REACH_TIMEOUT_MS)
  const cpu = process.cpuUsage(cpuStart)
  const serverEnd = serverClock?.read()
  const deliveries = issued * perNotification
  return {
    messages: issued,
    sentPerSec: issued / seconds(start, sentAt),
    deliveredPerSec: deliveries / seconds(start, reached.at),
    senderCpuUsPerMsg: (cpu.user + cpu.system) / issued,
    listenerCpuUsPerMsg: reached.cpu === undefined ? null : (reached.cpu.user + reached.cpu.system) / issued,
    serverCpuUsPerMsg: serverStart === undefined || serverEnd === undefined ? null : (serverEnd - serverStart) / issued,
  }
}

function medianOf(values: readonly (number | null)[]): number | null {
  const present = values.filter((value): value is number => value !== null)
  return present.length === 0 ? null : median(present)
}

function medianRound(rounds: readonly Round[]): Round {
  return {
    messages: median(rounds.map((round) => round.messages)),
    sentPerSec: median(rounds.map((round) => round.sentPerSec)),
    deliveredPerSec: median(rounds.map((round) => round.deliveredPerSec)),
    senderCpuUsPerMsg: median(rounds.map((round) => round.senderCpuUsPerMsg)),
    listenerCpuUsPerMsg: medianOf(rounds.map((round) => round.listenerCpuUsPerMsg)),
    serverCpuUsPerMsg: medianOf(rounds.map((round) => round.serverCpuUsPerMsg)),
  }
}

function fmt(value: number): string {
  return Math.round(value).toLocaleString('en-US')
}

// ---- sections ----------------------------------------------------------------------------------

const CONCURRENCY = [1, 100] as const

function namesFor(layout: Layout, index: number): ChannelNames {
  return channelNames(`${process.pid}_${layout === 'separate' ? 's' : 'p'}${index}`)
}

/**
 * Throughput, both layouts. Rounds are interleaved (round 1 of every target, then round 2...) so a
 * slow spell of the machine does not land on one target only. Only the measured target's listener
 * is connected: up to version 18, PostgreSQL signals every listening backend of the database at
 * each commit that notifies, whatever the channel (SignalBackends in async.c), so idle listeners
 * of other targets would tax the one-notification-per-transaction senders (measured: server CPU
 * per message of raw pg, one per round trip, went from ~450 to ~90 us without them).
 */
async function throughput(url: string, settings: Settings): Promise<ThroughputPoint[]> {
  const points: ThroughputPoint[] = []
  for (const layout of ['separate', 'same'] as const) {
    log(`\n== throughput, listener in ${layout === 'separate' ? 'a separate process' : 'the same process'}`)
    const rounds = new Map<string, Round[]>()
    const sequences = new Map<SenderKind, number>()
    for (let round = 1; round <= settings.rounds; round++) {
      for (const [index, entry] of TARGETS.entries()) {
        const names = namesFor(layout, index)
        const probe = await startProbe(layout, { kind: entry.listener, url, names })
        const stream: Stream = { seq: sequences.get(entry.id) ?? 0, delivered: 0 }
        try {
          for (const concurrency of CONCURRENCY) {
            const sender = await createSender(entry.id, url, names, concurrency)
            try {
              await sendRound(sender, probe, stream, { durationMs: settings.warmupMs })
              const result = await sendRound(sender, probe, stream, { durationMs: settings.roundMs })
              const key = `${entry.id}/${concurrency}`
              rounds.set(key, [...(rounds.get(key) ?? []), result])
              log(
                `  round ${round} ${entry.label.padEnd(28)} C=${String(concurrency).padEnd(3)} ` +
                  `sent ${fmt(result.sentPerSec).padStart(9)}/s  delivered ${fmt(result.deliveredPerSec).padStart(9)}/s`,
              )
            } finally {
              await sender.close()
            }
          }
        } finally {
          sequences.set(entry.id, stream.seq)
          await probe.close()
        }
      }
    }
    for (const entry of TARGETS) {
      for (const concurrency of CONCURRENCY) {
        const list = rounds.get(`${entry.id}/${concurrency}`) ?? []
        if (list.length > 0) points.push({ target: entry.id, layout, concurrency, rounds: list, median: medianRound(list) })
      }
    }
  }
  return points
}

/**
 * Single messages on an idle system: send one, wait for its delivery, repeat. The samples of all
 * targets are taken in interleaved blocks (each with its own listener, as above), so drift of the
 * machine spreads over all of them.
 */
async function latency(url: string, settings: Settings): Promise<LatencyPoint[]> {
  const points: LatencyPoint[] = []
  const blocks = Math.max(1, Math.ceil(settings.latencySamples / LATENCY_BLOCK))
  for (const layout of ['separate', 'same'] as const) {
    log(`\n== latency, listener in ${layout === 'separate' ? 'a separate process' : 'the same process'}`)
    const samples = new Map<SenderKind, number[]>()
    const sequences = new Map<SenderKind, number>()
    for (let block = 0; block < blocks; block++) {
      const size = Math.min(LATENCY_BLOCK, settings.latencySamples - block * LATENCY_BLOCK)
      for (const [index, entry] of TARGETS.entries()) {
        const names = namesFor(layout, 100 + index)
        const probe = await startProbe(layout, { kind: entry.listener, url, names })
        const sender = await createSender(entry.id, url, names, 1)
        const list = samples.get(entry.id) ?? []
        samples.set(entry.id, list)
        let seq = sequences.get(entry.id) ?? 0
        try {
          await probe.startEcho()
          // Every block warms up: a new connection, and its backend, start cold.
          for (let sample = 0; sample < settings.latencyWarmup + size; sample++) {
            const delivered = probe.next(10_000)
            const start = hrtime()
            const sent = sender.send(seq++)
            const at = await delivered
            await sent
            if (sample >= settings.latencyWarmup) list.push(Number(at - start) / 1e6)
          }
        } finally {
          sequences.set(entry.id, seq)
          await sender.close()
          await probe.close()
        }
      }
    }
    for (const entry of TARGETS) {
      const sorted = [...(samples.get(entry.id) ?? [])].sort((a, b) => a - b)
      if (sorted.length === 0) continue
      const point: LatencyPoint = {
        target: entry.id,
        layout,
        samples: sorted.length,
        p50Ms: percentile(sorted, 0.5),
        p90Ms: percentile(sorted, 0.9),
        p99Ms: percentile(sorted, 0.99),
        meanMs: sorted.reduce((sum, value) => sum + value, 0) / sorted.length,
        maxMs: sorted[sorted.length - 1] ?? Number.NaN,
      }
      points.push(point)
      log(`  ${entry.label.padEnd(28)} p50 ${point.p50Ms.toFixed(3)} ms  p99 ${point.p99Ms.toFixed(3)} ms`)
    }
  }
  return points
}

interface ReceiveVariant {
  readonly id: string
  readonly label: string
  readonly kind: 'raw' | 'core' | 'typed-small' | 'typed-large' | 'typed-large-compiled'
  readonly listeners: number
  readonly instances: number
}

const RECEIVE_VARIANTS: readonly ReceiveVariant[] = [
  { id: 'raw', label: 'raw pg (count only, no JSON)', kind: 'raw', listeners: 1, instances: 1 },
  { id: 'core-1', label: 'core (JSON.parse), 1 listener', kind: 'core', listeners: 1, instances: 1 },
  { id: 'core-10', label: 'core (JSON.parse), 10 listeners', kind: 'core', listeners: 10, instances: 1 },
  { id: 'typed-small-1', label: 'typed small, 1 listener', kind: 'typed-small', listeners: 1, instances: 1 },
  { id: 'typed-small-10', label: 'typed small, 10 listeners', kind: 'typed-small', listeners: 10, instances: 1 },
  { id: 'typed-small-10i', label: 'typed small, 10 instances x 1 listener', kind: 'typed-small', listeners: 1, instances: 10 },
  { id: 'typed-large-1', label: 'typed large, 1 listener', kind: 'typed-large', listeners: 1, instances: 1 },
  { id: 'typed-large-10', label: 'typed large, 10 listeners', kind: 'typed-large', listeners: 10, instances: 1 },
  {
    id: 'typed-large-compiled-1',
    label: 'typed large, z.compile, 1 listener',
    kind: 'typed-large-compiled',
    listeners: 1,
    instances: 1,
  },
]

/**
 * Counts the typed layer's validations for the receive section: wraps the schemas' safeDecode and
 * safeParse (the library validates schemas that encode as is with safeParse, the others with
 * safeDecode).
 */
function countValidations(): { count: () => number; restore: () => void } {
  let calls = 0
  const restores: (() => void)[] = []
  const schemas = [SmallSchema, LargeSchema, LargeSchemaCompiled]
  for (const schema of schemas as unknown as Record<string, (...args: unknown[]) => unknown>[]) {
    for (const method of ['safeDecode', 'safeParse']) {
      const original = schema[method] as (...args: unknown[]) => unknown
      schema[method] = function (this: unknown, ...args: unknown[]) {
        calls++
        return original.apply(this, args)
      }
      restores.push(() => {
        schema[method] = original
      })
    }
  }
  return { count: () => calls, restore: () => restores.forEach((restore) => restore()) }
}

/**
 * The receive path. burst: the listener's socket is paused while a fast raw sender (1000 per
 * statement) puts N notifications on the server; then it is resumed and timed until the last one
 * is decoded, validated and handed to the listener. isolated: synthetic 'notification' events on a
 * connected client, so only the library's own work is timed (in CPU time, so other load on the
 * machine does not count).
 */
async function receive(url: string, settings: Settings): Promise<ReceivePoint[]> {
  log('\n== receive path (same process)')
  const points: ReceivePoint[] = []
  const sender = new pg.Client({ connectionString: url })
  await sender.connect()
  const validations = countValidations()
  try {
    for (const [index, variant] of RECEIVE_VARIANTS.entries()) {
      const names = channelNames(`${process.pid}_r${index}`)
      const channel = variant.kind.startsWith('typed-large') ? names.large : names.small
      const make = variant.kind.startsWith('typed-large') ? large : small
      const options = { listenersPerConnection: variant.listeners, instancesPerConnection: variant.instances }
      // The large schema is about 5x the work per message: fewer messages keep the section short.
      const messages = variant.kind.startsWith('typed-large')
        ? Math.max(100, Math.round(settings.receiveMessages / 5))
        : settings.receiveMessages

      // burst
      const probe = await LocalProbe.start({ kind: variant.kind, url, names, options })
      const burst: number[] = []
      let seq = 0
      let delivered = 0
      const validationsBefore = validations.count()
      try {
        for (let round = 0; round < settings.receiveRounds; round++) {
          probe.listening.pause()
          for (let offset = 0; offset < messages; offset += 1000) {
            const size = Math.min(1000, messages - offset)
            const payloads = Array.from({ length: size }, () => JSON.stringify(make(seq++)))
            await sender.query('SELECT count(pg_notify($1, p)) FROM unnest($2::text[]) AS p', [channel, payloads])
          }
          const start = hrtime()
          probe.listening.resume()
          delivered += messages
          const { at } = await probe.reach(delivered, REACH_TIMEOUT_MS)
          burst.push(messages / seconds(start, at))
        }
      } finally {
        await probe.close()
      }
      const perMessage = (validations.count() - validationsBefore) / delivered
      points.push({
        ...variantPoint(variant, 'burst', messages),
        validationsPerMessage: perMessage,
        rounds: burst,
        perSec: median(burst),
      })

      // isolated
      const isolated = variant.kind === 'raw' ? [] : await isolatedReceive(url, names, variant, messages, settings.receiveRounds)
      if (isolated.length > 0) {
        points.push({
          ...variantPoint(variant, 'isolated', messages),
          validationsPerMessage: perMessage,
          rounds: isolated,
          perSec: median(isolated),
        })
      }
      log(
        `  ${variant.label.padEnd(40)} burst ${fmt(median(burst)).padStart(9)}/s` +
          (isolated.length > 0 ? `  isolated ${fmt(median(isolated)).padStart(9)}/CPU s` : '') +
          `  validations/msg ${perMessage.toFixed(2)}`,
      )
    }
  } finally {
    validations.restore()
    await sender.end()
  }
  return points
}

function variantPoint(variant: ReceiveVariant, method: 'burst' | 'isolated', messages: number) {
  return {
    id: `${variant.id}/${method}`,
    label: variant.label,
    method,
    kind: variant.kind,
    listeners: variant.listeners,
    instances: variant.instances,
    messages,
  }
}

async function isolatedReceive(
  url: string,
  names: ChannelNames,
  variant: ReceiveVariant,
  messages: number,
  rounds: number,
): Promise<number[]> {
  const probe = await LocalProbe.start({
    kind: variant.kind,
    url,
    names,
    options: { listenersPerConnection: variant.listeners, instancesPerConnection: variant.instances },
  })
  const channel = variant.kind.startsWith('typed-large') ? names.large : names.small
  const make = variant.kind.startsWith('typed-large') ? large : small
  // The client the listener reads from: emitting on it is what pg does for each notification.
  const client = probe.listening.clients[0]
  if (client === undefined) throw new Error('listener exposes no client')
  const processId = 1 // not the listener's own pid: ignoreOwn is off anyway
  const results: number[] = []
  try {
    let seq = 0
    for (let round = 0; round < rounds + 1; round++) {
      const payloads = Array.from({ length: messages }, () => JSON.stringify(make(seq++)))
      const before = probe.counter.count
      const cpu = process.cpuUsage()
      for (const payload of payloads) client.emit('notification', { processId, channel, payload })
      const used = process.cpuUsage(cpu)
      if (probe.counter.count - before !== messages) {
        throw new Error(`isolated receive: ${probe.counter.count - before} of ${messages} delivered`)
      }
      // Round 0 warms up; CPU time has 1 ms resolution at worst, far below a round.
      if (round > 0) results.push(messages / ((used.user + used.system) / 1e6))
    }
  } finally {
    await probe.close()
  }
  return results
}

/** The library's sender and listener, N listening connections in one separate process. */
const FANOUT_TARGETS: readonly SenderKind[] = ['raw-unnest', 'pg-ipc', 'pg-listen', 'postgres', 'core', 'typed-small']

async function fanout(url: string, settings: Settings): Promise<FanoutPoint[]> {
  log('\n== fan-out (listening connections in one separate process; sender at C=100)')
  const points: FanoutPoint[] = []
  for (const [index, id] of FANOUT_TARGETS.entries()) {
    const entry = target(id)
    for (const connections of settings.fanoutConnections) {
      const names = channelNames(`${process.pid}_f${index}_${connections}`)
      const probe = await RemoteProbe.start({ kind: entry.listener, url, names, options: { connections } })
      const sender = await createSender(id, url, names, 100)
      const stream: Stream = { seq: 0, delivered: 0 }
      const rounds: { sentPerSec: number; deliveredPerSec: number }[] = []
      try {
        const warmup = Math.max(100, Math.round(settings.fanoutMessages / 10 / 100) * 100)
        await sendRound(sender, probe, stream, { count: warmup }, connections)
        for (let round = 0; round < settings.fanoutRounds; round++) {
          const result = await sendRound(sender, probe, stream, { count: settings.fanoutMessages }, connections)
          rounds.push({ sentPerSec: result.sentPerSec, deliveredPerSec: result.deliveredPerSec })
        }
      } finally {
        await sender.close()
        await probe.close()
      }
      const point: FanoutPoint = {
        target: id,
        connections,
        messages: settings.fanoutMessages,
        rounds,
        deliveredPerSec: median(rounds.map((round) => round.deliveredPerSec)),
        sentPerSec: median(rounds.map((round) => round.sentPerSec)),
      }
      points.push(point)
      log(
        `  ${entry.label.padEnd(28)} ${String(connections).padStart(2)} conns: delivered ${fmt(point.deliveredPerSec).padStart(10)}/s summed`,
      )
    }
  }
  return points
}

/** RSS and heap before and after N messages through the typed layer (sender and listener in this process). */
async function memory(url: string, settings: Settings): Promise<MemoryResult> {
  log(`\n== memory: ${fmt(settings.memoryMessages)} messages through the typed layer (sender C=100 and listener, same process)`)
  const gc = (globalThis as { gc?: () => void }).gc
  const collect = async (): Promise<void> => {
    for (let index = 0; index < 3; index++) {
      gc?.()
      await new Promise((resolve) => setImmediate(resolve))
    }
  }
  const sample = (messages: number): MemorySample => {
    const usage = process.memoryUsage()
    return {
      messages,
      rssBytes: usage.rss,
      heapUsedBytes: usage.heapUsed,
      heapTotalBytes: usage.heapTotal,
      externalBytes: usage.external,
    }
  }
  const names = channelNames(`${process.pid}_m`)
  const probe = await LocalProbe.start({ kind: 'typed-small', url, names })
  const sender = await createSender('typed-small', url, names, 100)
  const stream: Stream = { seq: 0, delivered: 0 }
  const samples: MemorySample[] = []
  const start = hrtime()
  try {
    await collect()
    samples.push(sample(0))
    while (stream.seq < settings.memoryMessages) {
      await sendRound(sender, probe, stream, { count: Math.min(settings.memoryCheckpoint, settings.memoryMessages - stream.seq) })
      await collect()
      const current = sample(stream.seq)
      samples.push(current)
      log(
        `  ${fmt(current.messages).padStart(9)} messages: rss ${(current.rssBytes / 2 ** 20).toFixed(1)} MiB, ` +
          `heap used ${(current.heapUsedBytes / 2 ** 20).toFixed(2)} MiB`,
      )
    }
  } finally {
    await sender.close()
    await probe.close()
  }
  const elapsed = seconds(start, hrtime())
  const first = samples[1] ?? samples[0]
  const last = samples[samples.length - 1]
  return {
    messages: stream.seq,
    gcAvailable: gc !== undefined,
    seconds: elapsed,
    perSec: stream.seq / elapsed,
    samples,
    growthAfterFirst: {
      rssBytes: (last?.rssBytes ?? 0) - (first?.rssBytes ?? 0),
      heapUsedBytes: (last?.heapUsedBytes ?? 0) - (first?.heapUsedBytes ?? 0),
    },
  }
}

/**
 * Fire-and-forget bursts: `calls` notify() calls in one synchronous loop, nothing awaited, then wait
 * until every call settled and the listener (another connection in this process) got what was sent.
 * Default: every call is queued and sent in order, nothing lost. With maxPending, the calls past the
 * limit are refused at once with a BackpressureError (opt-in).
 */
async function bursts(url: string, settings: Settings): Promise<BurstResult[]> {
  log(`\n== fire-and-forget bursts: ${fmt(settings.burstCalls)} notify() calls without awaiting (same process)`)
  const variants = [
    { id: 'core', label: 'core `ipc.notify()` x N, no maxPending (the default)', layer: 'core', maxPending: null },
    { id: 'typed', label: 'typed `ipc.notify()` x N, promises not awaited, no maxPending', layer: 'typed', maxPending: null },
    { id: 'core-max', label: 'core, `maxPending: 1000` (backpressure turned on)', layer: 'core', maxPending: 1_000 },
  ] as const
  const results: BurstResult[] = []
  for (const [index, variant] of variants.entries()) {
    const names = channelNames(`${process.pid}_b${index}`)
    let delivered = 0
    const listening = await createListener('core', url, names, () => delivered++)
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    let sent = 0
    let failed = 0
    let refused = 0
    const options = variant.maxPending === null ? {} : { maxPending: variant.maxPending }
    const start = hrtime()
    try {
      if (variant.layer === 'core') {
        const ipc = pgIPC(client, options)
        ipc.on('notify', () => sent++)
        ipc.on('error', () => failed++)
        for (let seq = 0; seq < settings.burstCalls; seq++) {
          try {
            ipc.notify(names.small, small(seq))
          } catch (error) {
            if (!(error instanceof BackpressureError)) throw error
            refused++
          }
        }
        await until(() => sent + failed + refused === settings.burstCalls && delivered >= sent)
        await ipc.end()
      } else {
        const ipc = benchChannels(names).attach(client, options)
        for (let seq = 0; seq < settings.burstCalls; seq++) {
          ipc.notify(names.small, small(seq)).then(
            () => sent++,
            (error: unknown) => (error instanceof BackpressureError ? refused++ : failed++),
          )
        }
        await until(() => sent + failed + refused === settings.burstCalls && delivered >= sent)
        await ipc.end()
      }
    } finally {
      await client.end()
      await listening.close()
    }
    const elapsed = seconds(start, hrtime())
    const result: BurstResult = {
      id: variant.id,
      label: variant.label,
      calls: settings.burstCalls,
      maxPending: variant.maxPending,
      refused,
      sent,
      failed,
      delivered,
      lost: settings.burstCalls - refused - failed - delivered,
      seconds: elapsed,
      deliveredPerSec: delivered / elapsed,
    }
    results.push(result)
    log(
      `  ${variant.label.padEnd(62)} sent ${fmt(sent)}, refused ${fmt(refused)}, failed ${fmt(failed)}, ` +
        `delivered ${fmt(delivered)}, lost ${fmt(result.lost)} in ${elapsed.toFixed(2)} s`,
    )
  }
  return results
}

/** Polls `done` (every millisecond) until it holds, or fails after REACH_TIMEOUT_MS. */
async function until(done: () => boolean): Promise<void> {
  const deadline = performance.now() + REACH_TIMEOUT_MS
  while (!done()) {
    if (performance.now() > deadline) throw new Error('burst: not every call settled in time')
    await new Promise((resolve) => setTimeout(resolve, 1))
  }
}

/**
 * Where the CPU time of one message goes, step by step, for the small and the large payload: JSON,
 * zod (as is, compiled ahead of time, jitless, and without format checks), and the library's own
 * encode (validation, JSON and the payload checks). CPU time per operation, best of 5 rounds.
 */
function payloadProfile(settings: Settings): PayloadStep[] {
  log('\n== payload profile (CPU time per message, best of 5 rounds)')
  const iterations = settings.payloadIterations
  const steps: PayloadStep[] = []
  let sinkCount = 0
  const time = (id: string, label: string, payload: 'small' | 'large', run: (index: number) => unknown): void => {
    for (let index = 0; index < iterations; index++) run(index) // warm-up
    let best = Number.POSITIVE_INFINITY
    for (let round = 0; round < 5; round++) {
      const cpu = process.cpuUsage()
      for (let index = 0; index < iterations; index++) if (run(index) !== undefined) sinkCount++
      const used = process.cpuUsage(cpu)
      best = Math.min(best, (used.user + used.system) / iterations)
    }
    steps.push({ id: `${payload}/${id}`, label, payload, usPerOp: best })
    log(`  ${payload.padEnd(5)} ${label.padEnd(60)} ${best.toFixed(2)} us`)
  }
  // Built under `jitless`, read when a schema is constructed: zod's compiled object parsers are off.
  z.config({ jitless: true })
  const jitless = { small: SmallSchema.clone(), large: largeSchema() }
  z.config({ jitless: false })
  const plain = largeSchema({ formats: false })
  const schemas: ChannelSchemas = { small: SmallSchema, large: LargeSchema }
  const compiledSchemas: ChannelSchemas = { small: SmallSchemaCompiled, large: LargeSchemaCompiled }
  const channels = defineChannels<ChannelSchemas>(schemas as ChannelSchemas & CheckChannels<ChannelSchemas>)
  const compiledChannels = defineChannels<ChannelSchemas>(compiledSchemas as ChannelSchemas & CheckChannels<ChannelSchemas>)
  for (const payload of ['small', 'large'] as const) {
    const make = payload === 'small' ? small : large
    const values = Array.from({ length: iterations }, (_, index) => make(index))
    const texts = values.map((value) => JSON.stringify(value))
    const schema = payload === 'small' ? SmallSchema : LargeSchema
    const compiled = payload === 'small' ? SmallSchemaCompiled : LargeSchemaCompiled
    const at = (index: number): never => values[index] as never
    time('build', 'building the value (the benchmark, not the library)', payload, (index) => make(index))
    time('stringify', 'JSON.stringify', payload, (index) => JSON.stringify(at(index)))
    time('parse', 'JSON.parse', payload, (index) => JSON.parse(texts[index] as string))
    time('zod-parse', 'zod safeParse (how the library validates, both ends)', payload, (index) => schema.safeParse(at(index)))
    time('zod-encode', 'zod safeEncode (what a codec schema needs on the way out)', payload, (index) =>
      schema.safeEncode(at(index)),
    )
    time('zod-compiled', 'zod safeParse, schema compiled with z.compile', payload, (index) => compiled.safeParse(at(index)))
    time('zod-jitless', 'zod safeParse, z.config({ jitless: true }) (no compiled object parsers)', payload, (index) =>
      jitless[payload].safeParse(at(index)),
    )
    if (payload === 'large') {
      time('zod-plain', 'zod safeParse, same shape without format checks', payload, (index) => plain.safeParse(at(index)))
    }
    time('encode', 'library encode: validate, JSON, payload checks (notifyQuery)', payload, (index) =>
      channels.notifyQuery(payload, at(index)),
    )
    time('encode-compiled', 'library encode, schema compiled with z.compile', payload, (index) =>
      compiledChannels.notifyQuery(payload, at(index)),
    )
  }
  if (sinkCount === -1) log('unreachable')
  return steps
}

// ---- targets of issue 5 ----------------------------------------------------------------------------

function checks(results: Pick<BenchResults, 'throughput' | 'latency' | 'receive' | 'memory' | 'burst'>): Check[] {
  const list: Check[] = []
  const delivered = (id: SenderKind, layout: Layout): number | undefined =>
    results.throughput.find((point) => point.target === id && point.layout === layout && point.concurrency === 100)?.median
      .deliveredPerSec
  for (const layout of ['separate', 'same'] as const) {
    const typed = delivered('typed-small', layout)
    const where = layout === 'separate' ? 'listener in a separate process' : 'same process'
    const ratio = (peer: SenderKind, times: number, label: string): void => {
      const other = delivered(peer, layout)
      if (typed === undefined || other === undefined) return
      const value = typed / other
      list.push({
        id: `throughput-${peer}-${layout}`,
        target: `typed notify, C=100 (${where}): >= ${times}x ${label}`,
        measured: `${value.toFixed(2)}x (${fmt(typed)} vs ${fmt(other)} msg/s)`,
        met: value >= times,
      })
    }
    ratio('pg-ipc', 10, 'pg-ipc')
    ratio('pg-listen', 10, 'pg-listen')
    ratio('postgres', 2.5, 'postgres.js')
    ratio('raw-unnest', 0.7, 'the raw 100-per-statement ceiling')
  }
  const round = (id: SenderKind, layout: Layout) =>
    results.throughput.find((point) => point.target === id && point.layout === layout && point.concurrency === 100)?.median
  for (const layout of ['separate', 'same'] as const) {
    const where = layout === 'separate' ? 'listener in a separate process' : 'same process'
    const typedLarge = delivered('typed-large', layout)
    const rawLarge = delivered('raw-unnest-large', layout)
    if (typedLarge !== undefined && rawLarge !== undefined) {
      const value = typedLarge / rawLarge
      list.push({
        id: `large-${layout}`,
        target: `typed large notify, C=100 (${where}): >= 0.5x raw pg with the same payload, 100 per statement`,
        measured: `${value.toFixed(2)}x (${fmt(typedLarge)} vs ${fmt(rawLarge)} msg/s)`,
        met: value >= 0.5,
      })
    }
    const typed = round('typed-small', layout)
    if (typed !== undefined) {
      const cpu = typed.senderCpuUsPerMsg + (layout === 'separate' ? (typed.listenerCpuUsPerMsg ?? Number.NaN) : 0)
      list.push({
        id: `cpu-${layout}`,
        target: `typed notify, C=100 (${where}): CPU per message, sender + listener, <= 10 us`,
        measured: `${cpu.toFixed(1)} us`,
        met: cpu <= 10,
      })
    }
  }
  for (const layout of ['separate', 'same'] as const) {
    const find = (id: SenderKind) => results.latency.find((point) => point.target === id && point.layout === layout)
    const raw = find('raw-rt')
    for (const id of ['typed-small', 'core'] as const) {
      const own = find(id)
      if (own === undefined || raw === undefined) continue
      const value = own.p50Ms / raw.p50Ms
      list.push({
        id: `latency-${id}-${layout}`,
        target: `${id === 'core' ? 'core' : 'typed'} single-message p50 (${layout === 'separate' ? 'listener in a separate process' : 'same process'}): <= 1.1x raw one round trip`,
        measured: `${value.toFixed(2)}x (${own.p50Ms.toFixed(3)} vs ${raw.p50Ms.toFixed(3)} ms)`,
        met: value <= 1.1,
      })
    }
  }
  const core = results.burst?.find((entry) => entry.id === 'core')
  if (core !== undefined) {
    list.push({
      id: 'burst-core',
      target: `core: ${fmt(core.calls)} fire-and-forget notify() calls complete, nothing lost`,
      measured: `${fmt(core.delivered)} delivered, ${fmt(core.failed + core.refused)} failed, ${fmt(core.lost)} lost`,
      met: core.lost === 0 && core.failed === 0 && core.refused === 0 && core.delivered === core.calls,
    })
  }
  const receive = (id: string) => results.receive.find((point) => point.id === id)
  for (const method of ['burst', 'isolated'] as const) {
    const one = receive(`typed-small-1/${method}`)
    const how = method === 'burst' ? 'socket to listener, wall clock' : 'library alone, per CPU second'
    if (one !== undefined) {
      list.push({
        id: `receive-rate-${method}`,
        target: `receive, small schema (${how}): >= 100,000 msg/s decoded and validated`,
        measured: `${fmt(one.perSec)} msg/s`,
        met: one.perSec >= 100_000,
      })
    }
  }
  const one = receive('typed-small-1/burst')
  const ten = receive('typed-small-10/burst')
  if (one !== undefined && ten !== undefined) {
    const isolatedOne = receive('typed-small-1/isolated')
    const isolatedTen = receive('typed-small-10/isolated')
    const rates =
      isolatedOne !== undefined && isolatedTen !== undefined
        ? `; rate with 10 listeners ${x2(isolatedTen.perSec / isolatedOne.perSec)} of 1 (library alone), ${x2(ten.perSec / one.perSec)} (burst)`
        : ''
    list.push({
      id: 'receive-listeners',
      target: 'receive: validation cost independent of the number of listeners (zod validations per message, 1 and 10 listeners)',
      measured: `${one.validationsPerMessage.toFixed(2)} and ${ten.validationsPerMessage.toFixed(2)}${rates}`,
      met: Math.abs(one.validationsPerMessage - 1) < 0.01 && Math.abs(ten.validationsPerMessage - 1) < 0.01,
    })
  }
  const memory = results.memory
  if (memory !== null) {
    const heap = memory.growthAfterFirst.heapUsedBytes
    const first = memory.samples[1]?.messages ?? 0
    list.push({
      id: 'memory',
      target: `memory: no growth after the first ${fmt(first)} of ${fmt(memory.messages)} messages (heap used < 2 MiB growth)`,
      measured: `heap used ${signedMiB(heap)}, rss ${signedMiB(memory.growthAfterFirst.rssBytes)}`,
      met: memory.gcAvailable ? heap < 2 * 2 ** 20 : null,
      ...(memory.gcAvailable ? {} : { note: 'run without --expose-gc: not judged' }),
    })
  }
  return list
}

function x2(value: number): string {
  return `${value.toFixed(2)}x`
}

function signedMiB(bytes: number): string {
  return `${bytes >= 0 ? '+' : '-'}${(Math.abs(bytes) / 2 ** 20).toFixed(2)} MiB`
}

// ---- run ---------------------------------------------------------------------------------------------

function packageVersion(name: string): string {
  try {
    const file = join(ROOT, 'node_modules', name, 'package.json')
    return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version
  } catch {
    return 'unknown'
  }
}

function ownVersion(): string {
  const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8', stdio: 'pipe' }).trim()
    const dirty =
      execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT, encoding: 'utf8', stdio: 'pipe' }).trim() !== ''
    return `${version} (${commit}${dirty ? ', src modified' : ''})`
  } catch {
    return version
  }
}

async function main(): Promise<void> {
  const settings = settingsFromEnv()
  const sections = sectionsFromEnv()
  const started = new Date()
  const startedAt = hrtime()
  const loadAverageStart = loadAverage()
  const fullDefaults = settings.scale === 'full'
  const outFile =
    process.env.BENCH_OUT ?? join(ROOT, fullDefaults ? 'bench/results/latest.json' : `.tmp/bench-results/${settings.scale}.json`)
  const docsFile =
    process.env.BENCH_DOCS ?? join(ROOT, fullDefaults ? 'docs/benchmarks.md' : `.tmp/bench-results/${settings.scale}.md`)

  const envUrl = process.env.DATABASE_URL
  let server: PgServer | undefined
  let url: string
  if (envUrl !== undefined && envUrl !== '') {
    url = envUrl
  } else {
    log('starting an embedded PostgreSQL...')
    server = await startPostgres()
    url = server.connectionString
  }
  try {
    const probeClient = new pg.Client({ connectionString: url })
    await probeClient.connect()
    const version =
      (await probeClient.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version ?? 'unknown'
    await probeClient.end()
    log(
      `PostgreSQL ${version} (${server === undefined ? 'DATABASE_URL' : 'embedded'}), scale ${settings.scale}, sections ${[...sections].join(', ')}`,
    )
    serverClock = await serverCpu(url)
    // Checks the channel map once, so a broken schema fails before minutes of measuring.
    benchChannels(channelNames())

    const sectionSeconds: Record<string, number> = {}
    const sectionLoad: Record<string, { start: number[]; end: number[] }> = {}
    const timed = async <T>(name: Section, empty: T, run: () => Promise<T>): Promise<T> => {
      if (!sections.has(name)) return empty
      const from = hrtime()
      const loadStart = loadAverage()
      const result = await run()
      sectionSeconds[name] = Math.round(seconds(from, hrtime()) * 10) / 10
      sectionLoad[name] = { start: loadStart, end: loadAverage() }
      log(`  (${name}: ${sectionSeconds[name]} s, load average ${loadStart.join(' / ')} -> ${loadAverage().join(' / ')})`)
      return result
    }
    const payloadSteps = await timed('payload', [], () => Promise.resolve(payloadProfile(settings)))
    const throughputPoints = await timed('throughput', [], () => throughput(url, settings))
    const latencyPoints = await timed('latency', [], () => latency(url, settings))
    const receivePoints = await timed('receive', [], () => receive(url, settings))
    const burstResults = await timed('burst', [], () => bursts(url, settings))
    const fanoutPoints = await timed('fanout', [], () => fanout(url, settings))
    const memoryResult = await timed('memory', null, () => memory(url, settings))

    const measured = {
      throughput: throughputPoints,
      latency: latencyPoints,
      receive: receivePoints,
      memory: memoryResult,
      burst: burstResults,
    }
    const results: BenchResults = {
      meta: {
        date: started.toISOString(),
        command: commandLine(settings),
        scale: settings.scale,
        seconds: Math.round(seconds(startedAt, hrtime())),
        sectionSeconds,
        machine: {
          platform: os.platform(),
          release: os.release(),
          arch: os.arch(),
          cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
          cpus: os.cpus().length,
          memoryGiB: Math.round(os.totalmem() / 2 ** 30),
          loadAverageStart,
          loadAverageEnd: loadAverage(),
          sectionLoad,
        },
        server: { source: server === undefined ? 'DATABASE_URL' : 'embedded', version },
        versions: {
          node: process.version,
          'typed-pg-ipc': ownVersion(),
          pg: packageVersion('pg'),
          'pg-ipc': packageVersion('pg-ipc'),
          'pg-listen': packageVersion('pg-listen'),
          postgres: packageVersion('postgres'),
          zod: packageVersion('zod'),
        },
      },
      settings,
      ...measured,
      fanout: fanoutPoints,
      payload: payloadSteps,
      checks: checks(measured),
    }

    mkdirSync(dirname(outFile), { recursive: true })
    writeFileSync(outFile, `${JSON.stringify(results, null, 2)}\n`)
    mkdirSync(dirname(docsFile), { recursive: true })
    writeFileSync(docsFile, renderMarkdown(results, relative(dirname(docsFile), outFile), freshLatencyBeside(outFile)))
    process.stdout.write(`\n${renderConsole(results)}\n`)
    log(`\nwrote ${relative(process.cwd(), outFile)} and ${relative(process.cwd(), docsFile)} in ${results.meta.seconds} s`)
    if (sinkValue() === 0.5) log('unreachable') // keeps the listeners' work observable
  } finally {
    await RemoteProbe.shutdown()
    await server?.stop()
  }
}

function loadAverage(): number[] {
  return os.loadavg().map((value) => Number(value.toFixed(2)))
}

function commandLine(settings: Settings): string {
  const env = [
    settings.scale === 'full' ? '' : `BENCH_SCALE=${settings.scale}`,
    process.env.BENCH_ONLY === undefined ? '' : `BENCH_ONLY=${process.env.BENCH_ONLY}`,
    process.env.DATABASE_URL === undefined ? '' : 'DATABASE_URL=...',
  ].filter((part) => part !== '')
  return [...env, 'npm run bench'].join(' ')
}

main().catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
