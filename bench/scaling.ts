// `npm run bench:scaling`: where PostgreSQL itself runs out, measured on private embedded servers
// (never DATABASE_URL: it changes server settings and opens hundreds of connections).
//
//   1. delivered msg/s as the number of OTHER listening backends grows (1, 10, 100, 250 connections
//      listening on unrelated channels), for one notification per transaction and for batches;
//   2. commits/s of concurrent writers (1, 8, 32), with and without a NOTIFY in each transaction
//      (fsync on: NOTIFY takes a database-wide lock that is held until the commit is flushed);
//   3. a stalled listener (idle in a transaction): pg_notification_queue_usage() as notifications
//      pile up, and what happens when the queue is full (a small queue: max_notify_queue_pages=64);
//   4. memory and connections per listening service.
//
// Writes bench/results/scaling.json and docs/scaling.md (generated: edit renderScaling below).
//   npm run bench:scaling                  # ~3 minutes on 2 cores
//   SCALING_SCALE=smoke npm run bench:scaling   # seconds: only proves the script works (writes under .tmp/)

import { readFileSync } from 'node:fs'
import { mkdirSync, writeFileSync, existsSync } from 'node:fs'
import os from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { defineChannels, pgIPC, QueryFailedError, type ChannelSchemas, type CheckChannels } from '../src/index.js'
import { startPostgres, type PgServer } from '../test/support/postgres.js'
import { barChart, lineChart } from './charts.js'
import { large, LargeSchema, small, SmallSchema } from './payloads.js'
import { serverCpu } from './server-cpu.js'

// ---- results --------------------------------------------------------------------------------------

export interface ListenerPoint {
  readonly others: number
  readonly mode: 'one per transaction' | 'batched'
  readonly deliveredPerSec: number
  readonly serverCpuUsPerMsg: number | null
  readonly messages: number
}

export interface WriterPoint {
  readonly writers: number
  readonly notify: boolean
  readonly commitsPerSec: number
}

export interface QueueSample {
  readonly notifications: number
  readonly usage: number
}

export interface QueueResult {
  readonly pages: number
  readonly payloadBytes: number
  readonly samples: readonly QueueSample[]
  /** Bytes of queue per notification, from the usage reached. */
  readonly bytesPerNotification: number
  /** Notifications accepted before the first NOTIFY failed. */
  readonly acceptedBeforeFull: number
  readonly failure: {
    readonly errorClass: string
    readonly code: string | undefined
    readonly message: string
    readonly failedNotifications: number
    readonly otherFailures: number
    readonly listenStillWorks: boolean
    readonly queueUsageStillWorks: boolean
  } | null
  /** After the stalled listener ended its transaction: usage, and whether a notification went through. */
  readonly afterRelease: { readonly usage: number; readonly notifyWorks: boolean; readonly seconds: number }
}

export interface MemoryPoint {
  readonly channels: number
  readonly instances: number
  readonly connections: number
  readonly nodeHeapBytes: number
  readonly backendPrivateBytes: number | null
  readonly backendContextBytes: number
}

export interface ScalingResults {
  readonly meta: {
    readonly date: string
    readonly command: string
    readonly seconds: number
    readonly scale: string
    readonly machine: {
      readonly cpus: number
      readonly cpuModel: string
      readonly memoryGiB: number
      readonly loadAverageStart: readonly number[]
      readonly loadAverageEnd: readonly number[]
    }
    readonly server: string
    readonly sectionLoad: Record<string, { readonly start: readonly number[]; readonly end: readonly number[] }>
  }
  readonly listeners: readonly ListenerPoint[]
  readonly writers: readonly WriterPoint[]
  readonly queue: QueueResult | null
  readonly memory: readonly MemoryPoint[]
}

// ---- settings -----------------------------------------------------------------------------------

const SMOKE = process.env.SCALING_SCALE === 'smoke'
const OTHERS = SMOKE ? [1, 3] : [1, 10, 100, 250]
const WRITERS = SMOKE ? [1, 2] : [1, 8, 32]
const ROUND_MS = SMOKE ? 150 : 2_000
const QUEUE_PAGES = 64

const log = (line: string): void => void process.stderr.write(`${line}\n`)
const fmt = (value: number): string => Math.round(value).toLocaleString('en-US')
const loadAverage = (): number[] => os.loadavg().map((value) => Number(value.toFixed(2)))
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

function root(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let index = 0; index < 5; index++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'src'))) return dir
    dir = dirname(dir)
  }
  return process.cwd()
}

async function connected(url: string, applicationName?: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: applicationName })
  await client.connect()
  return client
}

/** Opens `count` connections, a few at a time (the server forks a backend for each). */
async function openMany(
  url: string,
  count: number,
  setup: (client: pg.Client, index: number) => Promise<unknown>,
): Promise<pg.Client[]> {
  const clients: pg.Client[] = []
  for (let index = 0; index < count; index += 10) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(10, count - index) }, async (_, offset) => {
        const client = await connected(url)
        await setup(client, index + offset)
        return client
      }),
    )
    clients.push(...batch)
  }
  return clients
}

const typedChannels = (names: readonly string[]) => {
  const schemas: ChannelSchemas = Object.fromEntries(
    names.map((name) => [name, name.startsWith('big') ? LargeSchema : SmallSchema]),
  )
  return defineChannels<ChannelSchemas>(schemas as ChannelSchemas & CheckChannels<ChannelSchemas>)
}

// ---- 1. other listening backends --------------------------------------------------------------------

async function listenerScaling(url: string): Promise<ListenerPoint[]> {
  log('\n== delivered msg/s as other listening backends grow')
  const clock = await serverCpu(url)
  const points: ListenerPoint[] = []
  const others: pg.Client[] = []
  try {
    for (const count of OTHERS) {
      others.push(...(await openMany(url, count - others.length, (client, index) => client.query(`LISTEN other_${index}`))))
      for (const mode of ['one per transaction', 'batched'] as const) {
        const channel = `measured_${count}_${mode === 'batched' ? 'b' : 'o'}`
        const listenerClient = await connected(url)
        const sendClient = await connected(url)
        const listener = pgIPC(listenerClient)
        let delivered = 0
        listener.on(channel, () => delivered++)
        await listener.listening(channel)
        const sender = pgIPC(sendClient)
        const concurrency = mode === 'batched' ? 100 : 1
        const confirmations: (() => void)[] = []
        sender.on('notify', () => confirmations.shift()?.())
        sender.on('error', (error) => {
          throw error
        })
        let seq = 0
        const send = (): Promise<void> =>
          new Promise((resolve) => {
            confirmations.push(resolve)
            sender.notify(channel, small(seq++))
          })
        const runFor = async (ms: number): Promise<number> => {
          const deadline = performance.now() + ms
          const from = seq
          await Promise.all(
            Array.from({ length: concurrency }, async () => {
              while (performance.now() < deadline) await send()
            }),
          )
          return seq - from
        }
        await runFor(ROUND_MS / 4) // warm-up
        while (delivered < seq) await sleep(1)
        const before = delivered
        const serverBefore = clock?.read()
        const start = performance.now()
        const sent = await runFor(ROUND_MS)
        while (delivered < before + sent) await sleep(1)
        const elapsed = (performance.now() - start) / 1000
        const serverAfter = clock?.read()
        const point: ListenerPoint = {
          others: count,
          mode,
          deliveredPerSec: sent / elapsed,
          serverCpuUsPerMsg: serverBefore === undefined || serverAfter === undefined ? null : (serverAfter - serverBefore) / sent,
          messages: sent,
        }
        points.push(point)
        log(
          `  ${String(count).padStart(3)} other listeners, ${mode.padEnd(19)}: ${fmt(point.deliveredPerSec).padStart(8)} msg/s, ` +
            `server ${point.serverCpuUsPerMsg === null ? '-' : point.serverCpuUsPerMsg.toFixed(1)} us/msg`,
        )
        await sender.end()
        await listener.end()
        await sendClient.end()
        await listenerClient.end()
      }
    }
  } finally {
    await Promise.allSettled(others.map((client) => client.end()))
  }
  return points
}

// ---- 2. concurrent writers --------------------------------------------------------------------------

async function writerScaling(url: string): Promise<WriterPoint[]> {
  log('\n== commits/s of concurrent writers, with and without a NOTIFY in each transaction (fsync on)')
  const admin = await connected(url)
  await admin.query(
    'CREATE TABLE IF NOT EXISTS scaling_writes (id bigserial PRIMARY KEY, writer int, at timestamptz DEFAULT now())',
  )
  const listener = await connected(url)
  await listener.query('LISTEN writes')
  listener.on('notification', () => undefined)
  const points: WriterPoint[] = []
  try {
    for (const notify of [false, true]) {
      for (const count of WRITERS) {
        const writers = await openMany(url, count, () => Promise.resolve())
        let commits = 0
        const transaction = (index: number, seq: number): string =>
          'BEGIN; INSERT INTO scaling_writes (writer) VALUES (' +
          String(index) +
          ');' +
          (notify ? ` SELECT pg_notify('writes', '${index}:${seq}');` : '') +
          ' COMMIT;'
        const runFor = async (ms: number, count_: boolean): Promise<void> => {
          const deadline = performance.now() + ms
          await Promise.all(
            writers.map(async (client, index) => {
              for (let seq = 0; performance.now() < deadline; seq++) {
                await client.query(transaction(index, seq))
                if (count_) commits++
              }
            }),
          )
        }
        await runFor(ROUND_MS / 4, false)
        const start = performance.now()
        await runFor(ROUND_MS, true)
        const point: WriterPoint = { writers: count, notify, commitsPerSec: commits / ((performance.now() - start) / 1000) }
        points.push(point)
        log(
          `  ${String(count).padStart(2)} writers, ${notify ? 'with NOTIFY   ' : 'without NOTIFY'}: ${fmt(point.commitsPerSec).padStart(7)} commits/s`,
        )
        await Promise.allSettled(writers.map((client) => client.end()))
      }
    }
  } finally {
    await listener.end()
    await admin.end()
  }
  return points
}

// ---- 3. a stalled listener, and a full queue ------------------------------------------------------------

async function queueFill(url: string): Promise<QueueResult> {
  log(`\n== a stalled listener (idle in transaction) and a full queue (max_notify_queue_pages=${QUEUE_PAGES})`)
  const channel = 'bigstalled'
  const other = 'bigother'
  const stalled = await connected(url)
  await stalled.query(`LISTEN ${channel}`)
  stalled.on('notification', () => undefined)
  await stalled.query('BEGIN')
  await stalled.query('SELECT 1') // now idle in transaction: it reads no notification until it ends

  const client = await connected(url)
  const ipc = typedChannels([channel, other]).attach(client)
  const errors: unknown[] = []
  ipc.on('error', (error) => errors.push(error))
  const payloadBytes = Buffer.byteLength(JSON.stringify(large(0)))
  const samples: QueueSample[] = [{ notifications: 0, usage: await ipc.queueUsage() }]
  let accepted = 0
  let failedNotifications = 0
  let firstFailure: unknown
  const step = SMOKE ? 20 : 25
  for (let round = 0; round < 1_000 && firstFailure === undefined; round++) {
    const outcomes = await Promise.allSettled(
      Array.from({ length: step }, (_, index) => ipc.notify(channel, large(round * step + index))),
    )
    for (const outcome of outcomes) {
      if (outcome.status === 'fulfilled') accepted++
      else {
        failedNotifications++
        firstFailure ??= outcome.reason
      }
    }
    samples.push({ notifications: accepted, usage: await ipc.queueUsage() })
  }
  const usageAtFull = samples.at(-1)?.usage ?? 0
  log(`  ${fmt(accepted)} notifications of ${payloadBytes} bytes accepted, queue usage ${(usageAtFull * 100).toFixed(1)}%`)
  let failure: QueueResult['failure'] = null
  if (firstFailure !== undefined) {
    // While the queue is full: does anything but NOTIFY fail?
    ipc.on(other, () => undefined)
    const listenStillWorks = await ipc.listening(other).then(
      () => true,
      () => false,
    )
    const queueUsageStillWorks = await ipc.queueUsage().then(
      () => true,
      () => false,
    )
    const error = firstFailure as Error & { cause?: { code?: string; message?: string } }
    failure = {
      errorClass: error instanceof QueryFailedError ? 'QueryFailedError' : error.constructor.name,
      code: error.cause?.code,
      message: error.cause?.message ?? error.message,
      failedNotifications,
      otherFailures: errors.length,
      listenStillWorks,
      queueUsageStillWorks,
    }
    log(
      `  then: ${failure.errorClass} (${failure.code ?? '?'}: ${failure.message}); LISTEN ${listenStillWorks ? 'works' : 'fails'}`,
    )
  }
  const released = performance.now()
  await stalled.query('COMMIT') // the stalled listener catches up; the queue can be truncated
  let usage = await ipc.queueUsage()
  for (let wait = 0; wait < 100 && usage > 0.05; wait++) {
    await sleep(20)
    usage = await ipc.queueUsage()
  }
  const notifyWorks = await ipc.notify(channel, large(1_000_000)).then(
    () => true,
    () => false,
  )
  const afterRelease = { usage, notifyWorks, seconds: (performance.now() - released) / 1000 }
  log(`  after the stalled listener committed: usage ${(usage * 100).toFixed(1)}%, notify ${notifyWorks ? 'works' : 'fails'}`)
  await ipc.end()
  await client.end()
  await stalled.end()
  const queueBytes = QUEUE_PAGES * 8192
  return {
    pages: QUEUE_PAGES,
    payloadBytes,
    samples,
    bytesPerNotification: accepted === 0 ? 0 : (usageAtFull * queueBytes) / accepted,
    acceptedBeforeFull: accepted,
    failure,
    afterRelease,
  }
}

// ---- 4. memory and connections per listening service ----------------------------------------------------------

function privateBytes(pid: number): number | null {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8')
    const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) * 1024
    return field('Private_Clean') + field('Private_Dirty')
  } catch {
    return null
  }
}

async function memoryPerService(url: string): Promise<MemoryPoint[]> {
  log('\n== memory and connections of one listening service (one client, typed instances sharing it)')
  const gc = (globalThis as { gc?: () => void }).gc
  const heap = (): number => {
    gc?.()
    gc?.()
    return process.memoryUsage().heapUsed
  }
  const points: MemoryPoint[] = []
  const admin = await connected(url)
  for (const [channels, instances] of [
    [1, 1],
    [10, 1],
    [100, 1],
    [100, 10],
  ] as const) {
    const tag = `svc_${channels}_${instances}`
    const before = heap()
    const client = await connected(url, tag)
    const names = Array.from({ length: channels }, (_, index) => `${tag}_${index}`)
    const set = typedChannels(names)
    const ipcs = Array.from({ length: instances }, () => set.attach(client))
    for (const ipc of ipcs) for (const name of names) ipc.on(name, () => undefined)
    await Promise.all(ipcs.flatMap((ipc) => names.map((name) => ipc.listening(name))))
    // Some traffic, so the backend has read the queue and sent notifications.
    const senderClient = await connected(url)
    const sender = pgIPC(senderClient)
    for (let seq = 0; seq < 1_000; seq++) sender.notify(names[seq % names.length] as string, small(seq))
    await sender.end()
    await sleep(200)
    const nodeHeapBytes = heap() - before
    const pid = (await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [tag])).rows
    const connections = pid.length
    const context = await client.query<{ bytes: string }>(
      'SELECT sum(total_bytes)::text AS bytes FROM pg_backend_memory_contexts',
    )
    const point: MemoryPoint = {
      channels,
      instances,
      connections,
      nodeHeapBytes,
      backendPrivateBytes: pid[0] === undefined ? null : privateBytes(pid[0].pid),
      backendContextBytes: Number(context.rows[0]?.bytes ?? 0),
    }
    points.push(point)
    log(
      `  ${String(channels).padStart(3)} channels x ${String(instances).padStart(2)} instances: ${connections} connection(s), ` +
        `node heap ${(nodeHeapBytes / 1024).toFixed(0)} KiB, backend private ${point.backendPrivateBytes === null ? '-' : `${(point.backendPrivateBytes / 2 ** 20).toFixed(1)} MiB`}, ` +
        `backend memory contexts ${(point.backendContextBytes / 2 ** 20).toFixed(1)} MiB`,
    )
    for (const ipc of ipcs) await ipc.end()
    await client.end()
    await senderClient.end()
  }
  await admin.end()
  return points
}

// ---- the page ------------------------------------------------------------------------------------------------------

type Align = 'left' | 'right'

function table(header: readonly string[], rows: readonly (readonly string[])[], align: readonly Align[]): string {
  const widths = header.map((cell, index) => Math.max(cell.length, ...rows.map((row) => (row[index] ?? '').length)))
  const line = (cells: readonly string[]): string =>
    `| ${cells.map((cell, index) => (align[index] === 'right' ? cell.padStart(widths[index] ?? 0) : cell.padEnd(widths[index] ?? 0))).join(' | ')} |`
  const rule = `|${widths.map((width, index) => (align[index] === 'right' ? `${'-'.repeat(width + 1)}:` : '-'.repeat(width + 2))).join('|')}|`
  return [line(header), rule, ...rows.map(line)].join('\n')
}

const pct = (value: number): string => `${(value * 100).toFixed(1)}%`
const mib = (bytes: number | null): string => (bytes === null ? '-' : (bytes / 2 ** 20).toFixed(1))

export function renderScaling(results: ScalingResults, jsonPath: string): string {
  const { meta } = results
  const at = (others: number, mode: ListenerPoint['mode']) =>
    results.listeners.find((point) => point.others === others && point.mode === mode)
  const counts = [...new Set(results.listeners.map((point) => point.others))]
  const first = counts[0] ?? 1
  const last = counts.at(-1) ?? first
  const oneFirst = at(first, 'one per transaction')?.deliveredPerSec
  const oneLast = at(last, 'one per transaction')?.deliveredPerSec
  const batchFirst = at(first, 'batched')?.deliveredPerSec
  const batchLast = at(last, 'batched')?.deliveredPerSec
  const writer = (count: number, notify: boolean) =>
    results.writers.find((point) => point.writers === count && point.notify === notify)?.commitsPerSec
  const writerCounts = [...new Set(results.writers.map((point) => point.writers))]
  const maxWriters = writerCounts.at(-1) ?? 1
  const withoutMax = writer(maxWriters, false)
  const withMax = writer(maxWriters, true)
  const withOne = writer(writerCounts[0] ?? 1, true)
  const queue = results.queue
  const defaultQueueBytes = 8 * 2 ** 30
  const perNotification = queue?.bytesPerNotification ?? 0
  const wakeupPoints = results.listeners
    .filter((point) => point.mode === 'one per transaction')
    .map((point) => ({ others: point.others, wakeups: point.deliveredPerSec * (point.others + 1) }))
  const best = wakeupPoints.reduce<{ others: number; wakeups: number } | undefined>(
    (top, point) => (top === undefined || point.wakeups > top.wakeups ? point : top),
    undefined,
  )
  const wakeups = best?.wakeups
  const wakeupsAt = best === undefined ? '-' : `one notification per transaction with ${best.others + 1} listening connections`
  const memory = results.memory
  const service = memory.find((point) => point.channels === 100 && point.instances === 10) ?? memory.at(-1)
  const n = (value: number | undefined): string => (value === undefined ? '-' : fmt(value))
  const ratio = (a: number | undefined, b: number | undefined): string =>
    a === undefined || b === undefined ? '-' : `${(a / b).toFixed(2)}x`

  const lines: string[] = [
    '# Scaling: where PostgreSQL runs out',
    '',
    `<!-- Generated by bench/scaling.ts from ${jsonPath}: edit the generator, not this page. -->`,
    '',
    'LISTEN/NOTIFY rides on the database you already run, and that is its whole appeal: no broker to deploy,',
    'and a notification can be part of the transaction that made the change. It also means the limits are',
    "the server's, and a growing system meets them before it meets the library's. This page measures them",
    'on a test server, says how far one primary carries you, what typed-pg-ipc does to stretch it, and when',
    'to move the traffic to a dedicated broker.',
    '',
    '## In short',
    '',
    `- **Every listening connection of the database is woken at every notifying commit**, whatever the channel ` +
      '(up to PostgreSQL 18). With one notification per transaction, delivered messages per second went from ' +
      `${n(oneFirst)} with ${first} other listening connection${first === 1 ? '' : 's'} to ${n(oneLast)} with ${last} ` +
      `(${ratio(oneLast, oneFirst)}); batched 100 per transaction, from ${n(batchFirst)} to ${n(batchLast)} ` +
      `(${ratio(batchLast, batchFirst)}). The cost is per commit, not per message: batching is what keeps a big fleet of listeners affordable.`,
    `- **NOTIFY serialises committing writers.** A transaction that notifies takes a database-wide lock at commit and ` +
      `holds it until the commit is flushed: ${maxWriters} concurrent writers made ${n(withoutMax)} commits/s without a ` +
      `NOTIFY and ${n(withMax)} with one in each transaction (${ratio(withMax, withoutMax)}); with NOTIFY, ${maxWriters} writers ` +
      `commit ${ratio(withMax, withOne)} as much as one. Notify from the transactions that need it, not from every write.`,
    queue === null
      ? '- The queue test did not run.'
      : `- **A stalled listener fills the queue for everyone.** A connection idle in a transaction reads no ` +
        'notification, and the server cannot drop any it has not read: the queue grows by about ' +
        `${fmt(perNotification)} bytes per ${fmt(queue.payloadBytes)}-byte notification, so the default 8 GB queue holds ` +
        `about ${fmt(defaultQueueBytes / Math.max(1, perNotification))} of them behind one stuck listener. When it is full, ` +
        (queue.failure === null
          ? 'this run saw no failure.'
          : `NOTIFY fails at commit (${queue.failure.code ?? '?'}: "${queue.failure.message}"); the library rejects ` +
            `that notification's \`notify()\` with a \`${queue.failure.errorClass}\`, and nothing else fails: ` +
            `LISTEN ${queue.failure.listenStillWorks ? 'still works' : 'failed too'}, \`queueUsage()\` ` +
            `${queue.failure.queueUsageStillWorks ? 'still answers' : 'failed too'}, the connection stays up. `) +
        `As soon as the stalled transaction ended, usage was back to ${pct(queue.afterRelease.usage)} and ` +
        `notifications ${queue.afterRelease.notifyWorks ? 'went through again' : 'still failed'}. Watch \`queueUsage()\` and ` +
        '`idle_in_transaction_session_timeout` (which ends such sessions).',
    service === undefined
      ? ''
      : `- **A listening service costs one connection**, however many channels and instances it has: ` +
        `${service.channels} channels on ${service.instances} typed instances sharing one client used ` +
        `${service.connections} connection, about ${mib(service.backendPrivateBytes)} MiB of private memory in its ` +
        `server backend and ${(service.nodeHeapBytes / 1024).toFixed(0)} KiB of heap in the service.`,
    '',
    ...chartsOf(results).flatMap((chart) => [chart, '']),
    '## How far one primary carries you',
    '',
    `On this 2-core test machine (server, senders and listeners sharing it), one primary delivered ${n(batchFirst)} ` +
      `small messages per second batched, ${n(oneFirst)} with one per transaction, with few listening connections. ` +
      'From these figures (check them on your own hardware with this script):',
    '',
    `- **Wake-ups are the budget.** Notifying commits per second times listening connections is the number of ` +
      `wake-ups the server pays per second; it absorbed about ${n(wakeups)} per second here at most ` +
      `(${wakeupsAt}). With L listening connections on the database, that caps notifying commits at about ` +
      `${n(wakeups)} / L per second: ${n((wakeups ?? Number.NaN) / 100)} with 100 listeners, ` +
      `${n((wakeups ?? Number.NaN) / 1_000)} with 1,000 (extrapolated: this run went up to ${last + 1}).`,
    `- **Every listener reads every notification** of the database, for its channels or not: with ${last} other listening ` +
      `connections, batched notifications topped out at ${n(batchLast)} per second (${n(batchFirst)} with ${first}).`,
    `- **Writers that notify commit one at a time**: ${n(withMax)} commits/s for ${maxWriters} writers, about what ` +
      `one writer alone makes (${n(withOne)}), against ${n(withoutMax)} without NOTIFY.`,
    '- **The queue is the safety margin**, and one stuck consumer spends it for all: alert on `queueUsage()` above',
    '  a few percent, and bound transactions (`idle_in_transaction_session_timeout`).',
    '- **Payloads are capped** at 8,000 bytes and every listener of a channel receives all of it: send ids and',
    '  small facts, and read the rest from the database.',
    '',
    'So: tens of listening services and thousands of notifying commits per second are comfortable; hundreds of',
    'listening connections call for batching and few notifying commits; a thousand listening connections or',
    'writers that cannot afford to commit one at a time are the point to move.',
    '',
    '## What the library does to stretch it',
    '',
    '- **One listening connection per process.** Every instance, typed or core, on a client shares one hub: one',
    '  connection and one LISTEN per channel, however many listeners, instances or `messages()` loops, and a',
    '  payload is decoded and validated once per instance for all its listeners. Run one client per service process,',
    '  not one per feature.',
    '- **Batching.** Notifications handed over while one round trip is on the wire go out together in the next: up',
    '  to 1,000 per round trip, in one transaction when they are distinct. That divides the per-commit costs above',
    '  (the wake-up of every listener, the commit lock) by the batch size.',
    '- **Cheap statements.** A notification is a prepared statement (no parse or plan per call); a batch travels as',
    '  two binary text arrays (no escaping, no JSON parsing on the server).',
    '- **Visibility.** `queueUsage()` reads `pg_notification_queue_usage()`; a NOTIFY the server refuses is that',
    "  notification's `QueryFailedError`, never a silent loss.",
    '',
    '## When to move to a dedicated broker',
    '',
    '- You need delivery to consumers that were offline (LISTEN/NOTIFY delivers only to connected listeners):',
    '  use an outbox table, or a broker with persistence.',
    '- Notifying commits times listening connections approaches the wake-up budget above, or the commit',
    '  rate of your writers suffers from the NOTIFY lock (the writer figures above).',
    '- Consumers are slow or can stall for long: a broker with per-consumer queues isolates them; here one stuck',
    '  listener fills the queue for the whole cluster.',
    '- Payloads are documents rather than ids, or fan-out crosses data centres.',
    '',
    'Until then, one primary with batched notifications and one listening connection per process goes a long way.',
    '',
    '## How to run it again',
    '',
    '```sh',
    'npm run bench:scaling                        # about 3 minutes: private servers, rewrites bench/results/scaling.json and this page',
    'SCALING_SCALE=smoke npm run bench:scaling    # seconds, only proves the script works (written under .tmp/)',
    '```',
    '',
    '## This run',
    '',
    `- Date: ${meta.date} (${meta.seconds} s, \`${meta.command}\`)`,
    `- Machine: ${meta.machine.cpus} x ${meta.machine.cpuModel}, ${meta.machine.memoryGiB} GiB; load average ` +
      `${meta.machine.loadAverageStart.join(' / ')} at the start, ${meta.machine.loadAverageEnd.join(' / ')} at the end; per section (1 min, start -> end): ` +
      Object.entries(meta.sectionLoad)
        .map(([name, load]) => `${name} ${load.start[0] ?? '-'} -> ${load.end[0] ?? '-'}`)
        .join(', '),
    `- Server: ${meta.server}`,
    '',
    '## Other listening connections',
    '',
    `Sender and measured listener use the library (\`pgIPC\`, one connection each, this process); the other connections ` +
      `each LISTEN on a channel of their own and never receive anything. ${ROUND_MS / 1000} s per point after a warm-up. ` +
      '"one per transaction": one call in flight, each notification its own commit; "batched": 100 calls in flight, ' +
      'about 100 notifications per commit. Server CPU: all server processes, per delivered message.',
    '',
    table(
      ['other listening connections', 'one per transaction: msg/s', 'server us/msg', 'batched: msg/s', 'server us/msg'],
      counts.map((count) => {
        const one = at(count, 'one per transaction')
        const batched = at(count, 'batched')
        const cpu = (value: number | null | undefined) => (value === null || value === undefined ? '-' : value.toFixed(1))
        return [
          String(count),
          n(one?.deliveredPerSec),
          cpu(one?.serverCpuUsPerMsg),
          n(batched?.deliveredPerSec),
          cpu(batched?.serverCpuUsPerMsg),
        ]
      }),
      ['right', 'right', 'right', 'right', 'right'],
    ),
    '',
    '## Concurrent writers',
    '',
    'Each writer its own connection, one transaction per round trip (`BEGIN; INSERT ...; [SELECT pg_notify(...);] COMMIT`), ' +
      `on a server with fsync on; one listener LISTENs on the channel. ${ROUND_MS / 1000} s per point.`,
    '',
    table(
      ['writers', 'commits/s without NOTIFY', 'commits/s with NOTIFY', 'with / without'],
      writerCounts.map((count) => [
        String(count),
        n(writer(count, false)),
        n(writer(count, true)),
        ratio(writer(count, true), writer(count, false)),
      ]),
      ['right', 'right', 'right', 'right'],
    ),
    '',
  ]
  if (queue !== null) {
    lines.push(
      '## A stalled listener and a full queue',
      '',
      `A listener LISTENs, then sits idle inside a transaction. The typed layer sends ${fmt(queue.payloadBytes)}-byte ` +
        `notifications ${SMOKE ? 20 : 25} at a time on its channel, on a server whose queue is ${queue.pages} pages ` +
        `(${fmt((queue.pages * 8192) / 1024)} KiB, \`max_notify_queue_pages\`, PostgreSQL 17 and later; the default is 8 GB). ` +
        '`pg_notification_queue_usage()` after each step:',
      '',
      table(
        ['notifications accepted', 'queue usage'],
        queue.samples
          .filter(
            (_, index) => index % Math.max(1, Math.ceil(queue.samples.length / 12)) === 0 || index === queue.samples.length - 1,
          )
          .map((sample) => [fmt(sample.notifications), pct(sample.usage)]),
        ['right', 'right'],
      ),
      '',
      queue.failure === null
        ? 'No NOTIFY failed in this run.'
        : `Then NOTIFY failed: ${queue.failure.failedNotifications} \`notify()\` calls rejected with ` +
            `\`${queue.failure.errorClass}\` (SQLSTATE ${queue.failure.code ?? '?'}, "${queue.failure.message}"), each for its ` +
            `own notification; ${queue.failure.otherFailures} other errors were emitted; LISTEN on another channel ` +
            `${queue.failure.listenStillWorks ? 'worked' : 'failed'} and \`queueUsage()\` ${queue.failure.queueUsageStillWorks ? 'answered' : 'failed'} ` +
            `meanwhile. After the stalled listener committed: usage ${pct(queue.afterRelease.usage)}, and a new notification ` +
            `${queue.afterRelease.notifyWorks ? 'went through' : 'still failed'}.`,
      '',
    )
  }
  lines.push(
    '## Memory and connections per listening service',
    '',
    'One pg client per service; channels and typed instances on it; 1,000 notifications received before measuring. ' +
      'Connections: the server sessions of the service (`pg_stat_activity`). Backend: the private memory of its server ' +
      'process (/proc, `Private_Clean + Private_Dirty`) and what its memory contexts hold (`pg_backend_memory_contexts`). ' +
      'Node heap: heap used by the client and instances after a forced GC.',
    '',
    table(
      ['channels', 'typed instances', 'connections', 'backend private MiB', 'backend contexts MiB', 'node heap KiB'],
      memory.map((point) => [
        String(point.channels),
        String(point.instances),
        String(point.connections),
        mib(point.backendPrivateBytes),
        mib(point.backendContextBytes),
        (point.nodeHeapBytes / 1024).toFixed(0),
      ]),
      ['right', 'right', 'right', 'right', 'right', 'right'],
    ),
    '',
  )
  return `${lines.join('\n').trimEnd()}\n`
}

function chartsOf(results: ScalingResults): string[] {
  const counts = [...new Set(results.listeners.map((point) => point.others))]
  const charts: string[] = []
  if (counts.length > 0) {
    const series = (mode: ListenerPoint['mode']) =>
      counts.map((count) => results.listeners.find((point) => point.others === count && point.mode === mode)?.deliveredPerSec)
    charts.push(
      barChart({
        title: 'One notification per transaction: delivered msg/s by other listening connections',
        labels: counts.map((count) => `${count} others`),
        values: series('one per transaction'),
        yAxis: 'messages per second',
      }),
      barChart({
        title: 'Batched (~100 per transaction): delivered msg/s by other listening connections',
        labels: counts.map((count) => `${count} others`),
        values: series('batched'),
        yAxis: 'messages per second',
      }),
    )
  }
  const writers = [...new Set(results.writers.map((point) => point.writers))]
  if (writers.length > 0) {
    const series = (notify: boolean) =>
      writers.map((count) => results.writers.find((point) => point.writers === count && point.notify === notify)?.commitsPerSec)
    charts.push(
      lineChart({
        title: 'Commits/s by concurrent writers: upper line without NOTIFY, lower line with one per transaction',
        xAxis: 'writers',
        labels: writers.map(String),
        yAxis: 'commits per second',
        lines: [
          { name: 'without NOTIFY', values: series(false) },
          { name: 'with NOTIFY', values: series(true) },
        ],
      }),
    )
  }
  const queue = results.queue
  if (queue !== null && queue.samples.length > 1) {
    const every = Math.max(1, Math.ceil(queue.samples.length / 12))
    const picked = queue.samples.filter((_, index) => index % every === 0 || index === queue.samples.length - 1)
    charts.push(
      lineChart({
        title: `Queue usage (%) behind a stalled listener, ${queue.pages}-page queue`,
        xAxis: 'notifications accepted',
        labels: picked.map((sample) => String(sample.notifications)),
        yAxis: 'percent of the queue',
        lines: [{ name: 'usage', values: picked.map((sample) => sample.usage * 100) }],
      }),
    )
  }
  return charts
}

// ---- main --------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const ROOT = root()
  const started = new Date()
  const startedAt = performance.now()
  const loadAverageStart = loadAverage()
  const sectionLoad: Record<string, { start: number[]; end: number[] }> = {}
  const timed = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
    const start = loadAverage()
    const result = await run()
    sectionLoad[name] = { start, end: loadAverage() }
    return result
  }
  const servers: PgServer[] = []
  const start = async (conf: Record<string, string>): Promise<PgServer> => {
    const server = await startPostgres({ extraConf: conf })
    servers.push(server)
    return server
  }
  try {
    const main = await start({ max_connections: '400' })
    const client = await connected(main.connectionString)
    const version = (await client.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version ?? '?'
    await client.end()
    const listeners = await timed('listeners', () => listenerScaling(main.connectionString))
    const memory = await timed('memory', () => memoryPerService(main.connectionString))
    await main.stop()
    const durable = await start({ fsync: 'on', synchronous_commit: 'on', max_connections: '100' })
    const writers = await timed('writers', () => writerScaling(durable.connectionString))
    await durable.stop()
    const major = Number(version.split('.')[0])
    let queue: QueueResult | null = null
    if (major >= 17) {
      const small = await start({ max_notify_queue_pages: String(QUEUE_PAGES) })
      queue = await timed('queue', () => queueFill(small.connectionString))
      await small.stop()
    } else {
      log(`\n(PostgreSQL ${version} has no max_notify_queue_pages: the full-queue test needs 17 or later)`)
    }
    const results: ScalingResults = {
      meta: {
        date: started.toISOString(),
        command: SMOKE ? 'SCALING_SCALE=smoke npm run bench:scaling' : 'npm run bench:scaling',
        seconds: Math.round((performance.now() - startedAt) / 1000),
        scale: SMOKE ? 'smoke' : 'full',
        machine: {
          cpus: os.cpus().length,
          cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
          memoryGiB: Math.round(os.totalmem() / 2 ** 30),
          loadAverageStart,
          loadAverageEnd: loadAverage(),
        },
        server: `PostgreSQL ${version}, embedded binaries on loopback, private servers started by the script (fsync off, except for the writers: fsync and synchronous_commit on)`,
        sectionLoad,
      },
      listeners,
      writers,
      queue,
      memory,
    }
    const outFile = process.env.SCALING_OUT ?? join(ROOT, SMOKE ? '.tmp/scaling/scaling.json' : 'bench/results/scaling.json')
    const docsFile = process.env.SCALING_DOCS ?? join(ROOT, SMOKE ? '.tmp/scaling/scaling.md' : 'docs/scaling.md')
    mkdirSync(dirname(outFile), { recursive: true })
    mkdirSync(dirname(docsFile), { recursive: true })
    writeFileSync(outFile, `${JSON.stringify(results, null, 2)}\n`)
    writeFileSync(docsFile, renderScaling(results, relative(dirname(docsFile), outFile)))
    log(`\nwrote ${relative(process.cwd(), outFile)} and ${relative(process.cwd(), docsFile)} in ${results.meta.seconds} s`)
  } finally {
    for (const server of servers) await server.stop()
  }
}

/** `node .tmp/bench/bench/scaling.js --render`: regenerates docs/scaling.md from the stored results. */
function render(): void {
  const ROOT = root()
  const jsonFile = join(ROOT, 'bench/results/scaling.json')
  const docsFile = join(ROOT, 'docs/scaling.md')
  const results = JSON.parse(readFileSync(jsonFile, 'utf8')) as ScalingResults
  writeFileSync(docsFile, renderScaling(results, relative(dirname(docsFile), jsonFile)))
  log(`wrote ${relative(process.cwd(), docsFile)}`)
}

const self = fileURLToPath(import.meta.url)
if (process.argv[1] !== undefined && join(process.argv[1]) === self) {
  if (process.argv.includes('--render')) render()
  else
    main().catch((error: unknown) => {
      console.error(error)
      process.exitCode = 1
    })
}
