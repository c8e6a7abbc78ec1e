import type { BillingClient, IdentityClient, ProductClient } from '@bff/upstream-clients';

/** The process-wide clients (pools and channels live as long as the process). */
export interface Upstreams {
  identity: IdentityClient;
  billing: BillingClient;
  product: ProductClient;
}

/** What ties upstream calls to one GraphQL request. */
export interface RequestScope {
  /** Aborted when the client goes away. */
  signal?: AbortSignal | undefined;
  /** The operation's deadline, ms since the epoch: no upstream try outlives it. */
  deadline?: number | undefined;
}
