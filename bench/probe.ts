// The listening side of a measurement: counts deliveries and tells when the count reached a total,
// either in this process (same-process layout) or in a forked child (separate-process layout, as
// in a real deployment). Times are process.hrtime.bigint(): CLOCK_MONOTONIC, one clock for every
// process on the machine, so a child's delivery time compares directly with the parent's send time.

import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { ChannelNames } from './payloads.js'
import { createListener, type Listening, type ListenerKind, type ListenerOptions } from './targets.js'

/** Counts deliveries; resolves waiters for a cumulative total or for the next delivery. */
export class Counter {
  count = 0
  lastAt = 0n
  #total = Number.POSITIVE_INFINITY
  #reached: ((at: bigint) => void) | undefined
  #next: ((at: bigint) => void) | undefined
  #onEach: ((at: bigint) => void) | undefined

  readonly delivered = (): void => {
    const at = process.hrtime.bigint()
    this.count++
    this.lastAt = at
    if (this.#onEach !== undefined) this.#onEach(at)
    if (this.#next !== undefined) {
      const next = this.#next
      this.#next = undefined
      next(at)
    }
    if (this.count === this.#total && this.#reached !== undefined) {
      const reached = this.#reached
      this.#reached = undefined
      this.#total = Number.POSITIVE_INFINITY
      reached(at)
    }
  }

  /** Resolves with the time of the delivery that made the count `total`. */
  reach(total: number, timeoutMs: number): Promise<bigint> {
    if (this.count > total) return Promise.reject(new Error(`${this.count} deliveries counted, more than the ${total} sent`))
    if (this.count === total) return Promise.resolve(this.lastAt)
    return new Promise<bigint>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#reached = undefined
        this.#total = Number.POSITIVE_INFINITY
        reject(new Error(`timed out after ${timeoutMs} ms: ${this.count} of ${total} notifications delivered`))
      }, timeoutMs)
      this.#total = total
      this.#reached = (at) => {
        clearTimeout(timer)
        resolve(at)
      }
    })
  }

  /** Resolves with the time of the next delivery. */
  next(timeoutMs: number): Promise<bigint> {
    return new Promise<bigint>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#next = undefined
        reject(new Error(`timed out after ${timeoutMs} ms waiting for a delivery`))
      }, timeoutMs)
      this.#next = (at) => {
        clearTimeout(timer)
        resolve(at)
      }
    })
  }

  onEach(callback: ((at: bigint) => void) | undefined): void {
    this.#onEach = callback
  }
}

export interface Reached {
  readonly at: bigint
  /** CPU the listening process used since `mark()` (separate layout only). */
  readonly cpu: NodeJS.CpuUsage | undefined
}

/** One listening setup, local or remote. */
export interface Probe {
  readonly layout: 'separate' | 'same'
  /** Starts the listener-CPU clock of the next `reach`. */
  mark(): Promise<void>
  /** Resolves when `total` notifications (counted since the start) were delivered. */
  reach(total: number, timeoutMs: number): Promise<Reached>
  /** Makes `next` work (the listener process reports each delivery from then on). */
  startEcho(): Promise<void>
  /** The time of the next delivery; arm it before sending. */
  next(timeoutMs: number): Promise<bigint>
  close(): Promise<void>
}

export interface ProbeSpec {
  readonly kind: ListenerKind
  readonly url: string
  readonly names: ChannelNames
  readonly options?: ListenerOptions
}

export class LocalProbe implements Probe {
  readonly layout = 'same' as const
  readonly counter = new Counter()
  #listening: Listening | undefined

  static async start(spec: ProbeSpec): Promise<LocalProbe> {
    const probe = new LocalProbe()
    probe.#listening = await createListener(spec.kind, spec.url, spec.names, probe.counter.delivered, spec.options)
    return probe
  }

  get listening(): Listening {
    if (this.#listening === undefined) throw new Error('not started')
    return this.#listening
  }

  mark(): Promise<void> {
    return Promise.resolve()
  }

  async reach(total: number, timeoutMs: number): Promise<Reached> {
    return { at: await this.counter.reach(total, timeoutMs), cpu: undefined }
  }

  startEcho(): Promise<void> {
    return Promise.resolve()
  }

  next(timeoutMs: number): Promise<bigint> {
    return this.counter.next(timeoutMs)
  }

  async close(): Promise<void> {
    await this.#listening?.close()
  }
}

// ---- the listener process ----------------------------------------------------------------------------
// One forked process hosts every remote probe of the run (each with its own connections and
// counter), so the run pays Node's start-up once; probes not being measured sit idle.

export type ToChild =
  | { type: 'start'; id: number; spec: ProbeSpec }
  | { type: 'cpu'; id: number }
  | { type: 'reach'; id: number; total: number; timeoutMs: number }
  | { type: 'echo'; id: number; on: boolean }
  | { type: 'stop'; id: number }

export type FromChild =
  | { type: 'ready'; id: number }
  | { type: 'cpu'; id: number; cpu: NodeJS.CpuUsage }
  | { type: 'reached'; id: number; at: string; cpu: NodeJS.CpuUsage }
  | { type: 'got'; id: number; at: string }
  | { type: 'ok'; id: number }
  | { type: 'stopped'; id: number }
  | { type: 'failed'; id: number; error: string }

const CHILD = fileURLToPath(new URL('./listener-child.js', import.meta.url))

class ListenerProcess {
  static #current: ListenerProcess | undefined

  /** The shared listener process, forked on first use. */
  static get(): ListenerProcess {
    if (ListenerProcess.#current === undefined || ListenerProcess.#current.#exited)
      ListenerProcess.#current = new ListenerProcess()
    return ListenerProcess.#current
  }

  /** Ends the shared process (when no probe is open, it just exits). */
  static async shutdown(): Promise<void> {
    const current = ListenerProcess.#current
    ListenerProcess.#current = undefined
    if (current === undefined || current.#exited) return
    const exited = new Promise<void>((resolve) => current.#child.once('exit', () => resolve()))
    current.#child.disconnect()
    const timer = setTimeout(() => current.#child.kill('SIGKILL'), 10_000)
    await exited
    clearTimeout(timer)
  }

  readonly #child: ChildProcess
  /** Replies per probe id, in order (the child answers each command once). */
  readonly #replies = new Map<number, { resolve: (message: FromChild) => void; reject: (error: Error) => void }[]>()
  readonly #got = new Map<number, (at: bigint) => void>()
  #exited = false
  #stderr = ''
  #nextId = 1

  private constructor() {
    const child = fork(CHILD, [], {
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
      execArgv: ['--no-deprecation', '--enable-source-maps'],
      serialization: 'json',
    })
    this.#child = child
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.#stderr = (this.#stderr + chunk).slice(-4000)
      process.stderr.write(`[listener process] ${chunk}`)
    })
    child.on('message', (message: FromChild) => {
      if (message.type === 'got') {
        const got = this.#got.get(message.id)
        this.#got.delete(message.id)
        got?.(BigInt(message.at))
        return
      }
      const reply = this.#replies.get(message.id)?.shift()
      if (reply === undefined) return
      if (message.type === 'failed') reply.reject(new Error(`listener process: ${message.error}`))
      else reply.resolve(message)
    })
    child.on('exit', (code, signal) => {
      this.#exited = true
      const error = new Error(`listener process exited (${signal ?? code}) ${this.#stderr}`)
      for (const list of this.#replies.values()) for (const reply of list.splice(0)) reply.reject(error)
    })
  }

  newId(): number {
    return this.#nextId++
  }

  ask(message: ToChild, timeoutMs: number): Promise<FromChild> {
    if (this.#exited) return Promise.reject(new Error(`listener process is gone ${this.#stderr}`))
    return new Promise<FromChild>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`listener process did not answer "${message.type}" within ${timeoutMs} ms`)),
        timeoutMs,
      )
      let list = this.#replies.get(message.id)
      if (list === undefined) this.#replies.set(message.id, (list = []))
      list.push({
        resolve: (reply) => {
          clearTimeout(timer)
          resolve(reply)
        },
        reject: (error) => {
          clearTimeout(timer)
          reject(error)
        },
      })
      this.#child.send(message)
    })
  }

  onGot(id: number, callback: (at: bigint) => void): void {
    this.#got.set(id, callback)
  }

  offGot(id: number): void {
    this.#got.delete(id)
  }
}

export class RemoteProbe implements Probe {
  readonly layout = 'separate' as const
  readonly #process: ListenerProcess
  readonly #id: number
  #echo = false
  #markCpu: NodeJS.CpuUsage | undefined
  #closed = false

  private constructor(listenerProcess: ListenerProcess, id: number) {
    this.#process = listenerProcess
    this.#id = id
  }

  static async start(spec: ProbeSpec): Promise<RemoteProbe> {
    const listenerProcess = ListenerProcess.get()
    const probe = new RemoteProbe(listenerProcess, listenerProcess.newId())
    await listenerProcess.ask({ type: 'start', id: probe.#id, spec }, 120_000)
    return probe
  }

  /** Ends the shared listener process; call once every remote probe is closed. */
  static shutdown(): Promise<void> {
    return ListenerProcess.shutdown()
  }

  async mark(): Promise<void> {
    const reply = await this.#process.ask({ type: 'cpu', id: this.#id }, 10_000)
    if (reply.type === 'cpu') this.#markCpu = reply.cpu
  }

  async reach(total: number, timeoutMs: number): Promise<Reached> {
    const reply = await this.#process.ask({ type: 'reach', id: this.#id, total, timeoutMs }, timeoutMs + 5_000)
    if (reply.type !== 'reached') throw new Error(`unexpected reply ${reply.type}`)
    const mark = this.#markCpu
    this.#markCpu = undefined
    const cpu = mark === undefined ? undefined : { user: reply.cpu.user - mark.user, system: reply.cpu.system - mark.system }
    return { at: BigInt(reply.at), cpu }
  }

  async startEcho(): Promise<void> {
    if (this.#echo) return
    await this.#process.ask({ type: 'echo', id: this.#id, on: true }, 10_000)
    this.#echo = true
  }

  next(timeoutMs: number): Promise<bigint> {
    if (!this.#echo) return Promise.reject(new Error('startEcho() first'))
    return new Promise<bigint>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#process.offGot(this.#id)
        reject(new Error(`timed out after ${timeoutMs} ms waiting for a delivery in the listener process`))
      }, timeoutMs)
      this.#process.onGot(this.#id, (at) => {
        clearTimeout(timer)
        resolve(at)
      })
    })
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#process.ask({ type: 'stop', id: this.#id }, 60_000)
  }
}

export function startProbe(layout: 'separate' | 'same', spec: ProbeSpec): Promise<Probe> {
  return layout === 'separate' ? RemoteProbe.start(spec) : LocalProbe.start(spec)
}
