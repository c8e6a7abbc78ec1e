/**
 * The demo data every service seeds on first start. Deterministic, so that the Identity,
 * Billing and Product databases agree on ids and prices without talking to each other.
 *
 * Every export here is public API of `@bff/demo-data`.
 */

export type { DemoInvoice } from './invoices.ts';
export { demoInvoices } from './invoices.ts';
export type { DemoProduct } from './products.ts';
export { demoProducts, IMAGE_WIDTHS } from './products.ts';
export type { DemoUser } from './users.ts';
export { DEMO_PASSWORD, demoUsers } from './users.ts';
