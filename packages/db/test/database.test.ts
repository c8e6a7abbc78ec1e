import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { databaseBackends, throwawayDatabase } from '@bff/testkit';
import { describe, expect, it } from 'vitest';
import { isUniqueViolation, migrate, openDatabase } from '../src/index.ts';

const backends = await databaseBackends();

describe.each(backends)('Database (%s)', (backend) => {
  it('applies each migration once, in order, and rolls a failed transaction back', async () => {
    const fixture = throwawayDatabase(backend, 'dbtest');
    const dir = await mkdtemp(join(tmpdir(), 'bff-migrations-'));
    await writeFile(
      join(dir, '001_items.sql'),
      'CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);',
    );
    await writeFile(join(dir, '002_seed.sql'), "INSERT INTO items VALUES (1, 'one');");
    const db = await openDatabase(fixture.options);
    try {
      expect(await migrate(db, [{ prefix: 't', dir }])).toEqual(['t/001_items.sql', 't/002_seed.sql']);
      expect(await migrate(db, [{ prefix: 't', dir }])).toEqual([]);
      await expect(
        db.transaction(async (tx) => {
          await tx.query("INSERT INTO items VALUES (2, 'two')");
          await tx.query("INSERT INTO items VALUES (1, 'dup')");
        }),
      ).rejects.toSatisfy(isUniqueViolation);
      const rows = await db.query<{ id: number }>('SELECT id FROM items ORDER BY id');
      expect(rows.rows).toEqual([{ id: 1 }]);
      expect(rows.rowCount).toBe(1);
      const updated = await db.query("UPDATE items SET name = 'uno' WHERE id = 1");
      expect(updated.rowCount).toBe(1);
    } finally {
      await db.close();
      await fixture.drop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('PGlite in a data directory', () => {
  it('keeps data across a restart', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'bff-pglite-'));
    try {
      const first = await openDatabase({ dataDir, schema: 'kept' });
      await first.exec('CREATE TABLE notes (body text)');
      await first.query('INSERT INTO notes VALUES ($1)', ['survives']);
      await first.close();
      const second = await openDatabase({ dataDir, schema: 'kept' });
      expect((await second.query<{ body: string }>('SELECT body FROM notes')).rows).toEqual([
        { body: 'survives' },
      ]);
      await second.close();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('rejects a schema name that is not a plain identifier, naming it', async () => {
    await expect(openDatabase({ schema: 'x; DROP TABLE users' })).rejects.toThrow(/x; DROP TABLE users/);
  });
});
