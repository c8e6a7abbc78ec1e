import type { BillingClient, CallTrace, IdentityClient, ProductClient } from '@bff/upstream-clients';

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
  /** The request's trace: a span per loader batch, and the calls made for it under it. */
  trace?: RequestTrace | undefined;
}

/** Tracing of one request's upstream work, implemented by the server (no tracing library here). */
export interface RequestTrace extends CallTrace {
  /** Starts the span of one loader batch (or command); calls made with `trace` are its children. */
  batch(loader: string, size: number): { trace: CallTrace; end(): void };
}
