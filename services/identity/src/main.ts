// Entry point for running the Identity service alone, as a container does. With MIGRATE_ONLY=true it
// applies its migrations and exits before starting anything else (a release's migration Job); with
// MIGRATE_ON_START=false it refuses to start while a migration is pending (that Job has not run).
import { fileURLToPath } from 'node:url';
import { configOrExit } from '@bff/config';
import { createEventBus } from '@bff/events';
import { onShutdownSignal } from '@bff/http-service';
import { databaseForEntryPoint } from '@bff/service-storage';
import { readIdentityConfig } from './config.ts';
import { startIdentityService } from './service.ts';

const config = configOrExit(() => readIdentityConfig());
const database = await databaseForEntryPoint(
  'identity',
  config,
  fileURLToPath(new URL('../migrations', import.meta.url)),
);
const bus = createEventBus({ amqpUrl: config.AMQP_URL });
if (!config.AMQP_URL) console.warn('AMQP_URL is not set: events stay inside this process');
const service = await startIdentityService({
  port: config.PORT,
  host: config.HOST,
  database,
  bus,
  issuer: config.TOKEN_ISSUER,
  tokenTtlSeconds: config.TOKEN_TTL_SECONDS,
  audiences: config.TOKEN_AUDIENCES,
  keyGraceSeconds: config.KEY_GRACE_SECONDS,
  adminToken: config.ADMIN_TOKEN,
  seed: config.SEED,
  logLevel: config.LOG_LEVEL,
  logFormat: config.LOG_FORMAT,
  ...(config.METRICS_PORT === undefined
    ? {}
    : { metrics: { port: config.METRICS_PORT, host: config.METRICS_HOST } }),
  tracing: {
    serviceName: 'identity',
    endpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT,
    sampleRatio: config.OTEL_TRACES_SAMPLER_ARG,
  },
});
service.app.log.info(`identity service listening on ${service.url}`);
onShutdownSignal(async () => {
  await service.close();
  await bus.close();
});
