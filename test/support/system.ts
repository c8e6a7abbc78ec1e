// The whole system for end-to-end suites: the three real services on port 0 with in-memory
// PGlite and one in-process bus, and a way to start any BFF app against them that counts
// every upstream call it makes.
import { startAndroidBff } from '@bff/android-app';
import type { BffServerOptions, RunningBff } from '@bff/bff-server';
import { startBillingService } from '@bff/billing-service';
import { InProcessEventBus } from '@bff/events';
import { startIdentityService } from '@bff/identity-service';
import { startIosBff } from '@bff/ios-app';
import { startProductService } from '@bff/product-service';
import type { AppName } from '@bff/resolvers';
import { createProductClient, type UpstreamCall } from '@bff/upstream-clients';
import { startWebBff } from '@bff/web-app';
import { pino } from 'pino';

export interface System {
  identityUrl: string;
  billingUrl: string;
  productAddr: string;
  /** An access token for a demo user, for one app. */
  token(email: string, audience: AppName): Promise<string>;
  close(): Promise<void>;
}

export async function startSystem(): Promise<System> {
  const bus = new InProcessEventBus();
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
      await bus.close();
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

const starters = { web: startWebBff, ios: startIosBff, android: startAndroidBff } as const;

export async function startApp(
  name: AppName,
  system: Pick<System, 'identityUrl' | 'billingUrl' | 'productAddr'>,
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
  } = {},
): Promise<TestApp> {
  const calls: UpstreamCall[] = [];
  const bff = await starters[name]({
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
    logLevel: overrides.logDestination ? 'info' : false,
    ...(overrides.logDestination ? { logDestination: overrides.logDestination } : {}),
    ...(overrides.corsOrigins ? { corsOrigins: overrides.corsOrigins } : {}),
    ...(overrides.appVersion ? { appVersion: overrides.appVersion } : {}),
    ...(overrides.upstreamTimeoutMs ? { upstreamTimeoutMs: overrides.upstreamTimeoutMs } : {}),
    ...(overrides.executor ? { executor: overrides.executor } : {}),
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
