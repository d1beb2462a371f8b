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

/** Takes `count` samples: send one, wait for its delivery and for the send to settle. */
async function take(
  sender: Awaited<ReturnType<typeof createSender>>,
  counter: Counter,
  from: number,
  count: number,
): Promise<number[]> {
  const samples: number[] = []
  for (let seq = from; seq < from + count; seq++) {
    const delivered = counter.next(10_000)
    const start = process.hrtime.bigint()
    const sent = sender.send(seq)
    const at = await delivered
    await sent
    samples.push(Number(at - start) / 1e6)
  }
  return samples
}

/** Connects a sender and a listener, warms them up, takes the samples, disconnects. */
async function block(request: ChildRequest, tag: string): Promise<{ cold: number[]; samples: number[] }> {
  const names = channelNames(tag)
  const counter = new Counter()
  const listening = await createListener(request.listener, request.url, names, counter.delivered)
  const sender = await createSender(request.target, request.url, names, 1)
  try {
    const cold = await take(sender, counter, 0, request.warmup)
    const samples = await take(sender, counter, request.warmup, request.samples)
    return { cold, samples }
  } finally {
    await sender.close()
    await listening.close()
  }
}

async function main(): Promise<void> {
  const request = JSON.parse(process.env.LATENCY_REQUEST ?? '{}') as ChildRequest
  if (process.send === undefined) {
    // One block per process, printed on stdout.
    const result: ChildResult = { target: request.target, ...(await block(request, request.tag)) }
    process.stdout.write(`${JSON.stringify(result)}\n`)
    return
  }
  // Kept for the whole run: the parent asks for one block after another (the libraries in turn).
  // Connected only during its own blocks: an idle listener elsewhere on the database would be woken
  // by every notifying commit of the others (PostgreSQL signals every listening backend).
  let count = 0
  await new Promise<void>((resolve, reject) => {
    process.on('message', (message: { type: 'block' | 'stop' }) => {
      if (message.type === 'stop') {
        resolve()
        return
      }
      block(request, `${request.tag}_${count++}`).then((result) => process.send?.({ type: 'samples', ...result }), reject)
    })
    process.send?.({ type: 'ready' })
  })
}

main().then(
  () => process.disconnect?.(),
  (error: unknown) => {
    console.error(error)
    process.exitCode = 1
    process.disconnect?.()
  },
)
