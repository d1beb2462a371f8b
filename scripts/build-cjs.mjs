#!/usr/bin/env node
// The CommonJS face of the package, made after `tsc` built the ES module (`npm run build` runs both).
//
// Runtime: dist/index.cjs (a copy of src/index.cjs) require()s dist/index.js, so there is one copy of
// the code for both module systems.
//
// Types: the package is "type": "module", so every .d.ts in dist/ describes an ES module, which a
// TypeScript project compiled as CommonJS with `module: node16` may not import (TS1479). So:
//   - dist/cjs/**/*.d.cts: a CommonJS-format copy of every declaration file (relative imports point at
//     the copies; a type import of a package that only has ES module types, such as type-fest, gets
//     `resolution-mode: import`, which TypeScript allows for type-only imports);
//   - dist/index.d.cts: `export =` of a function that is also a namespace holding every export of the
//     package, which is what dist/index.cjs is at run time.
// Nothing here is written by hand per export: the export list and pgIPC's overloads are read from
// the built declarations with the TypeScript compiler API, so this never falls behind src/index.ts.

import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const dist = join(root, 'dist')
const cjsTypes = join(dist, 'cjs')

/** Compiler options of a CommonJS consumer on `module: node16`, to resolve imports as it would. */
const consumerOptions = { module: ts.ModuleKind.Node16, moduleResolution: ts.ModuleResolutionKind.Node16 }

function declarationFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return path === cjsTypes ? [] : declarationFiles(path)
    return entry.name.endsWith('.d.ts') ? [path] : []
  })
}

/** Does `specifier`, imported from a CommonJS file at `from`, resolve to ES module types only? */
function esmOnly(specifier, from) {
  const { resolvedModule } = ts.resolveModuleName(
    specifier,
    from,
    consumerOptions,
    ts.sys,
    undefined,
    undefined,
    ts.ModuleKind.CommonJS,
  )
  if (resolvedModule === undefined) return false // not installed here: nothing to decide, leave it as is
  const format = ts.getImpliedNodeFormatForFile(resolvedModule.resolvedFileName, undefined, ts.sys, consumerOptions)
  return format === ts.ModuleKind.ESNext
}

/**
 * The CommonJS-format copy of one declaration file: text edits at the positions the parser found
 * (module specifiers, type-only export modifiers), applied back to front.
 */
function toCommonJs(file, { dropTypeOnlyExports }) {
  const text = readFileSync(file, 'utf8')
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true)
  const edits = []
  const relativeSpecifier = (literal) => {
    const value = literal.text
    if (!value.startsWith('.')) return false
    if (!value.endsWith('.js')) throw new Error(`${relative(root, file)}: relative import without .js: ${value}`)
    edits.push({ start: literal.getStart(source) + 1, end: literal.getEnd() - 1, text: `${value.slice(0, -3)}.cjs` })
    return true
  }
  const visit = (node) => {
    if (
      (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) &&
      node.moduleSpecifier !== undefined &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      if (!relativeSpecifier(node.moduleSpecifier) && esmOnly(node.moduleSpecifier.text, file)) {
        if (node.attributes !== undefined) throw new Error(`${relative(root, file)}: import attributes already present`)
        const typeOnly = ts.isImportDeclaration(node) ? node.importClause?.isTypeOnly === true : node.isTypeOnly
        if (!typeOnly) throw new Error(`${relative(root, file)}: a value import of ES-module-only ${node.moduleSpecifier.text}`)
        edits.push({
          start: node.moduleSpecifier.getEnd(),
          end: node.moduleSpecifier.getEnd(),
          text: " with { 'resolution-mode': 'import' }",
        })
      }
      if (dropTypeOnlyExports && ts.isExportDeclaration(node)) {
        // `export import X = lib.X` (in index.d.cts) cannot alias what was exported with `export type`.
        if (node.isTypeOnly) {
          const start = node.getStart(source)
          const match = /^export\s+type\s+/.exec(text.slice(start))
          if (match === null) throw new Error(`${relative(root, file)}: unexpected export type syntax`)
          edits.push({ start, end: start + match[0].length, text: 'export ' })
        }
        if (node.exportClause !== undefined && ts.isNamedExports(node.exportClause)) {
          for (const element of node.exportClause.elements) {
            if (!element.isTypeOnly) continue
            const start = element.getStart(source)
            const match = /^type\s+/.exec(text.slice(start))
            if (match === null) throw new Error(`${relative(root, file)}: unexpected type modifier syntax`)
            edits.push({ start, end: start + match[0].length, text: '' })
          }
        }
      }
    }
    if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      const literal = node.argument.literal
      if (!relativeSpecifier(literal) && esmOnly(literal.text, file)) {
        if (node.attributes !== undefined) throw new Error(`${relative(root, file)}: import attributes already present`)
        edits.push({ start: literal.getEnd(), end: literal.getEnd(), text: ", { with: { 'resolution-mode': 'import' } }" })
      }
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  edits.sort((a, b) => b.start - a.start)
  let result = text
  for (const edit of edits) result = result.slice(0, edit.start) + edit.text + result.slice(edit.end)
  return result
}

// ---- 1. the CommonJS copies of the declarations -------------------------------------------------

const index = join(dist, 'index.d.ts')
for (const file of declarationFiles(dist)) {
  const target = join(cjsTypes, relative(dist, file)).replace(/\.d\.ts$/, '.d.cts')
  mkdirSync(dirname(target), { recursive: true })
  writeFileSync(target, toCommonJs(file, { dropTypeOnlyExports: file === index }))
}

// ---- 2. the export list and pgIPC's overloads, from the ES module's declarations ----------------

const program = ts.createProgram([index], {
  ...consumerOptions,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  noEmit: true,
})
const checker = program.getTypeChecker()
const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(index))
if (moduleSymbol === undefined) throw new Error('dist/index.d.ts has no module symbol')
const names = checker
  .getExportsOfModule(moduleSymbol)
  .map((symbol) => symbol.name)
  .filter((name) => name !== 'default')
  .sort()
if (!names.includes('pgIPC')) throw new Error('dist/index.d.ts does not export pgIPC')

const pgIPCSymbol = checker.getAliasedSymbol(checker.getExportsOfModule(moduleSymbol).find((symbol) => symbol.name === 'pgIPC'))
const overloads = (pgIPCSymbol.declarations ?? []).filter(
  (declaration) => ts.isFunctionDeclaration(declaration) && declaration.body === undefined,
)
if (overloads.length === 0) throw new Error('no declaration of pgIPC found')

/** Every type name an overload mentions must be one the package exports (it is imported from there). */
const mentioned = new Set()
const signatures = overloads.map((declaration) => {
  const source = declaration.getSourceFile()
  const collect = (node) => {
    if (ts.isTypeReferenceNode(node) && ts.isIdentifier(node.typeName)) mentioned.add(node.typeName.text)
    ts.forEachChild(node, collect)
  }
  collect(declaration)
  // The declaration with its doc comment, so editors show the same help on require('typed-pg-ipc')(...).
  const fullText = source.text.slice(declaration.getFullStart(), declaration.getEnd()).replace(/^\s*\n/, '')
  return fullText.replace(/\bexport\s+declare\s+function\s+pgIPC\b/, 'declare function pgIPC')
})
const typeParameters = new Set(
  overloads.flatMap((declaration) => (declaration.typeParameters ?? []).map((parameter) => parameter.name.text)),
)
const imported = [...mentioned].filter((name) => !typeParameters.has(name)).sort()
for (const name of imported) {
  if (!names.includes(name)) throw new Error(`pgIPC's signature mentions ${name}, which the package does not export`)
}

// ---- 3. dist/index.d.cts and dist/index.cjs ----------------------------------------------------------

const declaration = `// The CommonJS entry point (dist/index.cjs): \`require('typed-pg-ipc')\` is pgIPC itself, and every
// export of the package is also a property of it. Generated by scripts/build-cjs.mjs.
import * as lib from './cjs/index.cjs';
import type { ${imported.join(', ')} } from './cjs/index.cjs';
${signatures.join('\n')}
declare namespace pgIPC {
${names.map((name) => `    export import ${name} = lib.${name};`).join('\n')}
    export { pgIPC as default };
}
export = pgIPC;
`
writeFileSync(join(dist, 'index.d.cts'), declaration)
copyFileSync(join(root, 'src', 'index.cjs'), join(dist, 'index.cjs'))
