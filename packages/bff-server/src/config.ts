import { ConfigError, env, readConfig } from '@bff/config';

/** Reads a BFF app's environment; throws a ConfigError naming any bad variable. */
export function readBffConfig(defaultPort: number, source: Record<string, string | undefined> = process.env) {
  const config = readConfig(
    {
      PORT: env.port(defaultPort),
      HOST: env.string('127.0.0.1'),
      NODE_ENV: env.oneOf(['development', 'production', 'test'], 'development'),
      IDENTITY_URL: env.url(['http:', 'https:'], 'http://127.0.0.1:5001'),
      BILLING_URL: env.url(['http:', 'https:'], 'http://127.0.0.1:5002'),
      PRODUCT_ADDR: env.hostPort('127.0.0.1:5003'),
      /** Where the JWKS is; defaults to Identity's. */
      JWKS_URL: env.optionalUrl(['http:', 'https:']),
      TOKEN_ISSUER: env.string('urn:bff:identity'),
      UPSTREAM_TIMEOUT_MS: env.int(2_000, { min: 50, max: 60_000 }),
      /** GraphiQL at /graphiql: on by default outside production. */
      GRAPHIQL: env.oneOf(['true', 'false', 'auto'], 'auto'),
      LOG_LEVEL: env.oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info'),
      /** Shared rate-limit store; in memory (one replica) when unset. */
      REDIS_URL: env.optionalUrl(['redis:', 'rediss:']),
      RATE_LIMIT_ON_STORE_FAILURE: env.oneOf(['open', 'closed'], 'open'),
      RATE_LIMIT_STORE_TIMEOUT_MS: env.int(150, { min: 10, max: 5_000 }),
      RATE_LIMIT_DEFAULT_MAX: env.int(600, { min: 1, max: 1_000_000 }),
      RATE_LIMIT_DEFAULT_WINDOW: env.string('1m'),
      JWKS_COOLDOWN_MS: env.int(30_000, { min: 0, max: 3_600_000 }),
      /** Proxies whose X-Forwarded-For is believed: 'true', a hop count, or addresses/CIDRs. */
      TRUST_PROXY: env.optionalString(),
    },
    source,
  );
  return Object.freeze({
    ...config,
    production: config.NODE_ENV === 'production',
    graphiql: config.GRAPHIQL === 'auto' ? config.NODE_ENV !== 'production' : config.GRAPHIQL === 'true',
  });
}
export type BffConfig = ReturnType<typeof readBffConfig>;

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
    auth: { jwksCooldownMs: config.JWKS_COOLDOWN_MS },
    rateLimit: {
      redisUrl: config.REDIS_URL,
      onStoreFailure: config.RATE_LIMIT_ON_STORE_FAILURE,
      storeTimeoutMs: config.RATE_LIMIT_STORE_TIMEOUT_MS,
      defaults: { max: config.RATE_LIMIT_DEFAULT_MAX, window: config.RATE_LIMIT_DEFAULT_WINDOW },
    },
    trustProxy:
      config.TRUST_PROXY === undefined ? false : config.TRUST_PROXY === 'true' ? true : config.TRUST_PROXY,
  };
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
