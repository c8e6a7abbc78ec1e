import {
  type ProductClient,
  type ProductRecord,
  UpstreamError,
  UpstreamErrorCode,
} from '@bff/upstream-clients';
import { describe, expect, it } from 'vitest';
import { createLoaders, MAX_ISOLATION_CALLS, type Upstreams } from '../src/index.ts';

const record = (id: string): ProductRecord => ({
  id,
  sku: `SKU-${id}`,
  name: id,
  description: '',
  category: 'books',
  price: { amountMinor: 100, currency: 'USD' },
  images: [],
  inventory: 1,
});

/** A Product service that refuses any batch holding an id with a NUL, and knows ids `p-…`. */
function fakeProducts(fail?: (ids: readonly string[]) => Error | undefined) {
  const batches: string[][] = [];
  const product = {
    async getProducts(ids: readonly string[]) {
      batches.push([...ids]);
      const error = fail?.(ids);
      if (error) throw error;
      if (ids.some((id) => id.includes('\u0000')))
        throw new UpstreamError('product', UpstreamErrorCode.InvalidArgument, 'ids: no NUL');
      return ids.filter((id) => id.startsWith('p-')).map(record);
    },
  } as unknown as ProductClient;
  return { upstreams: { product } as unknown as Upstreams, batches };
}

describe('the product loader', () => {
  it('fails only the key the service refused; its neighbours and unknown ids resolve', async () => {
    const { upstreams, batches } = fakeProducts();
    const loaders = createLoaders(upstreams);
    const results = await loaders.product.loadMany(['p-0001', 'p-0002\u0000', 'p-0003', 'x-unknown']);
    expect(results[0]).toMatchObject({ id: 'p-0001' });
    expect(results[1]).toBeInstanceOf(UpstreamError);
    expect(results[1]).toMatchObject({ code: UpstreamErrorCode.InvalidArgument });
    expect(results[2]).toMatchObject({ id: 'p-0003' });
    expect(results[3]).toBeNull();
    // One batch first: splitting happens only after the service refused it.
    expect(batches[0]).toHaveLength(4);
  });

  it('finds one bad key in a full batch within the bound of extra calls', async () => {
    const { upstreams, batches } = fakeProducts();
    const loaders = createLoaders(upstreams);
    const ids = Array.from({ length: 200 }, (_, i) => `p-${String(i + 1).padStart(4, '0')}`);
    ids[137] = 'p-bad\u0000';
    const results = await loaders.product.loadMany(ids);
    expect(results.filter((r) => r instanceof Error)).toHaveLength(1);
    expect(results[137]).toBeInstanceOf(Error);
    expect(results.filter((r) => r !== null && !(r instanceof Error))).toHaveLength(199);
    expect(batches.length - 1).toBeLessThanOrEqual(MAX_ISOLATION_CALLS);
  });

  it('stops splitting at the bound: the keys left unresolved share the refusal', async () => {
    const { upstreams, batches } = fakeProducts();
    const loaders = createLoaders(upstreams);
    // Every key bad: isolating them one by one would take hundreds of calls.
    const ids = Array.from({ length: 200 }, (_, i) => `p-${i}\u0000`);
    const results = await loaders.product.loadMany(ids);
    expect(results.every((r) => r instanceof UpstreamError)).toBe(true);
    expect(batches.length - 1).toBeLessThanOrEqual(MAX_ISOLATION_CALLS);
  });

  it('fails the whole batch at once, without splitting, when the service is down', async () => {
    const { upstreams, batches } = fakeProducts(
      () => new UpstreamError('product', UpstreamErrorCode.Unavailable, 'down'),
    );
    const loaders = createLoaders(upstreams);
    const results = await loaders.product.loadMany(['p-0001', 'p-0002\u0000', 'p-0003']);
    for (const result of results) expect(result).toMatchObject({ code: UpstreamErrorCode.Unavailable });
    expect(batches).toHaveLength(1);
  });
});
