/**
 * What every domain service does with its database at start: open it, apply the outbox and
 * its own migrations, seed an empty database once, and run the outbox relay. And what its entry
 * point does instead when a release applies the migrations once, before the rollout: apply them
 * and exit (`runMigrateOnly`), or refuse to start while any is pending (`verifyMigrated`).
 *
 * Every export here is public API of `@bff/service-storage`.
 */
import {
  type Database,
  type DatabaseOptions,
  type MigrationSource,
  migrate,
  openDatabase,
  type Queryable,
} from '@bff/db';
import { type EventBus, OutboxRelay, outboxMigrations, readOutboxBacklog } from '@bff/events';
import type { ServiceMetrics, Tracing } from '@bff/observability';

/** How an entry point's environment asks for migrations (its `MIGRATE_ONLY`, `MIGRATE_ON_START`). */
export interface MigrationSettings {
  MIGRATE_ONLY: boolean;
  MIGRATE_ON_START: boolean;
  DATABASE_URL?: string | undefined;
  PGLITE_DATA_DIR?: string | undefined;
}

/**
 * What is wrong with `settings`, one message per variable naming the value received (`raw`, the
 * environment), for the entry point's ConfigError. Both modes need a database that outlives the
 * process: an in-memory one is new at every start, so nothing else can have migrated it and
 * nothing would keep what a migrate-only run applied.
 */
export function migrationSettingsProblems(
  settings: MigrationSettings,
  raw: Readonly<Record<string, string | undefined>>,
): string[] {
  if (settings.DATABASE_URL || settings.PGLITE_DATA_DIR) return [];
  const problems: string[] = [];
  if (settings.MIGRATE_ONLY)
    problems.push(
      `MIGRATE_ONLY: needs DATABASE_URL or PGLITE_DATA_DIR, an in-memory database is gone when the process exits (received ${JSON.stringify(raw.MIGRATE_ONLY)})`,
    );
  if (!settings.MIGRATE_ON_START)
    problems.push(
      `MIGRATE_ON_START: false needs DATABASE_URL or PGLITE_DATA_DIR, nothing else can have migrated an in-memory database (received ${JSON.stringify(raw.MIGRATE_ON_START)})`,
    );
  return problems;
}

/** A service's migrations and the database they belong to. */
export interface ServiceMigrationsOptions {
  /** The service's name: migration prefix and log field. */
  service: string;
  database: DatabaseOptions;
  /** Folder of the service's `NNN_name.sql` migrations. */
  migrationsDir: string;
  /**
   * Per-statement deadline while migrating, in ms: longer than a request's, since a migration
   * may rewrite a table, and below the migration Job's own deadline. @default 300000
   */
  statementTimeoutMs?: number;
  /** Receives the one line the run logs. @default a JSON line on stdout, as the services log */
  log?: (line: MigrationLogLine) => void;
}

/** What `runMigrateOnly` and `verifyMigrated` report. */
export interface MigrationLogLine {
  level: 'info' | 'error';
  msg: string;
  service: string;
  /** Versions applied (migrate-only) or still pending (verify). */
  migrations?: string[];
  /** The failure's message, when there was one. */
  err?: string;
}

const MIGRATION_STATEMENT_TIMEOUT_MS = 300_000;

/** The outbox's migrations, then the service's own, in the order they are applied. */
function migrationSources(service: string, migrationsDir: string): MigrationSource[] {
  return [outboxMigrations, { prefix: service, dir: migrationsDir }];
}

function writeLogLine(line: MigrationLogLine): void {
  // The shape of the services' pino lines (level label, ISO time), so one log pipeline reads both.
  const { level, msg, ...fields } = line;
  process.stdout.write(`${JSON.stringify({ level, time: new Date().toISOString(), ...fields, msg })}\n`);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function withMigrationDatabase<T>(
  options: ServiceMigrationsOptions,
  use: (db: Database) => Promise<T>,
): Promise<T> {
  const statementTimeoutMs = options.statementTimeoutMs ?? MIGRATION_STATEMENT_TIMEOUT_MS;
  if (!Number.isInteger(statementTimeoutMs) || statementTimeoutMs < 1) {
    throw new TypeError(
      `statementTimeoutMs must be a positive whole number of ms, received ${options.statementTimeoutMs}`,
    );
  }
  const db = await openDatabase({ ...options.database, poolSize: 1, statementTimeoutMs });
  try {
    return await use(db);
  } finally {
    await db.close();
  }
}

/**
 * Applies the service's pending migrations (the outbox's and its own) and nothing else: no
 * listener, no relay, no consumer, no seed. For a release's migration Job. Logs one line and
 * resolves with the exit code: 0 when the database is up to date (applied now, or already),
 * 1 when it could not be migrated (nothing of a failed run stays: one transaction).
 */
export async function runMigrateOnly(options: ServiceMigrationsOptions): Promise<number> {
  const log = options.log ?? writeLogLine;
  try {
    const applied = await withMigrationDatabase(options, (db) =>
      migrate(db, migrationSources(options.service, options.migrationsDir)),
    );
    log({
      level: 'info',
      service: options.service,
      migrations: applied,
      msg:
        applied.length === 0
          ? 'migrate-only: the database was up to date, nothing applied'
          : `migrate-only: applied ${applied.length} migration(s)`,
    });
    return 0;
  } catch (error) {
    log({
      level: 'error',
      service: options.service,
      err: messageOf(error),
      msg: 'migrate-only: migrations failed, nothing applied',
    });
    return 1;
  }
}

/**
 * For a process that must not migrate (its release's Job does): whether every migration it
 * ships has been applied, checked without applying anything or waiting for the migration lock.
 * Logs one line when it has not, or when the database cannot be read; the caller then exits
 * without serving.
 */
export async function verifyMigrated(options: ServiceMigrationsOptions): Promise<boolean> {
  const log = options.log ?? writeLogLine;
  try {
    const pending = await withMigrationDatabase(options, (db) =>
      migrate(db, migrationSources(options.service, options.migrationsDir), { mode: 'check' }),
    );
    if (pending.length === 0) return true;
    log({
      level: 'error',
      service: options.service,
      migrations: pending,
      msg: `${pending.length} migration(s) not applied and migrating at start is off: run this release's migrations first (its migration Job)`,
    });
    return false;
  } catch (error) {
    log({
      level: 'error',
      service: options.service,
      err: messageOf(error),
      msg: 'could not check the migrations',
    });
    return false;
  }
}

export interface ServiceStorageOptions {
  /** The service's name: migration prefix and log field. */
  service: string;
  database: DatabaseOptions;
  /** Folder of the service's `NNN_name.sql` migrations. */
  migrationsDir: string;
  bus: EventBus;
  /** Fills an empty database; runs under an advisory lock, returns how many rows it added. */
  seed?: ((tx: Queryable) => Promise<number>) | undefined;
  /** Told about outbox publish failures (they are retried). */
  onRelayError?: (error: unknown) => void;
  /** Relay poll interval when not notified, in ms. @default 500 */
  relayPollIntervalMs?: number;
  /** Exports the outbox backlog and the age of its oldest unpublished row through these metrics. */
  metrics?: ServiceMetrics;
  /** The service's Tracing: the relay's sends become PRODUCER spans under each event's request. */
  tracing?: Tracing | undefined;
}

export interface ServiceStorage {
  db: Database;
  relay: OutboxRelay;
  /** Rows the seed added (0 when the database already had data or seeding is off). */
  seeded: number;
  /** Stops the relay after a final flush, then closes the database. */
  close(): Promise<void>;
}

export async function startServiceStorage(options: ServiceStorageOptions): Promise<ServiceStorage> {
  const db = await openDatabase(options.database);
  let seeded = 0;
  try {
    await migrate(db, migrationSources(options.service, options.migrationsDir));
    const seed = options.seed;
    if (seed) {
      seeded = await db.transaction(async (tx) => {
        await tx.query("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.seed'))");
        return seed(tx);
      });
    }
  } catch (error) {
    await db.close();
    throw error;
  }
  const relay = new OutboxRelay({
    db,
    bus: options.bus,
    ...(options.onRelayError ? { onError: options.onRelayError } : {}),
    ...(options.relayPollIntervalMs ? { pollIntervalMs: options.relayPollIntervalMs } : {}),
    ...(options.tracing ? { tracing: options.tracing } : {}),
  });
  relay.start();
  options.metrics?.observeOutbox(() => readOutboxBacklog(db));
  let closing: Promise<void> | undefined;
  return {
    db,
    relay,
    seeded,
    close: () => {
      closing ??= relay.stop().finally(() => db.close());
      return closing;
    },
  };
}

/** The settings every service's entry point reads for its database and its migrations. */
export interface EntryPointDatabaseConfig {
  DATABASE_URL?: string | undefined;
  PGLITE_DATA_DIR?: string | undefined;
  DATABASE_SCHEMA: string;
  MIGRATE_ONLY: boolean;
  MIGRATE_ON_START: boolean;
}

/**
 * For a service's entry point (`src/main.ts`): the database options from its settings, after
 * the migration step they ask for. With `MIGRATE_ONLY` the process applies its migrations and
 * exits (a release's migration Job); with `MIGRATE_ON_START` off it exits while a migration is
 * pending (that Job has not run). Otherwise the service migrates as it starts.
 */
export async function databaseForEntryPoint(
  service: string,
  config: EntryPointDatabaseConfig,
  migrationsDir: string,
): Promise<ServiceMigrationsOptions['database']> {
  const database = {
    url: config.DATABASE_URL,
    dataDir: config.PGLITE_DATA_DIR,
    schema: config.DATABASE_SCHEMA,
  };
  const migrations = { service, database, migrationsDir };
  if (config.MIGRATE_ONLY) process.exit(await runMigrateOnly(migrations));
  if (!config.MIGRATE_ON_START && !(await verifyMigrated(migrations))) process.exit(1);
  return database;
}
