// A release's migration step, as its Kubernetes Job runs it: the Billing entry point (through
// tsx, as `pnpm --filter @bff/billing-service start` runs it) with MIGRATE_ONLY=true against a
// PostgreSQL database of this test's own (created here, dropped at the end). It applies the
// outbox's and Billing's migrations and exits 0 without listening on any port (a preloaded module
// records every listen() the process makes); a second run applies nothing; a failure exits 1
// with one clear log line. A replica with MIGRATE_ON_START=false refuses to start on a database
// that is behind, and starts without migrating once the step has run. The settings are validated
// like every other variable, in all three services.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { readBillingConfig } from '@bff/billing-service';
import { readIdentityConfig } from '@bff/identity-service';
import { readProductConfig } from '@bff/product-service';
import { realServer, waitFor } from '@bff/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const billingDir = join(root, 'services', 'billing');
/** tsx compiling the service on a loaded 2-core machine takes a while; a run is seconds. */
const RUN_TIMEOUT_MS = 90_000;

/** What this test needs of `pg` (a dependency of @bff/testkit, loaded as the test kit loads it). */
interface PgClient {
  connect(): Promise<void>;
  query<R = Record<string, unknown>>(text: string, params?: unknown[]): Promise<{ rows: R[] }>;
  end(): Promise<void>;
}
const { Client } = createRequire(createRequire(import.meta.url).resolve('@bff/testkit'))('pg') as {
  Client: new (options: { connectionString: string }) => PgClient;
};

async function withClient<T>(url: string, use: (client: PgClient) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
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

interface Run {
  child: ChildProcess;
  output: () => string;
  /** What the process passed to every listen() it called, one JSON line each. */
  listens: () => unknown[];
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const adminUrl = process.env.DATABASE_URL;
const real = await realServer('PostgreSQL', adminUrl);

describe.runIf(real)('the migrate-only step (Billing, PostgreSQL)', () => {
  const databaseName = `bff_migrate_only_${randomBytes(5).toString('hex')}`;
  let databaseUrl: string;
  let scratch: string;
  let preload: string;
  const runs: Run[] = [];

  /** `node --import tsx src/main.ts` in services/billing, with only the variables given. */
  function run(env: Record<string, string>): Run {
    const listenLog = join(scratch, `listens-${runs.length}.jsonl`);
    const chunks: string[] = [];
    const child = spawn(process.execPath, ['--import', 'tsx', '--import', preload, 'src/main.ts'], {
      cwd: billingDir,
      // A fresh environment: nothing of CI's or vitest's leaks in.
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: tmpdir(),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
        LISTEN_LOG: listenLog,
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (chunk: Buffer) => chunks.push(chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => chunks.push(chunk.toString()));
    const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    const entry: Run = {
      child,
      output: () => chunks.join(''),
      listens: () =>
        existsSync(listenLog)
          ? readFileSync(listenLog, 'utf8')
              .split('\n')
              .filter(Boolean)
              .map((line) => JSON.parse(line) as unknown)
          : [],
      exit,
    };
    runs.push(entry);
    return entry;
  }

  /** Waits for a run's exit, with its output in the message when it takes too long. */
  async function exited(entry: Run) {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no exit within ${RUN_TIMEOUT_MS} ms:\n${entry.output().slice(-2000)}`)),
        RUN_TIMEOUT_MS,
      );
    });
    try {
      return await Promise.race([entry.exit, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The JSON log lines a run wrote (other output, such as warnings, left out). */
  function logLines(entry: Run): Record<string, unknown>[] {
    return entry
      .output()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  const migrationsIn = (schema: string) =>
    withClient(databaseUrl, async (client) => {
      const table = await client.query<{ present: boolean }>(
        'SELECT to_regclass($1) IS NOT NULL AS present',
        [`${schema}.schema_migrations`],
      );
      if (!table.rows[0]?.present) return undefined;
      return (
        await client.query<{ version: string; applied_at: Date }>(
          `SELECT version, applied_at FROM ${schema}.schema_migrations ORDER BY version`,
        )
      ).rows;
    });

  const tablesIn = (schema: string) =>
    withClient(databaseUrl, async (client) =>
      (
        await client.query<{ tablename: string }>(
          'SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY tablename',
          [schema],
        )
      ).rows.map((r) => r.tablename),
    );

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'bff-migrate-only-'));
    preload = pathToFileURL(join(scratch, 'record-listens.mjs')).href;
    // Every server (HTTP, gRPC's HTTP/2, a metrics listener) listens through net.Server.
    writeFileSync(
      join(scratch, 'record-listens.mjs'),
      `import { appendFileSync } from 'node:fs';
import net from 'node:net';
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const [first] = args;
  appendFileSync(process.env.LISTEN_LOG, JSON.stringify(typeof first === 'function' ? null : first ?? null) + '\\n');
  return listen.apply(this, args);
};
`,
    );
    await withClient(adminUrl as string, (client) => client.query(`CREATE DATABASE ${databaseName}`));
    const url = new URL(adminUrl as string);
    url.pathname = `/${databaseName}`;
    databaseUrl = url.toString();
  });

  afterAll(async () => {
    for (const entry of runs)
      if (entry.child.exitCode === null && entry.child.signalCode === null) entry.child.kill('SIGKILL');
    await Promise.all(runs.map((entry) => entry.exit));
    if (databaseUrl)
      await withClient(adminUrl as string, (client) =>
        client.query(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`),
      );
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it(
    'applies the migrations and exits 0 without listening on any port; a second run applies nothing',
    async () => {
      const env = {
        DATABASE_URL: databaseUrl,
        DATABASE_SCHEMA: 'billing',
        MIGRATE_ONLY: 'true',
        PORT: String(await freePort()),
        METRICS_PORT: String(await freePort()),
      };
      const first = run(env);
      expect(await exited(first), first.output()).toEqual({ code: 0, signal: null });
      expect(first.listens()).toEqual([]);
      const applied = await migrationsIn('billing');
      const versions = applied?.map((r) => r.version) ?? [];
      expect(versions).toContain('billing/0001_billing.sql');
      expect(versions).toContain('events/0001_outbox.sql');
      expect(versions).toContain('events/0003_outbox_lease_owner.sql');
      expect(await tablesIn('billing')).toEqual(
        expect.arrayContaining(['accounts', 'invoices', 'outbox', 'processed_events', 'schema_migrations']),
      );
      // Migrations and nothing else: SEED is on by default, yet no demo account was written.
      const accounts = await withClient(databaseUrl, (client) =>
        client.query<{ n: number }>('SELECT count(*)::int AS n FROM billing.accounts'),
      );
      expect(accounts.rows[0]?.n).toBe(0);
      const [line] = logLines(first);
      expect(line).toMatchObject({ level: 'info', service: 'billing' });
      expect([...((line?.migrations as string[] | undefined) ?? [])].sort()).toEqual(versions);

      const second = run(env);
      expect(await exited(second), second.output()).toEqual({ code: 0, signal: null });
      expect(second.listens()).toEqual([]);
      expect(await migrationsIn('billing')).toEqual(applied);
      expect(logLines(second)).toContainEqual(
        expect.objectContaining({ level: 'info', service: 'billing', migrations: [] }),
      );
    },
    RUN_TIMEOUT_MS * 2,
  );

  it(
    'exits 1 with one clear line when the database cannot be migrated, listening on nothing',
    async () => {
      const closed = await freePort();
      const failed = run({
        DATABASE_URL: `postgres://postgres@127.0.0.1:${closed}/${databaseName}`,
        MIGRATE_ONLY: 'true',
      });
      expect(await exited(failed), failed.output()).toEqual({ code: 1, signal: null });
      expect(failed.listens()).toEqual([]);
      const [line, ...rest] = logLines(failed);
      expect(rest).toEqual([]);
      expect(line).toMatchObject({
        level: 'error',
        service: 'billing',
        msg: expect.stringMatching(/migrations failed/),
        err: expect.stringMatching(/ECONNREFUSED/),
      });
    },
    RUN_TIMEOUT_MS,
  );

  it(
    'with MIGRATE_ON_START=false, refuses to start on a database that is behind and starts without migrating once it is not',
    async () => {
      const schema = 'billing_replica';
      const env = { DATABASE_URL: databaseUrl, DATABASE_SCHEMA: schema, SEED: 'false' };
      const refused = run({ ...env, MIGRATE_ON_START: 'false', PORT: String(await freePort()) });
      expect(await exited(refused), refused.output()).toEqual({ code: 1, signal: null });
      expect(refused.listens()).toEqual([]);
      expect(logLines(refused)).toContainEqual(
        expect.objectContaining({
          level: 'error',
          msg: expect.stringMatching(/not applied/),
          migrations: expect.arrayContaining(['billing/0001_billing.sql']),
        }),
      );
      // It applied nothing: no table, not even schema_migrations.
      expect(await tablesIn(schema)).toEqual([]);

      const job = run({ ...env, MIGRATE_ONLY: 'true' });
      expect(await exited(job), job.output()).toEqual({ code: 0, signal: null });
      const applied = await migrationsIn(schema);

      const port = await freePort();
      const replica = run({ ...env, MIGRATE_ON_START: 'false', PORT: String(port) });
      await waitFor(
        'the replica to be ready',
        async () => {
          if (replica.child.exitCode !== null)
            throw new Error(`exited ${replica.child.exitCode}: ${replica.output().slice(-2000)}`);
          const response = await fetch(`http://127.0.0.1:${port}/readyz`, {
            signal: AbortSignal.timeout(2_000),
          });
          await response.arrayBuffer();
          return response.status === 200;
        },
        RUN_TIMEOUT_MS,
        100,
      );
      // The recorder sees a real start's listen(): its silence above means something.
      expect(replica.listens()).toContainEqual(expect.objectContaining({ port }));
      replica.child.kill('SIGTERM');
      expect(await exited(replica), replica.output()).toEqual({ code: 0, signal: null });
      expect(await migrationsIn(schema)).toEqual(applied);
    },
    RUN_TIMEOUT_MS * 3,
  );

  it(
    'exits 2 naming a bad MIGRATE_ONLY before touching the database',
    async () => {
      const bad = run({ DATABASE_URL: databaseUrl, MIGRATE_ONLY: 'sometimes' });
      expect(await exited(bad), bad.output()).toEqual({ code: 2, signal: null });
      expect(bad.output()).toMatch(/MIGRATE_ONLY.*"sometimes"/);
      expect(bad.listens()).toEqual([]);
    },
    RUN_TIMEOUT_MS,
  );
});

describe.each([
  ['billing', readBillingConfig],
  ['identity', readIdentityConfig],
  ['product', readProductConfig],
] as const)('%s: MIGRATE_ONLY and MIGRATE_ON_START', (_service, read) => {
  it('default to migrating at start, and take true or false', () => {
    expect(read({})).toMatchObject({ MIGRATE_ONLY: false, MIGRATE_ON_START: true });
    const url = 'postgres://db:5432/bff';
    expect(read({ DATABASE_URL: url, MIGRATE_ONLY: 'true' })).toMatchObject({ MIGRATE_ONLY: true });
    expect(read({ DATABASE_URL: url, MIGRATE_ON_START: 'false' })).toMatchObject({ MIGRATE_ON_START: false });
    expect(read({ PGLITE_DATA_DIR: '/data', MIGRATE_ON_START: 'false' })).toMatchObject({
      MIGRATE_ON_START: false,
    });
  });

  it('reject a value that is not a boolean, naming it', () => {
    expect(() => read({ MIGRATE_ONLY: 'sometimes' })).toThrow(/^Invalid configuration/);
    expect(() => read({ MIGRATE_ONLY: 'sometimes' })).toThrow(/MIGRATE_ONLY.*"sometimes"/);
    expect(() => read({ MIGRATE_ON_START: 'never' })).toThrow(/MIGRATE_ON_START.*"never"/);
  });

  it('reject either mode on an in-memory database, naming the value', () => {
    expect(() => read({ MIGRATE_ONLY: 'yes' })).toThrow(/^Invalid configuration/);
    expect(() => read({ MIGRATE_ONLY: 'yes' })).toThrow(/MIGRATE_ONLY: needs DATABASE_URL.*"yes"/);
    expect(() => read({ MIGRATE_ON_START: '0' })).toThrow(/MIGRATE_ON_START: false needs DATABASE_URL.*"0"/);
  });
});
