// Cross-service event flow, with each service on its own bus connection as separate processes
// would be: over the in-process bus always, and over the real RabbitMQ when it answers.
import { randomBytes, randomUUID } from 'node:crypto';
import { type RunningBillingService, startBillingService } from '@bff/billing-service';
import { type EventBus, type EventEnvelope, InProcessEventBus, RabbitMqEventBus } from '@bff/events';
import { type RunningIdentityService, startIdentityService } from '@bff/identity-service';
import { type RunningProductService, startProductService } from '@bff/product-service';
import { realServer, waitFor } from '@bff/testkit';
import { createProductClient, type ProductClient } from '@bff/upstream-clients';
import { connect } from 'amqplib';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const amqpUrl = process.env.AMQP_URL;
const transports: ('in-process' | 'rabbitmq')[] = ['in-process'];
if (await realServer('RabbitMQ', amqpUrl)) transports.push('rabbitmq');

describe.each(transports)('domain events between services (%s)', (transport) => {
  const run = randomBytes(4).toString('hex');
  const exchange = `bff.e2e.${run}`;
  const shared = new InProcessEventBus();
  const buses: EventBus[] = [];
  const busFor = () => {
    if (transport === 'in-process') return shared;
    // Queues of this run's own: another run or a dev stack on the broker uses the same consumer names.
    const bus = new RabbitMqEventBus({ url: amqpUrl as string, exchange, queuePrefix: `${run}.` });
    buses.push(bus);
    return bus;
  };
  const observed: EventEnvelope[] = [];
  const observer = `e2e.${run}.observer`;
  let identity: RunningIdentityService;
  let product: RunningProductService;
  let billing: RunningBillingService;
  let products: ProductClient;
  const silent = pino({ level: 'silent' });

  beforeAll(async () => {
    await busFor().subscribe(observer, ['billing.invoice.*', 'identity.user.registered'], async (e) => {
      observed.push(e);
    });
    product = await startProductService({
      port: 0,
      database: { schema: 'product' },
      bus: busFor(),
      logger: silent,
    });
    products = createProductClient({ address: product.address });
    identity = await startIdentityService({
      port: 0,
      database: { schema: 'identity' },
      bus: busFor(),
      logLevel: false,
    });
    billing = await startBillingService({
      port: 0,
      database: { schema: 'billing' },
      bus: busFor(),
      products,
      logLevel: false,
    });
  });
  afterAll(async () => {
    await billing?.close();
    await identity?.close();
    products?.close();
    await product?.close();
    for (const bus of buses) await bus.close();
    await shared.close();
    if (transport === 'rabbitmq') {
      const model = await connect(amqpUrl as string);
      const channel = await model.createChannel();
      for (const queue of [observer, 'billing.accounts']) {
        await channel.deleteQueue(`${run}.${queue}`);
        await channel.deleteQueue(`${run}.${queue}.dead-letter`);
      }
      await channel.deleteExchange(exchange);
      await channel.deleteExchange(`${exchange}.dead-letter`);
      await model.close();
    }
  });

  const post = async (url: string, body: unknown, headers: Record<string, string> = {}) => {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: JSON.parse(await response.text()) };
  };
  const settle = () => new Promise((resolve) => setTimeout(resolve, 300));

  it('a user registered in Identity gets a Billing account, and can buy at once after', async () => {
    const email = `e2e-${run}@example.com`;
    const registered = await post(`${identity.url}/v1/users`, {
      email,
      password: 'long enough pw',
      name: 'E2E',
    });
    expect(registered.status).toBe(201);
    const userId = registered.body.id as string;
    await waitFor('the account', async () => {
      const response = await fetch(`${billing.url}/v1/accounts?userIds=${userId}`);
      return ((await response.json()) as { accounts: unknown[] }).accounts.length === 1;
    });
    const bought = await post(
      `${billing.url}/v1/purchases`,
      { userId, productId: 'p-0100', quantity: 1 },
      { 'idempotency-key': randomUUID() },
    );
    expect(bought.status).toBe(201);
    await settle();
    expect(
      observed.filter(
        (e) => e.type === 'identity.user.registered' && (e.payload as { userId: string }).userId === userId,
      ),
    ).toHaveLength(1);
  });

  it('a purchase and a payment each deliver their event exactly once', async () => {
    const userId = '0a1d2a9e-5a3c-4c1e-9d0a-000000009ace';
    const key = randomUUID();
    const bought = await post(
      `${billing.url}/v1/purchases`,
      { userId, productId: 'p-0101', quantity: 2 },
      { 'idempotency-key': key },
    );
    await post(
      `${billing.url}/v1/purchases`,
      { userId, productId: 'p-0101', quantity: 2 },
      { 'idempotency-key': key },
    );
    const invoiceId = bought.body.invoice.id as string;
    await post(`${billing.url}/v1/invoices/${invoiceId}/pay`, {});
    await post(`${billing.url}/v1/invoices/${invoiceId}/pay`, {});
    const about = (type: string) =>
      observed.filter((e) => e.type === type && (e.payload as { invoiceId: string }).invoiceId === invoiceId);
    await waitFor(
      'both events',
      () => about('billing.invoice.created').length >= 1 && about('billing.invoice.paid').length >= 1,
    );
    await settle();
    expect(about('billing.invoice.created')).toHaveLength(1);
    expect(about('billing.invoice.paid')).toHaveLength(1);
    expect(about('billing.invoice.created')[0]).toMatchObject({
      version: 1,
      source: 'billing',
      payload: { userId, lines: [{ productId: 'p-0101', quantity: 2 }] },
    });
  });
});
