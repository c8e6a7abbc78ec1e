// One suite for the contract every app shares, run against web, iOS and Android alike, over
// real HTTP against the real services.
import { randomUUID } from 'node:crypto';
import { demoProducts } from '@bff/demo-data';
import type { AppName } from '@bff/resolvers';
import { TcpProxy } from '@bff/testkit';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  appModule,
  appNames,
  callsByService,
  type System,
  startApp,
  startSystem,
  type TestApp,
} from '../support/system.ts';

const ADA = 'ada@example.com';
const GRACE = 'grace@example.com';
const APPS: readonly AppName[] = appNames;
/** The maxima the README documents for the first three apps; any app is held to its own policy. */
const documentedPageLimits: Partial<Record<AppName, { products: number; invoices: number }>> = {
  web: { products: 100, invoices: 100 },
  ios: { products: 30, invoices: 25 },
  android: { products: 40, invoices: 30 },
};

let system: System;
beforeAll(async () => {
  system = await startSystem();
});
afterAll(async () => {
  await system?.close();
});

describe.each(APPS)('the %s BFF contract', (name) => {
  let app: TestApp;
  let ada: string;
  beforeAll(async () => {
    app = await startApp(name, system);
    ada = await system.token(ADA, name);
  });
  afterAll(async () => {
    await app?.close();
  });
  beforeEach(() => app.resetCalls());

  it('answers viewer: null without a token, and the signed-in user with one', async () => {
    const anonymous = await app.graphql('{ viewer { id } }');
    expect(anonymous.body).toEqual({ data: { viewer: null } });
    const signedIn = await app.graphql('{ viewer { id email name roles } }', { token: ada });
    expect(signedIn.body.data.viewer).toEqual({
      id: '0a1d2a9e-5a3c-4c1e-9d0a-000000000ada',
      email: ADA,
      name: 'Ada Lovelace',
      roles: ['customer', 'admin'],
    });
    expect(app.calls).toEqual([]); // the viewer came from the token: no Identity call
  });

  it('loads what the token does not carry from Identity, in one call', async () => {
    const response = await app.graphql('{ viewer { avatarUrl name } }', { token: ada });
    expect(response.body.data.viewer.avatarUrl).toMatch(/^https:\/\//);
    expect(callsByService(app.calls)).toEqual({ identity: 1, billing: 0, product: 0 });
  });

  it('refuses a token minted for another app with 401 UNAUTHENTICATED', async () => {
    const other = APPS.find((a) => a !== name) as AppName;
    const response = await app.graphql('{ viewer { id } }', { token: await system.token(ADA, other) });
    expect(response.status).toBe(401);
    expect(response.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const garbage = await app.graphql('{ viewer { id } }', { token: 'not.a.token' });
    expect(garbage.status).toBe(401);
  });

  it('makes one Billing and one Product call for twenty invoices with their lines’ products (no N+1)', async () => {
    const response = await app.graphql(
      `{ viewer { invoices(first: 20) { edges { node { lines { product { name price { formatted } } } } } } } }`,
      { token: ada },
    );
    expect(response.body.errors).toBeUndefined();
    const edges = response.body.data.viewer.invoices.edges;
    expect(edges).toHaveLength(20);
    const names = edges.flatMap((e: { node: { lines: { product: { name: string } }[] } }) =>
      e.node.lines.map((l) => l.product.name),
    );
    expect(names.length).toBeGreaterThan(20);
    expect(callsByService(app.calls)).toEqual({ identity: 0, billing: 1, product: 1 });
    const productCall = app.calls.find((c) => c.service === 'product');
    expect(productCall?.batchSize).toBe(new Set(names).size); // unique ids only
  });

  it('serves products with nested fields from one ListProducts call, and pages without gaps', async () => {
    const query = `query($after: String) { products(first: 5, after: $after, category: "books") {
      totalCount edges { cursor node { id name category price { amountMinor currency formatted } inStock } }
      pageInfo { hasNextPage endCursor } } }`;
    const first = await app.graphql(query);
    expect(callsByService(app.calls)).toEqual({ identity: 0, billing: 0, product: 1 });
    const page1 = first.body.data.products;
    expect(page1.edges).toHaveLength(5);
    expect(page1.totalCount).toBe(demoProducts().filter((p) => p.category === 'books').length);
    expect(page1.pageInfo.hasNextPage).toBe(true);
    const second = await app.graphql(query, { variables: { after: page1.pageInfo.endCursor } });
    const ids = [...page1.edges, ...second.body.data.products.edges].map(
      (e: { node: { id: string } }) => e.node.id,
    );
    expect(new Set(ids).size).toBe(10);
    expect(ids).toEqual([...ids].sort());
    // Any edge's cursor resumes right after that edge.
    const fromMiddle = await app.graphql(query, { variables: { after: page1.edges[2].cursor } });
    expect(fromMiddle.body.data.products.edges[0].node.id).toBe(page1.edges[3].node.id);
  });

  it('fetches a product reached through two paths once, with each id once', async () => {
    const response = await app.graphql(`{
      a: product(id: "p-0007") { name }
      b: product(id: "p-0007") { price { amountMinor } }
      c: product(id: "p-0008") { name }
      missing: product(id: "p-9999") { name }
    }`);
    expect(response.body.data.a.name).toEqual(expect.any(String));
    expect(response.body.data.missing).toBeNull();
    expect(callsByService(app.calls)).toEqual({ identity: 0, billing: 0, product: 1 });
    expect(app.calls[0]?.batchSize).toBe(3);
  });

  it('runs independent branches together: viewer data, invoices and the catalogue in one round', async () => {
    const response = await app.graphql(
      `{ viewer { avatarUrl invoices(first: 3) { edges { node { id } } } } products(first: 2) { edges { node { id } } } product(id: "p-0100") { name } }`,
      { token: ada },
    );
    expect(response.body.errors).toBeUndefined();
    expect(callsByService(app.calls)).toEqual({ identity: 1, billing: 1, product: 2 });
  });

  it('applies the app’s page sizes: default when absent, BAD_USER_INPUT above the maximum', async () => {
    const { policy } = await appModule(name);
    const limits = { products: policy.products.max, invoices: policy.invoices.max };
    if (documentedPageLimits[name]) expect(limits).toEqual(documentedPageLimits[name]);
    const tooMany = await app.graphql(`{ products(first: ${limits.products + 1}) { edges { cursor } } }`);
    expect(tooMany.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'first' });
    const atMax = await app.graphql(`{ products(first: ${limits.products}) { edges { cursor } } }`);
    expect(atMax.body.data.products.edges).toHaveLength(limits.products);
    const invoices = await app.graphql(
      `{ viewer { invoices(first: ${limits.invoices + 1}) { edges { cursor } } } }`,
      { token: ada },
    );
    expect(invoices.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const zero = await app.graphql('{ products(first: 0) { edges { cursor } } }');
    expect(zero.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const forged = await app.graphql('{ products(after: "Zm9yZ2Vk") { edges { cursor } } }');
    expect(forged.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'after' });
  });

  it('formats money for the request’s Accept-Language', async () => {
    const query = '{ product(id: "p-0001") { price { amountMinor currency formatted } } }';
    const us = await app.graphql(query, { headers: { 'accept-language': 'en-US' } });
    const de = await app.graphql(query, {
      headers: { 'accept-language': 'fr-CH;q=0.5, de-DE;q=0.9, *;q=0.1' },
    });
    const price = us.body.data.product.price;
    const expectedUs = new Intl.NumberFormat('en-US', { style: 'currency', currency: price.currency }).format(
      price.amountMinor / 100,
    );
    const expectedDe = new Intl.NumberFormat('de-DE', { style: 'currency', currency: price.currency }).format(
      price.amountMinor / 100,
    );
    expect(us.body.data.product.price.formatted).toBe(expectedUs);
    expect(de.body.data.product.price.formatted).toBe(expectedDe);
  });

  it('purchases idempotently: the same key yields one invoice, the same one', async () => {
    const grace = await system.token(GRACE, name);
    const mutation = `mutation($input: PurchaseInput!) { purchase(input: $input) { invoice { id status total { amountMinor } lines { quantity product { id } } } } }`;
    const input = { productId: 'p-0120', quantity: 2, idempotencyKey: randomUUID() };
    const first = await app.graphql(mutation, { token: grace, variables: { input } });
    expect(first.body.errors).toBeUndefined();
    const invoice = first.body.data.purchase.invoice;
    expect(invoice).toMatchObject({ status: 'OPEN', lines: [{ quantity: 2, product: { id: 'p-0120' } }] });
    const again = await app.graphql(mutation, { token: grace, variables: { input } });
    expect(again.body.data.purchase.invoice.id).toBe(invoice.id);
    const list = await app.graphql('{ viewer { invoices(first: 10) { edges { node { id } } } } }', {
      token: grace,
    });
    const ids = list.body.data.viewer.invoices.edges.map((e: { node: { id: string } }) => e.node.id);
    expect(ids.filter((id: string) => id === invoice.id)).toHaveLength(1);
    const reused = await app.graphql(mutation, {
      token: grace,
      variables: { input: { ...input, quantity: 3 } },
    });
    expect(reused.body.errors?.[0]?.extensions?.code).toBe('IDEMPOTENCY_KEY_REUSED');
  });

  it('refuses a purchase without a token, and bad input with BAD_USER_INPUT', async () => {
    const mutation = `mutation($input: PurchaseInput!) { purchase(input: $input) { invoice { id } } }`;
    const anonymous = await app.graphql(mutation, {
      variables: { input: { productId: 'p-0001', quantity: 1, idempotencyKey: 'k' } },
    });
    expect(anonymous.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const grace = await system.token(GRACE, name);
    const zero = await app.graphql(mutation, {
      token: grace,
      variables: { input: { productId: 'p-0001', quantity: 0, idempotencyKey: 'k' } },
    });
    expect(zero.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'quantity' });
    const unknown = await app.graphql(mutation, {
      token: grace,
      variables: { input: { productId: 'p-9999', quantity: 1, idempotencyKey: randomUUID() } },
    });
    expect(unknown.body.errors?.[0]?.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      reason: 'PRODUCT_NOT_FOUND',
    });
  });

  it('pays the viewer’s own invoice, and treats someone else’s as not found', async () => {
    const grace = await system.token(GRACE, name);
    const bought = await app.graphql(
      `mutation { purchase(input: { productId: "p-0130", quantity: 1, idempotencyKey: "${randomUUID()}" }) { invoice { id } } }`,
      { token: grace },
    );
    const id = bought.body.data.purchase.invoice.id;
    const stranger = await app.graphql(`mutation { payInvoice(id: "${id}") { status } }`, { token: ada });
    expect(stranger.body.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const paid = await app.graphql(`mutation { payInvoice(id: "${id}") { status paidAt } }`, {
      token: grace,
    });
    expect(paid.body.data.payInvoice).toMatchObject({ status: 'PAID', paidAt: expect.any(String) });
    const again = await app.graphql(`mutation { payInvoice(id: "${id}") { status } }`, { token: grace });
    expect(again.body.data.payInvoice.status).toBe('PAID');
  });

  it('reports health, and readiness of every upstream', async () => {
    expect((await fetch(`${app.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${app.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({
      status: 'ready',
      upstreams: { identity: true, billing: true, product: true },
      breakers: { identity: 'closed', billing: 'closed', product: 'closed' },
      // The system's bus feeds subscriptions: none is open here.
      subscriptions: { connections: 0, subscriptions: 0 },
    });
  });

  it('serves GraphiQL and all its assets from this process', async () => {
    const page = await fetch(`${app.url}/graphiql`);
    expect(page.status).toBe(200);
    const html = await page.text();
    const assets = [...html.matchAll(/(?:src|href)="(\/graphiql\/assets\/[^"]+)"/g)].map((m) => m[1]);
    expect(assets.length).toBeGreaterThanOrEqual(4);
    expect(html).not.toMatch(/https?:\/\/(?!127\.0\.0\.1)[^"]*\.(js|css)/); // no CDN
    for (const asset of assets) expect((await fetch(`${app.url}${asset}`)).status).toBe(200);
  });
});

describe.each(APPS)('the %s BFF when an upstream fails', (name) => {
  let proxy: TcpProxy;
  let app: TestApp;
  let ada: string;
  beforeAll(async () => {
    const [host, port] = system.productAddr.split(':');
    proxy = await new TcpProxy(host as string, Number(port)).start();
    app = await startApp(name, system, { productAddr: `127.0.0.1:${proxy.port}`, upstreamTimeoutMs: 1_000 });
    ada = await system.token(ADA, name);
  });
  afterAll(async () => {
    await app?.close();
    await proxy?.close();
  });

  it('nulls only the fields the Product service feeds, with a coded error naming it and no address', async () => {
    proxy.cut();
    try {
      const response = await app.graphql(
        '{ viewer { name invoices(first: 2) { edges { node { id total { amountMinor } lines { quantity product { name } } } } } } }',
        { token: ada },
      );
      expect(response.status).toBe(200);
      const edges = response.body.data.viewer.invoices.edges;
      expect(edges).toHaveLength(2);
      expect(response.body.data.viewer.name).toBe('Ada Lovelace');
      for (const edge of edges) {
        expect(edge.node.total.amountMinor).toBeGreaterThan(0);
        for (const line of edge.node.lines) expect(line.product).toBeNull();
      }
      const errors = response.body.errors ?? [];
      expect(errors.length).toBeGreaterThan(0);
      for (const error of errors) {
        expect(error.extensions).toMatchObject({
          code: expect.stringMatching(/^UPSTREAM_(UNAVAILABLE|TIMEOUT)$/),
          service: 'product',
        });
        expect(JSON.stringify(error)).not.toMatch(/127\.0\.0\.1|:\d{4,5}|ECONNREFUSED|stack/);
      }
      // Still ready (partial results beat no results), but it says what is missing.
      const ready = await fetch(`${app.url}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({
        status: 'degraded',
        upstreams: { product: false, identity: true, billing: true },
      });
    } finally {
      proxy.restore();
    }
    // And it recovers by itself once the service is back.
    let recovered = false;
    for (let i = 0; i < 40 && !recovered; i++) {
      const response = await app.graphql('{ product(id: "p-0001") { name } }');
      recovered = response.body.data?.product?.name !== undefined;
      if (!recovered) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(recovered).toBe(true);
  });
});
