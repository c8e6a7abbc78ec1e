import { randomUUID } from 'node:crypto';
import {
  type Context,
  createTracing,
  type LogFormat,
  loggerOptions,
  requestOutcome,
  type ServiceMetrics,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracing,
  traceIdOf,
} from '@bff/observability';
import Fastify, {
  type FastifyInstance,
  type FastifyRequest,
  type FastifyServerOptions,
  LogController,
} from 'fastify';
import type { DestinationStream } from 'pino';
import { ErrorCode, HttpError } from './errors.ts';

export interface HttpServiceOptions {
  /** The service's name, in logs (`service`) and as the span's `service.name` by default. */
  name: string;
  /** pino level, or false for no log. @default 'info' */
  logLevel?: string | false;
  /** JSON lines, or pretty for a person at a terminal. @default 'json' */
  logFormat?: LogFormat;
  /** Where JSON log lines go instead of stdout (tests collect them). */
  logDestination?: DestinationStream;
  /**
   * Observes `service_request_duration_seconds` for every request, labelled by route pattern
   * (`unmatched` for unknown routes) and outcome.
   */
  metrics?: ServiceMetrics;
  /**
   * Records a SERVER span per request, a child of the caller's `traceparent`: the services are
   * internal, so they trust it. @default off (trace ids are still read and logged)
   */
  tracing?: Tracing;
  /** Largest request body accepted, in bytes. @default 65536 */
  bodyLimit?: number;
  /** Time a whole request may take before the socket is closed, in ms. @default 30000 */
  requestTimeoutMs?: number;
  /**
   * Throws when the service cannot do its work (its database does not answer); drives
   * `/readyz`. `/healthz` only says the process is up.
   */
  readiness?: () => Promise<void>;
}

/** A request id a caller (the BFF) may hand over, so that both logs carry the same one. */
const REQUEST_ID = /^[\w.:-]{1,128}$/;

/** The label of requests that matched no route: a URL a client made up is never a label. */
const UNMATCHED = 'unmatched';

const traces = new WeakMap<FastifyRequest, { span: Span; context: Context }>();

/**
 * The trace context of `request` (its SERVER span): pass it to outgoing calls and to events
 * written while handling it, so that they join the request's trace.
 */
export function requestTraceContext(request: FastifyRequest): Context {
  const trace = traces.get(request);
  if (!trace) throw new Error('requestTraceContext: not a request of a service made by createHttpService');
  return trace.context;
}

const STATUS_CODES: Record<number, ErrorCode> = {
  400: ErrorCode.BadRequest,
  401: ErrorCode.Unauthorized,
  403: ErrorCode.Forbidden,
  404: ErrorCode.NotFound,
  405: ErrorCode.MethodNotAllowed,
  409: ErrorCode.Conflict,
  413: ErrorCode.PayloadTooLarge,
  415: ErrorCode.UnsupportedMediaType,
  422: ErrorCode.Unprocessable,
};

/**
 * A Fastify instance whose errors are all coded JSON: schema failures and malformed bodies
 * are 400 `BAD_REQUEST`, unknown routes 404, and anything unexpected a 500 `INTERNAL` whose
 * detail stays in the log.
 */
export function createHttpService(options: HttpServiceOptions): FastifyInstance {
  const logger: FastifyServerOptions['logger'] =
    options.logLevel === false
      ? false
      : loggerOptions({
          base: { service: options.name },
          level: options.logLevel ?? 'info',
          ...(options.logFormat ? { format: options.logFormat } : {}),
          destination: options.logDestination,
        });
  const tracing = options.tracing ?? createTracing({ serviceName: options.name });
  const { metrics } = options;
  const app = Fastify({
    logger,
    // One line per request, written when it is answered (below), instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'requestId' }),
    genReqId: (request) => {
      const given = request.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    bodyLimit: options.bodyLimit ?? 65_536,
    requestTimeout: options.requestTimeoutMs ?? 30_000,
    return503OnClosing: true,
    // No type coercion: a body field sent as 42 where a string is expected is a 400, not "42".
    // Query strings declare their numbers as digit patterns and parse them in the handler.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  });

  app.addHook('onRequest', (request, _reply, done) => {
    const route = request.routeOptions.url ?? UNMATCHED;
    const started = tracing.startIncoming(
      route === UNMATCHED ? `${request.method} ${UNMATCHED}` : `${request.method} ${route}`,
      request.headers,
      true,
      SpanKind.SERVER,
      { 'http.request.method': request.method, 'http.route': route },
    );
    traces.set(request, started);
    const traceId = traceIdOf(started.context);
    if (traceId) request.log = request.log.child({ traceId });
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    const pattern = request.routeOptions.url;
    const status = reply.statusCode;
    const outcome = requestOutcome(status);
    metrics?.requestDuration.observe(
      { method: pattern ? `${request.method} ${pattern}` : UNMATCHED, outcome },
      reply.elapsedTime / 1000,
    );
    const trace = traces.get(request);
    if (trace) {
      trace.span.setAttribute('http.response.status_code', status);
      if (outcome === 'error') trace.span.setStatus({ code: SpanStatusCode.ERROR });
      trace.span.end();
    }
    request.log.info(
      {
        method: request.method,
        route: pattern ?? UNMATCHED,
        status,
        outcome,
        durationMs: Math.round(reply.elapsedTime * 100) / 100,
      },
      'request completed',
    );
    done();
  });

  app.setErrorHandler((error, request, reply) => {
    if (error instanceof HttpError) return reply.code(error.statusCode).send(error.toBody());
    const e = error as { validation?: unknown; statusCode?: number; message: string };
    if (e.validation) {
      return reply.code(400).send({ error: { code: ErrorCode.BadRequest, message: e.message } });
    }
    const status = e.statusCode;
    if (status && status >= 400 && status < 500) {
      return reply
        .code(status)
        .send({ error: { code: STATUS_CODES[status] ?? ErrorCode.BadRequest, message: e.message } });
    }
    request.log.error({ err: error }, 'unhandled error');
    return reply.code(500).send({ error: { code: ErrorCode.Internal, message: 'Internal error' } });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({
      error: {
        code: ErrorCode.NotFound,
        message: `No route ${request.method} ${request.url.split('?')[0]}`,
      },
    }),
  );
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (request, reply) => {
    try {
      await options.readiness?.();
      return { status: 'ready' };
    } catch (error) {
      request.log.warn({ err: error }, 'not ready');
      return reply.code(503).send({ status: 'not ready' });
    }
  });
  return app;
}

/** Listens on `port` (0 for a free one) and returns the base URL. */
export async function listen(app: FastifyInstance, port: number, host = '127.0.0.1'): Promise<string> {
  await app.listen({ port, host });
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('server has no TCP address');
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${shownHost === '0.0.0.0' ? '127.0.0.1' : shownHost}:${address.port}`;
}
