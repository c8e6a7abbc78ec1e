// manifestCache as Apollo Server's persisted-query cache, on a tiny schema through
// executeOperation: the manifest's documents run by hash, nothing else is found, and no client
// can add a document. Plus lookups of hostile keys, from a seeded generator.
import { ApolloServer } from '@apollo/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { documentHash, manifestCache, type PersistedManifest } from '../src/index.ts';

const manifestOf = (operations: Record<string, string>): PersistedManifest => ({
  format: 'apollo-persisted-query-manifest',
  version: 1,
  operations: Object.entries(operations).map(([name, body]) => ({
    id: documentHash(body),
    name,
    type: body.startsWith('mutation') ? 'mutation' : 'query',
    body,
  })),
});

const greeting = 'query Greeting($name: String!) { hello(name: $name) }\n';
const rename = 'mutation Rename($to: String!) { rename(to: $to) }\n';
const manifest = manifestOf({ Greeting: greeting, Rename: rename });
const greetingId = documentHash(greeting);

describe('manifestCache', () => {
  it('answers a manifest id, bare or with Apollo’s apq: prefix, with its document', async () => {
    const cache = manifestCache(manifest);
    expect(await cache.get(greetingId)).toBe(greeting);
    expect(await cache.get(`apq:${greetingId}`)).toBe(greeting);
    expect(await cache.get(`apq:${documentHash(rename)}`)).toBe(rename);
    expect(cache.has(greetingId)).toBe(true);
  });

  it('knows nothing else, and ignores writes and deletes', async () => {
    const cache = manifestCache(manifest);
    const stranger = documentHash('{ hello(name: "x") }');
    expect(await cache.get(`apq:${stranger}`)).toBeUndefined();
    await cache.set(`apq:${stranger}`, '{ hello(name: "x") }');
    expect(await cache.get(`apq:${stranger}`)).toBeUndefined();
    expect(cache.has(stranger)).toBe(false);
    expect(await cache.delete(`apq:${greetingId}`)).toBe(false);
    expect(await cache.get(`apq:${greetingId}`)).toBe(greeting);
    // The prefix is stripped once only, and only in front.
    expect(await cache.get(`apq:apq:${greetingId}`)).toBeUndefined();
    expect(await cache.get(`${greetingId}apq:`)).toBeUndefined();
    expect(cache.has(`apq:${greetingId}`)).toBe(false);
  });

  it('finds no document for hostile keys (seeded random strings, near misses, prototype names)', async () => {
    const cache = manifestCache(manifest);
    const ids = new Set(manifest.operations.map((o) => o.id));
    const fixed = [
      '',
      'apq:',
      '__proto__',
      'apq:__proto__',
      'constructor',
      'apq:constructor',
      'toString',
      'hasOwnProperty',
      'valueOf',
      greetingId.toUpperCase(),
      greetingId.slice(0, 63),
      `${greetingId}0`,
      ` ${greetingId}`,
      `${greetingId}\n`,
      `${greetingId}\u0000`,
      'APQ:'.concat(greetingId),
      'a'.repeat(100_000),
    ];
    // mulberry32: the same hostile strings on every run, so a failure can be replayed.
    let seed = 0x5eed;
    const random = () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
    };
    const alphabet = ['0', '9', 'a', 'f', 'g', 'A', 'F', ':', '_', ' ', '\u0000', 'é', '😀', '\\', '"'];
    const generated = Array.from({ length: 500 }, () => {
      const length = Math.floor(random() * 80);
      let text = random() < 0.3 ? 'apq:' : '';
      for (let i = 0; i < length; i++) text += alphabet[Math.floor(random() * alphabet.length)];
      // Some are a real id with one character changed.
      if (random() < 0.2) {
        const at = Math.floor(random() * 64);
        const swap = greetingId[at] === '0' ? '1' : '0';
        text = `${random() < 0.5 ? 'apq:' : ''}${greetingId.slice(0, at)}${swap}${greetingId.slice(at + 1)}`;
      }
      return text;
    });
    for (const key of [...fixed, ...generated]) {
      if (ids.has(key.startsWith('apq:') ? key.slice(4) : key)) continue;
      expect(await cache.get(key), JSON.stringify(key.slice(0, 80))).toBeUndefined();
      expect(cache.has(key), JSON.stringify(key.slice(0, 80))).toBe(false);
    }
  });

  it('takes the manifest as it was when the cache was made', async () => {
    const copy = manifestOf({ Greeting: greeting });
    const cache = manifestCache(copy);
    copy.operations.length = 0;
    expect(await cache.get(`apq:${greetingId}`)).toBe(greeting);
  });
});

describe('manifestCache as Apollo Server’s persisted-query cache', () => {
  let server: ApolloServer;
  let renames = 0;
  beforeAll(async () => {
    server = new ApolloServer({
      typeDefs: `type Query { hello(name: String!): String! secret: String! }
                 type Mutation { rename(to: String!): String! }`,
      resolvers: {
        Query: {
          hello: (_: unknown, { name }: { name: string }) => `Hello, ${name}`,
          secret: () => 's3cret',
        },
        Mutation: {
          rename: (_: unknown, { to }: { to: string }) => {
            renames++;
            return to;
          },
        },
      },
      persistedQueries: { cache: manifestCache(manifest) },
    });
    await server.start();
  });
  afterAll(async () => {
    await server?.stop();
  });

  const byHash = (sha256Hash: string, variables: Record<string, unknown> = {}) =>
    server.executeOperation({ variables, extensions: { persistedQuery: { version: 1, sha256Hash } } });
  const single = (response: Awaited<ReturnType<ApolloServer['executeOperation']>>) => {
    if (response.body.kind !== 'single') throw new Error('expected a single result');
    return response.body.singleResult;
  };

  it('runs a manifest document sent by hash alone', async () => {
    const response = await byHash(greetingId, { name: 'Ada' });
    expect(response.http.status ?? 200).toBe(200);
    expect(single(response)).toEqual({ data: { hello: 'Hello, Ada' } });
  });

  it('runs a manifest mutation by hash', async () => {
    const before = renames;
    const response = await byHash(documentHash(rename), { to: 'Grace' });
    expect(single(response)).toEqual({ data: { rename: 'Grace' } });
    expect(renames).toBe(before + 1);
  });

  it('refuses an unknown hash with PERSISTED_QUERY_NOT_FOUND, running nothing', async () => {
    for (const hash of ['0'.repeat(64), greetingId.toUpperCase(), '__proto__', '']) {
      const response = await byHash(hash, { name: 'Ada' });
      const result = single(response);
      expect(result.data, hash).toBeUndefined();
      expect(result.errors?.[0]?.extensions?.code, hash).toBe('PERSISTED_QUERY_NOT_FOUND');
    }
  });

  it('never learns a document a client registers (query with its hash)', async () => {
    const query = '{ secret }';
    const hash = documentHash(query);
    // Apollo runs the document sent with its hash, and offers it to the cache to keep...
    await server.executeOperation({
      query,
      extensions: { persistedQuery: { version: 1, sha256Hash: hash } },
    });
    // ...which does not keep it: by hash alone, it is still unknown.
    const later = single(await byHash(hash));
    expect(later.data).toBeUndefined();
    expect(later.errors?.[0]?.extensions?.code).toBe('PERSISTED_QUERY_NOT_FOUND');
  });
});
