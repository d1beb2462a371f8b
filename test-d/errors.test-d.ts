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

expectAssignable<PgIpcError>(new InvalidChannelError('message', 'orders'))
expectAssignable<PgIpcError>(new ReservedChannelError('error'))
expectAssignable<PgIpcError>(new PayloadNotEncodableError('message', 'orders'))
expectAssignable<PgIpcError>(new PayloadTooLargeError('orders', 9000, 7999))
expectAssignable<PgIpcError>(new EndedError('notify'))
expectAssignable<PgIpcError>(new NotListeningError('orders', 'reason'))
expectAssignable<PgIpcError>(new QueryFailedError('LISTEN', 'orders', error))
expectAssignable<PgIpcError>(new ConnectionLostError('message'))
expectAssignable<PgIpcError>(new NotifyOutcomeUnknownError('orders'))
expectAssignable<PgIpcError>(new ListenerError('orders', error))
expectAssignable<PgIpcError>(new InvalidPayloadError('orders', []))
expectAssignable<PgIpcError>(new UnknownChannelError('orders', ['a', 'b']))
expectAssignable<PgIpcError>(new InvalidMessageError('orders', '{', 123, []))
expectAssignable<PgIpcError>(new SchemaNotEncodableError('orders', 'reason'))
expectAssignable<PgIpcError>(new BufferOverflowError('orders', 1024))
expectAssignable<PgIpcError>(new NotConnectedError('orders', 'reason'))
expectAssignable<PgIpcError>(new BackpressureError('orders', 1000))
expectAssignable<PgIpcError>(new UnsupportedSetupError('pooler'))

// The data each one carries ----------------------------------------------------------------------

const tooLarge = new PayloadTooLargeError('orders', 9000, 7999)
expectType<number>(tooLarge.bytes)
expectType<number>(tooLarge.limit)
expectError((tooLarge.bytes = 1))

const queryFailed = new QueryFailedError('NOTIFY', 'orders', error)
expectType<'LISTEN' | 'UNLISTEN' | 'NOTIFY' | 'SELECT'>(queryFailed.command)
expectType<string | undefined>(queryFailed.sqlState)
expectError(new QueryFailedError('DELETE', 'orders', error))

const lost = new ConnectionLostError('message', { cause: error, channel: 'orders', notSent: true })
expectType<boolean>(lost.notSent)
expectError(new ConnectionLostError('message', error, 'orders', true))

const invalidMessage = new InvalidMessageError('orders', '{', 123, [])
expectType<string>(invalidMessage.rawPayload)
expectType<number>(invalidMessage.processId)
expectType<readonly ValidationIssue[]>(invalidMessage.issues)
expectError(invalidMessage.issues.push({ code: 'x', message: 'y', path: [] }))
expectError(new InvalidMessageError('orders', '{', '123', []))

expectType<readonly ValidationIssue[]>(new InvalidPayloadError('orders', []).issues)
expectType<number>(new BufferOverflowError('orders', 1024).limit)
expectType<number>(new BackpressureError('orders', 1000).limit)
expectType<'standby' | 'pooler'>(new UnsupportedSetupError('standby').setup)
expectError(new UnsupportedSetupError('replica'))

expectAssignable<ValidationIssue>({ code: 'too_small', message: 'Too small', path: ['total'] })
expectAssignable<ValidationIssue>({ code: 'custom', message: 'x', path: [0, Symbol('s')] })
expectNotAssignable<ValidationIssue>({ code: 'custom', message: 'x' })
