import { env, readConfig } from '@bff/config';

/** Reads the Identity service's environment; throws a ConfigError naming any bad variable. */
export function readIdentityConfig(source: Record<string, string | undefined> = process.env) {
  return readConfig(
    {
      PORT: env.port(5001),
      HOST: env.string('127.0.0.1'),
      DATABASE_URL: env.optionalUrl(['postgres:', 'postgresql:']),
      DATABASE_SCHEMA: env.string('identity'),
      PGLITE_DATA_DIR: env.optionalString(),
      AMQP_URL: env.optionalUrl(['amqp:', 'amqps:']),
      TOKEN_ISSUER: env.string('urn:bff:identity'),
      TOKEN_TTL_SECONDS: env.int(900, { min: 30, max: 86_400 }),
      KEY_GRACE_SECONDS: env.int(3_600, { min: 0, max: 30 * 86_400 }),
      ADMIN_TOKEN: env.optionalString(),
      SEED: env.bool(true),
      LOG_LEVEL: env.oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info'),
    },
    source,
  );
}
export type IdentityConfig = ReturnType<typeof readIdentityConfig>;
