// Entry point for running the Billing service alone, as a container does. With MIGRATE_ONLY=true it
// applies its migrations and exits before starting anything else (a release's migration Job); with
// MIGRATE_ON_START=false it refuses to start while a migration is pending (that Job has not run).
import { fileURLToPath } from 'node:url';
import { configOrExit } from '@bff/config';
import { createEventBus } from '@bff/events';
import { onShutdownSignal } from '@bff/http-service';
import { databaseForEntryPoint } from '@bff/service-storage';
import { createProductClient } from '@bff/upstream-clients';
import { readBillingConfig } from './config.ts';
import { startBillingService } from './service.ts';

const config = configOrExit(() => readBillingConfig());
const database = await databaseForEntryPoint(
  'billing',
  config,
  fileURLToPath(new URL('../migrations', import.meta.url)),
);
const bus = createEventBus({ amqpUrl: config.AMQP_URL });
if (!config.AMQP_URL) console.warn('AMQP_URL is not set: events stay inside this process');
const products = createProductClient({ address: config.PRODUCT_ADDR, timeoutMs: config.PRODUCT_TIMEOUT_MS });
const service = await startBillingService({
  port: config.PORT,
  host: config.HOST,
  database,
  bus,
  products,
  productTimeoutMs: config.PRODUCT_TIMEOUT_MS,
  seed: config.SEED,
  logLevel: config.LOG_LEVEL,
  logFormat: config.LOG_FORMAT,
  ...(config.METRICS_PORT === undefined
    ? {}
    : { metrics: { port: config.METRICS_PORT, host: config.METRICS_HOST } }),
  tracing: {
    serviceName: 'billing',
    endpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT,
    sampleRatio: config.OTEL_TRACES_SAMPLER_ARG,
  },
});
service.app.log.info(`billing service listening on ${service.url}`);
onShutdownSignal(async () => {
  await service.close();
  products.close();
  await bus.close();
});
