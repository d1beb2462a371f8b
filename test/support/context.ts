// Values the global setup hands to test files through vitest's provide/inject.

export type DatabaseSource = 'env' | 'docker' | 'embedded'

declare module 'vitest' {
  export interface ProvidedContext {
    /** Connection string of the server shared by all test files. */
    databaseUrl: string
    /** Where that server came from: DATABASE_URL, a testcontainers container, or the embedded binaries. */
    databaseSource: DatabaseSource
  }
}
