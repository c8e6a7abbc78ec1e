import type { ApolloServer } from '@apollo/server';
import type { EventBus } from '@bff/events';
import type { Registry, SpanExporter } from '@bff/observability';
import type { PersistedManifest } from '@bff/persisted-operations';
import type { RateLimitStats } from '@bff/rate-limit';
import type { UpstreamGuard, UpstreamGuardOptions } from '@bff/resilience';
import type { AppName, AppPolicy, BffContext } from '@bff/resolvers';
import type { ResponseCacheStats } from '@bff/response-cache';
import type { UpstreamCall } from '@bff/upstream-clients';
import type { FastifyInstance } from 'fastify';
import type { ConnectionTimeouts, TrustProxy } from './config.ts';
import type { AppResolvers } from './schema.ts';

export interface BffServerOptions {
  app: AppName;
  /** Folder of the app's own `.graphql` files. */
  schemaDir: string;
  resolvers: AppResolvers;
  policy: AppPolicy;
  port: number;
  /** @default '127.0.0.1' */
  host?: string;
  identityUrl: string;
  billingUrl: string;
  /** Product's gRPC target: `host:port`, or `dns:///…`, `ipv4:…`, `ipv6:…` naming every replica (PRODUCT_TARGET_FORMS). */
  productAddr: string;
  /** @default `${identityUrl}/.well-known/jwks.json` */
  jwksUrl?: string | undefined;
  /** Required `iss` of access tokens. @default 'urn:bff:identity' */
  tokenIssuer?: string;
  /** Longest any upstream call may take, in ms. @default 2000 */
  upstreamTimeoutMs?: number;
  /** Production: introspection off, no stack traces, unexpected errors masked. */
  production: boolean;
  /** Serve GraphiQL at /graphiql. */
  graphiql: boolean;
  /** pino level, or false. @default 'info' */
  logLevel?: string | false;
  /** 'pretty' for a person at a terminal (`LOG_FORMAT`). @default 'json' */
  logFormat?: 'json' | 'pretty' | undefined;
  /** Where log lines go. @default standard output */
  logDestination?: { write(line: string): void } | undefined;
  /** Told about every upstream call (metrics; tests count calls with it). */
  onUpstreamCall?: (call: UpstreamCall) => void;
  /** Token verification tuning. */
  auth?: {
    /** Least time between JWKS refetches caused by unknown `kid`s, in ms. @default 30000 */
    jwksCooldownMs?: number;
    /**
     * 'verify' (default): check every token against the JWKS. 'gateway': a gateway in front has
     * verified it; read the claims only. Only for a BFF reachable solely through that gateway.
     */
    mode?: 'verify' | 'gateway';
    /** How long fetched keys are trusted, in ms. @default 600000 */
    jwksCacheMaxAgeMs?: number;
    /** Leeway for `exp`/`nbf`, in seconds. @default 5 */
    clockToleranceSeconds?: number;
  };
  /**
   * Offer the cookie session (`login`/`logout` mutations keep the token in an HttpOnly cookie,
   * `@bff/auth`'s SESSION_COOKIE). @default false
   */
  sessionCookie?: boolean;
  /** Throttling. In memory (one replica) unless `redisUrl` is given. */
  rateLimit?: {
    /** Off only where a gateway in front throttles instead. @default true */
    enabled?: boolean;
    /** Shared Redis, so limits hold across replicas. */
    redisUrl?: string | undefined;
    /** Applied to every root field without its own `@rateLimit`. @default { max: 600, window: '1m' } */
    defaults?: { max: number; window: string };
    /** What a failing or slow Redis means. @default 'open' */
    onStoreFailure?: 'open' | 'closed';
    /** Longest one Redis check may take, in ms. @default 150 */
    storeTimeoutMs?: number;
    /** Distinguishes deployments sharing one Redis. @default 'bff' */
    keyPrefix?: string;
  };
  /**
   * Whose X-Forwarded-For gives the client address (and so the signed-out rate-limit bucket):
   * false, a hop count (1: one ingress in front), or the proxies' addresses/CIDRs (a list or
   * comma-separated). `true` believes every hop, letting any client choose its address.
   * Checked at start (TypeError naming the value). @default false: X-Forwarded-For is ignored
   */
  trustProxy?: TrustProxy | undefined;
  /**
   * Serve HTTPS with these PEM files (`TLS_CERT_FILE`, `TLS_KEY_FILE`), for deployments without
   * an ingress. Read at start (an unreadable file or a mismatched pair fails it); a renewed pair
   * is picked up for new connections without a restart. None: plain HTTP.
   */
  tls?: { certFile: string; keyFile: string } | undefined;
  /** Deadlines for slow clients (headers 10 s, request 30 s, keep-alive 72 s). */
  connectionTimeouts?: ConnectionTimeouts | undefined;
  /**
   * The app's trusted documents. They are served by hash; with `enforce` (production mobile)
   * they are the only operations that run, and the cost limit does not apply to them.
   * Without a manifest, automatic persisted queries are offered instead (web).
   */
  persistedOperations?: { manifest: PersistedManifest; enforce: boolean } | undefined;
  /** Refuse app versions below `minimum` (sent in the `x-app-version` header) with UPGRADE_REQUIRED. */
  appVersion?: { minimum: string; storeUrl: string } | undefined;
  /** Browser origins allowed to call this app (CORS). None: no CORS headers at all. */
  corsOrigins?: readonly string[] | undefined;
  /** Retries and circuit breaking per upstream (see UpstreamGuardOptions). */
  resilience?: Omit<UpstreamGuardOptions, 'service' | 'callTimeoutMs'> | undefined;
  /** How long close() lets in-flight requests finish before cutting them, in ms. @default 10000 */
  shutdownGraceMs?: number | undefined;
  /** Metrics, traces and the request log. */
  observability?: BffObservabilityOptions | undefined;
  /** Whole-response caching by the schema's `@cacheControl` hints (on by default, in memory). */
  responseCache?: BffResponseCacheOptions | undefined;
  /**
   * The services' domain events, which invalidate cached responses and feed subscriptions: a bus
   * the caller owns (the one-process start passes its in-process bus), or RabbitMQ at `amqpUrl`
   * (`AMQP_URL`) on a connection of the BFF's own. Neither: cached entries live until their max
   * age, and subscriptions are not offered.
   */
  events?: EventBus | undefined;
  amqpUrl?: string | undefined;
  /** GraphQL subscriptions over WebSocket on the GraphQL path (on whenever there are events). */
  subscriptions?: BffSubscriptionOptions | undefined;
  /** 'jit' compiles each operation once with graphql-jit (falling back to graphql-js per document). @default 'jit' */
  executor?: 'jit' | 'graphql-js';
  /**
   * Documents Apollo has already validated are answered without its request pipeline, with the
   * same plugins, executor and answers (`fast-route.ts`); false sends every request through Apollo.
   * @default true
   */
  fastRoute?: boolean;
}

export interface BffResponseCacheOptions {
  /** @default true */
  enabled?: boolean | undefined;
  /** Redis shared by every replica (`REDIS_URL`); this process's memory when unset. */
  redisUrl?: string | undefined;
  /** Bytes the in-memory store holds at most, least recently used dropped first. @default 64 MiB */
  maxBytes?: number | undefined;
  /** Longest one Redis call may take before it counts as a miss or a skip, in ms. @default 150 */
  storeTimeoutMs?: number | undefined;
  /** Distinguishes deployments sharing one Redis. @default 'bff' */
  keyPrefix?: string | undefined;
  /**
   * How long concurrent identical public requests wait for the one executing, in ms; 0: each
   * executes. @default 3000
   */
  coalesceWaitMs?: number | undefined;
}

export interface BffSubscriptionOptions {
  /** @default true (when there are events: see `events`) */
  enabled?: boolean | undefined;
  /** Subscriptions one connection may hold. @default 25 */
  maxPerConnection?: number | undefined;
  /** Connections one viewer may hold on this replica. @default 10 */
  maxConnectionsPerViewer?: number | undefined;
  /** Connections this replica holds at most (signed out included). @default 10000 */
  maxConnections?: number | undefined;
  /**
   * How often each socket is pinged, in ms; one that has not answered by the next ping is cut.
   * Below every idle timeout between the client and here (Kong's 60 s). @default 20000
   */
  keepAliveMs?: number | undefined;
  /** Events waiting for one subscription before it ends with SUBSCRIPTION_ENDED (`overflow`). @default 32 */
  maxQueuedEvents?: number | undefined;
  /** Bytes sent but not yet read by the client before its socket is closed (4413). @default 1 MiB */
  maxBufferedBytes?: number | undefined;
  /** How long a socket may take to send `connection_init`, in ms. @default 5000 */
  connectionInitWaitMs?: number | undefined;
}

export interface BffObservabilityOptions {
  /** Port of the Prometheus listener (`METRICS_PORT`), never the public one. None: no listener. */
  metricsPort?: number | undefined;
  /** @default '0.0.0.0' */
  metricsHost?: string | undefined;
  /**
   * Operation names that may be a metric label besides the persisted documents' (web's known
   * operations); any other name is counted as `other`, so clients cannot grow the series.
   */
  operationNames?: readonly string[] | undefined;
  tracing?: {
    /** OTLP/HTTP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`); no spans are exported without it. */
    endpoint?: string | undefined;
    /** Share of new traces recorded (`OTEL_TRACES_SAMPLER_ARG`). @default 1 */
    sampleRatio?: number | undefined;
    /**
     * Continue a client's W3C `traceparent` (`TRUST_TRACE_HEADERS`): only where the caller is
     * trusted (an ingress or gateway that sets it), else any client steers sampling. @default false
     */
    trustTraceHeaders?: boolean | undefined;
    /** Where spans go instead of OTLP (tests). */
    exporter?: SpanExporter | undefined;
  };
}

export interface RunningBff {
  url: string;
  app: FastifyInstance;
  apollo: ApolloServer<BffContext>;
  /** Rate-limit counters: store failures, calls let through failing open, calls refused. */
  rateLimitStats: RateLimitStats;
  /** Response cache counters (hits, misses, stores, invalidations, failures, stale); undefined when off. */
  responseCacheStats: (() => ResponseCacheStats) | undefined;
  /** Open WebSocket connections, active subscriptions and events delivered; undefined when not offered. */
  subscriptionStats: (() => { connections: number; subscriptions: number; delivered: number }) | undefined;
  /** Requests the fast route answered, and the documents it knows; undefined when it is off. */
  fastRouteStats: (() => { served: number; knownDocuments: number }) | undefined;
  /** The upstream guards: breaker state and retry counters per service. */
  guards: Record<'identity' | 'billing' | 'product', UpstreamGuard>;
  /** This app's metrics registry (also served on `metricsUrl` when a metrics port is set). */
  metrics: Registry;
  /** `http://host:port` of the metrics listener; `${metricsUrl}/metrics` is the scrape target. */
  metricsUrl: string | undefined;
  /** Stops accepting requests, lets in-flight ones finish, then closes upstream pools. */
  close(): Promise<void>;
}
