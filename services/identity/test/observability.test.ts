// Identity observed from outside: a request with the caller's traceparent yields a SERVER span
// in that trace and a log line carrying it; the user.registered event it writes reaches a
// subscriber whose CONSUMER span is in the same trace, under that request; Prometheus text on
// a listener of its own counts each request once and shows the outbox backlog.
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { InProcessEventBus } from '@bff/events';
import { createTracing, SpanKind, traceIdOf } from '@bff/observability';
import { throwawayDatabase, waitFor } from '@bff/testkit';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningIdentityService, readIdentityConfig, startIdentityService } from '../src/index.ts';

const PARENT_TRACE = '0af7651916cd43dd8448eb211c80319c';
const traceparent = `00-${PARENT_TRACE}-b7ad6b7169203331-01`;

describe('Identity service: logs, traces, metrics', () => {
  const database = throwawayDatabase('pglite', 'identity');
  const exporter = new InMemorySpanExporter();
  const tracing = createTracing({ serviceName: 'identity', exporter });
  const consumerSpans = new InMemorySpanExporter();
  const consumerTracing = createTracing({ serviceName: 'billing', exporter: consumerSpans });
  const bus = new InProcessEventBus({ tracing: consumerTracing });
  const lines: Record<string, unknown>[] = [];
  const delivered = new Map<string, string | undefined>();
  let service: RunningIdentityService;

  beforeAll(async () => {
    await bus.subscribe('test.identity-traced', ['identity.user.registered'], async (event, delivery) => {
      delivered.set((event.payload as { userId: string }).userId, traceIdOf(delivery.traceContext));
    });
    service = await startIdentityService({
      port: 0,
      database: database.options,
      bus,
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
  });
  afterAll(async () => {
    await service?.close();
    await bus.close();
    await tracing.shutdown();
    await consumerTracing.shutdown();
    await database.drop();
  });

  const scrape = async () => {
    const response = await fetch(`${service.metricsUrl}/metrics`);
    expect(response.status).toBe(200);
    return response.text();
  };
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

  it('continues the caller’s trace from request to event consumer, and logs the trace id', async () => {
    const response = await fetch(`${service.url}/v1/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent, 'x-request-id': 'req-identity-1' },
      body: JSON.stringify({ email: `t-${randomUUID()}@example.com`, password: 'long enough pw', name: 'T' }),
    });
    expect(response.status).toBe(201);
    const { id } = (await response.json()) as { id: string };

    await waitFor('the event to reach the subscriber', () => delivered.has(id));
    expect(delivered.get(id)).toBe(PARENT_TRACE);
    await tracing.flush();
    const request = exporter.getFinishedSpans().find((s) => s.name === 'POST /v1/users');
    expect(request?.kind).toBe(SpanKind.SERVER);
    expect(request?.spanContext().traceId).toBe(PARENT_TRACE);
    const consumed = await waitFor('the consumer span', async () => {
      await consumerTracing.flush();
      return consumerSpans.getFinishedSpans().find((s) => s.name === 'identity.user.registered process');
    });
    expect(consumed.kind).toBe(SpanKind.CONSUMER);
    expect(consumed.spanContext().traceId).toBe(PARENT_TRACE);
    // Request, then the outbox relay's send (a PRODUCER span, Identity's), then the consumer.
    const published = exporter.getFinishedSpans().find((s) => s.name === 'identity.user.registered publish');
    expect(published?.kind).toBe(SpanKind.PRODUCER);
    expect(published?.parentSpanContext?.spanId).toBe(request?.spanContext().spanId);
    expect(consumed.parentSpanContext?.spanId).toBe(published?.spanContext().spanId);

    const line = lines.find((l) => l.msg === 'request completed' && l.requestId === 'req-identity-1');
    expect(line).toMatchObject({
      service: 'identity',
      traceId: PARENT_TRACE,
      method: 'POST',
      route: '/v1/users',
      status: 201,
    });
    expect(typeof line?.durationMs).toBe('number');
  });

  it('counts each request once per route and outcome, on the metrics listener only', async () => {
    const before = await scrape();
    const get = (path: string) => fetch(`${service.url}${path}`).then((r) => r.status);
    expect(await get('/healthz')).toBe(200);
    expect(await get('/healthz')).toBe(200);
    expect(await get(`/v1/users/${randomUUID()}`)).toBe(404);
    expect(await get('/v1/users?ids=')).toBe(400);
    expect(await get(`/no/such/${randomUUID()}`)).toBe(404);
    expect(await get('/metrics')).toBe(404); // the public port has no metrics
    const after = await scrape();
    const delta = (method: string, outcome: string) =>
      count(after, method, outcome) - count(before, method, outcome);
    expect(delta('GET /healthz', 'ok')).toBe(2);
    expect(delta('GET /v1/users/:id', 'refused')).toBe(1);
    expect(delta('GET /v1/users', 'refused')).toBe(1);
    expect(delta('unmatched', 'refused')).toBe(2);
    expect(delta('GET /healthz', 'error')).toBe(0);
    expect(after).not.toMatch(/method="[^"]*no\/such/);
    expect(after).toContain('process_cpu_seconds_total');
  });

  it('exports the outbox backlog and the age of its oldest unpublished row', async () => {
    // A row another relay holds the lease on: unpublished, and out of this relay's reach.
    const stuck = randomUUID();
    await service.db.query(
      `INSERT INTO outbox (id, type, version, source, occurred_at, payload, locked_until)
       VALUES ($1, 'identity.test.stuck', 1, 'identity', now() - interval '90 seconds', '{}', now() + interval '1 hour')`,
      [stuck],
    );
    try {
      const text = await scrape();
      expect(text).toMatch(/^outbox_backlog_rows\{service="identity"\} 1$/m);
      const age = Number(/^outbox_oldest_age_seconds\{service="identity"\} (\S+)$/m.exec(text)?.[1]);
      expect(age).toBeGreaterThanOrEqual(90);
    } finally {
      await service.db.query('DELETE FROM outbox WHERE id = $1', [stuck]);
    }
    expect(await scrape()).toMatch(/^outbox_backlog_rows\{service="identity"\} 0$/m);
  });

  it('reads LOG_FORMAT, METRICS_PORT and the OpenTelemetry variables, refusing bad values by name', () => {
    const config = readIdentityConfig({
      LOG_FORMAT: 'pretty',
      METRICS_PORT: '9464',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
      OTEL_TRACES_SAMPLER_ARG: '0.25',
    });
    expect(config).toMatchObject({
      LOG_LEVEL: 'info',
      LOG_FORMAT: 'pretty',
      METRICS_PORT: 9464,
      METRICS_HOST: '127.0.0.1',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
      OTEL_TRACES_SAMPLER_ARG: 0.25,
    });
    expect(readIdentityConfig({}).METRICS_PORT).toBeUndefined();
    expect(readIdentityConfig({}).OTEL_TRACES_SAMPLER_ARG).toBe(1);
    expect(() => readIdentityConfig({ METRICS_PORT: '70000' })).toThrow(/METRICS_PORT.*70000/);
    expect(() => readIdentityConfig({ OTEL_TRACES_SAMPLER_ARG: '1.5' })).toThrow(/OTEL_TRACES_SAMPLER_ARG/);
    expect(() => readIdentityConfig({ LOG_FORMAT: 'xml' })).toThrow(/LOG_FORMAT/);
  });
});
