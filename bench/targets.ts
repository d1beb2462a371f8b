// What is measured: a sender and a listener for each library, behind one small interface, so every
// measurement (throughput, latency, fan-out) runs the same code for all of them.

import pg from 'pg'
import pgIpc from 'pg-ipc'
import pgListen from 'pg-listen'
import postgres from 'postgres'
import { pgIPC, type Message } from '../src/index.js'
import { benchChannels, large, small, type ChannelNames } from './payloads.js'

export type SenderKind =
  | 'raw-rt'
  | 'raw-pipeline'
  | 'raw-unnest'
  | 'raw-unnest-large'
  | 'pg-ipc'
  | 'pg-listen'
  | 'postgres'
  | 'core'
  | 'typed-small'
  | 'typed-large'
  | 'typed-large-compiled'

export type ListenerKind =
  'raw' | 'raw-large' | 'pg-ipc' | 'pg-listen' | 'postgres' | 'core' | 'typed-small' | 'typed-large' | 'typed-large-compiled'

/** The targets whose notifications carry the large payload. */
export const LARGE_KINDS: ReadonlySet<SenderKind | ListenerKind> = new Set([
  'raw-unnest-large',
  'raw-large',
  'typed-large',
  'typed-large-compiled',
])

export interface Target {
  readonly id: SenderKind
  readonly label: string
  readonly group: 'ceiling' | 'peer' | 'ours'
  readonly listener: ListenerKind
  /** How a call is made, for the docs. */
  readonly how: string
}

export const TARGETS: readonly Target[] = [
  {
    id: 'raw-rt',
    label: 'raw pg, 1 per round trip',
    group: 'ceiling',
    listener: 'raw',
    how: "`client.query('SELECT pg_notify($1, $2)')` on a default `pg.Client`; with C in flight pg queues them, one round trip each",
  },
  {
    id: 'raw-pipeline',
    label: 'raw pg, pipeline: true',
    group: 'ceiling',
    listener: 'raw',
    how: 'the same query on `new pg.Client({ pipeline: true })`: C queries on the wire at once',
  },
  {
    id: 'raw-unnest',
    label: 'raw pg, C per statement',
    group: 'ceiling',
    listener: 'raw',
    how: '`SELECT count(pg_notify(c, p)) FROM unnest($1::text[], $2::text[])`: C notifications per statement, one statement in flight (100 per statement at C=100)',
  },
  {
    id: 'raw-unnest-large',
    label: 'raw pg, C per statement, large',
    group: 'ceiling',
    listener: 'raw-large',
    how: 'the same `unnest` statement with the large payload (~1.3 KB of JSON, built by the same function as the typed large rows): the ceiling for that size',
  },
  {
    id: 'pg-ipc',
    label: 'pg-ipc 1.0.5',
    group: 'peer',
    listener: 'pg-ipc',
    how: "`ipc.notify(channel, object)`, done at its 'notify' event",
  },
  {
    id: 'pg-listen',
    label: 'pg-listen',
    group: 'peer',
    listener: 'pg-listen',
    how: '`await subscriber.notify(channel, object)`',
  },
  {
    id: 'postgres',
    label: 'postgres.js',
    group: 'peer',
    listener: 'postgres',
    how: '`await sql.notify(channel, JSON.stringify(object))` with `max: 1` (one connection, like the others); the listener JSON.parses',
  },
  {
    id: 'core',
    label: 'typed-pg-ipc core',
    group: 'ours',
    listener: 'core',
    how: "`ipc.notify(channel, object)` (pgIPC), done at its 'notify' event",
  },
  {
    id: 'typed-small',
    label: 'typed-pg-ipc typed, small',
    group: 'ours',
    listener: 'typed-small',
    how: '`await ipc.notify(name, smallObject)` (defineChannels, 5-field zod object)',
  },
  {
    id: 'typed-large',
    label: 'typed-pg-ipc typed, large',
    group: 'ours',
    listener: 'typed-large',
    how: '`await ipc.notify(name, order)` (nested zod object, ~1.3 KB: customer, addresses, 10 items)',
  },
  {
    id: 'typed-large-compiled',
    label: 'typed-pg-ipc typed, large, z.compile',
    group: 'ours',
    listener: 'typed-large-compiled',
    how: 'the same, with the schema compiled by zod ahead of time (`defineChannels({ order: z.compile(Order) })`), on both ends',
  },
]

export function target(id: SenderKind): Target {
  const found = TARGETS.find((entry) => entry.id === id)
  if (found === undefined) throw new Error(`unknown target ${id}`)
  return found
}

// ---- senders ------------------------------------------------------------------------------------

export interface Sender {
  /** Notifications one `send` call carries. */
  readonly perCall: number
  /** How many callers run `send` at once. */
  readonly workers: number
  /** Sends notifications `seq`, `seq + 1`, ... (`perCall` of them); resolves when they are sent. */
  send(seq: number): Promise<void>
  close(): Promise<void>
}

async function connectedClient(url: string, config: pg.ClientConfig = {}): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, ...config })
  await client.connect()
  return client
}

/** Calls `fn` once per event in FIFO order: turns an emitter's per-call confirmation into promises. */
function confirmations(): { wait: () => Promise<void>; confirm: () => void; fail: (error: unknown) => void } {
  const waiting: { resolve: () => void; reject: (error: unknown) => void }[] = []
  let head = 0
  return {
    wait: () => new Promise<void>((resolve, reject) => waiting.push({ resolve, reject })),
    confirm: () => {
      const next = waiting[head++]
      if (head > 1024) {
        waiting.splice(0, head)
        head = 0
      }
      next?.resolve()
    },
    fail: (error) => {
      for (const entry of waiting.splice(0)) entry.reject(error)
      head = 0
    },
  }
}

/** `concurrency` = calls in flight (C); for raw-unnest it is the number of notifications per statement. */
export async function createSender(kind: SenderKind, url: string, names: ChannelNames, concurrency: number): Promise<Sender> {
  const channel = LARGE_KINDS.has(kind) ? names.large : names.small
  const text = (seq: number): string => JSON.stringify(kind === 'raw-unnest-large' ? large(seq) : small(seq))
  switch (kind) {
    case 'raw-rt':
    case 'raw-pipeline': {
      const client = await connectedClient(url, kind === 'raw-pipeline' ? { pipeline: true } : {})
      return {
        perCall: 1,
        workers: concurrency,
        send: async (seq) => {
          await client.query('SELECT pg_notify($1, $2)', [channel, text(seq)])
        },
        close: () => client.end(),
      }
    }
    case 'raw-unnest':
    case 'raw-unnest-large': {
      const client = await connectedClient(url)
      const channels = Array.from({ length: concurrency }, () => channel)
      return {
        perCall: concurrency,
        workers: 1,
        send: async (seq) => {
          const payloads = Array.from({ length: concurrency }, (_, index) => text(seq + index))
          await client.query('SELECT count(pg_notify(c, p)) FROM unnest($1::text[], $2::text[]) AS t(c, p)', [channels, payloads])
        },
        close: () => client.end(),
      }
    }
    case 'pg-ipc': {
      const client = await connectedClient(url)
      const ipc = pgIpc(client)
      const sent = confirmations()
      ipc.on('notify', sent.confirm)
      ipc.on('error', sent.fail)
      return {
        perCall: 1,
        workers: concurrency,
        send: (seq) => {
          const done = sent.wait()
          ipc.notify(channel, small(seq))
          return done
        },
        close: () => client.end(),
      }
    }
    case 'pg-listen': {
      const subscriber = pgListen.default({ connectionString: url }, { paranoidChecking: false })
      await subscriber.connect()
      return {
        perCall: 1,
        workers: concurrency,
        send: async (seq) => {
          await subscriber.notify(channel, small(seq))
        },
        close: () => subscriber.close(),
      }
    }
    case 'postgres': {
      const sql = postgres(url, { max: 1, onnotice: () => undefined })
      await sql`select 1`
      return {
        perCall: 1,
        workers: concurrency,
        send: async (seq) => {
          await sql.notify(channel, text(seq))
        },
        close: () => sql.end({ timeout: 5 }),
      }
    }
    case 'core': {
      const client = await connectedClient(url)
      const ipc = pgIPC(client)
      const sent = confirmations()
      ipc.on('notify', sent.confirm)
      ipc.on('error', sent.fail)
      return {
        perCall: 1,
        workers: concurrency,
        send: (seq) => {
          const done = sent.wait()
          ipc.notify(channel, small(seq))
          return done
        },
        close: async () => {
          await ipc.end()
          await client.end()
        },
      }
    }
    case 'typed-small':
    case 'typed-large':
    case 'typed-large-compiled': {
      const client = await connectedClient(url)
      const ipc = benchChannels(names, kind === 'typed-large-compiled').attach(client)
      const make = kind === 'typed-small' ? small : large
      return {
        perCall: 1,
        workers: concurrency,
        send: (seq) => ipc.notify(channel, make(seq)),
        close: async () => {
          await ipc.end()
          await client.end()
        },
      }
    }
  }
}

// ---- listeners ----------------------------------------------------------------------------------

export interface ListenerOptions {
  /** Listening connections (fan-out). */
  readonly connections?: number
  /** Listeners on the channel per connection; only the first one counts a delivery. */
  readonly listenersPerConnection?: number
  /** Typed layer only: that many instances share each connection, one listener each. */
  readonly instancesPerConnection?: number
}

export interface Listening {
  /** The pg.Client of each connection, where the library runs on one (not pg-listen, postgres.js). */
  readonly clients: readonly pg.Client[]
  /** Stops reading the listening sockets (notifications pile up in the server and the kernel). */
  pause(): void
  resume(): void
  close(): Promise<void>
}

/** Something done with each message so the work cannot be skipped. */
let sink = 0
export function sinkValue(): number {
  return sink
}

function touch(value: unknown): void {
  if (typeof value === 'object' && value !== null) sink = (sink + ((value as { id?: number }).id ?? 1)) | 0
  else sink = (sink + 1) | 0
}

interface Socketed {
  connection?: { stream?: { pause(): void; resume(): void } }
}

/** Listens on the target's channel; `delivered` is called once per notification per connection. */
export async function createListener(
  kind: ListenerKind,
  url: string,
  names: ChannelNames,
  delivered: () => void,
  options: ListenerOptions = {},
): Promise<Listening> {
  const connections = options.connections ?? 1
  const perConnection = options.listenersPerConnection ?? 1
  const instances = options.instancesPerConnection ?? 1
  const channel = LARGE_KINDS.has(kind) ? names.large : names.small
  const sockets: Socketed[] = []
  const clients: pg.Client[] = []
  const closers: (() => Promise<unknown>)[] = []

  const one = async (): Promise<void> => {
    switch (kind) {
      case 'raw':
      case 'raw-large': {
        const client = await connectedClient(url)
        sockets.push(client)
        clients.push(client)
        closers.push(() => client.end())
        client.on('notification', delivered)
        await client.query(`LISTEN ${client.escapeIdentifier(channel)}`)
        return
      }
      case 'pg-ipc': {
        const client = await connectedClient(url)
        sockets.push(client)
        clients.push(client)
        closers.push(() => client.end())
        const ipc = pgIpc(client)
        const listening = new Promise((resolve) => ipc.once('listen', resolve))
        ipc.on(channel, (message: { payload: unknown }) => {
          touch(message.payload)
          delivered()
        })
        for (let index = 1; index < perConnection; index++)
          ipc.on(channel, (message: { payload: unknown }) => touch(message.payload))
        await listening
        return
      }
      case 'pg-listen': {
        const subscriber = pgListen.default({ connectionString: url }, { paranoidChecking: false })
        await subscriber.connect()
        closers.push(() => subscriber.close())
        subscriber.notifications.on(channel, (payload: unknown) => {
          touch(payload)
          delivered()
        })
        for (let index = 1; index < perConnection; index++) subscriber.notifications.on(channel, touch)
        await subscriber.listenTo(channel)
        return
      }
      case 'postgres': {
        const sql = postgres(url, { max: 1, onnotice: () => undefined })
        closers.push(() => sql.end({ timeout: 5 }))
        await sql.listen(channel, (payload) => {
          touch(JSON.parse(payload))
          delivered()
        })
        for (let index = 1; index < perConnection; index++) await sql.listen(channel, (payload) => touch(JSON.parse(payload)))
        return
      }
      case 'core': {
        const client = await connectedClient(url)
        sockets.push(client)
        clients.push(client)
        const ipc = pgIPC(client)
        closers.push(async () => {
          await ipc.end()
          await client.end()
        })
        ipc.on(channel, (message: Message) => {
          touch(message.payload)
          delivered()
        })
        for (let index = 1; index < perConnection; index++) ipc.on(channel, (message: Message) => touch(message.payload))
        await ipc.listening(channel)
        return
      }
      case 'typed-small':
      case 'typed-large':
      case 'typed-large-compiled': {
        const client = await connectedClient(url)
        sockets.push(client)
        clients.push(client)
        const channels = benchChannels(names, kind === 'typed-large-compiled')
        const ipcs = Array.from({ length: instances }, () => channels.attach(client))
        closers.push(async () => {
          for (const ipc of ipcs) await ipc.end()
          await client.end()
        })
        for (const [number, ipc] of ipcs.entries()) {
          ipc.on('invalid', (error) => {
            throw error
          })
          ipc.on(channel, (message) => {
            touch(message.payload)
            if (number === 0) delivered()
          })
          for (let index = 1; index < perConnection; index++) ipc.on(channel, (message) => touch(message.payload))
        }
        for (const ipc of ipcs) await ipc.listening(channel)
        return
      }
    }
  }

  try {
    // A few at a time: 50 connections at once would make the server fork 50 backends together.
    for (let index = 0; index < connections; index += 10) {
      await Promise.all(Array.from({ length: Math.min(10, connections - index) }, one))
    }
  } catch (error) {
    await Promise.allSettled(closers.map((close) => close()))
    throw error
  }

  return {
    clients,
    pause: () => {
      if (sockets.length === 0) throw new Error(`listener ${kind} cannot pause its sockets`)
      for (const socket of sockets) socket.connection?.stream?.pause()
    },
    resume: () => {
      for (const socket of sockets) socket.connection?.stream?.resume()
    },
    close: async () => {
      await Promise.allSettled(closers.map((close) => close()))
    },
  }
}
