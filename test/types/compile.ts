// Compiles TypeScript snippets against the built package (dist/, as a consumer and tsd see it) with
// the compiler API, in memory and in one program, and returns each snippet's diagnostics as text.
// For tests of what the compiler *says*: tsd's expectError only checks that there is an error.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const root = fileURLToPath(new URL('../../', import.meta.url))

export interface SnippetDiagnostic {
  readonly code: number
  /** The message with its chain, one level per line, as tsc prints it. */
  readonly text: string
}

/**
 * Each snippet becomes a module `header + snippet` under the project root (never written to disk),
 * so `typed-pg-ipc` resolves to the package itself through package.json `exports` (dist/index.d.ts),
 * and `zod` and `pg` from the project's node_modules.
 */
export function compileSnippets(header: string, snippets: Readonly<Record<string, string>>): Record<string, SnippetDiagnostic[]> {
  if (!existsSync(join(root, 'dist', 'index.d.ts'))) {
    throw new Error('dist/index.d.ts is missing: run `npm run build` first (`npm test` builds before running vitest)')
  }
  const dir = join(root, '.tmp', 'type-errors')
  const files = new Map<string, string>()
  const nameOf = new Map<string, string>()
  for (const [index, [name, snippet]] of Object.entries(snippets).entries()) {
    const file = join(dir, `snippet${index}.ts`)
    files.set(file, `${header}\n${snippet}\nexport {}\n`)
    nameOf.set(file, name)
  }
  const options: ts.CompilerOptions = {
    strict: true,
    exactOptionalPropertyTypes: true,
    target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2023.d.ts'],
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: ['node'],
    noEmit: true,
    skipLibCheck: true,
  }
  const host = ts.createCompilerHost(options, true)
  const { fileExists, readFile, getSourceFile } = host
  host.fileExists = (file) => files.has(file) || fileExists.call(host, file)
  host.readFile = (file) => files.get(file) ?? readFile.call(host, file)
  host.getSourceFile = (file, language, onError, create) => {
    const text = files.get(file)
    return text === undefined
      ? getSourceFile.call(host, file, language, onError, create)
      : ts.createSourceFile(file, text, language, true)
  }
  const program = ts.createProgram({ rootNames: [...files.keys()], options, host })
  const result: Record<string, SnippetDiagnostic[]> = {}
  for (const file of files.keys()) {
    const source = program.getSourceFile(file)
    if (source === undefined) throw new Error(`the compiler did not load ${file}`)
    const diagnostics = [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)]
    result[nameOf.get(file) ?? file] = diagnostics.map((diagnostic) => ({
      code: diagnostic.code,
      text: ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'),
    }))
  }
  return result
}
