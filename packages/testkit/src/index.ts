/**
 * Test fixtures shared by every suite: which database backends to run against, throwaway
 * schemas, checks that a real server answers (loudly failing under CI), and a TCP proxy
 * that a fault test owns and can cut.
 *
 * Every export here is public API of `@bff/testkit`.
 */

export type { DatabaseBackend, ThrowawayDatabase, ThrowawayDatabaseOptions } from './databases.ts';
export { databaseBackends, throwawayDatabase } from './databases.ts';
export type { FaultMode } from './http-fault-proxy.ts';
export { HttpFaultProxy } from './http-fault-proxy.ts';
export { realServer } from './real-server.ts';
export { TcpProxy } from './tcp-proxy.ts';
export { waitFor } from './wait-for.ts';
