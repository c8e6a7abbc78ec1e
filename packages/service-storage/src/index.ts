/**
 * What every domain service does with its database at start: open it, apply the outbox and
 * its own migrations, seed an empty database once, and run the outbox relay.
 *
 * Every export here is public API of `@bff/service-storage`.
 */
import { type Database, type DatabaseOptions, migrate, openDatabase, type Queryable } from '@bff/db';
import { type EventBus, OutboxRelay, outboxMigrations, readOutboxBacklog } from '@bff/events';
import type { ServiceMetrics } from '@bff/observability';

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
    await migrate(db, [outboxMigrations, { prefix: options.service, dir: options.migrationsDir }]);
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
