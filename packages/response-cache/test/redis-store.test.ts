import { randomUUID } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { describe, expect, it, type TestContext } from 'vitest';
import { INVALIDATION_MEMORY_MS, RedisResponseCacheStore } from '../src/index.ts';

/** REDIS_URL, or a skip with the reason printed (a failure under CI, where Redis must be there). */
function redisUrl(context: TestContext): string | undefined {
  const url = process.env.REDIS_URL;
  if (!url) {
    if (process.env.CI === 'true') throw new Error('REDIS_URL must be set under CI');
    console.info('skipped: REDIS_URL is not set');
    context.skip();
  }
  return url;
}

const listen = (server: Server) =>
  new Promise<number>((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
  );
const closeServer = (server: Server) => new Promise<void>((resolve) => server.close(() => resolve()));

/** A port nothing listens on: one the OS just gave us, closed again. */
async function closedPort(): Promise<number> {
  const server = createServer();
  const port = await listen(server);
  await closeServer(server);
  return port;
}

/** Whether `promise` settles within `ms` (a loose bound: it asserts "did not hang", not speed). */
const settlesWithin = <T>(promise: Promise<T>, ms: number) =>
  Promise.race([promise.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), ms).unref())]);

describe('RedisResponseCacheStore against a real Redis', () => {
  it('refuses, in every replica, a write whose data was read before one of its tags was invalidated', async (context) => {
    const url = redisUrl(context) as string;
    const prefix = `test:rc:${randomUUID()}:`;
    const a = new RedisResponseCacheStore({ url, prefix, timeoutMs: 2_000 });
    const b = new RedisResponseCacheStore({ url, prefix, timeoutMs: 2_000 });
    try {
      expect(await a.ready()).toBe(true);
      expect(await b.ready()).toBe(true);
      const readAt = Date.now();
      await new Promise((resolve) => setTimeout(resolve, 5));
      await b.invalidate(['Product:p-1']); // another replica heard of the change
      expect(await a.set('page', 'old', 60, ['Product:p-2', 'Product:p-1'], { unchangedSince: readAt })).toBe(
        'stale',
      );
      expect(await b.get('page')).toBeUndefined();
      await new Promise((resolve) => setTimeout(resolve, 5));
      expect(await a.set('page', 'new', 60, ['Product:p-1'], { unchangedSince: Date.now() })).toBe('stored');
      expect(await a.set('other', 'x', 60, ['Product:p-9'], { unchangedSince: readAt })).toBe('stored');
      expect(await b.get('page')).toBe('new');
      expect(
        await a.set('older', 'x', 60, ['Product:p-9'], { unchangedSince: Date.now() - 10 * 60_000 }),
      ).toBe('stale');
      expect(a.stats).toMatchObject({ stale: 2, stores: 2, failures: 0 });
      // The invalidation time is kept for a bounded while, never forever.
      const raw = new Redis(url);
      const ttl = await raw.pttl(`${prefix}i:Product:p-1`);
      raw.disconnect();
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(INVALIDATION_MEMORY_MS);
    } finally {
      const raw = new Redis(url);
      const keys = await raw.keys(`${prefix}*`);
      if (keys.length) await raw.del(...keys);
      raw.disconnect();
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('stores, serves, and invalidates by tag across stores sharing a prefix', async (context) => {
    const url = redisUrl(context) as string;
    const prefix = `test:rc:${randomUUID()}:`;
    const a = new RedisResponseCacheStore({ url, prefix, timeoutMs: 2_000 });
    const b = new RedisResponseCacheStore({ url, prefix, timeoutMs: 2_000 });
    const other = new RedisResponseCacheStore({ url, prefix: `${prefix}other:`, timeoutMs: 2_000 });
    try {
      expect(await a.ready()).toBe(true);
      expect(await b.ready()).toBe(true);
      expect(await other.ready()).toBe(true);
      await a.set('page1', '{"data":1}', 60, ['Product:p-1', 'Product:p-2']);
      await a.set('page2', '{"data":2}', 60, ['Product:p-2']);
      await a.set('page3', '{"data":3}', 60, ['Product:p-3']);
      await other.set('page1', 'other deployment', 60, ['Product:p-1']);
      expect(await b.get('page1')).toBe('{"data":1}'); // another replica sees it
      expect(await b.get('nope')).toBeUndefined();
      expect(await b.invalidate(['Product:p-2'])).toBe(2);
      expect(await a.get('page1')).toBeUndefined();
      expect(await a.get('page2')).toBeUndefined();
      expect(await a.get('page3')).toBe('{"data":3}');
      expect(await other.get('page1')).toBe('other deployment'); // prefixes keep apart
      // Written after the invalidation: not dropped by it.
      await a.set('page1', '{"data":"new"}', 60, ['Product:p-1']);
      expect(await b.get('page1')).toBe('{"data":"new"}');
      expect(a.stats).toMatchObject({ stores: 4, failures: 0, misses: 2, hits: 1 });
      expect(b.stats).toMatchObject({ hits: 2, misses: 1, invalidations: 2, failures: 0 });
    } finally {
      const raw = new Redis(url);
      const keys = await raw.keys(`${prefix}*`);
      if (keys.length) await raw.del(...keys);
      raw.disconnect();
      await Promise.all([a.close(), b.close(), other.close()]);
    }
  });

  it('gives entries their TTL, and tag sets at least their longest entry TTL', async (context) => {
    const url = redisUrl(context) as string;
    const prefix = `test:rc:${randomUUID()}:`;
    const store = new RedisResponseCacheStore({ url, prefix, timeoutMs: 2_000 });
    const raw = new Redis(url);
    try {
      await store.ready();
      await store.set('long', 'l', 600, ['T']);
      await store.set('short', 's', 30, ['T']);
      const entryTtl = await raw.pttl(`${prefix}e:short`);
      expect(entryTtl).toBeGreaterThan(0);
      expect(entryTtl).toBeLessThanOrEqual(30_000);
      // The short entry did not shorten the set below the long one's TTL.
      expect(await raw.pttl(`${prefix}t:T`)).toBeGreaterThan(await raw.pttl(`${prefix}e:short`));
      expect(await raw.pttl(`${prefix}t:T`)).toBeGreaterThanOrEqual(
        (await raw.pttl(`${prefix}e:long`)) - 1_000,
      );
      expect(await raw.smembers(`${prefix}t:T`)).toEqual(
        expect.arrayContaining([`${prefix}e:long`, `${prefix}e:short`]),
      );
    } finally {
      const keys = await raw.keys(`${prefix}*`);
      if (keys.length) await raw.del(...keys);
      raw.disconnect();
      await store.close();
    }
  });

  it('trims keys of gone entries from a tag set as it is written to', async (context) => {
    const url = redisUrl(context) as string;
    const prefix = `test:rc:${randomUUID()}:`;
    const store = new RedisResponseCacheStore({ url, prefix, timeoutMs: 2_000 });
    const raw = new Redis(url);
    try {
      await store.ready();
      for (let i = 0; i < 50; i++) await store.set(`k${i}`, 'v', 60, ['Hot']);
      // Entries vanish without an invalidation (as by expiry or eviction).
      await raw.del(...Array.from({ length: 50 }, (_, i) => `${prefix}e:k${i}`));
      for (let i = 50; i < 150; i++) await store.set(`k${i}`, 'v', 60, ['Hot']);
      expect(await raw.scard(`${prefix}t:Hot`)).toBeLessThan(150);
    } finally {
      const keys = await raw.keys(`${prefix}*`);
      if (keys.length) await raw.del(...keys);
      raw.disconnect();
      await store.close();
    }
  });
});

describe('RedisResponseCacheStore when Redis is not there or does not answer', () => {
  it('misses and skips, counting failures, when nothing listens', async () => {
    const store = new RedisResponseCacheStore({
      url: `redis://127.0.0.1:${await closedPort()}`,
      prefix: 't:',
      timeoutMs: 100,
    });
    try {
      expect(await settlesWithin(store.get('k'), 5_000)).toBe(true);
      expect(await store.get('k')).toBeUndefined();
      await store.set('k', 'v', 60, ['T']);
      expect(await store.invalidate(['T'])).toBe(0);
      expect(store.stats).toEqual({ hits: 0, misses: 2, stores: 0, invalidations: 0, failures: 4, stale: 0 });
    } finally {
      await store.close();
    }
  });

  /**
   * A TCP server owned by the test that accepts and then says nothing — or, with `handshake`,
   * answers what ioredis sends while connecting (HELLO 3 with a RESP3 map, CLIENT
   * SETINFO; the INFO ready check) and nothing else, so that the store is ready and its
   * commands are written and hang until its deadline ends them.
   */
  async function silentRedis(handshake: boolean) {
    const sockets = new Set<Socket>();
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => sockets.delete(socket));
      if (!handshake) return;
      socket.on('data', (data) => {
        for (const [, name] of data.toString().matchAll(/\*\d+\r\n\$\d+\r\n(\w+)\r\n/g)) {
          const command = name?.toLowerCase();
          if (command === 'hello') socket.write('%1\r\n+proto\r\n:3\r\n');
          else if (command === 'client') socket.write('+OK\r\n');
          else if (command === 'info') socket.write('$0\r\n\r\n');
        }
      });
    });
    const port = await listen(server);
    return {
      url: `redis://127.0.0.1:${port}`,
      close: async () => {
        for (const socket of sockets) socket.destroy();
        await closeServer(server);
      },
    };
  }

  it.each([
    ['accepts and never answers', false],
    ['answers the handshake, then hangs', true],
  ])('misses and skips within the timeout when Redis %s', async (_, handshake) => {
    const silent = await silentRedis(handshake);
    const store = new RedisResponseCacheStore({ url: silent.url, prefix: 't:', timeoutMs: 100 });
    try {
      if (handshake) expect(await store.ready(5_000)).toBe(true);
      const calls = [store.get('k'), store.set('k', 'v', 60, ['T']), store.invalidate(['T'])];
      expect(await settlesWithin(Promise.all(calls), 10_000)).toBe(true);
      const [value, , dropped] = await Promise.all(calls);
      expect(value).toBeUndefined();
      expect(dropped).toBe(0);
      expect(store.stats).toEqual({ hits: 0, misses: 1, stores: 0, invalidations: 0, failures: 3, stale: 0 });
    } finally {
      await store.close();
      await silent.close();
    }
  });

  it('rejects bad options, naming them', () => {
    expect(() => new RedisResponseCacheStore({ url: 'http://x', prefix: 'p' })).toThrow(/url.*"http:\/\/x"/);
    expect(() => new RedisResponseCacheStore({ url: 'redis://127.0.0.1:1', prefix: 'has space' })).toThrow(
      /prefix.*"has space"/,
    );
    expect(
      () => new RedisResponseCacheStore({ url: 'redis://127.0.0.1:1', prefix: 'p', timeoutMs: 0 }),
    ).toThrow(/timeoutMs.*received 0/);
  });

  it('rejects bad entries before any command, naming them', async () => {
    const store = new RedisResponseCacheStore({ url: 'redis://127.0.0.1:1', prefix: 'p' });
    try {
      await expect(store.set('k', 'v', Number.NaN, [])).rejects.toThrow(
        'RedisResponseCacheStore.set: ttlSeconds must be a positive number, received NaN',
      );
      await expect(store.set('k', null as never, 60, [])).rejects.toThrow(
        'RedisResponseCacheStore.set: value must be a string, received object',
      );
      await expect(store.set('k', 'v', 60, 'T' as never)).rejects.toThrow(
        'RedisResponseCacheStore.set: tags must be an array of strings, received "T"',
      );
      expect(store.stats.failures).toBe(0);
    } finally {
      await store.close();
    }
  });
});
