// Migrations when several processes share one database, as replicas and a release's migration
// Job do: concurrent calls apply each file once (the advisory lock), a check lists what is
// pending without touching anything, and a call with nothing to do never waits for the lock.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { databaseBackends, throwawayDatabase } from '@bff/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, migrate, openDatabase } from '../src/index.ts';

const backends = await databaseBackends();

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bff-migrate-'));
  // Slow on purpose: every concurrent caller reads `schema_migrations` while the first applies.
  await writeFile(
    join(dir, '001_items.sql'),
    'CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL); SELECT pg_sleep(0.5);',
  );
  await writeFile(join(dir, '002_seed.sql'), "INSERT INTO items VALUES (1, 'one');");
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe.each(backends)('migrate (%s)', (backend) => {
  it('in check mode lists what is pending and creates nothing; then only what is new', async () => {
    const fixture = throwawayDatabase(backend, 'migrate');
    const db = await openDatabase(fixture.options);
    const more = await mkdtemp(join(tmpdir(), 'bff-migrate-more-'));
    try {
      const sources = [{ prefix: 't', dir }];
      expect(await migrate(db, sources, { mode: 'check' })).toEqual(['t/001_items.sql', 't/002_seed.sql']);
      const table = await db.query<{ present: boolean }>(
        "SELECT to_regclass('schema_migrations') IS NOT NULL AS present",
      );
      expect(table.rows[0]?.present).toBe(false);

      expect(await migrate(db, sources)).toEqual(['t/001_items.sql', 't/002_seed.sql']);
      expect(await migrate(db, sources, { mode: 'check' })).toEqual([]);
      await writeFile(join(more, '001_notes.sql'), 'CREATE TABLE notes (body text);');
      const both = [...sources, { prefix: 'u', dir: more }];
      expect(await migrate(db, both, { mode: 'check' })).toEqual(['u/001_notes.sql']);
      expect(await migrate(db, both)).toEqual(['u/001_notes.sql']);
      expect(await migrate(db, both, { mode: 'check' })).toEqual([]);
    } finally {
      await db.close();
      await fixture.drop();
      await rm(more, { recursive: true, force: true });
    }
  });

  it('rejects an unknown mode, naming it', async () => {
    const fixture = throwawayDatabase(backend, 'migrate');
    const db = await openDatabase(fixture.options);
    try {
      await expect(migrate(db, [{ prefix: 't', dir }], { mode: 'dry-run' as 'check' })).rejects.toThrow(
        /mode.*"dry-run"/,
      );
    } finally {
      await db.close();
      await fixture.drop();
    }
  });
});

describe.runIf(backends.includes('postgres'))('migrate on PostgreSQL, several processes at once', () => {
  it('applies each file exactly once when four processes migrate one new database together', async () => {
    const fixture = throwawayDatabase('postgres', 'migrate');
    // Four pools, as four processes (a Job and three replicas) would have.
    const pools: Database[] = [];
    try {
      for (let i = 0; i < 4; i++) pools.push(await openDatabase({ ...fixture.options, poolSize: 2 }));
      const results = await Promise.all(pools.map((db) => migrate(db, [{ prefix: 't', dir }])));
      expect(results.filter((applied) => applied.length > 0)).toEqual([
        ['t/001_items.sql', 't/002_seed.sql'],
      ]);
      expect(results.filter((applied) => applied.length === 0)).toHaveLength(3);
      const [db] = pools as [Database];
      expect((await db.query('SELECT * FROM items')).rows).toEqual([{ id: 1, name: 'one' }]);
      expect((await db.query('SELECT version FROM schema_migrations')).rowCount).toBe(2);
    } finally {
      for (const db of pools) await db.close();
      await fixture.drop();
    }
  });

  it('returns at once when nothing is pending, even while another process holds the lock', async () => {
    const fixture = throwawayDatabase('postgres', 'migrate');
    const db = await openDatabase(fixture.options);
    const other = await openDatabase(fixture.options);
    const more = await mkdtemp(join(tmpdir(), 'bff-migrate-more-'));
    try {
      const sources = [{ prefix: 't', dir }];
      await migrate(db, sources);
      await writeFile(join(more, '001_notes.sql'), 'CREATE TABLE notes (body text);');
      let released = false;
      let newFileApplied: Promise<string[]> | undefined;
      // `other` holds the migration lock, as a migration Job applying a long file would.
      await other.transaction(async (tx) => {
        await tx.query('SELECT pg_advisory_xact_lock(hashtext(current_schema()))');
        // Nothing pending: no wait (waiting would outlast this transaction and its statement timeout).
        expect(await migrate(db, sources)).toEqual([]);
        // Something pending: it waits for the lock, so it cannot finish before the release.
        newFileApplied = migrate(db, [...sources, { prefix: 'u', dir: more }]).then((applied) => {
          expect(released).toBe(true);
          return applied;
        });
        await new Promise((resolve) => setTimeout(resolve, 300));
        released = true;
      });
      expect(await newFileApplied).toEqual(['u/001_notes.sql']);
    } finally {
      await db.close();
      await other.close();
      await fixture.drop();
      await rm(more, { recursive: true, force: true });
    }
  });
});
