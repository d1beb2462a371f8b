import {
  ConnectionLostError,
  NotifyOutcomeUnknownError,
  QueryFailedError,
  messageOf,
  type PgIpcError,
} from '../errors/index.js'
import {
  inTransaction,
  isClosedByUser,
  isConnected,
  isConnecting,
  isIdle,
  isUnusable,
  quoteIdentifier,
  type PgClient,
  type PgNotification,
} from '../pg/client.js'
import { MultiTransaction, type MultiTransactionResult, type TransactionGroup } from '../pg/multi-transaction.js'
import { NOTIFY_MANY_SQL, NOTIFY_SQL } from '../pg/sql.js'
import { decodeCorePayload } from '../wire/core-payload.js'
import type { Message } from './message.js'

/** What the hub calls back on each instance that shares its client. */
export interface HubMember {
  /** The LISTEN this member asked for is active on the server. */
  hubListened(channel: string): void
  /** This member's UNLISTEN request was handled (the server stops only if no member needs it). */
  hubUnlistened(channel: string): void
  /** A notification arrived on a channel. */
  hubDeliver(message: Message): void
  /** A LISTEN or UNLISTEN for this member failed on the server. */
  hubFailed(error: PgIpcError): void
  /** The connection is gone; `error` is undefined when the user closed the client on purpose. */
  hubLost(error: ConnectionLostError | undefined): void
}

interface IntentJob {
  readonly kind: 'listen' | 'unlisten'
  readonly channel: string
  readonly member: HubMember
}

interface NotifyJob {
  readonly kind: 'notify'
  readonly channel: string
  readonly payload: string
  /** Set after a batch failed: send alone so one bad message cannot fail the others. */
  solo: boolean
  /** Called once: with undefined when the server accepted it. */
  readonly settle: (error: PgIpcError | undefined) => void
}

interface ReleaseJob {
  readonly kind: 'release'
  readonly channels: readonly string[]
  readonly member: HubMember
  readonly done: () => void
}

interface QueryJob {
  readonly kind: 'query'
  /** `undefined`: a barrier, resolved when every job queued before it has run. */
  readonly text: string | undefined
  readonly resolve: (rows: readonly Record<string, unknown>[]) => void
  readonly reject: (error: unknown) => void
}

type Job = IntentJob | NotifyJob | ReleaseJob | QueryJob

/** Most notifications sent in one round trip; keeps statements far below any server limit. */
const MAX_BATCH = 1_000
/** Most payload characters in one round trip. */
const MAX_BATCH_CHARS = 1_000_000
/** Most transactions (groups of distinct pairs) in one round trip. */
const MAX_GROUPS = 100

/** The statement for one group: one notification plainly, several as one JSON parameter. */
function groupStatement(group: readonly NotifyJob[]): TransactionGroup {
  const [only] = group
  if (group.length === 1 && only !== undefined) return { text: NOTIFY_SQL, values: [only.channel, only.payload] }
  return { text: NOTIFY_MANY_SQL, values: [JSON.stringify(group.map((job) => [job.channel, job.payload]))] }
}


const hubs = new WeakMap<PgClient, ClientHub>()

/**
 * Everything that belongs to one pg client rather than to one instance: the single
 * `notification` listener (so a payload is decoded once however many instances share the client),
 * the LISTEN reference count across instances, and one serial queue of commands, so the library
 * never has two queries waiting in pg's queue (pg 8.x warns about that) and never runs LISTEN
 * inside the user's transaction.
 */
export class ClientHub {
  /** The hub for a client, created on first use. */
  static for(client: PgClient): ClientHub {
    let hub = hubs.get(client)
    if (hub === undefined) {
      hub = new ClientHub(client)
      hubs.set(client, hub)
    }
    return hub
  }

  readonly client: PgClient
  readonly #members = new Set<HubMember>()
  /** channel -> members that have listeners on it */
  readonly #wanted = new Map<string, Set<HubMember>>()
  /** channels this hub has LISTENed on the server */
  readonly #serverListening = new Set<string>()
  readonly #queue: Job[] = []
  #running = false
  #scheduled = false
  #dead = false
  #bound = false

  readonly #onNotification = (notification: PgNotification): void => this.#dispatch(notification)
  readonly #onReady = (): void => this.#kick()
  readonly #onError = (error: Error): void => {
    this.#lose(
      new ConnectionLostError(
        `The PostgreSQL connection failed: ${messageOf(error)}. Listeners on it receive nothing more; connect a new client (or use the reconnecting mode).`,
        error,
      ),
    )
  }
  readonly #onEnd = (): void => {
    if (this.#dead) return
    if (isClosedByUser(this.client)) {
      this.#lose(undefined)
    } else {
      this.#lose(
        new ConnectionLostError(
          'The PostgreSQL connection ended unexpectedly. Listeners on it receive nothing more; connect a new client (or use the reconnecting mode).',
        ),
      )
    }
  }

  private constructor(client: PgClient) {
    this.client = client
  }

  /**
   * Backend pid of the connection, once connected: what its notifications carry. Behind a pooler
   * `client.processID` is made up by the pooler; the reconnecting mode sets the real one.
   */
  get processId(): number | undefined {
    return this.backendPid ?? this.client.processID ?? undefined
  }

  backendPid: number | undefined

  get dead(): boolean {
    return this.#dead || isUnusable(this.client)
  }

  join(member: HubMember): void {
    this.#members.add(member)
    if (!this.#bound) {
      this.#bound = true
      this.client.on('notification', this.#onNotification)
      this.client.on('connect', this.#onReady)
      this.client.on('drain', this.#onReady)
      this.client.on('error', this.#onError)
      this.client.on('end', this.#onEnd)
    }
  }

  /** Forgets a member; the last one to leave removes every listener the hub put on the client. */
  leave(member: HubMember): void {
    this.#members.delete(member)
    if (this.#members.size > 0 || this.#queue.length > 0 || this.#running) return
    this.#unbind()
  }

  #unbind(): void {
    if (!this.#bound) return
    this.#bound = false
    this.client.off('notification', this.#onNotification)
    this.client.off('connect', this.#onReady)
    this.client.off('drain', this.#onReady)
    this.client.off('error', this.#onError)
    this.client.off('end', this.#onEnd)
    if (hubs.get(this.client) === this) hubs.delete(this.client)
  }

  /** `member` now has listeners on `channel`. */
  want(member: HubMember, channel: string): void {
    let members = this.#wanted.get(channel)
    if (members === undefined) {
      members = new Set()
      this.#wanted.set(channel, members)
    }
    members.add(member)
    this.#enqueue({ kind: 'listen', channel, member })
  }

  /** `member` no longer has listeners on `channel`. */
  unwant(member: HubMember, channel: string): void {
    this.#forget(member, channel)
    this.#enqueue({ kind: 'unlisten', channel, member })
  }

  /** Sends one notification; resolves when the server accepted it. */
  notify(channel: string, payload: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.send(channel, payload, (error) => (error === undefined ? resolve() : reject(error)))
    })
  }

  /**
   * Sends one notification; `settle` is called once, never synchronously, with undefined when the
   * server accepted it. (No promise per message: the core's hot path.)
   */
  send(channel: string, payload: string, settle: (error: PgIpcError | undefined) => void): void {
    if (this.dead) {
      const error = new ConnectionLostError(
        `Cannot notify channel "${channel}": the PostgreSQL connection is closed. Connect a new client (or use the reconnecting mode).`,
        undefined,
        channel,
        true,
      )
      queueMicrotask(() => settle(error))
      return
    }
    this.#enqueue({ kind: 'notify', channel, payload, solo: false, settle })
  }

  /** Runs a statement of the library's own (health check, queue usage) in the hub's queue. */
  query(text: string | undefined): Promise<readonly Record<string, unknown>[]> {
    if (this.dead) return Promise.reject(new ConnectionLostError('The PostgreSQL connection is closed.'))
    return new Promise((resolve, reject) => this.#enqueue({ kind: 'query', text, resolve, reject }))
  }

  /**
   * Drops every channel of an ending member, UNLISTENing those no other member needs. Resolves
   * after the notifications queued before it settled; never rejects.
   */
  release(member: HubMember, channels: Iterable<string>): Promise<void> {
    const list = new Set(channels)
    for (const channel of list) this.#forget(member, channel)
    // Intents of this member that have not run yet no longer matter; the channels they would
    // have UNLISTENed are released here instead.
    for (let index = this.#queue.length - 1; index >= 0; index--) {
      const job = this.#queue[index]
      if (job !== undefined && (job.kind === 'listen' || job.kind === 'unlisten') && job.member === member) {
        this.#queue.splice(index, 1)
        if (job.kind === 'unlisten') list.add(job.channel)
      }
    }
    if (this.dead || (!isConnected(this.client) && !isConnecting(this.client))) {
      // Never connected, or already gone: the server holds nothing for us. (Notifications queued
      // on a client that was never connected stay queued: they go out if it connects later.)
      return Promise.resolve()
    }
    return new Promise<void>((resolve) => {
      this.#enqueue({ kind: 'release', channels: [...list], member, done: resolve })
    })
  }

  #forget(member: HubMember, channel: string): void {
    const members = this.#wanted.get(channel)
    if (members === undefined) return
    members.delete(member)
    if (members.size === 0) this.#wanted.delete(channel)
  }

  #enqueue(job: Job): void {
    this.#queue.push(job)
    this.#kick()
  }

  #kick(): void {
    if (this.#running || this.#queue.length === 0 || this.#scheduled) return
    // Never run (and so never emit) inside the user's on()/off()/notify() call.
    this.#scheduled = true
    queueMicrotask(() => {
      this.#scheduled = false
      if (!this.#running) void this.#run()
    })
  }

  async #run(): Promise<void> {
    this.#running = true
    try {
      while (this.#queue.length > 0 && !this.dead) {
        // Not connected yet, busy with the user's queries, or inside the user's transaction:
        // wait for pg's 'connect' or 'drain' to call #kick again.
        if (!isIdle(this.client)) return
        const job = this.#queue[0]
        if (job === undefined) return
        if (job.kind === 'notify') await this.#sendNotifications(this.#takeBatch())
        else if (job.kind === 'query') {
          this.#queue.shift()
          if (job.text === undefined) job.resolve([])
          else await this.client.query({ text: job.text }).then((result) => job.resolve(result.rows), job.reject)
        } else if (job.kind === 'release') {
          this.#queue.shift()
          await this.#runRelease(job)
        } else {
          this.#queue.shift()
          await this.#runIntent(job)
        }
      }
    } finally {
      this.#running = false
      if (this.dead) this.#flush()
      else if (this.#queue.length > 0 && isIdle(this.client)) this.#kick()
      if (this.#members.size === 0 && this.#queue.length === 0) this.#unbind()
    }
  }

  /**
   * The notifications at the head of the queue that can travel in one round trip, as groups of
   * distinct (channel, payload) pairs: PostgreSQL folds identical pairs inside one transaction, so
   * a repeat starts a new group, and each group is its own transaction.
   */
  #takeBatch(): NotifyJob[][] {
    const groups: NotifyJob[][] = []
    let group: NotifyJob[] = []
    let seen = new Set<string>()
    let taken = 0
    let chars = 0
    // Indexed, then one splice: shift() per job would cost O(queue length) each.
    for (; taken < MAX_BATCH; taken++) {
      const job = this.#queue[taken]
      if (job === undefined || job.kind !== 'notify') break
      if (taken > 0 && (job.solo || chars + job.payload.length > MAX_BATCH_CHARS)) break
      const key = `${job.channel}\u0000${job.payload}`
      if (seen.has(key)) {
        if (groups.length + 1 >= MAX_GROUPS) break
        groups.push(group)
        group = []
        seen = new Set()
      }
      seen.add(key)
      group.push(job)
      chars += job.payload.length
      if (job.solo) {
        taken++
        break
      }
    }
    this.#queue.splice(0, taken)
    if (group.length > 0) groups.push(group)
    return groups
  }

  async #sendNotifications(groups: NotifyJob[][]): Promise<void> {
    if (groups.length === 1 && groups[0] !== undefined) return this.#sendGroup(groups[0])
    if ((this.client as { pipeline?: boolean }).pipeline === true) {
      // A pipelining client sends each query in its own implicit transaction already.
      await Promise.all(groups.map((group) => this.#sendGroup(group)))
      return
    }
    const result = await new Promise<MultiTransactionResult>((resolve) => {
      const submittable = new MultiTransaction(groups.map(groupStatement), resolve)
      void (this.client.query as unknown as (query: MultiTransaction) => unknown)(submittable)
    })
    groups.slice(0, result.committed).forEach((group) => group.forEach((job) => job.settle(undefined)))
    if (result.error === undefined) return
    const rest = groups.slice(result.committed)
    if (this.dead) {
      for (const job of rest.flat()) job.settle(new NotifyOutcomeUnknownError(job.channel, result.error))
      return
    }
    // The failed group rolled back and the ones after it never ran: send the failed one's
    // notifications alone (so only the one the server rejects fails), then the rest as before.
    // An error inside BEGIN leaves the session in a failed transaction block: close it first.
    await this.client.query({ text: 'ROLLBACK' }).catch(() => undefined)
    const [failed = [], ...notRun] = rest
    for (const job of failed) job.solo = true
    this.#queue.unshift(...failed, ...notRun.flat())
  }

  /** One group in one statement (one implicit transaction). */
  async #sendGroup(group: NotifyJob[]): Promise<void> {
    const first = group[0]
    if (first === undefined) return
    try {
      const { text, values } = groupStatement(group)
      await this.client.query({ text, values })
    } catch (error) {
      if (this.dead) {
        for (const job of group) job.settle(new NotifyOutcomeUnknownError(job.channel, error))
      } else if (group.length > 1) {
        // The statement's transaction rolled back, so none was delivered: resend each alone,
        // so only the one the server rejects fails.
        for (const job of group) job.solo = true
        this.#queue.unshift(...group)
      } else {
        first.settle(new QueryFailedError('NOTIFY', first.channel, error))
      }
      return
    }
    for (const job of group) job.settle(undefined)
  }

  async #runIntent(job: IntentJob): Promise<void> {
    const { channel, member } = job
    if (job.kind === 'listen') {
      if (!this.#serverListening.has(channel)) {
        if (!(await this.#command('LISTEN', channel, job))) return
        this.#serverListening.add(channel)
      }
      member.hubListened(channel)
    } else {
      if (!this.#wanted.has(channel) && this.#serverListening.has(channel)) {
        if (!(await this.#command('UNLISTEN', channel, job))) return
        this.#serverListening.delete(channel)
      }
      member.hubUnlistened(channel)
    }
  }

  async #runRelease(job: ReleaseJob): Promise<void> {
    for (const channel of job.channels) {
      if (this.#wanted.has(channel) || !this.#serverListening.has(channel)) continue
      if (!(await this.#command('UNLISTEN', channel, undefined, job.member))) continue
      this.#serverListening.delete(channel)
    }
    job.done()
  }

  /**
   * Runs LISTEN or UNLISTEN. Returns false when it did not take effect. A command that ran inside
   * the user's transaction (their BEGIN got to pg first) only counts at COMMIT and is lost at
   * ROLLBACK, so it is put back to run again once the transaction is over; both commands are
   * idempotent, so running one twice is harmless.
   */
  async #command(
    command: 'LISTEN' | 'UNLISTEN',
    channel: string,
    retry: IntentJob | undefined,
    member: HubMember | undefined = retry?.member,
  ): Promise<boolean> {
    try {
      await this.client.query({ text: `${command} ${quoteIdentifier(channel)}` })
    } catch (error) {
      if (this.dead) return false
      if (retry !== undefined && inTransaction(this.client)) {
        this.#queue.unshift(retry)
        return false
      }
      member?.hubFailed(new QueryFailedError(command, channel, error))
      return false
    }
    if (retry !== undefined && inTransaction(this.client)) {
      this.#queue.unshift(retry)
      return false
    }
    return true
  }

  #dispatch(notification: PgNotification): void {
    if (this.#members.size === 0) return
    const rawPayload = notification.payload ?? ''
    // Built once: never mutate pg's own object, never decode twice. (A plain frozen literal: an
    // accessor for a lazy decode measured several times slower per message.)
    const message: Message = Object.freeze({
      channel: notification.channel,
      payload: decodeCorePayload(rawPayload),
      processId: notification.processId,
      rawPayload,
    })
    for (const member of [...this.#members]) member.hubDeliver(message)
  }

  #lose(error: ConnectionLostError | undefined): void {
    if (this.#dead) return
    this.#dead = true
    this.#serverListening.clear()
    if (!this.#running) this.#flush()
    for (const member of [...this.#members]) member.hubLost(error)
  }

  /** The connection is gone: settle everything queued, send nothing. */
  #flush(): void {
    const jobs = this.#queue.splice(0)
    for (const job of jobs) {
      if (job.kind === 'notify') {
        job.settle(
          new ConnectionLostError(
            `Notification on channel "${job.channel}" was not sent: the PostgreSQL connection closed before it could be. Send it again on a new connection.`,
            undefined,
            job.channel,
            true,
          ),
        )
      } else if (job.kind === 'release') {
        job.done()
      } else if (job.kind === 'query') {
        job.reject(new ConnectionLostError('The PostgreSQL connection closed before the query could run.'))
      }
    }
  }
}
