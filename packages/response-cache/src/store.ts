/** Counts a store keeps from its start; a snapshot, so it can be read and compared safely. */
export interface ResponseCacheStats {
  /** `get` calls that returned a value. */
  hits: number;
  /** `get` calls that returned nothing, including those the backend failed to answer. */
  misses: number;
  /** Entries written. */
  stores: number;
  /** Entries dropped by `invalidate` (not by expiry or eviction). */
  invalidations: number;
  /** Calls the backend failed or did not answer in time; the caller saw a miss or a skip. */
  failures: number;
  /** Writes refused because one of their tags was invalidated after `unchangedSince`. */
  stale: number;
}

/** What became of one `set`. */
export type SetOutcome =
  /** Written and indexed. */
  | 'stored'
  /** Not written: a tag was invalidated at or after `unchangedSince`, so the value may predate the change. */
  | 'stale'
  /** Not written: the backend failed or was slow (counted in `failures`), or the entry is larger than the store. */
  | 'skipped';

export interface SetOptions {
  /**
   * When the data in `value` was read, ms since the epoch (the request's start, less any clock
   * skew between replicas). If any of the entry's tags was invalidated at or after this instant,
   * the value may hold what that invalidation removed: it is not written (`'stale'`). This is
   * what stops a response computed before a change, but finished after the change's
   * invalidation, from being cached for its whole max age.
   */
  unchangedSince?: number;
}

/**
 * How long a store remembers when each tag was last invalidated (for `unchangedSince`), in ms:
 * longer than any request runs. A write whose data is older than this is refused.
 */
export const INVALIDATION_MEMORY_MS = 120_000;

/**
 * Whole GraphQL responses by key, each tagged with the entities it holds, so that a change to
 * one entity drops every response that showed it. Keys and tags are opaque strings. No method
 * rejects because of the backend: a store that cannot answer misses, skips and counts.
 */
export interface ResponseCacheStore {
  /** The value stored under `key`, unless it has expired, been evicted or been invalidated. */
  get(key: string): Promise<string | undefined>;
  /**
   * Stores `value` for `ttlSeconds` (> 0), indexed under each of `tags`, replacing what was
   * there, unless a tag was invalidated since `options.unchangedSince` (see SetOptions).
   */
  set(
    key: string,
    value: string,
    ttlSeconds: number,
    tags: readonly string[],
    options?: SetOptions,
  ): Promise<SetOutcome>;
  /** Drops every entry carrying any of `tags`; resolves to how many entries were dropped. */
  invalidate(tags: readonly string[]): Promise<number>;
  /** Counts since the store was made. */
  readonly stats: ResponseCacheStats;
  close(): Promise<void>;
}

/** The argument checks every store shares: contract errors, not backend failures, so they throw. */
export function assertEntry(
  store: string,
  key: unknown,
  value: unknown,
  ttlSeconds: unknown,
  tags: unknown,
): void {
  assertKey(`${store}.set`, 'key', key);
  if (typeof value !== 'string') {
    throw new TypeError(`${store}.set: value must be a string, received ${typeof value}`);
  }
  if (typeof ttlSeconds !== 'number' || !Number.isFinite(ttlSeconds) || ttlSeconds <= 0) {
    throw new TypeError(`${store}.set: ttlSeconds must be a positive number, received ${String(ttlSeconds)}`);
  }
  assertTags(`${store}.set`, tags);
}

export function assertSetOptions(store: string, options: SetOptions | undefined): number | undefined {
  const since = options?.unchangedSince;
  if (since !== undefined && (typeof since !== 'number' || !Number.isFinite(since))) {
    throw new TypeError(
      `${store}.set: unchangedSince must be a finite number of ms, received ${String(since)}`,
    );
  }
  return since;
}

export function assertKey(store: string, what: string, key: unknown): void {
  if (typeof key !== 'string' || key.length === 0) {
    throw new TypeError(`${store}: ${what} must be a non-empty string, received ${JSON.stringify(key)}`);
  }
}

export function assertTags(store: string, tags: unknown): asserts tags is readonly string[] {
  if (!Array.isArray(tags)) {
    throw new TypeError(`${store}: tags must be an array of strings, received ${JSON.stringify(tags)}`);
  }
  for (const tag of tags) assertKey(store, 'each tag', tag);
}

export function emptyStats(): ResponseCacheStats {
  return { hits: 0, misses: 0, stores: 0, invalidations: 0, failures: 0, stale: 0 };
}
