import { ConfigError, env, readConfig } from '@bff/config';
import { telemetryEnv } from '@bff/observability';
import { migrationSettingsProblems } from '@bff/service-storage';

/** Reads the Product service's environment; throws a ConfigError naming any bad variable. */
export function readProductConfig(source: Record<string, string | undefined> = process.env) {
  const config = readConfig(
    {
      PORT: env.port(5003),
      HOST: env.string('127.0.0.1'),
      DATABASE_URL: env.optionalUrl(['postgres:', 'postgresql:']),
      DATABASE_SCHEMA: env.string('product'),
      PGLITE_DATA_DIR: env.optionalString(),
      AMQP_URL: env.optionalUrl(['amqp:', 'amqps:']),
      SEED: env.bool(true),
      /** Apply the migrations and exit 0 (1 on failure), starting nothing else: a release's migration Job. */
      MIGRATE_ONLY: env.bool(false),
      /** Migrate at start; false (production: a Job migrates) refuses to start while one is pending. */
      MIGRATE_ON_START: env.bool(true),
      /**
       * A client's connection is closed after this many ms (±10%), so that clients resolve the
       * service's name again and spread their calls over replicas started since (README "Deploying").
       */
      GRPC_MAX_CONNECTION_AGE_MS: env.int(300_000, { min: 1_000, max: 86_400_000 }),
      /** Calls in flight on an aged-out connection may take this many ms more before it is cut. */
      GRPC_MAX_CONNECTION_AGE_GRACE_MS: env.int(30_000, { min: 0, max: 3_600_000 }),
      // LOG_LEVEL, LOG_FORMAT, METRICS_PORT, METRICS_HOST, OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_TRACES_SAMPLER_ARG
      ...telemetryEnv,
    },
    source,
  );
  const problems = migrationSettingsProblems(config, source);
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}
export type ProductConfig = ReturnType<typeof readProductConfig>;
