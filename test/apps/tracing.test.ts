// One trace across the system: a purchase sent to the web BFF with a client traceparent is
// exported, by every process, to an OTLP receiver this test starts, as one tree: the BFF's
// request, operation and upstream tries; Billing's request and its Product lookup; Product's
// handler; and the consumer of the event the purchase published.
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startBillingService } from '@bff/billing-service';
import { type EventEnvelope, InProcessEventBus } from '@bff/events';
import { startIdentityService } from '@bff/identity-service';
import { createTracing } from '@bff/observability';
import { startProductService } from '@bff/product-service';
import { waitFor } from '@bff/testkit';
import { createProductClient } from '@bff/upstream-clients';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appNames, startApp, type TestApp } from '../support/system.ts';

interface ExportedSpan {
  service: string;
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  kind: number;
}

/** An OTLP/HTTP (JSON) receiver: what every process exports to `${url}/v1/traces`. */
async function startOtlpReceiver() {
  const spans: ExportedSpan[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      if (request.method === 'POST' && request.url === '/v1/traces') {
        const body = JSON.parse(Buffer.concat(chunks).toString() || '{}') as {
          resourceSpans?: {
            resource?: { attributes?: { key: string; value: { stringValue?: string } }[] };
            scopeSpans?: { spans?: Record<string, unknown>[] }[];
          }[];
        };
        for (const resourceSpans of body.resourceSpans ?? []) {
          const service =
            resourceSpans.resource?.attributes?.find((a) => a.key === 'service.name')?.value.stringValue ??
            '?';
          for (const scope of resourceSpans.scopeSpans ?? []) {
            for (const span of scope.spans ?? []) {
              spans.push({
                service,
                name: String(span.name),
                traceId: String(span.traceId),
                spanId: String(span.spanId),
                parentSpanId: span.parentSpanId ? String(span.parentSpanId) : undefined,
                kind: Number(span.kind),
              });
            }
          }
        }
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';

describe('one trace from the client through the BFF, Billing, Product and the event', () => {
  let receiver: Awaited<ReturnType<typeof startOtlpReceiver>>;
  const closers: (() => Promise<unknown> | unknown)[] = [];
  const consumed: EventEnvelope[] = [];
  let app: TestApp;
  let identityUrl: string;

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    const tracing = (serviceName: string) => ({ serviceName, endpoint: receiver.url });
    const consumerTracing = createTracing(tracing('invoice-consumer'));
    closers.push(() => consumerTracing.shutdown());
    const bus = new InProcessEventBus({ tracing: consumerTracing });
    closers.push(() => bus.close());
    await bus.subscribe('test.invoice-consumer', ['billing.invoice.created'], async (event) => {
      consumed.push(event);
    });
    const product = await startProductService({
      port: 0,
      database: { schema: 'product' },
      bus,
      logger: pino({ level: 'silent' }),
      tracing: tracing('product'),
    });
    closers.push(() => product.close());
    const identity = await startIdentityService({
      port: 0,
      database: { schema: 'identity' },
      bus,
      audiences: appNames,
      logLevel: false,
      tracing: tracing('identity'),
    });
    closers.push(() => identity.close());
    identityUrl = identity.url;
    const products = createProductClient({ address: product.address });
    closers.push(() => products.close());
    const billing = await startBillingService({
      port: 0,
      database: { schema: 'billing' },
      bus,
      products,
      logLevel: false,
      tracing: tracing('billing'),
    });
    closers.push(() => billing.close());
    app = await startApp(
      'web',
      { identityUrl: identity.url, billingUrl: billing.url, productAddr: product.address },
      { observability: { tracing: { endpoint: receiver.url, trustTraceHeaders: true } } },
    );
    closers.push(() => app.close());
  });
  afterAll(async () => {
    for (const close of closers.reverse()) await close();
    await receiver?.close();
  });

  it('exports one connected tree of spans, the event consumer included', async () => {
    const login = await fetch(`${identityUrl}/v1/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'ada@example.com', password: 'demo-password', audience: 'web' }),
    });
    const token = ((await login.json()) as { access_token: string }).access_token;
    const { status, body } = await app.graphql(
      'mutation Buy($input: PurchaseInput!) { purchase(input: $input) { invoice { id total { amountMinor } } } }',
      {
        token,
        variables: { input: { productId: 'p-0001', quantity: 1, idempotencyKey: randomUUID() } },
        headers: { traceparent: `00-${TRACE}-${CLIENT_SPAN}-01` },
      },
    );
    expect(status).toBe(200);
    expect(body.errors).toBeUndefined();
    const invoiceId = body.data.purchase.invoice.id as string;

    // Exports are batched (about a second) and the event is relayed after the purchase commits.
    // Each process exports on its own schedule, so wait until every span's parent has arrived too
    // (the BFF's request span ends last, when its response closes), not merely the consumer's.
    const inTrace = () => receiver.spans.filter((span) => span.traceId === TRACE);
    const rootsOf = (spans: ExportedSpan[]) => {
      const known = new Set(spans.map((span) => span.spanId));
      return spans.filter((span) => !known.has(span.parentSpanId ?? ''));
    };
    await waitFor(
      'the whole tree: the consumer, the Product handler and every parent up to the BFF',
      () =>
        inTrace().some((span) => span.service === 'invoice-consumer') &&
        inTrace().some((span) => span.service === 'product' && span.kind === 2) &&
        rootsOf(inTrace()).every((span) => span.parentSpanId === CLIENT_SPAN),
      60_000,
    );
    expect(consumed.some((event) => (event.payload as { invoiceId?: string }).invoiceId === invoiceId)).toBe(
      true,
    );

    const spans = inTrace();
    const services = new Set(spans.map((span) => span.service));
    for (const service of ['web-bff', 'billing', 'product', 'invoice-consumer'])
      expect(services).toContain(service);
    // One tree: a single root, whose parent is the client's span, and every other span's
    // parent is a span of the same trace.
    const roots = rootsOf(spans);
    expect(roots).toHaveLength(1);
    expect(roots[0]).toMatchObject({ service: 'web-bff', parentSpanId: CLIENT_SPAN });
    // The chain from the consumer goes up through Billing to the BFF.
    const byId = new Map(spans.map((span) => [span.spanId, span]));
    const chain = (start: ExportedSpan) => {
      const path: string[] = [];
      for (let at: ExportedSpan | undefined = start; at; at = byId.get(at.parentSpanId ?? ''))
        path.push(at.service);
      return path;
    };
    const consumer = spans.find((span) => span.service === 'invoice-consumer') as ExportedSpan;
    expect(chain(consumer)).toEqual(expect.arrayContaining(['invoice-consumer', 'billing', 'web-bff']));
    const productHandler = spans.find(
      (span) => span.service === 'product' && span.kind === 2,
    ) as ExportedSpan;
    expect(productHandler).toBeDefined();
    expect(chain(productHandler)).toEqual(expect.arrayContaining(['product', 'billing', 'web-bff']));
  }, 120_000);
});
