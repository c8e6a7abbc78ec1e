import type { ApolloServerPlugin } from '@apollo/server';
import { BffErrorCode, SERVER_FAULT_CODES } from '@bff/error-codes';
import type { RequestTrace } from '@bff/loaders';
import {
  BffMetrics,
  BREAKER_STATE_VALUE,
  type Context,
  createMetricsRegistry,
  createTracing,
  OperationNameLabels,
  type OperationOutcome,
  type RunningMetricsServer,
  redactVariables,
  type Span,
  SpanKind,
  SpanStatusCode,
  startMetricsServer,
  startTry,
  statusClass,
  type Tracing,
  traceIdOf,
} from '@bff/observability';
import type { RateLimitDecision } from '@bff/rate-limit';
import type { UpstreamGuard } from '@bff/resilience';
import type { BffContext } from '@bff/resolvers';
import type { CacheOutcome } from '@bff/response-cache';
import type { UpstreamCall } from '@bff/upstream-clients';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { BffServerOptions } from './options.ts';

/** What one request did, gathered as it goes and written once, when its response is done. */
/** Every outcome the response cache reports (CacheOutcome), each counted from zero. */
const CACHE_OUTCOMES = [
  'hit',
  'coalesced',
  'miss',
  'stale',
  'skip',
  'none',
  'invalidate',
] as const satisfies readonly CacheOutcome[];
type MissingOutcome = Exclude<CacheOutcome, (typeof CACHE_OUTCOMES)[number]>;
const _everyOutcome: MissingOutcome extends never ? true : never = true;

class RequestRecord implements RequestTrace {
  operationName: string | undefined;
  operationType: string | undefined;
  outcome: OperationOutcome | undefined;
  upstreamCalls = 0;
  rateLimit: RateLimitDecision | undefined;
  cache: CacheOutcome = 'none';
  variables: unknown;
  /** The span upstream work hangs under: the request's, then the operation's once known. */
  context: Context;
  operationSpan: Span | undefined;

  constructor(
    private readonly tracing: Tracing,
    readonly span: Span,
    readonly requestContext: Context,
    readonly started: number,
  ) {
    this.context = requestContext;
  }

  startTry(service: string, operation: string) {
    this.upstreamCalls++;
    return startTry(this.tracing, this.context, service, operation);
  }

  batch(loader: string, size: number) {
    // Without export there is nobody to show a batch span to: the tries carry the trace alone.
    if (!this.tracing.enabled) return { trace: this, end: () => {} };
    const { span, context } = this.tracing.startChild(`loader ${loader}`, this.context, SpanKind.INTERNAL, {
      'bff.loader': loader,
      'bff.batch_size': size,
    });
    const record = this;
    return {
      trace: {
        startTry(service: string, operation: string) {
          record.upstreamCalls++;
          return startTry(record.tracing, context, service, operation);
        },
      },
      end: () => span.end(),
    };
  }
}

/**
 * Where a GraphQL context keeps its request's record: a symbol, because Apollo hands plugins and
 * resolvers a shallow copy of the context (own properties, symbols included, are copied; a
 * WeakMap keyed by the original would miss).
 */
const RECORD = Symbol('bff.request-record');
const recordOf = (context: BffContext) =>
  (context as unknown as Record<symbol, RequestRecord | undefined>)[RECORD];

declare module 'fastify' {
  interface FastifyRequest {
    telemetry: RequestRecord | null;
  }
}

export interface BffTelemetry {
  readonly metrics: BffMetrics;
  readonly tracing: Tracing;
  /** The request's trace for its loaders and commands. */
  traceOf(request: FastifyRequest): RequestTrace | undefined;
  /** Ties a GraphQL context to its request, for the plugin. */
  bind(context: BffContext, request: FastifyRequest): void;
  /** Counts and times every upstream try. */
  onUpstreamCall(call: UpstreamCall): void;
  onRateLimitDecision(decision: RateLimitDecision, context: BffContext): void;
  /** What the response cache did for the request. */
  onCacheOutcome(outcome: CacheOutcome, context: BffContext): void;
  /** A request refused by Node's parser, before Fastify saw it. */
  onClientError(status: number): void;
  /** Starts the request span and writes the request's metrics and log line when it is done. */
  registerHttpHooks(app: FastifyInstance): void;
  plugin: ApolloServerPlugin<BffContext>;
  /** Serves the metrics on their own port, when one is configured. */
  start(): Promise<RunningMetricsServer | undefined>;
  close(): Promise<void>;
}

const REFUSED_BY_STATUS = (status: number): OperationOutcome =>
  status === 429 ? 'rate_limited' : status >= 500 ? 'error' : status >= 400 ? 'refused' : 'ok';

/** How a GraphQL answer counts: ok, partial (data with server-side errors), refused, rate limited, error. */
function outcomeOf(
  errors: readonly { extensions?: Record<string, unknown> }[] | undefined,
  hasData: boolean,
) {
  if (!errors || errors.length === 0) return 'ok' as const;
  let fault = false;
  let limited = false;
  for (const error of errors) {
    const code = error.extensions?.code;
    if (code === BffErrorCode.RateLimited) limited = true;
    else if (typeof code !== 'string' || SERVER_FAULT_CODES.has(code as BffErrorCode)) fault = true;
  }
  if (fault) return hasData ? ('partial' as const) : ('error' as const);
  return limited ? ('rate_limited' as const) : ('refused' as const);
}

/** A client-sent header fit for a log line: a short printable string, or undefined. */
function headerText(value: string | string[] | undefined): string | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return undefined;
  return text.length > 64 || !/^[\x20-\x7e]*$/.test(text) ? '[invalid]' : text;
}

/**
 * Logs, metrics and traces of one BFF: a span per request (a client's `traceparent` followed only
 * when trusted), one per operation, loader batch and upstream try; one log line and one sample of
 * `graphql_operation_duration_seconds` per /graphql request, however it ended.
 */
export function createBffTelemetry(
  options: BffServerOptions,
  knownOperationNames: Iterable<string>,
  guards: Readonly<Record<string, UpstreamGuard>>,
  cacheStoreFailures?: () => number,
  live?: () => { connections: number; subscriptions: number; delivered: number },
): BffTelemetry {
  const settings = options.observability ?? {};
  const registry = createMetricsRegistry({ defaultLabels: { app: options.app } });
  // Breaker states and retry counts are read from the guards when Prometheus scrapes: nothing
  // is added to the request path for them.
  const metrics = new BffMetrics(registry, {
    breakers: () =>
      Object.entries(guards).map(([service, guard]) => [service, BREAKER_STATE_VALUE[stateKey(guard.state)]]),
    retries: () => Object.entries(guards).map(([service, guard]) => [service, guard.stats.retries]),
    ...(cacheStoreFailures ? { cacheStoreFailures } : {}),
    ...(live ? { live } : {}),
  });
  // One child per outcome, made once: counting a request's outcome is then one addition.
  const cacheOutcomes = Object.fromEntries(
    CACHE_OUTCOMES.map((outcome) => [outcome, metrics.responseCache.labels({ outcome })]),
  ) as Record<CacheOutcome, { inc(): void }>;
  let debugEnabled = false;
  // The line's object is built only when someone reads it.
  const logRequests =
    options.logLevel !== false && ['info', 'debug', 'trace'].includes(options.logLevel ?? 'info');
  const tracing = createTracing({
    serviceName: `${options.app}-bff`,
    endpoint: settings.tracing?.endpoint,
    ...(settings.tracing?.sampleRatio === undefined ? {} : { sampleRatio: settings.tracing.sampleRatio }),
    ...(settings.tracing?.exporter ? { exporter: settings.tracing.exporter } : {}),
  });
  const trustParent = settings.tracing?.trustTraceHeaders ?? false;
  const names = new OperationNameLabels({
    allowed: [...knownOperationNames, ...(settings.operationNames ?? [])],
  });
  let metricsServer: RunningMetricsServer | undefined;

  return {
    metrics,
    tracing,
    traceOf: (request) => request.telemetry ?? undefined,
    bind(context, request) {
      if (request.telemetry)
        (context as unknown as Record<symbol, RequestRecord>)[RECORD] = request.telemetry;
    },
    onUpstreamCall(call) {
      metrics.upstreamDuration.observe(
        { service: call.service, method: call.operation, outcome: call.outcome },
        call.durationMs / 1000,
      );
    },
    onRateLimitDecision(decision, context) {
      metrics.rateLimitDecisions.inc({ decision });
      const record = recordOf(context);
      // The worst decision of the request is the one its log line shows.
      if (
        record &&
        (record.rateLimit === undefined || record.rateLimit === 'allowed' || decision === 'limited')
      )
        record.rateLimit = decision;
    },
    onCacheOutcome(outcome, context) {
      cacheOutcomes[outcome].inc();
      const record = recordOf(context);
      if (record) record.cache = outcome;
    },
    onClientError(status) {
      metrics.httpRequests.inc({ status_class: statusClass(status) });
    },
    registerHttpHooks(app) {
      app.decorateRequest('telemetry', null);
      debugEnabled = app.log.level === 'debug' || app.log.level === 'trace';
      app.addHook('onRequest', (request, reply, done) => {
        const path = request.url.split('?', 1)[0];
        const { span, context } = tracing.startIncoming(
          `${request.method} ${path === '/graphql' ? '/graphql' : 'other'}`,
          request.headers,
          trustParent,
          SpanKind.SERVER,
          { 'http.request.method': request.method },
        );
        const record = new RequestRecord(tracing, span, context, performance.now());
        request.telemetry = record;
        // 'close' comes once per response, whether it was sent or the client went away first.
        reply.raw.once('close', () => {
          const status = reply.raw.statusCode;
          const sent = reply.raw.writableFinished;
          const durationMs = performance.now() - record.started;
          metrics.httpRequests.inc({ status_class: sent ? statusClass(status) : 'cancelled' });
          const graphql = path === '/graphql';
          const outcome = !sent ? 'cancelled' : (record.outcome ?? REFUSED_BY_STATUS(status));
          if (graphql) {
            metrics.operationDuration.observe(
              {
                operation_name: names.label(record.operationName),
                operation_type: record.operationType ?? 'unknown',
                outcome,
              },
              durationMs / 1000,
            );
          }
          record.operationSpan?.end();
          span.setAttribute('http.response.status_code', status);
          if (status >= 500 || !sent) span.setStatus({ code: SpanStatusCode.ERROR });
          span.end();
          if (logRequests)
            request.log.info(
              {
                traceId: traceIdOf(context),
                method: request.method,
                path,
                operationName: record.operationName?.slice(0, 100),
                operationType: record.operationType,
                client: {
                  name: headerText(request.headers['apollographql-client-name']),
                  version:
                    headerText(request.headers['apollographql-client-version']) ??
                    headerText(request.headers['x-app-version']),
                },
                status: sent ? status : undefined,
                outcome: graphql ? outcome : undefined,
                durationMs: Math.round(durationMs * 100) / 100,
                upstreamCalls: record.upstreamCalls,
                rateLimit: record.rateLimit,
                cache: record.cache,
                ...(record.variables === undefined ? {} : { variables: record.variables }),
              },
              'request',
            );
        });
        done();
      });
    },
    plugin: {
      async requestDidStart({ contextValue }) {
        const record = recordOf(contextValue);
        if (!record) return;
        return {
          async didResolveOperation({ operation, operationName, request }) {
            if (!operation) return;
            record.operationName = operationName ?? undefined;
            record.operationType = operation.operation;
            if (tracing.enabled) {
              const { span, context } = tracing.startChild(
                `${operation.operation} ${operationName ?? 'anonymous'}`,
                record.requestContext,
                SpanKind.INTERNAL,
                {
                  'graphql.operation.type': operation.operation,
                  'graphql.operation.name': names.label(operationName),
                },
              );
              record.operationSpan = span;
              record.context = context;
            }
            // Variables are personal: logged, censored, only when someone asked for debug logs.
            if (request.variables && debugEnabled) record.variables = redactVariables(request.variables);
          },
          async willSendResponse({ response }) {
            if (response.body.kind !== 'single') return;
            const { errors, data } = response.body.singleResult;
            record.outcome = outcomeOf(errors, data !== undefined && data !== null);
            if (record.outcome === 'error' || record.outcome === 'partial')
              record.operationSpan?.setStatus({ code: SpanStatusCode.ERROR, message: record.outcome });
          },
        };
      },
    },
    async start() {
      if (settings.metricsPort === undefined) return undefined;
      metricsServer = await startMetricsServer({
        registry,
        port: settings.metricsPort,
        host: settings.metricsHost ?? '0.0.0.0',
      });
      return metricsServer;
    },
    async close() {
      await metricsServer?.close();
      await tracing.shutdown();
    },
  };
}

function stateKey(state: string): keyof typeof BREAKER_STATE_VALUE {
  return state === 'open' ? 'open' : state === 'half-open' ? 'half_open' : 'closed';
}
