// Batched notify: concurrent calls share round trips, yet each resolved call is exactly one
// delivered notification, in call order, with its own outcome.
import type pg from 'pg'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  BackpressureError,
  defineChannels,
  ErrorCode,
  pgIPC,
  QueryFailedError,
  type ChannelSchemas,
  type CheckChannels,
  type Message,
} from '../../src/index.js'
import { connect, uniqueChannel } from '../support/db.js'

/** Counts the statements a client sends: round trips are what batching saves. */
function countQueries(client: pg.Client): () => number {
  let count = 0
  const original = client.query.bind(client) as (...args: unknown[]) => unknown
  ;(client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
    count++
    return original(...args)
  }
  return () => count
}

/** Collects raw payloads on a channel from a separate connection until `count` arrived. */
async function collector(channel: string, count: number): Promise<{ done: Promise<string[]> }> {
  const ipc = pgIPC(await connect())
  const got: string[] = []
  const done = new Promise<string[]>((resolve) =>
    ipc.on(channel, (m: Message) => {
      got.push(m.rawPayload)
      if (got.length === count) resolve(got)
    }),
  )
  await ipc.listening(channel)
  return { done }
}

describe('batched notify', () => {
  it('an idle instance sends a single notification in one plain statement', async () => {
    const client = await connect()
    const ipc = pgIPC(client)
    const channel = uniqueChannel()
    const { done } = await collector(channel, 1)
    const queries = countQueries(client)
    const sent = new Promise((resolve) => ipc.once('notify', resolve))
    ipc.notify(channel, 'alone')
    await sent
    expect(await done).toEqual(['alone'])
    expect(queries()).toBe(1)
    await ipc.end()
  })

  it('concurrent distinct notifications share statements and keep their order', async () => {
    const { channels } = typedSet()
    const client = await connect()
    const ipc = channels.attach(client)
    const channel = channels.names[0] as string
    const { done } = await collector(channel, 2_000)
    const queries = countQueries(client)
    const values = [...Array(2_000).keys()]
    await Promise.all(values.map((n) => ipc.notify(channel, n)))
    expect((await done).map(Number)).toEqual(values)
    expect(queries()).toBeLessThan(20)
    await ipc.end()
  })

  it('identical notifications in a row are each delivered, without one round trip each', async () => {
    const client = await connect()
    const ipc = pgIPC(client)
    const channel = uniqueChannel('cache')
    const { done } = await collector(channel, 1_000)
    const queries = countQueries(client)
    let confirmed = 0
    const allSent = new Promise<void>((resolve) => ipc.on('notify', () => ++confirmed === 1_000 && resolve()))
    for (let index = 0; index < 1_000; index++) ipc.notify(channel) // no payload: all identical
    await allSent
    expect(await done).toHaveLength(1_000)
    expect(queries()).toBeLessThan(100)
    await ipc.end()
  })

  it('mixed repeats and distinct pairs: exact counts, call order kept', async () => {
    const { channels } = typedSet()
    const client = await connect()
    const ipc = channels.attach(client)
    const channel = channels.names[0] as string
    const sequence = [...Array(600).keys()].map((index) => index % 3) // 0,1,2,0,1,2,...
    const { done } = await collector(channel, sequence.length)
    await Promise.all(sequence.map((n) => ipc.notify(channel, n)))
    expect((await done).map(Number)).toEqual(sequence)
    await ipc.end()
  })

  it('one notification the server rejects fails alone; the others arrive in order', async () => {
    const { channels } = typedSet(z.string())
    const client = await connect()
    const ipc = channels.attach(client)
    const channel = channels.names[0] as string
    const good = ['a', 'b', 'c', 'c', 'd']
    const { done } = await collector(channel, good.length)
    await client.query("SET client_encoding = 'EUC_JP'") // the server cannot take "✓" now
    const outcomes = await Promise.allSettled(['a', 'b', '✓ bad', 'c', 'c', 'd'].map((text) => ipc.notify(channel, text)))
    await client.query("SET client_encoding = 'UTF8'")
    expect(outcomes.map((outcome) => outcome.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'rejected',
      'fulfilled',
      'fulfilled',
      'fulfilled',
    ])
    expect((outcomes[2] as PromiseRejectedResult).reason).toBeInstanceOf(QueryFailedError)
    expect((await done).map((raw) => JSON.parse(raw))).toEqual(good)
    expect((await client.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]) // not left in a failed transaction
    await ipc.end()
  })

  it('large payloads are split so each round trip stays within limits', async () => {
    const { channels } = typedSet(z.string())
    const ipc = channels.attach(await connect())
    const channel = channels.names[0] as string
    const big = (n: number): string => `${n}:`.padEnd(7_000, 'x')
    const { done } = await collector(channel, 400) // 400 x 7 KB = 2.8 MB queued at once
    await Promise.all([...Array(400).keys()].map((n) => ipc.notify(channel, big(n))))
    expect((await done).map((raw) => (JSON.parse(raw) as string).split(':')[0])).toEqual([...Array(400).keys()].map(String))
    await ipc.end()
  })

  it('a producer that never awaits meets a backpressure error past maxPending', async () => {
    const { channels } = typedSet()
    const ipc = channels.attach(await connect(), { maxPending: 50 })
    const channel = channels.names[0] as string
    const results = await Promise.allSettled([...Array(80).keys()].map((n) => ipc.notify(channel, n)))
    const rejected = results.filter((result): result is PromiseRejectedResult => result.status === 'rejected')
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(50)
    expect(rejected).toHaveLength(30)
    expect(rejected[0]?.reason).toBeInstanceOf(BackpressureError)
    expect((rejected[0]?.reason as BackpressureError).code).toBe(ErrorCode.Backpressure)
    await expect(ipc.notify(channel, 1)).resolves.toBeUndefined() // the queue drained
    const core = pgIPC(await connect(), { maxPending: 1 })
    core.notify(channel, 1)
    expect(() => core.notify(channel, 2)).toThrow(BackpressureError)
    await core.end()
    await ipc.end()
  })
})

/** A one-channel typed set with a unique channel name. */
function typedSet(schema: z.ZodType = z.number()) {
  const map: ChannelSchemas = { [uniqueChannel('batch')]: schema }
  return { channels: defineChannels<ChannelSchemas>(map as ChannelSchemas & CheckChannels<ChannelSchemas>) }
}
