// The response cache across replicas: two web BFF replicas sharing one Redis and hearing the
// services' domain events over RabbitMQ, as production runs them. A changed price is served by
// both long before the catalogue's minute is up; one viewer's cached invoices never reach another,
// and a payment shows at once, whichever replica it went through and whichever is read next.
import { randomBytes } from 'node:crypto';
import { loadManifest } from '@bff/persisted-operations';
import { realServer, waitFor } from '@bff/testkit';
import { createProductClient, type ProductClient } from '@bff/upstream-clients';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rabbitMqRun } from '../support/rabbitmq-run.ts';
import {
  callsByService,
  discoveredApps,
  type System,
  startApp,
  startSystem,
  type TestApp,
} from '../support/system.ts';

const amqpUrl = process.env.AMQP_URL;
const redisUrl = process.env.REDIS_URL;
const real = (await realServer('RabbitMQ', amqpUrl)) && (await realServer('Redis', redisUrl));

const PRODUCT = /* GraphQL */ `
  query Price($id: ID!) { product(id: $id) { id price { amountMinor currency } } }
`;
const INVOICES = /* GraphQL */ `
  query MyInvoices { viewer { id invoices(first: 50) { edges { node { id status total { amountMinor } } } } } }
`;
const PAY = /* GraphQL */ `
  mutation Pay($id: ID!) { payInvoice(id: $id) { id status } }
`;
const ADA = 'ada@example.com';
const GRACE = 'grace@example.com';

interface InvoiceNode {
  id: string;
  status: string;
  total: { amountMinor: number };
}
const invoicesOf = (body: { data?: { viewer?: { invoices?: { edges: { node: InvoiceNode }[] } } } }) =>
  body.data?.viewer?.invoices?.edges.map((edge) => edge.node) ?? [];

describe.runIf(real)('the response cache with two replicas sharing Redis and RabbitMQ', () => {
  const rabbit = rabbitMqRun(amqpUrl as string, 'cache-test');
  const bus = () => rabbit.bus();
  const keyPrefix = `cache-test-${randomBytes(4).toString('hex')}`;
  let system: System;
  let replicas: [TestApp, TestApp];
  /** The same app without a cache: what a fresh execution answers now. */
  let oracle: TestApp;
  let products: ProductClient;
  const tokens: Record<string, string> = {};
  const tokenOf = (email: string) => tokens[email] as string;

  beforeAll(async () => {
    system = await startSystem({ bus: bus() });
    // Each replica has its own connection to the broker, as separate pods would.
    const replica = () => startApp('web', system, { events: bus(), responseCache: { redisUrl, keyPrefix } });
    replicas = [await replica(), await replica()];
    oracle = await startApp('web', system, { responseCache: { enabled: false } });
    products = createProductClient({ address: system.productAddr });
    tokens[ADA] = await system.token(ADA, 'web');
    tokens[GRACE] = await system.token(GRACE, 'web');
  });
  afterAll(async () => {
    products?.close();
    for (const app of [...(replicas ?? []), oracle]) await app?.close();
    await system?.close();
    await rabbit.cleanUp();
    const raw = new Redis(redisUrl as string);
    const keys = await raw.keys(`${keyPrefix}:*`);
    if (keys.length) await raw.del(...keys);
    raw.disconnect();
  });

  it('serves a changed price from both replicas as soon as the event arrives, though the catalogue is cached for a minute', async () => {
    const id = 'p-0007';
    const price = async (app: TestApp) => {
      const response = await app.graphql(PRODUCT, { variables: { id } });
      expect(response.body.errors).toBeUndefined();
      return { response, amountMinor: response.body.data.product.price.amountMinor as number };
    };
    const first = await price(replicas[0]);
    expect(first.response.headers.get('cache-control')).toBe('public, max-age=60');
    // The other replica is answered from the shared cache: no upstream call, an Age header.
    replicas[1].resetCalls();
    const second = await price(replicas[1]);
    expect(second.amountMinor).toBe(first.amountMinor);
    expect(second.response.headers.get('age')).not.toBeNull();
    expect(callsByService(replicas[1].calls).product).toBe(0);

    const changed = first.amountMinor + 101;
    const currency = first.response.body.data.product.price.currency as string;
    const started = performance.now();
    await products.updatePrice(id, { amountMinor: changed, currency });
    const seenAfter: number[] = [];
    await Promise.all(
      replicas.map(async (app, index) => {
        await waitFor(
          `replica ${index} serves the new price`,
          async () => (await price(app)).amountMinor === changed,
          20_000,
        );
        seenAfter[index] = performance.now() - started;
      }),
    );
    console.info(
      `response cache: new price served by both replicas ${seenAfter.map((ms) => `${Math.round(ms)} ms`).join(' and ')} after UpdatePrice (maxAge 60 s)`,
    );
    // Well inside the minute the entry was cached for: the event dropped it, not its age.
    for (const ms of seenAfter) expect(ms).toBeLessThan(30_000);
    // Then the new price is cached again and shared (answers whose requests began within the
    // replicas' allowed clock skew of the invalidation are not stored, so this can take a moment).
    await waitFor(
      'the new price is served from the cache again',
      async () => {
        replicas[0].resetCalls();
        const again = await price(replicas[0]);
        return (
          again.amountMinor === changed &&
          again.response.headers.get('age') !== null &&
          callsByService(replicas[0].calls).product === 0
        );
      },
      20_000,
    );
  });

  it("never serves Ada's cached invoices to Grace, and shows Ada's payment at once on the other replica", async () => {
    const read = (app: TestApp, email: string) => app.graphql(INVOICES, { token: tokenOf(email) });
    const ada = await read(replicas[0], ADA);
    expect(ada.body.errors).toBeUndefined();
    expect(ada.headers.get('cache-control')).toBe('private, no-store');
    const adaId = ada.body.data.viewer.id as string;
    // Ada again, on the other replica: from the shared cache.
    replicas[1].resetCalls();
    const adaAgain = await read(replicas[1], ADA);
    expect(adaAgain.text).toBe(ada.text);
    expect(adaAgain.headers.get('age')).not.toBeNull();
    expect(callsByService(replicas[1].calls).billing).toBe(0);
    // Grace, on both replicas, with Ada's answer cached in both: her own invoices only.
    for (const app of replicas) {
      const grace = await read(app, GRACE);
      expect(grace.body.data.viewer.id).not.toBe(adaId);
      expect(grace.text).toBe((await read(oracle, GRACE)).text);
      const adaInvoiceIds = new Set(invoicesOf(ada.body).map((invoice) => invoice.id));
      for (const invoice of invoicesOf(grace.body)) expect(adaInvoiceIds.has(invoice.id)).toBe(false);
    }
    // Anonymous: no viewer, nothing of anyone's.
    const anonymous = await replicas[1].graphql(INVOICES);
    expect(anonymous.body.data?.viewer).toBeNull();

    // Ada pays an open invoice through replica 0 and reads at once through replica 1.
    const open = invoicesOf(ada.body).find((invoice) => invoice.status === 'OPEN');
    expect(open, 'Ada has an open invoice in the demo data').toBeDefined();
    const paid = await replicas[0].graphql(PAY, { token: tokenOf(ADA), variables: { id: open?.id } });
    expect(paid.body.data?.payInvoice.status).toBe('PAID');
    expect(paid.headers.get('cache-control')).toBe('no-store');
    const afterPayment = await read(replicas[1], ADA);
    expect(invoicesOf(afterPayment.body).find((invoice) => invoice.id === open?.id)?.status).toBe('PAID');
    expect(afterPayment.text).toBe((await read(oracle, ADA)).text);
  });

  it('drops cached invoices when Billing reports a change made without the BFF (the event path)', async () => {
    const read = (app: TestApp) => app.graphql(INVOICES, { token: tokenOf(GRACE) });
    const before = await read(replicas[0]);
    await read(replicas[1]); // cached in Redis for both
    const open = invoicesOf(before.body).find((invoice) => invoice.status === 'OPEN');
    expect(open, 'Grace has an open invoice in the demo data').toBeDefined();
    // Paid straight at Billing (another channel, a back office): only the event tells the BFFs.
    const response = await fetch(`${system.billingUrl}/v1/invoices/${open?.id}/pay`, { method: 'POST' });
    expect(response.status).toBe(200);
    for (const [index, app] of replicas.entries()) {
      await waitFor(
        `replica ${index} shows the invoice paid`,
        async () =>
          invoicesOf((await read(app)).body).find((invoice) => invoice.id === open?.id)?.status === 'PAID',
        20_000,
      );
    }
  });

  it('answers every viewer, on every replica, in any order of reads and payments, exactly as a fresh execution would', async () => {
    const viewers = [ADA, GRACE] as const;
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            viewer: fc.constantFrom(...viewers),
            replica: fc.constantFrom(0, 1),
            pay: fc.boolean(),
          }),
          { minLength: 3, maxLength: 8 },
        ),
        async (steps) => {
          for (const step of steps) {
            const app = replicas[step.replica];
            if (step.pay) {
              const current = invoicesOf(
                (await oracle.graphql(INVOICES, { token: tokenOf(step.viewer) })).body,
              );
              const open = current.find((invoice) => invoice.status === 'OPEN');
              if (open) await app.graphql(PAY, { token: tokenOf(step.viewer), variables: { id: open.id } });
              continue;
            }
            const served = await app.graphql(INVOICES, { token: tokenOf(step.viewer) });
            const fresh = await oracle.graphql(INVOICES, { token: tokenOf(step.viewer) });
            expect(served.text).toBe(fresh.text);
          }
        },
      ),
      { numRuns: 15 },
    );
  });
});

describe('the response cache over HTTP, as a mobile client and a CDN see it', () => {
  let system: System;
  let ios: TestApp;
  let catalogueHash: string;
  const versionHeaders = { 'x-apollo-operation-name': 'Catalogue', 'x-app-version': '9.9.9' };
  const get = (variables: Record<string, unknown>, headers: Record<string, string> = {}) => {
    const query = new URLSearchParams({
      operationName: 'Catalogue',
      variables: JSON.stringify(variables),
      extensions: JSON.stringify({ persistedQuery: { version: 1, sha256Hash: catalogueHash } }),
    });
    return fetch(`${ios.url}/graphql?${query}`, { headers: { ...versionHeaders, ...headers } });
  };

  beforeAll(async () => {
    system = await startSystem();
    // As production runs it: trusted documents only, the version policy on.
    ios = await startApp('ios', system, {
      production: true,
      graphiql: false,
      appVersion: { minimum: '1.0.0', storeUrl: 'https://apps.apple.com/app/id0' },
    });
    const manifest = await loadManifest(
      discoveredApps.find((app) => app.name === 'ios')?.manifestPath as string,
    );
    catalogueHash = manifest.operations.find((operation) => operation.name === 'Catalogue')?.id as string;
  });
  afterAll(async () => {
    await ios?.close();
    await system?.close();
  });

  it('serves a trusted document over GET with Cache-Control, Vary, an ETag, and 304 for a matching If-None-Match', async () => {
    const variables = { first: 5, category: 'audio' };
    const first = await get(variables);
    expect(first.status).toBe(200);
    expect(first.headers.get('cache-control')).toBe('public, max-age=60');
    expect(first.headers.get('vary')).toBe('accept-language, x-app-version');
    const etag = first.headers.get('etag');
    expect(etag).toMatch(/^"[\w-]+"$/);
    const body = await first.text();
    ios.resetCalls();
    const again = await get(variables);
    expect(await again.text()).toBe(body);
    expect(again.headers.get('etag')).toBe(etag);
    expect(again.headers.get('age')).not.toBeNull();
    expect(ios.calls).toHaveLength(0);
    // A CDN or the client revalidating: 304, no body, no upstream call.
    const revalidated = await get(variables, { 'if-none-match': `W/"other", ${etag}` });
    expect(revalidated.status).toBe(304);
    expect(await revalidated.text()).toBe('');
    const changed = await get(variables, { 'if-none-match': '"not-it"' });
    expect(changed.status).toBe(200);
    expect(ios.calls).toHaveLength(0);
    // Another locale is another answer (prices are formatted for it), cached apart.
    const german = await get(variables, { 'accept-language': 'de-DE' });
    expect(german.status).toBe(200);
    expect(german.headers.get('etag')).not.toBe(etag);
  });

  it('still enforces what a cached answer must not bypass: the version policy and trusted documents', async () => {
    await get({ first: 3 }); // cached
    const old = await get({ first: 3 }, { 'x-app-version': '0.9.0' });
    expect(old.status).toBe(426);
    const query = new URLSearchParams({ query: '{ products(first: 3) { edges { node { id } } } }' });
    const raw = await fetch(`${ios.url}/graphql?${query}`, { headers: versionHeaders });
    expect(raw.status).toBe(400);
    expect(raw.headers.get('cache-control') ?? '').not.toMatch(/public/);
  });

  it('runs concurrent identical public misses once', async () => {
    ios.resetCalls();
    const variables = { first: 7, category: 'kitchen' };
    const answers = await Promise.all(Array.from({ length: 12 }, () => get(variables)));
    const bodies = new Set(await Promise.all(answers.map((answer) => answer.text())));
    expect(answers.every((answer) => answer.status === 200)).toBe(true);
    expect(bodies.size).toBe(1);
    expect(callsByService(ios.calls).product).toBe(1);
  });

  it('counts hits, coalesced answers and misses in the metrics', async () => {
    const text = await ios.bff.metrics.metrics();
    const count = (outcome: string) =>
      Number(
        new RegExp(`bff_response_cache_requests_total\\{outcome="${outcome}",app="ios"\\} (\\d+)`).exec(
          text,
        )?.[1] ?? 0,
      );
    expect(count('hit')).toBeGreaterThan(0);
    expect(count('miss')).toBeGreaterThan(0);
    expect(count('hit') + count('coalesced')).toBeGreaterThanOrEqual(11);
  });
});
