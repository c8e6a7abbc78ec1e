import { fileURLToPath } from 'node:url';
import type { Database, DatabaseOptions } from '@bff/db';
import { demoProducts } from '@bff/demo-data';
import type { EventBus, OutboxRelay } from '@bff/events';
import { loadProductService } from '@bff/schema';
import { startServiceStorage } from '@bff/service-storage';
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { type Logger, pino } from 'pino';
import { productHandlers } from './grpc-handlers.ts';
import { ProductStore, seedProducts } from './store.ts';

export interface ProductServiceOptions {
  /** Port for gRPC; 0 picks a free one. */
  port: number;
  /** @default '127.0.0.1' */
  host?: string;
  database: DatabaseOptions;
  bus: EventBus;
  /** Seed the demo catalogue into an empty database. @default true */
  seed?: boolean;
  /** @default a pino logger at 'info' */
  logger?: Logger;
  /** How long in-flight calls may take to finish on close, in ms. @default 5000 */
  shutdownGraceMs?: number;
}

export interface RunningProductService {
  /** `host:port` to dial. */
  address: string;
  port: number;
  db: Database;
  relay: OutboxRelay;
  /** Stops accepting calls, lets in-flight ones finish, flushes the outbox, closes the database. */
  close(): Promise<void>;
}

const SERVICE_NAME = 'bff.product.v1.ProductService';

export async function startProductService(options: ProductServiceOptions): Promise<RunningProductService> {
  const log = options.logger ?? pino({ name: 'product' });
  const storage = await startServiceStorage({
    service: 'product',
    database: options.database,
    migrationsDir: fileURLToPath(new URL('../migrations', import.meta.url)),
    bus: options.bus,
    seed: options.seed === false ? undefined : (tx) => seedProducts(tx, demoProducts()),
    onRelayError: (err) => log.warn({ err }, 'outbox publish failed; will retry'),
  });
  if (storage.seeded > 0) log.info({ products: storage.seeded }, 'seeded the demo catalogue');
  const { db, relay } = storage;
  const store = new ProductStore(db);
  const server = new grpc.Server();
  server.addService(
    loadProductService().service,
    productHandlers(store, log, () => relay.notify()),
  );
  const health = new HealthImplementation({ '': 'SERVING', [SERVICE_NAME]: 'SERVING' });
  health.addToServer(server);

  const host = options.host ?? '127.0.0.1';
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(
      `${host.includes(':') ? `[${host}]` : host}:${options.port}`,
      grpc.ServerCredentials.createInsecure(),
      (error, bound) => (error ? reject(error) : resolve(bound)),
    );
  }).catch(async (error: unknown) => {
    await storage.close();
    throw error;
  });

  let closing: Promise<void> | undefined;
  return {
    address: `${host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`,
    port,
    db,
    relay,
    close: () => {
      closing ??= (async () => {
        health.setStatus('', 'NOT_SERVING');
        health.setStatus(SERVICE_NAME, 'NOT_SERVING');
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            server.forceShutdown();
            resolve();
          }, options.shutdownGraceMs ?? 5_000);
          server.tryShutdown(() => {
            clearTimeout(timer);
            resolve();
          });
        });
        await storage.close();
      })();
      return closing;
    },
  };
}
