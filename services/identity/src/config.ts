import { ConfigError, env, readConfig } from '@bff/config';
import { IDENTITY_AUDIENCE_PATTERN } from '@bff/contracts';
import { telemetryEnv } from '@bff/observability';
import { migrationSettingsProblems } from '@bff/service-storage';

/**
 * The audiences Identity issues tokens for when none are configured: the apps this repository
 * shipped with. `pnpm start` and the test system pass every discovered app instead; a
 * deployment with another app sets `TOKEN_AUDIENCES`.
 */
export const DEFAULT_TOKEN_AUDIENCES: readonly string[] = Object.freeze(['web', 'ios', 'android']);

/** `a,b,c` as a list of audiences; null when one of them is not an app's name. */
export function parseAudiences(text: string): string[] | null {
  const audiences = text.split(',').map((part) => part.trim());
  const valid = new RegExp(IDENTITY_AUDIENCE_PATTERN);
  return audiences.every((audience) => valid.test(audience)) ? audiences : null;
}

/** Reads the Identity service's environment; throws a ConfigError naming any bad variable. */
export function readIdentityConfig(source: Record<string, string | undefined> = process.env) {
  const config = readConfig(
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
      /** Comma-separated app names tokens may be issued for (each app verifies its own `aud`). */
      TOKEN_AUDIENCES: env.string(DEFAULT_TOKEN_AUDIENCES.join(',')),
      SEED: env.bool(true),
      /** Apply the migrations and exit 0 (1 on failure), starting nothing else: a release's migration Job. */
      MIGRATE_ONLY: env.bool(false),
      /** Migrate at start; false (production: a Job migrates) refuses to start while one is pending. */
      MIGRATE_ON_START: env.bool(true),
      // LOG_LEVEL, LOG_FORMAT, METRICS_PORT, METRICS_HOST, OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_TRACES_SAMPLER_ARG
      ...telemetryEnv,
    },
    source,
  );
  const audiences = parseAudiences(config.TOKEN_AUDIENCES);
  const problems = migrationSettingsProblems(config, source);
  if (!audiences) {
    problems.push(
      `TOKEN_AUDIENCES: expected comma-separated app names (lower case letters, digits, -) (received ${JSON.stringify(config.TOKEN_AUDIENCES)})`,
    );
  }
  if (problems.length > 0 || !audiences) throw new ConfigError(problems);
  return Object.freeze({ ...config, TOKEN_AUDIENCES: Object.freeze(audiences) });
}
export type IdentityConfig = ReturnType<typeof readIdentityConfig>;
