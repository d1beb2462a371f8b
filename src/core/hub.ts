import {
  ConnectionLostError,
  EndedError,
  NotConnectedError,
  NotifyOutcomeUnknownError,
  QueryFailedError,
  messageOf,
  type PgIpcError,
} from '../errors/index.js'
import {
  canSendNow,
  isClosedByUser,
  isPipelining,
  phaseOf,
  quietAfterLoss,
  type PgClient,
  type PgNotification,
} from '../pg/client.js'
import { exchange, type Exchange, type ExchangeResult, type Outcome } from '../pg/exchange.js'
import { PLAIN_NOTIFY, listenStatement, unlistenStatement, type NotifyKind, type Statement } from '../pg/sql.js'
import { decodeCorePayload } from '../wire/core-payload.js'
import type { Message } from './message.js'
import type { ConnectInfo } from './reconnector.js'

/**
 * How a connection ended for the members: `disconnected` (the reconnecting mode is making a new
 * one), `closed` (a client you passed in is gone for good), `gave-up` (the reconnecting mode stopped
 * trying).
 */
export type LossKind = 'disconnected' | 'closed' | 'gave-up'

/** What the hub calls back on each instance that shares it. Never inside the user's call or pg's handlers, except `hubDeliver`. */
export interface HubMember {
  /** The LISTEN this member asked for is active on the server. */
  hubListened(channel: string): void
  /** This member's UNLISTEN request was handled (the server stops only if no member needs it). */
  hubUnlistened(channel: string): void
  /** A notification arrived on a channel (called from pg's notification event; the member guards its listeners). */
  hubDeliver(message: Message): void
  /** A LISTEN or UNLISTEN for this member failed (`error.channel` says which). */
  hubFailed(error: PgIpcError): void
  /** The connection is gone; `error` is undefined when the user closed the client on purpose. */
  hubLost(error: ConnectionLostError | undefined, kind: LossKind): void
  /** Reconnecting mode: a connection is up, LISTENs restored and `onConnect` done. */
  hubConnected(info: ConnectInfo): void
}

/** The reconnecting mode's policy for notifications while there is no connection. */
export interface OutagePolicy {
  readonly maxWaitMs: number
  readonly maxQueued: number
}

/** What one job of the hub's queue asks for. */
type Job =
  /** `member` wants the server to LISTEN on `channel`. */
  | { readonly kind: 'listen'; readonly channel: string; readonly member: HubMember }
  /** `member` stopped wanting `channel`: UNLISTEN unless another member wants it. `quiet`: no event (the member is ending). */
  | { readonly kind: 'unlisten'; readonly channel: string; readonly member: HubMember; readonly quiet: boolean }
  | NotifyJob
  /** A statement of the library's own (health check, queue usage). */
  | {
      readonly kind: 'query'
      readonly statement: Statement
      readonly resolve: (rows: readonly (readonly (string | null)[])[]) => void
      readonly reject: (error: PgIpcError) => void
    }
  /** Reached once every job queued before it has run; `lost` if the connection goes first. */
  | { readonly kind: 'barrier'; readonly reached: () => void; readonly lost: (error: ConnectionLostError) => void }

interface NotifyJob {
  readonly kind: 'notify'
  readonly channel: string
  readonly payload: string
  readonly member: HubMember
  /** Set after its group failed on the server: sent alone, so only the bad one fails. */
  solo: boolean
  /** How it is sent: plain NOTIFY, or stored and announced (durable); only jobs of one kind share a statement. */
  readonly via: NotifyKind
  /** Called once, never synchronously: undefined when the server accepted it. */
  readonly settle: (error: PgIpcError | undefined) => void
  /** Reconnecting mode: gives up waiting for a connection. */
  timer?: NodeJS.Timeout | undefined
}

/** Jobs taken from the queue for one exchange, and which of its statements each owns. */
interface Entry {
  readonly jobs: readonly Job[]
  readonly first: number
  readonly count: number
  /** Settled as soon as its statement committed (LISTEN/UNLISTEN), before the exchange ended. */
  early?: boolean
}

interface Batch {
  readonly entries: readonly Entry[]
  readonly statements: readonly Statement[]
}

/** Most notifications in one round trip; keeps statements far below any server limit. */
const MAX_NOTIFICATIONS = 1_000
/** Most payload characters in one round trip. */
const MAX_CHARS = 1_000_000
/** Most statements (each its own transaction) in one round trip. */
const MAX_STATEMENTS = 100

/** One hub per pg client, shared by every copy of this library loaded in the process. */
const registryKey = Symbol.for('typed-pg-ipc.hubs.v1')
const hubs: WeakMap<PgClient, Hub> =
  ((globalThis as Record<symbol, unknown>)[registryKey] as WeakMap<PgClient, Hub> | undefined) ??
  ((globalThis as Record<symbol, unknown>)[registryKey] = new WeakMap<PgClient, Hub>())

/**
 * Everything that belongs to one connection rather than to one instance: the single `notification`
 * listener (a payload is decoded once however many instances listen), the LISTEN reference count
 * across instances, and one queue of work, run as exchanges (src/pg/exchange.ts) only when pg is
 * idle and the session is outside any transaction of the user's.
 *
 * A client you pass in gets one hub, found through {@link Hub.forClient}. The reconnecting mode owns
 * a hub of its own and moves it from connection to connection ({@link Hub.attach}): the queue
 * survives an outage, so notifications keep their order through it.
 *
 * States: `attached` (a client; work runs when it is connected and idle), `detached` (reconnecting
 * mode between connections: notifications wait under the outage policy), `closed` (for good).
 */
export class Hub {
  /** The hub for a client you pass in, created on first use. */
  static forClient(client: PgClient): Hub {
    let hub = hubs.get(client)
    if (hub === undefined || hub.#state === 'closed') {
      hub = new Hub(undefined)
      hubs.set(client, hub)
      hub.#attachClient(client)
      if (phaseOf(client) === 'closed') hub.#lose(lostError(undefined), undefined, isClosedByUser(client))
    }
    return hub
  }

  /** A hub for the reconnecting mode: starts detached; `attach` gives it each new connection. */
  static detached(outage: OutagePolicy): Hub {
    return new Hub(outage)
  }

  #state: 'attached' | 'detached' | 'closed' = 'detached'
  #client: PgClient | undefined
  readonly #outage: OutagePolicy | undefined
  readonly #members = new Set<HubMember>()
  /** channel -> members that have listeners on it */
  readonly #wanted = new Map<string, Set<HubMember>>()
  /** channels the server LISTENs on for this connection */
  readonly #listening = new Set<string>()
  readonly #queue: Job[] = []
  /** The exchange on the wire, if any: one at a time. */
  #busy = false
  #inFlight: Exchange | undefined
  /** Deferred callbacks; a notification delivered is its job itself (no closure per message). */
  readonly #callbacks: ((() => void) | NotifyJob)[] = []
  #callbacksScheduled = false
  /**
   * Set when an exchange delivered its notifications, until their callers have heard and what they
   * do next in microtasks has run: nothing is sent meanwhile, so that the next notifications of
   * callers awaiting the ones just settled (`await ipc.notify(...)` in a loop, 100 of them at once)
   * travel together with whatever else is queued in one exchange, rather than the first one alone
   * and the other 99 in the next (a split that, once started, repeats for ever).
   */
  #gathering = false
  /** Backend pid of the connection; the reconnecting mode sets the real one (behind a pooler pg's differs). */
  #backendPid: number | undefined
  /** The reconnecting mode's hook: the attached connection was lost. */
  onLost: ((error: ConnectionLostError) => void) | undefined

  readonly #onNotification = (notification: PgNotification): void => this.#dispatch(notification)
  readonly #onConnect = (): void => queueMicrotask(() => this.#pump()) // pg is not ready for queries yet at 'connect'
  readonly #onDrain = (): void => this.#pump()
  readonly #onError = (error: Error): void => this.#lose(lostError(error), error, false)
  readonly #onEnd = (): void => {
    const byUser = this.#client !== undefined && isClosedByUser(this.#client)
    this.#lose(
      byUser ? new ConnectionLostError('The PostgreSQL client was closed (client.end()).') : lostError(undefined),
      undefined,
      byUser,
    )
  }

  private constructor(outage: OutagePolicy | undefined) {
    this.#outage = outage
  }

  /** The client of the current connection, if any. */
  get client(): PgClient | undefined {
    return this.#client
  }

  /** Backend pid of the current connection: what its notifications carry. */
  get processId(): number | undefined {
    if (this.#state !== 'attached') return undefined
    return this.#backendPid ?? this.#client?.processID ?? undefined
  }

  /** True once the connection is gone for good (a client you passed in closed or failed). */
  get closed(): boolean {
    return this.#state === 'closed'
  }

  /** How long the exchange on the wire has waited for the server without hearing back (0: none in flight). */
  stalledMs(): number {
    const inFlight = this.#inFlight
    return inFlight?.inFlight === true ? performance.now() - inFlight.lastProgressAt : 0
  }

  /** Nothing queued and nothing on the wire. */
  get idle(): boolean {
    return !this.#busy && this.#queue.length === 0
  }

  join(member: HubMember): void {
    this.#members.add(member)
  }

  /** Forgets a member; a hub with no member and no work lets go of its client. */
  leave(member: HubMember): void {
    this.#members.delete(member)
    this.#retireIfDone()
  }

  /** `member` now has listeners on `channel`. */
  want(member: HubMember, channel: string): void {
    let members = this.#wanted.get(channel)
    if (members === undefined) this.#wanted.set(channel, (members = new Set()))
    members.add(member)
    if (this.#state === 'closed') {
      const error = new ConnectionLostError(
        `Cannot LISTEN on channel "${channel}": the PostgreSQL connection is closed. Connect a new client (or use the reconnecting mode).`,
        { channel },
      )
      this.#defer(() => member.hubFailed(error))
    } else if (this.#state === 'attached') {
      this.#enqueue({ kind: 'listen', channel, member })
    }
    // Detached: the next connection LISTENs on every wanted channel.
  }

  /** `member` no longer has listeners on `channel`. */
  unwant(member: HubMember, channel: string): void {
    this.#forget(member, channel)
    if (this.#state === 'attached') this.#enqueue({ kind: 'unlisten', channel, member, quiet: false })
    else if (this.#state === 'detached') this.#defer(() => member.hubUnlistened(channel))
  }

  /**
   * Sends one notification; `settle` is called once, never synchronously, with undefined when the
   * server accepted it. (No promise per message: the core's hot path.)
   */
  send(
    member: HubMember,
    channel: string,
    payload: string,
    settle: (error: PgIpcError | undefined) => void,
    via: NotifyKind = PLAIN_NOTIFY,
  ): void {
    if (this.#state === 'closed') {
      const error = new ConnectionLostError(
        `Notification on channel "${channel}" was not sent: the PostgreSQL connection is closed. Connect a new client (or use the reconnecting mode).`,
        { channel, notSent: true },
      )
      this.#defer(() => settle(error))
      return
    }
    const job: NotifyJob = { kind: 'notify', channel, payload, member, solo: false, via, settle }
    if (this.#state === 'detached') {
      const outage = this.#outage as OutagePolicy
      if (this.#queue.reduce((count, queued) => count + (queued.kind === 'notify' ? 1 : 0), 0) >= outage.maxQueued) {
        const error = new NotConnectedError({
          channel,
          reason: `the connection is down and ${outage.maxQueued} notifications are already waiting for it`,
        })
        this.#defer(() => settle(error))
        return
      }
      this.#startWaiting(job)
    }
    this.#enqueue(job)
  }

  /** Runs a statement of the library's own; resolves with its rows (text columns). */
  query(statement: Statement): Promise<readonly (readonly (string | null)[])[]> {
    if (this.#state !== 'attached') {
      return Promise.reject(
        new ConnectionLostError('There is no PostgreSQL connection right now. Try again after the next connect.'),
      )
    }
    return new Promise((resolve, reject) => this.#enqueue({ kind: 'query', statement, resolve, reject }))
  }

  /**
   * Drops every channel of an ending member, UNLISTENing those no other member needs, once the work
   * queued before it ran (so notifications already handed over settle first). Never rejects.
   */
  release(member: HubMember, channels: Iterable<string>): Promise<void> {
    const released = new Set(channels)
    for (const channel of released) this.#forget(member, channel)
    // Its intents that have not run no longer matter: what they would UNLISTEN is released here.
    for (let index = this.#queue.length - 1; index >= 0; index--) {
      const job = this.#queue[index] as Job
      if ((job.kind === 'listen' || job.kind === 'unlisten') && job.member === member) {
        this.#queue.splice(index, 1)
        if (job.kind === 'unlisten') released.add(job.channel)
      }
    }
    const client = this.#client
    if (this.#state !== 'attached' || client === undefined || phaseOf(client) === 'unstarted') {
      // Nothing is LISTENed for it on any server. What it queued cannot go out: with no connection
      // (reconnecting mode), or on a client nobody connected, it would wait forever.
      const reason =
        this.#state === 'attached'
          ? 'the instance ended before its client was connected (call client.connect())'
          : 'the instance ended while there was no connection'
      this.#dropNotifications(member, (job) => new EndedError({ action: 'notify', channel: job.channel, detail: reason }))
      return Promise.resolve()
    }
    return new Promise<void>((resolve) => {
      for (const channel of released) this.#queue.push({ kind: 'unlisten', channel, member, quiet: true })
      this.#enqueue({ kind: 'barrier', reached: resolve, lost: () => resolve() })
    })
  }

  /** Reconnecting mode: a new connection is up. Resolves once every wanted channel is LISTENed again. */
  attach(client: PgClient, backendPid: number): Promise<void> {
    this.#backendPid = backendPid
    this.#attachClient(client)
    for (const job of this.#queue) if (job.kind === 'notify') clearTimeout(job.timer)
    const relisten: Job[] = []
    for (const [channel, members] of this.#wanted)
      for (const member of members) relisten.push({ kind: 'listen', channel, member })
    return new Promise<void>((resolve, reject) => {
      this.#queue.unshift(...relisten, { kind: 'barrier', reached: resolve, lost: reject })
      this.#pump()
    })
  }

  /**
   * Work that must run on each new connection once its LISTENs are back and before `reconnect` is
   * emitted (a durable channel reads what was stored during the gap). Each reports its own failures;
   * a rejection means the connection went away meanwhile.
   */
  readonly catchUps = new Set<() => Promise<void>>()

  /** Runs every catch-up (reconnecting mode, after the re-LISTEN). */
  async catchUp(): Promise<void> {
    await Promise.all([...this.catchUps].map((run) => run()))
  }

  /** Tells every member that the connection is ready (reconnecting mode). */
  announce(info: ConnectInfo): void {
    for (const member of [...this.#members]) this.#defer(() => member.hubConnected(info))
  }

  /** Tells every member about a failure that is not a loss (an unsupported setup, a failing onConnect hook). */
  report(error: PgIpcError): void {
    for (const member of [...this.#members]) this.#defer(() => member.hubFailed(error))
  }

  /** Reconnecting mode: the connection is being replaced (a failed health check, a failed setup step). */
  detach(error: ConnectionLostError): void {
    this.#lose(error, error, false)
  }

  /**
   * Ends the hub for good: what still waits is settled with `error` (the instance ended, or gave up
   * reconnecting), and the members hear `kind`.
   */
  close(error: PgIpcError, kind: LossKind | undefined): void {
    if (this.#state === 'closed') return
    this.#state = 'closed'
    this.#letGoOfClient(error)
    this.#listening.clear()
    this.#settleQueue(error)
    if (kind !== undefined && error instanceof ConnectionLostError) {
      for (const member of [...this.#members]) this.#defer(() => member.hubLost(error, kind))
    }
  }

  #attachClient(client: PgClient): void {
    this.#client = client
    this.#state = 'attached'
    client.on('notification', this.#onNotification)
    client.on('connect', this.#onConnect)
    client.on('drain', this.#onDrain)
    client.on('error', this.#onError)
    client.on('end', this.#onEnd)
    queueMicrotask(() => this.#pump())
  }

  #letGoOfClient(cause: unknown): void {
    const client = this.#client
    if (client === undefined) return
    this.#client = undefined
    client.off('notification', this.#onNotification)
    client.off('connect', this.#onConnect)
    client.off('drain', this.#onDrain)
    client.off('error', this.#onError)
    client.off('end', this.#onEnd)
    if (hubs.get(client) === this) hubs.delete(client)
    this.#inFlight?.abandon(cause)
  }

  /** The one condition under which a hub lets go of a client you passed in: nobody uses it and nothing is left to do. */
  #retireIfDone(): void {
    if (this.#outage !== undefined || this.#members.size > 0 || this.#queue.length > 0 || this.#busy) return
    const client = this.#client
    if (client === undefined) return
    this.#letGoOfClient(undefined)
    this.#state = 'closed'
  }

  #forget(member: HubMember, channel: string): void {
    const members = this.#wanted.get(channel)
    if (members === undefined) return
    members.delete(member)
    if (members.size === 0) this.#wanted.delete(channel)
  }

  #enqueue(job: Job): void {
    this.#queue.push(job)
    // Sent at once when the session is idle (no extra event-loop turn); while notifications just
    // settled are being reported, at the end of that gathering (#gather); otherwise pg's 'drain' or
    // 'connect' brings us back.
    this.#pump()
  }

  /**
   * Sends what is queued if pg runs nothing, queues nothing and the session is outside any
   * transaction; else waits for pg's 'drain' (the user's queries done) or 'connect'.
   */
  #pump(): void {
    if (this.#gathering) return // its end pumps
    while (this.#state === 'attached' && !this.#busy) {
      const head = this.#queue[0]
      if (head === undefined) {
        this.#retireIfDone()
        return
      }
      if (head.kind === 'barrier') {
        this.#queue.shift()
        this.#defer(head.reached)
        continue
      }
      const client = this.#client as PgClient
      if (!canSendNow(client)) return
      const batch = this.#takeBatch(isPipelining(client) ? 1 : MAX_STATEMENTS)
      if (batch.statements.length === 0) {
        this.#apply(batch, { sent: true, outcomes: [] })
        continue
      }
      this.#busy = true
      this.#inFlight = exchange(
        client,
        batch.statements,
        (result) => {
          this.#busy = false
          this.#inFlight = undefined
          this.#apply(batch, result)
          this.#pump()
        },
        (index) => this.#progress(batch, index),
      )
    }
  }

  /**
   * The jobs at the head of the queue that can travel in one exchange, in order. Notifications
   * become groups of distinct (channel, payload) pairs: PostgreSQL folds identical pairs inside one
   * transaction, so a repeat starts a new group, and each group is its own transaction.
   */
  #takeBatch(maxStatements: number): Batch {
    const entries: Entry[] = []
    const statements: Statement[] = []
    const planned = new Set(this.#listening)
    const queue = this.#queue
    let taken = 0
    let notifications = 0
    let chars = 0
    const fits = (job: NotifyJob): boolean =>
      notifications < MAX_NOTIFICATIONS && (notifications === 0 || chars + job.payload.length <= MAX_CHARS)
    while (taken < queue.length && statements.length < maxStatements) {
      const job = queue[taken] as Job
      if (job.kind === 'barrier') break
      if (job.kind === 'notify') {
        if (!fits(job)) break
        const group: NotifyJob[] = []
        const channels: string[] = []
        const payloads: string[] = []
        // payload -> the channels it goes to in this group (keyed by the payload string itself: no
        // concatenated key to build and hash per notification)
        const seen = new Map<string, string | string[]>()
        for (let next = queue[taken]; next?.kind === 'notify' && fits(next); next = queue[taken]) {
          if (group.length > 0 && (next.solo || job.solo || next.via !== job.via)) break
          const { channel, payload } = next
          if (job.via.folds) {
            const sent = seen.get(payload)
            if (sent === undefined) seen.set(payload, channel)
            else if (sent === channel || (Array.isArray(sent) && sent.includes(channel))) break
            else seen.set(payload, Array.isArray(sent) ? [...sent, channel] : [sent, channel])
          }
          group.push(next)
          channels.push(channel)
          payloads.push(payload)
          taken++
          notifications++
          chars += payload.length
        }
        entries.push({ jobs: group, first: statements.length, count: 1 })
        statements.push(group.length === 1 ? job.via.one(job.channel, job.payload) : job.via.many(channels, payloads))
        continue
      }
      let statement: Statement | undefined
      if (job.kind === 'listen') {
        if (!planned.has(job.channel)) {
          statement = listenStatement(job.channel)
          planned.add(job.channel)
        }
      } else if (job.kind === 'unlisten') {
        if (!this.#wanted.has(job.channel) && planned.has(job.channel)) {
          statement = unlistenStatement(job.channel)
          planned.delete(job.channel)
        }
      } else {
        statement = job.statement
      }
      entries.push({ jobs: [job], first: statements.length, count: statement === undefined ? 0 : 1 })
      if (statement !== undefined) statements.push(statement)
      taken++
    }
    queue.splice(0, taken)
    return { entries, statements }
  }

  /**
   * A statement of the exchange committed. A LISTEN (or UNLISTEN) is reported at once, not when the
   * exchange ends: notifications on the channel may arrive before the exchange ends, and `listen`
   * must come before them, as pg-ipc's own LISTEN callback did.
   */
  #progress(batch: Batch, index: number): void {
    for (const entry of batch.entries) {
      if (entry.first > index) break
      if (entry.early === true) continue
      const [job] = entry.jobs
      if (job?.kind !== 'listen' && job?.kind !== 'unlisten') continue
      if (entry.first + entry.count - 1 > index) break
      entry.early = true
      this.#completed(entry, undefined, (report) => report())
    }
  }

  /** Settles what an exchange decided, and puts back what it did not. */
  #apply(batch: Batch, result: ExchangeResult): void {
    if (!result.sent) {
      // Nothing happened (the user's transaction got there first, or the client closed): as they were.
      this.#queue.unshift(...batch.entries.flatMap((entry) => entry.jobs))
      if (this.#state !== 'attached') this.#settleQueue(lostError(result.error))
      return
    }
    const putBack: Job[] = []
    let stopped = false
    for (const entry of batch.entries) {
      if (stopped) {
        putBack.push(...entry.jobs)
        continue
      }
      if (entry.early === true) continue
      const outcomes = result.outcomes.slice(entry.first, entry.first + entry.count)
      const bad = outcomes.find((outcome) => outcome.kind !== 'done')
      if (bad === undefined) this.#completed(entry, outcomes[0], (report) => this.#defer(report))
      else if (bad.kind === 'unknown') this.#cutOff(entry, bad.error)
      else {
        // The server skipped everything after a failure: those go again, in order.
        stopped = true
        if (bad.kind === 'failed') this.#failed(entry, bad.error, putBack)
        else putBack.push(...entry.jobs)
      }
    }
    this.#queue.unshift(...putBack)
    if (this.#state !== 'attached') this.#settleQueue(lostError(undefined))
    else if (putBack.length === 0 && batch.entries.some((entry) => entry.jobs[0]?.kind === 'notify')) this.#gather()
  }

  /** `report` runs the member's callback: deferred, or at once for a LISTEN seen committed mid-exchange. */
  #completed(entry: Entry, outcome: Outcome | undefined, report: (callback: () => void) => void): void {
    for (const job of entry.jobs) {
      switch (job.kind) {
        case 'notify':
          this.#defer(job) // settled with no error (only #apply reports notifications: deferred)
          break
        case 'listen':
          this.#listening.add(job.channel)
          report(() => job.member.hubListened(job.channel))
          break
        case 'unlisten':
          if (entry.count > 0) this.#listening.delete(job.channel)
          if (!job.quiet) report(() => job.member.hubUnlistened(job.channel))
          break
        case 'query': {
          const rows = outcome?.kind === 'done' ? outcome.rows : []
          report(() => job.resolve(rows))
          break
        }
        case 'barrier':
          break
      }
    }
  }

  /** The connection went while these were on the wire: they may or may not have run. */
  #cutOff(entry: Entry, cause: unknown): void {
    for (const job of entry.jobs) {
      if (job.kind === 'notify') {
        const error = new NotifyOutcomeUnknownError({ channel: job.channel, cause })
        this.#defer(() => job.settle(error))
      } else if (job.kind === 'query') {
        const error = new ConnectionLostError(
          `The PostgreSQL connection was lost before the query was answered: ${messageOf(cause)}.`,
          { cause },
        )
        this.#defer(() => job.reject(error))
      }
      // LISTEN/UNLISTEN: the session is gone with whatever it listened to.
    }
  }

  /** The server rejected the entry's statement: nothing of it committed. */
  #failed(entry: Entry, cause: unknown, putBack: Job[]): void {
    const [job] = entry.jobs
    if (job === undefined) return
    if (job.kind === 'notify' && entry.jobs.length > 1) {
      // Send each alone, so only the one the server rejects fails.
      for (const queued of entry.jobs as NotifyJob[]) queued.solo = true
      putBack.push(...entry.jobs)
      return
    }
    switch (job.kind) {
      case 'notify': {
        const error = new QueryFailedError({ command: 'NOTIFY', channel: job.channel, cause })
        this.#defer(() => job.settle(error))
        break
      }
      case 'listen':
      case 'unlisten': {
        const error = new QueryFailedError({
          command: job.kind === 'listen' ? 'LISTEN' : 'UNLISTEN',
          channel: job.channel,
          cause,
        })
        this.#defer(() => job.member.hubFailed(error))
        break
      }
      case 'query': {
        const error = new QueryFailedError({ command: 'SELECT', cause })
        this.#defer(() => job.reject(error))
        break
      }
      case 'barrier':
        break
    }
  }

  /** The connection is gone (pg reported it, or the reconnecting mode replaces it). */
  #lose(error: ConnectionLostError, cause: unknown, byUser: boolean): void {
    if (this.#state !== 'attached') return
    const kind: LossKind = this.#outage === undefined ? 'closed' : 'disconnected'
    this.#state = this.#outage === undefined ? 'closed' : 'detached'
    this.#listening.clear()
    const client = this.#client
    this.#letGoOfClient(cause)
    if (client !== undefined) quietAfterLoss(client)
    this.#settleQueue(error)
    // A client the user closed on purpose is not a failure to report.
    const reported = byUser ? undefined : error
    for (const member of [...this.#members]) this.#defer(() => member.hubLost(reported, kind))
    this.onLost?.(error)
  }

  /**
   * With no connection: closed, everything queued is settled (notifications as not sent);
   * detached, notifications wait for the next connection under the outage policy, the rest is
   * settled (LISTENs are redone from the wanted channels when a connection comes).
   */
  #settleQueue(error: PgIpcError): void {
    const keep: Job[] = []
    for (const job of this.#queue.splice(0)) {
      switch (job.kind) {
        case 'notify':
          if (this.#state === 'detached') {
            this.#startWaiting(job)
            keep.push(job)
          } else {
            clearTimeout(job.timer)
            const failure =
              error instanceof ConnectionLostError
                ? new ConnectionLostError(
                    `Notification on channel "${job.channel}" was not sent: the PostgreSQL connection closed before it could be. Send it again on a new connection.`,
                    { channel: job.channel, notSent: true, cause: error },
                  )
                : error
            this.#defer(() => job.settle(failure))
          }
          break
        case 'query':
          this.#defer(() => job.reject(error instanceof ConnectionLostError ? error : lostError(error)))
          break
        case 'barrier':
          this.#defer(() => job.lost(error instanceof ConnectionLostError ? error : lostError(error)))
          break
        case 'unlisten':
          if (!job.quiet && this.#state === 'detached') this.#defer(() => job.member.hubUnlistened(job.channel))
          break
        case 'listen':
          break
      }
    }
    this.#queue.push(...keep)
  }

  /** Reconnecting mode: a notification waits at most `maxWaitMs` for a connection. */
  #startWaiting(job: NotifyJob): void {
    if (job.timer !== undefined) return
    const { maxWaitMs } = this.#outage as OutagePolicy
    job.timer = setTimeout(() => {
      const index = this.#queue.indexOf(job)
      if (index < 0) return
      this.#queue.splice(index, 1)
      job.settle(new NotConnectedError({ channel: job.channel, reason: `no connection came back within ${maxWaitMs} ms` }))
    }, maxWaitMs)
  }

  /** Settles a member's queued notifications that can no longer be sent. */
  #dropNotifications(member: HubMember, errorFor: (job: NotifyJob) => PgIpcError): void {
    for (let index = 0; index < this.#queue.length;) {
      const job = this.#queue[index] as Job
      if (job.kind === 'notify' && job.member === member) {
        this.#queue.splice(index, 1)
        clearTimeout(job.timer)
        const error = errorFor(job)
        this.#defer(() => job.settle(error))
      } else {
        index++
      }
    }
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

  /**
   * Runs `callback` soon, in order with the others, never inside the caller: a job's outcome is
   * decided inside pg's message handling, where user code must not run.
   */
  #defer(callback: (() => void) | NotifyJob): void {
    this.#callbacks.push(callback)
    if (this.#callbacksScheduled) return
    this.#callbacksScheduled = true
    queueMicrotask(() => {
      this.#callbacksScheduled = false
      const callbacks = this.#callbacks.splice(0)
      for (const run of callbacks) {
        if (typeof run === 'function') run()
        else run.settle(undefined)
      }
    })
  }

  /**
   * Holds new work back until the notifications an exchange just settled have been reported and
   * everything their callers do in microtasks (the continuations of `await notify()`, however deep)
   * has run, then pumps: in the same macrotask, no event-loop turn and no I/O wait in between. A
   * nextTick queued from inside a microtask runs once the microtask queue is empty (Node drains it
   * before its tick queue); queued from outside one, it would run before the microtasks, hence the
   * microtask that queues it.
   */
  #gather(): void {
    if (this.#gathering) return
    this.#gathering = true
    queueMicrotask(() =>
      process.nextTick(() => {
        this.#gathering = false
        this.#pump()
      }),
    )
  }
}

function lostError(cause: unknown): ConnectionLostError {
  if (cause === undefined) {
    return new ConnectionLostError(
      'The PostgreSQL connection ended unexpectedly. Listeners on it receive nothing more; connect a new client (or use the reconnecting mode).',
    )
  }
  return new ConnectionLostError(
    `The PostgreSQL connection failed: ${messageOf(cause)}. Listeners on it receive nothing more; connect a new client (or use the reconnecting mode).`,
    { cause },
  )
}
