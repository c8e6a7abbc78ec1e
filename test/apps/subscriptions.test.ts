// GraphQL subscriptions over WebSocket (graphql-transport-ws, on /graphql), in one process with the
// in-process bus: events reach their subscribers once, through the same loaders as queries, and
// everything the HTTP path enforces is enforced when a socket connects and when it subscribes.
import { randomUUID } from 'node:crypto';
import { BffErrorCode } from '@bff/error-codes';
import { newEvent } from '@bff/events';
import { waitFor } from '@bff/testkit';
import { createProductClient, type ProductClient } from '@bff/upstream-clients';
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, subscriptionClient } from '../support/subscription-client.ts';
import { type System, startApp, startSystem, type TestApp } from '../support/system.ts';

const INVOICE_CHANGED = /* GraphQL */ `
  subscription { invoiceChanged { id status total { amountMinor formatted } lines { quantity product { id name } } } }
`;
const PRODUCT_CHANGED = /* GraphQL */ `
  subscription Prices($ids: [ID!]!) { productChanged(ids: $ids) { id price { amountMinor currency } } }
`;
const PURCHASE = /* GraphQL */ `
  mutation Buy($input: PurchaseInput!) { purchase(input: $input) { invoice { id status } } }
`;

describe('subscriptions over WebSocket, one replica', () => {
  let system: System;
  let web: TestApp;
  let products: ProductClient;
  let ada: string;
  const clients: Client[] = [];
  const open = (...args: Parameters<typeof subscriptionClient>) => {
    const made = subscriptionClient(...args);
    clients.push(made.client);
    return made;
  };

  beforeAll(async () => {
    system = await startSystem();
    web = await startApp('web', system, { corsOrigins: ['https://shop.example'] });
    products = createProductClient({ address: system.productAddr });
    ada = await system.token('ada@example.com', 'web');
  });
  afterAll(async () => {
    for (const made of clients) await made.dispose();
    products?.close();
    await web?.close();
    await system?.close();
  });

  it('sends productChanged after a price changes on the Product service, once per change', async () => {
    const { client: anonymous } = open(web);
    const stream = collect(anonymous, PRODUCT_CHANGED, { ids: ['p-0003', 'p-0004'] });
    await waitFor(
      'the subscription is active',
      () => web.bff.app.server.listening && subscriptionsOf(web) >= 1,
      5_000,
    );
    const before = await web.graphql('{ product(id: "p-0003") { price { amountMinor currency } } }');
    const price = before.body.data.product.price as { amountMinor: number; currency: string };
    await products.updatePrice('p-0003', { amountMinor: price.amountMinor + 7, currency: price.currency });
    await products.updatePrice('p-0099', { amountMinor: 1234, currency: price.currency });
    await waitFor('the change arrives', () => stream.results.length >= 1, 5_000);
    expect(stream.results[0]).toEqual({
      data: {
        productChanged: {
          id: 'p-0003',
          price: { amountMinor: price.amountMinor + 7, currency: price.currency },
        },
      },
    });
    // The change to a product nobody listed reaches no one.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(stream.results).toHaveLength(1);
    stream.stop();
    await waitFor('the subscription ends', () => subscriptionsOf(web) === 0, 5_000);
  });

  it('sends the viewer invoiceChanged after a purchase, exactly once, and refuses it signed out', async () => {
    const { client: signedIn } = open(web, { Authorization: `Bearer ${ada}` });
    const mine = collect(signedIn, INVOICE_CHANGED);
    const { client: anonymous } = open(web);
    const refused = collect(anonymous, INVOICE_CHANGED);
    await waitFor(
      'the anonymous subscription is refused',
      () => refused.errors.length > 0 || refused.completed,
      5_000,
    );
    expect(JSON.stringify(refused.errors)).toContain(BffErrorCode.Unauthenticated);
    await waitFor('the subscription is active', () => subscriptionsOf(web) >= 1, 5_000);
    const bought = await web.graphql(PURCHASE, {
      token: ada,
      variables: { input: { productId: 'p-0002', quantity: 2, idempotencyKey: randomUUID() } },
    });
    expect(bought.body.errors).toBeUndefined();
    const id = bought.body.data.purchase.invoice.id as string;
    await waitFor('the invoice arrives', () => mine.results.length >= 1, 5_000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(mine.results).toHaveLength(1);
    const invoice = (mine.results[0]?.data as { invoiceChanged?: { id: string; status: string } } | undefined)
      ?.invoiceChanged;
    expect(invoice).toMatchObject({ id, status: 'OPEN' });
    const paid = await web.graphql('mutation Pay($id: ID!) { payInvoice(id: $id) { id status } }', {
      token: ada,
      variables: { id },
    });
    expect(paid.body.errors).toBeUndefined();
    await waitFor('the payment arrives', () => mine.results.length >= 2, 5_000);
    expect(mine.results[1]?.data).toMatchObject({ invoiceChanged: { id, status: 'PAID' } });
    mine.stop();
  });

  it('keeps a reading subscriber through a burst of changes to every product it follows (conflated, never overflowed)', async () => {
    const { client: anonymous } = open(web);
    const ids = Array.from({ length: 100 }, (_, i) => `p-${String(i + 1).padStart(4, '0')}`);
    const stream = collect(anonymous, PRODUCT_CHANGED, { ids });
    await waitFor('the subscription is active', () => subscriptionsOf(web) >= 1, 5_000);
    // Three changes to each of the 100 products, back to back, as a bulk re-price would publish them.
    for (let round = 0; round < 3; round++)
      for (const id of ids)
        await system.bus.publish(
          newEvent('product', 'product.price_changed', 1, {
            productId: id,
            previous: { amountMinor: 1, currency: 'EUR' },
            current: { amountMinor: 2 + round, currency: 'EUR' },
          }),
        );
    await waitFor(
      'every product has been sent at least once',
      () =>
        new Set(
          stream.results.map((r) => (r.data as { productChanged?: { id: string } })?.productChanged?.id),
        ).size === 100,
      15_000,
    );
    expect(stream.results.every((result) => result.errors === undefined)).toBe(true);
    expect(stream.completed).toBe(false);
    stream.stop();
  });

  it('closes a socket whose token is invalid with 4401, and one for another app with 4403', async () => {
    const bad = open(web, { Authorization: 'Bearer not.a.token' });
    const attempt = collect(bad.client, PRODUCT_CHANGED, { ids: ['p-0001'] });
    await waitFor('closed', () => bad.closes.length > 0, 5_000);
    expect(bad.closes[0]?.code).toBe(4401);
    expect(attempt.results).toHaveLength(0);

    const ios = await system.token('ada@example.com', 'ios');
    const other = open(web, { Authorization: `Bearer ${ios}` });
    collect(other.client, PRODUCT_CHANGED, { ids: ['p-0001'] });
    await waitFor('closed', () => other.closes.length > 0, 5_000);
    expect(other.closes[0]?.code).toBe(4403);
  });

  it('refuses an upgrade from another site (cross-site WebSocket hijacking)', async () => {
    const { client: foreign, closes } = open(web, {}, { origin: 'https://evil.example' });
    const attempt = collect(foreign, PRODUCT_CHANGED, { ids: ['p-0001'] });
    await waitFor('refused', () => closes.length > 0 || attempt.errors.length > 0, 5_000);
    expect(attempt.results).toHaveLength(0);
    const { client: allowed } = open(web, {}, { origin: 'https://shop.example' });
    const ok = collect(allowed, PRODUCT_CHANGED, { ids: ['p-0001'] });
    await waitFor('active', () => subscriptionsOf(web) >= 1, 5_000);
    ok.stop();
  });

  it('serves only subscriptions, within the operation limits', async () => {
    const { client: anonymous } = open(web);
    const query = collect(anonymous, '{ product(id: "p-0001") { id } }');
    await waitFor('refused', () => query.errors.length > 0, 5_000);
    expect(JSON.stringify(query.errors)).toContain(BffErrorCode.BadRequest);
    const tooMany = collect(anonymous, PRODUCT_CHANGED, {
      ids: Array.from({ length: 101 }, (_, i) => `p-${i}`),
    });
    await waitFor('refused', () => tooMany.errors.length > 0 || tooMany.results.length > 0, 5_000);
    expect(JSON.stringify([...tooMany.errors, ...tooMany.results])).toMatch(
      /BAD_USER_INPUT|OPERATION_LIMIT_EXCEEDED|RATE_LIMITED/,
    );
    const broken = collect(anonymous, 'subscription { productChanged(ids: ["p-1"]) { nope } }');
    await waitFor('refused', () => broken.errors.length > 0, 5_000);
    expect(JSON.stringify(broken.errors)).toContain(BffErrorCode.GraphqlValidationFailed);
  });

  it('caps subscriptions per connection with TOO_MANY_SUBSCRIPTIONS', async () => {
    const app = await startApp('web', system, { subscriptions: { maxPerConnection: 2 } });
    try {
      const { client: anonymous } = subscriptionClient(app);
      const streams = [0, 1, 2].map((i) => collect(anonymous, PRODUCT_CHANGED, { ids: [`p-000${i + 1}`] }));
      await waitFor('the third is refused', () => (streams[2]?.errors.length ?? 0) > 0, 5_000);
      expect(JSON.stringify(streams[2]?.errors)).toContain(BffErrorCode.TooManySubscriptions);
      expect(subscriptionsOf(app)).toBe(2);
      await anonymous.dispose();
    } finally {
      await app.close();
    }
  });

  it('closes every socket with 1001 and a reason when the BFF shuts down', async () => {
    const app = await startApp('web', system);
    const { client: anonymous, closes } = subscriptionClient(app);
    collect(anonymous, PRODUCT_CHANGED, { ids: ['p-0001'] });
    await waitFor('active', () => subscriptionsOf(app) >= 1, 5_000);
    await app.close();
    await waitFor('closed', () => closes.length > 0, 5_000);
    expect(closes[0]?.code).toBe(1001);
    expect(closes[0]?.reason).toMatch(/shutting down/);
    await anonymous.dispose();
  });
});

function subscriptionsOf(app: TestApp): number {
  return app.bff.subscriptionStats?.().subscriptions ?? -1;
}
