// Renders benchmark results (bench/results/latest.json) as the console tables and as
// docs/benchmarks.md. Also a command: regenerate the docs from a JSON file without measuring again:
//
//   npx tsc -p bench/tsconfig.json && node .tmp/bench/bench/report.js [results.json] [benchmarks.md]

import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { barChart } from './charts.js'
import type { FreshLatencyResults } from './latency.js'
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
const pct = (value: number | undefined): string =>
  value === undefined || !Number.isFinite(value) ? '-' : `${Math.round(value * 100)}%`
const us = (value: number | undefined | null): string =>
  value === undefined || value === null || !Number.isFinite(value) ? '-' : value.toFixed(1)
const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(2)

const labelOf = (id: SenderKind): string => TARGETS.find((entry) => entry.id === id)?.label ?? id

function point(results: BenchResults, id: SenderKind, layout: Layout, concurrency: number): ThroughputPoint | undefined {
  return results.throughput.find((entry) => entry.target === id && entry.layout === layout && entry.concurrency === concurrency)
}

function throughputTable(results: BenchResults, layout: Layout): string | undefined {
  const present = TARGETS.filter(
    (entry) => point(results, entry.id, layout, 100) !== undefined || point(results, entry.id, layout, 1) !== undefined,
  )
  if (present.length === 0) return undefined
  const cpuHeader =
    layout === 'separate' ? ['CPU us/msg C=100: sender', 'listener', 'server'] : ['CPU us/msg C=100: sender+listener', 'server']
  const rows = present.map((entry) => {
    const one = point(results, entry.id, layout, 1)?.median
    const hundred = point(results, entry.id, layout, 100)?.median
    const cpu =
      layout === 'separate'
        ? [us(hundred?.senderCpuUsPerMsg), us(hundred?.listenerCpuUsPerMsg), us(hundred?.serverCpuUsPerMsg)]
        : [us(hundred?.senderCpuUsPerMsg), us(hundred?.serverCpuUsPerMsg)]
    return [entry.label, n(one?.sentPerSec), n(one?.deliveredPerSec), n(hundred?.sentPerSec), n(hundred?.deliveredPerSec), ...cpu]
  })
  return table(['target', 'C=1 sent/s', 'C=1 delivered/s', 'C=100 sent/s', 'C=100 delivered/s', ...cpuHeader], rows, [
    'left',
    'right',
    'right',
    'right',
    'right',
    'right',
    'right',
    'right',
  ])
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
  return table(
    header,
    rows,
    header.map((_, index) => (index === 0 ? 'left' : 'right')),
  )
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
    ...counts.map((count) =>
      n(results.fanout.find((entry) => entry.target === id && entry.connections === count)?.deliveredPerSec),
    ),
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
  const rows = memory.samples.map((sample) => [
    n(sample.messages),
    mib(sample.rssBytes),
    mib(sample.heapUsedBytes),
    mib(sample.heapTotalBytes),
  ])
  return table(['messages', 'RSS MiB', 'heap used MiB', 'heap total MiB'], rows, ['right', 'right', 'right', 'right'])
}

function payloadTable(results: BenchResults): string | undefined {
  const steps = results.payload ?? []
  if (steps.length === 0) return undefined
  const labels = [...new Set(steps.map((step) => step.label))]
  const find = (label: string, payload: 'small' | 'large') =>
    steps.find((step) => step.label === label && step.payload === payload)?.usPerOp
  const rows = labels.map((label) => [label, us2(find(label, 'small')), us2(find(label, 'large'))])
  return table(['step (CPU time per message)', 'small, us', 'large, us'], rows, ['left', 'right', 'right'])
}

const us2 = (value: number | undefined): string => (value === undefined || !Number.isFinite(value) ? '-' : value.toFixed(2))

function burstTable(results: BenchResults): string | undefined {
  const bursts = results.burst ?? []
  if (bursts.length === 0) return undefined
  const rows = bursts.map((burst) => [
    burst.label,
    n(burst.calls),
    n(burst.refused),
    n(burst.sent),
    n(burst.failed),
    n(burst.delivered),
    n(burst.lost),
    burst.seconds.toFixed(2),
    n(burst.deliveredPerSec),
  ])
  return table(
    ['burst', 'calls', 'refused (backpressure)', 'sent', 'failed', 'delivered', 'lost', 'seconds', 'delivered/s'],
    rows,
    ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
  )
}

/** Short names for the charts, where a bar has little room under it. */
const SHORT: Partial<Record<SenderKind, string>> = {
  'raw-rt': 'raw 1/rt',
  'raw-pipeline': 'raw pipeline',
  'raw-unnest': 'raw 100/stmt',
  'raw-unnest-large': 'raw 100/stmt large',
  'pg-ipc': 'pg-ipc',
  'pg-listen': 'pg-listen',
  postgres: 'postgres.js',
  core: 'core',
  'typed-small': 'typed',
  'typed-large': 'typed large',
  'typed-large-compiled': 'typed large compiled',
}

/** The headline comparisons as charts: throughput at C=100, single-message latency, large payloads. */
function charts(results: BenchResults): string[] {
  const out: string[] = []
  const small = TARGETS.filter((entry) => !entry.id.includes('large'))
  for (const layout of ['same', 'separate'] as const) {
    const values = small.map((entry) => point(results, entry.id, layout, 100)?.median.deliveredPerSec)
    if (values.every((value) => value === undefined)) continue
    out.push(
      barChart({
        title: `Delivered msg/s, 100 calls in flight, listener in ${layout === 'same' ? 'the same process' : 'another process'}`,
        labels: small.map((entry) => SHORT[entry.id] ?? entry.id),
        values,
        yAxis: 'messages per second',
      }),
    )
  }
  const p50 = (id: SenderKind) => results.latency.find((entry) => entry.target === id && entry.layout === 'separate')?.p50Ms
  if (results.latency.length > 0) {
    out.push(
      barChart({
        title: 'Single message, median latency (ms), listener in another process',
        labels: small.map((entry) => SHORT[entry.id] ?? entry.id),
        values: small.map((entry) => p50(entry.id)),
        yAxis: 'milliseconds',
      }),
    )
  }
  const large = TARGETS.filter((entry) => entry.id.includes('large'))
  const largeValues = large.map((entry) => point(results, entry.id, 'same', 100)?.median.deliveredPerSec)
  if (largeValues.some((value) => value !== undefined)) {
    out.push(
      barChart({
        title: 'Large payloads (~1.3 KB): delivered msg/s at C=100, same process',
        labels: large.map((entry) => SHORT[entry.id] ?? entry.id),
        values: largeValues,
        yAxis: 'messages per second',
      }),
    )
  }
  return out
}

function checksTable(results: BenchResults): string | undefined {
  if (results.checks.length === 0) return undefined
  const rows = results.checks.map((check) => [
    check.target,
    check.measured,
    check.met === null ? `not judged${check.note === undefined ? '' : `: ${check.note}`}` : check.met ? 'met' : 'missed',
  ])
  return table(['goal', 'measured', 'result'], rows, ['left', 'left', 'left'])
}

interface Section {
  readonly title: string
  readonly intro: string
  readonly body: string | undefined
}

/** The detailed tables, shared by the console and docs/benchmarks.md. */
function sections(results: BenchResults): Section[] {
  const s = results.settings
  return [
    {
      title: 'Throughput, listener in a separate process',
      intro:
        `Notifications per second, median of ${s.rounds} round(s) of ${s.roundMs} ms each (after ${s.warmupMs} ms of warm-up), ` +
        "rounds interleaved across the targets; only the measured target's listener is connected (up to version 18, " +
        'PostgreSQL signals every listening backend of the database at each commit that notifies, whatever the channel: ' +
        'SignalBackends in src/backend/commands/async.c). ' +
        '"sent": until the last call resolved; "delivered": until the listener process (forked, counting with the same ' +
        'library) received the last one. C = calls in flight; for the raw `unnest` row, C is the number of notifications ' +
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
      intro:
        'Each row over pg-ipc, pg-listen and postgres.js, and as a share of the raw 100-per-statement ceiling, in the same layout.',
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
      title: 'Where the time of a message goes',
      intro:
        'CPU time per message of each step on the way out and in, for the small and the large payload, best of 5 rounds of ' +
        `${n(s.payloadIterations)} in this process. The library validates with zod's \`safeParse\` on both ends (with ` +
        '`safeEncode` only for a schema that can change the value on the way out: a codec, a default...), and JSON does the rest. ' +
        'zod compiles each `z.object` into a specialised parser unless `z.config({ jitless: true })` is set (or the runtime ' +
        'forbids `new Function`, as some edge runtimes do); `z.compile(schema)` goes further and compiles the whole schema ' +
        'into one validator, falling back to the regular parser for invalid input (same errors).',
      body: payloadTable(results),
    },
    {
      title: 'Fire-and-forget bursts',
      intro:
        (results.burst?.[0] === undefined
          ? ''
          : `${n(results.burst[0].calls)} \`notify()\` calls in one synchronous loop, nothing awaited, `) +
        'a listener on another connection in the same process. By default every call is queued and sent in order, up to ' +
        '1,000 per round trip; `maxPending` turns backpressure on: calls past it are refused at once with a `BackpressureError`.',
      body: burstTable(results),
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

function sectionLoads(results: BenchResults): string[] {
  const loads = results.meta.machine.sectionLoad
  if (loads === undefined) return []
  const parts = Object.entries(loads).map(([name, load]) => `${name} ${load.start[0] ?? '-'} -> ${load.end[0] ?? '-'}`)
  return [`- Load average (1 min) at the start and end of each section: ${parts.join(', ')}`]
}

function signed(bytes: number): string {
  return `${bytes >= 0 ? '+' : ''}${mib(bytes)}`
}

/** The tables, and the project's performance goals with whether this run met them (for developers). */
export function renderConsole(results: BenchResults): string {
  const goals: Section = { title: 'Performance goals', intro: '', body: checksTable(results) }
  const parts = [goals, ...sections(results)]
    .filter((section) => section.body !== undefined)
    .map((section) => `${section.title}\n${section.body}`)
  return parts.join('\n\n')
}

const deliveredAt = (results: BenchResults, id: SenderKind, layout: Layout, concurrency = 100): number | undefined =>
  point(results, id, layout, concurrency)?.median.deliveredPerSec

const PEERS = ['pg-ipc', 'pg-listen', 'postgres'] as const

/** "10.95x pg-ipc 1.0.5, 4.69x postgres.js" for the peers present in the run. */
function peerRatios(results: BenchResults, own: number, layout: Layout): string {
  return PEERS.map((id) => {
    const base = deliveredAt(results, id, layout)
    return base === undefined ? undefined : `${x(own / base)} ${labelOf(id)}`
  })
    .filter((part) => part !== undefined)
    .join(', ')
}

/** "pg-ipc 1.0.5 9,733, pg-listen 13,418" of a per-peer figure, for those the run has. */
function peerFigures(format: (value: number) => string, figure: (id: SenderKind) => number | undefined): string {
  return PEERS.map((id) => {
    const value = figure(id)
    return value === undefined ? undefined : `${labelOf(id)} ${format(value)}`
  })
    .filter((part) => part !== undefined)
    .join(', ')
}

/** The findings in a few sentences, computed from the figures (only those the run has). */
function summary(results: BenchResults): string[] {
  const lines: string[] = []
  const typedSep = deliveredAt(results, 'typed-small', 'separate')
  const ceilingSep = deliveredAt(results, 'raw-unnest', 'separate')
  if (typedSep !== undefined) {
    lines.push(
      `- **Many sends at once.** With 100 \`notify()\` calls in flight and the listener in another process, the typed ` +
        `layer delivered ${n(typedSep)} messages per second: ${peerRatios(results, typedSep, 'separate')}` +
        (ceilingSep === undefined
          ? '.'
          : `, and ${pct(typedSep / ceilingSep)} of what the server takes at best (100 notifications per statement, ${n(ceilingSep)}/s).`) +
        ' Concurrent calls on one instance travel together in one round trip, so the sender waits for the server once per batch, not once per message.',
    )
  }
  const typedSame = deliveredAt(results, 'typed-small', 'same')
  if (typedSame !== undefined) {
    lines.push(
      `- **Sender and listener in one process** (sharing the CPU): ${n(typedSame)} messages per second, ${peerRatios(results, typedSame, 'same')}.`,
    )
  }
  const oneSep = deliveredAt(results, 'typed-small', 'separate', 1)
  const rawOneSep = deliveredAt(results, 'raw-rt', 'separate', 1)
  if (oneSep !== undefined && rawOneSep !== undefined) {
    const peers = peerFigures(n, (id) => deliveredAt(results, id, 'separate', 1))
    lines.push(
      `- **One call at a time** (each awaited before the next): ${n(oneSep)} messages per second, against ${n(rawOneSep)} for raw pg` +
        `${peers === '' ? '' : ` (${peers})`}: every library waits for one round trip to the server per message here, and batching cannot help.`,
    )
  }
  const latency = (id: SenderKind): number | undefined =>
    results.latency.find((entry) => entry.target === id && entry.layout === 'separate')?.p50Ms
  const typedLatency = latency('typed-small')
  const rawLatency = latency('raw-rt')
  if (typedLatency !== undefined && rawLatency !== undefined) {
    const peers = peerFigures((value) => `${ms(value)} ms`, latency)
    lines.push(
      `- **Latency of a single message** (median, from the call to the listener callback in another process): ${ms(typedLatency)} ms for ` +
        `the typed layer, ${ms(rawLatency)} ms for one raw \`pg_notify\` round trip${peers === '' ? '' : ` (${peers})`}: ` +
        `${x(typedLatency / rawLatency)} of it, validation on both ends included. The library sends one notification as a ` +
        'prepared statement (Bind/Execute, no parse or plan on the server) as soon as it is called.',
    )
  }
  const isolated = results.receive.find((entry) => entry.id === 'typed-small-1/isolated')
  const isolatedTen = results.receive.find((entry) => entry.id === 'typed-small-10/isolated')
  if (isolated !== undefined) {
    lines.push(
      `- **Receiving.** The library decodes and validates ${n(isolated.perSec)} small messages per CPU second` +
        (isolatedTen === undefined
          ? '.'
          : `, and ${n(isolatedTen.perSec)} with 10 listeners on the channel: a message is validated once ` +
            `(${isolatedTen.validationsPerMessage.toFixed(2)} validations per message), however many listeners it has.`),
    )
  }
  const large = deliveredAt(results, 'typed-large', 'same')
  const rawLarge = deliveredAt(results, 'raw-unnest-large', 'same')
  const compiledLarge = deliveredAt(results, 'typed-large-compiled', 'same')
  if (large !== undefined) {
    const zodLarge = results.payload?.find((step) => step.id === 'large/zod-parse')?.usPerOp
    const zodCompiled = results.payload?.find((step) => step.id === 'large/zod-compiled')?.usPerOp
    lines.push(
      `- **Large payloads** (a nested object of about 1.3 KB, sender and listener in one process): ${n(large)} messages per second ` +
        'at 100 in flight' +
        (rawLarge === undefined
          ? ''
          : `, ${pct(large / rawLarge)} of raw pg sending the same payloads 100 per statement (${n(rawLarge)}/s)`) +
        (compiledLarge === undefined ? '.' : `; ${n(compiledLarge)} with the schema compiled by \`z.compile\`.`) +
        (zodLarge === undefined
          ? ''
          : ` zod's validation of that schema costs ${us2(zodLarge)} us per message on each end` +
            (zodCompiled === undefined ? '' : ` (${us2(zodCompiled)} us compiled)`) +
            ', on top of JSON: compile big schemas, and send keys rather than documents where you can.'),
    )
  }
  const memory = results.memory
  if (memory !== null) {
    lines.push(
      `- **Memory.** Over ${n(memory.messages)} messages, heap use after the first ${n(memory.samples[1]?.messages)} changed by ` +
        `${signed(memory.growthAfterFirst.heapUsedBytes)} MiB: nothing accumulates per message.`,
    )
  }
  return lines
}

/** The fresh-process latency results stored beside a results file (bench/results/latency.json), if any. */
export function freshLatencyBeside(resultsFile: string): FreshLatencyResults | undefined {
  const file = join(dirname(resultsFile), 'latency.json')
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as FreshLatencyResults) : undefined
}

function freshSection(fresh: FreshLatencyResults): string[] {
  const rows = fresh.points.map((point) => [
    point.label,
    n(point.samples),
    ms(point.p50Ms),
    ms(point.p90Ms),
    ms(point.p99Ms),
    x(point.vsRaw),
    ms(point.coldP50Ms),
  ])
  const { meta } = fresh
  return [
    '## Single-message latency, each library in fresh processes',
    '',
    `\`${meta.command}\` (bench/latency.ts), ${meta.date}, ${meta.seconds} s; ${meta.server}; ${meta.machine.cpus} x ` +
      `${meta.machine.cpuModel}, load average ${meta.machine.loadAverageStart.join(' / ')} at the start, ` +
      `${meta.machine.loadAverageEnd.join(' / ')} at the end. Method: ${meta.method}. "cold": the median of the ` +
      'warm-up samples of the blocks (new connections; in the first block of each library, also code V8 has not optimised yet).',
    '',
    table(['library', 'samples', 'p50 ms', 'p90 ms', 'p99 ms', 'p50 / raw 1 rt', 'cold p50 ms'], rows, [
      'left',
      'right',
      'right',
      'right',
      'right',
      'right',
      'right',
    ]),
    '',
    barChart({
      title: 'Fresh processes: median single-message latency (ms)',
      labels: fresh.points.map((point) => SHORT[point.target] ?? point.target),
      values: fresh.points.map((point) => point.p50Ms),
      yAxis: 'milliseconds',
    }),
    '',
  ]
}

export function renderMarkdown(results: BenchResults, jsonPath: string, fresh?: FreshLatencyResults): string {
  const { meta } = results
  const machine = meta.machine
  const versions = Object.entries(meta.versions)
    .map(([name, version]) => `${name} ${version}`)
    .join(', ')
  const howRows = TARGETS.map((entry) => [entry.label, entry.how])
  const lines = [
    '# Benchmarks',
    '',
    `<!-- Generated by bench/report.ts from ${jsonPath}: edit the generator, not this page. -->`,
    '',
    'How fast typed-pg-ipc sends and receives notifications, next to pg-ipc, pg-listen, postgres.js and raw',
    '`pg` (which shows what the server itself can take), all measured in one run against one PostgreSQL',
    'server: throughput with one call and with 100 calls in flight, with the listener in another process and',
    'in the same one; the latency of a single message (also with each library in a process of its own); where',
    'the CPU time of a message goes; the cost of receiving (decoding and validating); fire-and-forget bursts;',
    'fan-out to many listening connections; and memory over a million messages. What the server itself can take',
    'as listeners and writers grow is in [scaling](scaling.md).',
    '',
    '## In short',
    '',
    ...summary(results),
    '',
    ...charts(results).flatMap((chart) => [chart, '']),
    '## How to read the figures',
    '',
    '- Every notification carries a distinct payload (a small JSON object of about 80 bytes unless stated),',
    '  on one connection per sender and one per listener.',
    '- "sent/s" counts until the last call resolved; "delivered/s" until the listener received the last',
    '  message. C is the number of calls in flight.',
    '- "typed-pg-ipc core" is `pgIPC(client)` (JSON, no schema); "typed" is `defineChannels`, with zod',
    '  validation on both ends.',
    '- The figures come from one small machine that also runs the server and the listener, so other load on',
    '  it moves every figure. Compare ratios within this run (measured side by side, rounds interleaved), not',
    '  absolute numbers with another machine.',
    '',
    '## How to run it again',
    '',
    '```sh',
    'npm run bench                                       # the full run, 6 to 9 minutes on 2 cores: rewrites bench/results/latest.json and this page',
    'BENCH_SCALE=quick npm run bench                     # a rough run in a minute or two, written under .tmp/bench-results/',
    'DATABASE_URL=postgres://user@host/db npm run bench  # against your own server instead of a throwaway one',
    '```',
    '',
    'To regenerate this page from the stored results without measuring again:',
    '`npx tsc -p bench/tsconfig.json && node .tmp/bench/bench/report.js`.',
    '',
    '## This run',
    '',
    `- Date: ${meta.date} (${meta.seconds} s, scale \`${meta.scale}\`, \`${meta.command}\`)`,
    `- Machine: ${machine.cpus} x ${machine.cpuModel}, ${machine.memoryGiB} GiB, ${machine.platform} ${machine.release} ${machine.arch}; ` +
      `load average ${machine.loadAverageStart.join(' / ')} at the start, ${machine.loadAverageEnd.join(' / ')} at the end`,
    ...sectionLoads(results),
    `- Server: PostgreSQL ${meta.server.version} (${meta.server.source === 'embedded' ? 'embedded binaries, started by the benchmark, fsync off, on loopback' : 'DATABASE_URL'})`,
    `- Versions: ${versions}`,
    '',
    '## What each target does',
    '',
    table(['target', 'one call'], howRows, ['left', 'left']),
    '',
  ]
  for (const section of sections(results)) {
    if (section.body === undefined) continue
    lines.push(`## ${section.title}`, '', section.intro, '', section.body, '')
    if (section.title === 'Single-message latency on an idle system' && fresh !== undefined) lines.push(...freshSection(fresh))
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
  writeFileSync(docsFile, renderMarkdown(results, relative(dirname(docsFile), jsonFile), freshLatencyBeside(jsonFile)))
  process.stdout.write(`${renderConsole(results)}\n\nwrote ${relative(process.cwd(), docsFile)}\n`)
}
