import { accessSync, constants } from 'node:fs';
import { isIP } from 'node:net';
import { ConfigError, env, readConfig } from '@bff/config';
import { telemetryEnv } from '@bff/observability';
import { isProductTarget, PRODUCT_TARGET_FORMS } from '@bff/upstream-clients';

/** PRODUCT_ADDR: one of PRODUCT_TARGET_FORMS, checked as the Product client checks it. */
const productAddr = () =>
  env.string('127.0.0.1:5003').refine(isProductTarget, `expected ${PRODUCT_TARGET_FORMS}`);

/** Reads a BFF app's environment; throws a ConfigError naming any bad variable. */
export function readBffConfig(defaultPort: number, source: Record<string, string | undefined> = process.env) {
  const config = readConfig(
    {
      PORT: env.port(defaultPort),
      HOST: env.string('127.0.0.1'),
      NODE_ENV: env.oneOf(['development', 'production', 'test'], 'development'),
      IDENTITY_URL: env.url(['http:', 'https:'], 'http://127.0.0.1:5001'),
      BILLING_URL: env.url(['http:', 'https:'], 'http://127.0.0.1:5002'),
      PRODUCT_ADDR: productAddr(),
      /** Where the JWKS is; defaults to Identity's. */
      JWKS_URL: env.optionalUrl(['http:', 'https:']),
      TOKEN_ISSUER: env.string('urn:bff:identity'),
      UPSTREAM_TIMEOUT_MS: env.int(2_000, { min: 50, max: 60_000 }),
      /** GraphiQL at /graphiql: on by default outside production. */
      GRAPHIQL: env.oneOf(['true', 'false', 'auto'], 'auto'),
      // LOG_LEVEL, LOG_FORMAT, METRICS_PORT, METRICS_HOST, OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_TRACES_SAMPLER_ARG
      ...telemetryEnv,
      /** Continue a caller's W3C traceparent: only behind an ingress or gateway that sets it. */
      TRUST_TRACE_HEADERS: env.oneOf(['true', 'false'], 'false'),
      /** Operation names (comma-separated) that may be a metric label besides the persisted ones. */
      METRICS_OPERATION_NAMES: env.string(''),
      /** Shared rate-limit store; in memory (one replica) when unset. */
      REDIS_URL: env.optionalUrl(['redis:', 'rediss:']),
      /** Whole-response caching by the schema's @cacheControl hints (Redis when REDIS_URL is set). */
      RESPONSE_CACHE: env.oneOf(['on', 'off'], 'on'),
      /** Memory the in-process response cache may hold, in MiB (without REDIS_URL). */
      RESPONSE_CACHE_MAX_MB: env.int(64, { min: 1, max: 4_096 }),
      RESPONSE_CACHE_STORE_TIMEOUT_MS: env.int(150, { min: 10, max: 5_000 }),
      /**
       * RabbitMQ, for the domain events that invalidate cached responses and feed subscriptions;
       * none: cached entries live their max age, and no subscriptions are offered.
       */
      AMQP_URL: env.optionalUrl(['amqp:', 'amqps:']),
      /** GraphQL subscriptions over WebSocket on /graphql (when there are events: AMQP_URL). */
      SUBSCRIPTIONS: env.oneOf(['on', 'off'], 'on'),
      /** How often each WebSocket is pinged; below every idle timeout in front (Kong's 60 s). */
      SUBSCRIPTION_KEEPALIVE_MS: env.int(20_000, { min: 1_000, max: 55_000 }),
      SUBSCRIPTIONS_PER_CONNECTION: env.int(25, { min: 1, max: 1_000 }),
      SUBSCRIPTION_CONNECTIONS_PER_VIEWER: env.int(10, { min: 1, max: 1_000 }),
      SUBSCRIPTION_MAX_CONNECTIONS: env.int(10_000, { min: 1, max: 1_000_000 }),
      RATE_LIMIT_ON_STORE_FAILURE: env.oneOf(['open', 'closed'], 'open'),
      RATE_LIMIT_STORE_TIMEOUT_MS: env.int(150, { min: 10, max: 5_000 }),
      RATE_LIMIT_DEFAULT_MAX: env.int(600, { min: 1, max: 1_000_000 }),
      RATE_LIMIT_DEFAULT_WINDOW: env.string('1m'),
      JWKS_COOLDOWN_MS: env.int(30_000, { min: 0, max: 3_600_000 }),
      /**
       * Proxies whose X-Forwarded-For is believed: a hop count (1: the ingress in front), or
       * comma-separated addresses/CIDRs; 'true' believes every hop, so any client picks its own
       * address. Unset: X-Forwarded-For is ignored.
       */
      TRUST_PROXY: env.optionalString(),
      /** A request's headers must all arrive within this many ms (slow-header clients). */
      HEADERS_TIMEOUT_MS: env.int(10_000, { min: 100, max: 120_000 }),
      /** A whole request, body included, must arrive within this many ms. */
      REQUEST_TIMEOUT_MS: env.int(30_000, { min: 100, max: 600_000 }),
      /** An idle keep-alive connection is closed after this many ms: above the load balancer's idle timeout. */
      KEEP_ALIVE_TIMEOUT_MS: env.int(72_000, { min: 1_000, max: 600_000 }),
      /** PEM certificate (chain) and key: set both to serve HTTPS (no ingress in front). */
      TLS_CERT_FILE: env.optionalString(),
      TLS_KEY_FILE: env.optionalString(),
    },
    source,
  );
  try {
    trustProxyOption(config.TRUST_PROXY ?? false);
    connectionTimeoutsOption({
      headersMs: config.HEADERS_TIMEOUT_MS,
      requestMs: config.REQUEST_TIMEOUT_MS,
      keepAliveMs: config.KEEP_ALIVE_TIMEOUT_MS,
    });
  } catch (error) {
    throw new ConfigError([(error as Error).message]);
  }
  checkTlsFiles(config.TLS_CERT_FILE, config.TLS_KEY_FILE);
  return Object.freeze({
    ...config,
    production: config.NODE_ENV === 'production',
    graphiql: config.GRAPHIQL === 'auto' ? config.NODE_ENV !== 'production' : config.GRAPHIQL === 'true',
  });
}
export type BffConfig = ReturnType<typeof readBffConfig>;

/** Both or neither, and readable now: a typo in a mount path fails the start, not the first handshake. */
function checkTlsFiles(certFile: string | undefined, keyFile: string | undefined): void {
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new ConfigError([
      `TLS_CERT_FILE and TLS_KEY_FILE must be set together (only ${certFile === undefined ? 'TLS_KEY_FILE' : 'TLS_CERT_FILE'} is set)`,
    ]);
  }
  const problems: string[] = [];
  for (const [name, file] of [
    ['TLS_CERT_FILE', certFile],
    ['TLS_KEY_FILE', keyFile],
  ] as const) {
    if (file === undefined) continue;
    try {
      accessSync(file, constants.R_OK);
    } catch (error) {
      problems.push(`${name}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
}

/** The server options a config describes (everything but the app's own schema, resolvers and policy). */
export function bffOptionsFromConfig(config: BffConfig) {
  return {
    port: config.PORT,
    host: config.HOST,
    identityUrl: config.IDENTITY_URL,
    billingUrl: config.BILLING_URL,
    productAddr: config.PRODUCT_ADDR,
    jwksUrl: config.JWKS_URL,
    tokenIssuer: config.TOKEN_ISSUER,
    upstreamTimeoutMs: config.UPSTREAM_TIMEOUT_MS,
    production: config.production,
    graphiql: config.graphiql,
    logLevel: config.LOG_LEVEL,
    logFormat: config.LOG_FORMAT,
    observability: {
      metricsPort: config.METRICS_PORT,
      metricsHost: config.METRICS_HOST,
      operationNames: config.METRICS_OPERATION_NAMES.split(',')
        .map((name) => name.trim())
        .filter((name) => /^[_A-Za-z][_0-9A-Za-z]{0,99}$/.test(name)),
      tracing: {
        endpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT,
        sampleRatio: config.OTEL_TRACES_SAMPLER_ARG,
        trustTraceHeaders: config.TRUST_TRACE_HEADERS === 'true',
      },
    },
    auth: { jwksCooldownMs: config.JWKS_COOLDOWN_MS },
    rateLimit: {
      redisUrl: config.REDIS_URL,
      onStoreFailure: config.RATE_LIMIT_ON_STORE_FAILURE,
      storeTimeoutMs: config.RATE_LIMIT_STORE_TIMEOUT_MS,
      defaults: { max: config.RATE_LIMIT_DEFAULT_MAX, window: config.RATE_LIMIT_DEFAULT_WINDOW },
    },
    responseCache: {
      enabled: config.RESPONSE_CACHE === 'on',
      redisUrl: config.REDIS_URL,
      maxBytes: config.RESPONSE_CACHE_MAX_MB * 1024 * 1024,
      storeTimeoutMs: config.RESPONSE_CACHE_STORE_TIMEOUT_MS,
    },
    amqpUrl: config.AMQP_URL,
    subscriptions: {
      enabled: config.SUBSCRIPTIONS === 'on',
      keepAliveMs: config.SUBSCRIPTION_KEEPALIVE_MS,
      maxPerConnection: config.SUBSCRIPTIONS_PER_CONNECTION,
      maxConnectionsPerViewer: config.SUBSCRIPTION_CONNECTIONS_PER_VIEWER,
      maxConnections: config.SUBSCRIPTION_MAX_CONNECTIONS,
    },
    trustProxy: config.TRUST_PROXY ?? false,
    connectionTimeouts: {
      headersMs: config.HEADERS_TIMEOUT_MS,
      requestMs: config.REQUEST_TIMEOUT_MS,
      keepAliveMs: config.KEEP_ALIVE_TIMEOUT_MS,
    },
    tls:
      config.TLS_CERT_FILE && config.TLS_KEY_FILE
        ? { certFile: config.TLS_CERT_FILE, keyFile: config.TLS_KEY_FILE }
        : undefined,
  };
}

/** Which proxies' X-Forwarded-For is believed, in a form Fastify's `trustProxy` takes. */
export type TrustProxy = boolean | number | string | readonly string[];

const PROXY_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/**
 * `trustProxy` (or TRUST_PROXY) checked and put in the form Fastify takes: true/false, a hop
 * count, or addresses and CIDRs (also proxy-addr's `loopback`, `linklocal`, `uniquelocal`),
 * given as a list or comma-separated. Anything else throws a TypeError naming the value: a
 * typo here would otherwise mean every client shares one address, or any client picks its own.
 */
export function trustProxyOption(
  given: unknown,
): boolean | string[] | ((address: string, hop: number) => boolean) {
  const fail = (): never => {
    throw new TypeError(
      `TRUST_PROXY (trustProxy) must be true, false, a hop count or addresses/CIDRs, received ${JSON.stringify(given)}`,
    );
  };
  if (typeof given === 'boolean') return given;
  if (typeof given === 'number') {
    if (!Number.isInteger(given) || given < 0 || given > 32) return fail();
    // A hop count as the function Fastify makes of one (its types take no number): the first
    // `given` hops from the socket are proxies, the address after them is the client's.
    return (_address, hop) => hop < given;
  }
  let entries: unknown[];
  if (typeof given === 'string') {
    const text = given.trim();
    if (text === 'true' || text === 'false') return text === 'true';
    if (/^\d{1,2}$/.test(text)) return trustProxyOption(Number(text));
    entries = text.split(',').map((entry) => entry.trim());
  } else if (Array.isArray(given)) {
    entries = given;
  } else {
    return fail();
  }
  if (entries.length === 0) return fail();
  for (const entry of entries) if (typeof entry !== 'string' || !isProxyAddress(entry)) fail();
  return entries as string[];
}

function isProxyAddress(entry: string): boolean {
  if (PROXY_NAMES.has(entry)) return true;
  const [address = '', prefix, ...rest] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  // proxy-addr also takes a netmask (255.255.0.0) after the slash for IPv4.
  if (family === 4 && isIP(prefix) === 4) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

/** How long slow clients may hold a connection, in ms. */
export interface ConnectionTimeouts {
  /** A request's headers must all arrive within this (Node's `headersTimeout`). @default 10000 */
  headersMs?: number | undefined;
  /** The whole request, body included, must arrive within this (`requestTimeout`). @default 30000 */
  requestMs?: number | undefined;
  /** An idle keep-alive connection is closed after this; keep it above the load balancer's idle timeout. @default 72000 */
  keepAliveMs?: number | undefined;
  /** A socket with no traffic while a request is served is closed after this (`connectionTimeout`). @default 60000 */
  idleMs?: number | undefined;
  /**
   * How often Node looks for requests past `headersMs`/`requestMs`: it checks on this interval,
   * not per request, so a slow client is cut between the deadline and the deadline plus this.
   * Node's own 30 s is why a stalled request used to be held 60 to 90 s. @default 1000
   */
  checkIntervalMs?: number | undefined;
}

/** The connection deadlines with their defaults, checked: each a whole number of ms, headers ≤ request. */
export function connectionTimeoutsOption(
  given: ConnectionTimeouts = {},
): Readonly<{ [K in keyof ConnectionTimeouts]-?: number }> {
  const value = (name: keyof ConnectionTimeouts, fallback: number, min: number, max: number) => {
    const ms = given[name] ?? fallback;
    if (!Number.isInteger(ms) || ms < min || ms > max) {
      throw new TypeError(
        `connectionTimeouts.${name} must be a whole number of ms from ${min} to ${max}, received ${JSON.stringify(given[name])}`,
      );
    }
    return ms;
  };
  const timeouts = {
    headersMs: value('headersMs', 10_000, 100, 600_000),
    requestMs: value('requestMs', 30_000, 100, 600_000),
    keepAliveMs: value('keepAliveMs', 72_000, 1_000, 600_000),
    idleMs: value('idleMs', 60_000, 1_000, 600_000),
    checkIntervalMs: value('checkIntervalMs', 1_000, 10, 30_000),
  };
  // Node refuses a headers deadline past the request's (ERR_OUT_OF_RANGE at start-up).
  if (timeouts.headersMs > timeouts.requestMs) {
    throw new TypeError(
      `connectionTimeouts.headersMs (${timeouts.headersMs}) must not exceed requestMs (${timeouts.requestMs})`,
    );
  }
  return Object.freeze(timeouts);
}

/**
 * The mobile app version policy from `MIN_APP_VERSION` and `APP_STORE_URL`: undefined (every
 * version served) when no minimum is set.
 */
export function readAppVersionPolicy(
  defaultStoreUrl: string,
  source: Record<string, string | undefined> = process.env,
) {
  const config = readConfig(
    { MIN_APP_VERSION: env.optionalString(), APP_STORE_URL: env.url(['https:'], defaultStoreUrl) },
    source,
  );
  const minimum = config.MIN_APP_VERSION;
  if (minimum !== undefined && !/^\d{1,6}(\.\d{1,6}){0,3}$/.test(minimum)) {
    throw new ConfigError([
      `MIN_APP_VERSION: expected a version such as 4.2.0 (received ${JSON.stringify(minimum)})`,
    ]);
  }
  return minimum ? { minimum, storeUrl: config.APP_STORE_URL } : undefined;
}
