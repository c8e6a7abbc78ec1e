// The public surface under attack: a corpus of hostile requests against every app, CSRF,
// CORS, app versions, production error masking and the GraphQL-over-HTTP audit.
import { request as httpRequest } from 'node:http';
import { serverAudits } from 'graphql-http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  appNames,
  discoveredApps,
  type System,
  startApp,
  startSystem,
  type TestApp,
} from '../support/system.ts';

let system: System;
beforeAll(async () => {
  system = await startSystem();
});
afterAll(async () => {
  await system?.close();
});

interface Raw {
  status: number;
  text: string;
  headers: Headers;
}

/** One request with a deadline: a refusal must be quick, and a hang fails the test. */
async function send(url: string, init: RequestInit & { path?: string } = {}): Promise<Raw> {
  const response = await fetch(`${url}${init.path ?? '/graphql'}`, {
    ...init,
    signal: AbortSignal.timeout(5_000),
  });
  return { status: response.status, text: await response.text(), headers: response.headers };
}

const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  send(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

/** A 60 MB upload: refused with 413 before it is read, or the connection is cut; never buffered. */
function hugeUpload(url: string): Promise<number | 'reset'> {
  return new Promise((resolve, reject) => {
    const target = new URL(`${url}/graphql`);
    const req = httpRequest(
      {
        hostname: target.hostname,
        port: target.port,
        path: target.pathname,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': 60 * 1024 * 1024 },
      },
      (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      },
    );
    req.setTimeout(10_000, () => reject(new Error('60 MB upload hung')));
    req.on('error', () => resolve('reset'));
    const chunk = Buffer.alloc(1024 * 1024, 32);
    let sent = 0;
    const pump = () => {
      while (sent < 60) {
        sent++;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

const codes = (raw: Raw): string[] => {
  try {
    return (JSON.parse(raw.text).errors ?? []).map(
      (e: { extensions?: { code?: string } }) => e.extensions?.code,
    );
  } catch {
    return [];
  }
};
const limitsOf = (raw: Raw): string[] =>
  (JSON.parse(raw.text).errors ?? [])
    .map((e: { extensions?: { limit?: string } }) => e.extensions?.limit)
    .filter(Boolean);

const nest = (depth: number, leaf = 'x') => `${'a { '.repeat(depth)}${leaf}${' }'.repeat(depth)}`;
function fragmentChain(depth: number): string {
  const parts = [`{ ...F0 }`];
  for (let i = 0; i < depth; i++)
    parts.push(`fragment F${i} on Query { a { ${i + 1 < depth ? `...F${i + 1}` : 'x'} } }`);
  return parts.join('\n');
}
const circularIntrospection = `{ __schema { ${'types { fields { type { '.repeat(12)}name${' } } }'.repeat(12)} } }`;

/** The hostile corpus: what is sent, and how the app must answer. */
const corpus: {
  name: string;
  run: (url: string) => Promise<Raw | number | 'reset'>;
  expect: (result: Raw | number | 'reset', mobileProduction: boolean) => void;
}[] = [
  {
    name: '101 __typename aliases',
    run: (url) =>
      post(url, { query: `{ ${Array.from({ length: 101 }, (_, i) => `a${i}: __typename`).join(' ')} }` }),
    expect: (r) => expect(limitsOf(r as Raw)).toContain('aliases'),
  },
  {
    name: '10,000 __typename aliases',
    run: (url) =>
      post(url, { query: `{ ${Array.from({ length: 10_000 }, (_, i) => `a${i}: __typename`).join(' ')} }` }),
    expect: (r) => {
      expect((r as Raw).status).toBe(413);
      expect(codes(r as Raw)).toEqual(['PAYLOAD_TOO_LARGE']);
    },
  },
  {
    name: '100-deep nesting, inline',
    run: (url) => post(url, { query: `{ ${nest(100)} }` }),
    expect: (r) => expect(limitsOf(r as Raw)).toContain('depth'),
  },
  {
    name: '100-deep nesting through fragments',
    run: (url) => post(url, { query: fragmentChain(100) }),
    // Whichever ceiling it reaches first: its depth, or (on mobile) its token count.
    expect: (r) => expect(limitsOf(r as Raw).some((l) => l === 'depth' || l === 'tokens')).toBe(true),
  },
  {
    name: 'depth through a fragment reused at growing depth (the fragment cache bypass)',
    // D fits at the root (depth 15, the most any app allows), and three levels down it does
    // not: a depth computed once per fragment and reused must still add where it is spread.
    run: (url) => post(url, { query: `{ ...D a { a { a { ...D } } } } fragment D on Query { ${nest(14)} }` }),
    expect: (r) => expect(limitsOf(r as Raw)).toContain('depth'),
  },
  {
    name: 'depth hidden in a fragment named __schema',
    run: (url) => post(url, { query: `{ ...__schema } fragment __schema on Query { ${nest(30)} }` }),
    expect: (r) => expect(codes(r as Raw).length).toBeGreaterThan(0),
  },
  {
    name: 'a fragment cycle',
    run: (url) => post(url, { query: '{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }' }),
    expect: (r) => expect(codes(r as Raw)).toContain('GRAPHQL_VALIDATION_FAILED'),
  },
  {
    name: '60 repeated directives',
    run: (url) => post(url, { query: `{ __typename ${'@include(if: true) '.repeat(60)}}` }),
    expect: (r) => expect(limitsOf(r as Raw)).toContain('directives'),
  },
  {
    name: 'a batch of 1,000 operations',
    run: (url) =>
      post(
        url,
        Array.from({ length: 1_000 }, () => ({ query: '{ __typename }' })),
      ),
    expect: (r) => {
      expect([400, 413]).toContain((r as Raw).status);
      expect(codes(r as Raw).some((c) => c === 'BAD_REQUEST' || c === 'PAYLOAD_TOO_LARGE')).toBe(true);
    },
  },
  {
    name: 'a 16 KB body',
    run: (url) => post(url, { query: `{ __typename ${' '.repeat(16 * 1024)}}` }),
    expect: (r) =>
      expect(codes(r as Raw).some((c) => c === 'OPERATION_LIMIT_EXCEEDED' || c === 'PAYLOAD_TOO_LARGE')).toBe(
        true,
      ),
  },
  { name: 'a 60 MB body', run: (url) => hugeUpload(url), expect: (r) => expect([413, 'reset']).toContain(r) },
  {
    name: 'the circular introspection query',
    run: (url) => post(url, { query: circularIntrospection }),
    expect: (r) => expect(codes(r as Raw).length).toBeGreaterThan(0),
  },
  {
    name: 'a misspelled field (no suggestion)',
    run: (url) => post(url, { query: '{ prodct(id: "p-0001") { id } }' }),
    expect: (r, production) => {
      expect(codes(r as Raw).length).toBeGreaterThan(0);
      if (production) expect((r as Raw).text).not.toMatch(/Did you mean/);
    },
  },
  {
    name: '`qwerty { abc }` (no stack)',
    run: (url) => post(url, { query: 'qwerty { abc }' }),
    expect: (r) => {
      expect((r as Raw).status).toBe(400);
      expect((r as Raw).text).not.toMatch(/stacktrace|\n\s+at /);
    },
  },
  {
    name: '2,000 root fields within the size limits',
    run: (url) =>
      post(url, { query: `{ ${'__typename '.repeat(9)}${'product(id: "p") { id } '.repeat(20)}}` }),
    expect: (r) => expect(limitsOf(r as Raw)).toContain('rootFields'),
  },
];

// Apps that ship trusted documents run only those in production, so they meet the corpus in
// development; the others in production.
describe.each(discoveredApps.map((app) => [app.name, !app.persistedOperations] as const))(
  'the %s BFF under a hostile corpus (production: %s)',
  (name, production) => {
    let app: TestApp;
    beforeAll(async () => {
      // Mobile apps in production run trusted documents only (tested below); the limits are
      // exercised on them in development mode, where raw documents are allowed.
      app = await startApp(name, system, { production, graphiql: false });
    });
    afterAll(async () => {
      await app?.close();
    });

    it.each(corpus.map((c) => [c.name, c] as const))('refuses %s', async (_name, entry) => {
      const result = await entry.run(app.url);
      if (typeof result === 'object') expect(result.status).toBeGreaterThanOrEqual(400);
      entry.expect(result, production);
    });

    it('stays healthy, and its memory does not climb across repeated runs of the corpus', async () => {
      const gc = (globalThis as { gc?: () => void }).gc;
      expect(gc, 'run with --expose-gc (vitest.config.ts sets it)').toBeTypeOf('function');
      const heap = () => {
        gc?.();
        return process.memoryUsage().heapUsed;
      };
      for (const entry of corpus) await entry.run(app.url); // warm caches
      const before = heap();
      for (let round = 0; round < 3; round++) for (const entry of corpus) await entry.run(app.url);
      const growth = heap() - before;
      expect(growth).toBeLessThan(30 * 1024 * 1024);
      expect((await send(app.url, { path: '/healthz' })).status).toBe(200);
      const ok = await post(app.url, { query: '{ product(id: "p-0001") { id } }' });
      expect(JSON.parse(ok.text).data?.product?.id ?? 'trusted-only').toBeTruthy();
    });
  },
);

describe('CSRF prevention', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startApp('web', system);
  });
  afterAll(async () => {
    await app?.close();
  });

  it('refuses a mutation over GET with 405', async () => {
    const response = await send(app.url, {
      path: `/graphql?query=${encodeURIComponent('mutation { logout }')}`,
      headers: { 'apollo-require-preflight': 'true' },
    });
    expect(response.status).toBe(405);
  });

  it('refuses a GET without a preflight-forcing header, and a GET with a non-JSON content type', async () => {
    const plain = await send(app.url, { path: `/graphql?query=${encodeURIComponent('{ __typename }')}` });
    expect(plain.status).toBe(400);
    expect(plain.text).toMatch(/Cross-Site Request Forgery/);
    const textPlain = await send(app.url, {
      path: `/graphql?query=${encodeURIComponent('{ __typename }')}`,
      headers: { 'content-type': 'text/plain' },
    });
    expect(textPlain.status).toBe(400);
    const allowed = await send(app.url, {
      path: `/graphql?query=${encodeURIComponent('{ __typename }')}`,
      headers: { 'apollo-require-preflight': 'true' },
    });
    expect(allowed.status).toBe(200);
  });

  it.each([
    ['application/x-www-form-urlencoded', 'query=%7B__typename%7D'],
    [
      'multipart/form-data; boundary=x',
      '--x\r\nContent-Disposition: form-data; name="query"\r\n\r\n{ __typename }\r\n--x--',
    ],
    ['text/plain', JSON.stringify({ query: '{ __typename }' })],
  ])('refuses a simple POST (%s) without a preflight header', async (type, body) => {
    const response = await send(app.url, { method: 'POST', headers: { 'content-type': type }, body });
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.status).toBeLessThan(500);
    expect(codes(response).length).toBe(1);
  });
});

describe('CORS', () => {
  it('answers only the configured origins on web, and no browser origin on mobile', async () => {
    const web = await startApp('web', system, { corsOrigins: ['https://shop.example.com'] });
    const ios = await startApp('ios', system);
    try {
      const preflight = (url: string, origin: string) =>
        send(url, {
          method: 'OPTIONS',
          headers: {
            origin,
            'access-control-request-method': 'POST',
            'access-control-request-headers': 'content-type',
          },
        });
      const allowed = await preflight(web.url, 'https://shop.example.com');
      expect(allowed.headers.get('access-control-allow-origin')).toBe('https://shop.example.com');
      expect(allowed.headers.get('access-control-allow-credentials')).toBe('true');
      const other = await preflight(web.url, 'https://evil.example.net');
      expect(other.headers.get('access-control-allow-origin')).toBeNull();
      const actual = await post(web.url, { query: '{ __typename }' }, { origin: 'https://evil.example.net' });
      expect(actual.headers.get('access-control-allow-origin')).toBeNull();
      const mobile = await preflight(ios.url, 'https://shop.example.com');
      expect(mobile.headers.get('access-control-allow-origin')).toBeNull();
    } finally {
      await web.close();
      await ios.close();
    }
  });
});

describe('the mobile app version policy', () => {
  it('answers UPGRADE_REQUIRED with the store URL below the minimum', async () => {
    const app = await startApp('android', system, {
      appVersion: { minimum: '4.2.0', storeUrl: 'https://play.google.com/store/apps/details?id=x' },
    });
    try {
      const ask = (version?: string) =>
        post(app.url, { query: '{ __typename }' }, version ? { 'x-app-version': version } : {});
      const old = await ask('4.1.9');
      expect(old.status).toBe(426);
      expect(JSON.parse(old.text).errors[0].extensions).toEqual({
        code: 'UPGRADE_REQUIRED',
        minimumVersion: '4.2.0',
        storeUrl: 'https://play.google.com/store/apps/details?id=x',
      });
      expect((await ask('4.2')).status).toBe(200);
      expect((await ask('10.0.1')).status).toBe(200);
      expect((await ask()).status).toBe(200);
      expect((await ask('four')).status).toBe(400);
    } finally {
      await app.close();
    }
  });
});

describe('errors in production', () => {
  it('masks an unexpected error to INTERNAL_SERVER_ERROR with a request id that finds it in the log', async () => {
    const lines: string[] = [];
    const { startBff } = await import('@bff/bff-server');
    const { webPolicy } = await import('@bff/web-app');
    const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = await mkdtemp(join(tmpdir(), 'bff-schema-'));
    await writeFile(join(dir, 'boom.graphql'), 'extend type Query { boom: String @public }');
    const bff = await startBff({
      app: 'web',
      schemaDir: dir,
      resolvers: {
        Query: {
          boom: () => {
            throw new Error('connection string postgres://admin:hunter2@db');
          },
        },
      },
      policy: webPolicy,
      port: 0,
      identityUrl: system.identityUrl,
      billingUrl: system.billingUrl,
      productAddr: system.productAddr,
      production: true,
      graphiql: false,
      logLevel: 'info',
      logDestination: { write: (line) => void lines.push(line) },
    });
    try {
      const response = await post(bff.url, { query: '{ boom product(id: "p-0001") { id } }' });
      const body = JSON.parse(response.text);
      expect(body.data.product.id).toBe('p-0001');
      expect(body.errors[0]).toEqual({
        message: 'Internal server error',
        locations: expect.any(Array),
        path: ['boom'],
        extensions: { code: 'INTERNAL_SERVER_ERROR', requestId: response.headers.get('x-request-id') },
      });
      expect(response.text).not.toMatch(/hunter2|stack/);
      const logged = lines.find(
        (line) => line.includes(body.errors[0].extensions.requestId) && line.includes('hunter2'),
      );
      expect(logged).toBeDefined();
    } finally {
      await bff.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the GraphQL-over-HTTP audit (graphql-http serverAudits)', () => {
  it.each(appNames)('passes every requirement on %s', async (name) => {
    const app = await startApp(name, system);
    try {
      const failures: string[] = [];
      for (const audit of serverAudits({ url: `${app.url}/graphql`, fetchFn: fetch })) {
        const result = await audit.fn();
        if (result.status === 'error') failures.push(`${audit.name}: ${result.reason}`);
      }
      expect(failures).toEqual([]);
    } finally {
      await app.close();
    }
  });
});
