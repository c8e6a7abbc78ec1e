// Product observed from outside: the handler continues the trace the caller sent as gRPC
// `traceparent` metadata (a SERVER span, one log line with method, code and trace id), the
// price_changed event it writes is published (a PRODUCER span) and consumed under that span,
// and each call is counted once by outcome (client-fault codes are `refused`).
import { Writable } from 'node:stream';
import { InProcessEventBus } from '@bff/events';
import { createTracing, loggerOptions, SpanKind, traceIdOf } from '@bff/observability';
import { throwawayDatabase, waitFor } from '@bff/testkit';
import { type CallOptions, createProductClient, type ProductClient } from '@bff/upstream-clients';
import * as grpc from '@grpc/grpc-js';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpcOutcome } from '../src/grpc-handlers.ts';
import { type RunningProductService, startProductService } from '../src/index.ts';

const PARENT_TRACE = '0af7651916cd43dd8448eb211c80319c';
const PARENT_SPAN = 'b7ad6b7169203331';
const traced = (headers: Record<string, string>): CallOptions => ({
  trace: { startTry: () => ({ headers, end: () => {} }) },
});
const traceparent = `00-${PARENT_TRACE}-${PARENT_SPAN}-01`;

describe('Product service: logs, traces, metrics', () => {
  const database = throwawayDatabase('pglite', 'product');
  const exporter = new InMemorySpanExporter();
  const tracing = createTracing({ serviceName: 'product', exporter });
  const consumerSpans = new InMemorySpanExporter();
  const consumerTracing = createTracing({ serviceName: 'consumer', exporter: consumerSpans });
  const bus = new InProcessEventBus({ tracing: consumerTracing });
  const lines: Record<string, unknown>[] = [];
  const consumed = new Map<string, string | undefined>();
  let service: RunningProductService;
  let client: ProductClient;

  beforeAll(async () => {
    await bus.subscribe('test.product-traced', ['product.price_changed'], async (event, delivery) => {
      consumed.set(event.id, traceIdOf(delivery.traceContext));
    });
    const destination = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
        done();
      },
    });
    service = await startProductService({
      port: 0,
      database: database.options,
      bus,
      logger: pino(loggerOptions({ base: { service: 'product' }, destination }), destination),
      metrics: { port: 0 },
      tracing,
    });
    client = createProductClient({ address: service.address });
  });
  afterAll(async () => {
    client?.close();
    await service?.close();
    await bus.close();
    await tracing.shutdown();
    await consumerTracing.shutdown();
    await database.drop();
  });

  it('continues the trace sent as gRPC metadata and logs one line per call with it', async () => {
    const product = await client.getProduct('p-0001', traced({ traceparent }));
    expect(product?.id).toBe('p-0001');
    await tracing.flush();
    const span = exporter
      .getFinishedSpans()
      .find((s) => s.name === 'bff.product.v1.ProductService/GetProduct');
    expect(span?.kind).toBe(SpanKind.SERVER);
    expect(span?.spanContext().traceId).toBe(PARENT_TRACE);
    expect(span?.parentSpanContext?.spanId).toBe(PARENT_SPAN);
    const line = lines.find((l) => l.msg === 'call completed' && l.traceId === PARENT_TRACE);
    expect(line).toMatchObject({ service: 'product', method: 'GetProduct', code: 'OK', outcome: 'ok' });
    expect(typeof line?.durationMs).toBe('number');
  });

  it('ignores hostile trace metadata: the call succeeds in a trace of its own', async () => {
    for (const hostile of ['garbage', `00-${'0'.repeat(32)}-${PARENT_SPAN}-01`, 'x'.repeat(4_000)]) {
      expect((await client.getProduct('p-0002', traced({ traceparent: hostile })))?.id).toBe('p-0002');
    }
    const ids = lines
      .filter((l) => l.msg === 'call completed' && l.method === 'GetProduct')
      .slice(-3)
      .map((l) => l.traceId);
    expect(new Set(ids).size).toBe(3);
    for (const id of ids) expect(id).toMatch(/^(?!0{32})[0-9a-f]{32}$/);
  });

  it('carries the caller’s trace into the price_changed event’s consumer', async () => {
    const before = (await client.getProduct('p-0003'))?.price.amountMinor ?? 0;
    await client.updatePrice('p-0003', { amountMinor: before + 1, currency: 'USD' }, traced({ traceparent }));
    await waitFor('the event', () => consumed.size === 1);
    expect([...consumed.values()]).toEqual([PARENT_TRACE]);
    await tracing.flush();
    const server = exporter
      .getFinishedSpans()
      .find((s) => s.name === 'bff.product.v1.ProductService/UpdatePrice');
    const consumer = await waitFor('the consumer span', async () => {
      await consumerTracing.flush();
      return consumerSpans.getFinishedSpans()[0];
    });
    expect(consumer.spanContext().traceId).toBe(PARENT_TRACE);
    // Request, then the outbox relay's send (a PRODUCER span, Product's), then the consumer.
    const published = await waitFor('the producer span', async () => {
      await tracing.flush();
      return exporter.getFinishedSpans().find((s) => s.name === 'product.price_changed publish');
    });
    expect(published.kind).toBe(SpanKind.PRODUCER);
    expect(published.parentSpanContext?.spanId).toBe(server?.spanContext().spanId);
    expect(consumer.parentSpanContext?.spanId).toBe(published.spanContext().spanId);
  });

  it('counts each call once by method and outcome, client faults as refused', async () => {
    const scrape = async () => (await fetch(`${service.metricsUrl}/metrics`)).text();
    const count = (text: string, method: string, outcome: string) => {
      const line = text
        .split('\n')
        .find(
          (l) =>
            l.startsWith('service_request_duration_seconds_count{') &&
            l.includes(`method="${method}"`) &&
            l.includes(`outcome="${outcome}"`),
        );
      return line ? Number(line.split(' ').at(-1)) : 0;
    };
    const before = await scrape();
    await client.getProduct('p-0004');
    expect(await client.getProduct('nope')).toBeNull(); // NOT_FOUND
    await expect(client.listProducts({ pageSize: 1_000 })).rejects.toThrow(); // INVALID_ARGUMENT
    const after = await scrape();
    const delta = (method: string, outcome: string) =>
      count(after, method, outcome) - count(before, method, outcome);
    expect(delta('GetProduct', 'ok')).toBe(1);
    expect(delta('GetProduct', 'refused')).toBe(1);
    expect(delta('ListProducts', 'refused')).toBe(1);
    expect(delta('GetProduct', 'error') + delta('ListProducts', 'error')).toBe(0);
    expect(after).toMatch(/^outbox_backlog_rows\{service="product"\} \d+$/m);
    expect(lines.find((l) => l.method === 'ListProducts')).toMatchObject({
      code: 'INVALID_ARGUMENT',
      outcome: 'refused',
      level: 'info',
    });
  });
});

describe('grpcOutcome', () => {
  it('maps OK to ok, client-fault codes to refused and everything else to error', () => {
    const { status } = grpc;
    expect(grpcOutcome(status.OK)).toBe('ok');
    for (const code of [
      status.INVALID_ARGUMENT,
      status.NOT_FOUND,
      status.OUT_OF_RANGE,
      status.FAILED_PRECONDITION,
      status.ALREADY_EXISTS,
      status.UNAUTHENTICATED,
      status.PERMISSION_DENIED,
    ])
      expect(grpcOutcome(code), status[code]).toBe('refused');
    for (const code of [status.INTERNAL, status.UNAVAILABLE, status.DEADLINE_EXCEEDED, status.UNKNOWN])
      expect(grpcOutcome(code), status[code]).toBe('error');
  });
});
