// Renders benchmark results (bench/results/latest.json) as the console tables and as
// docs/benchmarks.md. Also a command: regenerate the docs from a JSON file without measuring again:
//
//   npx tsc -p bench/tsconfig.json && node .tmp/bench/bench/report.js [results.json] [benchmarks.md]

import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { BenchResults, Layout, ThroughputPoint } from './results.js'
import { TARGETS, type SenderKind } from './targets.js'

type Align = 'left' | 'right'

/** A markdown table whose columns are padded, so it reads as well in a terminal. */
function table(header: readonly string[], rows: readonly (readonly string[])[], align: readonly Align[]): string {
  const widths = header.map((cell, index) => Math.max(cell.length, ...rows.map((row) => (row[index] ?? '').length)))
  const line = (cells: readonly string[]): string =>
    `| ${cells
      .map((cell, index) => (align[index] === 'right' ? cell.padStart(widths[index] ?? 0) : cell.padEnd(widths[index] ?? 0)))
      .join(' | ')} |`
  const rule = `|${widths.map((width, index) => (align[index] === 'right' ? `${'-'.repeat(width + 1)}:` : `${'-'.repeat(width + 2)}`)).join('|')}|`
  return [line(header), rule, ...rows.map(line)].join('\n')
}

const n = (value: number | undefined | null): string =>
  value === undefined || value === null || !Number.isFinite(value) ? '-' : Math.round(value).toLocaleString('en-US')
const ms = (value: number | undefined): string => (value === undefined || !Number.isFinite(value) ? '-' : value.toFixed(3))
const x = (value: number | undefined): string => (value === undefined || !Number.isFinite(value) ? '-' : `${value.toFixed(2)}x`)
const pct = (value: number | undefined): string => (value === undefined || !Number.isFinite(value) ? '-' : `${Math.round(value * 100)}%`)
const us = (value: number | undefined | null): string =>
  value === undefined || value === null || !Number.isFinite(value) ? '-' : value.toFixed(1)
const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(2)

const labelOf = (id: SenderKind): string => TARGETS.find((entry) => entry.id === id)?.label ?? id

function point(results: BenchResults, id: SenderKind, layout: Layout, concurrency: number): ThroughputPoint | undefined {
  return results.throughput.find((entry) => entry.target === id && entry.layout === layout && entry.concurrency === concurrency)
}

function throughputTable(results: BenchResults, layout: Layout): string | undefined {
  const present = TARGETS.filter((entry) => point(results, entry.id, layout, 100) !== undefined || point(results, entry.id, layout, 1) !== undefined)
  if (present.length === 0) return undefined
  const cpuHeader =
    layout === 'separate'
      ? ['CPU us/msg C=100: sender', 'listener', 'server']
      : ['CPU us/msg C=100: sender+listener', 'server']
  const rows = present.map((entry) => {
    const one = point(results, entry.id, layout, 1)?.median
    const hundred = point(results, entry.id, layout, 100)?.median
    const cpu =
      layout === 'separate'
        ? [us(hundred?.senderCpuUsPerMsg), us(hundred?.listenerCpuUsPerMsg), us(hundred?.serverCpuUsPerMsg)]
        : [us(hundred?.senderCpuUsPerMsg), us(hundred?.serverCpuUsPerMsg)]
    return [entry.label, n(one?.sentPerSec), n(one?.deliveredPerSec), n(hundred?.sentPerSec), n(hundred?.deliveredPerSec), ...cpu]
  })
  return table(
    ['target', 'C=1 sent/s', 'C=1 delivered/s', 'C=100 sent/s', 'C=100 delivered/s', ...cpuHeader],
    rows,
    ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
  )
}

function ratioTable(results: BenchResults): string | undefined {
  const layouts = (['separate', 'same'] as const).filter((layout) => results.throughput.some((entry) => entry.layout === layout))
  if (layouts.length === 0) return undefined
  const header = ['target (C=100, delivered)']
  for (const layout of layouts) {
    const tag = layout === 'separate' ? 'sep.' : 'same'
    header.push(`${tag} x pg-ipc`, `${tag} x pg-listen`, `${tag} x postgres.js`, `${tag} % of ceiling`)
  }
  const rows = TARGETS.map((entry) => {
    const cells = [entry.label]
    for (const layout of layouts) {
      const own = point(results, entry.id, layout, 100)?.median.deliveredPerSec
      const vs = (other: SenderKind): number | undefined => {
        const base = point(results, other, layout, 100)?.median.deliveredPerSec
        return own === undefined || base === undefined ? undefined : own / base
      }
      cells.push(x(vs('pg-ipc')), x(vs('pg-listen')), x(vs('postgres')), pct(vs('raw-unnest')))
    }
    return cells
  })
  return table(header, rows, header.map((_, index) => (index === 0 ? 'left' : 'right')))
}

function latencyTable(results: BenchResults): string | undefined {
  if (results.latency.length === 0) return undefined
  const find = (id: SenderKind, layout: Layout) => results.latency.find((entry) => entry.target === id && entry.layout === layout)
  const rows = TARGETS.filter((entry) => results.latency.some((point) => point.target === entry.id)).map((entry) => {
    const separate = find(entry.id, 'separate')
    const same = find(entry.id, 'same')
    const rawSeparate = find('raw-rt', 'separate')
    const rawSame = find('raw-rt', 'same')
    return [
      entry.label,
      ms(separate?.p50Ms),
      ms(separate?.p99Ms),
      ms(same?.p50Ms),
      ms(same?.p99Ms),
      x(separate !== undefined && rawSeparate !== undefined ? separate.p50Ms / rawSeparate.p50Ms : undefined),
      x(same !== undefined && rawSame !== undefined ? same.p50Ms / rawSame.p50Ms : undefined),
    ]
  })
  return table(
    ['target', 'sep. p50 ms', 'sep. p99 ms', 'same p50 ms', 'same p99 ms', 'sep. p50 / raw 1 rt', 'same p50 / raw 1 rt'],
    rows,
    ['left', 'right', 'right', 'right', 'right', 'right', 'right'],
  )
}

function receiveTable(results: BenchResults): string | undefined {
  if (results.receive.length === 0) return undefined
  const labels = [...new Set(results.receive.map((entry) => entry.label))]
  const rows = labels.map((label) => {
    const burst = results.receive.find((entry) => entry.label === label && entry.method === 'burst')
    const isolated = results.receive.find((entry) => entry.label === label && entry.method === 'isolated')
    return [label, n(burst?.perSec), n(isolated?.perSec), (burst ?? isolated)?.validationsPerMessage.toFixed(2) ?? '-']
  })
  return table(
    ['listener', 'burst: msg/s (socket -> listener)', 'isolated: msg per CPU s (library alone)', 'zod validations per msg'],
    rows,
    ['left', 'right', 'right', 'right'],
  )
}

function fanoutTable(results: BenchResults): string | undefined {
  if (results.fanout.length === 0) return undefined
  const counts = [...new Set(results.fanout.map((entry) => entry.connections))].sort((a, b) => a - b)
  const ids = [...new Set(results.fanout.map((entry) => entry.target))]
  const rows = ids.map((id) => [
    labelOf(id),
    ...counts.map((count) => n(results.fanout.find((entry) => entry.target === id && entry.connections === count)?.deliveredPerSec)),
  ])
  return table(
    ['sender and listeners', ...counts.map((count) => `${count} conn${count === 1 ? '' : 's'}: delivered/s summed`)],
    rows,
    ['left', ...counts.map(() => 'right' as const)],
  )
}

function memoryTable(results: BenchResults): string | undefined {
  const memory = results.memory
  if (memory === null) return undefined
  const rows = memory.samples.map((sample) => [n(sample.messages), mib(sample.rssBytes), mib(sample.heapUsedBytes), mib(sample.heapTotalBytes)])
  return table(['messages', 'RSS MiB', 'heap used MiB', 'heap total MiB'], rows, ['right', 'right', 'right', 'right'])
}

function checksTable(results: BenchResults): string | undefined {
  if (results.checks.length === 0) return undefined
  const rows = results.checks.map((check) => [
    check.target,
    check.measured,
    check.met === null ? `not judged${check.note === undefined ? '' : `: ${check.note}`}` : check.met ? 'met' : '**missed**',
  ])
  return table(['target (issue 5)', 'measured', 'result'], rows, ['left', 'left', 'left'])
}

interface Section {
  readonly title: string
  readonly intro: string
  readonly body: string | undefined
}

function sections(results: BenchResults): Section[] {
  const s = results.settings
  return [
    {
      title: 'Targets of issue 5',
      intro: 'Ratios are measured in this one run, on one server; "sep." is the listener in a separate process.',
      body: checksTable(results),
    },
    {
      title: 'Throughput, listener in a separate process',
      intro:
        `Notifications per second, median of ${s.rounds} round(s) of ${s.roundMs} ms each (after ${s.warmupMs} ms of warm-up), ` +
        'rounds interleaved across the targets; only the measured target\'s listener is connected (up to version 18, ' +
        'PostgreSQL signals every listening backend of the database at each commit that notifies, whatever the channel: ' +
        'SignalBackends in src/backend/commands/async.c). ' +
        '"sent": until the last call resolved; "delivered": until the listener process (forked, counting with the same ' +
        "library) received the last one. C = calls in flight; for the raw `unnest` row, C is the number of notifications " +
        'per statement, one statement in flight. CPU per message at C=100: the sending process, the listener process ' +
        'and the PostgreSQL server (all its processes, from /proc; 10 ms resolution).',
      body: throughputTable(results, 'separate'),
    },
    {
      title: 'Throughput, listener in the same process',
      intro: 'The same, with the listener on a second connection in the sending process (they share one CPU).',
      body: throughputTable(results, 'same'),
    },
    {
      title: 'Ratios at C=100 (delivered)',
      intro: 'Each row over pg-ipc, pg-listen and postgres.js, and as a share of the raw 100-per-statement ceiling, in the same layout.',
      body: ratioTable(results),
    },
    {
      title: 'Single-message latency on an idle system',
      intro:
        `Send one, wait for its delivery on the other connection, repeat: ${n(s.latencySamples)} samples per target, taken in blocks of 250 ` +
        `interleaved across the targets (each block on new connections, after ${s.latencyWarmup} unrecorded samples). ` +
        'From just before the call to the listener callback (process.hrtime, one clock for both processes).',
      body: latencyTable(results),
    },
    {
      title: 'Receive path',
      intro:
        `Messages decoded (and for the typed rows validated) per second, median of ${s.receiveRounds} round(s) of ${n(s.receiveMessages)} ` +
        `(${n(Math.max(100, Math.round(s.receiveMessages / 5)))} for the large schema). ` +
        '"burst": the listener socket is paused while a raw sender puts the messages on the server (1000 per statement), ' +
        "then resumed; timed from resume to the last listener call, so it includes pg's protocol parsing. " +
        '"isolated": synthetic pg `notification` events emitted on a connected client: the library and the listeners only, ' +
        'per CPU second of the process (so other load on the machine does not count). ' +
        '"10 listeners" are on one typed instance; "10 instances" share one client, one listener each.',
      body: receiveTable(results),
    },
    {
      title: 'Fan-out',
      intro:
        `Each library's own sender at C=100 sends ${n(s.fanoutMessages)} notifications; N connections in one separate listener ` +
        `process receive each of them. Deliveries per second summed over the connections, median of ${s.fanoutRounds} round(s). ` +
        'The raw row is the raw 100-per-statement sender with plain pg listeners.',
      body: fanoutTable(results),
    },
    {
      title: 'Memory',
      intro:
        results.memory === null
          ? ''
          : `${n(results.memory.messages)} small messages through the typed layer, sender (C=100) and listener in one process, ` +
            `${n(results.memory.perSec)} msg/s overall. Sampled at each checkpoint after every message was delivered and ` +
            `${results.memory.gcAvailable ? 'a forced GC (--expose-gc)' : 'no forced GC'}. Growth after the first checkpoint: ` +
            `heap used ${signed(results.memory.growthAfterFirst.heapUsedBytes)} MiB, RSS ${signed(results.memory.growthAfterFirst.rssBytes)} MiB.`,
      body: memoryTable(results),
    },
  ]
}

function signed(bytes: number): string {
  return `${bytes >= 0 ? '+' : ''}${mib(bytes)}`
}

export function renderConsole(results: BenchResults): string {
  const parts = sections(results)
    .filter((section) => section.body !== undefined)
    .map((section) => `${section.title}\n${section.body}`)
  return parts.join('\n\n')
}

export function renderMarkdown(results: BenchResults, jsonPath: string): string {
  const { meta } = results
  const machine = meta.machine
  const versions = Object.entries(meta.versions)
    .map(([name, version]) => `${name} ${version}`)
    .join(', ')
  const howRows = TARGETS.map((entry) => [entry.label, entry.how])
  const lines = [
    '# Benchmarks',
    '',
    `<!-- Generated by bench/report.ts from ${jsonPath}; do not edit by hand: run \`npm run bench\`. -->`,
    '',
    'Throughput, latency, receive-path cost, fan-out and memory of typed-pg-ipc, side by side with raw `pg`',
    '(what the server can take) and the peers, measured in one run on one PostgreSQL server.',
    '',
    `- Command: \`${meta.command}\` (\`BENCH_SCALE=quick\` for a rough run in about a minute; \`DATABASE_URL=...\` for your own server)`,
    `- Date: ${meta.date} (${meta.seconds} s, scale \`${meta.scale}\`)`,
    `- Machine: ${machine.cpus} x ${machine.cpuModel}, ${machine.memoryGiB} GiB, ${machine.platform} ${machine.release} ${machine.arch}; ` +
      `load average ${machine.loadAverageStart.join(' / ')} at start, ${machine.loadAverageEnd.join(' / ')} at the end`,
    `- Server: PostgreSQL ${meta.server.version} (${meta.server.source === 'embedded' ? 'embedded binaries, started by the benchmark, fsync off, on loopback' : 'DATABASE_URL'})`,
    `- Versions: ${versions}`,
    '',
    'Absolute figures depend on the machine and on what else runs on it: compare ratios measured in one run.',
    'Every notification carries a distinct payload (a small JSON object of about 80 bytes unless stated), one',
    'connection per sender, one per listener.',
    '',
    '## What each target does',
    '',
    table(['target', 'one call'], howRows, ['left', 'left']),
    '',
  ]
  for (const section of sections(results)) {
    if (section.body === undefined) continue
    lines.push(`## ${section.title}`, '', section.intro, '', section.body, '')
  }
  return `${lines.join('\n').trimEnd()}\n`
}

// ---- command line -------------------------------------------------------------------------------------

const self = fileURLToPath(import.meta.url)
if (process.argv[1] !== undefined && resolve(process.argv[1]) === self) {
  const root = resolve(dirname(self), '../../..')
  const jsonFile = resolve(process.argv[2] ?? join(root, 'bench/results/latest.json'))
  const docsFile = resolve(process.argv[3] ?? join(root, 'docs/benchmarks.md'))
  const results = JSON.parse(readFileSync(jsonFile, 'utf8')) as BenchResults
  writeFileSync(docsFile, renderMarkdown(results, relative(dirname(docsFile), jsonFile)))
  process.stdout.write(`${renderConsole(results)}\n\nwrote ${relative(process.cwd(), docsFile)}\n`)
}
