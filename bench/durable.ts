// `npm run bench:durable`: what a durable channel costs next to a plain typed channel, measured in
// one run, against one server, rounds interleaved: messages per second with 100 sends in flight
// (from the first send until the listener received the last), and the median latency of a single
// message (from the call to the listener's callback). Sender and listener are two connections of
// this process. Writes bench/results/durable.json (or .tmp/ with BENCH_SCALE=quick).
import { mkdirSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import pg from 'pg'
import { z } from 'zod'
import { defineChannels, durable, type TypedIPC } from '../src/index.js'
import { startPostgres, type PgServer } from '../test/support/postgres.js'

const quick = process.env.BENCH_SCALE === 'quick'
const MESSAGES = quick ? 2_000 : 10_000
const ROUNDS = quick ? 1 : 3
const SAMPLES = quick ? 200 : 1_000
const item = z.object({ id: z.number().int(), name: z.string(), tags: z.array(z.string()) })

type Ipc = TypedIPC<{ c: typeof item }>

async function throughput(sender: Ipc, listener: Ipc, c: 'c'): Promise<number> {
  let received = 0
  let done: (() => void) | undefined
  const finished = new Promise<void>((resolve) => (done = resolve))
  const onMessage = (): void => {
    if (++received === MESSAGES) done?.()
  }
  listener.on(c, onMessage)
  await listener.listening(c)
  const start = performance.now()
  let next = 0
  const lane = async (): Promise<void> => {
    while (next < MESSAGES) {
      const id = next++
      await sender.notify(c, { id, name: `item ${id}`, tags: ['a', 'b'] })
    }
  }
  await Promise.all([...Array(100).keys()].map(() => lane()))
  await finished
  const seconds = (performance.now() - start) / 1000
  listener.off(c, onMessage)
  return MESSAGES / seconds
}

async function latencies(sender: Ipc, listener: Ipc, c: 'c', out: number[]): Promise<void> {
  let arrived: (() => void) | undefined
  const onMessage = (): void => arrived?.()
  listener.on(c, onMessage)
  await listener.listening(c)
  for (let n = 0; n < SAMPLES / ROUNDS; n++) {
    const got = new Promise<void>((resolve) => (arrived = resolve))
    const start = performance.now()
    await sender.notify(c, { id: n, name: 'one', tags: [] })
    await got
    out.push(performance.now() - start)
  }
  listener.off(c, onMessage)
}

const median = (values: readonly number[]): number =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN

async function main(): Promise<void> {
  let server: PgServer | undefined
  let url = process.env.DATABASE_URL ?? ''
  if (url === '') {
    server = await startPostgres()
    url = server.connectionString
  }
  const load = loadavg()[0]?.toFixed(2)
  const kinds = {
    plain: defineChannels({ c: item }),
    durable: defineChannels(
      { c: durable(item) },
      { durable: { table: `bench_${process.pid}`, retention: { pruneEveryMs: false } } },
    ),
  }
  const clients: pg.Client[] = []
  const client = async (): Promise<pg.Client> => {
    const made = new pg.Client({ connectionString: url })
    await made.connect()
    clients.push(made)
    return made
  }
  await kinds.durable.install(await client())
  const pairs = {} as Record<keyof typeof kinds, { sender: Ipc; listener: Ipc }>
  for (const kind of Object.keys(kinds) as (keyof typeof kinds)[]) {
    pairs[kind] = { sender: kinds[kind].attach(await client()) as Ipc, listener: kinds[kind].attach(await client()) as Ipc }
  }
  const rates: Record<string, number[]> = { plain: [], durable: [] }
  const lat: Record<string, number[]> = { plain: [], durable: [] }
  for (let round = 0; round < ROUNDS; round++) {
    for (const kind of ['plain', 'durable'] as const) {
      const { sender, listener } = pairs[kind]
      rates[kind]?.push(await throughput(sender, listener, 'c'))
      await latencies(sender, listener, 'c', lat[kind] as number[])
    }
  }
  const result = {
    date: new Date().toISOString(),
    server: server === undefined ? 'DATABASE_URL' : `embedded PostgreSQL ${server.version}`,
    loadAverageAtStart: Number(load),
    messages: MESSAGES,
    rounds: ROUNDS,
    samples: SAMPLES,
    plain: { deliveredPerSecond: median(rates.plain ?? []), p50Ms: median(lat.plain ?? []) },
    durable: { deliveredPerSecond: median(rates.durable ?? []), p50Ms: median(lat.durable ?? []) },
  }
  const ratio = (a: number, b: number): string => (a / b).toFixed(2)
  console.log(`bench:durable (${result.server}, load average ${load} at start, ${MESSAGES} messages x ${ROUNDS} rounds, C=100)`)
  console.log(
    `  plain typed:   ${Math.round(result.plain.deliveredPerSecond)} delivered/s, p50 ${result.plain.p50Ms.toFixed(3)} ms`,
  )
  console.log(
    `  durable typed: ${Math.round(result.durable.deliveredPerSecond)} delivered/s, p50 ${result.durable.p50Ms.toFixed(3)} ms`,
  )
  console.log(
    `  durable / plain: ${ratio(result.durable.deliveredPerSecond, result.plain.deliveredPerSecond)}x the throughput, ` +
      `${ratio(result.durable.p50Ms, result.plain.p50Ms)}x the latency`,
  )
  const dir = quick ? '.tmp/bench-results' : 'bench/results'
  mkdirSync(dir, { recursive: true })
  writeFileSync(`${dir}/durable.json`, `${JSON.stringify(result, null, 2)}\n`)
  for (const { sender, listener } of Object.values(pairs)) await Promise.all([sender.end(), listener.end()])
  await Promise.all(clients.map((made) => made.end()))
  await server?.stop()
}

main().catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
