import { randomUUID } from 'node:crypto';
import { demoProducts } from '@bff/demo-data';
import { type EventEnvelope, InProcessEventBus, newEvent } from '@bff/events';
import { type RunningProductService, startProductService } from '@bff/product-service';
import { databaseBackends, throwawayDatabase, waitFor } from '@bff/testkit';
import { createProductClient, type ProductClient } from '@bff/upstream-clients';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningBillingService, startBillingService } from '../src/index.ts';

const backends = await databaseBackends();
const ADA = '0a1d2a9e-5a3c-4c1e-9d0a-000000000ada';
const GRACE = '0a1d2a9e-5a3c-4c1e-9d0a-000000009ace';
/** An invoice cursor in Billing's own format, around the instant `t`. */
const cursor = (t: string, id = '0b9f4c1e-7d1a-4a4e-9f1e-6f0b5a2c9d11') =>
  Buffer.from(JSON.stringify({ t, id })).toString('base64url');

describe.each(backends)(
  'Billing service over HTTP, pricing from the real Product service (%s)',
  (backend) => {
    const billingDb = throwawayDatabase(backend, 'billing');
    const productDb = throwawayDatabase(backend, 'product');
    const bus = new InProcessEventBus();
    const events: EventEnvelope[] = [];
    let product: RunningProductService;
    let products: ProductClient;
    let billing: RunningBillingService;

    const call = async (
      method: string,
      path: string,
      body?: unknown,
      headers: Record<string, string> = {},
    ) => {
      const response = await fetch(`${billing.url}${path}`, {
        method,
        headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
        body: body === undefined ? null : JSON.stringify(body),
      });
      return { status: response.status, body: JSON.parse(await response.text()), headers: response.headers };
    };
    const purchase = (body: unknown, key?: string) =>
      call('POST', '/v1/purchases', body, key === undefined ? {} : { 'idempotency-key': key });
    const invoiceCount = async (userId: string) =>
      (
        await billing.db.query<{ n: number }>('SELECT count(*)::int AS n FROM invoices WHERE user_id = $1', [
          userId,
        ])
      ).rows[0]?.n;
    const eventsOfType = async (type: string) => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      await bus.drain();
      return events.filter((e) => e.type === type);
    };

    beforeAll(async () => {
      await bus.subscribe('test.billing-events', ['billing.#'], async (event) => {
        events.push(event);
      });
      product = await startProductService({
        port: 0,
        database: productDb.options,
        bus,
        logger: pino({ level: 'silent' }),
      });
      products = createProductClient({ address: product.address });
      billing = await startBillingService({
        port: 0,
        database: billingDb.options,
        bus,
        products,
        logLevel: false,
      });
    });
    afterAll(async () => {
      await billing?.close();
      products?.close();
      await product?.close();
      await bus.close();
      await billingDb.drop();
      await productDb.drop();
    });

    it('pages through a user’s invoices newest first, without gaps or repeats', async () => {
      const seen: { id: string; issuedAt: string }[] = [];
      let after: string | null = null;
      for (;;) {
        const page = await call('GET', `/v1/invoices?userId=${ADA}&first=7${after ? `&after=${after}` : ''}`);
        expect(page.status).toBe(200);
        seen.push(...page.body.invoices);
        if (!page.body.pageInfo.hasNextPage) break;
        after = page.body.pageInfo.endCursor;
      }
      expect(seen.length).toBe(40);
      expect(new Set(seen.map((i) => i.id)).size).toBe(40);
      const times = seen.map((i) => Date.parse(i.issuedAt));
      expect(times).toEqual([...times].sort((a, b) => b - a));
    });

    it('returns invoices with lines that reference many different products', async () => {
      const page = await call('GET', `/v1/invoices?userId=${ADA}&first=20`);
      const invoice = page.body.invoices[0];
      expect(invoice).toMatchObject({ userId: ADA, status: expect.stringMatching(/^(OPEN|PAID|VOID)$/) });
      const sum = invoice.lines.reduce((s: number, l: { amountMinor: number }) => s + l.amountMinor, 0);
      expect(invoice.totalMinor).toBe(sum);
      const productIds = new Set(
        page.body.invoices.flatMap((i: { lines: { productId: string }[] }) =>
          i.lines.map((l) => l.productId),
        ),
      );
      expect(productIds.size).toBeGreaterThanOrEqual(30);
    });

    it('batches invoices and accounts by id, leaving unknown ids out', async () => {
      const page = await call('GET', `/v1/invoices?userId=${ADA}&first=3`);
      const [a, b] = page.body.invoices.map((i: { id: string }) => i.id);
      const batch = await call('GET', `/v1/invoices?ids=${b},${randomUUID()},junk,${a}`);
      expect(batch.body.invoices.map((i: { id: string }) => i.id)).toEqual([b, a]);
      const accounts = await call('GET', `/v1/accounts?userIds=${GRACE},${randomUUID()},${ADA}`);
      expect(accounts.body.accounts.map((x: { userId: string }) => x.userId)).toEqual([GRACE, ADA]);
    });

    it.each([
      ['/v1/invoices', 'neither userId nor ids'],
      [`/v1/invoices?userId=${ADA}&ids=x`, 'both'],
      [`/v1/invoices?userId=${ADA}&first=101`, 'first too large'],
      [`/v1/invoices?userId=${ADA}&first=0`, 'first zero'],
      [`/v1/invoices?userId=${ADA}&first=-1`, 'first negative'],
      [`/v1/invoices?userId=${ADA}&after=not-a-cursor`, 'a forged cursor'],
      [`/v1/invoices?ids=${Array.from({ length: 101 }, () => ADA).join(',')}`, 'too many ids'],
      ['/v1/accounts', 'no userIds'],
      // Cursors Date.parse reads and PostgreSQL does not: these were 500s.
      [`/v1/invoices?userId=${ADA}&after=${cursor('1')}`, 'a cursor whose instant is "1"'],
      [`/v1/invoices?userId=${ADA}&after=${cursor('+275760-09-13T00:00:00.000Z')}`, 'a six-digit year'],
      [`/v1/invoices?userId=${ADA}&after=${cursor('0000-01-01T00:00:00.000Z')}`, 'year zero'],
      [`/v1/invoices?userId=${ADA}&after=${cursor('2026-11-21')}`, 'a date without a time'],
      [`/v1/invoices?userId=${ADA}&after=${cursor('2026-11-21T09:30:00.000Z')}%00`, 'a NUL after a cursor'],
    ])('GET %s (%s) is a coded 400', async (path) => {
      const response = await call('GET', path);
      expect(response.status).toBe(400);
      expect(response.body.error.code).toBe('BAD_REQUEST');
    });

    it('leaves malformed ids out of a batch rather than failing on them', async () => {
      const response = await call('GET', `/v1/invoices?ids=${encodeURIComponent(`x\u0000,${ADA}\u0000,`)}`);
      expect(response.status).toBe(200);
      expect(response.body.invoices).toEqual([]);
    });

    it('accepts back the cursors it issues', async () => {
      const first = await call('GET', `/v1/invoices?userId=${ADA}&first=1`);
      const next = await call(
        'GET',
        `/v1/invoices?userId=${ADA}&first=1&after=${first.body.pageInfo.endCursor}`,
      );
      expect(next.status).toBe(200);
    });

    it('creates an OPEN invoice priced from the Product service and emits billing.invoice.created', async () => {
      const before = await invoiceCount(GRACE);
      const catalogue = await products.getProduct('p-0042');
      const response = await purchase({ userId: GRACE, productId: 'p-0042', quantity: 3 }, randomUUID());
      expect(response.status).toBe(201);
      expect(response.headers.get('idempotent-replayed')).toBe('false');
      const invoice = response.body.invoice;
      expect(invoice).toMatchObject({
        userId: GRACE,
        status: 'OPEN',
        currency: catalogue?.price.currency,
        totalMinor: (catalogue?.price.amountMinor ?? 0) * 3,
        lines: [{ productId: 'p-0042', quantity: 3, unitPriceMinor: catalogue?.price.amountMinor }],
      });
      expect(await invoiceCount(GRACE)).toBe((before ?? 0) + 1);
      const created = (await eventsOfType('billing.invoice.created')).filter(
        (e) => (e.payload as { invoiceId: string }).invoiceId === invoice.id,
      );
      expect(created).toHaveLength(1);
    });

    it('prices at purchase time: a later price change does not touch the invoice', async () => {
      const key = randomUUID();
      const first = await purchase({ userId: GRACE, productId: 'p-0043', quantity: 1 }, key);
      await products.updatePrice('p-0043', { amountMinor: 1, currency: 'USD' });
      const [stored] = (await call('GET', `/v1/invoices?ids=${first.body.invoice.id}`)).body.invoices;
      expect(stored.totalMinor).toBe(demoProducts().find((p) => p.id === 'p-0043')?.priceMinor);
      const next = await purchase({ userId: GRACE, productId: 'p-0043', quantity: 1 }, randomUUID());
      expect(next.body.invoice.totalMinor).toBe(1);
    });

    it('replays the stored response for the same key and body, creating nothing new', async () => {
      const key = randomUUID();
      const body = { userId: GRACE, productId: 'p-0050', quantity: 2 };
      const first = await purchase(body, key);
      const count = await invoiceCount(GRACE);
      const again = await purchase({ quantity: 2, productId: 'p-0050', userId: GRACE }, key);
      expect(again.status).toBe(201);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(again.body).toEqual(first.body);
      expect(await invoiceCount(GRACE)).toBe(count);
    });

    it('answers 422 when a key is reused with a different body, and 400 without a key', async () => {
      const key = randomUUID();
      await purchase({ userId: GRACE, productId: 'p-0051', quantity: 1 }, key);
      const changed = await purchase({ userId: GRACE, productId: 'p-0051', quantity: 2 }, key);
      expect(changed.status).toBe(422);
      expect(changed.body.error.code).toBe('IDEMPOTENCY_KEY_REUSED');
      const missing = await purchase({ userId: GRACE, productId: 'p-0051', quantity: 1 });
      expect(missing.status).toBe(400);
      expect(missing.body.error.code).toBe('IDEMPOTENCY_KEY_MISSING');
    });

    it('turns twenty concurrent identical purchases into exactly one invoice', async () => {
      const key = randomUUID();
      const before = (await invoiceCount(GRACE)) ?? 0;
      const responses = await Promise.all(
        Array.from({ length: 20 }, () => purchase({ userId: GRACE, productId: 'p-0060', quantity: 1 }, key)),
      );
      expect(responses.map((r) => r.status)).toEqual(Array(20).fill(201));
      expect(new Set(responses.map((r) => r.body.invoice.id)).size).toBe(1);
      expect(responses.filter((r) => r.headers.get('idempotent-replayed') === 'false')).toHaveLength(1);
      expect(await invoiceCount(GRACE)).toBe(before + 1);
    });

    it('rejects unknown products (422), unknown accounts (404) and bad bodies (400), and frees the key', async () => {
      const key = randomUUID();
      const unknown = await purchase({ userId: GRACE, productId: 'p-9999', quantity: 1 }, key);
      expect(unknown.status).toBe(422);
      expect(unknown.body.error.code).toBe('PRODUCT_NOT_FOUND');
      // The failed attempt released its key: the same key now works for a fixed request.
      const fixed = await purchase({ userId: GRACE, productId: 'p-0001', quantity: 1 }, key);
      expect(fixed.status).toBe(201);
      const noAccount = await purchase(
        { userId: randomUUID(), productId: 'p-0001', quantity: 1 },
        randomUUID(),
      );
      expect(noAccount.status).toBe(404);
      expect(noAccount.body.error.code).toBe('ACCOUNT_NOT_FOUND');
      for (const body of [
        { userId: GRACE, productId: 'p-0001', quantity: 0 },
        { userId: GRACE, productId: 'p-0001', quantity: 1.5 },
        { userId: GRACE, productId: 'p-0001', quantity: '1' },
        { userId: 'not-a-uuid', productId: 'p-0001', quantity: 1 },
        { userId: GRACE, productId: 'p-0001' },
        // PostgreSQL refuses a NUL in text; the Product service refuses it too. Neither is a 5xx.
        { userId: GRACE, productId: 'p-0001\u0000', quantity: 1 },
        { userId: GRACE, productId: 'p-\u001b0001', quantity: 1 },
        { userId: `${GRACE}\u0000`, productId: 'p-0001', quantity: 1 },
      ]) {
        const response = await purchase(body, randomUUID());
        expect(response.status, JSON.stringify(body)).toBe(400);
      }
    });

    it('answers 503 UPSTREAM_UNAVAILABLE when the Product service cannot be reached', async () => {
      const offline = createProductClient({ address: '127.0.0.1:1', timeoutMs: 300 });
      const isolated = await startBillingService({
        port: 0,
        database: billingDb.options,
        bus: new InProcessEventBus(),
        products: offline,
        logLevel: false,
      });
      try {
        const response = await fetch(`${isolated.url}/v1/purchases`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': randomUUID() },
          body: JSON.stringify({ userId: GRACE, productId: 'p-0001', quantity: 1 }),
        });
        expect(response.status).toBe(503);
        const text = await response.text();
        expect(JSON.parse(text).error.code).toBe('UPSTREAM_UNAVAILABLE');
        expect(text).not.toContain('127.0.0.1');
      } finally {
        await isolated.close();
        offline.close();
      }
    });

    it('pays an invoice once: PAID, one billing.invoice.paid event, a second payment harmless', async () => {
      const created = await purchase({ userId: GRACE, productId: 'p-0070', quantity: 1 }, randomUUID());
      const id = created.body.invoice.id;
      const paid = await call('POST', `/v1/invoices/${id}/pay`);
      expect(paid.status).toBe(200);
      expect(paid.body.invoice).toMatchObject({ id, status: 'PAID', paidAt: expect.any(String) });
      const again = await call('POST', `/v1/invoices/${id}/pay`);
      expect(again.status).toBe(200);
      expect(again.body.invoice.paidAt).toBe(paid.body.invoice.paidAt);
      const paidEvents = (await eventsOfType('billing.invoice.paid')).filter(
        (e) => (e.payload as { invoiceId: string }).invoiceId === id,
      );
      expect(paidEvents).toHaveLength(1);
      expect((await call('POST', `/v1/invoices/${randomUUID()}/pay`)).status).toBe(404);
    });

    it('refuses to pay a void invoice', async () => {
      const page = await call('GET', `/v1/invoices?userId=${ADA}&first=100`);
      const voided = page.body.invoices.find((i: { status: string }) => i.status === 'VOID');
      const response = await call('POST', `/v1/invoices/${voided.id}/pay`);
      expect(response.status).toBe(409);
      expect(response.body.error.code).toBe('INVOICE_VOID');
    });

    it('opens an account when identity.user.registered arrives, once even when redelivered', async () => {
      const userId = randomUUID();
      const event = newEvent('identity', 'identity.user.registered', 1, {
        userId,
        email: 'x@example.com',
        name: 'X',
      });
      await bus.publish(event);
      await bus.publish(event); // at-least-once delivery: the same event twice
      await waitFor(
        'the account',
        async () => (await call('GET', `/v1/accounts?userIds=${userId}`)).body.accounts.length === 1,
      );
      await bus.drain();
      const processed = await billing.db.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM processed_events WHERE event_id = $1',
        [event.id],
      );
      expect(processed.rows[0]?.n).toBe(1);
      const purchaseResponse = await purchase({ userId, productId: 'p-0001', quantity: 1 }, randomUUID());
      expect(purchaseResponse.status).toBe(201);
    });
  },
);
