import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Database } from './types.ts';

/** A folder of `NNN_name.sql` files, applied in name order; `prefix` keeps folders apart. */
export interface MigrationSource {
  prefix: string;
  dir: string;
}

/** How `migrate` runs. */
export interface MigrateOptions {
  /**
   * `apply` applies what is pending; `check` only lists it, and applies, locks and creates
   * nothing (for a process that must not migrate: it refuses to start while a list is pending).
   * @default 'apply'
   */
  mode?: 'apply' | 'check';
}

interface MigrationFile {
  version: string;
  path: string;
}

/**
 * Applies every migration not yet recorded in `schema_migrations`, in one transaction under
 * an advisory lock on the schema, so replicas (or a migration Job and replicas) migrating at the
 * same time apply each file exactly once: the others wait on the lock, then find nothing left.
 * When nothing is pending it returns at once, without the lock or any DDL, so a replica that
 * starts while a long migration holds the lock is not held up by it.
 * Returns the versions applied by this call (with `mode: 'check'`, the versions pending).
 */
export async function migrate(
  db: Database,
  sources: readonly MigrationSource[],
  options: MigrateOptions = {},
): Promise<string[]> {
  const mode = options.mode ?? 'apply';
  if (mode !== 'apply' && mode !== 'check') {
    throw new TypeError(`migrate: mode must be "apply" or "check", received ${JSON.stringify(options.mode)}`);
  }
  const files = await migrationFiles(sources);
  const recorded = await recordedVersions(db);
  const pending = files.filter((file) => !recorded.has(file.version));
  if (mode === 'check' || pending.length === 0) return pending.map((file) => file.version);
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock(hashtext(current_schema()))');
    await tx.exec(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    // Read again under the lock: whoever held it before may have applied some of them.
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

async function migrationFiles(sources: readonly MigrationSource[]): Promise<MigrationFile[]> {
  const files: MigrationFile[] = [];
  for (const source of sources) {
    const names = (await readdir(source.dir)).filter((n) => n.endsWith('.sql')).sort();
    for (const name of names)
      files.push({ version: `${source.prefix}/${name}`, path: join(source.dir, name) });
  }
  return files;
}

/** The versions `schema_migrations` records, read without a lock (rows are only ever added). */
async function recordedVersions(db: Database): Promise<Set<string>> {
  const table = await db.query<{ present: boolean }>(
    "SELECT to_regclass('schema_migrations') IS NOT NULL AS present",
  );
  if (!table.rows[0]?.present) return new Set();
  const rows = await db.query<{ version: string }>('SELECT version FROM schema_migrations');
  return new Set(rows.rows.map((r) => r.version));
}
