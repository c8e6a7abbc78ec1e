// Billing observed from outside: a purchase with the caller's traceparent yields a SERVER span
// in that trace, a CLIENT span per Product try whose traceparent is sent along, a log line with
// the trace id, and a billing.invoice.created event whose consumer span sits under the request;
// events Billing consumes get a CONSUMER span in their producer's trace; metrics count each
// outcome once, on a listener of their own.
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { type EventEnvelope, InProcessEventBus, newEvent } from '@bff/events';
import { createTracing, SpanKind } from '@bff/observability';
import { throwawayDatabase, waitFor } from '@bff/testkit';
import {
  type CallOptions,
  type ProductClient,
  UpstreamError,
  UpstreamErrorCode,
} from '@bff/upstream-clients';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningBillingService, startBillingService } from '../src/index.ts';

const PARENT_TRACE = '0af7651916cd43dd8448eb211c80319c';
const traceparent = `00-${PARENT_TRACE}-b7ad6b7169203331-01`;
const USER = randomUUID();

/** A Product service stand-in: prices `p-…` ids, is down for `p-down`, and keeps the trace headers it got. */
function fakeProducts(sent: Record<string, string>[]): ProductClient {
  const getProduct = async (id: string, options: CallOptions = {}) => {
    const traced = options.trace?.startTry('product', 'GetProduct');
    if (traced) sent.push(traced.headers);
    if (id === 'p-down') {
      traced?.end('error');
      throw new UpstreamError('product', UpstreamErrorCode.Unavailable, 'product is down');
    }
    traced?.end('ok');
    return {
      id,
      sku: id,
      name: id,
      description: '',
      category: 'test',
      price: { amountMinor: 500, currency: 'USD' },
      images: [],
      inventory: 1,
    };
  };
  return { getProduct } as unknown as ProductClient;
}

describe('Billing service: logs, traces, metrics', () => {
  const database = throwawayDatabase('pglite', 'billing');
  const exporter = new InMemorySpanExporter();
  const tracing = createTracing({ serviceName: 'billing', exporter });
  const consumerSpans = new InMemorySpanExporter();
  const consumerTracing = createTracing({ serviceName: 'consumer', exporter: consumerSpans });
  const bus = new InProcessEventBus();
  const lines: Record<string, unknown>[] = [];
  const sent: Record<string, string>[] = [];
  const created: EventEnvelope[] = [];
  let service: RunningBillingService;

  const purchase = (headers: Record<string, string>, productId = 'p-1') =>
    fetch(`${service.url}/v1/purchases`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ userId: USER, productId, quantity: 2 }),
    });
  const finished = async () => {
    await tracing.flush();
    return exporter.getFinishedSpans();
  };

  beforeAll(async () => {
    await bus.subscribe(
      'test.billing-traced',
      ['billing.invoice.created'],
      async (event) => void created.push(event),
      { tracing: consumerTracing },
    );
    service = await startBillingService({
      port: 0,
      database: database.options,
      bus,
      products: fakeProducts(sent),
      seed: false,
      logLevel: 'info',
      logDestination: new Writable({
        write(chunk, _encoding, done) {
          for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
          done();
        },
      }),
      metrics: { port: 0 },
      tracing,
    });
    // Identity's event, from a traced registration, opens the account Billing charges.
    await bus.publish({
      ...newEvent('identity', 'identity.user.registered', 1, { userId: USER }),
      trace: { traceparent },
    });
    await waitFor('the account', async () => {
      const r = await service.db.query('SELECT 1 FROM accounts WHERE user_id = $1', [USER]);
      return r.rowCount === 1;
    });
  });
  afterAll(async () => {
    await service?.close();
    await bus.close();
    await tracing.shutdown();
    await consumerTracing.shutdown();
    await database.drop();
  });

  it('handles the events it consumes in a CONSUMER span of the producer’s trace', async () => {
    const span = await waitFor('the account-opening span', async () =>
      (await finished()).find((s) => s.name === 'identity.user.registered process'),
    );
    expect(span.kind).toBe(SpanKind.CONSUMER);
    expect(span.spanContext().traceId).toBe(PARENT_TRACE);
    expect(span.parentSpanContext?.spanId).toBe('b7ad6b7169203331');
  });

  it('carries the caller’s trace through the Product call and into the invoice event', async () => {
    const response = await purchase({
      traceparent,
      'idempotency-key': randomUUID(),
      'x-request-id': 'req-b-1',
    });
    expect(response.status).toBe(201);
    const { invoice } = (await response.json()) as { invoice: { id: string } };

    const spans = await finished();
    const server = spans.find((s) => s.name === 'POST /v1/purchases');
    const client = spans.find((s) => s.name === 'product GetProduct');
    expect(server?.kind).toBe(SpanKind.SERVER);
    expect(server?.spanContext().traceId).toBe(PARENT_TRACE);
    expect(client?.kind).toBe(SpanKind.CLIENT);
    expect(client?.parentSpanContext?.spanId).toBe(server?.spanContext().spanId);
    expect(sent.at(-1)?.traceparent).toBe(`00-${PARENT_TRACE}-${client?.spanContext().spanId}-01`);

    const event = await waitFor('billing.invoice.created', () =>
      created.find((e) => (e.payload as { invoiceId: string }).invoiceId === invoice.id),
    );
    const consumed = await waitFor('the consumer span', async () => {
      await consumerTracing.flush();
      return consumerSpans
        .getFinishedSpans()
        .find((s) => s.kind === SpanKind.CONSUMER && s.attributes['messaging.message.id'] === event.id);
    });
    expect(consumed.spanContext().traceId).toBe(PARENT_TRACE);
    // Request, then the outbox relay's send (a PRODUCER span, Billing's), then the consumer.
    const published = await waitFor('the producer span', async () =>
      (await finished()).find((s) => s.name === 'billing.invoice.created publish'),
    );
    expect(published.kind).toBe(SpanKind.PRODUCER);
    expect(published.attributes['messaging.message.id']).toBe(event.id);
    expect(published.parentSpanContext?.spanId).toBe(server?.spanContext().spanId);
    expect(consumed.parentSpanContext?.spanId).toBe(published.spanContext().spanId);

    expect(lines.find((l) => l.msg === 'request completed' && l.requestId === 'req-b-1')).toMatchObject({
      service: 'billing',
      traceId: PARENT_TRACE,
      method: 'POST',
      route: '/v1/purchases',
      status: 201,
    });
  });

  it('counts ok, refused and error purchases once each, on the metrics listener only', async () => {
    const scrape = async () => (await fetch(`${service.metricsUrl}/metrics`)).text();
    const count = (text: string, outcome: string) => {
      const line = text
        .split('\n')
        .find(
          (l) =>
            l.startsWith('service_request_duration_seconds_count{') &&
            l.includes('method="POST /v1/purchases"') &&
            l.includes(`outcome="${outcome}"`),
        );
      return line ? Number(line.split(' ').at(-1)) : 0;
    };
    const before = await scrape();
    expect((await purchase({ 'idempotency-key': randomUUID() })).status).toBe(201);
    expect((await purchase({})).status).toBe(400); // no Idempotency-Key
    expect((await purchase({ 'idempotency-key': randomUUID() }, 'p-down')).status).toBe(503);
    expect((await fetch(`${service.url}/metrics`)).status).toBe(404);
    const after = await scrape();
    for (const outcome of ['ok', 'refused', 'error'])
      expect(count(after, outcome) - count(before, outcome), outcome).toBe(1);
    const failed = (await finished()).filter((s) => s.name === 'POST /v1/purchases' && s.status.code === 2);
    expect(failed).toHaveLength(1);
  });
});
