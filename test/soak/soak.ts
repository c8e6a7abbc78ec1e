// A bounded mixed load on loopback with faults switched on and off: the web BFF over the real
// services, with this harness's own proxies in front of Identity, Billing and Product. It
// counts hung requests (none allowed) and watches memory.
import { randomUUID } from 'node:crypto';
import { HttpFaultProxy, TcpProxy } from '@bff/testkit';
import { type System, startApp, startSystem, type TestApp } from '../support/system.ts';

export interface SoakOptions {
  seconds: number;
  /** Requests in flight at once. @default 16 */
  concurrency?: number;
  /** Time between fault changes, in ms. @default 5000 */
  phaseMs?: number;
  /**
   * Keep going past `seconds` until this many requests were made (a loaded machine serves fewer
   * in the same time), for at most ten times `seconds`. @default 0
   */
  minRequests?: number;
  /**
   * Go on past `seconds` (for at most ten times `seconds`) until some answer was spoiled by a
   * fault (partial or refused). @default false
   */
  untilFaultsFelt?: boolean;
  /** Print progress. @default false */
  verbose?: boolean;
}

export interface SoakReport {
  seconds: number;
  requests: number;
  complete: number;
  partial: number;
  refused: number;
  hung: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  codes: Record<string, number>;
  phases: string[];
  heapMb: { start: number; end: number };
  rssMb: { start: number; peak: number; end: number };
  breakerOpenings: Record<string, number>;
  retries: Record<string, number>;
}

const BUDGET_MS = 3_000;
const HUNG_AFTER_MS = BUDGET_MS + 2_000;

const operations = [
  '{ viewer { name avatarUrl invoices(first: 5) { edges { node { id total { formatted } lines { product { name price { formatted } } } } } } } }',
  '{ products(first: 10, category: "books") { edges { node { id name price { formatted } } } } }',
  '{ a: product(id: "p-0001") { name } b: product(id: "p-0150") { name inStock } }',
];

function heapMb(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return Math.round((process.memoryUsage().heapUsed / 1048576) * 10) / 10;
}

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const concurrency = options.concurrency ?? 16;
  const phaseMs = options.phaseMs ?? 5_000;
  const system: System = await startSystem();
  const identity = await new HttpFaultProxy(system.identityUrl).start();
  const billing = await new HttpFaultProxy(system.billingUrl).start();
  const [productHost, productPort] = system.productAddr.split(':');
  const product = await new TcpProxy(productHost as string, Number(productPort)).start();
  const app: TestApp = await startApp('web', system, {
    identityUrl: identity.url,
    billingUrl: billing.url,
    productAddr: `127.0.0.1:${product.port}`,
    upstreamTimeoutMs: 800,
    resilience: { halfOpenAfterMs: 1_000 },
    rateLimit: { defaults: { max: 10_000_000, window: '1m' } },
  });
  const token = await system.token('ada@example.com', 'web');

  // The fault schedule, repeating: healthy, then one kind of trouble at a time.
  const faults: [string, () => void][] = [
    ['healthy', () => {}],
    ['billing fails half its requests (500)', () => billing.set({ kind: 'fail', status: 500, every: 2 })],
    ['healthy', () => {}],
    ['billing hangs', () => billing.set({ kind: 'hang' })],
    ['healthy', () => {}],
    ['product unreachable (connections cut)', () => product.cut()],
    ['healthy', () => {}],
    [
      'identity overloaded (503, Retry-After 1)',
      () => identity.set({ kind: 'fail', status: 503, every: 1, retryAfterSeconds: 1 }),
    ],
    ['billing slow (400 ms)', () => billing.set({ kind: 'delay', ms: 400 })],
  ];
  const heal = () => {
    identity.set({ kind: 'pass' });
    billing.set({ kind: 'pass' });
    product.restore();
  };

  const latencies: number[] = [];
  const codes: Record<string, number> = {};
  const phases: string[] = [];
  let requests = 0;
  let complete = 0;
  let partial = 0;
  let refused = 0;
  let hung = 0;
  const startHeap = heapMb();
  const startRss = process.memoryUsage().rss;
  let peakRss = startRss;
  const deadline = Date.now() + options.seconds * 1000;
  const hardDeadline = Date.now() + options.seconds * 10_000;
  const minRequests = options.minRequests ?? 0;
  // Enough: the requests asked for, and (untilFaultsFelt) at least one answer a fault spoiled. On a
  // busy machine a phase switch can come late enough that no request meets a fault in `seconds`
  // (and half of billing's requests failing is hidden by retries): the run goes on until one does.
  const enough = () => requests >= minRequests && (!options.untilFaultsFelt || partial + refused > 0);
  const goOn = () => Date.now() < deadline || (!enough() && Date.now() < hardDeadline);

  let phase = 0;
  const switchFaults = () => {
    heal();
    const [name, apply] = faults[phase % faults.length] as [string, () => void];
    apply();
    phases.push(name);
    if (options.verbose) console.log(`${new Date().toISOString()}  ${name}`);
    phase++;
  };
  switchFaults();
  const scheduler = setInterval(switchFaults, phaseMs);
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }, 500);

  const worker = async (id: number) => {
    for (let n = 0; goOn(); n++) {
      // A purchase now and then: its own limit (20 a minute per viewer) refuses some, as it should.
      const purchase = n % 100 === 0;
      const body = purchase
        ? {
            query: 'mutation($input: PurchaseInput!) { purchase(input: $input) { invoice { id } } }',
            variables: {
              input: { productId: `p-00${10 + (id % 80)}`, quantity: 1, idempotencyKey: randomUUID() },
            },
          }
        : { query: operations[(n + id) % operations.length] };
      const started = performance.now();
      requests++;
      try {
        const response = await fetch(`${app.url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(HUNG_AFTER_MS),
        });
        const result = (await response.json()) as {
          data?: unknown;
          errors?: { extensions?: { code?: string } }[];
        };
        latencies.push(performance.now() - started);
        if (!result.errors?.length) complete++;
        else if (result.data) partial++;
        else refused++;
        for (const error of result.errors ?? []) {
          const code = error.extensions?.code ?? 'NONE';
          codes[code] = (codes[code] ?? 0) + 1;
        }
      } catch (error) {
        if ((error as Error).name === 'TimeoutError') hung++;
        else codes.NETWORK = (codes.NETWORK ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, i) => worker(i)));
  clearInterval(scheduler);
  clearInterval(sampler);
  heal();

  const guards = app.bff.guards;
  const report: SoakReport = {
    seconds: options.seconds,
    requests,
    complete,
    partial,
    refused,
    hung,
    ...percentiles(latencies),
    codes,
    phases,
    heapMb: { start: startHeap, end: heapMb() },
    rssMb: { start: mb(startRss), peak: mb(peakRss), end: mb(process.memoryUsage().rss) },
    breakerOpenings: {
      identity: guards.identity.stats.opened,
      billing: guards.billing.stats.opened,
      product: guards.product.stats.opened,
    },
    retries: {
      identity: guards.identity.stats.retries,
      billing: guards.billing.stats.retries,
      product: guards.product.stats.retries,
    },
  };
  await app.close();
  await identity.close();
  await billing.close();
  await product.close();
  await system.close();
  return report;
}

function mb(bytes: number): number {
  return Math.round(bytes / 1048576);
}

function percentiles(values: number[]): { p50Ms: number; p99Ms: number; maxMs: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) =>
    Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0);
  return { p50Ms: at(0.5), p99Ms: at(0.99), maxMs: Math.round(sorted.at(-1) ?? 0) };
}
