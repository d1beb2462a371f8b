// The shape of bench/results/latest.json, the source of docs/benchmarks.md.

import type { Scale, Settings } from './config.js'
import type { SenderKind, ListenerKind } from './targets.js'

export type Layout = 'separate' | 'same'

export interface Round {
  readonly messages: number
  readonly sentPerSec: number
  readonly deliveredPerSec: number
  /** CPU of the sending process per message (in the same layout: sender and listener together). */
  readonly senderCpuUsPerMsg: number
  /** CPU of the listener process per message (separate layout only). */
  readonly listenerCpuUsPerMsg: number | null
  /** CPU of the PostgreSQL server (all its processes) per message, when it runs on this machine. */
  readonly serverCpuUsPerMsg: number | null
}

export interface ThroughputPoint {
  readonly target: SenderKind
  readonly layout: Layout
  /** Calls in flight; for raw-unnest, notifications per statement (one statement in flight). */
  readonly concurrency: number
  readonly rounds: readonly Round[]
  /** Median of the rounds, field by field. */
  readonly median: Round
}

export interface LatencyPoint {
  readonly target: SenderKind
  readonly layout: Layout
  readonly samples: number
  readonly p50Ms: number
  readonly p90Ms: number
  readonly p99Ms: number
  readonly meanMs: number
  readonly maxMs: number
}

export interface ReceivePoint {
  readonly id: string
  readonly label: string
  /**
   * burst: N notifications piled up while the listener's socket was paused, then drained: pg's
   * protocol parsing + the library + the listener, timed from resume to the last delivery.
   * isolated: synthetic pg 'notification' events emitted on a connected client: the library alone,
   * timed in CPU seconds of the process.
   */
  readonly method: 'burst' | 'isolated'
  readonly kind: ListenerKind
  readonly listeners: number
  readonly instances: number
  readonly messages: number
  /** The typed layer's zod validations (safeDecode or safeParse) per delivered message (0 for raw and core). */
  readonly validationsPerMessage: number
  readonly rounds: readonly number[]
  /** burst: messages per wall-clock second; isolated: messages per CPU second. */
  readonly perSec: number
}

export interface FanoutPoint {
  readonly target: SenderKind
  readonly connections: number
  readonly messages: number
  readonly rounds: readonly { sentPerSec: number; deliveredPerSec: number }[]
  /** Deliveries per second summed over all listening connections (median of the rounds). */
  readonly deliveredPerSec: number
  readonly sentPerSec: number
}

export interface MemorySample {
  readonly messages: number
  readonly rssBytes: number
  readonly heapUsedBytes: number
  readonly heapTotalBytes: number
  readonly externalBytes: number
}

export interface MemoryResult {
  readonly messages: number
  readonly gcAvailable: boolean
  readonly seconds: number
  readonly perSec: number
  readonly samples: readonly MemorySample[]
  /** From the first checkpoint (e.g. 100,000) to the end (e.g. 1,000,000). */
  readonly growthAfterFirst: { readonly rssBytes: number; readonly heapUsedBytes: number }
}

/** One fire-and-forget burst: `calls` notify() calls in a loop, nothing awaited between them. */
export interface BurstResult {
  readonly id: string
  readonly label: string
  readonly calls: number
  /** The instance's maxPending (null: none, the default). */
  readonly maxPending: number | null
  /** Calls refused at once with a BackpressureError (only with maxPending). */
  readonly refused: number
  /** Calls the server accepted ('notify' event, or the promise resolved). */
  readonly sent: number
  /** Calls that failed otherwise ('error' event, or a rejection other than backpressure). */
  readonly failed: number
  /** Notifications the listener received. */
  readonly delivered: number
  /** Accepted calls (not refused) that were neither delivered nor failed. */
  readonly lost: number
  /** From the first call to the last delivery. */
  readonly seconds: number
  readonly deliveredPerSec: number
}

/** CPU time of one step of a message's way, per message (best of 5 rounds). */
export interface PayloadStep {
  readonly id: string
  readonly label: string
  readonly payload: 'small' | 'large'
  readonly usPerOp: number
}

export interface Check {
  readonly id: string
  readonly target: string
  readonly measured: string
  readonly met: boolean | null
  readonly note?: string
}

export interface BenchResults {
  readonly meta: {
    readonly date: string
    readonly command: string
    readonly scale: Scale
    readonly seconds: number
    /** Wall time of each section. */
    readonly sectionSeconds: Record<string, number>
    readonly machine: {
      readonly platform: string
      readonly release: string
      readonly arch: string
      readonly cpuModel: string
      readonly cpus: number
      readonly memoryGiB: number
      readonly loadAverageStart: readonly number[]
      readonly loadAverageEnd: readonly number[]
      /** The load average (1, 5, 15 min) when each section started and ended. */
      readonly sectionLoad?: Record<string, { readonly start: readonly number[]; readonly end: readonly number[] }>
    }
    readonly server: { readonly source: 'embedded' | 'DATABASE_URL'; readonly version: string }
    readonly versions: Record<string, string>
  }
  readonly settings: Settings
  readonly throughput: readonly ThroughputPoint[]
  readonly latency: readonly LatencyPoint[]
  readonly receive: readonly ReceivePoint[]
  readonly fanout: readonly FanoutPoint[]
  readonly memory: MemoryResult | null
  readonly burst?: readonly BurstResult[]
  readonly payload?: readonly PayloadStep[]
  readonly checks: readonly Check[]
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1))
  return sorted[rank] as number
}
