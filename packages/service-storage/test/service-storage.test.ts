// What every service does with its database at start, on embedded PGlite and (when
// DATABASE_URL is set, as under CI) on PostgreSQL: migrations once, the seed once and only in
// a transaction, the outbox relay publishing, a final flush on close, and no database left
// open when start fails.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Database, DatabaseOptions, Queryable } from '@bff/db';
import { type EventBus, type EventEnvelope, enqueueEvent } from '@bff/events';
import { databaseBackends, throwawayDatabase, waitFor } from '@bff/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { type ServiceStorage, type ServiceStorageOptions, startServiceStorage } from '../src/index.ts';

// Every database the code under test opens, to see that a failed start closes its own.
const opened = vi.hoisted(() => [] as { close: () => Promise<void>; closed: boolean }[]);
vi.mock('@bff/db', async (importOriginal) => {
  const real = await importOriginal<typeof import('@bff/db')>();
  return {
    ...real,
    openDatabase: async (options: DatabaseOptions): Promise<Database> => {
      const db = await real.openDatabase(options);
      const entry = { close: db.close, closed: false };
      opened.push(entry);
      return {
        ...db,
        close: async () => {
          entry.closed = true;
          await entry.close();
        },
      };
    },
  };
});

/** A bus that records what is published, or fails while `failing` is set. */
class RecordingBus implements EventBus {
  readonly published: EventEnvelope[] = [];
  failing: Error | undefined;
  async publish(event: EventEnvelope) {
    if (this.failing) throw this.failing;
    this.published.push(event);
  }
  async subscribe(): Promise<never> {
    throw new Error('not used here');
  }
  async close() {}
}

let scratch: string;
let migrationsDir: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'service-storage-'));
  migrationsDir = join(scratch, 'migrations');
  await mkdir(migrationsDir);
  await writeFile(
    join(migrationsDir, '001_items.sql'),
    'CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL);',
  );
  await writeFile(join(migrationsDir, '002_items_note.sql'), 'ALTER TABLE items ADD COLUMN note text;');
  await writeFile(join(migrationsDir, 'README.txt'), 'not a migration');
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

const storages: ServiceStorage[] = [];
afterEach(async () => {
  await Promise.all(storages.splice(0).map((s) => s.close()));
  opened.length = 0;
});

/** Seeds three items into an empty table; returns how many it added. */
const seedItems = vi.fn(async (tx: Queryable) => {
  const { rows } = await tx.query<{ n: number }>('SELECT count(*)::int AS n FROM items');
  if ((rows[0]?.n ?? 0) > 0) return 0;
  for (const name of ['pen', 'ink', 'paper']) await tx.query('INSERT INTO items (name) VALUES ($1)', [name]);
  return 3;
});

const backends = await databaseBackends();
// Embedded PGlite takes seconds to start on a loaded machine, and a test here starts up to two.
vi.setConfig({ testTimeout: 120_000 });

describe.each(backends)('startServiceStorage on %s', (backend) => {
  /**
   * A fresh database. `lasting`: it outlives one start (PGlite then keeps it in a folder, which
   * is much slower than in memory, so only the tests that start twice ask for it).
   */
  async function freshDatabase(
    lasting = false,
  ): Promise<{ database: DatabaseOptions; drop: () => Promise<void> }> {
    const throwaway = throwawayDatabase(backend, 'storage');
    if (backend === 'postgres' || !lasting) return { database: throwaway.options, drop: throwaway.drop };
    const dataDir = await mkdtemp(join(scratch, 'pglite-'));
    return {
      database: { ...throwaway.options, dataDir },
      drop: () => rm(dataDir, { recursive: true, force: true }),
    };
  }

  async function start(options: Partial<ServiceStorageOptions> & { database: DatabaseOptions }) {
    const storage = await startServiceStorage({
      service: 'shop',
      migrationsDir,
      bus: new RecordingBus(),
      relayPollIntervalMs: 60_000, // only start, notify() and close() publish, so tests see each
      ...options,
    });
    storages.push(storage);
    return storage;
  }

  it('applies the outbox and the service’s migrations once, and seeds an empty database once', async () => {
    const { database, drop } = await freshDatabase(true);
    try {
      seedItems.mockClear();
      const first = await start({ database, seed: seedItems });
      expect(first.seeded).toBe(3);
      const versions = (
        await first.db.query<{ version: string }>('SELECT version FROM schema_migrations ORDER BY version')
      ).rows.map((r) => r.version);
      expect(versions).toContain('shop/001_items.sql');
      expect(versions).toContain('shop/002_items_note.sql');
      expect(versions.some((v) => v.startsWith('events/'))).toBe(true);
      expect(versions).not.toContain('shop/README.txt');
      // The outbox is there, in the service's schema.
      expect((await first.db.query('SELECT * FROM outbox')).rows).toEqual([]);
      await first.close();

      const second = await start({ database, seed: seedItems });
      expect(second.seeded).toBe(0);
      expect(seedItems).toHaveBeenCalledTimes(2);
      const items = await second.db.query<{ name: string }>('SELECT name FROM items ORDER BY id');
      expect(items.rows.map((r) => r.name)).toEqual(['pen', 'ink', 'paper']);
      const again = await second.db.query('SELECT version FROM schema_migrations');
      expect(again.rowCount).toBe(versions.length);
    } finally {
      await drop();
    }
  });

  it('rolls a failing seed back, rejects with its error, and closes the database', async () => {
    const { database, drop } = await freshDatabase(true);
    try {
      const failure = new Error('seed data is corrupt');
      await expect(
        start({
          database,
          seed: async (tx) => {
            await tx.query("INSERT INTO items (name) VALUES ('half')");
            throw failure;
          },
        }),
      ).rejects.toBe(failure);
      expect(opened).toHaveLength(1);
      expect(opened[0]?.closed).toBe(true);

      // The half-written seed is gone; the migrations (their own transaction) stayed. Without a
      // seed, nothing is seeded.
      const storage = await start({ database });
      expect(storage.seeded).toBe(0);
      expect((await storage.db.query('SELECT * FROM items')).rows).toEqual([]);
    } finally {
      await drop();
    }
  });

  it('rejects with the migration’s error and closes the database when a migration fails', async () => {
    const { database, drop } = await freshDatabase();
    const broken = await mkdtemp(join(scratch, 'broken-'));
    try {
      await writeFile(join(broken, '001_bad.sql'), 'CREATE TABLE items (id serial PRIMARY KEY;');
      const error = await start({ database, migrationsDir: broken }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).message).toMatch(/syntax error/i);
      expect(opened).toHaveLength(1);
      expect(opened[0]?.closed).toBe(true);
    } finally {
      await rm(broken, { recursive: true, force: true });
      await drop();
    }
  });

  it('publishes outbox rows when notified, flushes the rest on close, then closes the database', async () => {
    const { database, drop } = await freshDatabase();
    try {
      const bus = new RecordingBus();
      const storage = await start({ database, bus });
      const event = await storage.db.transaction((tx) =>
        enqueueEvent(tx, 'shop', 'shop.item.added', 1, { name: 'pen' }),
      );
      storage.relay.notify();
      await waitFor('the event to be published', () => bus.published.length === 1);
      expect(bus.published[0]).toMatchObject({
        id: event.id,
        type: 'shop.item.added',
        source: 'shop',
        payload: { name: 'pen' },
      });
      const { rows } = await storage.db.query<{ published_at: Date | null }>(
        'SELECT published_at FROM outbox WHERE id = $1',
        [event.id],
      );
      expect(rows[0]?.published_at).not.toBeNull();

      // Not notified, and the poll interval is a minute: only close() can publish these.
      const pending = await storage.db.transaction(async (tx) => [
        await enqueueEvent(tx, 'shop', 'shop.item.added', 1, { n: 1 }),
        await enqueueEvent(tx, 'shop', 'shop.item.added', 1, { n: 2 }),
      ]);
      const closing = storage.close();
      expect(storage.close()).toBe(closing);
      await closing;
      expect(bus.published.map((e) => e.id)).toEqual([event.id, ...pending.map((e) => e.id)]);
      expect(opened[0]?.closed).toBe(true);
      await expect(storage.db.query('SELECT 1')).rejects.toThrow();
      await storage.close();
    } finally {
      await drop();
    }
  });

  it('tells onRelayError about publish failures and keeps the row for a retry', async () => {
    const { database, drop } = await freshDatabase();
    try {
      const bus = new RecordingBus();
      bus.failing = new Error('broker unreachable');
      const errors: unknown[] = [];
      const storage = await start({ database, bus, onRelayError: (error) => errors.push(error) });
      const event = await storage.db.transaction((tx) => enqueueEvent(tx, 'shop', 'shop.item.added', 1, {}));
      storage.relay.notify();
      await waitFor('the relay error to be reported', () => errors.length > 0);
      expect(errors[0]).toBe(bus.failing);
      const { rows } = await storage.db.query<{ published_at: Date | null; attempts: number }>(
        'SELECT published_at, attempts FROM outbox WHERE id = $1',
        [event.id],
      );
      expect(rows[0]?.published_at).toBeNull();
      expect(rows[0]?.attempts).toBeGreaterThanOrEqual(1);

      // Once the bus answers again, close()'s final flush publishes it.
      bus.failing = undefined;
      await storage.close();
      expect(bus.published.map((e) => e.id)).toEqual([event.id]);
    } finally {
      await drop();
    }
  });

  it.skipIf(backend !== 'postgres')(
    'seeds once when two replicas start together on one database',
    async () => {
      const { database, drop } = await freshDatabase();
      try {
        const [a, b] = await Promise.all([
          start({ database, seed: seedItems }),
          start({ database, seed: seedItems }),
        ]);
        expect(a.seeded + b.seeded).toBe(3);
        expect([a.seeded, b.seeded].sort()).toEqual([0, 3]);
        expect((await a.db.query('SELECT * FROM items')).rowCount).toBe(3);
      } finally {
        await Promise.all(storages.splice(0).map((s) => s.close()));
        await drop();
      }
    },
  );
});
