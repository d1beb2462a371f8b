// Run by pg-ipc.test.ts in a child process: a channel listener throws and nobody listens for
// 'error'. Node's convention says the error is thrown; it must surface as an uncaught exception
// on a fresh stack (not inside pg's parser), and the connection must keep working.
import pg from 'pg'
import { pgIPC } from 'typed-pg-ipc'

const channel = process.env.CHANNEL
const client = new pg.Client({ connectionString: process.env.DATABASE_URL })
await client.connect()
const sender = new pg.Client({ connectionString: process.env.DATABASE_URL })
await sender.connect()

const ipc = pgIPC(client)
const uncaught = new Promise((resolve) => process.once('uncaughtException', resolve))
const after = new Promise((resolve) =>
  ipc.on(channel, (message) => {
    if (message.rawPayload === 'throw') throw new Error('nobody listens for errors')
    resolve(message.rawPayload)
  }),
)
await ipc.listening(channel)
await sender.query('SELECT pg_notify($1, $2)', [channel, 'throw'])
const error = await uncaught
await sender.query('SELECT pg_notify($1, $2)', [channel, 'next'])
const afterwards = await after
await ipc.end()
await client.end()
await sender.end()
process.stdout.write(
  JSON.stringify({
    uncaught: error.code,
    thrownFromPg: /node_modules[\\/]pg(-protocol)?[\\/]/.test(String(error.stack).split('\n').slice(0, 3).join('\n')),
    afterwards,
  }),
)
