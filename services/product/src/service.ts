import { fileURLToPath } from 'node:url';
import type { Database, DatabaseOptions } from '@bff/db';
import { demoProducts } from '@bff/demo-data';
import type { EventBus, OutboxRelay } from '@bff/events';
import {
  loggerOptions,
  type Registry,
  startServiceTelemetry,
  type Tracing,
  type TracingOptions,
} from '@bff/observability';
import { loadProductService } from '@bff/schema';
import { type ServiceStorage, startServiceStorage } from '@bff/service-storage';
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
  /**
   * Writes one line per call (method, code, duration, trace id) and the service's own events.
   * @default JSON lines at 'info' on stdout (`loggerOptions` of @bff/observability)
   */
  logger?: Logger;
  /** Serves Prometheus text on a listener of its own, never the gRPC port. @default no listener */
  metrics?: { port: number; host?: string };
  /**
   * A SERVER span per call (child of the caller's `traceparent` metadata), carried into the
   * events it writes: a Tracing the caller owns, or options to create one. @default off, ids still propagated
   */
  tracing?: Tracing | TracingOptions;
  /** How long in-flight calls may take to finish on close, in ms. @default 5000 */
  shutdownGraceMs?: number;
  /**
   * How long a client's connection lives before the server asks it to go away (an HTTP/2 GOAWAY,
   * ±10% jitter), in ms. A client balancing round-robin over a DNS name then resolves it again and
   * connects to every replica it now finds: without this a replica started after the clients
   * connected never gets a call. @default 300000 (5 minutes)
   */
  maxConnectionAgeMs?: number;
  /**
   * How long calls in flight on an aged-out connection may still take before it is closed, in ms:
   * above the longest deadline a client sets (the BFFs' UPSTREAM_TIMEOUT_MS). @default 30000
   */
  maxConnectionAgeGraceMs?: number;
}

export interface RunningProductService {
  /** `host:port` to dial. */
  address: string;
  port: number;
  db: Database;
  relay: OutboxRelay;
  /** The service's metrics (what its metrics listener serves). */
  registry: Registry;
  /** `http://host:port` of the metrics listener, when `metrics` was given. */
  metricsUrl: string | undefined;
  /** Stops accepting calls, lets in-flight ones finish, flushes the outbox, closes the database. */
  close(): Promise<void>;
}

const SERVICE_NAME = 'bff.product.v1.ProductService';

/** The logger a service started without one writes with. */
export function defaultProductLogger(): Logger {
  return pino(loggerOptions({ base: { service: 'product' } }));
}

/** A whole number of ms within bounds, or a TypeError naming the option and the value received. */
function msOption(
  name: keyof ProductServiceOptions,
  given: unknown,
  fallback: number,
  min: number,
  max: number,
) {
  const ms = given ?? fallback;
  if (typeof ms !== 'number' || !Number.isInteger(ms) || ms < min || ms > max) {
    throw new TypeError(
      `startProductService: ${name} must be a whole number of ms from ${min} to ${max}, received ${JSON.stringify(given)}`,
    );
  }
  return ms;
}

/**
 * The gRPC server's options, checked: connections aged out so that clients find new replicas.
 * The age is at most a day (Node's timers cannot wait beyond 2^31 - 1 ms, and fire at once if asked to).
 */
function serverOptions(options: ProductServiceOptions): grpc.ServerOptions {
  return {
    'grpc.max_connection_age_ms': msOption(
      'maxConnectionAgeMs',
      options.maxConnectionAgeMs,
      300_000,
      100,
      86_400_000,
    ),
    'grpc.max_connection_age_grace_ms': msOption(
      'maxConnectionAgeGraceMs',
      options.maxConnectionAgeGraceMs,
      30_000,
      0,
      3_600_000,
    ),
  };
}

export async function startProductService(options: ProductServiceOptions): Promise<RunningProductService> {
  // Checked before anything starts: a bad option leaves no database or listener behind.
  const grpcOptions = serverOptions(options);
  const log = options.logger ?? defaultProductLogger();
  const telemetry = await startServiceTelemetry({
    service: 'product',
    metrics: options.metrics,
    tracing: options.tracing,
  });
  let storage: ServiceStorage;
  try {
    storage = await startServiceStorage({
      service: 'product',
      database: options.database,
      migrationsDir: fileURLToPath(new URL('../migrations', import.meta.url)),
      bus: options.bus,
      seed: options.seed === false ? undefined : (tx) => seedProducts(tx, demoProducts()),
      onRelayError: (err) => log.warn({ err }, 'outbox publish failed; will retry'),
      metrics: telemetry.metrics,
      tracing: telemetry.tracing,
    });
  } catch (error) {
    await telemetry.close();
    throw error;
  }
  if (storage.seeded > 0) log.info({ products: storage.seeded }, 'seeded the demo catalogue');
  const { db, relay } = storage;
  const store = new ProductStore(db);
  const server = new grpc.Server(grpcOptions);
  server.addService(
    loadProductService().service,
    productHandlers(store, { log, metrics: telemetry.metrics, tracing: telemetry.tracing }, () =>
      relay.notify(),
    ),
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
    await telemetry.close();
    throw error;
  });

  let closing: Promise<void> | undefined;
  return {
    address: `${host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`,
    port,
    db,
    relay,
    registry: telemetry.registry,
    metricsUrl: telemetry.metricsUrl,
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
        await telemetry.close();
      })();
      return closing;
    },
  };
}
