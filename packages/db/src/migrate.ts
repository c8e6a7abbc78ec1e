import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Database } from './types.ts';

/** A folder of `NNN_name.sql` files, applied in name order; `prefix` keeps folders apart. */
export interface MigrationSource {
  prefix: string;
  dir: string;
}

/**
 * Applies every migration not yet recorded in `schema_migrations`, in one transaction under
 * an advisory lock, so replicas starting together apply each file exactly once.
 * Returns the versions applied by this call.
 */
export async function migrate(db: Database, sources: readonly MigrationSource[]): Promise<string[]> {
  const files: { version: string; path: string }[] = [];
  for (const source of sources) {
    const names = (await readdir(source.dir)).filter((n) => n.endsWith('.sql')).sort();
    for (const name of names)
      files.push({ version: `${source.prefix}/${name}`, path: join(source.dir, name) });
  }
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock(hashtext(current_schema()))');
    await tx.exec(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const done = new Set(
      (await tx.query<{ version: string }>('SELECT version FROM schema_migrations')).rows.map(
        (r) => r.version,
      ),
    );
    const applied: string[] = [];
    for (const file of files) {
      if (done.has(file.version)) continue;
      await tx.exec(await readFile(file.path, 'utf8'));
      await tx.query('INSERT INTO schema_migrations (version) VALUES ($1)', [file.version]);
      applied.push(file.version);
    }
    return applied;
  });
}
