// The typed layer in the reconnecting mode (channels.attach({ connect, ... })): same options and
// events as the core. pg_terminate_backend and a full restart, with ignoreOwn following the new
// backend pid, messages() loops surviving the outage, listeners changed during it, onConnect.
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { ConnectionLostError, defineChannels, type ConnectInfo, type TypedIPC } from '../../src/index.js'
import { privateServer } from '../support/db.js'
import { adminClient, expectNoNewHandles, handleCounts, listeningOn, ownedClients, waitFor } from './helpers.js'

const schemas = {
  orderPlaced: z.object({ id: z.number() }),
  orderShipped: z.object({ id: z.number() }),
  cacheCleared: z.object({ key: z.string() }),
}
const channels = defineChannels(schemas)
type Typed = TypedIPC<typeof schemas>

const FAST_RETRY = { initialDelayMs: 20, maxDelayMs: 200 }

/** The typed emitter as waitFor's Emitter (its typed on/off signatures are narrower). */
function events(typed: Typed): Parameters<typeof waitFor>[0] {
  return typed
}

function nextEvent<T>(typed: Typed, name: string, timeoutMs = 20_000): Promise<T> {
  return waitFor<T>(events(typed), name, { timeoutMs, rejectOnError: false })
}

function nextId(typed: Typed, channel: keyof typeof schemas, id: number): Promise<unknown> {
  return waitFor(events(typed), channel, { filter: (message: { payload: { id?: number } }) => message.payload.id === id })
}

describe('typed layer, reconnecting mode', () => {
  it('pg_terminate_backend: re-LISTEN, one reconnect per outage, exactly once, ignoreOwn follows the new pid', async () => {
    const server = await privateServer()
    const admin = await adminClient(server.connectionString)
    const owned = ownedClients(server.connectionString)
    const baseline = handleCounts()
    const typed = channels.attach({ connect: owned.connect, retry: FAST_RETRY, ignoreOwn: true })
    const errors: Error[] = []
    typed.on('error', (error) => errors.push(error))
    const log: string[] = []
    for (const name of ['connect', 'reconnect', 'disconnect'] as const) typed.on(name, () => void log.push(name))
    const placed: number[] = []
    typed.on('orderPlaced', (message) => void placed.push(message.payload.id))
    typed.on('orderShipped', () => undefined)

    const first = await nextEvent<ConnectInfo>(typed, 'connect')
    expect(first.reconnected).toBe(false)
    await typed.listening('orderPlaced')

    let id = 0
    for (let outage = 1; outage <= 2; outage++) {
      const oldPid = typed.processId
      const disconnected = nextEvent<Error>(typed, 'disconnect')
      const reconnected = nextEvent<ConnectInfo>(typed, 'reconnect')
      await admin.query('SELECT pg_terminate_backend($1)', [oldPid])
      expect(await disconnected).toBeInstanceOf(ConnectionLostError)
      const info = await reconnected
      expect(info.reconnected).toBe(true)
      expect(typed.processId).toBe(info.processId)
      expect(typed.processId).not.toBe(oldPid)
      expect(await listeningOn(owned.latest())).toEqual(['orderPlaced', 'orderShipped'])

      // Own notifications are skipped by the NEW pid; another session's arrive exactly once.
      const own = ++id
      await typed.notify('orderPlaced', { id: own })
      const other = ++id
      const arrived = nextId(typed, 'orderPlaced', other)
      await admin.query('SELECT pg_notify($1, $2)', ['orderPlaced', JSON.stringify({ id: other })])
      await arrived
      expect(placed.filter((value) => value === own)).toEqual([])
      expect(placed.filter((value) => value === other)).toEqual([other])
    }
    expect(log).toEqual(['connect', 'disconnect', 'reconnect', 'disconnect', 'reconnect'])
    expect(errors).toEqual([])
    await typed.end()
    await expectNoNewHandles(baseline)
  })

  it('a full server stop and start: a messages() loop keeps going across the outage', async () => {
    const server = await privateServer()
    const owned = ownedClients(server.connectionString)
    const baseline = handleCounts()
    const typed = channels.attach({ connect: owned.connect, retry: FAST_RETRY })
    const errors: Error[] = []
    typed.on('error', (error) => errors.push(error))
    await nextEvent(typed, 'connect')
    const loop = typed.messages('orderPlaced')
    const received: number[] = []
    const consumed = (async () => {
      for await (const message of loop) {
        received.push(message.payload.id)
        if (message.payload.id === 3) break
      }
    })()
    await typed.listening('orderPlaced')
    await typed.notify('orderPlaced', { id: 1 })

    const disconnected = nextEvent(typed, 'disconnect')
    await server.stopServerOnly('fast')
    await disconnected
    const reconnected = nextEvent<ConnectInfo>(typed, 'reconnect')
    const waiting = typed.notify('orderPlaced', { id: 2 }) // waits for the connection (default policy)
    await server.start()
    await reconnected
    await waiting
    expect(await listeningOn(owned.latest())).toEqual(['orderPlaced'])
    const unlistened = nextEvent(typed, 'unlisten')
    await typed.notify('orderPlaced', { id: 3 })
    await consumed
    expect(received).toEqual([1, 2, 3])
    // Leaving the loop released the LISTEN on the new connection.
    await unlistened
    expect(await listeningOn(owned.latest())).toEqual([])
    expect(errors).toEqual([])
    await typed.end()
    await expectNoNewHandles(baseline)
  })

  it('listeners added and removed during the outage take effect after it', async () => {
    const server = await privateServer()
    const owned = ownedClients(server.connectionString)
    const baseline = handleCounts()
    const typed = channels.attach({ connect: owned.connect, retry: FAST_RETRY })
    const errors: Error[] = []
    typed.on('error', (error) => errors.push(error))
    const placed: number[] = []
    const onPlaced = (message: { payload: { id: number } }): void => void placed.push(message.payload.id)
    typed.on('orderPlaced', onPlaced)
    typed.on('cacheCleared', () => undefined)
    await nextEvent(typed, 'connect')
    await Promise.all([typed.listening('orderPlaced'), typed.listening('cacheCleared')])

    const disconnected = nextEvent(typed, 'disconnect')
    await server.stopServerOnly('fast')
    await disconnected
    typed.off('orderPlaced', onPlaced)
    const shipped: number[] = []
    typed.on('orderShipped', (message) => void shipped.push(message.payload.id))
    const reconnected = nextEvent(typed, 'reconnect')
    await server.start()
    await reconnected
    await typed.listening('orderShipped')
    expect(await listeningOn(owned.latest())).toEqual(['cacheCleared', 'orderShipped'])

    const admin = await adminClient(server.connectionString)
    await admin.query('SELECT pg_notify($1, $2)', ['orderPlaced', JSON.stringify({ id: 1 })])
    const arrived = nextId(typed, 'orderShipped', 2)
    await admin.query('SELECT pg_notify($1, $2)', ['orderShipped', JSON.stringify({ id: 2 })])
    await arrived
    expect(placed).toEqual([])
    expect(shipped).toEqual([2])
    expect(errors).toEqual([])
    await admin.end()
    await typed.end()
    await expectNoNewHandles(baseline)
  })

  it('onConnect runs with LISTEN active, before connect/reconnect', async () => {
    const server = await privateServer()
    const admin = await adminClient(server.connectionString)
    const owned = ownedClients(server.connectionString)
    const order: string[] = []
    const baseline = handleCounts()
    const typed: Typed = channels.attach({
      connect: owned.connect,
      retry: FAST_RETRY,
      onConnect: async (info) => {
        order.push(`hook ${String(info.reconnected)} ${(await listeningOn(owned.latest())).join(',')}`)
        await admin.query('SELECT pg_notify($1, $2)', ['orderPlaced', JSON.stringify({ id: info.reconnected ? 2 : 1 })])
      },
    })
    typed.on('error', () => undefined)
    const placed: number[] = []
    typed.on('orderPlaced', (message) => void placed.push(message.payload.id))
    typed.on('connect', () => void order.push('connect'))
    typed.on('reconnect', () => void order.push('reconnect'))
    await nextEvent(typed, 'connect')
    if (!placed.includes(1)) await nextId(typed, 'orderPlaced', 1)
    const reconnected = nextEvent(typed, 'reconnect')
    await admin.query('SELECT pg_terminate_backend($1)', [typed.processId])
    await reconnected
    if (!placed.includes(2)) await nextId(typed, 'orderPlaced', 2)
    expect(order).toEqual(['hook false orderPlaced', 'connect', 'hook true orderPlaced', 'reconnect'])
    expect(placed).toEqual([1, 2])
    await typed.end()
    await expectNoNewHandles(baseline)
  })

  it('a failing onConnect is reported, and does not end messages() loops on a healthy connection', async () => {
    const server = await privateServer()
    const admin = await adminClient(server.connectionString)
    let calls = 0
    const typed = channels.attach({
      connect: server.connectionString,
      retry: FAST_RETRY,
      onConnect: () => {
        calls++
        if (calls === 2) throw new Error('catch-up query failed')
      },
    })
    const errors: Error[] = []
    typed.on('error', (error) => errors.push(error))
    await nextEvent(typed, 'connect')
    const loop = typed.messages('orderPlaced')
    const received: number[] = []
    let loopError: unknown
    const consumed = (async () => {
      try {
        for await (const message of loop) {
          received.push(message.payload.id)
          if (message.payload.id === 2) break
        }
      } catch (error) {
        loopError = error
      }
    })()
    await typed.listening('orderPlaced')
    await admin.query('SELECT pg_notify($1, $2)', ['orderPlaced', JSON.stringify({ id: 1 })])
    const reconnected = nextEvent(typed, 'reconnect')
    await admin.query('SELECT pg_terminate_backend($1)', [typed.processId])
    await reconnected
    expect(errors.map((error) => error.message)).toEqual([expect.stringMatching(/onConnect hook failed: catch-up query failed/)])
    // The connection is fine and LISTENs: the loop should still get the next message.
    await typed.listening('orderPlaced').catch(() => undefined)
    await admin.query('SELECT pg_notify($1, $2)', ['orderPlaced', JSON.stringify({ id: 2 })])
    await Promise.race([consumed, new Promise((resolve) => setTimeout(resolve, 3_000).unref())])
    expect(loopError).toBeUndefined()
    expect(received).toEqual([1, 2])
    await typed.end()
  })
})
