// Deterministic fake Identity and Billing (REST) and Product (gRPC) services for the benchmark:
// the same endpoints the BFF uses, a configurable latency, and counters of calls and batch
// sizes (GET /__stats, POST /__reset on the identity port). Also an OpenTelemetry collector's
// OTLP/HTTP receiver (POST /v1/traces, JSON) that counts the spans it is sent (GET /__otlp on the
// identity port; never reset), so that a traced contender pays for a real export.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { type ListProductsRequest__Output, loadProductService } from '@bff/schema';
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { ISSUER, invoicesById, invoicesByUser, productsById, users } from './fixtures.ts';

export interface FakeUpstreams {
  identityUrl: string;
  billingUrl: string;
  productAddr: string;
  /** An access token per user id, audience `web`. */
  tokens: Record<string, string>;
  /** OTLP/HTTP base endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`): spans go to `${otlpEndpoint}/v1/traces`. */
  otlpEndpoint: string;
  close(): Promise<void>;
}

/** What the OTLP receiver was sent since the fakes started (GET /__otlp). */
export interface OtlpStats {
  /** Export requests (batches) answered 200. */
  requests: number;
  spans: number;
  /** Distinct trace ids among the spans. */
  traces: number;
  /** Export requests that could not be read as OTLP JSON (answered 400). */
  rejected: number;
}

export interface UpstreamStats {
  calls: Record<string, number>;
  batchSizes: Record<string, number[]>;
}

export async function startFakeUpstreams(latencyMs: number): Promise<FakeUpstreams> {
  const stats: UpstreamStats = { calls: {}, batchSizes: {} };
  const count = (name: string, batch?: number) => {
    stats.calls[name] = (stats.calls[name] ?? 0) + 1;
    if (batch === undefined) return;
    const sizes = stats.batchSizes[name] ?? [];
    sizes.push(batch);
    stats.batchSizes[name] = sizes;
  };
  const later = (fn: () => void) => (latencyMs > 0 ? setTimeout(fn, latencyMs) : fn());

  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'bench-key', alg: 'ES256', use: 'sig' };
  const tokens: Record<string, string> = {};
  for (const user of users) {
    tokens[user.id] = await new SignJWT({ roles: user.roles, email: user.email, name: user.name })
      .setProtectedHeader({ alg: 'ES256', kid: 'bench-key' })
      .setIssuer(ISSUER)
      .setSubject(user.id)
      .setAudience('web')
      .setIssuedAt()
      .setExpirationTime('2h')
      .sign(privateKey);
  }

  const json = (res: ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  const ids = (url: URL, name: string) => (url.searchParams.get(name) ?? '').split(',').filter(Boolean);

  const otlp: OtlpStats = { requests: 0, spans: 0, traces: 0, rejected: 0 };
  const traceIds = new Set<string>();
  // A collector's OTLP/HTTP receiver, JSON encoding (what @opentelemetry/exporter-trace-otlp-http
  // sends): reads the batch, counts its spans and traces, answers 200 `{}` (no partial success).
  const collector = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== 'POST' || req.url?.split('?', 1)[0] !== '/v1/traces')
      return json(res, 404, { error: 'not found' });
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      try {
        const raw = Buffer.concat(chunks);
        const body = JSON.parse(
          (req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString('utf8'),
        ) as { resourceSpans?: { scopeSpans?: { spans?: { traceId?: string }[] }[] }[] };
        for (const resource of body.resourceSpans ?? [])
          for (const scope of resource.scopeSpans ?? [])
            for (const span of scope.spans ?? []) {
              otlp.spans++;
              if (span.traceId !== undefined) traceIds.add(span.traceId);
            }
        otlp.traces = traceIds.size;
        otlp.requests++;
        json(res, 200, {});
      } catch {
        otlp.rejected++;
        json(res, 400, { error: 'not OTLP JSON' });
      }
    });
  });

  const identity = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/__stats') return json(res, 200, stats);
    if (url.pathname === '/__otlp') return json(res, 200, otlp);
    if (url.pathname === '/__reset') {
      stats.calls = {};
      stats.batchSizes = {};
      return json(res, 200, {});
    }
    if (url.pathname === '/.well-known/jwks.json') return json(res, 200, { keys: [jwk] });
    if (url.pathname === '/readyz') return json(res, 200, { status: 'ready' });
    if (url.pathname === '/v1/users') {
      const wanted = ids(url, 'ids');
      count('identity.users', wanted.length);
      return later(() => json(res, 200, { users: users.filter((u) => wanted.includes(u.id)) }));
    }
    json(res, 404, { error: { code: 'NOT_FOUND', message: 'no route' } });
  });

  const billing = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/readyz') return json(res, 200, { status: 'ready' });
    if (url.pathname === '/v1/invoices' && url.searchParams.has('userId')) {
      count('billing.invoicesByUser');
      const first = Number(url.searchParams.get('first') ?? 20);
      const all = invoicesByUser.get(url.searchParams.get('userId') ?? '') ?? [];
      const page = all.slice(0, first);
      return later(() =>
        json(res, 200, {
          invoices: page,
          pageInfo: { hasNextPage: all.length > first, endCursor: page.at(-1)?.cursor ?? null },
        }),
      );
    }
    if (url.pathname === '/v1/invoices') {
      const wanted = ids(url, 'ids');
      count('billing.invoicesByIds', wanted.length);
      return later(() => json(res, 200, { invoices: wanted.flatMap((id) => invoicesById.get(id) ?? []) }));
    }
    json(res, 404, { error: { code: 'NOT_FOUND', message: 'no route' } });
  });

  const toProduct = (id: string) => {
    const p = productsById.get(id);
    return p
      ? {
          id: p.id,
          sku: p.sku,
          name: p.name,
          description: p.description,
          category: p.category,
          price: { amountMinor: p.priceMinor, currency: 'USD' },
          images: p.images,
          inventory: p.inventory,
        }
      : undefined;
  };
  const catalogue = [...productsById.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const catalogueByCategory = new Map<string, typeof catalogue>();
  for (const p of catalogue)
    catalogueByCategory.set(p.category, [...(catalogueByCategory.get(p.category) ?? []), p]);
  const product = new grpc.Server();
  product.addService(loadProductService().service, {
    GetProducts: (
      call: grpc.ServerUnaryCall<{ ids: string[] }, unknown>,
      callback: grpc.sendUnaryData<unknown>,
    ) => {
      count('product.GetProducts', call.request.ids.length);
      later(() => callback(null, { products: call.request.ids.flatMap((id) => toProduct(id) ?? []) }));
    },
    GetProduct: (
      call: grpc.ServerUnaryCall<{ id: string }, unknown>,
      callback: grpc.sendUnaryData<unknown>,
    ) => {
      count('product.GetProduct');
      const found = toProduct(call.request.id);
      later(() =>
        found ? callback(null, found) : callback({ code: grpc.status.NOT_FOUND, details: 'not found' }),
      );
    },
    // As the Product service pages (services/product: ordered by id, a filter's total, the next
    // page's token only when there is one), over the fixtures' catalogue.
    ListProducts: (
      call: grpc.ServerUnaryCall<ListProductsRequest__Output, unknown>,
      callback: grpc.sendUnaryData<unknown>,
    ) => {
      count('product.ListProducts');
      const request = call.request;
      const pageSize = request.pageSize === 0 ? 20 : request.pageSize;
      if (pageSize < 1 || pageSize > 100)
        return callback({
          code: grpc.status.INVALID_ARGUMENT,
          details: 'page_size must be between 1 and 100',
        });
      const afterId = request.pageToken
        ? (JSON.parse(Buffer.from(request.pageToken, 'base64url').toString()) as { after: string }).after
        : request.afterId || undefined;
      const query = request.query.trim().toLowerCase();
      const matching = (
        request.category ? (catalogueByCategory.get(request.category) ?? []) : catalogue
      ).filter(
        (p) =>
          !query ||
          p.name.toLowerCase().includes(query) ||
          p.sku.toLowerCase().includes(query) ||
          p.description.toLowerCase().includes(query),
      );
      const start = afterId === undefined ? 0 : matching.findIndex((p) => p.id > afterId);
      const from = start < 0 ? matching.length : start;
      const page = matching.slice(from, from + pageSize);
      const last = page.at(-1);
      const hasMore = from + pageSize < matching.length;
      later(() =>
        callback(null, {
          products: page.flatMap((p) => toProduct(p.id) ?? []),
          nextPageToken:
            hasMore && last
              ? Buffer.from(JSON.stringify({ v: 1, after: last.id })).toString('base64url')
              : '',
          totalSize: matching.length,
        }),
      );
    },
    UpdatePrice: (_call: unknown, callback: grpc.sendUnaryData<unknown>) =>
      callback({ code: grpc.status.UNIMPLEMENTED }),
  });
  new HealthImplementation({ '': 'SERVING' }).addToServer(product);
  const productPort = await new Promise<number>((resolve, reject) =>
    product.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, port) =>
      error ? reject(error) : resolve(port),
    ),
  );

  const listen = (server: ReturnType<typeof createServer>) =>
    new Promise<string>((resolve) =>
      server.listen(0, '127.0.0.1', () =>
        resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
      ),
    );
  identity.keepAliveTimeout = 60_000;
  billing.keepAliveTimeout = 60_000;
  collector.keepAliveTimeout = 60_000;
  return {
    identityUrl: await listen(identity),
    billingUrl: await listen(billing),
    productAddr: `127.0.0.1:${productPort}`,
    tokens,
    otlpEndpoint: await listen(collector),
    async close() {
      await new Promise<void>((resolve) => identity.close(() => resolve()));
      await new Promise<void>((resolve) => billing.close(() => resolve()));
      collector.closeAllConnections();
      await new Promise<void>((resolve) => collector.close(() => resolve()));
      await new Promise<void>((resolve) => product.tryShutdown(() => resolve()));
    },
  };
}
