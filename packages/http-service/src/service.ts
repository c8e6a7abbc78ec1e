import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { ErrorCode, HttpError } from './errors.ts';

export interface HttpServiceOptions {
  /** The service's name, in logs. */
  name: string;
  /** pino level, or false for no log. @default 'info' */
  logLevel?: string | false;
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
      : {
          level: options.logLevel ?? 'info',
          base: { service: options.name },
          redact: ['req.headers.authorization', 'req.headers.cookie'],
        };
  const app = Fastify({
    logger,
    bodyLimit: options.bodyLimit ?? 65_536,
    requestTimeout: options.requestTimeoutMs ?? 30_000,
    return503OnClosing: true,
    // No type coercion: a body field sent as 42 where a string is expected is a 400, not "42".
    // Query strings declare their numbers as digit patterns and parse them in the handler.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
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
