// A listener process of the durable soak (bench/durable-soak.ts): it resumes after the cursor on the
// last line of its log (or starts from the beginning of the table it is given), and appends one line
// per message, "id<TAB>payload<TAB>cursor", with one write each: the message is handled and its
// cursor stored in the same step, so a SIGKILL at any moment loses or repeats nothing.
import { appendFileSync, existsSync, readFileSync } from 'node:fs'
import { z } from 'zod'
import { defineChannels, durable } from '../src/index.js'

const [url, channel, table, log, startCursor] = process.argv.slice(2) as [string, string, string, string, string]
const channels = defineChannels(
  { [channel]: durable(z.object({ w: z.number(), seq: z.number(), pad: z.string() })) } as Record<
    'c',
    ReturnType<typeof durable<z.ZodObject<{ w: z.ZodNumber; seq: z.ZodNumber; pad: z.ZodString }>>>
  >,
  { durable: { table, retention: { pruneEveryMs: false } } },
)

const lines = existsSync(log)
  ? readFileSync(log, 'utf8')
      .split('\n')
      .filter((line) => line !== '')
  : []
const after = lines.at(-1)?.split('\t')[2] ?? startCursor
const ipc = channels.attach({ connect: url, retry: { initialDelayMs: 10, maxDelayMs: 200 } })
ipc.on('error', (error) => process.stderr.write(`child error: ${error.message}\n`))
process.stdout.write('ready\n')
for await (const message of ipc.messages(channel as 'c', { after, bufferSize: 100_000 })) {
  appendFileSync(log, `${message.id}\t${message.rawPayload}\t${message.cursor}\n`)
}
