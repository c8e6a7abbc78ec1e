// Client input is the client's mistake, not an upstream outage (issue 10): malformed ids,
// strings and cursors are refused at the edge as BAD_USER_INPUT naming the argument, never
// retried, never counted against a service's circuit breaker.
import { randomUUID } from 'node:crypto';
import type { AppName } from '@bff/resolvers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  appNames,
  callsByService,
  type System,
  startApp,
  startSystem,
  type TestApp,
} from '../support/system.ts';

/** A breaker that opens on a handful of failures, so a regression shows at once. */
const TOUCHY_BREAKER = { minimumRps: 1, samplingMs: 10_000, failureThreshold: 0.2, halfOpenAfterMs: 60_000 };

let system: System;
beforeAll(async () => {
  system = await startSystem();
});
afterAll(async () => {
  await system?.close();
});

const productQuery = 'query($id: ID!) { product(id: $id) { id name } }';

describe('the issue’s example: a NUL byte in a product id, on Android', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startApp('android', system, { resilience: TOUCHY_BREAKER });
  });
  afterAll(async () => {
    await app?.close();
  });

  it('50 anonymous requests are BAD_USER_INPUT naming `id`, reach no service, and leave the breaker closed', async () => {
    app.resetCalls();
    const responses = await Promise.all(
      Array.from({ length: 50 }, () => app.graphql(productQuery, { variables: { id: 'p-0001\u0000' } })),
    );
    for (const response of responses) {
      expect(response.status).toBe(200);
      expect(response.body.data).toEqual({ product: null });
      expect(response.body.errors).toHaveLength(1);
      expect(response.body.errors?.[0]).toMatchObject({
        path: ['product'],
        extensions: { code: 'BAD_USER_INPUT', argument: 'id' },
      });
    }
    expect(callsByService(app.calls).product).toBe(0);
    const guard = app.bff.guards.product;
    expect(guard.state).toBe('closed');
    expect(guard.stats).toMatchObject({ opened: 0, retries: 0, shortCircuited: 0 });

    const normal = await app.graphql(productQuery, { variables: { id: 'p-0001' } });
    expect(normal.body.errors).toBeUndefined();
    expect(normal.body.data.product).toMatchObject({ id: 'p-0001', name: expect.any(String) });
    const ready = (await (await fetch(`${app.url}/readyz`)).json()) as { breakers: { product: string } };
    expect(ready.breakers.product).toBe('closed');
  });
});

describe.each<AppName>(appNames)('edge validation in the %s BFF', (name) => {
  let app: TestApp;
  let token: string;
  beforeAll(async () => {
    app = await startApp(name, system, { resilience: TOUCHY_BREAKER });
    token = await system.token('grace@example.com', name);
  });
  afterAll(async () => {
    // Whatever each case sent, no service was held responsible for it.
    expect(app.bff.guards.product.stats.opened).toBe(0);
    expect(app.bff.guards.billing.stats.opened).toBe(0);
    expect(app.bff.guards.identity.stats.opened).toBe(0);
    await app?.close();
  });

  const refusedAs = (response: Awaited<ReturnType<TestApp['graphql']>>, argument: string) => {
    expect(response.body.errors?.[0]?.extensions, response.text).toMatchObject({
      code: 'BAD_USER_INPUT',
      argument,
    });
  };
  /** A billing cursor whose instant JavaScript reads and PostgreSQL does not. */
  const badInvoiceCursor = Buffer.from(
    JSON.stringify({ t: '1', id: '0b9f4c1e-7d1a-4a4e-9f1e-6f0b5a2c9d11' }),
  ).toString('base64url');

  it.each([
    ['product(id) empty', productQuery, { id: '' }, 'id'],
    ['product(id) too long', productQuery, { id: 'p'.repeat(65) }, 'id'],
    ['product(id) with an escape character', productQuery, { id: 'p-\u001b[2J' }, 'id'],
    [
      'products(search) with a NUL',
      'query($s: String) { products(search: $s) { totalCount } }',
      { s: 'kettle\u0000' },
      'search',
    ],
    [
      'products(category) with a NUL',
      'query($c: String) { products(category: $c) { totalCount } }',
      { c: 'books\u0000' },
      'category',
    ],
    [
      'products(after) that decodes to an id with a NUL',
      'query($a: String) { products(after: $a) { totalCount } }',
      { a: Buffer.from('product:p-0001\u0000').toString('base64url') },
      'after',
    ],
    [
      'products(after) with a NUL',
      'query($a: String) { products(after: $a) { totalCount } }',
      { a: `${Buffer.from('product:p-0001').toString('base64url')}\u0000` },
      'after',
    ],
  ])('refuses %s', async (_, query, variables, argument) => {
    app.resetCalls();
    refusedAs(await app.graphql(query, { variables }), argument);
    expect(callsByService(app.calls).product).toBe(0);
  });

  it('fails productsByIds as a whole for one malformed id, naming `ids`, but an unknown id is just null', async () => {
    const query = 'query($ids: [ID!]!) { productsByIds(ids: $ids) { id } }';
    const bad = await app.graphql(query, { variables: { ids: ['p-0001', 'p-0002\u0000', 'p-0003'] } });
    refusedAs(bad, 'ids');
    expect(bad.body.data).toBeNull();
    const unknown = await app.graphql(query, { variables: { ids: ['p-0001', 'p-9999', 'p-0003'] } });
    expect(unknown.body.errors).toBeUndefined();
    expect(unknown.body.data.productsByIds).toEqual([{ id: 'p-0001' }, null, { id: 'p-0003' }]);
  });

  it('refuses a billing cursor that JavaScript parses and PostgreSQL does not, naming `after`', async () => {
    const response = await app.graphql(
      'query($a: String) { viewer { name invoices(after: $a) { edges { cursor } } } }',
      { token, variables: { a: badInvoiceCursor } },
    );
    refusedAs(response, 'after');
    // The rest of the viewer still arrives.
    expect(response.body.data.viewer.name).toBe('Grace Hopper');
  });

  it('refuses malformed purchase and payInvoice arguments, naming each', async () => {
    const purchase = 'mutation($input: PurchaseInput!) { purchase(input: $input) { invoice { id } } }';
    refusedAs(
      await app.graphql(purchase, {
        token,
        variables: { input: { productId: 'p-0001\u0000', quantity: 1, idempotencyKey: randomUUID() } },
      }),
      'productId',
    );
    refusedAs(
      await app.graphql(purchase, {
        token,
        variables: { input: { productId: 'p-0001', quantity: 1, idempotencyKey: 'key\u0000' } },
      }),
      'idempotencyKey',
    );
    refusedAs(
      await app.graphql('mutation($id: ID!) { payInvoice(id: $id) { id } }', {
        token,
        variables: { id: '' },
      }),
      'id',
    );
  });
});

describe('the web app’s login', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startApp('web', system, { resilience: TOUCHY_BREAKER });
  });
  afterAll(async () => {
    await app?.close();
  });

  it('refuses an email with a NUL as BAD_USER_INPUT naming `email`, without asking Identity', async () => {
    app.resetCalls();
    const login = 'mutation($e: String!, $p: String!) { login(email: $e, password: $p) { expiresAt } }';
    const response = await app.graphql(login, {
      variables: { e: 'ada@example.com\u0000', p: 'demo-password' },
    });
    expect(response.body.errors?.[0]?.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      argument: 'email',
    });
    expect(callsByService(app.calls).identity).toBe(0);
    expect(app.bff.guards.identity.state).toBe('closed');
    const ok = await app.graphql(login, { variables: { e: 'ada@example.com', p: 'demo-password' } });
    expect(ok.body.errors).toBeUndefined();
  });
});
