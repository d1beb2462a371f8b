/**
 * Every error this library creates is a `PgIpcError` with a stable `code`. Codes never change
 * between releases; messages may be reworded. Match on `code` (or `instanceof`), never on text.
 */
export const ErrorCode = {
  /** A channel name PostgreSQL would reject or silently truncate (empty, over 63 bytes, NUL). */
  InvalidChannel: 'ERR_PG_IPC_INVALID_CHANNEL',
  /** A channel named like an event this library emits (`error`, `end`, ...). */
  ReservedChannel: 'ERR_PG_IPC_RESERVED_CHANNEL',
  /** A payload that cannot be turned into text (BigInt, circular, function, NUL byte). */
  PayloadNotEncodable: 'ERR_PG_IPC_PAYLOAD_NOT_ENCODABLE',
  /** An encoded payload of 8000 bytes or more: PostgreSQL would reject it. */
  PayloadTooLarge: 'ERR_PG_IPC_PAYLOAD_TOO_LARGE',
  /** The instance was ended: it no longer sends or subscribes. */
  Ended: 'ERR_PG_IPC_ENDED',
  /** `listening(channel)` was asked for a channel with no listener, or its listeners left. */
  NotListening: 'ERR_PG_IPC_NOT_LISTENING',
  /** The server rejected LISTEN, UNLISTEN or NOTIFY. */
  QueryFailed: 'ERR_PG_IPC_QUERY_FAILED',
  /** The connection died or was closed while the instance was using it. */
  ConnectionLost: 'ERR_PG_IPC_CONNECTION_LOST',
  /** A channel listener threw or returned a rejected promise. */
  ListenerFailed: 'ERR_PG_IPC_LISTENER_FAILED',
  /** The reconnecting mode's `onConnect` hook threw or rejected. */
  HookFailed: 'ERR_PG_IPC_HOOK_FAILED',
  /** A typed payload failed its channel's schema (outgoing): nothing was sent. */
  InvalidPayload: 'ERR_PG_IPC_INVALID_PAYLOAD',
  /** A typed channel was named that is not in the channel map. */
  UnknownChannel: 'ERR_PG_IPC_UNKNOWN_CHANNEL',
  /** An incoming notification that is not JSON or does not match its channel's schema. */
  InvalidMessage: 'ERR_PG_IPC_INVALID_MESSAGE',
  /** A schema that zod cannot encode (a one-way transform), or whose wire form is not JSON. */
  SchemaNotEncodable: 'ERR_PG_IPC_SCHEMA_NOT_ENCODABLE',
  /** A `messages()` consumer fell further behind than its buffer allows. */
  BufferOverflow: 'ERR_PG_IPC_BUFFER_OVERFLOW',
  /** Too many notifications are waiting to be sent. */
  Backpressure: 'ERR_PG_IPC_BACKPRESSURE',
  /** The connection died after a notification was sent and before the server answered. */
  OutcomeUnknown: 'ERR_PG_IPC_OUTCOME_UNKNOWN',
  /** No connection came back within the configured wait for a queued notification. */
  NotConnected: 'ERR_PG_IPC_NOT_CONNECTED',
  /** LISTEN cannot work on this server or through this connection (standby, pooler). */
  UnsupportedSetup: 'ERR_PG_IPC_UNSUPPORTED_SETUP',
  /** A durable channel was used before its table was installed (`channels.install(client)`). */
  NotInstalled: 'ERR_PG_IPC_NOT_INSTALLED',
  /** A stored cursor points before messages that pruning already deleted. */
  CursorExpired: 'ERR_PG_IPC_CURSOR_EXPIRED',
  /** A cursor string that this library did not produce (or a damaged one). */
  InvalidCursor: 'ERR_PG_IPC_INVALID_CURSOR',
} as const

/** One of the stable error codes in {@link ErrorCode}. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode]

/** Options every library error accepts. */
export interface PgIpcErrorOptions {
  readonly cause?: unknown
  readonly channel?: string | undefined
}

/**
 * Base class of every error this library throws, rejects with or emits.
 *
 * @example
 * ```ts
 * import { PgIpcError, ErrorCode } from 'typed-pg-ipc'
 * function explain(error: unknown): string {
 *   if (error instanceof PgIpcError && error.code === ErrorCode.PayloadTooLarge) return 'store the row, send its key'
 *   return String(error)
 * }
 * ```
 */
export class PgIpcError extends Error {
  /** Stable machine-readable code, one of {@link ErrorCode}. */
  readonly code: ErrorCode
  /** The channel involved, where there is one. */
  readonly channel: string | undefined

  constructor(code: ErrorCode, message: string, options: PgIpcErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.channel = options.channel
  }

  override get name(): string {
    return this.constructor.name
  }
}

/** Thrown synchronously for a channel name PostgreSQL would reject or silently truncate. */
export class InvalidChannelError extends PgIpcError {
  constructor(message: string, options: { readonly channel: string }) {
    super(ErrorCode.InvalidChannel, message, options)
  }
}

/** Thrown for a typed channel named like an event the emitter itself uses. */
export class ReservedChannelError extends PgIpcError {
  constructor({ channel }: { readonly channel: string }) {
    super(
      ErrorCode.ReservedChannel,
      `Channel name "${channel}" is reserved: it is an event of the emitter itself. Rename the channel (for example "${channel}Event").`,
      { channel },
    )
  }
}

/** Thrown synchronously when a payload cannot be encoded as text for NOTIFY. */
export class PayloadNotEncodableError extends PgIpcError {
  constructor(message: string, options: { readonly channel: string; readonly cause?: unknown }) {
    super(ErrorCode.PayloadNotEncodable, message, options)
  }
}

/** Thrown (or rejected) when an encoded payload is 8000 bytes or more. */
export class PayloadTooLargeError extends PgIpcError {
  /** Size of the encoded payload in UTF-8 bytes. */
  readonly bytes: number
  /** The largest size PostgreSQL accepts (7999). */
  readonly limit: number

  constructor({
    channel,
    bytes,
    limit,
    durable = false,
  }: {
    readonly channel: string
    readonly bytes: number
    readonly limit: number
    /** The limit is a durable channel's `maxPayloadBytes`, not NOTIFY's. */
    readonly durable?: boolean
  }) {
    super(
      ErrorCode.PayloadTooLarge,
      durable
        ? `Payload for durable channel "${channel}" is ${bytes} bytes once encoded; its limit (durable.maxPayloadBytes) is ${limit}. ` +
            'Nothing was stored. Raise the limit in defineChannels(), or store the data elsewhere and send its key.'
        : `Payload for channel "${channel}" is ${bytes} bytes once encoded; PostgreSQL accepts at most ${limit}. ` +
            'Store the data in a table and send its key instead, or make the channel durable (docs/durable.md), which stores payloads of any size.',
      { channel },
    )
    this.bytes = bytes
    this.limit = limit
  }
}

/** The instance was ended with `end()`: create a new one to keep going. */
export class EndedError extends PgIpcError {
  /** `action`: what could not be done ("notify", "listen"); `detail`: why, when more than "the instance has ended". */
  constructor({
    action,
    channel,
    detail,
  }: {
    readonly action: string
    readonly channel?: string | undefined
    readonly detail?: string | undefined
  }) {
    super(
      ErrorCode.Ended,
      detail === undefined
        ? `Cannot ${action}${channel === undefined ? '' : ` on channel "${channel}"`}: this instance has ended. Create a new instance to send or listen again.`
        : `Cannot ${action}${channel === undefined ? '' : ` on channel "${channel}"`}: ${detail}. Nothing was sent; create a new instance to send again.`,
      { channel },
    )
  }
}

/** `listening(channel)` cannot resolve: the channel has no listener on this instance. */
export class NotListeningError extends PgIpcError {
  constructor({ channel, reason }: { readonly channel: string; readonly reason: string }) {
    super(
      ErrorCode.NotListening,
      `Not listening on channel "${channel}": ${reason}. Add a listener on the channel before waiting for its LISTEN.`,
      { channel },
    )
  }
}

/** What the library sends: the command a {@link QueryFailedError} is about. */
export type LibraryCommand = 'LISTEN' | 'UNLISTEN' | 'NOTIFY' | 'SELECT'

/** The server rejected a LISTEN, UNLISTEN, NOTIFY or one of the library's own queries; `cause` is the error from pg. */
export class QueryFailedError extends PgIpcError {
  /** The command that failed. */
  readonly command: LibraryCommand
  /** The SQLSTATE code from PostgreSQL, when the server sent one. */
  readonly sqlState: string | undefined

  constructor({
    command,
    channel,
    cause,
  }: {
    readonly command: LibraryCommand
    readonly channel?: string | undefined
    readonly cause: unknown
  }) {
    const sqlState = sqlStateOf(cause)
    super(
      ErrorCode.QueryFailed,
      `${command}${channel === undefined ? '' : ` on channel "${channel}"`} failed: ${messageOf(cause)}` +
        (sqlState === undefined ? '' : ` (SQLSTATE ${sqlState})`) +
        (sqlState === '25006'
          ? '. A hot standby allows neither LISTEN nor NOTIFY: connect to the primary (target_session_attrs=read-write).'
          : sqlState === '22P05' || sqlState === '22021'
            ? '. The database encoding cannot hold a character of the payload: use a UTF8 database, or send only characters it can store.'
            : '. Check the connection and the server log.'),
      { channel, cause },
    )
    this.command = command
    this.sqlState = sqlState
  }
}

/** The pg connection was lost or closed underneath the instance; `cause` is pg's error, if any. */
export class ConnectionLostError extends PgIpcError {
  /** For a notification: true when it never left the process (so sending it again is safe). */
  readonly notSent: boolean

  constructor(
    message: string,
    options: { readonly cause?: unknown; readonly channel?: string | undefined; readonly notSent?: boolean | undefined } = {},
  ) {
    super(ErrorCode.ConnectionLost, message, { cause: options.cause, channel: options.channel })
    this.notSent = options.notSent ?? false
  }
}

/**
 * The reconnecting mode could not send a notification: no connection came back within
 * `whileDisconnected.maxWaitMs`, or `maxQueued` notifications were already waiting. It was not sent.
 */
export class NotConnectedError extends PgIpcError {
  constructor({ channel, reason }: { readonly channel: string; readonly reason: string }) {
    super(
      ErrorCode.NotConnected,
      `Notification on channel "${channel}" was not sent: ${reason}. It is safe to send it again later; raise whileDisconnected.maxWaitMs or maxQueued to wait longer.`,
      { channel },
    )
  }
}

/** Too many notifications are waiting to be sent on this instance; this one was not queued. */
export class BackpressureError extends PgIpcError {
  /** The configured limit of pending notifications. */
  readonly limit: number

  constructor({ channel, limit }: { readonly channel: string; readonly limit: number }) {
    super(
      ErrorCode.Backpressure,
      `Notification on channel "${channel}" was not queued: ${limit} notifications are already waiting to be sent. ` +
        'Await notify() (or slow the producer) so the queue can drain, or raise the maxPending option.',
      { channel },
    )
    this.limit = limit
  }
}

/** LISTEN/NOTIFY cannot work on this server or through this connection. */
export class UnsupportedSetupError extends PgIpcError {
  /** What was detected. */
  readonly setup: 'standby' | 'pooler'

  constructor({ setup }: { readonly setup: 'standby' | 'pooler' }) {
    super(
      ErrorCode.UnsupportedSetup,
      setup === 'standby'
        ? 'Connected to a hot standby (pg_is_in_recovery() is true): PostgreSQL does not allow LISTEN or NOTIFY there. ' +
            'Connect to the primary (for example with target_session_attrs=read-write in the connection string).'
        : 'A notification this connection sent to itself never arrived: it goes through a connection pooler in transaction mode ' +
            '(such as PgBouncer with pool_mode=transaction), where LISTEN cannot work. Connect to PostgreSQL directly or through a session-mode pool.',
    )
    this.setup = setup
  }
}

/**
 * The connection died after a notification was sent and before the server answered: it may or may
 * not have been delivered. It is not resent, since that could deliver it twice.
 */
export class NotifyOutcomeUnknownError extends PgIpcError {
  constructor({ channel, cause }: { readonly channel: string; readonly cause?: unknown }) {
    super(
      ErrorCode.OutcomeUnknown,
      `The connection was lost while the notification on channel "${channel}" was in flight: it may or may not have been delivered. ` +
        'It was not resent (that could deliver it twice); if it matters, make the receiver idempotent and send again.',
      { channel, cause },
    )
  }
}

/** The reconnecting mode's `onConnect` hook threw or rejected; the connection is up and listening. */
export class HookError extends PgIpcError {
  constructor({ cause }: { readonly cause: unknown }) {
    super(
      ErrorCode.HookFailed,
      `The onConnect hook failed: ${messageOf(cause)}. The connection is up and listening anyway; the hook runs again after the next reconnect, so catch up there or retry inside the hook.`,
      { cause },
    )
  }
}

/** A channel listener threw or rejected; `cause` is what it threw. The connection is unaffected. */
export class ListenerError extends PgIpcError {
  /** `event`: the channel (or the event) whose listener failed. */
  constructor({ event, cause }: { readonly event: string; readonly cause: unknown }) {
    super(
      ErrorCode.ListenerFailed,
      `A listener for ${isEventName(event) ? `the "${event}" event` : `channel "${event}"`} failed: ${messageOf(cause)}. Other listeners and the connection are unaffected; handle errors inside the listener.`,
      { channel: isEventName(event) ? undefined : event, cause },
    )
  }
}

/** The emitters' own events (kept here so that errors stays a leaf; src/core/events.ts is the declaration). */
function isEventName(name: string): boolean {
  return [
    'listen',
    'unlisten',
    'notify',
    'end',
    'invalid',
    'connect',
    'reconnect',
    'disconnect',
    'newListener',
    'removeListener',
  ].includes(name)
}

/** @internal */
export function messageOf(value: unknown): string {
  if (value instanceof Error) return value.message
  try {
    return String(value)
  } catch {
    return 'unprintable value'
  }
}

function sqlStateOf(value: unknown): string | undefined {
  if (typeof value === 'object' && value !== null && 'code' in value) {
    const code = value.code
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code
  }
  return undefined
}

/** One validation problem, as zod reports it (a subset of zod's issue shape). */
export interface ValidationIssue {
  readonly code: string
  readonly message: string
  readonly path: readonly PropertyKey[]
}

/** A typed notify's payload failed its channel's schema; nothing was sent. */
export class InvalidPayloadError extends PgIpcError {
  /** What zod found wrong, path by path. */
  readonly issues: readonly ValidationIssue[]

  constructor({
    channel,
    issues,
    cause,
  }: {
    readonly channel: string
    readonly issues: readonly ValidationIssue[]
    readonly cause?: unknown
  }) {
    super(
      ErrorCode.InvalidPayload,
      `Payload for channel "${channel}" does not match its schema: ${describeIssues(issues)}. Nothing was sent; fix the value (see .issues).`,
      { channel, cause },
    )
    this.issues = issues
  }
}

/** A typed call named a channel that is not in the channel map (only possible from JavaScript). */
export class UnknownChannelError extends PgIpcError {
  constructor({ channel, known }: { readonly channel: string; readonly known: readonly string[] }) {
    super(
      ErrorCode.UnknownChannel,
      `Unknown channel "${channel}": it is not in this channel map (known: ${known.map((name) => `"${name}"`).join(', ') || 'none'}). Add it to defineChannels() or fix the name.`,
      { channel },
    )
  }
}

/**
 * An incoming notification that is not JSON or does not match its channel's schema. It reached no
 * listener; it is emitted as `invalid` (or `error`), never thrown at the consumer.
 */
export class InvalidMessageError extends PgIpcError {
  /** The payload exactly as it arrived. */
  readonly rawPayload: string
  /** Backend pid of the sender: find the culprit with `pg_stat_activity`. */
  readonly processId: number
  /** What zod found wrong; empty when the payload was not JSON at all (see `cause`). */
  readonly issues: readonly ValidationIssue[]

  constructor({
    channel,
    rawPayload,
    processId,
    issues,
    cause,
  }: {
    readonly channel: string
    readonly rawPayload: string
    readonly processId: number
    readonly issues: readonly ValidationIssue[]
    readonly cause?: unknown
  }) {
    const what =
      issues.length > 0
        ? `does not match the channel's schema: ${describeIssues(issues)}`
        : cause instanceof SyntaxError
          ? `is not valid JSON (${messageOf(cause)})`
          : `could not be decoded (${messageOf(cause)})`
    super(
      ErrorCode.InvalidMessage,
      `Ignored a notification on channel "${channel}" from backend pid ${processId}: its payload ${what}. ` +
        `Raw payload: ${preview(rawPayload)}. Fix the sender, or version the channel if its schema changed.`,
      { channel, cause },
    )
    this.rawPayload = rawPayload
    this.processId = processId
    this.issues = issues
  }
}

/** A schema that cannot be used on the wire: a one-way transform, or a wire form that is not JSON. */
export class SchemaNotEncodableError extends PgIpcError {
  constructor({ channel, reason, cause }: { readonly channel: string; readonly reason: string; readonly cause?: unknown }) {
    super(ErrorCode.SchemaNotEncodable, `Schema of channel "${channel}" cannot be sent: ${reason}`, { channel, cause })
  }
}

/** A `messages()` consumer fell more than `limit` messages behind; the loop ended here. */
export class BufferOverflowError extends PgIpcError {
  /** The buffer size that was exceeded. */
  readonly limit: number

  constructor({ channel, limit }: { readonly channel: string; readonly limit: number }) {
    super(
      ErrorCode.BufferOverflow,
      `The messages() loop on channel "${channel}" fell more than ${limit} messages behind, so it was ended; later messages were not buffered. ` +
        'Process messages faster (hand slow work to a queue), or raise the bufferSize option.',
      { channel },
    )
    this.limit = limit
  }
}

/** @internal */
export function toIssues(issues: readonly { code: string; message: string; path: readonly PropertyKey[] }[]): ValidationIssue[] {
  return issues.map(({ code, message, path }) => ({ code, message, path: [...path] }))
}

function describeIssues(issues: readonly ValidationIssue[]): string {
  const shown = issues.slice(0, 3).map((issue) => {
    const path = issue.path.length > 0 ? issue.path.map(String).join('.') : '(payload)'
    return `${path}: ${issue.message}`
  })
  if (issues.length > 3) shown.push(`and ${issues.length - 3} more`)
  return shown.join('; ')
}

function preview(raw: string): string {
  const text = JSON.stringify(raw)
  return text.length > 200 ? `${text.slice(0, 200)}…" (${raw.length} characters)` : text
}

/** A durable channel was used before its table exists: run the install step. */
export class NotInstalledError extends PgIpcError {
  constructor({ channel, table, cause }: { readonly channel: string; readonly table: string; readonly cause?: unknown }) {
    super(
      ErrorCode.NotInstalled,
      `Durable channel "${channel}" needs the table ${table}, which does not exist in this database. ` +
        'Run `await channels.install(client)` once (it is idempotent), or apply the SQL from `channels.installSql()` with your migration tool (docs/durable.md).',
      { channel, cause },
    )
  }
}

/** A stored cursor is older than what pruning kept: resuming from it would silently skip messages. */
export class CursorExpiredError extends PgIpcError {
  constructor({ channel }: { readonly channel: string }) {
    super(
      ErrorCode.CursorExpired,
      `The cursor for durable channel "${channel}" points before messages that retention already pruned, so resuming from it would skip messages. ` +
        'Start from now (omit `after`) and rebuild what you derived from the channel, or keep messages longer (durable.retention).',
      { channel },
    )
  }
}

/** A cursor string this library did not produce. */
export class InvalidCursorError extends PgIpcError {
  constructor({ channel, cursor }: { readonly channel: string; readonly cursor: string }) {
    super(
      ErrorCode.InvalidCursor,
      `messages("${channel}", { after }) got ${JSON.stringify(cursor.length > 80 ? `${cursor.slice(0, 80)}…` : cursor)}, which is not a cursor of this library. ` +
        "Pass a message's `cursor` exactly as you received it (store it as text).",
      { channel },
    )
  }
}
