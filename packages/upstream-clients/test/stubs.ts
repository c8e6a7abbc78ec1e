// Fixtures for the client suites: a guard that keeps the CallGuard contract and records what
// it saw, and an HTTP stub upstream on port 0 whose answers each test sets.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CallGuard, UpstreamError } from '../src/index.ts';

/**
 * Does what errors.ts says a guard does, and no more (the real one, with its breaker and
 * budget, is @bff/resilience's, tested there): an idempotent call is tried again after a
 * transient UpstreamError, up to `maxAttempts` tries; only transient errors count as failures
 * (what a breaker would hold against the service).
 */
export class RecordingGuard implements CallGuard {
  readonly calls: { idempotent: boolean }[] = [];
  tries = 0;
  failures = 0;
  successes = 0;

  constructor(
    private readonly maxAttempts = 2,
    private readonly tryTimeoutMs = 2_000,
  ) {}

  async call<T>(
    attempt: (timeoutMs: number) => Promise<T>,
    options: { idempotent: boolean; deadline?: number | undefined; signal?: AbortSignal | undefined },
  ): Promise<T> {
    this.calls.push({ idempotent: options.idempotent });
    for (let tries = 1; ; tries++) {
      this.tries++;
      try {
        const value = await attempt(this.tryTimeoutMs);
        this.successes++;
        return value;
      } catch (error) {
        const transient = error instanceof UpstreamError && error.transient;
        if (transient) this.failures++;
        if (!options.idempotent || !transient || tries >= this.maxAttempts || options.signal?.aborted)
          throw error;
      }
    }
  }
}

export type Handler = (request: IncomingMessage, response: ServerResponse) => void;

/** An HTTP upstream on 127.0.0.1, port 0, answering with `handler`, counting requests per path. */
export async function startHttpStub() {
  const requests: string[] = [];
  let handler: Handler = (_request, response) => response.end('{}');
  const server = createServer((request, response) => {
    requests.push(`${request.method} ${request.url}`);
    handler(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    /** Answers every request with `next` until set again; clears the request log. */
    answer(next: Handler) {
      handler = next;
      requests.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A handler answering `status` with `body` (an object is sent as JSON, a string as it is). */
export function reply(status: number, body: unknown, headers: Record<string, string> = {}): Handler {
  return (_request, response) => {
    response.writeHead(status, { 'content-type': 'application/json', ...headers });
    response.end(typeof body === 'string' ? body : JSON.stringify(body));
  };
}

/** A handler answering each request with the next of `handlers` (the last one repeats). */
export function inTurn(...handlers: Handler[]): Handler {
  let next = 0;
  return (request, response) => {
    const handler = handlers[Math.min(next++, handlers.length - 1)] as Handler;
    handler(request, response);
  };
}

/** A handler that never answers (the stub's close() cuts the connection). */
export const never: Handler = () => {};

/** The UpstreamError a promise rejects with (fails the test if it resolves or rejects otherwise). */
export async function upstreamError(promise: Promise<unknown>): Promise<UpstreamError> {
  const error = await promise.then(
    () => new Error('resolved, expected an UpstreamError'),
    (e: unknown) => e,
  );
  if (!(error instanceof UpstreamError)) throw error;
  return error;
}
