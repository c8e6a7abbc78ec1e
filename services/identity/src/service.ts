import { fileURLToPath } from 'node:url';
import type { Database, DatabaseOptions } from '@bff/db';
import { DEMO_PASSWORD, demoUsers } from '@bff/demo-data';
import type { EventBus } from '@bff/events';
import { createHttpService, listen } from '@bff/http-service';
import {
  type LogFormat,
  type Registry,
  startServiceTelemetry,
  type Tracing,
  type TracingOptions,
} from '@bff/observability';
import { type ServiceStorage, startServiceStorage } from '@bff/service-storage';
import type { FastifyInstance } from 'fastify';
import type { DestinationStream } from 'pino';
import { DEFAULT_TOKEN_AUDIENCES, parseAudiences } from './config.ts';
import { KeyRing } from './keys.ts';
import { identityRoutes } from './routes.ts';
import { seedUsers, UserStore } from './users.ts';

export interface IdentityServiceOptions {
  /** 0 picks a free port. */
  port: number;
  /** @default '127.0.0.1' */
  host?: string;
  database: DatabaseOptions;
  bus: EventBus;
  /** `iss` of issued tokens. @default 'urn:bff:identity' */
  issuer?: string;
  /**
   * The audiences (app names) tokens are issued for; a request for another is a 400.
   * @default DEFAULT_TOKEN_AUDIENCES (web, ios, android)
   */
  audiences?: readonly string[];
  /** Access token lifetime in seconds. @default 900 */
  tokenTtlSeconds?: number;
  /** Seconds a rotated-out key stays in the JWKS; keep it above the token lifetime. @default 3600 */
  keyGraceSeconds?: number;
  /** Enables `POST /v1/admin/keys/rotate` for this bearer token. */
  adminToken?: string | undefined;
  /** Seed the demo users into an empty database. @default true */
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
   * A SERVER span per request (child of the caller's `traceparent`), carried into the events it
   * writes: a Tracing the caller owns, or options to create one. @default off, ids still propagated
   */
  tracing?: Tracing | TracingOptions;
}

export interface RunningIdentityService {
  url: string;
  app: FastifyInstance;
  db: Database;
  keys: KeyRing;
  /** The service's metrics (what its metrics listener serves). */
  registry: Registry;
  /** `http://host:port` of the metrics listener, when `metrics` was given. */
  metricsUrl: string | undefined;
  close(): Promise<void>;
}

export async function startIdentityService(options: IdentityServiceOptions): Promise<RunningIdentityService> {
  const tokenTtlSeconds = options.tokenTtlSeconds ?? 900;
  const keyGraceSeconds = options.keyGraceSeconds ?? 3_600;
  if (!Number.isInteger(tokenTtlSeconds) || tokenTtlSeconds < 1) {
    throw new TypeError(`tokenTtlSeconds must be a positive whole number, received ${tokenTtlSeconds}`);
  }
  if (!Number.isInteger(keyGraceSeconds) || keyGraceSeconds < 0) {
    throw new TypeError(`keyGraceSeconds must be a whole number of seconds, received ${keyGraceSeconds}`);
  }
  const audiences = options.audiences ?? DEFAULT_TOKEN_AUDIENCES;
  if (
    !Array.isArray(audiences) ||
    audiences.length === 0 ||
    audiences.some((audience) => typeof audience !== 'string' || !parseAudiences(audience))
  ) {
    throw new TypeError(
      `audiences must be a non-empty list of app names (lower case letters, digits, -), received ${JSON.stringify(options.audiences)}`,
    );
  }
  const telemetry = await startServiceTelemetry({
    service: 'identity',
    metrics: options.metrics,
    tracing: options.tracing,
  });
  const app = createHttpService({
    name: 'identity',
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
      service: 'identity',
      database: options.database,
      migrationsDir: fileURLToPath(new URL('../migrations', import.meta.url)),
      bus: options.bus,
      seed: options.seed === false ? undefined : (tx) => seedUsers(tx, demoUsers, DEMO_PASSWORD),
      onRelayError: (err) => app.log.warn({ err }, 'outbox publish failed; will retry'),
      metrics: telemetry.metrics,
      tracing: telemetry.tracing,
    });
  } catch (error) {
    await app.close();
    await telemetry.close();
    throw error;
  }
  const keys = new KeyRing(storage.db, keyGraceSeconds);
  try {
    await keys.ensureCurrent();
    identityRoutes(app, {
      users: new UserStore(storage.db),
      keys,
      issuer: options.issuer ?? 'urn:bff:identity',
      tokenTtlSeconds,
      audiences: Object.freeze([...new Set(audiences)]),
      adminToken: options.adminToken,
      jwksMaxAgeSeconds: 60,
      onEvent: () => storage.relay.notify(),
    });
    const url = await listen(app, options.port, options.host);
    let closing: Promise<void> | undefined;
    return {
      url,
      app,
      db: storage.db,
      keys,
      registry: telemetry.registry,
      metricsUrl: telemetry.metricsUrl,
      close: () => {
        closing ??= (async () => {
          await app.close();
          await storage.close();
          await telemetry.close();
        })();
        return closing;
      },
    };
  } catch (error) {
    await app.close();
    await storage.close();
    await telemetry.close();
    throw error;
  }
}
