// What an operator sees of a BFF: the metrics account for every request exactly once whatever
// became of it, operation names cannot grow the series, one log line per request carries its
// trace id, and a trusted caller's trace reaches Identity and Billing.
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { waitFor } from '@bff/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appNames, type System, startApp, startSystem, type TestApp } from '../support/system.ts';

let system: System;
beforeAll(async () => {
  system = await startSystem();
});
afterAll(async () => {
  await system?.close();
});

/** Sums the samples of `metric` in Prometheus text, grouped by the value of `label`. */
function samplesBy(text: string, metric: string, label: string): Record<string, number> {
  const sums: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}{`)) continue;
    const value = new RegExp(`${label}="([^"]*)"`).exec(line)?.[1] ?? '';
    sums[value] = (sums[value] ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sums;
}

const total = (sums: Record<string, number>) => Object.values(sums).reduce((a, b) => a + b, 0);

async function scrape(app: TestApp): Promise<string> {
  expect(app.bff.metricsUrl).toBeDefined();
  const response = await fetch(`${app.bff.metricsUrl}/metrics`);
  expect(response.status).toBe(200);
  return response.text();
}

const GET_PRODUCT = 'query GetProduct { product(id: "p-0001") { id } }';

describe('metrics and the request log of a BFF', () => {
  let app: TestApp;
  const lines: Record<string, unknown>[] = [];
  beforeAll(async () => {
    app = await startApp('ios', system, {
      rateLimit: { defaults: { max: 3, window: '1m' } },
      observability: { metricsPort: 0, metricsHost: '127.0.0.1' },
      // graphql-jit would compile each of the 10,000 distinct documents below; the telemetry
      // is the same under either executor.
      executor: 'graphql-js',
      logDestination: { write: (line) => void lines.push(JSON.parse(line)) },
    });
  });
  afterAll(async () => {
    await app?.close();
  });

  it('serves its metrics on their own listener, not on the public port', async () => {
    expect(app.bff.metricsUrl).not.toBe(app.url);
    expect((await fetch(`${app.url}/metrics`)).status).toBe(404);
    const text = await scrape(app);
    for (const name of [
      'graphql_operation_duration_seconds',
      'bff_upstream_request_duration_seconds',
      'bff_circuit_breaker_state',
      'bff_rate_limit_decisions_total',
      'bff_upstream_retries_total',
      'process_cpu_seconds_total',
      'nodejs_eventloop_lag_seconds',
    ]) {
      expect(text).toContain(`# TYPE ${name} `);
    }
    expect(text).toContain('bff_circuit_breaker_state{service="product",app="ios"} 0');
  });

  it('accounts for every request exactly once, by outcome, and logs one line for each', async () => {
    const before = samplesBy(await scrape(app), 'graphql_operation_duration_seconds_count', 'outcome');
    const logged = lines.length;
    const post = (body: string, headers: Record<string, string> = {}) =>
      fetch(`${app.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body,
      });
    const statuses: number[] = [];
    // Three allowed, then two over the limit of three a minute.
    for (let i = 0; i < 5; i++)
      statuses.push((await post(JSON.stringify({ query: GET_PRODUCT }), { 'x-forwarded-for': '1' })).status);
    // Refused by validation, and before GraphQL (a body that is not JSON).
    statuses.push((await post(JSON.stringify({ query: '{ nope }' }))).status);
    statuses.push((await post('{"query": ')).status);
    // Not an operation: counted by the HTTP counter only.
    statuses.push((await fetch(`${app.url}/healthz`)).status);
    expect(statuses).toEqual([200, 200, 200, 429, 429, 400, 400, 200]);

    // Counted as each response closes: wait for the scrape to catch up, never for a fixed time.
    const expected = { ok: 3, rate_limited: 2, refused: 2 };
    let after: Record<string, number> = {};
    await waitFor('every request counted', async () => {
      after = samplesBy(await scrape(app), 'graphql_operation_duration_seconds_count', 'outcome');
      return total(after) - total(before) >= 7;
    });
    const delta = Object.fromEntries(
      Object.keys(after)
        .map((key) => [key, (after[key] ?? 0) - (before[key] ?? 0)] as const)
        .filter(([, n]) => n !== 0),
    );
    expect(delta).toEqual(expected);

    await waitFor('a log line per request', () => lines.length - logged >= 8);
    const requestLines = lines.slice(logged).filter((line) => line.msg === 'request');
    expect(requestLines).toHaveLength(8);
    for (const line of requestLines) {
      expect(line).toMatchObject({ app: 'ios', level: 'info' });
      expect(line.requestId).toEqual(expect.any(String));
      expect(line.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(line.durationMs).toEqual(expect.any(Number));
    }
    expect(new Set(requestLines.map((line) => line.traceId)).size).toBe(8);
    expect(requestLines.map((line) => line.outcome)).toEqual([
      'ok',
      'ok',
      'ok',
      'rate_limited',
      'rate_limited',
      'refused',
      'refused',
      undefined,
    ]);
    expect(requestLines[0]).toMatchObject({
      operationName: 'GetProduct',
      operationType: 'query',
      status: 200,
      upstreamCalls: 1,
      rateLimit: 'allowed',
    });
    expect(requestLines[3]).toMatchObject({ status: 429, rateLimit: 'limited', upstreamCalls: 0 });
    // The same public operation: executed once, then answered from the cache (which still spends
    // the rate limit, so the fourth and fifth are refused, not served).
    expect(requestLines.map((line) => line.cache)).toEqual([
      'miss',
      'hit',
      'hit',
      'none',
      'none',
      'none',
      'none',
      'none',
    ]);
    expect(requestLines.slice(1, 3).map((line) => line.upstreamCalls)).toEqual([0, 0]);
    const decisions = samplesBy(await scrape(app), 'bff_rate_limit_decisions_total', 'decision');
    expect(decisions).toMatchObject({ allowed: 3, limited: 2 });
  });

  it('counts a request Node’s parser refuses, and one the client abandons, once each', async () => {
    const httpBefore = samplesBy(await scrape(app), 'bff_http_requests_total', 'status_class');
    // Headers past Node's limit: answered 431 by the parser, never a Fastify request.
    await new Promise<void>((resolve, reject) => {
      const socket = connect(Number(new URL(app.url).port), '127.0.0.1', () => {
        socket.write(`GET /graphql HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
      });
      socket.on('data', () => {});
      socket.on('close', () => resolve());
      socket.on('error', reject);
    });
    await waitFor('the refused head counted', async () => {
      const now = samplesBy(await scrape(app), 'bff_http_requests_total', 'status_class');
      return (now['4xx'] ?? 0) - (httpBefore['4xx'] ?? 0) === 1;
    });
  });

  it('labels only known operation names: 10,000 made-up names make one series', async () => {
    const names = (text: string) =>
      new Set(
        text
          .split('\n')
          .filter((line) => line.startsWith('graphql_operation_duration_seconds_count{'))
          .map((line) => /operation_name="([^"]*)"/.exec(line)?.[1]),
      );
    const known = new Set(['Catalogue', 'PayInvoice', 'ProductCard', 'Purchase', 'ViewerInvoices']);
    let next = 0;
    // In process (Fastify's inject: the same hooks, no sockets), ten at a time; the documents
    // are distinct in name only.
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        for (let i = next++; i < 10_000; i = next++) {
          const response = await app.bff.app.inject({
            method: 'POST',
            url: '/graphql',
            headers: { 'content-type': 'application/json' },
            payload: JSON.stringify({ query: `query Made${i}Up { __typename }` }),
          });
          expect(response.statusCode).toBe(200);
        }
      }),
    );
    let seen = new Set<string | undefined>();
    await waitFor('10,000 operations counted', async () => {
      const text = await scrape(app);
      seen = names(text);
      return total(samplesBy(text, 'graphql_operation_duration_seconds_count', 'outcome')) >= 10_000;
    });
    for (const name of seen)
      expect(name === 'other' || name === 'anonymous' || known.has(name ?? '')).toBe(true);
    expect(seen.has('other')).toBe(true);
    expect(seen.size).toBeLessThanOrEqual(known.size + 2);
  }, 120_000);
});

describe.each(appNames)('every request to the %s BFF is counted once, by outcome', (name) => {
  let app: TestApp;
  beforeAll(async () => {
    // Product unreachable: a catalogue read fails upstream while the rest answers.
    app = await startApp(name, system, {
      productAddr: '127.0.0.1:1',
      observability: { metricsPort: 0, metricsHost: '127.0.0.1' },
    });
  });
  afterAll(async () => {
    await app?.close();
  });

  it('ok, partial, refused before and during GraphQL, unauthenticated', async () => {
    const post = (body: string, contentType = 'application/json') =>
      fetch(`${app.url}/graphql`, { method: 'POST', headers: { 'content-type': contentType }, body }).then(
        async (response) => {
          await response.arrayBuffer();
          return response.status;
        },
      );
    const statuses = [
      await post(JSON.stringify({ query: '{ __typename }' })),
      await post(JSON.stringify({ query: GET_PRODUCT })),
      await post(JSON.stringify({ query: '{ nope }' })),
      await post('{"query": '),
      await post(JSON.stringify({ query: '{ __typename }' }), 'text/plain'),
      await post(JSON.stringify({ query: 'mutation { payInvoice(id: "x") { id } }' })),
    ];
    expect(statuses[0]).toBe(200);
    expect(statuses[1]).toBe(200);
    for (const status of statuses.slice(2)) expect(status).toBeGreaterThanOrEqual(400);
    let counted: Record<string, number> = {};
    await waitFor('six requests counted', async () => {
      counted = samplesBy(await scrape(app), 'graphql_operation_duration_seconds_count', 'outcome');
      return total(counted) >= 6;
    });
    expect(counted).toEqual({ ok: 1, partial: 1, refused: 4 });
    const product = samplesBy(
      (await scrape(app))
        .split('\n')
        .filter((line) => line.includes('service="product"'))
        .join('\n'),
      'bff_upstream_request_duration_seconds_count',
      'outcome',
    );
    expect(product.ok ?? 0).toBe(0);
    expect(product.error ?? 0).toBeGreaterThanOrEqual(1);
    // Identity's keys, fetched at start, are an upstream call like any other.
    const identity = samplesBy(
      (await scrape(app))
        .split('\n')
        .filter((line) => line.includes('service="identity"'))
        .join('\n'),
      'bff_upstream_request_duration_seconds_count',
      'outcome',
    );
    expect(identity.ok).toBeGreaterThanOrEqual(1);
  });
});

/** An HTTP proxy to `target` that records the `traceparent` of every request it forwards. */
async function recordingProxy(target: string) {
  const seen: string[] = [];
  const upstream = new URL(target);
  const server: Server = createServer((request, response) => {
    const header = request.headers.traceparent;
    if (typeof header === 'string') seen.push(header);
    const forwarded = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: request.method,
        path: request.url,
        headers: request.headers,
      },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(response);
      },
    );
    forwarded.on('error', () => response.destroy());
    request.pipe(forwarded);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('trace context from the client to the services', () => {
  const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
  const traceparent = `00-${TRACE}-00f067aa0ba902b7-01`;
  const traceOf = (header: string) => header.split('-')[1];

  it.each([
    ['trusted', true],
    ['not trusted', false],
  ] as const)('a client traceparent that is %s', async (_, trustTraceHeaders) => {
    const identity = await recordingProxy(system.identityUrl);
    const billing = await recordingProxy(system.billingUrl);
    const app = await startApp('web', system, {
      identityUrl: identity.url,
      billingUrl: billing.url,
      observability: { tracing: { trustTraceHeaders } },
    });
    try {
      const token = await system.token('ada@example.com', 'web');
      identity.seen.length = 0;
      const { status, body } = await app.graphql(
        '{ viewer { avatarUrl invoices(first: 2) { edges { node { id } } } } }',
        { token, headers: { traceparent } },
      );
      expect(status).toBe(200);
      expect(body.errors).toBeUndefined();
      expect(identity.seen.length).toBeGreaterThan(0);
      expect(billing.seen.length).toBeGreaterThan(0);
      const traces = new Set([...identity.seen, ...billing.seen].map(traceOf));
      // One trace for the whole request, whichever it is.
      expect(traces.size).toBe(1);
      if (trustTraceHeaders) expect(traces).toEqual(new Set([TRACE]));
      else expect(traces.has(TRACE)).toBe(false);
    } finally {
      await app.close();
      await identity.close();
      await billing.close();
    }
  });
});
