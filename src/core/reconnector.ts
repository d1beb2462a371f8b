import { ConnectionLostError, HookError, UnsupportedSetupError, messageOf } from '../errors/index.js'
import { destroySocket, enableKeepAlive, quoteIdentifier, type PgClient, type PgNotification } from '../pg/client.js'
import { NOTIFY_SQL } from '../pg/sql.js'

/** A node-postgres client config (`new pg.Client(config)`): a connection string or an object. */
export type PgClientConfig = string | Readonly<Record<string, unknown>>

/** Backoff between connection attempts: exponential, with jitter. */
export interface RetryOptions {
  /** Delay before the second attempt. Default 100 ms. */
  readonly initialDelayMs?: number | undefined
  /** Largest delay between attempts. Default 10 000 ms. */
  readonly maxDelayMs?: number | undefined
  /** Growth per attempt. Default 2. */
  readonly factor?: number | undefined
  /** Attempts per outage before giving up (an `error`, then the instance ends). Default: never give up. */
  readonly maxAttempts?: number | undefined
}

/** Detects a connection that no longer answers (a dead peer does not always say so). */
export interface HealthCheckOptions {
  /** How often to send a lightweight query when connected. Default 5 000 ms. */
  readonly intervalMs?: number | undefined
  /** How long the query may take before the connection counts as dead. Default 2 000 ms. */
  readonly timeoutMs?: number | undefined
}

/** What `notify` does while there is no connection. */
export interface WhileDisconnectedOptions {
  /** How long a notification waits for a connection before it is rejected. Default 5 000 ms. */
  readonly maxWaitMs?: number | undefined
  /** How many notifications may wait; more are rejected at once. Default 1 000. */
  readonly maxQueued?: number | undefined
}

/** Passed to `onConnect` and with the `connect` and `reconnect` events. */
export interface ConnectInfo {
  /** False for the first connection, true after an outage. */
  readonly reconnected: boolean
  /** Connection attempts it took (1 when the first try worked). */
  readonly attempts: number
  /** How long there was no connection (0 for the first connection). */
  readonly downtimeMs: number
  /** Backend pid of the new connection. */
  readonly processId: number
}

/** The reconnecting mode: the library owns the connection and replaces it when it is lost. */
export interface ReconnectOptions {
  /** How to make a connection: a function returning a new (connected or not) `pg.Client`, or a pg client config. */
  readonly connect: (() => PgClient | Promise<PgClient>) | PgClientConfig
  /** Options, not a client or a pool (a `pg.Pool` has `connect` too, and would fit otherwise). */
  readonly query?: never
  readonly retry?: RetryOptions | undefined
  /** `false` turns the periodic check off (TCP keepalive stays on). */
  readonly healthCheck?: HealthCheckOptions | false | undefined
  /**
   * Runs after every (re)connection, once every channel with listeners is LISTENed again and before
   * `connect`/`reconnect` is emitted: re-read here the state that may have changed meanwhile.
   */
  readonly onConnect?: ((info: ConnectInfo) => void | Promise<void>) | undefined
  readonly whileDisconnected?: WhileDisconnectedOptions | undefined
  /** How long a new connection may take to open. Default 10 000 ms. */
  readonly connectTimeoutMs?: number | undefined
  /**
   * How long to wait for a self-addressed probe notification when the connection looks pooled
   * (its backend pid differs from the one the server reported at start-up). Default 2 000 ms.
   */
  readonly probeTimeoutMs?: number | undefined
}

/** True when `value` is options for the reconnecting mode rather than a pg client. */
export function isReconnectOptions(value: unknown): value is ReconnectOptions {
  return (
    typeof value === 'object' && value !== null && 'connect' in value && typeof (value as { query?: unknown }).query !== 'function'
  )
}

/** What the reconnector drives. */
export interface ReconnectHost {
  /** A fresh connection is up: LISTEN every channel; resolves when all are active. */
  attach(client: PgClient, processId: number): Promise<void>
  /** The hook ran; emit `connect` or `reconnect`. */
  connected(info: ConnectInfo): void
  /** The connection was lost; a new one is being made. */
  lost(error: ConnectionLostError): void
  /** Something the user must hear about (an unsupported setup, a failing onConnect hook). */
  report(error: Error): void
  /** Gave up after `retry.maxAttempts`. */
  gaveUp(error: ConnectionLostError): void
}

/** Destroys a client we own (and give up on): for a connection that stopped answering. */
export function destroyClient(client: PgClient): void {
  // pg reports the destroyed socket as an 'error'; nobody needs it, and unheard it would crash.
  client.on('error', () => undefined)
  destroySocket(client)
}

let probeCounter = 0

/**
 * Owns the connection of the reconnecting mode: opens it, watches it (errors, end, a periodic
 * query with a timeout, TCP keepalive), and on loss opens a new one after an exponential backoff with
 * jitter, until `end()`.
 */
export class Reconnector {
  readonly #options: ReconnectOptions
  readonly #host: ReconnectHost
  #stopped = false
  #client: PgClient | undefined
  #wake: (() => void) | undefined
  #timer: NodeJS.Timeout | undefined
  #loop: Promise<void> | undefined
  /** A client still opening: destroyed by stop() so it cannot outlive the instance. */
  #opening: PgClient | undefined
  #ping: (() => Promise<unknown>) | undefined

  constructor(options: ReconnectOptions, host: ReconnectHost) {
    this.#options = options
    this.#host = host
  }

  /** The live connection, if any. */
  get client(): PgClient | undefined {
    return this.#client
  }

  /** Called by the host once its hub can run queries on the connection (for the health check). */
  setPing(ping: () => Promise<unknown>): void {
    this.#ping = ping
  }

  start(): void {
    this.#loop ??= this.#run()
  }

  /** Stops everything: no timer, socket or pending attempt is left. */
  async stop(): Promise<void> {
    this.#stopped = true
    this.#wake?.()
    if (this.#opening !== undefined) destroyClient(this.#opening)
    const client = this.#client
    this.#client = undefined
    if (client !== undefined) await closeClient(client)
    await this.#loop
  }

  async #run(): Promise<void> {
    const retry = this.#options.retry ?? {}
    const maxAttempts = retry.maxAttempts ?? Number.POSITIVE_INFINITY
    let attempts = 0
    let connectedOnce = false
    let downSince: number | undefined
    while (!this.#stopped) {
      attempts++
      let client: PgClient | undefined
      try {
        client = await this.#open()
        // From here stop() closes it, whatever step it interrupts.
        this.#client = client
        if (this.#stopped) break
        const processId = await this.#checkSetup(client)
        if (this.#stopped) break
        const lost = this.#watch(client)
        await Promise.race([this.#host.attach(client, processId), lost.then((error) => Promise.reject(error))])
        const info: ConnectInfo = {
          reconnected: connectedOnce,
          attempts,
          downtimeMs: connectedOnce && downSince !== undefined ? Date.now() - downSince : 0,
          processId,
        }
        if (this.#options.onConnect !== undefined) {
          try {
            await Promise.race([this.#options.onConnect(info), lost.then((error) => Promise.reject(error))])
          } catch (error) {
            if (error instanceof ConnectionLostError) throw error
            // The connection is fine; the hook is the user's code. Report it, keep listening.
            this.#host.report(new HookError(error))
          }
        }
        if (this.#stopped) break
        connectedOnce = true
        this.#host.connected(info)
        attempts = 0
        const error = await lost
        if (this.#stopped) break
        downSince = Date.now()
        this.#client = undefined
        destroyClient(client)
        this.#host.lost(error)
      } catch (error) {
        if (client !== undefined) destroyClient(client)
        this.#client = undefined
        if (this.#stopped) break
        downSince ??= Date.now()
        if (error instanceof UnsupportedSetupError) this.#host.report(error)
        if (attempts >= maxAttempts) {
          this.#host.gaveUp(
            new ConnectionLostError(
              `Gave up connecting to PostgreSQL after ${attempts} attempts (last error: ${messageOf(error)}). Check the server and the connection settings.`,
              error,
            ),
          )
          return
        }
        await this.#sleep(this.#delay(attempts))
      }
    }
  }

  #delay(attempts: number): number {
    const retry = this.#options.retry ?? {}
    const initial = retry.initialDelayMs ?? 100
    const max = retry.maxDelayMs ?? 10_000
    const factor = retry.factor ?? 2
    const base = Math.min(max, initial * factor ** Math.max(0, attempts - 1))
    // "Equal jitter": half fixed, half random, so clients restarted together spread out.
    return base / 2 + Math.random() * (base / 2)
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(this.#timer)
        this.#timer = undefined
        this.#wake = undefined
        resolve()
      }
      this.#timer = setTimeout(done, ms)
      this.#wake = done
    })
  }

  async #open(): Promise<PgClient> {
    const { connect } = this.#options
    const client: PgClient =
      typeof connect === 'function'
        ? await connect()
        : new (await import('pg')).default.Client({
            keepAlive: true,
            keepAliveInitialDelayMillis: 10_000,
            ...(typeof connect === 'string' ? { connectionString: connect } : connect),
          })
    if (this.#stopped) {
      // end() came while the factory was running: never let its client connect.
      await closeClient(client)
      throw new ConnectionLostError('The instance ended while connecting.')
    }
    const state = client as unknown as { _connected?: boolean; _connecting?: boolean }
    if (state._connected !== true) {
      const timeoutMs = this.#options.connectTimeoutMs ?? 10_000
      let timer: NodeJS.Timeout | undefined
      const connecting = (client as unknown as { connect(): Promise<unknown> }).connect()
      this.#opening = client
      try {
        await Promise.race([
          connecting,
          new Promise((_, reject) => {
            timer = setTimeout(() => {
              destroyClient(client)
              reject(new Error(`connecting took longer than ${timeoutMs} ms`))
            }, timeoutMs)
          }),
        ])
      } catch (error) {
        connecting.catch(() => undefined)
        client.on('error', () => undefined) // a late error of an abandoned client must not crash
        throw error
      } finally {
        clearTimeout(timer)
        this.#opening = undefined
      }
    }
    enableKeepAlive(client, 10_000)
    return client
  }

  /** LISTEN cannot work on a standby or through a transaction-mode pooler: tell, loudly. */
  /** Returns the backend pid, the one notifications from this connection carry. */
  async #checkSetup(client: PgClient): Promise<number> {
    const { rows } = await client.query({
      text: 'SELECT pg_catalog.pg_is_in_recovery() AS standby, pg_catalog.pg_backend_pid() AS pid',
    })
    const row = rows[0] ?? {}
    const pid = Number(row.pid)
    if (row.standby === true) throw new UnsupportedSetupError('standby')
    // Directly connected, the pid the server announced at start-up is this backend's own. Through a
    // pooler it differs (the pooler makes one up); then check that a notification sent to
    // ourselves comes back.
    if (pid !== client.processID) await this.#probe(client)
    return pid
  }

  async #probe(client: PgClient): Promise<void> {
    const channel = `typed_pg_ipc_probe_${process.pid}_${++probeCounter}`
    const token = `${Date.now()}-${Math.random()}`
    const timeoutMs = this.#options.probeTimeoutMs ?? 2_000
    let onNotification: ((message: PgNotification) => void) | undefined
    let timer: NodeJS.Timeout | undefined
    const arrived = new Promise<boolean>((resolve) => {
      onNotification = (message) => {
        if (message.channel === channel && message.payload === token) resolve(true)
      }
      client.on('notification', onNotification)
      timer = setTimeout(() => resolve(false), timeoutMs)
    })
    try {
      await client.query({ text: `LISTEN ${quoteIdentifier(channel)}` })
      // Sent from a second connection: a pooler in transaction mode hands our own NOTIFY's answer
      // straight back, but not one that another connection sends while we sit idle.
      const sender = await this.#open()
      try {
        await sender.query({ text: NOTIFY_SQL, values: [channel, token] })
      } finally {
        await closeClient(sender)
      }
      if (!(await arrived)) throw new UnsupportedSetupError('pooler')
      await client.query({ text: `UNLISTEN ${quoteIdentifier(channel)}` })
    } finally {
      clearTimeout(timer)
      if (onNotification !== undefined) client.off('notification', onNotification)
    }
  }

  /** Resolves with the reason once the connection is lost; runs the health check meanwhile. */
  #watch(client: PgClient): Promise<ConnectionLostError> {
    return new Promise((resolve) => {
      const check = this.#options.healthCheck === false ? undefined : (this.#options.healthCheck ?? {})
      let interval: NodeJS.Timeout | undefined
      const finish = (error: ConnectionLostError): void => {
        clearInterval(interval)
        client.off('error', onError)
        client.off('end', onEnd)
        client.on('error', () => undefined) // the dead client may still report; nobody needs it
        resolve(error)
      }
      const onError = (error: Error): void =>
        finish(new ConnectionLostError(`The PostgreSQL connection failed: ${messageOf(error)}.`, error))
      const onEnd = (): void => finish(new ConnectionLostError('The PostgreSQL connection ended.'))
      client.on('error', onError)
      client.on('end', onEnd)
      if (check !== undefined) {
        const timeoutMs = check.timeoutMs ?? 2_000
        let inFlight = false
        interval = setInterval(() => {
          if (inFlight || this.#ping === undefined) return
          inFlight = true
          const timer = setTimeout(() => {
            finish(new ConnectionLostError(`The PostgreSQL connection did not answer a health check within ${timeoutMs} ms.`))
          }, timeoutMs)
          this.#ping().then(
            () => {
              clearTimeout(timer)
              inFlight = false
            },
            () => {
              clearTimeout(timer)
              inFlight = false
            },
          )
        }, check.intervalMs ?? 5_000)
        interval.unref?.()
      }
    })
  }
}

/** Ends a client politely, or destroys its socket if it does not answer within a second. */
async function closeClient(client: PgClient): Promise<void> {
  client.on('error', () => undefined)
  let timer: NodeJS.Timeout | undefined
  const ending = (client as unknown as { end(): Promise<void> }).end().catch(() => undefined)
  await Promise.race([
    ending,
    new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        destroyClient(client)
        resolve()
      }, 1_000)
    }),
  ])
  clearTimeout(timer)
}
