// `npm run soak`: a producer and a consumer, both in the reconnecting mode, exchange a fixed number
// of sequence-numbered messages while an admin connection kills the consumer's listening connection
// again and again (pg_terminate_backend). Reports messages sent and received, the outages and their
// gap windows, and checks that every message sent outside a gap window was received, exactly once.
// Exits 1 when a check fails, 2 on a timeout. Bounded in time (a watchdog ends it well under 2 min).
//
//   npm run soak                                       # embedded PostgreSQL, 20 000 messages, 12 kills
//   SOAK_MESSAGES=50000 SOAK_KILLS=30 npm run soak     # or: npm run soak -- --messages=50000 --kills=30
//   DATABASE_URL=postgres://... npm run soak           # your server (left running)
//
// Settings (env SOAK_<NAME> or --<name>=value):
//   messages      20000  messages to send
//   kills         12     how many times the consumer's connection is killed (at most)
//   kill-every    400    ms between a reconnect and the next kill
//   rate          2500   messages per second the producer aims at (0: as fast as it can)
//   in-flight     64     most notifications awaiting the server's answer at once
//   timeout       110000 ms before the watchdog gives up
//
// The gap window of an outage runs from the kill (the admin's pg_terminate_backend call; the consumer
// only learns of the loss at 'disconnect', a little later) to 'reconnect' (LISTEN is active again). A
// message is "in the gap" when the interval from calling notify() to the server's answer overlaps a
// window: its commit happened somewhere in that interval, so it may have been missed. Every other
// message must arrive: sent entirely before the kill, it was delivered to the old session; sent
// entirely after 'reconnect', the new session was listening when it committed.
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { z } from 'zod'
import { defineChannels, pgIPC, type ConnectInfo } from '../src/index.js'
import { startPostgres, type PgServer } from '../test/support/postgres.js'

interface Settings {
  messages: number
  kills: number
  killEveryMs: number
  rate: number
  inFlight: number
  timeoutMs: number
}

function setting(name: string, fallback: number): number {
  const flag = process.argv.slice(2).find((arg) => arg.startsWith(`--${name}=`))
  const raw = flag?.slice(name.length + 3) ?? process.env[`SOAK_${name.toUpperCase().replaceAll('-', '_')}`]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isFinite(value) || value < 0) throw new Error(`soak: ${name} must be a number >= 0, got "${raw}"`)
  return value
}

const settings: Settings = {
  messages: setting('messages', 20_000),
  kills: setting('kills', 12),
  killEveryMs: setting('kill-every', 400),
  rate: setting('rate', 2_500),
  inFlight: Math.max(1, setting('in-flight', 64)),
  timeoutMs: setting('timeout', 110_000),
}

const t0 = performance.now()
const now = (): number => performance.now() - t0
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

interface Outage {
  killAt: number
  pid: number
  disconnectAt?: number
  reconnectAt?: number
  info?: ConnectInfo
}

let server: PgServer | undefined
let finishing = false

const watchdog = setTimeout(() => {
  console.error(`soak: timed out after ${settings.timeoutMs} ms`)
  // The embedded server's exit hook (test/support/postgres.ts) stops it on process.exit.
  process.exit(2)
}, settings.timeoutMs)

async function main(): Promise<number> {
  let url = process.env.DATABASE_URL ?? ''
  let where = 'DATABASE_URL'
  if (url === '') {
    server = await startPostgres()
    url = server.connectionString
    where = `embedded PostgreSQL ${server.version}`
  }
  console.log(
    `soak: ${settings.messages} messages at ${settings.rate === 0 ? 'full speed' : `${settings.rate}/s`}, ` +
      `up to ${settings.kills} kills of the consumer's connection every ${settings.killEveryMs} ms (${where})`,
  )

  const channel = `soak_${process.pid}_${randomBytes(3).toString('hex')}`
  const channels = defineChannels({ [channel]: z.object({ seq: z.number().int() }) })
  const retry = { initialDelayMs: 10, maxDelayMs: 200 }

  // ---- consumer: the core, reconnecting; its connection is the one killed ----
  const consumer = pgIPC({ connect: url, retry, healthCheck: { intervalMs: 1_000, timeoutMs: 1_000 } })
  const consumerErrors: string[] = []
  consumer.on('error', (error: Error) => consumerErrors.push(error.message))
  const outages: Outage[] = []
  const received = new Map<number, number>() // seq -> times received
  let sentinelSeen: (() => void) | undefined
  consumer.on(channel, (message) => {
    const seq = (message.payload as { seq: number }).seq
    if (seq === -1) {
      sentinelSeen?.()
      return
    }
    received.set(seq, (received.get(seq) ?? 0) + 1)
  })
  consumer.on('disconnect', () => {
    const outage = outages.at(-1)
    if (outage !== undefined && outage.disconnectAt === undefined) outage.disconnectAt = now()
    else outages.push({ killAt: Number.NaN, pid: 0, disconnectAt: now() }) // a loss we did not cause
  })
  let onReconnect: (() => void) | undefined
  consumer.on('reconnect', (info: ConnectInfo) => {
    const outage = outages.at(-1)
    if (outage !== undefined) {
      outage.reconnectAt = now()
      outage.info = info
    }
    onReconnect?.()
  })
  await new Promise((resolve) => consumer.once('connect', resolve))
  await consumer.listening(channel)

  // ---- producer: the typed layer, reconnecting; its connection is left alone ----
  const producer = channels.attach({
    connect: url,
    retry,
    whileDisconnected: { maxWaitMs: 30_000, maxQueued: settings.inFlight * 2 },
  })
  const producerErrors: string[] = []
  producer.on('error', (error) => producerErrors.push(error.message))
  await new Promise((resolve) => producer.on('connect', resolve))

  const admin = new pg.Client({ connectionString: url })
  admin.on('error', () => undefined)
  await admin.connect()

  // ---- the kill loop ----
  let producing = true
  const killer = (async () => {
    while (producing && outages.filter((outage) => outage.pid !== 0).length < settings.kills) {
      await sleep(settings.killEveryMs)
      const pid = consumer.processId
      if (!producing || pid === undefined) continue
      const reconnected = new Promise<void>((resolve) => (onReconnect = resolve))
      outages.push({ killAt: now(), pid })
      await admin.query('SELECT pg_terminate_backend($1)', [pid])
      await Promise.race([reconnected, sleep(20_000)])
      onReconnect = undefined
    }
  })()

  // ---- the producer loop ----
  const sentAt = new Float64Array(settings.messages).fill(Number.NaN)
  const answeredAt = new Float64Array(settings.messages).fill(Number.NaN)
  const failed: string[] = []
  let inFlight = 0
  let slotFree: (() => void) | undefined
  const produceStart = now()
  for (let seq = 0; seq < settings.messages; seq++) {
    if (settings.rate > 0) {
      const due = produceStart + (seq / settings.rate) * 1_000
      if (due > now() + 5) await sleep(due - now())
    }
    while (inFlight >= settings.inFlight) await new Promise<void>((resolve) => (slotFree = resolve))
    inFlight++
    sentAt[seq] = now()
    producer
      .notify(channel, { seq })
      .then(
        () => {
          answeredAt[seq] = now()
        },
        (error: Error) => {
          failed.push(`${seq}: ${error.message}`)
        },
      )
      .finally(() => {
        inFlight--
        slotFree?.()
        slotFree = undefined
      })
  }
  while (inFlight > 0) await new Promise<void>((resolve) => (slotFree = resolve))
  const produceMs = now() - produceStart
  producing = false
  await killer

  // ---- drain: a sentinel sent last arrives last (one sender, commit order) ----
  if (consumer.processId === undefined) await new Promise((resolve) => consumer.once('reconnect', resolve))
  await consumer.listening(channel)
  const sentinel = new Promise<boolean>((resolve) => {
    sentinelSeen = () => resolve(true)
    setTimeout(() => resolve(false), 10_000).unref()
  })
  await producer.notify(channel, { seq: -1 })
  const drained = await sentinel

  // ---- analysis ----
  const windows = outages.map((outage) => ({
    start: Math.min(
      Number.isNaN(outage.killAt) ? Number.POSITIVE_INFINITY : outage.killAt,
      outage.disconnectAt ?? Number.POSITIVE_INFINITY,
    ),
    end: outage.reconnectAt ?? Number.POSITIVE_INFINITY,
  }))
  const inGap = (seq: number): number => {
    const from = sentAt[seq] ?? Number.NaN
    const to = answeredAt[seq] ?? Number.NaN
    return windows.findIndex((window) => to >= window.start && from <= window.end)
  }
  let receivedCount = 0
  let duplicates = 0
  for (const times of received.values()) {
    receivedCount++
    if (times > 1) duplicates += times - 1
  }
  const unknown = [...received.keys()].filter((seq) => seq < 0 || seq >= settings.messages)
  const perWindow = outages.map(() => ({ sent: 0, lost: 0, lostBeforeDisconnect: 0 }))
  const lostOutside: number[] = []
  let accepted = 0
  for (let seq = 0; seq < settings.messages; seq++) {
    if (Number.isNaN(answeredAt[seq] ?? Number.NaN)) continue
    accepted++
    const gap = inGap(seq)
    const got = received.has(seq)
    if (gap >= 0) {
      const entry = perWindow[gap]
      if (entry !== undefined) {
        entry.sent++
        if (!got) entry.lost++
        // Answered before the consumer heard of the loss: missed although outside [disconnect, reconnect].
        const disconnectAt = outages[gap]?.disconnectAt ?? Number.POSITIVE_INFINITY
        if (!got && (answeredAt[seq] ?? Number.NaN) < disconnectAt) entry.lostBeforeDisconnect++
      }
    } else if (!got) {
      lostOutside.push(seq)
    }
  }

  // ---- report ----
  const ms = (value: number | undefined): string => (value === undefined || !Number.isFinite(value) ? '-' : value.toFixed(0))
  console.log(
    `sent ${settings.messages} (accepted by the server ${accepted}, failed ${failed.length}) in ${(produceMs / 1_000).toFixed(1)} s`,
  )
  console.log(
    `received ${receivedCount} distinct (duplicates ${duplicates}, unknown ${unknown.length}); drained: ${String(drained)}`,
  )
  console.log(
    `outages ${outages.length} (kills ${outages.filter((outage) => outage.pid !== 0).length}); gap windows, ms since start:`,
  )
  console.log(
    '   #     kill  disconnect  reconnect   gap ms  downtimeMs  attempts  sent in gap  missed in gap  of which before disconnect',
  )
  outages.forEach((outage, index) => {
    const window = windows[index]
    const stats = perWindow[index]
    console.log(
      [
        String(index + 1).padStart(4),
        ms(outage.killAt).padStart(8),
        ms(outage.disconnectAt).padStart(11),
        ms(outage.reconnectAt).padStart(10),
        ms(window === undefined ? undefined : window.end - window.start).padStart(8),
        ms(outage.info?.downtimeMs).padStart(11),
        String(outage.info?.attempts ?? '-').padStart(9),
        String(stats?.sent ?? 0).padStart(12),
        String(stats?.lost ?? 0).padStart(14),
        String(stats?.lostBeforeDisconnect ?? 0).padStart(27),
      ].join(' '),
    )
  })
  const missedInGaps = perWindow.reduce((sum, entry) => sum + entry.lost, 0)
  const missedEarly = perWindow.reduce((sum, entry) => sum + entry.lostBeforeDisconnect, 0)
  console.log(`missed inside gap windows: ${missedInGaps} (allowed: the gap signal tells the application to catch up)`)
  console.log(
    `  of which answered between the kill and 'disconnect': ${missedEarly} (the consumer cannot know of a loss before the socket says so; ` +
      "an application catching up at 'reconnect' should re-read from a little before the loss)",
  )
  console.log(
    `missed outside gap windows: ${lostOutside.length}${lostOutside.length > 0 ? ` (first: ${lostOutside.slice(0, 10).join(', ')})` : ''}`,
  )

  const problems: string[] = []
  if (lostOutside.length > 0) problems.push(`${lostOutside.length} messages sent outside every gap window were never received`)
  if (duplicates > 0) problems.push(`${duplicates} duplicate deliveries`)
  if (unknown.length > 0) problems.push(`${unknown.length} messages received that were never sent`)
  if (failed.length > 0) problems.push(`${failed.length} notify calls failed (first: ${failed[0]})`)
  if (!drained) problems.push('the final sentinel never arrived')
  if (outages.some((outage) => outage.reconnectAt === undefined)) problems.push('an outage never ended with reconnect')
  if (outages.filter((outage) => outage.pid !== 0).length === 0 && settings.kills > 0) problems.push('no kill happened')
  const reconnects = outages.filter((outage) => outage.info !== undefined).length
  if (reconnects !== outages.length) problems.push(`${reconnects} reconnect events for ${outages.length} outages`)
  if (consumerErrors.length > 0) problems.push(`consumer errors: ${consumerErrors.slice(0, 3).join(' | ')}`)
  if (producerErrors.length > 0) problems.push(`producer errors: ${producerErrors.slice(0, 3).join(' | ')}`)

  finishing = true
  await Promise.all([consumer.end(), producer.end(), admin.end().catch(() => undefined)])
  console.log(problems.length === 0 ? 'soak: PASS' : `soak: FAIL\n  - ${problems.join('\n  - ')}`)
  return problems.length === 0 ? 0 : 1
}

main()
  .then(
    (code) => {
      process.exitCode = code
    },
    (error: unknown) => {
      console.error('soak: crashed:', error)
      process.exitCode = 1
    },
  )
  .finally(async () => {
    await server?.stop()
    clearTimeout(watchdog)
    console.log(`soak: done in ${(now() / 1_000).toFixed(1)} s${finishing ? '' : ' (did not finish)'}`)
  })
