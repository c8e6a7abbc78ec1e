import { ConfigError, env, readConfig } from '@bff/config';
import { telemetryEnv } from '@bff/observability';
import { migrationSettingsProblems } from '@bff/service-storage';
import { isProductTarget, PRODUCT_TARGET_FORMS } from '@bff/upstream-clients';

/** PRODUCT_ADDR: one of PRODUCT_TARGET_FORMS, checked as the Product client checks it. */
const productAddr = () =>
  env.string('127.0.0.1:5003').refine(isProductTarget, `expected ${PRODUCT_TARGET_FORMS}`);

/** Reads the Billing service's environment; throws a ConfigError naming any bad variable. */
export function readBillingConfig(source: Record<string, string | undefined> = process.env) {
  const config = readConfig(
    {
      PORT: env.port(5002),
      HOST: env.string('127.0.0.1'),
      DATABASE_URL: env.optionalUrl(['postgres:', 'postgresql:']),
      DATABASE_SCHEMA: env.string('billing'),
      PGLITE_DATA_DIR: env.optionalString(),
      AMQP_URL: env.optionalUrl(['amqp:', 'amqps:']),
      PRODUCT_ADDR: productAddr(),
      PRODUCT_TIMEOUT_MS: env.int(2_000, { min: 50, max: 60_000 }),
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
  const problems = migrationSettingsProblems(config, source);
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}
export type BillingConfig = ReturnType<typeof readBillingConfig>;
