/**
 * Per-request DataLoaders over the upstream clients: one batch call per service per tick,
 * results cached for the request and nothing longer. Build a fresh set for every request.
 *
 * Every export here is public API of `@bff/loaders`.
 */

export type { Commands } from './commands.ts';
export { createCommands } from './commands.ts';
export type { InvoicePageKey, Loaders, ProductPageKey } from './loaders.ts';
export { createLoaders, MAX_BATCH, MAX_ISOLATION_CALLS } from './loaders.ts';
export type { EntityKind, EntityLog, RequestScope, RequestTrace, Upstreams } from './upstreams.ts';
export { entityTag } from './upstreams.ts';
