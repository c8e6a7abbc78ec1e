import { fileURLToPath } from 'node:url';
import type { Database, MigrationSource, Queryable } from '@bff/db';
import { type Context, sanitizeTraceCarrier, traceCarrierOf } from '@bff/observability';
import type { EventBus } from './bus.ts';
import { type EventEnvelope, newEvent } from './envelope.ts';

/** The outbox and processed-events tables, to apply with a service's own migrations. */
export const outboxMigrations: MigrationSource = {
  prefix: 'events',
  dir: fileURLToPath(new URL('../migrations', import.meta.url)),
};

export interface EnqueueOptions {
  /**
   * The trace context of the request making the change (its span's context): kept with the row
   * and published with the event, so that consumers continue the request's trace.
   */
  traceContext?: Context | undefined;
}

/**
 * Writes an event into the outbox inside the caller's transaction, so that it exists if and
 * only if the state change it describes was committed.
 */
export async function enqueueEvent<P>(
  tx: Queryable,
  source: string,
  type: string,
  version: number,
  payload: P,
  options: EnqueueOptions = {},
): Promise<EventEnvelope<P>> {
  const event = newEvent(source, type, version, payload);
  const trace = options.traceContext ? traceCarrierOf(options.traceContext) : undefined;
  if (trace) event.trace = trace;
  await tx.query(
    `INSERT INTO outbox (id, type, version, source, occurred_at, payload, traceparent, tracestate)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [
      event.id,
      event.type,
      event.version,
      event.source,
      event.occurredAt,
      JSON.stringify(event.payload),
      trace?.traceparent ?? null,
      trace?.tracestate ?? null,
    ],
  );
  return event;
}

/** What the outbox holds that the bus has not taken yet. */
export interface OutboxBacklog {
  /** Rows not yet published. */
  backlog: number;
  /** Age of the oldest of them, in seconds; 0 when none is waiting. */
  oldestAgeSeconds: number;
}

/** Reads the outbox backlog in one query (over the partial index of unpublished rows). */
export async function readOutboxBacklog(db: Queryable): Promise<OutboxBacklog> {
  const result = await db.query<{ backlog: number; age: number | string | null }>(
    `SELECT count(*)::int AS backlog,
            GREATEST(0, EXTRACT(EPOCH FROM now() - min(occurred_at)))::float8 AS age
       FROM outbox WHERE published_at IS NULL`,
  );
  const row = result.rows[0];
  return { backlog: row?.backlog ?? 0, oldestAgeSeconds: Number(row?.age ?? 0) };
}

/**
 * Runs `handle` at most once per (consumer, event id): the event id is recorded in the same
 * transaction as the handler's effects, so a redelivered event is recognised and skipped.
 * Returns false when the event had been processed already.
 */
export async function consumeOnce(
  db: Database,
  consumer: string,
  event: EventEnvelope,
  handle: (tx: Queryable) => Promise<void>,
): Promise<boolean> {
  return db.transaction(async (tx) => {
    const inserted = await tx.query(
      'INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING event_id',
      [consumer, event.id],
    );
    if (inserted.rowCount === 0) return false;
    await handle(tx);
    return true;
  });
}

export interface OutboxRelayOptions {
  db: Database;
  bus: EventBus;
  /** How often to look for unpublished rows when not woken by `notify()`, in ms. @default 500 */
  pollIntervalMs?: number;
  /** Rows claimed per pass. @default 100 */
  batchSize?: number;
  /** How long a claimed row is reserved for this relay, in seconds. @default 30 */
  leaseSeconds?: number;
  /** Called when publishing fails (the row stays and is retried). */
  onError?: (error: unknown) => void;
}

interface OutboxRow {
  seq: string | number;
  id: string;
  type: string;
  version: number;
  source: string;
  occurred_at: Date;
  payload: unknown;
  traceparent: string | null;
  tracestate: string | null;
}

/**
 * Publishes outbox rows in order and marks them sent. Rows are claimed with a short lease
 * (`FOR UPDATE SKIP LOCKED`), published outside any transaction, then marked; a crash between
 * publish and mark republishes, which consumers absorb by deduplicating on the event id.
 */
export class OutboxRelay {
  private readonly db: Database;
  private readonly bus: EventBus;
  private readonly pollIntervalMs: number;
  private readonly batchSize: number;
  private readonly leaseSeconds: number;
  private readonly onError: (error: unknown) => void;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private failures = 0;
  private stopped = true;

  constructor(options: OutboxRelayOptions) {
    this.db = options.db;
    this.bus = options.bus;
    this.pollIntervalMs = options.pollIntervalMs ?? 500;
    this.batchSize = options.batchSize ?? 100;
    this.leaseSeconds = options.leaseSeconds ?? 30;
    this.onError = options.onError ?? (() => {});
    if (!(this.pollIntervalMs > 0)) {
      throw new TypeError(`OutboxRelay: pollIntervalMs must be positive, received ${options.pollIntervalMs}`);
    }
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.notify();
  }

  /** Asks for a pass now (call after committing a transaction that enqueued events). */
  notify(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.running = this.pass().finally(() => {
      this.running = undefined;
      if (this.stopped) return;
      if (this.again && this.failures === 0) {
        this.again = false;
        this.notify();
        return;
      }
      this.again = false;
      // Back off while the bus is failing, up to 10 s.
      const delay =
        this.failures === 0
          ? this.pollIntervalMs
          : Math.min(10_000, this.pollIntervalMs * 2 ** this.failures);
      this.timer = setTimeout(() => this.notify(), delay);
      this.timer.unref();
    });
  }

  /** Publishes everything pending now; resolves with how many rows were published. */
  async flush(): Promise<number> {
    await this.running;
    let total = 0;
    for (;;) {
      const published = await this.publishBatch();
      total += published;
      if (published < this.batchSize) return total;
    }
  }

  /** Stops polling, then makes one last attempt to publish what is pending. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    await this.flush().catch((error: unknown) => this.onError(error));
  }

  private async pass(): Promise<void> {
    try {
      while ((await this.publishBatch()) === this.batchSize && !this.stopped) {}
      this.failures = 0;
    } catch (error) {
      this.failures = Math.min(this.failures + 1, 10);
      this.onError(error);
    }
  }

  private async publishBatch(): Promise<number> {
    const claimed = await this.db.query<OutboxRow>(
      `UPDATE outbox SET locked_until = now() + make_interval(secs => $2)
        WHERE seq IN (
          SELECT seq FROM outbox
           WHERE published_at IS NULL AND (locked_until IS NULL OR locked_until < now())
           ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED)
        RETURNING seq, id, type, version, source, occurred_at, payload, traceparent, tracestate`,
      [this.batchSize, this.leaseSeconds],
    );
    const rows = claimed.rows.sort((a, b) => Number(a.seq) - Number(b.seq));
    let published = 0;
    try {
      for (const row of rows) {
        const trace = sanitizeTraceCarrier({
          traceparent: row.traceparent,
          tracestate: row.tracestate ?? undefined,
        });
        await this.bus.publish({
          id: row.id,
          type: row.type,
          version: row.version,
          source: row.source,
          occurredAt: row.occurred_at.toISOString(),
          payload: row.payload,
          ...(trace ? { trace } : {}),
        });
        await this.db.query('UPDATE outbox SET published_at = now(), locked_until = NULL WHERE id = $1', [
          row.id,
        ]);
        published++;
      }
    } catch (error) {
      // Release what was not published so that the next pass (here or on a replica) retries it.
      const pending = rows.slice(published).map((r) => r.id);
      await this.db
        .query(
          'UPDATE outbox SET locked_until = NULL, attempts = attempts + 1, last_error = $2 WHERE id = ANY($1::uuid[])',
          [pending, error instanceof Error ? error.message.slice(0, 500) : String(error)],
        )
        .catch(() => {});
      throw error;
    }
    return published;
  }
}
