/**
 * Durable channels: messages stored in a table as well as announced with NOTIFY, so a listener that
 * was away (an outage, a restart) gets what it missed, in order, exactly once per instance, and
 * payloads may be far larger than NOTIFY's 7999 bytes. docs/durable.md has the whole story.
 */
import type { ChannelSchema } from '../typed/types.js'
import type { DurableStorage } from '../pg/durable-sql.js'

/** The brand `durable()` puts on a schema; the typed layer reads it, at compile time and at run time. */
export interface DurableBrand {
  /** This channel's messages are stored and replayed. */
  readonly '~durable': true
}

/** A schema marked with {@link durable}. */
export type Durable<Schema extends ChannelSchema> = Schema & DurableBrand

/**
 * Marks a channel as durable: its messages are stored (in the caller's transaction when sent with
 * `notifyQuery`), every listening instance receives each of them once, in order, also what was sent
 * while its connection was down, and a restarted process resumes from a stored cursor.
 *
 * @example
 * ```ts
 * import { z } from 'zod'
 * import { defineChannels, durable } from 'typed-pg-ipc'
 *
 * export const channels = defineChannels({
 *   orderPlaced: durable(z.object({ orderId: z.uuid() })), // stored, replayed
 *   cacheCleared: z.void(), // plain LISTEN/NOTIFY
 * })
 * ```
 */
export function durable<Schema extends ChannelSchema>(schema: Schema): Durable<Schema> {
  // The schema itself, seen through an object that adds the brand: zod's methods are bound to the
  // schema (closures over it), and `_zod` is read through the prototype.
  return Object.create(schema, { '~durable': { value: true, enumerable: false } }) as Durable<Schema>
}

/** True for a schema made by {@link durable}. */
export function isDurable(schema: unknown): boolean {
  return typeof schema === 'object' && schema !== null && (schema as Partial<DurableBrand>)['~durable'] === true
}

/** How durable channels store and keep messages: `defineChannels(map, { durable: { ... } })`. */
export interface DurableOptions {
  /** Schema of the messages table. Default `typed_pg_ipc`. */
  readonly schema?: string | undefined
  /** Name of the messages table (its meta table is `<table>_meta`). Default `messages`. */
  readonly table?: string | undefined
  /** Largest payload, in UTF-8 bytes of its JSON text. Default 1 MiB. */
  readonly maxPayloadBytes?: number | undefined
  /** What to keep. Default: 7 days of messages. */
  readonly retention?: RetentionOptions | undefined
  /**
   * How often an instance reads its durable channels even without a notification (messages stored
   * by other means than this library, a wake-up lost with a connection). Default 30 000 ms.
   */
  readonly safetyReadMs?: number | undefined
}

/** Retention of durable messages. Each attached instance prunes now and then; only one at a time does work. */
export interface RetentionOptions {
  /** Delete messages older than this. Default 7 days; `null` keeps them forever (or until maxPerChannel). */
  readonly maxAgeMs?: number | null | undefined
  /** Keep at most this many messages per channel. Default: no limit. */
  readonly maxPerChannel?: number | undefined
  /** How often each instance tries to prune (with jitter). Default 60 000 ms; `false` never (prune with `channels.prune(client)`). */
  readonly pruneEveryMs?: number | false | undefined
}

/** {@link DurableOptions} with every default filled in. */
export interface DurableConfig {
  readonly storage: DurableStorage
  readonly maxPayloadBytes: number
  readonly maxAgeMs: number | undefined
  readonly maxPerChannel: number | undefined
  readonly pruneEveryMs: number | false
  readonly safetyReadMs: number
}

const DAY_MS = 24 * 60 * 60 * 1000

export function durableConfig(options: DurableOptions = {}): DurableConfig {
  const positive = (name: string, value: number | undefined): number | undefined => {
    if (value === undefined) return undefined
    if (!Number.isFinite(value) || value <= 0)
      throw new RangeError(`durable.${name} must be a positive number, got ${String(value)}.`)
    return value
  }
  const retention = options.retention ?? {}
  return {
    storage: { schema: options.schema ?? 'typed_pg_ipc', table: options.table ?? 'messages' },
    maxPayloadBytes: positive('maxPayloadBytes', options.maxPayloadBytes) ?? 1024 * 1024,
    maxAgeMs: retention.maxAgeMs === null ? undefined : (positive('retention.maxAgeMs', retention.maxAgeMs) ?? 7 * DAY_MS),
    maxPerChannel: positive('retention.maxPerChannel', retention.maxPerChannel),
    pruneEveryMs:
      retention.pruneEveryMs === false ? false : (positive('retention.pruneEveryMs', retention.pruneEveryMs) ?? 60_000),
    safetyReadMs: positive('safetyReadMs', options.safetyReadMs) ?? 30_000,
  }
}
