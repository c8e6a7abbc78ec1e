import { createHash } from 'node:crypto';
import type { Database, Queryable } from '@bff/db';
import { ErrorCode, HttpError } from '@bff/http-service';

export interface StoredResponse {
  status: number;
  body: unknown;
}

export interface IdempotencyOptions {
  /** How long a claim protects a request in progress before another may take it over, in s. @default 30 */
  leaseSeconds?: number;
  /** How long a duplicate waits for the first request to finish before a 409, in ms. @default 10000 */
  waitMs?: number;
}

interface KeyRow {
  request_hash: string;
  response_status: number | null;
  response_body: unknown;
  locked_until: Date | null;
}

/** A stable hash of the request: same key with a different hash is a client bug (422). */
export function requestHash(route: string, body: unknown): string {
  return createHash('sha256').update(route).update('\n').update(canonicalJson(body)).digest('hex');
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * Idempotency-Key handling. The first request with a key claims it (an INSERT that only one
 * of any number of concurrent requests wins), does the work, and stores its response in the
 * same transaction as its effects. Duplicates with the same body wait for that response and
 * replay it; with a different body they get 422. A failed first request releases the key so a
 * retry can run; a crashed one loses its claim when the lease runs out.
 */
export class IdempotencyKeys {
  private readonly leaseSeconds: number;
  private readonly waitMs: number;

  constructor(
    private readonly db: Database,
    options: IdempotencyOptions = {},
  ) {
    this.leaseSeconds = options.leaseSeconds ?? 30;
    this.waitMs = options.waitMs ?? 10_000;
  }

  /**
   * Runs `prepare` once per key. `prepare` does what needs no transaction (upstream calls) and
   * returns `commit`, which makes the changes inside a transaction; the response it returns is
   * stored in that same transaction. Returns the response and whether it is a replay.
   */
  async run(
    key: string,
    hash: string,
    prepare: () => Promise<(tx: Queryable) => Promise<StoredResponse>>,
  ): Promise<StoredResponse & { replayed: boolean }> {
    const deadline = Date.now() + this.waitMs;
    for (let wait = 10; ; wait = Math.min(wait * 2, 200)) {
      const claimed = await this.claim(key, hash);
      if (claimed === true) break;
      if (claimed !== false) return { ...claimed, replayed: true };
      if (Date.now() > deadline) {
        throw new HttpError(
          409,
          ErrorCode.IdempotencyKeyInUse,
          'A request with this Idempotency-Key is still in progress; retry later',
        );
      }
      await new Promise((resolve) => setTimeout(resolve, wait * (0.5 + Math.random())));
    }
    try {
      const commit = await prepare();
      const response = await this.db.transaction(async (tx) => {
        const result = await commit(tx);
        await tx.query(
          `UPDATE idempotency_keys SET response_status = $2, response_body = $3, completed_at = now(), locked_until = NULL
            WHERE key = $1`,
          [key, result.status, JSON.stringify(result.body)],
        );
        return result;
      });
      return { ...response, replayed: false };
    } catch (error) {
      await this.db
        .query('DELETE FROM idempotency_keys WHERE key = $1 AND response_status IS NULL', [key])
        .catch(() => {});
      throw error;
    }
  }

  /** true: this request owns the key. false: someone else is working on it. Otherwise: the stored response. */
  private async claim(key: string, hash: string): Promise<boolean | StoredResponse> {
    const inserted = await this.db.query(
      `INSERT INTO idempotency_keys (key, request_hash, locked_until)
       VALUES ($1, $2, now() + make_interval(secs => $3)) ON CONFLICT (key) DO NOTHING RETURNING key`,
      [key, hash, this.leaseSeconds],
    );
    if (inserted.rowCount === 1) return true;
    const existing = await this.db.query<KeyRow>(
      'SELECT request_hash, response_status, response_body, locked_until FROM idempotency_keys WHERE key = $1',
      [key],
    );
    const row = existing.rows[0];
    if (!row) return false; // released between our INSERT and SELECT: try again
    if (row.request_hash !== hash) {
      throw new HttpError(
        422,
        ErrorCode.IdempotencyKeyReused,
        'This Idempotency-Key was used with a different request body',
      );
    }
    if (row.response_status !== null) return { status: row.response_status, body: row.response_body };
    // Take over a claim whose owner died without finishing.
    const takeover = await this.db.query(
      `UPDATE idempotency_keys SET locked_until = now() + make_interval(secs => $2)
        WHERE key = $1 AND response_status IS NULL AND locked_until < now() RETURNING key`,
      [key, this.leaseSeconds],
    );
    return takeover.rowCount === 1;
  }
}
