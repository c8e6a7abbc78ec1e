/**
 * One database interface over two engines: embedded PGlite (the laptop default) and real
 * PostgreSQL (`DATABASE_URL`). Same SQL dialect, same code path; each service lives in its
 * own schema.
 *
 * Every export here is public API of `@bff/db`.
 */

export type { MigrationSource } from './migrate.ts';
export { migrate } from './migrate.ts';
export { isUniqueViolation, openDatabase } from './open.ts';
export type { Database, DatabaseOptions, Queryable, QueryResult } from './types.ts';
