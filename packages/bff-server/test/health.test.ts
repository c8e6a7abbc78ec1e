// /healthz and /readyz: the process answers whatever the upstreams do; readiness is 503 only
// when nothing useful can be served (no upstream reachable, or draining), "degraded" but 200
// when some are. The rules on a bare Fastify app with stand-in upstreams, then through a
// running BFF whose upstreams are tiny stubs on port 0 or unreachable addresses.
import type { Upstreams } from '@bff/loaders';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { registerHealthRoutes } from '../src/health.ts';
import type { RunningBff } from '../src/index.ts';
import type { UpstreamGuards } from '../src/upstreams.ts';
import { startStub, startTestBff, UNREACHABLE_URL } from './support/test-bff.ts';

type Name = 'identity' | 'billing' | 'product';
type BreakerState = UpstreamGuards[Name]['state'];

function healthApp(state: {
  reachable: Record<Name, boolean>;
  breakers?: Partial<Record<Name, BreakerState>>;
  draining?: boolean;
}) {
  const checks: Name[] = [];
  const upstream = (name: Name) => ({
    ready: async (options: { timeoutMs?: number }) => {
      // Every readiness probe of an upstream has a deadline.
      expect(options.timeoutMs).toBeGreaterThan(0);
      checks.push(name);
      return state.reachable[name];
    },
  });
  const guard = (name: Name) => ({ state: state.breakers?.[name] ?? ('closed' as BreakerState) });
  const app = Fastify({ logger: false });
  registerHealthRoutes(app, {
    upstreams: {
      identity: upstream('identity'),
      billing: upstream('billing'),
      product: upstream('product'),
    } as unknown as Upstreams,
    guards: {
      identity: guard('identity'),
      billing: guard('billing'),
      product: guard('product'),
    } as UpstreamGuards,
    draining: () => state.draining ?? false,
  });
  return { app, checks };
}

const all = (value: boolean) => ({ identity: value, billing: value, product: value });

describe('registerHealthRoutes', () => {
  it('/readyz: ready when every upstream answers and no breaker is open', async () => {
    const { app, checks } = healthApp({ reachable: all(true) });
    const response = await app.inject({ method: 'GET', url: '/readyz' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({
      status: 'ready',
      upstreams: all(true),
      breakers: { identity: 'closed', billing: 'closed', product: 'closed' },
    });
    expect(checks.sort()).toEqual(['billing', 'identity', 'product']);
    await app.close();
  });

  it('/readyz: degraded but 200 when some upstreams are down or their breaker is open', async () => {
    const down = healthApp({ reachable: { identity: true, billing: false, product: true } });
    const answer = await down.app.inject({ method: 'GET', url: '/readyz' });
    expect(answer.statusCode).toBe(200);
    expect(answer.json()).toMatchObject({ status: 'degraded', upstreams: { billing: false } });
    await down.app.close();

    const open = healthApp({ reachable: all(true), breakers: { product: 'open' } });
    const opened = await open.app.inject({ method: 'GET', url: '/readyz' });
    expect(opened.statusCode).toBe(200);
    expect(opened.json()).toMatchObject({ status: 'degraded', breakers: { product: 'open' } });
    await open.app.close();
  });

  it('/readyz: 503 unavailable when no upstream is usable, reachable or not', async () => {
    const none = healthApp({ reachable: all(false) });
    const answer = await none.app.inject({ method: 'GET', url: '/readyz' });
    expect(answer.statusCode).toBe(503);
    expect(answer.json()).toMatchObject({ status: 'unavailable', upstreams: all(false) });
    await none.app.close();

    const allOpen = healthApp({
      reachable: all(true),
      breakers: { identity: 'open', billing: 'open', product: 'open' },
    });
    const opened = await allOpen.app.inject({ method: 'GET', url: '/readyz' });
    expect(opened.statusCode).toBe(503);
    expect(opened.json()).toMatchObject({ status: 'unavailable' });
    await allOpen.app.close();
  });

  it('/readyz: 503 draining while shutting down, without probing anything', async () => {
    const { app, checks } = healthApp({ reachable: all(true), draining: true });
    const response = await app.inject({ method: 'GET', url: '/readyz' });
    expect(response.statusCode).toBe(503);
    expect(response.json()).toEqual({ status: 'draining' });
    expect(checks).toEqual([]);
    await app.close();
  });

  it('/healthz: ok, probing nothing, even when nothing is reachable', async () => {
    const { app, checks } = healthApp({ reachable: all(false), draining: true });
    const response = await app.inject({ method: 'GET', url: '/healthz' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: 'ok' });
    expect(checks).toEqual([]);
    await app.close();
  });
});

describe('health of a running BFF', () => {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });
  const started = async (bff: Promise<RunningBff>) => {
    const running = await bff;
    closers.push(() => running.close());
    return running;
  };

  it('is alive but unavailable with every upstream unreachable', async () => {
    const bff = await started(startTestBff());
    const health = await fetch(`${bff.url}/healthz`, { signal: AbortSignal.timeout(10_000) });
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${bff.url}/readyz`, { signal: AbortSignal.timeout(10_000) });
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'unavailable', upstreams: all(false) });
  });

  it('is degraded with Identity and Billing answering their /readyz and Product unreachable', async () => {
    const readyz = (status: number) =>
      startStub((request, response) => {
        response.writeHead(request.url === '/readyz' ? status : 404, { 'content-type': 'application/json' });
        response.end(JSON.stringify(request.url === '/readyz' ? { status: 'ready' } : {}));
      });
    const identity = await readyz(200);
    closers.push(identity.close);
    const billing = await readyz(200);
    closers.push(billing.close);
    const bff = await started(startTestBff({ identityUrl: identity.url, billingUrl: billing.url }));
    const response = await bff.app.inject({ method: 'GET', url: '/readyz' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({
      status: 'degraded',
      upstreams: { identity: true, billing: true, product: false },
    });
    expect(identity.requests).toContain('GET /readyz');
    expect(billing.requests).toContain('GET /readyz');
  });

  it('counts an upstream whose /readyz answers 503 as unreachable', async () => {
    const identity = await startStub((_request, response) => {
      response.writeHead(503, { 'content-type': 'application/json' });
      response.end('{"status":"not ready"}');
    });
    closers.push(identity.close);
    const bff = await started(startTestBff({ identityUrl: identity.url, billingUrl: UNREACHABLE_URL }));
    const response = await bff.app.inject({ method: 'GET', url: '/readyz' });
    expect(response.statusCode).toBe(503);
    expect(response.json()).toMatchObject({ upstreams: { identity: false } });
    expect(identity.requests).toContain('GET /readyz');
  });
});
