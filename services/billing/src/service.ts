import { fileURLToPath } from 'node:url';
import type { Database, DatabaseOptions } from '@bff/db';
import { demoInvoices, demoUsers } from '@bff/demo-data';
import type { EventBus, Subscription } from '@bff/events';
import { createHttpService, listen } from '@bff/http-service';
import {
  type LogFormat,
  type Registry,
  startServiceTelemetry,
  type Tracing,
  type TracingOptions,
} from '@bff/observability';
import { type ServiceStorage, startServiceStorage } from '@bff/service-storage';
import type { ProductClient } from '@bff/upstream-clients';
import type { FastifyInstance } from 'fastify';
import type { DestinationStream } from 'pino';
import { subscribeAccountOpening } from './consumers.ts';
import { IdempotencyKeys, type IdempotencyOptions } from './idempotency.ts';
import { BillingStore, seedBilling } from './invoices.ts';
import { billingRoutes } from './routes.ts';

export interface BillingServiceOptions {
  /** 0 picks a free port. */
  port: number;
  /** @default '127.0.0.1' */
  host?: string;
  database: DatabaseOptions;
  bus: EventBus;
  /** Client for the Product service, used to price purchases. Closed by the caller. */
  products: ProductClient;
  /** Deadline for the price lookup at purchase time, in ms. @default 2000 */
  productTimeoutMs?: number;
  idempotency?: IdempotencyOptions;
  /** Seed demo accounts and invoices into an empty database. @default true */
  seed?: boolean;
  /** pino level, or false. @default 'info' */
  logLevel?: string | false;
  /** JSON lines, or pretty for a person at a terminal. @default 'json' */
  logFormat?: LogFormat;
  /** Where JSON log lines go instead of stdout (tests collect them). */
  logDestination?: DestinationStream;
  /** Serves Prometheus text on a listener of its own, never the public port. @default no listener */
  metrics?: { port: number; host?: string };
  /**
   * A SERVER span per request (child of the caller's `traceparent`), carried into the Product
   * calls and the events it writes, and a CONSUMER span per event it handles: a Tracing the
   * caller owns, or options to create one. @default off, ids still propagated
   */
  tracing?: Tracing | TracingOptions;
}

export interface RunningBillingService {
  url: string;
  app: FastifyInstance;
  db: Database;
  /** The service's metrics (what its metrics listener serves). */
  registry: Registry;
  /** `http://host:port` of the metrics listener, when `metrics` was given. */
  metricsUrl: string | undefined;
  close(): Promise<void>;
}

export async function startBillingService(options: BillingServiceOptions): Promise<RunningBillingService> {
  const telemetry = await startServiceTelemetry({
    service: 'billing',
    metrics: options.metrics,
    tracing: options.tracing,
  });
  const app = createHttpService({
    name: 'billing',
    logLevel: options.logLevel ?? 'info',
    ...(options.logFormat ? { logFormat: options.logFormat } : {}),
    ...(options.logDestination ? { logDestination: options.logDestination } : {}),
    metrics: telemetry.metrics,
    tracing: telemetry.tracing,
    readiness: async () => {
      await storage.db.query('SELECT 1');
    },
  });
  let storage: ServiceStorage;
  try {
    storage = await startServiceStorage({
      service: 'billing',
      database: options.database,
      migrationsDir: fileURLToPath(new URL('../migrations', import.meta.url)),
      bus: options.bus,
      seed:
        options.seed === false
          ? undefined
          : (tx) =>
              seedBilling(
                tx,
                demoUsers.map((u) => u.id),
                demoInvoices(),
              ),
      onRelayError: (err) => app.log.warn({ err }, 'outbox publish failed; will retry'),
      metrics: telemetry.metrics,
      tracing: telemetry.tracing,
    });
  } catch (error) {
    await app.close();
    await telemetry.close();
    throw error;
  }
  let subscription: Subscription | undefined;
  try {
    subscription = await subscribeAccountOpening(options.bus, storage.db, telemetry.tracing);
    billingRoutes(app, {
      store: new BillingStore(storage.db),
      idempotency: new IdempotencyKeys(storage.db, options.idempotency),
      products: options.products,
      productTimeoutMs: options.productTimeoutMs ?? 2_000,
      tracing: telemetry.tracing,
      onEvent: () => storage.relay.notify(),
    });
    const url = await listen(app, options.port, options.host);
    let closing: Promise<void> | undefined;
    return {
      url,
      app,
      db: storage.db,
      registry: telemetry.registry,
      metricsUrl: telemetry.metricsUrl,
      close: () => {
        closing ??= (async () => {
          await subscription?.unsubscribe();
          await app.close();
          await storage.close();
          await telemetry.close();
        })();
        return closing;
      },
    };
  } catch (error) {
    await subscription?.unsubscribe();
    await app.close();
    await storage.close();
    await telemetry.close();
    throw error;
  }
}
