import { configDefaults, defineConfig } from 'vitest/config'

// The fast tier: no database (no global setup), so it runs in seconds and `npm test` runs it first.
// The tests here drive a real pg.Client over a fake session (test/fast/support/fake-pg.ts).
export default defineConfig({
  test: {
    include: ['test/fast/**/*.test.ts'],
    exclude: [...configDefaults.exclude],
    // Nothing here waits on a server: a test that takes this long is stuck, not slow.
    testTimeout: 5_000,
    // Threads start faster than child processes; these tests touch no process-wide state but fake timers.
    pool: 'threads',
  },
})
