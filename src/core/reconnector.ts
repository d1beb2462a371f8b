import { ConnectionLostError, EndedError, HookError, UnsupportedSetupError, messageOf } from '../errors/index.js'
import {
  closeClient,
  connectClient,
  destroyClient,
  enableKeepAlive,
  phaseOf,
  rowsOf,
  type PgClient,
  type PgNotification,
} from '../pg/client.js'
import { PING, SETUP_CHECK, listenStatement, notifyStatement, unlistenStatement } from '../pg/sql.js'
import { Hub, type OutagePolicy } from './hub.js'

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
  /** How often to send a lightweight query when the connection has nothing else to do. Default 5 000 ms. */
  readonly intervalMs?: number | undefined
  /**
   * How long a statement of the library's may wait for the server's first word before the connection
   * counts as dead. Only time on the wire counts: work still queued behind a busy connection does not.
   * Default 2 000 ms.
   */
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
    typeof value === 'object' &&
    value !== null &&
    'connect' in value &&
    typeof (value as { query?: unknown }).query !== 'function'
  )
}

/**
 * The manager's states, one at a time:
 *
 * | state       | what happens                                         | next                          |
 * | ----------- | ---------------------------------------------------- | ----------------------------- |
 * | `opening`   | the factory makes a client, it connects (timeout)    | `checking`, or `backoff`      |
 * | `checking`  | not a standby? behind a transaction pooler? (bounded)| `attaching`, or `backoff`     |
 * | `attaching` | the hub takes the client and re-LISTENs; health check| `hook`, or `backoff` on loss  |
 * | `hook`      | `onConnect` runs (its failure is reported, not fatal)| `connected`, or `backoff`     |
 * | `connected` | `connect`/`reconnect` was emitted; health check      | `backoff` on loss             |
 * | `backoff`   | waits an exponential, jittered delay                 | `opening`, or `gave-up`       |
 * | `stopped`   | `end()`: no timer, socket or attempt is left         | (final)                       |
 * | `gave-up`   | `retry.maxAttempts` attempts in a row failed         | (final)                       |
 *
 * A loss once the hub has the client (`attaching`, `hook`, `connected`) is a `disconnect`; a
 * failure before it is only a failed attempt.
 */
export type ManagerState = 'opening' | 'checking' | 'attaching' | 'hook' | 'connected' | 'backoff' | 'stopped' | 'gave-up'

/** Thrown inside the loop when `stop()` interrupts a step. */
class Stopped extends Error {}

let probeCounter = 0

/**
 * Owns the connection of the reconnecting mode: opens it, hands it to the hub, watches it (errors,
 * end, the health check, TCP keepalive), and on loss opens a new one after a backoff, until `stop()`.
 * The hub keeps the queue and the wanted channels across connections, so the instance above sees
 * the same thing whatever the mode.
 */
export class Reconnector {
  readonly hub: Hub
  readonly #options: ReconnectOptions
  #state: ManagerState = 'opening'
  #stop: (() => void) | undefined
  readonly #stopped: Promise<never>
  /** The client of the current attempt, from the factory until it is given up: stop() closes it. */
  #client: PgClient | undefined
  #loop: Promise<void> | undefined
  #backoff: NodeJS.Timeout | undefined

  constructor(options: ReconnectOptions) {
    this.#options = options
    const outage: OutagePolicy = {
      maxWaitMs: options.whileDisconnected?.maxWaitMs ?? 5_000,
      maxQueued: options.whileDisconnected?.maxQueued ?? 1_000,
    }
    this.hub = Hub.detached(outage)
    this.#stopped = new Promise<never>((_, reject) => {
      this.#stop = () => reject(new Stopped('stopped'))
    })
    this.#stopped.catch(() => undefined)
  }

  get state(): ManagerState {
    return this.#state
  }

  start(): void {
    this.#loop ??= this.#run()
  }

  /** Stops everything: waiting notifications are rejected, no timer, socket or pending attempt is left. */
  async stop(): Promise<void> {
    if (this.#state === 'stopped') return this.#loop
    this.#state = 'stopped'
    this.#stop?.()
    clearTimeout(this.#backoff)
    const client = this.#client
    this.#client = undefined
    this.hub.close(
      new EndedError({ action: 'notify', detail: 'the instance ended before a connection was available' }),
      undefined,
    )
    // A connected client is closed politely (the server ends its session); one still connecting is cut off.
    if (client !== undefined) await (phaseOf(client) === 'open' ? closeClient(client) : destroyClient(client))
    await this.#loop
  }

  /** Awaits `promise` unless stop() comes first. */
  #race<Value>(promise: Promise<Value>): Promise<Value> {
    return Promise.race([promise, this.#stopped])
  }

  #enter(state: ManagerState): void {
    if (this.#state === 'stopped') throw new Stopped('stopped')
    this.#state = state
  }

  async #run(): Promise<void> {
    const retry = this.#options.retry ?? {}
    const maxAttempts = retry.maxAttempts ?? Number.POSITIVE_INFINITY
    const maxDelayMs = retry.maxDelayMs ?? 10_000
    /** Connection attempts in this outage: reported in ConnectInfo, bounded by maxAttempts. */
    let attempts = 0
    /** Backoff steps since the last connection that stayed up: a flapping server is not hammered. */
    let level = 0
    let connectedBefore = false
    let downSince: number | undefined
    try {
      for (;;) {
        attempts++
        let client: PgClient | undefined
        try {
          this.#enter('opening')
          client = await this.#open()
          this.#enter('checking')
          const processId = await this.#race(this.#checkSetupWithin(client))
          this.#enter('attaching')
          const lost = new Promise<ConnectionLostError>((resolve) => {
            this.hub.onLost = resolve
          })
          const lostThrows = lost.then((error) => Promise.reject(error))
          lostThrows.catch(() => undefined)
          // The health check runs from the moment the hub has the client: a server that goes
          // silent during the re-LISTEN or onConnect is replaced like one that goes silent later.
          const stopWatching = this.#watch(client)
          let connectedAt: number
          try {
            await this.#race(Promise.race([this.hub.attach(client, processId), lostThrows]))
            // Durable channels read what was stored during the gap, before anyone hears of the reconnect.
            if (connectedBefore) await this.#race(Promise.race([this.hub.catchUp(), lostThrows]))
            this.#enter('hook')
            const info: ConnectInfo = {
              reconnected: connectedBefore,
              attempts,
              downtimeMs: downSince === undefined ? 0 : Date.now() - downSince,
              processId,
            }
            await this.#runHook(info, lostThrows)
            this.#enter('connected')
            connectedBefore = true
            downSince = undefined
            connectedAt = performance.now()
            this.hub.announce(info)
            await this.#race(lost)
          } finally {
            stopWatching()
          }
          this.#giveUpClient(client)
          downSince = Date.now()
          attempts = 0
          // Every new attempt waits a backoff step. Only a connection that stayed up starts the
          // steps over: one that dies young (a server that accepts, then drops) is not retried at
          // once, again and again.
          if (performance.now() - connectedAt >= maxDelayMs) level = 0
        } catch (error) {
          if (error instanceof Stopped) throw error
          // Lost or failed before or while the hub had it: the hub (if it had it) has said 'disconnect'.
          if (client !== undefined) {
            if (this.hub.client === client) this.hub.detach(asLost(error))
            this.#giveUpClient(client)
          }
          downSince ??= Date.now()
          if (error instanceof UnsupportedSetupError) this.hub.report(error)
          if (attempts >= maxAttempts) {
            this.#state = 'gave-up'
            const gaveUp = new ConnectionLostError(
              `Gave up connecting to PostgreSQL after ${attempts} attempts (last error: ${messageOf(error)}). Check the server and the connection settings.`,
              { cause: error },
            )
            this.hub.close(gaveUp, 'gave-up')
            return
          }
        }
        this.#enter('backoff')
        level++
        const delay = this.#delay(level)
        await this.#race(
          new Promise<void>((resolve) => {
            this.#backoff = setTimeout(resolve, delay)
          }),
        )
      }
    } catch (error) {
      if (!(error instanceof Stopped)) throw error
    }
  }

  /** The attempt's client is done with: destroyed (a replacement comes), unless stop() took it already. */
  #giveUpClient(client: PgClient): void {
    if (this.#client !== client) return
    this.#client = undefined
    destroyClient(client)
  }

  async #runHook(info: ConnectInfo, lost: Promise<never>): Promise<void> {
    const hook = this.#options.onConnect
    if (hook === undefined) return
    try {
      await this.#race(Promise.race([Promise.resolve().then(() => hook(info)), lost]))
    } catch (error) {
      if (error instanceof ConnectionLostError || error instanceof Stopped) throw error
      // The connection is fine; the hook is the user's code. Report it, keep listening.
      this.hub.report(new HookError({ cause: error }))
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

  /** A new connected client; `own`: it is the attempt's client, which stop() closes. */
  async #open(own = true): Promise<PgClient> {
    const { connect } = this.#options
    const client: PgClient = await this.#race(
      Promise.resolve().then(async () =>
        typeof connect === 'function'
          ? connect()
          : new (await import('pg')).default.Client({
              keepAlive: true,
              keepAliveInitialDelayMillis: 10_000,
              ...(typeof connect === 'string' ? { connectionString: connect } : connect),
            }),
      ),
    )
    if (own) this.#client = client
    // An abandoned or destroyed client may still report; nobody needs it, and unheard it would crash.
    client.on('error', ignore)
    if (this.#state === 'stopped') throw new Stopped('stopped')
    if (phaseOf(client) !== 'open') {
      const timeoutMs = this.#options.connectTimeoutMs ?? 10_000
      let timer: NodeJS.Timeout | undefined
      const connecting = connectClient(client)
      connecting.catch(ignore)
      try {
        await this.#race(
          Promise.race([
            connecting,
            new Promise((_, reject) => {
              timer = setTimeout(() => reject(new Error(`connecting took longer than ${timeoutMs} ms`)), timeoutMs)
            }),
          ]),
        )
      } catch (error) {
        // Never leave a half-open attempt behind (stop() closes the pending client itself).
        if (!(error instanceof Stopped)) destroyClient(client)
        throw error
      } finally {
        clearTimeout(timer)
      }
    }
    enableKeepAlive(client, 10_000)
    return client
  }

  /** The setup check, within connectTimeoutMs (plus probeTimeoutMs for a pooler probe): a silent server is no server. */
  async #checkSetupWithin(client: PgClient): Promise<number> {
    const limitMs = (this.#options.connectTimeoutMs ?? 10_000) + (this.#options.probeTimeoutMs ?? 2_000)
    let timer: NodeJS.Timeout | undefined
    try {
      return await Promise.race([
        this.#checkSetup(client),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`the setup check got no answer within ${limitMs} ms`)), limitMs)
        }),
      ])
    } finally {
      clearTimeout(timer)
    }
  }

  /** LISTEN cannot work on a standby or through a transaction-mode pooler: tell, loudly. Returns the backend pid. */
  async #checkSetup(client: PgClient): Promise<number> {
    const [standby, pid] = (await rowsOf(client, SETUP_CHECK))[0] ?? []
    if (standby === 'true') throw new UnsupportedSetupError({ setup: 'standby' })
    // Directly connected, the pid the server announced at start-up is this backend's own. Through a
    // pooler it differs (the pooler makes one up); then check that a notification sent to
    // ourselves comes back.
    const processId = Number(pid)
    if (processId !== client.processID) await this.#probe(client)
    return processId
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
      await rowsOf(client, listenStatement(channel))
      // Sent from a second connection: a pooler in transaction mode hands our own NOTIFY's answer
      // straight back, but not one that another connection sends while we sit idle.
      const sender = await this.#open(false)
      try {
        await rowsOf(sender, notifyStatement(channel, token))
      } finally {
        await closeClient(sender)
      }
      if (!(await arrived)) throw new UnsupportedSetupError({ setup: 'pooler' })
      await rowsOf(client, unlistenStatement(channel))
    } finally {
      clearTimeout(timer)
      if (onNotification !== undefined) client.off('notification', onNotification)
    }
  }

  /**
   * The health check while connected: when the hub has nothing to do, a ping every `intervalMs`;
   * whenever a statement of the library's waits on the wire for more than `timeoutMs` without a word
   * from the server, the connection is replaced. Work queued behind a busy connection does not
   * count: only silence from the server does.
   */
  #watch(client: PgClient): () => void {
    const check = this.#options.healthCheck === false ? undefined : (this.#options.healthCheck ?? {})
    if (check === undefined) return ignore
    const timeoutMs = check.timeoutMs ?? 2_000
    const ping = setInterval(() => {
      if (this.hub.idle) this.hub.query(PING).catch(ignore)
    }, check.intervalMs ?? 5_000)
    const watch = setInterval(
      () => {
        if (this.hub.stalledMs() <= timeoutMs || this.hub.client !== client) return
        this.hub.detach(
          new ConnectionLostError(
            `The PostgreSQL connection did not answer a health check within ${timeoutMs} ms; replacing it.`,
          ),
        )
      },
      Math.max(10, Math.min(timeoutMs / 4, 1_000)),
    )
    ping.unref()
    watch.unref()
    return () => {
      clearInterval(ping)
      clearInterval(watch)
    }
  }
}

function asLost(error: unknown): ConnectionLostError {
  return error instanceof ConnectionLostError
    ? error
    : new ConnectionLostError(`The PostgreSQL connection failed while it was being set up: ${messageOf(error)}.`, {
        cause: error,
      })
}

function ignore(): void {}
