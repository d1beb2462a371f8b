// The messages the benchmark sends: a small flat object and a larger nested one, each with a zod
// schema for the typed layer. Every message carries its sequence number, so no two are identical
// (PostgreSQL folds identical notifications inside one transaction).

import { z } from 'zod'
import { defineChannels, type ChannelSchemas, type CheckChannels } from '../src/index.js'

const AT = '2025-06-01T12:00:00.000Z'
const UUID_A = '3f1c2a4e-8b7d-4c6a-9e2f-1a2b3c4d5e6f'
const UUID_B = '9b2e4f6a-1c3d-4e5f-8a7b-6c5d4e3f2a1b'

/** Small: five flat fields (about 80 bytes of JSON). */
export const SmallSchema = z.object({
  id: z.number().int().nonnegative(),
  sku: z.string().min(1).max(32),
  qty: z.number().int().positive(),
  price: z.number().nonnegative(),
  at: z.iso.datetime(),
})
export type Small = z.infer<typeof SmallSchema>

export function small(id: number): Small {
  return { id, sku: `SKU-${id % 1000}`, qty: (id % 7) + 1, price: 19.99, at: AT }
}

/**
 * The large schema. `formats: false` is the same shape with plain types only (no uuid, email,
 * datetime, regex, length or range checks): what those checks cost, for the profile.
 */
export function largeSchema({ formats = true }: { formats?: boolean } = {}) {
  const text = () => (formats ? z.string().min(1) : z.string())
  const Address = z.object({
    street: text(),
    city: text(),
    zip: formats ? z.string().regex(/^\d{5}$/) : z.string(),
    country: z.enum(['DE', 'FR', 'GB', 'US']),
  })
  const Item = z.object({
    sku: text(),
    name: z.string(),
    qty: formats ? z.number().int().positive() : z.number(),
    unitPrice: formats ? z.number().nonnegative() : z.number(),
    tags: formats ? z.array(z.string()).max(10) : z.array(z.string()),
  })
  return z.object({
    id: formats ? z.number().int().nonnegative() : z.number(),
    orderId: formats ? z.uuid() : z.string(),
    placedAt: formats ? z.iso.datetime() : z.string(),
    customer: z.object({
      id: formats ? z.uuid() : z.string(),
      name: text(),
      email: formats ? z.email() : z.string(),
      billing: Address,
      shipping: Address.optional(),
    }),
    items: formats ? z.array(Item).min(1).max(100) : z.array(Item),
    totals: z.object({
      net: z.number(),
      tax: z.number(),
      gross: z.number(),
      currency: z.enum(['EUR', 'USD', 'GBP']),
    }),
    meta: z.record(z.string(), z.string()),
  })
}

/** Large: an order with a customer, two addresses, 10 items and metadata (about 1.3 KB of JSON). */
export const LargeSchema = largeSchema()
export type Large = z.infer<typeof LargeSchema>

export function large(id: number): Large {
  const items = Array.from({ length: 10 }, (_, index) => ({
    sku: `SKU-${(id + index) % 1000}`,
    name: `Item number ${index}`,
    qty: index + 1,
    unitPrice: 4.5 + index,
    tags: ['bench', index % 2 === 0 ? 'even' : 'odd'],
  }))
  return {
    id,
    orderId: UUID_A,
    placedAt: AT,
    customer: {
      id: UUID_B,
      name: 'Ada Lovelace',
      email: 'ada@example.com',
      billing: { street: '12 Analytical Street', city: 'London', zip: '10115', country: 'GB' },
      shipping: { street: '1 Engine Road', city: 'Berlin', zip: '10117', country: 'DE' },
    },
    items,
    totals: { net: 100, tax: 19, gross: 119, currency: 'EUR' },
    meta: { source: 'bench', region: 'eu-central', campaign: 'none' },
  }
}

/** Channel names of one run; they include the pid so parallel runs on one server never mix. */
export interface ChannelNames {
  readonly small: string
  readonly large: string
}

export function channelNames(tag: string | number = process.pid): ChannelNames {
  return { small: `bench_small_${tag}`, large: `bench_large_${tag}` }
}

/**
 * The same schemas compiled ahead of time by zod (`z.compile`): a user's option, measured beside the
 * plain ones. zod generates one validator per schema and falls back to its runtime parser for
 * invalid input (so the errors are the same).
 */
export const SmallSchemaCompiled = z.compile(SmallSchema)
export const LargeSchemaCompiled = z.compile(LargeSchema)

/** The typed channel map for these names; `compiled` uses the z.compile versions of the schemas. */
export function benchChannels(names: ChannelNames, compiled = false) {
  const schemas: ChannelSchemas = compiled
    ? { [names.small]: SmallSchemaCompiled, [names.large]: LargeSchemaCompiled }
    : { [names.small]: SmallSchema, [names.large]: LargeSchema }
  return defineChannels<ChannelSchemas>(schemas as ChannelSchemas & CheckChannels<ChannelSchemas>)
}
export type BenchChannels = ReturnType<typeof benchChannels>
