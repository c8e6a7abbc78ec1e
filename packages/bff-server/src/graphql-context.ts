import { createCommands, createLoaders, type Upstreams } from '@bff/loaders';
import { type BffContext, negotiateLocale } from '@bff/resolvers';
import { stringifySetCookie } from 'cookie';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { type BffServerOptions, SESSION_COOKIE } from './options.ts';

/**
 * The per-request context: fresh loaders (nothing of one request is visible to another), the
 * operation's deadline and cancellation, the viewer (set by the authentication plugin), the
 * negotiated locale and, on the web, the cookie session.
 */
export function createContextFactory(
  options: BffServerOptions,
  upstreams: Upstreams,
): (request: FastifyRequest, reply: FastifyReply) => Promise<BffContext> {
  return async (request, reply) => {
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
