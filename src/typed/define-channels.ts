import { NotInstalledError, ReservedChannelError, UnknownChannelError } from '../errors/index.js'
import { isReservedEvent } from '../core/events.js'
import { isReconnectOptions, type ReconnectOptions } from '../core/reconnector.js'
import { assertClient, rowsOf, type PgClient } from '../pg/client.js'
import { durableNotifyKind, installSql, publishStatement, pruneStatement } from '../pg/durable-sql.js'
import { durableConfig, isDurable, type DurableOptions } from '../durable/durable.js'
import { NOTIFY_SQL } from '../pg/sql.js'
import { assertChannelName } from '../wire/channel.js'
import { encodeJsonPayload, wireSchemaOf, type WireSchema } from '../wire/json-payload.js'
import { assertWireSchema, encodesAsIs } from './schema-check.js'
import { TypedIPC, type AttachOptions, type ChannelPlan } from './typed-ipc.js'

/** Messages `prune` deletes per statement. */
const PRUNE_BATCH = 5_000
import type { ChannelName, ChannelSchemas, NotifyArgs, NotifyName, Uninferred, ValidChannels } from './types.js'

/** A pg query config that sends one notification when the caller's transaction commits. */
export interface NotifyQuery {
  readonly text: string
  readonly values: [channel: string, payload: string]
}

/** What `defineChannels` returns: the channel map, frozen, with ways to use it. */
export interface ChannelSet<Schemas extends ChannelSchemas> {
  /** The schemas, by channel name. */
  readonly schemas: Readonly<Schemas>
  /** The channel names. */
  readonly names: readonly ChannelName<Schemas>[]
  /**
   * A typed emitter over one pg client (a `pg.Client`, not a pool): listeners, `notify`,
   * `messages()`, `end()`. Pass `{ connect, ...}` instead of a client for the reconnecting mode,
   * where the library owns the connection and replaces it when it is lost.
   */
  attach(client: PgClient, options?: AttachOptions): TypedIPC<Schemas>
  attach(options: ReconnectOptions & AttachOptions): TypedIPC<Schemas>
  /**
   * A query for your own transaction: the notification is validated and encoded now, and delivered
   * when that transaction commits (never, if it rolls back).
   *
   * @example
   * ```ts
   * import pg from 'pg'
   * import { z } from 'zod'
   * import { defineChannels } from 'typed-pg-ipc'
   *
   * const channels = defineChannels({ orderPlaced: z.object({ orderId: z.uuid() }) })
   * const tx = new pg.Client(process.env.DATABASE_URL)
   * await tx.connect()
   * await tx.query('BEGIN')
   * const orderId = crypto.randomUUID()
   * await tx.query('INSERT INTO orders (id) VALUES ($1)', [orderId])
   * await tx.query(channels.notifyQuery('orderPlaced', { orderId })) // delivered at COMMIT
   * await tx.query('COMMIT')
   * ```
   */
  notifyQuery<Name extends string>(
    name: NotifyName<Schemas, Name>,
    ...payload: Uninferred<NotifyArgs<Schemas, Name>>
  ): NotifyQuery
  /**
   * Durable channels: creates the table their messages are stored in (and its schema, indexes and
   * meta table). Idempotent, versioned, and safe to run from many processes at once; run it at
   * start-up, or apply {@link ChannelSet.installSql} with your migration tool instead.
   */
  install(client: PgClient): Promise<void>
  /** The SQL that {@link ChannelSet.install} runs, for a migration tool. */
  installSql(): string
  /**
   * Durable channels: deletes what retention no longer keeps, now (attached instances also prune now
   * and then on their own). Returns how many messages it deleted; 0 while another process prunes.
   */
  prune(client: PgClient): Promise<number>
}

/** Options of {@link defineChannels}. */
export interface DefineChannelsOptions {
  /** Where durable channels store their messages, how large a payload may be, what is kept. */
  readonly durable?: DurableOptions | undefined
}

/**
 * Defines typed channels: names and payload types come from one map of zod schemas, checked by
 * the compiler where you write code and by zod where data crosses a process boundary.
 *
 * @example
 * ```ts
 * import { defineChannels } from 'typed-pg-ipc'
 * import { z } from 'zod'
 *
 * const isoDate = z.codec(z.iso.datetime(), z.date(), {
 *   decode: (text) => new Date(text),
 *   encode: (date) => date.toISOString(),
 * })
 * export const channels = defineChannels({
 *   orderPlaced: z.object({ orderId: z.uuid(), total: z.number().positive(), placedAt: isoDate }),
 *   cacheCleared: z.void(),
 * })
 * ```
 */
export function defineChannels<Schemas extends ChannelSchemas>(
  schemas: Schemas & ValidChannels<Schemas>,
  options: DefineChannelsOptions = {},
): ChannelSet<Schemas> {
  if (typeof schemas !== 'object' || schemas === null || Array.isArray(schemas)) {
    throw new TypeError('defineChannels() takes an object mapping channel names to zod schemas.')
  }
  const map = Object.freeze({ ...schemas }) as Readonly<Schemas>
  const names = Object.freeze(Object.keys(map)) as readonly ChannelName<Schemas>[]
  for (const name of names) {
    if (isReservedEvent(name)) throw new ReservedChannelError({ channel: name })
    assertChannelName(name)
    assertWireSchema(name, map[name])
  }
  const wire: Record<string, WireSchema> = Object.create(null) as Record<string, WireSchema>
  for (const name of names) wire[name] = wireSchemaOf(map[name], encodesAsIs(map[name]))
  const schemaOf = (name: string): WireSchema => {
    const schema = Object.hasOwn(map, name) ? wire[name] : undefined
    if (schema === undefined) throw new UnknownChannelError({ channel: name, known: names })
    return schema
  }
  const config = durableConfig(options.durable)
  const durableNames: ReadonlySet<string> = new Set(names.filter((name) => isDurable(map[name])))
  const plan: ChannelPlan = {
    wire,
    durable: durableNames,
    durableConfig: config,
    durableNotify: durableNotifyKind(config.storage),
    encode: (name, value) =>
      durableNames.has(name)
        ? encodeJsonPayload(name, schemaOf(name), value, { bytes: config.maxPayloadBytes, durable: true })
        : encodeJsonPayload(name, schemaOf(name), value),
  }
  const { storage } = plan.durableConfig
  const set: ChannelSet<Schemas> = {
    schemas: map,
    names,
    attach: (source: PgClient | (ReconnectOptions & AttachOptions), attachOptions?: AttachOptions) =>
      new TypedIPC<Schemas>(plan, source, attachOptions ?? (isReconnectOptions(source) ? source : {})),
    notifyQuery: (name, ...payload) => {
      const text = plan.encode(name, (payload as unknown[])[0])
      const sql = durableNames.has(name) ? publishStatement(storage, name, text).text : NOTIFY_SQL
      return { text: sql, values: [name, text] }
    },
    install: async (client) => {
      assertClient(client)
      await client.query({ text: installSql(storage) })
    },
    installSql: () => installSql(storage),
    prune: async (client) => {
      assertClient(client)
      const { maxAgeMs, maxPerChannel } = plan.durableConfig
      let deleted = 0
      for (;;) {
        const rows = await rowsOf(client, pruneStatement(storage, { maxAgeMs, maxPerChannel }, PRUNE_BATCH)).catch(
          (error: unknown) => {
            throw (error as { code?: unknown }).code === '42P01'
              ? new NotInstalledError({
                  channel: [...plan.durable][0] ?? '',
                  table: `${storage.schema}.${storage.table}`,
                  cause: error,
                })
              : error
          },
        )
        const count = Number(rows[0]?.[0])
        if (count < 0) return deleted // another process holds the lock: it is pruning
        deleted += count
        if (count < PRUNE_BATCH) return deleted
      }
    },
  }
  return Object.freeze(set)
}
