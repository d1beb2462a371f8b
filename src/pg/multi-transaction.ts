/**
 * Several transactions in one round trip, through pg's "submittable" query interface (the one
 * pg-cursor uses): Parse/Bind/Execute for BEGIN, one statement, COMMIT, repeated per group, then a
 * single Sync. PostgreSQL folds identical (channel, payload) pairs inside one transaction, so
 * identical notifications must travel in separate transactions; this sends them without paying one
 * round trip each. Each COMMIT's completion tells exactly which groups were delivered.
 */

interface ProtocolConnection {
  parse(query: { text: string; name?: string; types?: unknown[] }): void
  bind(config: { portal?: string; statement?: string; values?: (string | null)[] }): void
  execute(config: { portal?: string; rows?: number }): void
  sync(): void
  stream?: { cork?: () => void; uncork?: () => void }
}

/** The outcome, once pg has seen the whole exchange. */
export interface MultiTransactionResult {
  /** Groups whose COMMIT completed: their notifications are delivered. */
  readonly committed: number
  /** The error of the group that failed (the groups after it did not run), if any. */
  readonly error: unknown
}

/** One group: a statement and its parameters, run inside its own BEGIN ... COMMIT. */
export interface TransactionGroup {
  readonly text: string
  readonly values: string[]
}

/**
 * A pg submittable: pass it to `client.query()`. Not usable on a `pipeline: true` client (pg
 * refuses custom submittables there; pipelined queries are separate transactions anyway).
 */
export class MultiTransaction {
  readonly #groups: readonly TransactionGroup[]
  readonly #done: (result: MultiTransactionResult) => void
  #committed = 0
  #settled = false
  /** pg sets this when the query is handed to `client.query` without one. */
  callback: ((error: unknown) => void) | undefined

  constructor(groups: readonly TransactionGroup[], done: (result: MultiTransactionResult) => void) {
    this.#groups = groups
    this.#done = done
  }

  submit(connection: ProtocolConnection): null {
    connection.stream?.cork?.()
    try {
      for (const group of this.#groups) {
        this.#run(connection, 'BEGIN', [])
        this.#run(connection, group.text, group.values)
        this.#run(connection, 'COMMIT', [])
      }
      connection.sync()
    } finally {
      connection.stream?.uncork?.()
    }
    return null
  }

  #run(connection: ProtocolConnection, text: string, values: string[]): void {
    connection.parse({ text, types: [] })
    connection.bind({ values })
    connection.execute({ rows: 0 })
  }

  handleCommandComplete(message: { text?: string; command?: string }): void {
    const tag = message.command ?? message.text ?? ''
    if (tag.startsWith('COMMIT')) this.#committed++
  }

  handleError(error: unknown): void {
    // pg drops this query as soon as the server reports an error; ReadyForQuery is not ours.
    this.#settle(error)
  }

  handleReadyForQuery(): void {
    this.#settle(undefined)
  }

  #settle(error: unknown): void {
    if (this.#settled) return
    this.#settled = true
    this.#done({ committed: this.#committed, error })
  }

  // Rows of the SELECT (no RowDescription was asked for) and the rest: nothing to keep.
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyInResponse(): void {}
  handleCopyData(): void {}
}
