import { fileURLToPath } from 'node:url';
import type { Database, DatabaseOptions } from '@bff/db';
import { demoInvoices, demoUsers } from '@bff/demo-data';
import type { EventBus, Subscription } from '@bff/events';
import { createHttpService, listen } from '@bff/http-service';
import { startServiceStorage } from '@bff/service-storage';
import type { ProductClient } from '@bff/upstream-clients';
import type { FastifyInstance } from 'fastify';
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
}

export interface RunningBillingService {
  url: string;
  app: FastifyInstance;
  db: Database;
  close(): Promise<void>;
}

export async function startBillingService(options: BillingServiceOptions): Promise<RunningBillingService> {
  const app = createHttpService({
    name: 'billing',
    logLevel: options.logLevel ?? 'info',
    readiness: async () => {
      await storage.db.query('SELECT 1');
    },
  });
  const storage = await startServiceStorage({
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
  });
  let subscription: Subscription | undefined;
  try {
    subscription = await subscribeAccountOpening(options.bus, storage.db);
    billingRoutes(app, {
      store: new BillingStore(storage.db),
      idempotency: new IdempotencyKeys(storage.db, options.idempotency),
      products: options.products,
      productTimeoutMs: options.productTimeoutMs ?? 2_000,
      onEvent: () => storage.relay.notify(),
    });
    const url = await listen(app, options.port, options.host);
    let closing: Promise<void> | undefined;
    return {
      url,
      app,
      db: storage.db,
      close: () => {
        closing ??= (async () => {
          await subscription?.unsubscribe();
          await app.close();
          await storage.close();
        })();
        return closing;
      },
    };
  } catch (error) {
    await subscription?.unsubscribe();
    await app.close();
    await storage.close();
    throw error;
  }
}
