// The test proxy itself (test/support/tcp-proxy.ts), against a local echo server: it forwards,
// pause() holds traffic without closing anything, dropAll() resets both ends, refuse() rejects new
// connections, close() leaves no handle. The reconnect tests rely on each of these.
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { TcpProxy } from '../support/tcp-proxy.js'
import { expectNoNewHandles, handleCounts } from './helpers.js'

interface Echo {
  server: Server
  port: number
  /** Bytes the echo server received, all connections together. */
  received: () => number
  /** Server-side sockets that are still open. */
  open: Set<Socket>
  close: () => Promise<void>
}

async function echoServer(): Promise<Echo> {
  let received = 0
  const open = new Set<Socket>()
  const server = createServer((socket) => {
    open.add(socket)
    socket.on('error', () => undefined)
    socket.on('close', () => open.delete(socket))
    socket.on('data', (chunk) => {
      received += chunk.length
      socket.write(chunk)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  return {
    server,
    port,
    received: () => received,
    open,
    close: async () => {
      for (const socket of open) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

function dial(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host: '127.0.0.1', port })
    socket.once('connect', () => resolve(socket))
    socket.once('error', reject)
  })
}

function nextData(socket: Socket): Promise<string> {
  return new Promise((resolve) => socket.once('data', (chunk) => resolve(chunk.toString())))
}

/** Call before the socket can close: resolves on its 'close' event. */
function closed(socket: Socket): Promise<{ hadError: boolean; code: string | undefined }> {
  return new Promise((resolve) => {
    let code: string | undefined
    socket.on('error', (error: NodeJS.ErrnoException) => (code = error.code))
    // Only the 'close' event means the handle is released (`socket.closed` turns true a turn earlier).
    socket.once('close', (hadError) => resolve({ hadError, code }))
  })
}

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function setup(): Promise<{ echo: Echo; proxy: TcpProxy }> {
  const echo = await echoServer()
  const proxy = new TcpProxy({ host: '127.0.0.1', port: echo.port })
  await proxy.start()
  cleanups.push(
    () => echo.close(),
    () => proxy.close(),
  )
  return { echo, proxy }
}

describe('TcpProxy', () => {
  it('forwards both ways', async () => {
    const { proxy } = await setup()
    const socket = await dial(proxy.port)
    cleanups.push(() => void socket.destroy())
    const echoed = nextData(socket)
    socket.write('hello')
    expect(await echoed).toBe('hello')
    expect(proxy.connections).toBe(1)
  })

  it('pause() holds traffic in both directions and keeps the sockets open; resume() lets it through', async () => {
    const { echo, proxy } = await setup()
    const socket = await dial(proxy.port)
    cleanups.push(() => void socket.destroy())
    const warm = nextData(socket)
    socket.write('warm')
    await warm
    const before = echo.received()

    proxy.pause()
    let got = ''
    socket.on('data', (chunk) => (got += chunk.toString()))
    socket.write('held')
    // An outage of a given length (the one place a timer is the point): nothing may pass meanwhile.
    await new Promise((resolve) => setTimeout(resolve, 150))
    expect(echo.received()).toBe(before)
    expect(got).toBe('')
    expect(socket.destroyed).toBe(false)
    expect(echo.open.size).toBe(1)
    expect(proxy.connections).toBe(1)

    const echoed = new Promise<void>((resolve) => socket.on('data', () => got === 'held' && resolve()))
    proxy.resume()
    await echoed
    expect(got).toBe('held')
  })

  it('pause() also black-holes connections made while paused', async () => {
    const { echo, proxy } = await setup()
    proxy.pause()
    const socket = await dial(proxy.port) // the TCP handshake with the proxy itself succeeds
    cleanups.push(() => void socket.destroy())
    socket.write('early')
    await new Promise((resolve) => setTimeout(resolve, 150))
    expect(echo.received()).toBe(0)
    const echoed = nextData(socket)
    proxy.resume()
    expect(await echoed).toBe('early')
  })

  it('dropAll() resets both ends at once, even while paused, forwarding nothing held back', async () => {
    const { echo, proxy } = await setup()
    const socket = await dial(proxy.port)
    const warm = nextData(socket)
    socket.write('warm')
    await warm
    const before = echo.received()
    proxy.pause()
    socket.write('never')
    const clientClosed = closed(socket)
    const serverSide = [...echo.open][0] as Socket
    const serverClosed = closed(serverSide)
    proxy.dropAll()
    const client = await clientClosed
    expect(client.code).toBe('ECONNRESET')
    await serverClosed
    expect(echo.received()).toBe(before)
    expect(proxy.connections).toBe(0)
    proxy.resume()
  })

  it('refuse(true) resets new connections; refuse(false) accepts again', async () => {
    const { proxy } = await setup()
    proxy.refuse(true)
    const refused = tcpConnect({ host: '127.0.0.1', port: proxy.port })
    const outcome = await closed(refused)
    expect(outcome.code).toBe('ECONNRESET')
    expect(proxy.connections).toBe(0)
    proxy.refuse(false)
    const socket = await dial(proxy.port)
    cleanups.push(() => void socket.destroy())
    const echoed = nextData(socket)
    socket.write('ok')
    expect(await echoed).toBe('ok')
  })

  it('a FIN from either end closes the other end', async () => {
    const { echo, proxy } = await setup()
    const socket = await dial(proxy.port)
    const warm = nextData(socket)
    socket.write('warm')
    await warm
    const serverSide = [...echo.open][0] as Socket
    const serverClosed = closed(serverSide)
    socket.end()
    await serverClosed
    await closed(socket)
    expect(proxy.connections).toBe(0)
  })

  it('close() leaves no socket, server or timer behind, even with paused connections', async () => {
    const echo = await echoServer()
    cleanups.push(() => echo.close())
    const baseline = handleCounts()
    const proxy = new TcpProxy({ host: '127.0.0.1', port: echo.port })
    await proxy.start()
    const sockets = await Promise.all([dial(proxy.port), dial(proxy.port)])
    for (const socket of sockets) socket.on('error', () => undefined)
    const closedAll = Promise.all(sockets.map((socket) => closed(socket)))
    proxy.pause()
    sockets[0]?.write('held')
    await proxy.close()
    await closedAll
    // The echo server's side of the connections close on the reset as well.
    await Promise.all([...echo.open].map((socket) => closed(socket)))
    await expectNoNewHandles(baseline, 'after close()')
    await proxy.close() // idempotent
  })
})
