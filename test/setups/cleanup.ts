// Last-resort cleanup for what the setups tests start besides PostgreSQL servers (PgBouncer, the
// standby's data dir): run synchronously when the test process exits or is killed by a signal.
// Normal cleanup is the tests' afterAll; this only covers a run that dies on the way.

const tasks = new Set<() => void>()
let installed = false

function runAll(): void {
  for (const task of tasks) {
    try {
      task()
    } catch {
      // best effort: the process is going away
    }
  }
  tasks.clear()
}

function onSignal(signal: NodeJS.Signals): void {
  runAll()
  // Re-raise when nobody else handles it (test/support/postgres.ts does the same), so the process
  // still dies by that signal, with the status it would have had without us.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
}

/** Runs `task` (synchronous) if the process exits or is killed before the returned function is called. */
export function cleanupOnExit(task: () => void): () => void {
  tasks.add(task)
  if (!installed) {
    installed = true
    process.on('exit', runAll)
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, onSignal)
  }
  return () => {
    tasks.delete(task)
  }
}
