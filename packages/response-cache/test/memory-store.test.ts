import { describe, expect, it } from 'vitest';
import { INVALIDATION_MEMORY_MS, MemoryResponseCacheStore } from '../src/index.ts';

const clock = () => {
  let now = 1_000_000;
  return { now: () => now, advance: (ms: number) => (now += ms) };
};

describe('MemoryResponseCacheStore', () => {
  it('refuses a write whose data was read before one of its tags was invalidated', async () => {
    const time = clock();
    const store = new MemoryResponseCacheStore({ now: time.now });
    const readAt = time.now();
    time.advance(10);
    await store.invalidate(['Product:p-1']); // the price changed while the request ran
    time.advance(10);
    expect(
      await store.set('page', 'old price', 60, ['Product:p-1', 'Product:p-2'], { unchangedSince: readAt }),
    ).toBe('stale');
    expect(await store.get('page')).toBeUndefined();
    // An invalidation at the very instant the data was read counts as after it.
    expect(await store.set('page', 'maybe old', 60, ['Product:p-1'], { unchangedSince: readAt + 10 })).toBe(
      'stale',
    );
    // Data read after the invalidation, or about other tags, is stored.
    expect(await store.set('page', 'new price', 60, ['Product:p-1'], { unchangedSince: readAt + 11 })).toBe(
      'stored',
    );
    expect(await store.set('other', 'x', 60, ['Product:p-3'], { unchangedSince: readAt })).toBe('stored');
    expect(await store.get('page')).toBe('new price');
    // Without unchangedSince nothing is checked (the caller vouches for its data).
    expect(await store.set('page2', 'y', 60, ['Product:p-1'])).toBe('stored');
    expect(store.stats).toMatchObject({ stale: 2, stores: 3 });
  });

  it('forgets invalidation times after INVALIDATION_MEMORY_MS, and refuses data older than that', async () => {
    const time = clock();
    const store = new MemoryResponseCacheStore({ now: time.now });
    for (let i = 0; i < 1_000; i++) await store.invalidate([`Product:p-${i}`]);
    time.advance(INVALIDATION_MEMORY_MS + 1);
    await store.invalidate(['Product:p-new']);
    // What was remembered of the 1,000 old tags is gone (the map does not grow without bound) …
    expect(await store.set('a', 'v', 60, ['Product:p-1'], { unchangedSince: time.now() - 5 })).toBe('stored');
    // … and data read before the remembered window cannot be vouched for.
    expect(
      await store.set('b', 'v', 60, ['Product:p-1'], {
        unchangedSince: time.now() - INVALIDATION_MEMORY_MS - 1,
      }),
    ).toBe('stale');
    await expect(store.set('c', 'v', 60, [], { unchangedSince: Number.NaN })).rejects.toThrow(
      /unchangedSince/,
    );
  });

  it('clear() drops every entry and its tags', async () => {
    const store = new MemoryResponseCacheStore();
    await store.set('a', '1', 60, ['T:1']);
    await store.set('b', '2', 60, ['T:2']);
    expect(await store.clear()).toBe(2);
    expect(await store.get('a')).toBeUndefined();
    expect(await store.invalidate(['T:1', 'T:2'])).toBe(0);
    expect(store.bytes).toBe(0);
  });

  it('serves until the TTL passes, then never again', async () => {
    const time = clock();
    const store = new MemoryResponseCacheStore({ now: time.now });
    await store.set('k', 'v', 60, []);
    time.advance(59_999);
    expect(await store.get('k')).toBe('v');
    time.advance(1);
    expect(await store.get('k')).toBeUndefined();
    expect(store.size).toBe(0);
    expect(store.stats).toMatchObject({ hits: 1, misses: 1, stores: 1 });
  });

  it('evicts the least recently used entries to stay within maxBytes', async () => {
    // Each entry: key (2 bytes) + value (8 bytes) + no tags = 10 bytes.
    const store = new MemoryResponseCacheStore({ maxBytes: 30 });
    await store.set('k1', 'aaaaaaaa', 60, []);
    await store.set('k2', 'bbbbbbbb', 60, []);
    await store.set('k3', 'cccccccc', 60, []);
    expect(await store.get('k1')).toBe('aaaaaaaa'); // k1 is now the most recent
    await store.set('k4', 'dddddddd', 60, []);
    expect(await store.get('k2')).toBeUndefined();
    expect(await store.get('k1')).toBe('aaaaaaaa');
    expect(await store.get('k3')).toBe('cccccccc');
    expect(await store.get('k4')).toBe('dddddddd');
    expect(store.bytes).toBe(30);
    // Multi-byte characters count as bytes, not UTF-16 units: 2 + 3×4 = 14 bytes.
    await store.set('k5', '😀😀😀', 60, []);
    expect(store.bytes).toBeLessThanOrEqual(30);
    expect(await store.get('k5')).toBe('😀😀😀');
    // An entry bigger than the whole store is not stored, and evicts nothing.
    const before = store.size;
    await store.set('big', 'x'.repeat(100), 60, []);
    expect(await store.get('big')).toBeUndefined();
    expect(store.size).toBe(before);
  });

  it('invalidates by tag, every entry carrying it, and counts them', async () => {
    const store = new MemoryResponseCacheStore();
    await store.set('page1', '1', 60, ['Product:p-1', 'Product:p-2']);
    await store.set('page2', '2', 60, ['Product:p-2']);
    await store.set('page3', '3', 60, ['Product:p-3']);
    expect(await store.invalidate(['Product:p-2', 'Product:p-9'])).toBe(2);
    expect(await store.get('page1')).toBeUndefined();
    expect(await store.get('page2')).toBeUndefined();
    expect(await store.get('page3')).toBe('3');
    expect(await store.invalidate(['Product:p-1'])).toBe(0); // page1 left every tag's index
    expect(store.stats.invalidations).toBe(2);
  });

  it('drops an evicted or replaced entry from its tags, so the index never holds dead keys', async () => {
    const store = new MemoryResponseCacheStore({ maxBytes: 40 });
    await store.set('a', 'x'.repeat(20), 60, ['T:1']);
    await store.set('b', 'y'.repeat(20), 60, ['T:2']); // evicts a
    const index = (store as unknown as { keysByTag: Map<string, Set<string>> }).keysByTag;
    expect([...index.keys()]).toEqual(['T:2']);
    await store.set('b', 'z', 60, ['T:3']); // replaced under another tag
    expect([...index.keys()]).toEqual(['T:3']);
    expect(await store.invalidate(['T:2'])).toBe(0);
    expect(await store.get('b')).toBe('z');
  });

  it('does not serve an expired entry after an invalidation elsewhere, nor count it dropped', async () => {
    const time = clock();
    const store = new MemoryResponseCacheStore({ now: time.now });
    await store.set('short', 's', 1, ['T']);
    await store.set('long', 'l', 100, ['T']);
    time.advance(2_000);
    expect(await store.get('short')).toBeUndefined();
    expect(await store.invalidate(['T'])).toBe(1);
  });

  it('rejects bad options and arguments, naming them', async () => {
    expect(() => new MemoryResponseCacheStore({ maxBytes: 0 })).toThrow(/maxBytes.*received 0/);
    expect(() => new MemoryResponseCacheStore({ maxBytes: 1.5 })).toThrow(/maxBytes.*received 1.5/);
    const store = new MemoryResponseCacheStore();
    await expect(store.set('k', 'v', 0, [])).rejects.toThrow(
      'MemoryResponseCacheStore.set: ttlSeconds must be a positive number, received 0',
    );
    await expect(store.set('k', 'v', 60, [''])).rejects.toThrow(
      'MemoryResponseCacheStore.set: each tag must be a non-empty string, received ""',
    );
    await expect(store.set('', 'v', 60, [])).rejects.toThrow(
      'MemoryResponseCacheStore.set: key must be a non-empty string, received ""',
    );
    await expect(store.set('k', 1 as never, 60, [])).rejects.toThrow(
      'MemoryResponseCacheStore.set: value must be a string, received number',
    );
    await expect(store.get('')).rejects.toThrow(/key.*received ""/);
  });
});
