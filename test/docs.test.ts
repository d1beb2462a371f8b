// Docs are code. Every ```ts and ```js block of README.md and docs/*.md is
//   1. type-checked, together, against the built package (as a user's compiler sees it), and
//   2. run as a user would run it after copying it: saved to a file inside this project (so
//      'typed-pg-ipc' resolves to the built package through package.json "exports", and pg and zod to
//      ours), TypeScript transpiled to JavaScript, then `node <file>` with DATABASE_URL set (the only
//      setup the docs ask for; a database of its own, so parallel tests cannot cross-talk), to
//      completion within a timeout, its output compared with the output the doc shows.
// The ```ts blocks in doc comments of src/ are type-checked too.
//
// What a doc writes around a block (see docs/development.md):
//   <!-- example: name.ext -->       the file the reader saves it as: .ts/.mts/.mjs are ES modules,
//                                    .cts/.cjs CommonJS (default example.ts or example.mjs)
//   <!-- example: compile-only -->   never run: the text says why (rare)
//   a ```text block right after the code block, introduced by one line ending in ':' such as
//   "Prints:", is the exact expected output ("…" stands for any text within a line). Without one,
//   the example must print nothing.

import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { basename, dirname, extname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { describeChild, runChild } from './support/child.js'
import { freshDatabase } from './support/db.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const outDir = join(root, '.tmp', 'doc-examples')

interface Example {
  /** README.md, docs/x.md or src/y.ts */
  readonly source: string
  /** Line of the opening fence. */
  readonly line: number
  readonly code: string
  /** The file name a reader would save it as. */
  readonly file: string
  readonly run: boolean
  /** null: must print nothing. */
  readonly expected: string | null
}

const FENCE = /^```(ts|js)[ \t]*\n([\s\S]*?)^```[ \t]*$/gm
const MARKER = /<!--\s*example:\s*([^>]*?)\s*-->\s*$/
const OUTPUT = /^\n*[^\n`]*:[ \t]*\n\n?```text[ \t]*\n([\s\S]*?\n)```[ \t]*(?:\n|$)/

/** The code blocks of a markdown file, with what the text around each says about it. */
function fromMarkdown(source: string, text: string): Example[] {
  const examples: Example[] = []
  for (const match of text.matchAll(FENCE)) {
    const [whole, language, code = ''] = match
    const before = text.slice(0, match.index).trimEnd()
    const marker = MARKER.exec(before)?.[1]?.split(/\s+/) ?? []
    const compileOnly = marker.includes('compile-only')
    const named = marker.find((word) => word.includes('.'))
    const after = text.slice(match.index + whole.length)
    const output = OUTPUT.exec(after)
    examples.push({
      source,
      line: text.slice(0, match.index).split('\n').length,
      code,
      file: named ?? (language === 'ts' ? 'example.ts' : 'example.mjs'),
      run: !compileOnly,
      expected: output === null ? null : (output[1] ?? ''),
    })
  }
  return examples
}

/** ```ts blocks inside /** ... *\/ comments of a TypeScript source file: compiled, not run. */
function fromDocComments(source: string, text: string): Example[] {
  const examples: Example[] = []
  const pattern = /^\s*\* ```ts\n([\s\S]*?)^\s*\* ```/gm
  for (const match of text.matchAll(pattern)) {
    const line = text.slice(0, match.index).split('\n').length
    const code = (match[1] ?? '').replace(/^\s*\* ?/gm, '')
    examples.push({ source, line, code, file: 'example.ts', run: false, expected: null })
  }
  return examples
}

function collect(): Example[] {
  const examples = fromMarkdown('README.md', readFileSync(join(root, 'README.md'), 'utf8'))
  for (const name of readdirSync(join(root, 'docs'))
    .filter((file) => file.endsWith('.md'))
    .sort()) {
    examples.push(...fromMarkdown(`docs/${name}`, readFileSync(join(root, 'docs', name), 'utf8')))
  }
  for (const entry of readdirSync(join(root, 'src'), { recursive: true, encoding: 'utf8' }).sort()) {
    if (entry.endsWith('.ts')) examples.push(...fromDocComments(`src/${entry}`, readFileSync(join(root, 'src', entry), 'utf8')))
  }
  return examples
}

const examples = collect()
const label = (example: Example): string => `${example.source}:${example.line} (${example.file})`
const folderOf = (index: number): string => join(outDir, String(index).padStart(3, '0'))

/** `expected` as a pattern over the whole output: literal text, "…" matching anything within a line. */
function outputPattern(expected: string): RegExp {
  const literal = expected.split('…').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
  return new RegExp(`^${literal.join('[^\\n]*')}$`)
}

/** What node runs for an example: JavaScript as written, TypeScript transpiled as tsc would emit it. */
function runnable(example: Example, dir: string): string {
  const path = join(dir, example.file)
  const extension = extname(example.file)
  if (extension === '.mjs' || extension === '.cjs' || extension === '.js') return path
  const commonJs = extension === '.cts'
  const output = ts.transpileModule(example.code, {
    fileName: example.file,
    compilerOptions: {
      target: ts.ScriptTarget.ES2022,
      module: commonJs ? ts.ModuleKind.CommonJS : ts.ModuleKind.ESNext,
      verbatimModuleSyntax: false,
    },
  })
  const compiled = join(dir, `${basename(example.file, extension)}${commonJs ? '.cjs' : '.mjs'}`)
  writeFileSync(compiled, output.outputText)
  return compiled
}

const runtimes: { example: string; ms: number }[] = []

describe('documentation examples', () => {
  beforeAll(() => {
    if (!existsSync(join(root, 'dist', 'index.d.ts'))) {
      throw new Error('dist/ is missing: run `npm run build` first (`npm test` builds before running vitest)')
    }
    rmSync(outDir, { recursive: true, force: true })
    examples.forEach((example, index) => {
      const dir = folderOf(index)
      mkdirSync(dir, { recursive: true })
      writeFileSync(join(dir, example.file), example.code)
    })
  })

  afterAll(() => {
    if (runtimes.length === 0) return
    const width = Math.max(...runtimes.map((entry) => entry.example.length))
    console.log(
      `documentation examples run:\n${runtimes.map((entry) => `  ${entry.example.padEnd(width)}  ${(entry.ms / 1000).toFixed(2)} s`).join('\n')}`,
    )
  })

  it('finds the examples, and nearly all of them run', () => {
    const markdown = examples.filter((example) => !example.source.startsWith('src/'))
    expect(markdown.length).toBeGreaterThanOrEqual(15)
    const compileOnly = markdown.filter((example) => !example.run)
    // "Examples that cannot run alone say so and are compiled instead, and there are few of them."
    expect(compileOnly.length, compileOnly.map(label).join('\n')).toBeLessThanOrEqual(3)
    expect(examples.every((example) => !example.source.startsWith('src/') || !example.run)).toBe(true)
  })

  it('every example compiles against the built package', { timeout: 180_000 }, async () => {
    // TypeScript as written. JavaScript ES modules are checked as TypeScript too (the docs say the same
    // code is TypeScript); CommonJS JavaScript (pg-ipc style, untyped payloads) is only run.
    const files: string[] = []
    examples.forEach((example, index) => {
      const extension = extname(example.file)
      const relativeDir = folderOf(index).slice(outDir.length + 1)
      if (extension === '.cjs' || extension === '.js') return
      if (extension === '.mjs') {
        const copy = `${basename(example.file, extension)}.typecheck.mts`
        writeFileSync(join(folderOf(index), copy), example.code)
        files.push(join(relativeDir, copy))
      } else files.push(join(relativeDir, example.file))
    })
    writeFileSync(
      join(outDir, 'tsconfig.json'),
      JSON.stringify({
        extends: '../../tsconfig.json',
        compilerOptions: { noEmit: true, rootDir: '.', noUnusedLocals: false },
        files,
        include: [],
      }),
    )
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
    const run = await runChild(process.execPath, [tsc, '-p', join(outDir, 'tsconfig.json')], { cwd: root, timeoutMs: 170_000 })
    // Each error, mapped back to the document and line it came from.
    const located = run.stdout.replace(/^(?:.*[/])?(\d{3})\/[^(\s]*\((\d+),(\d+)\)/gm, (whole, index: string, line: string) => {
      const example = examples[Number(index)]
      return example === undefined ? whole : `${example.source}:${example.line + Number(line)}`
    })
    expect(located, `examples that do not compile:\n${located}`).toBe('')
    expect(run.code, describeChild(run)).toBe(0)
  })

  const runnableExamples = examples.map((example, index) => ({ example, index })).filter(({ example }) => example.run)
  for (const { example, index } of runnableExamples) {
    it(`runs ${label(example)}`, async () => {
      const file = runnable(example, folderOf(index))
      const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: await freshDatabase('doc') }
      delete env.NODE_OPTIONS
      const run = await runChild(process.execPath, [file], { cwd: dirname(file), env, timeoutMs: 20_000 })
      runtimes.push({ example: label(example), ms: run.ms })
      expect(run.timedOut, `did not finish in 20 s: ${describeChild(run)}`).toBe(false)
      expect(run.code, describeChild(run)).toBe(0)
      expect(run.stderr, describeChild(run)).toBe('')
      if (example.expected === null) expect(run.stdout, 'this example shows no output, so it must print nothing').toBe('')
      else expect(run.stdout).toMatch(outputPattern(example.expected))
    }, 30_000)
  }
})

/** Markdown links outside code blocks: [text](target). */
function links(text: string): string[] {
  const prose = text.replace(/^```[\s\S]*?^```/gm, '')
  return [...prose.matchAll(/\]\(([^)\s]+)\)/g)].map((match) => match[1] ?? '')
}

describe('documentation links', () => {
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    homepage: string
    repository: { url: string }
    bugs: { url: string }
  }
  const home = manifest.homepage.replace(/#readme$/, '')

  it('package.json names one home for the repository', () => {
    expect(home).toMatch(/^https:\/\/github\.com\/[\w.-]+\/[\w.-]+$/)
    expect(manifest.repository.url).toBe(`git+${home}.git`)
    expect(manifest.bugs.url).toBe(`${home}/issues`)
  })

  it('README links work on the npm page: absolute, and those into the repository name files that exist', () => {
    const found = links(readFileSync(join(root, 'README.md'), 'utf8'))
    expect(found.length).toBeGreaterThan(5)
    for (const target of found) {
      expect(target, `README link "${target}" is relative: dead on the npm page`).toMatch(/^(https?:|#)/)
      const inRepository = /^(?:blob|tree)\/main\/([^#]+)/.exec(
        target.startsWith(`${home}/`) ? target.slice(home.length + 1) : '',
      )
      if (inRepository !== null)
        expect(existsSync(join(root, inRepository[1] ?? '')), `README links to ${target}, which is not in the repository`).toBe(
          true,
        )
    }
  })

  it('links between docs/ pages name files that exist', () => {
    for (const name of readdirSync(join(root, 'docs')).filter((file) => file.endsWith('.md'))) {
      for (const target of links(readFileSync(join(root, 'docs', name), 'utf8'))) {
        if (/^(https?:|#|mailto:)/.test(target)) continue
        const path = join(root, 'docs', target.replace(/#.*$/, ''))
        expect(existsSync(path), `docs/${name} links to ${target}, which does not exist`).toBe(true)
      }
    }
  })
})
