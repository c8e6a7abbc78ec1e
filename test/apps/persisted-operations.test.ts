// Trusted documents end to end for every mobile app (every app whose package.json says
// `"persistedOperations": true`) in production: each operation of its manifest runs by hash,
// anything else is refused; the manifest is what the command builds, and trusted documents skip
// the cost limit (shown on iOS).
import { spawnSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBff } from '@bff/bff-server';
import { iosManifestPath, iosPolicy, iosResolvers } from '@bff/ios-app';
import { buildManifest, loadManifest, type PersistedManifest } from '@bff/persisted-operations';
import type { AppName } from '@bff/resolvers';
import { waitFor } from '@bff/testkit';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  persistedOperationApps,
  type System,
  startApp,
  startSystem,
  type TestApp,
} from '../support/system.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Subscribes over WebSocket to a trusted document by its hash alone; resolves once the BFF holds
 * the subscription (no error came), or with the errors it answered.
 */
async function subscribeByHash(
  app: TestApp,
  token: string,
  hash: string,
  variables: Record<string, unknown>,
): Promise<unknown[]> {
  const errors: unknown[] = [];
  let held = false;
  const client = createClient({
    url: `${app.url.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: { Authorization: `Bearer ${token}` },
    retryAttempts: 0,
    // A close before the subscription is held is a refusal too.
    on: { closed: (event) => held || errors.push({ closed: (event as { code?: number }).code }) },
  });
  const before = app.bff.subscriptionStats?.().subscriptions ?? 0;
  const stop = client.subscribe(
    { query: '', variables, extensions: { persistedQuery: { version: 1, sha256Hash: hash } } },
    { next: () => {}, error: (error) => errors.push(error), complete: () => {} },
  );
  await waitFor(
    'the subscription is held or refused',
    () => errors.length > 0 || (app.bff.subscriptionStats?.().subscriptions ?? 0) > before,
    10_000,
  );
  held = true;
  stop();
  await client.dispose();
  // Gone from the server before the next one is counted.
  await waitFor(
    'the subscription is released',
    () => (app.bff.subscriptionStats?.().subscriptions ?? 0) === before,
    10_000,
  );
  return errors;
}
let system: System;
let manifest: PersistedManifest;
const op = (name: string) => {
  const found = manifest.operations.find((o) => o.name === name);
  if (!found) throw new Error(`no ${name} in the manifest`);
  return found;
};
const byHash = (id: string, variables: Record<string, unknown> = {}) => ({
  variables,
  extensions: { persistedQuery: { version: 1, sha256Hash: id } },
});

beforeAll(async () => {
  system = await startSystem();
  manifest = await loadManifest(iosManifestPath);
});
afterAll(async () => {
  await system?.close();
});

/**
 * Variables for the operations the mobile apps ship, by operation name; an app that ships an
 * operation not listed here fails below, naming it, until its variables are added.
 */
const sampleVariables: Record<string, (state: { invoiceId?: string }) => Record<string, unknown>> = {
  Catalogue: () => ({ first: 2 }),
  ProductCard: () => ({ id: 'p-0042' }),
  ViewerInvoices: () => ({ first: 2 }),
  Purchase: () => ({
    input: { productId: 'p-0009', quantity: 1, idempotencyKey: `pq-${randomUUID()}` },
  }),
  PayInvoice: (state) => ({ id: state.invoiceId }),
  PriceChanges: () => ({ ids: ['p-0042', 'p-0043'] }),
  InvoiceChanges: () => ({}),
};
/** Mutations run after the queries, and paying needs the invoice the purchase opened. */
const ORDER = ['Purchase', 'PayInvoice'];
/** What each app's own fields answer for p-0042 (documented in the README). */
const deepLinks: Partial<Record<AppName, string>> = {
  ios: 'https://shop.example.com/p/p-0042',
  android: 'https://shop.example.com/app/p/p-0042',
};
/** Each app's own thumbnail argument, so the card is asked for at a chosen size. */
const cardSizes: Partial<Record<AppName, Record<string, unknown>>> = {
  ios: { scale: 3 },
  android: { density: 'XXHDPI' },
};

describe.each(persistedOperationApps.map((app) => [app.name, app] as const))(
  'the %s BFF in production runs its trusted documents only',
  (name, descriptor) => {
    let app: TestApp;
    let trusted: PersistedManifest;
    const trustedOp = (operation: string) => {
      const found = trusted.operations.find((o) => o.name === operation);
      if (!found) throw new Error(`no ${operation} in the ${name} manifest`);
      return found;
    };
    beforeAll(async () => {
      trusted = await loadManifest(descriptor.manifestPath as string);
      app = await startApp(name, system, { production: true, graphiql: false });
    });
    afterAll(async () => {
      await app?.close();
    });
    const post = async (body: unknown, headers: Record<string, string> = {}) => {
      const response = await fetch(`${app.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
      });
      return { status: response.status, body: JSON.parse(await response.text()) };
    };

    it('runs every operation of its manifest by hash, signed in, without errors', async () => {
      const token = await system.token('grace@example.com', name);
      const state: { invoiceId?: string } = {};
      const rank = (operation: string) => ORDER.indexOf(operation);
      const operations = [...trusted.operations].sort((a, b) => rank(a.name) - rank(b.name));
      expect(operations.length).toBeGreaterThan(0);
      for (const operation of operations) {
        const variables = sampleVariables[operation.name];
        if (!variables) throw new Error(`${name}: no sample variables for the operation ${operation.name}`);
        if (operation.body.trimStart().startsWith('subscription')) {
          // Over WebSocket, by hash, as the app's client sends it: accepted without an error.
          const errors = await subscribeByHash(app, token, operation.id, variables(state));
          expect({ operation: operation.name, errors }).toEqual({ operation: operation.name, errors: [] });
          continue;
        }
        const answer = await post(byHash(operation.id, variables(state)), {
          authorization: `Bearer ${token}`,
        });
        expect({ operation: operation.name, status: answer.status, errors: answer.body.errors }).toEqual({
          operation: operation.name,
          status: 200,
          errors: undefined,
        });
        if (operation.name === 'Purchase') state.invoiceId = answer.body.data.purchase.invoice.id;
      }
    });

    it('runs a known hash without the document, over POST and GET', async () => {
      const card = await post(byHash(trustedOp('ProductCard').id, { id: 'p-0042', ...cardSizes[name] }));
      expect(card.status).toBe(200);
      expect(card.body.data.product).toMatchObject({ id: 'p-0042' });
      const deepLink = deepLinks[name];
      if (deepLink) expect(card.body.data.product.deepLink).toBe(deepLink);
      const query = new URLSearchParams({
        variables: JSON.stringify({ first: 2 }),
        extensions: JSON.stringify(byHash(trustedOp('Catalogue').id).extensions),
      });
      const get = await fetch(`${app.url}/graphql?${query}`, {
        headers: { 'apollo-require-preflight': 'true' },
      });
      expect(get.status).toBe(200);
      expect(
        ((await get.json()) as { data: { products: { edges: unknown[] } } }).data.products.edges,
      ).toHaveLength(2);
    });

    it('runs a signed-in mutation from the manifest', async () => {
      const token = await system.token('grace@example.com', name);
      const bought = await post(
        byHash(trustedOp('Purchase').id, {
          input: { productId: 'p-0009', quantity: 1, idempotencyKey: `pq-${randomUUID()}` },
        }),
        {
          authorization: `Bearer ${token}`,
        },
      );
      expect(bought.body.data.purchase.invoice.status).toBe('OPEN');
    });

    it('refuses an unknown hash, a raw document, and a raw document dressed with a made-up hash', async () => {
      const unknown = await post(byHash('0'.repeat(64)));
      expect(unknown.status).toBe(400);
      expect(unknown.body.errors[0].extensions.code).toBe('PERSISTED_QUERY_NOT_FOUND');
      const raw = await post({ query: '{ product(id: "p-0001") { id } }' });
      expect(raw.body.errors[0].extensions.code).toBe('PERSISTED_QUERY_NOT_FOUND');
      // Even the exact text of a trusted document must come by hash.
      const trustedText = await post({ query: trustedOp('ProductCard').body, variables: { id: 'p-0001' } });
      expect(trustedText.body.errors[0].extensions.code).toBe('PERSISTED_QUERY_NOT_FOUND');
    });

    it('does not let a client register new documents (automatic persisted queries are closed)', async () => {
      const query = '{ products(first: 30) { edges { node { id } } } }';
      const hash = createHash('sha256').update(query).digest('hex');
      expect((await post({ query, ...byHash(hash) })).body.errors[0].extensions.code).toBe(
        'PERSISTED_QUERY_NOT_FOUND',
      );
      expect((await post(byHash(hash))).body.errors[0].extensions.code).toBe('PERSISTED_QUERY_NOT_FOUND');
    });
  },
);

it('covers every app that ships trusted documents, Android and iOS among them', () => {
  expect(persistedOperationApps.map((app) => app.name)).toEqual(expect.arrayContaining(['ios', 'android']));
});

describe('the manifest', () => {
  it('is what the command builds from apps/*/operations (committed manifests are current)', () => {
    const result = spawnSync(
      `${root}node_modules/.bin/tsx`,
      ['scripts/build-persisted-manifests.ts', '--check'],
      { cwd: root, encoding: 'utf8' },
    );
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('changes when an operation changes, and the BFF serves the rebuilt one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bff-operations-'));
    try {
      await cp(join(root, 'apps/ios/operations'), dir, { recursive: true });
      const before = await buildManifest(dir);
      const file = join(dir, 'ProductCard.graphql');
      await writeFile(file, (await readFile(file, 'utf8')).replace('summary', 'summary\n    sku'));
      const after = await buildManifest(dir);
      const card = (m: PersistedManifest) => m.operations.find((o) => o.name === 'ProductCard')?.id;
      expect(card(after)).not.toBe(card(before));

      const bff = await startBff({
        app: 'ios',
        schemaDir: join(root, 'apps/ios/schema'),
        resolvers: iosResolvers('https://shop.example.com'),
        policy: iosPolicy,
        port: 0,
        identityUrl: system.identityUrl,
        billingUrl: system.billingUrl,
        productAddr: system.productAddr,
        production: true,
        graphiql: false,
        logLevel: false,
        persistedOperations: { manifest: after, enforce: true },
      });
      try {
        const response = await fetch(`${bff.url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(byHash(card(after) as string, { id: 'p-0001' })),
        });
        const body = (await response.json()) as { data: { product: { sku: string } } };
        expect(body.data.product.sku).toMatch(/^[A-Z]{3}-\d+$/);
      } finally {
        await bff.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('exempts trusted documents from the cost limit, and only them', async () => {
    const bff = await startBff({
      app: 'ios',
      schemaDir: join(root, 'apps/ios/schema'),
      resolvers: iosResolvers('https://shop.example.com'),
      policy: { ...iosPolicy, limits: { ...iosPolicy.limits, maxCost: 5 } },
      port: 0,
      identityUrl: system.identityUrl,
      billingUrl: system.billingUrl,
      productAddr: system.productAddr,
      production: false, // raw documents allowed, so the same text can be sent both ways
      graphiql: false,
      logLevel: false,
      persistedOperations: { manifest, enforce: false },
    });
    try {
      const send = async (body: unknown) => {
        const response = await fetch(`${bff.url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        return JSON.parse(await response.text());
      };
      const trusted = await send(byHash(op('Catalogue').id, { first: 20 }));
      expect(trusted.errors).toBeUndefined();
      expect(trusted.data.products.edges).toHaveLength(20);
      const raw = await send({ query: `${op('Catalogue').body} `, variables: { first: 20 } });
      expect(raw.errors[0].extensions).toMatchObject({ code: 'OPERATION_LIMIT_EXCEEDED', limit: 'cost' });
    } finally {
      await bff.close();
    }
  });
});
