import type {
  ApolloServerPlugin,
  BaseContext,
  GraphQLRequestContext,
  GraphQLRequestContextResponseForOperation,
  GraphQLResponse,
} from '@apollo/server';
import { HeaderMap } from '@apollo/server';
import type { GraphQLError } from 'graphql';
import { type CachePolicy, cachePolicyOf } from './cache-policy.ts';
import { responseCacheKey } from './key.ts';
import type { ResponseCacheStore, SetOutcome } from './store.ts';

/**
 * What the cache did for one request, for its log line and metrics:
 * - `hit`: answered from the store; `coalesced`: answered with a concurrent identical request's
 *   fresh result; `miss`: executed and stored; `stale`: executed, not stored because something
 *   it read changed while it ran; `skip`: executed, not stored (errors in the answer, or the
 *   store failed); `none`: not cacheable (a mutation, `maxAge` 0, private without a viewer);
 *   `invalidate`: a mutation that dropped what it changed.
 */
export type CacheOutcome = 'hit' | 'coalesced' | 'miss' | 'stale' | 'skip' | 'none' | 'invalidate';

export interface ResponseCachePluginOptions<TContext extends BaseContext> {
  store: ResponseCacheStore;
  /** Part of every key: apps with different schemas never share entries. */
  app: string;
  /**
   * Who a PRIVATE response is for: the viewer's id and anything else the answer depends on
   * (roles); undefined when nobody is signed in (the response is then not cached).
   */
  viewerKeyOf(context: TContext): string | undefined;
  /** The locale the response is rendered in. */
  localeOf(context: TContext): string;
  /** The client's version, where answers may differ by version (mobile). */
  appVersionOf?: ((request: GraphQLRequestContext<TContext>['request']) => string | undefined) | undefined;
  /** The entity tags of what the request read (its loaders record them). */
  readTagsOf(context: TContext): Iterable<string>;
  /** The entity tags of what a mutation changed: dropped before its answer is sent. */
  writtenTagsOf(context: TContext): Iterable<string>;
  /**
   * Run before a cached answer is served (a hit, or a coalesced one): what executing would have
   * enforced and cannot be skipped, such as spending rate limits. Refusals are answered instead of
   * the cached data (`data: null`, the errors as given); an empty list lets it be served.
   */
  admit?:
    | ((
        requestContext: GraphQLRequestContextResponseForOperation<TContext>,
      ) => Promise<readonly GraphQLError[]>)
    | undefined;
  /**
   * Lets the HTTP layer store a fresh answer from the body it sends, so that the answer is
   * serialised once, not twice. Called in `willSendResponse` for an answer to be stored; return
   * true to take it, and then call `store` exactly once, with the response body exactly as sent
   * (the JSON of this one GraphQL response), or with undefined if none was sent. Whoever waits
   * for this execution (coalesced requests) and `onOutcome` wait for that call. Return false, or
   * leave this out, and the plugin serialises the data itself.
   */
  deferStore?(context: TContext, store: (body: string | undefined) => Promise<void>): boolean;
  /** Called once per request with what the cache did. */
  onOutcome?(outcome: CacheOutcome, context: TContext): void;
  /** Told the number of entries a mutation dropped. */
  onInvalidated?(entries: number): void;
  /**
   * How far apart the replicas' clocks may be, in ms: a write is refused if one of its tags was
   * invalidated (by any replica) up to this long before its request started. @default 500
   */
  clockSkewMs?: number;
  /**
   * Concurrent identical PUBLIC requests that miss share one execution; the others wait for it
   * at most this long, then execute on their own. 0 turns coalescing off. @default 3000
   */
  coalesceWaitMs?: number;
  /** Headers the answers vary on besides the ones the key implies. @default [] */
  vary?: readonly string[];
  /** The clock, ms since the epoch (tests). @default Date.now */
  now?: () => number;
}

/** A stored response, read back: the data and when and for how long it was stored. */
interface CachedResponse {
  data: Record<string, unknown>;
  /** Stored at, ms since the epoch. */
  at: number;
  /** maxAge in seconds. */
  maxAge: number;
}

/**
 * What the store holds per response: `<at>:<maxAge>:<body>`, the time it was stored (ms since
 * the epoch), its max age (s) and the GraphQL response's JSON as it was sent (`{"data":…}`, and
 * any `extensions`), so the body the HTTP layer already serialised is stored as it is.
 */
const entryOf = (at: number, maxAge: number, body: string) => `${at}:${maxAge}:${body}`;

const PRIVATE_VARY = ['authorization', 'cookie', 'accept-language'];
const PUBLIC_VARY = ['accept-language'];

/**
 * Whole-response caching as an Apollo Server plugin, on the static cache policy
 * (`cachePolicyOf`): runs after every plugin's `didResolveOperation` (authentication,
 * authorization, limits, trusted documents: all of them apply to a hit), looks the response up
 * in `responseForOperation`, and stores it in `willSendResponse` tagged with the entities its
 * resolvers read. A mutation drops the tags it wrote before its answer leaves, so its client
 * never reads its own write stale. Answers carry `Cache-Control` (public with the remaining
 * max age, `private, no-store`, or `no-store`), `Vary`, and `Age` on a hit.
 *
 * Never cached: responses with any error, mutations, subscriptions, introspection, `maxAge` 0,
 * PRIVATE ones without a viewer. A store that fails is a miss (see the stores).
 */
export function createResponseCachePlugin<TContext extends BaseContext>(
  options: ResponseCachePluginOptions<TContext>,
): ApolloServerPlugin<TContext> {
  const clockSkewMs = options.clockSkewMs ?? 500;
  const coalesceWaitMs = options.coalesceWaitMs ?? 3_000;
  for (const [name, value] of [
    ['clockSkewMs', clockSkewMs],
    ['coalesceWaitMs', coalesceWaitMs],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < 0 || value > 60_000)
      throw new TypeError(
        `createResponseCachePlugin: ${name} must be a whole number of ms from 0 to 60000, received ${String(value)}`,
      );
  }
  if (typeof options.app !== 'string' || options.app.length === 0)
    throw new TypeError(
      `createResponseCachePlugin: app must be a non-empty string, received ${JSON.stringify(options.app)}`,
    );
  const now = options.now ?? Date.now;
  const { store } = options;
  const vary = (scopeVary: readonly string[]) => [...scopeVary, ...(options.vary ?? [])].join(', ');
  const publicVary = vary(PUBLIC_VARY);
  const privateVary = vary(PRIVATE_VARY);
  /** Executions under way for PUBLIC keys: whether they stored their answer. */
  const inFlight = new Map<string, Promise<boolean>>();
  /** Per request that leads a PUBLIC key: stops its followers waiting if it ends without willSendResponse (an unexpected error). */
  const abandon = new WeakMap<object, () => void>();

  // A store should not reject (see ResponseCacheStore); one that does costs the cache, never the answer.
  const get = async (key: string): Promise<string | undefined> => {
    try {
      return await store.get(key);
    } catch {
      return undefined;
    }
  };
  const set = async (...args: Parameters<ResponseCacheStore['set']>): Promise<SetOutcome> => {
    try {
      return await store.set(...args);
    } catch {
      return 'skipped';
    }
  };
  /** Entries dropped, or undefined when the store failed. */
  const invalidate = async (tags: readonly string[]): Promise<number | undefined> => {
    try {
      return await store.invalidate(tags);
    } catch {
      return undefined;
    }
  };

  // Cache-Control and Vary are set in willSendResponse, where every answer gets its headers.
  const answer = (cached: CachedResponse): GraphQLResponse => {
    const headers = new HeaderMap();
    headers.set('age', String(ageOf(cached, now())));
    return {
      http: { headers },
      body: { kind: 'single', singleResult: { data: cached.data } },
    };
  };
  const refuse = (errors: readonly GraphQLError[]): GraphQLResponse => ({
    http: { headers: new HeaderMap() },
    body: { kind: 'single', singleResult: { data: null, errors: errors.map((error) => error.toJSON()) } },
  });

  return {
    async unexpectedErrorProcessingRequest({ requestContext }) {
      abandon.get(requestContext)?.();
    },

    async requestDidStart(startedContext) {
      const { contextValue } = startedContext;
      const started = now();
      let policy: CachePolicy | undefined;
      let key: string | undefined;
      let outcome: CacheOutcome = 'none';
      let served: CachedResponse | undefined;
      let settle: ((stored: boolean) => void) | undefined;
      /** Whoever waits for this execution stops waiting, and the outcome is reported: once. */
      const finish = () => {
        settle?.(false);
        settle = undefined;
        options.onOutcome?.(outcome, contextValue);
      };

      return {
        async responseForOperation(requestContext) {
          const { operation, document, schema, request } = requestContext;
          if (operation.operation !== 'query') return null;
          policy = cachePolicyOf(schema, document, requestContext.operationName);
          if (policy.maxAge <= 0 || !requestContext.queryHash) return null;
          const viewerId = policy.scope === 'PRIVATE' ? options.viewerKeyOf(contextValue) : undefined;
          key = responseCacheKey({
            app: options.app,
            operationHash: requestContext.queryHash,
            operationName: requestContext.operationName,
            variables: request.variables,
            locale: options.localeOf(contextValue),
            appVersion: options.appVersionOf?.(request),
            viewerId,
            scope: policy.scope,
          });
          if (!key) return null;
          const serve = async (cached: CachedResponse, as: CacheOutcome) => {
            const refusals = (await options.admit?.(requestContext)) ?? [];
            if (refusals.length > 0) return refuse(refusals);
            outcome = as;
            served = cached;
            return answer(cached);
          };
          const found = parse(await get(key), now());
          if (found) return serve(found, 'hit');
          if (policy.scope === 'PUBLIC' && coalesceWaitMs > 0) {
            const leader = inFlight.get(key);
            if (leader) {
              // Served from the store, not from the leader's hands: what the leader stored may have
              // been invalidated since (a write that finished before this request started), in
              // which case it is gone from the store and this request executes.
              if (await withinMs(leader, coalesceWaitMs)) {
                const shared = parse(await get(key), now());
                if (shared) return serve(shared, 'coalesced');
              }
            } else {
              const ownKey = key;
              const result = new Promise<boolean>((resolve) => {
                settle = (stored) => {
                  inFlight.delete(ownKey);
                  resolve(stored);
                };
              });
              inFlight.set(key, result);
              abandon.set(startedContext, () => {
                settle?.(false);
                settle = undefined;
              });
            }
          }
          outcome = 'miss';
          return null;
        },

        async willSendResponse({ response, operation, errors, requestIsBatched }) {
          const headers = response.http.headers;
          /** True once the HTTP layer has taken the write: it finishes the request then. */
          let deferred = false;
          try {
            if (operation?.operation === 'mutation') {
              const written = [...options.writtenTagsOf(contextValue)];
              if (written.length > 0) {
                // Before the answer leaves: the client's next read must not find the old entry.
                const dropped = await invalidate(written);
                if (dropped === undefined) {
                  outcome = 'skip';
                } else {
                  options.onInvalidated?.(dropped);
                  outcome = 'invalidate';
                }
              }
              headers.set('cache-control', 'no-store');
              return;
            }
            const result = response.body.kind === 'single' ? response.body.singleResult : undefined;
            const clean = result && !errors?.length && !result.errors?.length && result.data;
            if (!policy || policy.maxAge <= 0 || !key || !clean) {
              if (outcome === 'miss') outcome = 'skip';
              headers.set('cache-control', 'no-store');
              return;
            }
            if (policy.scope === 'PRIVATE') {
              headers.set('cache-control', 'private, no-store');
              headers.set('vary', privateVary);
            } else {
              const age = served ? ageOf(served, now()) : 0;
              const remaining = Math.max(0, (served?.maxAge ?? policy.maxAge) - age);
              headers.set('cache-control', remaining > 0 ? `public, max-age=${remaining}` : 'no-cache');
              headers.set('vary', publicVary);
            }
            if (outcome !== 'miss') return;
            const ownKey = key;
            const maxAge = policy.maxAge;
            const tags = [...options.readTagsOf(contextValue)];
            const write = async (body: string | undefined) => {
              if (body === undefined) {
                outcome = 'skip';
                return;
              }
              const stored = await set(ownKey, entryOf(now(), maxAge, body), maxAge, tags, {
                unchangedSince: started - clockSkewMs,
              });
              if (stored === 'stored') settle?.(true);
              else outcome = stored === 'stale' ? 'stale' : 'skip';
            };
            if (!requestIsBatched && options.deferStore) {
              let called = false;
              deferred = options.deferStore(contextValue, async (body) => {
                if (called) return;
                called = true;
                try {
                  await write(body);
                } finally {
                  finish();
                }
              });
              if (deferred) return;
            }
            await write(JSON.stringify({ data: result.data }));
          } finally {
            // The operations of a batched request share one set of HTTP headers: one private or
            // uncacheable answer among them must not go out under another's public header.
            if (requestIsBatched) {
              headers.set('cache-control', 'no-store');
              headers.delete('age');
            }
            if (!deferred) finish();
          }
        },
      };
    },
  };
}

/** Whole seconds since the entry was stored. */
function ageOf(cached: CachedResponse, now: number): number {
  return Math.max(0, Math.floor((now - cached.at) / 1000));
}

/** A stored entry (see `entryOf`), or undefined if it is absent, malformed or past its max age. */
function parse(text: string | undefined, now: number): CachedResponse | undefined {
  if (typeof text !== 'string') return undefined;
  const first = text.indexOf(':');
  const second = first < 0 ? -1 : text.indexOf(':', first + 1);
  if (second < 0) return undefined;
  const at = Number(text.slice(0, first));
  const maxAge = Number(text.slice(first + 1, second));
  if (!Number.isFinite(at) || !Number.isFinite(maxAge) || now >= at + maxAge * 1000) return undefined;
  try {
    const data = (JSON.parse(text.slice(second + 1)) as { data?: unknown } | null)?.data;
    if (typeof data !== 'object' || data === null || Array.isArray(data)) return undefined;
    return { data: data as Record<string, unknown>, at, maxAge };
  } catch {
    return undefined;
  }
}

function withinMs(promise: Promise<boolean>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      () => {
        clearTimeout(timer);
        resolve(false);
      },
    );
  });
}
