import { randomUUID } from 'node:crypto';
import type { Server as TlsServer } from 'node:tls';
import { loggerOptions } from '@bff/observability';
import type { OperationLimits } from '@bff/operation-limits';
import cors from '@fastify/cors';
import Fastify, { type FastifyInstance, LogController } from 'fastify';
import { connectionTimeoutsOption, trustProxyOption } from './config.ts';
import { answerClientError, registerHttpErrorHandler } from './error-handling.ts';
import type { BffServerOptions } from './options.ts';
import type { BffTelemetry } from './telemetry.ts';
import { readTlsPair, tlsOption, watchTlsFiles } from './tls.ts';

const REQUEST_ID = /^[\w.:-]{1,128}$/;

/**
 * The HTTP side of a BFF, before any route: logging, deadlines for slow clients, the client
 * address (through trusted proxies only), request ids, coded errors for what fails before
 * GraphQL, and CORS.
 */
export async function createHttpApp(
  options: BffServerOptions,
  settings: { limits: OperationLimits; exposeLimits: boolean; telemetry: BffTelemetry },
): Promise<FastifyInstance> {
  const { limits, exposeLimits, telemetry } = settings;
  const timeouts = connectionTimeoutsOption(options.connectionTimeouts);
  const tls = tlsOption(options.tls);
  const pair = tls ? readTlsPair(tls) : undefined;
  // Node checks the headers and request deadlines on an interval, not per request; they and
  // the interval go to http(s).createServer, Fastify sets the rest on the server it creates.
  const deadlines = {
    headersTimeout: timeouts.headersMs,
    requestTimeout: timeouts.requestMs,
    connectionsCheckingInterval: timeouts.checkIntervalMs,
  };
  const app = Fastify({
    // What Node's parser refuses (headers too large, a malformed request line) is answered in
    // the GraphQL error shape too, with a code.
    clientErrorHandler: (error, socket) => {
      const status = answerClientError(error, socket);
      if (status !== undefined) telemetry.onClientError(status);
    },
    logger:
      options.logLevel === false
        ? false
        : loggerOptions({
            base: { app: options.app },
            level: options.logLevel ?? 'info',
            format: options.logFormat ?? 'json',
            destination: options.logDestination,
          }),
    // One line per request, written by the telemetry hooks with what the request did.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'requestId' }),
    // Fastify stops reading a body past this and answers 413 without buffering the rest.
    bodyLimit: limits.maxBodyBytes,
    requestTimeout: timeouts.requestMs,
    keepAliveTimeout: timeouts.keepAliveMs,
    connectionTimeout: timeouts.idleMs,
    // With `https`, Fastify gives https.createServer that object alone: the deadlines go in it.
    ...(pair ? { https: { ...pair, ...deadlines } } : { http: deadlines }),
    // Only these proxies' X-Forwarded-For is read; without any, request.ip is the socket's peer.
    trustProxy: trustProxyOption(options.trustProxy ?? false),
    return503OnClosing: true,
    genReqId: (request) => {
      const given = request.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
  });
  if (tls && pair) {
    const reloading = watchTlsFiles(app.server as unknown as TlsServer, tls, pair, { log: app.log });
    // preClose runs first on a started app; onClose also on one that never finished starting.
    app.addHook('preClose', async () => reloading.close());
    app.addHook('onClose', async () => reloading.close());
  }
  telemetry.registerHttpHooks(app);
  // Set when the request arrives, so every answer carries it (errors and 404s included), without
  // a promise per response.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    done();
  });
  registerHttpErrorHandler(app, { maxBodyBytes: limits.maxBodyBytes, exposeLimits });
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
  return app;
}
