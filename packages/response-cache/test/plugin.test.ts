import type { ApolloServerPlugin } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { waitFor } from '@bff/testkit';
import { GraphQLError } from 'graphql';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  createResponseCachePlugin,
  MemoryResponseCacheStore,
  type ResponseCachePluginOptions,
  type ResponseCacheStore,
} from '../src/index.ts';
import {
  createShop,
  deferred,
  delegatingStore,
  manualClock,
  type Shop,
  type ShopContext,
  shopContext,
  shopPluginOptions,
} from './shop.ts';

const PRODUCT = 'query Product($id: ID!) { product(id: $id) { id name price priceLabel } }';
const PRODUCTS = '{ products { id price } }';
const ME = '{ me { id name orders { id productId owner } } }';
const NOTE = 'query Note($id: ID!) { product(id: $id) { name viewerNote } }';
const SET_PRICE =
  'mutation SetPrice($id: ID!, $price: Int!) { setPrice(id: $id, price: $price) { id price } }';
const ADD_ORDER = 'mutation AddOrder($productId: ID!) { addOrder(productId: $productId) { id } }';

const p1 = { query: PRODUCT, variables: { id: 'p1' } };
const priceIn = (response: { body: { data?: unknown } }) =>
  (response.body.data as { product: { price: number } | null }).product?.price;

const servers: Shop[] = [];
/** A shop whose server is stopped after the test. */
function shopFor(...args: Parameters<typeof createShop>): Shop {
  const shop = createShop(...args);
  servers.push(shop);
  return shop;
}
afterEach(async () => {
  await Promise.all(
    servers.splice(0).map((shop) =>
      shop.server.stop().catch((error: Error) => {
        // A shop the test never ran has nothing to stop.
        if (!error.message.includes('should only be called after')) throw error;
      }),
    ),
  );
});

/** Past the default clockSkewMs: what is read now may be stored again after a write. */
const PAST_SKEW_MS = 501;

/** `promise`'s value, or `'still waiting'` after `ms` (a generous bound, not a timing assertion). */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | 'still waiting'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'still waiting'>((resolve) => {
    timer = setTimeout(() => resolve('still waiting'), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

describe('createResponseCachePlugin: hits and their headers', () => {
  it('serves the second request from the store; Age grows and max-age shrinks with the clock; past maxAge it executes again', async () => {
    const shop = shopFor();
    const first = await shop.run(p1);
    expect(first.body).toEqual({
      data: { product: { id: 'p1', name: 'Teapot', price: 1250, priceLabel: '€12.50' } },
    });
    expect(first.outcome).toBe('miss');
    expect(first.headers.get('cache-control')).toBe('public, max-age=60');
    expect(first.headers.get('vary')).toBe('accept-language');
    expect(first.headers.get('age')).toBeUndefined();

    shop.clock.advance(12_500);
    const second = await shop.run(p1);
    expect(second.outcome).toBe('hit');
    expect(second.text).toBe(first.text);
    expect(shop.db.executed('product')).toBe(1);
    expect(second.headers.get('age')).toBe('12');
    expect(second.headers.get('cache-control')).toBe('public, max-age=48');

    shop.clock.advance(47_499); // 59.999 s after it was stored: still fresh
    const third = await shop.run(p1);
    expect(third.outcome).toBe('hit');
    expect(third.headers.get('age')).toBe('59');
    expect(third.headers.get('cache-control')).toBe('public, max-age=1');

    shop.clock.advance(1);
    const expired = await shop.run(p1);
    expect(expired.outcome).toBe('miss');
    expect(expired.headers.get('age')).toBeUndefined();
    expect(expired.headers.get('cache-control')).toBe('public, max-age=60');
    expect(shop.db.executed('product')).toBe(2);
  });

  it('answers with the headers on the wire, GET and POST alike', async () => {
    // Apollo's standalone server is the HTTP layer here: the plugin serialises what it stores.
    const shop = shopFor({ deferStore: false });
    const { db, clock } = shop;
    const { url } = await startStandaloneServer(shop.server, {
      listen: { port: 0 },
      context: async ({ req }) => {
        const header = (name: string) => {
          const value = req.headers[name];
          return Array.isArray(value) ? value[0] : value;
        };
        return shopContext(header, db);
      },
    });
    const post = (query: string, variables: Record<string, unknown>, headers: Record<string, string> = {}) =>
      fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ query, variables }),
      });
    const miss = await post(PRODUCT, { id: 'p2' });
    expect(miss.status).toBe(200);
    expect(miss.headers.get('cache-control')).toBe('public, max-age=60');
    expect(miss.headers.get('vary')).toContain('accept-language');
    expect(miss.headers.get('age')).toBeNull();
    const body = await miss.text();

    clock.advance(5_000);
    const search = new URLSearchParams({ query: PRODUCT, variables: JSON.stringify({ id: 'p2' }) });
    const hit = await fetch(`${url}?${search}`, { headers: { 'apollo-require-preflight': 'true' } });
    expect(hit.headers.get('cache-control')).toBe('public, max-age=55');
    expect(hit.headers.get('age')).toBe('5');
    expect(await hit.text()).toBe(body);
    expect(db.executed('product')).toBe(1);

    const mine = await post(ME, {}, { 'x-viewer': 'ada' });
    expect(mine.headers.get('cache-control')).toBe('private, no-store');
    expect(mine.headers.get('vary')).toBe('authorization, cookie, accept-language');
    const write = await post(SET_PRICE, { id: 'p2', price: 1 });
    expect(write.headers.get('cache-control')).toBe('no-store');
    const after = await post(PRODUCT, { id: 'p2' });
    expect(((await after.json()) as { data: { product: { price: number } } }).data.product.price).toBe(1);
  });
});

describe('createResponseCachePlugin: batched HTTP requests', () => {
  it('answers a batch no-store: its operations share one set of headers', async () => {
    const shop = createShop({ allowBatchedHttpRequests: true });
    const { url } = await startStandaloneServer(shop.server, {
      listen: { port: 0 },
      context: async ({ req }) => {
        const value = (name: string) => {
          const header = req.headers[name];
          return Array.isArray(header) ? header[0] : header;
        };
        return shopContext(value, shop.db);
      },
    });
    try {
      const batch = (operations: { query: string; variables?: Record<string, unknown> }[]) =>
        fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-viewer': 'ada' },
          body: JSON.stringify(operations),
        });
      // Ada's private answer first, a public one last: the last header set must not win.
      const mixed = await batch([{ query: ME }, { query: PRODUCT, variables: { id: 'p1' } }]);
      expect(mixed.status).toBe(200);
      expect(mixed.headers.get('cache-control')).toBe('no-store');
      // Even a batch of public hits is not given a shared-cache header.
      await batch([{ query: PRODUCT, variables: { id: 'p1' } }]);
      const hits = await batch([{ query: PRODUCT, variables: { id: 'p1' } }]);
      expect(hits.headers.get('cache-control')).toBe('no-store');
      expect(hits.headers.get('age')).toBeNull();
    } finally {
      await shop.server.stop();
    }
  });
});

describe('createResponseCachePlugin: PRIVATE answers', () => {
  it("never serves one viewer's answer to another, nor to an anonymous request", async () => {
    const shop = shopFor();
    await shop.run({ query: ADD_ORDER, variables: { productId: 'p1' }, viewer: 'ada' });
    shop.clock.advance(PAST_SKEW_MS);

    const ada = await shop.run({ query: ME, viewer: 'ada' });
    expect(ada.body).toEqual({
      data: {
        me: { id: 'ada', name: 'Ada Lovelace', orders: [{ id: 'ada-1', productId: 'p1', owner: 'ada' }] },
      },
    });
    expect(ada.outcome).toBe('miss');
    expect(ada.headers.get('cache-control')).toBe('private, no-store');
    expect(ada.headers.get('vary')).toBe('authorization, cookie, accept-language');
    const adaAgain = await shop.run({ query: ME, viewer: 'ada' });
    expect(adaAgain.outcome).toBe('hit');
    expect(adaAgain.text).toBe(ada.text);
    expect(adaAgain.headers.get('cache-control')).toBe('private, no-store');

    const grace = await shop.run({ query: ME, viewer: 'grace' });
    expect(grace.outcome).toBe('miss');
    expect(grace.body).toEqual({ data: { me: { id: 'grace', name: 'Grace Hopper', orders: [] } } });
    expect(grace.text).not.toMatch(/\bada\b/);

    for (const viewer of [undefined, '', 'nobody']) {
      const anonymous = await shop.run({ query: ME, viewer });
      expect(anonymous.body).toEqual({ data: { me: null } });
      expect(anonymous.outcome).toBe('none');
      expect(anonymous.headers.get('cache-control')).toBe('no-store');
    }
    // Anonymous answers were executed each time, never stored.
    expect(shop.db.executed('me')).toBe(5);
  });

  it('makes a whole answer PRIVATE when one field is, keyed by viewer', async () => {
    const shop = shopFor();
    await shop.run({ query: ADD_ORDER, variables: { productId: 'p2' }, viewer: 'grace' });
    shop.clock.advance(PAST_SKEW_MS);
    const note = (viewer?: string) => shop.run({ query: NOTE, variables: { id: 'p2' }, viewer });
    const grace = await note('grace');
    expect(grace.body).toEqual({ data: { product: { name: 'Kettle', viewerNote: 'grace ordered 1' } } });
    expect(grace.headers.get('cache-control')).toBe('private, no-store');
    expect((await note('admin')).body).toEqual({
      data: { product: { name: 'Kettle', viewerNote: 'admin ordered 0' } },
    });
    expect((await note('grace')).outcome).toBe('hit');
    const anonymous = await note(undefined);
    expect(anonymous.body).toEqual({ data: { product: { name: 'Kettle', viewerNote: null } } });
    expect(anonymous.outcome).toBe('none');
    expect((await note(undefined)).outcome).toBe('none');
    // A new order of Grace's drops her answer: the next one shows it.
    await shop.run({ query: ADD_ORDER, variables: { productId: 'p2' }, viewer: 'grace' });
    shop.clock.advance(PAST_SKEW_MS);
    const after = await note('grace');
    expect(after.outcome).toBe('miss');
    expect(after.body).toEqual({ data: { product: { name: 'Kettle', viewerNote: 'grace ordered 2' } } });
    expect((await note('admin')).outcome).toBe('hit');
  });
});

describe('createResponseCachePlugin: what is never cached', () => {
  it('answers with an error, even a partial one', async () => {
    const shop = shopFor();
    const query = '{ a: product(id: "p1") { name } b: product(id: "broken") { name } }';
    for (let i = 0; i < 2; i++) {
      const answer = await shop.run({ query });
      expect(answer.body.data).toEqual({ a: { name: 'Teapot' }, b: null });
      expect(answer.body.errors).toHaveLength(1);
      expect(answer.outcome).toBe('skip');
      expect(answer.headers.get('cache-control')).toBe('no-store');
    }
    expect(shop.db.executed('product')).toBe(4);
    expect(shop.store.stats.stores).toBe(0);
  });

  it('an answer with a maxAge 0 field, as a whole', async () => {
    const shop = shopFor();
    for (let i = 0; i < 2; i++) {
      const answer = await shop.run({ query: '{ product(id: "p1") { name stock } products { id } }' });
      expect(answer.body.data).toEqual({
        product: { name: 'Teapot', stock: 14 },
        products: [{ id: 'p1' }, { id: 'p2' }, { id: 'p3' }],
      });
      expect(answer.outcome).toBe('none');
      expect(answer.headers.get('cache-control')).toBe('no-store');
    }
    expect(shop.db.executed()).toBe(4);
    expect(shop.store.stats).toMatchObject({ stores: 0, hits: 0, misses: 0 });
  });

  it('introspection, alone or beside cacheable fields', async () => {
    const shop = shopFor();
    for (const query of [
      '{ __schema { queryType { name } } }',
      '{ __type(name: "Product") { name } product(id: "p1") { name } }',
      '{ __typename }',
    ]) {
      for (let i = 0; i < 2; i++) {
        const answer = await shop.run({ query });
        expect(answer.body.errors).toBeUndefined();
        expect(answer.outcome).toBe('none');
        expect(answer.headers.get('cache-control')).toBe('no-store');
      }
    }
    expect(shop.db.executed('product')).toBe(2);
    expect(shop.store.stats.stores).toBe(0);
  });

  it('mutations: executed every time and answered no-store', async () => {
    const shop = shopFor();
    const write = { query: SET_PRICE, variables: { id: 'p3', price: 700 } };
    for (let i = 0; i < 2; i++) {
      const answer = await shop.run(write);
      expect(answer.body).toEqual({ data: { setPrice: { id: 'p3', price: 700 } } });
      expect(answer.outcome).toBe('invalidate');
      expect(answer.headers.get('cache-control')).toBe('no-store');
    }
    expect(shop.db.history).toHaveLength(3);
    // One that changed nothing invalidates nothing, and is still no-store.
    const failed = await shop.run({ query: SET_PRICE, variables: { id: 'nope', price: 1 } });
    expect(failed.body.errors).toHaveLength(1);
    expect(failed.outcome).toBe('none');
    expect(failed.headers.get('cache-control')).toBe('no-store');
    expect(shop.store.stats.stores).toBe(0);
  });
});

describe('createResponseCachePlugin: invalidation', () => {
  it("drops every answer holding what a mutation wrote before the mutation's own answer arrives", async () => {
    const clock = manualClock();
    const memory = new MemoryResponseCacheStore({ now: clock.now });
    // A slow store: the mutation's answer must still wait for the invalidation.
    const slow = delegatingStore(() => memory, {
      invalidate: async (tags) => {
        await new Promise((resolve) => setTimeout(resolve, 20));
        return memory.invalidate(tags);
      },
    });
    const onInvalidated = vi.fn();
    const shop = shopFor({ clock, store: slow, plugin: { onInvalidated } });
    const reads = [
      p1,
      { ...p1, locale: 'fr' },
      { query: PRODUCTS },
      { query: PRODUCT, variables: { id: 'p2' } },
    ];
    for (const read of reads) expect((await shop.run(read)).outcome).toBe('miss');
    clock.advance(1_000);
    for (const read of reads) expect((await shop.run(read)).outcome).toBe('hit');

    const write = await shop.run({ query: SET_PRICE, variables: { id: 'p1', price: 999 } });
    expect(write.outcome).toBe('invalidate');
    expect(onInvalidated).toHaveBeenCalledWith(3);
    clock.advance(PAST_SKEW_MS);

    const [en, fr, all, other] = await Promise.all(reads.map((read) => shop.run(read)));
    expect(en?.outcome).toBe('miss');
    expect(en?.body.data).toEqual({ product: { id: 'p1', name: 'Teapot', price: 999, priceLabel: '€9.99' } });
    expect(fr?.body.data).toEqual({
      product: { id: 'p1', name: 'Teapot', price: 999, priceLabel: '9,99 €' },
    });
    expect(all?.body.data).toEqual({
      products: [
        { id: 'p1', price: 999 },
        { id: 'p2', price: 3999 },
        { id: 'p3', price: 500 },
      ],
    });
    expect(all?.outcome).toBe('miss');
    expect(other?.outcome).toBe('hit'); // p2 was not written
  });

  it('does not store an answer whose data was read before a mutation that changed it finished', async () => {
    const shop = shopFor();
    const reached = deferred();
    const release = deferred();
    const slow = shop.run({
      ...p1,
      pause: async () => {
        reached.resolve();
        await release.promise;
      },
    });
    await reached.promise; // it has read the price
    await shop.run({ query: SET_PRICE, variables: { id: 'p1', price: 2000 } });
    release.resolve();
    const old = await slow;
    expect(priceIn(old)).toBe(1250); // what it read, answered once …
    expect(old.outcome).toBe('stale'); // … but not stored
    shop.clock.advance(PAST_SKEW_MS);
    const next = await shop.run(p1);
    expect(next.outcome).toBe('miss');
    expect(priceIn(next)).toBe(2000);
    expect((await shop.run(p1)).outcome).toBe('hit');
    expect(shop.store.stats.stale).toBe(1);
  });

  it('does not store an answer one of whose tags the store invalidated while it ran (an event from elsewhere)', async () => {
    const shop = shopFor();
    const reached = deferred();
    const release = deferred();
    const slow = shop.run({
      query: PRODUCTS,
      pause: async () => {
        reached.resolve();
        await release.promise;
      },
    });
    await reached.promise;
    shop.clock.advance(5_000);
    shop.db.setPrice('p3', 1); // another service changed it, and its event arrives:
    await shop.store.invalidate(['Product:p3']);
    shop.clock.advance(5_000);
    release.resolve();
    expect((await slow).outcome).toBe('stale');
    shop.clock.advance(PAST_SKEW_MS);
    const next = await shop.run({ query: PRODUCTS });
    expect(next.outcome).toBe('miss');
    expect(next.text).toContain('{"id":"p3","price":1}');
  });

  it('stores an answer when only unrelated tags changed while it ran', async () => {
    const shop = shopFor();
    const reached = deferred();
    const release = deferred();
    const slow = shop.run({
      ...p1,
      pause: async () => {
        reached.resolve();
        await release.promise;
      },
    });
    await reached.promise;
    await shop.run({ query: SET_PRICE, variables: { id: 'p2', price: 1 } });
    await shop.store.invalidate(['Orders:ada']);
    release.resolve();
    expect((await slow).outcome).toBe('miss');
    expect((await shop.run(p1)).outcome).toBe('hit');
  });

  it('counts an invalidation up to clockSkewMs before the request started as after it', async () => {
    const shop = shopFor({ plugin: { clockSkewMs: 500 } });
    await shop.store.invalidate(['Product:p1']);
    shop.clock.advance(400);
    expect((await shop.run(p1)).outcome).toBe('stale');
    shop.clock.advance(101);
    expect((await shop.run(p1)).outcome).toBe('miss');
    expect((await shop.run(p1)).outcome).toBe('hit');

    const exact = shopFor({ plugin: { clockSkewMs: 0 } });
    await exact.store.invalidate(['Product:p1']);
    expect((await exact.run(p1)).outcome).toBe('stale'); // the same millisecond counts as after
    exact.clock.advance(1);
    expect((await exact.run(p1)).outcome).toBe('miss');
  });
});

describe('createResponseCachePlugin: coalescing', () => {
  it('runs 20 concurrent identical PUBLIC requests once, and answers all of them the same', async () => {
    const shop = shopFor({ plugin: { coalesceWaitMs: 30_000 } });
    const release = deferred();
    const requests = Array.from({ length: 20 }, () => shop.run({ ...p1, pause: () => release.promise }));
    await waitFor('every request to miss the store', () => shop.store.stats.misses === 20);
    release.resolve();
    const answers = await Promise.all(requests);
    expect(shop.db.executed('product')).toBe(1);
    expect(new Set(answers.map((answer) => answer.text))).toEqual(new Set([answers[0]?.text]));
    expect(priceIn(answers[0] as { body: { data?: unknown } })).toBe(1250);
    const outcomes = answers.map((answer) => answer.outcome);
    expect(outcomes.filter((outcome) => outcome === 'miss')).toHaveLength(1);
    expect(outcomes.filter((outcome) => outcome === 'coalesced')).toHaveLength(19);
    for (const answer of answers) expect(answer.headers.get('cache-control')).toBe('public, max-age=60');
    expect((await shop.run(p1)).outcome).toBe('hit');
  });

  it("lets followers execute themselves when the leader's answer has errors", async () => {
    const shop = shopFor({ plugin: { coalesceWaitMs: 30_000 } });
    const reached = deferred();
    const release = deferred();
    const leader = shop.run({
      ...p1,
      pause: async () => {
        reached.resolve();
        await release.promise;
        throw new GraphQLError('the leader had bad luck');
      },
    });
    await reached.promise;
    const followers = Array.from({ length: 5 }, () => shop.run(p1));
    await waitFor('the followers to miss the store', () => shop.store.stats.misses === 6);
    release.resolve();
    const led = await leader;
    expect(led.body.errors?.[0]?.message).toBe('the leader had bad luck');
    expect(led.outcome).toBe('skip');
    for (const follower of await Promise.all(followers)) {
      expect(follower.body).toEqual({
        data: { product: { id: 'p1', name: 'Teapot', price: 1250, priceLabel: '€12.50' } },
      });
      expect(follower.outcome).toBe('miss');
    }
    expect(shop.db.executed('product')).toBe(6);
  });

  it('lets a follower wait no longer than coalesceWaitMs for a leader that does not finish', async () => {
    const shop = shopFor({ plugin: { coalesceWaitMs: 50 } });
    const reached = deferred();
    const release = deferred();
    let leaderDone = false;
    const leader = shop
      .run({
        ...p1,
        pause: async () => {
          reached.resolve();
          await release.promise;
        },
      })
      .finally(() => {
        leaderDone = true;
      });
    await reached.promise;
    const followers = await Promise.all(Array.from({ length: 3 }, () => shop.run(p1)));
    expect(leaderDone).toBe(false);
    for (const follower of followers) {
      expect(priceIn(follower)).toBe(1250);
      expect(follower.outcome).toBe('miss');
    }
    release.resolve();
    expect(priceIn(await leader)).toBe(1250);
  });

  it('never coalesces PRIVATE requests, even for one viewer', async () => {
    const shop = shopFor({ plugin: { coalesceWaitMs: 30_000 } });
    const release = deferred();
    const requests = Array.from({ length: 5 }, () =>
      shop.run({ query: ME, viewer: 'ada', pause: () => release.promise }),
    );
    await waitFor('every request to execute', () => shop.db.executed('me') === 5);
    release.resolve();
    for (const answer of await Promise.all(requests))
      expect(answer.body.data).toMatchObject({ me: { id: 'ada' } });
  });

  it('does not hand a follower that started after a mutation answered what its leader read before it', async () => {
    const clock = manualClock();
    const memory = new MemoryResponseCacheStore({ now: clock.now });
    const applied = deferred();
    const reply = deferred();
    // The leader's write lands in the store, but its reply is slow to come back (a Redis round trip).
    const store = delegatingStore(() => memory, {
      set: async (...args) => {
        const outcome = await memory.set(...args);
        applied.resolve();
        await reply.promise;
        return outcome;
      },
    });
    const shop = shopFor({ clock, store, plugin: { coalesceWaitMs: 30_000 } });
    const leader = shop.run(p1);
    await applied.promise;
    const write = await shop.run({ query: SET_PRICE, variables: { id: 'p1', price: 2000 } });
    expect(write.body.errors).toBeUndefined();
    // The writer's client reads right after its answer: same query, same replica.
    const follower = shop.run(p1);
    await waitFor('the follower to miss the store', () => memory.stats.misses === 2);
    reply.resolve();
    expect(priceIn(await leader)).toBe(1250);
    expect(priceIn(await follower)).toBe(2000);
  });

  it("does not leave followers waiting on a leader whose request failed outside the plugin's hooks", async () => {
    let explode = true;
    const tracing: ApolloServerPlugin<ShopContext> = {
      async requestDidStart() {
        return {
          async executionDidStart() {
            if (!explode) return;
            explode = false;
            throw new Error('tracing backend unavailable');
          },
        };
      },
    };
    const shop = shopFor({ plugin: { coalesceWaitMs: 60_000 }, plugins: [tracing] });
    await expect(shop.run(p1)).rejects.toThrow('Internal server error');
    const next = await within(shop.run(p1), 10_000);
    expect(next).not.toBe('still waiting');
    expect(next).toMatchObject({ outcome: 'miss' });
  });
});

describe('createResponseCachePlugin: admit', () => {
  const refusal = new GraphQLError('quota spent', { extensions: { code: 'RATE_LIMITED' } });
  const admitOf = () =>
    vi.fn<NonNullable<ResponseCachePluginOptions<ShopContext>['admit']>>(async (requestContext) =>
      requestContext.request.http?.headers.get('x-quota') === 'spent' ? [refusal] : [],
    );

  it('answers a refused hit with data: null and the errors, never the cached data', async () => {
    const admit = admitOf();
    const shop = shopFor({ plugin: { admit } });
    expect((await shop.run(p1)).outcome).toBe('miss');
    expect(admit).not.toHaveBeenCalled(); // an execution enforces its limits itself
    const refused = await shop.run({ ...p1, headers: { 'x-quota': 'spent' } });
    expect(refused.body).toEqual({
      data: null,
      errors: [{ message: 'quota spent', extensions: { code: 'RATE_LIMITED' } }],
    });
    expect(refused.text).not.toContain('Teapot');
    expect(refused.headers.get('cache-control')).toBe('no-store');
    expect(refused.outcome).not.toBe('hit');
    expect(admit).toHaveBeenCalledTimes(1);
    expect((await shop.run(p1)).outcome).toBe('hit');
    expect(shop.db.executed('product')).toBe(1);
  });

  it('refuses a coalesced answer the same way', async () => {
    const admit = admitOf();
    const shop = shopFor({ plugin: { admit, coalesceWaitMs: 30_000 } });
    const reached = deferred();
    const release = deferred();
    const leader = shop.run({
      ...p1,
      pause: async () => {
        reached.resolve();
        await release.promise;
      },
    });
    await reached.promise;
    const refused = shop.run({ ...p1, headers: { 'x-quota': 'spent' } });
    const admitted = shop.run(p1);
    await waitFor('every request to miss the store', () => shop.store.stats.misses === 3);
    release.resolve();
    expect((await leader).outcome).toBe('miss');
    expect((await refused).body).toEqual({
      data: null,
      errors: [{ message: 'quota spent', extensions: { code: 'RATE_LIMITED' } }],
    });
    expect((await admitted).outcome).toBe('coalesced');
    expect(priceIn(await admitted)).toBe(1250);
    expect(shop.db.executed('product')).toBe(1);
  });
});

describe('createResponseCachePlugin: a store that fails', () => {
  const failing = (): ResponseCacheStore =>
    delegatingStore(() => new MemoryResponseCacheStore(), {
      get: async () => {
        throw new Error('store unreachable');
      },
      set: async () => {
        throw new Error('store unreachable');
      },
      invalidate: async () => {
        throw new Error('store unreachable');
      },
    });

  it('never fails a request: answers are those of an execution', async () => {
    const shop = shopFor({ store: failing() });
    const reference = shopFor({ cache: false });
    const requests = [
      p1,
      p1,
      { query: PRODUCTS },
      { query: ME, viewer: 'ada' },
      { query: NOTE, variables: { id: 'p1' }, viewer: 'grace' },
      { query: ADD_ORDER, variables: { productId: 'p1' }, viewer: 'ada' },
      { query: SET_PRICE, variables: { id: 'p1', price: 5 } },
      { query: ME, viewer: 'ada' },
      p1,
    ];
    for (const request of requests) {
      const answer = await shop.run(request);
      const expected = await reference.run(request);
      expect(answer.text).toBe(expected.text);
      expect(answer.outcome).toMatch(/^(skip|miss|none|invalidate)$/);
      expect(answer.status ?? 200).toBe(200);
    }
    expect(shop.db.executed('product')).toBe(4);
  });

  it('executes when the store answers garbage, and reports a refused write as skip', async () => {
    const garbage = [
      'not json',
      '{"data":1}',
      'null',
      JSON.stringify({ data: { product: null }, at: Date.now(), maxAge: 60 }),
      '0:60:{"data":{"product":null}}',
      `${Date.now()}:60:{"data":[]}`,
      `${Date.now()}:sixty:{"data":{"product":null}}`,
      `${Date.now()}:60:{"data":{"product":`,
    ];
    let next = 0;
    const store = delegatingStore(() => new MemoryResponseCacheStore(), {
      get: async () => garbage[next++ % garbage.length],
      set: async () => 'skipped',
    });
    const shop = shopFor({ store });
    for (let i = 0; i < garbage.length; i++) {
      const answer = await shop.run(p1);
      expect(priceIn(answer)).toBe(1250);
      expect(answer.outcome).toBe('skip');
    }
    expect(shop.db.executed('product')).toBe(garbage.length);
  });
});

describe('createResponseCachePlugin: keys', () => {
  const PICK =
    'query Pick($id: ID!, $withPrice: Boolean!) { product(id: $id) { id name price @include(if: $withPrice) } }';

  it('shares an entry between variables in any key order, and between viewers for PUBLIC answers', async () => {
    const shop = shopFor();
    expect((await shop.run({ query: PICK, variables: { id: 'p1', withPrice: true } })).outcome).toBe('miss');
    expect((await shop.run({ query: PICK, variables: { withPrice: true, id: 'p1' } })).outcome).toBe('hit');
    expect(
      (await shop.run({ query: PICK, variables: { withPrice: true, id: 'p1' }, viewer: 'ada' })).outcome,
    ).toBe('hit');
  });

  it('keeps apart different variables, locales, operations and app versions', async () => {
    const shop = shopFor();
    const base = { query: PICK, variables: { id: 'p1', withPrice: true } };
    const variants = [
      base,
      { ...base, variables: { id: 'p2', withPrice: true } },
      { ...base, variables: { id: 'p1', withPrice: false } },
      { ...base, locale: 'fr' },
      { ...base, headers: { 'x-app-version': '1.0' } },
      { ...base, headers: { 'x-app-version': '2.0' } },
    ];
    for (const variant of variants) expect((await shop.run(variant)).outcome).toBe('miss');
    const answers = [];
    for (const variant of variants) {
      const answer = await shop.run(variant);
      expect(answer.outcome).toBe('hit');
      answers.push(answer.body);
    }
    expect(answers[1]).toEqual({ data: { product: { id: 'p2', name: 'Kettle', price: 3999 } } });
    expect(answers[2]).toEqual({ data: { product: { id: 'p1', name: 'Teapot' } } });

    const two = 'query A { product(id: "p1") { name } } query B { product(id: "p1") { name } }';
    expect((await shop.run({ query: two, operationName: 'A' })).outcome).toBe('miss');
    expect((await shop.run({ query: two, operationName: 'A' })).outcome).toBe('hit');
    expect((await shop.run({ query: two, operationName: 'B' })).outcome).toBe('miss');
  });

  it('keeps apart apps sharing one store', async () => {
    const clock = manualClock();
    const store = new MemoryResponseCacheStore({ now: clock.now });
    const web = shopFor({ store, clock });
    const ios = shopFor({ store, clock, plugin: { app: 'ios' } });
    expect((await web.run(p1)).outcome).toBe('miss');
    expect((await ios.run(p1)).outcome).toBe('miss');
    expect((await ios.run(p1)).outcome).toBe('hit');
  });
});

describe('createResponseCachePlugin: options', () => {
  const base = (): ResponseCachePluginOptions<ShopContext> =>
    shopPluginOptions(new MemoryResponseCacheStore(), manualClock(), []);

  it.each([
    ['clockSkewMs', -1],
    ['clockSkewMs', 1.5],
    ['clockSkewMs', Number.NaN],
    ['clockSkewMs', 60_001],
    ['clockSkewMs', Number.POSITIVE_INFINITY],
    ['coalesceWaitMs', -5],
    ['coalesceWaitMs', 0.25],
    ['coalesceWaitMs', 1e9],
    ['coalesceWaitMs', '100'],
  ])('refuses %s = %s with a TypeError naming it', (name, value) => {
    expect(() => createResponseCachePlugin({ ...base(), [name]: value })).toThrow(TypeError);
    expect(() => createResponseCachePlugin({ ...base(), [name]: value })).toThrow(
      `${name} must be a whole number of ms from 0 to 60000, received ${String(value)}`,
    );
  });

  it.each([[''], [undefined], [42]])('refuses app = %j', (app) => {
    expect(() => createResponseCachePlugin({ ...base(), app: app as string })).toThrow(TypeError);
    expect(() => createResponseCachePlugin({ ...base(), app: app as string })).toThrow(
      `app must be a non-empty string, received ${JSON.stringify(app)}`,
    );
  });

  it('accepts the bounds', () => {
    for (const value of [0, 60_000]) {
      expect(() =>
        createResponseCachePlugin({ ...base(), clockSkewMs: value, coalesceWaitMs: value }),
      ).not.toThrow();
    }
  });
});
