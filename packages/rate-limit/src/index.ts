/**
 * Throttling for the BFFs: `@rateLimit` in SDL plus per-app defaults, `@credentialRateLimit`
 * (per account from every client, per client over every account) and `@rateLimitKey` (how an
 * argument is normalised before it keys a limit), enforced through
 * graphql-rate-limit's `getGraphQLRateLimiter` over a store whose check-and-record is one
 * atomic step (in memory, or Redis shared by every replica), and a plugin that turns a wholly
 * refused operation into HTTP 429 with Retry-After and RateLimit-* headers.
 *
 * Every export here is public API of `@bff/rate-limit`.
 */

export type { RateLimitDecision, RateLimiting, RateLimitOptions, RateLimitStats } from './limiter.ts';
export {
  CREDENTIAL_RATE_LIMIT_DEFAULTS,
  createRateLimiting,
  rateLimitDirectiveTypeDefs,
} from './limiter.ts';
export type { RateLimitKeyNormalizer } from './normalizers.ts';
export { builtInNormalizers, foldEmail } from './normalizers.ts';
export type { RedisRateLimitStoreOptions } from './redis-store.ts';
export { RedisRateLimitStore } from './redis-store.ts';
export type { RateLimitHit, RateLimitStore } from './store.ts';
export { MemoryRateLimitStore } from './store.ts';
