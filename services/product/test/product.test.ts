import { InProcessEventBus } from '@bff/events';
import { databaseBackends, throwawayDatabase } from '@bff/testkit';
import { createProductClient, type ProductClient, UpstreamError } from '@bff/upstream-clients';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningProductService, startProductService } from '../src/index.ts';

const backends = await databaseBackends();

describe.each(backends)('Product service over gRPC (%s)', (backend) => {
  const database = throwawayDatabase(backend, 'product');
  const bus = new InProcessEventBus();
  let service: RunningProductService;
  let client: ProductClient;
  const events: unknown[] = [];

  beforeAll(async () => {
    await bus.subscribe('test.product-events', ['product.#'], async (event) => {
      events.push(event);
    });
    service = await startProductService({
      port: 0,
      database: database.options,
      bus,
      logger: pino({ level: 'silent' }),
    });
    client = createProductClient({ address: service.address });
  });
  afterAll(async () => {
    client?.close();
    await service?.close();
    await bus.close();
    await database.drop();
  });

  it('seeds at least 200 products across several categories', async () => {
    const page = await client.listProducts({ pageSize: 100 });
    expect(page.totalSize).toBeGreaterThanOrEqual(200);
    const categories = new Set(page.products.map((p) => p.category));
    expect(categories.size).toBeGreaterThanOrEqual(5);
  });

  it('GetProducts returns known products in request order and leaves unknown ids out', async () => {
    const products = await client.getProducts(['p-0010', 'nope', 'p-0002', 'p-0010']);
    expect(products.map((p) => p.id)).toEqual(['p-0010', 'p-0002']);
    const first = products[0];
    expect(first?.price.amountMinor).toBeGreaterThan(0);
    expect(first?.price.currency).toMatch(/^[A-Z]{3}$/);
    expect(first?.images.length).toBeGreaterThanOrEqual(3);
    expect(first?.images.map((i) => i.width)).toEqual(
      [...(first?.images.map((i) => i.width) ?? [])].sort((a, b) => a - b),
    );
  });

  it('GetProduct answers NOT_FOUND for an unknown id (the client maps it to null)', async () => {
    expect(await client.getProduct('p-9999')).toBeNull();
    expect((await client.getProduct('p-0001'))?.id).toBe('p-0001');
  });

  it('ListProducts pages through a category without gaps or repeats', async () => {
    const seen: string[] = [];
    let token = '';
    let total = 0;
    do {
      const page = await client.listProducts({ pageSize: 7, pageToken: token, category: 'books' });
      total = page.totalSize;
      for (const p of page.products) {
        expect(p.category).toBe('books');
        seen.push(p.id);
      }
      token = page.nextPageToken;
    } while (token);
    expect(seen.length).toBe(total);
    expect(new Set(seen).size).toBe(total);
    expect(seen).toEqual([...seen].sort());
  });

  it('ListProducts seeks after a product id, for per-item cursors', async () => {
    const page = await client.listProducts({ pageSize: 3, afterId: 'p-0010' });
    expect(page.products.map((p) => p.id)).toEqual(['p-0011', 'p-0012', 'p-0013']);
    const both = await client
      .listProducts({ pageSize: 3, afterId: 'p-0010', pageToken: 'x' })
      .catch((e: unknown) => e);
    expect((both as UpstreamError).code).toBe('UPSTREAM_INVALID_ARGUMENT');
  });

  it('ListProducts searches name, sku and description, and treats % and _ literally', async () => {
    const bySku = await client.listProducts({ query: 'bok-00002' });
    expect(bySku.products.map((p) => p.id)).toEqual(['p-0002']);
    const wildcard = await client.listProducts({ query: '%' });
    expect(wildcard.totalSize).toBe(0);
  });

  it.each([
    [{ pageSize: 101 }, /page_size/],
    [{ pageSize: -1 }, /page_size/],
    [{ pageToken: 'garbage' }, /page_token/],
  ])('ListProducts rejects %o with INVALID_ARGUMENT', async (request, message) => {
    const error = await client.listProducts(request).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UpstreamError);
    expect((error as UpstreamError).code).toBe('UPSTREAM_INVALID_ARGUMENT');
    expect((error as UpstreamError).message).toMatch(message);
  });

  describe('input PostgreSQL would choke on is INVALID_ARGUMENT, never INTERNAL', () => {
    const token = (after: string) => Buffer.from(JSON.stringify({ v: 1, after })).toString('base64url');
    const statusOf = (error: unknown) =>
      ((error as UpstreamError).cause as grpc.ServiceError | undefined)?.code;
    it.each([
      ['GetProducts with a NUL in one id', () => client.getProducts(['p-0001', 'p-0002\u0000'])],
      ['GetProducts with an empty id', () => client.getProducts(['p-0001', ''])],
      ['GetProducts with a control character', () => client.getProducts(['p-\u001b0001'])],
      ['GetProduct with a NUL', () => client.getProduct('p-0001\u0000')],
      ['GetProduct with a 65-character id', () => client.getProduct('p'.repeat(65))],
      ['ListProducts with a NUL in the search', () => client.listProducts({ query: 'kettle\u0000' })],
      ['ListProducts with a NUL in the category', () => client.listProducts({ category: 'books\u0000' })],
      ['ListProducts with a NUL in after_id', () => client.listProducts({ afterId: 'p-0001\u0000' })],
      [
        'ListProducts with a page token around a NUL',
        () => client.listProducts({ pageToken: token('p-\u0000') }),
      ],
      [
        'ListProducts with an over-long page token',
        () => client.listProducts({ pageToken: 'A'.repeat(401) }),
      ],
      [
        'UpdatePrice with a NUL in the id',
        () => client.updatePrice('p-0001\u0000', { amountMinor: 1, currency: 'USD' }),
      ],
    ] as const)('%s', async (_, call) => {
      const error = await (call as () => Promise<unknown>)().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UpstreamError);
      expect((error as UpstreamError).code).toBe('UPSTREAM_INVALID_ARGUMENT');
      expect(statusOf(error)).toBe(grpc.status.INVALID_ARGUMENT);
    });

    it('still answers normally afterwards', async () => {
      expect((await client.getProduct('p-0001'))?.id).toBe('p-0001');
    });
  });

  it('GetProducts rejects more than 500 ids', async () => {
    const ids = Array.from({ length: 501 }, (_, i) => `x${i}`);
    const error = await client.getProducts(ids).catch((e: unknown) => e);
    expect((error as UpstreamError).code).toBe('UPSTREAM_INVALID_ARGUMENT');
  });

  it('UpdatePrice changes the price and emits product.price_changed once', async () => {
    const before = await client.getProduct('p-0003');
    const updated = await client.updatePrice('p-0003', { amountMinor: 12_345, currency: 'EUR' });
    expect(updated.price).toEqual({ amountMinor: 12_345, currency: 'EUR' });
    expect((await client.getProduct('p-0003'))?.price.amountMinor).toBe(12_345);
    await service.relay.flush();
    await bus.drain();
    const changed = events.filter((e) => (e as { type: string }).type === 'product.price_changed');
    expect(changed).toHaveLength(1);
    expect(changed[0]).toMatchObject({
      type: 'product.price_changed',
      version: 1,
      source: 'product',
      payload: {
        productId: 'p-0003',
        previous: before?.price,
        current: { amountMinor: 12_345, currency: 'EUR' },
      },
    });
  });

  it.each([
    ['p-0001', { amountMinor: -1, currency: 'USD' }, 'amount_minor'],
    ['p-0001', { amountMinor: 100, currency: 'usd' }, 'currency'],
    ['', { amountMinor: 100, currency: 'USD' }, 'id'],
  ])('UpdatePrice(%s, %o) is INVALID_ARGUMENT naming %s', async (id, price, field) => {
    const error = await client.updatePrice(id, price).catch((e: unknown) => e);
    expect((error as UpstreamError).code).toBe('UPSTREAM_INVALID_ARGUMENT');
    expect((error as UpstreamError).message).toContain(field);
  });

  it('UpdatePrice on an unknown id is NOT_FOUND', async () => {
    const error = await client
      .updatePrice('p-9999', { amountMinor: 1, currency: 'USD' })
      .catch((e: unknown) => e);
    expect(((error as UpstreamError).cause as grpc.ServiceError).code).toBe(grpc.status.NOT_FOUND);
  });

  it('serves the standard gRPC health service', async () => {
    const { loadSync } = await import('@grpc/proto-loader');
    const { protoPath } = await import('grpc-health-check');
    const pkg = grpc.loadPackageDefinition(loadSync(protoPath, { enums: String })) as unknown as {
      grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
    };
    const health = new pkg.grpc.health.v1.Health(service.address, grpc.credentials.createInsecure());
    const check = (serviceName: string) =>
      new Promise<{ status: string }>((resolve, reject) =>
        (
          health as unknown as {
            check: (r: unknown, cb: (e: Error | null, v: { status: string }) => void) => void;
          }
        ).check({ service: serviceName }, (e, v) => (e ? reject(e) : resolve(v))),
      );
    expect((await check('')).status).toBe('SERVING');
    expect((await check('bff.product.v1.ProductService')).status).toBe('SERVING');
    health.close();
  });
});
