import { Readable } from 'node:stream';
import type { ApolloServer, HTTPGraphQLRequest } from '@apollo/server';
import type { BffContext } from '@bff/resolvers';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type FastRoute, headerMapOf } from './fast-route.ts';
import type { BffResponseCache } from './response-cache.ts';
import { notModified } from './response-cache.ts';

/**
 * The GraphQL route: Apollo's HTTP request handling, as `@as-integrations/fastify` does it (or,
 * for a document Apollo has already validated, the fast route's, which answers alike), and
 * the response cache's HTTP side, which needs the body exactly as it is sent: an answer to be
 * cached is stored from that body (serialised once, by Apollo), and a public GET gets an `ETag`
 * over it and a `304` when the client already holds it.
 */
export function registerGraphqlRoute(
  app: FastifyInstance,
  path: string,
  apollo: ApolloServer<BffContext>,
  createContext: (request: FastifyRequest, reply: FastifyReply) => Promise<BffContext>,
  cache: BffResponseCache | undefined,
  fast: FastRoute<BffContext> | undefined,
): void {
  app.route({
    url: path,
    method: ['GET', 'POST'],
    async handler(request, reply) {
      let context: BffContext | undefined;
      /** The answer as sent, when it is one the cache may hold (a complete 200). */
      let sent: string | undefined;
      try {
        const makeContext = async () => {
          context = await createContext(request, reply);
          return context;
        };
        const plan = fast?.plan(request);
        const response = plan
          ? await (fast as FastRoute<BffContext>).run(plan, request, makeContext)
          : await apollo.executeHTTPGraphQLRequest({
              httpGraphQLRequest: graphqlRequestOf(request),
              context: makeContext,
            });
        for (const [name, value] of response.headers) reply.header(name, value);
        reply.code(response.status ?? 200);
        if (response.body.kind !== 'complete') return reply.send(Readable.from(response.body.asyncIterator));
        const body = response.body.string;
        if ((response.status ?? 200) === 200) sent = body;
        if (request.method === 'GET' && notModified(request, reply, body)) return '';
        return body;
      } finally {
        // Whatever happened, the write the cache handed over is done (or dropped) before the
        // request ends: whoever waits for this execution must not wait for nothing.
        if (cache && context) await cache.storeSent(context, sent);
      }
    },
  });
}

/** Apollo's view of the request. */
function graphqlRequestOf(request: FastifyRequest): HTTPGraphQLRequest {
  const headers = headerMapOf(request);
  const { url } = request;
  const query = url.indexOf('?');
  return {
    method: request.method.toUpperCase(),
    headers,
    // The query string as sent (`?` included), as Apollo reads GET requests from it.
    search: query < 0 ? '' : url.slice(query),
    body: request.body,
  };
}
