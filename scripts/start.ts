// The one-command start: every service and every BFF in this one process, each on its own port
// with its own embedded PGlite database, sharing the in-process event bus. DATABASE_URL and
// AMQP_URL switch to real PostgreSQL and RabbitMQ, as in production. The BFFs are the apps that
// apps/ declares (scripts/app-discovery.ts), each on its package.json port or `<NAME>_PORT`.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { startBillingService } from '@bff/billing-service';
import { configOrExit, env, readConfig } from '@bff/config';
import { DEMO_PASSWORD, demoUsers } from '@bff/demo-data';
import { createEventBus } from '@bff/events';
import { startIdentityService } from '@bff/identity-service';
import { loggerOptions, telemetryEnv } from '@bff/observability';
import { startProductService } from '@bff/product-service';
import { createProductClient } from '@bff/upstream-clients';
import { pino } from 'pino';
import { discoverApps, loadAppModule, portVariable } from './app-discovery.ts';

const apps = discoverApps();
if (apps.length === 0) {
  console.error('no BFF under apps/: an app is a folder whose package.json has a "bff" field (see README)');
  process.exit(2);
}
const config = configOrExit(() =>
  readConfig({
    IDENTITY_PORT: env.port(5001),
    BILLING_PORT: env.port(5002),
    PRODUCT_PORT: env.port(5003),
    HOST: env.string('127.0.0.1'),
    DATABASE_URL: env.optionalUrl(['postgres:', 'postgresql:']),
    DATA_DIR: env.optionalString(),
    AMQP_URL: env.optionalUrl(['amqp:', 'amqps:']),
    REDIS_URL: env.optionalUrl(['redis:', 'rediss:']),
    ADMIN_TOKEN: env.optionalString(),
    // LOG_FORMAT (json | pretty), OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_TRACES_SAMPLER_ARG, …
    ...telemetryEnv,
    LOG_LEVEL: env.oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'warn'),
    // Each process's Prometheus listener, never its public port.
    IDENTITY_METRICS_PORT: env.port(9501),
    BILLING_METRICS_PORT: env.port(9502),
    PRODUCT_METRICS_PORT: env.port(9503),
  }),
);

const appPorts = configOrExit(() =>
  readConfig(
    Object.fromEntries(
      apps.flatMap((app) => [
        [portVariable(app), env.port(app.port)],
        [metricsPortVariable(app), env.port(app.metricsPort)],
      ]),
    ),
  ),
);
function metricsPortVariable(app: { name: string }) {
  return portVariable(app).replace(/_PORT$/, '_METRICS_PORT');
}
/** Spans of every process go to one collector when OTEL_EXPORTER_OTLP_ENDPOINT is set. */
const tracing = (serviceName: string) => ({
  serviceName,
  endpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT,
  sampleRatio: config.OTEL_TRACES_SAMPLER_ARG,
});
const metrics = (port: number) => ({ port, host: config.HOST });

const database = (schema: string) => ({
  url: config.DATABASE_URL,
  dataDir: config.DATA_DIR && !config.DATABASE_URL ? join(config.DATA_DIR, schema) : undefined,
  schema,
});
const adminToken = config.ADMIN_TOKEN ?? randomBytes(16).toString('hex');
const bus = createEventBus({ amqpUrl: config.AMQP_URL });
const closers: (() => Promise<void> | void)[] = [() => bus.close()];

async function stopAll() {
  for (const close of closers.reverse()) {
    try {
      await close();
    } catch (error) {
      console.error('error while stopping:', error);
    }
  }
}

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) process.exit(1);
    stopping = true;
    console.log(`\n${signal}: stopping…`);
    const timer = setTimeout(() => process.exit(1), 15_000);
    timer.unref();
    void stopAll().then(() => process.exit(0));
  });
}

try {
  const started = Date.now();
  const product = await startProductService({
    port: config.PRODUCT_PORT,
    host: config.HOST,
    database: database('product'),
    bus,
    logger: pino(
      loggerOptions({ base: { service: 'product' }, level: config.LOG_LEVEL, format: config.LOG_FORMAT }),
    ),
    metrics: metrics(config.PRODUCT_METRICS_PORT),
    tracing: tracing('product'),
  });
  closers.push(() => product.close());
  const identity = await startIdentityService({
    port: config.IDENTITY_PORT,
    host: config.HOST,
    database: database('identity'),
    bus,
    adminToken,
    // Every app's name is an audience: a new app gets tokens without a list to edit.
    audiences: apps.map((app) => app.name),
    logLevel: config.LOG_LEVEL,
    logFormat: config.LOG_FORMAT,
    metrics: metrics(config.IDENTITY_METRICS_PORT),
    tracing: tracing('identity'),
  });
  closers.push(() => identity.close());
  const products = createProductClient({ address: product.address });
  closers.push(() => products.close());
  const billing = await startBillingService({
    port: config.BILLING_PORT,
    host: config.HOST,
    database: database('billing'),
    bus,
    products,
    logLevel: config.LOG_LEVEL,
    logFormat: config.LOG_FORMAT,
    metrics: metrics(config.BILLING_METRICS_PORT),
    tracing: tracing('billing'),
  });
  closers.push(() => billing.close());

  const bffOptions = {
    host: config.HOST,
    identityUrl: identity.url,
    billingUrl: billing.url,
    productAddr: product.address,
    production: false,
    graphiql: true,
    logLevel: config.LOG_LEVEL,
    logFormat: config.LOG_FORMAT,
    rateLimit: { redisUrl: config.REDIS_URL },
    // Cached answers are dropped by the services' events on the bus this process shares.
    events: bus,
    responseCache: { redisUrl: config.REDIS_URL },
  };
  const bffs: { name: string; title: string; url: string; metricsUrl: string | undefined }[] = [];
  for (const app of apps) {
    const { startBff } = await loadAppModule(app);
    const bff = await startBff({
      ...bffOptions,
      port: appPorts[portVariable(app)] ?? app.port,
      observability: {
        metricsPort: appPorts[metricsPortVariable(app)] ?? app.metricsPort,
        metricsHost: config.HOST,
        tracing: {
          endpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT,
          sampleRatio: config.OTEL_TRACES_SAMPLER_ARG,
          // On a laptop the caller is you: a traceparent you send is followed.
          trustTraceHeaders: true,
        },
      },
    });
    closers.push(() => bff.close());
    bffs.push({ name: app.name, title: app.title, url: bff.url, metricsUrl: bff.metricsUrl });
  }
  const first = bffs[0] as (typeof bffs)[number];

  const storage = config.DATABASE_URL
    ? 'PostgreSQL (DATABASE_URL), one schema per service'
    : config.DATA_DIR
      ? `PGlite, kept under ${config.DATA_DIR}`
      : 'PGlite in memory (set DATA_DIR to keep data)';
  console.log(`
BFF system is up in ${((Date.now() - started) / 1000).toFixed(1)} s.

${bffs.map((bff) => `  ${`${bff.title} BFF`.padEnd(17)}${bff.url}/graphql      GraphiQL ${bff.url}/graphiql`).join('\n')}

  Identity (REST)  ${identity.url}        JWKS ${identity.url}/.well-known/jwks.json
  Billing  (REST)  ${billing.url}
  Product  (gRPC)  ${product.address}      bff.product.v1.ProductService (schema/product/v1/product.proto)

  Metrics (Prometheus): ${[...bffs.map((bff) => `${bff.name} ${bff.metricsUrl}/metrics`), `identity ${identity.metricsUrl}/metrics`, `billing ${billing.metricsUrl}/metrics`, `product ${product.metricsUrl}/metrics`].join('\n                        ')}
  Traces:  ${config.OTEL_EXPORTER_OTLP_ENDPOINT ? `exported to ${config.OTEL_EXPORTER_OTLP_ENDPOINT} (OTLP/HTTP)` : 'set OTEL_EXPORTER_OTLP_ENDPOINT to export spans'}; logs: LOG_LEVEL=${config.LOG_LEVEL}, LOG_FORMAT=${config.LOG_FORMAT}

  Storage: ${storage}
  Events:  ${config.AMQP_URL ? 'RabbitMQ (AMQP_URL)' : 'in-process bus'}
  Limits:  ${config.REDIS_URL ? 'Redis (REDIS_URL), shared by replicas' : 'in memory'}; tokens verified against Identity's JWKS
  Cache:   responses cached by the schema's @cacheControl hints ${config.REDIS_URL ? 'in Redis' : 'in memory'}, dropped by the services' events

  Demo users (password "${DEMO_PASSWORD}"):
${demoUsers.map((u) => `    ${u.email.padEnd(20)} ${u.id}  roles: ${u.roles.join(', ')}`).join('\n')}

  Get a token:
    TOKEN=$(curl -s ${identity.url}/v1/token -H 'content-type: application/json' \\
      -d '{"email":"ada@example.com","password":"${DEMO_PASSWORD}","audience":"${first.name}"}' | node -pe 'JSON.parse(require("fs").readFileSync(0)).access_token')
  Ask the ${first.title} BFF who you are (a token's audience must match the app: ${apps.map((app) => `"${app.name}"`).join(', ')};
  get one per app and send it to that app only):
    curl -s ${first.url}/graphql -H 'content-type: application/json' -H "authorization: Bearer $TOKEN" \\
      -d '{"query":"{ viewer { name invoices(first: 2) { edges { node { total { formatted } } } } } }"}'
  Rotate the signing key (admin token for this run):
    curl -s -X POST ${identity.url}/v1/admin/keys/rotate -H 'authorization: Bearer ${adminToken}'

Press Ctrl-C to stop.`);
} catch (error) {
  console.error('start failed:', error instanceof Error ? error.message : error);
  await stopAll();
  process.exit(1);
}
