// The durable channels' soak (part of `npm run soak`): concurrent writers whose transactions commit
// out of id order on purpose (some hold their transaction open, some take a transaction id before
// they publish, some roll back), a listener in the reconnecting mode whose connection is killed again
// and again, and a listener PROCESS killed with SIGKILL again and again and restarted from the
// cursor it stored. Checks: every committed message delivered, to each, exactly once; none rolled
// back ever delivered; payloads equal to what was sent; each writer's messages in its commit order.
// Exits 1 when a check fails, 2 on a timeout.
//
//   npm run soak                                   # both soaks (this one after the plain one)
//   DURABLE_SOAK_MESSAGES=20000 npm run soak        # or --messages=20000 after `--`
//
// Settings (env DURABLE_SOAK_<NAME> or --<name>=value): writers 4, messages 6000 (committed, about),
// kills 10 (of the reconnecting listener's connection), restarts 6 (of the listener process),
// timeout 150000 ms.
import { fork, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { z } from 'zod'
import { defineChannels, durable } from '../src/index.js'
import { startPostgres, type PgServer } from '../test/support/postgres.js'

function setting(name: string, fallback: number): number {
  const flag = process.argv.slice(2).find((arg) => arg.startsWith(`--${name}=`))
  const raw = flag?.slice(name.length + 3) ?? process.env[`DURABLE_SOAK_${name.toUpperCase()}`]
  return raw === undefined || raw === '' ? fallback : Number(raw)
}

const settings = {
  writers: setting('writers', 4),
  messages: setting('messages', 6_000),
  kills: setting('kills', 10),
  restarts: setting('restarts', 6),
  timeoutMs: setting('timeout', 150_000),
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
const random = (min: number, max: number): number => min + Math.floor(Math.random() * (max - min + 1))
const t0 = performance.now()
const elapsed = (): string => `${((performance.now() - t0) / 1000).toFixed(1)} s`

let server: PgServer | undefined
const watchdog = setTimeout(() => {
  console.error(`durable soak: timed out after ${settings.timeoutMs} ms`)
  process.exit(2)
}, settings.timeoutMs)

const item = z.object({ w: z.number(), seq: z.number(), pad: z.string() })

async function main(): Promise<number> {
  let url = process.env.DATABASE_URL ?? ''
  if (url === '') {
    server = await startPostgres()
    url = server.connectionString
  }
  const tag = `${process.pid}_${randomBytes(3).toString('hex')}`
  const channel = `dsoak_${tag}`
  const table = `dsoak_${tag}`
  const channels = defineChannels({ [channel]: durable(item) } as Record<'c', ReturnType<typeof durable<typeof item>>>, {
    durable: { table, retention: { pruneEveryMs: false } },
  })
  const c = channel as 'c'
  const admin = new pg.Client({ connectionString: url })
  admin.on('error', () => undefined)
  await admin.connect()
  await channels.install(admin)
  console.log(
    `durable soak: ${settings.writers} writers, ~${settings.messages} committed messages, ${settings.kills} connection kills, ` +
      `${settings.restarts} process restarts (${server === undefined ? 'DATABASE_URL' : `embedded PostgreSQL ${server.version}`})`,
  )

  // ---- the reconnecting listener, whose connection is killed ----
  const listener = channels.attach({ connect: url, retry: { initialDelayMs: 10, maxDelayMs: 200 } })
  const listenerErrors: string[] = []
  listener.on('error', (error) => listenerErrors.push(error.message))
  const inProcess: { id: string; raw: string }[] = []
  listener.on(c, (message) => inProcess.push({ id: message.id, raw: message.rawPayload }))
  let reconnects = 0
  listener.on('reconnect', () => reconnects++)
  await new Promise((resolve) => listener.once('connect', resolve))
  await listener.listening(c)
  // The child starts from a cursor taken now: nothing before this moment.
  const { rows: snapshot } = await admin.query<{ s: string }>('SELECT pg_current_snapshot()::text AS s')
  const startCursor = `tpi1|${snapshot[0]?.s}`

  // ---- the control: the classic outbox reader, "id > the last id I saw", on every wake-up ----
  // It must lose messages here (transactions commit out of id order): proof that the soak's
  // interleavings are adversarial enough to catch the bug durable channels exist to avoid.
  const naive = new pg.Client({ connectionString: url })
  naive.on('error', () => undefined)
  await naive.connect()
  const naiveGot: { id: string; raw: string }[] = []
  let naiveLast = '0'
  let naiveReading = Promise.resolve()
  naive.on('notification', () => {
    naiveReading = naiveReading.then(async () => {
      const { rows } = await naive.query<{ id: string; payload: string }>(
        `SELECT id::text, payload FROM typed_pg_ipc."${table}" WHERE channel = $1 AND id > $2 ORDER BY id`,
        [channel, naiveLast],
      )
      for (const row of rows) naiveGot.push({ id: row.id, raw: row.payload })
      naiveLast = rows.at(-1)?.id ?? naiveLast
    })
  })
  await naive.query(`LISTEN "${channel}"`)
  naiveLast =
    (await naive.query<{ id: string }>(`SELECT coalesce(max(id), 0)::text AS id FROM typed_pg_ipc."${table}"`)).rows[0]?.id ?? '0'

  // ---- the listener process, killed and restarted from its stored cursor ----
  const dir = mkdtempSync(join(tmpdir(), 'durable-soak-'))
  const log = join(dir, 'child.log')
  const childScript = fileURLToPath(new URL('./durable-listener-child.js', import.meta.url))
  let child: ChildProcess | undefined
  const startChild = async (): Promise<void> => {
    child = fork(childScript, [url, channel, table, log, startCursor], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
    await new Promise<void>((resolve, reject) => {
      child?.stdout?.once('data', () => resolve())
      child?.once('exit', (code) => reject(new Error(`the listener process exited (${code}) before it was ready`)))
    })
  }
  await startChild()

  // ---- the writers ----
  const committed: { id: string; raw: string; w: number }[] = []
  const rolledBack = new Set<string>()
  const side = `dsoak_side_${tag}`
  await admin.query(`CREATE TABLE ${side} (x int)`)
  let stop = false
  const writer = async (w: number): Promise<void> => {
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    let seq = 0
    while (!stop) {
      await client.query('BEGIN')
      if (Math.random() < 0.3) await client.query(`INSERT INTO ${side} VALUES (1)`) // an xid before the ids
      await sleep(random(0, 20))
      const mine: { id: string; raw: string; w: number }[] = []
      for (let n = random(1, 5); n > 0; n--) {
        const query = channels.notifyQuery(c, { w, seq: seq++, pad: randomBytes(random(0, 40)).toString('base64') })
        const { rows } = await client.query<{ id: string }>({ text: query.text, values: query.values, rowMode: 'array' } as never)
        mine.push({ id: String((rows[0] as unknown as string[])[0]), raw: query.values[1], w })
      }
      if (Math.random() < 0.05) await sleep(random(200, 800)) // a slow transaction: commits after later ids
      if (Math.random() < 0.1) {
        await client.query('ROLLBACK')
        for (const message of mine) rolledBack.add(message.id)
      } else {
        await client.query('COMMIT')
        committed.push(...mine)
      }
    }
    await client.end()
  }
  const writing = Promise.all([...Array(settings.writers).keys()].map((w) => writer(w)))

  // ---- the faults ----
  let kills = 0
  let restarts = 0
  while (committed.length < settings.messages) {
    await sleep(300)
    if (kills < settings.kills && listener.processId !== undefined) {
      await admin.query('SELECT pg_terminate_backend($1)', [listener.processId])
      kills++
    }
    if (restarts < settings.restarts && Math.random() < 0.5) {
      child?.kill('SIGKILL')
      await new Promise((resolve) => child?.once('exit', resolve))
      await startChild()
      restarts++
    }
  }
  stop = true
  await writing
  console.log(`durable soak: ${committed.length} committed, ${rolledBack.size} rolled back, writers done at ${elapsed()}`)

  // ---- everything committed must arrive, to both ----
  const childLines = (): string[] =>
    readFileSync(log, 'utf8')
      .split('\n')
      .filter((line) => line !== '')
  for (let waited = 0; waited < 60_000; waited += 100) {
    if (inProcess.length >= committed.length && childLines().length >= committed.length) break
    await sleep(100)
  }
  await sleep(500) // the last word: anything more that arrives now is a duplicate
  child?.kill('SIGKILL')
  await listener.end()

  const expected = new Map(committed.map((message) => [message.id, message]))
  const problems: string[] = []
  // The soak's own bookkeeping: one distinct id per committed message, or the checks below prove nothing.
  if (expected.size !== committed.length || committed.some((message) => !/^\d+$/.test(message.id))) {
    problems.push(`bookkeeping: ${committed.length} committed messages but ${expected.size} distinct numeric ids`)
  }
  const check = (who: string, got: readonly { id: string; raw: string }[]): void => {
    const seen = new Map<string, number>()
    for (const message of got) seen.set(message.id, (seen.get(message.id) ?? 0) + 1)
    const lost = [...expected.keys()].filter((id) => !seen.has(id))
    const twice = [...seen].filter(([, times]) => times > 1).map(([id]) => id)
    const ghosts = got.filter((message) => rolledBack.has(message.id)).map((message) => message.id)
    const altered = got
      .filter((message) => expected.has(message.id) && expected.get(message.id)?.raw !== message.raw)
      .map((m) => m.id)
    // Each writer commits its transactions one after another: its messages must arrive in that order.
    const lastSeq = new Map<number, number>()
    let disorder = 0
    for (const message of got) {
      const { w, seq } = JSON.parse(message.raw) as { w: number; seq: number }
      if (seq < (lastSeq.get(w) ?? -1)) disorder++
      lastSeq.set(w, seq)
    }
    console.log(
      `durable soak: ${who}: ${got.length} received, ${lost.length} lost, ${twice.length} twice, ` +
        `${ghosts.length} rolled back delivered, ${altered.length} altered, ${disorder} out of writer order`,
    )
    if (lost.length > 0) problems.push(`${who}: lost ${lost.slice(0, 5).join(', ')}`)
    if (twice.length > 0) problems.push(`${who}: delivered twice ${twice.slice(0, 5).join(', ')}`)
    if (ghosts.length > 0) problems.push(`${who}: rolled back yet delivered ${ghosts.slice(0, 5).join(', ')}`)
    if (altered.length > 0) problems.push(`${who}: payload altered ${altered.slice(0, 5).join(', ')}`)
    if (disorder > 0) problems.push(`${who}: ${disorder} messages out of their writer's commit order`)
  }
  check(`the reconnecting listener (${kills} kills, ${reconnects} reconnects)`, inProcess)
  const fromChild = childLines().map((line) => {
    const [id = '', raw = ''] = line.split('\t')
    return { id, raw }
  })
  check(`the listener process (${restarts} SIGKILL restarts from its cursor)`, fromChild)
  await naiveReading
  const naiveSeen = new Set(naiveGot.map((message) => message.id))
  const naiveLost = [...expected.keys()].filter((id) => !naiveSeen.has(id)).length
  console.log(
    `durable soak: control, a naive "id > last" reader on the same wake-ups: ${naiveGot.length} received, ${naiveLost} lost` +
      (naiveLost === 0 ? ' (the interleavings did not catch it this time: the check above proves less)' : ''),
  )
  await naive.end()
  if (listenerErrors.length > 0) problems.push(`errors: ${listenerErrors.slice(0, 3).join(' | ')}`)
  rmSync(dir, { recursive: true, force: true })
  await admin.end()
  console.log(problems.length === 0 ? `durable soak: PASS in ${elapsed()}` : `durable soak: FAIL\n  ${problems.join('\n  ')}`)
  return problems.length === 0 ? 0 : 1
}

main()
  .then(
    (code) => {
      process.exitCode = code
    },
    (error: unknown) => {
      console.error(error)
      process.exitCode = 1
    },
  )
  .finally(async () => {
    clearTimeout(watchdog)
    await server?.stop()
  })
