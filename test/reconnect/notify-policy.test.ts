// notify() during an outage under the default policy of the reconnecting mode: it waits for the
// connection (bounded in time and in count), is delivered exactly once after the reconnect, and is
// rejected with NotConnectedError beyond maxWaitMs or maxQueued (then never sent). A notification in
// flight when the connection dies has an unknown outcome: NotifyOutcomeUnknownError, never resent.
// Both for the core (errors arrive as 'error' events) and the typed layer (notify() rejects).
import { describe, expect, it, onTestFinished } from 'vitest'
import { z } from 'zod'
import {
  defineChannels,
  ErrorCode,
  NotConnectedError,
  NotifyOutcomeUnknownError,
  pgIPC,
  type PgIpcError,
} from '../../src/index.js'
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
  waitFor,
} from './helpers.js'

const FAST_RETRY = { initialDelayMs: 20, maxDelayMs: 100 }

/** The 'notify' events (accepted by the server) of a core instance, as payloads. */
function confirmed(ipc: ReturnType<typeof pgIPC>): unknown[] {
  const payloads: unknown[] = []
  ipc.on('notify', (_channel: string, payload: unknown) => void payloads.push(payload))
  return payloads
}

describe('core: notify during an outage', () => {
  it('default policy: waits for the connection and is delivered exactly once after the reconnect', async () => {
    const server = await privateServer()
    const owned = ownedClients(server.connectionString)
    const baseline = handleCounts()
    const ipc = pgIPC({ connect: owned.connect, retry: FAST_RETRY }) // whileDisconnected: defaults
    const errors = recordErrors(ipc)
    const accepted = confirmed(ipc)
    const a = uniqueChannel('a')
    const got = collect(ipc, a)
    await waitFor(ipc, 'connect')
    await ipc.listening(a)

    const disconnected = nextDisconnect(ipc)
    await server.stopServerOnly('fast')
    await disconnected
    for (let index = 1; index <= 5; index++) ipc.notify(a, `during-${index}`)
    expect(accepted).toEqual([])

    const reconnected = nextReconnect(ipc)
    // 'notify' (the server accepted it) comes after the instance got its own notification.
    const lastAccepted = waitFor(ipc, 'notify', { timeoutMs: 20_000, filter: () => accepted.includes('during-5') })
    await server.start()
    await reconnected
    await lastAccepted
    expect(got).toEqual(['during-1', 'during-2', 'during-3', 'during-4', 'during-5'])
    expect(accepted).toEqual(['during-1', 'during-2', 'during-3', 'during-4', 'during-5'])

    const admin = await adminClient(server.connectionString)
    await expectExactlyOnce(ipc, admin, a, got, 'after')
    for (let index = 1; index <= 5; index++) expect(countOf(got, `during-${index}`)).toBe(1)
    expect(errors).toEqual([])
    await admin.end()
    await ipc.end()
    await expectNoNewHandles(baseline)
  })

  it('beyond whileDisconnected.maxWaitMs: NotConnectedError, and it is never sent later', async () => {
    const server = await privateServer()
    const baseline = handleCounts()
    const ipc = pgIPC({ connect: server.connectionString, retry: FAST_RETRY, whileDisconnected: { maxWaitMs: 300 } })
    const errors = recordErrors(ipc)
    const accepted = confirmed(ipc)
    const a = uniqueChannel('a')
    const got = collect(ipc, a)
    await waitFor(ipc, 'connect')
    await ipc.listening(a)
    const disconnected = nextDisconnect(ipc)
    await server.stopServerOnly('fast')
    await disconnected

    const failed = waitFor<PgIpcError>(ipc, 'error')
    const sentAt = performance.now()
    ipc.notify(a, 'too-late')
    const error = await failed
    const waited = performance.now() - sentAt
    expect(error).toBeInstanceOf(NotConnectedError)
    expect(error.code).toBe(ErrorCode.NotConnected)
    expect(error.channel).toBe(a)
    expect(waited).toBeGreaterThanOrEqual(290)
    expect(waited).toBeLessThan(5_000)

    const reconnected = nextReconnect(ipc)
    await server.start()
    await reconnected
    const admin = await adminClient(server.connectionString)
    await expectExactlyOnce(ipc, admin, a, got, 'after')
    expect(countOf(got, 'too-late')).toBe(0)
    expect(accepted).not.toContain('too-late')
    expect(errors).toHaveLength(1)
    await admin.end()
    await ipc.end()
    await expectNoNewHandles(baseline)
  })

  it('beyond whileDisconnected.maxQueued: NotConnectedError at once; the queued ones go out once', async () => {
    const server = await privateServer()
    const baseline = handleCounts()
    const ipc = pgIPC({
      connect: server.connectionString,
      retry: FAST_RETRY,
      whileDisconnected: { maxQueued: 2, maxWaitMs: 20_000 },
    })
    const errors = recordErrors(ipc)
    const a = uniqueChannel('a')
    const got = collect(ipc, a)
    await waitFor(ipc, 'connect')
    await ipc.listening(a)
    const disconnected = nextDisconnect(ipc)
    await server.stopServerOnly('fast')
    await disconnected

    const failed = waitFor<PgIpcError>(ipc, 'error')
    const sentAt = performance.now()
    ipc.notify(a, 'q1')
    ipc.notify(a, 'q2')
    ipc.notify(a, 'q3')
    const error = await failed
    // "At once": long before maxWaitMs (20 s), with the server still down.
    expect(performance.now() - sentAt).toBeLessThan(1_000)
    expect(error).toBeInstanceOf(NotConnectedError)
    expect(error.message).toMatch(/2 notifications are already waiting/)

    const reconnected = nextReconnect(ipc)
    const q2 = nextPayload(ipc, a, 'q2', 20_000)
    await server.start()
    await reconnected
    await q2
    const admin = await adminClient(server.connectionString)
    await expectExactlyOnce(ipc, admin, a, got, 'after')
    expect(countOf(got, 'q1')).toBe(1)
    expect(countOf(got, 'q2')).toBe(1)
    expect(countOf(got, 'q3')).toBe(0)
    expect(errors).toHaveLength(1)
    await admin.end()
    await ipc.end()
    await expectNoNewHandles(baseline)
  })

  it('a notification in flight when the connection dies: NotifyOutcomeUnknownError, never resent; the ones queued behind it are', async () => {
    const server = await privateServer()
    const proxy = new TcpProxy({ host: server.host, port: server.port })
    onTestFinished(() => proxy.close())
    await proxy.start()
    const admin = await adminClient(server.connectionString)
    const owned = ownedClients(proxy.url(server.connectionString))
    const baseline = handleCounts()
    const ipc = pgIPC({ connect: owned.connect, retry: FAST_RETRY, healthCheck: false })
    const errors = recordErrors(ipc)
    const accepted = confirmed(ipc)
    const a = uniqueChannel('a')
    const got = collect(ipc, a)
    await waitFor(ipc, 'connect')
    await ipc.listening(a)

    proxy.pause()
    const inFlight = owned.queried('in-flight')
    ipc.notify(a, 'in-flight')
    await inFlight // pg has written it to the socket: it left the process
    ipc.notify(a, 'behind-1') // waits in the library's queue behind it
    ipc.notify(a, 'behind-2')
    const failed = waitFor<PgIpcError>(ipc, 'error')
    const disconnected = nextDisconnect(ipc)
    const reconnected = nextReconnect(ipc)
    proxy.dropAll()
    proxy.resume()
    const error = await failed
    expect(error).toBeInstanceOf(NotifyOutcomeUnknownError)
    expect(error.code).toBe(ErrorCode.OutcomeUnknown)
    expect(error.channel).toBe(a)
    await disconnected
    await reconnected
    expect(await listeningOn(owned.latest())).toEqual([a])

    if (!got.includes('behind-2')) await nextPayload(ipc, a, 'behind-2')
    await expectExactlyOnce(ipc, admin, a, got, 'after')
    // The proxy never forwarded it, so a delivery could only come from a resend.
    expect(countOf(got, 'in-flight')).toBe(0)
    expect(countOf(got, 'behind-1')).toBe(1)
    expect(countOf(got, 'behind-2')).toBe(1)
    expect(accepted).not.toContain('in-flight')
    expect(errors).toHaveLength(1)
    await ipc.end()
    await proxy.close()
    await expectNoNewHandles(baseline)
  })
})

describe('typed layer: notify during an outage', () => {
  const schemas = { jobDone: z.object({ n: z.number() }) }

  it('waits and resolves after the reconnect, exactly once; NotConnectedError beyond maxQueued and maxWaitMs', async () => {
    const server = await privateServer()
    const channels = defineChannels(schemas)
    const baseline = handleCounts()
    const typed = channels.attach({
      connect: server.connectionString,
      retry: FAST_RETRY,
      whileDisconnected: { maxQueued: 3, maxWaitMs: 20_000 },
    })
    const errors: Error[] = []
    typed.on('error', (error) => errors.push(error))
    const seen: number[] = []
    typed.on('jobDone', (message) => void seen.push(message.payload.n))
    await waitFor(typed as never, 'connect')
    await typed.listening('jobDone')
    const disconnected = waitFor(typed as never, 'disconnect', { rejectOnError: false })
    await server.stopServerOnly('fast')
    await disconnected

    const waiting = [1, 2, 3].map((n) => typed.notify('jobDone', { n }))
    const settled: string[] = []
    waiting.forEach(
      (promise, index) =>
        void promise.then(
          () => settled.push(`resolved ${index + 1}`),
          () => settled.push(`rejected ${index + 1}`),
        ),
    )
    await expect(typed.notify('jobDone', { n: 4 })).rejects.toSatisfy(
      (error: PgIpcError) => error instanceof NotConnectedError && error.code === ErrorCode.NotConnected,
    )
    expect(settled).toEqual([])

    const reconnected = waitFor(typed as never, 'reconnect', { timeoutMs: 20_000, rejectOnError: false })
    await server.start()
    await reconnected
    await Promise.all(waiting)
    const last = waitFor(typed as never, 'jobDone', { filter: (m: { payload: { n: number } }) => m.payload.n === 5 })
    await typed.notify('jobDone', { n: 5 })
    await last
    expect(seen).toEqual([1, 2, 3, 5])
    expect(errors).toEqual([])
    await typed.end()
    await expectNoNewHandles(baseline)
  })

  it('maxWaitMs elapsed: rejects with NotConnectedError; nothing is sent after the reconnect', async () => {
    const server = await privateServer()
    const channels = defineChannels(schemas)
    const baseline = handleCounts()
    const typed = channels.attach({ connect: server.connectionString, retry: FAST_RETRY, whileDisconnected: { maxWaitMs: 200 } })
    typed.on('error', () => undefined)
    const seen: number[] = []
    typed.on('jobDone', (message) => void seen.push(message.payload.n))
    await waitFor(typed as never, 'connect')
    await typed.listening('jobDone')
    const disconnected = waitFor(typed as never, 'disconnect', { rejectOnError: false })
    await server.stopServerOnly('fast')
    await disconnected
    await expect(typed.notify('jobDone', { n: 1 })).rejects.toBeInstanceOf(NotConnectedError)
    const reconnected = waitFor(typed as never, 'reconnect', { timeoutMs: 20_000, rejectOnError: false })
    await server.start()
    await reconnected
    const last = waitFor(typed as never, 'jobDone')
    await typed.notify('jobDone', { n: 2 })
    await last
    expect(seen).toEqual([2])
    await typed.end()
    await expectNoNewHandles(baseline)
  })

  it('in flight when the connection dies: rejects with NotifyOutcomeUnknownError and is not resent', async () => {
    const server = await privateServer()
    const proxy = new TcpProxy({ host: server.host, port: server.port })
    onTestFinished(() => proxy.close())
    await proxy.start()
    const owned = ownedClients(proxy.url(server.connectionString))
    const channels = defineChannels(schemas)
    const baseline = handleCounts()
    const typed = channels.attach({ connect: owned.connect, retry: FAST_RETRY, healthCheck: false })
    const errors: Error[] = []
    typed.on('error', (error) => errors.push(error))
    const seen: number[] = []
    typed.on('jobDone', (message) => void seen.push(message.payload.n))
    await waitFor(typed as never, 'connect')
    await typed.listening('jobDone')

    proxy.pause()
    const written = owned.queried(JSON.stringify({ n: 1 }))
    const inFlight = typed.notify('jobDone', { n: 1 })
    const outcome = inFlight.then(
      () => 'resolved',
      (error: unknown) => error,
    )
    await written
    const reconnected = waitFor(typed as never, 'reconnect', { timeoutMs: 20_000, rejectOnError: false })
    proxy.dropAll()
    proxy.resume()
    const error = (await outcome) as PgIpcError
    expect(error).toBeInstanceOf(NotifyOutcomeUnknownError)
    expect(error.code).toBe(ErrorCode.OutcomeUnknown)
    await reconnected
    const last = waitFor(typed as never, 'jobDone', { filter: (m: { payload: { n: number } }) => m.payload.n === 2 })
    await typed.notify('jobDone', { n: 2 })
    await last
    expect(seen).toEqual([2])
    expect(errors).toEqual([])
    await typed.end()
    await proxy.close()
    await expectNoNewHandles(baseline)
  })
})
