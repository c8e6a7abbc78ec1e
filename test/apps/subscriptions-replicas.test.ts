// Subscriptions across replicas: two web BFF replicas, each with its own connection to RabbitMQ
// (as separate pods would have), the services publishing on a third. A change made through one
// replica reaches the subscribers on the other within a second, and every subscriber exactly
// once, whichever replica it is connected to.
import { randomUUID } from 'node:crypto';
import { BffErrorCode } from '@bff/error-codes';
import { realServer, waitFor } from '@bff/testkit';
import { createProductClient, type ProductClient } from '@bff/upstream-clients';
import type { Client, ExecutionResult } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rabbitMqRun } from '../support/rabbitmq-run.ts';
import { type Collected, collect, subscriptionClient } from '../support/subscription-client.ts';
import { type System, startApp, startSystem, type TestApp } from '../support/system.ts';

const amqpUrl = process.env.AMQP_URL;
const real = await realServer('RabbitMQ', amqpUrl);

const INVOICE_CHANGED = /* GraphQL */ `
  subscription { invoiceChanged { id status total { amountMinor } } }
`;
const PRODUCT_CHANGED = /* GraphQL */ `
  subscription Prices($ids: [ID!]!) { productChanged(ids: $ids) { id price { amountMinor currency } } }
`;
const PURCHASE = /* GraphQL */ `
  mutation Buy($input: PurchaseInput!) { purchase(input: $input) { invoice { id status } } }
`;
const PAY = /* GraphQL */ `
  mutation Pay($id: ID!) { payInvoice(id: $id) { id status } }
`;
const PRICE = /* GraphQL */ `
  query Price($id: ID!) { product(id: $id) { price { amountMinor currency } } }
`;

/** What the issue promises: a change is on the other replica's sockets within a second. */
const WITHIN_MS = 1_000;

const invoicesIn = (stream: Collected) =>
  stream.results.map(
    (result) => (result.data as { invoiceChanged: { id: string; status: string } }).invoiceChanged,
  );
const productsIn = (stream: Collected) =>
  stream.results.map(
    (result: ExecutionResult) =>
      (result.data as { productChanged: { id: string; price: { amountMinor: number } } }).productChanged,
  );
const statsOf = (app: TestApp) =>
  app.bff.subscriptionStats?.() ?? { connections: -1, subscriptions: -1, delivered: -1 };
const ms = (value: number) => `${Math.round(value)} ms`;

describe.runIf(real)('subscriptions with two web replicas sharing RabbitMQ', () => {
  const rabbit = rabbitMqRun(amqpUrl as string, 'live-test');
  const bus = () => rabbit.bus();
  let system: System;
  let replicas: [TestApp, TestApp];
  let products: ProductClient;
  let ada: string;
  let grace: string;
  const clients: Client[] = [];
  const open = (app: TestApp, connectionParams: Record<string, unknown> = {}) => {
    const made = subscriptionClient(app, connectionParams);
    clients.push(made.client);
    return made.client;
  };

  beforeAll(async () => {
    system = await startSystem({ bus: bus() });
    // Each replica has its own connection to the broker, and so its own transient queue.
    replicas = [
      await startApp('web', system, { events: bus() }),
      await startApp('web', system, { events: bus() }),
    ];
    products = createProductClient({ address: system.productAddr });
    ada = await system.token('ada@example.com', 'web');
    grace = await system.token('grace@example.com', 'web');
  });
  afterAll(async () => {
    for (const made of clients) await made.dispose();
    products?.close();
    for (const app of replicas ?? []) await app?.close();
    await system?.close();
    await rabbit.cleanUp();
  });

  it('sends a purchase made through replica 0 to the viewer subscribed on replica 1 within a second, exactly once', async () => {
    const stream = collect(open(replicas[1], { Authorization: `Bearer ${ada}` }), INVOICE_CHANGED);
    await waitFor('the subscription is active on replica 1', () => statsOf(replicas[1]).subscriptions === 1);
    const deliveredBefore = replicas.map((app) => statsOf(app).delivered);

    const sentAt = performance.now();
    const bought = await replicas[0].graphql(PURCHASE, {
      token: ada,
      variables: { input: { productId: 'p-0002', quantity: 1, idempotencyKey: randomUUID() } },
    });
    const answeredAt = performance.now();
    expect(bought.body.errors).toBeUndefined();
    const id = bought.body.data.purchase.invoice.id as string;
    await waitFor('the invoice reaches replica 1', () => stream.results.length >= 1, 10_000);
    const latency = (stream.receivedAt[0] as number) - answeredAt;
    console.info(
      `invoiceChanged across replicas: on replica 1's socket ${ms(latency)} after the purchase answered on replica 0 (${ms((stream.receivedAt[0] as number) - sentAt)} after it was sent)`,
    );
    expect(invoicesIn(stream)[0]).toMatchObject({ id, status: 'OPEN' });

    // Anything more the purchase could send (a second copy through either replica's queue) would
    // come before the payment's event, which follows it on the same exchange: wait for that
    // marker instead of sleeping, then count.
    const paid = await replicas[0].graphql(PAY, { token: ada, variables: { id } });
    expect(paid.body.data?.payInvoice.status).toBe('PAID');
    await waitFor('the payment reaches replica 1', () =>
      invoicesIn(stream).some((invoice) => invoice.status === 'PAID'),
    );
    expect(invoicesIn(stream)).toEqual([
      expect.objectContaining({ id, status: 'OPEN' }),
      expect.objectContaining({ id, status: 'PAID' }),
    ]);
    expect(stream.errors).toEqual([]);
    // Replica 0 heard both events too, but had no one to give them to.
    expect(statsOf(replicas[0]).delivered - (deliveredBefore[0] as number)).toBe(0);
    expect(statsOf(replicas[1]).delivered - (deliveredBefore[1] as number)).toBe(2);
    expect(latency).toBeLessThan(WITHIN_MS);
    stream.stop();
  });

  it("gives every device of one viewer, on either replica, each of the viewer's changes exactly once", async () => {
    const devices = [
      {
        replica: 0,
        stream: collect(open(replicas[0], { Authorization: `Bearer ${grace}` }), INVOICE_CHANGED),
      },
      {
        replica: 1,
        stream: collect(open(replicas[1], { Authorization: `Bearer ${grace}` }), INVOICE_CHANGED),
      },
      {
        replica: 1,
        stream: collect(open(replicas[1], { Authorization: `Bearer ${grace}` }), INVOICE_CHANGED),
      },
    ];
    await waitFor(
      'every device is subscribed',
      () => statsOf(replicas[0]).subscriptions === 1 && statsOf(replicas[1]).subscriptions === 2,
    );
    const bought = await replicas[1].graphql(PURCHASE, {
      token: grace,
      variables: { input: { productId: 'p-0003', quantity: 2, idempotencyKey: randomUUID() } },
    });
    const answeredAt = performance.now();
    expect(bought.body.errors).toBeUndefined();
    const id = bought.body.data.purchase.invoice.id as string;
    await waitFor('the invoice reaches every device', () =>
      devices.every(({ stream }) => stream.results.length >= 1),
    );
    console.info(
      `invoiceChanged to 3 devices on 2 replicas: ${devices.map(({ replica, stream }) => `replica ${replica} ${ms((stream.receivedAt[0] as number) - answeredAt)}`).join(', ')} after the purchase answered`,
    );
    const paid = await replicas[0].graphql(PAY, { token: grace, variables: { id } });
    expect(paid.body.data?.payInvoice.status).toBe('PAID');
    await waitFor('the payment reaches every device', () =>
      devices.every(({ stream }) => invoicesIn(stream).some((invoice) => invoice.status === 'PAID')),
    );
    for (const { stream } of devices) {
      expect(invoicesIn(stream)).toEqual([
        expect.objectContaining({ id, status: 'OPEN' }),
        expect.objectContaining({ id, status: 'PAID' }),
      ]);
      expect(stream.errors).toEqual([]);
      stream.stop();
    }
    await waitFor(
      'the subscriptions end on both replicas',
      () => statsOf(replicas[0]).subscriptions === 0 && statsOf(replicas[1]).subscriptions === 0,
    );
  });

  it('refuses invoiceChanged signed out with UNAUTHENTICATED, on either replica', async () => {
    for (const app of replicas) {
      const refused = collect(open(app), INVOICE_CHANGED);
      await waitFor('the subscription is refused', () => refused.errors.length > 0 || refused.completed);
      expect(refused.errors).toEqual([
        [
          expect.objectContaining({
            extensions: expect.objectContaining({ code: BffErrorCode.Unauthenticated }),
          }),
        ],
      ]);
      expect(refused.results).toEqual([]);
      await waitFor('nothing is held for it', () => statsOf(app).subscriptions === 0);
    }
  });

  it("follows Product's UpdatePrice on both replicas, each subscriber once per change", async () => {
    const ids = ['p-0011', 'p-0012'];
    const streams = replicas.map((app) => collect(open(app), PRODUCT_CHANGED, { ids }));
    await waitFor('subscribed on both replicas', () =>
      replicas.every((app) => statsOf(app).subscriptions === 1),
    );
    const prices = await Promise.all(
      ids.map(async (id) => {
        const response = await replicas[0].graphql(PRICE, { variables: { id } });
        return response.body.data.product.price as { amountMinor: number; currency: string };
      }),
    );
    const [first, second] = prices as [(typeof prices)[number], (typeof prices)[number]];
    await products.updatePrice('p-0011', { amountMinor: first.amountMinor + 13, currency: first.currency });
    const updatedAt = performance.now();
    await waitFor('the change reaches both replicas', () =>
      streams.every((stream) => stream.results.length >= 1),
    );
    console.info(
      `productChanged after UpdatePrice: ${streams.map((stream, index) => `replica ${index} ${ms((stream.receivedAt[0] as number) - updatedAt)}`).join(', ')} after it answered`,
    );
    // The marker: a later change to the other product, after which the count is final.
    await products.updatePrice('p-0012', { amountMinor: second.amountMinor + 17, currency: second.currency });
    await waitFor('the marker reaches both replicas', () =>
      streams.every((stream) => stream.results.length >= 2),
    );
    for (const stream of streams) {
      expect(productsIn(stream)).toEqual([
        { id: 'p-0011', price: { amountMinor: first.amountMinor + 13, currency: first.currency } },
        { id: 'p-0012', price: { amountMinor: second.amountMinor + 17, currency: second.currency } },
      ]);
      stream.stop();
    }
  });
});
