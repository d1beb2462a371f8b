// pg-ipc 1.0.5 ships no types; the benchmark uses only this much of it.
declare module 'pg-ipc' {
  import type { EventEmitter } from 'node:events'
  import type pg from 'pg'

  interface PgIpcEmitter extends EventEmitter {
    notify(channel: string, payload?: unknown): void
    end(): void
  }

  function pgIpc(client: pg.Client): PgIpcEmitter
  export = pgIpc
}
