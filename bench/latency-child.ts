// One block of the fresh-process latency comparison (bench/latency.ts): a new Node process that
// loads one library, connects a sender and a listener (two connections, this process), takes
// `warmup + samples` single-message round trips and prints them as one JSON line on stdout.
//
// A sample: from just before the send call to the listener callback (process.hrtime), then the send
// itself is awaited too before the next one starts, so each sample starts on an idle connection.

import { Counter } from './probe.js'
import { channelNames } from './payloads.js'
import { createListener, createSender, type ListenerKind, type SenderKind } from './targets.js'

export interface ChildRequest {
  readonly url: string
  readonly target: SenderKind
  readonly listener: ListenerKind
  readonly warmup: number
  readonly samples: number
  readonly tag: string
}

export interface ChildResult {
  readonly target: SenderKind
  /** Milliseconds; the first `warmup` of them were taken on a cold process (JIT, new connections). */
  readonly cold: number[]
  readonly samples: number[]
}

async function main(): Promise<void> {
  const request = JSON.parse(process.env.LATENCY_REQUEST ?? '{}') as ChildRequest
  const names = channelNames(request.tag)
  const counter = new Counter()
  const listening = await createListener(request.listener, request.url, names, counter.delivered)
  const sender = await createSender(request.target, request.url, names, 1)
  const cold: number[] = []
  const samples: number[] = []
  try {
    for (let seq = 0; seq < request.warmup + request.samples; seq++) {
      const delivered = counter.next(10_000)
      const start = process.hrtime.bigint()
      const sent = sender.send(seq)
      const at = await delivered
      await sent
      const ms = Number(at - start) / 1e6
      if (seq < request.warmup) cold.push(ms)
      else samples.push(ms)
    }
  } finally {
    await sender.close()
    await listening.close()
  }
  const result: ChildResult = { target: request.target, cold, samples }
  process.stdout.write(`${JSON.stringify(result)}\n`)
}

main().catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
