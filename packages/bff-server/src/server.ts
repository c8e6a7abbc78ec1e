import { randomUUID } from 'node:crypto';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { unwrapResolverError } from '@apollo/server/errors';
import {
  ApolloServerPluginCacheControlDisabled,
  ApolloServerPluginLandingPageDisabled,
} from '@apollo/server/plugin/disabled';
import { fastifyApolloDrainPlugin, fastifyApolloHandler } from '@as-integrations/fastify';
import {
  applyAuthDirectives,
  createAuthPlugin,
  createGatewayClaimsReader,
  createJwtVerifier,
} from '@bff/auth';
import { createCommands, createLoaders, type Upstreams } from '@bff/loaders';
import {
  createCostPlugin,
  formatLimitError,
  limitValidationRules,
  validateLimits,
} from '@bff/operation-limits';
import { manifestCache, type PersistedManifest } from '@bff/persisted-operations';
import {
  createRateLimiting,
  MemoryRateLimitStore,
  type RateLimitStats,
  type RateLimitStore,
  RedisRateLimitStore,
} from '@bff/rate-limit';
import { UpstreamGuard, type UpstreamGuardOptions } from '@bff/resilience';
import {
  type AppName,
  type AppPolicy,
  type BffContext,
  BffErrorCode,
  describeUpstreamError,
  negotiateLocale,
} from '@bff/resolvers';
import {
  createBillingClient,
  createIdentityClient,
  createProductClient,
  type UpstreamCall,
} from '@bff/upstream-clients';
import cors from '@fastify/cors';
import { stringifySetCookie } from 'cookie';
import Fastify, { type FastifyInstance } from 'fastify';
import type { GraphQLFormattedError } from 'graphql';
import { registerGraphiql } from './graphiql.ts';
import { jitGateway } from './jit-executor.ts';
import { registerRequestGuards } from './request-guards.ts';
import { type AppResolvers, buildBffSchema } from './schema.ts';

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
  /** Product gRPC `host:port`. */
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
  /** Offer the cookie session (`login`/`logout` mutations keep the token in an HttpOnly cookie). @default false */
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
  /** Trust X-Forwarded-For from these proxies (Fastify's trustProxy) to find the client address. @default false */
  trustProxy?: boolean | string;
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
  /** 'jit' compiles each operation once with graphql-jit (falling back to graphql-js per document). @default 'jit' */
  executor?: 'jit' | 'graphql-js';
}

/** The web app's session cookie. `__Host-` pins it to this origin: Secure, Path=/, no Domain. */
export const SESSION_COOKIE = '__Host-bff_session';

export interface RunningBff {
  url: string;
  app: FastifyInstance;
  apollo: ApolloServer<BffContext>;
  /** Rate-limit counters: store failures, calls let through failing open, calls refused. */
  rateLimitStats: RateLimitStats;
  /** The upstream guards: breaker state and retry counters per service. */
  guards: Record<'identity' | 'billing' | 'product', UpstreamGuard>;
  /** Stops accepting requests, lets in-flight ones finish, then closes upstream pools. */
  close(): Promise<void>;
}

const REQUEST_ID = /^[\w.:-]{1,128}$/;

/** Starts one BFF app. */
export async function startBff(options: BffServerOptions): Promise<RunningBff> {
  const timeoutMs = options.upstreamTimeoutMs ?? 2_000;
  const report = (call: UpstreamCall) => options.onUpstreamCall?.(call);
  // One guard per upstream for the whole process: it holds that service's health (breaker,
  // retry budget), which is about the service, not about any user.
  const guardOptions = options.resilience ?? {};
  const guards = {
    identity: new UpstreamGuard({ service: 'identity', callTimeoutMs: timeoutMs, ...guardOptions }),
    billing: new UpstreamGuard({ service: 'billing', callTimeoutMs: timeoutMs, ...guardOptions }),
    product: new UpstreamGuard({ service: 'product', callTimeoutMs: timeoutMs, ...guardOptions }),
  };
  const upstreams: Upstreams = {
    identity: createIdentityClient({
      baseUrl: options.identityUrl,
      timeoutMs,
      onCall: report,
      guard: guards.identity,
    }),
    billing: createBillingClient({
      baseUrl: options.billingUrl,
      timeoutMs,
      onCall: report,
      guard: guards.billing,
    }),
    product: createProductClient({
      address: options.productAddr,
      timeoutMs,
      onCall: report,
      guard: guards.product,
    }),
  };
  const issuer = options.tokenIssuer ?? 'urn:bff:identity';
  const verifier =
    options.auth?.mode === 'gateway'
      ? createGatewayClaimsReader({ issuer, audience: options.app })
      : createJwtVerifier({
          jwksUrl: options.jwksUrl ?? new URL('/.well-known/jwks.json', options.identityUrl).toString(),
          issuer,
          audience: options.app,
          jwksTimeoutMs: timeoutMs,
          ...(options.auth?.jwksCooldownMs === undefined
            ? {}
            : { jwksCooldownMs: options.auth.jwksCooldownMs }),
          ...(options.auth?.jwksCacheMaxAgeMs === undefined
            ? {}
            : { jwksCacheMaxAgeMs: options.auth.jwksCacheMaxAgeMs }),
          ...(options.auth?.clockToleranceSeconds === undefined
            ? {}
            : { clockToleranceSeconds: options.auth.clockToleranceSeconds }),
        });
  const throttling = options.rateLimit ?? {};
  const store: RateLimitStore = throttling.redisUrl
    ? new RedisRateLimitStore({ url: throttling.redisUrl, timeoutMs: throttling.storeTimeoutMs ?? 150 })
    : new MemoryRateLimitStore();
  if (store instanceof RedisRateLimitStore) await store.ready();

  const limits = validateLimits(options.policy.limits);
  const exposeLimits = !options.production;
  const persisted = options.persistedOperations
    ? manifestCache(options.persistedOperations.manifest)
    : undefined;
  const app = Fastify({
    logger:
      options.logLevel === false
        ? false
        : {
            level: options.logLevel ?? 'info',
            base: { app: options.app },
            redact: ['req.headers.authorization', 'req.headers.cookie'],
            ...(options.logDestination ? { stream: options.logDestination } : {}),
          },
    // Fastify stops reading a body past this and answers 413 without buffering the rest.
    bodyLimit: limits.maxBodyBytes,
    requestTimeout: 30_000,
    return503OnClosing: true,
    genReqId: (request) => {
      const given = request.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
  });
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  // Errors Fastify raises before Apollo sees the request (an oversized or unreadable body, an
  // unsupported content type) are answered in the GraphQL error shape too, with a code.
  app.setErrorHandler((error: { statusCode?: number; code?: string; message: string }, request, reply) => {
    const status =
      error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    const code =
      status === 413
        ? 'PAYLOAD_TOO_LARGE'
        : status === 415
          ? 'UNSUPPORTED_MEDIA_TYPE'
          : status === 500
            ? 'INTERNAL_SERVER_ERROR'
            : 'BAD_REQUEST';
    if (status === 500) request.log.error({ err: error }, 'unhandled error');
    const message =
      status === 413
        ? exposeLimits
          ? `The request body is larger than ${limits.maxBodyBytes} bytes`
          : 'The request body is too large'
        : status === 500
          ? 'Internal server error'
          : status === 415
            ? 'Send operations as application/json'
            : 'The request could not be read';
    return reply
      .code(status)
      .type('application/json; charset=utf-8')
      .send({
        errors: [{ message, extensions: { code, ...(status === 413 ? { limit: 'bodyBytes' } : {}) } }],
      });
  });
  if (options.corsOrigins && options.corsOrigins.length > 0) {
    await app.register(cors, {
      origin: [...options.corsOrigins],
      credentials: true,
      methods: ['GET', 'POST'],
      allowedHeaders: [
        'content-type',
        'authorization',
        'apollo-require-preflight',
        'x-apollo-operation-name',
        'x-request-id',
      ],
      exposedHeaders: [
        'x-request-id',
        'retry-after',
        'ratelimit-limit',
        'ratelimit-remaining',
        'ratelimit-reset',
      ],
      maxAge: 600,
    });
  }
  registerRequestGuards(app, '/graphql', {
    maxDocumentChars: limits.maxDocumentChars,
    exposeLimits,
    trustedOnly:
      options.persistedOperations?.enforce && persisted ? (hash) => persisted.has(hash) : undefined,
    appVersion: options.appVersion ? { header: 'x-app-version', ...options.appVersion } : undefined,
  });

  let lastStoreErrorLog = 0;
  const rateLimiting = createRateLimiting({
    store,
    keyPrefix: `${throttling.keyPrefix ?? 'bff'}:${options.app}`,
    defaults: throttling.defaults ?? { max: 600, window: '1m' },
    onStoreFailure: throttling.onStoreFailure ?? 'open',
    storeTimeoutMs: throttling.storeTimeoutMs ?? 150,
    onStoreError: (err) => {
      // One line per 10 s at most: a Redis outage must not flood the log.
      if (Date.now() - lastStoreErrorLog < 10_000) return;
      lastStoreErrorLog = Date.now();
      app.log.warn(
        { err, failures: rateLimiting.stats.storeFailures },
        `rate limit store failing; policy: fail-${throttling.onStoreFailure ?? 'open'}`,
      );
    },
  });

  const schema = buildBffSchema(
    options.schemaDir,
    options.resolvers,
    throttling.enabled === false
      ? [applyAuthDirectives]
      : [rateLimiting.transformSchema, applyAuthDirectives],
  );
  const apollo = new ApolloServer<BffContext>({
    // Rate limits wrap the resolvers first, then authorization wraps both: an unauthorized
    // call is refused before it counts against anyone's limit.
    ...((options.executor ?? 'jit') === 'jit' ? { gateway: jitGateway(schema) } : { schema }),
    // One log for the process: Apollo's messages go through the same pino logger, with levels.
    logger: app.log,
    // The process owns shutdown (drain, then close pools); Apollo's own signal handlers would
    // stop it early and re-raise the signal.
    stopOnTerminationSignals: false,
    introspection: !options.production,
    includeStacktraceInErrorResponses: !options.production,
    // No "Did you mean …?" in production: suggestions map the schema for anyone who asks.
    hideSchemaDetailsFromClientErrors: options.production,
    csrfPrevention: true,
    allowBatchedHttpRequests: false,
    parseOptions: { maxTokens: limits.maxTokens },
    validationRules: limitValidationRules(limits, { exposeLimits, introspection: !options.production }),
    persistedQueries: persisted ? { cache: persisted } : {},
    plugins: [
      fastifyApolloDrainPlugin(app),
      createAuthPlugin({ verifier, sessionCookie: options.sessionCookie ? SESSION_COOKIE : undefined }),
      ...(throttling.enabled === false ? [] : [rateLimiting.plugin]),
      createCostPlugin({
        limits,
        exposeLimits,
        isTrusted: persisted ? (hash) => persisted.has(hash) : undefined,
      }),
      ApolloServerPluginLandingPageDisabled(),
      // Nothing here uses cache hints, and the plugin wraps every field (see PERFORMANCE-FACTS).
      ApolloServerPluginCacheControlDisabled(),
      errorLogPlugin(),
    ],
    formatError: (formatted, error) => formatError(formatted, error, options.production),
  });
  await apollo.start();

  app.route({
    url: '/graphql',
    method: ['GET', 'POST'],
    handler: fastifyApolloHandler(apollo, {
      context: async (request, reply) => {
        const controller = new AbortController();
        // A client that goes away cancels the upstream work still under way for it.
        reply.raw.once('close', () => {
          if (!reply.raw.writableFinished) controller.abort();
        });
        const scope = { signal: controller.signal, deadline: Date.now() + options.policy.operationBudgetMs };
        const loaders = createLoaders(upstreams, scope);
        return {
          app: options.app,
          requestId: request.id,
          viewer: null, // set by the authentication plugin before execution
          clientAddress: request.ip,
          session: options.sessionCookie
            ? {
                start: (token: string, maxAgeSeconds: number) => {
                  reply.header('set-cookie', sessionCookie(token, maxAgeSeconds));
                },
                end: () => {
                  reply.header('set-cookie', sessionCookie('', 0));
                },
              }
            : undefined,
          locale: negotiateLocale(request.headers['accept-language']),
          policy: options.policy,
          loaders,
          commands: createCommands(upstreams, loaders, scope),
        };
      },
    }),
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  // Readiness: 503 while draining, or when no upstream can be reached (nothing useful can be
  // served). One upstream down is "degraded" but ready: the BFF still serves partial results,
  // and taking every replica out of the load balancer would turn that into a full outage.
  let draining = false;
  app.get('/readyz', async (_request, reply) => {
    if (draining) return reply.code(503).send({ status: 'draining' });
    const check = { timeoutMs: 1_000 };
    const [identity, billing, product] = await Promise.all([
      upstreams.identity.ready(check),
      upstreams.billing.ready(check),
      upstreams.product.ready(check),
    ]);
    const reachable = { identity, billing, product };
    const breakers = {
      identity: guards.identity.state,
      billing: guards.billing.state,
      product: guards.product.state,
    };
    const healthy = (name: keyof typeof reachable) => reachable[name] && breakers[name] !== 'open';
    const up = (['identity', 'billing', 'product'] as const).filter(healthy).length;
    const status = up === 3 ? 'ready' : up === 0 ? 'unavailable' : 'degraded';
    return reply.code(up === 0 ? 503 : 200).send({ status, upstreams: reachable, breakers });
  });
  if (options.graphiql) registerGraphiql(app, `${options.app} BFF`);

  await app.listen({ port: options.port, host: options.host ?? '127.0.0.1' });
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('BFF has no TCP address');
  let closing: Promise<void> | undefined;
  return {
    url: `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`,
    app,
    apollo,
    rateLimitStats: rateLimiting.stats,
    guards,
    close: () => {
      closing ??= (async () => {
        draining = true;
        // Stop accepting and let in-flight requests finish, for at most the grace period; then
        // cut what is left so that shutdown is bounded, as Kubernetes expects.
        const grace = options.shutdownGraceMs ?? 10_000;
        // A keep-alive connection that was busy when closing began becomes idle once its
        // response is sent; close those as they go idle instead of waiting for their timeout.
        const sweeper = setInterval(() => app.server.closeIdleConnections(), 50);
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          app.close(),
          new Promise<void>((resolve) => {
            timer = setTimeout(() => {
              app.server.closeAllConnections();
              resolve();
            }, grace);
          }),
        ]);
        clearTimeout(timer);
        clearInterval(sweeper);
        await apollo.stop();
        upstreams.product.close();
        await Promise.all([upstreams.identity.close(), upstreams.billing.close(), store.close()]);
      })();
      return closing;
    },
  };
}

function sessionCookie(token: string, maxAgeSeconds: number): string {
  return stringifySetCookie({
    name: SESSION_COOKIE,
    value: token,
    httpOnly: true,
    secure: true,
    sameSite: 'strict',
    path: '/',
    maxAge: maxAgeSeconds,
  });
}

/** Upstream failures become coded, address-free errors; in production, unexpected ones are masked. */
function formatError(
  given: GraphQLFormattedError,
  error: unknown,
  production: boolean,
): GraphQLFormattedError {
  const formatted = formatLimitError(given, !production);
  const upstream = describeUpstreamError(unwrapResolverError(error));
  if (upstream) {
    return {
      message: upstream.message,
      ...(formatted.locations ? { locations: formatted.locations } : {}),
      ...(formatted.path ? { path: formatted.path } : {}),
      extensions: upstream.extensions,
    };
  }
  const code = formatted.extensions?.code;
  if (code !== BffErrorCode.InternalServerError && formatted.extensions?.stacktrace) {
    // A client error (bad token, bad input, a limit) is the client's to fix: a stack trace
    // would only show our internals, in development too.
    const { stacktrace: _omitted, ...extensions } = formatted.extensions;
    return { ...formatted, extensions };
  }
  if (production && code === BffErrorCode.InternalServerError) {
    return {
      message: 'Internal server error',
      ...(formatted.locations ? { locations: formatted.locations } : {}),
      ...(formatted.path ? { path: formatted.path } : {}),
      extensions: { code: BffErrorCode.InternalServerError },
    };
  }
  return formatted;
}

/** Logs unexpected errors with the request id, and gives the client that id to quote. */
function errorLogPlugin(): ApolloServerPlugin<BffContext> {
  return {
    async requestDidStart() {
      return {
        async didEncounterErrors({ errors, contextValue, logger }) {
          for (const error of errors) {
            const original = unwrapResolverError(error);
            if (describeUpstreamError(original)) continue;
            if (error.extensions?.code && error.extensions.code !== BffErrorCode.InternalServerError)
              continue;
            logger.error(
              `request ${contextValue.requestId}: ${original instanceof Error ? (original.stack ?? original.message) : String(original)}`,
            );
          }
        },
        async willSendResponse({ response, contextValue }) {
          if (response.body.kind !== 'single') return;
          for (const error of response.body.singleResult.errors ?? []) {
            if (error.extensions?.code === BffErrorCode.InternalServerError) {
              (error.extensions as Record<string, unknown>).requestId = contextValue.requestId;
            }
          }
        },
      };
    },
  };
}
