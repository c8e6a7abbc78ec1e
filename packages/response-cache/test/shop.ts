/**
 * The shop the plugin's tests run: an in-memory database kept as immutable versions (so a test
 * can render any past state and tell which state an answer shows), resolvers that record the
 * entity tags they read and write on the request, a context taken from headers as a BFF would
 * (`x-viewer`, `accept-language`), and an Apollo Server with or without the response cache.
 */
import { readFileSync } from 'node:fs';
import { ApolloServer, type ApolloServerPlugin, HeaderMap } from '@apollo/server';
import { type FormattedExecutionResult, GraphQLError } from 'graphql';
import {
  type CacheOutcome,
  cacheControlDirectiveTypeDefs,
  createResponseCachePlugin,
  MemoryResponseCacheStore,
  type ResponseCachePluginOptions,
  type ResponseCacheStore,
} from '../src/index.ts';

export const shopTypeDefs = [
  cacheControlDirectiveTypeDefs,
  readFileSync(new URL('./shop.graphql', import.meta.url), 'utf8'),
];

export const PRODUCT_NAMES: Readonly<Record<string, string>> = { p1: 'Teapot', p2: 'Kettle', p3: 'Mug' };
export const PRODUCT_IDS = Object.keys(PRODUCT_NAMES);
export const USER_NAMES: Readonly<Record<string, string>> = {
  ada: 'Ada Lovelace',
  grace: 'Grace Hopper',
  admin: 'Admin',
};
export const USER_IDS = Object.keys(USER_NAMES);
export const LOCALES = ['en', 'fr'] as const;
/** A product id whose resolver fails: its answers carry an error. */
export const BROKEN_PRODUCT = 'broken';

export interface Order {
  readonly id: string;
  readonly productId: string;
  readonly owner: string;
}

/** One version of the whole database; never changed once made. */
export interface ShopState {
  readonly version: number;
  readonly prices: Readonly<Record<string, number>>;
  readonly orders: Readonly<Record<string, readonly Order[]>>;
}

interface ProductRecord {
  id: string;
  name: string;
  price: number;
  stock: number;
}

/** Every write makes a new version; `history[v]` is version `v`. */
export class ShopDatabase {
  readonly history: ShopState[] = [
    Object.freeze({ version: 0, prices: Object.freeze({ p1: 1250, p2: 3999, p3: 500 }), orders: {} }),
  ];
  /** Root query resolvers run, by field: how a test sees that a request executed. */
  readonly executions = new Map<string, number>();

  get state(): ShopState {
    return this.history[this.history.length - 1] as ShopState;
  }

  executed(field?: string): number {
    if (field) return this.executions.get(field) ?? 0;
    return [...this.executions.values()].reduce((sum, n) => sum + n, 0);
  }

  count(field: string): void {
    this.executions.set(field, this.executed(field) + 1);
  }

  setPrice(id: string, price: number): ShopState {
    const state = this.state;
    return this.commit({ ...state, prices: Object.freeze({ ...state.prices, [id]: price }) });
  }

  addOrder(owner: string, productId: string): Order {
    const state = this.state;
    const mine = state.orders[owner] ?? [];
    const order = Object.freeze({ id: `${owner}-${mine.length + 1}`, productId, owner });
    this.commit({
      ...state,
      orders: Object.freeze({ ...state.orders, [owner]: Object.freeze([...mine, order]) }),
    });
    return order;
  }

  private commit(next: Omit<ShopState, 'version'>): ShopState {
    const state = Object.freeze({ ...next, version: this.history.length });
    this.history.push(state);
    return state;
  }
}

/** What one request did, shared by every copy Apollo makes of its context. */
export interface RequestRecord {
  readonly read: Set<string>;
  readonly wrote: Set<string>;
  /** The versions its writes made. */
  readonly versions: number[];
  /** The state the request read, taken at its first read (or pinned by the test). */
  snapshot: ShopState | undefined;
  outcome: CacheOutcome | undefined;
  /** The write the plugin handed to the "HTTP layer" (`deferStore`), called by `run` with the body. */
  pendingStore?: ((body: string | undefined) => Promise<void>) | undefined;
}

/**
 * What every shop does unless its options say otherwise: `deferStore` true makes each shop
 * store its answers as the BFF does, from the body the HTTP layer serialised (`run` plays that
 * layer); a test file sets it to run another file's tests that way.
 */
export const shopDefaults = { deferStore: false };

export interface ShopContext {
  viewer: string | undefined;
  locale: string;
  db: ShopDatabase;
  record: RequestRecord;
  /** Awaited by every root resolver (queries after reading, mutations before writing): tests hold requests here. */
  pause: ((field: string) => Promise<void>) | undefined;
}

/** The context a BFF would build from the request's headers. */
export function shopContext(
  header: (name: string) => string | undefined,
  db: ShopDatabase,
  extra: { pause?: ShopContext['pause']; snapshot?: ShopState | undefined } = {},
): ShopContext {
  const viewer = header('x-viewer');
  const language = header('accept-language')?.slice(0, 2);
  return {
    viewer: viewer && viewer in USER_NAMES ? viewer : undefined,
    locale: LOCALES.find((locale) => locale === language) ?? 'en',
    db,
    record: { read: new Set(), wrote: new Set(), versions: [], snapshot: extra.snapshot, outcome: undefined },
    pause: extra.pause,
  };
}

/** The state this request reads, recording that it read `tag`. */
function read(context: ShopContext, tag: string): ShopState {
  context.record.read.add(tag);
  context.record.snapshot ??= context.db.state;
  return context.record.snapshot;
}

function productOf(state: ShopState, id: string): ProductRecord | null {
  const name = PRODUCT_NAMES[id];
  const price = state.prices[id];
  if (name === undefined || price === undefined) return null;
  return { id, name, price, stock: 7 * id.length };
}

function priceLabel(cents: number, locale: string): string {
  const units = `${Math.trunc(cents / 100)}`;
  const hundredths = `${cents % 100}`.padStart(2, '0');
  return locale === 'fr' ? `${units},${hundredths} €` : `€${units}.${hundredths}`;
}

export const shopResolvers = {
  Query: {
    async product(_: unknown, { id }: { id: string }, context: ShopContext) {
      context.db.count('product');
      const state = read(context, `Product:${id}`);
      if (id === BROKEN_PRODUCT) throw new GraphQLError(`product ${id} is unavailable`);
      await context.pause?.('product');
      return productOf(state, id);
    },
    async products(_: unknown, __: unknown, context: ShopContext) {
      context.db.count('products');
      const state = read(context, 'Products');
      for (const id of PRODUCT_IDS) read(context, `Product:${id}`);
      await context.pause?.('products');
      return PRODUCT_IDS.map((id) => productOf(state, id));
    },
    async me(_: unknown, __: unknown, context: ShopContext) {
      context.db.count('me');
      const { viewer } = context;
      if (!viewer) return null;
      read(context, `User:${viewer}`);
      await context.pause?.('me');
      return { id: viewer, name: USER_NAMES[viewer] };
    },
  },
  Mutation: {
    async setPrice(_: unknown, { id, price }: { id: string; price: number }, context: ShopContext) {
      await context.pause?.('setPrice');
      if (PRODUCT_NAMES[id] === undefined) throw new GraphQLError(`no product ${id}`);
      context.record.wrote.add(`Product:${id}`);
      const state = context.db.setPrice(id, price);
      context.record.versions.push(state.version);
      return productOf(state, id);
    },
    async addOrder(_: unknown, { productId }: { productId: string }, context: ShopContext) {
      const { viewer } = context;
      if (!viewer) throw new GraphQLError('sign in to order');
      await context.pause?.('addOrder');
      context.record.wrote.add(`Orders:${viewer}`);
      const order = context.db.addOrder(viewer, productId);
      context.record.versions.push(context.db.state.version);
      return order;
    },
  },
  Product: {
    priceLabel: (product: ProductRecord, _: unknown, context: ShopContext) =>
      priceLabel(product.price, context.locale),
    viewerNote(product: ProductRecord, _: unknown, context: ShopContext) {
      const { viewer } = context;
      if (!viewer) return null;
      const orders = read(context, `Orders:${viewer}`).orders[viewer] ?? [];
      const count = orders.filter((order) => order.productId === product.id).length;
      return `${viewer} ordered ${count}`;
    },
  },
  Viewer: {
    orders: (viewer: { id: string }, _: unknown, context: ShopContext) =>
      read(context, `Orders:${viewer.id}`).orders[viewer.id] ?? [],
  },
};

/** A clock the test moves. */
export interface ManualClock {
  now(): number;
  advance(ms: number): void;
}

export function manualClock(start = 1_700_000_000_000): ManualClock {
  let now = start;
  return {
    now: () => now,
    advance: (ms) => {
      now += ms;
    },
  };
}

/** A promise and the function that settles it. */
export interface Deferred<T = void> {
  promise: Promise<T>;
  resolve(value: T): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve: (value: T) => void = () => {};
  const promise = new Promise<T>((settle) => {
    resolve = settle;
  });
  return { promise, resolve };
}

export interface ShopRequest {
  query: string;
  variables?: Record<string, unknown>;
  operationName?: string;
  /** `x-viewer`; left out for an anonymous request. */
  viewer?: string | undefined;
  /** `accept-language`. */
  locale?: string;
  headers?: Record<string, string>;
  pause?: ShopContext['pause'];
  /** Render this version instead of the current one (the reference server). */
  snapshot?: ShopState | undefined;
}

export interface ShopResponse {
  body: FormattedExecutionResult;
  /** The body as a client would receive it. */
  text: string;
  headers: HeaderMap;
  status: number | undefined;
  outcome: CacheOutcome | undefined;
  record: RequestRecord;
}

export interface ShopOptions {
  /** false: no response cache (the reference server). @default true */
  cache?: boolean;
  db?: ShopDatabase;
  store?: ResponseCacheStore;
  clock?: ManualClock;
  /** Overrides of the plugin's options. */
  plugin?: Partial<ResponseCachePluginOptions<ShopContext>>;
  /** Installed after the cache plugin. */
  plugins?: ApolloServerPlugin<ShopContext>[];
  /** Apollo's batched HTTP requests (several operations in one POST). @default false */
  allowBatchedHttpRequests?: boolean;
  /** Store answers from the serialised body, as the BFF's HTTP layer does. @default shopDefaults.deferStore */
  deferStore?: boolean;
}

export interface Shop {
  server: ApolloServer<ShopContext>;
  /** What requests read and write from now on (a test may start a new one). */
  db: ShopDatabase;
  store: ResponseCacheStore;
  clock: ManualClock;
  /** Every outcome reported, in order. */
  outcomes: CacheOutcome[];
  pluginOptions: ResponseCachePluginOptions<ShopContext>;
  run(request: ShopRequest): Promise<ShopResponse>;
}

export function requestHeaders(request: Pick<ShopRequest, 'viewer' | 'locale' | 'headers'>): HeaderMap {
  const headers = new HeaderMap([['content-type', 'application/json']]);
  if (request.viewer !== undefined) headers.set('x-viewer', request.viewer);
  if (request.locale !== undefined) headers.set('accept-language', request.locale);
  for (const [name, value] of Object.entries(request.headers ?? {})) headers.set(name.toLowerCase(), value);
  return headers;
}

/** The shop's options for the plugin, as a BFF would wire them. */
export function shopPluginOptions(
  store: ResponseCacheStore,
  clock: ManualClock,
  outcomes: CacheOutcome[],
  overrides: Partial<ResponseCachePluginOptions<ShopContext>> = {},
): ResponseCachePluginOptions<ShopContext> {
  const { onOutcome, ...rest } = overrides;
  return {
    store,
    app: 'web',
    viewerKeyOf: (context) => context.viewer,
    localeOf: (context) => context.locale,
    appVersionOf: (request) => request.http?.headers.get('x-app-version'),
    readTagsOf: (context) => context.record.read,
    writtenTagsOf: (context) => context.record.wrote,
    onOutcome: (outcome, context) => {
      context.record.outcome = outcome;
      outcomes.push(outcome);
      onOutcome?.(outcome, context);
    },
    now: clock.now,
    ...rest,
  };
}

/** Apollo logs unexpected errors; the tests that cause them look at the answers instead. */
const quietLogger = { debug() {}, info() {}, warn() {}, error() {} };

export function createShop(options: ShopOptions = {}): Shop {
  const db = options.db ?? new ShopDatabase();
  const clock = options.clock ?? manualClock();
  const store = options.store ?? new MemoryResponseCacheStore({ now: clock.now });
  const outcomes: CacheOutcome[] = [];
  const pluginOptions = shopPluginOptions(store, clock, outcomes, {
    ...((options.deferStore ?? shopDefaults.deferStore)
      ? {
          deferStore: (context: ShopContext, write: (body: string | undefined) => Promise<void>) => {
            context.record.pendingStore = write;
            return true;
          },
        }
      : {}),
    ...options.plugin,
  });
  const server = new ApolloServer<ShopContext>({
    typeDefs: shopTypeDefs,
    resolvers: shopResolvers,
    includeStacktraceInErrorResponses: false,
    allowBatchedHttpRequests: options.allowBatchedHttpRequests ?? false,
    logger: quietLogger,
    plugins: [
      ...(options.cache === false ? [] : [createResponseCachePlugin(pluginOptions)]),
      ...(options.plugins ?? []),
    ],
  });
  const run = async (request: ShopRequest): Promise<ShopResponse> => {
    const headers = requestHeaders(request);
    const contextValue = shopContext((name) => headers.get(name), shop.db, {
      pause: request.pause,
      snapshot: request.snapshot,
    });
    const response = await server.executeOperation(
      {
        query: request.query,
        ...(request.variables ? { variables: request.variables } : {}),
        ...(request.operationName ? { operationName: request.operationName } : {}),
        http: {
          method: 'POST',
          headers,
          search: '',
          body: { query: request.query, variables: request.variables, operationName: request.operationName },
        },
      },
      { contextValue },
    );
    if (response.body.kind !== 'single') throw new Error('expected a single result');
    const body = response.body.singleResult;
    const text = JSON.stringify(body);
    // The HTTP layer's part: the body as it is sent (Apollo ends it with a newline).
    await contextValue.record.pendingStore?.(`${text}\n`);
    return {
      body,
      text,
      headers: response.http.headers,
      status: response.http.status,
      outcome: contextValue.record.outcome,
      record: contextValue.record,
    };
  };
  const shop: Shop = { server, db, store, clock, outcomes, pluginOptions, run };
  return shop;
}

/**
 * A store that forwards to `target()` (which a test may swap), with some methods replaced:
 * slow, failing or watched stores for the tests.
 */
export function delegatingStore(
  target: () => ResponseCacheStore,
  overrides: Partial<Pick<ResponseCacheStore, 'get' | 'set' | 'invalidate'>> = {},
): ResponseCacheStore {
  return {
    get: overrides.get ?? ((key) => target().get(key)),
    set: overrides.set ?? ((...args) => target().set(...args)),
    invalidate: overrides.invalidate ?? ((tags) => target().invalidate(tags)),
    get stats() {
      return target().stats;
    },
    close: () => target().close(),
  };
}
