// Child processes for tests that run what a user runs (node on a file, npm, git, tsc): output captured,
// a hard timeout that kills the whole process group, and a description for failure messages.

import { spawn } from 'node:child_process'

export interface ChildRun {
  readonly command: string
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
  /** Wall-clock time of the run. */
  readonly ms: number
  /** Killed because it ran longer than timeoutMs. */
  readonly timedOut: boolean
}

export interface ChildOptions {
  readonly cwd: string
  /** The whole environment of the child (not merged with ours). Default: ours. */
  readonly env?: NodeJS.ProcessEnv
  /** Killed (SIGTERM to its process group, SIGKILL 5 s later) after this long. */
  readonly timeoutMs: number
}

/** Runs `file args` to its end; never rejects for a non-zero exit (look at `code`). */
export function runChild(file: string, args: readonly string[], options: ChildOptions): Promise<ChildRun> {
  const command = [file, ...args].join(' ')
  const started = performance.now()
  return new Promise((resolve, reject) => {
    // detached: its own process group, so a timeout also stops what it started (npm -> sh -> node).
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    })
    let stdout = ''
    let stderr = ''
    let timedOut = false
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    const killGroup = (signal: NodeJS.Signals): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, signal)
      } catch {
        // already gone
      }
    }
    let hardKill: NodeJS.Timeout | undefined
    const timer = setTimeout(() => {
      timedOut = true
      killGroup('SIGTERM')
      hardKill = setTimeout(() => killGroup('SIGKILL'), 5_000)
    }, options.timeoutMs)
    child.on('error', (error) => {
      clearTimeout(timer)
      clearTimeout(hardKill)
      reject(new Error(`${command}: ${error.message}`, { cause: error }))
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      clearTimeout(hardKill)
      resolve({ command, code, signal, stdout, stderr, ms: performance.now() - started, timedOut })
    })
  })
}

/** Everything about a run, for an assertion message. */
export function describeChild(run: ChildRun): string {
  const how = run.timedOut
    ? `killed after timeout (${Math.round(run.ms)} ms)`
    : `exit ${String(run.code)}${run.signal === null ? '' : ` ${run.signal}`}`
  return `${run.command}: ${how}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`
}

/** Our environment without the given variables, plus the given ones. */
export function childEnv(remove: readonly string[], add: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env }
  for (const key of remove) delete env[key]
  return { ...env, ...add }
}
