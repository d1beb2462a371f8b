import { configDefaults, defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    // One shared PostgreSQL for the whole run (DATABASE_URL, a container, or embedded binaries).
    globalSetup: ['./test/support/global-setup.ts'],
    include: ['test/**/*.test.ts'],
    // The fast tier has its own config (vitest.fast.config.ts, no database): never run twice.
    exclude: [...configDefaults.exclude, 'test/fast/**'],
    testTimeout: 30_000,
    // Hooks may start a private PostgreSQL (initdb + start takes 1-2 s, more on a loaded machine).
    hookTimeout: 60_000,
    // Child processes rather than threads: each test file gets its own process, pid and exit hooks.
    pool: 'forks',
  },
})
