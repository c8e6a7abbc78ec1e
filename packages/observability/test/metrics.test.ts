import { afterEach, describe, expect, it } from 'vitest';
import {
  BffMetrics,
  createMetricsRegistry,
  OperationNameLabels,
  type RunningMetricsServer,
  ServiceMetrics,
  startMetricsServer,
} from '../src/index.ts';

let server: RunningMetricsServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('operation name labels', () => {
  it('keep only known names, so 10,000 made-up names make one series', async () => {
    const metrics = new BffMetrics(
      createMetricsRegistry({ defaultLabels: { app: 'web' }, processMetrics: false }),
    );
    const names = new OperationNameLabels({ allowed: ['GetProduct'] });
    for (let i = 0; i < 10_000; i++) {
      metrics.operationDuration.observe(
        { operation_name: names.label(`Op${i}`), operation_type: 'query', outcome: 'ok' },
        0.01,
      );
    }
    metrics.operationDuration.observe(
      { operation_name: names.label('GetProduct'), operation_type: 'query', outcome: 'ok' },
      0.01,
    );
    metrics.operationDuration.observe(
      { operation_name: names.label(undefined), operation_type: 'query', outcome: 'ok' },
      0.01,
    );
    const [metric] = (await metrics.registry.getMetricsAsJSON()).filter(
      (m) => m.name === 'graphql_operation_duration_seconds',
    );
    const series = new Set(
      (metric?.values ?? [])
        .filter(
          (v) => (v as { metricName?: string }).metricName === 'graphql_operation_duration_seconds_count',
        )
        .map((v) => JSON.stringify(v.labels)),
    );
    expect([...series].map((s) => JSON.parse(s).operation_name).sort()).toEqual([
      'GetProduct',
      'anonymous',
      'other',
    ]);
    expect([...series].every((s) => JSON.parse(s).app === 'web')).toBe(true);
  });
});

describe('the metrics listener', () => {
  it('serves Prometheus text at /metrics and nothing else', async () => {
    const registry = createMetricsRegistry({ defaultLabels: { app: 'ios' } });
    const metrics = new BffMetrics(registry);
    metrics.rateLimitDecisions.inc({ decision: 'allowed' });
    server = await startMetricsServer({ registry, port: 0 });
    const response = await fetch(`${server.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain');
    const text = await response.text();
    expect(text).toContain('bff_rate_limit_decisions_total{decision="allowed",app="ios"} 1');
    expect(text).toContain('process_cpu_seconds_total');
    expect(text).toContain('nodejs_eventloop_lag_seconds');
    expect((await fetch(`${server.url}/`)).status).toBe(404);
    expect((await fetch(`${server.url}/metrics`, { method: 'POST' })).status).toBe(404);
  });

  it('refuses a port that is not one', async () => {
    const registry = createMetricsRegistry({ processMetrics: false });
    await expect(startMetricsServer({ registry, port: 70_000 })).rejects.toThrow(/received 70000/);
  });
});

describe('outbox gauges', () => {
  it('read the backlog once per scrape and keep the last values when the read fails', async () => {
    const registry = createMetricsRegistry({ processMetrics: false });
    const metrics = new ServiceMetrics(registry);
    let reads = 0;
    let fail = false;
    metrics.observeOutbox(async () => {
      reads++;
      if (fail) throw new Error('database down');
      return { backlog: 7, oldestAgeSeconds: 12.5 };
    });
    const first = await registry.metrics();
    expect(first).toContain('outbox_backlog_rows 7');
    expect(first).toContain('outbox_oldest_age_seconds 12.5');
    expect(reads).toBe(1);
    fail = true;
    const second = await registry.metrics();
    expect(second).toContain('outbox_backlog_rows 7');
    expect(reads).toBe(2);
  });
});
