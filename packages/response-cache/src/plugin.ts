import type {
  ApolloServerPlugin,
  BaseContext,
  GraphQLRequestContext,
  GraphQLRequestContextResponseForOperation,
  GraphQLRequestContextWillSendResponse,
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
  const vary = (scopeVary: readonly string[]) => [...scopeVary, ...(options.vary ?? [])].join(', ');
  const shared: Shared<TContext> = {
    options,
    store: options.store,
    now: options.now ?? Date.now,
    clockSkewMs,
    coalesceWaitMs,
    publicVary: vary(PUBLIC_VARY),
    privateVary: vary(PRIVATE_VARY),
    inFlight: new Map(),
    abandon: new WeakMap(),
  };
  return {
    async unexpectedErrorProcessingRequest({ requestContext }) {
      shared.abandon.get(requestContext)?.release();
    },
    async requestDidStart(startedContext) {
      return new CachedRequest(shared, startedContext);
    },
  };
}

/** What every request of one plugin shares. */
interface Shared<TContext extends BaseContext> {
  readonly options: ResponseCachePluginOptions<TContext>;
  readonly store: ResponseCacheStore;
  readonly now: () => number;
  readonly clockSkewMs: number;
  readonly coalesceWaitMs: number;
  readonly publicVary: string;
  readonly privateVary: string;
  /** Executions under way for PUBLIC keys: whether they stored their answer. */
  readonly inFlight: Map<string, Promise<boolean>>;
  /** Requests leading a PUBLIC key: released if they end without willSendResponse (an unexpected error). */
  readonly abandon: WeakMap<object, CachedRequest<TContext>>;
}

/**
 * One request's part in the cache, as Apollo's request listener: a class, so that a request
 * costs one object rather than a closure per hook.
 */
class CachedRequest<TContext extends BaseContext> {
  private readonly started: number;
  private readonly context: TContext;
  private policy: CachePolicy | undefined;
  private key: string | undefined;
  private outcome: CacheOutcome = 'none';
  private served: CachedResponse | undefined;
  /** Settles the promise followers of this PUBLIC key wait on; undefined once settled. */
  private settle: ((stored: boolean) => void) | undefined;
  /** The body's write was handed to the HTTP layer, which finishes the request when it is done. */
  private handed = false;

  constructor(
    private readonly shared: Shared<TContext>,
    private readonly startedContext: GraphQLRequestContext<TContext>,
  ) {
    this.started = shared.now();
    this.context = startedContext.contextValue;
  }

  async responseForOperation(
    requestContext: GraphQLRequestContextResponseForOperation<TContext>,
  ): Promise<GraphQLResponse | null> {
    const { options, coalesceWaitMs, inFlight } = this.shared;
    const { operation, request } = requestContext;
    if (operation.operation !== 'query') return null;
    const policy = cachePolicyOf(
      requestContext.schema,
      requestContext.document,
      requestContext.operationName,
    );
    this.policy = policy;
    if (policy.maxAge <= 0 || !requestContext.queryHash) return null;
    const key = responseCacheKey({
      app: options.app,
      operationHash: requestContext.queryHash,
      operationName: requestContext.operationName,
      variables: request.variables,
      locale: options.localeOf(this.context),
      appVersion: options.appVersionOf?.(request),
      viewerId: policy.scope === 'PRIVATE' ? options.viewerKeyOf(this.context) : undefined,
      scope: policy.scope,
    });
    this.key = key;
    if (!key) return null;
    const found = parse(await this.get(key), this.shared.now());
    if (found) return this.serve(requestContext, found, 'hit');
    if (policy.scope === 'PUBLIC' && coalesceWaitMs > 0) {
      const leader = inFlight.get(key);
      if (leader) {
        // Served from the store, not from the leader's hands: what the leader stored may have
        // been invalidated since (a write that finished before this request started), in
        // which case it is gone from the store and this request executes.
        if (await withinMs(leader, coalesceWaitMs)) {
          const shared = parse(await this.get(key), this.shared.now());
          if (shared) return this.serve(requestContext, shared, 'coalesced');
        }
      } else {
        inFlight.set(
          key,
          new Promise<boolean>((resolve) => {
            this.settle = (stored) => {
              inFlight.delete(key);
              resolve(stored);
            };
          }),
        );
        this.shared.abandon.set(this.startedContext, this);
      }
    }
    this.outcome = 'miss';
    return null;
  }

  async willSendResponse({
    response,
    operation,
    errors,
    requestIsBatched,
  }: GraphQLRequestContextWillSendResponse<TContext>): Promise<void> {
    const { options, now } = this.shared;
    const headers = response.http.headers;
    try {
      if (operation?.operation === 'mutation') {
        const written = [...options.writtenTagsOf(this.context)];
        if (written.length > 0) {
          // Before the answer leaves: the client's next read must not find the old entry.
          const dropped = await this.invalidate(written);
          if (dropped === undefined) {
            this.outcome = 'skip';
          } else {
            options.onInvalidated?.(dropped);
            this.outcome = 'invalidate';
          }
        }
        headers.set('cache-control', 'no-store');
        return;
      }
      const { policy, key, served } = this;
      const result = response.body.kind === 'single' ? response.body.singleResult : undefined;
      const clean = result && !errors?.length && !result.errors?.length && result.data;
      if (!policy || policy.maxAge <= 0 || !key || !clean) {
        if (this.outcome === 'miss') this.outcome = 'skip';
        headers.set('cache-control', 'no-store');
        return;
      }
      if (policy.scope === 'PRIVATE') {
        headers.set('cache-control', 'private, no-store');
        headers.set('vary', this.shared.privateVary);
      } else {
        const age = served ? ageOf(served, now()) : 0;
        const remaining = Math.max(0, (served?.maxAge ?? policy.maxAge) - age);
        headers.set('cache-control', remaining > 0 ? `public, max-age=${remaining}` : 'no-cache');
        headers.set('vary', this.shared.publicVary);
      }
      if (this.outcome !== 'miss') return;
      if (!requestIsBatched && options.deferStore) {
        let called = false;
        this.handed = options.deferStore(this.context, async (body) => {
          if (called) return;
          called = true;
          try {
            await this.write(key, policy.maxAge, body);
          } finally {
            this.finish();
          }
        });
        if (this.handed) return;
      }
      await this.write(key, policy.maxAge, JSON.stringify({ data: result.data }));
    } finally {
      // The operations of a batched request share one set of HTTP headers: one private or
      // uncacheable answer among them must not go out under another's public header.
      if (requestIsBatched) {
        headers.set('cache-control', 'no-store');
        headers.delete('age');
      }
      if (!this.handed) this.finish();
    }
  }

  /** Whoever waits for this execution stops waiting, and the outcome is reported: once. */
  private finish(): void {
    this.release();
    this.shared.options.onOutcome?.(this.outcome, this.context);
  }

  /** Stops this request's followers waiting (it stored nothing). */
  release(): void {
    this.settle?.(false);
    this.settle = undefined;
  }

  private async write(key: string, maxAge: number, body: string | undefined): Promise<void> {
    if (body === undefined) {
      this.outcome = 'skip';
      return;
    }
    const { store, now, clockSkewMs } = this.shared;
    let stored: SetOutcome;
    try {
      stored = await store.set(
        key,
        entryOf(now(), maxAge, body),
        maxAge,
        arrayOf(this.shared.options.readTagsOf(this.context)),
        {
          unchangedSince: this.started - clockSkewMs,
        },
      );
    } catch {
      // A store should not reject (see ResponseCacheStore); one that does costs the cache, never the answer.
      stored = 'skipped';
    }
    if (stored === 'stored') {
      this.settle?.(true);
      this.settle = undefined;
    } else {
      this.outcome = stored === 'stale' ? 'stale' : 'skip';
    }
  }

  private async serve(
    requestContext: GraphQLRequestContextResponseForOperation<TContext>,
    cached: CachedResponse,
    as: CacheOutcome,
  ): Promise<GraphQLResponse> {
    const refusals = (await this.shared.options.admit?.(requestContext)) ?? [];
    if (refusals.length > 0) {
      return {
        http: { headers: new HeaderMap() },
        body: {
          kind: 'single',
          singleResult: { data: null, errors: refusals.map((error) => error.toJSON()) },
        },
      };
    }
    this.outcome = as;
    this.served = cached;
    // Cache-Control and Vary are set in willSendResponse, where every answer gets its headers.
    const headers = new HeaderMap();
    headers.set('age', String(ageOf(cached, this.shared.now())));
    return { http: { headers }, body: { kind: 'single', singleResult: { data: cached.data } } };
  }

  private async get(key: string): Promise<string | undefined> {
    try {
      return await this.shared.store.get(key);
    } catch {
      return undefined;
    }
  }

  /** Entries dropped, or undefined when the store failed. */
  private async invalidate(tags: readonly string[]): Promise<number | undefined> {
    try {
      return await this.shared.store.invalidate(tags);
    } catch {
      return undefined;
    }
  }
}

/** The tags as an array, without copying one that already is. */
function arrayOf(tags: Iterable<string>): readonly string[] {
  return Array.isArray(tags) ? (tags as readonly string[]) : [...tags];
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
