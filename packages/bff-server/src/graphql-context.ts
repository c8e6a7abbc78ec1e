import { endSessionCookie, startSessionCookie } from '@bff/auth';
import { createCommands, createLoaders, type Upstreams } from '@bff/loaders';
import { type BffContext, negotiateLocale } from '@bff/resolvers';
import { Cancellation } from '@bff/upstream-clients';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { BffServerOptions } from './options.ts';
import type { BffResponseCache } from './response-cache.ts';
import type { BffTelemetry } from './telemetry.ts';

/**
 * The per-request context: fresh loaders (nothing of one request is visible to another), the
 * operation's deadline and cancellation, the viewer (set by the authentication plugin), the
 * negotiated locale, on the web the cookie session, and the log of entities read and written
 * that the response cache tags and invalidates by.
 */
export function createContextFactory(
  options: BffServerOptions,
  upstreams: Upstreams,
  telemetry: BffTelemetry,
  cache: BffResponseCache | undefined,
): (request: FastifyRequest, reply: FastifyReply) => Promise<BffContext> {
  return async (request, reply) => {
    const cancel = new Cancellation();
    // A client that goes away cancels the upstream work still under way for it.
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) cancel.abort();
    });
    const scope = {
      signal: cancel,
      deadline: Date.now() + options.policy.operationBudgetMs,
      trace: telemetry.traceOf(request),
      entities: cache?.entityLog(),
    };
    const loaders = createLoaders(upstreams, scope);
    const context: BffContext = {
      app: options.app,
      requestId: request.id,
      viewer: null, // set by the authentication plugin before execution
      clientAddress: request.ip,
      session: options.sessionCookie
        ? {
            start: (token: string, maxAgeSeconds: number) => {
              reply.header('set-cookie', startSessionCookie(token, maxAgeSeconds));
            },
            end: () => {
              reply.header('set-cookie', endSessionCookie());
            },
          }
        : undefined,
      locale: negotiateLocale(request.headers['accept-language']),
      policy: options.policy,
      loaders,
      commands: createCommands(upstreams, loaders, scope),
    };
    telemetry.bind(context, request);
    if (scope.entities) cache?.bind(context, scope.entities);
    return context;
  };
}
