// A loopback TCP proxy under the test's control, to put in front of a private PostgreSQL server:
// the honest way to make the network misbehave (a black-holed connection, an abrupt drop, a refusal)
// without touching the server or the library.
//
//   const proxy = new TcpProxy({ host: server.host, port: server.port })
//   const port = await proxy.start()           // connect the code under test to 127.0.0.1:port
//   proxy.pause()                               // half-open: sockets stay open, nothing is forwarded
//   proxy.resume()                              // forward again (what was held back flows then)
//   proxy.dropAll()                             // destroy every connection at once (RST, no FIN)
//   proxy.refuse(true)                          // new connections are reset as soon as they arrive
//   await proxy.nextAccepted()                  // the code under test has opened a connection
//   await proxy.close()                         // drop everything and stop listening: no handle left

import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net'

export interface TcpProxyTarget {
  readonly host: string
  readonly port: number
}

interface Pair {
  readonly client: Socket
  readonly upstream: Socket
}

const HOST = '127.0.0.1'

/** Forcibly closes a socket: RST where the platform supports it, so the peer sees a reset, not a goodbye. */
function kill(socket: Socket): void {
  if (socket.destroyed) return
  // resetAndDestroy() on a socket still connecting waits for the connection: destroy that one now.
  if (socket.connecting) socket.destroy()
  else socket.resetAndDestroy()
}

export class TcpProxy {
  readonly #target: TcpProxyTarget
  readonly #pairs = new Set<Pair>()
  /** Every socket of the proxy (accepted or upstream) not yet closed: what close() must not leave behind. */
  readonly #sockets = new Set<Socket>()
  #server: Server | undefined
  #paused = false
  #refusing = false
  #accepted = 0
  readonly #onAccept = new Set<() => void>()

  constructor(target: TcpProxyTarget) {
    this.#target = target
  }

  /** The port the proxy listens on (after start()). */
  get port(): number {
    const address = this.#server?.address()
    if (typeof address !== 'object' || address === null) throw new Error('TcpProxy: not started')
    return address.port
  }

  /** Connection string for a server reached through this proxy (same user and database as `url`). */
  url(url: string): string {
    const parsed = new URL(url)
    parsed.hostname = HOST
    parsed.port = String(this.port)
    return parsed.toString()
  }

  /** Connections currently proxied (both ends open). */
  get connections(): number {
    return this.#pairs.size
  }

  /** Connections accepted since start (refused ones included). */
  get accepted(): number {
    return this.#accepted
  }

  /** Resolves when the proxy accepts its next connection (refused ones included). */
  nextAccepted(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.#onAccept.delete(done)
        resolve()
      }
      this.#onAccept.add(done)
    })
  }

  get paused(): boolean {
    return this.#paused
  }

  /** Starts listening on a free loopback port; resolves with it. */
  start(): Promise<number> {
    if (this.#server !== undefined) return Promise.resolve(this.port)
    const server = createServer({ pauseOnConnect: true }, (socket) => this.#accept(socket))
    this.#server = server
    return new Promise((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, HOST, () => {
        server.off('error', reject)
        resolve(this.port)
      })
    })
  }

  /**
   * Stops forwarding in both directions, on current and new connections, but keeps every socket
   * open: to both ends the connection is alive and silent (a black hole, like a dead peer behind a
   * NAT). Bytes sent meanwhile wait in the kernel buffers.
   */
  pause(): void {
    this.#paused = true
    for (const { client, upstream } of this.#pairs) {
      client.pause()
      upstream.pause()
    }
  }

  /** Forwards again; what was held back flows now. */
  resume(): void {
    this.#paused = false
    for (const { client, upstream } of this.#pairs) {
      client.resume()
      upstream.resume()
    }
  }

  /** Destroys every connection abruptly (both sides, RST): nothing held back is forwarded. */
  dropAll(): void {
    this.#pairs.clear()
    for (const socket of [...this.#sockets]) kill(socket)
  }

  /** While on, new connections are reset as soon as they are accepted; existing ones are untouched. */
  refuse(on: boolean): void {
    this.#refusing = on
  }

  /** Drops every connection and stops listening; resolves once no socket of the proxy is left. Idempotent. */
  async close(): Promise<void> {
    const server = this.#server
    const closing = server?.listening === true ? new Promise<void>((resolve) => server.close(() => resolve())) : undefined
    // Still in the set means 'close' not emitted yet: the handle is released only then (a destroyed
    // socket already reports `closed`, but its handle closes a turn later).
    const sockets = [...this.#sockets]
    const gone = sockets.map((socket) => new Promise((resolve) => socket.once('close', resolve)))
    this.dropAll()
    await Promise.all([closing, ...gone])
    // A server's 'close' comes before libuv has released its handle (that happens in the loop's
    // close phase): let one full turn pass so that close() resolving means "nothing left".
    if (closing !== undefined) for (let turn = 0; turn < 2; turn++) await new Promise((resolve) => setImmediate(resolve))
  }

  #track(socket: Socket): void {
    this.#sockets.add(socket)
    socket.on('error', () => undefined)
    socket.once('close', () => this.#sockets.delete(socket))
  }

  #accept(client: Socket): void {
    this.#accepted++
    for (const notify of [...this.#onAccept]) notify()
    this.#track(client)
    if (this.#refusing) {
      kill(client)
      return
    }
    const upstream = tcpConnect({ host: this.#target.host, port: this.#target.port })
    this.#track(upstream)
    upstream.pause()
    let paired = false
    // Either end gone before pairing (upstream refused, client gave up): close the other too.
    upstream.once('close', () => {
      if (!paired) kill(client)
    })
    client.once('close', () => {
      if (!paired) kill(upstream)
    })
    upstream.once('connect', () => {
      if (client.destroyed) return
      paired = true
      const pair: Pair = { client, upstream }
      this.#pairs.add(pair)
      this.#forward(client, upstream, pair)
      this.#forward(upstream, client, pair)
      if (!this.#paused) {
        client.resume()
        upstream.resume()
      }
    })
  }

  /** One direction, with backpressure that never resumes a paused proxy. */
  #forward(from: Socket, to: Socket, pair: Pair): void {
    from.on('data', (chunk: Buffer) => {
      if (!to.write(chunk)) {
        from.pause()
        to.once('drain', () => {
          if (!this.#paused) from.resume()
        })
      }
    })
    // A goodbye (FIN) is passed on as one; the other side then closes in turn.
    from.on('end', () => to.end())
    from.once('close', () => {
      this.#pairs.delete(pair)
      // The other end gets what was already written to it, then a FIN, then is gone.
      if (!to.destroyed) to.destroySoon()
    })
  }
}
