/**
 * Every `extensions.code` a BFF sends, in one enum. Clients branch on these, never on
 * messages; a code that is not here is a bug (the hostile suite checks every answer).
 * No dependencies, so that auth, rate limiting, limits and resolvers can all use it.
 *
 * Every export here is public API of `@bff/error-codes`.
 */
export const BffErrorCode = {
  // The client's mistakes (4xx): never retried by us, never an upstream fault.
  /** The document does not parse. 400. */
  GraphqlParseFailed: 'GRAPHQL_PARSE_FAILED',
  /** The document does not validate against the schema. 400. */
  GraphqlValidationFailed: 'GRAPHQL_VALIDATION_FAILED',
  /** `operationName` names no operation of the document, or one is needed. 400. */
  OperationResolutionFailure: 'OPERATION_RESOLUTION_FAILURE',
  /** A variable or argument value is wrong (type, format, length, characters). 400 for variables. */
  BadUserInput: 'BAD_USER_INPUT',
  /** The HTTP request itself is malformed (body, headers, parameters). 400. */
  BadRequest: 'BAD_REQUEST',
  /** The body is larger than the app allows. 413. */
  PayloadTooLarge: 'PAYLOAD_TOO_LARGE',
  /** Not a content type GraphQL is served in. 415. */
  UnsupportedMediaType: 'UNSUPPORTED_MEDIA_TYPE',
  /** Depth, aliases, directives, root fields, cost, tokens or size past the app's limits. 400. */
  OperationLimitExceeded: 'OPERATION_LIMIT_EXCEEDED',
  /** A persisted-query hash this app does not know (send the query with it, or it is not allowed). */
  PersistedQueryNotFound: 'PERSISTED_QUERY_NOT_FOUND',
  /** Persisted queries are not offered here. */
  PersistedQueryNotSupported: 'PERSISTED_QUERY_NOT_SUPPORTED',
  /** The query sent does not hash to the hash sent with it. 400. */
  PersistedQueryHashMismatch: 'PERSISTED_QUERY_HASH_MISMATCH',
  /** This app version is no longer served. 426. */
  UpgradeRequired: 'UPGRADE_REQUIRED',
  /** No valid credentials (missing, expired, forged or future-dated token). 401. */
  Unauthenticated: 'UNAUTHENTICATED',
  /** Signed in, but not allowed. 403. */
  Forbidden: 'FORBIDDEN',
  /** The email and password do not match. */
  InvalidCredentials: 'INVALID_CREDENTIALS',
  /** Too many calls; `retryAfter` says when to try again. 429 when the whole request is refused. */
  RateLimited: 'RATE_LIMITED',
  /** A connection or viewer holds as many subscriptions or connections as it may. */
  TooManySubscriptions: 'TOO_MANY_SUBSCRIPTIONS',
  /**
   * A subscription ended before its subscriber left (`reason`: `overflow` when it did not read its
   * events fast enough, `gap` when events may have been missed, `shutdown`): resubscribe, refetch.
   */
  SubscriptionEnded: 'SUBSCRIPTION_ENDED',
  NotFound: 'NOT_FOUND',
  Conflict: 'CONFLICT',
  IdempotencyKeyReused: 'IDEMPOTENCY_KEY_REUSED',
  // Ours or an upstream's fault (5xx class): the client may retry later.
  UpstreamUnavailable: 'UPSTREAM_UNAVAILABLE',
  UpstreamTimeout: 'UPSTREAM_TIMEOUT',
  InternalServerError: 'INTERNAL_SERVER_ERROR',
} as const;
export type BffErrorCode = (typeof BffErrorCode)[keyof typeof BffErrorCode];

const ALL: ReadonlySet<string> = new Set(Object.values(BffErrorCode));

/** Whether `code` is one of ours. */
export function isBffErrorCode(code: unknown): code is BffErrorCode {
  return typeof code === 'string' && ALL.has(code);
}

/** The codes that mean the server (or an upstream) failed; every other code is the client's to fix. */
export const SERVER_FAULT_CODES: ReadonlySet<BffErrorCode> = new Set([
  BffErrorCode.UpstreamUnavailable,
  BffErrorCode.UpstreamTimeout,
  BffErrorCode.InternalServerError,
]);
