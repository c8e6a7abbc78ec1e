import type {
  BillingClient,
  CallTrace,
  CancelSignal,
  IdentityClient,
  ProductClient,
} from '@bff/upstream-clients';

/** The process-wide clients (pools and channels live as long as the process). */
export interface Upstreams {
  identity: IdentityClient;
  billing: BillingClient;
  product: ProductClient;
}

/** What ties upstream calls to one GraphQL request. */
export interface RequestScope {
  /** Aborted when the client goes away. */
  signal?: CancelSignal | undefined;
  /** The operation's deadline, ms since the epoch: no upstream try outlives it. */
  deadline?: number | undefined;
  /** The request's trace: a span per loader batch, and the calls made for it under it. */
  trace?: RequestTrace | undefined;
  /** Told the entities the request read and changed (the response cache tags and invalidates by them). */
  entities?: EntityLog | undefined;
}

/** The kinds of entity the BFF reads, as `entityTag` names them. */
export type EntityKind = 'Product' | 'Invoice' | 'User' | 'Invoices';

/**
 * What one request read and changed, by kind and id (the tag is `${kind}:${id}`, as `entityTag`
 * writes it): a cached
 * response is tagged with what it read, and a change to any of it drops the response. By kind
 * and id rather than as tags, so that reading costs no string building for a response that is
 * never stored.
 */
export interface EntityLog {
  read(kind: EntityKind, id: string): void;
  wrote(kind: EntityKind, id: string): void;
}

/**
 * The tags of the entities the BFF reads, shared by the loaders (which record them) and by
 * whoever maps a domain event or a mutation to what it changed.
 */
export const entityTag = Object.freeze({
  product: (id: string) => `Product:${id}`,
  invoice: (id: string) => `Invoice:${id}`,
  user: (id: string) => `User:${id}`,
  /** Any list of this user's invoices: a new invoice changes every page of them. */
  invoicesOf: (userId: string) => `Invoices:${userId}`,
});

/** Tracing of one request's upstream work, implemented by the server (no tracing library here). */
export interface RequestTrace extends CallTrace {
  /** Starts the span of one loader batch (or command); calls made with `trace` are its children. */
  batch(loader: string, size: number): { trace: CallTrace; end(): void };
}
