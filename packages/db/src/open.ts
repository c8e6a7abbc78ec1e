import { mkdir } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import type { Database, DatabaseOptions, Queryable, QueryResult } from './types.ts';

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** Opens the database described by `options` and makes `options.schema` the search path. */
export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  if (!SCHEMA_NAME.test(options.schema)) {
    throw new TypeError(
      `Invalid database schema name ${JSON.stringify(options.schema)}: lower-case letters, digits and _ only`,
    );
  }
  return options.url ? openPostgres(options.url, options) : openPglite(options);
}

/** True when `error` is PostgreSQL's unique_violation (23505), from either engine. */
export function isUniqueViolation(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === '23505';
}

async function openPglite(options: DatabaseOptions): Promise<Database> {
  if (options.dataDir) await mkdir(options.dataDir, { recursive: true });
  const db = new PGlite(options.dataDir);
  await db.waitReady;
  await db.exec(`CREATE SCHEMA IF NOT EXISTS ${options.schema}; SET search_path TO ${options.schema}`);
  const wrap = (q: Pick<PGlite, 'query' | 'exec'>): Queryable => ({
    async query<R>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
      const result = await q.query<R>(text, params as unknown[] | undefined);
      // PGlite reports affectedRows 0 for a SELECT: count the rows it returned instead.
      return { rows: result.rows, rowCount: Math.max(result.rows.length, result.affectedRows ?? 0) };
    },
    async exec(sql: string) {
      await q.exec(sql);
    },
  });
  const root = wrap(db);
  return {
    engine: 'pglite',
    schema: options.schema,
    ...root,
    transaction: (fn) => db.transaction((tx) => fn(wrap(tx))),
    close: () => db.close(),
  };
}

async function openPostgres(url: string, options: DatabaseOptions): Promise<Database> {
  // Create the schema once, before the pool starts handing out connections that expect it.
  const setup = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  await setup.connect();
  try {
    await setup.query(`CREATE SCHEMA IF NOT EXISTS ${options.schema}`);
  } catch (error) {
    // Two replicas racing on CREATE SCHEMA IF NOT EXISTS can still collide in the catalog.
    if (!isUniqueViolation(error)) throw error;
  } finally {
    await setup.end();
  }
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    options: `-c search_path=${options.schema} -c statement_timeout=${options.statementTimeoutMs ?? 10_000}`,
  });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', () => {});
  const wrap = (q: pg.Pool | pg.PoolClient): Queryable => ({
    async query<R>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
      const result = await q.query(text, params as unknown[] | undefined);
      return { rows: result.rows as R[], rowCount: result.rowCount ?? result.rows.length };
    },
    async exec(sql: string) {
      await q.query(sql);
    },
  });
  return {
    engine: 'postgres',
    schema: options.schema,
    ...wrap(pool),
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn(wrap(client));
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
}
