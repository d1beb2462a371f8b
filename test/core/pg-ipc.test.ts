// The core against a real PostgreSQL: pg-ipc 1.0.5's behaviour, and each of its defects fixed.
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type pg from 'pg'
import { describe, expect, it } from 'vitest'
import {
  ConnectionLostError,
  EndedError,
  ErrorCode,
  InvalidChannelError,
  ListenerError,
  PayloadNotEncodableError,
  PayloadTooLargeError,
  QueryFailedError,
  pgIPC,
  type Message,
  type PgIPC,
  type PgClient,
  type PgIpcError,
} from '../../src/index.js'
import { connect, databaseUrl, listeningChannels, uniqueChannel, waitFor } from '../support/db.js'

const execFileAsync = promisify(execFile)

/** Resolves with the next message on `channel`. */
function nextMessage(ipc: PgIPC, channel: string): Promise<Message> {
  return new Promise((resolve) => ipc.once(channel, (message) => resolve(message)))
}

/** Adds a listener and resolves once its LISTEN is active. */
async function listen(ipc: PgIPC, channel: string, listener: (message: Message) => unknown = () => {}): Promise<void> {
  ipc.on(channel, listener)
  await ipc.listening(channel)
}

/** Sends with raw SQL from another connection, as a different service would. */
async function rawNotify(sender: pg.Client, channel: string, payload = ''): Promise<void> {
  await sender.query('SELECT pg_notify($1, $2)', [channel, payload])
}

/** Backend pid of a pg client (@types/pg does not declare pg's processID). */
function pidOf(client: pg.Client): number {
  return (client as unknown as PgClient).processID ?? -1
}

/** Collects every `error` event. */
function collectErrors(ipc: PgIPC): PgIpcError[] {
  const errors: PgIpcError[] = []
  ipc.on('error', (error) => errors.push(error))
  return errors
}

describe("pg-ipc's README example", () => {
  it('receives, ignores its own messages, and shuts down as the README shows', async () => {
    const client = await connect()
    const other = await connect()
    const channel = uniqueChannel('readme')
    const ipc = pgIPC(client)
    const errors = collectErrors(ipc)
    ipc.on('end', () => {
      void client.end()
    })
    const received: number[] = []
    const got = new Promise<void>((resolve) => {
      ipc.on(channel, (msg) => {
        // Ignore messages from this process
        if (msg.processId === ipc.processId) return
        received.push((msg.payload as { currentTime: number }).currentTime)
        resolve()
      })
    })
    await ipc.listening(channel)
    ipc.notify(channel, { currentTime: 1 }) // our own: the listener skips it
    await waitFor(ipc, 'notify')
    await rawNotify(other, channel, JSON.stringify({ currentTime: 2 }))
    await got
    expect(received).toEqual([2])
    // Shut down with the channel listener still attached: pg-ipc crashed here (defect 2).
    const ended = once(ipc, 'end')
    await ipc.end()
    await ended
    expect(errors).toEqual([])
    expect(ipc.listenerCount(channel)).toBe(0)
  })
})

describe('LISTEN and UNLISTEN follow the listeners', () => {
  it('LISTENs for the first listener only and UNLISTENs when the last leaves', async () => {
    const client = await connect()
    const ipc = pgIPC(client)
    const channel = uniqueChannel()
    const events: string[] = []
    ipc.on('listen', (name) => events.push(`listen ${name === channel}`))
    ipc.on('unlisten', (name) => events.push(`unlisten ${name === channel}`))
    const a = (): void => {}
    const b = (): void => {}
    ipc.on(channel, a)
    ipc.on(channel, b)
    await ipc.listening(channel)
    expect(await listeningChannels(client)).toEqual([channel])
    ipc.off(channel, a)
    expect(await listeningChannels(client)).toEqual([channel])
    const unlistened = waitFor(ipc, 'unlisten')
    ipc.removeListener(channel, b)
    await unlistened
    expect(await listeningChannels(client)).toEqual([])
    expect(events).toEqual(['listen true', 'unlisten true'])
    await ipc.end()
  })

  it('never LISTENs for reserved event names or symbols', async () => {
    const client = await connect()
    const ipc = pgIPC(client)
    for (const name of [
      'newListener',
      'removeListener',
      'notify',
      'unlisten',
      'listen',
      'error',
      'end',
      'invalid',
      'connect',
      'reconnect',
    ]) {
      ipc.on(name, () => {})
    }
    ipc.on(Symbol('local'), () => {})
    const channel = uniqueChannel()
    await listen(ipc, channel) // a real channel, so the hub has run everything queued before it
    expect(await listeningChannels(client)).toEqual([channel])
    await ipc.end()
  })

  it('addListener, prependListener and prependOnceListener all LISTEN', async () => {
    const client = await connect()
    const other = await connect()
    const ipc = pgIPC(client)
    const [a, b, c] = [uniqueChannel(), uniqueChannel(), uniqueChannel()]
    const got: string[] = []
    ipc.addListener(a, (m) => got.push(m.channel))
    ipc.prependListener(b, (m) => got.push(m.channel))
    ipc.prependOnceListener(c, (m) => got.push(m.channel))
    await Promise.all([ipc.listening(a), ipc.listening(b), ipc.listening(c)])
    expect(await listeningChannels(client)).toEqual([a, b, c].sort())
    const unlistenC = waitFor<string>(ipc, 'unlisten', { filter: (name) => name === c })
    const last = nextMessage(ipc, a)
    for (const channel of [b, c, c, a]) await rawNotify(other, channel)
    await last
    await unlistenC
    expect(got).toEqual([b, c, a])
    expect(await listeningChannels(client)).toEqual([a, b].sort())
    await ipc.end()
  })

  it('once receives one message, then UNLISTENs', async () => {
    const client = await connect()
    const other = await connect()
    const ipc = pgIPC(client)
    const channel = uniqueChannel()
    const got: string[] = []
    ipc.once(channel, (m) => got.push(m.rawPayload))
    await ipc.listening(channel)
    const unlistened = waitFor(ipc, 'unlisten')
    await rawNotify(other, channel, 'first')
    await rawNotify(other, channel, 'second')
    await unlistened
    expect(got).toEqual(['first'])
    expect(await listeningChannels(client)).toEqual([])
    await ipc.end()
  })

  it('emits listen, notify, the message and unlisten in that order', async () => {
    const client = await connect()
    const ipc = pgIPC(client)
    const channel = uniqueChannel()
    const events: string[] = []
    ipc.on('listen', () => events.push('listen'))
    ipc.on('notify', (name, payload) => events.push(`notify ${String(name === channel)} ${JSON.stringify(payload)}`))
    ipc.on('unlisten', () => events.push('unlisten'))
    const done = waitFor(ipc, 'unlisten')
    ipc.once(channel, (m) => events.push(`message ${JSON.stringify(m.payload)}`))
    ipc.notify(channel, { n: 1 })
    await done
    // As in pg-ipc, our own notification arrives before the server's answer to the NOTIFY.
    expect(events).toEqual(['listen', 'message {"n":1}', 'notify true {"n":1}', 'unlisten'])
    await ipc.end()
  })

  it('a listener added after removeAllListeners() still LISTENs (defect 6)', async () => {
    const client = await connect()
    const other = await connect()
    const ipc = pgIPC(client)
    const first = uniqueChannel()
    await listen(ipc, first)
    ipc.removeAllListeners()
    const second = uniqueChannel()
    const message = nextMessage(ipc, second)
    await ipc.listening(second)
    expect(await listeningChannels(client)).toEqual([second])
    await rawNotify(other, second, 'after')
    expect((await message).rawPayload).toBe('after')
    await ipc.end()
  })

  it('removeAllListeners(channel) UNLISTENs that channel only', async () => {
    const client = await connect()
    const ipc = pgIPC(client)
    const [a, b] = [uniqueChannel(), uniqueChannel()]
    await listen(ipc, a)
    await listen(ipc, a)
    await listen(ipc, b)
    const unlistened = waitFor(ipc, 'unlisten')
    ipc.removeAllListeners(a)
    await unlistened
    expect(await listeningChannels(client)).toEqual([b])
    await ipc.end()
  })
})

describe('channel names', () => {
  const odd = [
    'with space',
    'with "double" quotes',
    "it's",
    'MixedCase',
    'UPPER',
    'ünïcødé ✓ 頻道',
    "x'); DROP TABLE pg_class; --",
    'wat-;.ø.§',
    'a"; LISTEN "b',
    '$1',
    'back\\slash',
  ]
  for (const channel of odd) {
    it(`round-trips on ${JSON.stringify(channel)}, exactly as written`, async () => {
      const client = await connect()
      const ipc = pgIPC(client)
      const message = nextMessage(ipc, channel)
      await ipc.listening(channel)
      expect(await listeningChannels(client)).toEqual([channel])
      ipc.notify(channel, { ok: true })
      const received = await message
      expect(received.channel).toBe(channel)
      expect(received.payload).toEqual({ ok: true })
      await ipc.end()
      expect(await listeningChannels(client)).toEqual([])
    })
  }

  it('accepts a name of exactly 63 bytes', async () => {
    const client = await connect()
    const ipc = pgIPC(client)
    const channel = `${uniqueChannel('max')}_`.padEnd(63, 'x')
    expect(Buffer.byteLength(channel)).toBe(63)
    const message = nextMessage(ipc, channel)
    await ipc.listening(channel)
    ipc.notify(channel, 'hi')
    expect((await message).payload).toBe('hi')
    await ipc.end()
  })

  const bad: [string, string][] = [
    ['empty', ''],
    ['64 ASCII bytes', 'x'.repeat(64)],
    ['70 bytes', 'y'.repeat(70)],
    ['22 three-byte characters (66 bytes)', '頻'.repeat(22)],
    ['a NUL byte', 'a\u0000b'],
  ]
  for (const [what, channel] of bad) {
    it(`rejects ${what} synchronously; nothing is registered or sent (defect 3)`, async () => {
      const client = await connect()
      const ipc = pgIPC(client)
      const errors = collectErrors(ipc)
      expect(() => ipc.on(channel, () => {})).toThrow(InvalidChannelError)
      expect(() => ipc.once(channel, () => {})).toThrow(InvalidChannelError)
      expect(() => ipc.notify(channel, 'x')).toThrow(InvalidChannelError)
      expect(ipc.listenerCount(channel)).toBe(0)
      try {
        ipc.on(channel, () => {})
      } catch (error) {
        expect((error as InvalidChannelError).code).toBe(ErrorCode.InvalidChannel)
        expect((error as Error).message).toMatch(/channel name/i)
      }
      const probe = uniqueChannel()
      await listen(ipc, probe) // runs after anything that might have been queued
      expect(await listeningChannels(client)).toEqual([probe])
      expect(errors).toEqual([])
      await ipc.end()
    })
  }
})

describe('payloads', () => {
  // pg-ipc: strings are sent raw, everything else as JSON, null/undefined as no payload; the
  // receiver tries JSON.parse and falls back to the raw text.
  const cases: [string, unknown, unknown, string][] = [
    ['0', 0, 0, '0'],
    ['false', false, false, 'false'],
    ['true', true, true, 'true'],
    ["''", '', '', ''],
    ['null (no payload)', null, '', ''],
    ['undefined (no payload)', undefined, '', ''],
    ['a nested object', { a: [1, { b: null }], c: 'd' }, { a: [1, { b: null }], c: 'd' }, '{"a":[1,{"b":null}],"c":"d"}'],
    ['an array', [1, 'two'], [1, 'two'], '[1,"two"]'],
    ['a plain string', 'hello', 'hello', 'hello'],
    ["the string '5' (decoded as JSON, like pg-ipc)", '5', 5, '5'],
    ['a string with quotes', `it's "quoted"`, `it's "quoted"`, `it's "quoted"`],
    ['unicode', 'ø ✓ 🎉', 'ø ✓ 🎉', 'ø ✓ 🎉'],
    ['a Date (JSON)', new Date('2020-01-02T03:04:05.000Z'), '2020-01-02T03:04:05.000Z', '"2020-01-02T03:04:05.000Z"'],
  ]
  for (const [what, sent, payload, raw] of cases) {
    it(`delivers ${what}`, async () => {
      const client = await connect()
      const ipc = pgIPC(client)
      const channel = uniqueChannel()
      const message = nextMessage(ipc, channel)
      await ipc.listening(channel)
      ipc.notify(channel, sent)
      const received = await message
      expect(received.payload).toEqual(payload)
      expect(received.rawPayload).toBe(raw)
      expect(received.processId).toBe(ipc.processId)
      await ipc.end()
    })
  }

  it('sends 7999 bytes and refuses 8000 before sending', async () => {
    const client = await connect()
    const ipc = pgIPC(client)
    const errors = collectErrors(ipc)
    const channel = uniqueChannel()
    const message = nextMessage(ipc, channel)
    await ipc.listening(channel)
    expect(() => ipc.notify(channel, 'é'.repeat(4000))).toThrow(PayloadTooLargeError) // 8000 bytes
    expect(() => ipc.notify(channel, 'x'.repeat(8000))).toThrow(/8000 bytes.*at most 7999/)
    const fits = 'é'.repeat(3999) + 'x' // 7999 bytes
    ipc.notify(channel, fits)
    expect((await message).rawPayload).toBe(fits)
    expect(errors).toEqual([])
    await ipc.end()
  })

  const unencodable: [string, () => unknown][] = [
    ['a BigInt', () => 10n],
    ['an object holding a BigInt', () => ({ n: 1n })],
    [
      'a circular object',
      () => {
        const value: Record<string, unknown> = {}
        value.self = value
        return value
      },
    ],
    ['a function', () => () => 1],
    ['a symbol', () => Symbol('s')],
    ['a string with a NUL byte', () => 'a\u0000b'],
  ]
  for (const [what, make] of unencodable) {
    it(`throws for ${what}; nothing is sent`, async () => {
      const client = await connect()
      const ipc = pgIPC(client)
      const channel = uniqueChannel()
      const got: Message[] = []
      await listen(ipc, channel, (m) => got.push(m))
      expect(() => ipc.notify(channel, make())).toThrow(PayloadNotEncodableError)
      const marker = nextMessage(ipc, channel)
      ipc.notify(channel, 'marker')
      await marker
      expect(got.map((m) => m.rawPayload)).toEqual(['marker'])
      await ipc.end()
    })
  }
})

describe('several instances on one client', () => {
  it('keeps a channel LISTENed while another instance needs it (defect 4)', async () => {
    const client = await connect()
    const other = await connect()
    const a = pgIPC(client)
    const b = pgIPC(client)
    const channel = uniqueChannel()
    const fromB: string[] = []
    await listen(a, channel)
    await listen(b, channel, (m) => fromB.push(m.rawPayload))
    a.removeAllListeners(channel)
    await waitFor(a, 'unlisten')
    expect(await listeningChannels(client)).toEqual([channel])
    await a.end()
    expect(await listeningChannels(client)).toEqual([channel])
    const next = nextMessage(b, channel)
    await rawNotify(other, channel, 'still here')
    await next
    expect(fromB).toEqual(['still here'])
    await b.end()
    expect(await listeningChannels(client)).toEqual([])
  })

  it('end() of one instance releases only what no other instance needs', async () => {
    const client = await connect()
    const a = pgIPC(client)
    const b = pgIPC(client)
    const [shared, onlyA] = [uniqueChannel(), uniqueChannel()]
    await listen(a, shared)
    await listen(a, onlyA)
    await listen(b, shared)
    await a.end()
    expect(await listeningChannels(client)).toEqual([shared])
    await b.end()
    expect(await listeningChannels(client)).toEqual([])
  })

  it('decodes each payload once and hands every listener the same frozen message (defect 5)', async () => {
    const client = await connect()
    const other = await connect()
    const a = pgIPC(client)
    const b = pgIPC(client)
    const channel = uniqueChannel()
    const seen: Message[] = []
    await listen(a, channel, (m) => seen.push(m))
    await listen(a, channel, (m) => seen.push(m))
    const last = new Promise<void>((resolve) => b.on(channel, (m) => (seen.push(m), resolve())))
    await b.listening(channel)
    await rawNotify(other, channel, '5')
    await last
    expect(seen).toHaveLength(3)
    expect(seen.map((m) => m.payload)).toEqual([5, 5, 5])
    expect(new Set(seen).size).toBe(1)
    expect(Object.isFrozen(seen[0])).toBe(true)
    await a.end()
    await b.end()
  })

  it('removes its client listeners when the last instance ends, and an ended instance routes nothing (defect 7)', async () => {
    const client = await connect()
    const other = await connect()
    const before = client.listenerCount('notification')
    const a = pgIPC(client)
    const b = pgIPC(client)
    const channel = uniqueChannel()
    const fromA: Message[] = []
    await listen(a, channel, (m) => fromA.push(m))
    await listen(b, channel)
    expect(client.listenerCount('notification')).toBe(before + 1)
    await a.end()
    const reachedB = nextMessage(b, channel)
    await rawNotify(other, channel, 'late')
    await reachedB
    expect(fromA).toEqual([])
    await b.end()
    expect(client.listenerCount('notification')).toBe(before)
    expect(client.listenerCount('error')).toBe(0)
    expect(client.listenerCount('end')).toBe(0)
  })
})

describe('failing listeners (defect 8)', () => {
  it('a throwing listener reaches error; others still run; the connection keeps working', async () => {
    const client = await connect()
    const other = await connect()
    const ipc = pgIPC(client)
    const channel = uniqueChannel()
    const errors = collectErrors(ipc)
    const got: string[] = []
    await listen(ipc, channel, (m) => {
      if (m.rawPayload === 'boom') throw new Error('listener exploded')
      got.push(`first ${m.rawPayload}`)
    })
    await listen(ipc, channel, (m) => got.push(`second ${m.rawPayload}`))
    const afterBoom = new Promise<void>((resolve) => ipc.on(channel, (m) => m.rawPayload === 'after' && resolve()))
    await rawNotify(other, channel, 'boom')
    await rawNotify(other, channel, 'after')
    await afterBoom
    expect(got).toEqual(['second boom', 'first after', 'second after'])
    expect(errors).toHaveLength(1)
    expect(errors[0]).toBeInstanceOf(ListenerError)
    expect(errors[0]?.channel).toBe(channel)
    expect((errors[0]?.cause as Error).message).toBe('listener exploded')
    // The connection is not wedged: a query answers and the same message is not re-delivered.
    expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }])
    expect(got.filter((entry) => entry.endsWith('boom'))).toEqual(['second boom'])
    await ipc.end()
  })

  it('an async listener that rejects reaches error', async () => {
    const client = await connect()
    const ipc = pgIPC(client)
    const channel = uniqueChannel()
    await listen(ipc, channel, async () => {
      await Promise.resolve()
      throw new Error('async failure')
    })
    const error = waitFor<PgIpcError>(ipc, 'error')
    ipc.notify(channel, 1)
    const received = await error
    expect(received.code).toBe(ErrorCode.ListenerFailed)
    expect((received.cause as Error).message).toBe('async failure')
    await ipc.end()
  })

  it('with no error listener, a throwing listener becomes an uncaught exception outside pg', async () => {
    // In a child process: the test runner treats any uncaught exception as a failure of its own.
    const fixture = fileURLToPath(new URL('./uncaught-listener.fixture.mjs', import.meta.url))
    const { stdout } = await execFileAsync(process.execPath, [fixture], {
      env: { ...process.env, DATABASE_URL: databaseUrl(), CHANNEL: uniqueChannel() },
      timeout: 20_000,
    })
    expect(JSON.parse(stdout)).toEqual({
      uncaught: 'ERR_PG_IPC_LISTENER_FAILED',
      thrownFromPg: false,
      afterwards: 'next',
    })
  })
})

describe('end() in every client state', () => {
  it('on a client that never connected emits end at once (defect 1)', async () => {
    const { default: pgModule } = await import('pg')
    const client = new pgModule.Client({ host: '127.0.0.1', port: 1 })
    const ipc = pgIPC(client)
    ipc.on(uniqueChannel(), () => {})
    const ended = once(ipc, 'end')
    await ipc.end()
    await ended
    expect(client.listenerCount('notification')).toBe(0)
  })

  it('after client.end() it emits end without an error (defect 2)', async () => {
    const client = await connect()
    const ipc = pgIPC(client)
    const errors = collectErrors(ipc)
    await listen(ipc, uniqueChannel())
    await client.end()
    const ended = once(ipc, 'end')
    await ipc.end()
    await ended
    expect(errors).toEqual([])
  })

  it('after the connection died it reports the loss once, then ends cleanly (defects 2 and 9)', async () => {
    const client = await connect()
    const admin = await connect()
    const ipc = pgIPC(client)
    const errors = collectErrors(ipc)
    await listen(ipc, uniqueChannel())
    const lost = waitFor<PgIpcError>(ipc, 'error')
    client.on('error', () => {}) // pg reports the loss again after the instance has let go
    await admin.query('SELECT pg_terminate_backend($1)', [pidOf(client)])
    const error = await lost
    expect(error).toBeInstanceOf(ConnectionLostError)
    expect(error.message).toMatch(/connection/i)
    const ended = once(ipc, 'end')
    await ipc.end()
    await ended
    expect(errors).toHaveLength(1)
  })

  it('is idempotent; a late notify() sends nothing and warns once, on() after end() throws', async () => {
    const client = await connect()
    const other = await connect()
    const ipc = pgIPC(client)
    let ends = 0
    ipc.on('end', () => ends++)
    const channel = uniqueChannel()
    await listen(ipc, channel)
    const first = ipc.end()
    const second = ipc.end()
    await Promise.all([first, second])
    expect(ends).toBe(1)
    const warnings: Error[] = []
    const onWarning = (warning: Error): void => void warnings.push(warning)
    process.on('warning', onWarning)
    try {
      const seen: string[] = []
      other.on('notification', (message) => seen.push(message.payload ?? ''))
      await other.query(`LISTEN ${channel}`)
      // pg-ipc's own test suite notifies from an 'end' listener and expects no error.
      expect(() => ipc.notify(channel, 'late-1')).not.toThrow()
      expect(() => ipc.send(channel, 'late-2')).not.toThrow()
      const marker = waitFor(other as never, 'notification', {
        filter: (message) => (message as { payload: string }).payload === 'marker',
      })
      await other.query('SELECT pg_notify($1, $2)', [channel, 'marker'])
      await marker
      expect(seen).toEqual(['marker'])
      await new Promise((resolve) => setImmediate(resolve)) // process warnings are emitted on the next tick
      const late = warnings.filter((warning) => /after end\(\) was ignored/.test(warning.message))
      expect(late).toHaveLength(1)
      expect((late[0] as Error & { code?: string }).code).toBe(ErrorCode.Ended)
    } finally {
      process.off('warning', onWarning)
    }
    expect(() => ipc.on(channel, () => {})).toThrow(EndedError)
    expect(await listeningChannels(client)).toEqual([])
  })

  it('does not end the client, which stays usable', async () => {
    const client = await connect()
    const ipc = pgIPC(client)
    await listen(ipc, uniqueChannel())
    await ipc.end()
    expect((await client.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }])
  })

  it('while the client is still connecting, ends after the connection is up', async () => {
    const { default: pgModule } = await import('pg')
    const client = new pgModule.Client({ connectionString: databaseUrl() })
    const connecting = client.connect()
    const ipc = pgIPC(client)
    const channel = uniqueChannel()
    ipc.on(channel, () => {})
    await ipc.end()
    await connecting
    expect(await listeningChannels(client)).toEqual([])
    await client.end()
  })
})

describe('a listener added before the client connects', () => {
  it('LISTENs once the connection is up', async () => {
    const { default: pgModule } = await import('pg')
    const client = new pgModule.Client({ connectionString: databaseUrl() })
    const ipc = pgIPC(client)
    const channel = uniqueChannel()
    const message = nextMessage(ipc, channel)
    ipc.notify(channel, 'queued before connect')
    await client.connect()
    expect((await message).payload).toBe('queued before connect')
    await ipc.end()
    await client.end()
  })
})

describe('connection loss (defect 9)', () => {
  it('a client error is emitted as error, with the cause', async () => {
    const client = await connect()
    const admin = await connect()
    const ipc = pgIPC(client)
    const lost = waitFor<PgIpcError>(ipc, 'error')
    client.on('error', () => {}) // pg reports the loss again after the instance has let go
    await admin.query('SELECT pg_terminate_backend($1)', [pidOf(client)])
    const error = await lost
    expect(error.code).toBe(ErrorCode.ConnectionLost)
    expect(error.cause).toBeInstanceOf(Error)
    expect(() => ipc.notify(uniqueChannel(), 1)).not.toThrow()
    const failed = await waitFor<PgIpcError>(ipc, 'error')
    expect(failed.code).toBe(ErrorCode.ConnectionLost)
    await ipc.end()
  })
})

describe('reserved names', () => {
  it('a notification on a channel named like an event is never emitted as that event', async () => {
    const client = await connect()
    const other = await connect()
    const ipc = pgIPC(client)
    const errors = collectErrors(ipc)
    let ends = 0
    ipc.on('end', () => ends++)
    await client.query('LISTEN "error"')
    await client.query('LISTEN "end"')
    const channel = uniqueChannel()
    const marker = nextMessage(ipc, channel)
    await ipc.listening(channel)
    await rawNotify(other, 'error', 'not an error')
    await rawNotify(other, 'end', 'not an end')
    await rawNotify(other, channel, 'marker')
    await marker
    expect(errors).toEqual([])
    expect(ends).toBe(0)
    await client.query('UNLISTEN *')
    await ipc.end()
  })
})

describe("LISTEN and the user's transactions", () => {
  it('a listener added inside an open transaction LISTENs after COMMIT, not inside it', async () => {
    const client = await connect()
    const other = await connect()
    const ipc = pgIPC(client)
    await client.query('BEGIN')
    const channel = uniqueChannel()
    const message = nextMessage(ipc, channel)
    const listening = ipc.listening(channel)
    expect(await listeningChannels(client)).toEqual([]) // not yet: we are inside the transaction
    await client.query('ROLLBACK')
    await listening
    expect(await listeningChannels(client)).toEqual([channel])
    await rawNotify(other, channel, 'after rollback')
    expect((await message).payload).toBe('after rollback')
    await ipc.end()
  })

  it('a LISTEN that pg ran inside a transaction begun just before is redone after ROLLBACK', async () => {
    const client = await connect()
    const other = await connect()
    const ipc = pgIPC(client)
    const channel = uniqueChannel()
    const begin = client.query('BEGIN') // on the wire before our LISTEN
    const message = nextMessage(ipc, channel)
    await begin
    await client.query('SELECT 1')
    await client.query('ROLLBACK')
    await ipc.listening(channel)
    expect(await listeningChannels(client)).toEqual([channel])
    await rawNotify(other, channel, 'kept')
    expect((await message).payload).toBe('kept')
    await ipc.end()
  })
})

describe('server errors', () => {
  it('a NOTIFY the server rejects is emitted as error; later ones still go through', async () => {
    const client = await connect()
    const ipc = pgIPC(client)
    const channel = uniqueChannel()
    const message = nextMessage(ipc, channel)
    await ipc.listening(channel)
    // The server cannot convert this text to EUC_JP, so it refuses the statement (SQLSTATE 22021).
    await client.query("SET client_encoding = 'EUC_JP'")
    const failed = waitFor<PgIpcError>(ipc, 'error')
    ipc.notify(channel, '✓ refused')
    const error = await failed
    expect(error).toBeInstanceOf(QueryFailedError)
    expect((error as QueryFailedError).command).toBe('NOTIFY')
    expect((error as QueryFailedError).sqlState).toBe('22021')
    expect(error.message).toMatch(/NOTIFY on channel .* failed: invalid byte sequence/)
    await client.query("SET client_encoding = 'UTF8'")
    ipc.notify(channel, 'accepted')
    expect((await message).payload).toBe('accepted')
    await ipc.end()
  })
})
