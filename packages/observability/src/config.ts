import { env } from '@bff/config';
import { LOG_LEVELS } from './logging.ts';

const optionalPort = env
  .optionalString()
  .refine((v) => v === undefined || (/^\d{1,5}$/.test(v) && Number(v) <= 65_535), 'expected a port 0–65535')
  .transform((v) => (v === undefined ? undefined : Number(v)));

const ratio = env
  .optionalString()
  .refine(
    (v) => v === undefined || (/^(0(\.\d+)?|1(\.0+)?|\.\d+)$/.test(v) && Number(v) <= 1),
    'expected a ratio from 0 to 1',
  )
  .transform((v) => (v === undefined ? 1 : Number(v)));

/**
 * The environment variables every process reads for its logs, metrics and traces, as fields for
 * `@bff/config`'s `readConfig` (spread them into a service's schema):
 * `LOG_LEVEL`, `LOG_FORMAT` (json | pretty), `METRICS_PORT` (no metrics listener when unset),
 * `METRICS_HOST`, `OTEL_EXPORTER_OTLP_ENDPOINT` (no export when unset) and
 * `OTEL_TRACES_SAMPLER_ARG` (the share of new traces recorded, 0 to 1).
 */
export const telemetryEnv = {
  LOG_LEVEL: env.oneOf(LOG_LEVELS, 'info'),
  LOG_FORMAT: env.oneOf(['json', 'pretty'], 'json'),
  METRICS_PORT: optionalPort,
  METRICS_HOST: env.string('127.0.0.1'),
  OTEL_EXPORTER_OTLP_ENDPOINT: env.optionalUrl(['http:', 'https:']),
  OTEL_TRACES_SAMPLER_ARG: ratio,
};
