// Issue 10's bar: 200 concurrent hostile requests of every class leave every breaker closed,
// answer no 5xx and no server-fault code, and a normal query is served beside and after them.
import { createHash } from 'node:crypto';
import { androidManifestPath } from '@bff/android-app';
import { SERVER_FAULT_CODES } from '@bff/error-codes';
import { loadManifest, type PersistedManifest } from '@bff/persisted-operations';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type System, startApp, startSystem, type TestApp } from '../support/system.ts';

let system: System;
let web: TestApp;
let android: TestApp;
let manifest: PersistedManifest;

beforeAll(async () => {
  system = await startSystem();
  web = await startApp('web', system);
  android = await startApp('android', system, { production: true, graphiql: false });
  manifest = await loadManifest(androidManifestPath);
});
afterAll(async () => {
  await web?.close();
  await android?.close();
  await system?.close();
});

type Hostile = { app: TestApp; body: unknown; headers?: Record<string, string> };

const hash = (name: string) => {
  const found = manifest.operations.find((o) => o.name === name);
  if (!found) throw new Error(`no ${name} in the Android manifest`);
  return found.id;
};
const trusted = (name: string, variables: Record<string, unknown>) => ({
  variables,
  extensions: { persistedQuery: { version: 1, sha256Hash: hash(name) } },
});

function tower(levels: number): string {
  let source = '{ ...F0 }';
  for (let i = 0; i < levels; i++)
    source += ` fragment F${i} on Query { ${i + 1 < levels ? `...F${i + 1} `.repeat(4) : '__typename'} }`;
  return source;
}

/** One request of each class, cycled to 200. */
function hostileRequests(): Hostile[] {
  const classes: Hostile[] = [
    // 1. Validation whose cost explodes; values nested past any walk.
    { app: web, body: { query: tower(16) } },
    {
      app: web,
      body: `{"query":"query($ids: [ID!]!) { productsByIds(ids: $ids) { id } }","variables":{"ids":${'['.repeat(9_000)}${']'.repeat(9_000)}}}`,
    },
    // 2. Client input that a service would refuse.
    { app: android, body: trusted('ProductCard', { id: 'p-0001\u0000' }) },
    { app: android, body: trusted('ProductCard', { id: '' }) },
    { app: android, body: trusted('Catalogue', { after: 'not-a-cursor\u0000', first: 2 }) },
    { app: android, body: trusted('Catalogue', { search: 'lamp\u0000', category: '\u0007' }) },
    { app: web, body: { query: '{ productsByIds(ids: ["p-0001", "p-0002\\u0000"]) { id } }' } },
    { app: web, body: { query: '{ products(after: "MjAyNi0xMy00MFQ5OTo5OTo5OVo=") { totalCount } }' } },
    // 3. Client mistakes that graphql-jit used to report as server faults.
    {
      app: web,
      body: { query: 'query($n: Int) { products(first: $n) { totalCount } }', variables: { n: 'x' } },
    },
    { app: web, body: { query: 'query A { __typename }', operationName: 'B' } },
    {
      app: web,
      body: {
        query: '{ __typename }',
        extensions: {
          persistedQuery: { version: 1, sha256Hash: createHash('sha256').update('y').digest('hex') },
        },
      },
    },
    { app: android, body: trusted('Catalogue', { density: 'ULTRA', first: 'ten' }) },
    // 4. Sign-in attempts under changing spellings of one account.
    {
      app: web,
      body: {
        query: 'mutation($e: String!, $p: String!) { login(email: $e, password: $p) { expiresAt } }',
        variables: { e: ' GRACE@example.com ', p: 'wrong' },
      },
    },
    // 5. Claims and addresses: forged tokens and spoofed forwarding headers.
    {
      app: android,
      body: trusted('ViewerInvoices', {}),
      headers: {
        authorization: `Bearer ${'x'.repeat(40)}.${'y'.repeat(40)}.${'z'.repeat(40)}`,
        'x-forwarded-for': '1.2.3.4',
      },
    },
    { app: web, body: { query: '{ viewer { id } }' }, headers: { authorization: 'Bearer é.e30.!' } },
  ];
  return Array.from({ length: 200 }, (_, i) => classes[i % classes.length] as Hostile);
}

async function send({ app, body, headers }: Hostile) {
  const response = await fetch(`${app.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await response.text();
  return { status: response.status, text };
}

describe('200 concurrent hostile requests', () => {
  it('leave every breaker closed, answer no server fault, and a normal query is served', async () => {
    const normal = () =>
      send({ app: android, body: trusted('ProductCard', { id: 'p-0007' }) }).then((r) => JSON.parse(r.text));
    const [answers, during] = await Promise.all([Promise.all(hostileRequests().map(send)), normal()]);
    for (const answer of answers) {
      expect(answer.status, answer.text).toBeLessThan(500);
      const body = JSON.parse(answer.text) as { errors?: { extensions?: { code?: string } }[] };
      for (const error of body.errors ?? []) {
        expect(SERVER_FAULT_CODES.has(error.extensions?.code as never), answer.text).toBe(false);
      }
      expect(answer.text).not.toMatch(/stacktrace|127\.0\.0\.1:\d/);
    }
    expect(during.data.product.id).toBe('p-0007');
    for (const app of [web, android]) {
      for (const guard of Object.values(app.bff.guards)) expect(guard.state).toBe('closed');
      expect((await fetch(`${app.url}/healthz`)).status).toBe(200);
    }
    expect((await normal()).data.product.id).toBe('p-0007');
  }, 120_000);
});
