/**
 * Typed clients for the domain services. Resolvers never see these: loaders call them.
 *
 * Every export here is public API of `@bff/upstream-clients`.
 */

export type {
  BillingClient,
  BillingInvoice,
  BillingInvoiceLine,
  BillingInvoicePage,
} from './billing-client.ts';
export { BillingRejection, createBillingClient } from './billing-client.ts';
export type { CancelSignal } from './cancellation.ts';
export { Cancellation } from './cancellation.ts';
export type { CallGuard } from './errors.ts';
export { UpstreamError, UpstreamErrorCode } from './errors.ts';
export type { IdentityClient, IdentityUser } from './identity-client.ts';
export { createIdentityClient, InvalidCredentialsError } from './identity-client.ts';
export type { JsonWebKeyRecord, JsonWebKeySet, JwksClient, JwksClientOptions } from './jwks-client.ts';
export { createJwksClient } from './jwks-client.ts';
export type { ProductClient, ProductClientOptions, ProductPage, ProductRecord } from './product-client.ts';
export { createProductClient, isProductTarget, PRODUCT_TARGET_FORMS } from './product-client.ts';
export type {
  CallOptions,
  CallTrace,
  RestClientOptions,
  ServiceName,
  UpstreamCall,
  UpstreamOutcome,
} from './rest.ts';
