import type { IsAny, IsUnion, JsonPrimitive, Simplify } from 'type-fest'
import type { z } from 'zod'
import type { ReservedEvent } from '../core/reserved.js'

/** A map of channel names to zod schemas: what `defineChannels` takes. */
export type ChannelSchemas = Record<string, z.ZodType>

/** True when a schema carries no payload (`z.void()`, `z.undefined()`); `z.any()` does carry one. */
type IsPayloadless<Schema extends z.ZodType> =
  IsAny<z.output<Schema>> extends true ? false : [z.output<Schema>] extends [undefined | void] ? true : false

/**
 * What JSON can carry. Like type-fest's JsonValue, but an object property may be `undefined`
 * (JSON.stringify drops it, and an optional property decodes back as absent), which is what zod
 * infers for `.optional()` fields.
 */
type JsonWire = JsonPrimitive | readonly JsonWire[] | { readonly [key: string]: JsonWire | undefined }

/** The wire form must be JSON; `undefined` means "no payload" and is allowed at the top. */
type IsJsonWire<Schema extends z.ZodType> =
  IsPayloadless<Schema> extends true
    ? true
    : [Exclude<z.input<Schema>, undefined>] extends [JsonWire]
      ? true
      : false

/**
 * Checks a channel map at compile time. An entry that breaks a rule has its schema replaced by a
 * message, so the compiler's error names the problem.
 */
export type CheckChannels<Schemas extends ChannelSchemas> = {
  [Name in keyof Schemas]: Name extends ReservedEvent
    ? `Channel name "${Name}" is reserved: it is an event of the emitter. Rename the channel.`
    : IsJsonWire<Schemas[Name]> extends true
      ? Schemas[Name]
      : `Channel "${Name & string}" has a schema whose wire form is not JSON (Date, bigint, Map, Set, undefined...). Use a z.codec to a JSON type, e.g. an ISO string for a Date.`
}

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
export type PayloadOf<Channels, Name extends ChannelName<Channels>> = z.output<SchemasOf<Channels>[Name]>

/** The payload's form on the wire, before JSON text (the schema's input). */
export type WirePayloadOf<Channels, Name extends ChannelName<Channels>> = z.input<SchemasOf<Channels>[Name]>

/** A notification on a typed channel, as a listener receives it. */
export type TypedMessage<Name extends string, Payload> = Simplify<{
  /** The channel it arrived on. */
  readonly channel: Name
  /** The payload, parsed as JSON and decoded by the channel's schema. */
  readonly payload: Payload
  /** Backend process id of the sender's connection. */
  readonly processId: number
  /** The payload text as PostgreSQL delivered it. */
  readonly rawPayload: string
}>

/** The message type listeners on a channel receive. */
export type MessageOf<Channels, Name extends ChannelName<Channels>> = TypedMessage<Name, PayloadOf<Channels, Name>>

/**
 * `notify`'s payload for one channel of a map. A union of channel names is refused: its payload
 * could be checked against the wrong channel's schema.
 */
export type NotifyPayloadArgs<Schemas extends ChannelSchemas, Name extends keyof Schemas> =
  IsUnion<Name> extends true
    ? [payload: `Pass one channel name, not a union: the payload of "${Name & string}" is checked against its own schema only`]
    : PayloadArgs<Schemas[Name]>

/** `notify`'s payload argument: none for payload-less channels, optional when `undefined` is valid. */
export type PayloadArgs<Schema extends z.ZodType> =
  IsPayloadless<Schema> extends true
    ? []
    : undefined extends z.output<Schema>
      ? [payload?: z.output<Schema>]
      : [payload: z.output<Schema>]
