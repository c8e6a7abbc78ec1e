// The whole system for end-to-end suites: the three real services on port 0 with in-memory
// PGlite and one in-process bus, and a way to start any BFF app against them that counts
// every upstream call it makes. The apps are the ones apps/ declares (scripts/app-discovery.ts):
// a suite that covers every app runs `describe.each(appNames)` and picks up a new one unedited.
import type { BffServerOptions, RunningBff } from '@bff/bff-server';
import { startBillingService } from '@bff/billing-service';
import { type EventBus, InProcessEventBus } from '@bff/events';
import { startIdentityService } from '@bff/identity-service';
import { startProductService } from '@bff/product-service';
import type { AppName } from '@bff/resolvers';
import { createProductClient, type UpstreamCall } from '@bff/upstream-clients';
import { pino } from 'pino';
import {
  type BffAppModule,
  type DiscoveredApp,
  discoverApps,
  findApp,
  loadAppModule,
} from '../../scripts/app-discovery.ts';

/** Every app under apps/, by default port (web, iOS, Android, then any new one). */
export const discoveredApps: readonly DiscoveredApp[] = discoverApps();
/** Their names, for `describe.each(appNames)`. */
export const appNames: readonly AppName[] = discoveredApps.map((app) => app.name);
/** The apps that ship trusted documents (mobile): their manifests run in production. */
export const persistedOperationApps: readonly DiscoveredApp[] = discoveredApps.filter(
  (app) => app.persistedOperations,
);

const modules = new Map<AppName, Promise<BffAppModule>>(
  discoveredApps.map((app) => [app.name, loadAppModule(app)]),
);
// Imported with this module, as static imports would be: loading an app's module graph is the
// slow part of a first start, and belongs to the file's import, not to a test's hook budget.
await Promise.all(modules.values());

/** The app's package entry (`startBff`, `policy`). An unknown name throws, listing the apps. */
export async function appModule(name: AppName): Promise<BffAppModule> {
  // Every discovered app is loaded above, so a miss is a name no app declares: findApp says so.
  return modules.get(name) ?? loadAppModule(findApp(name, discoveredApps));
}

export interface System {
  identityUrl: string;
  billingUrl: string;
  productAddr: string;
  /** An access token for a demo user, for one app. */
  token(email: string, audience: AppName): Promise<string>;
  /** The bus the services publish on (the BFFs' caches listen to it). */
  bus: EventBus;
  close(): Promise<void>;
}

/**
 * The services on PGlite. Events go through `options.bus` when given (e.g. RabbitMQ, owned and
 * closed by the caller), otherwise through an in-process bus of the system's own.
 */
export async function startSystem(options: { bus?: EventBus } = {}): Promise<System> {
  const bus = options.bus ?? new InProcessEventBus();
  const product = await startProductService({
    port: 0,
    database: { schema: 'product' },
    bus,
    logger: pino({ level: 'silent' }),
  });
  const identity = await startIdentityService({
    port: 0,
    database: { schema: 'identity' },
    bus,
    // Tokens for every app there is, as `pnpm start` configures Identity.
    audiences: appNames,
    logLevel: false,
  });
  const products = createProductClient({ address: product.address });
  const billing = await startBillingService({
    port: 0,
    database: { schema: 'billing' },
    bus,
    products,
    logLevel: false,
  });
  const tokens = new Map<string, string>();
  return {
    identityUrl: identity.url,
    billingUrl: billing.url,
    productAddr: product.address,
    bus,
    async token(email, audience) {
      const key = `${email}|${audience}`;
      const cached = tokens.get(key);
      if (cached) return cached;
      const response = await fetch(`${identity.url}/v1/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email, password: 'demo-password', audience }),
      });
      if (response.status !== 200) throw new Error(`token for ${email}: ${response.status}`);
      const token = ((await response.json()) as { access_token: string }).access_token;
      tokens.set(key, token);
      return token;
    },
    async close() {
      await billing.close();
      products.close();
      await identity.close();
      await product.close();
      if (!options.bus) await bus.close();
    },
  };
}

export interface TestApp {
  name: AppName;
  url: string;
  bff: RunningBff;
  /** Upstream calls since the last `resetCalls()`. */
  calls: UpstreamCall[];
  resetCalls(): void;
  /** POSTs a GraphQL operation; returns status, parsed body and headers. */
  graphql(
    query: string,
    options?: { variables?: Record<string, unknown>; token?: string; headers?: Record<string, string> },
  ): Promise<{ status: number; body: GraphQLBody; headers: Headers; text: string }>;
  close(): Promise<void>;
}

export interface GraphQLBody {
  // biome-ignore lint/suspicious/noExplicitAny: test responses are read field by field
  data?: any;
  errors?: { message: string; path?: (string | number)[]; extensions?: Record<string, unknown> }[];
}

export async function startApp(
  name: AppName,
  system: Pick<System, 'identityUrl' | 'billingUrl' | 'productAddr'> & { bus?: EventBus },
  overrides: {
    production?: boolean;
    graphiql?: boolean;
    productAddr?: string;
    identityUrl?: string;
    billingUrl?: string;
    upstreamTimeoutMs?: number;
    resilience?: BffServerOptions['resilience'];
    shutdownGraceMs?: number;
    jwksUrl?: string;
    tokenIssuer?: string;
    auth?: BffServerOptions['auth'];
    rateLimit?: BffServerOptions['rateLimit'];
    corsOrigins?: string[];
    appVersion?: BffServerOptions['appVersion'];
    logDestination?: { write(line: string): void };
    executor?: BffServerOptions['executor'];
    observability?: BffServerOptions['observability'];
    logLevel?: string;
    responseCache?: BffServerOptions['responseCache'];
    /** The domain events (default: the system's bus). */
    events?: EventBus;
    subscriptions?: BffServerOptions['subscriptions'];
    sessionCookie?: boolean;
    fastRoute?: boolean;
  } = {},
): Promise<TestApp> {
  const calls: UpstreamCall[] = [];
  const { startBff } = await appModule(name);
  const bff = await startBff({
    port: 0,
    identityUrl: overrides.identityUrl ?? system.identityUrl,
    billingUrl: overrides.billingUrl ?? system.billingUrl,
    productAddr: overrides.productAddr ?? system.productAddr,
    ...(overrides.resilience ? { resilience: overrides.resilience } : {}),
    ...(overrides.shutdownGraceMs ? { shutdownGraceMs: overrides.shutdownGraceMs } : {}),
    ...(overrides.jwksUrl ? { jwksUrl: overrides.jwksUrl } : {}),
    ...(overrides.tokenIssuer ? { tokenIssuer: overrides.tokenIssuer } : {}),
    ...(overrides.auth ? { auth: overrides.auth } : {}),
    ...(overrides.rateLimit ? { rateLimit: overrides.rateLimit } : {}),
    production: overrides.production ?? false,
    graphiql: overrides.graphiql ?? true,
    logLevel: overrides.logDestination ? (overrides.logLevel ?? 'info') : false,
    ...(overrides.observability ? { observability: overrides.observability } : {}),
    ...(overrides.logDestination ? { logDestination: overrides.logDestination } : {}),
    ...(overrides.corsOrigins ? { corsOrigins: overrides.corsOrigins } : {}),
    ...(overrides.appVersion ? { appVersion: overrides.appVersion } : {}),
    ...(overrides.upstreamTimeoutMs ? { upstreamTimeoutMs: overrides.upstreamTimeoutMs } : {}),
    ...(overrides.executor ? { executor: overrides.executor } : {}),
    ...(overrides.fastRoute === undefined ? {} : { fastRoute: overrides.fastRoute }),
    // The cache as shipped (in memory), invalidated by the system's events, which also feed subscriptions.
    ...((overrides.events ?? system.bus) ? { events: overrides.events ?? system.bus } : {}),
    ...(overrides.subscriptions ? { subscriptions: overrides.subscriptions } : {}),
    ...(overrides.responseCache ? { responseCache: overrides.responseCache } : {}),
    onUpstreamCall: (call) => calls.push(call),
  });
  return {
    name,
    url: bff.url,
    bff,
    calls,
    resetCalls: () => {
      calls.length = 0;
    },
    async graphql(query, options = {}) {
      const response = await fetch(`${bff.url}/graphql`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
          ...options.headers,
        },
        body: JSON.stringify({ query, variables: options.variables ?? {} }),
      });
      const text = await response.text();
      return {
        status: response.status,
        body: JSON.parse(text) as GraphQLBody,
        headers: response.headers,
        text,
      };
    },
    close: () => bff.close(),
  };
}

/** Calls per service, e.g. `{ identity: 0, billing: 1, product: 1 }`. */
export function callsByService(
  calls: readonly UpstreamCall[],
): Record<'identity' | 'billing' | 'product', number> {
  const counts = { identity: 0, billing: 0, product: 0 };
  for (const call of calls) counts[call.service]++;
  return counts;
}
