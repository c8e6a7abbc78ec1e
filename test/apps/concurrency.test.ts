// An operation's latency is its longest chain of dependent upstream calls, not their sum:
// every upstream sits behind a proxy that holds each answer for 100 ms.

import { TcpProxy } from '@bff/testkit';
import type { UpstreamCall } from '@bff/upstream-clients';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type System, startApp, startSystem, type TestApp } from '../support/system.ts';

const DELAY_MS = 100;

describe('independent branches run concurrently', () => {
  let system: System;
  let app: TestApp;
  const proxies: TcpProxy[] = [];
  const slow = async (hostPort: string) => {
    const { hostname, port } = new URL(hostPort.includes('://') ? hostPort : `tcp://${hostPort}`);
    const proxy = await new TcpProxy(hostname, Number(port), DELAY_MS).start();
    proxies.push(proxy);
    return proxy.port;
  };

  beforeAll(async () => {
    system = await startSystem();
    app = await startApp(
      'web',
      {
        identityUrl: `http://127.0.0.1:${await slow(system.identityUrl)}`,
        billingUrl: `http://127.0.0.1:${await slow(system.billingUrl)}`,
        productAddr: `127.0.0.1:${await slow(system.productAddr)}`,
      },
      // The timing of upstream calls is what is watched: a cached answer would make none.
      { responseCache: { enabled: false } },
    );
  });
  afterAll(async () => {
    await app?.close();
    for (const proxy of proxies) await proxy.close();
    await system?.close();
  });

  it('overlaps independent calls and orders only dependent ones', async () => {
    const query = `{
      viewer { avatarUrl invoices(first: 3) { edges { node { lines { product { name } } } } } }
      products(first: 2) { edges { node { name } } }
    }`;
    const token = await system.token('ada@example.com', 'web');
    await app.graphql(query, { token }); // warm the connections, so the timed run measures calls only
    app.resetCalls();
    const started = performance.timeOrigin + performance.now();
    const response = await app.graphql(query, { token });
    const wall = performance.timeOrigin + performance.now() - started;
    expect(response.body.errors).toBeUndefined();

    const find = (service: string, operation: RegExp) =>
      app.calls.find((c) => c.service === service && operation.test(c.operation)) as UpstreamCall;
    const identity = find('identity', /users/);
    const invoices = find('billing', /invoices/);
    const list = find('product', /ListProducts/);
    const lines = find('product', /GetProducts/);
    expect([identity, invoices, list, lines].every(Boolean)).toBe(true);
    const end = (c: UpstreamCall) => c.startedAt + c.durationMs;

    // The three first-level calls were all in flight at once.
    const latestStart = Math.max(identity.startedAt, invoices.startedAt, list.startedAt);
    const earliestEnd = Math.min(end(identity), end(invoices), end(list));
    expect(latestStart).toBeLessThan(earliestEnd);
    // The line products depend on the invoices, so that call waited for them.
    expect(lines.startedAt).toBeGreaterThanOrEqual(end(invoices));
    // So the whole took about the longest chain (two calls), far less than the four calls' sum.
    const sum = app.calls.reduce((total, c) => total + c.durationMs, 0);
    expect(sum).toBeGreaterThanOrEqual(4 * DELAY_MS);
    expect(wall).toBeLessThan(sum);
  });
});
