import { ConnectionLostError, CursorExpiredError, type PgIpcError, QueryFailedError, NotInstalledError } from '../errors/index.js'
import { CURRENT_SNAPSHOT, READ_PAGE, cursorValidStatement, readStatement, type DurableStorage } from '../pg/durable-sql.js'
import type { Statement } from '../pg/sql.js'
import { encodeCursor, type Position } from './cursor.js'

/** A message as it was stored. */
export interface StoredMessage {
  readonly id: string
  readonly payload: string
  /** Backend pid of the sender's connection. */
  readonly processId: number
  readonly sentAt: Date
  /** Where a reader resumes to get what came after this message. */
  readonly cursor: string
}

/** What a reader needs from the instance it belongs to. */
export interface ReaderHost {
  /** Runs one of the library's statements (through the hub: never inside the user's transaction). */
  query(statement: Statement): Promise<readonly (readonly (string | null)[])[]>
  /** Resolves once the channel's LISTEN is active (wake-ups will arrive from then on). */
  listening(channel: string): Promise<void>
  /** A message, in order. */
  deliver(message: StoredMessage): void
  /** A failure the user must hear about (the instance's `error`). */
  fail(error: PgIpcError): void
}

/**
 * Reads one durable channel for one listener: what commits after its start (or after a stored
 * cursor), in commit order (message id order within a transaction), each message once. Reads run
 * one at a time; a wake-up during a read asks for one more. Each read takes the messages of the
 * transactions visible in the statement's snapshot and not in the previous one, so reads never
 * overlap and never leave a gap (docs/durable.md has the argument).
 */
export class DurableReader {
  readonly #host: ReaderHost
  readonly #storage: DurableStorage
  readonly #channel: string
  /** Where the next read starts; undefined until the start is known. */
  #position: Position | undefined
  #start: Promise<void> | undefined
  #reading: Promise<void> | undefined
  #again = false
  #closed = false
  readonly #timer: NodeJS.Timeout

  /** `from`: a stored position, or undefined for "what commits from now on". */
  constructor(host: ReaderHost, storage: DurableStorage, channel: string, from: Position | undefined, safetyReadMs: number) {
    this.#host = host
    this.#storage = storage
    this.#channel = channel
    this.#position = from
    this.#timer = setInterval(() => this.wake(), safetyReadMs)
    this.#timer.unref()
  }

  /** A notification arrived on the channel (or it is time for a safety read): read soon. */
  wake(): void {
    void this.read().catch(() => undefined)
  }

  /**
   * Reads until it is up to date; the promise settles when this read (and any asked for meanwhile)
   * is done. Rejects only when the connection went away (the read is redone on the next one);
   * other failures are reported to the instance.
   */
  read(): Promise<void> {
    if (this.#closed) return Promise.resolve()
    if (this.#reading !== undefined) {
      this.#again = true
      return this.#reading
    }
    this.#reading = this.#readLoop().finally(() => {
      this.#reading = undefined
    })
    return this.#reading
  }

  /**
   * Resolves once the reader knows where it starts: from then on, whatever commits is delivered
   * (what the typed layer's `listening()` waits for on a durable channel). Rejects like a read would.
   */
  ready(): Promise<void> {
    return this.#started()
  }

  close(): void {
    this.#closed = true
    clearInterval(this.#timer)
  }

  async #readLoop(): Promise<void> {
    try {
      do {
        this.#again = false
        await this.#started()
        await this.#readInterval()
      } while (this.#again && !this.#closed)
    } catch (error) {
      if (error instanceof ConnectionLostError) throw error
      this.#host.fail(this.#explain(error))
    }
  }

  /** The start: after the LISTEN is active (so no wake-up is missed), from a cursor or from now. */
  #started(): Promise<void> {
    this.#start ??= (async () => {
      await this.#host.listening(this.#channel)
      const from = this.#position
      if (from === undefined) {
        const rows = await this.#host.query(CURRENT_SNAPSHOT)
        this.#position = { prev: String(rows[0]?.[0]) }
      } else {
        const rows = await this.#host.query(cursorValidStatement(this.#storage, from.prev))
        if (rows[0]?.[0] !== 'true') throw new CursorExpiredError({ channel: this.#channel })
      }
    })()
    // A failed start (the table missing, say) is tried again on the next wake-up.
    this.#start.catch(() => {
      this.#start = undefined
    })
    return this.#start
  }

  /** Reads the interval from the current position to now, in pages; the position moves as messages go out. */
  async #readInterval(): Promise<void> {
    /** The snapshot this call took itself: an interval that ends there is up to date. */
    let taken: string | undefined
    for (;;) {
      if (this.#closed) return
      const position = this.#position as Position
      const rows = await this.#host.query(readStatement(this.#storage, this.#channel, position.prev, position.page))
      const cur = position.page?.cur ?? String(rows[0]?.[0])
      if (position.page === undefined) taken = cur
      let count = 0
      for (const [, id, xid, payload, pid, sentAt] of rows) {
        if (id == null || xid == null || this.#closed) continue
        count++
        const page = { cur, xid, id }
        this.#position = { prev: position.prev, page }
        this.#host.deliver({
          id,
          payload: payload ?? '',
          processId: Number(pid),
          sentAt: new Date(Number(sentAt)),
          cursor: encodeCursor({ prev: position.prev, page }),
        })
      }
      if (count < READ_PAGE) {
        // The whole interval is read: the next read starts from this snapshot. An interval that
        // ended at an older snapshot (a resumed cursor's) is not up to date: read on to now.
        if (!this.#closed) this.#position = { prev: cur }
        if (cur === taken) return
      }
    }
  }

  #explain(error: unknown): PgIpcError {
    if (error instanceof QueryFailedError && error.sqlState === '42P01') {
      return new NotInstalledError({
        channel: this.#channel,
        table: `${this.#storage.schema}.${this.#storage.table}`,
        cause: error,
      })
    }
    return error as PgIpcError
  }
}
