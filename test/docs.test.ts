// Docs are code: every ```ts block in README.md, docs/*.md and the doc comments of src/ is
// type-checked against the library's public entry point, so an example cannot drift from the API.
import { execFile } from 'node:child_process'
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const root = join(import.meta.dirname, '..')
const outDir = join(root, '.tmp', 'doc-examples')

interface Example {
  readonly source: string
  readonly line: number
  readonly code: string
}

/** ```ts blocks of a markdown file. */
function fromMarkdown(source: string, text: string): Example[] {
  const examples: Example[] = []
  const pattern = /^```ts\n([\s\S]*?)^```/gm
  for (const match of text.matchAll(pattern)) {
    const line = text.slice(0, match.index).split('\n').length
    examples.push({ source, line, code: match[1] ?? '' })
  }
  return examples
}

/** ```ts blocks inside /** ... *\/ comments of a TypeScript source file. */
function fromDocComments(source: string, text: string): Example[] {
  const examples: Example[] = []
  const pattern = /^\s*\* ```ts\n([\s\S]*?)^\s*\* ```/gm
  for (const match of text.matchAll(pattern)) {
    const line = text.slice(0, match.index).split('\n').length
    const code = (match[1] ?? '').replace(/^\s*\* ?/gm, '')
    examples.push({ source, line, code })
  }
  return examples
}

async function collect(): Promise<Example[]> {
  const examples: Example[] = []
  const readme = join(root, 'README.md')
  examples.push(...fromMarkdown('README.md', await readFile(readme, 'utf8')))
  for (const name of (await readdir(join(root, 'docs'))).filter((file) => file.endsWith('.md')).sort()) {
    examples.push(...fromMarkdown(`docs/${name}`, await readFile(join(root, 'docs', name), 'utf8')))
  }
  for (const entry of await readdir(join(root, 'src'), { recursive: true })) {
    if (!entry.endsWith('.ts')) continue
    examples.push(...fromDocComments(`src/${entry}`, await readFile(join(root, 'src', entry), 'utf8')))
  }
  return examples
}

describe('documentation examples', () => {
  it('every TypeScript example in README, docs/ and doc comments compiles', { timeout: 120_000 }, async () => {
    const examples = await collect()
    // Enough to notice a docs folder that lost its examples.
    expect(examples.length).toBeGreaterThanOrEqual(15)
    await rm(outDir, { recursive: true, force: true })
    await mkdir(outDir, { recursive: true })
    const files: string[] = []
    for (const [index, example] of examples.entries()) {
      const name = `${String(index).padStart(3, '0')}-${example.source.replace(/[^a-z0-9]+/gi, '_')}-L${example.line}.ts`
      // Each example is a module of its own; the package name resolves to the sources.
      await writeFile(join(outDir, name), `${example.code}\nexport {}\n`)
      files.push(name)
    }
    await writeFile(
      join(outDir, 'tsconfig.json'),
      JSON.stringify({
        extends: '../../tsconfig.json',
        compilerOptions: {
          noEmit: true,
          rootDir: '../..',
          noUnusedLocals: false,
          paths: { 'typed-pg-ipc': ['../../src/index.ts'] },
          allowImportingTsExtensions: true,
        },
        include: files,
      }),
    )
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
    const result = await promisify(execFile)(process.execPath, [tsc, '-p', join(outDir, 'tsconfig.json')], {
      cwd: root,
    }).then(
      () => '',
      (error: { stdout?: string }) => error.stdout ?? String(error),
    )
    // Map each error back to the document and line it came from.
    const located = result.replace(/^(?:.*[\/])?(\d{3})-[^(]*\.ts\((\d+),(\d+)\)/gm, (_match, index: string, line: string) => {
      const example = examples[Number(index)]
      return example === undefined ? _match : `${example.source}:${example.line + Number(line)}`
    })
    expect(located, `examples that do not compile:\n${located}`).toBe('')
    expect(relative(root, outDir)).toBe(join('.tmp', 'doc-examples'))
  })
})
