// Entry point for running the Product service alone, as a container does.
import { configOrExit } from '@bff/config';
import { createEventBus } from '@bff/events';
import { onShutdownSignal } from '@bff/http-service';
import { loggerOptions } from '@bff/observability';
import { pino } from 'pino';
import { readProductConfig } from './config.ts';
import { startProductService } from './service.ts';

const config = configOrExit(() => readProductConfig());
const logger = pino(
  loggerOptions({ base: { service: 'product' }, level: config.LOG_LEVEL, format: config.LOG_FORMAT }),
);
const bus = createEventBus({ amqpUrl: config.AMQP_URL });
if (!config.AMQP_URL) logger.warn('AMQP_URL is not set: events stay inside this process');
const service = await startProductService({
  port: config.PORT,
  host: config.HOST,
  database: { url: config.DATABASE_URL, dataDir: config.PGLITE_DATA_DIR, schema: config.DATABASE_SCHEMA },
  bus,
  seed: config.SEED,
  logger,
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
