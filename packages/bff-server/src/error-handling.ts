import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { ApolloServerPlugin } from '@apollo/server';
import { unwrapResolverError } from '@apollo/server/errors';
import { BffErrorCode, SERVER_FAULT_CODES } from '@bff/error-codes';
import { formatLimitError } from '@bff/operation-limits';
import { type BffContext, describeUpstreamError } from '@bff/resolvers';
import type { FastifyInstance } from 'fastify';
import { GraphQLError, type GraphQLFormattedError, Kind } from 'graphql';

/**
 * Errors Fastify raises before Apollo sees the request (an oversized or unreadable body, an
 * unsupported content type) are answered in the GraphQL error shape too, with a code. Only a
 * 5xx is logged at error level: a client cannot write to the error log.
 */
export function registerHttpErrorHandler(
  app: FastifyInstance,
  options: { maxBodyBytes: number; exposeLimits: boolean },
): void {
  app.setErrorHandler((error: { statusCode?: number; code?: string; message: string }, request, reply) => {
    const status =
      error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    const code =
      status === 413
        ? BffErrorCode.PayloadTooLarge
        : status === 415
          ? BffErrorCode.UnsupportedMediaType
          : status === 500
            ? BffErrorCode.InternalServerError
            : BffErrorCode.BadRequest;
    if (status === 500) request.log.error({ err: error }, 'unhandled error');
    else request.log.info({ code, status, reason: error.code }, 'request refused');
    const message =
      status === 413
        ? options.exposeLimits
          ? `The request body is larger than ${options.maxBodyBytes} bytes`
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
}

const answered = new WeakSet<Socket>();

/**
 * What Node's HTTP parser refuses before Fastify sees a request (headers past 16 KB, a
 * malformed request line, a request that took too long), answered as every other refusal is:
 * a status and a coded GraphQL error body, then the connection closed. Fastify's own handler
 * answers these in a shape of its own, with no code.
 */
export function answerClientError(error: Error & { code?: string }, socket: Socket): number | undefined {
  // The parser reports again for whatever more the client sends: answered once is enough.
  if (error.code === 'ECONNRESET' || socket.destroyed || answered.has(socket)) return undefined;
  answered.add(socket);
  const status =
    error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  const message =
    status === 431
      ? 'The request headers are too large'
      : status === 408
        ? 'The request took too long to arrive'
        : 'The request could not be read';
  const body = JSON.stringify({ errors: [{ message, extensions: { code: BffErrorCode.BadRequest } }] });
  if (!socket.writable) {
    socket.destroy();
    return undefined;
  }
  // End rather than destroy: a client still sending the rest of an oversized head would see its
  // write fail (EPIPE) before it read the answer. What it still sends is read and dropped, for a
  // moment, then the connection is cut whatever the client does.
  socket.on('error', () => {});
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  socket.resume();
  setTimeout(() => socket.destroy(), 2_000).unref();
  return status;
}

/**
 * A document whose `operationName` names none of its operations (or that holds several and
 * names none) is the client's mistake, answered as graphql-js words it. Apollo leaves this to
 * execution, where graphql-jit runs the first operation or nothing and Apollo answers 500.
 * So is an operation of a type the schema does not serve (no Subscription root), and a
 * subscription sent over HTTP.
 */
export function createOperationResolutionPlugin(): ApolloServerPlugin<BffContext> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ operation, document, request, schema }) {
          if (operation) {
            // graphql-js validation accepts an operation whose root type the schema lacks
            // (a subscription here); execution would then fail as a server fault.
            if (!schema.getRootType(operation.operation)) {
              throw new GraphQLError(`This API serves no ${operation.operation} operations.`, {
                nodes: [operation],
                extensions: { code: BffErrorCode.GraphqlValidationFailed, http: { status: 400 } },
              });
            }
            // A subscription is a stream, served over WebSocket; over HTTP it would be executed
            // as a query of fields that only subscribe, a server fault.
            if (operation.operation === 'subscription') {
              throw new GraphQLError(
                'Subscriptions are served over WebSocket on this path (graphql-transport-ws), not over HTTP.',
                { nodes: [operation], extensions: { code: BffErrorCode.BadRequest, http: { status: 400 } } },
              );
            }
            return;
          }
          const named = request.operationName;
          const operations = document.definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION);
          throw new GraphQLError(
            typeof named === 'string'
              ? `Unknown operation named "${named}".`
              : operations.length === 0
                ? 'Must provide an operation.'
                : 'Must provide operation name if query contains multiple operations.',
            { extensions: { code: BffErrorCode.OperationResolutionFailure, http: { status: 400 } } },
          );
        },
      };
    },
  };
}

/** Upstream failures become coded, address-free errors; in production, unexpected ones are masked. */
export function formatError(
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

/**
 * Logs unexpected errors with the request id, and gives the client that id to quote. A
 * client's mistakes (any code but a server fault) are logged below error level, so that no
 * client can flood the error log.
 */
export function createErrorLogPlugin(): ApolloServerPlugin<BffContext> {
  return {
    async requestDidStart() {
      return {
        async didEncounterErrors({ errors, contextValue, logger }) {
          for (const error of errors) {
            const original = unwrapResolverError(error);
            if (describeUpstreamError(original)) continue;
            const code = error.extensions?.code;
            if (typeof code === 'string' && !SERVER_FAULT_CODES.has(code as BffErrorCode)) continue;
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
