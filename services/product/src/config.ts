import { env, readConfig } from '@bff/config';
import { telemetryEnv } from '@bff/observability';

/** Reads the Product service's environment; throws a ConfigError naming any bad variable. */
export function readProductConfig(source: Record<string, string | undefined> = process.env) {
  return readConfig(
    {
      PORT: env.port(5003),
      HOST: env.string('127.0.0.1'),
      DATABASE_URL: env.optionalUrl(['postgres:', 'postgresql:']),
      DATABASE_SCHEMA: env.string('product'),
      PGLITE_DATA_DIR: env.optionalString(),
      AMQP_URL: env.optionalUrl(['amqp:', 'amqps:']),
      SEED: env.bool(true),
      // LOG_LEVEL, LOG_FORMAT, METRICS_PORT, METRICS_HOST, OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_TRACES_SAMPLER_ARG
      ...telemetryEnv,
    },
    source,
  );
}
export type ProductConfig = ReturnType<typeof readProductConfig>;
