import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { JwtVerifier } from '@bff/auth';
import { readSessionToken, refuseUnservableOperation, TokenRejectedError } from '@bff/auth';
import { BffErrorCode } from '@bff/error-codes';
import type { EventBus } from '@bff/events';
import { LiveEvents } from '@bff/live-events';
import { createLoaders, type Loaders, type Upstreams } from '@bff/loaders';
import type { BffMetrics } from '@bff/observability';
import type { OperationLimits } from '@bff/operation-limits';
import { limitValidationRules, operationCost } from '@bff/operation-limits';
import type { RateLimiting } from '@bff/rate-limit';
import { type BffContext, negotiateLocale, type Viewer } from '@bff/resolvers';
import type { FastifyInstance } from 'fastify';
import {
  type ExecutionArgs,
  GraphQLError,
  type GraphQLSchema,
  getOperationAST,
  getVariableValues,
  specifiedRules,
} from 'graphql';
import { type WebSocket, WebSocketServer } from 'ws';
import { formatError } from './error-handling.ts';
import type { BffServerOptions, BffSubscriptionOptions } from './options.ts';
import { compareVersions } from './request-guards.ts';
import {
  CheckedDocuments,
  coded,
  documentOf,
  formatted,
  rootFieldIsConditional,
  subscribeEach,
  type TrustedDocuments,
  withCode,
} from './subscription-operations.ts';
import { serveGraphqlWs, type WsExtra } from './ws-transport.ts';

/** Close codes beyond graphql-ws's own (4400 bad request, 4401 unauthorized, 4403 forbidden, 4429 too many). */
export const LiveCloseCode = {
  /** The app version is no longer served (HTTP's 426). */
  UpgradeRequired: 4426,
  /** The client did not read what was sent to it: its unread bytes passed `maxBufferedBytes`. */
  SlowConsumer: 4413,
  /** The server is shutting down: reconnect (to another replica), then refetch. */
  GoingAway: 1001,
} as const;

const DEFAULTS = {
  maxPerConnection: 25,
  maxConnectionsPerViewer: 10,
  maxConnections: 10_000,
  keepAliveMs: 20_000,
  maxQueuedEvents: 32,
  maxBufferedBytes: 1024 * 1024,
  connectionInitWaitMs: 5_000,
} as const;

/** The events subscriptions follow, and the topics each concerns (see the resolvers' LiveSource). */
const LIVE_TOPICS: Readonly<Record<string, (payload: unknown) => readonly string[]>> = {
  'product.price_changed': (payload) => topicOf('product', payload, 'productId'),
  'billing.invoice.created': (payload) => topicOf('invoices', payload, 'userId'),
  'billing.invoice.paid': (payload) => topicOf('invoices', payload, 'userId'),
};

function topicOf(kind: string, payload: unknown, field: string): readonly string[] {
  const value = (payload as Record<string, unknown> | null | undefined)?.[field];
  return typeof value === 'string' && value.length > 0 && value.length <= 200 ? [`${kind}:${value}`] : [];
}

/** One WebSocket connection's state. */
interface Connection {
  viewer: Viewer | null;
  locale: string;
  clientAddress: string;
  /** Subscriptions being served, by the client's id. */
  subscriptions: Set<string>;
  expiry: NodeJS.Timeout | undefined;
}

export interface BffSubscriptions {
  /** Open connections and active subscriptions now, and events delivered so far. */
  stats(): { connections: number; subscriptions: number; delivered: number };
  /** Starts listening to the domain events. */
  start(): Promise<void>;
  /** Closes every socket with 1001 and a reason, then stops listening to events. */
  close(): Promise<void>;
}

export interface SubscriptionSettings {
  options: BffServerOptions;
  schema: GraphQLSchema;
  verifier: JwtVerifier;
  limits: OperationLimits;
  exposeLimits: boolean;
  /** The app's trusted documents, by hash, and whether only they may run. */
  persisted: TrustedDocuments | undefined;
  rateLimiting: RateLimiting | undefined;
  upstreams: Upstreams;
  bus: EventBus;
  metrics: BffMetrics;
  log: FastifyInstance['log'];
  /** True once the process is draining: new connections are refused. */
  draining: () => boolean;
}

/**
 * GraphQL subscriptions over WebSocket (`graphql-transport-ws`, graphql-ws's server on `ws`),
 * on the same path as HTTP. Everything the HTTP path checks is checked here: the token (in
 * `connection_init`'s `Authorization`, or the web session cookie on the upgrade) when the
 * connection opens, ending it with 4401 when the token expires (4403: another app's token);
 * `Origin` against the app's CORS origins; the app-version policy; and per subscription the
 * parse and validation limits, cost, trusted documents, `@auth`/`@hasRole` and the rate limits.
 * Only subscriptions are served here (queries and mutations go over HTTP).
 *
 * Events come from one transient bus subscription per process (`@bff/live-events`), each
 * executed once per subscriber with loaders made once per event.
 */
export function registerSubscriptions(
  app: FastifyInstance,
  path: string,
  settings: SubscriptionSettings,
): BffSubscriptions {
  const {
    options,
    schema,
    verifier,
    limits,
    exposeLimits,
    persisted,
    rateLimiting,
    upstreams,
    metrics,
    log,
  } = settings;
  const config = subscriptionOptions(options.subscriptions);
  const live = new LiveEvents<Loaders>({
    bus: settings.bus,
    name: `bff-${options.app}-subscriptions`,
    topics: LIVE_TOPICS,
    maxQueued: config.maxQueuedEvents,
    // A burst about one product (or invoice) reaches a subscriber as its latest change: each
    // execution reads the entity's current state, so nothing is lost.
    keyOf: (event) => {
      const payload = event.payload as Record<string, unknown> | null | undefined;
      const id = event.type === 'product.price_changed' ? payload?.productId : payload?.invoiceId;
      return typeof id === 'string'
        ? `${event.type === 'product.price_changed' ? 'product' : 'invoice'}:${id}`
        : undefined;
    },
    // One set of loaders per event, shared by every subscriber it reaches on this replica.
    batchOf: () => createLoaders(upstreams, { deadline: Date.now() + options.policy.operationBudgetMs }),
    onError: (error, event) =>
      log.warn({ err: error, eventType: event?.type }, 'subscriptions: event dropped'),
  });
  const connections = new Map<object, Connection>();
  const perViewer = new Map<string, number>();
  let subscriptions = 0;
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: limits.maxBodyBytes,
    perMessageDeflate: false,
  });
  const origins =
    options.corsOrigins && options.corsOrigins.length > 0 ? new Set(options.corsOrigins) : undefined;

  const refuseUpgrade = (socket: Duplex, status: number, reason: string) => {
    metrics.liveRefusals.inc({ code: String(status) });
    socket.end(`HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
  };

  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = request.url ?? '';
    const query = url.indexOf('?');
    if ((query < 0 ? url : url.slice(0, query)) !== path) return refuseUpgrade(socket, 404, 'Not Found');
    if (settings.draining()) return refuseUpgrade(socket, 503, 'Service Unavailable');
    // A browser always sends Origin: another site's page must not ride this user's cookie
    // (cross-site WebSocket hijacking). Clients that are not browsers send none.
    const origin = request.headers.origin;
    if (origin !== undefined && !(origins?.has(origin) ?? sameOrigin(origin, request.headers.host)))
      return refuseUpgrade(socket, 403, 'Forbidden');
    // Every socket counts, those still to send connection_init included.
    if (wss.clients.size >= config.maxConnections) return refuseUpgrade(socket, 503, 'Service Unavailable');
    wss.handleUpgrade(request, socket, head, (ws) => wss.emit('connection', ws, request));
  };
  app.server.on('upgrade', onUpgrade);

  const closeWith = (ctx: { extra: WsExtra }, code: number, reason: string) => {
    metrics.liveRefusals.inc({ code: String(code) });
    ctx.extra.socket.close(code, reason);
  };

  const documents = new CheckedDocuments(
    schema,
    limits,
    [
      ...specifiedRules,
      ...limitValidationRules(limits, { exposeLimits, introspection: !options.production }),
    ],
    options.production,
  );

  const liveSource = {
    invoicesOf: (userId: string) => live.listen([`invoices:${userId}`]),
    products: (ids: readonly string[]) => live.listen(ids.map((id) => `product:${id}`)),
  };

  const disposable = serveGraphqlWs<Record<string, unknown>>(
    wss,
    {
      schema,
      connectionInitWaitTimeout: config.connectionInitWaitMs,
      async onConnect(ctx) {
        const { request } = ctx.extra;
        const params = ctx.connectionParams ?? {};
        const policy = options.appVersion;
        if (policy) {
          const given = textOf(request.headers['x-app-version']) ?? textOf(params['x-app-version']);
          const order = given === undefined ? 0 : compareVersions(given, policy.minimum);
          if (order === undefined) {
            closeWith(ctx, 4400, 'Bad request: x-app-version must be a version number such as 4.2.0');
            return false;
          }
          if (order < 0) {
            closeWith(
              ctx,
              LiveCloseCode.UpgradeRequired,
              `UPGRADE_REQUIRED ${policy.storeUrl}`.slice(0, 120),
            );
            return false;
          }
        }
        const given = params.Authorization ?? params.authorization;
        const authorization = textOf(given);
        if (given !== undefined && given !== null && authorization === undefined) {
          // Sent, but not a header value: a mistake, never a quiet fall back to signed out.
          closeWith(ctx, 4401, 'Unauthorized: the access token is malformed');
          return false;
        }
        const cookie = options.sessionCookie ? readSessionToken(textOf(request.headers.cookie)) : undefined;
        let viewer: Viewer | null = null;
        try {
          if (authorization !== undefined) {
            const match = /^Bearer +(\S+)$/i.exec(authorization);
            if (!match?.[1]) throw new TokenRejectedError('malformed');
            viewer = await verifier.verify(match[1]);
          } else if (cookie) {
            viewer = await verifier.verify(cookie).catch((error: unknown) => {
              // As on HTTP: a bad cookie is dropped, the connection goes on signed out.
              if (error instanceof TokenRejectedError) return null;
              throw error;
            });
          }
        } catch (error) {
          if (error instanceof TokenRejectedError) {
            if (error.wrongAudience) closeWith(ctx, 4403, 'Forbidden: the token is for another app');
            else closeWith(ctx, 4401, `Unauthorized: the access token is ${error.reason}`);
            return false;
          }
          // Identity's keys cannot be had: the server's fault; the client may try again.
          log.warn({ err: error }, 'subscriptions: could not verify a token');
          closeWith(ctx, 1013, 'Try again later');
          return false;
        }
        // The socket may have closed while the token was verified (graphql-ws has then already
        // said goodbye to it): nothing is registered for it.
        if (ctx.extra.socket.readyState !== ctx.extra.socket.OPEN) return false;
        if (viewer) {
          const open = perViewer.get(viewer.id) ?? 0;
          if (open >= config.maxConnectionsPerViewer) {
            closeWith(
              ctx,
              4429,
              `Too many connections: at most ${config.maxConnectionsPerViewer} per viewer`,
            );
            return false;
          }
          perViewer.set(viewer.id, open + 1);
        }
        const connection: Connection = {
          viewer,
          locale: negotiateLocale(textOf(request.headers['accept-language'])),
          clientAddress: request.socket.remoteAddress ?? 'unknown',
          subscriptions: new Set(),
          expiry: undefined,
        };
        const expiresAt = viewer?.expiresAt;
        if (expiresAt !== undefined) {
          // A connection lives no longer than the token it was opened with.
          connection.expiry = setTimeout(
            () => {
              metrics.liveEnded.inc({ reason: 'expired' }, connection.subscriptions.size);
              ctx.extra.socket.close(4401, 'Unauthorized: the access token has expired');
            },
            Math.max(0, Math.min(expiresAt - Date.now(), 2 ** 31 - 1)),
          );
          connection.expiry.unref();
        }
        connections.set(ctx, connection);
        return true;
      },
      async onSubscribe(ctx, id, payload) {
        const connection = connections.get(ctx);
        if (!connection) return [coded('Not connected', BffErrorCode.Unauthenticated)];
        const refuse = (errors: readonly GraphQLError[]) => {
          if (connection.subscriptions.delete(id)) subscriptions--;
          for (const error of errors)
            metrics.liveRefusals.inc({ code: String(error.extensions.code ?? 'UNKNOWN') });
          return errors;
        };
        if (connection.subscriptions.size >= config.maxPerConnection)
          return refuse([
            coded(
              `At most ${config.maxPerConnection} subscriptions per connection`,
              BffErrorCode.TooManySubscriptions,
            ),
          ]);
        // Held from here (released if refused): concurrent subscribe messages count against the cap at once.
        connection.subscriptions.add(id);
        subscriptions++;
        const resolved = documentOf(payload, persisted, limits);
        if (resolved instanceof GraphQLError) return refuse([resolved]);
        const { hash } = resolved;
        const checked = documents.check(resolved.query);
        if (checked instanceof GraphQLError) return refuse([checked]);
        if (checked.invalid.length > 0) return refuse(checked.invalid);
        const { document } = checked;
        const operation = getOperationAST(document, payload.operationName ?? undefined);
        if (!operation)
          return refuse([
            coded(
              'operationName must name one operation of the document',
              BffErrorCode.OperationResolutionFailure,
            ),
          ]);
        if (operation.operation !== 'subscription')
          return refuse([
            coded(
              'Only subscriptions are served over WebSocket: send queries and mutations over HTTP',
              BffErrorCode.BadRequest,
            ),
          ]);
        if (rootFieldIsConditional(document, operation))
          return refuse([
            coded(
              'The root field of a subscription cannot be under @skip or @include',
              BffErrorCode.BadRequest,
            ),
          ]);
        // Coerced before anything reads them (cost, rate limits): `{"length": 4294967295}` is no list.
        const coerced = getVariableValues(
          schema,
          operation.variableDefinitions ?? [],
          payload.variables ?? {},
        );
        if (coerced.errors)
          return refuse(coerced.errors.map((error) => withCode(error, BffErrorCode.BadUserInput)));
        const variables = coerced.coerced;
        const trusted = persisted !== undefined && hash !== undefined && persisted.bodyOf(hash) !== undefined;
        if (!trusted) {
          const cost = operationCost(schema, document, operation, variables, limits.defaultListSize);
          if (cost > limits.maxCost)
            return refuse([
              coded(
                exposeLimits
                  ? `The operation costs ${cost}; at most ${limits.maxCost} is allowed`
                  : 'The operation is too expensive',
                BffErrorCode.OperationLimitExceeded,
                { limit: 'cost' },
              ),
            ]);
        }
        try {
          refuseUnservableOperation(schema, document, operation, connection.viewer);
        } catch (error) {
          if (error instanceof GraphQLError) return refuse([error]);
          throw error;
        }
        const contextValue: BffContext = {
          app: options.app,
          requestId: `${id}`.slice(0, 64),
          viewer: connection.viewer,
          clientAddress: connection.clientAddress,
          locale: connection.locale,
          policy: options.policy,
          // Replaced by each event's own (see subscribeEach); subscribing loads nothing.
          loaders: undefined as unknown as Loaders,
          commands: undefined as never,
          live: liveSource,
        };
        if (rateLimiting) {
          const refusals = await rateLimiting.admit({
            schema,
            document,
            operation,
            variables,
            context: contextValue,
          });
          if (refusals.length > 0) return refuse(refusals);
        }
        return {
          schema,
          document,
          operationName: payload.operationName ?? null,
          variableValues: variables,
          contextValue,
        } satisfies ExecutionArgs;
      },
      subscribe: (args) => subscribeEach(args, (reason) => metrics.liveEnded.inc({ reason })),
      async onNext(ctx, _id, _payload, _args, result) {
        const socket = ctx.extra.socket;
        // What the client has not read yet: past the bound it is cut off instead of growing memory.
        if (socket.bufferedAmount > config.maxBufferedBytes) {
          metrics.liveEnded.inc({ reason: 'slow_socket' }, connections.get(ctx)?.subscriptions.size ?? 1);
          socket.close(LiveCloseCode.SlowConsumer, 'SLOW_CONSUMER: the client did not read its messages');
          return;
        }
        return formatted(result, options.production);
      },
      onError(_ctx, _id, _payload, errors) {
        return errors.map((error) => formatError(error.toJSON(), error, options.production));
      },
      onComplete(ctx, id) {
        const connection = connections.get(ctx);
        if (connection?.subscriptions.delete(id)) subscriptions--;
      },
      onClose(ctx) {
        const connection = connections.get(ctx);
        if (!connection) return;
        connections.delete(ctx);
        subscriptions -= connection.subscriptions.size;
        // A subscribe still being checked must not count itself down again when it is refused.
        connection.subscriptions.clear();
        clearTimeout(connection.expiry);
        const viewerId = connection.viewer?.id;
        if (viewerId !== undefined) {
          const open = (perViewer.get(viewerId) ?? 1) - 1;
          if (open <= 0) perViewer.delete(viewerId);
          else perViewer.set(viewerId, open);
        }
      },
    },
    { keepAliveMs: config.keepAliveMs, log },
  );

  let closing: Promise<void> | undefined;
  return {
    stats: () => ({ connections: connections.size, subscriptions, delivered: live.deliveries }),
    close: () => {
      closing ??= (async () => {
        app.server.off('upgrade', onUpgrade);
        for (const socket of wss.clients as Set<WebSocket>)
          socket.close(LiveCloseCode.GoingAway, 'The server is shutting down: reconnect, then refetch');
        await live.close();
        await disposable.dispose().catch(() => {});
      })();
      return closing;
    },
    start: () => live.start(),
  };
}

/** Options with their defaults, each checked (a TypeError names a bad one). */
export function subscriptionOptions(
  given: BffSubscriptionOptions | undefined,
): Record<keyof typeof DEFAULTS, number> {
  const config: Record<keyof typeof DEFAULTS, number> = { ...DEFAULTS };
  for (const name of Object.keys(DEFAULTS) as (keyof typeof DEFAULTS)[]) {
    const value = given?.[name] ?? DEFAULTS[name];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1)
      throw new TypeError(`subscriptions.${name} must be a positive whole number, received ${String(value)}`);
    config[name] = value;
  }
  return config;
}

/** Whether a page at `origin` is on this host (without CORS origins, only same-origin pages may connect). */
function sameOrigin(origin: string, host: string | undefined): boolean {
  try {
    return host !== undefined && new URL(origin).host === host;
  } catch {
    return false;
  }
}

function textOf(value: unknown): string | undefined {
  if (Array.isArray(value)) return typeof value[0] === 'string' ? value[0] : undefined;
  return typeof value === 'string' && value.length <= 8_192 ? value : undefined;
}
