// vitest globalSetup: one PostgreSQL server shared by all test files, chosen in this order:
//   1. DATABASE_URL, used as-is and never stopped;
//   2. a testcontainers container, when a container runtime answers;
//   3. the embedded binaries (test/support/postgres.ts).
// PG_TEST_SOURCE=embedded skips the container probe (it costs ~0.6 s to import testcontainers);
// PG_TEST_SOURCE=docker makes a missing runtime an error. PG_BINARIES_PACKAGE implies embedded,
// since a version matrix over binaries packages must not silently test a container instead.

import { dirname } from 'node:path'
import type { TestProject } from 'vitest/node'
import type { DatabaseSource } from './context.js'
import { startPostgres } from './postgres.js'

interface Database {
  url: string
  source: DatabaseSource
  detail: string
  stop: () => Promise<void>
}

const DOCKER_IMAGE = process.env.PG_DOCKER_IMAGE ?? 'postgres:18-alpine'

async function fromDocker(required: boolean): Promise<Database | undefined> {
  // Imported lazily: the env and embedded routes should not pay for loading testcontainers.
  const { getContainerRuntimeClient } = await import('testcontainers')
  try {
    await getContainerRuntimeClient() // fails in a few ms when there is no runtime
  } catch (error) {
    if (required) throw new Error('PG_TEST_SOURCE=docker but no container runtime was found', { cause: error })
    return undefined
  }
  const { PostgreSqlContainer } = await import('@testcontainers/postgresql')
  const container = await new PostgreSqlContainer(DOCKER_IMAGE).start()
  return {
    url: container.getConnectionUri(),
    source: 'docker',
    detail: DOCKER_IMAGE,
    stop: async () => {
      await container.stop()
    },
  }
}

async function pickDatabase(): Promise<Database> {
  const envUrl = process.env.DATABASE_URL
  if (envUrl !== undefined && envUrl !== '') {
    return { url: envUrl, source: 'env', detail: 'DATABASE_URL', stop: async () => {} }
  }
  const forced = process.env.PG_TEST_SOURCE
  if (forced !== 'embedded' && process.env.PG_BINARIES_PACKAGE === undefined) {
    const docker = await fromDocker(forced === 'docker')
    if (docker !== undefined) return docker
  }
  const server = await startPostgres()
  return {
    url: server.connectionString,
    source: 'embedded',
    detail: `PostgreSQL ${server.version}, ${dirname(server.binaries.postgres)}`,
    stop: () => server.stop(),
  }
}

/** Hides a password in the printed URL (DATABASE_URL may carry one). */
function redact(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password !== '') parsed.password = '***'
    return parsed.toString()
  } catch {
    return '<unparsable url>'
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = performance.now()
  const db = await pickDatabase()
  project.provide('databaseUrl', db.url)
  project.provide('databaseSource', db.source)
  const ms = Math.round(performance.now() - started)
  console.log(`[test db] source=${db.source} (${db.detail}) ${redact(db.url)} ready in ${ms} ms`)
  // vitest runs this teardown whether tests passed or failed.
  return db.stop
}
