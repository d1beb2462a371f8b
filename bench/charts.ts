// Mermaid `xychart-beta` charts for the generated docs (docs/benchmarks.md, docs/scaling.md): made
// from the results files by the generators, like the tables, never by hand.

export interface BarChart {
  readonly title: string
  /** One label per bar, short: the chart has little room under each. */
  readonly labels: readonly string[]
  readonly values: readonly (number | undefined)[]
  readonly yAxis: string
}

export interface LineChart {
  readonly title: string
  readonly xAxis: string
  /** The x values, as labels. */
  readonly labels: readonly string[]
  readonly yAxis: string
  /** One line per series; the caption under the chart names them, as Mermaid draws no legend. */
  readonly lines: readonly { readonly name: string; readonly values: readonly (number | undefined)[] }[]
}

const quote = (text: string): string => `"${text.replaceAll('"', "'")}"`

/** A round upper bound for the y axis, a little above the highest value. */
function ceiling(values: readonly number[]): number {
  const top = Math.max(0, ...values)
  if (top === 0) return 1
  const magnitude = 10 ** Math.floor(Math.log10(top))
  for (const step of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (top <= step * magnitude) return step * magnitude
  return 10 * magnitude
}

const round = (value: number): string => (value >= 100 ? String(Math.round(value)) : String(Number(value.toPrecision(3))))

/** A bar chart; bars with no value are left out. */
export function barChart(chart: BarChart): string {
  const kept = chart.labels
    .map((label, index) => [label, chart.values[index]] as const)
    .filter((entry): entry is readonly [string, number] => entry[1] !== undefined && Number.isFinite(entry[1]))
  return [
    '```mermaid',
    'xychart-beta',
    `    title ${quote(chart.title)}`,
    `    x-axis [${kept.map(([label]) => quote(label)).join(', ')}]`,
    `    y-axis ${quote(chart.yAxis)} 0 --> ${round(ceiling(kept.map(([, value]) => value)))}`,
    `    bar [${kept.map(([, value]) => round(value)).join(', ')}]`,
    '```',
  ].join('\n')
}

/** A line chart, one line per series (a missing value is drawn as 0). */
export function lineChart(chart: LineChart): string {
  const all = chart.lines.flatMap((line) => line.values.filter((value): value is number => value !== undefined))
  return [
    '```mermaid',
    'xychart-beta',
    `    title ${quote(chart.title)}`,
    `    x-axis ${quote(chart.xAxis)} [${chart.labels.map(quote).join(', ')}]`,
    `    y-axis ${quote(chart.yAxis)} 0 --> ${round(ceiling(all))}`,
    ...chart.lines.map((line) => `    line [${line.values.map((value) => round(value ?? 0)).join(', ')}]`),
    '```',
  ].join('\n')
}
