import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Database, MigrationSource, Queryable } from '@bff/db';
import { type Context, sanitizeTraceCarrier, type Tracing, traceCarrierOf } from '@bff/observability';
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
  /**
   * Where rows are published. Its `publish` must have a deadline of its own (RabbitMqEventBus's
   * `timeoutMs`): the relay renews its lease while a publish is in flight.
   */
  bus: EventBus;
  /** How often to look for unpublished rows when not woken by `notify()`, in ms. @default 500 */
  pollIntervalMs?: number;
  /** Rows claimed per pass, a whole number from 1 to 10000. @default 100 */
  batchSize?: number;
  /**
   * How long a claim reserves its rows for this relay, in seconds (fractions allowed, 0.05 to
   * 3600). Renewed every third of it while the batch is published; a row is not published once
   * less than a third of it is left. @default 30
   */
  leaseSeconds?: number;
  /** Called when publishing, marking or renewing fails (the row stays and is retried). */
  onError?: (error: unknown) => void;
  /**
   * The publishing service's Tracing: each row with a trace context is sent inside a PRODUCER
   * span under it (`<type> publish`), the consumers' spans its children. @default the bus's own
   */
  tracing?: Tracing | undefined;
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

/** What one claim came to. */
interface BatchOutcome {
  /** Rows published and marked by this relay. */
  published: number;
  /** Whether rows may be waiting right now (a full batch, or one cut short after progress). */
  more: boolean;
}

const MIN_LEASE_SECONDS = 0.05;
const MAX_LEASE_SECONDS = 3_600;
const MAX_BATCH_SIZE = 10_000;

/**
 * One claim's hold on its rows: a token no other claim has, and the moment (on this process's
 * monotonic clock) until which the rows are surely still reserved for it. That moment is counted
 * from before the claim or renewal was sent, so it is never later than the `locked_until` the
 * database wrote. Every statement of a claim runs one after the other, so the count of rows it
 * has yet to mark is exact whenever a renewal compares it with what it renewed.
 */
class OutboxLease {
  private heldUntil: number;
  private lost = false;
  /** Set once the claim gives its rows back or ends: nothing is left to renew. */
  private over = false;
  private unmarked: number;
  private queue: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: Database,
    private readonly token: string,
    private readonly leaseSeconds: number,
    claimSentAt: number,
    rows: number,
    private readonly onError: (error: unknown) => void,
  ) {
    this.heldUntil = claimSentAt + leaseSeconds * 1000;
    this.unmarked = rows;
  }

  /** Renews the lease every third of it until `end()`. */
  keepAlive(): void {
    this.timer = setInterval(() => void this.renew(), (this.leaseSeconds * 1000) / 3);
    this.timer.unref();
  }

  /**
   * Whether a publish may start: the rows are still this claim's, with at least a third of the
   * lease left for the publish and its mark (the renewals keep it near whole while they land).
   */
  canPublish(): boolean {
    return !this.lost && performance.now() < this.heldUntil - (this.leaseSeconds * 1000) / 3;
  }

  /** Marks a row published; false when another claim holds it (or has published it) by now. */
  mark(id: string): Promise<boolean> {
    return this.serially(async () => {
      const marked = await this.db.query(
        `UPDATE outbox SET published_at = now(), locked_until = NULL
          WHERE id = $1 AND lease_owner = $2 AND published_at IS NULL`,
        [id, this.token],
      );
      if (marked.rowCount === 0) {
        this.lost = true;
        return false;
      }
      this.unmarked--;
      return true;
    });
  }

  /**
   * Gives back the rows of `ids` this claim still holds, for the next pass here or on a replica;
   * after a failed publish, `error` is recorded against them.
   */
  release(ids: readonly string[], error?: unknown): Promise<void> {
    this.over = true;
    return this.serially(async () => {
      if (ids.length === 0) return;
      if (error === undefined) {
        await this.db.query(
          `UPDATE outbox SET locked_until = NULL, lease_owner = NULL
            WHERE id = ANY($1::uuid[]) AND lease_owner = $2 AND published_at IS NULL`,
          [ids, this.token],
        );
        return;
      }
      await this.db.query(
        `UPDATE outbox SET locked_until = NULL, lease_owner = NULL, attempts = attempts + 1, last_error = $3
          WHERE id = ANY($1::uuid[]) AND lease_owner = $2 AND published_at IS NULL`,
        [ids, this.token, error instanceof Error ? error.message.slice(0, 500) : String(error)],
      );
    });
  }

  /** Stops renewing and waits for the statement in flight, so that nothing runs after the batch. */
  async end(): Promise<void> {
    this.over = true;
    clearInterval(this.timer);
    await this.queue;
  }

  private renew(): Promise<void> {
    return this.serially(async () => {
      if (this.over || this.lost || this.unmarked === 0) return;
      const sentAt = performance.now();
      const renewed = await this.db.query(
        `UPDATE outbox SET locked_until = now() + make_interval(secs => $2)
          WHERE lease_owner = $1 AND published_at IS NULL`,
        [this.token, this.leaseSeconds],
      );
      // Fewer than it holds: the lease ran out and another relay claimed some of them.
      if (renewed.rowCount < this.unmarked) this.lost = true;
      else this.heldUntil = sentAt + this.leaseSeconds * 1000;
    }).catch((error: unknown) => this.onError(error));
  }

  private serially<T>(statement: () => Promise<T>): Promise<T> {
    const result = this.queue.then(statement);
    this.queue = result.catch(() => {});
    return result;
  }
}

/**
 * Publishes outbox rows in order and marks them sent. Rows are claimed with a lease
 * (`FOR UPDATE SKIP LOCKED`) under a token of the claim's own, published outside any
 * transaction, then marked. The lease is renewed while the batch is published, a batch stops
 * (and gives its rows back) when the lease could run out before the next publish ends, and a
 * relay marks or releases only rows its claim still holds. What remains at least once: a publish
 * that outlives the lease (the process stalled, or lost the database), and a crash between
 * publish and mark; consumers absorb both by deduplicating on the event id.
 */
export class OutboxRelay {
  private readonly db: Database;
  private readonly bus: EventBus;
  private readonly pollIntervalMs: number;
  private readonly batchSize: number;
  private readonly leaseSeconds: number;
  private readonly onError: (error: unknown) => void;
  private readonly tracing: Tracing | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private failures = 0;
  private stopped = true;
  private refused = 0;

  constructor(options: OutboxRelayOptions) {
    this.db = options.db;
    this.bus = options.bus;
    this.pollIntervalMs = options.pollIntervalMs ?? 500;
    this.batchSize = options.batchSize ?? 100;
    this.leaseSeconds = options.leaseSeconds ?? 30;
    this.onError = options.onError ?? (() => {});
    this.tracing = options.tracing;
    if (!(this.pollIntervalMs > 0)) {
      throw new TypeError(`OutboxRelay: pollIntervalMs must be positive, received ${options.pollIntervalMs}`);
    }
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1 || this.batchSize > MAX_BATCH_SIZE) {
      throw new TypeError(
        `OutboxRelay: batchSize must be a whole number from 1 to ${MAX_BATCH_SIZE}, received ${options.batchSize}`,
      );
    }
    if (
      typeof this.leaseSeconds !== 'number' ||
      !(this.leaseSeconds >= MIN_LEASE_SECONDS && this.leaseSeconds <= MAX_LEASE_SECONDS)
    ) {
      throw new TypeError(
        `OutboxRelay: leaseSeconds must be a number of seconds from ${MIN_LEASE_SECONDS} to ${MAX_LEASE_SECONDS}, received ${String(options.leaseSeconds)}`,
      );
    }
  }

  /**
   * Rows this relay published but was refused the mark for, because another relay had claimed
   * them once its lease ran out: each one most likely reached the bus twice.
   */
  get refusedMarks(): number {
    return this.refused;
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
      const batch = await this.publishBatch();
      total += batch.published;
      if (!batch.more) return total;
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
      while ((await this.publishBatch()).more && !this.stopped) {}
      this.failures = 0;
    } catch (error) {
      this.failures = Math.min(this.failures + 1, 10);
      this.onError(error);
    }
  }

  private async publishBatch(): Promise<BatchOutcome> {
    const token = randomUUID();
    const claimSentAt = performance.now();
    const claimed = await this.db.query<OutboxRow>(
      `UPDATE outbox SET locked_until = now() + make_interval(secs => $2), lease_owner = $3
        WHERE seq IN (
          SELECT seq FROM outbox
           WHERE published_at IS NULL AND (locked_until IS NULL OR locked_until < now())
           ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED)
        RETURNING seq, id, type, version, source, occurred_at, payload, traceparent, tracestate`,
      [this.batchSize, this.leaseSeconds, token],
    );
    const rows = claimed.rows.sort((a, b) => Number(a.seq) - Number(b.seq));
    if (rows.length === 0) return { published: 0, more: false };
    const lease = new OutboxLease(this.db, token, this.leaseSeconds, claimSentAt, rows.length, this.onError);
    lease.keepAlive();
    let published = 0;
    let failure: { error: unknown } | undefined;
    try {
      for (const row of rows) {
        // In order or not at all: a row left for later takes every row after it along.
        if (!lease.canPublish()) break;
        const trace = sanitizeTraceCarrier({
          traceparent: row.traceparent,
          tracestate: row.tracestate ?? undefined,
        });
        await this.bus.publish(
          {
            id: row.id,
            type: row.type,
            version: row.version,
            source: row.source,
            occurredAt: row.occurred_at.toISOString(),
            payload: row.payload,
            ...(trace ? { trace } : {}),
          },
          this.tracing ? { tracing: this.tracing } : undefined,
        );
        if (!(await lease.mark(row.id))) {
          this.refused++;
          break;
        }
        published++;
      }
    } catch (error) {
      failure = { error };
    }
    // What this claim still holds goes back now rather than when its lease would run out, for
    // the next pass here or on a replica: after a failure, with the error recorded.
    const pending = rows.slice(published).map((r) => r.id);
    try {
      if (failure) await lease.release(pending, failure.error).catch(() => {});
      else await lease.release(pending);
    } finally {
      await lease.end();
    }
    if (failure) throw failure.error;
    const cutShort = published < rows.length;
    return { published, more: published > 0 && (cutShort || rows.length === this.batchSize) };
  }
}
