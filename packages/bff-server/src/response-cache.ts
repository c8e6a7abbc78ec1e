import { createHash } from 'node:crypto';
import type { ApolloServerPlugin } from '@apollo/server';
import type { EventBus, EventEnvelope, Subscription } from '@bff/events';
import { type EntityKind, type EntityLog, entityTag } from '@bff/loaders';
import type { BffMetrics } from '@bff/observability';
import type { BffContext } from '@bff/resolvers';
import {
  type CacheOutcome,
  createResponseCachePlugin,
  MemoryResponseCacheStore,
  RedisResponseCacheStore,
  type ResponseCachePluginOptions,
  type ResponseCacheStore,
} from '@bff/response-cache';
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify';
import type { BffServerOptions } from './options.ts';

/** What one request read and wrote, kept on its context (a symbol: Apollo copies contexts shallowly). */
class RequestEntities implements EntityLog {
  // Kinds and ids side by side, as read: tags are only built for an answer that is stored.
  private readonly readKinds: EntityKind[] = [];
  private readonly readIds: string[] = [];
  private writes: string[] | undefined;
  /** The write of this request's answer, handed to the HTTP layer, which has the body as sent. */
  pendingStore: ((body: string | undefined) => Promise<void>) | undefined;
  read(kind: EntityKind, id: string) {
    this.readKinds.push(kind);
    this.readIds.push(id);
  }
  wrote(kind: EntityKind, id: string) {
    this.writes ??= [];
    this.writes.push(`${kind}:${id}`);
  }
  /** The tags of what was read (repeats included: the stores drop them). */
  readTags(): string[] {
    const tags = new Array<string>(this.readIds.length);
    for (let i = 0; i < tags.length; i++) tags[i] = `${this.readKinds[i]}:${this.readIds[i]}`;
    return tags;
  }
  writtenTags(): readonly string[] {
    return this.writes ?? NOTHING;
  }
}
const ENTITIES = Symbol('bff.request-entities');
const entitiesOf = (context: BffContext) =>
  (context as unknown as Record<symbol, RequestEntities | undefined>)[ENTITIES];

const NOTHING: readonly string[] = Object.freeze([]);

/** A short, printable id from an event payload, or undefined (a malformed event invalidates nothing it cannot name). */
function idOf(payload: unknown, field: string): string | undefined {
  const value = (payload as Record<string, unknown> | null | undefined)?.[field];
  return typeof value === 'string' && value.length > 0 && value.length <= 200 ? value : undefined;
}

/**
 * The entities each domain event changes. A product's new price changes every response that
 * showed the product; a new or paid invoice changes its user's invoice lists and the invoice.
 */
export const INVALIDATING_EVENTS: Readonly<Record<string, (payload: unknown) => readonly string[]>> = {
  'product.price_changed': (payload) => {
    const id = idOf(payload, 'productId');
    return id ? [entityTag.product(id)] : NOTHING;
  },
  'billing.invoice.created': invoiceTags,
  'billing.invoice.paid': invoiceTags,
};

function invoiceTags(payload: unknown): readonly string[] {
  const tags: string[] = [];
  const invoiceId = idOf(payload, 'invoiceId');
  const userId = idOf(payload, 'userId');
  if (invoiceId) tags.push(entityTag.invoice(invoiceId));
  if (userId) tags.push(entityTag.invoicesOf(userId));
  return tags;
}

export interface BffResponseCache {
  readonly store: ResponseCacheStore;
  plugin: ApolloServerPlugin<BffContext>;
  /** A fresh log of what one request reads and writes, for its loaders and commands. */
  entityLog(): EntityLog;
  /** Ties the log to the request's GraphQL context, for the plugin. */
  bind(context: BffContext, log: EntityLog): void;
  /**
   * Stores the request's answer, if the plugin handed its write over, from the body as it was
   * sent (undefined: none was, or not one to cache). Called by the GraphQL route once per request.
   */
  storeSent(context: BffContext, body: string | undefined): Promise<void>;
  /** Listens for the domain events that invalidate entries (every replica hears every event). */
  start(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The BFF's response cache: the store (Redis shared by every replica when `redisUrl` is set,
 * else this process's memory), the Apollo plugin, and the invalidation driven by domain
 * events, which every replica receives on a subscription of its own.
 */
export function createBffResponseCache(
  options: BffServerOptions,
  settings: {
    /** The domain events that invalidate entries; none: entries live until their max age. */
    events: EventBus | undefined;
    log: FastifyBaseLogger;
    metrics: BffMetrics;
    onOutcome: (outcome: CacheOutcome, context: BffContext) => void;
    /** Spends the rate limits a cached answer's operation would have spent; its refusals. */
    admit?: ResponseCachePluginOptions<BffContext>['admit'];
  },
): BffResponseCache {
  const config = options.responseCache ?? {};
  const store: ResponseCacheStore = config.redisUrl
    ? new RedisResponseCacheStore({
        url: config.redisUrl,
        prefix: `${config.keyPrefix ?? 'bff'}:cache:`,
        timeoutMs: config.storeTimeoutMs ?? 150,
      })
    : new MemoryResponseCacheStore({ maxBytes: config.maxBytes ?? 64 * 1024 * 1024 });
  const { log, metrics } = settings;
  let subscription: Subscription | undefined;

  const invalidate = async (tags: readonly string[], source: 'event' | 'mutation') => {
    if (tags.length === 0) return 0;
    const dropped = await store.invalidate(tags);
    metrics.responseCacheInvalidations.inc({ source }, dropped);
    return dropped;
  };

  const plugin = createResponseCachePlugin<BffContext>({
    store,
    app: options.app,
    // Roles are part of who the viewer is: an answer made for an admin is not a user's.
    viewerKeyOf: (context) => {
      const viewer = context.viewer;
      if (!viewer) return undefined;
      const { roles } = viewer;
      return `${viewer.id}|${roles.length < 2 ? (roles[0] ?? '') : [...roles].sort().join(',')}`;
    },
    localeOf: (context) => context.locale,
    appVersionOf: options.appVersion
      ? (request) => request.http?.headers.get('x-app-version')?.slice(0, 32)
      : undefined,
    vary: options.appVersion ? ['x-app-version'] : [],
    readTagsOf: (context) => entitiesOf(context)?.readTags() ?? NOTHING,
    // Stored from the body the GraphQL route sends (graphql-route.ts): serialised once, not twice.
    deferStore: (context, write) => {
      const entities = entitiesOf(context);
      if (!entities) return false;
      entities.pendingStore = write;
      return true;
    },
    writtenTagsOf: (context) => entitiesOf(context)?.writtenTags() ?? NOTHING,
    onOutcome: settings.onOutcome,
    admit: settings.admit,
    onInvalidated: (dropped) => metrics.responseCacheInvalidations.inc({ source: 'mutation' }, dropped),
    ...(config.coalesceWaitMs === undefined ? {} : { coalesceWaitMs: config.coalesceWaitMs }),
  });

  return {
    store,
    plugin,
    entityLog: () => new RequestEntities(),
    bind(context, entityLog) {
      (context as unknown as Record<symbol, EntityLog>)[ENTITIES] = entityLog;
    },
    async storeSent(context, body) {
      const entities = entitiesOf(context);
      const write = entities?.pendingStore;
      if (!entities || !write) return;
      entities.pendingStore = undefined;
      await write(body);
    },
    async start() {
      if (store instanceof RedisResponseCacheStore && !(await store.ready()))
        log.warn('response cache: Redis not reachable at start; serving from the upstreams until it is');
      const bus = settings.events;
      if (!bus) return;
      subscription = await bus.subscribe(
        `bff-${options.app}-response-cache`,
        Object.keys(INVALIDATING_EVENTS),
        async (event: EventEnvelope) => {
          const tags = INVALIDATING_EVENTS[event.type]?.(event.payload) ?? NOTHING;
          await invalidate(tags, 'event');
        },
        {
          transient: true,
          // Events published while this replica was cut off are lost: what it cached alone
          // may show them, so it starts again from nothing. (A Redis cache shared with
          // replicas that stayed connected has been invalidated by them.)
          onGap: () => {
            if (store instanceof MemoryResponseCacheStore)
              void store.clear().then((dropped) => {
                metrics.responseCacheInvalidations.inc({ source: 'gap' }, dropped);
                log.warn({ dropped }, 'response cache: event stream had a gap; local cache cleared');
              });
          },
        },
      );
    },
    async close() {
      await subscription?.unsubscribe().catch(() => {});
      await store.close();
    },
  };
}

/** Entity tags are opaque to HTTP; the ETag is over the body that would be sent. */
const etagOf = (body: string) => `"${createHash('sha1').update(body).digest('base64url')}"`;

function matches(ifNoneMatch: string, etag: string): boolean {
  const weak = (tag: string) => tag.trim().replace(/^W\//, '');
  return ifNoneMatch.split(',').some((tag) => tag.trim() === '*' || weak(tag) === etag);
}

/**
 * HTTP caching of a public GraphQL answer to a GET: one sent with `Cache-Control: public` gets
 * an `ETag` over its body, and a matching `If-None-Match` gets `304 Not Modified` instead of the
 * body (true: send nothing). Private and uncacheable answers are left as they are.
 */
export function notModified(request: FastifyRequest, reply: FastifyReply, body: string): boolean {
  if (reply.statusCode !== 200) return false;
  const cacheControl = reply.getHeader('cache-control');
  if (typeof cacheControl !== 'string' || !cacheControl.startsWith('public')) return false;
  const etag = etagOf(body);
  reply.header('etag', etag);
  const ifNoneMatch = request.headers['if-none-match'];
  if (typeof ifNoneMatch !== 'string' || ifNoneMatch.length > 2_048 || !matches(ifNoneMatch, etag))
    return false;
  reply.code(304);
  reply.removeHeader('content-type');
  reply.removeHeader('content-length');
  return true;
}
