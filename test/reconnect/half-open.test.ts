// Silent death: a connection that stops answering without closing (a TcpProxy in front of a private
// server, paused) must be detected by the health check within a bound that is a wide multiple of
// intervalMs + timeoutMs, torn down, and replaced once the network works again. Also an abrupt reset
// (dropAll), and the proxy refusing connections for a while.
import { describe, expect, it, onTestFinished } from 'vitest'
import { z } from 'zod'
import { ConnectionLostError, defineChannels, pgIPC, type ConnectInfo } from '../../src/index.js'
import { privateServer, uniqueChannel } from '../support/db.js'
import { TcpProxy } from '../support/tcp-proxy.js'
import {
  adminClient,
  collect,
  countOf,
  expectExactlyOnce,
  expectNoNewHandles,
  handleCounts,
  listeningOn,
  nextDisconnect,
  nextPayload,
  nextReconnect,
  ownedClients,
  recordErrors,
  recordEvents,
  waitFor,
} from './helpers.js'

const HEALTH = { intervalMs: 200, timeoutMs: 200 }
/** A wide multiple of intervalMs + timeoutMs: this bounds detection, it does not measure speed. */
const DETECT_WITHIN_MS = 5_000

/** 'reconnect' events, checking each came after its own 'disconnect' (one per outage). */
function recordedReconnects(events: { name: string }[]): number {
  const names = events.map((event) => event.name)
  expect(names[0]).toBe('connect')
  const rest = names.slice(1)
  for (let index = 0; index < rest.length; index += 2) expect(rest.slice(index, index + 2)).toEqual(['disconnect', 'reconnect'])
  return rest.filter((name) => name === 'reconnect').length
}

async function proxied(): Promise<{ url: string; proxy: TcpProxy; server: Awaited<ReturnType<typeof privateServer>> }> {
  const server = await privateServer()
  const proxy = new TcpProxy({ host: server.host, port: server.port })
  onTestFinished(() => proxy.close())
  await proxy.start()
  return { server, proxy, url: proxy.url(server.connectionString) }
}

describe('half-open connections and network faults (through a TCP proxy)', () => {
  it('a paused (black-holed) connection is detected by the health check and replaced after resume()', async () => {
    const { server, proxy, url } = await proxied()
    const admin = await adminClient(server.connectionString) // direct, not through the proxy
    const owned = ownedClients(url)
    const baseline = handleCounts()
    const ipc = pgIPC({
      connect: owned.connect,
      retry: { initialDelayMs: 20, maxDelayMs: 200 },
      healthCheck: HEALTH,
      connectTimeoutMs: 500,
    })
    const errors = recordErrors(ipc)
    const events = recordEvents(ipc, ['connect', 'reconnect', 'disconnect'])
    const a = uniqueChannel('a')
    const got = collect(ipc, a)
    await waitFor(ipc, 'connect')
    await ipc.listening(a)
    const oldPid = ipc.processId

    const disconnected = nextDisconnect(ipc, DETECT_WITHIN_MS + 5_000)
    const pausedAt = performance.now()
    proxy.pause()
    const error = await disconnected
    const detectedAfter = performance.now() - pausedAt
    expect(error).toBeInstanceOf(ConnectionLostError)
    expect(error.message).toMatch(/did not answer a health check within 200 ms/)
    expect(detectedAfter).toBeLessThan(DETECT_WITHIN_MS)

    // Still paused: new attempts reach the proxy but never complete; connectTimeoutMs ends them.
    await new Promise((resolve) => owned.events.once('failed', resolve))
    expect(ipc.client).toBeUndefined()

    const reconnected = nextReconnect(ipc)
    proxy.resume()
    const info = await reconnected
    expect(info.attempts).toBeGreaterThanOrEqual(2)
    expect(info.processId).not.toBe(oldPid)
    expect(await listeningOn(owned.latest())).toEqual([a])
    await expectExactlyOnce(ipc, admin, a, got, 'half-open')
    expect(events.map((event) => event.name)).toEqual(['connect', 'disconnect', 'reconnect'])
    expect(errors).toEqual([])

    await ipc.end()
    await proxy.close()
    await expectNoNewHandles(baseline)
    // The old backend went away too once its socket was released (no session leaks on the server).
    const { rows } = await admin.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1', [oldPid])
    expect(rows[0].n).toBe(0)
  })

  it('detection, then the proxy refuses new connections for a while; the first accepted one works', async () => {
    const { server, proxy, url } = await proxied()
    const admin = await adminClient(server.connectionString)
    const owned = ownedClients(url)
    const baseline = handleCounts()
    const ipc = pgIPC({
      connect: owned.connect,
      retry: { initialDelayMs: 20, maxDelayMs: 100 },
      healthCheck: HEALTH,
      connectTimeoutMs: 2_000,
    })
    const errors = recordErrors(ipc)
    const events = recordEvents(ipc, ['connect', 'reconnect', 'disconnect'])
    const a = uniqueChannel('a')
    const got = collect(ipc, a)
    await waitFor(ipc, 'connect')
    await ipc.listening(a)

    const disconnected = nextDisconnect(ipc, DETECT_WITHIN_MS + 5_000)
    const pausedAt = performance.now()
    proxy.pause()
    await disconnected
    expect(performance.now() - pausedAt).toBeLessThan(DETECT_WITHIN_MS)
    // Refuse from now on, clear the black hole: attempts now fail fast with a reset.
    proxy.refuse(true)
    proxy.dropAll()
    proxy.resume()
    let refused = 0
    await new Promise<void>((resolve) => {
      const onFailed = (): void => {
        if (++refused < 3) return
        owned.events.off('failed', onFailed)
        resolve()
      }
      owned.events.on('failed', onFailed)
    })
    const reconnected = nextReconnect(ipc)
    proxy.refuse(false)
    const info = await reconnected
    expect(info.attempts).toBeGreaterThanOrEqual(4)
    expect(await listeningOn(owned.latest())).toEqual([a])
    await expectExactlyOnce(ipc, admin, a, got, 'refused')
    expect(events.map((event) => event.name)).toEqual(['connect', 'disconnect', 'reconnect'])
    expect(errors).toEqual([])
    await ipc.end()
    await proxy.close()
    await expectNoNewHandles(baseline)
  })

  it('an abrupt reset of the connection (dropAll) is a loss at once, even with the health check off', async () => {
    const { server, proxy, url } = await proxied()
    const admin = await adminClient(server.connectionString)
    const owned = ownedClients(url)
    const baseline = handleCounts()
    const ipc = pgIPC({ connect: owned.connect, retry: { initialDelayMs: 20, maxDelayMs: 100 }, healthCheck: false })
    const errors = recordErrors(ipc)
    const events = recordEvents(ipc, ['connect', 'reconnect', 'disconnect'])
    const a = uniqueChannel('a')
    const got = collect(ipc, a)
    await waitFor(ipc, 'connect')
    await ipc.listening(a)
    for (let round = 1; round <= 3; round++) {
      const disconnected = nextDisconnect(ipc)
      const reconnected = nextReconnect(ipc)
      proxy.dropAll()
      expect(await disconnected).toBeInstanceOf(ConnectionLostError)
      await reconnected
      expect(await listeningOn(owned.latest())).toEqual([a])
      await expectExactlyOnce(ipc, admin, a, got, `reset-${round}`)
    }
    expect(recordedReconnects(events)).toBe(3)
    expect(errors).toEqual([])
    await ipc.end()
    await proxy.close()
    await expectNoNewHandles(baseline)
  })

  it('typed layer: a black-holed connection is detected and replaced; messages are decoded exactly once after', async () => {
    const { server, proxy, url } = await proxied()
    const admin = await adminClient(server.connectionString)
    const owned = ownedClients(url)
    const channels = defineChannels({ orderPlaced: z.object({ id: z.number() }) })
    const baseline = handleCounts()
    const typed = channels.attach({
      connect: owned.connect,
      retry: { initialDelayMs: 20, maxDelayMs: 200 },
      healthCheck: HEALTH,
      connectTimeoutMs: 500,
    })
    const errors: Error[] = []
    typed.on('error', (error) => errors.push(error))
    const ids: number[] = []
    typed.on('orderPlaced', (message) => void ids.push(message.payload.id))
    await waitFor(typed as never, 'connect')
    await typed.listening('orderPlaced')

    const disconnected = waitFor<Error>(typed, 'disconnect', { timeoutMs: DETECT_WITHIN_MS + 5_000, rejectOnError: false })
    const pausedAt = performance.now()
    proxy.pause()
    expect(await disconnected).toBeInstanceOf(ConnectionLostError)
    expect(performance.now() - pausedAt).toBeLessThan(DETECT_WITHIN_MS)
    const reconnected = waitFor<ConnectInfo>(typed, 'reconnect', { timeoutMs: 20_000, rejectOnError: false })
    proxy.resume()
    expect((await reconnected).reconnected).toBe(true)
    expect(await listeningOn(owned.latest())).toEqual(['orderPlaced'])

    const arrived = waitFor(typed as never, 'orderPlaced', { filter: (m: { payload: { id: number } }) => m.payload.id === 2 })
    await admin.query('SELECT pg_notify($1, $2)', ['orderPlaced', JSON.stringify({ id: 1 })])
    await typed.notify('orderPlaced', { id: 2 })
    await arrived
    expect(ids).toEqual([1, 2])
    expect(errors).toEqual([])
    await typed.end()
    await proxy.close()
    await expectNoNewHandles(baseline)
  })

  it('with no traffic from the server, a health check of 200/200 ms still notices within the bound, repeatedly', async () => {
    const { proxy, url } = await proxied()
    const baseline = handleCounts()
    const ipc = pgIPC({
      connect: url,
      retry: { initialDelayMs: 20, maxDelayMs: 100 },
      healthCheck: HEALTH,
      connectTimeoutMs: 1_000,
    })
    const errors = recordErrors(ipc)
    const events = recordEvents(ipc, ['connect', 'reconnect', 'disconnect'])
    const a = uniqueChannel('a')
    const got = collect(ipc, a)
    await waitFor(ipc, 'connect')
    for (let round = 1; round <= 3; round++) {
      const disconnected = nextDisconnect(ipc, DETECT_WITHIN_MS + 5_000)
      const pausedAt = performance.now()
      proxy.pause()
      await disconnected
      expect(performance.now() - pausedAt, `round ${round}`).toBeLessThan(DETECT_WITHIN_MS)
      const reconnected = nextReconnect(ipc)
      proxy.resume()
      await reconnected
      await ipc.listening(a)
      const arrived = nextPayload(ipc, a, `round-${round}`)
      ipc.notify(a, `round-${round}`)
      await arrived
      expect(countOf(got, `round-${round}`)).toBe(1)
    }
    expect(recordedReconnects(events)).toBe(3)
    expect(errors).toEqual([])
    await ipc.end()
    await proxy.close()
    await expectNoNewHandles(baseline)
  })
})
