// A fake PostgreSQL under a REAL pg.Client, for the tests that need no database.
//
// Where it plugs in: pg's Client takes `new pg.Client({ connection })` and then talks only to that
// object (connect, startup, parse, bind, describe, execute, sync, query, end, stream.cork/uncork/
// destroy) and listens to the events it emits (readyForQuery, commandComplete, errorMessage, ...).
// A FakeConnection is that object. So everything above it is the real code: pg's query queue,
// `_txStatus`, `readyForQuery`, `query_timeout` timers, `drain`, `_errorAllQueries`, and the
// library's exchange submitted through pg's submittable interface.
//
// Why the Connection API rather than a stream speaking protocol bytes: the library's contract is
// with pg's Client and with the Connection methods the submittable calls; the byte layer is
// pg-protocol's (tested upstream), and a byte-level fake would need a frontend parser and backend
// serialiser of its own, more code to get wrong for no extra coverage of this library.
//
// What it models: one server with sessions. Each session records every frontend message, groups
// them into round trips ("units": messages up to a Sync, or one simple Query), and answers a unit
// like PostgreSQL would: the transaction status ('I', 'T', 'E'), the implicit transaction of an
// extended-protocol unit (ended by its Sync), skipping to Sync after an error, ErrorResponse for
// anything but COMMIT/ROLLBACK in a failed block, LISTEN/UNLISTEN/pg_notify taking effect at
// commit, and notifications delivered to listening sessions, named prepared statements (Parse with
// a name, Bind by name, Close, `DISCARD ALL` / `DEALLOCATE ALL`, 42P05 and 26000 as the server
// answers them; they outlive the transaction that made them). Tests decide when answers come:
// `auto` sessions answer each unit on their own (after a real macrotask, like socket data, or
// after `replyDelayMs` of timer time), others answer only when the test calls `reply()`.
// What it does not model, so the tests against a real server stay necessary: bytes, TCP buffering
// and partial frames (an answer arrives whole, or `reply({ executes })` cuts it between messages);
// TCP keepalive and the OS noticing a vanished peer; cancel requests, SSL, authentication and
// parameter status; several statements in one simple Query; pipelining (pg's `pipeline: true`);
// COPY; server-side timeouts (statement_timeout, idle session kills);
// the notification queue filling up; SQL beyond the statements the library and these tests send
// (anything else simply succeeds with no rows).
import { EventEmitter } from 'node:events'
import pg from 'pg'

// Captured at import time, before any test installs fake timers: socket data arrives in a later
// macrotask whatever the fake clock says.
const realSetImmediate = globalThis.setImmediate

export type TxStatus = 'I' | 'T' | 'E'

/** A frontend message the client wrote, as pg's Connection API received it. */
export type Frontend =
  | { readonly type: 'startup' }
  | { readonly type: 'query'; readonly text: string }
  | { readonly type: 'parse'; readonly text: string; readonly name: string }
  /** `text`: what the client last parsed under `statement` on this session ('' = the unnamed one). */
  | { readonly type: 'bind'; readonly values: readonly unknown[]; readonly statement: string; readonly text: string }
  | { readonly type: 'describe' }
  | { readonly type: 'execute' }
  | { readonly type: 'sync' }
  | { readonly type: 'flush' }
  | { readonly type: 'close'; readonly name: string }
  | { readonly type: 'terminate' }

/** A statement the server executed, with the session's status when it started. */
export interface Executed {
  readonly text: string
  readonly values: readonly unknown[]
  readonly status: TxStatus
}

export interface ServerError {
  readonly code: string
  readonly message: string
  /** 'FATAL' ends the session after the error, as pg_terminate_backend does. Default 'ERROR'. */
  readonly severity?: 'ERROR' | 'FATAL'
}

/** What a statement does: rows and a tag, or an error. */
export type Answer =
  | { readonly rows?: readonly (readonly (string | null)[])[]; readonly columns?: readonly string[]; readonly tag?: string }
  | { readonly error: ServerError }

/** A test's override for one statement; undefined keeps the default behaviour. */
export type Rule = (
  statement: { readonly text: string; readonly values: readonly unknown[] },
  session: FakeConnection,
) => Answer | undefined

export interface Delivered {
  readonly channel: string
  readonly payload: string
  readonly processId: number
}

/** The SQL the library sends, recognised by the server (and by tests, to label statements). */
const NOTIFY = 'SELECT pg_catalog.pg_notify($1, $2)'
const NOTIFY_MANY =
  'SELECT count(pg_catalog.pg_notify(c, p)) FROM ROWS FROM ' +
  '(pg_catalog.unnest($1::pg_catalog.text[]), pg_catalog.unnest($2::pg_catalog.text[])) AS t(c, p)'

/** Reads a binary one-dimensional text[] (what the library sends for NOTIFY_MANY). */
export function readTextArray(value: unknown): string[] {
  if (!Buffer.isBuffer(value)) throw new Error(`expected a binary text[], got ${typeof value}`)
  const dimensions = value.readInt32BE(0)
  if (dimensions === 0) return []
  if (dimensions !== 1 || value.readInt32BE(8) !== 25) throw new Error('not a one-dimensional text[]')
  const count = value.readInt32BE(12)
  const items: string[] = []
  let offset = 20
  for (let index = 0; index < count; index++) {
    const length = value.readInt32BE(offset)
    offset += 4
    items.push(value.toString('utf8', offset, offset + length))
    offset += length
  }
  return items
}

function notifyManyPairs(values: readonly unknown[]): [string, string][] {
  const channels = readTextArray(values[0])
  const payloads = readTextArray(values[1])
  return channels.map((channel, index) => [channel, payloads[index] ?? ''])
}
const LISTEN = /^LISTEN "((?:[^"]|"")*)"$/
const UNLISTEN = /^UNLISTEN "((?:[^"]|"")*)"$/

export class FakeServer {
  readonly sessions: FakeConnection[] = []
  /** Every notification the server committed, in commit order. */
  readonly delivered: Delivered[] = []
  /** Overrides the answer to statements (errors, rows). */
  rule: Rule | undefined
  /** New sessions answer each round trip on their own. */
  autoReply = true
  /** New sessions complete their start-up on their own (whatever their `auto`). */
  autoAccept = true
  /** When set, automatic answers come after this many ms of timer time (the fake clock, under fake timers). */
  replyDelayMs: number | undefined
  /** The next commit (a COMMIT, or the Sync that ends an implicit transaction) fails with this, once. */
  commitError: ServerError | undefined
  /** 'connect' (session) when a client starts connecting. */
  readonly events = new EventEmitter()
  #nextPid = 1_000

  /** A new session (what pg calls its Connection). */
  session(): FakeConnection {
    const session = new FakeConnection(this, this.#nextPid++)
    this.sessions.push(session)
    return session
  }

  /** A real pg.Client over a new session. */
  client(config: pg.ClientConfig = {}): pg.Client {
    return new pg.Client({ ...config, connection: this.session() } as pg.ClientConfig)
  }

  /** A connected client (the server answers its start-up). */
  async connected(config: pg.ClientConfig = {}): Promise<pg.Client> {
    const client = this.client(config)
    const session = sessionOf(client)
    const connecting = client.connect()
    if (!this.autoAccept) session.accept()
    await connecting
    return client
  }

  /** The session the newest client talks to. */
  get latest(): FakeConnection {
    const session = this.sessions.at(-1)
    if (session === undefined) throw new Error('no session yet')
    return session
  }

  /** Resolves with the next session a client opens (its connect() call). */
  nextSession(): Promise<FakeConnection> {
    return new Promise((resolve) => this.events.once('connect', resolve))
  }

  /** @internal A session committed these notifications. */
  commit(sender: FakeConnection, notifications: readonly { channel: string; payload: string }[]): void {
    for (const { channel, payload } of notifications) {
      const message: Delivered = { channel, payload, processId: sender.pid }
      this.delivered.push(message)
      for (const session of this.sessions) {
        if (session.listening.has(channel)) session.deliver(message, session === sender)
      }
    }
  }
}

/** The fake session behind a client made by {@link FakeServer.client}. */
export function sessionOf(client: pg.Client): FakeConnection {
  const connection = (client as unknown as { connection: unknown }).connection
  if (!(connection instanceof FakeConnection)) throw new Error('not a client of the fake server')
  return connection
}

/** The socket pg reads and the library touches (cork, destroy, keepalive). */
class FakeSocket {
  readonly #session: FakeConnection
  corked = 0
  destroyed = false
  keepAlive: number | undefined

  constructor(session: FakeConnection) {
    this.#session = session
  }

  get writable(): boolean {
    return !this.#session.closed
  }

  cork(): void {
    this.corked++
  }

  uncork(): void {
    this.corked--
  }

  /** As net.Socket: 'close' (pg's Connection turns it into 'end') comes on the next tick. */
  destroy(error?: Error): void {
    this.destroyed = true
    process.nextTick(() => this.#session.hangUp(error))
  }

  setKeepAlive(_enable: boolean, delay: number): void {
    this.keepAlive = delay
  }

  setNoDelay(): void {}
  ref(): void {}
  unref(): void {}
}

/**
 * One session. The fields pg reads on its Connection (`_connecting`, `_ending`, `stream`,
 * `parsedStatements`, `submittedNamedStatements`) are public here for it.
 */
export class FakeConnection extends EventEmitter {
  readonly server: FakeServer
  readonly pid: number
  /** Every frontend message, in order. */
  readonly sent: Frontend[] = []
  /** Every round trip the client wrote (messages up to a Sync, or one simple Query). */
  readonly units: Frontend[][] = []
  /** Every statement the server executed, with the status it ran in. */
  readonly executed: Executed[] = []
  /** Channels this session LISTENs on (committed). */
  readonly listening = new Set<string>()
  readonly stream: FakeSocket
  /** Answer each unit on its own; false: only `reply()` answers. */
  auto: boolean
  status: TxStatus = 'I'
  connectCalled = false
  accepted = false
  closed = false
  _connecting = false
  _ending = false
  parsedStatements: Record<string, string> = {}
  submittedNamedStatements: Record<string, string> = {}
  /** Observers: 'unit' (messages) when the client completes a round trip; 'closed'. */
  readonly wire = new EventEmitter()
  #current: Frontend[] = []
  /** What the client parsed under each name, as it wrote it (for the labels of later binds). */
  readonly #written = new Map<string, string>()
  /** The server's prepared statements, name -> text ('' is the unnamed one). */
  readonly prepared = new Map<string, string>()
  /** Units written and not fully answered yet; the head may be half answered. */
  readonly #unanswered: Frontend[][] = []
  #text = ''
  #values: readonly unknown[] = []
  #described = false
  /** An error in this extended-protocol unit: skip to its Sync. */
  #skipping = false
  /** Statements ran outside BEGIN since the last Sync: the implicit transaction the Sync ends. */
  #implicit = false
  /** LISTEN/UNLISTEN/notifications of the open transaction, applied at commit. */
  #effects: (() => void)[] = []
  #notifications: { channel: string; payload: string }[] = []
  /** Notifications for this session, emitted before its next ReadyForQuery (as PostgreSQL does for its own). */
  readonly #outbox: Delivered[] = []

  constructor(server: FakeServer, pid: number) {
    super()
    this.server = server
    this.pid = pid
    this.auto = server.autoReply
    this.stream = new FakeSocket(this)
  }

  /** Units written and not answered yet. */
  get waiting(): number {
    return this.#unanswered.length
  }

  // ---- what pg's Client calls -------------------------------------------------------------

  connect(): void {
    this.connectCalled = true
    this._connecting = true
    this.server.events.emit('connect', this)
    if (this.server.autoAccept) this.#later(() => this.accept())
  }

  startup(): void {
    this.#write({ type: 'startup' })
  }

  requestSsl(): void {
    throw new Error('the fake server speaks no SSL')
  }

  password(): void {
    throw new Error('the fake server asks for no password')
  }

  query(text: string): void {
    this.#write({ type: 'query', text })
    this.#endUnit()
  }

  parse(query: { text: string; name?: string }): void {
    const name = query.name ?? ''
    if (!this.closed) this.#written.set(name, query.text)
    this.#write({ type: 'parse', text: query.text, name })
  }

  bind(config: {
    values?: readonly unknown[]
    statement?: string
    valueMapper?: (value: unknown, index: number) => unknown
  }): void {
    const values = (config.values ?? []).map((value, index) =>
      config.valueMapper === undefined ? value : config.valueMapper(value, index),
    )
    const statement = config.statement ?? ''
    this.#write({ type: 'bind', values, statement, text: this.#written.get(statement) ?? '' })
  }

  describe(): void {
    this.#write({ type: 'describe' })
  }

  execute(): void {
    this.#write({ type: 'execute' })
  }

  flush(): void {
    this.#write({ type: 'flush' })
  }

  close(config: { type?: string; name?: string } = {}): void {
    if (config.type === 'S' || config.type === undefined) this.#write({ type: 'close', name: config.name ?? '' })
  }

  sync(): void {
    this.#write({ type: 'sync' })
    this.#endUnit()
  }

  /** Terminate: the server closes the session. */
  end(): void {
    this._ending = true
    this.#write({ type: 'terminate' })
    this.#later(() => this.hangUp())
  }

  ref(): void {}
  unref(): void {}

  // ---- what a test scripts -------------------------------------------------------------------

  /** The server accepts the connection: start-up, backend key data, ReadyForQuery('I'). */
  accept(): void {
    if (this.closed || this.accepted) return
    this.accepted = true
    this.emit('connect')
    this.emit('authenticationOk', { name: 'authenticationOk', length: 8 })
    this.emit('backendKeyData', { name: 'backendKeyData', length: 12, processID: this.pid, secretKey: 1 })
    this.emit('readyForQuery', { name: 'readyForQuery', length: 5, status: 'I' })
  }

  /** The connection attempt fails (ECONNREFUSED). */
  refuse(): void {
    this.hangUp(socketError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432'))
  }

  /** The connection breaks: a socket error (ECONNRESET unless given), then the close. `null`: a clean close. */
  drop(error: Error | null = socketError('ECONNRESET', 'read ECONNRESET')): void {
    this.hangUp(error ?? undefined)
  }

  /** A notification from another backend. */
  notify(channel: string, payload: string, processId = 4_242): void {
    this.emit('notification', { name: 'notification', length: 0, processId, channel, payload })
  }

  /**
   * Answers the oldest unanswered unit now, synchronously. With `executes`, stops after that many
   * Execute messages were answered (the rest stays unanswered: a connection lost mid-answer).
   */
  reply(options: { executes?: number } = {}): void {
    const unit = this.#unanswered[0]
    if (unit === undefined) throw new Error(`session ${this.pid}: nothing to answer`)
    let budget = options.executes ?? Number.POSITIVE_INFINITY
    while (unit.length > 0 && !this.closed) {
      const message = unit[0] as Frontend
      if (message.type === 'execute' || message.type === 'query') {
        if (budget === 0) return
        budget--
      }
      unit.shift()
      this.#answer(message)
    }
    if (unit.length === 0 && this.#unanswered[0] === unit) this.#unanswered.shift()
  }

  /** Resolves with the next unit the client completes (or the one already waiting, with `waiting`). */
  nextUnit(): Promise<Frontend[]> {
    return new Promise((resolve) => this.wire.once('unit', resolve))
  }

  /** The statements of a unit: text and bind values, in order. */
  static statements(unit: readonly Frontend[]): { text: string; values: readonly unknown[] }[] {
    const statements: { text: string; values: readonly unknown[] }[] = []
    let text = ''
    let values: readonly unknown[] = []
    for (const message of unit) {
      if (message.type === 'bind') {
        text = message.text
        values = message.values
      } else if (message.type === 'execute') statements.push({ text, values })
      else if (message.type === 'query') statements.push({ text: message.text, values: [] })
    }
    return statements
  }

  /** Short labels for a unit's statements: `NOTIFY c:x`, `NOTIFY c:x,c:y`, `LISTEN "a"`, `BEGIN`. */
  static labels(unit: readonly Frontend[]): string[] {
    return FakeConnection.statements(unit).map(label)
  }

  /** Labels of every unit so far, one array per round trip. */
  rounds(): string[][] {
    return this.units.map((unit) => FakeConnection.labels(unit))
  }

  // ---- the session's side ------------------------------------------------------------------

  /** @internal The socket closed (an error first, if any): pg's Connection emits 'error', then 'end'. */
  hangUp(error?: Error): void {
    if (this.closed) return
    this.closed = true
    this.#unanswered.length = 0
    this.listening.clear()
    if (error !== undefined) this.emit('error', error)
    this.emit('end')
    this.wire.emit('closed')
  }

  /** @internal A committed notification for this session. */
  deliver(message: Delivered, own: boolean): void {
    if (own) this.#outbox.push(message)
    else this.#later(() => this.#emitNotification(message))
  }

  #emitNotification(message: Delivered): void {
    if (this.closed || !this.listening.has(message.channel)) return
    this.emit('notification', { name: 'notification', length: 0, ...message })
  }

  #write(message: Frontend): void {
    // pg's Connection drops writes to a socket that is no longer writable.
    if (this.closed) return
    this.sent.push(message)
    if (message.type !== 'startup' && message.type !== 'terminate') this.#current.push(message)
  }

  #endUnit(): void {
    if (this.closed) return
    const unit = this.#current
    this.#current = []
    this.units.push([...unit])
    this.#unanswered.push(unit)
    this.wire.emit('unit', [...unit])
    if (this.auto) this.#later(() => this.#autoReply())
  }

  #autoReply(): void {
    if (this.auto && this.#unanswered.length > 0 && !this.closed) this.reply()
  }

  /** Runs `callback` like data arriving from the socket: a later macrotask, or after `replyDelayMs`. */
  #later(callback: () => void): void {
    const delay = this.server.replyDelayMs
    if (delay === undefined) realSetImmediate(callback)
    else setTimeout(callback, delay)
  }

  #answer(message: Frontend): void {
    switch (message.type) {
      case 'parse':
        if (this.#skipping) break
        if (message.name !== '' && this.prepared.has(message.name)) {
          this.#skipping = true
          this.#fail({ code: '42P05', message: `prepared statement "${message.name}" already exists` })
          break
        }
        this.prepared.set(message.name, message.text)
        this.emit('parseComplete', { name: 'parseComplete', length: 4 })
        break
      case 'bind': {
        if (this.#skipping) break
        const text = this.prepared.get(message.statement)
        if (text === undefined) {
          this.#skipping = true
          this.#fail({ code: '26000', message: `prepared statement "${message.statement}" does not exist` })
          break
        }
        this.#text = text
        this.#values = message.values
        this.emit('bindComplete', { name: 'bindComplete', length: 4 })
        break
      }
      case 'describe':
        this.#described = true
        break
      case 'execute':
        if (!this.#skipping) this.#skipping = !this.#run(this.#text, this.#values, this.#described)
        this.#described = false
        break
      case 'sync':
        this.#skipping = false
        this.#endImplicit()
        this.#ready()
        break
      case 'query':
        // Simple protocol: always a RowDescription for rows; the statement is its own unit.
        this.#run(message.text, [], true)
        this.#endImplicit()
        this.#ready()
        break
      case 'close':
        if (!this.#skipping) {
          this.prepared.delete(message.name)
          this.emit('closeComplete', { name: 'closeComplete', length: 4 })
        }
        break
      case 'flush':
      case 'startup':
      case 'terminate':
        break
    }
  }

  #ready(): void {
    for (const message of this.#outbox.splice(0)) this.#emitNotification(message)
    if (!this.closed) this.emit('readyForQuery', { name: 'readyForQuery', length: 5, status: this.status })
  }

  /** The implicit transaction (statements outside BEGIN) ends: committed unless one failed. */
  #endImplicit(): void {
    if (!this.#implicit) return
    this.#implicit = false
    if (this.status !== 'I') return
    const error = this.server.commitError
    if (error === undefined) {
      this.#commit()
      return
    }
    this.server.commitError = undefined
    this.#fail(error)
  }

  /** Runs one statement; false when it failed. */
  #run(text: string, values: readonly unknown[], describe: boolean): boolean {
    const status = this.status
    this.executed.push({ text, values, status })
    const upper = text.trim().toUpperCase()
    if (status === 'E' && upper !== 'COMMIT' && upper !== 'ROLLBACK') {
      return this.#fail({
        code: '25P02',
        message: 'current transaction is aborted, commands ignored until end of transaction block',
      })
    }
    const answer = this.server.rule?.({ text, values }, this) ?? this.#default(text, values, upper)
    if ('error' in answer) return this.#fail(answer.error)
    const rows = answer.rows ?? []
    if (describe && answer.columns !== undefined) {
      this.emit('rowDescription', {
        name: 'rowDescription',
        length: 0,
        fieldCount: answer.columns.length,
        fields: answer.columns.map((name) => ({
          name,
          tableID: 0,
          columnID: 0,
          dataTypeID: 25, // text: pg hands back strings, as the library reads them
          dataTypeSize: -1,
          dataTypeModifier: -1,
          format: 'text',
        })),
      })
    }
    for (const row of rows) this.emit('dataRow', { name: 'dataRow', length: 0, fieldCount: row.length, fields: [...row] })
    this.emit('commandComplete', { name: 'commandComplete', length: 0, text: answer.tag ?? `SELECT ${rows.length}` })
    return true
  }

  #fail(error: ServerError): false {
    if (this.status === 'T') this.status = 'E'
    else if (this.status === 'I') this.#rollback() // the implicit transaction is gone
    this.#implicit = false
    const databaseError = new pg.DatabaseError(error.message, 0, 'error')
    databaseError.severity = error.severity ?? 'ERROR'
    databaseError.code = error.code
    this.emit('errorMessage', databaseError)
    if (error.severity === 'FATAL') this.hangUp()
    return false
  }

  /** What PostgreSQL does with the statements the library and the tests send. */
  #default(text: string, values: readonly unknown[], upper: string): Answer {
    switch (upper) {
      case 'BEGIN':
        this.status = 'T'
        this.#implicit = false
        return { tag: 'BEGIN' }
      case 'COMMIT': {
        const error = this.status === 'T' ? this.server.commitError : undefined
        if (error !== undefined) {
          // A commit that fails ends the transaction: rolled back, the session idle again.
          this.server.commitError = undefined
          this.#rollback()
          this.status = 'I'
          return { error }
        }
        const failed = this.status === 'E'
        if (failed) this.#rollback()
        else this.#commit()
        this.status = 'I'
        return { tag: failed ? 'ROLLBACK' : 'COMMIT' }
      }
      case 'ROLLBACK':
        this.#rollback()
        this.status = 'I'
        return { tag: 'ROLLBACK' }
      case 'SELECT 1':
        return this.#statement({ rows: [['1']], columns: ['?column?'] })
      case 'DISCARD ALL':
      case 'DEALLOCATE ALL':
        for (const name of [...this.prepared.keys()]) if (name !== '') this.prepared.delete(name)
        if (upper === 'DISCARD ALL') this.#effects.push(() => this.listening.clear())
        return this.#statement({ tag: upper.split(' ')[0] ?? '' })
      case 'SELECT PG_CATALOG.PG_NOTIFICATION_QUEUE_USAGE()':
        return this.#statement({ rows: [['0']], columns: ['pg_notification_queue_usage'] })
      case 'SELECT PG_CATALOG.PG_IS_IN_RECOVERY()::TEXT, PG_CATALOG.PG_BACKEND_PID()::TEXT':
        return this.#statement({ rows: [['false', String(this.pid)]], columns: ['pg_is_in_recovery', 'pg_backend_pid'] })
    }
    if (text === NOTIFY) {
      this.#notifications.push({ channel: String(values[0]), payload: typeof values[1] === 'string' ? values[1] : '' })
      return this.#statement({ rows: [['']], columns: ['pg_notify'] })
    }
    if (text === NOTIFY_MANY) {
      const pairs = notifyManyPairs(values)
      for (const [channel, payload] of pairs) this.#notifications.push({ channel, payload })
      return this.#statement({ rows: [[String(pairs.length)]], columns: ['count'] })
    }
    const listen = LISTEN.exec(text)
    if (listen !== null) {
      const channel = (listen[1] as string).replaceAll('""', '"')
      this.#effects.push(() => this.listening.add(channel))
      return this.#statement({ tag: 'LISTEN' })
    }
    const unlisten = UNLISTEN.exec(text)
    if (unlisten !== null) {
      const channel = (unlisten[1] as string).replaceAll('""', '"')
      this.#effects.push(() => this.listening.delete(channel))
      return this.#statement({ tag: 'UNLISTEN' })
    }
    // Anything else the tests send as "their" queries: it runs, returns nothing.
    return this.#statement({ tag: upper.split(/\s+/)[0] ?? '' })
  }

  /** A statement that is not transaction control: outside BEGIN it opens the implicit transaction. */
  #statement(answer: Answer): Answer {
    if (this.status === 'I') this.#implicit = true
    return answer
  }

  #commit(): void {
    for (const effect of this.#effects.splice(0)) effect()
    // PostgreSQL folds identical (channel, payload) pairs of one transaction into one notification.
    const seen = new Set<string>()
    const notifications = this.#notifications.splice(0).filter(({ channel, payload }) => {
      const key = `${channel}\u0000${payload}`
      if (seen.has(key)) return false
      seen.add(key)
      return true
    })
    this.server.commit(this, notifications)
  }

  #rollback(): void {
    this.#effects.length = 0
    this.#notifications.length = 0
  }
}

function socketError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code })
}

function label(statement: { text: string; values: readonly unknown[] }): string {
  if (statement.text === NOTIFY) return `NOTIFY ${String(statement.values[0])}:${String(statement.values[1])}`
  if (statement.text === NOTIFY_MANY) {
    const pairs = notifyManyPairs(statement.values)
    return `NOTIFY ${pairs.map(([channel, payload]) => `${channel}:${payload}`).join(',')}`
  }
  return statement.text
}
