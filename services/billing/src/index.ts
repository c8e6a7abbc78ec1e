/**
 * The Billing service: accounts (opened from `identity.user.registered`), invoices with
 * cursor pagination, idempotent purchases priced from the Product service over gRPC, payment,
 * and `billing.*` events through the outbox.
 */

export type { BillingConfig } from './config.ts';
export { readBillingConfig } from './config.ts';
export { ACCOUNTS_CONSUMER } from './consumers.ts';
export type { BillingServiceOptions, RunningBillingService } from './service.ts';
export { startBillingService } from './service.ts';
