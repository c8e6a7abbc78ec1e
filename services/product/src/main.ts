// Entry point for running the Product service alone, as a container does. With MIGRATE_ONLY=true it
// applies its migrations and exits before starting anything else (a release's migration Job); with
// MIGRATE_ON_START=false it refuses to start while a migration is pending (that Job has not run).
import { fileURLToPath } from 'node:url';
import { configOrExit } from '@bff/config';
import { createEventBus } from '@bff/events';
import { onShutdownSignal } from '@bff/http-service';
import { loggerOptions } from '@bff/observability';
import { databaseForEntryPoint } from '@bff/service-storage';
import { pino } from 'pino';
import { readProductConfig } from './config.ts';
import { startProductService } from './service.ts';

const config = configOrExit(() => readProductConfig());
const database = await databaseForEntryPoint(
  'product',
  config,
  fileURLToPath(new URL('../migrations', import.meta.url)),
);
const logger = pino(
  loggerOptions({ base: { service: 'product' }, level: config.LOG_LEVEL, format: config.LOG_FORMAT }),
);
const bus = createEventBus({ amqpUrl: config.AMQP_URL });
if (!config.AMQP_URL) logger.warn('AMQP_URL is not set: events stay inside this process');
const service = await startProductService({
  port: config.PORT,
  host: config.HOST,
  database,
  bus,
  seed: config.SEED,
  logger,
  maxConnectionAgeMs: config.GRPC_MAX_CONNECTION_AGE_MS,
  maxConnectionAgeGraceMs: config.GRPC_MAX_CONNECTION_AGE_GRACE_MS,
  ...(config.METRICS_PORT === undefined
    ? {}
    : { metrics: { port: config.METRICS_PORT, host: config.METRICS_HOST } }),
  tracing: {
    serviceName: 'product',
    endpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT,
    sampleRatio: config.OTEL_TRACES_SAMPLER_ARG,
  },
});
logger.info({ address: service.address }, 'product service listening (gRPC)');
onShutdownSignal(async () => {
  await service.close();
  await bus.close();
});
