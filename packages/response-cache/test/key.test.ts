import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalVariables, responseCacheKey } from '../src/index.ts';

const base = {
  app: 'ios',
  operationHash: 'abc123',
  operationName: 'Products',
  locale: 'en-GB',
  scope: 'PUBLIC',
} as const;

/** The same JSON value with every object's keys in a shuffled order. */
const shuffled = (value: unknown, seed: number): unknown => {
  if (Array.isArray(value)) return value.map((v, i) => shuffled(v, seed + i));
  if (value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value);
  entries.sort(
    (a, b) => ((a[0].length * 31 + seed) % 7) - ((b[0].length * 31 + seed) % 7) || (seed % 2 ? 1 : -1),
  );
  const out: Record<string, unknown> = Object.create(null);
  for (const [k, v] of entries) out[k] = shuffled(v, seed + 1);
  return out;
};

const variablesArb = fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 3 }), {
  maxKeys: 5,
});
const plain = (value: unknown) => JSON.parse(JSON.stringify(value));

describe('responseCacheKey', () => {
  it('is equal exactly when the canonical variables are equal', () => {
    fc.assert(
      fc.property(variablesArb, variablesArb, fc.integer(), (a, b, seed) => {
        const keyA = responseCacheKey({ ...base, variables: a });
        expect(responseCacheKey({ ...base, variables: shuffled(a, seed) as Record<string, unknown> })).toBe(
          keyA,
        );
        const same = isDeepStrictEqual(plain(a), plain(b));
        expect(responseCacheKey({ ...base, variables: b }) === keyA).toBe(same);
        expect(canonicalVariables(a) === canonicalVariables(b)).toBe(same);
      }),
      { numRuns: 500 },
    );
  });

  it('is short and fixed-length whatever the client sends', () => {
    const key = responseCacheKey({
      ...base,
      variables: { text: 'x'.repeat(100_000), '\n:"': [1, { a: null }] },
    });
    expect(key).toMatch(/^v2:PUBLIC:[A-Za-z0-9_-]{43}$/);
  });

  it('tells apart every part, with no ambiguity from concatenation', () => {
    const keys = new Set([
      responseCacheKey(base),
      responseCacheKey({ ...base, app: 'web' }),
      responseCacheKey({ ...base, operationHash: 'abc124' }),
      responseCacheKey({ ...base, operationName: null }),
      responseCacheKey({ ...base, locale: 'fr-FR' }),
      responseCacheKey({ ...base, appVersion: '5.1.0' }),
      responseCacheKey({ ...base, app: 'io', operationHash: 'sabc123' }),
      responseCacheKey({ ...base, variables: { a: null } }),
      // A member named __proto__, as JSON.parse makes it, is a member like any other.
      responseCacheKey({ ...base, variables: JSON.parse('{"__proto__": 1}') }),
    ]);
    expect(keys.size).toBe(9);
  });

  it('keys a PRIVATE response by viewer, and a PUBLIC one never', () => {
    const ada = responseCacheKey({ ...base, scope: 'PRIVATE', viewerId: 'u-ada' });
    const grace = responseCacheKey({ ...base, scope: 'PRIVATE', viewerId: 'u-grace' });
    expect(ada).toMatch(/^v2:PRIVATE:/);
    expect(ada).not.toBe(grace);
    expect(responseCacheKey({ ...base, scope: 'PRIVATE' })).toBeUndefined(); // no viewer: do not cache
    expect(responseCacheKey({ ...base, viewerId: 'u-ada' })).toBe(responseCacheKey(base));
    expect(responseCacheKey({ ...base, viewerId: 'u-ada' })).not.toBe(ada);
  });

  it('rejects what it cannot key, naming it', () => {
    expect(() => responseCacheKey({ ...base, app: '' })).toThrow(/app.*received ""/);
    expect(() => responseCacheKey({ ...base, scope: 'SHARED' as never })).toThrow(/scope.*"SHARED"/);
    expect(() => responseCacheKey({ ...base, variables: [] as never })).toThrow(/variables.*\[\]/);
    expect(() => responseCacheKey({ ...base, variables: { n: 1n } })).toThrow(/BigInt/);
  });
});
