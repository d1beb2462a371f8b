// The architecture, checked: pg's internals and SQL text live in src/pg, and only there; the layers
// import downwards only (index -> typed -> core -> wire -> pg, errors a leaf).
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const src = fileURLToPath(new URL('../../src', import.meta.url))

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [],
  )
}

const files = sources(src).map((path) => ({ path: relative(src, path).split(sep).join('/'), text: readFileSync(path, 'utf8') }))
const outsidePg = files.filter((file) => !file.path.startsWith('pg/'))

/** Lines of `text` matching `pattern`, as "path:line: text". */
function hits(file: { path: string; text: string }, pattern: RegExp): string[] {
  return file.text.split('\n').flatMap((line, index) => (pattern.test(line) ? [`${file.path}:${index + 1}: ${line.trim()}`] : []))
}

describe('pg in one place', () => {
  it('no file outside src/pg reads or writes pg internals, or casts through unknown', () => {
    const internals =
      /\b_(activeQuery|queryQueue|sentQueryQueue|connected|connecting|ending|ended|queryable|txStatus)\b|\breadyForQuery\b|\.connection\b|getTransactionStatus|as unknown as/
    expect(outsidePg.flatMap((file) => hits(file, internals))).toEqual([])
  })

  it('no SQL text outside src/pg (comments aside)', () => {
    // A statement, not a command's name: a keyword followed by more of it inside a string literal.
    const sql = /pg_catalog\.|pg_notify\s*\(|['`"]\s*(SELECT|LISTEN|UNLISTEN|NOTIFY|BEGIN|COMMIT|ROLLBACK)\s+[^\s'`]/
    const code = (file: { path: string; text: string }) => ({
      path: file.path,
      text: file.text.replace(/^\s*(\*|\/\/).*$/gm, ''),
    })
    const offenders = outsidePg.flatMap((file) => hits(code(file), sql))
    expect(offenders).toEqual([])
  })
})

describe('layers', () => {
  // durable/ is a feature of the typed layer: it ranks with it.
  const rank: Record<string, number> = { 'index.ts': 5, typed: 4, durable: 4, core: 3, wire: 2, pg: 1, errors: 0 }
  const layerOf = (path: string): string => (path.includes('/') ? (path.split('/')[0] as string) : path)

  it('import only downwards (errors is a leaf)', () => {
    const upward: string[] = []
    for (const file of files) {
      const from = layerOf(file.path)
      for (const match of file.text.matchAll(/from '(\.{1,2}\/[^']+)'/g)) {
        const target = relative(src, join(src, file.path, '..', match[1] as string))
          .split(sep)
          .join('/')
        const to = layerOf(target.replace(/\.js$/, '.ts'))
        if (to !== from && (rank[to] ?? -1) > (rank[from] ?? -1)) upward.push(`${file.path} imports ${target}`)
      }
    }
    expect(upward).toEqual([])
  })
})
