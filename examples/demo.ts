// typed-pg-ipc demo: two services exchange typed messages over PostgreSQL LISTEN/NOTIFY.
//
//   npm run demo                                   # starts a throwaway PostgreSQL, stops it at the end
//   DATABASE_URL=postgres://user@host/db npm run demo   # uses your server instead
//
// It shows, and checks (the demo exits non-zero if any check fails):
//   1. typed messages flowing both ways, a Date going out as an ISO string and arriving as a Date;
//   2. a payload rejected before sending (InvalidPayloadError), and proof that nothing was sent;
//   3. malformed notifications sent by plain SQL reported as `invalid`, while the consumer goes on;
//   4. channels.notifyQuery() in a transaction: delivered at COMMIT, never after a ROLLBACK.
// Everything is synchronised on events and promises; nothing sleeps.

import { randomUUID } from 'node:crypto'
import pg from 'pg'
import { z } from 'zod'
import {
  defineChannels,
  InvalidPayloadError,
  type ChannelName,
  type InvalidMessageError,
  type MessageOf,
  type PayloadOf,
  type ValidationIssue,
} from '../src/index.js'
import { startPostgres } from '../test/support/postgres.js'

// ---- the channel map: one definition, shared by both services ----------------------------------

/** A Date in the code, an ISO string on the wire. */
const isoDate = z.codec(z.iso.datetime(), z.date(), {
  decode: (text) => new Date(text),
  encode: (date) => date.toISOString(),
})

const channels = defineChannels({
  /** orders -> billing: a new order. */
  orderPlaced: z.object({ orderId: z.uuid(), total: z.number().positive(), placedAt: isoDate }),
  /** billing -> orders: the invoice for an order. */
  invoiceSent: z.object({ orderId: z.uuid(), invoiceNo: z.string().regex(/^INV-\d+$/) }),
  /** anyone -> billing: drop the cached prices. No payload. */
  cacheCleared: z.void(),
})

type Channels = typeof channels
type Channel = ChannelName<Channels>
type Order = PayloadOf<Channels, 'orderPlaced'>
type Service = 'orders' | 'billing'
/** A message on any channel, discriminated by its `channel`. */
type AnyMessage = { [Name in Channel]: MessageOf<Channels, Name> }[Channel]

// ---- what the services received, in arrival order ----------------------------------------------

type Arrival = { readonly seq: number; readonly service: Service } & (
  { readonly kind: 'message'; readonly message: AnyMessage } | { readonly kind: 'invalid'; readonly error: InvalidMessageError }
)
type ArrivalInput = Arrival extends infer Entry ? (Entry extends Arrival ? Omit<Entry, 'seq'> : never) : never

const WAIT_MS = 5_000

/**
 * Every message and `invalid` event both services receive, in order. Steps wait here for what they
 * expect (searching from a cursor taken before sending, so nothing that arrives early is missed).
 * The timeout only turns a bug into a clear failure; no step relies on time passing.
 */
class Journal {
  readonly #arrivals: Arrival[] = []
  readonly #waiters = new Set<() => void>()
  #failure: Error | undefined

  /** Where the next arrival will be: take it before sending. */
  get cursor(): number {
    return this.#arrivals.length
  }

  record(entry: ArrivalInput): void {
    this.#arrivals.push({ ...entry, seq: this.#arrivals.length })
    for (const check of [...this.#waiters]) check()
  }

  /** A connection or instance failed: every wait (current and future) rejects with it. */
  fail(error: Error): void {
    this.#failure ??= error
    for (const check of [...this.#waiters]) check()
  }

  /** The first arrival from `since` on that `pick` accepts. */
  find<T>(since: number, pick: (arrival: Arrival) => T | undefined): T | undefined {
    for (let seq = since; seq < this.#arrivals.length; seq++) {
      const found = pick(this.#arrivals[seq] as Arrival)
      if (found !== undefined) return found
    }
    return undefined
  }

  /** Resolves with the first arrival from `since` on that `pick` accepts, be it there already or still to come. */
  waitFor<T>(what: string, since: number, pick: (arrival: Arrival) => T | undefined): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const check = (): void => {
        if (this.#failure !== undefined) {
          done()
          reject(this.#failure)
          return
        }
        const found = this.find(since, pick)
        if (found === undefined) return
        done()
        resolve(found)
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`timed out after ${WAIT_MS} ms waiting for ${what}`))
      }, WAIT_MS)
      const done = (): void => {
        clearTimeout(timer)
        this.#waiters.delete(check)
      }
      this.#waiters.add(check)
      check()
    })
  }
}

/** Picks a message `service` received on `channel` that passes `where`. */
function received<Name extends Channel>(
  service: Service,
  channel: Name,
  where: (message: MessageOf<Channels, Name>) => boolean,
): (arrival: Arrival) => { seq: number; message: MessageOf<Channels, Name> } | undefined {
  return (arrival) => {
    if (arrival.kind !== 'message' || arrival.service !== service || arrival.message.channel !== channel) return undefined
    const message = arrival.message as MessageOf<Channels, Name>
    return where(message) ? { seq: arrival.seq, message } : undefined
  }
}

/** Picks an `invalid` event `service` got that passes `where`. */
function reported(
  service: Service,
  where: (error: InvalidMessageError) => boolean,
): (arrival: Arrival) => { seq: number; error: InvalidMessageError } | undefined {
  return (arrival) =>
    arrival.kind === 'invalid' && arrival.service === service && where(arrival.error)
      ? { seq: arrival.seq, error: arrival.error }
      : undefined
}

// ---- the transcript ----------------------------------------------------------------------------

const out = (text = ''): void => console.log(text)

/** One aligned transcript line: who, what happened (→ sent, ← received, ✗ rejected, ! invalid, · SQL), where, details. */
function line(actor: string, sign: string, channel: string, detail = ''): void {
  out(`  ${actor.padEnd(7)} ${sign} ${channel.padEnd(13)} ${detail}`.trimEnd())
}

/** A continuation line, under the details column. */
function more(detail: string): void {
  out(`${' '.repeat(26)}${detail}`)
}

const short = (uuid: string): string => uuid.slice(0, 8)
const orderText = (order: Order): string =>
  `order ${short(order.orderId)}  total ${order.total.toFixed(2)}  placedAt Date(${order.placedAt.toISOString()})`
const issueText = (issue: ValidationIssue): string =>
  `${issue.path.length > 0 ? issue.path.map(String).join('.') : '(payload)'}: ${issue.message}`
const seconds = (since: number): string => `${((performance.now() - since) / 1000).toFixed(1)} s`

function check(condition: boolean, failure: string): asserts condition {
  if (!condition) throw new Error(`check failed: ${failure}`)
}

function newOrder(total: number): Order {
  return { orderId: randomUUID(), total, placedAt: new Date() }
}

/** DATABASE_URL for display, without its password. */
function redact(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password !== '') parsed.password = '***'
    return parsed.toString()
  } catch {
    return '(unparsable URL)'
  }
}

// ---- the demo ----------------------------------------------------------------------------------

/** Cleanup steps, run last-in first-out whatever happens. */
type Cleanup = { readonly what: string; readonly run: () => Promise<unknown> }

async function demo(cleanups: Cleanup[]): Promise<string> {
  const defer = (what: string, run: () => Promise<unknown>): void => {
    cleanups.push({ what, run })
  }
  const journal = new Journal()

  // -- a database: DATABASE_URL, else a throwaway embedded server --
  let url = process.env.DATABASE_URL ?? ''
  const shownUrl = redact(url)
  let database = (version: string): string => `PostgreSQL ${version} at DATABASE_URL ${shownUrl}`
  let closed = 'connections closed'
  if (url === '') {
    const starting = performance.now()
    const server = await startPostgres()
    defer('stop the embedded PostgreSQL', () => server.stop())
    url = server.connectionString
    closed = 'connections closed, embedded PostgreSQL stopped'
    const startup = seconds(starting)
    database = (version) => `embedded PostgreSQL ${version} on ${server.host}:${server.port} (started in ${startup})`
  }

  const connect = async (name: string): Promise<pg.Client> => {
    const client = new pg.Client({
      connectionString: url,
      connectionTimeoutMillis: 10_000,
      application_name: `typed-pg-ipc demo ${name}`,
    })
    client.on('error', (error) => journal.fail(new Error(`the ${name} connection failed: ${error.message}`, { cause: error })))
    await client.connect()
    defer(`close the ${name} connection`, () => client.end())
    return client
  }

  // -- two services, each on its own connection, sharing the channel map --
  const ordersDb = await connect('orders')
  const billingDb = await connect('billing')
  const ordersTx = await connect('orders-tx') // the orders service's transactions (a pool client in real life)
  const sqlDb = await connect('sql') // plain SQL, no library: psql, a trigger, a service in another language

  const orders = channels.attach(ordersDb, { ignoreOwn: true })
  const billing = channels.attach(billingDb, { ignoreOwn: true })
  defer('end the orders instance', () => orders.end())
  defer('end the billing instance', () => billing.end())
  orders.on('error', (error) => journal.fail(error))
  billing.on('error', (error) => journal.fail(error))

  // billing: plain listeners
  billing.on('orderPlaced', (message) => journal.record({ service: 'billing', kind: 'message', message }))
  billing.on('cacheCleared', (message) => journal.record({ service: 'billing', kind: 'message', message }))
  billing.on('invalid', (error) => journal.record({ service: 'billing', kind: 'invalid', error }))

  // orders: a `for await` loop over its inbound channel, stopped by an AbortSignal at the end
  orders.on('invalid', (error) => journal.record({ service: 'orders', kind: 'invalid', error }))
  const stopInvoices = new AbortController()
  const invoices = orders.messages('invoiceSent', { signal: stopInvoices.signal })
  const invoiceLoop = (async () => {
    try {
      for await (const message of invoices) journal.record({ service: 'orders', kind: 'message', message })
    } catch (error) {
      if (!stopInvoices.signal.aborted) journal.fail(error instanceof Error ? error : new Error(String(error)))
    }
  })()
  defer('stop the invoiceSent loop', async () => {
    stopInvoices.abort()
    await invoiceLoop
  })

  // LISTEN is active on the server: from here on, nothing sent is missed.
  await Promise.all([billing.listening('orderPlaced'), billing.listening('cacheCleared'), orders.listening('invoiceSent')])

  // Backend pids: every message carries its sender's, which is how the checks below tell senders apart.
  const pid = async (client: pg.Client): Promise<number> =>
    (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid ?? -1
  const ordersPid = await pid(ordersDb)
  const billingPid = await pid(billingDb)
  const ordersTxPid = await pid(ordersTx)
  const sqlPid = await pid(sqlDb)
  const names = new Map([
    [ordersPid, 'orders'],
    [billingPid, 'billing'],
    [ordersTxPid, 'orders'],
    [sqlPid, 'sql'],
  ])
  const who = (processId: number): string => names.get(processId) ?? `pid ${processId}`
  const version = (await sqlDb.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version ?? '?'

  out('typed-pg-ipc demo: two services, one channel map, PostgreSQL LISTEN/NOTIFY')
  out(`  database  ${database(version)}`)
  out(`  orders    pid ${ordersPid}  sends orderPlaced, reads invoiceSent with messages(); pid ${ordersTxPid} for transactions`)
  out(`  billing   pid ${billingPid}  listens to orderPlaced and cacheCleared, sends invoiceSent`)
  out(`  sql       pid ${sqlPid}  plain SQL through pg, no library`)

  // ---- 1 ----
  out()
  out('1. Typed messages flow both ways')
  const first = newOrder(42.5)
  let since = journal.cursor
  await orders.notify('orderPlaced', first)
  line('orders', '→', 'orderPlaced', orderText(first))
  const placed = await journal.waitFor(
    'billing to receive the first order',
    since,
    received('billing', 'orderPlaced', (message) => message.payload.orderId === first.orderId),
  )
  const placedAt: unknown = placed.message.payload.placedAt
  check(placedAt instanceof Date && placedAt.getTime() === first.placedAt.getTime(), 'placedAt arrives as the same Date')
  more(`on the wire: ${placed.message.rawPayload}`)
  line('billing', '←', 'orderPlaced', `${orderText(placed.message.payload)}  (a Date again)`)

  const invoice = { orderId: first.orderId, invoiceNo: 'INV-1001' }
  since = journal.cursor
  await billing.notify('invoiceSent', invoice)
  line('billing', '→', 'invoiceSent', `invoice ${invoice.invoiceNo} for order ${short(invoice.orderId)}`)
  const invoiced = await journal.waitFor(
    'orders to receive the invoice',
    since,
    received('orders', 'invoiceSent', (message) => message.payload.orderId === first.orderId),
  )
  line(
    'orders',
    '←',
    'invoiceSent',
    `invoice ${invoiced.message.payload.invoiceNo} for order ${short(invoiced.message.payload.orderId)}`,
  )

  since = journal.cursor
  await orders.notify('cacheCleared')
  line('orders', '→', 'cacheCleared', "no payload: notify('cacheCleared')")
  const cleared = await journal.waitFor(
    'billing to receive cacheCleared',
    since,
    received('billing', 'cacheCleared', (message) => message.processId === ordersPid),
  )
  check(cleared.message.payload === undefined, 'cacheCleared has no payload')
  line('billing', '←', 'cacheCleared', `payload ${String(cleared.message.payload)} (raw payload "${cleared.message.rawPayload}")`)

  // ---- 2 ----
  out()
  out('2. An invalid payload is rejected before anything is sent')
  // Well typed, so the compiler lets it through; the schema does not.
  const bad: Order = { orderId: 'not-a-uuid', total: -5, placedAt: new Date() }
  since = journal.cursor
  const rejection = await orders.notify('orderPlaced', bad).then(
    () => undefined,
    (error: unknown) => error,
  )
  check(rejection instanceof InvalidPayloadError, `notify rejects with InvalidPayloadError (got ${String(rejection)})`)
  line('orders', '✗', 'orderPlaced', "notify('orderPlaced', { orderId: 'not-a-uuid', total: -5, placedAt: new Date() })")
  more(`${rejection.name} (${rejection.code}), ${rejection.issues.length} issues:`)
  for (const issue of rejection.issues) more(`  ${issueText(issue)}`)

  // One session's notifications arrive in the order it sent them: had the bad one been sent,
  // billing would get it (as a message or as `invalid`) before this follow-up.
  const followUp = newOrder(19.99)
  await orders.notify('orderPlaced', followUp)
  line('orders', '→', 'orderPlaced', `${orderText(followUp)}  (valid follow-up)`)
  const followed = await journal.waitFor(
    'billing to receive the follow-up order',
    since,
    received('billing', 'orderPlaced', (message) => message.payload.orderId === followUp.orderId),
  )
  const leaked = journal.find(since, (arrival) =>
    arrival.seq < followed.seq &&
    arrival.service === 'billing' &&
    (arrival.kind === 'message' ? arrival.message.processId : arrival.error.processId) === ordersPid
      ? arrival
      : undefined,
  )
  check(leaked === undefined, 'billing received nothing from orders before the follow-up')
  line(
    'billing',
    '←',
    'orderPlaced',
    `order ${short(followUp.orderId)} is the next thing from orders: the rejected one was never sent`,
  )

  // ---- 3 ----
  out()
  out("3. Malformed notifications from plain SQL are reported as 'invalid'; the consumer keeps going")
  since = journal.cursor
  const notJson = "SELECT pg_notify('orderPlaced', 'not json')"
  await sqlDb.query(notJson)
  line('sql', '→', 'orderPlaced', notJson)
  const garbage = await journal.waitFor(
    "billing's 'invalid' event for the text that is not JSON",
    since,
    reported('billing', (error) => error.processId === sqlPid && error.rawPayload === 'not json'),
  )
  const cause = garbage.error.cause instanceof Error ? garbage.error.cause.message : String(garbage.error.cause)
  check(garbage.error.issues.length === 0 && garbage.error.cause instanceof SyntaxError, 'not JSON: a SyntaxError, no issues')
  line('billing', '!', 'invalid', `${garbage.error.name} from ${who(garbage.error.processId)}: not JSON (${cause})`)

  const wrongShape = JSON.stringify({ orderId: 42, total: 'lots' })
  const wrongShapeSql = `SELECT pg_notify('orderPlaced', '${wrongShape}')`
  await sqlDb.query(wrongShapeSql)
  line('sql', '→', 'orderPlaced', wrongShapeSql)
  const misshapen = await journal.waitFor(
    "billing's 'invalid' event for the wrong shape",
    since,
    reported('billing', (error) => error.processId === sqlPid && error.rawPayload === wrongShape),
  )
  check(misshapen.error.issues.length > 0, 'the wrong shape comes with zod issues')
  line(
    'billing',
    '!',
    'invalid',
    `${misshapen.error.name} from ${who(misshapen.error.processId)}: ${misshapen.error.issues.length} issues:`,
  )
  for (const issue of misshapen.error.issues) more(`  ${issueText(issue)}`)

  const third = newOrder(7.25)
  await orders.notify('orderPlaced', third)
  line('orders', '→', 'orderPlaced', orderText(third))
  await journal.waitFor(
    'billing to receive the order after the malformed ones',
    since,
    received('billing', 'orderPlaced', (message) => message.payload.orderId === third.orderId),
  )
  const seenBad = journal.find(
    since,
    received('billing', 'orderPlaced', (message) => message.processId === sqlPid),
  )
  check(seenBad === undefined, "billing's orderPlaced listener never saw the malformed notifications")
  line('billing', '←', 'orderPlaced', `order ${short(third.orderId)}: still running, and its listener never saw the bad ones`)

  // ---- 4 ----
  out()
  out('4. notifyQuery in a transaction: delivered at COMMIT, never after ROLLBACK')
  // The marker goes through the same server queue from another connection. Notifications are
  // delivered in commit order, so the marker arriving while the order has not proves the order is
  // held back by its open transaction.
  const marker = "SELECT pg_notify('cacheCleared', '')"
  const markerFromSql = received('billing', 'cacheCleared', (message) => message.processId === sqlPid)

  const committed = newOrder(99)
  const isCommitted = received('billing', 'orderPlaced', (message) => message.payload.orderId === committed.orderId)
  since = journal.cursor
  await ordersTx.query('BEGIN')
  line('orders', '·', 'BEGIN')
  await ordersTx.query(channels.notifyQuery('orderPlaced', committed))
  line('orders', '→', 'orderPlaced', `${orderText(committed)}  (notifyQuery)`)
  await sqlDb.query(marker)
  line('sql', '→', 'cacheCleared', `${marker}  (marker)`)
  const firstMarker = await journal.waitFor('the marker before COMMIT', since, markerFromSql)
  check(journal.find(since, isCommitted) === undefined, 'the order did not arrive before COMMIT')
  line('billing', '←', 'cacheCleared', `marker arrived; order ${short(committed.orderId)} has not (not committed yet)`)
  await ordersTx.query('COMMIT')
  line('orders', '·', 'COMMIT')
  const delivered = await journal.waitFor('the order after COMMIT', since, isCommitted)
  check(delivered.seq > firstMarker.seq, 'the order arrived after the marker')
  line('billing', '←', 'orderPlaced', `${orderText(delivered.message.payload)}  (at COMMIT)`)

  const rolledBack = newOrder(500)
  since = journal.cursor
  await ordersTx.query('BEGIN')
  line('orders', '·', 'BEGIN')
  await ordersTx.query(channels.notifyQuery('orderPlaced', rolledBack))
  line('orders', '→', 'orderPlaced', `${orderText(rolledBack)}  (notifyQuery)`)
  await ordersTx.query('ROLLBACK')
  line('orders', '·', 'ROLLBACK')
  await sqlDb.query(marker)
  line('sql', '→', 'cacheCleared', `${marker}  (marker)`)
  await journal.waitFor('the marker after ROLLBACK', since, markerFromSql)
  check(
    journal.find(
      since,
      received('billing', 'orderPlaced', (message) => message.payload.orderId === rolledBack.orderId),
    ) === undefined,
    'the rolled-back order never arrives',
  )
  line('billing', '←', 'cacheCleared', `marker arrived; order ${short(rolledBack.orderId)} never will (rolled back)`)

  return closed
}

async function main(): Promise<void> {
  const started = performance.now()
  const cleanups: Cleanup[] = []
  let ok = true
  let summary = ''
  try {
    summary = await demo(cleanups)
  } catch (error) {
    ok = false
    console.error(`\ndemo failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
  } finally {
    for (const { what, run } of cleanups.reverse()) {
      try {
        await run()
      } catch (error) {
        ok = false
        console.error(`cleanup failed (${what}): ${error instanceof Error ? error.message : String(error)}`)
      }
    }
  }
  if (ok) {
    out()
    out(`All 4 steps OK in ${seconds(started)}; ${summary}.`)
  }
  process.exitCode = ok ? 0 : 1
  // Everything is closed now, so node exits by itself. If something were still open, this timer
  // (which does not keep node alive) turns the leak into a failure instead of a hang.
  setTimeout(() => {
    console.error('demo: something is still running after cleanup; exiting with failure')
    process.exit(1)
  }, 5_000).unref()
}

await main()
