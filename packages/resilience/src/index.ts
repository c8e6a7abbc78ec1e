/**
 * Staying up when upstreams fail: a guard per upstream service that gives every try the time
 * left in the operation's budget (capped per service), retries reads with jittered exponential
 * backoff within a retry budget (honouring Retry-After), and breaks the circuit (cockatiel)
 * when the service keeps failing, so calls then fail at once.
 *
 * Every export here is public API of `@bff/resilience`.
 */

export type { BreakerState, GuardStats, UpstreamGuardOptions } from './guard.ts';
export { UpstreamGuard } from './guard.ts';
export type { RetryBudgetOptions } from './retry-budget.ts';
export { RetryBudget } from './retry-budget.ts';
