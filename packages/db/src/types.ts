export interface QueryResult<R> {
  rows: R[];
  /** Rows returned, or rows changed by INSERT/UPDATE/DELETE. */
  rowCount: number;
}

/** Anything that runs SQL: the database itself or an open transaction. */
export interface Queryable {
  /** One statement with `$1`-style parameters. */
  query<R = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>>;
  /** Several statements, no parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export interface Database extends Queryable {
  readonly engine: 'pglite' | 'postgres';
  /** The schema this service's tables live in. */
  readonly schema: string;
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** PostgreSQL URL. When absent, an embedded PGlite database is used. */
  url?: string | undefined;
  /** PGlite only: a directory to keep data in. In memory when absent. */
  dataDir?: string | undefined;
  /** Schema for this service's tables (created when missing). */
  schema: string;
  /** PostgreSQL only: pool size. @default 10 */
  poolSize?: number;
  /** PostgreSQL only: per-statement deadline in ms, so no query waits forever. @default 10000 */
  statementTimeoutMs?: number;
}
