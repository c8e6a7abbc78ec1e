// Entry point for running the Identity service alone, as a container does.
import { configOrExit } from '@bff/config';
import { createEventBus } from '@bff/events';
import { onShutdownSignal } from '@bff/http-service';
import { readIdentityConfig } from './config.ts';
import { startIdentityService } from './service.ts';

const config = configOrExit(() => readIdentityConfig());
const bus = createEventBus({ amqpUrl: config.AMQP_URL });
if (!config.AMQP_URL) console.warn('AMQP_URL is not set: events stay inside this process');
const service = await startIdentityService({
  port: config.PORT,
  host: config.HOST,
  database: { url: config.DATABASE_URL, dataDir: config.PGLITE_DATA_DIR, schema: config.DATABASE_SCHEMA },
  bus,
  issuer: config.TOKEN_ISSUER,
  tokenTtlSeconds: config.TOKEN_TTL_SECONDS,
  keyGraceSeconds: config.KEY_GRACE_SECONDS,
  adminToken: config.ADMIN_TOKEN,
  seed: config.SEED,
  logLevel: config.LOG_LEVEL,
});
service.app.log.info(`identity service listening on ${service.url}`);
onShutdownSignal(async () => {
  await service.close();
  await bus.close();
});
