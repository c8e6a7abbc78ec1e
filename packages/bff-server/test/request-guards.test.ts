// The cheap refusals before Apollo parses anything: nesting depth of variables/extensions, app
// versions, oversized documents, malformed or mismatched persisted-query hashes, and
// trusted-documents mode. Unit-level on a bare Fastify app through inject, then once through
// a running BFF whose manifest is enforced.
import { createHash } from 'node:crypto';
import { documentHash, type PersistedManifest } from '@bff/persisted-operations';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nestingExceeds, type RunningBff } from '../src/index.ts';
import { compareVersions, type RequestGuardOptions, registerRequestGuards } from '../src/request-guards.ts';
import { type GraphQLResponseBody, startTestBff } from './support/test-bff.ts';

/** The depth nestingExceeds measures, computed the obvious (recursive) way. */
function depthOf(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0;
  const children = Array.isArray(value) ? value : Object.values(value);
  return 1 + Math.max(0, ...children.map(depthOf));
}

/** mulberry32: the same values on every run, so a failure can be replayed. */
function seeded(seed: number) {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** A random JSON value of at most `budget` levels: scalars, arrays and objects mixed. */
function randomValue(random: () => number, budget: number): unknown {
  const pick = random();
  if (budget === 0 || pick < 0.25) {
    return [null, 0, 'text', true, '', -1.5][Math.floor(random() * 6)];
  }
  const size = Math.floor(random() * 4);
  const children = Array.from({ length: size }, () => randomValue(random, budget - 1));
  if (pick < 0.6) return children;
  return Object.fromEntries(children.map((child, i) => [`k${i}`, child]));
}

describe('nestingExceeds', () => {
  it('counts arrays and objects, not scalars', () => {
    for (const scalar of [null, undefined, 0, 'deep', true]) expect(nestingExceeds(scalar, 1)).toBe(false);
    expect(nestingExceeds({}, 1)).toBe(false);
    expect(nestingExceeds({ a: 1, b: 'x' }, 1)).toBe(false);
    expect(nestingExceeds({ a: {} }, 1)).toBe(true);
    expect(nestingExceeds({ a: {} }, 2)).toBe(false);
    expect(nestingExceeds([[[]]], 2)).toBe(true);
    expect(nestingExceeds([[[]]], 3)).toBe(false);
    expect(nestingExceeds({ list: [{ deep: [1] }] }, 3)).toBe(true);
  });

  it('finds the deep branch however wide or late it comes', () => {
    const wide = Object.fromEntries(Array.from({ length: 1_000 }, (_, i) => [`k${i}`, { v: i }]));
    expect(nestingExceeds(wide, 2)).toBe(false);
    (wide.k999 as Record<string, unknown>).v = { deeper: [] };
    expect(nestingExceeds(wide, 2)).toBe(true);
    expect(nestingExceeds(wide, 4)).toBe(false);
  });

  it('walks a value far deeper than the stack allows without overflowing', () => {
    let value: unknown = [];
    for (let i = 0; i < 200_000; i++) value = [value];
    expect(nestingExceeds(value, 32)).toBe(true);
    let object: unknown = {};
    for (let i = 0; i < 200_000; i++) object = { next: object };
    expect(nestingExceeds(object, 32)).toBe(true);
  });

  it('agrees with a recursive depth count on 1,000 seeded random values', () => {
    const random = seeded(0xb0ff);
    for (let i = 0; i < 1_000; i++) {
      const value = randomValue(random, 7);
      const depth = depthOf(value);
      for (const max of [1, 2, 3, 5, 8]) {
        expect(nestingExceeds(value, max), `${JSON.stringify(value)} against ${max}`).toBe(depth > max);
      }
    }
  });
});

describe('compareVersions', () => {
  it('compares dotted numbers numerically, missing parts as zero', () => {
    expect(compareVersions('4.10.0', '4.9.9')).toBe(1);
    expect(compareVersions('4.2', '4.2.0')).toBe(0);
    expect(compareVersions('4.2.0.1', '4.2')).toBe(1);
    expect(compareVersions('3.99', '4')).toBe(-1);
    expect(compareVersions('10', '9')).toBe(1);
  });

  it('is undefined for anything that is not a version number', () => {
    for (const bad of [
      '',
      'v4.2',
      '4.2.',
      '.4',
      '4..2',
      '4.2.0-beta',
      '1.2.3.4.5',
      '1234567',
      '4,2',
      ' 4.2',
    ]) {
      expect(compareVersions(bad, '1.0'), bad).toBeUndefined();
      expect(compareVersions('1.0', bad), bad).toBeUndefined();
    }
  });
});

describe('registerRequestGuards', () => {
  const manifestHash = documentHash('query Known { __typename }\n');
  let handled = 0;
  async function guarded(options: Partial<RequestGuardOptions> = {}): Promise<FastifyInstance> {
    const app = Fastify({ logger: false });
    registerRequestGuards(app, '/graphql', { maxDocumentChars: 100, exposeLimits: true, ...options });
    app.route({
      url: '/graphql',
      method: ['GET', 'POST'],
      handler: async () => {
        handled++;
        return { passed: true };
      },
    });
    app.post('/other', async () => ({ passed: true }));
    await app.ready();
    return app;
  }
  const apps: FastifyInstance[] = [];
  afterAll(async () => {
    await Promise.all(apps.map((app) => app.close()));
  });
  const make = async (options: Partial<RequestGuardOptions> = {}) => {
    const app = await guarded(options);
    apps.push(app);
    return app;
  };
  const post = (
    app: FastifyInstance,
    payload: unknown,
    headers: Record<string, string> = {},
    url = '/graphql',
  ) => app.inject({ method: 'POST', url, headers, payload: payload as Record<string, unknown> });
  const get = (app: FastifyInstance, params: Record<string, string>) =>
    app.inject({ method: 'GET', url: `/graphql?${new URLSearchParams(params)}` });
  const refusal = (response: { statusCode: number; json(): unknown }) => ({
    status: response.statusCode,
    ...(response.json() as GraphQLResponseBody).errors?.[0],
  });

  it('lets an ordinary request through', async () => {
    const app = await make();
    const before = handled;
    expect((await post(app, { query: '{ a }', variables: { x: [1, { y: 2 }] } })).json()).toEqual({
      passed: true,
    });
    expect(handled).toBe(before + 1);
  });

  it('refuses a document past maxDocumentChars, naming the sizes only when limits are exposed', async () => {
    const query = `{ ${'a '.repeat(60)}}`;
    expect(refusal(await post(await make(), { query }))).toEqual({
      status: 400,
      message: `The document has ${query.length} characters; at most 100 are allowed`,
      extensions: { code: 'OPERATION_LIMIT_EXCEEDED', limit: 'documentChars' },
    });
    expect(refusal(await get(await make({ exposeLimits: false }), { query }))).toEqual({
      status: 400,
      message: 'The document is too large',
      extensions: { code: 'OPERATION_LIMIT_EXCEEDED', limit: 'documentChars' },
    });
    expect((await post(await make(), { query: `{ ${'a'.repeat(96)} }` })).statusCode).toBe(200);
  });

  it('refuses variables or extensions nested past maxValueDepth, in a POST body or a GET parameter', async () => {
    const app = await make({ maxValueDepth: 4 });
    let deep: unknown = 1;
    for (let i = 0; i < 5; i++) deep = [deep];
    const expected = (name: string) => ({
      status: 400,
      message: `${name} nests deeper than 4 levels`,
      extensions: { code: 'OPERATION_LIMIT_EXCEEDED', limit: 'valueDepth' },
    });
    expect(refusal(await post(app, { query: '{ a }', variables: { v: deep } }))).toEqual(
      expected('variables'),
    );
    expect(refusal(await post(app, { query: '{ a }', extensions: { e: deep } }))).toEqual(
      expected('extensions'),
    );
    expect(refusal(await get(app, { query: '{ a }', variables: JSON.stringify({ v: deep }) }))).toEqual(
      expected('variables'),
    );
    // Four levels exactly pass: { v: [[[1]]] }.
    expect((await post(app, { query: '{ a }', variables: { v: [[[1]]] } })).statusCode).toBe(200);
    // An unreadable GET parameter is Apollo's to answer, not a crash here.
    expect((await get(app, { query: '{ a }', variables: '{not json' })).statusCode).toBe(200);
  });

  it('refuses a 100,000-deep variables value quickly instead of overflowing the stack', async () => {
    const text = `{"query":"{ a }","variables":{"v":${'['.repeat(100_000)}${']'.repeat(100_000)}}}`;
    const app = Fastify({ logger: false, bodyLimit: 1_000_000 });
    apps.push(app);
    registerRequestGuards(app, '/graphql', { maxDocumentChars: 100, exposeLimits: false });
    app.post('/graphql', async () => ({ passed: true }));
    const response = await app.inject({
      method: 'POST',
      url: '/graphql',
      headers: { 'content-type': 'application/json' },
      payload: text,
    });
    expect(refusal(response)).toMatchObject({
      status: 400,
      message: 'variables nest too deeply',
      extensions: { limit: 'valueDepth' },
    });
  });

  it('refuses a malformed persistedQuery extension with BAD_REQUEST', async () => {
    const app = await make();
    const malformed: unknown[] = [
      null,
      'abc',
      { version: 2, sha256Hash: manifestHash },
      { version: '1', sha256Hash: manifestHash },
      { version: 1 },
      { version: 1, sha256Hash: manifestHash.toUpperCase() },
      { version: 1, sha256Hash: manifestHash.slice(1) },
      { version: 1, sha256Hash: `${manifestHash}0` },
      { version: 1, sha256Hash: 'g'.repeat(64) },
      { version: 1, sha256Hash: ['a'] },
    ];
    for (const persistedQuery of malformed) {
      const response = await post(app, { extensions: { persistedQuery } });
      expect(refusal(response), JSON.stringify(persistedQuery)).toEqual({
        status: 400,
        message: 'persistedQuery must be { version: 1, sha256Hash: <64 hex digits> }',
        extensions: { code: 'BAD_REQUEST' },
      });
    }
  });

  it('refuses a query that does not hash to the hash sent with it', async () => {
    const app = await make();
    const query = '{ a }';
    const right = createHash('sha256').update(query).digest('hex');
    const mismatch = await post(app, {
      query: `${query} `,
      extensions: { persistedQuery: { version: 1, sha256Hash: right } },
    });
    expect(refusal(mismatch)).toEqual({
      status: 400,
      message: 'The query does not hash to persistedQuery.sha256Hash',
      extensions: { code: 'PERSISTED_QUERY_HASH_MISMATCH' },
    });
    const matching = await post(app, {
      query,
      extensions: { persistedQuery: { version: 1, sha256Hash: right } },
    });
    expect(matching.statusCode).toBe(200);
  });

  it('in trusted-documents mode, lets only known hashes through', async () => {
    const app = await make({ trustedOnly: (hash) => hash === manifestHash });
    const known = { extensions: { persistedQuery: { version: 1, sha256Hash: manifestHash } } };
    expect((await post(app, known)).statusCode).toBe(200);
    expect(
      (
        await get(app, {
          extensions: JSON.stringify(known.extensions),
        })
      ).statusCode,
    ).toBe(200);
    const notFound = {
      status: 400,
      message: 'Only the app’s registered operations may run here',
      extensions: { code: 'PERSISTED_QUERY_NOT_FOUND' },
    };
    expect(refusal(await post(app, { query: '{ a }' }))).toEqual(notFound);
    expect(refusal(await get(app, { query: '{ a }' }))).toEqual(notFound);
    expect(
      refusal(
        await post(app, { extensions: { persistedQuery: { version: 1, sha256Hash: '0'.repeat(64) } } }),
      ),
    ).toEqual(notFound);
    // The text of a trusted document with its right hash is still refused if the hash is unknown.
    const stranger = '{ b }';
    const strangerHash = createHash('sha256').update(stranger).digest('hex');
    expect(
      refusal(
        await post(app, {
          query: stranger,
          extensions: { persistedQuery: { version: 1, sha256Hash: strangerHash } },
        }),
      ),
    ).toEqual(notFound);
  });

  it('refuses app versions below the minimum with 426, and unreadable ones with 400', async () => {
    const app = await make({
      appVersion: { header: 'x-app-version', minimum: '4.2.0', storeUrl: 'https://apps.example.com/shop' },
    });
    const old = await post(app, { query: '{ a }' }, { 'x-app-version': '4.1.9' });
    expect(refusal(old)).toEqual({
      status: 426,
      message: 'This version of the app is no longer supported; please update it',
      extensions: {
        code: 'UPGRADE_REQUIRED',
        minimumVersion: '4.2.0',
        storeUrl: 'https://apps.example.com/shop',
      },
    });
    const garbled = await post(app, { query: '{ a }' }, { 'x-app-version': 'latest' });
    expect(refusal(garbled)).toMatchObject({ status: 400, extensions: { code: 'BAD_REQUEST' } });
    for (const version of ['4.2.0', '4.2', '4.10.0', '5']) {
      expect((await post(app, { query: '{ a }' }, { 'x-app-version': version })).statusCode, version).toBe(
        200,
      );
    }
    // No header: not a mobile app (or an old one that never sent it); served.
    expect((await post(app, { query: '{ a }' })).statusCode).toBe(200);
  });

  it('guards only its own path', async () => {
    const app = await make({ trustedOnly: () => false });
    const response = await post(app, { query: '{ a }' }, {}, '/other');
    expect(response.statusCode).toBe(200);
  });

  it('refuses a maxValueDepth that is not a positive whole number, naming it', () => {
    for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() =>
        registerRequestGuards(Fastify(), '/graphql', {
          maxDocumentChars: 1,
          exposeLimits: true,
          maxValueDepth: bad,
        }),
      ).toThrow(
        new TypeError(`request guards: maxValueDepth must be a positive whole number, received ${bad}`),
      );
    }
  });
});

describe('a BFF enforcing its trusted documents', () => {
  const typename = 'query Typename { __typename }\n';
  const manifest: PersistedManifest = {
    format: 'apollo-persisted-query-manifest',
    version: 1,
    operations: [{ id: documentHash(typename), name: 'Typename', type: 'query', body: typename }],
  };
  let bff: RunningBff;
  beforeAll(async () => {
    bff = await startTestBff({ production: true, persistedOperations: { manifest, enforce: true } });
  });
  afterAll(async () => {
    await bff?.close();
  });
  const post = (payload: unknown) =>
    bff.app.inject({
      method: 'POST',
      url: '/graphql',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify(payload),
    });

  it('runs a manifest document sent by hash', async () => {
    const response = await post({
      extensions: { persistedQuery: { version: 1, sha256Hash: documentHash(typename) } },
    });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ data: { __typename: 'Query' } });
  });

  it('refuses free-form documents, even the exact text of a trusted one, and unknown hashes', async () => {
    for (const payload of [
      { query: '{ __typename }' },
      { query: typename },
      { extensions: { persistedQuery: { version: 1, sha256Hash: 'a'.repeat(64) } } },
    ]) {
      const response = await post(payload);
      expect(response.statusCode, JSON.stringify(payload)).toBe(400);
      const code = (response.json() as GraphQLResponseBody).errors?.[0]?.extensions?.code;
      expect(code, JSON.stringify(payload)).toBe('PERSISTED_QUERY_NOT_FOUND');
    }
  });

  it('runs a trusted document sent with its own hash', async () => {
    const response = await post({
      query: typename,
      extensions: { persistedQuery: { version: 1, sha256Hash: documentHash(typename) } },
    });
    expect(response.json()).toEqual({ data: { __typename: 'Query' } });
  });
});
