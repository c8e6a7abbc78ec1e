import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { realServer } from './real-server.ts';

export type DatabaseBackend = 'pglite' | 'postgres';

/**
 * The backends a data suite runs against: always PGlite; PostgreSQL too when `DATABASE_URL`
 * is set (which `.ci/run` does), failing loudly under CI if it does not answer.
 */
export async function databaseBackends(): Promise<DatabaseBackend[]> {
  const url = process.env.DATABASE_URL;
  if (process.env.CI === 'true' && !url)
    throw new Error('CI=true requires DATABASE_URL for the PostgreSQL suites');
  return (await realServer('PostgreSQL', url)) ? ['pglite', 'postgres'] : ['pglite'];
}

/**
 * The options a throwaway database is opened with: the fields of `@bff/db`'s `DatabaseOptions`
 * it sets, spelled out here so the test kit does not depend on the package it helps test.
 */
export interface ThrowawayDatabaseOptions {
  /** PostgreSQL URL; absent for embedded PGlite. */
  url?: string;
  /** The uniquely named schema. */
  schema: string;
  /** PostgreSQL only: pool size. */
  poolSize?: number;
}

export interface ThrowawayDatabase {
  options: ThrowawayDatabaseOptions;
  /** Drops the schema (PostgreSQL); nothing to do for in-memory PGlite. */
  drop(): Promise<void>;
}

/** Options for a fresh, uniquely named schema on `backend`, and a way to drop it afterwards. */
export function throwawayDatabase(backend: DatabaseBackend, service: string): ThrowawayDatabase {
  const schema = `${service}_t${randomBytes(5).toString('hex')}`;
  if (backend === 'pglite') return { options: { schema }, drop: async () => {} };
  const url = process.env.DATABASE_URL as string;
  return {
    options: { url, schema, poolSize: 5 },
    async drop() {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await client.end();
      }
    },
  };
}
