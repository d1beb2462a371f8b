// The listener process of the separate-process layout, forked once per run by probe.ts. It hosts
// the remote probes: each listens with the library under test on its own connections, counts
// deliveries and answers over the IPC channel.

import { Counter, type FromChild, type ToChild } from './probe.js'
import { createListener, sinkValue, type Listening } from './targets.js'

interface Hosted {
  readonly counter: Counter
  readonly listening: Listening
}

const hosted = new Map<number, Hosted>()

function reply(message: FromChild): void {
  process.send?.(message)
}

function find(id: number): Hosted {
  const entry = hosted.get(id)
  if (entry === undefined) throw new Error(`no probe ${id}`)
  return entry
}

async function handle(message: ToChild): Promise<void> {
  const { id } = message
  switch (message.type) {
    case 'start': {
      const counter = new Counter()
      const listening = await createListener(
        message.spec.kind,
        message.spec.url,
        message.spec.names,
        counter.delivered,
        message.spec.options,
      )
      hosted.set(id, { counter, listening })
      reply({ type: 'ready', id })
      return
    }
    case 'cpu': {
      reply({ type: 'cpu', id, cpu: process.cpuUsage() })
      return
    }
    case 'reach': {
      const at = await find(id).counter.reach(message.total, message.timeoutMs)
      reply({ type: 'reached', id, at: String(at), cpu: process.cpuUsage() })
      return
    }
    case 'echo': {
      find(id).counter.onEach(message.on ? (at) => reply({ type: 'got', id, at: String(at) }) : undefined)
      reply({ type: 'ok', id })
      return
    }
    case 'stop': {
      const entry = hosted.get(id)
      hosted.delete(id)
      await entry?.listening.close()
      reply({ type: 'stopped', id })
      return
    }
  }
}

process.on('message', (message: ToChild) => {
  handle(message).catch((error: unknown) => {
    reply({ type: 'failed', id: message.id, error: error instanceof Error ? (error.stack ?? error.message) : String(error) })
  })
})

// The parent is done (or gone): close whatever is still open and exit.
process.on('disconnect', () => {
  // Keeps the work done on each message observable (and so not optimised away).
  if (sinkValue() === 0.5) console.log('unreachable')
  void Promise.allSettled([...hosted.values()].map((entry) => entry.listening.close())).finally(() => process.exit(0))
  setTimeout(() => process.exit(0), 5_000).unref()
})
