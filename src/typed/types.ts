import type { ReservedEvent } from '../core/events.js'
import type { Message } from '../core/message.js'
import type { DurableBrand } from '../durable/durable.js'

// These declarations import neither zod nor type-fest: zod is an optional peer, so a project that
// uses only the core must compile without it (and without skipLibCheck), and the few helpers this
// file needs are one line each, which keeps the minimum TypeScript version of the package's types
// ours to choose rather than type-fest's (5.9+).

/**
 * A schema as the typed layer sees it: a zod 4 schema made with `z` from "zod" (not `zod/mini`,
 * whose schemas have no `safeEncode`/`safeDecode` methods, which the layer calls). The output and
 * input types are read from `_zod`, as `z.output` and `z.input` read them. A string, a plain object
 * or a zod 3 schema does not fit.
 *
 * Structural on purpose: checking a map against this shallow shape is a fraction of the compiler's
 * work of checking it against zod's `ZodType` (about 50 methods typed with `this`, compared member by
 * member for every schema), and it needs no import of zod, which is an optional peer dependency.
 */
export interface ChannelSchema {
  readonly _zod: { readonly output: unknown; readonly input: unknown }
  readonly safeEncode: unknown
  readonly safeDecode: unknown
}

/** A map of channel names to zod schemas: what `defineChannels` takes. */
export type ChannelSchemas = Record<string, ChannelSchema>

/** A schema's output: the domain value listeners get and `notify` takes (`z.output<Schema>`). */
type Output<Schema extends ChannelSchema> = Schema['_zod']['output']

/** A schema's input: the value on the wire, before JSON text (`z.input<Schema>`). */
type Input<Schema extends ChannelSchema> = Schema['_zod']['input']

/** `T` is `any` (`1 & any` is `any`; for any other type it is `1` or `never`). */
type IsAny<T> = 0 extends 1 & T ? true : false

/** Every member of a union, intersected: the union itself only when it has one member. */
type UnionToIntersection<Union> = (Union extends unknown ? (member: Union) => void : never) extends (
  member: infer Intersection,
) => void
  ? Intersection
  : never

/**
 * What JSON can carry. Like type-fest's JsonValue, but an object property may be `undefined`
 * (JSON.stringify drops it, and an optional property decodes back as absent), which is what zod
 * infers for `.optional()` fields.
 */
type JsonWire = string | number | boolean | null | readonly JsonWire[] | { readonly [key: string]: JsonWire | undefined }

/**
 * The part of a schema's wire form that must be JSON: nothing for a payload-less schema
 * (`z.void()`, `z.undefined()`: its input is `void` or `undefined`, sent as no payload), else its
 * input without a top-level `undefined` (an optional payload is sent as no payload too). `z.any()`
 * cannot be checked and passes (its input is `any`). Distributes over a union of schemas, so a map's
 * schemas are checked in one go, each schema once.
 */
type WireOf<Schema> = Schema extends ChannelSchema
  ? [Input<Schema>] extends [void]
    ? never
    : Exclude<Input<Schema>, undefined>
  : never

/**
 * Checks a channel map at compile time. An entry that breaks a rule has its schema replaced by a
 * message, so the compiler's error names the problem.
 */
export type CheckChannels<Schemas extends ChannelSchemas> = {
  [Name in keyof Schemas]: Name extends ReservedEvent
    ? `Channel name "${Name}" is reserved: it is an event of the emitter. Rename the channel.`
    : [WireOf<Schemas[Name]>] extends [JsonWire]
      ? Schemas[Name]
      : `Channel "${Name & string}" has a schema whose wire form is not JSON (Date, bigint, Map, Set, undefined...). Use a z.codec to a JSON type, e.g. an ISO string for a Date.`
}

/**
 * `unknown` (no constraint) for a valid map, {@link CheckChannels} for one that breaks a rule.
 * Both rules are tested once for the whole map (one pass over the names, one assignability test of
 * the union of the wire forms); only a map that fails pays for the per-channel mapped type, which
 * names the channel in the error.
 * @internal
 */
export type ValidChannels<Schemas extends ChannelSchemas> = [Extract<keyof Schemas, ReservedEvent>] extends [never]
  ? [WireOf<Schemas[keyof Schemas]>] extends [JsonWire]
    ? unknown
    : CheckChannels<Schemas>
  : CheckChannels<Schemas>

/** The channel names of a channel set (or of a schema map). */
export type ChannelName<Channels> = Channels extends { readonly schemas: infer Schemas extends ChannelSchemas }
  ? keyof Schemas & string
  : Channels extends ChannelSchemas
    ? keyof Channels & string
    : never

type SchemasOf<Channels> = Channels extends { readonly schemas: infer Schemas extends ChannelSchemas }
  ? Schemas
  : Channels extends ChannelSchemas
    ? Channels
    : never

/** The payload type a listener receives and `notify` takes on a channel (the schema's output). */
export type PayloadOf<Channels, Name extends ChannelName<Channels>> = Output<SchemasOf<Channels>[Name]>

/** The payload's form on the wire, before JSON text (the schema's input). */
export type WirePayloadOf<Channels, Name extends ChannelName<Channels>> = Input<SchemasOf<Channels>[Name]>

/**
 * A notification on a typed channel, as a listener receives it: the core's {@link Message}, with
 * the channel's name and its schema's output as the payload. An interface rather than a computed
 * object type: the compiler refers to it without building its members for every channel of a map,
 * and a hover shows it as `TypedMessage<"orderPlaced", { orderId: string; ... }>`.
 */
export interface TypedMessage<Name extends string, Payload> extends Message<Payload> {
  /** The channel it arrived on. */
  readonly channel: Name
  /** The payload, parsed as JSON and decoded by the channel's schema. */
  readonly payload: Payload
}

/** A message of a durable channel: stored before it was announced, so it has an id and a place to resume from. */
export interface DurableMessage<Name extends string, Payload> extends TypedMessage<Name, Payload> {
  /** The message's id in the table (a bigint, as decimal text): unique, and increasing within a transaction. */
  readonly id: string
  /** When it was stored (the sender's transaction time, from the server's clock). */
  readonly sentAt: Date
  /**
   * Where to resume to receive what came after this message: store it (as text) once you have
   * handled the message, and pass it to `messages(name, { after: cursor })` after a restart.
   */
  readonly cursor: string
}

/** The message a listener of one channel receives: a {@link DurableMessage} on a durable channel. */
export type ChannelMessageOf<Schema, Name extends string, Payload> = Schema extends DurableBrand
  ? DurableMessage<Name, Payload>
  : TypedMessage<Name, Payload>

/**
 * The message type listeners on a channel receive. (The conditional form makes the compiler show
 * the result, `TypedMessage<"orderPlaced", { orderId: string; ... }>`, rather than this alias with
 * the whole channel map as its argument.)
 */
export type MessageOf<Channels, Name extends ChannelName<Channels>> = Channels extends unknown
  ? ChannelMessageOf<SchemasOf<Channels>[Name], Name, PayloadOf<Channels, Name>>
  : never

/**
 * `notify`'s payload for one channel of a map. A union of channel names is refused: its payload
 * could be checked against the wrong channel's schema.
 */
export type NotifyPayloadArgs<Schemas extends ChannelSchemas, Name extends keyof Schemas> =
  // A one-member union is its own intersection; `IsUnion`-style tests cost several times more.
  [Name] extends [UnionToIntersection<Name>]
    ? PayloadArgs<Schemas[Name]>
    : [payload: `Pass one channel name, not a union: the payload of "${Name & string}" is checked against its own schema only`]

/**
 * The name parameter of `notify()`, `send()` and `notifyQuery()`: the name when it is a channel,
 * else the channel names, so that a misspelt name is reported as not assignable to
 * `"orderPlaced" | "cacheCleared"` whether or not a payload follows. Not distributive, so that a
 * `ChannelName<S>` of generic code fits both branches.
 * @internal
 */
export type NotifyName<Schemas extends ChannelSchemas, Name extends string> = [Name] extends [ChannelName<Schemas>]
  ? Name
  : ChannelName<Schemas>

/**
 * The payload parameters after a {@link NotifyName}. For a name that is not a channel (an error
 * already reported at the name) any payload is let through: otherwise the compiler reports the
 * wrong argument count first ("Expected 2 arguments, but got 1") and never the name.
 * @internal
 */
export type NotifyArgs<Schemas extends ChannelSchemas, Name extends string> = [Name] extends [ChannelName<Schemas>]
  ? NotifyPayloadArgs<Schemas, Name>
  : unknown[]

/** `notify`'s payload argument: none for payload-less channels, optional when `undefined` is valid. */
export type PayloadArgs<Schema extends ChannelSchema> =
  IsAny<Output<Schema>> extends true
    ? [payload?: Output<Schema>]
    : [Output<Schema>] extends [undefined | void]
      ? []
      : undefined extends Output<Schema>
        ? [payload?: Output<Schema>]
        : [payload: Output<Schema>]

/**
 * `Type`, in a position the compiler does not infer type arguments from (what `NoInfer` does from
 * TypeScript 5.4): a channel or event name is inferred from the name argument alone, never from a
 * listener's annotation or a payload. It also spares the compiler a walk through the listener or
 * payload type in search of inferences, which computed every channel's types at the first call of
 * `on()` and `notify()` (about 60% of the type-check cost of the calls on a 200-channel map).
 * @internal
 */
export type Uninferred<Type> = [Type][Type extends unknown ? 0 : never]
