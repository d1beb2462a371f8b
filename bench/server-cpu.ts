// CPU time of the PostgreSQL server (postmaster and all its children: the backends of every
// connection, the background processes), read from /proc. Only when the server runs on this
// Linux machine (the embedded one always does); otherwise the benchmark reports no server CPU.

import { execFileSync } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import pg from 'pg'

interface Stat {
  readonly ppid: number
  readonly ticks: number
  readonly comm: string
}

function stat(pid: number | string): Stat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // "pid (comm) state ppid ... utime(14) stime(15)": comm may hold spaces, so split after ')'.
    const close = text.lastIndexOf(')')
    const fields = text.slice(close + 2).split(' ')
    return {
      comm: text.slice(text.indexOf('(') + 1, close),
      ppid: Number(fields[1]),
      ticks: Number(fields[11]) + Number(fields[12]),
    }
  } catch {
    return undefined
  }
}

function ticksPerSecond(): number {
  try {
    const value = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', stdio: 'pipe' }).trim())
    return Number.isFinite(value) && value > 0 ? value : 100
  } catch {
    return 100
  }
}

export interface ServerCpu {
  /** Server CPU time so far, in microseconds (10 ms resolution per process). */
  read(): number
}

export async function serverCpu(url: string): Promise<ServerCpu | undefined> {
  if (process.platform !== 'linux') return undefined
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  let postmaster: number | undefined
  try {
    const backend = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid
    // Same machine only: our backend must be a local "postgres" process whose parent is one too.
    const own = backend === undefined ? undefined : stat(backend)
    const parent = own === undefined ? undefined : stat(own.ppid)
    if (own?.comm === 'postgres' && parent?.comm === 'postgres') postmaster = own.ppid
  } finally {
    await client.end()
  }
  if (postmaster === undefined) return undefined
  const root = postmaster
  const microsPerTick = 1e6 / ticksPerSecond()
  return {
    read: () => {
      let ticks = 0
      for (const entry of readdirSync('/proc')) {
        if (entry.charCodeAt(0) > 57) continue // not a pid
        const info = stat(entry)
        if (info !== undefined && (Number(entry) === root || info.ppid === root)) ticks += info.ticks
      }
      return ticks * microsPerTick
    },
  }
}
