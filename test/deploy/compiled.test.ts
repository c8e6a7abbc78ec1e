// What an image runs: the six processes compiled by `pnpm build` (scripts/build.ts), each started
// as `node main.mjs` from its own dist folder, without tsx or the workspace's TypeScript, over the
// embedded defaults (PGlite, the in-process event bus). They must find every file they read at
// run time (SDL, migrations, .proto files, PGlite's wasm, GraphiQL's assets), serve a query that
// reaches all three services through the web BFF, and exit 0 on SIGTERM within their drain budget.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '@bff/testkit';
import { createProductClient } from '@bff/upstream-clients';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SHIPPED_BFF_NODE_FLAGS } from '../../bench/harness.ts';
import { type BuildReport, buildProcesses } from '../../scripts/build.ts';

/** `onShutdownSignal`'s budget (packages/http-service): past it a process exits 1. */
const DRAIN_BUDGET_MS = 15_000;
/** Three PGlite databases initialising at once on a loaded 2-core machine take a while. */
const READY_TIMEOUT_MS = 120_000;

interface Started {
  name: string;
  child: ChildProcess;
  spawnedAt: number;
  readyMs?: number;
  output: string[];
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; afterMs: number }>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject()));
    });
  });
}

let dist: string;
let reports: BuildReport[] = [];
const started: Started[] = [];

/** Starts `node <dist>/<name>/main.mjs` with only the variables given (no tsx, no CI's servers). */
function start(name: string, env: Record<string, string>): Started {
  const output: string[] = [];
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, [join(dist, name, 'main.mjs')], {
    cwd: join(dist, name),
    // A fresh environment: CI's DATABASE_URL, AMQP_URL and REDIS_URL, or vitest's NODE_OPTIONS,
    // must not leak into what is meant to be the embedded defaults.
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: tmpdir(),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = (chunk: Buffer) => {
    output.push(chunk.toString());
    if (output.length > 40) output.shift();
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let signalledAt = 0;
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; afterMs: number }>(
    (resolve) =>
      child.once('exit', (code, signal) =>
        resolve({ code, signal, afterMs: signalledAt ? performance.now() - signalledAt : Number.NaN }),
      ),
  );
  const kill = child.kill.bind(child);
  child.kill = (signal?: NodeJS.Signals | number) => {
    signalledAt = performance.now();
    return kill(signal);
  };
  const entry: Started = { name, child, spawnedAt, output, exit };
  started.push(entry);
  return entry;
}

async function ready(entry: Started, check: () => Promise<boolean>): Promise<void> {
  await waitFor(
    `${entry.name} to be ready`,
    async () => {
      if (entry.child.exitCode !== null)
        throw new Error(
          `${entry.name} exited ${entry.child.exitCode}: ${entry.output.join('').slice(-2000)}`,
        );
      return check();
    },
    READY_TIMEOUT_MS,
    100,
  ).catch((error: Error) => {
    throw new Error(`${error.message}\n--- ${entry.name} output ---\n${entry.output.join('').slice(-2000)}`);
  });
  entry.readyMs = Math.round(performance.now() - entry.spawnedAt);
}

async function httpOk(url: string): Promise<boolean> {
  const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
  await response.arrayBuffer();
  return response.status === 200;
}

beforeAll(async () => {
  dist = mkdtempSync(join(tmpdir(), 'bff-dist-'));
  reports = await buildProcesses([], { outDir: dist });
}, 180_000);

afterAll(async () => {
  for (const entry of started)
    if (entry.child.exitCode === null && entry.child.signalCode === null) entry.child.kill('SIGKILL');
  await Promise.all(started.map((entry) => entry.exit));
  if (dist) rmSync(dist, { recursive: true, force: true });
});

describe('pnpm build', () => {
  it('compiles each of the six processes into one module with the files it reads at run time', () => {
    expect(reports.map((r) => r.name).sort()).toEqual([
      'android',
      'billing',
      'identity',
      'ios',
      'product',
      'web',
    ]);
    for (const report of reports) {
      const files = readdirSync(report.outDir, { recursive: true }).map(String);
      // Nothing to compile at run time: no TypeScript left, no tsx.
      expect(
        files.filter((f) => /\.[mc]?ts$/.test(f) && !f.endsWith('.d.ts')),
        report.name,
      ).toEqual([]);
      expect(
        files.some((f) => f.includes('tsx')),
        report.name,
      ).toBe(false);
      console.log(
        `[build] ${report.name}: bundle ${(report.bundleBytes / 1048576).toFixed(1)} MB, ` +
          `folder ${(report.totalBytes / 1048576).toFixed(1)} MB in ${report.files} files`,
      );
    }
    const assets = (name: string) => reports.find((r) => r.name === name)?.assets ?? [];
    for (const service of ['identity', 'billing', 'product']) {
      expect(assets(service)).toContain(
        `assets/services/${service}/migrations/0001_${service === 'product' ? 'products' : service}.sql`,
      );
      expect(assets(service)).toContain('assets/packages/events/migrations/0001_outbox.sql');
      expect(assets(service)).toContain('assets/node_modules/@electric-sql/pglite/dist/pglite.wasm');
    }
    for (const app of ['web', 'ios', 'android']) {
      expect(
        assets(app).some((a) => a.startsWith(`assets/apps/${app}/schema/`) && a.endsWith('.graphql')),
      ).toBe(true);
      expect(assets(app)).toContain('node_modules/graphiql/dist/index.umd.js');
      // A BFF never opens a database: PGlite stays out of its image.
      expect(assets(app).some((a) => a.includes('pglite'))).toBe(false);
    }
    for (const app of ['ios', 'android'])
      expect(assets(app)).toContain(`assets/apps/${app}/persisted-operations.json`);
  });
});

describe('the compiled processes, all six together', () => {
  it(
    'start without tsx, serve a query that reaches every service through the web BFF, and stop on SIGTERM',
    async () => {
      expect(existsSync(join(dist, 'web', 'main.mjs'))).toBe(true);
      const port = {
        identity: await freePort(),
        billing: await freePort(),
        product: await freePort(),
        web: await freePort(),
        ios: await freePort(),
        android: await freePort(),
        webMetrics: await freePort(),
        billingMetrics: await freePort(),
      };
      const identity = start('identity', { PORT: String(port.identity) });
      const product = start('product', { PORT: String(port.product) });
      const billing = start('billing', {
        PORT: String(port.billing),
        PRODUCT_ADDR: `127.0.0.1:${port.product}`,
        METRICS_PORT: String(port.billingMetrics),
      });
      const products = createProductClient({ address: `127.0.0.1:${port.product}` });
      try {
        await Promise.all([
          ready(identity, () => httpOk(`http://127.0.0.1:${port.identity}/readyz`)),
          ready(billing, () => httpOk(`http://127.0.0.1:${port.billing}/readyz`)),
          ready(product, () => products.ready({ timeoutMs: 1_000 })),
        ]);
      } finally {
        products.close();
      }
      // The BFFs as the Deployments run them: production, the benchmarked Node flags.
      const upstreams = {
        NODE_ENV: 'production',
        NODE_OPTIONS: SHIPPED_BFF_NODE_FLAGS.join(' '),
        IDENTITY_URL: `http://127.0.0.1:${port.identity}`,
        BILLING_URL: `http://127.0.0.1:${port.billing}`,
        PRODUCT_ADDR: `127.0.0.1:${port.product}`,
      };
      const bffs = [
        start('web', {
          ...upstreams,
          PORT: String(port.web),
          METRICS_PORT: String(port.webMetrics),
          GRAPHIQL: 'true',
        }),
        start('ios', { ...upstreams, PORT: String(port.ios) }),
        start('android', { ...upstreams, PORT: String(port.android) }),
      ];
      await Promise.all(
        bffs.map((bff) => ready(bff, () => httpOk(`http://127.0.0.1:${port[bff.name as 'web']}/readyz`))),
      );

      const token = await fetch(`http://127.0.0.1:${port.identity}/v1/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'ada@example.com', password: 'demo-password', audience: 'web' }),
      }).then((r) => r.json() as Promise<{ access_token: string }>);
      const answer = await fetch(`http://127.0.0.1:${port.web}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token.access_token}` },
        body: JSON.stringify({
          query: '{ viewer { name invoices(first: 2) { edges { node { lines { product { name } } } } } } }',
        }),
      });
      const body = (await answer.json()) as {
        errors?: unknown;
        data: {
          viewer: {
            name: string;
            invoices: { edges: { node: { lines: { product: { name: string } }[] } }[] };
          };
        };
      };
      expect(body.errors).toBeUndefined();
      expect(body.data.viewer.name).toBe('Ada Lovelace'); // Identity, through the token
      expect(body.data.viewer.invoices.edges).toHaveLength(2); // Billing
      const names = body.data.viewer.invoices.edges.flatMap((e) => e.node.lines.map((l) => l.product.name));
      expect(names.length).toBeGreaterThan(0);
      for (const name of names) expect(name).toMatch(/\w+ \w+/); // Product

      // GraphiQL's UMD builds and the Prometheus listeners work from the bundle too.
      expect(await httpOk(`http://127.0.0.1:${port.web}/graphiql/assets/graphiql.js`)).toBe(true);
      const metrics = await fetch(`http://127.0.0.1:${port.webMetrics}/metrics`).then((r) => r.text());
      expect(metrics).toContain('graphql_operation_duration_seconds');
      expect(await fetch(`http://127.0.0.1:${port.billingMetrics}/metrics`).then((r) => r.text())).toContain(
        'service_request_duration_seconds',
      );

      console.log(
        `[compiled] spawn to ready: ${started.map((s) => `${s.name} ${s.readyMs} ms`).join(', ')} ` +
          '(services together, then the BFFs together)',
      );

      // BFFs first, as a rollout would, then the services.
      for (const group of [bffs, [identity, billing, product]]) {
        for (const entry of group) entry.child.kill('SIGTERM');
        const exits = await Promise.all(group.map((entry) => entry.exit));
        for (const [i, exit] of exits.entries()) {
          const name = group[i]?.name;
          expect({ name, code: exit.code, signal: exit.signal }).toEqual({ name, code: 0, signal: null });
          expect(exit.afterMs, `${name} drained within its budget`).toBeLessThan(DRAIN_BUDGET_MS);
        }
      }
    },
    READY_TIMEOUT_MS * 2 + 60_000,
  );
});
