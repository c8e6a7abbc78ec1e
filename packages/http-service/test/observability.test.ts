// What a service says about each request: one JSON log line carrying the request id and the
// caller's trace id, a SERVER span under the caller's traceparent, and one histogram sample per
// request labelled by route pattern and outcome; metrics on their own listener only.
import { Writable } from 'node:stream';
import {
  createMetricsRegistry,
  createTracing,
  type RunningMetricsServer,
  ServiceMetrics,
  SpanKind,
  startMetricsServer,
  type Tracing,
  traceIdOf,
} from '@bff/observability';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { createHttpService, ErrorCode, HttpError, listen, requestTraceContext } from '../src/index.ts';

const PARENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_SPAN = '00f067aa0ba902b7';
const traceparent = `00-${PARENT_TRACE}-${PARENT_SPAN}-01`;

interface Observed {
  app: FastifyInstance;
  lines: Record<string, unknown>[];
  exporter: InMemorySpanExporter;
  tracing: Tracing;
  metrics: ServiceMetrics;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function observedService(): Observed {
  const lines: Record<string, unknown>[] = [];
  const logDestination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  const exporter = new InMemorySpanExporter();
  const tracing = createTracing({ serviceName: 'test', exporter });
  const metrics = new ServiceMetrics(createMetricsRegistry({ processMetrics: false }));
  const app = createHttpService({ name: 'test', logLevel: 'info', logDestination, tracing, metrics });
  app.get('/items/:id', async (request) => ({ traceId: traceIdOf(requestTraceContext(request)) }));
  app.get('/refused', async () => {
    throw new HttpError(409, ErrorCode.Conflict, 'no');
  });
  app.get('/crash', async () => {
    throw new Error('boom');
  });
  cleanups.push(async () => {
    await app.close();
    await tracing.shutdown();
  });
  return { app, lines, exporter, tracing, metrics };
}

/** Samples of service_request_duration_seconds by `method|outcome`. */
async function counts(metrics: ServiceMetrics): Promise<Record<string, number>> {
  const json = await metrics.registry.getMetricsAsJSON();
  const histogram = json.find((m) => m.name === 'service_request_duration_seconds');
  const out: Record<string, number> = {};
  for (const value of histogram?.values ?? []) {
    if ((value as { metricName?: string }).metricName !== 'service_request_duration_seconds_count') continue;
    out[`${value.labels.method}|${value.labels.outcome}`] = value.value;
  }
  return out;
}

describe('createHttpService: logs, traces and metrics', () => {
  it('continues the caller’s trace in a SERVER span, gives the handler its context and logs one line with it', async () => {
    const { app, lines, exporter, tracing } = observedService();
    const response = await app.inject({
      method: 'GET',
      url: '/items/42?secret=x',
      headers: { traceparent, 'x-request-id': 'bff-req-1' },
    });
    expect(response.json()).toEqual({ traceId: PARENT_TRACE });
    await tracing.flush();
    const [span] = exporter.getFinishedSpans();
    expect(span?.name).toBe('GET /items/:id');
    expect(span?.kind).toBe(SpanKind.SERVER);
    expect(span?.spanContext().traceId).toBe(PARENT_TRACE);
    expect(span?.parentSpanContext?.spanId).toBe(PARENT_SPAN);
    expect(span?.attributes['http.response.status_code']).toBe(200);
    const completed = lines.filter((l) => l.msg === 'request completed');
    expect(completed).toHaveLength(1);
    expect(completed[0]).toMatchObject({
      service: 'test',
      level: 'info',
      requestId: 'bff-req-1',
      traceId: PARENT_TRACE,
      method: 'GET',
      route: '/items/:id',
      status: 200,
    });
    expect(typeof completed[0]?.durationMs).toBe('number');
    expect(JSON.stringify(lines)).not.toContain('secret=x');
  });

  it('starts a new trace for a request without a usable traceparent, whatever it sent', async () => {
    const { app, lines } = observedService();
    for (const hostile of ['garbage', `00-${'0'.repeat(32)}-${PARENT_SPAN}-01`, 'x'.repeat(10_000)]) {
      const response = await app.inject({
        method: 'GET',
        url: '/items/1',
        headers: { traceparent: hostile },
      });
      expect(response.statusCode).toBe(200);
      expect(response.json().traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(response.json().traceId).not.toBe(PARENT_TRACE);
    }
    const ids = lines.filter((l) => l.msg === 'request completed').map((l) => l.requestId);
    expect(new Set(ids).size).toBe(3);
  });

  it('counts each request once, by route pattern and outcome; unknown routes are one label', async () => {
    const { app, metrics, tracing, exporter } = observedService();
    for (const url of ['/items/1', '/items/2', '/refused', '/crash', '/nope/1?x=1', '/nope/2']) {
      await app.inject({ method: 'GET', url });
    }
    expect(await counts(metrics)).toEqual({
      'GET /items/:id|ok': 2,
      'GET /refused|refused': 1,
      'GET /crash|error': 1,
      'unmatched|refused': 2,
    });
    await tracing.flush();
    const crashed = exporter.getFinishedSpans().find((s) => s.name === 'GET /crash');
    expect(crashed?.status.code).toBe(2); // ERROR
  });

  it('serves the metrics on their own listener, never on the public port', async () => {
    const { app, metrics } = observedService();
    const url = await listen(app, 0);
    const server: RunningMetricsServer = await startMetricsServer({ registry: metrics.registry, port: 0 });
    cleanups.push(() => server.close());
    expect((await fetch(`${url}/items/1`)).status).toBe(200);
    expect((await fetch(`${url}/metrics`)).status).toBe(404);
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(text).toContain('service_request_duration_seconds_count{method="GET /items/:id",outcome="ok"} 1');
    expect(text).toContain('service_request_duration_seconds_count{method="unmatched",outcome="refused"} 1');
  });
});
