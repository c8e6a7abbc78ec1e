/**
 * Whole-response caching for the BFFs, first slice: the cache policy of an operation computed
 * statically from `@cacheControl` hints (Apollo's rules, no per-field hooks), the store key of
 * a response, and tagged stores (in memory, bounded and LRU; Redis shared by every replica)
 * whose entries a domain event can drop by tag.
 *
 * Every export here is public API of `@bff/response-cache`.
 */

export type { CachePolicy, CacheScope } from './cache-policy.ts';
export {
  assertRestrictedFieldsArePrivate,
  cacheControlDirectiveTypeDefs,
  cachePolicyOf,
} from './cache-policy.ts';
export type { ResponseCacheKeyParts } from './key.ts';
export { canonicalVariables, responseCacheKey } from './key.ts';
export type { MemoryResponseCacheStoreOptions } from './memory-store.ts';
export { MemoryResponseCacheStore } from './memory-store.ts';
export type { CacheOutcome, ResponseCachePluginOptions } from './plugin.ts';
export { createResponseCachePlugin } from './plugin.ts';
export type { RedisResponseCacheStoreOptions } from './redis-store.ts';
export { RedisResponseCacheStore } from './redis-store.ts';
export type { ResponseCacheStats, ResponseCacheStore, SetOptions, SetOutcome } from './store.ts';
export { INVALIDATION_MEMORY_MS } from './store.ts';
