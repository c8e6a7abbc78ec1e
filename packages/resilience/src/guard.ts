import {
  type CallGuard,
  type CancelSignal,
  type ServiceName,
  UpstreamError,
  UpstreamErrorCode,
} from '@bff/upstream-clients';
import {
  BrokenCircuitError,
  type CircuitBreakerPolicy,
  CircuitState,
  circuitBreaker,
  handleWhen,
  SamplingBreaker,
} from 'cockatiel';
import { RetryBudget, type RetryBudgetOptions } from './retry-budget.ts';

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface UpstreamGuardOptions {
  service: ServiceName;
  /** Longest one try may take, whatever is left of the operation's budget, in ms. @default 2000 */
  callTimeoutMs?: number;
  /** Tries in all for a read (1 = no retry). @default 2 */
  maxAttempts?: number;
  /** First retry waits about this long (jittered, doubling each time), in ms. @default 50 */
  backoffBaseMs?: number;
  /** No retry waits longer than this, Retry-After included, in ms. @default 1000 */
  backoffMaxMs?: number;
  /** Bound on retries as a share of traffic. */
  retryBudget?: RetryBudgetOptions;
  /** Share of failed tries (0-1) over `samplingMs` that opens the circuit. @default 0.4 */
  failureThreshold?: number;
  /** Window the failure rate is measured over, in ms. @default 10000 */
  samplingMs?: number;
  /** Tries per second needed before the rate counts, so a trickle cannot open it. @default 5 */
  minimumRps?: number;
  /** How long an open circuit waits before letting one try through, in ms. @default 5000 */
  halfOpenAfterMs?: number;
}

export interface GuardStats {
  /** Logical calls (first tries). */
  calls: number;
  /** Retries made. */
  retries: number;
  /** Retries the budget refused. */
  retriesDenied: number;
  /** Calls refused at once because the circuit was open. */
  shortCircuited: number;
  /** Times the circuit opened. */
  opened: number;
}

/**
 * What counts against the service: only transient errors (unavailable, timed out, failing).
 * Anything else leaves cockatiel's `execute` unhandled, which in the closed state records
 * neither a failure nor a success: a flood of refused input (gRPC INVALID_ARGUMENT, a REST 4xx,
 * which the REST transport throws through the guard for this reason) can neither open the
 * breaker for every user nor dilute the failure rate of a service that is really failing.
 * One exception, chosen deliberately: when the circuit is half-open, cockatiel closes it on an
 * unhandled error from the probe. The service did answer; treating that as a failure instead
 * would let anyone keep the circuit open by sending bad input, and if real calls still fail the
 * sampling breaker opens it again.
 */
const isFailure = (error: Error) => error instanceof UpstreamError && error.transient;

/** The guard for one upstream service. One per service per process: it holds that service's health. */
export class UpstreamGuard implements CallGuard {
  readonly stats: GuardStats = { calls: 0, retries: 0, retriesDenied: 0, shortCircuited: 0, opened: 0 };
  private readonly service: ServiceName;
  private readonly callTimeoutMs: number;
  private readonly maxAttempts: number;
  private readonly backoffBaseMs: number;
  private readonly backoffMaxMs: number;
  private readonly budget: RetryBudget;
  private readonly breaker: CircuitBreakerPolicy;

  constructor(options: UpstreamGuardOptions) {
    this.service = options.service;
    this.callTimeoutMs = positive('callTimeoutMs', options.callTimeoutMs ?? 2_000);
    this.maxAttempts = positive('maxAttempts', options.maxAttempts ?? 2);
    this.backoffBaseMs = positive('backoffBaseMs', options.backoffBaseMs ?? 50);
    this.backoffMaxMs = positive('backoffMaxMs', options.backoffMaxMs ?? 1_000);
    const threshold = options.failureThreshold ?? 0.4;
    if (!(threshold > 0 && threshold < 1))
      throw new TypeError(`UpstreamGuard: failureThreshold must be between 0 and 1, received ${threshold}`);
    this.budget = new RetryBudget(options.retryBudget);
    this.breaker = circuitBreaker(handleWhen(isFailure), {
      halfOpenAfter: positive('halfOpenAfterMs', options.halfOpenAfterMs ?? 5_000),
      breaker: new SamplingBreaker({
        threshold,
        duration: positive('samplingMs', options.samplingMs ?? 10_000),
        minimumRps: options.minimumRps ?? 5,
      }),
    });
    this.breaker.onBreak(() => {
      this.stats.opened++;
    });
  }

  get state(): BreakerState {
    switch (this.breaker.state) {
      case CircuitState.Open:
      case CircuitState.Isolated:
        return 'open';
      case CircuitState.HalfOpen:
        return 'half-open';
      default:
        return 'closed';
    }
  }

  async call<T>(
    attempt: (timeoutMs: number) => Promise<T>,
    options: { idempotent: boolean; deadline?: number | undefined; signal?: CancelSignal | undefined },
  ): Promise<T> {
    this.stats.calls++;
    this.budget.deposit();
    for (let tries = 1; ; tries++) {
      const left = options.deadline === undefined ? this.callTimeoutMs : options.deadline - Date.now();
      if (left <= 0)
        throw new UpstreamError(
          this.service,
          UpstreamErrorCode.Timeout,
          `${this.service}: the operation's time budget is spent`,
        );
      try {
        return await this.breaker.execute(() => attempt(Math.min(this.callTimeoutMs, left)));
      } catch (error) {
        if (error instanceof BrokenCircuitError) {
          this.stats.shortCircuited++;
          throw new UpstreamError(
            this.service,
            UpstreamErrorCode.Unavailable,
            `${this.service}: circuit open`,
            { cause: error },
          );
        }
        if (
          !options.idempotent ||
          tries >= this.maxAttempts ||
          // A refusal (or anything not transient) would be refused again: never retried.
          !(error instanceof UpstreamError) ||
          !error.transient ||
          options.signal?.aborted
        ) {
          throw error;
        }
        const wait = Math.min(this.backoffMaxMs, error.retryAfterMs ?? this.backoff(tries));
        // A retry that cannot finish inside the budget only adds load.
        if (options.deadline !== undefined && Date.now() + wait + 10 >= options.deadline) throw error;
        if (!this.budget.tryWithdraw()) {
          this.stats.retriesDenied++;
          throw error;
        }
        this.stats.retries++;
        await sleep(wait, options.signal);
      }
    }
  }

  /** "Full jitter": uniformly between 0 and base × 2^(try-1), capped. */
  private backoff(tries: number): number {
    return Math.random() * Math.min(this.backoffMaxMs, this.backoffBaseMs * 2 ** (tries - 1));
  }
}

function positive(name: string, value: number): number {
  if (!(Number.isFinite(value) && value > 0))
    throw new TypeError(`UpstreamGuard: ${name} must be a positive number, received ${value}`);
  return value;
}

function sleep(ms: number, signal: CancelSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
