// A graphql-ws client for subscription suites, as test/apps/subscriptions.test.ts uses it: no
// retries (a refusal shows as the close it was), and a collector that records what arrives and when.
import { type Client, createClient, type ExecutionResult } from 'graphql-ws';
import WebSocket from 'ws';
import type { TestApp } from './system.ts';

/** The app's WebSocket endpoint (the same path as HTTP). */
export const wsUrl = (app: Pick<TestApp, 'url'>): string => `${app.url.replace(/^http/, 'ws')}/graphql`;

/** A lazy graphql-ws client that does not retry, and the closes it saw. */
export function subscriptionClient(
  app: Pick<TestApp, 'url'>,
  connectionParams: Record<string, unknown> = {},
  /** Headers of the upgrade request (`origin`, `x-app-version`, `cookie`). */
  headers: Record<string, string> = {},
): { client: Client; closes: { code: number; reason: string }[] } {
  const closes: { code: number; reason: string }[] = [];
  const client = createClient({
    url: wsUrl(app),
    webSocketImpl: class extends WebSocket {
      constructor(url: string, protocols: string | string[]) {
        super(url, protocols, { headers });
      }
    },
    connectionParams,
    retryAttempts: 0,
    lazy: true,
    on: {
      closed: (event) => {
        const { code, reason } = event as { code: number; reason: Buffer | string };
        closes.push({ code, reason: String(reason) });
      },
    },
  });
  return { client, closes };
}

/** One subscription's results (with `performance.now()` at receipt), errors and completion. */
export interface Collected {
  results: ExecutionResult[];
  receivedAt: number[];
  errors: unknown[];
  readonly completed: boolean;
  /** Completes the subscription from the client's side. */
  stop(): void;
}

/** Subscribes; collects what arrives until `stop` is called or the server ends it. */
export function collect(target: Client, query: string, variables: Record<string, unknown> = {}): Collected {
  const results: ExecutionResult[] = [];
  const receivedAt: number[] = [];
  const errors: unknown[] = [];
  let completed = false;
  const stop = target.subscribe(
    { query, variables },
    {
      next: (result) => {
        receivedAt.push(performance.now());
        results.push(result as ExecutionResult);
      },
      error: (error) => errors.push(error),
      complete: () => {
        completed = true;
      },
    },
  );
  return {
    results,
    receivedAt,
    errors,
    stop,
    get completed() {
      return completed;
    },
  };
}
