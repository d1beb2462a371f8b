/**
 * Type tests of the error classes: one base class with a stable `code`, subclasses with the data
 * needed to act on them.
 */
import { expectAssignable, expectError, expectNotAssignable, expectType } from 'tsd'
import {
  BackpressureError,
  BufferOverflowError,
  ConnectionLostError,
  EndedError,
  ErrorCode,
  InvalidChannelError,
  InvalidMessageError,
  InvalidPayloadError,
  ListenerError,
  HookError,
  NotConnectedError,
  NotListeningError,
  NotifyOutcomeUnknownError,
  PayloadNotEncodableError,
  PayloadTooLargeError,
  PgIpcError,
  QueryFailedError,
  ReservedChannelError,
  SchemaNotEncodableError,
  UnknownChannelError,
  UnsupportedSetupError,
  type PgIpcErrorOptions,
  type ValidationIssue,
} from 'typed-pg-ipc'

declare const error: unknown

// ErrorCode: a const map (value) and the union of its codes (type) ------------------------------

expectType<'ERR_PG_IPC_INVALID_PAYLOAD'>(ErrorCode.InvalidPayload)
expectType<'ERR_PG_IPC_RESERVED_CHANNEL'>(ErrorCode.ReservedChannel)
expectType<'ERR_PG_IPC_NOT_CONNECTED'>(ErrorCode.NotConnected)
expectAssignable<ErrorCode>('ERR_PG_IPC_ENDED')
expectNotAssignable<ErrorCode>('ERR_SOMETHING_ELSE')
expectNotAssignable<ErrorCode>('InvalidPayload') // the key is not the code
expectError((ErrorCode.Ended = 'ERR_PG_IPC_ENDED'))
expectError(ErrorCode.NoSuchCode)

// PgIpcError: the base class ---------------------------------------------------------------------

const base = new PgIpcError(ErrorCode.QueryFailed, 'message')
expectAssignable<Error>(base)
expectType<ErrorCode>(base.code)
expectType<string | undefined>(base.channel)
expectType<string>(base.name)
expectType<string>(base.message)
expectType<unknown>(base.cause)
expectType<PgIpcError>(new PgIpcError(ErrorCode.Ended, 'message', { cause: new Error('x'), channel: 'orders' }))
expectAssignable<PgIpcErrorOptions>({})
expectAssignable<PgIpcErrorOptions>({ channel: undefined })
expectError(new PgIpcError('ERR_NOPE', 'message'))
expectError(new PgIpcError(ErrorCode.Ended))
expectError(new PgIpcError(ErrorCode.Ended, 'message', { channel: 1 }))
expectError((base.code = ErrorCode.Ended))
expectError((base.channel = 'orders'))

// Narrowing an unknown error: instanceof, then code ----------------------------------------------

if (error instanceof PgIpcError) {
  expectType<PgIpcError>(error)
  expectType<ErrorCode>(error.code)
}
if (error instanceof InvalidPayloadError) {
  expectType<readonly ValidationIssue[]>(error.issues)
  expectType<string>(error.issues[0]!.message)
  expectType<readonly PropertyKey[]>(error.issues[0]!.path)
}

// Every error class is a PgIpcError --------------------------------------------------------------

expectAssignable<PgIpcError>(new InvalidChannelError('message', { channel: 'orders' }))
expectAssignable<PgIpcError>(new ReservedChannelError({ channel: 'error' }))
expectAssignable<PgIpcError>(new PayloadNotEncodableError('message', { channel: 'orders' }))
expectAssignable<PgIpcError>(new PayloadTooLargeError({ channel: 'orders', bytes: 9000, limit: 7999 }))
expectAssignable<PgIpcError>(new EndedError({ action: 'notify' }))
expectAssignable<PgIpcError>(new NotListeningError({ channel: 'orders', reason: 'reason' }))
expectAssignable<PgIpcError>(new QueryFailedError({ command: 'LISTEN', channel: 'orders', cause: error }))
expectAssignable<PgIpcError>(new ConnectionLostError('message'))
expectAssignable<PgIpcError>(new NotifyOutcomeUnknownError({ channel: 'orders' }))
expectAssignable<PgIpcError>(new ListenerError({ event: 'orders', cause: error }))
expectAssignable<PgIpcError>(new HookError({ cause: error }))
expectAssignable<PgIpcError>(new InvalidPayloadError({ channel: 'orders', issues: [] }))
expectAssignable<PgIpcError>(new UnknownChannelError({ channel: 'orders', known: ['a', 'b'] }))
expectAssignable<PgIpcError>(new InvalidMessageError({ channel: 'orders', rawPayload: '{', processId: 123, issues: [] }))
expectAssignable<PgIpcError>(new SchemaNotEncodableError({ channel: 'orders', reason: 'reason' }))
expectAssignable<PgIpcError>(new BufferOverflowError({ channel: 'orders', limit: 1024 }))
expectAssignable<PgIpcError>(new NotConnectedError({ channel: 'orders', reason: 'reason' }))
expectAssignable<PgIpcError>(new BackpressureError({ channel: 'orders', limit: 1000 }))
expectAssignable<PgIpcError>(new UnsupportedSetupError({ setup: 'pooler' }))

// Options objects, never positional data
expectError(new PayloadTooLargeError('orders', 9000, 7999))
expectError(new ConnectionLostError('message', error, 'orders', true))
expectError(new QueryFailedError('NOTIFY', 'orders', error))

// The data each one carries ----------------------------------------------------------------------

const tooLarge = new PayloadTooLargeError({ channel: 'orders', bytes: 9000, limit: 7999 })
expectType<number>(tooLarge.bytes)
expectType<number>(tooLarge.limit)
expectError((tooLarge.bytes = 1))

const queryFailed = new QueryFailedError({ command: 'NOTIFY', channel: 'orders', cause: error })
expectType<'LISTEN' | 'UNLISTEN' | 'NOTIFY' | 'SELECT'>(queryFailed.command)
expectType<string | undefined>(queryFailed.sqlState)
expectError(new QueryFailedError({ command: 'DELETE', channel: 'orders', cause: error }))

const lost = new ConnectionLostError('message', { cause: error, channel: 'orders', notSent: true })
expectType<boolean>(lost.notSent)

const invalidMessage = new InvalidMessageError({ channel: 'orders', rawPayload: '{', processId: 123, issues: [] })
expectType<string>(invalidMessage.rawPayload)
expectType<number>(invalidMessage.processId)
expectType<readonly ValidationIssue[]>(invalidMessage.issues)
expectError(invalidMessage.issues.push({ code: 'x', message: 'y', path: [] }))
expectError(new InvalidMessageError({ channel: 'orders', rawPayload: '{', processId: '123', issues: [] }))

expectType<readonly ValidationIssue[]>(new InvalidPayloadError({ channel: 'orders', issues: [] }).issues)
expectType<number>(new BufferOverflowError({ channel: 'orders', limit: 1024 }).limit)
expectType<number>(new BackpressureError({ channel: 'orders', limit: 1000 }).limit)
expectType<'standby' | 'pooler'>(new UnsupportedSetupError({ setup: 'standby' }).setup)
expectError(new UnsupportedSetupError({ setup: 'replica' }))
expectType<'ERR_PG_IPC_HOOK_FAILED'>(ErrorCode.HookFailed)

expectAssignable<ValidationIssue>({ code: 'too_small', message: 'Too small', path: ['total'] })
expectAssignable<ValidationIssue>({ code: 'custom', message: 'x', path: [0, Symbol('s')] })
expectNotAssignable<ValidationIssue>({ code: 'custom', message: 'x' })
