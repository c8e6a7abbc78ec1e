// The plugin's tests again, with every answer stored the way the BFF stores it: from the body
// its HTTP layer serialised (`deferStore`), not from the plugin's own serialisation.
import { describe, expect, it, vi } from 'vitest';
import { createShop, shopDefaults } from './shop.ts';

shopDefaults.deferStore = true;
await import('./plugin.test.ts');
await import('./plugin.property.test.ts');

describe('createResponseCachePlugin: deferStore', () => {
  it('stores the body the HTTP layer sends, once, and reports when it is given', async () => {
    const shop = createShop({ deferStore: true });
    let handed: ((body: string | undefined) => Promise<void>) | undefined;
    const held = createShop({
      db: shop.db,
      store: shop.store,
      clock: shop.clock,
      plugin: {
        deferStore: (_, write) => {
          handed = write;
          return true;
        },
      },
    });
    const p1 = { query: '{ product(id: "p1") { id price } }' };
    const first = await held.run(p1);
    // Nothing is stored and nothing reported until the HTTP layer hands the body over.
    expect(first.outcome).toBeUndefined();
    expect((await shop.run(p1)).outcome).toBe('miss');
    await handed?.(`{"data":{"product":{"id":"p1","price":1}},"extensions":{"x":1}}\n`);
    await handed?.('{"data":{"product":{"id":"p1","price":2}}}');
    expect(held.outcomes).toEqual(['miss']);
    // What it was handed is what is served: the data, without the extensions.
    const hit = await held.run(p1);
    expect(hit.outcome).toBe('hit');
    expect(hit.body).toEqual({ data: { product: { id: 'p1', price: 1 } } });
    await Promise.all([shop.server.stop(), held.server.stop()]);
  });

  it('reports a skip when the HTTP layer sent no body, and releases coalesced followers', async () => {
    const handed: ((body: string | undefined) => Promise<void>)[] = [];
    const shop = createShop({
      plugin: {
        coalesceWaitMs: 60_000,
        deferStore: (_, write) => {
          handed.push(write);
          return true;
        },
      },
    });
    const p1 = { query: '{ product(id: "p1") { id price } }' };
    let release: () => void = () => {};
    const paused = new Promise<void>((resolve) => {
      release = resolve;
    });
    const leader = shop.run({ ...p1, pause: () => paused });
    await vi.waitFor(() => expect(shop.db.executed('product')).toBe(1));
    const follower = shop.run(p1);
    release();
    await leader;
    await handed[0]?.(undefined);
    expect(shop.outcomes).toEqual(['skip']);
    // The follower stopped waiting and executed on its own (the leader stored nothing).
    await follower;
    expect(handed).toHaveLength(2);
    await handed[1]?.('{"data":{"product":{"id":"p1","price":1250}}}');
    expect(shop.outcomes).toEqual(['skip', 'miss']);
    expect(shop.db.executed('product')).toBe(2);
    await shop.server.stop();
  });
});
