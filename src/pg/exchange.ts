/**
 * How the library puts statements on a client it may share with the user: one "exchange" is a pg
 * submittable (the interface pg-cursor uses) that pg calls `submit()` on when it is the query pg
 * runs next. That is the only moment the session's transaction state is exact (pg runs one query at
 * a time), so that is where the rule is enforced:
 *
 * - the session is inside the user's transaction ('T' or 'E'): nothing is sent; the exchange
 *   reports `sent: false` and the caller tries again after the user's COMMIT/ROLLBACK;
 * - otherwise every statement is written at once: one statement alone in an implicit transaction;
 *   several as BEGIN/statement/COMMIT triples under one Sync (so identical notifications are not
 *   folded, and each COMMIT tells exactly what was delivered). If one of them fails, the server skips
 *   the rest; the exchange then ends the failed block with a ROLLBACK of its own before pg runs
 *   anything else, so the session always leaves the exchange in the state it entered it: idle.
 *
 * Every statement gets an outcome. Only a server error for that statement before its COMMIT proves
 * nothing of it committed ('failed'); a statement cut off by a lost connection is 'unknown'. pg's
 * client-side `query_timeout` proves nothing either way, so it is ignored: the exchange waits for the
 * server's answer, which still comes.
 *
 * A statement with a `name` (the notifications) is a named prepared statement: parsed once per
 * connection, recorded where pg records its own (`connection.parsedStatements`) once the server ran
 * it, and from then on sent as Bind/Execute only. A session that lost it (the user's `DISCARD ALL`
 * or `DEALLOCATE ALL`) answers the Bind with SQLSTATE 26000 before anything ran: the statement is
 * then 'skipped', so the caller sends it again, and the next exchange parses it anew. A parse is
 * preceded by a Close of the name, so a statement left on the server by an exchange whose answer
 * said too little (a parse that succeeded before its execute failed) never makes the parse fail.
 */
import { internals, isPipelining, phaseOf, type PgClient } from './client.js'
import { BEGIN, COMMIT, ROLLBACK, type Statement } from './sql.js'

/** What became of one statement of an exchange. */
export type Outcome =
  /** It ran and committed; `rows` are its result rows (text columns). */
  | { readonly kind: 'done'; readonly rows: readonly (readonly (string | null)[])[] }
  /** The server rejected it: nothing of it committed, so sending it again is safe. */
  | { readonly kind: 'failed'; readonly error: unknown }
  /** It never ran: an earlier statement of the same exchange failed. */
  | { readonly kind: 'skipped' }
  /** The connection was lost after it was sent and before its answer: it may have committed. */
  | { readonly kind: 'unknown'; readonly error: unknown }

export type ExchangeResult =
  /** Nothing was sent: the session was inside the user's transaction, or the client is closed. */
  | { readonly sent: false; readonly reason: 'in-transaction' | 'closed'; readonly error?: unknown }
  | { readonly sent: true; readonly outcomes: readonly Outcome[] }

/** What pg's Connection offers a submittable. */
interface ProtocolConnection {
  parse(query: { text: string; name?: string; types?: unknown[] }): void
  bind(config: { portal?: string; statement?: string; values?: readonly (string | Buffer | null)[] }): void
  execute(config: { portal?: string; rows?: number }): void
  close(config: { type: 'S' | 'P'; name?: string }): void
  sync(): void
  stream?: { cork?: () => void; uncork?: () => void }
  /** pg's record of the named statements parsed on this connection, name -> SQL text. */
  parsedStatements?: Record<string, string | undefined>
}

/** The server has no prepared statement of that name (a Bind after the session lost it). */
const NO_SUCH_STATEMENT = '26000'

/** Returned from submit() to make pg skip the exchange without sending anything. */
class NotSentNow extends Error {}

/** pg passes the server's ErrorResponse as a DatabaseError: it has a severity, a socket error has not. */
function isServerError(error: unknown): boolean {
  return typeof error === 'object' && error !== null && typeof (error as { severity?: unknown }).severity === 'string'
}

/**
 * An error that ends the session (pg_terminate_backend, a shutdown, an idle timeout): it can come
 * between a commit and its answer, so it proves nothing about the statement it interrupted.
 */
function endsSession(error: unknown): boolean {
  const { severity, code } = error as { severity?: unknown; code?: unknown }
  if (severity === 'FATAL' || severity === 'PANIC') return true
  return typeof code === 'string' && (code.startsWith('08') || code.startsWith('57P'))
}

/**
 * Sends `statements` on `client` when pg runs it next, and calls `done` once with what became of
 * them. Hand it to pg only when `canSendNow(client)` (then pg submits it at once); `done` may be
 * called synchronously from inside pg's message handling, so it must not run user code directly.
 * A pipelining client takes one statement per exchange (pg refuses custom submittables there).
 */
export function exchange(
  client: PgClient,
  statements: readonly Statement[],
  done: (result: ExchangeResult) => void,
  progress?: (index: number) => void,
): Exchange | undefined {
  if (isPipelining(client)) {
    runPipelined(client, statements, done)
    return undefined
  }
  const submittable = new Exchange(client, statements, done, progress)
  void (client.query as unknown as (query: Exchange) => unknown).call(client, submittable)
  return submittable
}

/** @internal exported for the protocol tests */
export class Exchange {
  readonly #client: PgClient
  readonly #statements: readonly Statement[]
  readonly #done: (result: ExchangeResult) => void
  /** Told as soon as a statement committed, in order: before any notification the server sends after it. */
  readonly #progress: ((index: number) => void) | undefined
  readonly #outcomes: Outcome[] = []
  readonly #rows: (string | null)[][] = []
  #submitted = false
  #finished = false
  #completed = 0
  #rollingBack = false
  /** The named statements this exchange parses, and the index of the statement that carries each parse. */
  readonly #parsing: { readonly name: string; readonly text: string; readonly index: number }[] = []
  /** Statements sent as Bind/Execute of a statement parsed by an earlier exchange. */
  readonly #bindOnly = new Set<number>()
  #connection: ProtocolConnection | undefined
  /** When the server last said something about this exchange: for the health check. */
  lastProgressAt = 0
  /** pg sets this when it wraps the query with its `query_timeout` timer; calling it clears the timer. */
  callback: ((error: unknown) => void) | undefined

  constructor(
    client: PgClient,
    statements: readonly Statement[],
    done: (result: ExchangeResult) => void,
    progress?: (index: number) => void,
  ) {
    this.#client = client
    this.#statements = statements
    this.#done = done
    this.#progress = progress
  }

  /** What this exchange sends (for observers such as tests). */
  get statements(): readonly Statement[] {
    return this.#statements
  }

  /** True once the statements are on the wire and their answer is not complete. */
  get inFlight(): boolean {
    return this.#submitted && !this.#finished
  }

  get #multi(): boolean {
    return this.#statements.length > 1
  }

  submit(connection: ProtocolConnection): Error | null {
    // The one check that matters: pg calls this when our exchange is the query it runs next, and
    // the status is that of the ReadyForQuery that ended the previous one.
    if (internals(this.#client).getTransactionStatus?.() !== 'I') return new NotSentNow('inside a transaction')
    this.#submitted = true
    this.#connection = connection
    this.lastProgressAt = performance.now()
    connection.stream?.cork?.()
    try {
      if (!this.#multi) {
        this.#write(connection, this.#statements[0] as Statement, 0)
      } else {
        for (const [index, statement] of this.#statements.entries()) {
          write(connection, BEGIN)
          this.#write(connection, statement, index)
          write(connection, COMMIT)
        }
      }
      connection.sync()
    } finally {
      connection.stream?.uncork?.()
    }
    return null
  }

  handleDataRow(message: { fields: (string | null)[] }): void {
    this.lastProgressAt = performance.now()
    this.#rows.push(message.fields)
  }

  /** Writes one statement: unnamed, or as a named prepared statement (parsed here unless an earlier exchange did). */
  #write(connection: ProtocolConnection, statement: Statement, index: number): void {
    const { name, text } = statement
    const parsed = connection.parsedStatements
    const known = name === undefined ? undefined : parsed?.[name]
    if (name === undefined || parsed === undefined || (known !== undefined && known !== text)) {
      // No name, a connection without pg's record, or the name taken by another text: unnamed.
      write(connection, statement)
      return
    }
    if (known !== undefined) {
      this.#bindOnly.add(index)
    } else if (!this.#parsing.some((entry) => entry.name === name)) {
      connection.close({ type: 'S', name }) // closing a statement that does not exist is no error
      connection.parse({ text, name, types: [] })
      this.#parsing.push({ name, text, index })
    }
    connection.bind({ statement: name, values: statement.values ?? [] })
    connection.execute({ rows: 0 })
  }

  /** The statement at `index` ran, so the parse it carried succeeded: later exchanges bind it. */
  #ran(index: number): void {
    const parsed = this.#connection?.parsedStatements
    if (parsed === undefined) return
    for (const entry of this.#parsing) if (entry.index === index) parsed[entry.name] = entry.text
  }

  handleCommandComplete(): void {
    this.lastProgressAt = performance.now()
    if (this.#rollingBack) return
    this.#completed++
    if (!this.#multi) {
      if (this.#completed === 1) this.#ran(0)
    } else if (this.#completed % 3 === 2) {
      this.#ran((this.#completed - 2) / 3)
    }
    // In a block, the COMMIT's CommandComplete (every third one) says the statement committed.
    // Alone, the statement commits at the Sync: only its ReadyForQuery says so (a commit can fail).
    if (this.#multi && this.#completed % 3 === 0) {
      this.#outcomes.push({ kind: 'done', rows: this.#rows.splice(0) })
      this.#progress?.(this.#outcomes.length - 1)
    } else if (this.#multi && this.#completed % 3 === 1) {
      this.#rows.length = 0 // BEGIN: nothing of the statement yet
    }
  }

  handleError(error: unknown): void {
    if (this.#finished) return
    if (error instanceof NotSentNow) {
      this.#finish({ sent: false, reason: 'in-transaction' })
      return
    }
    if (isServerError(error)) {
      this.lastProgressAt = performance.now()
      // pg dropped us as its active query; its ReadyForQuery (and a ROLLBACK's) is still ours.
      this.#hold()
      if (this.#rollingBack) return
      // The session is ending: what was not confirmed is 'unknown' once the connection is gone.
      if (endsSession(error)) return
      const index = this.#outcomes.length // the statement the error belongs to
      if (this.#bindOnly.has(index) && (error as { code?: unknown }).code === NO_SUCH_STATEMENT) {
        // The session lost our prepared statement: nothing of this one ran. Parse it again next
        // time, and let the caller send it again ('skipped').
        this.#forget(this.#statements[index] as Statement)
        while (this.#outcomes.length < this.#statements.length) this.#outcomes.push({ kind: 'skipped' })
        return
      }
      this.#outcomes.push({ kind: 'failed', error })
      while (this.#outcomes.length < this.#statements.length) this.#outcomes.push({ kind: 'skipped' })
      return
    }
    if (!this.#submitted) {
      this.#finish({ sent: false, reason: 'closed', error })
      return
    }
    if (phaseOf(this.#client) === 'closed') {
      this.#finish({ sent: true, outcomes: this.#settleUnknown(error) })
    }
    // Otherwise pg's query_timeout fired while the statements still run: their answer will come.
  }

  handleReadyForQuery(): void {
    if (this.#finished) return
    this.lastProgressAt = performance.now()
    if (!this.#rollingBack && internals(this.#client).getTransactionStatus?.() === 'E') {
      // A statement failed inside our own BEGIN: close the block before pg runs the user's next query.
      this.#rollingBack = true
      this.#hold()
      const connection = (this.#client as unknown as { connection: ProtocolConnection }).connection
      connection.stream?.cork?.()
      write(connection, ROLLBACK)
      connection.sync()
      connection.stream?.uncork?.()
      return
    }
    if (!this.#multi && this.#outcomes.length === 0) {
      this.#outcomes.push({ kind: 'done', rows: this.#rows.splice(0) })
      this.#progress?.(0)
    }
    while (this.#outcomes.length < this.#statements.length) this.#outcomes.push({ kind: 'skipped' })
    this.#finish({ sent: true, outcomes: this.#outcomes })
  }

  #forget(statement: Statement): void {
    const parsed = this.#connection?.parsedStatements
    if (parsed !== undefined && statement.name !== undefined && parsed[statement.name] === statement.text) {
      delete parsed[statement.name]
    }
  }

  /** The connection is gone (the hub saw it first): settle now. */
  abandon(error: unknown): void {
    if (this.#finished) return
    if (!this.#submitted) this.#finish({ sent: false, reason: 'closed', error })
    else this.#finish({ sent: true, outcomes: this.#settleUnknown(error) })
  }

  #settleUnknown(error: unknown): Outcome[] {
    const outcomes = [...this.#outcomes]
    while (outcomes.length < this.#statements.length) outcomes.push({ kind: 'unknown', error })
    return outcomes
  }

  /** Stays pg's active query so the answers still due are routed here, not to the user's next query. */
  #hold(): void {
    const state = internals(this.#client)
    state._activeQuery = this
    state.readyForQuery = false
  }

  #finish(result: ExchangeResult): void {
    this.#finished = true
    const callback = this.callback
    this.callback = undefined
    callback?.(null)
    this.#done(result)
  }

  // Nothing else is expected for these statements.
  handleRowDescription(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyInResponse(): void {}
  handleCopyData(): void {}
}

function write(connection: ProtocolConnection, statement: Statement): void {
  connection.parse({ text: statement.text, types: [] })
  connection.bind({ values: statement.values ?? [] })
  connection.execute({ rows: 0 })
}

/** A pipelining client sends each query with its own Sync at once; one statement per exchange. */
function runPipelined(client: PgClient, statements: readonly Statement[], done: (result: ExchangeResult) => void): void {
  const [statement] = statements
  if (statement === undefined || statements.length > 1)
    throw new RangeError('A pipelining client takes one statement per exchange.')
  const query = client.query.bind(client) as unknown as (config: {
    text: string
    values: unknown[]
    rowMode: 'array'
  }) => Promise<{ rows: (string | null)[][] }>
  query({ text: statement.text, values: [...(statement.values ?? [])], rowMode: 'array' }).then(
    (result) =>
      done({
        sent: true,
        outcomes: [{ kind: 'done', rows: result.rows.map((row) => row.map((value) => (value === null ? null : String(value)))) }],
      }),
    (error: unknown) =>
      done({ sent: true, outcomes: [isServerError(error) ? { kind: 'failed', error } : { kind: 'unknown', error }] }),
  )
}
