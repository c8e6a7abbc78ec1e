import { Pool, errors as undiciErrors } from 'undici';
import { Cancellation, type CancelSignal } from './cancellation.ts';
import { type CallGuard, UpstreamError, UpstreamErrorCode } from './errors.ts';

export type ServiceName = 'identity' | 'billing' | 'product';

/** What every upstream call reports, for metrics and for tests that count calls. */
export interface UpstreamCall {
  service: ServiceName;
  /** e.g. `GET /v1/users` or `GetProducts`. */
  operation: string;
  /** Keys in a batch call. */
  batchSize?: number;
  /** When the call started, in ms since the epoch (fractional). */
  startedAt: number;
  durationMs: number;
  ok: boolean;
  /** How the try ended: answered (`ok`), refused as the caller's mistake (4xx, INVALID_ARGUMENT…), or failed. */
  outcome: UpstreamOutcome;
}

/** How one try of an upstream call ended, for metrics and spans. */
export type UpstreamOutcome = 'ok' | 'refused' | 'error' | 'timeout' | 'cancelled';

/**
 * Tracing of the calls made for one request: each try gets the headers that carry the caller's
 * trace (HTTP headers, gRPC metadata) and is ended with its outcome. Implemented by the caller
 * (the BFF, a service), so this package knows nothing of a tracing library.
 */
export interface CallTrace {
  startTry(
    service: ServiceName,
    operation: string,
  ): { headers: Record<string, string>; end(outcome: UpstreamOutcome): void };
}

export interface CallOptions {
  /** Deadline for this call in ms; capped by the client's own. */
  timeoutMs?: number;
  /** The operation's deadline (ms since the epoch): no try outlives it, retries included. */
  deadline?: number | undefined;
  /** Cancels the call (the client disconnected). */
  signal?: CancelSignal | undefined;
  /** Carries the caller's trace to the service and records a span per try. */
  trace?: CallTrace | undefined;
}

export interface RestClientOptions {
  /** Base URL, `http://host:port`. */
  baseUrl: string;
  /** Longest any call may take, in ms. @default 2000 */
  timeoutMs?: number;
  /** Keep-alive connections in the pool. @default 64 */
  connections?: number;
  /** Told about every call (every try, retries included). */
  onCall?: (call: UpstreamCall) => void;
  /** Deadlines, retries and circuit breaking around every call. */
  guard?: CallGuard | undefined;
}

type RequestOptions = CallOptions & {
  body?: unknown;
  headers?: Record<string, string>;
  operation: string;
  batchSize?: number;
  /**
   * Whether a 2xx body has the shape the caller reads. One that has not is an
   * UPSTREAM_BAD_RESPONSE from inside the try, as unreadable JSON is: the guard retries a read
   * and counts it against the service.
   */
  accepts?: (body: unknown) => boolean;
};

export interface RestResponse<T> {
  status: number;
  body: T;
}

/** Carries a 4xx answer out through the guard; `request` hands the response back to its caller. */
class RefusedResponse extends Error {
  override readonly name = 'RefusedResponse';
  constructor(readonly response: RestResponse<unknown>) {
    super(`answered ${response.status}`);
  }
}

/** A keep-alive pool to one service, JSON in and out, every request with a deadline. */
export class RestTransport {
  private readonly pool: Pool;
  private readonly maxTimeout: number;
  private readonly onCall: ((call: UpstreamCall) => void) | undefined;
  private readonly guard: CallGuard | undefined;

  constructor(
    readonly service: ServiceName,
    options: RestClientOptions,
  ) {
    if (
      typeof options.baseUrl !== 'string' ||
      !URL.canParse(options.baseUrl) ||
      !/^https?:$/.test(new URL(options.baseUrl).protocol)
    ) {
      throw new TypeError(
        `${service} client: baseUrl must be an http(s) URL, received ${JSON.stringify(options.baseUrl)}`,
      );
    }
    this.maxTimeout = options.timeoutMs ?? 2_000;
    if (!(this.maxTimeout > 0))
      throw new TypeError(`${service} client: timeoutMs must be positive, received ${options.timeoutMs}`);
    this.pool = new Pool(new URL(options.baseUrl).origin, {
      connections: options.connections ?? 64,
      keepAliveTimeout: 30_000,
      connectTimeout: Math.min(this.maxTimeout, 2_000),
      // Our own timer ends each call; undici's are only a backstop, set past it so the two do
      // not race (a race would report a timeout as the service being unavailable).
      headersTimeout: this.maxTimeout + 1_000,
      bodyTimeout: this.maxTimeout + 1_000,
    });
    this.onCall = options.onCall;
    this.guard = options.guard;
  }

  /**
   * Sends one request (through the guard, when there is one). 2xx and 4xx come back as they
   * are (the caller maps 4xx to meaning); 5xx, 429, timeouts and connection failures become an
   * UpstreamError.
   */
  async request<T>(method: 'GET' | 'POST', path: string, options: RequestOptions): Promise<RestResponse<T>> {
    const cap = Math.min(this.maxTimeout, options.timeoutMs ?? this.maxTimeout);
    if (!this.guard) return this.once<T>(method, path, options, cap);
    // A 4xx leaves the guard as a RefusedResponse, an error the guard neither retries nor counts:
    // as a success it would dilute the failure rate, so a flood of bad input could keep the
    // breaker closed over a service that fails every real call.
    const once = async (timeoutMs: number) => {
      const response = await this.once<T>(method, path, options, Math.min(cap, timeoutMs));
      if (response.status >= 400) throw new RefusedResponse(response);
      return response;
    };
    try {
      // Only reads are retried: a POST may have taken effect before its answer was lost.
      return await this.guard.call(once, {
        idempotent: method === 'GET',
        deadline: options.deadline,
        signal: options.signal,
      });
    } catch (error) {
      if (error instanceof RefusedResponse) return error.response as RestResponse<T>;
      throw error;
    }
  }

  private async once<T>(
    method: 'GET' | 'POST',
    path: string,
    options: RequestOptions,
    timeout: number,
  ): Promise<RestResponse<T>> {
    const started = performance.now();
    // A timer cleared in `finally`, not AbortSignal.timeout, whose timer would outlive the call;
    // a Cancellation, not an AbortController (see there).
    const cancel = new Cancellation();
    const timer = setTimeout(() => cancel.abort(), timeout);
    const onCallerAbort = () => cancel.abort();
    options.signal?.addEventListener('abort', onCallerAbort, { once: true });
    const traced = options.trace?.startTry(this.service, options.operation);
    let outcome: UpstreamOutcome = 'error';
    try {
      if (options.signal?.aborted) {
        throw new UpstreamError(
          this.service,
          UpstreamErrorCode.Cancelled,
          `${this.service} ${options.operation} cancelled`,
        );
      }
      const response = await this.pool.request({
        method,
        path,
        signal: cancel,
        headers: {
          accept: 'application/json',
          ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
          ...options.headers,
          ...traced?.headers,
        },
        body: options.body === undefined ? null : JSON.stringify(options.body),
      });
      const text = await response.body.text();
      if (response.statusCode >= 500 || response.statusCode === 429) {
        const unavailable = response.statusCode === 503 || response.statusCode === 429;
        throw new UpstreamError(
          this.service,
          unavailable ? UpstreamErrorCode.Unavailable : UpstreamErrorCode.BadResponse,
          `${this.service} ${options.operation} answered ${response.statusCode}`,
          { retryAfterMs: retryAfterMs(response.headers['retry-after']) },
        );
      }
      let body: T;
      try {
        body = JSON.parse(text) as T;
      } catch (error) {
        throw new UpstreamError(
          this.service,
          UpstreamErrorCode.BadResponse,
          `${this.service} ${options.operation} sent invalid JSON`,
          {
            cause: error,
          },
        );
      }
      if (response.statusCode < 300 && options.accepts && !options.accepts(body)) {
        throw new UpstreamError(
          this.service,
          UpstreamErrorCode.BadResponse,
          `${this.service} ${options.operation} sent a body of an unexpected shape`,
        );
      }
      outcome = response.statusCode < 400 ? 'ok' : 'refused';
      return { status: response.statusCode, body };
    } catch (error) {
      if (error instanceof UpstreamError) {
        outcome = outcomeOf(error.code);
        throw error;
      }
      const code = options.signal?.aborted
        ? UpstreamErrorCode.Cancelled
        : cancel.aborted || isUndiciTimeout(error)
          ? UpstreamErrorCode.Timeout
          : UpstreamErrorCode.Unavailable;
      const what =
        code === UpstreamErrorCode.Cancelled
          ? 'cancelled'
          : code === UpstreamErrorCode.Timeout
            ? 'timed out'
            : 'unavailable';
      outcome = outcomeOf(code);
      throw new UpstreamError(this.service, code, `${this.service} ${options.operation} ${what}`, {
        cause: error,
      });
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onCallerAbort);
      traced?.end(outcome);
      this.onCall?.({
        service: this.service,
        operation: options.operation,
        ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize }),
        startedAt: performance.timeOrigin + started,
        durationMs: performance.now() - started,
        ok: outcome === 'ok',
        outcome,
      });
    }
  }

  /** Whether the service answers its `/readyz` with 200 (never throws). */
  async ready(options?: CallOptions): Promise<boolean> {
    const response = await this.request('GET', '/readyz', { ...options, operation: 'GET /readyz' }).catch(
      () => null,
    );
    return response?.status === 200;
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

/** The outcome label of a failed try. */
export function outcomeOf(code: UpstreamErrorCode): UpstreamOutcome {
  switch (code) {
    case UpstreamErrorCode.Timeout:
      return 'timeout';
    case UpstreamErrorCode.Cancelled:
      return 'cancelled';
    case UpstreamErrorCode.InvalidArgument:
    case UpstreamErrorCode.NotFound:
      return 'refused';
    default:
      return 'error';
  }
}

/** A Retry-After header (seconds or an HTTP date) in ms, capped at 10 s; undefined when absent or unreadable. */
function retryAfterMs(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return undefined;
  const seconds = /^\d+$/.test(value) ? Number(value) * 1000 : Date.parse(value) - Date.now();
  return Number.isFinite(seconds) && seconds >= 0 ? Math.min(seconds, 10_000) : undefined;
}

/**
 * A 400 is the service refusing the arguments (UPSTREAM_INVALID_ARGUMENT: the caller's fault,
 * never retried); any other 4xx the caller did not expect is UPSTREAM_BAD_RESPONSE.
 */
export function unexpected(service: ServiceName, operation: string, response: RestResponse<unknown>): never {
  throw new UpstreamError(
    service,
    response.status === 400 ? UpstreamErrorCode.InvalidArgument : UpstreamErrorCode.BadResponse,
    `${service} ${operation} answered ${response.status}`,
  );
}

/** Whether `value` is a JSON object (not null, not an array). */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** undici's own deadlines (connect, headers, body) are timeouts too, not an unreachable service. */
function isUndiciTimeout(error: unknown): boolean {
  return (
    error instanceof undiciErrors.HeadersTimeoutError ||
    error instanceof undiciErrors.BodyTimeoutError ||
    error instanceof undiciErrors.ConnectTimeoutError
  );
}
