import type { CancelSignal } from './cancellation.ts';
/** Why an upstream call failed, in terms a caller can act on. */
export const UpstreamErrorCode = {
  /** Could not reach the service, or it said it is unavailable. */
  Unavailable: 'UPSTREAM_UNAVAILABLE',
  /** No answer within the deadline. */
  Timeout: 'UPSTREAM_TIMEOUT',
  /** The service rejected the arguments (malformed, out of range, or not applicable now). */
  InvalidArgument: 'UPSTREAM_INVALID_ARGUMENT',
  /** The service says what the arguments name does not exist. */
  NotFound: 'UPSTREAM_NOT_FOUND',
  /** The service answered something this client does not understand, or failed internally. */
  BadResponse: 'UPSTREAM_BAD_RESPONSE',
  /** The caller gave up (its client went away): not the service's fault. */
  Cancelled: 'UPSTREAM_CANCELLED',
} as const;
export type UpstreamErrorCode = (typeof UpstreamErrorCode)[keyof typeof UpstreamErrorCode];

/**
 * A failed upstream call. `service` names the upstream (never its address), so the message
 * is safe to show; `cause` keeps the detail for the log.
 */
export class UpstreamError extends Error {
  override readonly name = 'UpstreamError';
  constructor(
    readonly service: 'identity' | 'billing' | 'product',
    readonly code: UpstreamErrorCode,
    message: string,
    options?: { cause?: unknown; retryAfterMs?: number | undefined },
  ) {
    super(message, options);
    this.retryAfterMs = options?.retryAfterMs;
  }

  /** How long the service asked callers to wait (its Retry-After), when it said. */
  readonly retryAfterMs: number | undefined;

  /** Worth retrying (and counting against the service's health): unavailable, slow, or failing. */
  get transient(): boolean {
    return (
      this.code === UpstreamErrorCode.Unavailable ||
      this.code === UpstreamErrorCode.Timeout ||
      this.code === UpstreamErrorCode.BadResponse
    );
  }

  /**
   * The service answered, and refused what it was asked: the caller's input is at fault, not the
   * service. Never retried, and no evidence about the service's health either way.
   */
  get refusal(): boolean {
    return this.code === UpstreamErrorCode.InvalidArgument || this.code === UpstreamErrorCode.NotFound;
  }
}

/**
 * What wraps every call to one service: deadlines, retries, a circuit breaker. `attempt` is
 * one try with the timeout it may use; the guard decides whether and when to try again.
 */
export interface CallGuard {
  call<T>(
    attempt: (timeoutMs: number) => Promise<T>,
    options: { idempotent: boolean; deadline?: number | undefined; signal?: CancelSignal | undefined },
  ): Promise<T>;
}
