// What the compiler says when the typed layer refuses code: the exact text a user reads. The tsd
// suite (test-d/) checks *that* these are errors; this checks *what* they say, and that each
// mistake gives one error, not a cascade. Compiled against dist/ (`npm run build` first).
import { beforeAll, describe, expect, it } from 'vitest'
import { compileSnippets, type SnippetDiagnostic } from './compile.js'

const header = `
import pg from 'pg'
import { z } from 'zod'
import { defineChannels, type MessageOf } from 'typed-pg-ipc'

const isoDate = z.codec(z.iso.datetime(), z.date(), { decode: (text) => new Date(text), encode: (date) => date.toISOString() })
const channels = defineChannels({ orderPlaced: z.object({ orderId: z.uuid(), placedAt: isoDate }), cacheCleared: z.void() })
const ipc = channels.attach(new pg.Client())
const onOrder = (message: MessageOf<typeof channels, 'orderPlaced'>): void => console.log(message.payload.orderId)
declare const someName: 'orderPlaced' | 'cacheCleared'
void [onOrder, someName]
`

const snippets = {
  valid: `
    ipc.on('orderPlaced', (message) => console.log(message.payload.placedAt.getTime()))
    ipc.on('disconnect', (error) => console.log(error.code))
    ipc.off('orderPlaced', onOrder)
    void ipc.notify('orderPlaced', { orderId: crypto.randomUUID(), placedAt: new Date() })
    void ipc.notify('cacheCleared')`,
  // A misspelt channel: the listener's body uses the message as if the name were right.
  on: `ipc.on('orderPlacd', (message) => console.log(message.payload.orderId))`,
  once: `ipc.once('orderPlacd', (message) => console.log(message.payload.orderId))`,
  addListener: `ipc.addListener('orderPlacd', (message) => console.log(message.payload.orderId))`,
  prependListener: `ipc.prependListener('orderPlacd', (message) => console.log(message.payload.orderId))`,
  prependOnceListener: `ipc.prependOnceListener('orderPlacd', (message) => console.log(message.payload.orderId))`,
  off: `ipc.off('orderPlacd', onOrder)`,
  offInline: `ipc.off('orderPlacd', (message) => console.log(message.payload.orderId))`,
  removeListener: `ipc.removeListener('orderPlacd', onOrder)`,
  eventTypo: `ipc.on('disconect', (error) => console.log(error.code))`,
  removeAllListeners: `ipc.removeAllListeners('orderPlacd')`,
  listenerCount: `ipc.listenerCount('orderPlacd')`,
  notify: `void ipc.notify('orderPlacd', { orderId: crypto.randomUUID(), placedAt: new Date() })`,
  notifyNoPayload: `void ipc.notify('orderPlacd')`,
  send: `void ipc.send('orderPlacd', { orderId: crypto.randomUUID(), placedAt: new Date() })`,
  notifyQuery: `channels.notifyQuery('orderPlacd')`,
  messages: `ipc.messages('orderPlacd')`,
  listening: `void ipc.listening('orderPlacd')`,
  wrongListener: `ipc.on('orderPlaced', (message: { payload: { placedAt: string } }) => message)`,
  wrongPayload: `void ipc.notify('orderPlaced', { orderId: 'x', placedAt: '2024-01-01T00:00:00Z' })`,
  unionOfNames: `void ipc.notify(someName, { orderId: 'x', placedAt: new Date() })`,
  reserved: `defineChannels({ error: z.string() })`,
  date: `defineChannels({ when: z.date() })`,
  dateBesideVoid: `defineChannels({ ping: z.void(), when: z.date() })`,
  notASchema: `defineChannels({ orderPlaced: { type: 'object' } })`,
} as const

type Name = keyof typeof snippets
let diagnostics: Record<string, SnippetDiagnostic[]>
const of = (name: Name): SnippetDiagnostic[] => diagnostics[name] ?? []

/** What `on()` and its kin say for a wrong name: the channel names, then the events. */
const listenerNames = (wrong: string): string =>
  `Argument of type '"${wrong}"' is not assignable to parameter of type '"orderPlaced" | "cacheCleared" | keyof TypedEvents<string>'.`
/** What `notify()` and the other channel-only methods say: the channel names. */
const channelNames = (wrong: string): string =>
  `Argument of type '"${wrong}"' is not assignable to parameter of type '"orderPlaced" | "cacheCleared"'.`

describe('compile errors of the typed layer', () => {
  beforeAll(() => {
    diagnostics = compileSnippets(header, snippets)
  })

  it('compiles the valid snippet without errors (the fixture itself is sound)', () => {
    expect(of('valid')).toEqual([])
  })

  it.each(['on', 'once', 'addListener', 'prependListener', 'prependOnceListener', 'off', 'offInline', 'removeListener'] as const)(
    '%s() with a wrong name: one error, with the list of names, no implicit any after it',
    (name) => {
      expect(of(name)).toEqual([{ code: 2345, text: listenerNames('orderPlacd') }])
    },
  )

  it('a misspelt event name gets the same list', () => {
    expect(of('eventTypo')).toEqual([{ code: 2345, text: listenerNames('disconect') }])
  })

  it('removeAllListeners() and listenerCount() with a wrong name', () => {
    expect(of('removeAllListeners')).toEqual([
      {
        code: 2345,
        text: `Argument of type '"orderPlacd"' is not assignable to parameter of type '"orderPlaced" | "cacheCleared" | keyof TypedEvents<string> | undefined'.`,
      },
    ])
    expect(of('listenerCount')).toEqual([{ code: 2345, text: listenerNames('orderPlacd') }])
  })

  it.each(['notify', 'notifyNoPayload', 'send', 'notifyQuery', 'messages', 'listening'] as const)(
    '%s() with a wrong name: one error, with the channel names',
    (name) => {
      expect(of(name)).toEqual([{ code: 2345, text: channelNames('orderPlacd') }])
    },
  )

  it('a wrong listener shows the message type, not the schema map', () => {
    const [first, ...rest] = of('wrongListener')
    expect(rest).toEqual([])
    expect(first?.text.split('\n')[0]).toBe(
      `Argument of type '(message: { payload: { placedAt: string; }; }) => { payload: { placedAt: string; }; }' is not assignable to parameter of type '(message: TypedMessage<"orderPlaced", { orderId: string; placedAt: Date; }>) => unknown'.`,
    )
    expect(first?.text).not.toMatch(/Zod|TypedEventName|MessageOf</)
  })

  it('a wrong payload field names the field type', () => {
    expect(of('wrongPayload')).toEqual([{ code: 2322, text: `Type 'string' is not assignable to type 'Date'.` }])
  })

  it('a union of names is refused with the reason', () => {
    const found = of('unionOfNames')
    expect(found).toHaveLength(1)
    expect(found[0]?.text).toContain(
      'Pass one channel name, not a union: the payload of \\"orderPlaced\\" is checked against its own schema only',
    )
  })

  it('defineChannels names the channel and the rule it breaks', () => {
    const reserved = of('reserved')
    expect(reserved).toHaveLength(1)
    expect(reserved[0]?.text).toContain(
      'Channel name \\"error\\" is reserved: it is an event of the emitter. Rename the channel.',
    )
    for (const name of ['date', 'dateBesideVoid'] as const) {
      const found = of(name)
      expect(found, name).toHaveLength(1)
      expect(found[0]?.text.split('\n')[0]).toMatch(
        /^Type 'ZodDate' is not assignable to type 'ZodDate & "Channel \\"when\\" has a schema whose wire form is not JSON /,
      )
    }
    const notASchema = of('notASchema')
    expect(notASchema).toHaveLength(1)
    expect(notASchema[0]?.text).toContain(
      `is missing the following properties from type 'ChannelSchema': _zod, safeEncode, safeDecode`,
    )
  })
})
