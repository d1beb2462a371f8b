// How much the benchmark does: BENCH_SCALE=full (default, ~6-9 min on 2 cores), quick (~1-2 min),
// smoke (a few seconds: only proves the script works; its numbers mean nothing).

export type Scale = 'smoke' | 'quick' | 'full'

export interface Settings {
  readonly scale: Scale
  /** Length of one throughput round (the senders stop starting calls after it). */
  readonly roundMs: number
  /** Unmeasured sending before a target's first round (JIT, connection warm-up). */
  readonly warmupMs: number
  /** Rounds per throughput point; the median is reported. */
  readonly rounds: number
  /**
   * Single-message latency samples per target and layout, taken in blocks of 250 interleaved across
   * the targets; each block starts with `latencyWarmup` unrecorded ones.
   */
  readonly latencySamples: number
  readonly latencyWarmup: number
  /** Messages per receive-path burst; `receiveRounds` bursts, median reported. */
  readonly receiveMessages: number
  readonly receiveRounds: number
  /** Messages sent per fan-out point (each is delivered to every listening connection). */
  readonly fanoutMessages: number
  readonly fanoutRounds: number
  readonly fanoutConnections: readonly number[]
  /** Messages through the typed layer for the memory check, and the checkpoint spacing. */
  readonly memoryMessages: number
  readonly memoryCheckpoint: number
  /** notify() calls of one fire-and-forget burst (nothing awaited between them). */
  readonly burstCalls: number
  /** Operations per timed round of the payload profile (best of 5 rounds). */
  readonly payloadIterations: number
}

const SETTINGS: Record<Scale, Settings> = {
  full: {
    scale: 'full',
    roundMs: 1_500,
    warmupMs: 400,
    rounds: 3,
    latencySamples: 2_000,
    latencyWarmup: 100,
    receiveMessages: 50_000,
    receiveRounds: 3,
    fanoutMessages: 5_000,
    fanoutRounds: 3,
    fanoutConnections: [1, 10, 50],
    memoryMessages: 1_000_000,
    memoryCheckpoint: 100_000,
    burstCalls: 20_000,
    payloadIterations: 20_000,
  },
  quick: {
    scale: 'quick',
    roundMs: 500,
    warmupMs: 200,
    rounds: 1,
    latencySamples: 500,
    latencyWarmup: 50,
    receiveMessages: 30_000,
    receiveRounds: 1,
    fanoutMessages: 2_000,
    fanoutRounds: 1,
    fanoutConnections: [1, 10, 50],
    memoryMessages: 100_000,
    memoryCheckpoint: 10_000,
    burstCalls: 20_000,
    payloadIterations: 5_000,
  },
  smoke: {
    scale: 'smoke',
    roundMs: 40,
    warmupMs: 10,
    rounds: 1,
    latencySamples: 10,
    latencyWarmup: 2,
    receiveMessages: 500,
    receiveRounds: 1,
    fanoutMessages: 50,
    fanoutRounds: 1,
    fanoutConnections: [1, 3],
    memoryMessages: 2_000,
    memoryCheckpoint: 500,
    burstCalls: 500,
    payloadIterations: 100,
  },
}

export function settingsFromEnv(env: NodeJS.ProcessEnv = process.env): Settings {
  const scale = env.BENCH_SCALE ?? 'full'
  if (scale !== 'full' && scale !== 'quick' && scale !== 'smoke') {
    throw new Error(`BENCH_SCALE must be full, quick or smoke; got "${scale}"`)
  }
  return SETTINGS[scale]
}

/** The sections of the run; BENCH_ONLY=throughput,latency (comma list) runs only those. */
export const SECTIONS = ['payload', 'throughput', 'latency', 'receive', 'burst', 'fanout', 'memory'] as const
export type Section = (typeof SECTIONS)[number]

export function sectionsFromEnv(env: NodeJS.ProcessEnv = process.env): ReadonlySet<Section> {
  const only = env.BENCH_ONLY
  if (only === undefined || only.trim() === '') return new Set(SECTIONS)
  const wanted = only.split(',').map((name) => name.trim())
  for (const name of wanted) {
    if (!(SECTIONS as readonly string[]).includes(name)) {
      throw new Error(`BENCH_ONLY: unknown section "${name}"; known: ${SECTIONS.join(', ')}`)
    }
  }
  return new Set(wanted as Section[])
}
