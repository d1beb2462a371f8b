// The event names come from one declaration (src/core/events.ts); these are the lists derived from it.
import { describe, expect, it } from 'vitest'
import { FORWARDED_EVENTS, RESERVED_EVENTS, TYPED_LAYER_EVENTS, isChannelEvent, isReservedEvent } from '../../src/core/events.js'

describe('event names', () => {
  it("reserves pg-ipc's seven, in its order, then the four of ours", () => {
    expect(RESERVED_EVENTS).toEqual([
      'newListener',
      'removeListener',
      'notify',
      'unlisten',
      'listen',
      'error',
      'end',
      'invalid',
      'connect',
      'reconnect',
      'disconnect',
    ])
    expect(Object.isFrozen(RESERVED_EVENTS)).toBe(true)
  })

  it('derives the typed layer’s events and the ones it forwards from the core', () => {
    expect([...TYPED_LAYER_EVENTS].sort()).toEqual([
      'connect',
      'disconnect',
      'end',
      'error',
      'invalid',
      'listen',
      'reconnect',
      'unlisten',
    ])
    expect([...FORWARDED_EVENTS].sort()).toEqual(['connect', 'disconnect', 'listen', 'reconnect', 'unlisten'])
  })

  it('tells channels from reserved names', () => {
    for (const name of RESERVED_EVENTS) {
      expect(isReservedEvent(name)).toBe(true)
      expect(isChannelEvent(name)).toBe(false)
    }
    expect(isChannelEvent('orders')).toBe(true)
    expect(isChannelEvent(Symbol('orders'))).toBe(false)
  })
})
