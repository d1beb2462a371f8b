// The core's reconnecting mode (pgIPC({ connect })) through real outages of a private server:
// pg_terminate_backend, a full stop and start on the same port, a long outage through several
// backoff steps, listeners changed during the outage, and the onConnect hook. After each outage:
// pg_listening_channels() on the new session equals exactly the channels with listeners, messages
// sent after recovery arrive exactly once, 'reconnect' fired once per outage, nothing left running.
import { describe, expect, it } from 'vitest'
import { ConnectionLostError, NotListeningError, pgIPC, type ConnectInfo } from '../../src/index.js'
import { privateServer, uniqueChannel } from '../support/db.js'
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

const FAST_RETRY = { initialDelayMs: 20, maxDelayMs: 200 }

describe('reconnecting mode: outages', () => {
  it('pg_terminate_backend of the listening connection, twice: re-LISTEN, gap signal, exactly once', async () => {
    const server = await privateServer()
    const admin = await adminClient(server.connectionString)
    const owned = ownedClients(server.connectionString)
    const baseline = handleCounts()
    const ipc = pgIPC({ connect: owned.connect, retry: FAST_RETRY })
    const errors = recordErrors(ipc)
    const events = recordEvents(ipc, ['connect', 'reconnect', 'disconnect'])
    const [a, b] = [uniqueChannel('a'), uniqueChannel('b')]
    const gotA = collect(ipc, a)
    collect(ipc, b)

    const first = await waitFor<ConnectInfo>(ipc, 'connect')
    expect(first).toEqual({ reconnected: false, attempts: 1, downtimeMs: 0, processId: ipc.processId })
    await Promise.all([ipc.listening(a), ipc.listening(b)])
    expect(await listeningOn(owned.latest())).toEqual([a, b].sort())

    for (let outage = 1; outage <= 2; outage++) {
      const oldPid = ipc.processId
      const disconnected = nextDisconnect(ipc)
      const reconnected = nextReconnect(ipc)
      await admin.query('SELECT pg_terminate_backend($1)', [oldPid])
      expect(await disconnected).toBeInstanceOf(ConnectionLostError)
      const info = await reconnected
      expect(info.reconnected).toBe(true)
      expect(info.attempts).toBeGreaterThanOrEqual(1)
      expect(info.downtimeMs).toBeGreaterThanOrEqual(0)
      expect(info.processId).toBe(ipc.processId)
      expect(info.processId).not.toBe(oldPid)
      expect(ipc.client).toBe(owned.latest())
      const { rows } = await admin.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1', [ipc.processId])
      expect(rows[0].n).toBe(1)
      expect(await listeningOn(owned.latest())).toEqual([a, b].sort())
      await Promise.all([ipc.listening(a), ipc.listening(b)])
      await expectExactlyOnce(ipc, admin, a, gotA, `terminate-${outage}`)
    }

    expect(events.map((event) => event.name)).toEqual(['connect', 'disconnect', 'reconnect', 'disconnect', 'reconnect'])
    expect(errors).toEqual([])
    await ipc.end()
    await expectNoNewHandles(baseline)
  })

  for (const mode of ['fast', 'immediate'] as const) {
    it(`a full server stop (${mode}) and start on the same port`, async () => {
      const server = await privateServer()
      const owned = ownedClients(server.connectionString)
      const baseline = handleCounts()
      const ipc = pgIPC({ connect: owned.connect, retry: FAST_RETRY })
      const errors = recordErrors(ipc)
      const events = recordEvents(ipc, ['connect', 'reconnect', 'disconnect'])
      const a = uniqueChannel('a')
      const got = collect(ipc, a)
      await waitFor(ipc, 'connect')
      await ipc.listening(a)

      const disconnected = nextDisconnect(ipc)
      await server.stopServerOnly(mode)
      expect(await disconnected).toBeInstanceOf(ConnectionLostError)
      expect(ipc.client).toBeUndefined()
      expect(ipc.processId).toBeUndefined()
      const reconnected = nextReconnect(ipc)
      await server.start()
      const info = await reconnected
      expect(info.reconnected).toBe(true)
      expect(info.downtimeMs).toBeGreaterThan(0)

      const admin = await adminClient(server.connectionString)
      expect(await listeningOn(owned.latest())).toEqual([a])
      await expectExactlyOnce(ipc, admin, a, got, `restart-${mode}`)
      expect(events.map((event) => event.name)).toEqual(['connect', 'disconnect', 'reconnect'])
      expect(errors).toEqual([])
      await admin.end() // opened after the baseline
      await ipc.end()
      await expectNoNewHandles(baseline)
    })
  }

  it('an outage longer than several backoff steps: attempts counted, backoff grows, downtime reported', async () => {
    const server = await privateServer()
    const owned = ownedClients(server.connectionString)
    const calls: number[] = []
    owned.events.on('made', () => calls.push(performance.now()))
    const retry = { initialDelayMs: 20, factor: 2, maxDelayMs: 320 }
    const baseline = handleCounts()
    const ipc = pgIPC({ connect: owned.connect, retry })
    const errors = recordErrors(ipc)
    const events = recordEvents(ipc, ['connect', 'reconnect', 'disconnect'])
    const a = uniqueChannel('a')
    const got = collect(ipc, a)
    await waitFor(ipc, 'connect')
    await ipc.listening(a)

    // Counted at the event itself: pg_ctl stop returns well after the connection died, and the
    // first attempts of the outage happen meanwhile.
    let downAt = 0
    let before = 0
    ipc.once('disconnect', () => {
      downAt = performance.now()
      before = owned.clients.length
    })
    const disconnected = nextDisconnect(ipc)
    await server.stopServerOnly('fast')
    await disconnected
    // The outage lasts until six attempts have failed: event-driven, no fixed sleep.
    await owned.made(before + 6)
    await new Promise((resolve) => owned.events.once('failed', resolve))
    const reconnected = nextReconnect(ipc)
    const startAt = performance.now()
    await server.start()
    const info = await reconnected
    const upAt = performance.now()

    const attemptsDuringOutage = owned.clients.length - before
    expect(info.attempts).toBe(attemptsDuringOutage)
    expect(info.attempts).toBeGreaterThan(3)
    expect(info.downtimeMs).toBeGreaterThanOrEqual(startAt - downAt - 5)
    expect(info.downtimeMs).toBeLessThanOrEqual(upAt - downAt + 50)
    // Attempt k waits at least half of min(maxDelayMs, initialDelayMs * factor^(k-1)) ("equal jitter").
    const outageCalls = calls.slice(before, before + 6)
    for (let k = 1; k < outageCalls.length; k++) {
      const gap = (outageCalls[k] ?? 0) - (outageCalls[k - 1] ?? 0)
      const base = Math.min(retry.maxDelayMs, retry.initialDelayMs * retry.factor ** (k - 1))
      expect(gap, `gap after attempt ${k}`).toBeGreaterThanOrEqual(base / 2 - 2)
      // Wide upper bound: the delay never exceeds maxDelayMs (plus the refused attempt and timer lag).
      expect(gap, `gap after attempt ${k}`).toBeLessThan(retry.maxDelayMs + 1_000)
    }

    const admin = await adminClient(server.connectionString)
    expect(await listeningOn(owned.latest())).toEqual([a])
    await expectExactlyOnce(ipc, admin, a, got, 'long')
    expect(events.map((event) => event.name)).toEqual(['connect', 'disconnect', 'reconnect'])
    expect(errors).toEqual([])
    await admin.end()
    await ipc.end()
    await expectNoNewHandles(baseline)
  })

  it('retry.maxAttempts: gives up with a ConnectionLostError, ends, leaves nothing running', async () => {
    const server = await privateServer()
    const owned = ownedClients(server.connectionString)
    const baseline = handleCounts()
    const ipc = pgIPC({ connect: owned.connect, retry: { initialDelayMs: 10, maxDelayMs: 20, maxAttempts: 3 } })
    const errors = recordErrors(ipc)
    ipc.on(uniqueChannel('a'), () => undefined)
    await waitFor(ipc, 'connect')
    const disconnected = nextDisconnect(ipc)
    const ended = waitFor(ipc, 'end', { rejectOnError: false })
    const before = owned.clients.length
    await server.stopServerOnly('fast')
    await disconnected
    await ended
    expect(owned.clients.length - before).toBe(3)
    expect(errors).toHaveLength(1)
    expect(errors[0]).toBeInstanceOf(ConnectionLostError)
    expect(errors[0]?.message).toMatch(/after 3 attempts/)
    expect(ipc.ended).toBe(true)
    await ipc.end()
    await expectNoNewHandles(baseline)
  })

  it('listeners added and removed during the outage take effect after it', async () => {
    const server = await privateServer()
    const owned = ownedClients(server.connectionString)
    const baseline = handleCounts()
    const ipc = pgIPC({ connect: owned.connect, retry: FAST_RETRY })
    const errors = recordErrors(ipc)
    const events = recordEvents(ipc, ['connect', 'reconnect', 'disconnect'])
    const [keep, drop, add, flicker, dropAll] = ['keep', 'drop', 'add', 'flicker', 'dropall'].map((name) =>
      uniqueChannel(name),
    ) as [string, string, string, string, string]
    const got = collect(ipc, keep)
    const dropped: string[] = []
    const onDrop = (message: { rawPayload: string }): void => void dropped.push(message.rawPayload)
    ipc.on(drop, onDrop)
    ipc.on(dropAll, () => undefined)
    ipc.on(dropAll, () => undefined)
    await waitFor(ipc, 'connect')
    await Promise.all([ipc.listening(keep), ipc.listening(drop), ipc.listening(dropAll)])
    expect(await listeningOn(owned.latest())).toEqual([keep, drop, dropAll].sort())

    const disconnected = nextDisconnect(ipc)
    await server.stopServerOnly('fast')
    await disconnected

    // During the outage: remove one, add one, add-then-remove one, remove all of another.
    ipc.off(drop, onDrop)
    const added: string[] = []
    ipc.on(add, (message) => added.push(message.rawPayload))
    const addActive = ipc.listening(add) // resolves once the new connection LISTENs
    const flickerListener = (): void => undefined
    ipc.on(flicker, flickerListener)
    ipc.off(flicker, flickerListener)
    ipc.removeAllListeners(dropAll)
    await expect(ipc.listening(drop)).rejects.toBeInstanceOf(NotListeningError)
    await expect(ipc.listening(flicker)).rejects.toBeInstanceOf(NotListeningError)

    const reconnected = nextReconnect(ipc)
    await server.start()
    await reconnected
    await addActive
    expect(await listeningOn(owned.latest())).toEqual([keep, add].sort())

    const admin = await adminClient(server.connectionString)
    await admin.query('SELECT pg_notify($1, $2)', [drop, 'to-dropped'])
    const addArrived = nextPayload(ipc, add, 'to-added')
    await admin.query('SELECT pg_notify($1, $2)', [add, 'to-added'])
    await addArrived
    await expectExactlyOnce(ipc, admin, keep, got, 'changed')
    expect(dropped).toEqual([])
    expect(added).toEqual(['to-added'])
    expect(events.map((event) => event.name)).toEqual(['connect', 'disconnect', 'reconnect'])
    expect(errors).toEqual([])
    await admin.end()
    await ipc.end()
    await expectNoNewHandles(baseline)
  })

  it('listening() pending for a channel whose last listener leaves during the outage rejects', async () => {
    const server = await privateServer()
    const ipc = pgIPC({ connect: server.connectionString, retry: FAST_RETRY })
    recordErrors(ipc)
    const keep = uniqueChannel('keep')
    ipc.on(keep, () => undefined)
    await waitFor(ipc, 'connect')
    const disconnected = nextDisconnect(ipc)
    await server.stopServerOnly('fast')
    await disconnected

    const channel = uniqueChannel('flicker')
    const listener = (): void => undefined
    ipc.on(channel, listener)
    const pending = ipc.listening(channel)
    ipc.off(channel, listener)
    // Connected, the same sequence rejects as soon as the UNLISTEN is handled ("its last listener
    // was removed"). A bounded wait, only to turn a hang into a failure:
    const outcome = await Promise.race([
      pending.then(
        () => 'resolved',
        (error: unknown) => (error instanceof NotListeningError ? 'NotListeningError' : String(error)),
      ),
      new Promise((resolve) => setTimeout(() => resolve('still pending after 2 s'), 2_000).unref()),
    ])
    expect(outcome).toBe('NotListeningError')
    await ipc.end()
  })

  it('onConnect runs after LISTEN is active and before connect/reconnect is emitted', async () => {
    const server = await privateServer()
    const admin = await adminClient(server.connectionString)
    const owned = ownedClients(server.connectionString)
    const a = uniqueChannel('a')
    const order: string[] = []
    const seenInHook: { info: ConnectInfo; listening: string[] }[] = []
    const baseline = handleCounts()
    const ipc = pgIPC({
      connect: owned.connect,
      retry: FAST_RETRY,
      onConnect: async (info) => {
        order.push(`onConnect(reconnected=${String(info.reconnected)})`)
        // The session the library just set up: LISTEN must already be active on it.
        seenInHook.push({ info, listening: await listeningOn(owned.latest()) })
        // A notification sent (and committed) from another session inside the hook must arrive.
        await admin.query('SELECT pg_notify($1, $2)', [a, `hook-${seenInHook.length}`])
        order.push('onConnect done')
      },
    })
    const errors = recordErrors(ipc)
    const got: string[] = []
    ipc.on(a, (message) => {
      got.push(message.rawPayload)
      order.push(`message ${message.rawPayload}`)
    })
    ipc.on('connect', () => order.push('connect'))
    ipc.on('reconnect', () => order.push('reconnect'))

    await waitFor(ipc, 'connect')
    if (!got.includes('hook-1')) await nextPayload(ipc, a, 'hook-1')
    const reconnected = nextReconnect(ipc)
    await admin.query('SELECT pg_terminate_backend($1)', [ipc.processId])
    await reconnected
    if (!got.includes('hook-2')) await nextPayload(ipc, a, 'hook-2')

    expect(seenInHook.map((entry) => entry.listening)).toEqual([[a], [a]])
    expect(seenInHook.map((entry) => entry.info.reconnected)).toEqual([false, true])
    // The hook finishes before the event; its message arrives once, whenever pg hands it over.
    const withoutMessages = order.filter((entry) => !entry.startsWith('message'))
    expect(withoutMessages).toEqual([
      'onConnect(reconnected=false)',
      'onConnect done',
      'connect',
      'onConnect(reconnected=true)',
      'onConnect done',
      'reconnect',
    ])
    expect(order.indexOf('message hook-1')).toBeGreaterThan(order.indexOf('onConnect(reconnected=false)'))
    expect(order.indexOf('message hook-2')).toBeGreaterThan(order.indexOf('onConnect(reconnected=true)'))
    await expectExactlyOnce(ipc, admin, a, got, 'after-hook')
    expect(countOf(got, 'hook-1')).toBe(1)
    expect(countOf(got, 'hook-2')).toBe(1)
    expect(errors).toEqual([])
    await ipc.end()
    await expectNoNewHandles(baseline)
  })

  it('the first connection is reported as such even when the server was down at start', async () => {
    const server = await privateServer()
    const owned = ownedClients(server.connectionString)
    await server.stopServerOnly('fast')
    const hookInfos: ConnectInfo[] = []
    const baseline = handleCounts()
    const ipc = pgIPC({
      connect: owned.connect,
      retry: { initialDelayMs: 20, maxDelayMs: 100 },
      onConnect: (info) => void hookInfos.push(info),
    })
    const errors = recordErrors(ipc)
    const events = recordEvents(ipc, ['connect', 'reconnect', 'disconnect'])
    await new Promise((resolve) => owned.events.once('failed', resolve))
    const connected = waitFor<ConnectInfo>(ipc, 'connect')
    await server.start()
    const info = await connected
    expect(events.map((event) => event.name)).toEqual(['connect'])
    expect(info.attempts).toBeGreaterThan(1)
    // ConnectInfo.reconnected: "False for the first connection, true after an outage."
    expect(hookInfos.map((entry) => entry.reconnected)).toEqual([false])
    expect(info.reconnected).toBe(false)
    expect(errors).toEqual([])
    await ipc.end()
    await expectNoNewHandles(baseline)
  })

  it('queueUsage() on the owned connection, and a clear error while it is down', async () => {
    const server = await privateServer()
    const baseline = handleCounts()
    const ipc = pgIPC({ connect: server.connectionString, retry: FAST_RETRY })
    recordErrors(ipc)
    await waitFor(ipc, 'connect')
    const usage = await ipc.queueUsage()
    expect(usage).toBeGreaterThanOrEqual(0)
    expect(usage).toBeLessThan(1)
    const disconnected = nextDisconnect(ipc)
    await server.stopServerOnly('fast')
    await disconnected
    await expect(ipc.queueUsage()).rejects.toBeInstanceOf(ConnectionLostError)
    await ipc.end()
    await expectNoNewHandles(baseline)
  })
})
