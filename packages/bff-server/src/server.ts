import { ApolloServer } from '@apollo/server';
import {
  ApolloServerPluginCacheControlDisabled,
  ApolloServerPluginInlineTraceDisabled,
  ApolloServerPluginLandingPageDisabled,
  ApolloServerPluginUsageReportingDisabled,
} from '@apollo/server/plugin/disabled';
import { fastifyApolloDrainPlugin } from '@as-integrations/fastify';
import { applyAuthDirectives, createAuthPlugin } from '@bff/auth';
import { createEventBus } from '@bff/events';
import { createCostPlugin, limitValidationRules, validateLimits } from '@bff/operation-limits';
import { manifestCache } from '@bff/persisted-operations';
import {
  createRateLimiting,
  MemoryRateLimitStore,
  type RateLimitStore,
  RedisRateLimitStore,
} from '@bff/rate-limit';
import type { BffContext } from '@bff/resolvers';
import type { GraphQLFormattedError } from 'graphql';
import { createErrorLogPlugin, createOperationResolutionPlugin, formatError } from './error-handling.ts';
import { createFastRoute, type FastRoute } from './fast-route.ts';
import { registerGraphiql } from './graphiql.ts';
import { createContextFactory } from './graphql-context.ts';
import { registerGraphqlRoute } from './graphql-route.ts';
import { registerHealthRoutes } from './health.ts';
import { createHttpApp } from './http-app.ts';
import { graphqlJsExecutor, jitGateway } from './jit-executor.ts';
import { asOnePlugin } from './one-plugin.ts';
import type { BffServerOptions, RunningBff } from './options.ts';
import { registerRequestGuards } from './request-guards.ts';
import { type BffResponseCache, createBffResponseCache } from './response-cache.ts';
import { buildBffSchema } from './schema.ts';
import { type BffSubscriptions, registerSubscriptions } from './subscriptions.ts';
import { createBffTelemetry } from './telemetry.ts';
import { createUpstreams, createVerifier } from './upstreams.ts';

/**
 * Starts one BFF app: the upstream clients and their guards, the HTTP app, the request guards,
 * throttling, the schema with its directives, Apollo with its plugins, the routes; and a
 * close() that drains within a bounded time.
 */
export async function startBff(options: BffServerOptions): Promise<RunningBff> {
  // What is opened is closed again if a later step of the start fails (a bad option, a port
  // in use), so that a failed start leaves no connection or timer behind.
  const opened: (() => unknown)[] = [];
  try {
    return await start(options, opened);
  } catch (error) {
    for (const close of opened.reverse()) await Promise.resolve(close()).catch(() => {});
    throw error;
  }
}

async function start(options: BffServerOptions, opened: (() => unknown)[]): Promise<RunningBff> {
  // Every upstream call, the JWKS's included, is timed and counted.
  const reporting: BffServerOptions = {
    ...options,
    onUpstreamCall: (call) => {
      telemetry.onUpstreamCall(call);
      options.onUpstreamCall?.(call);
    },
  };
  const { upstreams, guards } = createUpstreams(reporting);
  opened.push(
    () => upstreams.product.close(),
    () => upstreams.identity.close(),
    () => upstreams.billing.close(),
  );
  const persisted = options.persistedOperations
    ? manifestCache(options.persistedOperations.manifest)
    : undefined;
  let cache: BffResponseCache | undefined;
  let live: BffSubscriptions | undefined;
  const telemetry = createBffTelemetry(
    options,
    options.persistedOperations?.manifest.operations.map((operation) => operation.name) ?? [],
    guards,
    () => cache?.store.stats.failures ?? 0,
    () => live?.stats() ?? { connections: 0, subscriptions: 0, delivered: 0 },
  );
  opened.push(() => telemetry.close());
  const auth = createVerifier(reporting, guards);
  opened.push(() => auth.close());
  const { verifier } = auth;
  // Identity's keys are fetched while the rest starts, so that the first signed-in request does
  // not wait for them. Never rejects; if they cannot be had now, the first token fetches them.
  const keysFetched = verifier.prefetchKeys?.() ?? Promise.resolve(true);
  const throttling = options.rateLimit ?? {};
  const store: RateLimitStore = throttling.redisUrl
    ? new RedisRateLimitStore({ url: throttling.redisUrl, timeoutMs: throttling.storeTimeoutMs ?? 150 })
    : new MemoryRateLimitStore();
  opened.push(() => store.close());
  if (store instanceof RedisRateLimitStore) await store.ready();

  const limits = validateLimits(options.policy.limits);
  const exposeLimits = !options.production;
  const app = await createHttpApp(options, { limits, exposeLimits, telemetry });
  opened.push(() => app.close());

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
    onDecision: telemetry.onRateLimitDecision,
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

  let draining = false;
  // The services' domain events: the caller's bus, or a RabbitMQ connection of this process's own.
  const ownBus =
    !options.events && options.amqpUrl ? createEventBus({ amqpUrl: options.amqpUrl }) : undefined;
  if (ownBus) opened.push(() => ownBus.close());
  const events = options.events ?? ownBus;

  if (options.responseCache?.enabled !== false) {
    cache = createBffResponseCache(options, {
      events,
      log: app.log,
      metrics: telemetry.metrics,
      onOutcome: telemetry.onCacheOutcome,
      // A cached answer spends the rate limits its execution would have.
      admit:
        throttling.enabled === false
          ? undefined
          : ({ schema, document, operation, request, contextValue }) =>
              rateLimiting.admit({
                schema,
                document,
                operation,
                variables: request.variables,
                context: contextValue,
              }),
    });
    const owned = cache;
    opened.push(() => owned.close());
    await cache.start();
  }

  const schema = buildBffSchema(
    options.schemaDir,
    options.resolvers,
    throttling.enabled === false
      ? [applyAuthDirectives]
      : [rateLimiting.transformSchema, applyAuthDirectives],
  );
  const gateway = (options.executor ?? 'jit') === 'jit' ? jitGateway(schema) : undefined;
  // The BFF's own plugins, in this order, as one listener per request (see asOnePlugin).
  const bffPlugins = asOnePlugin<BffContext>([
    createAuthPlugin({ verifier, sessionCookie: options.sessionCookie === true }),
    ...(throttling.enabled === false ? [] : [rateLimiting.plugin]),
    createCostPlugin({
      limits,
      exposeLimits,
      isTrusted: persisted ? (hash) => persisted.has(hash) : undefined,
    }),
    ...(cache ? [cache.plugin] : []),
    createOperationResolutionPlugin(),
    createErrorLogPlugin(),
    telemetry.plugin,
  ]);
  const formatErrorFor = (formatted: GraphQLFormattedError, error: unknown) =>
    formatError(formatted, error, options.production);
  const fast: FastRoute<BffContext> | undefined =
    options.fastRoute === false
      ? undefined
      : createFastRoute<BffContext>({
          schema,
          plugin: bffPlugins,
          execute: gateway ? gateway.run : graphqlJsExecutor(schema),
          formatError: formatErrorFor,
          includeStacktraceInErrorResponses: !options.production,
          logger: app.log,
          cache: () => apollo.cache,
        });
  const apollo: ApolloServer<BffContext> = new ApolloServer<BffContext>({
    // Rate limits wrap the resolvers first, then authorization wraps both: an unauthorized
    // call is refused before it counts against anyone's limit.
    ...(gateway ? { gateway } : { schema }),
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
      // The BFF's plugins; the fast route learns the documents Apollo validates.
      ...(fast ? [fast.learner] : []),
      bffPlugins,
      ApolloServerPluginLandingPageDisabled(),
      // Cache hints are read statically by the response cache; Apollo's plugin would wrap every
      // field to compute them at run time (see PERFORMANCE-FACTS).
      ApolloServerPluginCacheControlDisabled(),
      // Not a federated subgraph: Apollo's inline tracing would only check so on every request.
      ApolloServerPluginInlineTraceDisabled(),
      // No Apollo Studio usage reports, even with APOLLO_KEY in the environment: the BFF's
      // telemetry is its own, and the fast route calls the BFF's plugins only.
      ApolloServerPluginUsageReportingDisabled(),
    ],
    formatError: formatErrorFor,
  });
  await apollo.start();
  opened.push(() => apollo.stop());

  registerGraphqlRoute(
    app,
    '/graphql',
    apollo,
    createContextFactory(options, upstreams, telemetry, cache),
    cache,
    fast,
  );

  if (options.subscriptions?.enabled !== false && events) {
    const byHash = new Map(options.persistedOperations?.manifest.operations.map((o) => [o.id, o.body]) ?? []);
    live = registerSubscriptions(app, '/graphql', {
      options,
      schema,
      verifier,
      limits,
      exposeLimits,
      persisted: options.persistedOperations
        ? { bodyOf: (hash) => byHash.get(hash), enforce: options.persistedOperations.enforce }
        : undefined,
      rateLimiting: throttling.enabled === false ? undefined : rateLimiting,
      upstreams,
      bus: events,
      metrics: telemetry.metrics,
      log: app.log,
      draining: () => draining,
    });
    const owned = live;
    opened.push(() => owned.close());
    await live.start();
  } else if (options.subscriptions?.enabled !== false) {
    app.log.info('subscriptions are off: no domain events (set AMQP_URL, or pass a bus)');
  }

  registerHealthRoutes(app, {
    upstreams,
    guards,
    draining: () => draining,
    live: () => live?.stats(),
  });
  if (options.graphiql) registerGraphiql(app, `${options.app} BFF`);

  if (!(await keysFetched)) app.log.warn('identity JWKS not fetched at start; the first token will fetch it');
  const metricsServer = await telemetry.start();
  await app.listen({ port: options.port, host: options.host ?? '127.0.0.1' });
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('BFF has no TCP address');
  let closing: Promise<void> | undefined;
  return {
    url: `${options.tls ? 'https' : 'http'}://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`,
    app,
    apollo,
    rateLimitStats: rateLimiting.stats,
    responseCacheStats: cache ? () => (cache as BffResponseCache).store.stats : undefined,
    fastRouteStats: fast
      ? () => ({
          served: (fast as FastRoute<BffContext>).served,
          knownDocuments: (fast as FastRoute<BffContext>).knownDocuments,
        })
      : undefined,
    subscriptionStats: live ? () => (live as BffSubscriptions).stats() : undefined,
    guards,
    metrics: telemetry.metrics.registry,
    metricsUrl: metricsServer?.url,
    close: () => {
      closing ??= (async () => {
        draining = true;
        // Sockets first: each is told 1001 and why, and upgraded sockets would hold app.close().
        await live?.close();
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
        fast?.stop();
        await apollo.stop();
        upstreams.product.close();
        await Promise.all([
          upstreams.identity.close(),
          upstreams.billing.close(),
          auth.close(),
          store.close(),
          cache?.close(),
        ]);
        await ownBus?.close().catch(() => {});
        // Last, so that the final scrape and the last spans include the drained requests.
        await telemetry.close();
      })();
      return closing;
    },
  };
}
