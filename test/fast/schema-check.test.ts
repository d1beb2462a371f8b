// The schema walker (src/typed/schema-check.ts): the run-time twin of the compile-time checks, for
// JavaScript callers and loose types. It refuses a one-way .transform() anywhere, and a wire form
// JSON cannot carry at any depth; it accepts codecs (only their input side travels); and it
// terminates on recursive schemas. encodesAsIs() decides when encoding may skip zod's encode.
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { defineChannels, SchemaNotEncodableError, type ChannelSchemas, type CheckChannels } from '../../src/index.js'
import { assertWireSchema, encodesAsIs } from '../../src/typed/schema-check.js'

const isoDate = z.codec(z.iso.datetime(), z.date(), {
  decode: (text) => new Date(text),
  encode: (date) => date.toISOString(),
})

/** The walker's verdict: undefined when accepted, else the error message. */
function verdict(schema: unknown): string | undefined {
  try {
    assertWireSchema('ch', schema)
    return undefined
  } catch (error) {
    expect(error).toBeInstanceOf(SchemaNotEncodableError)
    return (error as Error).message
  }
}

/** Puts `inner` at several depths and in every kind of container. */
function placements(inner: z.ZodType): Record<string, z.ZodType> {
  return {
    top: inner,
    field: z.object({ a: inner }),
    nested: z.object({ a: z.object({ b: inner }) }),
    array: z.array(inner),
    tuple: z.tuple([z.string(), inner]),
    union: z.union([z.string(), inner]),
    'discriminated union': z.discriminatedUnion('kind', [
      z.object({ kind: z.literal('a') }),
      z.object({ kind: z.literal('b'), value: inner }),
    ]),
    intersection: z.intersection(z.object({ a: z.string() }), z.object({ b: inner })),
    record: z.record(z.string(), inner),
    optional: z.object({ a: inner.optional() }),
    nullable: inner.nullable(),
    default: z.object({ a: inner.optional().default(undefined as never) }),
    readonly: z.object({ a: inner }).readonly(),
    lazy: z.lazy(() => z.object({ a: inner })),
    'codec input': z.codec(z.object({ a: inner }), z.string(), { decode: () => '', encode: () => ({ a: undefined as never }) }),
  }
}

describe('assertWireSchema', () => {
  it('refuses a one-way .transform() wherever it is', () => {
    for (const [where, schema] of Object.entries(placements(z.string().transform((text) => text.length)))) {
      expect(verdict(schema), where).toMatch(/uses \.transform\(\) at .*z\.codec/)
    }
  })

  it('names the path of what it refuses', () => {
    expect(verdict(z.object({ order: z.object({ placedAt: z.date() }) }))).toMatch(/at the payload\.order\.placedAt/)
    expect(verdict(z.object({ items: z.array(z.object({ at: z.string().transform(Number) })) }))).toMatch(
      /at the payload\.items\.at/,
    )
    expect(verdict(z.tuple([z.string(), z.bigint()]))).toMatch(/at the payload\[1\]/)
  })

  it.each([
    ['a Date', z.date()],
    ['a bigint', z.bigint()],
    ['a Map', z.map(z.string(), z.string())],
    ['a Set', z.set(z.string())],
    ['a symbol', z.symbol()],
    ['NaN', z.nan()],
    ['a File', z.file()],
  ])('refuses %s on the wire side at any depth', (what, type) => {
    for (const [where, schema] of Object.entries(placements(type))) {
      expect(verdict(schema), where).toContain(`holds ${what}`)
    }
  })

  it('accepts codecs: only their input side travels', () => {
    expect(verdict(isoDate)).toBeUndefined()
    expect(verdict(z.object({ at: isoDate, items: z.array(z.object({ at: isoDate })) }))).toBeUndefined()
    expect(
      verdict(
        z.codec(z.string(), z.object({ at: z.date(), big: z.bigint() }), {
          decode: () => ({ at: new Date(), big: 1n }),
          encode: () => '',
        }),
      ),
    ).toBeUndefined()
    expect(verdict(z.string().pipe(z.string().min(1)))).toBeUndefined()
  })

  it('accepts plain JSON schemas with refinements, defaults and z.json()', () => {
    expect(
      verdict(
        z.object({
          id: z.uuid(),
          n: z.number().int().positive().default(1),
          tags: z.array(z.string()).refine((tags) => tags.length < 5),
        }),
      ),
    ).toBeUndefined()
    expect(verdict(z.json())).toBeUndefined()
    expect(verdict(z.void())).toBeUndefined()
  })

  it('terminates on recursive schemas: z.lazy, getters, mutual recursion', () => {
    interface Tree {
      value: string
      children: Tree[]
    }
    const tree: z.ZodType<Tree> = z.object({ value: z.string(), children: z.array(z.lazy(() => tree)) })
    expect(verdict(tree)).toBeUndefined()

    const category = z.object({
      name: z.string(),
      get subcategories() {
        return z.array(category)
      },
    })
    expect(verdict(category)).toBeUndefined()

    const a: z.ZodType = z.lazy(() => z.object({ b: b.optional() }))
    const b: z.ZodType = z.lazy(() => z.object({ a: a.optional() }))
    expect(verdict(a)).toBeUndefined()

    // ... and still finds what is wrong deep inside one.
    const dated: z.ZodType = z.object({ at: z.date(), next: z.lazy(() => dated).optional() })
    expect(verdict(z.object({ list: z.lazy(() => dated) }))).toContain('holds a Date')
    const transformedDeep: z.ZodType = z.object({
      next: z.lazy(() => transformedDeep).optional(),
      n: z.string().transform(Number),
    })
    expect(verdict(transformedDeep)).toContain('.transform()')
  })

  it('a schema used on both sides of a codec is judged on each side', () => {
    const shared = z.object({ at: z.date() })
    // Output side only: fine. Input side: the same object is on the wire, refused.
    expect(verdict(z.codec(z.string(), shared, { decode: () => ({ at: new Date() }), encode: () => '' }))).toBeUndefined()
    expect(
      verdict(z.object({ a: z.codec(z.string(), shared, { decode: () => ({ at: new Date() }), encode: () => '' }), b: shared })),
    ).toContain('holds a Date')
  })

  it('refuses what is not a zod 4 schema', () => {
    expect(verdict({ parse: () => 1 })).toContain('not a zod 4 schema')
    expect(verdict(undefined)).toContain('not a zod 4 schema')
  })

  it('defineChannels() runs it for every channel (for JavaScript callers the compiler cannot stop)', () => {
    const schemas = { ok: z.string(), bad: z.object({ at: z.date() }) } as unknown as ChannelSchemas
    expect(() => defineChannels(schemas as ChannelSchemas & CheckChannels<ChannelSchemas>)).toThrow(SchemaNotEncodableError)
  })
})

describe('encodesAsIs', () => {
  it('true for schemas whose parse can only validate', () => {
    expect(
      encodesAsIs(z.object({ id: z.uuid(), n: z.number().int(), tags: z.array(z.string()), kind: z.enum(['a', 'b']) })),
    ).toBe(true)
    expect(encodesAsIs(z.union([z.string(), z.null()]))).toBe(true)
  })

  it.each([
    ['a codec', isoDate],
    ['a default', z.object({ n: z.number().default(1) })],
    ['a catch', z.number().catch(0)],
    ['a coercion', z.object({ n: z.coerce.number() })],
    ['an overwrite check (trim)', z.object({ name: z.string().trim() })],
    ['a transform deep inside', z.array(z.object({ n: z.string().transform(Number) }))],
  ])('false with %s', (_what, schema) => {
    expect(encodesAsIs(schema)).toBe(false)
  })

  it('terminates on recursive schemas', () => {
    const node: z.ZodType = z.object({ next: z.lazy(() => node).optional() })
    expect(encodesAsIs(node)).toBe(true)
    const dated: z.ZodType = z.object({ next: z.lazy(() => dated).optional(), n: z.number().default(0) })
    expect(encodesAsIs(dated)).toBe(false)
  })
})
