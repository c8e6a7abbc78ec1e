import { fileURLToPath } from 'node:url';
import type { Database, DatabaseOptions } from '@bff/db';
import { DEMO_PASSWORD, demoUsers } from '@bff/demo-data';
import type { EventBus } from '@bff/events';
import { createHttpService, listen } from '@bff/http-service';
import { startServiceStorage } from '@bff/service-storage';
import type { FastifyInstance } from 'fastify';
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
}

export interface RunningIdentityService {
  url: string;
  app: FastifyInstance;
  db: Database;
  keys: KeyRing;
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
  const app = createHttpService({
    name: 'identity',
    logLevel: options.logLevel ?? 'info',
    readiness: async () => {
      await storage.db.query('SELECT 1');
    },
  });
  const storage = await startServiceStorage({
    service: 'identity',
    database: options.database,
    migrationsDir: fileURLToPath(new URL('../migrations', import.meta.url)),
    bus: options.bus,
    seed: options.seed === false ? undefined : (tx) => seedUsers(tx, demoUsers, DEMO_PASSWORD),
    onRelayError: (err) => app.log.warn({ err }, 'outbox publish failed; will retry'),
  });
  const keys = new KeyRing(storage.db, keyGraceSeconds);
  try {
    await keys.ensureCurrent();
    identityRoutes(app, {
      users: new UserStore(storage.db),
      keys,
      issuer: options.issuer ?? 'urn:bff:identity',
      tokenTtlSeconds,
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
      close: () => {
        closing ??= app.close().then(() => storage.close());
        return closing;
      },
    };
  } catch (error) {
    await app.close();
    await storage.close();
    throw error;
  }
}
